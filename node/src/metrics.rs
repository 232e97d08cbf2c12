//! Prometheus metrics, served as text at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use std::sync::Mutex;

use stemma_protocol::membership::{MemberState, MembershipStats};

use crate::store::StoreStats;

/// A member state label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// alive, suspect, dead, left.
    pub state: String,
}

/// What membership contributes to a scrape.
#[derive(Debug, Clone, Default)]
pub struct MembershipSnapshot {
    /// Counters since start.
    pub stats: MembershipStats,
    /// Members (this node included) by state.
    pub states: Vec<MemberState>,
}

/// Membership counters, advanced by the difference between two snapshots.
#[derive(Debug, Default)]
struct MembershipCounters {
    last: Mutex<MembershipStats>,
    messages_sent: Counter,
    bytes_sent: Counter,
    messages_received: Counter,
    bytes_received: Counter,
    messages_rejected: Counter,
    probes_failed: Counter,
    suspicions_raised: Counter,
    suspicions_refuted: Counter,
}

/// Lineage figures: set and advanced by the lineage service directly.
#[derive(Debug)]
pub struct LineageMetrics {
    /// Seconds from an OpenLineage event's `eventTime` until it is in this
    /// node's graph (timeliness of capture).
    pub event_delay: Histogram,
    /// Seconds from an edit made on another node (by its clock) until it is
    /// in this node's graph: how late edits arrive by sync.
    pub sync_delay: Histogram,
    /// OpenLineage events applied together in one group (one change, one
    /// log write): larger groups spread those fixed costs.
    pub ingest_group_events: Histogram,
    /// Edits applied on this node (operations).
    pub edits: Counter,
    /// Sync sessions run with peers (either side).
    pub sync_sessions: Counter,
    /// Sync sessions that failed.
    pub sync_errors: Counter,
    /// Sync messages sent.
    pub sync_messages_sent: Counter,
    /// Sync messages received.
    pub sync_messages_received: Counter,
    /// Sync bytes sent.
    pub sync_sent_bytes: Counter,
    /// Sync bytes received.
    pub sync_received_bytes: Counter,
    /// Bytes of all lineage documents on disk (snapshots and logs).
    pub document_bytes: Gauge,
    /// Changes in the documents' histories.
    pub changes: Gauge,
    /// Entities in the graphs.
    pub entities: Gauge,
    /// Edges in the graphs.
    pub edges: Gauge,
    /// The highest epoch among the graphs.
    pub epoch: Gauge,
    /// Moves of a graph to a new epoch (cut here or adopted from a peer).
    pub epochs: Counter,
}

impl Default for LineageMetrics {
    fn default() -> Self {
        Self {
            // 10 ms … ~3 h: live emitters are sub-second, replays are hours late.
            event_delay: Histogram::new(exponential_buckets(0.01, 4.0, 12)),
            sync_delay: Histogram::new(exponential_buckets(0.01, 4.0, 12)),
            // 1 … 1024 (a group's limit).
            ingest_group_events: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            edits: Counter::default(),
            sync_sessions: Counter::default(),
            sync_errors: Counter::default(),
            sync_messages_sent: Counter::default(),
            sync_messages_received: Counter::default(),
            sync_sent_bytes: Counter::default(),
            sync_received_bytes: Counter::default(),
            document_bytes: Gauge::default(),
            changes: Gauge::default(),
            entities: Gauge::default(),
            edges: Gauge::default(),
            epoch: Gauge::default(),
            epochs: Counter::default(),
        }
    }
}

