//! The nodes placement sees: id, zone and capacity, sorted by id so that the
//! order a view was built in never changes a layout.

use serde::{Deserialize, Serialize};

use crate::membership::{MemberInfo, MemberState, NodeId, NodeMeta};
use crate::placement::PlacementError;

/// A node as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeSpec {
    /// The node.
    pub id: NodeId,
    /// Its zone (site): the replicas of a partition go to distinct zones.
    pub zone: String,
    /// Relative capacity; a node's share of replicas is proportional to it. A
    /// node with capacity 0 holds nothing (a way to drain it before removal).
    pub capacity: u64,
}

/// The nodes to place partitions on, sorted by id, each once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct View {
    nodes: Vec<NodeSpec>,
}

impl NodeSpec {
    /// Node `id` in `zone` with `capacity`.
    pub fn new(id: NodeId, zone: impl Into<String>, capacity: u64) -> Self {
        Self {
            id,
            zone: zone.into(),
            capacity,
        }
    }
}

impl From<&NodeMeta> for NodeSpec {
    fn from(meta: &NodeMeta) -> Self {
        Self::new(meta.id.node, meta.zone.clone(), meta.capacity)
    }
}

impl View {
    /// A view of `nodes`, in any order; a node given twice is an error.
    pub fn new(nodes: impl IntoIterator<Item = NodeSpec>) -> Result<Self, PlacementError> {
        let mut nodes: Vec<NodeSpec> = nodes.into_iter().collect();
        nodes.sort_by_key(|n| n.id);
        if let Some(pair) = nodes.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(PlacementError::DuplicateNode(pair[0].id));
        }
        Ok(Self { nodes })
    }

    /// The view a node places data on: itself (`me`, described by its own
    /// settings) and every other member that is alive and has told its zone
    /// and capacity. Suspect, dead and departed members are left out, and so
    /// is a member whose metadata has not arrived yet (its zone is unknown).
    /// A member listed twice counts once, with its last description.
    pub fn from_members<'a>(
        me: NodeSpec,
        members: impl IntoIterator<Item = &'a MemberInfo>,
    ) -> Self {
        let mut view = Self {
            nodes: vec![me.clone()],
        };
        for member in members {
            if member.id.node == me.id || member.state != MemberState::Alive {
                continue;
            }
            if let Some(meta) = member.meta.as_ref().filter(|m| m.id.node == member.id.node) {
                view = view.with(NodeSpec::from(meta));
            }
        }
        view
    }

    /// The nodes, sorted by id.
    pub fn nodes(&self) -> &[NodeSpec] {
        &self.nodes
    }

    /// The node `id`, if it is in the view.
    pub fn node(&self, id: &NodeId) -> Option<&NodeSpec> {
        self.nodes
            .binary_search_by(|n| n.id.cmp(id))
            .ok()
            .map(|i| &self.nodes[i])
    }

    /// This view with `node` added, or replaced if its id is already here.
    pub fn with(&self, node: NodeSpec) -> Self {
        let mut nodes = self.nodes.clone();
        match nodes.binary_search_by(|n| n.id.cmp(&node.id)) {
            Ok(i) => nodes[i] = node,
            Err(i) => nodes.insert(i, node),
        }
        Self { nodes }
    }

    /// This view without node `id`.
    pub fn without(&self, id: &NodeId) -> Self {
        let mut nodes = self.nodes.clone();
        nodes.retain(|n| n.id != *id);
        Self { nodes }
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the view has no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::MemberId;

    fn member(n: u64, state: MemberState, zone: Option<&str>) -> MemberInfo {
        let id = MemberId {
            node: NodeId::synthetic(n),
            generation: 1,
            addr: None,
        };
        MemberInfo {
            id,
            state,
            incarnation: 0,
            last_heard: None,
            meta: zone.map(|z| NodeMeta {
                id,
                zone: z.into(),
                capacity: n,
                version: "0".into(),
                p2p_addrs: Vec::new(),
                client_addr: None,
            }),
        }
    }

    #[test]
    fn the_view_holds_me_and_the_alive_members_whose_zone_is_known() {
        let me = NodeSpec::new(NodeId::synthetic(1), "mine", 1);
        let members = [
            member(1, MemberState::Alive, Some("stale")),
            member(2, MemberState::Alive, Some("b")),
            member(3, MemberState::Suspect, Some("c")),
            member(4, MemberState::Dead, Some("d")),
            member(5, MemberState::Alive, None),
            member(6, MemberState::Alive, Some("f")),
        ];
        let view = View::from_members(me.clone(), &members);
        let ids: Vec<NodeId> = view.nodes().iter().map(|n| n.id).collect();
        assert_eq!(
            ids,
            [
                NodeId::synthetic(1),
                NodeId::synthetic(2),
                NodeId::synthetic(6)
            ]
        );
        assert_eq!(view.node(&me.id), Some(&me), "my own settings win");
        assert_eq!(view.node(&NodeId::synthetic(6)).unwrap().capacity, 6);
    }
}
