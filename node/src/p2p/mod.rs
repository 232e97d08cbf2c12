//! The peer-to-peer side of a node: a libp2p swarm over QUIC, and the membership
//! state machine (`stemma_protocol::membership`) driven with real sockets and
//! real time.

mod behaviour;
mod driver;

use std::time::Duration;

use anyhow::Context as _;
use libp2p::futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{Multiaddr, PeerId, identify, mdns, request_response};
use stemma_protocol::membership::{
    ClusterKey, MemberId, MemberInfo, Membership, MembershipConfig, MembershipStats, NodeId,
    NodeMeta,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use behaviour::{Behaviour, MEMBERSHIP_PROTOCOL, RawCodec};

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
}

/// A running swarm and membership.
#[derive(Debug)]
pub struct P2p {
    /// Asks the membership task questions.
    pub handle: P2pHandle,
    task: JoinHandle<()>,
    /// The addresses the swarm listens on, each ending in `/p2p/PEER_ID`.
    pub listen_addrs: Vec<Multiaddr>,
    /// This node's membership id.
    pub me: MemberId,
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
        let me = MemberId {
            node: NodeId::from_public_key(public.to_bytes()),
            generation: settings.generation,
        };
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
                })
            })
            .map_err(|e| anyhow::anyhow!("cannot build the p2p stack: {e}"))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
            .build();
        swarm
            .listen_on(settings.listen.clone())
            .with_context(|| format!("cannot listen on {} (p2p)", settings.listen))?;
        let listen_addrs = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(SwarmEvent::NewListenAddr { address, .. }) = swarm.next().await {
                    return address;
                }
            }
        })
        .await
        .with_context(|| format!("no p2p listen address on {}", settings.listen))?;
        let listen_addrs = vec![listen_addrs.with(libp2p::multiaddr::Protocol::P2p(local_peer_id))];
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
        let (commands, rx) = mpsc::channel(64);
        let task = tokio::spawn(driver::run(swarm, membership, settings.join, rx, events));
        Ok(P2p {
            handle: P2pHandle { commands },
            task,
            listen_addrs,
            me,
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

/// A cheap, cloneable way to ask the membership task questions.
#[derive(Debug, Clone)]
pub struct P2pHandle {
    commands: mpsc::Sender<driver::Command>,
}

impl P2pHandle {
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

/// The membership id of a libp2p peer, if it has an ed25519 identity.
fn node_of(peer: &PeerId) -> Option<NodeId> {
    NodeId::from_peer_id_bytes(&peer.to_bytes())
}

/// The libp2p peer of a member.
fn peer_of(node: &NodeId) -> Option<PeerId> {
    PeerId::from_bytes(&node.peer_id_bytes()).ok()
}
