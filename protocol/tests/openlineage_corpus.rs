//! Replays published OpenLineage events (`tests/corpora/openlineage/`, see
//! its README) into a lineage document and checks that the graph holds the
//! lineage the scenarios describe.
//!
//! Run with `--nocapture` to see the counts, the rejection reasons and the
//! warnings.

use std::collections::{BTreeMap, HashMap};

use stemma_protocol::lineage::openlineage::{EventKind, Ingested, ops_for_event};
use stemma_protocol::lineage::{EdgeKind, EntityId, LineageDoc, RunState, RunStatus, Traversal};

const CORPUS: &str = include_str!("corpora/openlineage/all-events.jsonl");

const INVALID: [(&str, &str); 6] = [
    (
        "event_no_run_id",
        include_str!("corpora/openlineage/invalid/event_no_run_id.json"),
    ),
    (
        "event_invalid_run_facet",
        include_str!("corpora/openlineage/invalid/event_invalid_run_facet.json"),
    ),
    (
        "event_invalid_job_facet",
        include_str!("corpora/openlineage/invalid/event_invalid_job_facet.json"),
    ),
    (
        "event_invalid_dataset_facet",
        include_str!("corpora/openlineage/invalid/event_invalid_dataset_facet.json"),
    ),
    (
        "event_invalid_input_dataset_facet",
        include_str!("corpora/openlineage/invalid/event_invalid_input_dataset_facet.json"),
    ),
    (
        "event_invalid_output_dataset_facet",
        include_str!("corpora/openlineage/invalid/event_invalid_output_dataset_facet.json"),
    ),
];

