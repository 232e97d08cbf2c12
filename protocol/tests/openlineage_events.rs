//! OpenLineage events one feature at a time: each event kind, each facet the
//! mapping reads, bad input and the errors that name its field, and
//! properties over arbitrary input.

use proptest::prelude::*;
use serde_json::{Value, json};
use stemma_protocol::lineage::openlineage::{EventError, EventKind, Ingested, ops_for_event};
use stemma_protocol::lineage::{
    EdgeKind, EdgeRecord, EntityId, EntityRecord, LineageDoc, Op, RunStatus,
};

const RUN_ID: &str = "0190d4b1-8c37-7c7e-b0b4-6f7f3c1b2a10";

fn id(s: &str) -> EntityId {
    EntityId::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn read(event: &Value) -> Result<Ingested, EventError> {
    ops_for_event(&serde_json::to_vec(event).unwrap())
}

fn ok(event: &Value) -> Ingested {
    read(event).unwrap_or_else(|e| panic!("rejected: {e}"))
}

fn err(event: &Value) -> EventError {
    match read(event) {
        Ok(i) => panic!("accepted: {i:?}"),
        Err(e) => e,
    }
}

/// Applies the event's ops to a fresh document, as one batch.
fn doc_of(ing: &Ingested) -> LineageDoc {
    let mut doc = LineageDoc::new("default", b"test/1").unwrap();
    doc.apply(ing.event_time.unwrap_or(0), &ing.ops)
        .unwrap_or_else(|e| panic!("ops do not apply: {e}\n{:#?}", ing.ops));
    doc
}

fn entity(doc: &LineageDoc, s: &str) -> EntityRecord {
    doc.index()
        .entity(&id(s))
        .unwrap_or_else(|| panic!("no entity {s}"))
}

fn edge(doc: &LineageDoc, source: &str, target: &str) -> EdgeRecord {
    doc.index()
        .edge(&id(source), &id(target))
        .unwrap_or_else(|| panic!("no edge {source} -> {target}"))
}

/// A RunEvent: `orders` → job `nightly.load` → `mart.orders`.
fn run_event(event_type: &str) -> Value {
    json!({
        "eventType": event_type,
        "eventTime": "2024-05-01T02:00:00.5+02:00",
        "run": {"runId": RUN_ID},
        "job": {"namespace": "airflow", "name": "Nightly.Load"},
        "inputs": [{"namespace": "postgres://db:5432", "name": "shop.public.orders"}],
        "outputs": [{"namespace": "bigquery", "name": "mart.Orders"}],
        "producer": "https://example.com/producer",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
    })
}

const JOB: &str = "job:airflow/nightly.load";
const INPUT: &str = "table:postgres://db:5432/shop.public.orders";
const OUTPUT: &str = "table:bigquery/mart.orders";

/// Sets `value` at the JSON pointer `path` (creating objects on the way).
fn with(mut event: Value, path: &str, value: Value) -> Value {
    let mut at = &mut event;
    for key in path.trim_start_matches('/').split('/') {
        at = match at {
            Value::Array(items) => &mut items[key.parse::<usize>().unwrap()],
            other => {
                if !other.is_object() {
                    *other = json!({});
                }
                other
                    .as_object_mut()
                    .unwrap()
                    .entry(key)
                    .or_insert(Value::Null)
            }
        };
    }
    *at = value;
    event
}

fn without(mut event: Value, key: &str) -> Value {
    event.as_object_mut().unwrap().remove(key);
    event
}

// ---------------------------------------------------------------- kinds

#[test]
fn a_run_event_links_inputs_to_outputs_through_the_job() {
    let ing = ok(&run_event("COMPLETE"));
    assert_eq!(ing.kind, EventKind::Run);
    assert_eq!(ing.event_time, Some(1_714_521_600_500));
    assert_eq!(
        ing.dedup_key.as_deref(),
        Some("0190d4b1-8c37-7c7e-b0b4-6f7f3c1b2a10|COMPLETE|2024-05-01T00:00:00.5Z")
    );
    assert!(ing.warnings.is_empty(), "{:?}", ing.warnings);
    let doc = doc_of(&ing);
    assert_eq!(entity(&doc, JOB).name, "airflow/Nightly.Load");
    assert_eq!(entity(&doc, OUTPUT).name, "bigquery/mart.Orders");
    assert_eq!(edge(&doc, INPUT, JOB).spec.kind, EdgeKind::Application);
    assert_eq!(edge(&doc, JOB, OUTPUT).spec.kind, EdgeKind::Transformation);
    let run = entity(&doc, JOB).run.unwrap();
    assert_eq!(
        (run.status, run.time, run.message),
        (RunStatus::Complete, 1_714_521_600_500, None)
    );
    let load = edge(&doc, JOB, OUTPUT).run.unwrap();
    assert_eq!(load.status, RunStatus::Complete);
}

#[test]
fn each_event_type_is_a_run_state_except_other() {
    for (t, status) in [
        ("START", Some(RunStatus::Start)),
        ("RUNNING", Some(RunStatus::Running)),
        ("COMPLETE", Some(RunStatus::Complete)),
        ("FAIL", Some(RunStatus::Fail)),
        ("ABORT", Some(RunStatus::Abort)),
        ("complete", Some(RunStatus::Complete)),
        ("OTHER", None),
    ] {
        let ing = ok(&run_event(t));
        let runs: Vec<&RunStatus> = ing
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::SetRun { run, .. } => Some(&run.status),
                _ => None,
            })
            .collect();
        assert_eq!(runs, status.iter().collect::<Vec<_>>(), "{t}");
        // Only outcomes mark the output's last load.
        let edge_runs = ing
            .ops
            .iter()
            .filter(|op| matches!(op, Op::SetEdgeRun { .. }))
            .count();
        assert_eq!(
            edge_runs,
            usize::from(matches!(t, "COMPLETE" | "FAIL" | "ABORT" | "complete")),
            "{t}"
        );
    }
    // No eventType: lineage only, and an empty type in the key.
    let ing = ok(&without(run_event("START"), "eventType"));
    assert!(!ing.ops.iter().any(|op| matches!(op, Op::SetRun { .. })));
    assert!(ing.dedup_key.unwrap().contains("||"));
}

