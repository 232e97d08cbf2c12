//! The peer-to-peer side of a node: a libp2p swarm over QUIC, and the membership
//! state machine (`stemma_protocol::membership`) driven with real sockets and
//! real time.

mod behaviour;
mod driver;
mod faults;

pub use faults::Faults;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context as _;
use libp2p::futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{Multiaddr, PeerId, Swarm, identify, mdns, request_response};
use stemma_protocol::membership::{
    ClusterKey, MemberId, MemberInfo, MemberState, Membership, MembershipConfig, MembershipStats,
    NodeId, NodeMeta,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use behaviour::{Behaviour, BehaviourEvent, MEMBERSHIP_PROTOCOL, RawCodec};

/// What the peer-to-peer side needs to start.
#[derive(Debug, Clone)]
pub struct P2pSettings {
    /// Where to listen (a QUIC multiaddr).
    pub listen: Multiaddr,
    /// Nodes to join through.
    pub join: Vec<Multiaddr>,
    /// Discover peers on the local network.
    pub mdns: bool,
    /// SWIM settings.
    pub membership: MembershipConfig,
    /// The key derived from the cluster secret.
    pub cluster_key: ClusterKey,
    /// This node's restart generation.
    pub generation: u32,
    /// What this node tells others about itself (addresses are filled in here).
    pub zone: String,
    /// Capacity weight.
    pub capacity: u64,
    /// The client endpoint's address.
    pub client_addr: String,
    /// The p2p address others should dial, when not the listen address (NAT,
    /// or listening on 0.0.0.0).
    pub advertise: Option<SocketAddr>,
}

/// A running swarm and membership.
pub struct P2p {
    /// Asks the membership task questions.
    pub handle: P2pHandle,
    task: JoinHandle<()>,
    /// The addresses the swarm listens on, each ending in `/p2p/PEER_ID`.
    pub listen_addrs: Vec<Multiaddr>,
    /// This node's membership id.
    pub me: MemberId,
    /// Opens and accepts streams of conversational protocols (lineage sync).
    pub streams: libp2p_stream::Control,
}

/// Events the node reacts to (e.g. to persist a new generation).
#[derive(Debug, Clone)]
pub enum P2pEvent {
    /// This node rejoined as a new generation after a false death verdict.
    Rejoined(MemberId),
}

impl P2p {
    /// Builds the swarm, starts listening, and runs membership in a task.
    pub async fn start(
        keypair: libp2p::identity::Keypair,
        settings: P2pSettings,
        events: mpsc::UnboundedSender<P2pEvent>,
    ) -> anyhow::Result<P2p> {
        let public = keypair
            .public()
            .try_into_ed25519()
            .context("the node identity must be an ed25519 key")?;
        let node = NodeId::from_public_key(public.to_bytes());
        let local_peer_id = keypair.public().to_peer_id();
        let mdns_on = settings.mdns;
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_quic()
            .with_behaviour(|key| {
                let mdns = if mdns_on {
                    Some(mdns::tokio::Behaviour::new(
                        mdns::Config::default(),
                        key.public().to_peer_id(),
                    )?)
                } else {
                    None
                };
                Ok(Behaviour {
                    identify: identify::Behaviour::new(identify::Config::new(
                        "/stemma/1".into(),
                        key.public(),
                    )),
                    mdns: Toggle::from(mdns),
                    membership: request_response::Behaviour::with_codec(
                        RawCodec,
                        [(MEMBERSHIP_PROTOCOL, request_response::ProtocolSupport::Full)],
                        request_response::Config::default()
                            .with_request_timeout(Duration::from_secs(5)),
                    ),
                    streams: libp2p_stream::Behaviour::new(),
                })
            })
            .map_err(|e| anyhow::anyhow!("cannot build the p2p stack: {e}"))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
            .build();
        swarm
            .listen_on(settings.listen.clone())
            .with_context(|| format!("cannot listen on {} (p2p)", settings.listen))?;
        let mut early_events = Vec::new();
        let listen_addrs = listen_addrs(&mut swarm, &settings.listen, &mut early_events).await?;
        let advertised = settings
            .advertise
            .or_else(|| listen_addrs.iter().find_map(socket_addr));
        let me = MemberId {
            node,
            generation: settings.generation,
            addr: advertised,
        };
        let mut listen_addrs: Vec<Multiaddr> = listen_addrs
            .into_iter()
            .map(|a| a.with(Protocol::P2p(local_peer_id)))
            .collect();
        if let Some(addr) = settings.advertise {
            listen_addrs.insert(0, quic_addr(addr).with(Protocol::P2p(local_peer_id)));
        }
        let meta = NodeMeta {
            id: me,
            zone: settings.zone.clone(),
            capacity: settings.capacity,
            version: env!("CARGO_PKG_VERSION").to_string(),
            p2p_addrs: listen_addrs.iter().map(|a| a.to_string()).collect(),
            client_addr: Some(settings.client_addr.clone()),
        };
        let seed = u64::from_le_bytes(rand::random());
        let membership = Membership::new(
            me,
            Some(meta),
            settings.membership.clone(),
            settings.cluster_key.clone(),
            seed,
        );
        let streams = swarm.behaviour().streams.new_control();
        let faults = Faults::default();
        let (commands, rx) = mpsc::channel(64);
        let task = tokio::spawn(driver::run(
            swarm,
            early_events,
            faults.clone(),
            membership,
            settings.join,
            rx,
            events,
        ));
        Ok(P2p {
            handle: P2pHandle { commands, faults },
            task,
            listen_addrs,
            me,
            streams,
        })
    }

    /// Leaves the cluster gracefully (others record `left`), then stops.
    pub async fn leave(self) {
        let (tx, rx) = oneshot::channel();
        if self
            .handle
            .commands
            .send(driver::Command::Leave(tx))
            .await
            .is_ok()
        {
            let _ = tokio::time::timeout(Duration::from_secs(3), rx).await;
        }
        self.task.abort();
        let _ = self.task.await;
    }
}

impl std::fmt::Debug for P2p {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("P2p")
            .field("me", &self.me)
            .field("listen_addrs", &self.listen_addrs)
            .finish_non_exhaustive()
    }
}

