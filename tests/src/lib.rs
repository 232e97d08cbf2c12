//! Helpers for tests that run real `stemma` processes on 127.0.0.1: start a node
//! in a temporary data dir, wait for its `node.json`, talk to it with the client
//! library, the CLI or raw QUIC, read its metrics, kill or stop it.
//!
//! The `stemma` binary is the one cargo built beside the test executable
//! (`cargo test --workspace` builds it); `STEMMA_BIN` overrides the path.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use std::collections::{BTreeMap, BTreeSet};
use stemma_client::{Client, ConnectionString};
use stemma_node::{NODE_FILE, NodeInfo};

use stemma_protocol::ChunkId;
use stemma_protocol::placement::Layout;

/// How long a node may take to write its `node.json`.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The `stemma` executable under test.
pub fn stemma_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("STEMMA_BIN") {
        return path.into();
    }
    // target/<profile>/deps/<test-exe> → target/<profile>/stemma
    let exe = std::env::current_exe().expect("test executable path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("stemma"))
        .expect("target dir");
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test --workspace` (which builds it) or set STEMMA_BIN",
        bin.display()
    );
    bin
}

/// A `stemma node run` process with its own data dir. Killed when dropped.
#[derive(Debug)]
pub struct TestNode {
    /// The data dir (kept across restarts).
    pub dir: PathBuf,
    /// What the node wrote to `node.json`.
    pub info: NodeInfo,
    extra_args: Vec<String>,
    secret: Option<String>,
    child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
}

impl TestNode {
    /// Starts a node in a fresh temporary data dir, with extra flags. It forms a
    /// cluster of its own, without mDNS.
    pub fn start(extra_args: &[&str]) -> anyhow::Result<TestNode> {
        Self::start_in(None, &[extra_args, &["--no-mdns"]].concat())
    }

    /// Starts a node holding the cluster secret `secret` (if given), with extra
    /// flags (add `--no-mdns` unless discovery is under test). The p2p endpoint
    /// listens on a free port of 127.0.0.1 unless `--p2p-listen` is given.
    pub fn start_in(secret: Option<&str>, extra_args: &[&str]) -> anyhow::Result<TestNode> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("node");
        let extra_args: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        let secret = secret.map(str::to_string);
        let (child, info) = spawn(&dir, &extra_args, secret.as_deref())?;
        Ok(TestNode {
            dir,
            info,
            extra_args,
            secret,
            child: Some(child),
            _tmp: Some(tmp),
        })
    }

    /// The first p2p multiaddr (what `--join` takes).
    pub fn p2p_addr(&self) -> String {
        self.info.p2p_addrs[0].clone()
    }

    /// The members as this node reports them.
    pub async fn members(&self) -> anyhow::Result<Vec<stemma_client::MemberRow>> {
        let client = self.client().await?;
        let rows = client.members().await?;
        client.close().await;
        Ok(rows)
    }

    /// The connection string.
    pub fn connection(&self) -> ConnectionString {
        self.info
            .connection
            .parse()
            .expect("node.json holds a valid connection string")
    }

    /// A client connected to this node.
    pub async fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::connect(&self.info.connection).await?)
    }

    /// The `stemma` CLI aimed at this node, with `args`.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(stemma_bin())
            .args(args)
            .env("STEMMA_NODE", &self.info.connection)
            .stdin(Stdio::null())
            .output()
            .expect("running the stemma CLI")
    }

    /// The CPU time the node process has used so far (user and system), from
    /// `/proc`; `None` where there is no `/proc` or the node is not running.
    pub fn cpu_seconds(&self) -> Option<f64> {
        process_cpu_seconds(self.child.as_ref()?.id())
    }

    /// A metric's value from `/metrics` (the first sample whose line starts with
    /// `name`, labels included); 0 if absent.
    pub fn metric(&self, name: &str) -> anyhow::Result<f64> {
        let body = http_get(self.info.http_addr, "/metrics")?;
        Ok(body
            .lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                (series == name).then(|| value.parse().ok()).flatten()
            })
            .unwrap_or(0.0))
    }

    /// SIGKILL: the process dies at once, mid-write if it was writing.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for a clean exit (bounded). Returns the exit status code.
    pub fn terminate(&mut self) -> anyhow::Result<Option<i32>> {
        let Some(mut child) = self.child.take() else {
            return Ok(None);
        };
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status.code());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("node did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the node again on the same data dir (after kill or terminate).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let (child, info) = spawn(&self.dir, &self.extra_args, self.secret.as_deref())?;
        self.child = Some(child);
        self.info = info;
        Ok(())
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(
    dir: &Path,
    extra_args: &[String],
    secret: Option<&str>,
) -> anyhow::Result<(Child, NodeInfo)> {
    std::fs::create_dir_all(dir)?;
    let node_file = dir.join(NODE_FILE);
    let _ = std::fs::remove_file(&node_file);
    let log = std::fs::File::create(dir.join("node.log"))?;
    let mut command = Command::new(stemma_bin());
    command.args(["node", "run", "--data-dir"]).arg(dir).args([
        "--listen",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
    ]);
    if !extra_args.iter().any(|a| a == "--p2p-listen") {
        command.args(["--p2p-listen", "/ip4/127.0.0.1/udp/0/quic-v1"]);
    }
    command
        .args(extra_args)
        .env("STEMMA_LOG", "info")
        .env_remove("STEMMA_CLUSTER_SECRET");
    if let Some(secret) = secret {
        command.env("STEMMA_CLUSTER_SECRET", secret);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting stemma node run")?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(text) = std::fs::read_to_string(&node_file)
            && let Ok(info) = serde_json::from_str::<NodeInfo>(&text)
        {
            return Ok((child, info));
        }
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(dir.join("node.log")).unwrap_or_default();
            bail!("node exited with {status} before it was ready:\n{log}");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("node not ready within {READY_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A plain HTTP/1.1 GET on loopback; returns the body (an error unless 2xx).
pub fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    http_request(addr, "GET", path, None)
}

/// A plain HTTP/1.1 POST of a JSON body on loopback; returns the response body
/// (an error unless 2xx).
pub fn http_post(addr: SocketAddr, path: &str, json: &str) -> anyhow::Result<String> {
    http_request(addr, "POST", path, Some(json))
}

fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    json: Option<&str>,
) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    match json {
        Some(body) => {
            write!(
                stream,
                "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )?;
            // A server refusing a body too large answers and closes before
            // reading it all: the write then fails, and the answer waits.
            if let Err(e) = stream.write_all(body.as_bytes())
                && !matches!(
                    e.kind(),
                    std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                )
            {
                return Err(e.into());
            }
        }
        None => write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?,
    }
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    if !head.starts_with("HTTP/1.1 2") {
        bail!(
            "{method} {path}: {}: {body}",
            head.lines().next().unwrap_or_default()
        );
    }
    // axum may answer chunked: drop the chunk-size lines if so.
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || tail.len() < n {
                break;
            }
            out.push_str(&tail[..n]);
            rest = tail[n..].trim_start_matches("\r\n");
        }
        return Ok(out);
    }
    Ok(body.to_string())
}

/// Writes `len` pseudo-random bytes (seeded) to `path`, without holding them all.
pub fn random_file(path: &Path, len: u64, seed: u64) -> anyhow::Result<()> {
    use rand::{RngCore, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill_bytes(&mut buf[..n]);
        file.write_all(&buf[..n])?;
        left -= n as u64;
    }
    file.flush()?;
    Ok(())
}

/// BLAKE3 of a file's contents, streamed.
pub fn file_hash(path: &Path) -> anyhow::Result<blake3::Hash> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(std::fs::File::open(path)?)?;
    Ok(hasher.finalize())
}

/// A raw QUIC connection to a node, TLS-pinned like the client's, with no
/// handshake sent: for tests that speak the wire protocol by hand.
pub async fn raw_connect(target: &ConnectionString) -> anyhow::Result<quinn::Connection> {
    let tls = stemma_client::tls::client_config(target.pin, stemma_protocol::wire::ALPN)?;
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    config.transport_config(stemma_client::transport::transport_config());
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
    endpoint.set_default_client_config(config);
    let addr: SocketAddr = target.address.parse()?;
    Ok(endpoint.connect(addr, "stemma")?.await?)
}

/// Seeds printed by tests, so a failure can be replayed.
pub fn seed_from_env(default: u64) -> u64 {
    let seed = std::env::var("STEMMA_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    eprintln!("seed: {seed} (set STEMMA_TEST_SEED to change)");
    seed
}

/// Polls `check` every 100 ms until it holds or `limit` passes; returns the time
/// it took, or an error naming `what`.
pub async fn wait_for<F, Fut>(what: &str, limit: Duration, mut check: F) -> anyhow::Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let start = Instant::now();
    loop {
        if check().await.unwrap_or(false) {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            bail!("{what}: not within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// --- Replicated clusters ----------------------------------------------

/// Waits until every node's layout holds exactly `n` nodes (60 s at most);
/// on failure, prints what each node sees.
pub async fn wait_for_layouts(nodes: &[&TestNode], n: usize) -> anyhow::Result<Duration> {
    let waited = wait_for(
        &format!("every node's layout holds {n} nodes"),
        Duration::from_secs(60),
        || async {
            for node in nodes {
                if layout_nodes(node)? != n {
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )
    .await;
    if waited.is_err() {
        for node in nodes {
            let members = node.members().await.unwrap_or_default();
            let states: Vec<String> = members
                .iter()
                .map(|m| {
                    let short = &m.node_id[m.node_id.len().saturating_sub(6)..];
                    format!("{short}/{}:{:?}:{:?}", m.generation, m.state, m.zone)
                })
                .collect();
            eprintln!(
                "{}: layout of {:?} nodes; members {states:?}",
                node.info.node_id,
                layout_nodes(node).ok()
            );
        }
    }
    waited
}

/// The layout the nodes compute for this view (RF 3, 256 partitions, equal
/// capacities, node `i` of `zones[i]`): computed here from the same inputs,
/// so that tests check placement rather than trust it.
pub fn expected_layout(nodes: &[&TestNode], zones: &[String]) -> anyhow::Result<Layout> {
    use stemma_protocol::placement::{NodeSpec, PlacementConfig, View};
    let specs = nodes.iter().zip(zones).map(|(node, zone)| {
        let id: stemma_protocol::membership::NodeId = node.info.node_id.parse().expect("a node id");
        NodeSpec::new(id, zone.clone(), 1)
    });
    Ok(Layout::initial(
        &View::new(specs)?,
        PlacementConfig::new(256, 3)?,
    )?)
}

/// A node's `GET /status`.
pub fn status(node: &TestNode) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::from_str(&http_get(
        node.info.http_addr,
        "/status",
    )?)?)
}

/// How many nodes the node's placement layout holds.
pub fn layout_nodes(node: &TestNode) -> anyhow::Result<usize> {
    Ok(status(node)?["layout"]["nodes"].as_u64().unwrap_or(0) as usize)
}

/// The chunks a node holds, from its `GET /debug/chunks`.
pub fn held_chunks(node: &TestNode) -> anyhow::Result<BTreeSet<ChunkId>> {
    let body: serde_json::Value =
        serde_json::from_str(&http_get(node.info.http_addr, "/debug/chunks")?)?;
    Ok(body["chunks"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()?.parse().ok()).collect())
        .unwrap_or_default())
}

/// Whether every chunk is on each of its owners in `layout`, as the nodes'
/// chunk listings say.
pub fn chunks_on_owners(
    nodes: &[&TestNode],
    layout: &Layout,
    chunks: &BTreeSet<ChunkId>,
) -> anyhow::Result<bool> {
    placed(nodes, layout, chunks, |is_owner, holds| !is_owner || holds)
}

/// Whether every chunk is on its owners in `layout` and on no other node of
/// `nodes`, as their chunk listings say (the old owners handed their copies
/// off).
pub fn chunks_only_on_owners(
    nodes: &[&TestNode],
    layout: &Layout,
    chunks: &BTreeSet<ChunkId>,
) -> anyhow::Result<bool> {
    placed(nodes, layout, chunks, |is_owner, holds| is_owner == holds)
}

/// Whether `ok(is an owner, holds it)` is true for every chunk on every node
/// of `nodes`, by their chunk listings; false if an owner is not among
/// `nodes`.
fn placed(
    nodes: &[&TestNode],
    layout: &Layout,
    chunks: &BTreeSet<ChunkId>,
    ok: impl Fn(bool, bool) -> bool,
) -> anyhow::Result<bool> {
    let holdings = holdings(nodes)?;
    Ok(chunks.iter().all(|c| {
        let owners = layout.replicas(layout.partitions().of_chunk(c));
        owners.iter().all(|o| holdings.contains_key(o))
            && holdings
                .iter()
                .all(|(node, held)| ok(owners.contains(node), held.contains(c)))
    }))
}

/// Each node's chunk listing, by node id.
fn holdings(
    nodes: &[&TestNode],
) -> anyhow::Result<BTreeMap<stemma_protocol::membership::NodeId, BTreeSet<ChunkId>>> {
    let mut holdings = BTreeMap::new();
    for node in nodes {
        holdings.insert(node.info.node_id.parse()?, held_chunks(node)?);
    }
    Ok(holdings)
}

/// The CPU time (user and system) process `pid` has used, from
/// `/proc/PID/stat` (fields 14 and 15, in the kernel's USER_HZ ticks of
/// 1/100 s); `None` where that cannot be read.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    Some((ticks(11)? + ticks(12)?) / 100.0)
}
