//! Ranking by downstream reach (how much depends on an entity: its value), and
//! islands (what nothing depends on and that depends on nothing).
//!
//! Exact reach for every entity is a transitive-closure count. A BFS per entity
//! costs O(V·(V+E)) — hours at 100k entities. Instead the graph is condensed
//! into strongly connected components and the reach sets are computed as
//! bitsets in blocks of 2,048 target entities: one pass over the condensed
//! edges per block, O(V·E/64) word operations in all (≈0.5 G for 100k/300k,
//! well under a second), with memory bounded by one block. The result is
//! cached in the index until the next change.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Direction, Page, PageRequest, key_num_id, kind_ok, paginate, paginate_sorted};
use crate::lineage::error::QueryError;
use crate::lineage::index::GraphIndex;
use crate::lineage::model::{EntityId, EntityKind};

/// Options of the ranking.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RankOptions {
    /// Rank only entities of these kinds (reach still counts every kind).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entity_kinds: Vec<EntityKind>,
    /// The page.
    #[serde(default)]
    pub page: PageRequest,
}

/// An entity with its downstream reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ranked {
    /// The entity.
    pub id: EntityId,
    /// Its display name.
    pub name: String,
    /// Its kind.
    pub kind: EntityKind,
    /// How many other entities are downstream of it, at any distance.
    pub reach: u32,
    /// How many are directly downstream.
    pub direct: u32,
}

/// Reach per slot, and existing slots by reach (largest first, then id).
#[derive(Debug)]
pub(crate) struct ReachTable {
    pub(crate) reach: Vec<u32>,
    pub(crate) order: Vec<u32>,
}

/// Words per bitset block: 32 × 64 = 2,048 targets per pass.
const WORDS: usize = 32;

impl GraphIndex {
    /// Entities by downstream reach, largest first (ties by id).
    pub fn rank(&self, opts: &RankOptions) -> Result<Page<Ranked>, QueryError> {
        let table = self.reach_table();
        let filtered: Vec<u32>;
        let order: &[u32] = if opts.entity_kinds.is_empty() {
            &table.order
        } else {
            filtered = table
                .order
                .iter()
                .copied()
                .filter(|&v| kind_ok(&opts.entity_kinds, self.kind_of(v)))
                .collect();
            &filtered
        };
        let reach = &table.reach;
        paginate_sorted(
            order,
            |v| {
                key_num_id(
                    u64::from(u32::MAX - reach[v as usize]),
                    &self.ids[v as usize],
                )
            },
            &opts.page,
            |v| Ranked {
                id: self.ids[v as usize].clone(),
                name: self.name_of(v),
                kind: self.kind_of(v).clone(),
                reach: reach[v as usize],
                direct: self.out_visible(v).count() as u32,
            },
        )
    }

    /// Entities with no visible edge at all, by id: candidates to retire, or
    /// gaps in lineage capture.
    pub fn islands(
        &self,
        kinds: &[EntityKind],
        page: &PageRequest,
    ) -> Result<Page<EntityId>, QueryError> {
        let keyed: Vec<(String, u32)> = (0..self.ids.len() as u32)
            .filter(|&v| {
                self.is_present(v)
                    && kind_ok(kinds, self.kind_of(v))
                    && self.out_visible(v).next().is_none()
                    && self.in_visible(v).next().is_none()
            })
            .map(|v| (self.ids[v as usize].to_string(), v))
            .collect();
        paginate(keyed, page, |v| self.ids[v as usize].clone())
    }

    /// The downstream reach of every slot (0 for removed entities) and the
    /// existing entities sorted by it, cached until the index changes.
    pub(crate) fn reach_table(&self) -> Arc<ReachTable> {
        let version = self.version();
        if let Ok(cache) = self.cache.lock()
            && let Some((v, table)) = cache.as_ref()
            && *v == version
        {
            return table.clone();
        }
        let reach = self.compute_reach();
        let mut order: Vec<u32> = (0..self.ids.len() as u32)
            .filter(|&v| self.is_present(v))
            .collect();
        order.sort_unstable_by(|&a, &b| {
            reach[b as usize]
                .cmp(&reach[a as usize])
                .then_with(|| self.ids[a as usize].cmp(&self.ids[b as usize]))
        });
        let table = Arc::new(ReachTable { reach, order });
        if let Ok(mut cache) = self.cache.lock() {
            *cache = Some((version, table.clone()));
        }
        table
    }

    fn compute_reach(&self) -> Vec<u32> {
        let n = self.ids.len();
        let present: Vec<u32> = (0..n as u32).filter(|&v| self.is_present(v)).collect();
        let (comp, count) = self.components(&present, &|v| self.is_present(v), &[]);
        let c = count as usize;
        // Condensed successors, deduplicated, as a flat CSR array.
        let mut succ_start = vec![0usize; c + 1];
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        for &v in &present {
            let cv = comp[v as usize];
            for w in self.step(v, Direction::Downstream, &[]) {
                let cw = comp[w as usize];
                if cw != cv {
                    pairs.push((cv, cw));
                }
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        for &(a, _) in &pairs {
            succ_start[a as usize + 1] += 1;
        }
        for i in 0..c {
            succ_start[i + 1] += succ_start[i];
        }
        let succ: Vec<u32> = pairs.iter().map(|&(_, b)| b).collect();

        // Dense target numbering = position in `present`.
        let mut totals = vec![0u32; c];
        let block_bits = WORDS * 64;
        let mut bits = vec![0u64; c * WORDS];
        for block_start in (0..present.len()).step_by(block_bits) {
            bits.iter_mut().for_each(|w| *w = 0);
            let block_end = (block_start + block_bits).min(present.len());
            for (i, &v) in present[block_start..block_end].iter().enumerate() {
                let cv = comp[v as usize] as usize;
                bits[cv * WORDS + i / 64] |= 1u64 << (i % 64);
            }
            // Components are numbered sinks first: successors are done before us.
            for cv in 0..c {
                for &cw in &succ[succ_start[cv]..succ_start[cv + 1]] {
                    let cw = cw as usize;
                    let (lo, hi) = bits.split_at_mut(cv.max(cw) * WORDS);
                    let (dst, src) = if cv < cw {
                        (&mut lo[cv * WORDS..cv * WORDS + WORDS], &hi[..WORDS])
                    } else {
                        (&mut hi[..WORDS], &lo[cw * WORDS..cw * WORDS + WORDS])
                    };
                    for (d, s) in dst.iter_mut().zip(src) {
                        *d |= *s;
                    }
                }
                let ones: u32 = bits[cv * WORDS..cv * WORDS + WORDS]
                    .iter()
                    .map(|w| w.count_ones())
                    .sum();
                totals[cv] += ones;
            }
        }
        let mut reach = vec![0u32; n];
        for &v in &present {
            // The component's closure includes the entity itself.
            reach[v as usize] = totals[comp[v as usize] as usize].saturating_sub(1);
        }
        reach
    }
}
