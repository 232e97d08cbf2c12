//! Replication planned by the protocol: copies are restored after crashes, and
//! spreading replicas over zones keeps every partition available when a whole
//! zone goes down.

use stemma_sim::{Scenario, World};

const BASE: &str = r#"
    nodes = 25
    zones = 5
    duration = 200
    [membership]
    start = "settled"
    [replication]
    partitions = 64
    rf = 3
    data_bytes = 64e9        # 1 GB per partition
    repair_bytes_per_s = 1e8 # 10 s per copy
"#;

#[test]
fn copies_lost_with_crashed_nodes_are_restored() {
    let scenario = Scenario::parse(
        &format!("{BASE}\n[[event]]\nat = 20\naction = \"crash\"\nnodes = [3, 11]\n"),
        "crash",
        &[],
    )
    .unwrap();
    let outcome = World::new(scenario).run(|_| {});
    let r = outcome.metrics.replication.expect("replication figures");
    assert!(
        r.max_under_replicated > 0,
        "the crash left partitions short: {r:?}"
    );
    assert!(
        r.transfers > 0 && r.repair_bytes == r.transfers * 1_000_000_000,
        "{r:?}"
    );
    assert_eq!(
        r.under_replicated_at_end, 0,
        "every partition has 3 live copies again: {r:?}"
    );
    assert!(!r.still_degraded_at_end);
    assert_eq!(r.restore_s.count, 1, "{r:?}");
    // Detection (~15 s) and then the copies (10 s each, queued per node).
    assert!(r.restore_s.max > 10.0, "{r:?}");
    assert_eq!(
        r.unavailable_partition_seconds, 0.0,
        "two crashes never take 3 copies"
    );
    assert_eq!(r.lost_partitions, 0);
    let under: Vec<u64> = outcome
        .samples
        .iter()
        .map(|s| s.under_replicated.unwrap())
        .collect();
    assert_eq!(under[5], 0, "before the crash");
    assert!(under[25] > 0, "after it");
    assert_eq!(*under.last().unwrap(), 0, "at the end");
}

#[test]
fn a_zone_outage_leaves_every_partition_available() {
    let scenario = Scenario::parse(
        &format!("{BASE}\n[[event]]\nat = 20\naction = \"crash\"\nzone = 2\n"),
        "zone",
        &[],
    )
    .unwrap();
    let r = World::new(scenario)
        .run(|_| {})
        .metrics
        .replication
        .unwrap();
    assert!(r.max_under_replicated > 0, "{r:?}");
    assert_eq!(
        r.unavailable_partition_seconds, 0.0,
        "replicas are in distinct zones: {r:?}"
    );
    assert_eq!(r.lost_partitions, 0);
}

#[test]
fn losing_every_copy_is_counted_as_loss() {
    // One zone: nothing spreads the copies, and crashing most nodes for good,
    // at once, takes every copy of some partitions.
    let scenario = Scenario::parse(
        &format!("{BASE}\n[[event]]\nat = 20\naction = \"crash\"\ncount = 20\n"),
        "loss",
        &["zones=1".into()],
    )
    .unwrap();
    let r = World::new(scenario)
        .run(|_| {})
        .metrics
        .replication
        .unwrap();
    assert!(r.unavailable_at_end > 0, "{r:?}");
    // Crashed nodes kept their disks: unavailable, not lost.
    assert_eq!(r.lost_partitions, 0, "{r:?}");
}
