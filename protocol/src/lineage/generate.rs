//! A generator of warehouse-like lineage graphs, for benchmarks, tests and the
//! simulator.
//!
//! The shape follows a typical warehouse: source systems feed source tables;
//! jobs read them and load staging tables, which are cleaned into marts; marts
//! feed metrics and reports, reports feed dashboards, dashboards are used by
//! departments. About half of the entities are columns, linked column to
//! column across layers (most of the edges are column-level, as in real
//! lineage). About 1% of the entities are legacy tables with no lineage
//! (islands). Security levels mostly rise or stay along the flow, with a few
//! downgrades for the audit to find; a few names break the snake_case
//! convention; about 4% of job runs failed. Everything is derived from the
//! seed: the same seed gives the same graph on every machine.

use std::collections::HashSet;

use super::document::LineageDoc;
use super::edit::Op;
use super::error::EditError;
use super::model::{
    Attributes, EdgeKind, EdgeSpec, EntityId, EntityKind, Millis, NewEntity, RunState, RunStatus,
};

/// A small, fast, seedable generator (SplitMix64). Good enough for test data;
/// not for anything secret.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 11) as u128 * n as u128) >> 53) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// A generated graph: entities, edges and runs, ready to apply.
#[derive(Debug, Clone, Default)]
pub struct Warehouse {
    /// Entities, in creation order (tables before their columns).
    pub entities: Vec<NewEntity>,
    /// Edges `(source, target, definition)`.
    pub edges: Vec<(EntityId, EntityId, EdgeSpec)>,
    /// Last runs of jobs.
    pub runs: Vec<(EntityId, RunState)>,
    /// Last runs of job → table edges.
    pub edge_runs: Vec<(EntityId, EntityId, RunState)>,
}

impl Warehouse {
    /// Every operation: entities, then edges, then runs.
    pub fn ops(&self) -> Vec<Op> {
        let mut ops: Vec<Op> = self.entities.iter().cloned().map(Op::Upsert).collect();
        ops.extend(self.edges.iter().map(|(s, t, spec)| Op::Link {
            source: s.clone(),
            target: t.clone(),
            spec: spec.clone(),
        }));
        ops.extend(self.runs.iter().map(|(id, run)| Op::SetRun {
            id: id.clone(),
            run: run.clone(),
        }));
        ops.extend(self.edge_runs.iter().map(|(s, t, run)| Op::SetEdgeRun {
            source: s.clone(),
            target: t.clone(),
            run: run.clone(),
        }));
        ops
    }

    /// Applies every operation to `doc`, `batch` operations per change.
    /// Returns the number of changes made.
    pub fn apply(
        &self,
        doc: &mut LineageDoc,
        batch: usize,
        now: Millis,
    ) -> Result<usize, EditError> {
        let ops = self.ops();
        let mut changes = 0;
        for chunk in ops.chunks(batch.max(1)) {
            doc.apply(now, chunk)?;
            changes += 1;
        }
        Ok(changes)
    }
}

/// Start entities for timing queries on a generated graph, drawn from the
/// seed: two tools timed with the same seed and sample count get the same
/// starts, in the same order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Starts {
    /// Any entity (with replacement).
    pub random: Vec<EntityId>,
    /// Systems and source tables: the largest downstream.
    pub sources: Vec<EntityId>,
    /// Reports and dashboards: the largest upstream.
    pub sinks: Vec<EntityId>,
}

impl Warehouse {
    /// `samples` starts of each sort, drawn from `seed`.
    pub fn starts(&self, seed: u64, samples: usize) -> Starts {
        let ids: Vec<&EntityId> = self.entities.iter().map(|e| &e.id).collect();
        let mut rng = SplitMix64::new(seed ^ 0x5EED);
        let mut draw = |from: &[&EntityId]| -> Vec<EntityId> {
            if from.is_empty() {
                return Vec::new();
            }
            (0..samples)
                .map(|_| from[rng.below(from.len())].clone())
                .collect()
        };
        let random = draw(&ids);
        let of = |prefixes: &[&str]| -> Vec<&EntityId> {
            ids.iter()
                .copied()
                .filter(|i| prefixes.iter().any(|p| i.as_str().starts_with(p)))
                .collect()
        };
        let sources = draw(&of(&["system:", "table:src_"]));
        let sinks = draw(&of(&["dashboard:", "report:"]));
        Starts {
            random,
            sources,
            sinks,
        }
    }
}

