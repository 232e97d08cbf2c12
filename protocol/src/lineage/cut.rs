//! When a node cuts the next epoch (what an epoch is: `epoch.rs`).
//!
//! The rule keeps every node able to move: a cut's base is the cutter's
//! heads, and a node can adopt the epoch only if it holds every base change.
//! So a node cuts only when
//!
//! 1. the history of the current epoch has grown past a threshold (operations
//!    written since the epoch's own snapshot),
//! 2. every other member it knows of (alive, suspect or dead; not those that
//!    left) is alive — a member that is away might hold edits the cut would
//!    not contain, or miss the base —,
//! 3. every one of them is on this epoch and known, from the last sync, to hold
//!    the cut's base (this node's heads, or an earlier point they all hold
//!    while edits keep flowing), and
//! 4. it has the smallest node id among them, so that the members do not cut
//!    competing epochs at once.
//!
//! Edits made anywhere after the check are not lost: every node replays what
//! it holds beyond the base onto the epoch when it adopts it.

use std::collections::HashSet;

use automerge::ReadDoc;

use super::document::{Head, LineageDoc};
use super::epoch::Epoch;
use super::sync::PeerSync;

/// Another member, as the cut rule sees it.
#[derive(Debug, Clone, Copy)]
pub struct CutPeer<'a> {
    /// Its node id (any byte form, the same for every member: ids are compared).
    pub id: &'a [u8],
    /// Alive now (not suspect, not dead).
    pub alive: bool,
    /// What the last sync with it on this namespace established, if any.
    pub sync: Option<&'a PeerSync>,
}

impl LineageDoc {
    /// Operations written in this epoch after its snapshot: the history an
    /// epoch would drop.
    pub fn history_ops(&self) -> u64 {
        let snapshot: u64 = self
            .epoch_start()
            .iter()
            .filter_map(|h| self.doc.get_change_by_hash(&h.to_hash()))
            .map(|c| c.len() as u64)
            .sum();
        self.stats().ops.saturating_sub(snapshot)
    }

