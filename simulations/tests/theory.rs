//! The simulated SWIM behaves as the theory says (Das, Gupta & Motivala 2002):
//! with the same parameters, the time to detect a crash does not grow with the
//! cluster, the verdict spreads in a number of hops that grows like log N, and
//! each member's message load stays constant.
//!
//! Sizes are small here to keep the test quick; `simulations/README.md` has
//! the same experiment from 100 to 10,000 nodes.

use stemma_sim::{Outcome, Scenario, World};

fn run(nodes: u32) -> Outcome {
    // The same SWIM parameters at every size (tuned for 1,000 members), so
    // that only the size changes.
    let text = r#"
        duration = 320
        [membership]
        expected_members = 1000
        [network]
        latency_ms = { dist = "lognormal", median = 1.0, sigma = 0.5 }
        loss = 0.01
        [churn]
        rate = 0.06
        start = 80
        restart_after_s = { dist = "constant", value = 60 }
    "#;
    let scenario =
        Scenario::parse(text, "theory", &[format!("nodes={nodes}"), "seed=3".into()]).unwrap();
    World::new(scenario).run(|_| {})
}

/// Mean messages per node per second once the joins are over.
fn steady_load(o: &Outcome) -> f64 {
    let after: Vec<f64> = o
        .samples
        .iter()
        .filter(|s| s.t > 60.0)
        .map(|s| s.messages_per_node_s)
        .collect();
    after.iter().sum::<f64>() / after.len() as f64
}

#[test]
fn detection_is_flat_dissemination_grows_slowly_and_load_is_constant() {
    let small = run(32);
    let large = run(256);
    let (s, l) = (&small.metrics, &large.metrics);
    assert!(
        s.detection_all_s.count >= 8 && l.detection_all_s.count >= 8,
        "{s:?} {l:?}"
    );
    // Flat: 8× the nodes, not even 1.5× the median time until everyone knows.
    let ratio = l.detection_all_s.median / s.detection_all_s.median;
    assert!(
        ratio < 1.5,
        "detection median {} s at 32 vs {} s at 256",
        s.detection_all_s.median,
        l.detection_all_s.median
    );
    // The first detection does not depend on N at all (each member probes one
    // member per period); allow the noise of a dozen crashes.
    assert!(l.detection_first_s.median < s.detection_first_s.median * 1.5 + 1.0);
    // Dissemination takes more hops in the larger cluster, but only a few more
    // (log N: log2(256) − log2(32) = 3).
    let (rs, rl) = (s.dissemination_rounds.median, l.dissemination_rounds.median);
    assert!(rl >= rs && rl <= rs + 6.0, "rounds {rs} at 32, {rl} at 256");
    // Constant per-node load.
    let (ls, ll) = (steady_load(&small), steady_load(&large));
    assert!(
        (ll / ls) > 0.7 && (ll / ls) < 1.4,
        "messages per node per second: {ls} at 32, {ll} at 256"
    );
    assert_eq!(
        s.false_dead + l.false_dead,
        0,
        "no live member declared dead"
    );
}
