//! The `stemma` command line: run a node, or talk to one.

mod dev;
mod lineage;
mod objects;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::Node;
use crate::config::{Durability, MembershipPreset, NodeConfig};

const ABOUT: &str =
    "Stemma: a peer-to-peer replicated store for edge sites, with a data-lineage graph.";

const EXAMPLES: &str = "\
Getting started:
  stemma dev                                  start a local node (data in ./stemma-dev)
  stemma put report.csv demo/2024/report.csv  store a file
  stemma get demo/2024/report.csv -o -        print it
  stemma ls demo/2024/                        list keys under a prefix
  stemma stat demo/2024/report.csv            show its size, id and chunks
  stemma rm demo/2024/report.csv              delete it
  stemma members                              who is in the cluster, and alive
  stemma lineage link table:raw.orders table:marts.revenue   record lineage
  stemma lineage down table:raw.orders        what is derived from it

Client commands find the node in --node, then STEMMA_NODE, then ./stemma-dev/node.json.
--node takes a connection string (stemma://…, from a node's node.json) or a node's data dir.

Exit codes: 0 ok, 1 other failure, 2 usage or invalid name, 3 not found, 4 unauthorized,
5 local file I/O, 6 node unreachable or connection lost, 7 corrupt data, 8 protocol or
version mismatch.";

/// Exit codes, one per kind of failure a script may want to tell apart.
pub mod exit {
    /// Anything else.
    pub const FAILURE: u8 = 1;
    /// Bad usage, invalid bucket or key, invalid config.
    pub const USAGE: u8 = 2;
    /// No such object.
    pub const NOT_FOUND: u8 = 3;
    /// The node refused the token.
    pub const UNAUTHORIZED: u8 = 4;
    /// Reading or writing a local file failed.
    pub const IO: u8 = 5;
    /// The node could not be reached, or the connection broke.
    pub const UNREACHABLE: u8 = 6;
    /// Data did not match its hash.
    pub const CORRUPT: u8 = 7;
    /// The node and this client do not understand each other.
    pub const PROTOCOL: u8 = 8;
}

#[derive(Debug, Parser)]
#[command(name = "stemma", version, about = ABOUT, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    output: Output,
    /// The node to talk to: a connection string (stemma://HOST:PORT?pin=…&token=…)
    /// or a node's data dir.
    #[arg(
        long,
        global = true,
        env = "STEMMA_NODE",
        hide_env_values = true,
        value_name = "CONN"
    )]
    node: Option<String>,
}

/// How results are shown.
#[derive(Debug, Clone, Copy, Args)]
pub struct Output {
    /// Print nothing but errors (no progress bars, no summaries).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Print results as JSON, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node (see `stemma node run --help`).
    #[command(subcommand)]
    Node(NodeCommand),
    /// Start a ready-to-use local node with its data in ./stemma-dev, print how to
    /// use it, and run until Ctrl-C.
    Dev(dev::DevArgs),
    /// Store a file (or standard input, `-`) as BUCKET/KEY.
    Put(objects::PutArgs),
    /// Fetch BUCKET/KEY into a file (`-o -` for standard output).
    Get(objects::GetArgs),
    /// List the keys of BUCKET, or those under BUCKET/PREFIX.
    Ls(objects::LsArgs),
    /// Show an object's size, id, chunks, content type and metadata.
    Stat(objects::PathArg),
    /// Delete BUCKET/KEY. Chunks no other object uses are freed.
    Rm(objects::PathArg),
    /// List the cluster's members as the node sees them: state, zone, addresses,
    /// incarnation, and when each was last heard from.
    Members,
    /// Show placement and repair as the node sees them: the layout (nodes,
    /// partitions, RF, W, how often it changed), partitions still being
    /// repaired or moved, and each node's replicas and stored bytes.
    Status,
    /// Edit and query the data-lineage graph (see `stemma lineage --help`).
    Lineage(lineage::LineageArgs),
}

#[derive(Debug, Subcommand)]
enum NodeCommand {
    /// Run a node in the foreground until SIGINT or SIGTERM.
    ///
    /// Settings come from --config (TOML), then STEMMA_* variables, then flags,
    /// each overriding the one before. When the node is ready it writes
    /// DATA_DIR/node.json with its id, addresses and connection string.
    Run(Box<RunArgs>),
}

