//! Scenario files for `stemma-sim`: any text as TOML. A scenario parses or is
//! refused with a message naming the field; one that parses runs, shrunk to
//! 8 nodes and 10 virtual seconds, without panicking — whatever its latency
//! distributions, loss, partitions, churn or stalls.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stemma_sim::{Scenario, World};

/// Shrinks a run to a size that takes milliseconds.
const SMALL: [&str; 3] = ["nodes=8", "duration=10", "zones=3"];

/// Whether the scenario, shrunk, still finishes quickly: valid scenarios may
/// ask for work no fuzzer can wait for (a probe every microsecond, a million
/// joins), which is slow, not wrong.
fn cheap(s: &Scenario) -> bool {
    let m = &s.membership;
    let periods = [
        m.probe_period_ms,
        m.gossip_every_ms,
        m.announce_every_ms,
        m.probe_rtt_ms,
    ];
    periods.iter().flatten().all(|&ms| ms >= 50.0)
        && m.suspect_to_down_after_ms.is_none_or(|ms| ms >= 50.0)
        && s.sample_interval >= 0.5
        && s.churn.as_ref().is_none_or(|c| c.rate <= 2.0)
        && s.stalls.as_ref().is_none_or(|st| st.every_s.mean() >= 1.0)
        && s.lineage
            .as_ref()
            .is_none_or(|l| l.edits_per_s <= 20.0 && l.sync_interval_s >= 0.5)
        && s.replication.as_ref().is_none_or(|r| r.partitions <= 64)
        && s.events.len() <= 16
        && s.events.iter().all(|e| e.count.is_none_or(|n| n <= 16))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // As written: parsed and checked, or refused.
    let _ = Scenario::parse(text, "fuzz.toml", &[]);
    let small: Vec<String> = SMALL.iter().map(|o| o.to_string()).collect();
    let Ok(scenario) = Scenario::parse(text, "fuzz.toml", &small) else {
        return;
    };
    if cheap(&scenario) {
        let _ = World::new(scenario).run(|_| {});
    }
});
