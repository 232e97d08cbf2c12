//! Traversals: upstream, downstream, impact analysis and paths.

use serde::{Deserialize, Serialize};

use super::search::Bfs;
use super::{Direction, Page, PageRequest, kind_ok};
use crate::lineage::error::QueryError;
use crate::lineage::index::GraphIndex;
use crate::lineage::model::{EdgeKind, EdgeRecord, EntityId, EntityKind};

/// Options of a traversal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traversal {
    /// At most this many hops; `None` = unbounded (answers come in pages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<u32>,
    /// Report only entities of these kinds (empty = all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entity_kinds: Vec<EntityKind>,
    /// Follow only edges of these kinds (empty = all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edge_kinds: Vec<EdgeKind>,
    /// The page.
    #[serde(default)]
    pub page: PageRequest,
}

impl Traversal {
    /// Up to `depth` hops, first page.
    pub fn depth(depth: u32) -> Self {
        Self {
            depth: Some(depth),
            ..Self::default()
        }
    }

    /// Unbounded, first page.
    pub fn unbounded() -> Self {
        Self::default()
    }

    /// With this page.
    pub fn page(mut self, page: PageRequest) -> Self {
        self.page = page;
        self
    }

    /// Reporting only these entity kinds.
    pub fn entity_kinds(mut self, kinds: Vec<EntityKind>) -> Self {
        self.entity_kinds = kinds;
        self
    }

    /// Following only these edge kinds.
    pub fn edge_kinds(mut self, kinds: Vec<EdgeKind>) -> Self {
        self.edge_kinds = kinds;
        self
    }
}

/// An entity reached by a traversal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reached {
    /// The entity.
    pub id: EntityId,
    /// Its display name.
    pub name: String,
    /// Its kind.
    pub kind: EntityKind,
    /// Hops from the start (shortest).
    pub distance: u32,
    /// Whether it is retired.
    pub retired: bool,
    /// The previous hop on a shortest path from the start (smallest id).
    pub via: Option<EntityId>,
}

/// An entity affected by a change to the start, with how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impacted {
    /// The entity.
    pub id: EntityId,
    /// Its display name.
    pub name: String,
    /// Its kind.
    pub kind: EntityKind,
    /// Hops from the start (shortest).
    pub distance: u32,
    /// One shortest path from the start to it, both included.
    pub path: Vec<EntityId>,
}

/// Options of a path search.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathOptions {
    /// At most this many hops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_depth: Option<u32>,
    /// Follow only edges of these kinds (empty = all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edge_kinds: Vec<EdgeKind>,
}

/// A path between two entities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathFound {
    /// The entities from source to target, both included.
    pub entities: Vec<EntityId>,
    /// The edges between them, in order.
    pub edges: Vec<EdgeRecord>,
}

impl GraphIndex {
    /// What `id` feeds, directly or not, sorted by distance then id.
    pub fn downstream(&self, id: &EntityId, opts: &Traversal) -> Result<Page<Reached>, QueryError> {
        self.reach(id, Direction::Downstream, opts)
    }

    /// What feeds `id`, directly or not, sorted by distance then id.
    pub fn upstream(&self, id: &EntityId, opts: &Traversal) -> Result<Page<Reached>, QueryError> {
        self.reach(id, Direction::Upstream, opts)
    }

    fn reach(
        &self,
        id: &EntityId,
        dir: Direction,
        opts: &Traversal,
    ) -> Result<Page<Reached>, QueryError> {
        let start = self.start(id)?;
        let bfs = self.bfs(start, dir, opts.depth, &opts.edge_kinds, None);
        let keyed = self.keyed(&bfs, &opts.entity_kinds);
        self.paginate_by_distance(keyed, &opts.page, |v| Reached {
            id: self.ids[v as usize].clone(),
            name: self.name_of(v),
            kind: self.kind_of(v).clone(),
            distance: bfs.dist(v),
            retired: self.nodes[v as usize].retired.is_some(),
            via: bfs.via(v).map(|p| self.ids[p as usize].clone()),
        })
    }

    /// The reached slots that pass the entity-kind filter, as (distance, slot).
    fn keyed(&self, bfs: &Bfs<'_>, kinds: &[EntityKind]) -> Vec<(u32, u32)> {
        bfs.order
            .iter()
            .filter(|&&v| kind_ok(kinds, self.kind_of(v)))
            .map(|&v| (bfs.dist(v), v))
            .collect()
    }

    /// Impact analysis: everything downstream of `id`, each with its distance
    /// and one shortest path from `id` (the smallest id at every hop).
    pub fn impact(&self, id: &EntityId, opts: &Traversal) -> Result<Page<Impacted>, QueryError> {
        let start = self.start(id)?;
        let dir = Direction::Downstream;
        let bfs = self.bfs(start, dir, opts.depth, &opts.edge_kinds, None);
        let keyed = self.keyed(&bfs, &opts.entity_kinds);
        self.paginate_by_distance(keyed, &opts.page, |v| Impacted {
            id: self.ids[v as usize].clone(),
            name: self.name_of(v),
            kind: self.kind_of(v).clone(),
            distance: bfs.dist(v),
            path: self.path_to(v, &bfs),
        })
    }

    /// A shortest path from `from` down to `to` following edge directions, or
    /// `None` if `to` is not downstream of `from`. (For the other direction,
    /// swap the arguments.)
    pub fn path(
        &self,
        from: &EntityId,
        to: &EntityId,
        opts: &PathOptions,
    ) -> Result<Option<PathFound>, QueryError> {
        let s = self.start(from)?;
        let t = self.start(to)?;
        if s == t {
            return Ok(Some(PathFound {
                entities: vec![from.clone()],
                edges: Vec::new(),
            }));
        }
        let dir = Direction::Downstream;
        let bfs = self.bfs(s, dir, opts.max_depth, &opts.edge_kinds, Some(t));
        if bfs.dist(t) == u32::MAX {
            return Ok(None);
        }
        let entities = self.path_to(t, &bfs);
        let mut edges = Vec::with_capacity(entities.len().saturating_sub(1));
        for pair in entities.windows(2) {
            if let Some(e) = self.edge(&pair[0], &pair[1]) {
                edges.push(e);
            }
        }
        Ok(Some(PathFound { entities, edges }))
    }
}
