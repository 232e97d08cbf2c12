//! Re-replication: the copies a layout change requires — a node joined, left
//! or was declared dead and the next layout gave its partitions to others —
//! and the partitions that have fewer live replicas than they should.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::membership::NodeId;
use crate::placement::hash::rank;
use crate::placement::{Layout, Partition, PlacementError};

/// One partition to copy to a new replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// The partition.
    pub partition: Partition,
    /// The source to copy from: a live node that held the partition.
    pub from: NodeId,
    /// The new replica that needs it.
    pub to: NodeId,
    /// Other live holders, to fall back on if `from` fails.
    pub alternates: Vec<NodeId>,
}

/// Everything a layout change requires.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairPlan {
    /// Copies to make, by partition.
    pub transfers: Vec<Transfer>,
    /// New replicas with no live holder to copy from: the partition is
    /// unavailable until a holder comes back.
    pub unavailable: Vec<(Partition, NodeId)>,
    /// New replicas that are down: they catch up by anti-entropy when back.
    pub deferred: Vec<(Partition, NodeId)>,
    /// Previous replicas that are no longer replicas: each may drop its copy
    /// once every new replica of the partition has confirmed its transfer.
    pub release: Vec<(Partition, NodeId)>,
}

/// What moving from layout `old` to layout `new` requires when `live` nodes
/// answer. Holders are the live replicas of `old` (they have the data); each
/// replica of `new` that was not one of `old` gets a transfer from one of
/// them, preferring a holder in its own zone (cheaper links), then by a hash
/// of (partition, holder), so that one node's partitions are copied from
/// many sources at once rather than all from one.
pub fn repair_plan(
    old: &Layout,
    new: &Layout,
    live: &BTreeSet<NodeId>,
) -> Result<RepairPlan, PlacementError> {
    if old.partitions() != new.partitions() {
        return Err(PlacementError::PartitionCountMismatch {
            left: old.partitions().get(),
            right: new.partitions().get(),
        });
    }
    let mut plan = RepairPlan::default();
    for partition in new.partitions().all() {
        let (before, after) = (old.replicas(partition), new.replicas(partition));
        let holders: Vec<NodeId> = before
            .iter()
            .copied()
            .filter(|n| live.contains(n))
            .collect();
        for &to in after.iter().filter(|n| !before.contains(n)) {
            if !live.contains(&to) {
                plan.deferred.push((partition, to));
                continue;
            }
            let zone = new.node(&to).map(|n| n.zone.as_str());
            let mut sources = holders.clone();
            sources.sort_by_key(|n| {
                let same_zone = old.node(n).map(|s| s.zone.as_str()) == zone;
                (!same_zone, rank(partition, n))
            });
            match sources.split_first() {
                Some((&from, rest)) => plan.transfers.push(Transfer {
                    partition,
                    from,
                    to,
                    alternates: rest.to_vec(),
                }),
                None => plan.unavailable.push((partition, to)),
            }
        }
        for &gone in before.iter().filter(|n| !after.contains(n)) {
            plan.release.push((partition, gone));
        }
    }
    Ok(plan)
}

