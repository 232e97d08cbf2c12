//! Edits: the operations users make, batched into one Automerge change.
//!
//! Every operation validates first and writes after, so an operation that fails
//! writes nothing and the rest of a batch can still commit
//! ([`LineageDoc::apply_each`](super::LineageDoc::apply_each)). One change per
//! batch matters: an Automerge change carries ~650 B of overhead in sync, so a
//! node should fold concurrent requests into one edit, as its store writer does
//! with redb transactions.

use std::collections::{HashMap, HashSet};

use automerge::transaction::{Transactable, Transaction};
use automerge::{ROOT, ReadDoc, ScalarValue};
use serde::{Deserialize, Serialize};

use super::error::EditError;
use super::index::GraphIndex;
use super::keys::{self, Field, FieldValue};
use super::model::{Attr, AttrKey, EdgeSpec, EntityId, Millis, NewEntity, RunState};

/// One operation, as a value: what the client sends and the node folds into a
/// batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
#[non_exhaustive]
pub enum Op {
    /// Create an entity, or set attributes of an existing one.
    Upsert(NewEntity),
    /// Set one attribute of an existing entity.
    SetAttr {
        /// The entity.
        id: EntityId,
        /// The attribute.
        attr: Attr,
    },
    /// Remove one attribute of an existing entity.
    UnsetAttr {
        /// The entity.
        id: EntityId,
        /// The attribute's key.
        key: AttrKey,
    },
    /// Record the last run of an entity (a job).
    SetRun {
        /// The entity.
        id: EntityId,
        /// The run.
        run: RunState,
    },
    /// Mark an entity (and its columns) retired; it stays in the graph.
    Retire {
        /// The entity.
        id: EntityId,
    },
    /// Undo a retirement.
    Restore {
        /// The entity.
        id: EntityId,
    },
    /// Remove an entity, its columns and their edges.
    Remove {
        /// The entity.
        id: EntityId,
    },
    /// Link `source → target` (creating missing endpoints), or update the
    /// link's definition.
    Link {
        /// Where data comes from.
        source: EntityId,
        /// Where it goes.
        target: EntityId,
        /// The definition; merged into an existing one.
        #[serde(default)]
        spec: EdgeSpec,
    },
    /// Remove the edge `source → target`.
    Unlink {
        /// Where data comes from.
        source: EntityId,
        /// Where it goes.
        target: EntityId,
    },
    /// Record the last run along an edge.
    SetEdgeRun {
        /// Where data comes from.
        source: EntityId,
        /// Where it goes.
        target: EntityId,
        /// The run.
        run: RunState,
    },
}

/// An open batch of edits: all of them become one Automerge change when the
/// closure given to [`LineageDoc::edit`](super::LineageDoc::edit) returns `Ok`,
/// none of them if it returns `Err`.
pub struct Edit<'a> {
    tx: Transaction<'a>,
    index: &'a GraphIndex,
    now: Millis,
    /// Entities created in this batch. With `removed`, this is what the batch
    /// changed about existence: everything else is as the index says, so
    /// existence checks need no Automerge reads (each costs ~10 µs).
    created: HashSet<EntityId>,
    /// Entities removed in this batch.
    removed: HashSet<EntityId>,
    /// Edges this batch linked (`true`) or unlinked (`false`).
    edges: HashMap<(EntityId, EntityId), bool>,
    /// Keys this batch wrote or deleted: for every other key the index holds
    /// the document's current value, so an equal write can be skipped
    /// without reading the document.
    written: HashSet<String>,
    ops: usize,
}

impl std::fmt::Debug for Edit<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edit")
            .field("now", &self.now)
            .field("ops", &self.ops)
            .finish()
    }
}

type EditResult = Result<(), EditError>;

fn doc_err(e: automerge::AutomergeError) -> EditError {
    EditError::Document(e.to_string())
}

impl<'a> Edit<'a> {
    pub(crate) fn new(tx: Transaction<'a>, index: &'a GraphIndex, now: Millis) -> Self {
        Self {
            tx,
            index,
            now,
            created: HashSet::new(),
            removed: HashSet::new(),
            edges: HashMap::new(),
            written: HashSet::new(),
            ops: 0,
        }
    }

    pub(crate) fn finish(self) -> (Transaction<'a>, usize) {
        (self.tx, self.ops)
    }

    /// The time this batch was made (as passed in).
    pub fn now(&self) -> Millis {
        self.now
    }

    /// Operations applied so far in this batch.
    pub fn ops(&self) -> usize {
        self.ops
    }

