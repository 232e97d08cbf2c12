//! Epochs: how the document's growth stays bounded.
//!
//! Automerge keeps every operation ever made (a removal is a tombstone) and has
//! no truncation, so a long-lived graph with churn grows without bound. Stemma
//! bounds it by *epochs*: an epoch is a fresh document holding only the live
//! state of the previous one at an agreed point of its history, and every node
//! moves to it.
//!
//! **The rule.**
//!
//! 1. A proposal is `Epoch { number: current + 1, base }` where `base` is a set
//!    of heads of the current epoch's history. Who proposes and when is the
//!    rule of `cut.rs`: the member with the smallest node id, once the history
//!    has grown past a threshold and every member is alive and holds `base`,
//!    so nobody is left behind.
//! 2. The epoch document is a *deterministic function of the proposal*: one
//!    change, made by an actor derived from the proposal's id, at time 0,
//!    holding the live state at `base` (winners only; removed entities,
//!    attributes left by edits that lost to a removal, and runs of unlinked
//!    edges are dropped; dangling edges are kept). So every node that has `base`
//!    computes the *same bytes and the same change hash* itself
//!    ([`LineageDoc::adopt_epoch`]); only the small proposal travels.
//! 3. Edits a node made after `base` (or received from peers) are replayed on
//!    top of the epoch document as one new change by the node's own actor:
//!    every key whose value changed between `base` and the node's heads is
//!    written with its current value. Concurrent conflicts among those edits
//!    are resolved by then (the winner is kept).
//! 4. Competing proposals (two sides of a partition each cut an epoch) are
//!    ordered by [`Epoch::supersedes`]: the higher number wins, and for equal
//!    numbers the smaller id. A node on the losing epoch adopts the winner from
//!    the *previous* epoch's document, which nodes keep until every member
//!    reports the new epoch, then replays what it wrote on the losing epoch
//!    with [`LineageDoc::replay_since`] from [`LineageDoc::epoch_start`].
//! 5. Sync messages carry the epoch; peers on different epochs do not mix
//!    histories (the receiver gets [`SyncError::Epoch`](super::SyncError::Epoch)
//!    and either adopts or waits for the peer to).
//!
//! What is lost: conflict history older than `base` (the epoch keeps winners),
//! and undo past `base`. What is gained: the stored size returns to the size of
//! a fresh save of the live state (the lineage benchmark measures both).

use std::collections::HashMap;
use std::fmt;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, ChangeHash, PatchLog, ROOT, ReadDoc, ScalarValue, hydrate};
use serde::{Deserialize, Serialize};

use super::document::{Head, LineageDoc, patch_keys};
use super::error::EpochError;
use super::keys::{self, Field, FieldValue, Key};
use super::model::Millis;
use super::state::LiveState;

/// An epoch: its number and the heads of the previous epoch's history it was
/// cut at. Epoch 0 is the document every namespace starts with.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Epoch {
    /// 0, 1, 2…
    pub number: u64,
    /// Heads of the previous epoch at the cut (empty for epoch 0).
    pub base: Vec<Head>,
}

impl Epoch {
    /// Epoch 0.
    pub fn zero() -> Self {
        Self {
            number: 0,
            base: Vec::new(),
        }
    }

    /// A proposal for the epoch after this one, cut at `base`.
    pub fn next(&self, base: Vec<Head>) -> Self {
        let mut base = base;
        base.sort();
        base.dedup();
        Self {
            number: self.number + 1,
            base,
        }
    }

    /// A digest of the epoch, the same on every node.
    pub fn id(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(b"stemma lineage epoch v1");
        h.update(&self.number.to_be_bytes());
        let mut base = self.base.clone();
        base.sort();
        for b in &base {
            h.update(&b.0);
        }
        *h.finalize().as_bytes()
    }

    /// Whether every node should move from `other` to `self`: a higher number
    /// wins; for equal numbers the smaller id wins.
    pub fn supersedes(&self, other: &Epoch) -> bool {
        self.number > other.number || (self.number == other.number && self.id() < other.id())
    }

    fn actor(&self) -> ActorId {
        let mut h = blake3::Hasher::new();
        h.update(b"stemma lineage epoch actor");
        h.update(&self.id());
        ActorId::from(&h.finalize().as_bytes()[..16])
    }