/// The partitions with fewer live replicas than the layout gives them, and
/// how many they have, for `stemma status` and to decide what to repair first
/// (fewest live replicas first).
pub fn under_replicated(layout: &Layout, live: &BTreeSet<NodeId>) -> Vec<(Partition, usize)> {
    let mut under: Vec<(Partition, usize)> = layout
        .partitions()
        .all()
        .filter_map(|p| {
            let replicas = layout.replicas(p);
            let up = replicas.iter().filter(|n| live.contains(n)).count();
            (up < replicas.len()).then_some((p, up))
        })
        .collect();
    under.sort_by_key(|&(p, up)| (up, p));
    under
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::{NodeSpec, PlacementConfig, View};

    fn n(i: u64) -> NodeId {
        NodeId::synthetic(i)
    }

    fn view(ids: impl IntoIterator<Item = u64>) -> View {
        View::new(
            ids.into_iter()
                .map(|i| NodeSpec::new(n(i), format!("z{i}"), 1)),
        )
        .unwrap()
    }

    fn config() -> PlacementConfig {
        PlacementConfig::new(64, 3).unwrap()
    }

    #[test]
    fn a_dead_node_s_partitions_are_copied_from_live_holders() {
        let old = Layout::initial(&view(0..5), config()).unwrap();
        let new = old.next(&view(1..5)).unwrap();
        let live: BTreeSet<NodeId> = (1..5).map(n).collect();
        let plan = repair_plan(&old, &new, &live).unwrap();
        // One transfer per slot that changed hands, each to its new owner.
        let moves = old.diff(&new).unwrap();
        assert_eq!(plan.transfers.len(), moves.len());
        assert!(moves.len() >= old.partitions_of(&n(0)).len());
        for t in &plan.transfers {
            assert!(old.holds(&t.from, t.partition) && live.contains(&t.from));
            assert!(new.holds(&t.to, t.partition) && !old.holds(&t.to, t.partition));
            assert!(!t.alternates.contains(&t.from) && !t.alternates.contains(&n(0)));
            let holders = old
                .replicas(t.partition)
                .iter()
                .filter(|h| live.contains(h))
                .count();
            assert_eq!(
                t.alternates.len() + 1,
                holders,
                "every live holder is a source"
            );
        }
        assert_eq!(plan.release.len(), moves.len());
        let released_by_0 = plan
            .release
            .iter()
            .filter(|(_, node)| *node == n(0))
            .count();
        assert_eq!(released_by_0, old.partitions_of(&n(0)).len());
        assert!(plan.unavailable.is_empty() && plan.deferred.is_empty());
        // Sources are spread: more than one node copies.
        let sources: BTreeSet<NodeId> = plan.transfers.iter().map(|t| t.from).collect();
        assert!(sources.len() > 1);
    }

    #[test]
    fn a_join_copies_to_the_new_node_only() {
        let old = Layout::initial(&view(0..4), config()).unwrap();
        let new = old.next(&view(0..5)).unwrap();
        let live: BTreeSet<NodeId> = (0..5).map(n).collect();
        let plan = repair_plan(&old, &new, &live).unwrap();
        assert!(!plan.transfers.is_empty());
        assert!(plan.transfers.iter().all(|t| t.to == n(4)));
        assert_eq!(plan.transfers.len(), new.partitions_of(&n(4)).len());
    }

    #[test]
    fn without_live_holders_a_partition_is_unavailable_and_down_targets_wait() {
        let old = Layout::initial(&view(0..3), config()).unwrap();
        let new = old.next(&view(0..6)).unwrap();
        let only_new: BTreeSet<NodeId> = (3..6).map(n).collect();
        let plan = repair_plan(&old, &new, &only_new).unwrap();
        assert!(plan.transfers.is_empty());
        assert!(!plan.unavailable.is_empty());
        let only_old: BTreeSet<NodeId> = (0..3).map(n).collect();
        let plan = repair_plan(&old, &new, &only_old).unwrap();
        assert!(plan.transfers.is_empty() && plan.unavailable.is_empty());
        assert_eq!(plan.deferred.len(), old.diff(&new).unwrap().len());
    }

    #[test]
    fn under_replicated_partitions_come_fewest_live_replicas_first() {
        let layout = Layout::initial(&view(0..4), config()).unwrap();
        let everyone: BTreeSet<NodeId> = (0..4).map(n).collect();
        assert!(under_replicated(&layout, &everyone).is_empty());
        let two: BTreeSet<NodeId> = (0..2).map(n).collect();
        let under = under_replicated(&layout, &two);
        assert_eq!(
            under.len(),
            64,
            "every partition has a replica on node 2 or 3"
        );
        assert!(under.windows(2).all(|w| w[0].1 <= w[1].1));
        assert_eq!(under[0].1, 1);
    }
}
