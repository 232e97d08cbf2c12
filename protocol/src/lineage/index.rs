//! The in-memory graph index: interned ids, adjacency lists and decoded records,
//! kept current from the document's changes.
//!
//! Queries never read Automerge. Every change to the document (a local edit, a
//! merge, a sync message, an incremental load) is applied with Automerge's patch
//! log; the patches name the keys that changed and, for plain writes and
//! deletes, their new values; every other case (a conflict appeared, a run) is
//! re-read from the document. The update touches only those keys, and an
//! incrementally maintained index always equals one built from scratch
//! (`GraphIndex::build`, used once at load; tests check the equality after
//! random edits and merges).
//!
//! Ids are interned to `u32` slots on first sight and never freed: a removed
//! entity keeps its slot (and its id string) until the next epoch or restart.
//! Adjacency lists hold every *linked* edge; whether an edge is visible (both
//! endpoints exist) is decided at query time, which is what makes dangling edges
//! reappear when an endpoint comes back.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use automerge::{ChangeHash, Patch, PatchAction, Prop, ROOT, ReadDoc, Value};

use super::keys::{self, Field, FieldValue, Key};
use super::model::{
    Attributes, EdgeRecord, EdgeSpec, EntityId, EntityKind, EntityRecord, Millis, Role, RunState,
};
use super::state::LiveState;

/// A node slot.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NodeData {
    pub(crate) kind: EntityKind,
    /// The display name; `Some` = the entity exists.
    pub(crate) name: Option<String>,
    pub(crate) attributes: Attributes,
    pub(crate) retired: Option<Millis>,
    pub(crate) run: Option<RunState>,
}

/// An edge slot; `spec: Some` = linked.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct EdgeData {
    pub(crate) spec: Option<EdgeSpec>,
    pub(crate) run: Option<RunState>,
}

/// The graph index. It is built and kept current by
/// [`LineageDoc`](super::LineageDoc); read it through the query methods.
#[derive(Debug, Default)]
pub struct GraphIndex {
    pub(crate) ids: Vec<EntityId>,
    lookup: HashMap<EntityId, u32>,
    pub(crate) nodes: Vec<NodeData>,
    /// Per slot, whether the entity exists (`nodes[ix].name.is_some()`), kept
    /// apart so that traversals test it without loading whole records.
    live: Vec<bool>,
    pub(crate) out: Vec<Vec<u32>>,
    pub(crate) inn: Vec<Vec<u32>>,
    pub(crate) edges: HashMap<(u32, u32), EdgeData>,
    children: HashMap<u32, Vec<u32>>,
    present: usize,
    linked: usize,
    version: u64,
    /// Run keys holding concurrent values. A run resolves to the latest of
    /// them, not to Automerge's winner, and Automerge reports no patch when a
    /// key already in conflict gains another value that does not win: these
    /// keys are re-read after every change instead.
    contested_runs: BTreeSet<String>,
    /// Results that depend on the whole graph (the reach ranking), valid for
    /// one `version`.
    pub(crate) cache: Mutex<Option<(u64, Arc<super::query::ReachTable>)>>,
    /// Buffers for searches (see `query::search`).
    pub(crate) marks: super::query::MarkPool,
}

impl Clone for GraphIndex {
    fn clone(&self) -> Self {
        Self {
            ids: self.ids.clone(),
            lookup: self.lookup.clone(),
            nodes: self.nodes.clone(),
            live: self.live.clone(),
            out: self.out.clone(),
            inn: self.inn.clone(),
            edges: self.edges.clone(),
            children: self.children.clone(),
            present: self.present,
            linked: self.linked,
            version: self.version,
            contested_runs: self.contested_runs.clone(),
            cache: Mutex::new(None),
            marks: Default::default(),
        }
    }
}