    /// Reads the epoch recorded in a document (epoch 0 if none).
    pub(crate) fn read(doc: &Automerge) -> Epoch {
        let number = doc
            .get(ROOT, keys::meta_key("epoch"))
            .ok()
            .flatten()
            .and_then(|(v, _)| v.as_u64())
            .unwrap_or(0);
        let base = doc
            .get(ROOT, keys::meta_key("base"))
            .ok()
            .flatten()
            .and_then(|(v, _)| v.as_str().map(str::to_owned))
            .map(|s| s.split(',').filter_map(Head::parse).collect())
            .unwrap_or_default();
        Epoch { number, base }
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.number, &hex::encode(self.id())[..8])
    }
}

fn doc_err(e: automerge::AutomergeError) -> EpochError {
    EpochError::Document(e.to_string())
}

impl LineageDoc {
    /// The proposal for the next epoch, cut at this document's heads.
    pub fn propose_epoch(&self) -> Epoch {
        self.epoch.next(self.heads())
    }

    /// Cuts the next epoch at this document's heads: a new document holding
    /// the live state, with the same namespace and actor. Deterministic: every
    /// node at the same heads gets the same bytes.
    pub fn compact_epoch(&self) -> Result<LineageDoc, EpochError> {
        let proposal = self.propose_epoch();
        let state = self.index.live_state();
        self.snapshot(&proposal, &state)
    }

    /// Moves to the proposed epoch: computes its document from this one's
    /// history at `proposal.base`, then replays this node's later edits on top
    /// (as one change made at `now`). This document is not changed; keep it
    /// until every member has moved (see the module docs).
    pub fn adopt_epoch(&self, proposal: &Epoch, now: Millis) -> Result<LineageDoc, EpochError> {
        if !proposal.supersedes(&self.epoch) {
            return Err(EpochError::NotNewer {
                current: self.epoch.clone(),
                proposed: proposal.clone(),
            });
        }
        let missing = proposal.base.iter().filter(|h| !self.has_change(h)).count();
        if missing > 0 || proposal.number != self.epoch.number + 1 {
            return Err(EpochError::MissingBase {
                missing: missing.max(1),
            });
        }
        let base: Vec<ChangeHash> = proposal.base.iter().map(|h| h.to_hash()).collect();
        let state = if base == self.doc.get_heads() {
            self.index.live_state()
        } else {
            state_at(&self.doc, &base)
        };
        let mut next = self.snapshot(proposal, &state)?;
        self.replay_since(&proposal.base, &mut next, now)?;
        Ok(next)
    }

    /// The heads right after this epoch's first change: replaying from there
    /// carries everything written during the epoch.
    pub fn epoch_start(&self) -> Vec<Head> {
        if self.epoch.number == 0 {
            return Vec::new();
        }
        let actor = self.epoch.actor();
        self.doc
            .get_changes_meta(&[])
            .into_iter()
            .filter(|c| c.deps.is_empty() && *c.actor == actor)
            .map(|c| Head::from_hash(c.hash))
            .collect()
    }

    /// Writes onto `onto`, as one change at `now`, the current value of every
    /// key that changed in this document since `since`. Returns how many keys
    /// were written.
    pub fn replay_since(
        &self,
        since: &[Head],
        onto: &mut LineageDoc,
        now: Millis,
    ) -> Result<usize, EpochError> {
        let since: Vec<ChangeHash> = since.iter().map(|h| h.to_hash()).collect();
        let patches = self.doc.diff(&since, &self.doc.get_heads());
        let mut touched: Vec<&str> = patch_keys(&patches).collect();
        touched.sort_unstable();
        touched.dedup();
        let mut writes: Vec<(String, Option<ScalarValue>)> = Vec::new();
        for key in touched {
            if Key::parse(key).is_none() || key.starts_with("m\u{1f}") {
                continue;
            }
            let ours = current_scalar(&self.doc, key);
            let theirs = current_scalar(&onto.doc, key);
            if ours != theirs {
                writes.push((key.to_owned(), ours));
            }
        }
        if writes.is_empty() {
            return Ok(0);
        }
        let count = writes.len();
        let mut tx = onto
            .doc
            .transaction_log_patches(PatchLog::active())
            .map_err(|e| EpochError::Document(e.to_string()))?;
        for (key, value) in writes {
            match value {
                Some(v) => tx.put(ROOT, key, v).map_err(doc_err)?,
                None => {
                    if tx.get(ROOT, key.as_str()).map_err(doc_err)?.is_some() {
                        tx.delete(ROOT, key).map_err(doc_err)?;
                    }
                }
            }
        }
        let (_, mut log) = tx.commit_with(CommitOptions::default().with_time(now));
        onto.absorb(&mut log);
        Ok(count)
    }

