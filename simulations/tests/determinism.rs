//! The same scenario and seed give byte-identical outputs; another seed gives
//! other timings.

use stemma_sim::{Scenario, World, output};

/// Every kind of happening at once, small enough for a test.
const BUSY: &str = r#"
name = "busy"
nodes = 40
zones = 3
duration = 150

[membership]
seeds = 2

[network]
latency_ms = { dist = "lognormal", median = 2.0, sigma = 0.6 }
loss = 0.03
duplicate = 0.01
reorder = 0.02
bandwidth_bytes_per_s = 2000000

[[network.zone_latency]]
from = 0
to = 2
latency_ms = { dist = "normal", mean = 30, stddev = 5 }

[churn]
rate = 0.1
leave_fraction = 0.2
restart_after_s = { dist = "uniform", min = 5, max = 20 }
fresh_fraction = 0.3

[stalls]
fraction = 0.1
every_s = { dist = "exponential", mean = 30 }
duration_s = { dist = "uniform", min = 0, max = 4 }

[lineage]
edits_per_s = 0.5
editors = 5

[[event]]
at = 50
action = "partition"
sides = [[0], [1, 2]]
until = 80

[[event]]
at = 60
action = "skew"
count = 5
offset_ms = { dist = "uniform", min = 0, max = 500 }

[[event]]
at = 90
action = "join"
count = 10
over = 5

[[event]]
at = 100
action = "cut"
from_zones = [1]
to_zones = [2]
until = 110
"#;

fn outputs(seed: u64) -> (String, String, String) {
    let scenario = Scenario::parse(BUSY, "busy", &[format!("seed={seed}")]).unwrap();
    let outcome = World::new(scenario).run(|_| {});
    (
        output::summary_json(&outcome),
        output::timeseries_csv(&outcome),
        output::events_csv(&outcome),
    )
}

#[test]
fn the_same_seed_gives_byte_identical_outputs() {
    let a = outputs(7);
    let b = outputs(7);
    assert_eq!(a.0, b.0, "summary.json differs");
    assert_eq!(a.1, b.1, "timeseries.csv differs");
    assert_eq!(a.2, b.2, "events.csv differs");
    // The run did exercise what it claims to.
    for kind in [
        "crash",
        "restart",
        "partition",
        "heal",
        "cut",
        "skew",
        "pause",
        "resume",
        "detected_all",
    ] {
        assert!(
            a.2.contains(&format!(",{kind},")),
            "no {kind} in events.csv"
        );
    }
}

#[test]
fn another_seed_gives_other_timings() {
    let a = outputs(7);
    let c = outputs(8);
    assert_ne!(a.2, c.2, "events.csv is the same under another seed");
    assert_ne!(a.1, c.1, "timeseries.csv is the same under another seed");
}

#[test]
fn the_files_are_written_where_asked() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = Scenario::parse("nodes = 5\nduration = 20\n", "t", &[]).unwrap();
    let outcome = World::new(scenario).run(|_| {});
    output::write(&outcome, dir.path()).unwrap();
    for file in [
        "summary.json",
        "timeseries.csv",
        "events.csv",
        "convergence.svg",
        "detection_cdf.svg",
        "messages.svg",
    ] {
        assert!(dir.path().join(file).is_file(), "{file} missing");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["seed"], 1);
    assert_eq!(summary["scenario"]["nodes"], 5);
    assert!(
        summary["version"]
            .as_str()
            .unwrap()
            .starts_with("stemma-sim ")
    );
}