#[test]
fn a_job_event_has_lineage_but_no_run() {
    let event = json!({
        "eventTime": "2024-05-01T02:00:00Z",
        "job": {"namespace": "airflow", "name": "Nightly.Load"},
        "inputs": [{"namespace": "postgres://db:5432", "name": "shop.public.orders"}],
        "outputs": [{"namespace": "bigquery", "name": "mart.Orders"}],
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent"
    });
    let ing = ok(&event);
    assert_eq!((ing.kind, ing.dedup_key.as_deref()), (EventKind::Job, None));
    assert!(
        !ing.ops
            .iter()
            .any(|op| matches!(op, Op::SetRun { .. } | Op::SetEdgeRun { .. }))
    );
    let doc = doc_of(&ing);
    edge(&doc, INPUT, JOB);
    edge(&doc, JOB, OUTPUT);
    // Marquez sends a JobEvent with an eventType: ignored, said so.
    let ing = ok(&with(event.clone(), "/eventType", json!("COMPLETE")));
    assert!(ing.warnings[0].contains("eventType"), "{:?}", ing.warnings);
    // A JobEvent may lack eventTime.
    let ing = ok(&without(event, "eventTime"));
    assert_eq!(ing.event_time, None);
}

#[test]
fn a_dataset_event_records_the_dataset_and_its_column_lineage() {
    let event = json!({
        "eventTime": "2024-05-01T02:00:00Z",
        "dataset": {
            "namespace": "bigquery", "name": "mart.Orders",
            "facets": {
                "schema": {"fields": [{"name": "total", "type": "NUMERIC"}]},
                "columnLineage": {"fields": {"total": {"inputFields": [
                    {"namespace": "postgres://db:5432", "name": "shop.public.orders", "field": "amount"}
                ]}}}
            }
        },
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent"
    });
    let ing = ok(&event);
    assert_eq!(
        (ing.kind, ing.dedup_key.as_deref()),
        (EventKind::Dataset, None)
    );
    let doc = doc_of(&ing);
    assert_eq!(
        entity(&doc, OUTPUT).attributes.schema.as_deref(),
        Some("total NUMERIC")
    );
    let e = edge(
        &doc,
        "column:postgres://db:5432/shop.public.orders.amount",
        "column:bigquery/mart.orders.total",
    );
    assert_eq!(e.spec.job, None);
    // The input column was created with its display name, under its table.
    let col = entity(&doc, "column:postgres://db:5432/shop.public.orders.amount");
    assert_eq!(col.name, "postgres://db:5432/shop.public.orders.amount");
    assert!(doc.index().contains(&id(INPUT)));
}

