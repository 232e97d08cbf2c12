//! [`LineageDoc`]: one namespace's lineage graph as an Automerge document, with
//! its graph index kept current.
//!
//! The node owns one `LineageDoc` per namespace and drives it: edits in (with
//! the node id as the actor and the time passed in), bytes out for its append
//! log (`save_incremental`) and for peers (the sync protocol in `sync.rs`).
//! Every path that changes the document updates the index from Automerge's
//! patch log before returning, so queries always see the document's state.

use std::fmt;

use automerge::transaction::CommitOptions;
use automerge::{
    ActorId, Automerge, ChangeHash, Patch, PatchAction, PatchLog, Prop, ROOT, ReadDoc,
};
use serde::{Deserialize, Serialize};

use super::edit::{Edit, Op};
use super::epoch::Epoch;
use super::error::{EditError, LoadError, ModelError, SyncError};
use super::index::GraphIndex;
use super::keys::{self, Field, FieldValue};
use super::model::{AttrKey, EdgeSpec, EntityId, Millis};

/// The id of an Automerge change: a head of the document's history.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Head(pub [u8; 32]);

impl Head {
    pub(crate) fn from_hash(h: ChangeHash) -> Self {
        Self(h.0)
    }

    pub(crate) fn to_hash(self) -> ChangeHash {
        ChangeHash(self.0)
    }

    /// Parses 64 hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = hex::decode(text).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }
}

impl fmt::Display for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Head({})", &hex::encode(self.0)[..12])
    }
}

impl Serialize for Head {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Head {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Head::parse(&s).ok_or_else(|| serde::de::Error::custom("a head is 64 hex digits"))
    }
}

pub(crate) fn heads_of(hashes: &[ChangeHash]) -> Vec<Head> {
    hashes.iter().map(|&h| Head::from_hash(h)).collect()
}

/// What an edit committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    /// The new change, or `None` if the batch wrote nothing.
    pub head: Option<Head>,
    /// Operations applied.
    pub ops: usize,
}

/// A field of an entity, to ask for its conflicting values.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityField {
    /// The display name.
    Name,
    /// The retirement time.
    Retired,
    /// The last run.
    Run,
    /// An attribute.
    Attr(AttrKey),
}

impl EntityField {
    pub(crate) fn to_field(&self) -> Field {
        match self {
            EntityField::Name => Field::Name,
            EntityField::Retired => Field::Retired,
            EntityField::Run => Field::Run,
            EntityField::Attr(AttrKey::Owner) => Field::Owner,
            EntityField::Attr(AttrKey::Description) => Field::Description,
            EntityField::Attr(AttrKey::Level) => Field::Level,
            EntityField::Attr(AttrKey::Schema) => Field::Schema,
            EntityField::Attr(AttrKey::Tag(t)) => Field::Tag(t.clone()),
            EntityField::Attr(AttrKey::Extra(k)) => Field::Extra(k.clone()),
        }
    }

    fn from_field(field: Field) -> Self {
        match field {
            Field::Name => EntityField::Name,
            Field::Retired => EntityField::Retired,
            Field::Run => EntityField::Run,
            Field::Owner => EntityField::Attr(AttrKey::Owner),
            Field::Description => EntityField::Attr(AttrKey::Description),
            Field::Level => EntityField::Attr(AttrKey::Level),
            Field::Schema => EntityField::Attr(AttrKey::Schema),
            Field::Tag(t) => EntityField::Attr(AttrKey::Tag(t)),
            Field::Extra(k) => EntityField::Attr(AttrKey::Extra(k)),
        }
    }
}

/// Sizes of the document, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocStats {
    /// Changes in the history.
    pub changes: u64,
    /// Operations in the history.
    pub ops: u64,
    /// Distinct actors (nodes, sessions, epochs) in the history.
    pub actors: u64,
}

/// One namespace's lineage graph. See the module docs of [`super`] for the
/// concurrency rules.
pub struct LineageDoc {
    namespace: String,
    pub(crate) doc: Automerge,
    pub(crate) index: GraphIndex,
    pub(crate) epoch: Epoch,
    /// Heads at the last save or incremental save.
    saved: Vec<ChangeHash>,
}

impl fmt::Debug for LineageDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineageDoc")
            .field("namespace", &self.namespace)
            .field("epoch", &self.epoch)
            .field("entities", &self.index.entity_count())
            .field("heads", &self.heads())
            .finish()
    }
}

pub(crate) fn check_namespace(ns: &str) -> Result<(), ModelError> {
    let ok = !ns.is_empty()
        && ns.len() <= 64
        && ns.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-' || b == b'.'
        });
    if ok {
        Ok(())
    } else {
        Err(ModelError::Namespace(ns.into()))
    }
}