    /// The epoch this node should cut now, by the rule of the module docs:
    /// `me` is this node's id, `peers` every other member it knows of that
    /// has not left, `after_ops` the threshold (0: never). Cut it with
    /// [`adopt_epoch`](Self::adopt_epoch).
    ///
    /// The base is this node's heads if every peer holds them, or else the
    /// heads some peer shares with us if every other peer holds those: while
    /// edits keep flowing, the members hold an earlier point in common even
    /// though never the latest one.
    pub fn epoch_to_cut(&self, me: &[u8], peers: &[CutPeer<'_>], after_ops: u64) -> Option<Epoch> {
        if after_ops == 0 {
            return None;
        }
        let mut shared: Vec<Vec<Head>> = Vec::with_capacity(peers.len());
        for p in peers {
            let sync = p.sync.filter(|s| s.epoch() == self.epoch())?;
            if !p.alive || me >= p.id {
                return None;
            }
            shared.push(sync.shared_heads());
        }
        if self.history_ops() < after_ops {
            return None;
        }
        // For each peer, what we know it holds: everything but the changes
        // after the heads it shares with us.
        let lacking: Vec<HashSet<Head>> = shared
            .iter()
            .map(|heads| {
                let heads: Vec<_> = heads.iter().map(|h| h.to_hash()).collect();
                self.doc
                    .get_changes_meta(&heads)
                    .into_iter()
                    .map(|c| Head::from_hash(c.hash))
                    .collect()
            })
            .collect();
        let base = std::iter::once(self.heads()).chain(shared).find(|base| {
            !base.is_empty()
                && base.iter().all(|h| self.has_change(h))
                && lacking.iter().all(|l| base.iter().all(|h| !l.contains(h)))
        })?;
        Some(self.epoch().next(base))
    }

    /// Whether every peer has spoken to us on this document's epoch (`None`:
    /// a peer we have no current sync with), so that nobody needs the previous
    /// epoch's document any more.
    pub fn all_moved<'a>(&self, peers: impl IntoIterator<Item = Option<&'a PeerSync>>) -> bool {
        peers
            .into_iter()
            .all(|s| s.is_some_and(|s| s.epoch() == self.epoch() && s.their_heads().is_some()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lineage::NewEntity;

    const NOW: i64 = 1_700_000_000_000;

    fn doc(actor: &[u8], entities: usize) -> LineageDoc {
        let mut doc = LineageDoc::new("default", actor).unwrap();
        for i in 0..entities {
            doc.edit(NOW, |tx| {
                tx.upsert(&NewEntity::parse(&format!("table:t{i}"))?)
            })
            .unwrap();
        }
        doc
    }

    /// Syncs `a` and `b` until neither has anything to say; returns a's
    /// state of b.
    fn sync(a: &mut LineageDoc, b: &mut LineageDoc) -> PeerSync {
        let (mut ab, mut ba) = (PeerSync::new(), PeerSync::new());
        for _ in 0..16 {
            let m1 = a.generate_sync_message(&mut ab);
            if let Some(m) = &m1 {
                b.receive_sync_message(&mut ba, m).unwrap();
            }
            let m2 = b.generate_sync_message(&mut ba);
            if let Some(m) = &m2 {
                a.receive_sync_message(&mut ab, m).unwrap();
            }
            if m1.is_none() && m2.is_none() {
                return ab;
            }
        }
        panic!("no agreement in 16 rounds");
    }

    #[test]
    fn the_smallest_member_cuts_at_a_point_every_live_member_holds() {
        let mut a = doc(b"a", 20);
        let mut b = LineageDoc::new("default", b"b").unwrap();
        let ab = sync(&mut a, &mut b);
        let peer = |alive, sync| CutPeer {
            id: b"b",
            alive,
            sync,
        };
        let proposal = a.epoch_to_cut(b"a", &[peer(true, Some(&ab))], 10).unwrap();
        assert_eq!(proposal.number, 1);
        assert_eq!(proposal.base, a.heads());

        // Each condition alone stops it.
        assert_eq!(a.epoch_to_cut(b"a", &[peer(true, Some(&ab))], 0), None);
        assert_eq!(a.epoch_to_cut(b"a", &[peer(true, Some(&ab))], 1000), None);
        assert_eq!(a.epoch_to_cut(b"a", &[peer(false, Some(&ab))], 10), None);
        assert_eq!(a.epoch_to_cut(b"a", &[peer(true, None)], 10), None);
        assert_eq!(a.epoch_to_cut(b"c", &[peer(true, Some(&ab))], 10), None);
        // Edits the peer has not seen yet: the cut is at the heads both hold,
        // and adopting it keeps the later edit.
        let shared = a.heads();
        a.edit(NOW, |tx| tx.upsert(&NewEntity::parse("table:late")?))
            .unwrap();
        let proposal = a.epoch_to_cut(b"a", &[peer(true, Some(&ab))], 10).unwrap();
        assert_eq!(proposal.base, shared);
        let next = a.adopt_epoch(&proposal, NOW).unwrap();
        assert_eq!(next.index().live_state(), a.index().live_state());
        // A peer that holds nothing in common: no cut.
        let mut c = LineageDoc::new("default", b"c").unwrap();
        let mut other = doc(b"d", 1);
        let cd = sync(&mut c, &mut other);
        let stranger = CutPeer {
            id: b"c",
            alive: true,
            sync: Some(&cd),
        };
        assert_eq!(
            a.epoch_to_cut(b"a", &[peer(true, Some(&ab)), stranger], 10),
            None
        );
    }

    #[test]
    fn the_previous_epoch_is_needed_until_every_peer_spoke_on_the_new_one() {
        let mut a = doc(b"a", 5);
        let mut b = LineageDoc::new("default", b"b").unwrap();
        let ab = sync(&mut a, &mut b);
        assert!(a.all_moved([Some(&ab)]));
        assert!(!a.all_moved([Some(&ab), None]));
        assert!(!a.all_moved([Some(&PeerSync::new())]));
        let mut next = a.adopt_epoch(&a.propose_epoch(), NOW).unwrap();
        assert!(
            !next.all_moved([Some(&ab)]),
            "b spoke on the old epoch only"
        );
        let mut b = b.adopt_epoch(next.epoch(), NOW).unwrap();
        let ab = sync(&mut next, &mut b);
        assert!(next.all_moved([Some(&ab)]));
    }

    #[test]
    fn an_epochs_own_snapshot_is_not_history() {
        let a = doc(b"a", 30);
        assert!(a.history_ops() >= 30);
        let next = a.adopt_epoch(&a.propose_epoch(), NOW).unwrap();
        assert_eq!(next.history_ops(), 0);
        assert_eq!(next.epoch_to_cut(b"a", &[], 1), None);
        let mut next = next;
        next.edit(NOW, |tx| tx.upsert(&NewEntity::parse("table:new")?))
            .unwrap();
        assert!(next.history_ops() > 0);
        assert_eq!(next.epoch_to_cut(b"a", &[], 1).unwrap().number, 2);
    }
}