#[test]
fn the_fields_decide_the_kind_and_schema_url_breaks_ties() {
    // The spec's own example RunEvent carries a stray `dataset`.
    let stray = with(
        run_event("COMPLETE"),
        "/dataset",
        json!({"namespace": "123", "name": "1"}),
    );
    let ing = ok(&stray);
    assert_eq!(ing.kind, EventKind::Run);
    assert!(ing.warnings.is_empty());
    // Without schemaURL the fields still say RunEvent.
    assert_eq!(ok(&without(stray, "schemaURL")).kind, EventKind::Run);
    // A schemaURL naming a kind whose fields are absent is a warning.
    let job_only = without(run_event("COMPLETE"), "run");
    let ing = ok(&job_only);
    assert_eq!(ing.kind, EventKind::Job);
    assert!(
        ing.warnings[0].contains("declares a RunEvent"),
        "{:?}",
        ing.warnings
    );
    // A JobEvent with a `run` by schemaURL stays a JobEvent.
    let declared_job = with(
        run_event("COMPLETE"),
        "/schemaURL",
        json!("https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent"),
    );
    assert_eq!(ok(&declared_job).kind, EventKind::Job);
}

// --------------------------------------------------------------- facets

#[test]
fn schema_facet_makes_typed_columns() {
    let event = with(
        run_event("COMPLETE"),
        "/outputs/0/facets/schema",
        json!({"fields": [
            {"name": "id", "type": "INT64", "description": "The order."},
            {"name": "Address", "type": "STRUCT", "fields": [
                {"name": "city", "type": "STRING"}, {"name": "zip", "type": "STRING"}]},
            {"name": "a.b", "type": "STRING"},
            {"name": "untyped"},
            {"type": "STRING"},
            "junk"
        ]}),
    );
    let ing = ok(&event);
    let doc = doc_of(&ing);
    let table = entity(&doc, OUTPUT);
    assert_eq!(
        table.attributes.schema.as_deref(),
        Some("id INT64, Address STRUCT<city STRING, zip STRING>, a.b STRING, untyped")
    );
    let id_col = entity(&doc, "column:bigquery/mart.orders.id");
    assert_eq!(id_col.attributes.schema.as_deref(), Some("INT64"));
    assert_eq!(id_col.attributes.description.as_deref(), Some("The order."));
    assert_eq!(
        entity(&doc, "column:bigquery/mart.orders.address").name,
        "bigquery/mart.Orders.Address"
    );
    // A dot in a field name would split the id in the wrong place.
    let dotted = entity(&doc, "column:bigquery/mart.orders.a/b");
    assert_eq!(dotted.id.parent(), Some(id(OUTPUT)));
    assert_eq!(doc.index().children(&id(OUTPUT)).len(), 4);
    // The nameless field and the string are skipped, by path.
    let w = ing.warnings.join("\n");
    assert!(
        w.contains("`outputs[0].facets.schema.fields[4].name` is missing"),
        "{w}"
    );
    assert!(
        w.contains("`outputs[0].facets.schema.fields[5]` must be an object"),
        "{w}"
    );
}

