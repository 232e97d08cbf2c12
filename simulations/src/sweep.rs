//! Sweeps: one scenario run over a grid of parameter values and several
//! seeds, summarised in one table and plotted against the swept parameter.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::output;
use crate::plot::{Series, line_chart};
use crate::scenario::{Scenario, ScenarioError};
use crate::world::World;

/// One swept parameter: a dotted path and its values (as written).
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// E.g. `nodes` or `network.loss`.
    pub path: String,
    /// E.g. `["100", "1000"]`.
    pub values: Vec<String>,
}

impl std::str::FromStr for Param {
    type Err = String;

    /// `path=v1,v2,…`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (path, values) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected PATH=V1,V2,… e.g. nodes=100,1000"))?;
        let values: Vec<String> = values
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        if path.trim().is_empty() || values.is_empty() {
            return Err(format!("{s:?}: expected PATH=V1,V2,… e.g. nodes=100,1000"));
        }
        Ok(Self {
            path: path.trim().into(),
            values,
        })
    }
}

/// One run of a sweep.
#[derive(Debug, Clone)]
pub struct Point {
    /// `(path, value)` for each parameter.
    pub values: Vec<(String, String)>,
    /// The seed.
    pub seed: u64,
}

impl Point {
    /// A directory name for the run.
    pub fn label(&self) -> String {
        let mut parts: Vec<String> = self
            .values
            .iter()
            .map(|(p, v)| format!("{p}={v}"))
            .collect();
        parts.push(format!("seed={}", self.seed));
        parts
            .join("_")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "=._-".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    }
}

/// Every combination of the parameters' values, times each seed.
pub fn grid(params: &[Param], seeds: &[u64]) -> Vec<Point> {
    let mut combos: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for p in params {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                p.values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((p.path.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    combos
        .into_iter()
        .flat_map(|values| {
            seeds.iter().map(move |&seed| Point {
                values: values.clone(),
                seed,
            })
        })
        .collect()
}

/// A run's figures flattened to `dotted.name → number`.
pub fn flatten(value: &serde_json::Value, prefix: &str, out: &mut BTreeMap<String, f64>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(v, &key, out);
            }
        }
        serde_json::Value::Number(n) => {
            if let Some(x) = n.as_f64() {
                out.insert(prefix.to_string(), x);
            }
        }
        serde_json::Value::Bool(b) => {
            out.insert(prefix.to_string(), f64::from(u8::from(*b)));
        }
        _ => {}
    }
}

/// The figures plotted against the swept parameter.
pub const PLOTTED: [&str; 10] = [
    "initial_convergence_s",
    "detection_first_s.median",
    "detection_all_s.median",
    "detection_all_s.max",
    "dissemination_rounds.median",
    "messages_per_node_s",
    "bytes_per_node_s",
    "max_messages_per_node_s",
    "false_dead",
    "lineage.propagation_all_s.median",
];