pub(crate) fn actor_id(actor: &[u8]) -> Result<ActorId, LoadError> {
    if actor.is_empty() || actor.len() > 128 {
        return Err(LoadError::Actor);
    }
    Ok(ActorId::from(actor))
}

impl LineageDoc {
    /// An empty graph (epoch 0).
    ///
    /// `actor` identifies this writer in the history. Use the node id *plus a
    /// session number the node persists and bumps at every start*: Automerge
    /// numbers each actor's changes, and a node that crashed after sending a
    /// change but before persisting it would otherwise reuse a number, which
    /// peers reject.
    pub fn new(namespace: &str, actor: &[u8]) -> Result<Self, LoadError> {
        check_namespace(namespace)?;
        Ok(Self::from_parts(
            namespace,
            Automerge::new().with_actor(actor_id(actor)?),
            Epoch::zero(),
        ))
    }

    pub(crate) fn from_parts(namespace: &str, doc: Automerge, epoch: Epoch) -> Self {
        let index = GraphIndex::build(&doc);
        let saved = doc.get_heads();
        Self {
            namespace: namespace.into(),
            doc,
            index,
            epoch,
            saved,
        }
    }

    /// Loads a document saved by [`save`](Self::save), optionally followed by
    /// the bytes of any number of [`save_incremental`](Self::save_incremental)
    /// calls (the node's append log, concatenated). A truncated tail (a crash
    /// mid-append) is ignored.
    pub fn load(namespace: &str, actor: &[u8], bytes: &[u8]) -> Result<Self, LoadError> {
        check_namespace(namespace)?;
        let actor = actor_id(actor)?;
        // Automerge drops every change of a byte stream whose tail is torn, so
        // split the stream into whole chunks first and load the tail on its own.
        let chunks = split_chunks(bytes);
        let first = chunks.first().copied().unwrap_or(bytes);
        let mut doc = Automerge::load(first).map_err(|e| LoadError::Corrupt(e.to_string()))?;
        if chunks.len() > 1 {
            let rest: Vec<u8> = chunks[1..].concat();
            doc.load_incremental(&rest)
                .map_err(|e| LoadError::Corrupt(e.to_string()))?;
        }
        let doc = doc.with_actor(actor);
        let epoch = Epoch::read(&doc);
        Ok(Self::from_parts(namespace, doc, epoch))
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The actor id of this writer.
    pub fn actor(&self) -> &[u8] {
        self.doc.get_actor().to_bytes()
    }

    /// The epoch this document belongs to.
    pub fn epoch(&self) -> &Epoch {
        &self.epoch
    }

    /// The graph index, for queries.
    pub fn index(&self) -> &GraphIndex {
        &self.index
    }

    /// The heads of the history (sorted). Two replicas with the same heads hold
    /// the same document.
    pub fn heads(&self) -> Vec<Head> {
        heads_of(&self.doc.get_heads())
    }

    /// Whether the history contains this change.
    pub fn has_change(&self, head: &Head) -> bool {
        self.doc.get_change_by_hash(&head.to_hash()).is_some()
    }

    /// Sizes, for metrics.
    pub fn stats(&self) -> DocStats {
        let s = self.doc.stats();
        DocStats {
            changes: s.num_changes,
            ops: s.num_ops,
            actors: s.num_actors,
        }
    }

    /// Runs a batch of edits as one change, made at `now` by this document's
    /// actor. If `f` returns an error nothing is written.
    pub fn edit<F>(&mut self, now: Millis, f: F) -> Result<Committed, EditError>
    where
        F: FnOnce(&mut Edit<'_>) -> Result<(), EditError>,
    {
        let tx = self
            .doc
            .transaction_log_patches(PatchLog::active())
            .map_err(|e| EditError::Document(e.to_string()))?;
        let mut edit = Edit::new(tx, &self.index, now);
        let outcome = f(&mut edit);
        let (tx, ops) = edit.finish();
        if let Err(e) = outcome {
            tx.rollback();
            return Err(e);
        }
        let (hash, mut log) = tx.commit_with(CommitOptions::default().with_time(now));
        let patches = self.doc.make_patches(&mut log);
        self.index.apply_patches(&self.doc, &patches);
        Ok(Committed {
            head: hash.map(Head::from_hash),
            ops,
        })
    }

    /// Applies operations as one change, all or nothing.
    pub fn apply(&mut self, now: Millis, ops: &[Op]) -> Result<Committed, EditError> {
        self.edit(now, |tx| ops.iter().try_for_each(|op| tx.apply(op)))
    }

    /// Applies operations as one change, skipping the ones that fail: how a node
    /// folds unrelated requests into one change without letting one bad request
    /// sink the others. Returns each operation's outcome, in order.
    pub fn apply_each(
        &mut self,
        now: Millis,
        ops: &[Op],
    ) -> (Committed, Vec<Result<(), EditError>>) {
        let mut results = Vec::with_capacity(ops.len());
        let committed = self.edit(now, |tx| {
            results.extend(ops.iter().map(|op| tx.apply(op)));
            Ok(())
        });
        match committed {
            Ok(c) => (c, results),
            Err(e) => (
                Committed { head: None, ops: 0 },
                ops.iter().map(|_| Err(e.clone())).collect(),
            ),
        }
    }

    /// The whole document, compacted (DEFLATE'd columns). Resets the mark of
    /// [`save_incremental`](Self::save_incremental).
    pub fn save(&mut self) -> Vec<u8> {
        self.saved = self.doc.get_heads();
        self.doc.save()
    }

    /// A save that is byte-identical on every replica holding the same changes.
    ///
    /// Automerge's own [`save`](Self::save) is not: the column layout of
    /// concurrent operations depends on the order the changes arrived in
    /// (found by the convergence property test). This rebuilds the document
    /// by applying the changes one by one in a fixed topological order (ties
    /// by hash), so it costs a full rebuild: use it to compare replicas, not
    /// to persist.
    pub fn canonical_save(&self) -> Vec<u8> {
        use std::collections::{BTreeSet, HashMap};
        let changes = self.doc.get_changes(&[]);
        let mut waiting: HashMap<ChangeHash, usize> = HashMap::new();
        let mut children: HashMap<ChangeHash, Vec<ChangeHash>> = HashMap::new();
        let mut by_hash = HashMap::new();
        for c in changes {
            waiting.insert(c.hash(), c.deps().len());
            for d in c.deps() {
                children.entry(*d).or_default().push(c.hash());
            }
            by_hash.insert(c.hash(), c);
        }
        let mut ready: BTreeSet<ChangeHash> = waiting
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(h, _)| *h)
            .collect();
        let mut out = Automerge::new();
        while let Some(h) = ready.pop_first() {
            if let Some(c) = by_hash.remove(&h) {
                // Changes from our own history always apply.
                let _ = out.apply_changes([c]);
            }
            for child in children.get(&h).into_iter().flatten() {
                if let Some(n) = waiting.get_mut(child) {
                    *n -= 1;
                    if *n == 0 {
                        ready.insert(*child);
                    }
                }
            }
        }
        out.save()
    }

    /// The whole document, without moving the incremental mark.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.doc.save()
    }

