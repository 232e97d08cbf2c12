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
//! `STEMMA_BENCH_EVENTS` (default 20,000 per behaviour) and
//! `STEMMA_BENCH_CLIENTS` (default 32 threads, one HTTP request at a time
//! each) change the load. It only prints.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};

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
    let closing = rate(&events, clients, |_, event| {
        http_post(addr, "/api/v1/lineage", event).map(drop)
    });
    println!("node, {clients} HTTP clients, a connection per event: {closing}");
    // The same events again would be duplicates: they get other run ids.
    let events: Vec<String> = events
        .iter()
        .map(|e| e.replace("-4000-8000-", "-4000-9000-"))
        .collect();
    let kept = rate(&events, clients, |client, event| {
        if client.is_none() {
            *client = Some(Client::connect(addr)?);
        }
        client
            .as_mut()
            .expect("connected")
            .post("/api/v1/lineage", event)
    });
    println!("node, {clients} HTTP clients, keep-alive: {kept}");
    let stats = node.metric("stemma_lineage_entities")?;
    println!("graph afterwards: {stats} entities");
    Ok(())
}

/// Sends every event with `post` from `clients` threads, each keeping its
/// own connection (if `post` makes one) until an error; the rate as text.
fn rate(
    events: &[String],
    clients: usize,
    post: impl Fn(&mut Option<Client>, &str) -> anyhow::Result<()> + Sync,
) -> String {
    let next = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..clients {
            scope.spawn(|| {
                let mut client = None;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(event) = events.get(i) else { break };
                    if post(&mut client, event).is_err() {
                        failed.fetch_add(1, Ordering::Relaxed);
                        client = None;
                    }
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    format!(
        "{} events in {secs:.2} s = {:.0} events/s ({} refused)",
        events.len(),
        events.len() as f64 / secs,
        failed.load(Ordering::Relaxed)
    )
}

/// A minimal HTTP/1.1 client on one persistent connection.
struct Client {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> anyhow::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Client {
            addr,
            reader: BufReader::new(stream),
        })
    }

    /// Posts `json` and reads the whole response; an error for a status
    /// other than 2xx.
    fn post(&mut self, path: &str, json: &str) -> anyhow::Result<()> {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{json}",
            self.addr,
            json.len()
        );
        self.reader.get_mut().write_all(request.as_bytes())?;
        let mut status = String::new();
        self.reader.read_line(&mut status)?;
        let mut length = 0;
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
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
        self.reader.read_exact(&mut body)?;
        if !status.starts_with("HTTP/1.1 2") {
            bail!("{}", status.trim_end());
        }
        Ok(())
    }
}
