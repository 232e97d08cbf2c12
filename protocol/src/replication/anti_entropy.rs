//! Anti-entropy between the holders of a partition: what one node must push to
//! another so that every owner of every partition ends up with every item.
//!
//! Each node periodically offers each live peer, per kind of item, the digest
//! roots of the partitions it holds items of and the current layout places on
//! that peer ([`roots_for`]). The peer answers with its exact entries for the
//! partitions whose root differs from its own ([`answer_roots`]): in the steady
//! state that is nothing, one round trip of 36 bytes per partition. The offerer
//! then pushes the items the peer lacks, and for names the registers that
//! differ ([`to_push`]); the peer merges them by the last-writer-wins rule,
//! and does the same the other way round in its own rounds.
//!
//! Pushing only what one holds, to the owners that lack it, covers every
//! repair with one mechanism: a replica that was down (hinted handoff's job),
//! partitions given to other nodes after a death or leave (re-replication),
//! partitions given to a node that joined (rebalancing), and a copy lost to
//! corruption and dropped. A node that no longer owns a partition keeps
//! offering it to the new owners until they have it, and then drops its
//! copies of chunks and manifests ([`handoff`](super::handoff_candidates)).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::digest::{DigestEntry, PartitionDigest, diff_entries};
use crate::membership::NodeId;
use crate::placement::{Layout, Partition};

/// A kind of replicated item; each kind has its own digests (a chunk id and an
/// object id never share a digest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ItemKind {
    /// Chunks, keyed by chunk id; immutable (version 0).
    Chunk,
    /// Manifests, keyed by object id; immutable (version 0).
    Manifest,
    /// Name registers, keyed by [`name_hash`](crate::placement::name_hash),
    /// versioned by [`NameEntry::version`](crate::names::NameEntry::version).
    Name,
    /// The references to one target (chunk or object id), keyed by the target,
    /// versioned by [`refs_fingerprint`](super::refs_fingerprint).
    Ref,
}

impl ItemKind {
    /// Every kind, in the order a round offers them: references before their
    /// targets (a target never arrives looking unreferenced), chunks before
    /// the manifests that name them, manifests before the names that point at
    /// them.
    pub const ALL: [ItemKind; 4] = [
        ItemKind::Ref,
        ItemKind::Chunk,
        ItemKind::Manifest,
        ItemKind::Name,
    ];

    /// The kind's name in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Chunk => "chunk",
            ItemKind::Manifest => "manifest",
            ItemKind::Name => "name",
            ItemKind::Ref => "reference",
        }
    }
}

/// A node's entries of one kind, by partition index.
pub type Inventory = BTreeMap<u32, Vec<DigestEntry>>;

/// Partition index and digest root, as offered.
pub type Root = (u32, [u8; 32]);

/// The digest root of one partition's entries.
pub fn root_of(entries: &[DigestEntry]) -> [u8; 32] {
    PartitionDigest::build(entries.iter().copied()).root()
}

/// What to offer `peer`: the root of every partition of `inventory` that
/// `layout` places on `peer`, in partition order.
pub fn roots_for(layout: &Layout, peer: &NodeId, inventory: &Inventory) -> Vec<Root> {
    inventory
        .iter()
        .filter(|&(&p, entries)| {
            !entries.is_empty()
                && layout
                    .partitions()
                    .partition(p)
                    .is_some_and(|p| layout.holds(peer, p))
        })
        .map(|(&p, entries)| (p, root_of(entries)))
        .collect()
}

/// Entries in one answer at most (40 bytes each: well inside a frame). The
/// partitions past the limit are answered in a later round.
pub const MAX_ANSWER_ENTRIES: usize = 16_384;

/// The answer to an offer: for each offered partition whose root differs from
/// ours (we hold nothing of it, or something else), our entries of it, up to
/// [`MAX_ANSWER_ENTRIES`] in all, so the answer always fits in a frame. The
/// first differing partition is always answered, cut to that many entries if
/// it holds more: the offerer then pushes items we may already hold (a wasted
/// transfer, never a lost one). An offer naming a partition twice is answered
/// once.
pub fn answer_roots(inventory: &Inventory, offered: &[Root]) -> Vec<(u32, Vec<DigestEntry>)> {
    let mut seen = BTreeSet::new();
    let mut answer = Vec::new();
    let mut total = 0;
    for &(p, root) in offered {
        if !seen.insert(p) {
            continue;
        }
        let ours = inventory.get(&p).map(Vec::as_slice).unwrap_or_default();
        if root_of(ours) == root {
            continue;
        }
        if !answer.is_empty() && total + ours.len() > MAX_ANSWER_ENTRIES {
            break;
        }
        let cut = &ours[..ours.len().min(MAX_ANSWER_ENTRIES)];
        total += cut.len();
        answer.push((p, cut.to_vec()));
    }
    answer
}

/// The keys to push to a peer whose entries of a partition are `theirs`: the
/// ones it lacks, and the ones it holds at another version (a name register;
/// the peer merges, so pushing ours is safe whichever is newer).
pub fn to_push(ours: &[DigestEntry], theirs: &[DigestEntry]) -> Vec<[u8; 32]> {
    let diff = diff_entries(ours, theirs);
    let mut keys = diff.push;
    keys.extend(diff.reconcile);
    keys.sort_unstable();
    keys
}