    /// Whether the entity exists, counting this batch's edits.
    pub fn exists(&self, id: &EntityId) -> bool {
        let exists = if self.created.contains(id) {
            true
        } else if self.removed.contains(id) {
            false
        } else {
            self.index.contains(id)
        };
        debug_assert_eq!(
            exists,
            matches!(self.tx.get(ROOT, keys::entity_key(id, &Field::Name)), Ok(Some((v, _))) if v.is_str()),
            "existence of {id} disagrees with the document"
        );
        exists
    }

    /// Whether the edge is linked, counting this batch's edits.
    pub fn is_linked(&self, source: &EntityId, target: &EntityId) -> bool {
        let linked = match self.edges.get(&(source.clone(), target.clone())) {
            Some(linked) => *linked,
            None => self.index.edge_spec_of(source, target).is_some(),
        };
        debug_assert_eq!(
            linked,
            matches!(self.tx.get(ROOT, keys::edge_key(source, target)), Ok(Some((v, _))) if keys::decode_edge(&v).is_some()),
            "link {source} -> {target} disagrees with the document"
        );
        linked
    }

    fn mark_created(&mut self, id: &EntityId) {
        self.removed.remove(id);
        self.created.insert(id.clone());
    }

    fn mark_removed(&mut self, id: &EntityId) {
        self.created.remove(id);
        self.removed.insert(id.clone());
    }

    /// Applies one operation.
    pub fn apply(&mut self, op: &Op) -> EditResult {
        match op {
            Op::Upsert(e) => self.upsert(e),
            Op::SetAttr { id, attr } => self.set_attr(id, attr),
            Op::UnsetAttr { id, key } => self.unset_attr(id, key),
            Op::SetRun { id, run } => self.set_run(id, run),
            Op::Retire { id } => self.retire(id),
            Op::Restore { id } => self.restore(id),
            Op::Remove { id } => self.remove(id),
            Op::Link {
                source,
                target,
                spec,
            } => self.link(source, target, spec),
            Op::Unlink { source, target } => self.unlink(source, target),
            Op::SetEdgeRun {
                source,
                target,
                run,
            } => self.set_edge_run(source, target, run),
        }
    }

    /// Creates an entity, or sets the given attributes of an existing one.
    ///
    /// Writing the name is what makes an entity exist. Values equal to the
    /// current ones are not written (Automerge drops such writes), so an
    /// unchanged re-upsert costs nothing. Creating an entity that was removed
    /// first clears fields that concurrent edits left behind, so a re-created
    /// entity starts clean. Creating a column creates its table if that is
    /// missing. See the module docs for how upserts and removals race.
    pub fn upsert(&mut self, entity: &NewEntity) -> EditResult {
        let attrs = entity.attributes.to_list();
        for a in &attrs {
            a.check()?;
        }
        if entity.name.trim().is_empty() || entity.name.chars().any(char::is_control) {
            return Err(super::error::ModelError::Name(entity.name.clone()).into());
        }
        if EntityId::new(&entity.id.kind(), &entity.name).ok().as_ref() != Some(&entity.id) {
            return Err(super::error::ModelError::Name(entity.name.clone()).into());
        }
        if !self.exists(&entity.id) {
            self.clear_leftovers(&entity.id)?;
            self.mark_created(&entity.id);
            if let Some(parent) = entity.id.parent() {
                self.ensure(&parent)?;
            }
        }
        self.put_field(
            &entity.id,
            &Field::Name,
            FieldValue::Text(entity.name.clone()),
        )?;
        for a in &attrs {
            self.write_attr(&entity.id, a)?;
        }
        self.ops += 1;
        Ok(())
    }

    /// Creates `id` (named by its canonical name) if it does not exist.
    fn ensure(&mut self, id: &EntityId) -> EditResult {
        if self.exists(id) {
            return Ok(());
        }
        self.clear_leftovers(id)?;
        self.mark_created(id);
        if let Some(parent) = id.parent() {
            self.ensure(&parent)?;
        }
        self.put_field(id, &Field::Name, FieldValue::Text(id.name().to_owned()))
    }

    /// Deletes every field of `id`. Skipped when the index knows of no field
    /// and this batch wrote none (the common case of a brand-new entity).
    fn clear_leftovers(&mut self, id: &EntityId) -> EditResult {
        if !self.removed.contains(id) && !self.created.contains(id) && !self.index.has_fields(id) {
            return Ok(());
        }
        let stale: Vec<String> = self
            .tx
            .map_range(ROOT, keys::entity_range(id))
            .map(|item| item.key.into_owned())
            .collect();
        for key in stale {
            self.delete_key(key)?;
        }
        Ok(())
    }

