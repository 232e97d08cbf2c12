//! Handing a partition off. A node ends up holding items of partitions the
//! layout does not place on it: after a join moved a partition away, or after
//! it stood in for an owner that was down. Anti-entropy copies them to the
//! owners; then they are dead weight. A node drops its copies of such a
//! partition once **every** owner, asked about each item
//! ([`ReplicaRequest::Holds`](super::ReplicaRequest::Holds)), says it holds
//! every item of it the node holds — the rule Garage applies before
//! deleting a block it no longer needs. So the node never drops the last
//! copy, and while an owner is down or does not answer it keeps everything.
//!
//! Only chunks and manifests, the bulk, are handed off. Names and references
//! are small and merged both ways, and a non-owner's copy of a reference is
//! how it learns that the reference died.

use std::collections::BTreeSet;

use super::anti_entropy::{Inventory, ItemKind};
use crate::membership::NodeId;
use crate::placement::Layout;

/// The partitions of `inventory` (of `kind`) that `layout` does not place on
/// `me` and whose owners are all `live`, each with the owners that must
/// confirm before the copies go. Empty for kinds that are never handed off.
pub fn handoff_candidates(
    layout: &Layout,
    me: &NodeId,
    live: &BTreeSet<NodeId>,
    kind: ItemKind,
    inventory: &Inventory,
) -> Vec<(u32, Vec<NodeId>)> {
    if !matches!(kind, ItemKind::Chunk | ItemKind::Manifest) {
        return Vec::new();
    }
    inventory
        .iter()
        .filter(|(_, entries)| !entries.is_empty())
        .filter_map(|(&p, _)| {
            let partition = layout.partitions().partition(p)?;
            let owners = layout.replicas(partition);
            let ready = !owners.contains(me) && owners.iter().all(|o| live.contains(o));
            ready.then(|| (p, owners.to_vec()))
        })
        .collect()
}

/// Whether an owner's answer to [`ReplicaRequest::Holds`] about `asked`
/// (the keys it returned as held) shows that it holds every one of them.
///
/// [`ReplicaRequest::Holds`]: super::ReplicaRequest::Holds
pub fn holds_all(asked: &[[u8; 32]], held: &[[u8; 32]]) -> bool {
    let held: BTreeSet<&[u8; 32]> = held.iter().collect();
    asked.iter().all(|k| held.contains(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(n: u64) -> Layout {
        Layout::of_test_nodes(n)
    }

    fn everything(layout: &Layout) -> Inventory {
        (0..layout.partitions().get())
            .map(|p| (p, vec![([p as u8; 32], 0)]))
            .collect()
    }

    fn everyone(layout: &Layout) -> BTreeSet<NodeId> {
        layout.view().nodes().iter().map(|n| n.id).collect()
    }

    #[test]
    fn only_partitions_placed_elsewhere_are_candidates_with_all_their_owners() {
        let layout = layout(5);
        let me = NodeId::synthetic(1);
        let live = everyone(&layout);
        let candidates =
            handoff_candidates(&layout, &me, &live, ItemKind::Chunk, &everything(&layout));
        let mine = layout.partitions_of(&me).len();
        assert_eq!(candidates.len(), layout.partitions().get() as usize - mine);
        for (p, owners) in candidates {
            let partition = layout.partitions().partition(p).unwrap();
            assert!(!layout.holds(&me, partition));
            assert_eq!(owners, layout.replicas(partition));
        }
    }

    #[test]
    fn names_references_and_empty_partitions_are_never_handed_off() {
        let layout = layout(5);
        let me = NodeId::synthetic(1);
        let live = everyone(&layout);
        for kind in [ItemKind::Name, ItemKind::Ref] {
            assert!(handoff_candidates(&layout, &me, &live, kind, &everything(&layout)).is_empty());
        }
        let empty: Inventory = (0..8).map(|p| (p, Vec::new())).collect();
        assert!(handoff_candidates(&layout, &me, &live, ItemKind::Manifest, &empty).is_empty());
    }

    #[test]
    fn a_partition_with_an_owner_down_is_not_handed_off() {
        let layout = layout(5);
        let me = NodeId::synthetic(1);
        let down = NodeId::synthetic(2);
        let mut live = everyone(&layout);
        live.remove(&down);
        let candidates =
            handoff_candidates(&layout, &me, &live, ItemKind::Chunk, &everything(&layout));
        assert!(!candidates.is_empty());
        assert!(candidates.iter().all(|(_, owners)| !owners.contains(&down)));
        let with_down = layout
            .partitions()
            .all()
            .filter(|p| {
                let owners = layout.replicas(*p);
                owners.contains(&down) && !owners.contains(&me)
            })
            .count();
        let all = handoff_candidates(
            &layout,
            &me,
            &everyone(&layout),
            ItemKind::Chunk,
            &everything(&layout),
        );
        assert_eq!(all.len() - candidates.len(), with_down);
    }

    #[test]
    fn an_owner_holds_all_only_when_it_names_every_key_asked() {
        let asked = [[1; 32], [2; 32]];
        assert!(holds_all(&asked, &[[2; 32], [1; 32]]), "all, in any order");
        assert!(holds_all(&asked, &[[1; 32], [2; 32], [9; 32]]), "more");
        assert!(!holds_all(&asked, &[[1; 32]]), "one missing");
        assert!(!holds_all(&asked, &[]), "none");
        assert!(holds_all(&[], &[]), "nothing asked");
    }
}