/// The keys to fetch back from a peer whose entries of a partition are
/// `theirs`, for a kind merged both ways (references): the ones both hold at
/// another version. A node offering a partition it no longer owns learns this
/// way what its owners know — that a reference died — which it would
/// otherwise never hear, since owners push only to owners.
pub fn to_pull(ours: &[DigestEntry], theirs: &[DigestEntry]) -> Vec<[u8; 32]> {
    let mut keys = diff_entries(ours, theirs).reconcile;
    keys.sort_unstable();
    keys
}

/// The partition of a key, by the layout's partition count.
pub fn partition_of(layout: &Layout, key: &[u8; 32]) -> Partition {
    layout.partitions().of_hash(key)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn layout(n: u64) -> Layout {
        Layout::of_test_nodes(n)
    }

    fn inventory(layout: &Layout, entries: &[DigestEntry]) -> Inventory {
        let mut inv = Inventory::new();
        for &(key, version) in entries {
            let p = partition_of(layout, &key).index();
            inv.entry(p).or_default().push((key, version));
        }
        inv
    }

    fn key(i: u32) -> [u8; 32] {
        *blake3::hash(&i.to_be_bytes()).as_bytes()
    }

    #[test]
    fn equal_holdings_need_nothing_and_a_missing_item_is_pushed() {
        let layout = layout(3);
        let entries: Vec<DigestEntry> = (0..200).map(|i| (key(i), 0)).collect();
        let ours = inventory(&layout, &entries);
        let peer = NodeId::synthetic(2);
        let offer = roots_for(&layout, &peer, &ours);
        // With three nodes and RF 3 the peer owns every partition we hold.
        assert_eq!(offer.len(), ours.len());
        assert!(answer_roots(&ours, &offer).is_empty());

        let mut theirs_entries = entries.clone();
        let lost = theirs_entries.remove(17);
        let theirs = inventory(&layout, &theirs_entries);
        let answer = answer_roots(&theirs, &offer);
        assert_eq!(
            answer.len(),
            1,
            "only the partition of the lost item differs"
        );
        let (p, their_entries) = &answer[0];
        assert_eq!(to_push(&ours[p], their_entries), vec![lost.0]);
    }

    #[test]
    fn only_partitions_the_peer_owns_are_offered() {
        let layout = layout(6);
        let entries: Vec<DigestEntry> = (0..500).map(|i| (key(i), 0)).collect();
        let ours = inventory(&layout, &entries);
        let peer = NodeId::synthetic(4);
        for (p, _) in roots_for(&layout, &peer, &ours) {
            let partition = layout.partitions().partition(p).unwrap();
            assert!(layout.holds(&peer, partition));
        }
        assert!(roots_for(&layout, &peer, &ours).len() < ours.len());
    }

    #[test]
    fn a_register_at_another_version_is_pushed_and_a_repeated_offer_answered_once() {
        let layout = layout(3);
        let ours = inventory(&layout, &[(key(1), 5), (key(2), 0)]);
        let theirs = inventory(&layout, &[(key(1), 9), (key(2), 0)]);
        let mut offer = roots_for(&layout, &NodeId::synthetic(1), &ours);
        offer.extend(offer.clone());
        let answer = answer_roots(&theirs, &offer);
        assert_eq!(answer.len(), 1);
        assert_eq!(to_push(&ours[&answer[0].0], &answer[0].1), vec![key(1)]);
    }

    #[test]
    fn an_answer_never_exceeds_the_entry_limit() {
        let mut ours = Inventory::new();
        ours.insert(
            0,
            (0..MAX_ANSWER_ENTRIES as u64 + 10)
                .map(|i| ([1; 32], i))
                .collect(),
        );
        ours.insert(1, vec![([2; 32], 0)]);
        let offer = vec![(0, [0; 32]), (1, [0; 32])];
        let answer = answer_roots(&ours, &offer);
        assert_eq!(
            answer.len(),
            1,
            "the second partition waits for a later round"
        );
        assert_eq!(answer[0].1.len(), MAX_ANSWER_ENTRIES);
    }

    proptest! {
        /// Whatever the two sides hold, after the offerer pushes what the
        /// answer asks for, the peer holds everything the offerer held of the
        /// partitions it owns.
        #[test]
        fn pushing_the_answer_leaves_the_peer_with_everything_offered(
            ours in proptest::collection::btree_set(0u32..400, 0..120),
            theirs in proptest::collection::btree_set(0u32..400, 0..120),
        ) {
            let layout = layout(5);
            let peer = NodeId::synthetic(3);
            let ours_e: Vec<DigestEntry> = ours.iter().map(|&i| (key(i), 0)).collect();
            let theirs_e: Vec<DigestEntry> = theirs.iter().map(|&i| (key(i), 0)).collect();
            let (ours_inv, theirs_inv) = (inventory(&layout, &ours_e), inventory(&layout, &theirs_e));
            let offer = roots_for(&layout, &peer, &ours_inv);
            let mut after: BTreeSet<[u8; 32]> = theirs_e.iter().map(|e| e.0).collect();
            for (p, entries) in answer_roots(&theirs_inv, &offer) {
                after.extend(to_push(&ours_inv[&p], &entries));
            }
            for (p, entries) in &ours_inv {
                let owned = layout.holds(&peer, layout.partitions().partition(*p).unwrap());
                for (k, _) in entries {
                    prop_assert_eq!(after.contains(k), owned || theirs_e.iter().any(|e| e.0 == *k));
                }
            }
        }
    }
}
