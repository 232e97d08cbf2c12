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
//! Two client behaviours, one after the other on the same node: a new HTTP
//! connection per event (`Connection: close`), and persistent connections
//! (HTTP/1.1 keep-alive, as an HTTP client with a connection pool sends).
//!
//! Each client has one HTTP request in flight. The node applies whatever
//! events wait as one group, so the rate depends on how many clients send
//! at once: the keep-alive phase runs once per count in
//! `STEMMA_BENCH_CLIENTS` (default `32,128`; the connection-per-event phase
//! uses the first). `STEMMA_BENCH_EVENTS` (default 20,000 per phase) sets
//! the events. It only prints.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use stemma_protocol::lineage::openlineage::ops_for_event;
use stemma_tests::{TestNode, process_cpu_seconds};

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
    let counts: Vec<usize> = std::env::var("STEMMA_BENCH_CLIENTS")
        .unwrap_or_else(|_| "32,128".into())
        .split(',')
        .map(|c| {
            c.trim()
                .parse()
                .context("STEMMA_BENCH_CLIENTS: e.g. 32,128")
        })
        .collect::<anyhow::Result<_>>()?;
    let clients = counts[0];
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
    let closing = rate(&node, events.clone(), clients, Connection::PerEvent)?;
    println!("node, {clients} HTTP clients, a connection per event: {closing}");
    for (phase, clients) in counts.into_iter().enumerate() {
        // The same events again would be duplicates: they get other run ids.
        let fresh = format!("-4000-9{phase:x}00-");
        let events: Vec<String> = events
            .iter()
            .map(|e| e.replace("-4000-8000-", &fresh))
            .collect();
        let kept = rate(&node, events, clients, Connection::KeptAlive)?;
        println!("node, {clients} HTTP clients, keep-alive: {kept}");
    }
    let stats = node.metric("stemma_lineage_entities")?;
    println!("graph afterwards: {stats} entities");
    Ok(())
}

/// How a client uses its connection.
#[derive(Clone, Copy, PartialEq)]
enum Connection {
    /// A new connection for every event (`Connection: close`).
    PerEvent,
    /// One persistent connection (HTTP/1.1 keep-alive).
    KeptAlive,
}

/// Sends every event from `clients` concurrent clients, each with one
/// request in flight; the rate as text, with the CPU time the node and the
/// clients used per event. The node's CPU per event is steadier than the
/// rate on a shared machine, and says what the node could take on cores of
/// its own. The clients are driven by one
/// thread, the way load generators such as wrk drive their connections: a
/// thread per client cost the machine about as much CPU as the node itself
/// (most of it in waking threads), CPU the node then did not have.
fn rate(
    node: &TestNode,
    events: Vec<String>,
    clients: usize,
    connection: Connection,
) -> anyhow::Result<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let events = Arc::new(events);
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let addr = node.info.http_addr;
    let cpu = || {
        let me = process_cpu_seconds(std::process::id());
        node.cpu_seconds().zip(me)
    };
    let groups =
        || -> anyhow::Result<f64> { node.metric("stemma_lineage_ingest_group_events_count") };
    let groups_before = groups()?;
    let cpu_before = cpu();
    let start = Instant::now();
    runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..clients {
            let (events, next, failed) = (events.clone(), next.clone(), failed.clone());
            tasks.spawn(async move {
                let mut client = None;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(event) = events.get(i) else { break };
                    if client.is_none() {
                        client = Client::connect(addr).await.ok();
                    }
                    let sent = match client.as_mut() {
                        Some(c) => c.post("/api/v1/lineage", event, connection).await,
                        None => Err(anyhow::anyhow!("cannot connect")),
                    };
                    if sent.is_err() {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    if sent.is_err() || connection == Connection::PerEvent {
                        client = None;
                    }
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    });
    let secs = start.elapsed().as_secs_f64();
    let n = events.len() as f64;
    let per_event = match (cpu_before, cpu()) {
        (Some((node0, me0)), Some((node1, me1))) => format!(
            "; CPU per event: node {:.0} µs ({:.0} events per node CPU-second), clients {:.0} µs",
            (node1 - node0) / n * 1e6,
            n / (node1 - node0),
            (me1 - me0) / n * 1e6
        ),
        _ => String::new(),
    };
    let failed = failed.load(Ordering::Relaxed);
    let per_group = (n - failed as f64) / (groups()? - groups_before);
    Ok(format!(
        "{} events in {secs:.2} s = {:.0} events/s ({failed} refused){per_event}; {per_group:.1} events per applied group",
        events.len(),
        n / secs,
    ))
}

/// A minimal HTTP/1.1 client on one connection.
struct Client {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> anyhow::Result<Client> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Client {
            addr,
            reader: BufReader::new(stream),
        })
    }

    /// Posts `json` and reads the whole response; an error for a status
    /// other than 2xx.
    async fn post(&mut self, path: &str, json: &str, connection: Connection) -> anyhow::Result<()> {
        let close = match connection {
            Connection::PerEvent => "Connection: close\r\n",
            Connection::KeptAlive => "",
        };
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\n{close}Content-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{json}",
            self.addr,
            json.len()
        );
        self.reader.get_mut().write_all(request.as_bytes()).await?;
        let mut status = String::new();
        self.reader.read_line(&mut status).await?;
        let mut length = 0;
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).await? == 0 {
                bail!("the connection closed mid-response");
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().context("Content-Length")?;
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).await?;
        if !status.starts_with("HTTP/1.1 2") {
            bail!("{}", status.trim_end());
        }
        Ok(())
    }
}