    /// The changes since the last [`save`](Self::save) or `save_incremental`
    /// (local edits and changes received from peers alike), for an append-only
    /// log; empty if nothing changed. Append them after the last full save;
    /// [`load`](Self::load) reads the concatenation.
    pub fn save_incremental(&mut self) -> Vec<u8> {
        let bytes = self.doc.save_after(&self.saved);
        self.saved = self.doc.get_heads();
        bytes
    }

    /// Applies saved bytes (a full save or incremental changes) to this document.
    /// Returns whether anything changed.
    pub fn load_incremental(&mut self, bytes: &[u8]) -> Result<bool, LoadError> {
        let before = self.doc.get_heads();
        let mut log = PatchLog::active();
        let result = self.doc.load_incremental_log_patches(bytes, &mut log);
        let patches = self.doc.make_patches(&mut log);
        self.index.apply_patches(&self.doc, &patches);
        result.map_err(|e| LoadError::Corrupt(e.to_string()))?;
        Ok(self.doc.get_heads() != before)
    }

    /// Merges every change of `other` into this document (both must be the same
    /// namespace and epoch). Returns whether anything changed.
    pub fn merge(&mut self, other: &LineageDoc) -> Result<bool, SyncError> {
        if other.namespace != self.namespace {
            return Err(SyncError::Namespace {
                ours: self.namespace.clone(),
                theirs: other.namespace.clone(),
            });
        }
        if other.epoch != self.epoch {
            return Err(SyncError::Epoch {
                ours: self.epoch.clone(),
                theirs: other.epoch.clone(),
            });
        }
        let changes = self.doc.get_changes_added(&other.doc);
        if changes.is_empty() {
            return Ok(false);
        }
        let mut log = PatchLog::active();
        let result = self.doc.apply_changes_log_patches(changes, &mut log);
        let patches = self.doc.make_patches(&mut log);
        self.index.apply_patches(&self.doc, &patches);
        result.map_err(|e| SyncError::Refused(e.to_string()))?;
        Ok(true)
    }

