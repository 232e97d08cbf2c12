//! A settled start: the cluster begins as if it had joined long ago.

use stemma_sim::{Scenario, World};

#[test]
fn a_settled_start_begins_converged_and_stays_so() {
    let text = r#"
        nodes = 300
        duration = 60
        [membership]
        start = "settled"
    "#;
    let outcome = World::new(Scenario::parse(text, "settled", &[]).unwrap()).run(|_| {});
    let m = &outcome.metrics;
    assert_eq!(m.initial_convergence_s, Some(0.0), "{m:?}");
    assert_eq!(m.converged_time_fraction, 1.0, "{m:?}");
    assert_eq!(m.false_dead, 0);
    let joined = Scenario::parse(text, "joined", &["membership.start=\"join\"".into()]).unwrap();
    let joined = World::new(joined).run(|_| {});
    assert!(joined.metrics.initial_convergence_s.unwrap_or(f64::MAX) > 0.0);
}
