//! Sync between two nodes: Automerge's sync protocol, framed with the namespace
//! and epoch so histories of different namespaces or epochs never mix.
//!
//! The node keeps one [`PeerSync`] per (peer, namespace), calls
//! [`LineageDoc::generate_sync_message`] after every local change and on a
//! timer (anti-entropy), sends what it returns, and feeds what arrives to
//! [`LineageDoc::receive_sync_message`] — then generates again, until both
//! sides return `None`. The transport must be reliable and ordered (a libp2p
//! stream). On a new connection, start with a fresh or decoded `PeerSync`.
//!
//! Frame (version 1): `b'S'`, `1`, namespace (u8 length + bytes), epoch number
//! (u64 big-endian), base count (u8) and base heads (32 bytes each), then the
//! Automerge sync message. Bad bytes are an error, never a panic. (At most 255
//! base heads travel; an epoch cut at more heads than that — 256 concurrent
//! writers at the cut — would need a new frame version.)
//!
//! The first message of a session carries no changes; later ones carry every
//! change the peer lacks, so a new peer's first sync of a large graph is large
//! (the node's stream must allow it, or seed the peer with a saved document).

use automerge::PatchLog;
use automerge::sync::{Message, State, SyncDoc};

use automerge::Automerge;

use super::document::{Head, LineageDoc};
use super::epoch::Epoch;
use super::error::{EpochError, SyncError};
use super::model::Millis;

const MAGIC: u8 = b'S';
const VERSION: u8 = 1;

/// What this node knows of one peer's copy of one namespace.
#[derive(Debug, Clone)]
pub struct PeerSync {
    state: State,
    epoch: Epoch,
}

impl Default for PeerSync {
    fn default() -> Self {
        Self::new()
    }
}

impl PeerSync {
    /// A peer we know nothing about.
    pub fn new() -> Self {
        Self {
            state: State::new(),
            epoch: Epoch::zero(),
        }
    }

    fn for_epoch(epoch: &Epoch) -> Self {
        Self {
            state: State::new(),
            epoch: epoch.clone(),
        }
    }

    /// Forgets everything but what both sides are known to share (call after
    /// an error or a reconnect).
    pub fn reset(&mut self) {
        let shared = std::mem::take(&mut self.state.shared_heads);
        self.state = State::new();
        self.state.shared_heads = shared;
    }

    /// The epoch of the last message exchanged.
    pub fn epoch(&self) -> &Epoch {
        &self.epoch
    }

    /// The heads both sides are known to have.
    pub fn shared_heads(&self) -> Vec<Head> {
        super::document::heads_of(&self.state.shared_heads)
    }

    /// The heads the peer last reported, if it has.
    pub fn their_heads(&self) -> Option<Vec<Head>> {
        self.state
            .their_heads
            .as_deref()
            .map(super::document::heads_of)
    }

    /// The part worth persisting across connections (the shared heads and the
    /// epoch they belong to).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_epoch(&mut out, &self.epoch);
        out.extend(self.state.encode());
        out
    }

    /// Reads what [`encode`](Self::encode) wrote.
    pub fn decode(bytes: &[u8]) -> Result<Self, SyncError> {
        let mut r = Reader(bytes);
        let epoch = r.epoch()?;
        let state = State::decode(r.0).map_err(|e| SyncError::Malformed(e.to_string()))?;
        Ok(Self { state, epoch })
    }
}

/// The header of a sync frame: which document it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncHeader {
    /// The namespace.
    pub namespace: String,
    /// The sender's epoch.
    pub epoch: Epoch,
}

impl SyncHeader {
    /// Reads the header of a frame (to route it to a namespace, or to learn a
    /// peer's epoch) without applying anything.
    pub fn parse(frame: &[u8]) -> Result<(SyncHeader, &[u8]), SyncError> {
        let mut r = Reader(frame);
        if r.u8()? != MAGIC {
            return Err(SyncError::Malformed("not a lineage sync frame".into()));
        }
        let version = r.u8()?;
        if version != VERSION {
            return Err(SyncError::Malformed(format!(
                "unknown frame version {version}"
            )));
        }
        let len = r.u8()? as usize;
        let ns = r.take(len)?;
        let namespace = String::from_utf8(ns.to_vec())
            .map_err(|_| SyncError::Malformed("namespace is not UTF-8".into()))?;
        let epoch = r.epoch()?;
        Ok((SyncHeader { namespace, epoch }, r.0))
    }
}