struct Builder {
    rng: SplitMix64,
    wh: Warehouse,
    levels: Vec<Option<i64>>,
    edge_set: HashSet<(usize, usize)>,
    ids: Vec<EntityId>,
    max_edges: usize,
}

impl Builder {
    fn add(&mut self, kind: EntityKind, name: String, attrs: Attributes) -> usize {
        let id = EntityId::new(&kind, &name)
            .unwrap_or_else(|_| EntityId::new(&kind, "unnamed").expect("valid"));
        self.levels.push(attrs.level);
        self.ids.push(id.clone());
        self.wh.entities.push(NewEntity {
            id,
            name,
            attributes: attrs,
        });
        self.ids.len() - 1
    }

    fn link(&mut self, s: usize, t: usize, kind: EdgeKind, rule: Option<String>) -> bool {
        if s == t || self.wh.edges.len() >= self.max_edges || !self.edge_set.insert((s, t)) {
            return false;
        }
        let spec = EdgeSpec {
            kind,
            rule,
            volume: Some(1000 + (self.rng.next_u64() % 1_000_000)),
            frequency: Some(["hourly", "daily", "weekly"][self.rng.below(3)].into()),
            ..EdgeSpec::default()
        };
        self.wh
            .edges
            .push((self.ids[s].clone(), self.ids[t].clone(), spec));
        true
    }

    /// A level for something fed by `inputs`: usually the highest input level,
    /// sometimes one lower (a finding), sometimes unset.
    fn level_from(&mut self, inputs: &[usize]) -> Option<i64> {
        let top = inputs
            .iter()
            .filter_map(|&i| self.levels[i])
            .max()
            .unwrap_or(1);
        if self.rng.chance(0.1) {
            None
        } else if self.rng.chance(0.02) {
            Some(top - 1)
        } else {
            Some(top)
        }
    }

    fn attrs(&mut self, owner: &str, level: Option<i64>) -> Attributes {
        Attributes {
            owner: Some(owner.into()),
            level,
            ..Attributes::default()
        }
    }

    fn pick(&mut self, from: &[usize]) -> usize {
        from[self.rng.below(from.len())]
    }
}

fn share(total: usize, per_mille: usize) -> usize {
    (total * per_mille / 1000).max(1)
}