#[test]
fn column_lineage_facet_makes_column_edges() {
    let input = |field: &str, transformations: Value| {
        json!({"namespace": "postgres://db:5432", "name": "shop.public.orders",
               "field": field, "transformations": transformations})
    };
    let t = |ty: &str, sub: &str| json!({"type": ty, "subtype": sub, "masking": false});
    let event = with(
        run_event("COMPLETE"),
        "/outputs/0/facets/columnLineage",
        json!({"fields": {
            "id": {"inputFields": [input("id", json!([t("DIRECT", "IDENTITY"), t("INDIRECT", "JOIN")]))]},
            "total": {"inputFields": [
                input("amount", json!([t("DIRECT", "AGGREGATION")])),
                input("status", json!([t("INDIRECT", "FILTER")]))
            ]},
            "email": {"inputFields": [input("email", json!([
                {"type": "DIRECT", "subtype": "TRANSFORMATION", "masking": true}]))]},
            "legacy": {"inputFields": [input("x", Value::Null)],
                       "transformationType": "IDENTITY", "transformationDescription": "copied"},
            "legacy2": {"inputFields": [input("y", Value::Null)], "transformationType": "MASKED"}
        }}),
    );
    let ing = ok(&event);
    let doc = doc_of(&ing);
    let src = |f: &str| format!("column:postgres://db:5432/shop.public.orders.{f}");
    let dst = |f: &str| format!("column:bigquery/mart.orders.{f}");
    let kind = |s: &str, d: &str| edge(&doc, &src(s), &dst(d)).spec.kind;
    assert_eq!(kind("id", "id"), EdgeKind::Mapping);
    assert_eq!(kind("amount", "total"), EdgeKind::Transformation);
    assert_eq!(kind("status", "total"), EdgeKind::Other("indirect".into()));
    assert_eq!(kind("email", "email"), EdgeKind::Transformation);
    assert_eq!(kind("x", "legacy"), EdgeKind::Mapping);
    assert_eq!(kind("y", "legacy2"), EdgeKind::Transformation);
    let e = edge(&doc, &src("id"), &dst("id"));
    assert_eq!(e.spec.job, Some(id(JOB)));
    assert_eq!(
        e.spec.extra["transformations"],
        "DIRECT/IDENTITY, INDIRECT/JOIN"
    );
    assert_eq!(
        edge(&doc, &src("email"), &dst("email")).spec.extra["masking"],
        "true"
    );
    assert_eq!(
        edge(&doc, &src("x"), &dst("legacy")).spec.rule.as_deref(),
        Some("copied")
    );
    // Column lineage reaches through from table to table.
    let down = doc
        .index()
        .downstream(&id(&src("amount")), &Default::default())
        .unwrap();
    assert_eq!(down.items[0].id, id(&dst("total")));
}