fn put_epoch(out: &mut Vec<u8>, epoch: &Epoch) {
    out.extend(epoch.number.to_be_bytes());
    let n = epoch.base.len().min(255);
    out.push(n as u8);
    for h in &epoch.base[..n] {
        out.extend(h.0);
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SyncError> {
        if self.0.len() < n {
            return Err(SyncError::Malformed("truncated frame".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, SyncError> {
        Ok(self.take(1)?[0])
    }

    fn epoch(&mut self) -> Result<Epoch, SyncError> {
        let number = u64::from_be_bytes(self.take(8)?.try_into().unwrap_or_default());
        let n = self.u8()? as usize;
        let mut base = Vec::with_capacity(n);
        for _ in 0..n {
            base.push(Head(self.take(32)?.try_into().unwrap_or_default()));
        }
        Ok(Epoch { number, base })
    }
}

/// What [`LineageDoc::receive_sync`] did with a message.
#[derive(Debug)]
pub enum Received {
    /// Applied, on the same epoch; whether the document changed.
    Applied {
        /// The document gained changes.
        changed: bool,
        /// When each change gained was made, in milliseconds by its author's
        /// clock (changes without a time left out): how late edits arrive.
        made_at: Vec<Millis>,
    },
    /// The message came from a later epoch: the document moved to it (its
    /// own later edits replayed on top), then applied the message. The
    /// document was replaced: store it whole.
    Moved {
        /// The document of the epoch left (to keep for members still on it).
        previous: Box<LineageDoc>,
    },
    /// The peer is on an earlier epoch: nothing applied. Our next message
    /// moves it.
    PeerBehind,
    /// The peer is on a later epoch this document cannot move to (it lacks
    /// changes of the cut's base): nothing applied, nothing lost.
    CannotMove(EpochError),
}

impl LineageDoc {
    /// Applies a message from `peer` at time `now`, moving to the sender's
    /// epoch first when it supersedes ours (see [`Received`]). An empty
    /// document (a new member) moves to any later epoch at once.
    pub fn receive_sync(
        &mut self,
        peer: &mut PeerSync,
        frame: &[u8],
        now: Millis,
    ) -> Result<Received, SyncError> {
        let (header, _) = SyncHeader::parse(frame)?;
        if header.namespace != self.namespace() || header.epoch == self.epoch {
            let before = self.doc.get_heads();
            let changed = self.receive_sync_message(peer, frame)?;
            let made_at = match changed {
                true => self.made_at_since(&before),
                false => Vec::new(),
            };
            return Ok(Received::Applied { changed, made_at });
        }
        // An empty document holds nothing to lose: it follows any peer, so a
        // bogus epoch from one peer cannot keep it from the others.
        let empty = self.stats().changes == 0;
        if !empty && !header.epoch.supersedes(&self.epoch) {
            return Ok(Received::PeerBehind);
        }
        let next = if empty {
            let doc = Automerge::new().with_actor(self.doc.get_actor().clone());
            LineageDoc::from_parts(self.namespace(), doc, header.epoch)
        } else {
            match self.adopt_epoch(&header.epoch, now) {
                Ok(next) => next,
                Err(e) => return Ok(Received::CannotMove(e)),
            }
        };
        let previous = Box::new(std::mem::replace(self, next));
        self.receive_sync_message(peer, frame)?;
        Ok(Received::Moved { previous })
    }

    /// When each change after `heads` was made (see [`Received::Applied`]).
    fn made_at_since(&self, heads: &[automerge::ChangeHash]) -> Vec<Millis> {
        self.doc
            .get_changes(heads)
            .iter()
            .filter_map(|c| change_millis(c.timestamp()))
            .collect()
    }

    /// The next message for `peer`, or `None` if there is nothing to say (the
    /// peer is up to date, or a message is in flight).
    pub fn generate_sync_message(&self, peer: &mut PeerSync) -> Option<Vec<u8>> {
        if peer.epoch != self.epoch {
            *peer = PeerSync::for_epoch(&self.epoch);
        }
        let message = self.doc.generate_sync_message(&mut peer.state)?;
        let mut out = vec![MAGIC, VERSION];
        let ns = self.namespace().as_bytes();
        out.push(ns.len() as u8);
        out.extend(ns);
        put_epoch(&mut out, &self.epoch);
        out.extend(message.encode());
        Some(out)
    }

    /// Applies a message from `peer`. Returns whether the document changed (if
    /// it did, the index is already current; persist with
    /// [`save_incremental`](Self::save_incremental) and push to other peers).
    pub fn receive_sync_message(
        &mut self,
        peer: &mut PeerSync,
        frame: &[u8],
    ) -> Result<bool, SyncError> {
        let (header, body) = SyncHeader::parse(frame)?;
        if header.namespace != self.namespace() {
            return Err(SyncError::Namespace {
                ours: self.namespace().into(),
                theirs: header.namespace,
            });
        }
        if header.epoch != self.epoch {
            return Err(SyncError::Epoch {
                ours: self.epoch.clone(),
                theirs: header.epoch,
            });
        }
        if peer.epoch != self.epoch {
            *peer = PeerSync::for_epoch(&self.epoch);
        }
        let message = Message::decode(body).map_err(|e| SyncError::Malformed(e.to_string()))?;
        let before = self.doc.get_heads();
        let mut log = PatchLog::active();
        let result = self
            .doc
            .receive_sync_message_log_patches(&mut peer.state, message, &mut log);
        self.absorb(&mut log);
        if let Err(e) = result {
            peer.reset();
            return Err(SyncError::Refused(e.to_string()));
        }
        Ok(self.doc.get_heads() != before)
    }
}

/// A change's time in milliseconds. Changes are stamped in milliseconds;
/// documents written before that hold whole seconds, told apart by size
/// (10¹¹ ms is 1973, 10¹¹ s far in the future). No time (0, as epoch
/// snapshots have) is `None`.
fn change_millis(time: i64) -> Option<Millis> {
    match time {
        ..=0 => None,
        1..100_000_000_000 => Some(time * 1000),
        _ => Some(time),
    }
}

#[cfg(test)]
mod tests {
    use super::change_millis;

    #[test]
    fn change_times_read_as_milliseconds_whether_stored_in_seconds_or_not() {
        assert_eq!(change_millis(1_795_000_000_123), Some(1_795_000_000_123));
        assert_eq!(change_millis(1_795_000_000), Some(1_795_000_000_000));
        assert_eq!(change_millis(0), None);
        assert_eq!(change_millis(-5), None);
    }
}