/// Generates a warehouse of exactly `entities` entities (at least 20) and up to
/// `edges` edges (exactly `edges` when the graph can hold them: column edges
/// fill what the table-level structure leaves).
pub fn warehouse(seed: u64, entities: usize, edges: usize) -> Warehouse {
    let entities = entities.max(20);
    let mut b = Builder {
        rng: SplitMix64::new(seed),
        wh: Warehouse::default(),
        levels: Vec::new(),
        edge_set: HashSet::new(),
        ids: Vec::new(),
        max_edges: edges,
    };
    let n_dept = share(entities, 2);
    let n_sys = share(entities, 3);
    let n_src = share(entities, 100);
    let n_stg = share(entities, 90);
    let n_mart = share(entities, 70);
    let n_job = share(entities, 50);
    let n_metric = share(entities, 25);
    let n_report = share(entities, 25);
    let n_dash = share(entities, 15);
    let n_legacy = share(entities, 10);
    let fixed =
        n_dept + n_sys + n_src + n_stg + n_mart + n_job + n_metric + n_report + n_dash + n_legacy;
    let n_col = entities.saturating_sub(fixed);

    let depts: Vec<usize> = (0..n_dept)
        .map(|i| {
            let a = Attributes::default();
            b.add(EntityKind::Department, format!("dept_{i}"), a)
        })
        .collect();
    let owner_of = |b: &mut Builder| format!("dept_{}", b.rng.below(n_dept));
    let systems: Vec<usize> = (0..n_sys)
        .map(|i| {
            let owner = owner_of(&mut b);
            let a = b.attrs(&owner, Some(2 + (i % 2) as i64));
            b.add(EntityKind::System, format!("sys_{i}"), a)
        })
        .collect();
    let mut tables_src = Vec::new();
    for i in 0..n_src {
        let sys_no = b.rng.below(systems.len());
        let sys = systems[sys_no];
        let owner = owner_of(&mut b);
        let level = b.levels[sys];
        let mut a = b.attrs(&owner, level);
        if b.rng.chance(0.05) {
            a.tags.insert("pii".into());
        }
        a.description = Some(format!("raw extract {i} from {}", b.ids[sys].name()));
        let t = b.add(EntityKind::Table, format!("src_{sys_no}.table_{i}"), a);
        tables_src.push(t);
    }
    let layer_tables = |b: &mut Builder, n: usize, prefix: &str| -> Vec<usize> {
        (0..n)
            .map(|i| {
                let owner = owner_of(b);
                let a = b.attrs(&owner, None);
                // About 1% break the snake_case convention.
                let name = if b.rng.chance(0.01) {
                    format!("{prefix}.Table{i}")
                } else {
                    format!("{prefix}.table_{i}")
                };
                b.add(EntityKind::Table, name, a)
            })
            .collect()
    };
    let tables_stg = layer_tables(&mut b, n_stg, "stg");
    let tables_mart = layer_tables(&mut b, n_mart, "mart");
    let jobs: Vec<usize> = (0..n_job)
        .map(|i| {
            let owner = owner_of(&mut b);
            let a = b.attrs(&owner, None);
            b.add(EntityKind::Job, format!("job_{i}"), a)
        })
        .collect();
    let metrics: Vec<usize> = (0..n_metric)
        .map(|i| {
            let owner = owner_of(&mut b);
            let a = b.attrs(&owner, None);
            b.add(EntityKind::Metric, format!("metric_{i}"), a)
        })
        .collect();
    let reports: Vec<usize> = (0..n_report)
        .map(|i| {
            let owner = owner_of(&mut b);
            let a = b.attrs(&owner, None);
            b.add(EntityKind::Report, format!("Report {i}"), a)
        })
        .collect();
    let dashboards: Vec<usize> = (0..n_dash)
        .map(|i| {
            let owner = owner_of(&mut b);
            let a = b.attrs(&owner, None);
            b.add(EntityKind::Dashboard, format!("dashboard_{i}"), a)
        })
        .collect();
    for i in 0..n_legacy {
        let owner = owner_of(&mut b);
        let a = b.attrs(&owner, Some(1));
        b.add(EntityKind::Table, format!("legacy.old_{i}"), a);
    }

    // Table-level lineage, layer by layer; levels follow the inputs.
    for &t in &tables_src {
        let sys = b.wh.entities[t]
            .name
            .split('.')
            .next()
            .and_then(|s| s.strip_prefix("src_"))
            .and_then(|s| s.parse::<usize>().ok());
        if let Some(sys) = sys {
            b.link(
                systems[sys.min(systems.len() - 1)],
                t,
                EdgeKind::Mapping,
                None,
            );
        }
    }
    let feed =
        |b: &mut Builder, from: &[usize], to: &[usize], lo: usize, hi: usize, kind: EdgeKind| {
            for &t in to {
                let n = lo + b.rng.below(hi - lo + 1);
                let inputs: Vec<usize> = (0..n).map(|_| b.pick(from)).collect();
                for &s in &inputs {
                    let rule = format!(
                        "insert into {} select * from {}",
                        b.ids[t].name(),
                        b.ids[s].name()
                    );
                    b.link(s, t, kind.clone(), Some(rule));
                }
                if b.levels[t].is_none() {
                    b.levels[t] = b.level_from(&inputs);
                    b.wh.entities[t].attributes.level = b.levels[t];
                }
            }
        };
    feed(&mut b, &tables_src, &tables_stg, 1, 3, EdgeKind::Cleaning);
    feed(
        &mut b,
        &tables_stg,
        &tables_mart,
        2,
        4,
        EdgeKind::Transformation,
    );
    feed(&mut b, &tables_mart, &metrics, 1, 2, EdgeKind::Derivation);
    feed(&mut b, &tables_mart, &reports, 1, 3, EdgeKind::Application);
    let report_and_metrics: Vec<usize> = reports.iter().chain(&metrics).copied().collect();
    feed(
        &mut b,
        &report_and_metrics,
        &dashboards,
        1,
        3,
        EdgeKind::Application,
    );
    for &d in &dashboards {
        let dept = b.pick(&depts);
        b.link(d, dept, EdgeKind::Application, None);
    }

    // Jobs read a layer and load the next; their runs mostly complete.
    let loaded: Vec<usize> = tables_stg.iter().chain(&tables_mart).copied().collect();
    for (i, &j) in jobs.iter().enumerate() {
        let outputs: Vec<usize> = (0..1 + b.rng.below(3)).map(|_| b.pick(&loaded)).collect();
        let inputs: Vec<usize> = (0..1 + b.rng.below(2))
            .map(|_| b.pick(&tables_src))
            .collect();
        for &s in &inputs {
            b.link(s, j, EdgeKind::Mapping, None);
        }
        let status = if b.rng.chance(0.04) {
            RunStatus::Fail
        } else if b.rng.chance(0.01) {
            RunStatus::Running
        } else {
            RunStatus::Complete
        };
        let run = RunState {
            status,
            time: 1_700_000_000_000 + i as i64 * 60_000,
            message: None,
        };
        for &t in &outputs {
            if b.link(j, t, EdgeKind::Scheduling, None) {
                b.wh.edge_runs
                    .push((b.ids[j].clone(), b.ids[t].clone(), run.clone()));
            }
        }
        b.wh.runs.push((b.ids[j].clone(), run));
    }

    // Columns: spread over the layered tables, then column-to-column edges.
    let col_tables: Vec<(usize, usize)> = [&tables_src, &tables_stg, &tables_mart]
        .iter()
        .enumerate()
        .flat_map(|(layer, ts)| ts.iter().map(move |&t| (layer, t)))
        .collect();
    let mut cols_by_layer: [Vec<usize>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for i in 0..n_col {
        let (layer, t) = col_tables[i % col_tables.len()];
        let table_name = b.wh.entities[t].name.clone();
        let level = if b.rng.chance(0.7) { b.levels[t] } else { None };
        let a = Attributes {
            level,
            ..Attributes::default()
        };
        let c = b.add(EntityKind::Column, format!("{table_name}.col_{i}"), a);
        cols_by_layer[layer].push(c);
    }
    let mut attempts = 0usize;
    while b.wh.edges.len() < edges && attempts < edges.saturating_mul(4) + 1000 {
        attempts += 1;
        let layer = b.rng.below(2);
        if cols_by_layer[layer].is_empty() || cols_by_layer[layer + 1].is_empty() {
            break;
        }
        let s = b.pick(&cols_by_layer[layer]);
        let t = b.pick(&cols_by_layer[layer + 1]);
        let kind = if layer == 0 {
            EdgeKind::Mapping
        } else {
            EdgeKind::Transformation
        };
        b.link(s, t, kind, None);
    }
    b.wh
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_graph_and_exact_counts() {
        let a = warehouse(7, 2000, 6000);
        let b = warehouse(7, 2000, 6000);
        assert_eq!(a.entities, b.entities);
        assert_eq!(a.edges, b.edges);
        assert_eq!(a.entities.len(), 2000);
        assert_eq!(a.edges.len(), 6000);
        let ids: HashSet<_> = a.entities.iter().map(|e| e.id.clone()).collect();
        assert_eq!(ids.len(), 2000, "ids are unique");
        assert!(
            a.edges
                .iter()
                .all(|(s, t, _)| ids.contains(s) && ids.contains(t))
        );
        assert_ne!(warehouse(8, 2000, 6000).edges, a.edges);
    }

    #[test]
    fn starts_come_from_the_seed_and_are_of_their_sort() {
        let w = warehouse(7, 2000, 6000);
        let s = w.starts(7, 50);
        assert_eq!(s, w.starts(7, 50));
        assert_ne!(s.random, w.starts(8, 50).random);
        assert_eq!(
            (s.random.len(), s.sources.len(), s.sinks.len()),
            (50, 50, 50)
        );
        let ids: HashSet<_> = w.entities.iter().map(|e| &e.id).collect();
        assert!(s.random.iter().all(|i| ids.contains(i)));
        let prefixed = |v: &[EntityId], p: [&str; 2]| {
            v.iter()
                .all(|i| p.iter().any(|p| i.as_str().starts_with(p)))
        };
        assert!(prefixed(&s.sources, ["system:", "table:src_"]));
        assert!(prefixed(&s.sinks, ["dashboard:", "report:"]));
    }
}
