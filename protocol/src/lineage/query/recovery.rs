//! Recovery order: after fixing an entity, what to re-run downstream of it and
//! in which order.
//!
//! The downstream set (the fixed entity excluded) is condensed into strongly
//! connected components; each entity gets a *stage* — the length of the longest
//! chain of components leading to it inside the set — so everything in stage
//! `k` depends only on stages `< k` and entities of one stage can run in
//! parallel. Cycles cannot be ordered: their members share a stage and each
//! cycle is reported so an operator can break it.

use serde::{Deserialize, Serialize};

use super::{Direction, Page, PageRequest, key_num_id, paginate};
use crate::lineage::error::QueryError;
use crate::lineage::index::GraphIndex;
use crate::lineage::model::{EdgeKind, EntityId, EntityKind};

/// Options of the recovery plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryOptions {
    /// Follow only edges of these kinds (empty = all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edge_kinds: Vec<EdgeKind>,
    /// The page of steps.
    #[serde(default)]
    pub page: PageRequest,
}

/// The plan: steps in order, and the cycles found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryPlan {
    /// The entity that was fixed.
    pub start: EntityId,
    /// Entities to re-run, by stage then id.
    pub steps: Page<RecoveryStep>,
    /// Each cycle in the downstream set (members sorted by id), sorted by first
    /// member.
    pub cycles: Vec<Vec<EntityId>>,
}

/// One entity to re-run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryStep {
    /// The entity.
    pub id: EntityId,
    /// Its display name.
    pub name: String,
    /// Its kind.
    pub kind: EntityKind,
    /// Its stage: it depends only on entities of earlier stages.
    pub stage: u32,
    /// The index in [`RecoveryPlan::cycles`] of the cycle it belongs to.
    pub cycle: Option<usize>,
}

impl GraphIndex {
    /// The downstream of `id` in topological order, for re-running.
    pub fn recovery_order(
        &self,
        id: &EntityId,
        opts: &RecoveryOptions,
    ) -> Result<RecoveryPlan, QueryError> {
        let start = self.start(id)?;
        let kinds = &opts.edge_kinds;
        let bfs = self.bfs(start, Direction::Downstream, None, kinds, None);
        let members: Vec<u32> = bfs.order.iter().copied().filter(|&v| v != start).collect();
        let inside = |v: u32| v != start && bfs.dist(v) != u32::MAX;
        let (comp, count) = self.components(&members, &inside, kinds);

        // Members and cyclic-ness per component.
        let mut comp_members: Vec<Vec<u32>> = vec![Vec::new(); count as usize];
        for &v in &members {
            comp_members[comp[v as usize] as usize].push(v);
        }
        let cyclic: Vec<bool> = comp_members
            .iter()
            .map(|ms| {
                ms.len() > 1
                    || ms
                        .iter()
                        .any(|&v| self.step(v, Direction::Downstream, kinds).any(|w| w == v))
            })
            .collect();

        // Components are numbered sinks first, so the highest number comes
        // first in topological order.
        let mut stage = vec![0u32; count as usize];
        for c in (0..count as usize).rev() {
            for &v in &comp_members[c] {
                for w in self.step(v, Direction::Downstream, kinds) {
                    if !inside(w) {
                        continue;
                    }
                    let cw = comp[w as usize] as usize;
                    if cw != c {
                        stage[cw] = stage[cw].max(stage[c] + 1);
                    }
                }
            }
        }

        let mut cycles: Vec<(Vec<EntityId>, usize)> = comp_members
            .iter()
            .enumerate()
            .filter(|(c, _)| cyclic[*c])
            .map(|(c, ms)| {
                let mut ids: Vec<EntityId> =
                    ms.iter().map(|&v| self.ids[v as usize].clone()).collect();
                ids.sort();
                (ids, c)
            })
            .collect();
        cycles.sort();
        let mut cycle_of = vec![None; count as usize];
        for (i, (_, c)) in cycles.iter().enumerate() {
            cycle_of[*c] = Some(i);
        }

        let keyed: Vec<(String, u32)> = members
            .iter()
            .map(|&v| {
                (
                    key_num_id(
                        u64::from(stage[comp[v as usize] as usize]),
                        &self.ids[v as usize],
                    ),
                    v,
                )
            })
            .collect();
        let steps = paginate(keyed, &opts.page, |v| {
            let c = comp[v as usize] as usize;
            RecoveryStep {
                id: self.ids[v as usize].clone(),
                name: self.name_of(v),
                kind: self.kind_of(v).clone(),
                stage: stage[c],
                cycle: cycle_of[c],
            }
        })?;
        Ok(RecoveryPlan {
            start: id.clone(),
            steps,
            cycles: cycles.into_iter().map(|(ids, _)| ids).collect(),
        })
    }
}
