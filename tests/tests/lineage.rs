//! The lineage graph across real `stemma node run` processes on 127.0.0.1:
//! edits made on three nodes replicate to all; a node cut off by the fault
//! switch diverges while both sides keep editing, and everything converges
//! when it heals (same heads, same answers); a killed node restarts with its
//! graph intact. Plus the HTTP API and the CLI against a real node.

use std::time::Duration;

use stemma_protocol::lineage::{
    Attr, EdgeKind, EdgeSpec, EntityId, Head, NewEntity, Op, Page, Reached, Traversal,
};
use stemma_tests::{TestNode, http_get, http_post, wait_for};

const SECRET: &str = "lineage-test-secret";
const NS: &str = "default";

fn id(text: &str) -> EntityId {
    EntityId::parse(text).expect("a valid entity id")
}

fn link(source: &str, target: &str) -> Op {
    Op::Link {
        source: id(source),
        target: id(target),
        spec: EdgeSpec::of(EdgeKind::Transformation),
    }
}

async fn apply(node: &TestNode, ops: Vec<Op>) -> anyhow::Result<()> {
    let client = node.client().await?;
    client.lineage_apply(NS, ops).await?;
    client.close().await;
    Ok(())
}

async fn heads(node: &TestNode) -> anyhow::Result<Vec<Head>> {
    let client = node.client().await?;
    let heads = client.lineage_heads(NS).await?;
    client.close().await;
    Ok(heads)
}

async fn downstream(node: &TestNode, from: &str) -> anyhow::Result<Page<Reached>> {
    let client = node.client().await?;
    let page = client
        .downstream(NS, &id(from), Traversal::unbounded())
        .await?;
    client.close().await;
    Ok(page)
}

async fn same_heads(nodes: &[&TestNode]) -> anyhow::Result<bool> {
    let first = heads(nodes[0]).await?;
    for node in &nodes[1..] {
        if heads(node).await? != first {
            return Ok(false);
        }
    }
    Ok(!first.is_empty())
}

/// Cuts `node` off from `peers` (an empty list heals).
fn drop_traffic(node: &TestNode, peers: &[&TestNode]) -> anyhow::Result<()> {
    let ids: Vec<&str> = peers.iter().map(|p| p.info.node_id.as_str()).collect();
    let body = serde_json::json!({ "drop": ids }).to_string();
    http_post(node.info.http_addr, "/debug/faults", &body)?;
    Ok(())
}

async fn three_nodes() -> anyhow::Result<Vec<TestNode>> {
    three_nodes_with(&[]).await
}

