//! The strict part of reading an event: which kind it is, when, what
//! happened to the run, and the names of its job and datasets. Anything
//! wrong here rejects the event, since without it there is no lineage to
//! record; facets are read leniently elsewhere.

use serde::{Deserialize, Serialize};

use super::error::EventError;
use super::facets::Facets;
use super::json::{Obj, Warnings};
use super::naming;
use super::time::{self, Timestamp};
use super::tree::Json;
use crate::lineage::model::{EntityKind, NewEntity, RunStatus};

/// The three kinds of OpenLineage event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A run of a job changed state (`run` and `job`).
    Run,
    /// A job's static lineage (`job`, no `run`).
    Job,
    /// A dataset's metadata (`dataset`).
    Dataset,
}

/// A job or dataset of the event: its entity and where it is.
#[derive(Debug, Clone)]
pub(super) struct Node<'a> {
    /// The entity (no attributes yet).
    pub entity: NewEntity,
    /// The name as OpenLineage gave it (without namespace).
    pub name: &'a str,
    /// The object, for its facets.
    pub obj: Obj<'a>,
}

/// An event, read.
#[derive(Debug)]
pub(super) struct Event<'a> {
    /// Its kind.
    pub kind: EventKind,
    /// `eventTime`.
    pub time: Option<Timestamp>,
    /// `eventType` as the spec spells it (upper case), for the dedup key.
    pub event_type: Option<&'static str>,
    /// The run state `eventType` reports; `None` for OTHER or no type.
    pub status: Option<RunStatus>,
    /// `run.runId`.
    pub run_id: Option<&'a str>,
    /// `run.facets`.
    pub run_facets: Facets<'a>,
    /// `job`.
    pub job: Option<Node<'a>>,
    /// `inputs`.
    pub inputs: Vec<Node<'a>>,
    /// `outputs`.
    pub outputs: Vec<Node<'a>>,
    /// `dataset` of a DatasetEvent.
    pub dataset: Option<Node<'a>>,
}

const EVENT_TYPES: [&str; 6] = ["START", "RUNNING", "COMPLETE", "FAIL", "ABORT", "OTHER"];

/// Reads the event in `value`.
pub(super) fn read<'a>(value: &'a Json<'a>, w: &mut Warnings) -> Result<Event<'a>, EventError> {
    let root = Obj::new(value, "").map_err(|_| EventError::WrongType {
        field: "(the event)".into(),
        expected: "an object".into(),
        found: super::json::type_name(value).into(),
    })?;
    let kind = kind(&root, w)?;
    let mut event = Event {
        kind,
        time: None,
        event_type: None,
        status: None,
        run_id: None,
        run_facets: Facets::default(),
        job: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
        dataset: None,
    };
    event.time = match root.opt_str("eventTime")? {
        Some(text) => Some(
            time::parse(text).map_err(|reason| EventError::invalid("eventTime", text, reason))?,
        ),
        None if kind == EventKind::Run => {
            return Err(EventError::Missing {
                field: "eventTime".into(),
            });
        }
        None => {
            w.push(format!("no `eventTime` in this {kind:?}Event"));
            None
        }
    };
    let event_type = root.opt_str("eventType");
    if kind != EventKind::Run {
        if let Ok(Some(t)) = event_type {
            w.push(format!(
                "`eventType` {t:?} ignored: a {kind:?}Event has no run"
            ));
        }
    } else if let Some(text) = event_type? {
        let upper = text.to_ascii_uppercase();
        let Some(t) = EVENT_TYPES.into_iter().find(|t| *t == upper) else {
            return Err(EventError::UnknownEventType { value: text.into() });
        };
        event.event_type = Some(t);
        event.status = (t != "OTHER")
            .then(|| RunStatus::parse(t))
            .and_then(Result::ok);
    }
    match kind {
        EventKind::Run => {
            let run = root.req_obj("run")?;
            event.run_id = Some(run.req_str("runId")?);
            event.run_facets = Facets::of(&run, "facets", w);
            event.job = Some(node(&root.req_obj("job")?, EntityKind::Job)?);
            datasets(&root, &mut event)?;
        }
        EventKind::Job => {
            event.job = Some(node(&root.req_obj("job")?, EntityKind::Job)?);
            datasets(&root, &mut event)?;
        }
        EventKind::Dataset => {
            event.dataset = Some(node(&root.req_obj("dataset")?, EntityKind::Table)?);
        }
    }
    Ok(event)
}

/// The kind, from the fields present; `schemaURL` decides when the fields
/// fit more than one kind (a RunEvent with a stray `dataset`).
fn kind(root: &Obj<'_>, w: &mut Warnings) -> Result<EventKind, EventError> {
    let fits = |k: EventKind| match k {
        EventKind::Run => root.has("run") && root.has("job"),
        EventKind::Job => root.has("job"),
        EventKind::Dataset => root.has("dataset"),
    };
    let declared =
        w.ok(root.opt_str("schemaURL"))
            .flatten()
            .and_then(|url| match url.rsplit('/').next() {
                Some("RunEvent") => Some(EventKind::Run),
                Some("JobEvent") => Some(EventKind::Job),
                Some("DatasetEvent") => Some(EventKind::Dataset),
                _ => None,
            });
    let inferred = [EventKind::Run, EventKind::Job, EventKind::Dataset]
        .into_iter()
        .find(|k| fits(*k));
    let kind = declared.filter(|k| fits(*k)).or(inferred);
    match (kind, declared) {
        (Some(k), Some(d)) if k != d => {
            w.push(format!(
                "`schemaURL` declares a {d:?}Event, but the fields are those of a {k:?}Event; read as one"
            ));
        }
        (None, _) if root.has("run") => {
            return Err(EventError::Missing {
                field: "job".into(),
            });
        }
        _ => {}
    }
    kind.ok_or(EventError::UnknownShape)
}

/// A job or dataset: `namespace` and `name`, both required.
fn node<'a>(obj: &Obj<'a>, kind: EntityKind) -> Result<Node<'a>, EventError> {
    let namespace = obj.req_str("namespace")?;
    let name = obj.req_str("name")?;
    let entity = naming::entity(kind, namespace, name)
        .ok_or_else(|| EventError::invalid(obj.field("name"), name, "not a usable entity name"))?;
    Ok(Node {
        entity,
        name,
        obj: obj.clone(),
    })
}

fn datasets<'a>(root: &Obj<'a>, event: &mut Event<'a>) -> Result<(), EventError> {
    for obj in root.objects("inputs")? {
        event.inputs.push(node(&obj, EntityKind::Table)?);
    }
    for obj in root.objects("outputs")? {
        event.outputs.push(node(&obj, EntityKind::Table)?);
    }
    Ok(())
}
