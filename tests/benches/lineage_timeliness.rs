//! Lineage timeliness across real `stemma node run` processes on 127.0.0.1:
//! the time from an edit acknowledged by one node until every node of the
//! cluster shows it, over many edits; plus the client-side edit rate of one
//! node. Goal: p99 under 1 s on 5 nodes.
//!
//! ```text
//! cargo build --release --bin stemma
//! cargo bench -p stemma-tests --bench lineage_timeliness
//! ```
//!
//! `STEMMA_BENCH_NODES` (default 5) and `STEMMA_BENCH_EDITS` (default 1000)
//! change the workload. Edits go round-robin to the nodes, one at a time; each
//! links a new table to a new report (two entities and an edge). After the
//! writer acknowledges, every other node is polled over an open client
//! connection until it shows the new edge's target; a poll round over the
//! other nodes takes well under a millisecond (printed). It only prints.

use std::time::{Duration, Instant};

use stemma_client::Client;
use stemma_protocol::lineage::{EdgeKind, EdgeSpec, EntityId, Op};
use stemma_tests::TestNode;

const SECRET: &str = "lineage-bench-secret";
const NS: &str = "default";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn link(i: usize) -> (Op, EntityId) {
    let source = EntityId::parse(&format!("table:bench.t{i}")).expect("valid id");
    let target = EntityId::parse(&format!("report:r{i}")).expect("valid id");
    let op = Op::Link {
        source,
        target: target.clone(),
        spec: EdgeSpec::of(EdgeKind::Transformation),
    };
    (op, target)
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

fn main() -> anyhow::Result<()> {
    let n = env_or("STEMMA_BENCH_NODES", 5);
    let edits = env_or("STEMMA_BENCH_EDITS", 1000);
    tokio::runtime::Runtime::new()?.block_on(run(n, edits))
}

async fn run(n: usize, edits: usize) -> anyhow::Result<()> {
    println!("binary {}", stemma_tests::stemma_bin().display());
    let first = TestNode::start_in(Some(SECRET), &["--no-mdns"])?;
    let join = first.p2p_addr();
    let mut nodes = vec![first];
    for _ in 1..n {
        nodes.push(TestNode::start_in(
            Some(SECRET),
            &["--no-mdns", "--join", &join],
        )?);
    }
    let mut clients = Vec::new();
    for node in &nodes {
        clients.push(node.client().await?);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !all_members(&clients, n).await? {
        anyhow::ensure!(Instant::now() < deadline, "the cluster did not converge");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut times = Vec::with_capacity(edits);
    let mut poll_rounds = Vec::new();
    for i in 0..edits {
        let writer = i % n;
        let (op, target) = link(i);
        clients[writer].lineage_apply(NS, vec![op]).await?;
        let acked = Instant::now();
        let mut waiting: Vec<usize> = (0..n).filter(|&j| j != writer).collect();
        while !waiting.is_empty() {
            let round = Instant::now();
            let mut still = Vec::new();
            for &j in &waiting {
                if clients[j].lineage_show(NS, &target).await.is_err() {
                    still.push(j);
                }
            }
            poll_rounds.push(round.elapsed());
            waiting = still;
            anyhow::ensure!(
                acked.elapsed() < Duration::from_secs(30),
                "edit {i} not visible everywhere after 30 s"
            );
        }
        times.push(acked.elapsed());
    }
    times.sort();
    poll_rounds.sort();
    println!(
        "{n} nodes, {edits} edits: visible on every node after p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms \
         (poll round p50 {:.2} ms)",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        percentile(&poll_rounds, 0.5).as_secs_f64() * 1e3,
    );

    // Edit rate through one node's client API: batches of 100 links.
    let start = Instant::now();
    let batches = 50;
    for b in 0..batches {
        let ops = (0..100).map(|k| link(edits + b * 100 + k).0).collect();
        clients[0].lineage_apply(NS, ops).await?;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "edit rate through the client: {:.0} operations/s ({} batches of 100 links, each one durable change)",
        (batches * 100) as f64 / secs,
        batches
    );
    let start = Instant::now();
    for k in 0..200 {
        clients[0]
            .lineage_apply(NS, vec![link(edits + batches * 100 + k).0])
            .await?;
    }
    println!(
        "single-operation edits: {:.0} edits/s (each one durable change)",
        200.0 / start.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn all_members(clients: &[Client], n: usize) -> anyhow::Result<bool> {
    for client in clients {
        if client.members().await?.len() != n {
            return Ok(false);
        }
    }
    Ok(true)
}
