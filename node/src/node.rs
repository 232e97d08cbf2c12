//! Starting and stopping a node: identity, store, QUIC and HTTP endpoints, and
//! `node.json`, the file that tells scripts the node is ready and how to reach it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use stemma_client::ConnectionString;
use stemma_protocol::membership::ClusterKey;
use stemma_protocol::wire::close_code;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::NodeConfig;
use crate::identity::{Identity, cluster_secret, next_generation, save_generation, write_secret};
use crate::lineage::Lineage;
use crate::lineage::ingest::Ingest;
use crate::lineage::provenance::Recorder;
use crate::metrics::Metrics;
use crate::p2p::{P2p, P2pEvent, P2pSettings};
use crate::replication::Replication;
use crate::server::{self, MAX_IN_FLIGHT, Shared};
use crate::store::Store;
use stemma_protocol::placement::NodeSpec;

/// The file a ready node writes in its data dir (mode 0600: it holds the token).
pub const NODE_FILE: &str = "node.json";

/// How long shutdown waits for requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What `node.json` says: who the node is and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node id (libp2p PeerId of its ed25519 key).
    pub node_id: String,
    /// The QUIC client endpoint.
    pub client_addr: SocketAddr,
    /// The HTTP endpoint.
    pub http_addr: SocketAddr,
    /// What `--node` and `STEMMA_NODE` take.
    pub connection: String,
    /// The node's data dir.
    pub data_dir: PathBuf,
    /// The node's process id.
    pub pid: u32,
    /// Peer-to-peer multiaddrs (each ends in `/p2p/NODE_ID`): what `--join` takes.
    pub p2p_addrs: Vec<String>,
    /// The node's zone.
    pub zone: String,
    /// The software version.
    pub version: String,
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    info: NodeInfo,
    shared: Arc<Shared>,
    endpoint: quinn::Endpoint,
    p2p: P2p,
    accept: JoinHandle<()>,
    http: JoinHandle<()>,
    lineage_sync: JoinHandle<()>,
    provenance: JoinHandle<()>,
    ingest: JoinHandle<()>,
    replica_server: JoinHandle<()>,
    anti_entropy: JoinHandle<()>,
    scrubber: JoinHandle<()>,
    collector: JoinHandle<()>,
    clock_keeper: JoinHandle<()>,
}

