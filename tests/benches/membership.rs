//! Membership figures from real `stemma node run` processes on 127.0.0.1, for
//! clusters of 5 and 20 nodes (LAN preset, the default): time to full
//! convergence, failure-detection time over repeated SIGKILLs, false
//! suspicions with no failures, and membership traffic per node.
//!
//! ```text
//! cargo build --release --bin stemma
//! cargo bench -p stemma-tests --bench membership
//! ```
//!
//! `STEMMA_BENCH_SIZES` (default `5,20`), `STEMMA_BENCH_KILLS` (default 10) and
//! `STEMMA_BENCH_QUIET_SECS` (default 300: the failure-free window in which
//! suspicions and traffic are counted) change the workload. It uses the
//! `stemma` binary beside the bench executable (or `STEMMA_BIN`). It only
//! prints: there are no timing assertions.
//!
//! Method. Convergence: the first node starts, the others start at once, all
//! joined to the first; the clock runs from when the last one is ready until
//! every node lists every node as alive. Detection: a node other than the first
//! is killed with SIGKILL; the clock runs until every other node lists it as
//! dead; it is then restarted on its data dir and the next kill waits until
//! every node lists it alive again. Views are polled over one open client
//! connection per node; each poll round takes a few milliseconds (printed).
//! Quiet window: counters from `/metrics` before and after.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use stemma_client::{Client, MemberState};
use stemma_protocol::membership::MembershipConfig;
use stemma_tests::TestNode;

const SECRET: &str = "membership-bench-secret";
/// Poll interval of the views.
const POLL: Duration = Duration::from_millis(20);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let sizes: Vec<usize> = std::env::var("STEMMA_BENCH_SIZES")
        .unwrap_or_else(|_| "5,20".into())
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()
        .context("STEMMA_BENCH_SIZES: comma-separated node counts")?;
    let kills: usize = env_or("STEMMA_BENCH_KILLS", 10);
    let quiet = Duration::from_secs(env_or("STEMMA_BENCH_QUIET_SECS", 300));
    println!(
        "binary {}; LAN preset, configured detection bound {:.1} s",
        stemma_tests::stemma_bin().display(),
        MembershipConfig::lan(16).detection_bound().as_secs_f64()
    );
    let runtime = tokio::runtime::Runtime::new()?;
    for n in sizes {
        runtime.block_on(cluster_figures(n, kills, quiet))?;
    }
    Ok(())
}

/// A running cluster and one client connection per node.
struct Cluster {
    nodes: Vec<TestNode>,
    clients: Vec<Client>,
}

