//! Root-cause candidates of a failed job: everything upstream of it with the
//! state of its last run, suspects (failed or aborted) first, nearest first.

use serde::{Deserialize, Serialize};

use super::{Direction, Page, PageRequest, paginate};
use crate::lineage::error::QueryError;
use crate::lineage::index::GraphIndex;
use crate::lineage::keys::SEP;
use crate::lineage::model::{EntityId, EntityKind, RunState};

/// Options of the root-cause query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootCauseOptions {
    /// At most this many hops upstream; `None` = unbounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<u32>,
    /// The page of candidates.
    #[serde(default)]
    pub page: PageRequest,
}

/// The answer: the entity asked about and its upstream candidates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootCause {
    /// The entity asked about.
    pub target: EntityId,
    /// Its last run.
    pub run: Option<RunState>,
    /// Upstream entities, suspects first, then by distance, then by id.
    pub candidates: Page<Candidate>,
}

/// One upstream entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// The entity.
    pub id: EntityId,
    /// Its display name.
    pub name: String,
    /// Its kind.
    pub kind: EntityKind,
    /// Hops upstream of the target.
    pub distance: u32,
    /// Its last run: its own, or else the latest run of the edges feeding it.
    pub run: Option<RunState>,
    /// Whether that run failed or was aborted.
    pub suspect: bool,
    /// The next hop towards the target.
    pub via: Option<EntityId>,
}

impl GraphIndex {
    /// The last run of an entity: its own run if it has one (a job), else the
    /// latest run of its visible incoming edges (a table loaded by a job).
    pub fn last_run(&self, id: &EntityId) -> Option<RunState> {
        self.present_slot(id).and_then(|ix| self.effective_run(ix))
    }

    pub(crate) fn effective_run(&self, ix: u32) -> Option<RunState> {
        if let Some(r) = &self.nodes[ix as usize].run {
            return Some(r.clone());
        }
        self.in_visible(ix)
            .filter_map(|s| self.edges.get(&(s, ix)).and_then(|e| e.run.clone()))
            .reduce(RunState::later)
    }

    /// Root-cause candidates of `id` (typically a failed job).
    pub fn root_cause(
        &self,
        id: &EntityId,
        opts: &RootCauseOptions,
    ) -> Result<RootCause, QueryError> {
        let start = self.start(id)?;
        let dir = Direction::Upstream;
        let bfs = self.bfs(start, dir, opts.depth, &[], None);
        let keyed: Vec<(String, (u32, Option<RunState>))> = bfs
            .order
            .iter()
            .map(|&v| {
                let run = self.effective_run(v);
                let suspect = run.as_ref().is_some_and(|r| r.status.is_failure());
                let key = format!(
                    "{}{:010}{SEP}{}",
                    if suspect { 0 } else { 1 },
                    bfs.dist(v),
                    self.ids[v as usize]
                );
                (key, (v, run))
            })
            .collect();
        let candidates = paginate(keyed, &opts.page, |(v, run)| Candidate {
            id: self.ids[v as usize].clone(),
            name: self.name_of(v),
            kind: self.kind_of(v).clone(),
            distance: bfs.dist(v),
            suspect: run.as_ref().is_some_and(|r| r.status.is_failure()),
            run,
            via: bfs.via(v).map(|p| self.ids[p as usize].clone()),
        })?;
        Ok(RootCause {
            target: id.clone(),
            run: self.effective_run(start),
            candidates,
        })
    }
}