    /// Sets one attribute of an existing entity. A removal concurrent with this
    /// edit wins (the entity stays removed).
    pub fn set_attr(&mut self, id: &EntityId, attr: &Attr) -> EditResult {
        attr.check()?;
        self.require(id)?;
        self.write_attr(id, attr)?;
        self.ops += 1;
        Ok(())
    }

    fn write_attr(&mut self, id: &EntityId, attr: &Attr) -> EditResult {
        let (field, value) = match attr {
            Attr::Owner(v) => (Field::Owner, FieldValue::Text(v.clone())),
            Attr::Description(v) => (Field::Description, FieldValue::Text(v.clone())),
            Attr::Schema(v) => (Field::Schema, FieldValue::Text(v.clone())),
            Attr::Level(v) => (Field::Level, FieldValue::Int(*v)),
            Attr::Tag(t) => (Field::Tag(t.clone()), FieldValue::Flag),
            Attr::Extra(k, v) => (Field::Extra(k.clone()), FieldValue::Text(v.clone())),
        };
        self.put_field(id, &field, value)
    }

    /// Removes one attribute of an existing entity (a no-op if it is not set).
    pub fn unset_attr(&mut self, id: &EntityId, key: &AttrKey) -> EditResult {
        key.check()?;
        self.require(id)?;
        let field = match key {
            AttrKey::Owner => Field::Owner,
            AttrKey::Description => Field::Description,
            AttrKey::Level => Field::Level,
            AttrKey::Schema => Field::Schema,
            AttrKey::Tag(t) => Field::Tag(t.clone()),
            AttrKey::Extra(k) => Field::Extra(k.clone()),
        };
        self.delete_key(keys::entity_key(id, &field))?;
        self.ops += 1;
        Ok(())
    }

    /// Records the last run of an existing entity.
    pub fn set_run(&mut self, id: &EntityId, run: &RunState) -> EditResult {
        check_run(run)?;
        self.require(id)?;
        self.put_field(id, &Field::Run, FieldValue::Run(run.clone()))?;
        self.ops += 1;
        Ok(())
    }

    /// Retires an existing entity and its columns (soft: they stay in the graph
    /// with the time of retirement).
    pub fn retire(&mut self, id: &EntityId) -> EditResult {
        self.require(id)?;
        for e in self.with_children(id) {
            self.put_field(&e, &Field::Retired, FieldValue::Time(self.now))?;
        }
        self.ops += 1;
        Ok(())
    }

    /// Un-retires an existing entity and its columns.
    pub fn restore(&mut self, id: &EntityId) -> EditResult {
        self.require(id)?;
        for e in self.with_children(id) {
            self.delete_key(keys::entity_key(&e, &Field::Retired))?;
        }
        self.ops += 1;
        Ok(())
    }

    /// Removes an existing entity, its columns, and every edge touching them
    /// that this node knows of. Edges linked concurrently elsewhere survive and
    /// dangle (hidden until the entity exists again).
    pub fn remove(&mut self, id: &EntityId) -> EditResult {
        self.require(id)?;
        for e in self.with_children(id) {
            self.remove_one(&e)?;
        }
        self.ops += 1;
        Ok(())
    }

    fn remove_one(&mut self, id: &EntityId) -> EditResult {
        self.mark_removed(id);
        self.clear_leftovers(id)?;
        // Out-edges are a key range; in-edges come from the index plus this
        // batch's links.
        let out: Vec<EntityId> = self
            .tx
            .map_range(ROOT, keys::out_edge_range(id))
            .filter_map(|item| match keys::Key::parse(&item.key) {
                Some(keys::Key::Edge(_, t)) => Some(t),
                _ => None,
            })
            .collect();
        for t in out {
            self.delete_edge(id, &t)?;
        }
        let mut sources: Vec<EntityId> = Vec::new();
        if let Some(ix) = self.index.slot(id) {
            sources.extend(
                self.index.inn[ix as usize]
                    .iter()
                    .map(|&s| self.index.ids[s as usize].clone()),
            );
        }
        sources.extend(
            self.edges
                .iter()
                .filter(|((_, t), linked)| **linked && t == id)
                .map(|((s, _), _)| s.clone()),
        );
        for s in sources {
            if self.is_linked(&s, id) {
                self.delete_edge(&s, id)?;
            }
        }
        Ok(())
    }