async fn three_nodes_with(extra: &[&str]) -> anyhow::Result<Vec<TestNode>> {
    let args = [&["--no-mdns", "--fault-injection"][..], extra].concat();
    let first = TestNode::start_in(Some(SECRET), &args)?;
    let join = first.p2p_addr();
    let mut nodes = vec![first];
    for _ in 0..2 {
        nodes.push(TestNode::start_in(
            Some(SECRET),
            &[&args[..], &["--join", &join][..]].concat(),
        )?);
    }
    wait_for("three members", Duration::from_secs(30), || async {
        for node in &nodes {
            if node.members().await?.len() != 3 {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await?;
    Ok(nodes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_converge_across_a_partition_and_survive_a_restart() -> anyhow::Result<()> {
    let mut nodes = three_nodes().await?;
    let [a, b, c] = [&nodes[0], &nodes[1], &nodes[2]];
    let (all, majority) = ([a, b, c], [a, b]);

    // Edits on all three.
    apply(a, vec![link("table:raw.orders", "table:staging.orders")]).await?;
    apply(b, vec![link("table:staging.orders", "report:revenue")]).await?;
    let mut raw = NewEntity::parse("table:raw.orders")?;
    raw.attributes.set(&Attr::Owner("sales".into()));
    apply(c, vec![Op::Upsert(raw)]).await?;
    let took = wait_for("three nodes converge", Duration::from_secs(30), || {
        same_heads(&all)
    })
    .await?;
    eprintln!("three nodes converged {took:?} after the last edit");
    assert_eq!(downstream(c, "table:raw.orders").await?.total, 2);
    // Each node received the two others' edits and timed their arrival.
    for node in all {
        let timed = node.metric("stemma_lineage_sync_delay_seconds_count")?;
        assert!(timed >= 2.0, "{timed} edits timed");
    }

    // Cut c off; both sides keep editing.
    drop_traffic(c, &[a, b])?;
    drop_traffic(a, &[c])?;
    drop_traffic(b, &[c])?;
    apply(a, vec![link("report:revenue", "dashboard:exec")]).await?;
    apply(
        c,
        vec![
            link("table:raw.orders", "table:audit.orders"),
            Op::SetAttr {
                id: id("table:raw.orders"),
                attr: Attr::Level(3),
            },
        ],
    )
    .await?;
    // The majority side converges without c; c does not see its edit.
    wait_for("a and b converge", Duration::from_secs(30), || {
        same_heads(&majority)
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let on_c = downstream(c, "table:raw.orders").await?;
    assert!(
        on_c.items.iter().all(|r| r.id != id("dashboard:exec")),
        "the cut-off node saw an edit made on the other side"
    );
    assert_ne!(heads(a).await?, heads(c).await?);

    // Heal: everything converges to the same heads and the same answers.
    for node in [a, b, c] {
        drop_traffic(node, &[])?;
    }
    let took = wait_for(
        "all converge after healing",
        Duration::from_secs(60),
        || same_heads(&all),
    )
    .await?;
    eprintln!("converged {took:?} after healing");
    let answers = [
        downstream(a, "table:raw.orders").await?,
        downstream(b, "table:raw.orders").await?,
        downstream(c, "table:raw.orders").await?,
    ];
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], answers[2]);
    let reached: Vec<String> = answers[0].items.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(
        reached,
        [
            "table:audit.orders",
            "table:staging.orders",
            "report:revenue",
            "dashboard:exec"
        ],
        "both sides' edits are in the merged graph"
    );

    // A killed node restarts with its graph intact.
    let before = heads(&nodes[1]).await?;
    let answer_before = downstream(&nodes[1], "table:raw.orders").await?;
    nodes[1].kill();
    nodes[1].restart()?;
    assert_eq!(heads(&nodes[1]).await?, before);
    assert_eq!(
        downstream(&nodes[1], "table:raw.orders").await?,
        answer_before
    );
    Ok(())
}

/// Every node's `stemma_lineage_epoch`.
fn epochs(nodes: &[TestNode]) -> anyhow::Result<Vec<f64>> {
    nodes
        .iter()
        .map(|n| n.metric("stemma_lineage_epoch"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grown_history_moves_every_node_to_a_smaller_epoch() -> anyhow::Result<()> {
    let mut nodes = three_nodes_with(&["--lineage-epoch-ops", "300"]).await?;
    // Each node adds a chain of tables and scratch tables, then removes the
    // scratch tables: the history outgrows the live state.
    for (n, node) in nodes.iter().enumerate() {
        for batch in 0..5 {
            let mut ops: Vec<Op> = (0..10)
                .map(|i| {
                    let k = batch * 10 + i;
                    link(
                        &format!("table:n{n}.t{k}"),
                        &format!("table:n{n}.t{}", k + 1),
                    )
                })
                .collect();
            for i in 0..10 {
                let scratch = format!("table:n{n}.scratch{}", batch * 10 + i);
                ops.push(Op::Upsert(NewEntity::parse(&scratch)?));
            }
            apply(node, ops).await?;
        }
        let removals = (0..50)
            .map(|k| Op::Remove {
                id: id(&format!("table:n{n}.scratch{k}")),
            })
            .collect();
        apply(node, removals).await?;
    }
    let all: Vec<&TestNode> = nodes.iter().collect();
    wait_for("three nodes converge", Duration::from_secs(30), || {
        same_heads(&all)
    })
    .await?;
    let answer = downstream(&nodes[0], "table:n1.t0").await?;
    assert_eq!(answer.total, 50);
    let bytes_before: Vec<f64> = nodes
        .iter()
        .map(|n| n.metric("stemma_lineage_document_bytes"))
        .collect::<anyhow::Result<_>>()?;

    let took = wait_for("every node on epoch 1", Duration::from_secs(60), || async {
        Ok(epochs(&nodes)?.iter().all(|&e| e == 1.0))
    })
    .await?;
    wait_for(
        "same heads on the new epoch",
        Duration::from_secs(30),
        || same_heads(&all),
    )
    .await?;
    let bytes_after: Vec<f64> = nodes
        .iter()
        .map(|n| n.metric("stemma_lineage_document_bytes"))
        .collect::<anyhow::Result<_>>()?;
    eprintln!(
        "epoch 1 on all nodes {took:?} after convergence; bytes {bytes_before:?} → {bytes_after:?}"
    );
    for (before, after) in bytes_before.iter().zip(&bytes_after) {
        assert!(
            after < before,
            "the stored graph shrank: {before} → {after}"
        );
    }
    for node in &nodes {
        assert_eq!(downstream(node, "table:n1.t0").await?, answer);
        assert_eq!(node.metric("stemma_lineage_epochs_total")?, 1.0);
    }

    // Edits go on on the new epoch, and a restarted node keeps it.
    apply(&nodes[2], vec![link("table:n1.t50", "report:after")]).await?;
    wait_for(
        "the edit after the cut converges",
        Duration::from_secs(30),
        || same_heads(&all),
    )
    .await?;
    assert_eq!(downstream(&nodes[0], "table:n1.t0").await?.total, 51);
    let before = heads(&nodes[1]).await?;
    nodes[1].kill();
    nodes[1].restart()?;
    assert_eq!(heads(&nodes[1]).await?, before);
    assert_eq!(nodes[1].metric("stemma_lineage_epoch")?, 1.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_api_and_the_cli_edit_and_query_the_same_graph() -> anyhow::Result<()> {
    let node = TestNode::start(&[])?;
    let http = node.info.http_addr;
    let ops = serde_json::json!({ "ops": [
        { "op": "link", "source": "table:raw.orders", "target": "table:marts.revenue",
          "spec": { "kind": "transformation", "rule": "SELECT sum(amount) FROM raw.orders" } },
        { "op": "upsert", "id": "table:raw.orders", "name": "raw.orders",
          "attributes": { "level": 3 } },
    ]});
    http_post(http, "/api/v1/ops", &ops.to_string())?;

    // The CLI sees the HTTP edit, and its own edits are visible over HTTP.
    let out = node.cli(&[
        "lineage",
        "link",
        "table:marts.revenue",
        "report:board",
        "--kind",
        "derivation",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = node.cli(&["lineage", "add", "report:board", "--attr", "level=1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let down: serde_json::Value = serde_json::from_str(&http_get(
        http,
        "/api/v1/entities/table:raw.orders/downstream?depth=10",
    )?)?;
    let ids: Vec<&str> = down["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["table:marts.revenue", "report:board"]);

    let out = node.cli(&["lineage", "down", "table:raw.orders"]);
    let tree = String::from_utf8(out.stdout)?;
    assert!(tree.contains("└── table:marts.revenue"), "{tree}");
    assert!(tree.contains("    └── report:board"), "{tree}");

    // The audit finds the level-3 → level-1 flow, in JSON from the CLI.
    let out = node.cli(&["--json", "lineage", "audit"]);
    let audit: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let leak = audit["items"].as_array().expect("items").iter().any(|f| {
        f["path"].as_array().is_some_and(|p| {
            p.first().and_then(|v| v.as_str()) == Some("table:raw.orders")
                && p.last().and_then(|v| v.as_str()) == Some("report:board")
        })
    });
    assert!(leak, "the level-3 → level-1 flow is reported: {audit}");
    // Bad input: a clear error and the right status, nothing changed.
    let err = http_post(http, "/api/v1/ops", r#"{"ops":[{"op":"link"}]}"#).unwrap_err();
    assert!(err.to_string().contains("400"), "{err}");
    let err = http_get(http, "/api/v1/entities/table:nope/downstream").unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    let err = http_get(http, "/api/v1/stats?namespace=no%20spaces%20allowed").unwrap_err();
    assert!(err.to_string().contains("400"), "{err}");
    let err = http_post(http, "/api/v1/query", "{broken json").unwrap_err();
    assert!(err.to_string().contains("invalid lineage request"), "{err}");
    let out = node.cli(&["lineage", "show", "nonsense"]);
    assert_eq!(out.status.code(), Some(2));
    let stats: serde_json::Value = serde_json::from_str(&http_get(http, "/api/v1/stats")?)?;
    assert_eq!(stats["entities"], 3);
    assert_eq!(stats["edges"], 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_objects_carry_their_provenance() -> anyhow::Result<()> {
    let node = TestNode::start(&[])?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("data.csv");
    std::fs::write(&file, "id,total\n1,10\n")?;
    let file = file.to_str().expect("utf-8 path");
    let out = node.cli(&["put", file, "raw/orders.csv"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = node.cli(&[
        "put",
        file,
        "marts/revenue.csv",
        "--derived-from",
        "raw/orders.csv",
        "--job",
        "nightly",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A put that names its sources is in the graph when it is acknowledged.
    let client = node.client().await?;
    let up = client
        .upstream(NS, &id("object:marts/revenue.csv"), Traversal::depth(1))
        .await?;
    let ids: Vec<String> = up.items.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(ids, ["job:nightly", "object:raw/orders.csv"]);
    let shown = client
        .lineage_show(NS, &id("object:marts/revenue.csv"))
        .await?;
    let stat = node.cli(&["--json", "stat", "marts/revenue.csv"]);
    let stat: serde_json::Value = serde_json::from_slice(&stat.stdout)?;
    assert_eq!(
        shown.entity.attributes.extra["version"],
        stat["object_id"].as_str().expect("object id")
    );

    // Plain puts and deletes are recorded in the background, shortly after.
    node.cli(&["rm", "raw/orders.csv"]);
    wait_for(
        "the delete is recorded",
        Duration::from_secs(10),
        || async {
            let shown = client
                .lineage_show(NS, &id("object:raw/orders.csv"))
                .await?;
            Ok(shown.entity.retired.is_some())
        },
    )
    .await?;
    // A source that is not a valid object path is refused before storing.
    let out = node.cli(&["put", file, "marts/x.csv", "--derived-from", "no-key"]);
    assert_eq!(out.status.code(), Some(2));
    client.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_lineage_is_extracted_printed_and_recorded() -> anyhow::Result<()> {
    let node = TestNode::start(&[])?;
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("load.sql");
    std::fs::write(
        &script,
        "INSERT INTO marts.revenue (day, total)\n\
         SELECT o.day, sum(o.amount) FROM raw.orders o JOIN raw.fx f ON o.cur = f.cur GROUP BY o.day;",
    )?;
    let script = script.to_str().expect("utf-8 path");

    let out = node.cli(&["lineage", "sql", script, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lineage: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(
        lineage["sources"],
        serde_json::json!(["raw.orders", "raw.fx"])
    );
    assert_eq!(lineage["targets"], serde_json::json!(["marts.revenue"]));
    assert!(
        lineage["columns"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| {
                c["target"] == "marts.revenue.total"
                    && c["sources"] == serde_json::json!(["raw.orders.amount"])
            })),
        "{lineage}"
    );
    assert_eq!(lineage["statements"].as_array().map(Vec::len), Some(1));

    // SQL that does not parse: exit 2, the error with its position, nothing recorded.
    let bad = dir.path().join("bad.sql");
    std::fs::write(&bad, "SELECT a FROM\nWHERE (")?;
    let out = node.cli(&[
        "lineage",
        "sql",
        bad.to_str().expect("utf-8"),
        "--json",
        "--record",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let error: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(error["line"], 2, "{error}");
    assert!(error["error"].as_str().is_some_and(|m| !m.is_empty()));
    let client = node.client().await?;
    assert_eq!(client.lineage_stats(NS).await?.entities, 0);

    // --record writes tables, columns, the job and the SQL as rule text.
    let out = node.cli(&[
        "lineage",
        "sql",
        script,
        "--record",
        "--job",
        "revenue_load",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let up = client
        .upstream(NS, &id("table:marts.revenue"), Traversal::depth(1))
        .await?;
    let ids: Vec<String> = up.items.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(
        ids,
        ["job:revenue_load", "table:raw.fx", "table:raw.orders"]
    );
    let up = client
        .upstream(NS, &id("column:marts.revenue.total"), Traversal::depth(1))
        .await?;
    assert_eq!(up.items[0].id, id("column:raw.orders.amount"));
    client.close().await;
    Ok(())
}
