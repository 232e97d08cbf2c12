//! Where a write goes: the partition's owners, and for an owner that is down
//! a stand-in that keeps a hinted copy until the owner is back (hinted
//! handoff, as in Dynamo).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::membership::NodeId;
use crate::placement::hash::rank;
use crate::placement::{Layout, Partition};

/// The RF owners of `partition`, in slot order: every write goes to them.
pub fn write_targets(layout: &Layout, partition: Partition) -> &[NodeId] {
    layout.replicas(partition)
}

/// A copy kept by a stand-in for an owner that is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hint {
    /// The owner that is down; the copy is handed to it when it is back.
    pub owner: NodeId,
    /// The live node that keeps the copy meanwhile.
    pub stand_in: NodeId,
}

/// Where one write goes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WritePlan {
    /// Live owners, in slot order.
    pub owners: Vec<NodeId>,
    /// Down owners and their stand-ins.
    pub hinted: Vec<Hint>,
    /// Down owners for which no live node is left to stand in.
    pub uncovered: Vec<NodeId>,
}

impl WritePlan {
    /// Every node the write is sent to: live owners, then stand-ins.
    pub fn targets(&self) -> Vec<NodeId> {
        self.owners
            .iter()
            .copied()
            .chain(self.hinted.iter().map(|h| h.stand_in))
            .collect()
    }
}

/// Where a write to `partition` goes when only `live` nodes answer. Each down
/// owner gets a distinct stand-in: the first live node of the view that is
/// neither an owner nor already a stand-in, preferring the down owner's zone
/// (so the copies stay spread over zones), then by a hash of (partition,
/// node), so that the hints of one dead node spread over many stand-ins.
pub fn write_plan(layout: &Layout, partition: Partition, live: &BTreeSet<NodeId>) -> WritePlan {
    let owners = layout.replicas(partition);
    let mut plan = WritePlan::default();
    let mut taken: BTreeSet<NodeId> = owners.iter().copied().collect();
    for owner in owners {
        if live.contains(owner) {
            plan.owners.push(*owner);
            continue;
        }
        let zone = layout.node(owner).map(|n| n.zone.as_str());
        let stand_in = layout
            .view()
            .nodes()
            .iter()
            .filter(|n| n.capacity > 0 && live.contains(&n.id) && !taken.contains(&n.id))
            .min_by_key(|n| (Some(n.zone.as_str()) != zone, rank(partition, &n.id)))
            .map(|n| n.id);
        match stand_in {
            Some(stand_in) => {
                taken.insert(stand_in);
                plan.hinted.push(Hint {
                    owner: *owner,
                    stand_in,
                });
            }
            None => plan.uncovered.push(*owner),
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::{NodeSpec, PlacementConfig, View};

    fn layout(nodes: u64) -> Layout {
        let view = View::new(
            (0..nodes).map(|n| NodeSpec::new(NodeId::synthetic(n), format!("z{}", n % 4), 1)),
        )
        .unwrap();
        Layout::initial(&view, PlacementConfig::new(64, 3).unwrap()).unwrap()
    }

    fn everyone(layout: &Layout) -> BTreeSet<NodeId> {
        layout.view().nodes().iter().map(|n| n.id).collect()
    }

    #[test]
    fn with_every_owner_live_the_write_goes_to_the_owners_in_order() {
        let layout = layout(6);
        for p in layout.partitions().all() {
            let plan = write_plan(&layout, p, &everyone(&layout));
            assert_eq!(plan.owners, write_targets(&layout, p));
            assert!(plan.hinted.is_empty() && plan.uncovered.is_empty());
        }
    }

    #[test]
    fn a_down_owner_gets_a_live_stand_in_that_is_not_an_owner() {
        let layout = layout(8);
        for p in layout.partitions().all() {
            let owners = write_targets(&layout, p);
            let mut live = everyone(&layout);
            live.remove(&owners[0]);
            live.remove(&owners[2]);
            let plan = write_plan(&layout, p, &live);
            assert_eq!(plan.owners, vec![owners[1]]);
            assert_eq!(plan.hinted.len(), 2);
            let stand_ins: BTreeSet<NodeId> = plan.hinted.iter().map(|h| h.stand_in).collect();
            assert_eq!(stand_ins.len(), 2, "distinct stand-ins");
            for hint in &plan.hinted {
                assert!(live.contains(&hint.stand_in));
                assert!(!owners.contains(&hint.stand_in));
            }
            assert_eq!(plan.hinted[0].owner, owners[0]);
            // With 8 nodes in 4 zones, the down owner's zone has another node.
            let zone = |id: &NodeId| layout.node(id).unwrap().zone.clone();
            if live
                .iter()
                .any(|n| zone(n) == zone(&owners[0]) && !owners.contains(n))
            {
                assert_eq!(zone(&plan.hinted[0].stand_in), zone(&owners[0]));
            }
        }
    }

    #[test]
    fn without_spare_live_nodes_a_down_owner_is_uncovered() {
        let layout = layout(3);
        let p = layout.partitions().all().next().unwrap();
        let owners = write_targets(&layout, p).to_vec();
        let live: BTreeSet<NodeId> = owners[1..].iter().copied().collect();
        let plan = write_plan(&layout, p, &live);
        assert_eq!(plan.uncovered, vec![owners[0]]);
        assert_eq!(plan.targets(), owners[1..].to_vec());
    }
}