    /// `id` and its existing columns.
    fn with_children(&self, id: &EntityId) -> Vec<EntityId> {
        let mut all = vec![id.clone()];
        let mut kids = self.index.children(id);
        kids.extend(
            self.created
                .iter()
                .filter(|c| c.parent().as_ref() == Some(id))
                .cloned(),
        );
        kids.retain(|k| !self.removed.contains(k));
        kids.sort();
        kids.dedup();
        all.extend(kids.into_iter().filter(|k| self.exists(k)));
        all
    }

    /// Links `source → target`, creating missing endpoints. If the edge exists
    /// its definition is merged with `spec` ([`EdgeSpec::merge`]); if not, a run
    /// left from an earlier incarnation is cleared.
    pub fn link(&mut self, source: &EntityId, target: &EntityId, spec: &EdgeSpec) -> EditResult {
        spec.check()?;
        self.ensure(source)?;
        self.ensure(target)?;
        let key = keys::edge_key(source, target);
        let merged = match self.current_spec(source, target) {
            Some(old) => {
                let mut merged = old.clone();
                merged.merge(spec);
                let untouched = !self.edges.contains_key(&(source.clone(), target.clone()));
                if untouched && merged == old {
                    // The index holds the document's spec: nothing to write.
                    self.ops += 1;
                    return Ok(());
                }
                merged
            }
            None => {
                self.delete_key(keys::edge_run_key(source, target))?;
                spec.clone()
            }
        };
        self.tx
            .put(
                ROOT,
                key,
                ScalarValue::Str(keys::encode_json(&merged).into()),
            )
            .map_err(doc_err)?;
        self.edges.insert((source.clone(), target.clone()), true);
        self.ops += 1;
        Ok(())
    }

    /// Removes the edge `source → target` and its run.
    pub fn unlink(&mut self, source: &EntityId, target: &EntityId) -> EditResult {
        if !self.is_linked(source, target) {
            return Err(EditError::UnknownEdge(source.clone(), target.clone()));
        }
        self.delete_edge(source, target)?;
        self.ops += 1;
        Ok(())
    }

    /// Records the last run along a linked edge.
    pub fn set_edge_run(
        &mut self,
        source: &EntityId,
        target: &EntityId,
        run: &RunState,
    ) -> EditResult {
        check_run(run)?;
        if !self.is_linked(source, target) {
            return Err(EditError::UnknownEdge(source.clone(), target.clone()));
        }
        self.tx
            .put(
                ROOT,
                keys::edge_run_key(source, target),
                ScalarValue::Str(keys::encode_json(run).into()),
            )
            .map_err(doc_err)?;
        self.ops += 1;
        Ok(())
    }

    fn delete_edge(&mut self, source: &EntityId, target: &EntityId) -> EditResult {
        self.edges.insert((source.clone(), target.clone()), false);
        self.delete_key(keys::edge_key(source, target))?;
        self.delete_key(keys::edge_run_key(source, target))
    }

    fn current_spec(&self, source: &EntityId, target: &EntityId) -> Option<EdgeSpec> {
        if !self.edges.contains_key(&(source.clone(), target.clone())) {
            return self.index.edge_spec_of(source, target).cloned();
        }
        let (value, _) = self.tx.get(ROOT, keys::edge_key(source, target)).ok()??;
        keys::decode_edge(&value)
    }

    fn require(&self, id: &EntityId) -> EditResult {
        if self.exists(id) {
            Ok(())
        } else {
            Err(EditError::UnknownEntity(id.clone()))
        }
    }

    /// Writes one field, unless the index shows it already holds `value`
    /// and this batch has not touched it. Automerge would drop the equal
    /// write anyway, but only after seeking the key in the document, which
    /// is most of the cost of re-ingesting unchanged metadata.
    fn put_field(&mut self, id: &EntityId, field: &Field, value: FieldValue) -> EditResult {
        let key = keys::entity_key(id, field);
        if !self.written.contains(&key) && self.index.holds(id, field, &value) {
            return Ok(());
        }
        self.tx
            .put(ROOT, key.as_str(), value.to_scalar())
            .map_err(doc_err)?;
        self.written.insert(key);
        Ok(())
    }

    /// Deletes a key (Automerge makes deleting an absent key a no-op).
    fn delete_key(&mut self, key: String) -> EditResult {
        self.tx.delete(ROOT, key.as_str()).map_err(doc_err)?;
        self.written.insert(key);
        Ok(())
    }
}

fn check_run(run: &RunState) -> EditResult {
    if let Some(m) = &run.message {
        super::model::check_value(m)?;
    }
    Ok(())
}
