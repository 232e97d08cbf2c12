//! What a run writes into its output directory: `summary.json`,
//! `timeseries.csv`, `events.csv` and the plots.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::metrics::Metrics;
use crate::scenario::Scenario;
use crate::world::Outcome;

/// `summary.json`: everything needed to reproduce and compare a run. It holds
/// nothing that depends on the machine (no wall time), so the same scenario and
/// seed give the same bytes.
#[derive(Debug, Serialize)]
pub struct Summary<'a> {
    /// The simulator's version.
    pub version: &'static str,
    /// The seed.
    pub seed: u64,
    /// The scenario as run, overrides applied.
    pub scenario: &'a Scenario,
    /// Every figure.
    pub metrics: &'a Metrics,
}

/// The simulator's version, as recorded in summaries.
pub const VERSION: &str = concat!("stemma-sim ", env!("CARGO_PKG_VERSION"));

/// Writes the three data files and the plots into `dir` (created if needed).
pub fn write(outcome: &Outcome, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("summary.json"), summary_json(outcome))?;
    std::fs::write(dir.join("timeseries.csv"), timeseries_csv(outcome))?;
    std::fs::write(dir.join("events.csv"), events_csv(outcome))?;
    crate::plot::run_plots(outcome, dir)?;
    Ok(())
}

/// The text of `summary.json`.
pub fn summary_json(outcome: &Outcome) -> String {
    let summary = Summary {
        version: VERSION,
        seed: outcome.scenario.seed,
        scenario: &outcome.scenario,
        metrics: &outcome.metrics,
    };
    let mut text = serde_json::to_string_pretty(&summary).expect("a summary serializes");
    text.push('\n');
    text
}

/// The text of `timeseries.csv`.
pub fn timeseries_csv(outcome: &Outcome) -> String {
    let mut out = String::from(crate::metrics::Sample::HEADER);
    out.push('\n');
    for s in &outcome.samples {
        out.push_str(&s.csv());
        out.push('\n');
    }
    out
}

/// The text of `events.csv`.
pub fn events_csv(outcome: &Outcome) -> String {
    let mut out = String::from("t_s,kind,node,detail\n");
    for e in &outcome.events {
        let node = e.node.map(|n| n.to_string()).unwrap_or_default();
        let _ = writeln!(out, "{},{},{},{}", e.t, e.kind, node, e.detail);
    }
    out
}
