//! From a read event to lineage operations (the mapping is documented on
//! the parent module). Every operation is built valid: names fit ids,
//! values fit attributes, and each entity is upserted before anything
//! refers to it, so applying the batch cannot fail on our account.

use std::collections::BTreeSet;

use super::event::{Event, Node};
use super::facets::{self, ColumnFlow, Facets, Stats};
use super::json::Warnings;
use super::naming;
use super::sql::{self, Known};
use crate::lineage::edit::Op;
use crate::lineage::model::{
    Attributes, EdgeKind, EdgeSpec, EntityId, EntityKind, NewEntity, RunState, RunStatus,
};

/// The operations of `event`, in the order they must be applied.
pub(super) fn ops(event: &Event<'_>, w: &mut Warnings) -> Vec<Op> {
    let mut b = Builder::default();
    if let Some(dataset) = &event.dataset {
        let table = b.dataset(dataset, w);
        let facets = Facets::of(&dataset.obj, "facets", w);
        if let Some(flows) = facets::column_lineage(&facets, w) {
            b.column_flows(&table, &flows, None, w);
        }
    } else if let Some(job) = &event.job {
        b.job_event(event, job, w);
    }
    b.ops
}

#[derive(Default)]
struct Builder {
    ops: Vec<Op>,
    upserted: BTreeSet<EntityId>,
}

impl Builder {
    /// A run or job event: the job, its inputs and outputs, their column
    /// lineage, and the run.
    fn job_event(&mut self, event: &Event<'_>, job_node: &Node<'_>, w: &mut Warnings) {
        let job = self.job(job_node, &event.run_facets, w);
        let job_facets = Facets::of(&job_node.obj, "facets", w);
        let sql_facet = facets::sql(&job_facets, w);
        let rule = sql_facet.as_ref().map(|f| f.query.as_str());
        let run = event.status.clone().map(|status| RunState {
            status,
            time: event.time.as_ref().map_or(0, |t| t.millis),
            message: facets::error_message(&event.run_facets, w),
        });
        let mut tables = Vec::new();
        for input in &event.inputs {
            let table = self.dataset(input, w);
            self.link(&table.id, &job.id, EdgeSpec::of(EdgeKind::Application));
            tables.push(table);
        }
        let mut without_facet = BTreeSet::new();
        for output in &event.outputs {
            let (table, has_facet) = self.output(output, &job.id, rule, run.as_ref(), w);
            if !has_facet {
                without_facet.insert(table.id.clone());
            }
            tables.push(table);
        }
        if let Some(lineage) = sql_facet.as_ref().and_then(|f| sql::lineage(f, w)) {
            let names = event.inputs.iter().chain(&event.outputs).map(|n| n.name);
            let known: Vec<Known<'_>> = names
                .zip(&tables)
                .map(|(name, table)| Known { name, table })
                .collect();
            let pairs = sql::column_pairs(&lineage, &known, |t| without_facet.contains(&t.id));
            for (st, sf, tt, tf) in pairs {
                let mut spec = EdgeSpec::of(EdgeKind::Transformation);
                spec.job = Some(job.id.clone());
                spec.extra.insert("from".into(), "sql".into());
                self.column_edge((st, &sf), (tt, &tf), spec, w);
            }
        }
        if let Some(run) = run {
            self.ops.push(Op::SetRun { id: job.id, run });
        }
    }

    /// An output: the dataset, the job's edge to it (SQL rule, volume), its
    /// column lineage and how the run ended for it. Also says whether it had
    /// a `columnLineage` facet.
    fn output(
        &mut self,
        node: &Node<'_>,
        job: &EntityId,
        rule: Option<&str>,
        run: Option<&RunState>,
        w: &mut Warnings,
    ) -> (NewEntity, bool) {
        let table = self.dataset(node, w);
        let facets = Facets::of(&node.obj, "facets", w);
        let io_facets = Facets::of(&node.obj, "outputFacets", w);
        let stats = facets::output_statistics(&io_facets, w);
        let mut spec = EdgeSpec::of(EdgeKind::Transformation);
        spec.rule = rule.map(str::to_owned);
        spec.volume = stats.rows.or(stats.bytes);
        let unit = match stats {
            Stats { rows: Some(_), .. } => Some("rows"),
            Stats { bytes: Some(_), .. } => Some("bytes"),
            _ => None,
        };
        if let Some(unit) = unit {
            spec.extra.insert("volume_unit".into(), unit.into());
        }
        self.link(job, &table.id, spec);
        let flows = facets::column_lineage(&facets, w);
        if let Some(flows) = &flows {
            self.column_flows(&table, flows, Some(job), w);
        }
        if let Some(run) = run.filter(|r| is_outcome(&r.status)) {
            let mut load = run.clone();
            if load.message.is_none() {
                load.message = stats.rows.map(|n| format!("{n} rows"));
            }
            self.ops.push(Op::SetEdgeRun {
                source: job.clone(),
                target: table.id.clone(),
                run: load,
            });
        }
        (table, flows.is_some())
    }

    /// Upserts the job (owner and description from its facets) and links
    /// it from its parent job.
    fn job(&mut self, node: &Node<'_>, run_facets: &Facets<'_>, w: &mut Warnings) -> NewEntity {
        let facets = Facets::of(&node.obj, "facets", w);
        let mut job = node.entity.clone();
        job.attributes = Attributes {
            owner: facets::owners(&facets, w),
            description: facets::description(&facets, w),
            ..Attributes::default()
        };
        self.upsert(job.clone());
        if let Some((ns, name)) = facets::parent_job(run_facets, w) {
            match naming::entity(EntityKind::Job, ns, name) {
                Some(parent) if parent.id != job.id => {
                    let id = parent.id.clone();
                    self.ensure(parent);
                    self.link(&id, &job.id, EdgeSpec::of(EdgeKind::Scheduling));
                }
                _ => {}
            }
        }
        job
    }

