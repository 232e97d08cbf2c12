//! Object replication between nodes: the node side of
//! `stemma_protocol::placement` and `stemma_protocol::replication`.
//!
//! Every node computes the placement layout from its own membership view
//! ([`View::from_members`]: itself and the alive members whose zone is known)
//! with [`Layout::initial`], so nodes that see the same members compute the
//! same layout without agreeing on any history. A client may talk to any node;
//! that node coordinates: it writes each chunk to the owners of the chunk's
//! partition, the manifest to the owners of the object's, and the name's
//! last-writer-wins register (stamped by this node's hybrid logical clock) to
//! the owners of the name's, and acknowledges the put once W owners of every
//! item have stored it durably. Reads go to the owners, nearest first, verify
//! every hash, fall back to the other owners (and, past them, to every live
//! node, since data written under an earlier layout stays where it was put),
//! and write the item back to owners that lacked it or held it corrupt.
//!
//! A cluster of one node (RF = 1) keeps the single-node path: the store's own
//! tables, reference counts and deletes that free space, exactly as before.

mod anti_entropy;
mod coordinator;
mod gc;
mod handoff;
mod scrub;
mod serve;
mod status;
#[cfg(test)]
mod tests;
mod transport;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use libp2p_stream::Control;
use stemma_protocol::membership::NodeId;
use stemma_protocol::names::{Hlc, HlcClock};
use stemma_protocol::placement::{Layout, NodeSpec, PlacementConfig, View};
use stemma_protocol::replication::FillLeases;

use crate::metrics::Metrics;
use crate::p2p::P2pHandle;
use crate::store::{GcClock, Store, StoreError, Writer};

pub(crate) use anti_entropy::run as run_anti_entropy;
pub(crate) use gc::run as run_collector;
pub(crate) use scrub::run as run_scrubber;
pub(crate) use serve::serve;
pub(crate) use transport::PROTOCOL;

/// What a coordinator needs; shared by every request.
pub(crate) struct Replication {
    store: Store,
    writer: Writer,
    p2p: P2pHandle,
    control: Control,
    me: NodeSpec,
    config: PlacementConfig,
    write_quorum: usize,
    /// How long unreferenced data stays (see `gc`).
    gc_grace: std::time::Duration,
    /// How long a name's tombstone stays.
    tombstone_grace: std::time::Duration,
    layouts: Mutex<Layouts>,
    clock: Mutex<HlcClock>,
    /// Which peer fills which partition this node lacks (anti-entropy).
    leases: Mutex<FillLeases>,
    /// The origin of the leases' clock.
    started: std::time::Instant,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Replication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replication")
            .field("me", &self.me)
            .field("config", &self.config)
            .field("write_quorum", &self.write_quorum)
            .finish_non_exhaustive()
    }
}

/// The current layout and the one before it (whose owners may still hold
/// data during a change).
#[derive(Debug, Default)]
struct Layouts {
    current: Option<Arc<Layout>>,
    previous: Option<Arc<Layout>>,
    changes: u64,
}

/// The layouts and live nodes one request works with.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    /// The layout of the current view.
    pub layout: Arc<Layout>,
    /// The layout before the last change, if any.
    pub previous: Option<Arc<Layout>>,
    /// The nodes of the current view (alive, with known zone), this one included.
    pub live: BTreeSet<NodeId>,
    /// How many times this node's layout changed since it started.
    pub changes: u64,
}

impl Snapshot {
    /// Whether this node is alone: the single-node path applies.
    pub fn alone(&self) -> bool {
        self.layout.view().len() <= 1
    }

    /// `items` grouped by the partition of their key (a chunk or object id),
    /// in partition order.
    pub fn by_partition<T>(
        &self,
        items: impl IntoIterator<Item = T>,
        key: impl Fn(&T) -> [u8; 32],
    ) -> std::collections::BTreeMap<stemma_protocol::placement::Partition, Vec<T>> {
        let mut groups = std::collections::BTreeMap::<_, Vec<T>>::new();
        for item in items {
            let partition = self.layout.partitions().of_hash(&key(&item));
            groups.entry(partition).or_default().push(item);
        }
        groups
    }
}

/// Why a replicated operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ReplicationError {
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Fewer than W owners stored an item. Some owners may hold it; the put is
    /// not acknowledged and its name was not written.
    #[error("{what}: only {acked} of the {needed} durable copies needed were written ({why})")]
    Quorum {
        /// The item.
        what: String,
        /// Owners that stored it.
        acked: usize,
        /// W.
        needed: usize,
        /// The last failure seen.
        why: String,
    },
    /// No such name.
    #[error("not found: {0}")]
    NotFound(String),
    /// Every replica reached lacked the item or held it corrupt.
    #[error("{what} could not be read from any replica ({why})")]
    Unavailable {
        /// The item.
        what: String,
        /// What the replicas said.
        why: String,
        /// The chunk, when some replica held it corrupt.
        corrupt: Option<stemma_protocol::ChunkId>,
    },
    /// The layout could not be computed.
    #[error("placement failed: {0}")]
    Placement(String),
}