/// A cheap, cloneable way to ask the membership task questions.
#[derive(Debug, Clone)]
pub struct P2pHandle {
    commands: mpsc::Sender<driver::Command>,
    /// Peers cut off by fault injection.
    pub faults: Faults,
}

impl P2pHandle {
    /// A handle to no membership task (for tests of the parts above it): it
    /// reports no members and no counters.
    #[cfg(test)]
    pub(crate) fn detached() -> Self {
        let (commands, _) = mpsc::channel(1);
        Self {
            commands,
            faults: Faults::default(),
        }
    }

    /// Whether `peer` is a member this node sees alive or suspect. Anyone may
    /// open a libp2p connection; only members may store, read or sync data.
    pub async fn is_member(&self, peer: &PeerId) -> bool {
        let Some(node) = node_of(peer) else {
            return false;
        };
        counts_as_member(&self.members().await, &node)
    }

    /// The members as this node sees them, itself first, with the time since
    /// each was last heard.
    pub async fn members(&self) -> Vec<(MemberInfo, Option<Duration>)> {
        let (tx, rx) = oneshot::channel();
        if self
            .commands
            .send(driver::Command::Members(tx))
            .await
            .is_err()
        {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Membership counters.
    pub async fn stats(&self) -> MembershipStats {
        let (tx, rx) = oneshot::channel();
        if self
            .commands
            .send(driver::Command::Stats(tx))
            .await
            .is_err()
        {
            return MembershipStats::default();
        }
        rx.await.unwrap_or_default()
    }
}

/// Waits for the swarm's listen addresses: the first, and any others reported
/// right after it (one per interface when listening on 0.0.0.0). Non-loopback
/// addresses come first, since they are the ones other machines can dial.
/// Other events that arrive meanwhile (an mDNS discovery) are kept for the driver.
async fn listen_addrs(
    swarm: &mut Swarm<Behaviour>,
    listen: &Multiaddr,
    early: &mut Vec<SwarmEvent<BehaviourEvent>>,
) -> anyhow::Result<Vec<Multiaddr>> {
    let mut addrs = Vec::new();
    let first_deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let deadline = if addrs.is_empty() {
            first_deadline
        } else {
            tokio::time::Instant::now() + Duration::from_millis(100)
        };
        match tokio::time::timeout_at(deadline, swarm.next()).await {
            Ok(Some(SwarmEvent::NewListenAddr { address, .. })) => addrs.push(address),
            Ok(Some(event)) => early.push(event),
            Ok(None) | Err(_) => break,
        }
    }
    if addrs.is_empty() {
        anyhow::bail!("no p2p listen address on {listen}");
    }
    addrs.sort_by_key(|a| socket_addr(a).is_none_or(|s| s.ip().is_loopback()));
    Ok(addrs)
}

/// The UDP socket address of a QUIC multiaddr.
fn socket_addr(addr: &Multiaddr) -> Option<SocketAddr> {
    let mut parts = addr.iter();
    let ip: IpAddr = match parts.next()? {
        Protocol::Ip4(ip) => ip.into(),
        Protocol::Ip6(ip) => ip.into(),
        _ => return None,
    };
    match parts.next()? {
        Protocol::Udp(port) => Some(SocketAddr::new(ip, port)),
        _ => None,
    }
}

/// The QUIC multiaddr of a UDP socket address.
fn quic_addr(addr: SocketAddr) -> Multiaddr {
    Multiaddr::from(addr.ip())
        .with(Protocol::Udp(addr.port()))
        .with(Protocol::QuicV1)
}

/// The membership id of a libp2p peer, if it has an ed25519 identity.
pub(crate) fn node_of(peer: &PeerId) -> Option<NodeId> {
    NodeId::from_peer_id_bytes(&peer.to_bytes())
}

/// Whether `node` is among `members`, alive or suspect (a suspect may be
/// slow, not gone; dead and departed members are out).
fn counts_as_member(members: &[(MemberInfo, Option<Duration>)], node: &NodeId) -> bool {
    members.iter().any(|(m, _)| {
        m.id.node == *node && matches!(m.state, MemberState::Alive | MemberState::Suspect)
    })
}

/// The libp2p peer of a member.
pub(crate) fn peer_of(node: &NodeId) -> Option<PeerId> {
    PeerId::from_bytes(&node.peer_id_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vendored libp2p-tls (`node/vendor/libp2p-tls/STEMMA-CHANGES.md`):
    /// with AES instructions, libp2p's QUIC offers AES-128-GCM first.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn peer_connections_prefer_aes_gcm_on_a_cpu_with_aes_instructions() {
        use rustls::CipherSuite;
        let key = libp2p::identity::Keypair::generate_ed25519();
        let client = libp2p_tls::make_client_config(&key, None).unwrap();
        let server = libp2p_tls::make_server_config(&key).unwrap();
        let hardware = is_x86_feature_detected!("aes") && is_x86_feature_detected!("pclmulqdq");
        let expected = match hardware {
            true => CipherSuite::TLS13_AES_128_GCM_SHA256,
            false => CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
        };
        for provider in [client.crypto_provider(), server.crypto_provider()] {
            let offered: Vec<_> = provider.cipher_suites.iter().map(|s| s.suite()).collect();
            assert_eq!(offered.len(), 3, "{offered:?}");
            assert_eq!(offered[0], expected, "{offered:?}");
        }
    }

    #[test]
    fn quic_multiaddrs_and_socket_addresses_convert_both_ways() {
        for text in ["10.0.0.5:7401", "[2001:db8::1]:7401"] {
            let addr: SocketAddr = text.parse().unwrap();
            assert_eq!(socket_addr(&quic_addr(addr)), Some(addr));
        }
        let tcp: Multiaddr = "/dns4/example.org/udp/7401/quic-v1".parse().unwrap();
        assert_eq!(socket_addr(&tcp), None);
    }

    #[test]
    fn only_alive_and_suspect_members_count() {
        let info = |n: u64, state| MemberInfo {
            id: MemberId {
                node: NodeId::synthetic(n),
                generation: 0,
                addr: None,
            },
            state,
            incarnation: 0,
            last_heard: None,
            meta: None,
        };
        let members: Vec<(MemberInfo, Option<Duration>)> = [
            info(1, MemberState::Alive),
            info(2, MemberState::Suspect),
            info(3, MemberState::Dead),
            info(4, MemberState::Left),
        ]
        .into_iter()
        .map(|m| (m, None))
        .collect();
        let counts = |n| counts_as_member(&members, &NodeId::synthetic(n));
        assert_eq!(
            [counts(1), counts(2), counts(3), counts(4), counts(5)],
            [true, true, false, false, false]
        );
    }
}