/// Runs every point (`jobs` at a time, each world on its own thread), writes
/// each run's outputs under `out/runs/`, then `out/sweep.csv` and the plots.
/// `progress` is called after each run with (done, total).
pub fn run(
    base: &Scenario,
    points: &[Point],
    out: &Path,
    jobs: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> anyhow::Result<PathBuf> {
    let scenarios: Vec<Scenario> = points
        .iter()
        .map(|p| scenario_at(base, p))
        .collect::<Result<_, _>>()?;
    let results: Mutex<Vec<Option<BTreeMap<String, f64>>>> = Mutex::new(vec![None; points.len()]);
    let next = Mutex::new(0usize);
    let failed: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let i = {
                        let mut n = next.lock().expect("lock");
                        let i = *n;
                        *n += 1;
                        i
                    };
                    if i >= points.len() || failed.lock().expect("lock").is_some() {
                        return;
                    }
                    let outcome = World::new(scenarios[i].clone()).run(|_| {});
                    let dir = out.join("runs").join(points[i].label());
                    if let Err(e) = output::write(&outcome, &dir) {
                        *failed.lock().expect("lock") =
                            Some(anyhow::anyhow!("writing {}: {e}", dir.display()));
                        return;
                    }
                    let mut figures = BTreeMap::new();
                    let json = serde_json::to_value(&outcome.metrics).expect("metrics serialize");
                    flatten(&json, "", &mut figures);
                    let done = {
                        let mut r = results.lock().expect("lock");
                        r[i] = Some(figures);
                        r.iter().filter(|x| x.is_some()).count()
                    };
                    progress(done, points.len());
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().expect("lock") {
        return Err(e);
    }
    let results: Vec<BTreeMap<String, f64>> = results
        .into_inner()
        .expect("lock")
        .into_iter()
        .map(|r| r.expect("every point ran"))
        .collect();
    let table = out.join("sweep.csv");
    std::fs::write(&table, sweep_csv(points, &results))?;
    plot(points, &results, out)?;
    Ok(table)
}

fn scenario_at(base: &Scenario, point: &Point) -> Result<Scenario, ScenarioError> {
    let text = toml::to_string(base).expect("a scenario serializes");
    let mut overrides: Vec<String> = point
        .values
        .iter()
        .map(|(p, v)| format!("{p}={v}"))
        .collect();
    overrides.push(format!("seed={}", point.seed));
    Scenario::parse(&text, &format!("sweep point {}", point.label()), &overrides)
}

/// The sweep table: one row per run, the parameters, the seed and every figure.
pub fn sweep_csv(points: &[Point], results: &[BTreeMap<String, f64>]) -> String {
    // Every figure any run has (an unset one, like a convergence that never
    // happened, is an empty cell).
    let columns: std::collections::BTreeSet<&String> =
        results.iter().flat_map(|r| r.keys()).collect();
    let mut out = String::new();
    if let Some(p) = points.first() {
        for (path, _) in &p.values {
            out.push_str(path);
            out.push(',');
        }
    }
    out.push_str("seed");
    for c in &columns {
        out.push(',');
        out.push_str(c);
    }
    out.push('\n');
    for (p, r) in points.iter().zip(results) {
        for (_, v) in &p.values {
            out.push_str(v);
            out.push(',');
        }
        out.push_str(&p.seed.to_string());
        for c in &columns {
            out.push(',');
            if let Some(x) = r.get(*c) {
                out.push_str(&x.to_string());
            }
        }
        out.push('\n');
    }
    out
}

/// One plot per figure: the median over seeds against the first parameter,
/// one line per combination of the others.
fn plot(points: &[Point], results: &[BTreeMap<String, f64>], out: &Path) -> std::io::Result<()> {
    let Some(first) = points.first().and_then(|p| p.values.first()) else {
        return Ok(());
    };
    let x_name = first.0.clone();
    for figure in PLOTTED {
        if !results.iter().any(|r| r.contains_key(figure)) {
            continue;
        }
        // (other params) → x → values over seeds
        let mut lines: BTreeMap<String, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
        for (p, r) in points.iter().zip(results) {
            let Some(&y) = r.get(figure) else { continue };
            let others: Vec<String> = p.values[1..]
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            lines
                .entry(others.join(" "))
                .or_default()
                .entry(p.values[0].1.clone())
                .or_default()
                .push(y);
        }
        let series: Vec<Series> = lines
            .into_iter()
            .map(|(label, xs)| {
                let mut pts: Vec<(f64, f64)> = xs
                    .into_iter()
                    .filter_map(|(x, ys)| Some((x.parse::<f64>().ok()?, median(ys))))
                    .collect();
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                let label = if label.is_empty() {
                    "median over seeds".into()
                } else {
                    label
                };
                Series::new(label, pts)
            })
            .collect();
        let file = format!("{}.svg", figure.replace('.', "_"));
        line_chart(&out.join(file), figure, (&x_name, figure), &series)?;
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_is_every_combination_times_every_seed() {
        let params: Vec<Param> = vec![
            "nodes=10,20".parse().unwrap(),
            "network.loss=0,0.05".parse().unwrap(),
        ];
        let points = grid(&params, &[1, 2, 3]);
        assert_eq!(points.len(), 12);
        assert_eq!(points[0].label(), "nodes=10_network.loss=0_seed=1");
        assert!("nodes".parse::<Param>().is_err());
        assert!("nodes=".parse::<Param>().is_err());
    }

    #[test]
    fn figures_flatten_to_dotted_names() {
        let mut out = BTreeMap::new();
        flatten(
            &serde_json::json!({"a": 1, "b": {"c": 2.5, "d": null}, "e": true}),
            "",
            &mut out,
        );
        assert_eq!(out.get("a"), Some(&1.0));
        assert_eq!(out.get("b.c"), Some(&2.5));
        assert_eq!(out.get("e"), Some(&1.0));
        assert!(!out.contains_key("b.d"));
    }
}