/// How a [`Replication`] is set up.
pub(crate) struct Settings {
    pub store: Store,
    pub writer: Writer,
    pub p2p: P2pHandle,
    pub control: Control,
    pub me: NodeSpec,
    pub config: PlacementConfig,
    pub write_quorum: usize,
    pub gc_grace: std::time::Duration,
    pub tombstone_grace: std::time::Duration,
    pub metrics: Arc<Metrics>,
}

/// How far ahead of the clock the persisted bound is kept; it is renewed
/// every [`CLOCK_PERSIST_EVERY`], so stamps never pass it between renewals.
const CLOCK_LEAD_MILLIS: u64 = 2_000;
/// How often the clock's bound is persisted.
const CLOCK_PERSIST_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Keeps the clock's persisted bound ahead of its stamps until the task is
/// aborted, so that after a restart — even with the machine's clock set
/// back — no stamp of this node goes below one it made before.
pub(crate) async fn run_clock_keeper(replication: Arc<Replication>) {
    loop {
        if let Err(e) = replication.persist_clock_bound().await {
            tracing::warn!(error = %e, "cannot persist the clock's bound");
        }
        tokio::time::sleep(CLOCK_PERSIST_EVERY).await;
    }
}

impl Replication {
    pub(crate) fn new(s: Settings) -> Arc<Self> {
        let bound = s.store.clock_bound().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read the clock's bound; starting from the wall clock");
            0
        });
        let clock = HlcClock::resume(
            Hlc::new(bound, 0, s.me.id),
            HlcClock::DEFAULT_MAX_DRIFT_MILLIS,
        );
        Arc::new(Self {
            store: s.store,
            writer: s.writer,
            p2p: s.p2p,
            control: s.control,
            me: s.me,
            config: s.config,
            write_quorum: s.write_quorum,
            gc_grace: s.gc_grace,
            tombstone_grace: s.tombstone_grace,
            layouts: Mutex::new(Layouts::default()),
            clock: Mutex::new(clock),
            leases: Mutex::new(FillLeases::new()),
            started: std::time::Instant::now(),
            metrics: s.metrics,
        })
    }

    /// The layout for the current membership view, recomputed only when the
    /// view changed.
    pub(crate) async fn snapshot(&self) -> Result<Snapshot, ReplicationError> {
        let members = self.p2p.members().await;
        let view = View::from_members(self.me.clone(), members.iter().map(|(m, _)| m));
        let mut layouts = self.layouts.lock().expect("layouts lock");
        let stale = layouts
            .current
            .as_ref()
            .is_none_or(|current| *current.view() != view);
        if stale {
            let layout = Layout::initial(&view, self.config)
                .map_err(|e| ReplicationError::Placement(e.to_string()))?;
            tracing::info!(
                nodes = view.len(),
                replication = layout.replication(),
                "placement layout computed for a new view"
            );
            self.metrics.replication.layout_changes.inc();
            let layout = Arc::new(layout);
            let old = layouts.current.replace(layout);
            if old.is_some() {
                layouts.previous = old;
                layouts.changes += 1;
            }
        }
        let layout = layouts.current.clone().expect("set above");
        Ok(Snapshot {
            live: view.nodes().iter().map(|n| n.id).collect(),
            previous: layouts.previous.clone(),
            changes: layouts.changes,
            layout,
        })
    }

    /// Persists a bound ahead of every stamp the clock may make before the
    /// next renewal.
    async fn persist_clock_bound(&self) -> Result<(), StoreError> {
        let last = self.clock.lock().expect("clock lock").last().wall_millis;
        let bound = last.max(crate::clock::unix_millis()) + CLOCK_LEAD_MILLIS;
        self.writer.set_clock_bound(bound).await
    }

    /// A stamp for a local write.
    fn stamp(&self) -> stemma_protocol::names::Hlc {
        self.clock
            .lock()
            .expect("clock lock")
            .now(crate::clock::unix_millis())
    }
}

impl Replication {
    /// The time now and the GC grace, as the store's GC reads take them.
    fn gc_clock(&self) -> GcClock {
        GcClock {
            now_millis: crate::clock::unix_millis(),
            grace_millis: self.gc_grace.as_millis() as u64,
            tombstone_grace_millis: self.tombstone_grace.as_millis() as u64,
        }
    }

    /// W as configured (a write needs `min(W, replicas)` copies).
    pub(crate) fn write_quorum(&self) -> usize {
        self.write_quorum
    }
}

/// Runs a store read on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Storage {
            context: "running a read",
            message: e.to_string(),
        })?
}