fn id(s: &str) -> EntityId {
    EntityId::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// Every entity downstream of `from` (unbounded), as canonical ids.
fn downstream(doc: &LineageDoc, from: &str) -> Vec<String> {
    let mut t = Traversal::unbounded();
    t.page.limit = Some(1000);
    let page = doc.index().downstream(&id(from), &t).unwrap();
    page.items
        .iter()
        .map(|r| r.id.as_str().to_owned())
        .collect()
}

fn upstream(doc: &LineageDoc, from: &str) -> Vec<String> {
    let mut t = Traversal::unbounded();
    t.page.limit = Some(1000);
    let page = doc.index().upstream(&id(from), &t).unwrap();
    page.items
        .iter()
        .map(|r| r.id.as_str().to_owned())
        .collect()
}

fn edge_kind(doc: &LineageDoc, source: &str, target: &str) -> EdgeKind {
    doc.index()
        .edge(&id(source), &id(target))
        .unwrap_or_else(|| panic!("no edge {source} -> {target}"))
        .spec
        .kind
}

fn last_run(doc: &LineageDoc, job: &str) -> RunState {
    doc.index()
        .entity(&id(job))
        .unwrap_or_else(|| panic!("no entity {job}"))
        .run
        .unwrap_or_else(|| panic!("{job} has no run"))
}

/// Replays the corpus: every line is accepted or rejected with a reason, and
/// every accepted event applies to the document as one batch.
fn replay() -> (LineageDoc, Vec<(usize, Ingested)>) {
    let mut doc = LineageDoc::new("default", b"openlineage-corpus/1").unwrap();
    let mut accepted = Vec::new();
    let mut rejected: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut warnings: BTreeMap<String, usize> = BTreeMap::new();
    for (i, line) in CORPUS.lines().enumerate() {
        let n = i + 1;
        match ops_for_event(line.as_bytes()) {
            Ok(ing) => {
                let now = ing.event_time.unwrap_or(1_700_000_000_000);
                doc.apply(now, &ing.ops)
                    .unwrap_or_else(|e| panic!("line {n}: ops do not apply: {e}"));
                for w in &ing.warnings {
                    *warnings.entry(w.clone()).or_default() += 1;
                }
                accepted.push((n, ing));
            }
            Err(e) => rejected.entry(e.to_string()).or_default().push(n),
        }
    }
    let ops: usize = accepted.iter().map(|(_, i)| i.ops.len()).sum();
    println!(
        "corpus: {} events, {} accepted ({ops} ops), {} rejected",
        CORPUS.lines().count(),
        accepted.len(),
        rejected.values().map(Vec::len).sum::<usize>()
    );
    for (reason, lines) in &rejected {
        println!("  rejected {lines:?}: {reason}");
    }
    for (w, count) in &warnings {
        println!("  warning x{count}: {w}");
    }
    let stats = doc.index().live_state();
    println!(
        "graph: {} entities, {} edges",
        stats.entities.len(),
        stats.edges.len()
    );
    (doc, accepted)
}

#[test]
fn every_event_is_accepted_and_applies() {
    let (_, accepted) = replay();
    assert_eq!(
        accepted.len(),
        CORPUS.lines().count(),
        "the corpus holds no invalid event"
    );
    let kinds = |k| accepted.iter().filter(|(_, i)| i.kind == k).count();
    assert_eq!(
        (
            kinds(EventKind::Run),
            kinds(EventKind::Job),
            kinds(EventKind::Dataset)
        ),
        (123, 2, 2)
    );
    assert!(accepted.iter().all(|(_, i)| i.event_time.is_some()));
}

#[test]
fn column_level_lineage_of_the_spark_ctas() {
    let (doc, _) = replay();
    let job = "job:testcolumnlevellineage/open_lineage_integration_create_table.execute_create_hive_table_as_select_command.default_tbl1";
    let down = downstream(&doc, "table:file/tmp/cll_test/cll_source1");
    assert!(down.contains(&job.to_owned()), "{down:?}");
    assert!(
        down.contains(&"table:file/tmp/cll_test/tbl1".to_owned()),
        "{down:?}"
    );
    let (s1, s2, out) = (
        "column:file/tmp/cll_test/cll_source1",
        "column:file/tmp/cll_test/cll_source2",
        "column:file/tmp/cll_test/tbl1",
    );
    // ident <- a is an identity copy (with indirect GROUP BY/JOIN/FILTER).
    assert_eq!(
        edge_kind(&doc, &format!("{s1}.a"), &format!("{out}.ident")),
        EdgeKind::Mapping
    );
    assert_eq!(
        edge_kind(&doc, &format!("{s1}.b"), &format!("{out}.trans")),
        EdgeKind::Transformation
    );
    assert_eq!(
        edge_kind(&doc, &format!("{s2}.c"), &format!("{out}.agg")),
        EdgeKind::Transformation
    );
    assert_eq!(
        edge_kind(&doc, &format!("{s2}.a"), &format!("{out}.ident")),
        EdgeKind::Other("indirect".into())
    );
    let e = doc
        .index()
        .edge(&id(&format!("{s2}.c")), &id(&format!("{out}.agg")))
        .unwrap();
    assert_eq!(e.spec.job, Some(id(job)));
    assert_eq!(e.spec.extra["transformations"], "DIRECT/AGGREGATION");
    // The schema facet made the columns, typed, under their table.
    let agg = doc.index().entity(&id(&format!("{out}.agg"))).unwrap();
    assert_eq!(agg.attributes.schema.as_deref(), Some("long"));
    let table = doc
        .index()
        .entity(&id("table:file/tmp/cll_test/tbl1"))
        .unwrap();
    assert_eq!(table.name, "file/tmp/cll_test/tbl1");
    assert_eq!(
        table.attributes.schema.as_deref(),
        Some("ident integer, trans string, agg long")
    );
    assert_eq!(doc.index().children(&table.id).len(), 3);
    assert_eq!(last_run(&doc, job).status, RunStatus::Complete);
}

#[test]
fn airflow_links_match_the_stated_lineage() {
    let (doc, _) = replay();
    // The 12 links the compatibility tests' Dataplex consumer expects.
    let gcs = |f: &str| format!("table:gs://mock-bucket/{f}");
    let bq = |t: &str| format!("table:bigquery/mock-project.test.{t}");
    let links = [
        (gcs("copied.csv"), bq("upload")),
        (gcs("test.csv"), bq("upload")),
        (bq("upload"), bq("upload_cp")),
        (bq("upload_cp"), gcs("result.csv")),
        (
            "table:file/files/temp/data.txt".into(),
            gcs("uploaded_file.txt"),
        ),
        (gcs("uploaded_file.txt"), gcs("copy_of_uploaded_file.txt")),
        (gcs("uploaded_data.txt"), gcs("copy_of_uploaded_data.txt")),
        (
            gcs("uploaded_file.txt"),
            "table:file/files/temp/downloaded_file.txt".into(),
        ),
        (gcs("uploaded_file.txt"), gcs("compose_result.txt")),
        (gcs("uploaded_data.txt"), gcs("compose_result.txt")),
        (gcs("copy_of_uploaded_data.txt"), gcs("compose_result.txt")),
        (gcs("copy_of_uploaded_file.txt"), gcs("compose_result.txt")),
    ];
    for (source, target) in &links {
        let down = doc
            .index()
            .downstream(&id(source), &Traversal::depth(2))
            .unwrap();
        let hit = down.items.iter().find(|r| r.id.as_str() == target);
        let hit = hit.unwrap_or_else(|| panic!("{target} is not 2 hops downstream of {source}"));
        assert_eq!(hit.distance, 2, "through the job");
        assert_eq!(hit.via.as_ref().unwrap().kind().as_str(), "job");
    }
    // End to end: the copied CSV reaches the exported result.
    assert!(downstream(&doc, &gcs("copied.csv")).contains(&gcs("result.csv")));
    assert_eq!(
        edge_kind(&doc, &gcs("copied.csv"), "job:airflow/bq.upload"),
        EdgeKind::Application
    );
    assert_eq!(
        edge_kind(&doc, "job:airflow/bq.upload", &bq("upload")),
        EdgeKind::Transformation
    );
    // The DAG schedules its tasks (parent run facet).
    assert_eq!(
        edge_kind(&doc, "job:airflow/bq", "job:airflow/bq.upload"),
        EdgeKind::Scheduling
    );
    // Ownership facet; the display name keeps its case.
    let task = doc.index().entity(&id("job:airflow/bq.upload")).unwrap();
    assert_eq!(task.name, "airflow/BQ.upload");
    assert_eq!(task.attributes.owner.as_deref(), Some("***"));
    let run = last_run(&doc, "job:airflow/bq.upload");
    assert_eq!(
        (run.status, run.time),
        (RunStatus::Complete, 1_732_626_329_606)
    );
}

#[test]
fn marquez_food_delivery_graph() {
    let (doc, _) = replay();
    let t = |n: &str| format!("table:food_delivery/public.{n}");
    let down = downstream(&doc, &t("menus"));
    for reached in [
        t("orders_7_days"),
        t("delivery_7_days"),
        t("top_delivery_times"),
        t("discounts"),
        t("popular_orders_day_of_week"),
        "job:food_delivery/email_discounts".into(),
    ] {
        assert!(
            down.contains(&reached),
            "{reached} not downstream of menus: {down:?}"
        );
    }
    let up = upstream(&doc, &t("delivery_7_days"));
    for source in [
        "orders_7_days",
        "customers",
        "order_status",
        "drivers",
        "restaurants",
    ] {
        assert!(up.contains(&t(source)), "{source} not upstream: {up:?}");
    }
    // Column lineage facet.
    assert_eq!(
        edge_kind(
            &doc,
            "column:food_delivery/public.orders.id",
            "column:food_delivery/public.orders_7_days.order_id"
        ),
        EdgeKind::Mapping
    );
    // The sql facet is the output edge's rule; documentation the description.
    let edge = doc
        .index()
        .edge(
            &id("job:food_delivery/etl_orders_7_days"),
            &id(&t("orders_7_days")),
        )
        .unwrap();
    assert!(
        edge.spec
            .rule
            .unwrap()
            .starts_with("INSERT INTO orders_7_days")
    );
    let job = doc
        .index()
        .entity(&id("job:food_delivery/etl_orders_7_days"))
        .unwrap();
    assert_eq!(
        job.attributes.description.as_deref(),
        Some("Loads newly placed orders weekly.")
    );
    // START at 12:00, COMPLETE at 12:07.
    let run = last_run(&doc, "job:food_delivery/etl_orders_7_days");
    assert_eq!(
        (run.status, run.time),
        (RunStatus::Complete, 1_735_733_220_000)
    );
    // Only the START events list datasets, and a START is no load outcome.
    assert_eq!(doc.index().last_run(&id(&t("orders_7_days"))), None);
}

#[test]
fn apples_lineage_over_time() {
    let (doc, _) = replay();
    let k = |n: &str| format!("table:grandmas.kitchen/{n}");
    // Two runs of gather_apples with different sources: both stay upstream.
    let up = upstream(&doc, &k("apples"));
    assert!(
        up.contains(&"table:laurents-orchard/red.delicious".into()),
        "{up:?}"
    );
    assert!(up.contains(&"table:backyard/crab.apples".into()), "{up:?}");
    let down = downstream(&doc, "table:laurents-orchard/red.delicious");
    for reached in [
        k("apple.filling"),
        k("apple.pie"),
        k("apple.cider"),
        "table:cupboard/apple.vinegar".into(),
    ] {
        assert!(down.contains(&reached), "{reached}: {down:?}");
    }
    // The second apple filling run added sugar.
    assert!(upstream(&doc, &k("apple.filling")).contains(&"table:cupboard/sugar".into()));
}

#[test]
fn spark_dataproc_ctas_and_runs() {
    let (doc, _) = replay();
    let hdfs = "table:hdfs://dataproc-producer-test-m/user/hive/warehouse";
    let job = "job:default/cl_i_test_application.execute_insert_into_hive_table.warehouse_t2";
    let down = downstream(&doc, &format!("{hdfs}/t1"));
    assert!(
        down.contains(&job.into()) && down.contains(&format!("{hdfs}/t2")),
        "{down:?}"
    );
    let edge = doc
        .index()
        .edge(&id(job), &id(&format!("{hdfs}/t2")))
        .unwrap();
    assert!(edge.spec.rule.unwrap().contains("AS SELECT * FROM t1"));
    assert_eq!(last_run(&doc, job).status, RunStatus::Complete);
    assert_eq!(
        edge_kind(&doc, "job:default/cl_i_test_application", job),
        EdgeKind::Scheduling
    );
}

#[test]
fn output_statistics_and_odd_names() {
    let (doc, accepted) = replay();
    let edge = doc
        .index()
        .edge(
            &id("job:my-scheduler-namespace/myjob.mytask"),
            &id("table:my-datasource-namespace/instance.schema.table"),
        )
        .unwrap();
    assert_eq!(edge.spec.volume, Some(2000));
    assert_eq!(edge.spec.extra["volume_unit"], "rows");
    assert!(
        doc.index()
            .contains(&id("job:my-scheduler-namespace/myjob.buggy_task🕷"))
    );
    assert!(
        doc.index()
            .contains(&id("table:file.localhost/file://localhost/out_file1.txt"))
    );
    // The JobEvent and DatasetEvent of the python client.
    assert!(
        downstream(&doc, "table:openlineage/dataset_a")
            .contains(&"table:openlineage/dataset_b".into())
    );
    assert!(
        doc.index()
            .contains(&id("table:my-dataset-namespace/my-dataset-name"))
    );
    // Times without an offset are UTC: 2020-12-28T19:51:01.641499.
    let no_tz = accepted.iter().find(|(n, _)| *n == 118).unwrap();
    assert_eq!(no_tz.1.event_time, Some(1_609_185_061_641));
}

#[test]
fn dedup_keys_identify_deliveries() {
    let (_, accepted) = replay();
    let mut by_key: HashMap<&str, Vec<usize>> = HashMap::new();
    for (n, ing) in &accepted {
        match (&ing.dedup_key, ing.kind) {
            (Some(k), EventKind::Run) => by_key.entry(k).or_default().push(*n),
            (None, EventKind::Run) => panic!("line {n}: a RunEvent without a dedup key"),
            (Some(_), _) => panic!("line {n}: a dedup key on a non-run event"),
            (None, _) => {}
        }
    }
    let mut shared: Vec<(&str, Vec<usize>)> =
        by_key.into_iter().filter(|(_, v)| v.len() > 1).collect();
    shared.sort();
    for (k, lines) in &shared {
        println!("dedup key {k} on lines {lines:?}");
    }
    // Only the runIds the corpus README lists as reused share a key: the
    // simple COMPLETE of fluentd and Marquez; Marquez's `_nanoseconds` and
    // `_no_timezone` (the same instant once a missing offset is read as
    // UTC); the `event_full` of the python client, fluentd and Marquez,
    // with `event_large` and `event_namespace_naming`. Their content
    // differs: a key identifies a delivery, not what it says.
    let lines: Vec<Vec<usize>> = shared.into_iter().map(|(_, l)| l).collect();
    assert_eq!(
        lines,
        [vec![78, 110], vec![117, 118], vec![72, 79, 114, 115, 116]]
    );
}

#[test]
fn a_failed_run_is_the_jobs_last_run_with_its_message() {
    let (mut doc, _) = replay();
    let job = "job:food_delivery/etl_orders_7_days";
    let fail = br#"{"eventType":"FAIL","eventTime":"2025-01-02T12:03:00Z",
        "run":{"runId":"0194272a-0000-7000-8000-000000000001","facets":{"errorMessage":{
            "_producer":"x","_schemaURL":"x","message":"relation \"orders\" does not exist",
            "programmingLanguage":"SQL"}}},
        "job":{"namespace":"food_delivery","name":"etl_orders_7_days"},
        "inputs":[{"namespace":"food_delivery","name":"public.orders"}],
        "outputs":[{"namespace":"food_delivery","name":"public.orders_7_days"}],
        "producer":"test"}"#;
    let ing = ops_for_event(fail).unwrap();
    doc.apply(ing.event_time.unwrap(), &ing.ops).unwrap();
    let run = last_run(&doc, job);
    assert_eq!(run.status, RunStatus::Fail);
    assert_eq!(
        run.message.as_deref(),
        Some("relation \"orders\" does not exist")
    );
    // The output's last load failed too, so root cause finds the job.
    let rc = doc
        .index()
        .root_cause(
            &id("table:food_delivery/public.delivery_7_days"),
            &Default::default(),
        )
        .unwrap();
    let suspect = rc.candidates.items.iter().find(|c| c.suspect).unwrap();
    assert!(
        suspect.id.as_str() == job
            || suspect.id.as_str() == "table:food_delivery/public.orders_7_days",
        "{suspect:?}"
    );
}