    fn snapshot(&self, proposal: &Epoch, state: &LiveState) -> Result<LineageDoc, EpochError> {
        let mut map: HashMap<String, hydrate::Value> = HashMap::new();
        for (k, v) in encode_state(state) {
            map.insert(k, hydrate::Value::Scalar(v));
        }
        map.insert(
            keys::meta_key("epoch"),
            hydrate::Value::Scalar(ScalarValue::Uint(proposal.number)),
        );
        let base: Vec<String> = proposal.base.iter().map(Head::to_string).collect();
        map.insert(
            keys::meta_key("base"),
            hydrate::Value::Scalar(ScalarValue::Str(base.join(",").into())),
        );
        let map: hydrate::Map = map.into();
        let mut doc = Automerge::new().with_actor(proposal.actor());
        let mut tx = doc.transaction();
        tx.init_root_from_hydrate(&map).map_err(doc_err)?;
        tx.commit_with(
            CommitOptions::default()
                .with_time(0)
                .with_message(format!("stemma lineage epoch {}", proposal.number)),
        );
        doc.set_actor(self.doc.get_actor().clone());
        Ok(LineageDoc::from_parts(
            self.namespace(),
            doc,
            proposal.clone(),
        ))
    }
}

/// The value a key holds now, resolved the way the index resolves it (runs:
/// the latest run).
fn current_scalar(doc: &Automerge, key: &str) -> Option<ScalarValue> {
    if matches!(
        Key::parse(key),
        Some(Key::Entity(_, Field::Run) | Key::EdgeRun(..))
    ) {
        let all: Vec<_> = doc
            .get_all(ROOT, key)
            .ok()?
            .into_iter()
            .map(|(v, _)| v)
            .collect();
        let run = keys::resolve_runs(&all)?;
        return Some(FieldValue::Run(run).to_scalar());
    }
    let (value, _) = doc.get(ROOT, key).ok()??;
    value.as_scalar().cloned()
}

/// The live state of `doc` as of `heads`.
fn state_at(doc: &Automerge, heads: &[ChangeHash]) -> LiveState {
    let mut index = super::index::GraphIndex::new();
    let items: Vec<String> = doc
        .map_range_at(ROOT, .., heads)
        .map(|item| item.key.into_owned())
        .collect();
    for key in &items {
        index.refresh_key(doc, key, Some(heads));
    }
    index.live_state()
}

/// The key/value pairs of a live state, in the document layout.
pub(crate) fn encode_state(state: &LiveState) -> Vec<(String, ScalarValue)> {
    let mut out = Vec::new();
    for (id, rec) in &state.entities {
        let mut put = |field: Field, value: FieldValue| {
            out.push((keys::entity_key(id, &field), value.to_scalar()))
        };
        put(Field::Name, FieldValue::Text(rec.name.clone()));
        let a = &rec.attributes;
        if let Some(v) = &a.owner {
            put(Field::Owner, FieldValue::Text(v.clone()));
        }
        if let Some(v) = &a.description {
            put(Field::Description, FieldValue::Text(v.clone()));
        }
        if let Some(v) = a.level {
            put(Field::Level, FieldValue::Int(v));
        }
        if let Some(v) = &a.schema {
            put(Field::Schema, FieldValue::Text(v.clone()));
        }
        for t in &a.tags {
            put(Field::Tag(t.clone()), FieldValue::Flag);
        }
        for (k, v) in &a.extra {
            put(Field::Extra(k.clone()), FieldValue::Text(v.clone()));
        }
        if let Some(t) = rec.retired {
            put(Field::Retired, FieldValue::Time(t));
        }
        if let Some(r) = &rec.run {
            put(Field::Run, FieldValue::Run(r.clone()));
        }
    }
    for ((s, t), edge) in &state.edges {
        out.push((
            keys::edge_key(s, t),
            ScalarValue::Str(keys::encode_json(&edge.spec).into()),
        ));
        if let Some(r) = &edge.run {
            out.push((
                keys::edge_run_key(s, t),
                ScalarValue::Str(keys::encode_json(r).into()),
            ));
        }
    }
    out
}