/// Replication figures, advanced by the coordinator and the replica server.
#[derive(Debug, Default)]
pub struct ReplicationMetrics {
    /// Replica writes acknowledged by a replica (chunks, manifests, names).
    pub replica_writes: Counter,
    /// Replica requests that failed or timed out, as the coordinator saw them.
    pub replica_errors: Counter,
    /// Chunks received from a peer whose bytes did not match their id: refused,
    /// never stored.
    pub refused_chunks: Counter,
    /// Requests from peers refused for any reason (bad input, not a member).
    pub refused_requests: Counter,
    /// Copies found corrupt or missing by a read, on this node or a replica.
    pub read_misses: Counter,
    /// Copies written back to a replica that lacked them or held them corrupt.
    pub read_repairs: Counter,
    /// Layouts computed (a new one each time the view changes).
    pub layout_changes: Counter,
    /// Anti-entropy rounds completed (every live peer offered every kind).
    pub anti_entropy_rounds: Counter,
    /// Items pushed by anti-entropy to owners that lacked them (or, for names,
    /// held another register): re-replication, rebalancing and catch-up.
    pub repairs: Counter,
    /// Chunk bytes pushed by anti-entropy.
    pub repair_bytes: Counter,
    /// Partitions whose digests differed from a peer's in the last round.
    pub partitions_out_of_sync: Gauge,
    /// Chunks the scrubber re-hashed.
    pub scrubbed_chunks: Counter,
    /// Bytes the scrubber re-hashed.
    pub scrubbed_bytes: Counter,
    /// Chunks the scrubber found not matching their id.
    pub scrub_corrupt: Counter,
    /// Corrupt chunks the scrubber replaced with a good copy from a replica.
    pub scrub_repaired: Counter,
    /// Replicated chunks the garbage collector dropped.
    pub gc_chunks: Counter,
    /// Their bytes.
    pub gc_bytes: Counter,
    /// Replicated manifests the garbage collector dropped.
    pub gc_manifests: Counter,
    /// Name tombstones dropped after the tombstone grace.
    pub gc_tombstones: Counter,
    /// Chunks of partitions this node does not own, dropped once every owner
    /// held them (hand-off after a move).
    pub handoff_chunks: Counter,
    /// Their bytes.
    pub handoff_bytes: Counter,
    /// Manifests handed off the same way.
    pub handoff_manifests: Counter,
    /// Versions seen beaten whose references are not yet marked dead on
    /// their targets' owners.
    pub gc_pending_versions: Gauge,
    /// Versions whose manifest this node owns and whose name it has yet to
    /// find on a name owner.
    pub gc_unconfirmed_versions: Gauge,
    /// Versions found never named (a put that failed after its references
    /// were written), or beaten: their references are marked dead.
    pub gc_orphaned_versions: Counter,
}

/// A request kind label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// put, get, head, list, delete, handshake.
    pub kind: String,
}

/// A request kind and error label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabel {
    /// The request kind.
    pub kind: String,
    /// not_found, unauthorized, corrupt, invalid_name, bad_request, protocol, internal…
    pub error: String,
}

