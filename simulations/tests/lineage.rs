//! Lineage edits reach every node through the same Automerge sync the node
//! runs, across a partition that heals.

use stemma_sim::{Scenario, World};

#[test]
fn edits_made_on_both_sides_of_a_partition_reach_every_node() {
    let text = r#"
        nodes = 30
        zones = 2
        duration = 150
        [network]
        loss = 0.02
        [lineage]
        edits_per_s = 1.0
        sync_interval_s = 3
        stop = 110
        [[event]]
        at = 40
        action = "partition"
        sides = [[0], [1]]
        until = 90
    "#;
    let scenario = Scenario::parse(text, "lineage", &[]).unwrap();
    let outcome = World::new(scenario).run(|_| {});
    let l = outcome.metrics.lineage.expect("lineage figures");
    assert!(l.edits >= 60, "{l:?}");
    assert_eq!(
        l.not_everywhere_at_end, 0,
        "every edit is everywhere: {l:?}"
    );
    assert_eq!(l.propagation_all_s.count as u64, l.edits, "{l:?}");
    assert!(l.converged_at_end, "every node ends with the same graph");
    // Edits made during the partition waited for the heal: the slowest took
    // at least until then.
    assert!(l.propagation_all_s.max > 10.0, "{l:?}");
    // The pending count went up during the partition and back to 0.
    let during = outcome.samples.iter().filter(|s| s.t > 60.0 && s.t < 90.0);
    assert!(
        during
            .into_iter()
            .any(|s| s.lineage_pending.unwrap_or(0) > 5)
    );
    assert_eq!(outcome.samples.last().unwrap().lineage_pending, Some(0));
}
