//! OpenLineage ingest rate of one node: the public corpus
//! (`protocol/tests/corpora/openlineage/all-events.jsonl`) replayed with fresh
//! run ids, sent to `POST /api/v1/lineage` by concurrent HTTP clients; beside
//! it, in the same run, the rate of the event mapping alone (no node) as the
//! ceiling. Goal: ≥ 10,000 events/s.
//!
//! ```text
//! cargo build --release --bin stemma
//! cargo bench -p stemma-tests --bench openlineage_ingest
//! ```
//!
//! `STEMMA_BENCH_EVENTS` (default 20,000) and `STEMMA_BENCH_CLIENTS` (default
//! 32 threads, one HTTP request at a time each) change the load. It only prints.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use stemma_protocol::lineage::openlineage::ops_for_event;
use stemma_tests::{TestNode, http_post};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `n` events cycling through the corpus, each run event with a fresh run id.
fn events(n: usize) -> anyhow::Result<Vec<String>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../protocol/tests/corpora/openlineage/all-events.jsonl");
    let corpus: Vec<serde_json::Value> = std::fs::read_to_string(path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    Ok((0..n)
        .map(|i| {
            let mut event = corpus[i % corpus.len()].clone();
            if let Some(run) = event.get_mut("run").and_then(|r| r.as_object_mut()) {
                run.insert(
                    "runId".into(),
                    format!("00000000-0000-4000-8000-{i:012}").into(),
                );
            }
            event.to_string()
        })
        .collect())
}

fn main() -> anyhow::Result<()> {
    let n = env_or("STEMMA_BENCH_EVENTS", 20_000);
    let clients = env_or("STEMMA_BENCH_CLIENTS", 32);
    let events = events(n)?;
    println!("binary {}", stemma_tests::stemma_bin().display());

    let start = Instant::now();
    let mut ops = 0;
    for event in &events {
        ops += ops_for_event(event.as_bytes())?.ops.len();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "mapping alone (one thread, no node): {:.0} events/s ({ops} operations)",
        n as f64 / secs
    );

    let node = TestNode::start(&[])?;
    let addr = node.info.http_addr;
    let next = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..clients {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(event) = events.get(i) else { break };
                    if http_post(addr, "/api/v1/lineage", event).is_err() {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    println!(
        "node, {clients} HTTP clients: {n} events in {secs:.2} s = {:.0} events/s ({} refused)",
        n as f64 / secs,
        failed.load(Ordering::Relaxed)
    );
    let stats = node.metric("stemma_lineage_entities")?;
    println!("graph afterwards: {stats} entities");
    Ok(())
}