/// The node's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    objects: Gauge,
    chunks: Gauge,
    stored_bytes: Gauge,
    requests: Family<KindLabel, Counter>,
    errors: Family<ErrorLabel, Counter>,
    /// Object bytes received from clients.
    pub bytes_received: Counter,
    /// Object bytes sent to clients.
    pub bytes_sent: Counter,
    /// Client connections accepted (before authentication).
    pub connections: Counter,
    members: Family<StateLabel, Gauge>,
    membership: MembershipCounters,
    /// The lineage graphs and their replication.
    pub lineage: LineageMetrics,
    /// Object replication between nodes.
    pub replication: ReplicationMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("stemma");
        let m = Metrics {
            objects: Gauge::default(),
            chunks: Gauge::default(),
            stored_bytes: Gauge::default(),
            requests: Family::default(),
            errors: Family::default(),
            bytes_received: Counter::default(),
            bytes_sent: Counter::default(),
            connections: Counter::default(),
            members: Family::default(),
            membership: MembershipCounters::default(),
            lineage: LineageMetrics::default(),
            replication: ReplicationMetrics::default(),
            registry: Registry::default(),
        };
        registry.register(
            "members",
            "Cluster members by state, as this node sees them",
            m.members.clone(),
        );
        let c = &m.membership;
        for (name, help, counter) in [
            (
                "membership_messages_sent",
                "Membership messages sent",
                &c.messages_sent,
            ),
            (
                "membership_sent_bytes",
                "Membership bytes sent",
                &c.bytes_sent,
            ),
            (
                "membership_messages_received",
                "Membership messages received and accepted",
                &c.messages_received,
            ),
            (
                "membership_received_bytes",
                "Membership bytes received and accepted",
                &c.bytes_received,
            ),
            (
                "membership_messages_rejected",
                "Membership messages dropped: wrong cluster secret or sender",
                &c.messages_rejected,
            ),
            (
                "membership_probes_failed",
                "Probes that got no answer, direct or indirect",
                &c.probes_failed,
            ),
            (
                "membership_suspicions_raised",
                "Suspicions started by this node",
                &c.suspicions_raised,
            ),
            (
                "membership_suspicions_refuted",
                "Suspicions that ended with the member alive",
                &c.suspicions_refuted,
            ),
        ] {
            registry.register(name, help, counter.clone());
        }
        let l = &m.lineage;
        for (name, help, counter) in [
            (
                "lineage_edits",
                "Lineage operations applied on this node",
                &l.edits,
            ),
            (
                "lineage_sync_sessions",
                "Lineage sync sessions with peers",
                &l.sync_sessions,
            ),
            (
                "lineage_sync_errors",
                "Lineage sync sessions that failed",
                &l.sync_errors,
            ),
            (
                "lineage_sync_messages_sent",
                "Lineage sync messages sent",
                &l.sync_messages_sent,
            ),
            (
                "lineage_sync_messages_received",
                "Lineage sync messages received",
                &l.sync_messages_received,
            ),
            (
                "lineage_sync_sent_bytes",
                "Lineage sync bytes sent",
                &l.sync_sent_bytes,
            ),
            (
                "lineage_sync_received_bytes",
                "Lineage sync bytes received",
                &l.sync_received_bytes,
            ),
            (
                "lineage_epochs",
                "Moves of a lineage graph to a new epoch (cut here or adopted)",
                &l.epochs,
            ),
        ] {
            registry.register(name, help, counter.clone());
        }
        for (name, help, gauge) in [
            (
                "lineage_document_bytes",
                "Bytes of the lineage documents on disk (snapshots and logs)",
                &l.document_bytes,
            ),
            (
                "lineage_changes",
                "Changes in the lineage documents' histories",
                &l.changes,
            ),
            (
                "lineage_entities",
                "Entities in the lineage graphs",
                &l.entities,
            ),
            ("lineage_edges", "Edges in the lineage graphs", &l.edges),
            (
                "lineage_epoch",
                "The highest epoch among the lineage graphs",
                &l.epoch,
            ),
        ] {
            registry.register(name, help, gauge.clone());
        }
        for (name, help, histogram) in [
            (
                "lineage_event_delay_seconds",
                "Seconds from an OpenLineage event's eventTime until it is in this node's graph",
                &l.event_delay,
            ),
            (
                "lineage_sync_delay_seconds",
                "Seconds from an edit made on another node (by its clock) until it is in this node's graph",
                &l.sync_delay,
            ),
            (
                "lineage_ingest_group_events",
                "OpenLineage events applied together in one group (one change and one log write)",
                &l.ingest_group_events,
            ),
        ] {
            registry.register(name, help, histogram.clone());
        }
        let r = &m.replication;
        for (name, help, counter) in [
            (
                "replication_writes",
                "Replica writes acknowledged by replicas (chunks, manifests, names)",
                &r.replica_writes,
            ),
            (
                "replication_errors",
                "Replica requests that failed or timed out",
                &r.replica_errors,
            ),
            (
                "replication_refused_chunks",
                "Chunks from peers refused because their bytes did not match their id",
                &r.refused_chunks,
            ),
            (
                "replication_refused_requests",
                "Replica requests from peers refused (bad input, not a member)",
                &r.refused_requests,
            ),
            (
                "replication_read_misses",
                "Copies a read found missing or corrupt on a replica",
                &r.read_misses,
            ),
            (
                "replication_read_repairs",
                "Copies written back to replicas that lacked them or held them corrupt",
                &r.read_repairs,
            ),
            (
                "replication_layout_changes",
                "Placement layouts computed (one per change of the view)",
                &r.layout_changes,
            ),
            (
                "replication_anti_entropy_rounds",
                "Anti-entropy rounds completed",
                &r.anti_entropy_rounds,
            ),
            (
                "replication_repairs",
                "Items pushed by anti-entropy to owners that lacked them",
                &r.repairs,
            ),
            (
                "replication_repair_bytes",
                "Chunk bytes pushed by anti-entropy",
                &r.repair_bytes,
            ),
            (
                "scrub_chunks",
                "Chunks re-hashed by the scrubber",
                &r.scrubbed_chunks,
            ),
            (
                "scrub_bytes",
                "Bytes re-hashed by the scrubber",
                &r.scrubbed_bytes,
            ),
            (
                "scrub_corrupt",
                "Chunks the scrubber found not matching their id",
                &r.scrub_corrupt,
            ),
            (
                "scrub_repaired",
                "Corrupt chunks the scrubber replaced from a replica",
                &r.scrub_repaired,
            ),
            (
                "gc_chunks",
                "Replicated chunks dropped by the garbage collector",
                &r.gc_chunks,
            ),
            (
                "gc_bytes",
                "Chunk bytes dropped by the garbage collector",
                &r.gc_bytes,
            ),
            (
                "gc_manifests",
                "Replicated manifests dropped by the garbage collector",
                &r.gc_manifests,
            ),
            (
                "gc_tombstones",
                "Name tombstones dropped after the tombstone grace",
                &r.gc_tombstones,
            ),
            (
                "replication_handoff_chunks",
                "Chunks of partitions this node does not own, dropped once every owner held them",
                &r.handoff_chunks,
            ),
            (
                "replication_handoff_bytes",
                "Chunk bytes dropped by hand-off",
                &r.handoff_bytes,
            ),
            (
                "replication_handoff_manifests",
                "Manifests of partitions this node does not own, dropped once every owner held them",
                &r.handoff_manifests,
            ),
        ] {
            registry.register(name, help, counter.clone());
        }
        registry.register(
            "replication_partitions_out_of_sync",
            "Partition digests that differed from a peer's in the last anti-entropy round",
            r.partitions_out_of_sync.clone(),
        );
        registry.register(
            "gc_pending_versions",
            "Beaten versions whose references are not yet marked dead on their owners",
            r.gc_pending_versions.clone(),
        );
        registry.register(
            "gc_unconfirmed_versions",
            "Versions whose manifest this node owns and whose name it has not yet found on a name owner",
            r.gc_unconfirmed_versions.clone(),
        );
        registry.register(
            "gc_orphaned_versions",
            "Versions whose name no owner held a grace after their put (it failed): their references are marked dead",
            r.gc_orphaned_versions.clone(),
        );
        registry.register("objects", "Objects (names) stored", m.objects.clone());
        registry.register("chunks", "Distinct chunks stored", m.chunks.clone());
        registry.register(
            "stored_bytes",
            "Bytes of chunk data stored, after deduplication",
            m.stored_bytes.clone(),
        );
        registry.register("requests", "Client requests by kind", m.requests.clone());
        registry.register(
            "request_errors",
            "Failed client requests by kind and error",
            m.errors.clone(),
        );
        registry.register(
            "received_bytes",
            "Object bytes received from clients",
            m.bytes_received.clone(),
        );
        registry.register(
            "sent_bytes",
            "Object bytes sent to clients",
            m.bytes_sent.clone(),
        );
        registry.register(
            "client_connections",
            "Client connections accepted",
            m.connections.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// Counts a request.
    pub fn request(&self, kind: &str) {
        self.requests
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    /// Counts a failed request.
    pub fn error(&self, kind: &str, error: &str) {
        self.errors
            .get_or_create(&ErrorLabel {
                kind: kind.into(),
                error: error.into(),
            })
            .inc();
    }

    /// The exposition text, with the store gauges set from `stats` and the
    /// membership figures from `membership`.
    pub fn render(&self, stats: StoreStats, membership: &MembershipSnapshot) -> String {
        for state in [
            MemberState::Alive,
            MemberState::Suspect,
            MemberState::Dead,
            MemberState::Left,
        ] {
            let n = membership.states.iter().filter(|s| **s == state).count();
            let label = StateLabel {
                state: format!("{state:?}").to_lowercase(),
            };
            self.members.get_or_create(&label).set(n as i64);
        }
        self.membership.advance(membership.stats);
        self.objects.set(stats.objects as i64);
        self.chunks.set(stats.chunks as i64);
        self.stored_bytes.set(stats.chunk_bytes as i64);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

impl MembershipCounters {
    fn advance(&self, now: MembershipStats) {
        let mut last = self.last.lock().expect("metrics lock");
        let step = |c: &Counter, new: u64, old: u64| {
            c.inc_by(new.saturating_sub(old));
        };
        step(&self.messages_sent, now.messages_sent, last.messages_sent);
        step(&self.bytes_sent, now.bytes_sent, last.bytes_sent);
        step(
            &self.messages_received,
            now.messages_received,
            last.messages_received,
        );
        step(
            &self.bytes_received,
            now.bytes_received,
            last.bytes_received,
        );
        step(
            &self.messages_rejected,
            now.messages_rejected,
            last.messages_rejected,
        );
        step(&self.probes_failed, now.probes_failed, last.probes_failed);
        step(
            &self.suspicions_raised,
            now.suspicions_raised,
            last.suspicions_raised,
        );
        step(
            &self.suspicions_refuted,
            now.suspicions_refuted,
            last.suspicions_refuted,
        );
        *last = now;
    }
}
