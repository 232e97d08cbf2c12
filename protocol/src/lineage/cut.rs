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
//!    all of this node's heads, and
//! 4. it has the smallest node id among them, so that the members do not cut
//!    competing epochs at once.
//!
//! Edits made anywhere after the check are not lost: every node replays what
//! it holds beyond the base onto the epoch when it adopts it.

use automerge::ReadDoc;

use super::document::LineageDoc;
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
    pub fn epoch_to_cut(&self, me: &[u8], peers: &[CutPeer<'_>], after_ops: u64) -> Option<Epoch> {
        if after_ops == 0 {
            return None;
        }
        let mut heads = self.heads();
        heads.sort();
        let ready = peers.iter().all(|p| {
            p.alive
                && me < p.id
                && p.sync.is_some_and(|s| {
                    let mut shared = s.shared_heads();
                    shared.sort();
                    s.epoch() == self.epoch() && shared == heads
                })
        });
        (ready && self.history_ops() >= after_ops).then(|| self.propose_epoch())
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
    fn the_smallest_member_cuts_once_every_member_is_alive_and_holds_its_heads() {
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
        // A local edit the peer has not seen yet.
        a.edit(NOW, |tx| tx.upsert(&NewEntity::parse("table:late")?))
            .unwrap();
        assert_eq!(a.epoch_to_cut(b"a", &[peer(true, Some(&ab))], 10), None);
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
