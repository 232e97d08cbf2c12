//! OpenLineage events as lineage operations: what Airflow, Spark, dbt or any
//! other OpenLineage producer reports about its runs, turned into the
//! [`Op`]s a node applies to its lineage document.
//!
//! Pure like the rest of the crate: bytes in, operations out. The node
//! chooses the batch, the time and whether it saw the event before
//! ([`Ingested::dedup_key`]). Spec: <https://openlineage.io/spec/2-0-2/OpenLineage.json>.
//!
//! ```
//! use stemma_protocol::lineage::openlineage::{ops_for_event, EventKind};
//! use stemma_protocol::lineage::{EntityId, LineageDoc, Traversal};
//!
//! let event = br#"{
//!   "eventType": "COMPLETE", "eventTime": "2024-05-01T02:00:00Z",
//!   "run": {"runId": "0190d4b1-8c37-7c7e-b0b4-6f7f3c1b2a10"},
//!   "job": {"namespace": "airflow", "name": "nightly.load_orders"},
//!   "inputs": [{"namespace": "postgres://db:5432", "name": "shop.public.orders"}],
//!   "outputs": [{"namespace": "bigquery", "name": "mart.sales.orders"}]
//! }"#;
//! let ingested = ops_for_event(event).unwrap();
//! assert_eq!(ingested.kind, EventKind::Run);
//!
//! let mut doc = LineageDoc::new("default", b"node-a/1").unwrap();
//! doc.apply(1_714_528_800_000, &ingested.ops).unwrap();
//! let source = EntityId::parse("table:postgres://db:5432/shop.public.orders").unwrap();
//! let down = doc.index().downstream(&source, &Traversal::depth(2)).unwrap();
//! let reached: Vec<&str> = down.items.iter().map(|r| r.id.as_str()).collect();
//! assert_eq!(reached, ["job:airflow/nightly.load_orders", "table:bigquery/mart.sales.orders"]);
//! ```
//!
//! # Mapping
//!
//! - **Event kind.** A `run` and a `job` make a RunEvent, a `job` alone a
//!   JobEvent, a `dataset` a DatasetEvent. When the fields fit more than one
//!   (the spec's own example RunEvent carries a stray `dataset`), the kind
//!   named at the end of `schemaURL` decides; a `schemaURL` that names a
//!   kind whose fields are absent only earns a warning.
//! - **Jobs** become `job:<namespace>/<name>` and **datasets**
//!   `table:<namespace>/<name>`, names as written (`job:airflow/BQ.upload`,
//!   `table:gs://mock-bucket/copied.csv`, `table:file/tmp/cll_test/tbl1`);
//!   ids are their lower-case form like every id. Every dataset is a `table`,
//!   files and objects included: a column belongs to its table through its
//!   id (`column:T.F` → `table:T`), so a file dataset with a schema must be a
//!   table for its columns to attach to it, and the kind `object` means a
//!   Stemma object. The namespace stays readable in the name (the `gs://`,
//!   `hdfs://` of a path tells what it is). See `naming.rs` for escaping and
//!   over-long names.
//! - **Lineage.** Each input gets an `application` edge to the job (the job
//!   uses the data) and the job a `transformation` edge to each output, so
//!   `downstream(input)` reaches the outputs through the job and
//!   `upstream(output)` finds the job and its inputs. The `parent` run facet
//!   adds a `scheduling` edge from the parent job (an Airflow DAG, a Spark
//!   application) to the job.
//! - **Schema.** The `schema` dataset facet sets the table's `schema`
//!   attribute (`name type, …`) and creates a column entity per top-level
//!   field, `column:<namespace>/<name>.<field>`, with the field's type as its
//!   `schema` and its description.
//! - **Column lineage.** Each `inputFields` entry of a `columnLineage` facet
//!   (on an output, or on the dataset of a DatasetEvent) becomes a column →
//!   column edge, labelled with the producing job: `mapping` for identity
//!   copies, `transformation` for computed values, `indirect` for inputs that
//!   only influence the output (joins, filters); the transformations are kept
//!   in the edge's `transformations` extra.
//! - **SQL.** The `sql` job facet's query is the `rule` of the job's output
//!   edges. It is also parsed with [`crate::sql::extract`] (in the facet's
//!   `dialect`, else generic SQL), and its column lineage fills in for
//!   outputs without a `columnLineage` facet, between this event's datasets
//!   only. A query that does not parse is a warning.
//! - **Volume.** `outputStatistics.rowCount` (else `size`) is the output
//!   edge's `volume`, its unit in the `volume_unit` extra.
//! - **Runs.** `eventType` START, RUNNING, COMPLETE, FAIL and ABORT become
//!   the job's last run ([`Op::SetRun`]: the status, `eventTime` in ms and,
//!   when the run facets have one, the `errorMessage` message). COMPLETE,
//!   FAIL and ABORT are also the last run of each output edge, so a table
//!   shows how its last load ended (the message is the row count when there
//!   is no error). OTHER and a missing `eventType`
//!   record lineage only: the spec sends OTHER to add metadata to a run,
//!   not to change its state. Within one document the run applied last is
//!   the last run, so a node should apply a run's events in `eventTime`
//!   order (or skip one older than the job's current run); run reports
//!   made concurrently on different nodes resolve by their own time (see
//!   the concurrency rules).
//! - **Ownership and documentation** facets set `owner` (the owners' names,
//!   joined) and `description` on jobs and datasets.
//! - **Dedup key** (RunEvents): `runId|eventType|eventTime`, the time in UTC
//!   at the precision sent, so the same instant written with `Z` or `+00:00`
//!   gives one key. It identifies a delivery, not its content: OpenLineage's
//!   and Marquez's fixtures reuse a runId with different content, so a node
//!   should treat a repeated key as a retry only if it can afford to be
//!   wrong about such events.
//!
//! # Strict and lenient
//!
//! The event's skeleton is checked strictly, because the lineage depends on
//! it: malformed JSON, an object of no known shape, a missing or unreadable
//! `eventTime` (RunEvents), an unknown `eventType`, a missing `run.runId`, a
//! job or dataset without a string `namespace` and `name` are errors naming
//! the field ([`EventError`]). Everything clients are known to get wrong is
//! accepted: `eventTime` without an offset (read as UTC, see `time.rs`),
//! lower-case event types, a missing `schemaURL` or `producer`, `null` for
//! absent fields, reused runIds, a JobEvent with an `eventType` (ignored with
//! a warning), facets of the wrong shape (skipped with a warning naming
//! them). Nothing panics, whatever the bytes.