#[test]
fn sql_facet_is_the_rule_and_fills_in_column_lineage() {
    let sql = "INSERT INTO mart.orders SELECT o.id, sum(o.amount) AS total FROM public.orders o GROUP BY o.id";
    let event = with(
        run_event("COMPLETE"),
        "/job/facets/sql",
        json!({"query": sql, "dialect": "postgres"}),
    );
    let ing = ok(&event);
    assert!(ing.warnings.is_empty(), "{:?}", ing.warnings);
    let doc = doc_of(&ing);
    assert_eq!(edge(&doc, JOB, OUTPUT).spec.rule.as_deref(), Some(sql));
    // `public.orders` is the event's `shop.public.orders`, `mart.orders` its
    // `mart.Orders`: the SQL's column pairs become column edges.
    let e = edge(
        &doc,
        "column:postgres://db:5432/shop.public.orders.amount",
        "column:bigquery/mart.orders.total",
    );
    assert_eq!(
        (e.spec.job, e.spec.extra["from"].as_str()),
        (Some(id(JOB)), "sql")
    );
    edge(
        &doc,
        "column:postgres://db:5432/shop.public.orders.id",
        "column:bigquery/mart.orders.id",
    );

    // A columnLineage facet wins over the SQL.
    let with_facet = with(
        event.clone(),
        "/outputs/0/facets/columnLineage",
        json!({"fields": {"total": {"inputFields": [
            {"namespace": "postgres://db:5432", "name": "shop.public.orders", "field": "net"}]}}}),
    );
    let doc = doc_of(&ok(&with_facet));
    assert!(
        doc.index()
            .edge(
                &id("column:postgres://db:5432/shop.public.orders.amount"),
                &id("column:bigquery/mart.orders.total")
            )
            .is_none()
    );
    edge(
        &doc,
        "column:postgres://db:5432/shop.public.orders.net",
        "column:bigquery/mart.orders.total",
    );

    // Tables the event does not name are left alone.
    let other = with(
        run_event("COMPLETE"),
        "/job/facets/sql",
        json!({"query": "INSERT INTO mart.orders SELECT id FROM staging.other"}),
    );
    let ing = ok(&other);
    assert!(
        !ing.ops
            .iter()
            .any(|op| matches!(op, Op::Link { source, .. } if source.kind().as_str() == "column"))
    );
}

#[test]
fn sql_that_does_not_parse_is_a_warning() {
    let event = with(
        run_event("COMPLETE"),
        "/job/facets/sql",
        json!({"query": "SELECT FROM WHERE"}),
    );
    let ing = ok(&event);
    assert!(
        ing.warnings[0].contains("`job.facets.sql.query` does not parse"),
        "{:?}",
        ing.warnings
    );
    let doc = doc_of(&ing);
    assert_eq!(
        edge(&doc, JOB, OUTPUT).spec.rule.as_deref(),
        Some("SELECT FROM WHERE")
    );
    // An unknown dialect falls back to generic SQL.
    let event = with(
        run_event("COMPLETE"),
        "/job/facets/sql",
        json!({"query": "INSERT INTO mart.orders SELECT * FROM x", "dialect": "cobol"}),
    );
    let ing = ok(&event);
    assert!(
        ing.warnings[0].contains("sql.dialect"),
        "{:?}",
        ing.warnings
    );
}

#[test]
fn output_statistics_are_the_volume() {
    let rows = with(
        run_event("COMPLETE"),
        "/outputs/0/outputFacets/outputStatistics",
        json!({"rowCount": 2000, "size": 2_097_152}),
    );
    let doc = doc_of(&ok(&rows));
    let e = edge(&doc, JOB, OUTPUT);
    assert_eq!(
        (e.spec.volume, e.spec.extra["volume_unit"].as_str()),
        (Some(2000), "rows")
    );
    assert_eq!(e.run.unwrap().message.as_deref(), Some("2000 rows"));
    let bytes = with(
        run_event("COMPLETE"),
        "/outputs/0/outputFacets/outputStatistics",
        json!({"size": 4096}),
    );
    let e = edge(&doc_of(&ok(&bytes)), JOB, OUTPUT);
    assert_eq!(
        (e.spec.volume, e.spec.extra["volume_unit"].as_str()),
        (Some(4096), "bytes")
    );
    let wrong = with(
        run_event("COMPLETE"),
        "/outputs/0/outputFacets/outputStatistics",
        json!({"rowCount": "wrong", "size": -1}),
    );
    let ing = ok(&wrong);
    assert_eq!(edge(&doc_of(&ing), JOB, OUTPUT).spec.volume, None);
    let w = ing.warnings.join("\n");
    assert!(
        w.contains("outputStatistics.rowCount` must be an integer, found a string"),
        "{w}"
    );
    assert!(w.contains("outputStatistics.size` is invalid"), "{w}");
}