    /// Every concurrent value of one field of an entity, the winner first (empty
    /// if the field is not set). More than one value means a conflict: the
    /// winner is Automerge's deterministic choice (the same on every node), and
    /// for runs the latest run.
    pub fn conflicts(&self, id: &EntityId, field: &EntityField) -> Vec<FieldValue> {
        let field = field.to_field();
        let key = keys::entity_key(id, &field);
        let all: Vec<_> = self
            .doc
            .get_all(ROOT, key.as_str())
            .unwrap_or_default()
            .into_iter()
            .map(|(v, _)| v)
            .collect();
        let mut values: Vec<FieldValue> = all
            .iter()
            .filter_map(|v| FieldValue::decode(&field, v))
            .collect();
        let winner = match field {
            Field::Run => keys::resolve_runs(&all).map(FieldValue::Run),
            _ => self
                .doc
                .get(ROOT, key.as_str())
                .ok()
                .flatten()
                .and_then(|(v, _)| FieldValue::decode(&field, &v)),
        };
        if let Some(w) = winner
            && let Some(pos) = values.iter().position(|v| *v == w)
        {
            let w = values.remove(pos);
            values.insert(0, w);
        }
        values
    }

    /// The fields of an entity that have concurrent values right now.
    pub fn conflicted_fields(&self, id: &EntityId) -> Vec<EntityField> {
        self.doc
            .map_range(ROOT, keys::entity_range(id))
            .filter(|item| item.conflict)
            .filter_map(|item| match keys::Key::parse(&item.key) {
                Some(keys::Key::Entity(_, f)) => Some(EntityField::from_field(f)),
                _ => None,
            })
            .collect()
    }

    /// Every concurrent definition of an edge, the winner first.
    pub fn edge_conflicts(&self, source: &EntityId, target: &EntityId) -> Vec<EdgeSpec> {
        let key = keys::edge_key(source, target);
        let mut values: Vec<EdgeSpec> = self
            .doc
            .get_all(ROOT, key.as_str())
            .unwrap_or_default()
            .iter()
            .filter_map(|(v, _)| keys::decode_edge(v))
            .collect();
        let winner = self
            .doc
            .get(ROOT, key.as_str())
            .ok()
            .flatten()
            .and_then(|(v, _)| keys::decode_edge(&v));
        if let Some(w) = winner
            && let Some(pos) = values.iter().position(|v| *v == w)
        {
            let w = values.remove(pos);
            values.insert(0, w);
        }
        values
    }

    /// A fresh index built from every key of the document; equal to
    /// [`index`](Self::index) (tests check it).
    pub fn rebuild_index(&self) -> GraphIndex {
        GraphIndex::build(&self.doc)
    }

    /// A copy of this document for another writer (tests and the simulator).
    pub fn fork(&self, actor: &[u8]) -> Result<Self, LoadError> {
        let mut doc = self.doc.clone();
        doc.set_actor(actor_id(actor)?);
        Ok(Self {
            namespace: self.namespace.clone(),
            doc,
            index: self.index.clone(),
            epoch: self.epoch.clone(),
            saved: self.saved.clone(),
        })
    }

    /// Applies the patches logged while changing the document to the index.
    pub(crate) fn absorb(&mut self, log: &mut PatchLog) {
        let patches = self.doc.make_patches(log);
        self.index.apply_patches(&self.doc, &patches);
    }
}

/// Splits Automerge's storage format (a sequence of chunks: 4 magic bytes, a
/// 4-byte checksum, a type byte, a LEB128 length, the data) into whole chunks,
/// dropping a torn last one.
fn split_chunks(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() > 9 {
        let mut len: u64 = 0;
        let mut used = 0;
        for (i, b) in rest[9..].iter().take(10).enumerate() {
            len |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                used = i + 1;
                break;
            }
        }
        let total = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_add(9 + used));
        match total {
            Some(total) if used > 0 && total <= rest.len() => {
                out.push(&rest[..total]);
                rest = &rest[total..];
            }
            _ => break,
        }
    }
    out
}

/// The root keys a list of patches touches.
pub(crate) fn patch_keys(patches: &[Patch]) -> impl Iterator<Item = &str> {
    patches
        .iter()
        .filter(|p| p.obj == ROOT)
        .filter_map(|p| match &p.action {
            PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key } => Some(key.as_str()),
            PatchAction::Conflict {
                prop: Prop::Map(key),
            } => Some(key.as_str()),
            PatchAction::Increment {
                prop: Prop::Map(key),
                ..
            } => Some(key.as_str()),
            _ => None,
        })
}