mod error;
mod event;
mod facets;
mod json;
mod mapping;
mod naming;
mod parse;
mod sql;
mod stale_runs;
mod time;
mod tree;

use serde::{Deserialize, Serialize};

pub use error::EventError;
pub use event::EventKind;
pub use stale_runs::StaleRuns;

use super::edit::Op;
use super::model::Millis;

/// What one event contributes to the graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ingested {
    /// The operations, in the order they must be applied (as one batch).
    pub ops: Vec<Op>,
    /// `runId|eventType|eventTime` for a RunEvent (see the module docs);
    /// `None` for job and dataset events.
    pub dedup_key: Option<String>,
    /// The kind of event.
    pub kind: EventKind,
    /// `eventTime` in ms since the Unix epoch; `None` only for a job or
    /// dataset event without one.
    pub event_time: Option<Millis>,
    /// What was skipped or read in a lenient way, each naming the field.
    pub warnings: Vec<String>,
}

/// Reads one OpenLineage event (RunEvent, JobEvent or DatasetEvent, as JSON)
/// and returns the lineage operations it implies.
pub fn ops_for_event(json: &[u8]) -> Result<Ingested, EventError> {
    let value = parse::event_tree(json).map_err(|e| EventError::from_json(&e))?;
    let mut warnings = json::Warnings::default();
    let event = event::read(&value, &mut warnings)?;
    let ops = mapping::ops(&event, &mut warnings);
    let dedup_key = match (event.run_id, &event.time) {
        (Some(run), Some(time)) if event.kind == EventKind::Run => Some(format!(
            "{run}|{}|{}",
            event.event_type.unwrap_or(""),
            time.canonical
        )),
        _ => None,
    };
    Ok(Ingested {
        ops,
        dedup_key,
        kind: event.kind,
        event_time: event.time.map(|t| t.millis),
        warnings: warnings.into_vec(),
    })
}