#[test]
fn negative_fixtures_are_rejected_or_read_leniently() {
    for (name, json) in INVALID {
        match ops_for_event(json.as_bytes()) {
            Ok(ing) => println!("{name}: accepted, warnings {:?}", ing.warnings),
            Err(e) => println!("{name}: rejected: {e}"),
        }
    }
    let field = |name: &str| {
        let json = INVALID.iter().find(|(n, _)| *n == name).unwrap().1;
        ops_for_event(json.as_bytes())
    };
    let e = field("event_no_run_id").unwrap_err();
    assert_eq!(e.field(), Some("run.runId"), "{e}");
    let warned = |name: &str, needle: &str| {
        let ing = field(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            ing.warnings.iter().any(|w| w.contains(needle)),
            "{name}: no warning about {needle}: {:?}",
            ing.warnings
        );
    };
    warned(
        "event_invalid_job_facet",
        "job.facets.ownership.owners[0].name",
    );
    warned(
        "event_invalid_dataset_facet",
        "outputs[0].facets.ownership.owners[0].name",
    );
    warned(
        "event_invalid_output_dataset_facet",
        "outputs[0].outputFacets.outputStatistics.rowCount",
    );
    // Facets the mapping does not read cannot be wrong for it.
    assert!(
        field("event_invalid_run_facet")
            .unwrap()
            .warnings
            .is_empty()
    );
    assert!(
        field("event_invalid_input_dataset_facet")
            .unwrap()
            .warnings
            .is_empty()
    );
}
