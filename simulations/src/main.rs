//! `stemma-sim`: run simulated Stemma clusters from scenario files.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use stemma_sim::sweep::{self, Param};
use stemma_sim::{Scenario, World, output};

/// Simulate Stemma clusters: thousands of nodes on one core, reproducibly.
///
/// The nodes run the same protocol state machines as `stemma node run`; only
/// the network and the clock are simulated. The same scenario and seed always
/// give the same summary.json, timeseries.csv and events.csv.
///
/// Examples:
///   stemma-sim run simulations/scenarios/churn.toml --out out/churn
///   stemma-sim run simulations/scenarios/steady.toml --nodes 1000 --seed 7
///   stemma-sim sweep simulations/scenarios/steady.toml --param nodes=100,1000 --seeds 3 --out out/sweep
#[derive(Parser, Debug)]
#[command(name = "stemma-sim", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Debug)]
struct Overrides {
    /// The seed (overrides the file's).
    #[arg(long)]
    seed: Option<u64>,
    /// Nodes at the start (overrides the file's).
    #[arg(long)]
    nodes: Option<u32>,
    /// Virtual seconds to simulate (overrides the file's).
    #[arg(long)]
    duration: Option<f64>,
    /// Any other field, by its dotted path (repeatable): `--set network.loss=0.05`.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
}

impl Overrides {
    fn into_list(self) -> Vec<String> {
        let mut list = self.set;
        if let Some(s) = self.seed {
            list.push(format!("seed={s}"));
        }
        if let Some(n) = self.nodes {
            list.push(format!("nodes={n}"));
        }
        if let Some(d) = self.duration {
            list.push(format!("duration={d}"));
        }
        list
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one scenario and write summary.json, timeseries.csv, events.csv and
    /// plots (SVG) into --out.
    Run {
        /// The scenario file (TOML; see simulations/README.md and simulations/scenarios/).
        scenario: PathBuf,
        #[command(flatten)]
        overrides: Overrides,
        /// The output directory (created if needed).
        #[arg(long, default_value = "sim-out")]
        out: PathBuf,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Run a scenario over a grid of parameter values and seeds; write every
    /// run under --out/runs/, one table (sweep.csv) and a plot per figure
    /// against the first parameter.
    Sweep {
        /// The scenario file.
        scenario: PathBuf,
        /// A parameter and its values (repeatable): `--param nodes=100,1000`,
        /// `--param network.loss=0,0.05`. Every combination is run.
        #[arg(long = "param", value_name = "PATH=V1,V2,…", required = true)]
        params: Vec<Param>,
        /// Seeds per combination: the scenario's seed, seed + 1, …
        #[arg(long, default_value_t = 1)]
        seeds: u64,
        #[command(flatten)]
        overrides: Overrides,
        /// The output directory (created if needed).
        #[arg(long, default_value = "sweep-out")]
        out: PathBuf,
        /// Runs at once, each on its own thread (each simulated world stays
        /// single-threaded).
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
}

fn bar(len: u64, quiet: bool, template: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(ProgressStyle::with_template(template).expect("a valid template"));
    bar
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            scenario,
            overrides,
            out,
            quiet,
        } => {
            let scenario = Scenario::load(&scenario, &overrides.into_list())?;
            let progress = bar(
                scenario.duration.ceil() as u64,
                quiet,
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} virtual s ({eta} left)",
            );
            let started = Instant::now();
            let outcome = World::new(scenario.clone()).run(|t| progress.set_position(t as u64));
            let wall = started.elapsed().as_secs_f64();
            progress.finish_and_clear();
            output::write(&outcome, &out).with_context(|| format!("writing {}", out.display()))?;
            let m = &outcome.metrics;
            println!(
                "{}: {} nodes, {} virtual s in {:.2} s wall: {} events ({:.0}/s), {} message events ({:.0}/s)",
                scenario.name,
                m.nodes_total,
                m.virtual_seconds,
                wall,
                m.events,
                m.events as f64 / wall,
                m.message_events,
                m.message_events as f64 / wall
            );
            println!(
                "converged after {}; detection (all nodes) median {} s, max {} s; {} false dead verdicts; {:.2} messages and {:.0} bytes per node per second",
                m.initial_convergence_s
                    .map_or_else(|| "never".to_string(), |s| format!("{s} s")),
                m.detection_all_s.median,
                m.detection_all_s.max,
                m.false_dead,
                m.messages_per_node_s,
                m.bytes_per_node_s
            );
            println!("outputs in {}", out.display());
        }
        Command::Sweep {
            scenario,
            params,
            seeds,
            overrides,
            out,
            jobs,
            quiet,
        } => {
            let base = Scenario::load(&scenario, &overrides.into_list())?;
            let seeds: Vec<u64> = (0..seeds.max(1)).map(|k| base.seed + k).collect();
            let points = sweep::grid(&params, &seeds);
            let progress = bar(
                points.len() as u64,
                quiet,
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} runs",
            );
            let started = Instant::now();
            let table = sweep::run(&base, &points, &out, jobs, &|done, _| {
                progress.set_position(done as u64)
            })?;
            progress.finish_and_clear();
            println!(
                "{} runs in {:.1} s; table in {}, plots in {}",
                points.len(),
                started.elapsed().as_secs_f64(),
                table.display(),
                out.display()
            );
        }
    }
    Ok(())
}