/// `stemma node run` settings; each overrides the config file.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where the store, identity, certificate and token live [default: ./stemma-data]
    #[arg(long, env = "STEMMA_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// QUIC address for clients [default: 127.0.0.1:7400; use 0.0.0.0:7400 to serve
    /// other machines, port 0 for any free port]
    #[arg(long, env = "STEMMA_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// HTTP address for /health and /metrics [default: 127.0.0.1:7480]
    #[arg(long, env = "STEMMA_HTTP", value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// A TOML config file (see docs/ARCHITECTURE.md for its fields)
    #[arg(long, env = "STEMMA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Chunk size of new objects in bytes, 4096 ..= 1048576 [default: 1040384]
    #[arg(long, env = "STEMMA_CHUNK_SIZE", value_name = "BYTES")]
    chunk_size: Option<u64>,
    /// When a write is acknowledged: after fsync (immediate) or within ~1 s (relaxed)
    #[arg(long, env = "STEMMA_DURABILITY", value_enum)]
    durability: Option<DurabilityArg>,
    /// Peer-to-peer QUIC multiaddr [default: /ip4/127.0.0.1/udp/7401/quic-v1]
    #[arg(long, env = "STEMMA_P2P_LISTEN", value_name = "MULTIADDR")]
    p2p_listen: Option<String>,
    /// The IP:PORT other nodes dial to reach this one, if not the p2p listen
    /// address (behind NAT, or listening on 0.0.0.0)
    #[arg(long, env = "STEMMA_P2P_ADVERTISE", value_name = "IP:PORT")]
    p2p_advertise: Option<SocketAddr>,
    /// Join the cluster through this node (repeatable); take its address from its
    /// node.json `p2p_addrs`
    #[arg(long, value_name = "MULTIADDR")]
    join: Vec<String>,
    /// Do not look for other nodes on the local network (mDNS)
    #[arg(long)]
    no_mdns: bool,
    /// The site this node runs in; replicas are spread across zones [default: default]
    #[arg(long, env = "STEMMA_ZONE")]
    zone: Option<String>,
    /// Relative storage capacity, for placement [default: 1]
    #[arg(long, env = "STEMMA_CAPACITY")]
    capacity: Option<u64>,
    /// File holding the cluster secret (nodes join only clusters whose secret they
    /// hold). Also STEMMA_CLUSTER_SECRET. Without either, the node creates one in
    /// its data dir.
    #[arg(long, env = "STEMMA_CLUSTER_SECRET_FILE", value_name = "FILE")]
    cluster_secret_file: Option<PathBuf>,
    /// SWIM timing: lan (800 ms probes) or wan (5 s probes) [default: lan]
    #[arg(long, env = "STEMMA_MEMBERSHIP", value_enum)]
    membership: Option<MembershipArg>,
    /// The key OpenLineage clients must send as `Authorization: Bearer KEY` to
    /// POST /api/v1/lineage [default: none, any client may]
    #[arg(
        long,
        env = "STEMMA_OPENLINEAGE_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    openlineage_api_key: Option<String>,
    /// Testing only: serve POST /debug/faults on the HTTP endpoint, which cuts
    /// this node off from named peers (to test partitions) or makes it refuse
    /// name writes (to test failed puts), and
    /// POST /debug/corrupt-chunk, which damages a stored chunk
    #[arg(long)]
    fault_injection: bool,
    /// Copies of every chunk, manifest and name, on distinct nodes and zones
    /// [default: 3]
    #[arg(long, env = "STEMMA_REPLICATION_FACTOR", value_name = "RF")]
    replication_factor: Option<u8>,
    /// Durable copies before a put is acknowledged, at most RF [default: 2]
    #[arg(long, env = "STEMMA_WRITE_QUORUM", value_name = "W")]
    write_quorum: Option<u8>,
    /// Partitions of the key space, a power of two; the same on every node of a
    /// cluster [default: 256]
    #[arg(long, env = "STEMMA_PARTITIONS", value_name = "N")]
    partitions: Option<u32>,
    /// Seconds between anti-entropy rounds, which copy replicated data to owners
    /// that lack it (after a node is lost, joins or comes back); a round also
    /// starts soon after each layout change [default: 30]
    #[arg(long, env = "STEMMA_ANTI_ENTROPY_SECONDS", value_name = "SECS")]
    anti_entropy_seconds: Option<u64>,
    /// How fast the scrubber re-hashes held chunks, in bytes per second; a
    /// corrupt copy is replaced from a replica. 0 turns it off [default:
    /// 8388608, 8 MiB/s]
    #[arg(long, env = "STEMMA_SCRUB_BYTES_PER_SECOND", value_name = "BYTES")]
    scrub_bytes_per_second: Option<u64>,
    /// Seconds a replicated chunk or manifest stays once no object references
    /// it (deleted or overwritten) before it is dropped; longer than any upload
    /// or replication delay [default: 3600]
    #[arg(long, env = "STEMMA_GC_GRACE_SECONDS", value_name = "SECS")]
    gc_grace_seconds: Option<u64>,
    /// Seconds a deleted name's tombstone is kept; a node cut off for longer
    /// must be wiped before it rejoins, or it may bring deleted names back
    /// [default: 864000, 10 days]
    #[arg(long, env = "STEMMA_TOMBSTONE_GRACE_SECONDS", value_name = "SECS")]
    tombstone_grace_seconds: Option<u64>,
    /// Operations written to a lineage graph after which it moves to a new
    /// epoch: a fresh document of the live state replaces the history, on
    /// every node, once every member is alive and in sync. 0 = never
    /// [default: 1000000]
    #[arg(long, env = "STEMMA_LINEAGE_EPOCH_OPS", value_name = "OPS")]
    lineage_epoch_ops: Option<u64>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum MembershipArg {
    Lan,
    Wan,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DurabilityArg {
    Immediate,
    Relaxed,
}

impl RunArgs {
    fn config(&self) -> anyhow::Result<NodeConfig> {
        let mut config = match &self.config {
            Some(path) => NodeConfig::from_file(path)?,
            None => NodeConfig::default(),
        };
        if let Some(v) = &self.data_dir {
            config.data_dir = v.clone();
        }
        if let Some(v) = self.listen {
            config.listen = v;
        }
        if let Some(v) = self.http {
            config.http = v;
        }
        if let Some(v) = self.chunk_size {
            config.chunk_size = v;
        }
        if let Some(v) = self.durability {
            config.durability = match v {
                DurabilityArg::Immediate => Durability::Immediate,
                DurabilityArg::Relaxed => Durability::Relaxed,
            };
        }
        if let Some(v) = &self.p2p_listen {
            config.p2p_listen = v.clone();
        }
        if let Some(v) = self.p2p_advertise {
            config.p2p_advertise = Some(v);
        }
        config.join.extend(self.join.iter().cloned());
        if self.no_mdns {
            config.mdns = false;
        }
        if self.fault_injection {
            config.fault_injection = true;
        }
        if let Some(key) = &self.openlineage_api_key {
            config.openlineage_api_key = Some(key.clone());
        }
        if let Some(v) = &self.zone {
            config.zone = v.clone();
        }
        if let Some(v) = self.capacity {
            config.capacity = v;
        }
        if let Some(v) = self.replication_factor {
            config.replication_factor = v;
        }
        if let Some(v) = self.write_quorum {
            config.write_quorum = v;
        }
        if let Some(v) = self.anti_entropy_seconds {
            config.anti_entropy_seconds = v;
        }
        if let Some(v) = self.gc_grace_seconds {
            config.gc_grace_seconds = v;
        }
        if let Some(v) = self.tombstone_grace_seconds {
            config.tombstone_grace_seconds = v;
        }
        if let Some(v) = self.lineage_epoch_ops {
            config.lineage_epoch_ops = v;
        }
        if let Some(v) = self.scrub_bytes_per_second {
            config.scrub_bytes_per_second = v;
        }
        if let Some(v) = self.partitions {
            config.partitions = v;
        }
        if let Ok(secret) = std::env::var("STEMMA_CLUSTER_SECRET") {
            config.cluster_secret = Some(secret);
        }
        if let Some(v) = &self.cluster_secret_file {
            config.cluster_secret_file = Some(v.clone());
            config.cluster_secret = None;
        }
        if let Some(v) = self.membership {
            config.membership = match v {
                MembershipArg::Lan => MembershipPreset::Lan,
                MembershipArg::Wan => MembershipPreset::Wan,
            };
        }
        config.validate()?;
        Ok(config)
    }
}

/// Runs the `stemma` command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let serves = matches!(cli.command, Command::Node(_) | Command::Dev(_));
    init_logging(if serves { "info" } else { "warn" });
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let code = runtime.block_on(async move {
        match cli.command {
            Command::Node(NodeCommand::Run(args)) => run_node(&args).await,
            Command::Dev(args) => dev::run(&args, cli.output).await,
            Command::Put(args) => objects::put(cli.node, cli.output, args).await,
            Command::Get(args) => objects::get(cli.node, cli.output, args).await,
            Command::Ls(args) => objects::ls(cli.node, cli.output, args).await,
            Command::Stat(args) => objects::stat(cli.node, cli.output, args).await,
            Command::Rm(args) => objects::rm(cli.node, cli.output, args).await,
            Command::Members => objects::members(cli.node, cli.output).await,
            Command::Status => objects::status(cli.node, cli.output).await,
            Command::Lineage(args) => lineage::run(cli.node, cli.output, args).await,
        }
    });
    // Don't wait for blocking reads of stdin that will never finish.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    ExitCode::from(code)
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STEMMA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

async fn run_node(args: &RunArgs) -> u8 {
    let config = match args.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::USAGE;
        }
    };
    let node = match Node::start(config).await {
        Ok(node) => node,
        Err(e) => {
            eprintln!("error: the node could not start: {e:#}");
            return exit::FAILURE;
        }
    };
    wait_for_signal().await;
    node.shutdown().await;
    0
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub(crate) async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