impl GraphIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the index from every key of a document: one pass, used at load.
    pub(crate) fn build(doc: &impl ReadDoc) -> Self {
        let mut index = Self::new();
        for item in doc.map_range(ROOT, ..) {
            let Some(key) = Key::parse(&item.key) else {
                continue;
            };
            let value = item.value.into_value();
            let needs_all =
                matches!(key, Key::Entity(_, Field::Run) | Key::EdgeRun(..)) && item.conflict;
            if needs_all {
                index.refresh_key(doc, &item.key, None);
            } else {
                index.apply_value(key, Some(&value));
            }
        }
        index
    }

    /// Updates the index from the patches of one change to the document: the
    /// incremental path. A key whose last patch is a plain write or a delete
    /// takes that value; anything else (a conflict, a run) is re-read from
    /// the document, so the result never depends on how Automerge grouped
    /// the patches.
    pub(crate) fn apply_patches(&mut self, doc: &impl ReadDoc, patches: &[Patch]) {
        let mut last: HashMap<&str, Option<&PatchAction>> = HashMap::new();
        for p in patches {
            if p.obj != ROOT {
                continue;
            }
            match &p.action {
                PatchAction::PutMap { key, conflict, .. } => {
                    last.insert(key.as_str(), (!conflict).then_some(&p.action));
                }
                PatchAction::DeleteMap { key } => {
                    last.insert(key.as_str(), Some(&p.action));
                }
                PatchAction::Conflict {
                    prop: Prop::Map(key),
                }
                | PatchAction::Increment {
                    prop: Prop::Map(key),
                    ..
                } => {
                    last.insert(key.as_str(), None);
                }
                _ => {}
            }
        }
        let contested: Vec<String> = self
            .contested_runs
            .iter()
            .filter(|k| !last.contains_key(k.as_str()))
            .cloned()
            .collect();
        for key in contested {
            self.refresh_key(doc, &key, None);
        }
        for (key, action) in last {
            let Some(parsed) = Key::parse(key) else {
                continue;
            };
            let needs_all = matches!(parsed, Key::Entity(_, Field::Run) | Key::EdgeRun(..));
            match action {
                Some(PatchAction::PutMap {
                    value: (value, _), ..
                }) if !needs_all => {
                    self.apply_value(parsed, Some(value));
                }
                Some(PatchAction::DeleteMap { .. }) => self.apply_value(parsed, None),
                _ => self.refresh_key(doc, key, None),
            }
        }
    }

    /// Re-reads one key, as of `heads` (`None` = now).
    pub(crate) fn refresh_key(
        &mut self,
        doc: &impl ReadDoc,
        key: &str,
        heads: Option<&[ChangeHash]>,
    ) {
        let Some(parsed) = Key::parse(key) else {
            return;
        };
        match &parsed {
            Key::Entity(id, Field::Run) => {
                let run = self.resolve_run(doc, key, heads);
                let id = id.clone();
                self.set_field(&id, Field::Run, run.map(FieldValue::Run));
            }
            Key::EdgeRun(s, t) => {
                let run = self.resolve_run(doc, key, heads);
                let (s, t) = (self.intern(s), self.intern(t));
                self.set_edge_run(s, t, run);
            }
            _ => {
                let value = match heads {
                    None => doc.get(ROOT, key),
                    Some(h) => doc.get_at(ROOT, key, h),
                };
                let value = value.ok().flatten().map(|(v, _)| v.into_owned());
                self.apply_value(parsed, value.as_ref());
            }
        }
    }

    /// The latest of a run key's concurrent values; notes whether it has several.
    fn resolve_run(
        &mut self,
        doc: &impl ReadDoc,
        key: &str,
        heads: Option<&[ChangeHash]>,
    ) -> Option<RunState> {
        let values = all_values(doc, key, heads).unwrap_or_default();
        if values.len() > 1 {
            self.contested_runs.insert(key.to_owned());
        } else {
            self.contested_runs.remove(key);
        }
        keys::resolve_runs(&values)
    }

    fn apply_value(&mut self, key: Key, value: Option<&Value<'_>>) {
        match key {
            Key::Entity(id, field) => {
                let decoded = value.and_then(|v| FieldValue::decode(&field, v));
                self.set_field(&id, field, decoded);
            }
            Key::Edge(s, t) => {
                let spec = value.and_then(keys::decode_edge);
                let (s, t) = (self.intern(&s), self.intern(&t));
                self.set_edge_spec(s, t, spec);
            }
            Key::EdgeRun(s, t) => {
                let run = value.and_then(keys::decode_run);
                let (s, t) = (self.intern(&s), self.intern(&t));
                self.set_edge_run(s, t, run);
            }
            Key::Meta(_) => {}
        }
    }

    pub(crate) fn intern(&mut self, id: &EntityId) -> u32 {
        if let Some(&ix) = self.lookup.get(id) {
            return ix;
        }
        let ix = u32::try_from(self.ids.len()).expect("fewer than 2^32 entities");
        self.ids.push(id.clone());
        self.lookup.insert(id.clone(), ix);
        self.nodes.push(NodeData {
            kind: id.kind(),
            name: None,
            attributes: Attributes::default(),
            retired: None,
            run: None,
        });
        self.live.push(false);
        self.out.push(Vec::new());
        self.inn.push(Vec::new());
        if let Some(parent) = id.parent() {
            let p = self.intern(&parent);
            self.children.entry(p).or_default().push(ix);
        }
        ix
    }

    fn set_field(&mut self, id: &EntityId, field: Field, value: Option<FieldValue>) {
        let ix = self.intern(id) as usize;
        let node = &mut self.nodes[ix];
        let before = node.name.is_some();
        let a = &mut node.attributes;
        match (field, value) {
            (Field::Name, Some(FieldValue::Text(s))) => node.name = Some(s),
            (Field::Name, _) => node.name = None,
            (Field::Owner, Some(FieldValue::Text(s))) => a.owner = Some(s),
            (Field::Owner, _) => a.owner = None,
            (Field::Description, Some(FieldValue::Text(s))) => a.description = Some(s),
            (Field::Description, _) => a.description = None,
            (Field::Schema, Some(FieldValue::Text(s))) => a.schema = Some(s),
            (Field::Schema, _) => a.schema = None,
            (Field::Level, Some(FieldValue::Int(i))) => a.level = Some(i),
            (Field::Level, _) => a.level = None,
            (Field::Tag(t), Some(FieldValue::Flag)) => {
                a.tags.insert(t);
            }
            (Field::Tag(t), _) => {
                a.tags.remove(&t);
            }
            (Field::Extra(k), Some(FieldValue::Text(s))) => {
                a.extra.insert(k, s);
            }
            (Field::Extra(k), _) => {
                a.extra.remove(&k);
            }
            (Field::Retired, Some(FieldValue::Time(t))) => node.retired = Some(t),
            (Field::Retired, _) => node.retired = None,
            (Field::Run, Some(FieldValue::Run(r))) => node.run = Some(r),
            (Field::Run, _) => node.run = None,
        }
        let after = node.name.is_some();
        self.live[ix] = after;
        match (before, after) {
            (false, true) => self.present += 1,
            (true, false) => self.present -= 1,
            _ => {}
        }
        self.version += 1;
    }

    fn set_edge_spec(&mut self, s: u32, t: u32, spec: Option<EdgeSpec>) {
        let slot = self.edges.entry((s, t)).or_default();
        let was = slot.spec.is_some();
        let is = spec.is_some();
        slot.spec = spec;
        if slot.spec.is_none() && slot.run.is_none() {
            self.edges.remove(&(s, t));
        }
        match (was, is) {
            (false, true) => {
                self.out[s as usize].push(t);
                self.inn[t as usize].push(s);
                self.linked += 1;
            }
            (true, false) => {
                remove_one(&mut self.out[s as usize], t);
                remove_one(&mut self.inn[t as usize], s);
                self.linked -= 1;
            }
            _ => {}
        }
        self.version += 1;
    }

    fn set_edge_run(&mut self, s: u32, t: u32, run: Option<RunState>) {
        let slot = self.edges.entry((s, t)).or_default();
        slot.run = run;
        if slot.spec.is_none() && slot.run.is_none() {
            self.edges.remove(&(s, t));
        }
        self.version += 1;
    }

    /// A number that changes whenever the index does.
    pub fn version(&self) -> u64 {
        self.version
    }

    pub(crate) fn slot(&self, id: &EntityId) -> Option<u32> {
        self.lookup.get(id).copied()
    }

    /// The slot of an existing entity.
    pub(crate) fn present_slot(&self, id: &EntityId) -> Option<u32> {
        self.slot(id).filter(|&ix| self.is_present(ix))
    }

    #[inline]
    pub(crate) fn is_present(&self, ix: u32) -> bool {
        self.live[ix as usize]
    }

    /// Visible out-neighbours of `ix` (edges whose target exists).
    pub(crate) fn out_visible(&self, ix: u32) -> impl Iterator<Item = u32> + '_ {
        self.out[ix as usize]
            .iter()
            .copied()
            .filter(|&t| self.is_present(t))
    }

    /// Visible in-neighbours of `ix`.
    pub(crate) fn in_visible(&self, ix: u32) -> impl Iterator<Item = u32> + '_ {
        self.inn[ix as usize]
            .iter()
            .copied()
            .filter(|&s| self.is_present(s))
    }

    /// Whether the entity exists.
    pub fn contains(&self, id: &EntityId) -> bool {
        self.present_slot(id).is_some()
    }

    /// The number of existing entities.
    pub fn entity_count(&self) -> usize {
        self.present
    }

    /// The number of linked edges (visible and dangling).
    pub fn linked_edge_count(&self) -> usize {
        self.linked
    }

    /// An existing entity.
    pub fn entity(&self, id: &EntityId) -> Option<EntityRecord> {
        self.present_slot(id).map(|ix| self.record(ix))
    }

    pub(crate) fn record(&self, ix: u32) -> EntityRecord {
        let n = &self.nodes[ix as usize];
        EntityRecord {
            id: self.ids[ix as usize].clone(),
            name: n.name.clone().unwrap_or_default(),
            attributes: n.attributes.clone(),
            retired: n.retired,
            run: n.run.clone(),
        }
    }

    /// A linked edge (dangling or not).
    pub fn edge(&self, source: &EntityId, target: &EntityId) -> Option<EdgeRecord> {
        let (s, t) = (self.slot(source)?, self.slot(target)?);
        self.edge_record(s, t)
    }

    pub(crate) fn edge_record(&self, s: u32, t: u32) -> Option<EdgeRecord> {
        let e = self.edges.get(&(s, t))?;
        Some(EdgeRecord {
            source: self.ids[s as usize].clone(),
            target: self.ids[t as usize].clone(),
            spec: e.spec.clone()?,
            run: e.run.clone(),
        })
    }

    pub(crate) fn edge_spec_of(&self, source: &EntityId, target: &EntityId) -> Option<&EdgeSpec> {
        self.edge_spec(self.slot(source)?, self.slot(target)?)
    }

    /// Whether the document's current value of `id`'s `field` is `value`.
    /// Only for the fields the index keeps as the document's winning value:
    /// runs (the latest by time among conflicting ones) and retirements
    /// always answer `false`, so callers write them.
    pub(crate) fn holds(&self, id: &EntityId, field: &Field, value: &FieldValue) -> bool {
        let Some(&ix) = self.lookup.get(id) else {
            return false;
        };
        let node = &self.nodes[ix as usize];
        let a = &node.attributes;
        match (field, value) {
            (Field::Name, FieldValue::Text(s)) => node.name.as_ref() == Some(s),
            (Field::Owner, FieldValue::Text(s)) => a.owner.as_ref() == Some(s),
            (Field::Description, FieldValue::Text(s)) => a.description.as_ref() == Some(s),
            (Field::Schema, FieldValue::Text(s)) => a.schema.as_ref() == Some(s),
            (Field::Level, FieldValue::Int(i)) => a.level == Some(*i),
            (Field::Tag(t), FieldValue::Flag) => a.tags.contains(t),
            (Field::Extra(k), FieldValue::Text(s)) => a.extra.get(k) == Some(s),
            _ => false,
        }
    }

    /// Whether the document holds any field of `id` (present or not).
    pub(crate) fn has_fields(&self, id: &EntityId) -> bool {
        let Some(ix) = self.slot(id) else {
            return false;
        };
        let n = &self.nodes[ix as usize];
        n.name.is_some()
            || n.retired.is_some()
            || n.run.is_some()
            || n.attributes != Attributes::default()
    }

    pub(crate) fn edge_spec(&self, s: u32, t: u32) -> Option<&EdgeSpec> {
        self.edges.get(&(s, t)).and_then(|e| e.spec.as_ref())
    }

    /// The role of an existing entity, from its visible edges.
    pub fn role(&self, id: &EntityId) -> Option<Role> {
        let ix = self.present_slot(id)?;
        Some(self.role_of(ix))
    }

    pub(crate) fn role_of(&self, ix: u32) -> Role {
        Role::of(self.in_visible(ix).count(), self.out_visible(ix).count())
    }

    /// The existing columns of a table, sorted.
    pub fn children(&self, id: &EntityId) -> Vec<EntityId> {
        let Some(ix) = self.slot(id) else {
            return Vec::new();
        };
        let mut out: Vec<EntityId> = self
            .children
            .get(&ix)
            .into_iter()
            .flatten()
            .filter(|&&c| self.is_present(c))
            .map(|&c| self.ids[c as usize].clone())
            .collect();
        out.sort();
        out
    }

    /// Existing entities whose id's parent (the table of a column) does not exist.
    pub fn orphan_count(&self) -> usize {
        self.children
            .iter()
            .filter(|(p, _)| !self.is_present(**p))
            .map(|(_, cs)| cs.iter().filter(|&&c| self.is_present(c)).count())
            .sum()
    }

    /// Every existing entity and linked edge, sorted: the canonical form two
    /// replicas are compared by.
    pub fn live_state(&self) -> LiveState {
        let mut entities = BTreeMap::new();
        for ix in 0..self.ids.len() as u32 {
            if self.is_present(ix) {
                entities.insert(self.ids[ix as usize].clone(), self.record(ix));
            }
        }
        let mut edges = BTreeMap::new();
        for &(s, t) in self.edges.keys() {
            if let Some(rec) = self.edge_record(s, t) {
                edges.insert((rec.source.clone(), rec.target.clone()), rec);
            }
        }
        LiveState { entities, edges }
    }

    /// An estimate of the heap the index holds, in bytes (strings, vectors and
    /// hash tables at their capacity; allocator overhead not counted).
    pub fn memory_estimate(&self) -> usize {
        use std::mem::size_of;
        let ids: usize = self.ids.iter().map(|i| i.as_str().len()).sum();
        let mut total = self.ids.capacity() * size_of::<EntityId>() + ids;
        // The lookup table holds a second copy of every id.
        total += self.lookup.capacity() * (size_of::<EntityId>() + 4 + 1) + ids;
        total += self.nodes.capacity() * size_of::<NodeData>();
        for n in &self.nodes {
            total += n.name.as_ref().map_or(0, String::capacity);
            let a = &n.attributes;
            for s in [&a.owner, &a.description, &a.schema].into_iter().flatten() {
                total += s.capacity();
            }
            total += a.tags.iter().map(|t| t.capacity() + 48).sum::<usize>();
            total += a
                .extra
                .iter()
                .map(|(k, v)| k.capacity() + v.capacity() + 64)
                .sum::<usize>();
            total += n
                .run
                .as_ref()
                .map_or(0, |r| 48 + r.message.as_ref().map_or(0, String::capacity));
        }
        for adj in self.out.iter().chain(self.inn.iter()) {
            total += size_of::<Vec<u32>>() + adj.capacity() * 4;
        }
        total += self.edges.capacity() * (size_of::<(u32, u32)>() + size_of::<EdgeData>() + 1);
        for e in self.edges.values() {
            if let Some(s) = &e.spec {
                for t in [&s.rule, &s.frequency].into_iter().flatten() {
                    total += t.capacity();
                }
                total += s
                    .extra
                    .iter()
                    .map(|(k, v)| k.capacity() + v.capacity() + 64)
                    .sum::<usize>();
            }
        }
        total += self.children.capacity() * (4 + size_of::<Vec<u32>>() + 1);
        total += self
            .children
            .values()
            .map(|v| v.capacity() * 4)
            .sum::<usize>();
        total
    }
}

/// All concurrent values of a root key (one, unless there is a conflict).
fn all_values(
    doc: &impl ReadDoc,
    key: &str,
    heads: Option<&[ChangeHash]>,
) -> Option<Vec<Value<'static>>> {
    let values = match heads {
        None => doc.get_all(ROOT, key),
        Some(h) => doc.get_all_at(ROOT, key, h),
    }
    .ok()?;
    Some(values.into_iter().map(|(v, _)| v.into_owned()).collect())
}

fn remove_one(list: &mut Vec<u32>, x: u32) {
    if let Some(pos) = list.iter().position(|&y| y == x) {
        list.swap_remove(pos);
    }
}
