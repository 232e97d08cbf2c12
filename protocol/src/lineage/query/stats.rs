//! Statistics: counts by kind and role, the degree distribution, and lineage
//! coverage (the share of entities that have any lineage at all — the
//! completeness measure the field uses).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::lineage::index::GraphIndex;
use crate::lineage::model::Role;

/// Counts for one kind (or for everything).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindStats {
    /// Entities.
    pub total: usize,
    /// Entities with downstream and no upstream.
    pub source: usize,
    /// Entities with both.
    pub intermediate: usize,
    /// Entities with upstream and no downstream.
    pub sink: usize,
    /// Entities with neither.
    pub isolated: usize,
}

impl KindStats {
    fn add(&mut self, role: Role) {
        self.total += 1;
        match role {
            Role::Source => self.source += 1,
            Role::Intermediate => self.intermediate += 1,
            Role::Sink => self.sink += 1,
            Role::Isolated => self.isolated += 1,
        }
    }
}

/// How many entities have a degree in `[min, max]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DegreeBucket {
    /// Smallest degree in the bucket.
    pub min: usize,
    /// Largest degree in the bucket.
    pub max: usize,
    /// Entities.
    pub count: usize,
}

/// Lineage coverage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    /// Entities with at least one visible edge.
    pub with_lineage: usize,
    /// All entities.
    pub total: usize,
    /// `with_lineage / total` (1.0 for an empty graph).
    pub ratio: f64,
}

/// Statistics of the graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statistics {
    /// Existing entities.
    pub entities: usize,
    /// Visible edges.
    pub edges: usize,
    /// Linked edges hidden because an endpoint does not exist.
    pub dangling_edges: usize,
    /// Retired entities (included in `entities`).
    pub retired: usize,
    /// Columns whose table does not exist.
    pub orphan_columns: usize,
    /// Counts by role.
    pub by_role: KindStats,
    /// Counts by entity kind.
    pub by_kind: BTreeMap<String, KindStats>,
    /// Visible edges by kind.
    pub edges_by_kind: BTreeMap<String, usize>,
    /// In-degree distribution (buckets 0, 1, 2–3, 4–7, …).
    pub in_degree: Vec<DegreeBucket>,
    /// Out-degree distribution.
    pub out_degree: Vec<DegreeBucket>,
    /// The largest in-degree.
    pub max_in_degree: usize,
    /// The largest out-degree.
    pub max_out_degree: usize,
    /// Coverage.
    pub coverage: Coverage,
}

fn bucket_of(d: usize) -> usize {
    if d == 0 {
        0
    } else {
        (usize::BITS - d.leading_zeros()) as usize
    }
}

fn buckets(counts: &[usize]) -> Vec<DegreeBucket> {
    counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(b, &count)| {
            let (min, max) = if b == 0 {
                (0, 0)
            } else {
                (1 << (b - 1), (1 << b) - 1)
            };
            DegreeBucket { min, max, count }
        })
        .collect()
}

impl GraphIndex {
    /// Statistics of the whole graph (one pass).
    pub fn statistics(&self) -> Statistics {
        let mut by_role = KindStats::default();
        let mut by_kind: BTreeMap<String, KindStats> = BTreeMap::new();
        let mut edges_by_kind: BTreeMap<String, usize> = BTreeMap::new();
        let mut in_hist = vec![0usize; 65];
        let mut out_hist = vec![0usize; 65];
        let (mut edges, mut retired, mut max_in, mut max_out) = (0, 0, 0, 0);
        for v in 0..self.ids.len() as u32 {
            if !self.is_present(v) {
                continue;
            }
            let din = self.in_visible(v).count();
            let dout = self.out_visible(v).count();
            let role = Role::of(din, dout);
            by_role.add(role);
            by_kind
                .entry(self.kind_of(v).to_string())
                .or_default()
                .add(role);
            in_hist[bucket_of(din)] += 1;
            out_hist[bucket_of(dout)] += 1;
            max_in = max_in.max(din);
            max_out = max_out.max(dout);
            if self.nodes[v as usize].retired.is_some() {
                retired += 1;
            }
            for t in self.out_visible(v) {
                edges += 1;
                if let Some(spec) = self.edge_spec(v, t) {
                    *edges_by_kind.entry(spec.kind.to_string()).or_default() += 1;
                }
            }
        }
        let total = by_role.total;
        let with_lineage = total - by_role.isolated;
        Statistics {
            entities: total,
            edges,
            dangling_edges: self.linked_edge_count() - edges,
            retired,
            orphan_columns: self.orphan_count(),
            by_role,
            by_kind,
            edges_by_kind,
            in_degree: buckets(&in_hist),
            out_degree: buckets(&out_hist),
            max_in_degree: max_in,
            max_out_degree: max_out,
            coverage: Coverage {
                with_lineage,
                total,
                ratio: if total == 0 {
                    1.0
                } else {
                    with_lineage as f64 / total as f64
                },
            },
        }
    }
}