impl Node {
    /// Starts a node in the current tokio runtime. When this returns, the node
    /// serves requests and `node.json` is written.
    pub async fn start(config: NodeConfig) -> anyhow::Result<Node> {
        config.validate()?;
        let data_dir = config.data_dir.clone();
        let identity = Identity::load_or_create(&data_dir)?;
        let node_file = data_dir.join(NODE_FILE);
        let _ = std::fs::remove_file(&node_file);
        let store_dir = data_dir.clone();
        let durability = config.durability;
        let (store, writer) =
            tokio::task::spawn_blocking(move || Store::open(&store_dir, durability)).await??;
        let endpoint = server::endpoint(&identity, config.listen)?;
        let http_listener = tokio::net::TcpListener::bind(config.http)
            .await
            .with_context(|| format!("cannot listen on {} (HTTP)", config.http))?;
        let client_addr = reachable(endpoint.local_addr()?);
        let http_addr = reachable(http_listener.local_addr()?);
        let node_id = identity.node_id().to_string();
        let secret = cluster_secret(
            config.cluster_secret.as_deref(),
            config.cluster_secret_file.as_deref(),
            &data_dir,
        )?;
        let generation = next_generation(&data_dir)?;
        let (p2p_events, mut p2p_events_rx) = mpsc::unbounded_channel();
        let p2p = P2p::start(
            identity.keypair.clone(),
            P2pSettings {
                listen: config.p2p_listen()?,
                join: config.join_addrs()?,
                mdns: config.mdns,
                membership: config.membership_config(),
                cluster_key: ClusterKey::from_secret(&secret),
                generation,
                zone: config.zone.clone(),
                capacity: config.capacity,
                client_addr: client_addr.to_string(),
                advertise: config.p2p_advertise,
            },
            p2p_events,
        )
        .await?;
        let generation_dir = data_dir.clone();
        tokio::spawn(async move {
            while let Some(P2pEvent::Rejoined(id)) = p2p_events_rx.recv().await {
                if let Err(e) = save_generation(&generation_dir, id.generation) {
                    tracing::error!(error = %e, "cannot record the new generation");
                }
            }
        });
        let metrics = Arc::new(Metrics::default());
        let mut actor = p2p.me.node.public_key().to_vec();
        actor.extend_from_slice(&generation.to_be_bytes());
        let lineage_dir = data_dir.clone();
        let lineage_metrics = metrics.clone();
        let lineage = tokio::task::spawn_blocking(move || {
            Lineage::open(&lineage_dir, actor, lineage_metrics)
        })
        .await??;
        let lineage_sync = tokio::spawn(crate::lineage::sync::run(
            lineage.clone(),
            p2p.streams.clone(),
            p2p.handle.clone(),
            crate::lineage::sync::Settings {
                interval: Duration::from_secs(config.lineage_sync_seconds.max(1)),
                epoch_ops: config.lineage_epoch_ops,
            },
        ));
        let (provenance, provenance_task) = Recorder::start(lineage.clone());
        let (ingest, ingest_task) = Ingest::start(lineage.clone());
        let replication = Replication::new(crate::replication::Settings {
            store: store.clone(),
            writer: writer.clone(),
            p2p: p2p.handle.clone(),
            control: p2p.streams.clone(),
            me: NodeSpec::new(p2p.me.node, config.zone.clone(), config.capacity),
            config: config.placement()?,
            write_quorum: usize::from(config.write_quorum),
            gc_grace: Duration::from_secs(config.gc_grace_seconds),
            tombstone_grace: Duration::from_secs(config.tombstone_grace_seconds),
            metrics: metrics.clone(),
        });
        let replica_streams = p2p
            .streams
            .clone()
            .accept(crate::replication::PROTOCOL)
            .map_err(|e| anyhow::anyhow!("cannot serve the replica protocol: {e}"))?;
        let replica_server = tokio::spawn(crate::replication::serve(
            replication.clone(),
            replica_streams,
        ));
        let anti_entropy = tokio::spawn(crate::replication::run_anti_entropy(
            replication.clone(),
            Duration::from_secs(config.anti_entropy_seconds.max(1)),
        ));
        let scrubber = tokio::spawn(crate::replication::run_scrubber(
            replication.clone(),
            config.scrub_bytes_per_second,
        ));
        let collector = tokio::spawn(crate::replication::run_collector(replication.clone()));
        let clock_keeper = tokio::spawn(crate::replication::run_clock_keeper(replication.clone()));
        let (stopping, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            store,
            writer,
            metrics,
            token_hash: blake3::hash(identity.token.as_bytes()),
            node_id: node_id.clone(),
            chunk_size: config.chunk_size()?,
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT as usize)),
            stopping,
            p2p: p2p.handle.clone(),
            lineage,
            provenance,
            ingest,
            openlineage_api_key: config.openlineage_api_key.clone(),
            replication,
        });
        let accept = tokio::spawn(server::accept_loop(endpoint.clone(), shared.clone()));
        let mut http_stop = shared.stopping.subscribe();
        let router = crate::http::router(shared.clone(), config.fault_injection);
        let http = tokio::spawn(async move {
            let serve = axum::serve(http_listener, router).with_graceful_shutdown(async move {
                let _ = http_stop.wait_for(|s| *s).await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "HTTP endpoint failed");
            }
        });
        let connection = ConnectionString {
            address: client_addr.to_string(),
            pin: stemma_client::tls::certificate_pin(&identity.cert_der),
            token: identity.token.clone(),
        };
        let info = NodeInfo {
            node_id,
            client_addr,
            http_addr,
            connection: connection.to_string(),
            data_dir: data_dir.clone(),
            pid: std::process::id(),
            p2p_addrs: p2p.listen_addrs.iter().map(|a| a.to_string()).collect(),
            zone: config.zone.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        };
        write_secret(&node_file, serde_json::to_string_pretty(&info)?.as_bytes())?;
        tracing::info!(node_id = %info.node_id, client = %client_addr, http = %http_addr, "node ready");
        Ok(Node {
            info,
            shared,
            endpoint,
            p2p,
            accept,
            http,
            lineage_sync,
            provenance: provenance_task,
            ingest: ingest_task,
            replica_server,
            anti_entropy,
            scrubber,
            collector,
            clock_keeper,
        })
    }

    /// Who the node is and how to reach it (what `node.json` holds).
    pub fn info(&self) -> &NodeInfo {
        &self.info
    }

    /// Stops gracefully: leaves the cluster (others record `left`), refuses new
    /// requests, lets those in flight finish (an upload that does not finish in
    /// time is dropped, never half-stored), closes connections, flushes the store
    /// and removes `node.json`.
    pub async fn shutdown(self) {
        tracing::info!("shutting down");
        let _ = std::fs::remove_file(self.info.data_dir.join(NODE_FILE));
        self.lineage_sync.abort();
        self.p2p.leave().await;
        self.shared.stopping.send_replace(true);
        let running = MAX_IN_FLIGHT as usize - self.shared.in_flight.available_permits();
        tracing::info!(requests = running, "waiting for requests in flight");
        let drained = tokio::time::timeout(
            DRAIN_TIMEOUT,
            self.shared.in_flight.acquire_many(MAX_IN_FLIGHT),
        )
        .await;
        if drained.is_err() {
            tracing::warn!("requests still running after {DRAIN_TIMEOUT:?}; dropping them");
        }
        self.endpoint
            .close(close_code::SHUTTING_DOWN.into(), b"shutting down");
        let _ = tokio::time::timeout(Duration::from_secs(3), self.endpoint.wait_idle()).await;
        let _ = self.accept.await;
        let _ = self.http.await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.shared.provenance.flush()).await;
        self.provenance.abort();
        self.ingest.abort();
        self.replica_server.abort();
        self.anti_entropy.abort();
        self.scrubber.abort();
        self.collector.abort();
        self.clock_keeper.abort();
        self.shared.writer.close().await;
        tracing::info!("stopped");
    }
}

/// The address to tell clients: a wildcard listen address is reached on loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        let ip = if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        };
        SocketAddr::new(ip, addr.port())
    } else {
        addr
    }
}