#[test]
fn a_failed_run_carries_its_error_message() {
    let event = with(
        run_event("FAIL"),
        "/run/facets/errorMessage",
        json!({"message": "division by zero", "programmingLanguage": "SQL"}),
    );
    let doc = doc_of(&ok(&event));
    let run = entity(&doc, JOB).run.unwrap();
    assert_eq!(
        (run.status, run.message.as_deref()),
        (RunStatus::Fail, Some("division by zero"))
    );
    let load = edge(&doc, JOB, OUTPUT).run.unwrap();
    assert_eq!(load.message.as_deref(), Some("division by zero"));
    assert!(
        doc.index()
            .last_run(&id(OUTPUT))
            .unwrap()
            .status
            .is_failure()
    );
}

#[test]
fn ownership_and_documentation_facets() {
    let event = with(
        with(
            run_event("COMPLETE"),
            "/job/facets",
            json!({
                "ownership": {"owners": [{"name": "team:data", "type": "MAINTAINER"}, {"name": "user:ann"}, {"nom": "x"}]},
                "documentation": {"description": "Loads the orders mart."}
            }),
        ),
        "/inputs/0/facets",
        json!({"documentation": {"description": "Orders as placed."},
               "ownership": {"owners": [{"name": "team:shop"}]}}),
    );
    let ing = ok(&event);
    let doc = doc_of(&ing);
    let job = entity(&doc, JOB);
    assert_eq!(job.attributes.owner.as_deref(), Some("team:data, user:ann"));
    assert_eq!(
        job.attributes.description.as_deref(),
        Some("Loads the orders mart.")
    );
    let input = entity(&doc, INPUT);
    assert_eq!(input.attributes.owner.as_deref(), Some("team:shop"));
    assert_eq!(
        input.attributes.description.as_deref(),
        Some("Orders as placed.")
    );
    assert!(
        ing.warnings
            .iter()
            .any(|w| w.contains("job.facets.ownership.owners[2].name"))
    );
}

#[test]
fn parent_facet_schedules_the_job() {
    let event = with(
        run_event("START"),
        "/run/facets/parent",
        json!({"run": {"runId": "x"}, "job": {"namespace": "airflow", "name": "Nightly"}}),
    );
    let doc = doc_of(&ok(&event));
    assert_eq!(
        edge(&doc, "job:airflow/nightly", JOB).spec.kind,
        EdgeKind::Scheduling
    );
    assert_eq!(entity(&doc, "job:airflow/nightly").name, "airflow/Nightly");
    // A job that is its own parent gets no loop.
    let own = with(
        run_event("START"),
        "/run/facets/parent",
        json!({"job": {"namespace": "airflow", "name": "Nightly.Load"}}),
    );
    assert!(doc_of(&ok(&own)).index().edge(&id(JOB), &id(JOB)).is_none());
}

#[test]
fn facets_of_the_wrong_shape_are_skipped_with_a_warning() {
    let event = with(
        with(
            with(
                run_event("COMPLETE"),
                "/job/facets/documentation",
                json!("not an object"),
            ),
            "/outputs/0/facets",
            json!([1, 2]),
        ),
        "/run/facets/errorMessage",
        json!({"message": 7}),
    );
    let ing = ok(&event);
    let w = ing.warnings.join("\n");
    assert!(
        w.contains("`job.facets.documentation` must be an object, found a string"),
        "{w}"
    );
    assert!(
        w.contains("`outputs[0].facets` must be an object, found an array"),
        "{w}"
    );
    assert!(
        w.contains("`run.facets.errorMessage.message` must be a string, found a number"),
        "{w}"
    );
    doc_of(&ing);
    // A deleted facet is absent.
    let deleted = with(
        run_event("COMPLETE"),
        "/job/facets/documentation",
        json!({"_deleted": true, "description": "gone"}),
    );
    assert_eq!(
        entity(&doc_of(&ok(&deleted)), JOB).attributes.description,
        None
    );
}