    /// Upserts a dataset with its attributes and its schema's columns.
    fn dataset(&mut self, node: &Node<'_>, w: &mut Warnings) -> NewEntity {
        let facets = Facets::of(&node.obj, "facets", w);
        let fields = facets::schema(&facets, w);
        let mut table = node.entity.clone();
        let schema = fields
            .iter()
            .map(|f| match &f.kind {
                Some(k) => format!("{} {k}", f.name),
                None => f.name.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ");
        table.attributes = Attributes {
            owner: facets::owners(&facets, w),
            description: facets::description(&facets, w),
            schema: (!schema.is_empty())
                .then(|| w.clip(&format!("{}.facets.schema", node.obj.path()), &schema)),
            ..Attributes::default()
        };
        self.upsert(table.clone());
        for f in fields {
            match naming::column(&table, &f.name) {
                Ok(mut column) => {
                    column.attributes.schema = f.kind;
                    column.attributes.description = f.description;
                    self.upsert(column);
                }
                Err(why) => w.push(format!(
                    "no column for field {:?} of {}: {why}",
                    f.name, table.name
                )),
            }
        }
        table
    }

    /// Column edges from a `columnLineage` facet on `table`.
    fn column_flows(
        &mut self,
        table: &NewEntity,
        flows: &[ColumnFlow],
        job: Option<&EntityId>,
        w: &mut Warnings,
    ) {
        for flow in flows {
            for input in &flow.inputs {
                let Some(source) = naming::entity(EntityKind::Table, &input.namespace, &input.name)
                else {
                    continue;
                };
                self.ensure(source.clone());
                let mut spec = EdgeSpec::of(edge_kind(
                    &input.transformations,
                    flow.legacy_type.as_deref(),
                ));
                spec.job = job.cloned();
                spec.rule.clone_from(&flow.description);
                let labels: BTreeSet<&str> =
                    input.transformations.iter().map(String::as_str).collect();
                if !labels.is_empty() {
                    let text = labels.into_iter().collect::<Vec<_>>().join(", ");
                    spec.extra
                        .insert("transformations".into(), w.clip("transformations", &text));
                }
                if input.masking {
                    spec.extra.insert("masking".into(), "true".into());
                }
                self.column_edge((&source, &input.field), (table, &flow.field), spec, w);
            }
        }
    }

    /// Upserts both columns (keeping their display names) and links them.
    fn column_edge(
        &mut self,
        (source_table, source_field): (&NewEntity, &str),
        (target_table, target_field): (&NewEntity, &str),
        spec: EdgeSpec,
        w: &mut Warnings,
    ) {
        let columns = naming::column(source_table, source_field)
            .map_err(|why| (source_table, source_field, why))
            .and_then(|s| {
                naming::column(target_table, target_field)
                    .map(|t| (s, t))
                    .map_err(|why| (target_table, target_field, why))
            });
        match columns {
            Ok((s, t)) => {
                let (sid, tid) = (s.id.clone(), t.id.clone());
                self.ensure(s);
                self.ensure(t);
                self.link(&sid, &tid, spec);
            }
            Err((table, field, why)) => {
                w.push(format!(
                    "no column edge for field {field:?} of {}: {why}",
                    table.name
                ));
            }
        }
    }

    fn upsert(&mut self, entity: NewEntity) {
        self.upserted.insert(entity.id.clone());
        self.ops.push(Op::Upsert(entity));
    }

    /// Upserts `entity` unless this event already did (so its display name,
    /// not the lower-case id, is what a new entity is created with).
    fn ensure(&mut self, entity: NewEntity) {
        if !self.upserted.contains(&entity.id) {
            self.upsert(entity);
        }
    }

    fn link(&mut self, source: &EntityId, target: &EntityId, spec: EdgeSpec) {
        self.ops.push(Op::Link {
            source: source.clone(),
            target: target.clone(),
            spec,
        });
    }
}

/// Whether a run status is how a run ended: only an outcome is recorded as
/// the last load of an output, so a table does not show a START forever
/// when, as in Marquez's examples, only the START event lists datasets.
fn is_outcome(status: &RunStatus) -> bool {
    matches!(
        status,
        RunStatus::Complete | RunStatus::Fail | RunStatus::Abort
    )
}

/// The edge kind of a column flow: `mapping` when every direct
/// transformation is an identity, `transformation` when one is not,
/// `indirect` when the input only influences the output (a join key, a
/// filter: OpenLineage's INDIRECT transformations) and `mapping` when the
/// facet does not say (facet 1-0-x: from `transformationType`).
fn edge_kind(transformations: &[String], legacy: Option<&str>) -> EdgeKind {
    let direct: Vec<&str> = transformations
        .iter()
        .filter_map(|t| t.strip_prefix("DIRECT"))
        .collect();
    if transformations.is_empty() {
        return match legacy.map(str::to_ascii_uppercase).as_deref() {
            None | Some("IDENTITY" | "") => EdgeKind::Mapping,
            Some(_) => EdgeKind::Transformation,
        };
    }
    if direct.is_empty() {
        return EdgeKind::Other("indirect".into());
    }
    if direct.iter().all(|d| *d == "/IDENTITY" || d.is_empty()) {
        EdgeKind::Mapping
    } else {
        EdgeKind::Transformation
    }
}
