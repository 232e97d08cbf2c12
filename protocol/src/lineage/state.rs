//! The live state: what the graph holds now, as plain sorted maps.
//!
//! It is the canonical form used to compare replicas (two documents that agree
//! on it answer every query the same), to cut an epoch (the epoch document
//! holds exactly this), and by tests as the input of reference implementations.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::{EdgeRecord, EntityId, EntityRecord};

/// Every existing entity and edge. Edges whose endpoint does not exist
/// ("dangling", see the module docs) are included: they are hidden from queries
/// but kept, and come back if the endpoint is added again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveState {
    /// Entities by id.
    pub entities: BTreeMap<EntityId, EntityRecord>,
    /// Edges by (source, target). In JSON: a list of edge records.
    #[serde(with = "edge_list")]
    pub edges: BTreeMap<(EntityId, EntityId), EdgeRecord>,
}

/// JSON objects need string keys: the edge map travels as a list.
mod edge_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    use crate::lineage::model::{EdgeRecord, EntityId};

    pub(super) fn serialize<S: Serializer>(
        edges: &BTreeMap<(EntityId, EntityId), EdgeRecord>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(edges.values())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<(EntityId, EntityId), EdgeRecord>, D::Error> {
        let list = Vec::<EdgeRecord>::deserialize(d)?;
        Ok(list
            .into_iter()
            .map(|e| ((e.source.clone(), e.target.clone()), e))
            .collect())
    }
}

impl LiveState {
    /// Whether an edge is visible: both of its endpoints exist.
    pub fn is_visible(&self, edge: &EdgeRecord) -> bool {
        self.entities.contains_key(&edge.source) && self.entities.contains_key(&edge.target)
    }

    /// The visible edges.
    pub fn visible_edges(&self) -> impl Iterator<Item = &EdgeRecord> {
        self.edges.values().filter(|e| self.is_visible(e))
    }
}
