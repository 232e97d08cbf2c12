//! Where a read goes: the nearest live replica first, then the other live
//! replicas, then, during a move, the previous owners that still hold the
//! data. A reader verifies each chunk's hash and moves down the list on a
//! miss or a mismatch.

use std::collections::{BTreeMap, BTreeSet};

use crate::membership::NodeId;
use crate::placement::{Layout, Partition};

/// The nodes to read `partition` from, in order. First the live replicas of
/// the `current` layout, nearest first: `local` itself, then by `distance`
/// (e.g. a measured round trip; a node without one comes after those with
/// one), then nodes in `local`'s zone, then slot order. Then the live
/// replicas of the `previous` layout that are not current replicas — while
/// a move is in progress they may be the only ones holding the data — in
/// the same order. Nodes not in `live` are left out.
pub fn read_order(
    current: &Layout,
    previous: Option<&Layout>,
    partition: Partition,
    live: &BTreeSet<NodeId>,
    local: NodeId,
    distance: &BTreeMap<NodeId, u64>,
) -> Vec<NodeId> {
    let local_zone = current.node(&local).map(|n| n.zone.as_str());
    let order = |replicas: &[NodeId], layout: &Layout| {
        let mut nodes: Vec<(usize, NodeId)> = replicas
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, n)| live.contains(n))
            .collect();
        nodes.sort_by_key(|&(slot, n)| {
            let zone = layout.node(&n).map(|s| s.zone.as_str());
            let far = n != local;
            let unmeasured = !distance.contains_key(&n);
            let away = local_zone.is_none() || zone != local_zone;
            (far, unmeasured, distance.get(&n).copied(), away, slot)
        });
        nodes.into_iter().map(|(_, n)| n)
    };
    let current_replicas = current.replicas(partition);
    let mut nodes: Vec<NodeId> = order(current_replicas, current).collect();
    if let Some(previous) = previous {
        let old: Vec<NodeId> = previous
            .replicas(partition)
            .iter()
            .copied()
            .filter(|n| !current_replicas.contains(n))
            .collect();
        nodes.extend(order(&old, previous));
    }
    nodes
}

/// What one replica answered when asked for an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// It sent the item and the item verified.
    Found,
    /// It does not hold the item.
    Missing,
    /// Its copy (or what it sent) did not match the item's hash.
    Corrupt,
    /// It did not answer (down, cut off, timed out, refused).
    Unreachable,
}

/// Read repair: the replicas to send the item to after a read, given what
/// each replica asked answered. Those that lacked the item or held a corrupt
/// copy get it — but only once some replica had it right, since there is
/// nothing to repair from otherwise. Unreachable replicas are left to hinted
/// handoff and anti-entropy: a push to them would only time out again.
pub fn read_repair_targets(outcomes: &[(NodeId, ReadOutcome)]) -> Vec<NodeId> {
    if !outcomes.iter().any(|(_, o)| *o == ReadOutcome::Found) {
        return Vec::new();
    }
    let mut targets: Vec<NodeId> = Vec::new();
    for (node, outcome) in outcomes {
        if matches!(outcome, ReadOutcome::Missing | ReadOutcome::Corrupt) && !targets.contains(node)
        {
            targets.push(*node);
        }
    }
    targets
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::{NodeSpec, PlacementConfig, View};

    fn n(i: u64) -> NodeId {
        NodeId::synthetic(i)
    }

    fn view(nodes: u64) -> View {
        View::new((0..nodes).map(|i| NodeSpec::new(n(i), format!("z{i}"), 1))).unwrap()
    }

    #[test]
    fn the_local_replica_comes_first_then_the_nearest() {
        let layout = Layout::initial(&view(3), PlacementConfig::new(16, 3).unwrap()).unwrap();
        let p = layout.partitions().all().next().unwrap();
        let live: BTreeSet<NodeId> = (0..3).map(n).collect();
        let distance = BTreeMap::from([(n(0), 50), (n(1), 5)]);
        assert_eq!(
            read_order(&layout, None, p, &live, n(2), &distance),
            [n(2), n(1), n(0)]
        );
        // From a node that is not a replica, and without distances: slot order.
        let order = read_order(&layout, None, p, &live, n(9), &BTreeMap::new());
        assert_eq!(order, layout.replicas(p));
    }

    #[test]
    fn down_replicas_are_skipped_and_old_owners_follow_during_a_move() {
        let before = Layout::initial(&view(3), PlacementConfig::new(16, 3).unwrap()).unwrap();
        let after = before.next(&view(6)).unwrap();
        let moved = before
            .partitions()
            .all()
            .find(|&p| before.replicas(p) != after.replicas(p))
            .unwrap();
        let live: BTreeSet<NodeId> = (0..6).map(n).collect();
        let order = read_order(&after, Some(&before), moved, &live, n(9), &BTreeMap::new());
        let current = after.replicas(moved);
        assert_eq!(&order[..3], current);
        let old: Vec<NodeId> = before
            .replicas(moved)
            .iter()
            .copied()
            .filter(|x| !current.contains(x))
            .collect();
        assert!(!old.is_empty());
        assert_eq!(&order[3..], old);
        // A down current owner is left out.
        let mut some_down = live.clone();
        some_down.remove(&current[0]);
        let order = read_order(
            &after,
            Some(&before),
            moved,
            &some_down,
            n(9),
            &BTreeMap::new(),
        );
        assert!(!order.contains(&current[0]));
        assert_eq!(order.len(), 2 + old.len());
    }

    #[test]
    fn read_repair_targets_the_replicas_that_missed_once_one_had_it() {
        use ReadOutcome::*;
        let outcomes = [
            (n(1), Corrupt),
            (n(2), Unreachable),
            (n(3), Missing),
            (n(4), Found),
        ];
        assert_eq!(read_repair_targets(&outcomes), [n(1), n(3)]);
        assert!(read_repair_targets(&[(n(1), Missing), (n(2), Corrupt)]).is_empty());
        assert!(read_repair_targets(&[(n(1), Found)]).is_empty());
    }
}
