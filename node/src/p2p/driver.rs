//! The task that owns the swarm and the membership state machine: network
//! events and timers in, membership outputs out to the network.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use libp2p::futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, identify, mdns, request_response};
use stemma_protocol::membership::{
    MemberId, MemberInfo, Membership, MembershipEvent, MembershipStats, MembershipTimer, Output,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::behaviour::{Behaviour, BehaviourEvent};
use super::{Faults, P2pEvent, node_of, peer_of, quic_addr};

/// How often to retry the join targets while no other member is known.
const JOIN_RETRY: Duration = Duration::from_secs(3);

pub enum Command {
    Members(oneshot::Sender<Vec<(MemberInfo, Option<Duration>)>>),
    Stats(oneshot::Sender<MembershipStats>),
    Leave(oneshot::Sender<()>),
}

struct Driver {
    swarm: Swarm<Behaviour>,
    membership: Membership,
    start: Instant,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    pending: HashMap<u64, MembershipTimer>,
    seq: u64,
    join: Vec<Multiaddr>,
    events: mpsc::UnboundedSender<P2pEvent>,
    faults: Faults,
}

pub async fn run(
    swarm: Swarm<Behaviour>,
    early_events: Vec<SwarmEvent<BehaviourEvent>>,
    faults: Faults,
    membership: Membership,
    join: Vec<Multiaddr>,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::UnboundedSender<P2pEvent>,
) {
    let mut d = Driver {
        swarm,
        membership,
        start: Instant::now(),
        timers: BinaryHeap::new(),
        pending: HashMap::new(),
        seq: 0,
        join,
        events,
        faults,
    };
    d.join_targets();
    for event in early_events {
        d.on_swarm_event(event);
    }
    let mut retry = tokio::time::interval(JOIN_RETRY);
    loop {
        let next_timer = d.timers.peek().map(|Reverse((at, _))| *at);
        tokio::select! {
            event = d.swarm.select_next_some() => d.on_swarm_event(event),
            () = sleep_until(next_timer) => d.fire_timers(),
            _ = retry.tick() => {
                if d.membership.active_members() == 0 {
                    d.join_targets();
                }
            }
            command = commands.recv() => match command {
                Some(Command::Members(reply)) => {
                    let now = d.now();
                    let rows = d.membership.members().into_iter().map(|m| {
                        let ago = m.last_heard.map(|t| now.saturating_sub(t));
                        (m, ago)
                    }).collect();
                    let _ = reply.send(rows);
                }
                Some(Command::Stats(reply)) => { let _ = reply.send(d.membership.stats()); }
                Some(Command::Leave(reply)) => {
                    d.membership.leave();
                    d.flush();
                    // Give the leave messages a moment to go out.
                    let deadline = Instant::now() + Duration::from_millis(500);
                    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, d.swarm.next()).await {
                        d.on_swarm_event(event);
                    }
                    let _ = reply.send(());
                    return;
                }
                None => return,
            },
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Driver {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Dials the join targets; those that name their peer id are announced to.
    fn join_targets(&mut self) {
        for addr in self.join.clone() {
            match addr.iter().last() {
                Some(Protocol::P2p(peer)) => {
                    self.swarm.add_peer_address(peer, addr.clone());
                    if let Some(node) = node_of(&peer) {
                        self.membership.join(node);
                    }
                }
                _ => {
                    if let Err(e) = self.swarm.dial(addr.clone()) {
                        tracing::warn!(%addr, error = %e, "cannot dial join target");
                    }
                }
            }
        }
        self.flush();
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Membership(event)) => match event {
                request_response::Event::Message {
                    peer,
                    message:
                        request_response::Message::Request {
                            request, channel, ..
                        },
                    ..
                } => {
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .membership
                        .send_response(channel, Vec::new());
                    self.receive(peer, &request);
                }
                request_response::Event::OutboundFailure { peer, error, .. } => {
                    tracing::debug!(%peer, %error, "membership message not delivered");
                }
                _ => {}
            },
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, addr) in found {
                    self.swarm.add_peer_address(peer, addr);
                    let known = self
                        .membership
                        .members()
                        .iter()
                        .any(|m| Some(m.id.node) == node_of(&peer));
                    if !known && let Some(node) = node_of(&peer) {
                        tracing::info!(%peer, "found a peer on the local network");
                        self.membership.join(node);
                    }
                }
                self.flush();
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                for addr in info.listen_addrs {
                    self.swarm.add_peer_address(peer_id, addr);
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                // A join target given without its peer id: now we know who it is.
                let dialed = endpoint.get_remote_address();
                let is_target = self.join.iter().any(|a| strip_p2p(a) == strip_p2p(dialed));
                if is_target
                    && endpoint.is_dialer()
                    && self.membership.active_members() == 0
                    && let Some(node) = node_of(&peer_id)
                {
                    self.membership.join(node);
                    self.flush();
                }
            }
            _ => {}
        }
    }

    fn receive(&mut self, peer: PeerId, data: &[u8]) {
        if self.faults.is_dropped(&peer) {
            return;
        }
        let now = self.now();
        match self.membership.handle_data(data, now) {
            Ok(()) => {}
            Err(e) => tracing::debug!(%peer, error = %e, "membership message dropped"),
        }
        self.flush();
    }

    fn fire_timers(&mut self) {
        let now_instant = Instant::now();
        while let Some(Reverse((at, seq))) = self.timers.peek().copied() {
            if at > now_instant {
                break;
            }
            self.timers.pop();
            if let Some(timer) = self.pending.remove(&seq) {
                let now = self.now();
                self.membership.handle_timer(timer, now);
            }
        }
        self.flush();
    }

    /// Carries out the membership's outputs.
    fn flush(&mut self) {
        let outputs: Vec<Output> = self.membership.drain_outputs().collect();
        for output in outputs {
            match output {
                Output::Send { to, data } => self.send(&to, data),
                Output::Timer { timer, after } => {
                    self.seq += 1;
                    self.pending.insert(self.seq, timer);
                    self.timers
                        .push(Reverse((Instant::now() + after, self.seq)));
                }
                Output::Event(event) => self.on_event(event),
            }
        }
    }

    fn send(&mut self, to: &MemberId, data: Vec<u8>) {
        let Some(peer) = peer_of(&to.node) else {
            return;
        };
        if !self.swarm.is_connected(&peer) {
            if let Some(addr) = to.addr {
                self.swarm.add_peer_address(peer, quic_addr(addr));
            }
            if let Some(meta) = self.membership.meta(&to.node) {
                for addr in meta.p2p_addrs.iter().filter_map(|a| a.parse().ok()) {
                    self.swarm.add_peer_address(peer, addr);
                }
            }
        }
        self.swarm
            .behaviour_mut()
            .membership
            .send_request(&peer, data);
    }

    fn on_event(&mut self, event: MembershipEvent) {
        match &event {
            MembershipEvent::Up(id) => {
                tracing::info!(member = %id.node, generation = id.generation, "member up")
            }
            MembershipEvent::Dead(id) => tracing::warn!(member = %id.node, "member dead"),
            MembershipEvent::Left(id) => tracing::info!(member = %id.node, "member left"),
            MembershipEvent::Suspected(id) => tracing::info!(member = %id.node, "member suspected"),
            MembershipEvent::Refuted(id) => tracing::info!(member = %id.node, "suspicion refuted"),
            MembershipEvent::Renamed { from, to } => {
                tracing::info!(member = %to.node, from = from.generation, to = to.generation, "member restarted")
            }
            MembershipEvent::Rejoined(id) => {
                tracing::warn!(
                    generation = id.generation,
                    "declared dead by mistake; rejoined"
                );
                let _ = self.events.send(P2pEvent::Rejoined(*id));
            }
            MembershipEvent::Active => tracing::info!("joined the cluster"),
            MembershipEvent::Idle => tracing::info!("no other member is active"),
        }
    }
}

fn strip_p2p(addr: &Multiaddr) -> Multiaddr {
    addr.iter()
        .filter(|p| !matches!(p, Protocol::P2p(_)))
        .collect()
}