// ------------------------------------------------------------ bad input

#[test]
fn malformed_json_says_where() {
    let e = ops_for_event(b"{\n  \"eventTime\": ,\n}").unwrap_err();
    let EventError::Json {
        line,
        column,
        message,
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!((*line, *column), (2, 16));
    assert!(message.contains("expected value"), "{message}");
    assert!(
        e.to_string()
            .starts_with("malformed JSON at line 2, column 16"),
        "{e}"
    );
    assert!(matches!(ops_for_event(b""), Err(EventError::Json { .. })));
    assert!(matches!(
        ops_for_event(b"{\"a\": \"\xff\"}"),
        Err(EventError::Json { .. })
    ));
    assert!(matches!(
        ops_for_event(b"{} {}"),
        Err(EventError::Json { .. })
    ));
}

#[test]
fn errors_name_the_field() {
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!([]),
            "(the event)",
            "must be an object, found an array",
        ),
        (
            without(run_event("START"), "eventTime"),
            "eventTime",
            "is missing",
        ),
        (
            with(run_event("START"), "/eventTime", json!(1_714_521_600)),
            "eventTime",
            "must be a string, found a number",
        ),
        (
            with(run_event("START"), "/eventTime", json!("yesterday")),
            "eventTime",
            "is invalid",
        ),
        (
            with(
                run_event("START"),
                "/eventTime",
                json!("2024-02-30T00:00:00Z"),
            ),
            "eventTime",
            "no such date",
        ),
        (
            with(run_event("START"), "/eventType", json!("FINISHED")),
            "eventType",
            "is not one of",
        ),
        (
            with(run_event("START"), "/eventType", json!(3)),
            "eventType",
            "must be a string",
        ),
        (
            with(run_event("START"), "/run", json!({})),
            "run.runId",
            "is missing",
        ),
        (
            with(run_event("START"), "/run/runId", json!(42)),
            "run.runId",
            "must be a string, found a number",
        ),
        (
            with(run_event("START"), "/run", json!("r")),
            "run",
            "must be an object, found a string",
        ),
        (without(run_event("START"), "job"), "job", "is missing"),
        (
            with(run_event("START"), "/job/name", json!(7)),
            "job.name",
            "must be a string, found a number",
        ),
        (
            with(run_event("START"), "/job/name", json!("  ")),
            "job.name",
            "empty",
        ),
        (
            with(run_event("START"), "/job/namespace", Value::Null),
            "job.namespace",
            "is missing",
        ),
        (
            with(run_event("START"), "/inputs", json!({})),
            "inputs",
            "must be an array, found an object",
        ),
        (
            with(run_event("START"), "/inputs/0", json!("orders")),
            "inputs[0]",
            "must be an object",
        ),
        (
            with(run_event("START"), "/outputs/0/name", json!(["x"])),
            "outputs[0].name",
            "must be a string, found an array",
        ),
        (
            json!({"eventTime": "2024-05-01T00:00:00Z", "dataset": {"name": "x"}}),
            "dataset.namespace",
            "is missing",
        ),
    ];
    for (event, field, says) in cases {
        let e = err(&event);
        assert_eq!(e.field(), Some(field), "{e}");
        let text = e.to_string();
        assert!(text.contains(field) || field == "(the event)", "{text}");
        assert!(text.contains(says), "{text} (expected {says:?})");
    }
    let e = err(&json!({"eventTime": "2024-05-01T00:00:00Z", "producer": "x"}));
    assert_eq!((e.clone(), e.field()), (EventError::UnknownShape, None));
    assert!(e.to_string().contains("RunEvent"));
}

