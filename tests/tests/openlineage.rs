//! OpenLineage ingestion on a real node: the real `openlineage-python` client
//! (from PyPI; `.ci/run` installs it) emits START, COMPLETE and FAIL runs; the
//! public event corpus replays through `stemma lineage ingest`; bad events get
//! a clear error and record nothing; every acknowledged event survives the
//! node being killed while clients are still sending.

use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use stemma_protocol::lineage::{EntityId, RunStatus, Traversal};
use stemma_tests::{TestNode, http_post};

const NS: &str = "default";
const KEY: &str = "ol-test-key";
const WAREHOUSE: &str = "postgres://warehouse:5432";

fn id(text: &str) -> EntityId {
    EntityId::parse(text).expect("a valid entity id")
}

fn corpus() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../protocol/tests/corpora/openlineage/all-events.jsonl")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_records_jobs_datasets_columns_and_runs() -> anyhow::Result<()> {
    let probe = Command::new("python3")
        .args(["-c", "import openlineage.client"])
        .output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "this test needs the openlineage-python client: pip install openlineage-python (.ci/run does)"
    );
    let node = TestNode::start(&["--openlineage-api-key", KEY])?;
    let url = format!("http://{}", node.info.http_addr);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openlineage/emit.py");
    let out = Command::new("python3")
        .arg(&script)
        .args([&url, KEY])
        .output()?;
    assert!(
        out.status.success(),
        "emit.py failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let client = node.client().await?;
    let orders = id(&format!("table:{WAREHOUSE}/sales.orders"));
    let down = client
        .downstream(NS, &orders, Traversal::unbounded())
        .await?;
    let reached: Vec<String> = down.items.iter().map(|r| r.id.to_string()).collect();
    for expected in [
        "job:airflow/revenue_daily".to_string(),
        format!("table:{WAREHOUSE}/marts.revenue"),
        "job:airflow/revenue_report".to_string(),
        format!("table:{WAREHOUSE}/reports.board"),
    ] {
        assert!(
            reached.contains(&expected),
            "{expected} not downstream: {reached:?}"
        );
    }
    let daily = client
        .lineage_show(NS, &id("job:airflow/revenue_daily"))
        .await?;
    assert_eq!(
        daily.entity.run.map(|r| r.status),
        Some(RunStatus::Complete)
    );
    let report = client
        .lineage_show(NS, &id("job:airflow/revenue_report"))
        .await?;
    let run = report.entity.run.expect("the failed run is recorded");
    assert_eq!(run.status, RunStatus::Fail);
    assert_eq!(run.message.as_deref(), Some("division by zero"));
    // Column lineage from the columnLineage facet, columns from the schema facet.
    let total = id(&format!("column:{WAREHOUSE}/marts.revenue.total"));
    let up = client.upstream(NS, &total, Traversal::depth(1)).await?;
    assert_eq!(
        up.items
            .iter()
            .map(|r| r.id.to_string())
            .collect::<Vec<_>>(),
        [format!("column:{WAREHOUSE}/sales.orders.amount")]
    );
    client.close().await;
    // Timeliness of capture is measured for every event.
    assert_eq!(
        node.metric("stemma_lineage_event_delay_seconds_count")?,
        4.0
    );
    // Every event was applied in some group, and every group held one.
    let groups = node.metric("stemma_lineage_ingest_group_events_count")?;
    assert!((1.0..=4.0).contains(&groups), "{groups} groups");
    assert_eq!(node.metric("stemma_lineage_ingest_group_events_sum")?, 4.0);

    // Without the key: refused.
    let err = http_post(node.info.http_addr, "/api/v1/lineage", "{}").unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_corpus_replays_and_retries_are_recognised() -> anyhow::Result<()> {
    let node = TestNode::start(&[])?;
    let corpus = corpus();
    let corpus = corpus.to_str().expect("utf-8 path");
    let out = node.cli(&["--json", "lineage", "ingest", corpus]);
    let first: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert!(out.status.success(), "{first}");
    assert_eq!(first["accepted"], 127, "{first}");
    assert_eq!(first["rejected"], serde_json::json!([]));
    let stats = node.client().await?.lineage_stats(NS).await?;
    assert!(stats.entities > 200 && stats.edges > 150, "{stats:?}");

    // The same events again, as a client retrying: run events are recognised.
    let out = node.cli(&["--json", "lineage", "ingest", corpus]);
    let again: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(again["duplicates"], 123, "{again}"); // 4 job and dataset events carry no run
    let after = node.client().await?.lineage_stats(NS).await?;
    assert_eq!((after.entities, after.edges), (stats.entities, stats.edges));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_get_a_clear_error_and_record_nothing() -> anyhow::Result<()> {
    let node = TestNode::start(&[])?;
    let http = node.info.http_addr;
    let post = |body: &str| {
        http_post(http, "/api/v1/lineage", body)
            .unwrap_err()
            .to_string()
    };

    let err = post("{\"eventType\": \"START\",");
    assert!(err.contains("400") && err.contains("line"), "{err}");
    let err = post(
        r#"{"eventType":"START","eventTime":"2024-01-01T00:00:00Z","run":{"runId":"r"},
           "job":{"namespace":"n","name":42},"producer":"p"}"#,
    );
    assert!(err.contains("400") && err.contains("job.name"), "{err}");
    let err = post(
        r#"{"eventType":"EXPLODE","eventTime":"2024-01-01T00:00:00Z","run":{"runId":"r"},
           "job":{"namespace":"n","name":"j"},"producer":"p"}"#,
    );
    assert!(err.contains("400") && err.contains("EXPLODE"), "{err}");
    let huge = format!("{{\"pad\": \"{}\"}}", "x".repeat(17 << 20));
    let err = post(&huge);
    assert!(err.contains("413"), "{}", &err[..err.len().min(200)]);

    let stats = node.client().await?.lineage_stats(NS).await?;
    assert_eq!(stats.entities, 0, "a refused event recorded something");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_sent_as_a_query_request_is_stored_and_survives_a_restart() -> anyhow::Result<()> {
    let mut node = TestNode::start(&[])?;
    let event = serde_json::json!({
        "eventType": "COMPLETE", "eventTime": "2024-05-01T10:00:00Z",
        "run": {"runId": "3f1c2a9e-0000-4000-8000-000000000001"},
        "job": {"namespace": "cron", "name": "copy"},
        "inputs": [{"namespace": "s3://in", "name": "a.csv"}],
        "outputs": [{"namespace": "s3://out", "name": "b.csv"}],
        "producer": "test", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
    });
    let body = serde_json::json!({ "request": "ingest", "event": event }).to_string();
    let answer: serde_json::Value =
        serde_json::from_str(&http_post(node.info.http_addr, "/api/v1/query", &body)?)?;
    assert!(answer["ops"].as_u64().is_some_and(|n| n > 0), "{answer}");
    let again: serde_json::Value =
        serde_json::from_str(&http_post(node.info.http_addr, "/api/v1/query", &body)?)?;
    assert_eq!(again["duplicate"], true, "{again}");

    node.kill();
    node.restart()?;
    let client = node.client().await?;
    let down = client
        .downstream(NS, &id("table:s3://in/a.csv"), Traversal::unbounded())
        .await?;
    let reached: Vec<String> = down.items.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(reached, ["job:cron/copy", "table:s3://out/b.csv"]);
    client.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_event_survives_a_kill_during_concurrent_ingest() -> anyhow::Result<()> {
    const CLIENTS: usize = 8;
    const EVENTS: usize = 2_000;
    let mut node = TestNode::start(&[])?;
    let addr = node.info.http_addr;
    let event = |i: usize| {
        serde_json::json!({
            "eventType": "COMPLETE", "eventTime": "2024-05-01T10:00:00Z",
            "run": {"runId": format!("3f1c2a9e-0000-4000-8000-{i:012}")},
            "job": {"namespace": "cron", "name": format!("job-{i}")},
            "outputs": [{"namespace": "s3://out", "name": format!("part-{i}.csv")}],
            "producer": "test",
        })
        .to_string()
    };
    let acknowledged = Mutex::new(Vec::new());
    std::thread::scope(|scope| -> anyhow::Result<()> {
        for client in 0..CLIENTS {
            let (acknowledged, event) = (&acknowledged, &event);
            scope.spawn(move || {
                for i in (client..EVENTS).step_by(CLIENTS) {
                    if http_post(addr, "/api/v1/lineage", &event(i)).is_err() {
                        break;
                    }
                    acknowledged.lock().unwrap().push(i);
                }
            });
        }
        // Kill the node while events are still arriving (at most 60 s in).
        let deadline = Instant::now() + Duration::from_secs(60);
        while acknowledged.lock().unwrap().len() < EVENTS / 4 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        node.kill();
        Ok(())
    })?;
    let acknowledged = acknowledged.into_inner().unwrap();
    assert!(
        acknowledged.len() >= EVENTS / 4 && acknowledged.len() < EVENTS,
        "the kill was not during the ingest: {} of {EVENTS} acknowledged",
        acknowledged.len()
    );

    node.restart()?;
    let client = node.client().await?;
    for i in acknowledged {
        let job = id(&format!("job:cron/job-{i}"));
        let shown = client.lineage_show(NS, &job).await?;
        let run = shown.entity.run.expect("an acknowledged run is recorded");
        assert_eq!(run.status, RunStatus::Complete, "{job}");
        assert_eq!(
            shown.downstream,
            [id(&format!("table:s3://out/part-{i}.csv"))]
        );
    }
    client.close().await;
    Ok(())
}
