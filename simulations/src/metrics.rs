//! What a run measures, and the rows of its output files.

use serde::Serialize;

/// Order statistics of a sample (seconds, rounds, …).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Distribution {
    /// How many values.
    pub count: usize,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub median: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Distribution {
    /// The statistics of `values` (any order).
    pub fn of(values: &[f64]) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        Self {
            count: v.len(),
            mean: round6(v.iter().sum::<f64>() / v.len() as f64),
            median: round6(at(0.5)),
            p90: round6(at(0.9)),
            p99: round6(at(0.99)),
            max: round6(v[v.len() - 1]),
        }
    }
}

/// Six decimals: microseconds for times in seconds, and stable text.
pub fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Every figure of a run: `summary.json`'s `metrics`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Metrics {
    /// Virtual seconds simulated.
    pub virtual_seconds: f64,
    /// Nodes that ever ran.
    pub nodes_total: u32,
    /// Nodes alive at the end.
    pub nodes_alive_at_end: u32,
    /// Events handled (messages, timers, scenario steps).
    pub events: u64,
    /// The most events pending at once.
    pub max_pending_events: u64,
    /// Message deliveries handled.
    pub message_events: u64,
    /// Timer firings handled.
    pub timer_events: u64,
    /// Seconds from the last initial node's start until every live node's view
    /// was exact (all live nodes active, no departed one); `None`: never.
    pub initial_convergence_s: Option<f64>,
    /// Each later return to an exact view everywhere, seconds after the
    /// disruption (crash, join, heal…) that ended the previous one.
    pub reconvergence_s: Distribution,
    /// Fraction of sample points at which every view was exact, after the
    /// initial convergence.
    pub converged_time_fraction: f64,
    /// Per crash: seconds until the first live node declared it dead.
    pub detection_first_s: Distribution,
    /// Per crash that every live node declared: seconds until the last did.
    pub detection_all_s: Distribution,
    /// Per (crash, observer): seconds until that observer declared it dead.
    pub detection_observer_s: Distribution,
    /// Crashes that some live node had not declared dead by the end (or that
    /// a restart replaced first).
    pub detection_incomplete: u64,
    /// Per graceful leave: seconds until every live node recorded it.
    pub leave_all_s: Distribution,
    /// Per crash: hops the verdict travelled to reach the farthest node
    /// (0 = every node concluded by itself).
    pub dissemination_rounds: Distribution,
    /// Dead verdicts about a member that was alive (stalled or not) and
    /// reachable.
    pub false_dead: u64,
    /// Dead verdicts about a live member that a partition or cut separated
    /// from the observer.
    pub dead_across_partition: u64,
    /// Members that were declared dead while alive and rejoined.
    pub rejoined: u64,
    /// Suspicions raised / refuted.
    pub suspicions_raised: u64,
    /// Suspicions that ended with the member alive.
    pub suspicions_refuted: u64,
    /// Messages sent / delivered / lost / dropped by partitions / arriving at
    /// a node that was down.
    pub messages_sent: u64,
    /// Delivered to a running (or stalled) node.
    pub messages_delivered: u64,
    /// Lost at random.
    pub messages_lost: u64,
    /// Dropped by a partition or cut.
    pub messages_partitioned: u64,
    /// Arrived at a node that was not running.
    pub messages_to_down_nodes: u64,
    /// Messages refused by a node (bad seal or malformed): always 0 unless the
    /// protocol has a bug.
    pub messages_refused: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Mean over live node-seconds.
    pub messages_per_node_s: f64,
    /// Mean over live node-seconds.
    pub bytes_per_node_s: f64,
    /// The busiest node in the busiest sample interval.
    pub max_messages_per_node_s: f64,
    /// The busiest node in the busiest sample interval.
    pub max_bytes_per_node_s: f64,
    /// Crashes, restarts, leaves, joins, stalls.
    pub crashes: u64,
    /// Restarts.
    pub restarts: u64,
    /// Graceful leaves.
    pub leaves: u64,
    /// Stalls.
    pub stalls: u64,
    /// Lineage figures, when the scenario has a lineage workload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lineage: Option<LineageMetrics>,
    /// Replication figures, when the scenario places data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication: Option<ReplicationMetrics>,
}