#[test]
fn names_are_kept_readable_and_made_safe() {
    let event = with(
        with(run_event("START"), "/job/name", json!("Load\tOrders 🕷")),
        "/outputs/0/name",
        json!("x".repeat(700)),
    );
    let ing = ok(&event);
    let doc = doc_of(&ing);
    assert_eq!(
        entity(&doc, "job:airflow/load\\torders 🕷").name,
        "airflow/Load\\tOrders 🕷"
    );
    let long = ing
        .ops
        .iter()
        .find_map(|op| match op {
            Op::Upsert(e) if e.name.starts_with("bigquery/xxx") => Some(e.name.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(long.len(), 512);
    assert!(long.contains('~'));
    // The same long name maps to the same id every time.
    assert_eq!(ok(&event).ops, ing.ops);
}

// ----------------------------------------------------------- properties

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "START",
            "COMPLETE",
            "FAIL",
            "2024-05-01T00:00:00Z",
            "2024-05-01T00:00:00",
            "run",
            "job",
            "a.b",
            "",
            " ",
            "x\u{0}y",
        ])
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "eventType",
                        "eventTime",
                        "run",
                        "runId",
                        "job",
                        "namespace",
                        "name",
                        "inputs",
                        "outputs",
                        "dataset",
                        "facets",
                        "outputFacets",
                        "schema",
                        "fields",
                        "columnLineage",
                        "inputFields",
                        "field",
                        "sql",
                        "query",
                        "ownership",
                        "owners",
                        "documentation",
                        "description",
                        "errorMessage",
                        "message",
                        "parent",
                        "outputStatistics",
                        "rowCount",
                        "size",
                        "type",
                        "transformations",
                        "schemaURL",
                        "_deleted",
                        "dialect",
                    ]),
                    inner
                ),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

/// Valid-looking events with arbitrary values in the places that matter.
fn arb_event() -> impl Strategy<Value = Value> {
    let name = prop_oneof![
        ".{1,20}".boxed(),
        "[a-zA-Z._/:-]{1,12}".boxed(),
        Just("ΑΣ".to_owned()).boxed()
    ]
    .boxed();
    let dataset = (name.clone(), name.clone(), arb_json(), arb_json())
        .prop_map(
            |(ns, n, f, o)| json!({"namespace": ns, "name": n, "facets": f, "outputFacets": o}),
        )
        .boxed();
    (
        prop::sample::select(vec![
            "START", "RUNNING", "COMPLETE", "FAIL", "ABORT", "OTHER",
        ]),
        (name.clone(), name.clone()),
        prop::collection::vec(dataset.clone(), 0..3),
        prop::collection::vec(dataset, 0..3),
        arb_json(),
        arb_json(),
    )
        .prop_map(|(t, (ns, n), inputs, outputs, run_facets, job_facets)| {
            json!({
                "eventType": t, "eventTime": "2024-05-01T00:00:00Z",
                "run": {"runId": "r", "facets": run_facets},
                "job": {"namespace": ns, "name": n, "facets": job_facets},
                "inputs": inputs, "outputs": outputs
            })
        })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = ops_for_event(&bytes);
    }

    #[test]
    fn arbitrary_json_never_panics(value in arb_json()) {
        let _ = read(&value);
        let _ = read(&json!({"eventTime": "2024-05-01T00:00:00Z", "run": {"runId": "r"},
                             "job": {"namespace": "n", "name": "j"}, "outputs": [value]}));
    }

    #[test]
    fn arbitrary_times_never_panic(text in "[0-9T:.+Zz -]{0,40}") {
        let _ = read(&with(run_event("START"), "/eventTime", json!(text)));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever an accepted event holds, its operations apply.
    #[test]
    fn accepted_events_always_apply(event in arb_event()) {
        if let Ok(ing) = read(&event) {
            let mut doc = LineageDoc::new("default", b"prop/1").unwrap();
            let applied = doc.apply(0, &ing.ops);
            prop_assert!(applied.is_ok(), "{:?}\n{:#?}", applied, ing.ops);
        }
    }
}