impl Cluster {
    /// Starts `n` nodes, all joined to the first; returns the cluster and how long
    /// the last start took after the first was ready.
    fn start(n: usize) -> anyhow::Result<(Cluster, Duration)> {
        let first = TestNode::start_in(Some(SECRET), &["--no-mdns", "--zone", "zone-1"])?;
        let join = first.p2p_addr();
        let began = Instant::now();
        let rest: Vec<TestNode> = std::thread::scope(|scope| {
            let handles: Vec<_> = (2..=n)
                .map(|i| {
                    let join = join.clone();
                    scope.spawn(move || {
                        let zone = format!("zone-{i}");
                        TestNode::start_in(
                            Some(SECRET),
                            &["--no-mdns", "--zone", &zone, "--join", &join],
                        )
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("start thread"))
                .collect::<anyhow::Result<_>>()
        })?;
        let mut nodes = vec![first];
        nodes.extend(rest);
        Ok((
            Cluster {
                nodes,
                clients: Vec::new(),
            },
            began.elapsed(),
        ))
    }

    async fn connect(&mut self) -> anyhow::Result<()> {
        self.clients.clear();
        for node in &self.nodes {
            self.clients.push(node.client().await?);
        }
        Ok(())
    }

    /// Whether every node but `except` sees `target` (a node id) in a state that
    /// satisfies `ok` — or, with no target, sees everyone alive.
    async fn all_agree(
        &self,
        except: Option<usize>,
        check: impl Fn(&[stemma_client::MemberRow]) -> bool,
    ) -> anyhow::Result<bool> {
        for (i, client) in self.clients.iter().enumerate() {
            if Some(i) == except {
                continue;
            }
            if !check(&client.members().await?) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Polls until `all_agree` holds; returns the time it took.
    async fn until(
        &self,
        what: &str,
        limit: Duration,
        except: Option<usize>,
        check: impl Fn(&[stemma_client::MemberRow]) -> bool,
    ) -> anyhow::Result<Duration> {
        let start = Instant::now();
        loop {
            if self.all_agree(except, &check).await? {
                return Ok(start.elapsed());
            }
            anyhow::ensure!(start.elapsed() < limit, "{what}: not within {limit:?}");
            tokio::time::sleep(POLL).await;
        }
    }

    /// Sum over nodes of a counter.
    fn counter(&self, name: &str) -> anyhow::Result<f64> {
        self.nodes.iter().map(|n| n.metric(name)).sum()
    }
}

async fn cluster_figures(n: usize, kills: usize, quiet: Duration) -> anyhow::Result<()> {
    println!("\n== {n} nodes");
    let (mut cluster, starting) = Cluster::start(n)?;
    let ready = Instant::now();
    cluster.connect().await?;
    let all_alive = |rows: &[stemma_client::MemberRow]| {
        rows.len() == n && rows.iter().all(|m| m.state == MemberState::Alive)
    };
    cluster
        .until("convergence", Duration::from_secs(120), None, all_alive)
        .await?;
    let converged = ready.elapsed();
    println!(
        "convergence: {:.2} s after the last node was ready ({:.2} s to start {} nodes in parallel)",
        converged.as_secs_f64(),
        starting.as_secs_f64(),
        n - 1
    );
    let round = Instant::now();
    cluster.all_agree(None, all_alive).await?;
    println!(
        "one poll round over {n} nodes: {:.1} ms",
        round.elapsed().as_secs_f64() * 1e3
    );

    let counters = [
        "stemma_membership_messages_sent_total",
        "stemma_membership_sent_bytes_total",
        "stemma_membership_suspicions_raised_total",
    ];
    let before: Vec<f64> = counters
        .iter()
        .map(|c| cluster.counter(c))
        .collect::<anyhow::Result<_>>()?;
    let load_before = load_average();
    tokio::time::sleep(quiet).await;
    let after: Vec<f64> = counters
        .iter()
        .map(|c| cluster.counter(c))
        .collect::<anyhow::Result<_>>()?;
    let secs = quiet.as_secs_f64();
    let per_node_s = |i: usize| (after[i] - before[i]) / n as f64 / secs;
    let suspicions = after[2] - before[2];
    println!(
        "quiet {secs:.0} s (load average {load_before} → {}): {:.2} messages and {:.0} bytes sent per node per second; \
         {suspicions} false suspicions = {:.1} per hour in the cluster, {:.2} per node-hour",
        load_average(),
        per_node_s(0),
        per_node_s(1),
        suspicions * 3600.0 / secs,
        suspicions * 3600.0 / secs / n as f64
    );
    cluster
        .until("still converged", Duration::from_secs(30), None, all_alive)
        .await?;

    let bound = MembershipConfig::lan(16).detection_bound();
    let mut detections = Vec::new();
    for k in 0..kills {
        let victim = 1 + k % (n - 1);
        let id = cluster.nodes[victim].info.node_id.clone();
        cluster.nodes[victim].kill();
        let took = cluster
            .until("detection", bound * 3, Some(victim), |rows| {
                rows.iter()
                    .any(|m| m.node_id == id && m.state == MemberState::Dead)
            })
            .await?;
        println!(
            "kill {}: all others see it dead after {:.2} s",
            k + 1,
            took.as_secs_f64()
        );
        detections.push(took);
        cluster.nodes[victim].restart()?;
        cluster.clients[victim] = cluster.nodes[victim].client().await?;
        cluster
            .until("rejoin", Duration::from_secs(60), None, all_alive)
            .await?;
    }
    if !detections.is_empty() {
        detections.sort();
        let mid = detections.len() / 2;
        let median = if detections.len() % 2 == 0 {
            (detections[mid - 1] + detections[mid]) / 2
        } else {
            detections[mid]
        };
        let max = detections[detections.len() - 1];
        println!(
            "detection over {} kills: median {:.2} s, max {:.2} s (bound {:.1} s)",
            detections.len(),
            median.as_secs_f64(),
            max.as_secs_f64(),
            bound.as_secs_f64()
        );
    }
    Ok(())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}