/// Replication and repair figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplicationMetrics {
    /// Partitions.
    pub partitions: u32,
    /// Copies wanted of each.
    pub rf: u8,
    /// Layouts computed after the first.
    pub layout_changes: u64,
    /// Partition copies made.
    pub transfers: u64,
    /// Bytes copied by repairs and moves.
    pub repair_bytes: u64,
    /// The same per live node per second.
    pub repair_bytes_per_node_s: f64,
    /// Each time every partition had RF live copies again: seconds since the
    /// first partition fell short.
    pub restore_s: Distribution,
    /// Whether some partition still had fewer than RF live copies at the end.
    pub still_degraded_at_end: bool,
    /// The most partitions short of copies at once.
    pub max_under_replicated: u64,
    /// Σ over samples of partitions short of copies × the interval.
    pub under_replicated_partition_seconds: f64,
    /// Σ over samples of partitions with no live copy × the interval.
    pub unavailable_partition_seconds: f64,
    /// Partitions short of copies at the end.
    pub under_replicated_at_end: u64,
    /// Partitions with no live copy at the end.
    pub unavailable_at_end: u64,
    /// Partitions no node holds any more (not even a crashed one that kept its
    /// data): lost.
    pub lost_partitions: u64,
}

/// Lineage replication figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LineageMetrics {
    /// Edits made.
    pub edits: u64,
    /// Per edit: seconds until every live node had it.
    pub propagation_all_s: Distribution,
    /// Edits that some live node did not have at the end.
    pub not_everywhere_at_end: u64,
    /// Sync messages sent.
    pub sync_messages: u64,
    /// Sync bytes sent.
    pub sync_bytes: u64,
    /// Sync bytes per live node per second.
    pub sync_bytes_per_node_s: f64,
    /// Whether every live node ended with the same graph.
    pub converged_at_end: bool,
}

/// One row of `events.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    /// Virtual seconds.
    pub t: f64,
    /// What (start, crash, restart, leave, pause, resume, partition, heal,
    /// cut, skew, detected_first, detected_all, left_all, false_dead,
    /// rejoined, converged).
    pub kind: &'static str,
    /// The node concerned, if one.
    pub node: Option<u32>,
    /// Details (`key=value` pairs separated by `;`).
    pub detail: String,
}

/// One row of `timeseries.csv`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Virtual seconds.
    pub t: f64,
    /// Running (or stalled) nodes.
    pub live: u32,
    /// Fraction of live nodes whose view is exact.
    pub converged_fraction: f64,
    /// Messages sent per live node per second in the interval.
    pub messages_per_node_s: f64,
    /// Bytes sent per live node per second in the interval.
    pub bytes_per_node_s: f64,
    /// The busiest node's messages per second in the interval.
    pub max_messages_per_node_s: f64,
    /// Messages lost at random in the interval.
    pub lost: u64,
    /// Messages dropped by partitions in the interval.
    pub partitioned: u64,
    /// Suspicions raised in the interval.
    pub suspicions: u64,
    /// Crashes not yet declared by every live node.
    pub open_failures: u64,
    /// False dead verdicts so far.
    pub false_dead: u64,
    /// Lineage edits not yet everywhere (when simulated).
    pub lineage_pending: Option<u64>,
    /// Partitions with fewer than RF live copies (when simulated).
    pub under_replicated: Option<u64>,
    /// Partitions with no live copy (when simulated).
    pub unavailable: Option<u64>,
}

impl Sample {
    /// The CSV header.
    pub const HEADER: &'static str = "t_s,live,converged_fraction,messages_per_node_s,bytes_per_node_s,max_messages_per_node_s,lost,partitioned,suspicions,open_failures,false_dead,lineage_pending,under_replicated,unavailable";

    /// The CSV row.
    pub fn csv(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            round6(self.t),
            self.live,
            round6(self.converged_fraction),
            round6(self.messages_per_node_s),
            round6(self.bytes_per_node_s),
            round6(self.max_messages_per_node_s),
            self.lost,
            self.partitioned,
            self.suspicions,
            self.open_failures,
            self.false_dead,
            opt(self.lineage_pending),
            opt(self.under_replicated),
            opt(self.unavailable)
        )
    }
}

fn opt(x: Option<u64>) -> String {
    x.map(|x| x.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_statistics() {
        let d = Distribution::of(&[5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!(d.count, 5);
        assert_eq!(d.median, 3.0);
        assert_eq!(d.max, 5.0);
        assert_eq!(d.mean, 3.0);
        assert_eq!(Distribution::of(&[]).count, 0);
    }
}
