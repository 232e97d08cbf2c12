//! Client throughput of a single Stemma node, next to the two things it is built
//! on: raw QUIC (quinn, same TLS and transport settings) and raw redb (same
//! durability). All figures come from one run on one machine so that the ratios
//! between them mean something; every figure is the median of several runs.
//!
//! ```text
//! cargo bench -p stemma-node --bench throughput             # everything
//! cargo bench -p stemma-node --bench throughput -- quinn    # only some sections
//! ```
//!
//! Sections: `reference` (PRNG and BLAKE3 speed), `stemma` (1 GiB put/get),
//! `flush` (an experiment: the 1 GiB put with the store file flushed in the
//! background), `small` (10,000 × 4 KiB), `quinn`, `redb`. `STEMMA_BENCH_RUNS` sets the number
//! of runs (default 5). Temporary data dirs go to `$TMPDIR` (default `/tmp`).
//!
//! Before each run it waits (up to 90 s) for other processes to leave the CPU
//! alone, and every run line reports the CPU other processes used during it.
//! It only prints: there are no timing assertions.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use stemma_client::{Client, ObjectPath, PutOptions};
use stemma_node::{Node, NodeConfig};
use tokio::io::{AsyncRead, ReadBuf};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// The big object: large enough that per-request costs vanish and the steady
/// state (network, hashing, disk) dominates.
const BIG_OBJECT: u64 = GIB;
/// The small-object workload: many objects, so per-request and per-commit costs
/// dominate.
const SMALL_OBJECTS: usize = 10_000;
const SMALL_SIZE: usize = 4096;
/// Concurrent requests in the small-object workload, all on one shared connection.
const SMALL_CONCURRENCY: usize = 32;
/// Write size of the raw QUIC baseline (the client's upload piece is 1 MiB too).
const QUIC_WRITE: usize = 1 << 20;
/// Stemma's default chunk size (`ChunkSize::DEFAULT`): 1 MiB − 8 KiB.
const DEFAULT_CHUNK: usize = 1_040_384;
/// A power-of-two chunk size, to show what the default avoids.
const POW2_CHUNK: usize = 1 << 20;
/// Values per durable commit in the batched redb baseline (the node's writer folds
/// at most 64 requests into one transaction).
const REDB_BATCH: usize = 64;
/// How often the flush experiment's helper calls `fdatasync`.
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Before each run, wait until the rest of the machine has used less than
/// [`QUIET_CORES`] over [`QUIET_WINDOW`], for at most [`QUIET_MAX_WAIT`]: on a
/// shared 2-core machine a concurrent build halves every figure.
const QUIET_WINDOW: Duration = Duration::from_secs(1);
const QUIET_CORES: f64 = 0.15;
const QUIET_MAX_WAIT: Duration = Duration::from_secs(90);
/// Assumed USER_HZ for `/proc/*/stat` CPU times (100 on every mainstream Linux).
const CLOCK_TICKS: f64 = 100.0;

/// The table of the redb baseline: the same shape as the node's chunk table.
const CHUNKS: TableDefinition<'_, &[u8; 32], &[u8]> = TableDefinition::new("chunks");

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; anything else names sections to run.
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let runs: usize = std::env::var("STEMMA_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let on =
        |section: &str| wanted.is_empty() || wanted.iter().any(|w| section.contains(w.as_str()));

    println!("Stemma throughput benchmark: {runs} runs per figure, medians reported");
    println!(
        "machine: {} cores, tokio multi-thread runtime with {} workers; MB = 10^6 bytes",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        tokio::runtime::Handle::current().metrics().num_workers(),
    );
    println!("temporary data under {}", std::env::temp_dir().display());

    let mut summary = Summary::default();
    if on("reference") {
        reference_speeds(runs, &mut summary).await?;
    }
    if on("stemma") {
        stemma_big_object(runs, &mut summary).await?;
    }
    if on("flush") {
        put_with_background_flush(runs, &mut summary).await?;
    }
    if on("small") {
        stemma_small_objects(runs, &mut summary).await?;
    }
    if on("quinn") {
        quinn_baseline(runs, &mut summary).await?;
    }
    if on("redb") {
        redb_baseline(runs, &mut summary).await?;
    }
    summary.print();
    Ok(())
}

// ---------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------

/// The speed of the two CPU-bound steps every byte goes through, on one core:
/// generating the input (to show the PRNG is never the bottleneck) and BLAKE3
/// (the node hashes every chunk on put; on get the node and the client each hash
/// every chunk once more).
async fn reference_speeds(runs: usize, summary: &mut Summary) -> anyhow::Result<()> {
    section("Reference: single-core PRNG and BLAKE3 over 1 GiB in 1 MiB pieces");
    let mut prng_rates = Vec::new();
    let mut hash_rates = Vec::new();
    for run in 0..runs {
        wait_for_quiet().await;
        let (prng, hash) = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; MIB as usize];
            let mut rng = Prng::new(run as u64);
            let start = Instant::now();
            for _ in 0..GIB / MIB {
                rng.fill(&mut buf);
                std::hint::black_box(&buf);
            }
            let prng = start.elapsed();
            let start = Instant::now();
            for i in 0..GIB / MIB {
                buf[..8].copy_from_slice(&i.to_le_bytes());
                std::hint::black_box(blake3::hash(&buf));
            }
            (prng, start.elapsed())
        })
        .await?;
        prng_rates.push(mb_per_s(GIB, prng));
        hash_rates.push(mb_per_s(GIB, hash));
        println!(
            "  run {run}: PRNG {:>8.0} MB/s   BLAKE3 {:>8.0} MB/s",
            mb_per_s(GIB, prng),
            mb_per_s(GIB, hash)
        );
    }
    summary.prng = Some(median(&prng_rates));
    summary.blake3 = Some(median(&hash_rates));
    println!(
        "  median: PRNG {:.0} MB/s, BLAKE3 {:.0} MB/s",
        median(&prng_rates),
        median(&hash_rates)
    );
    Ok(())
}

/// One 1 GiB object through the real client and a real in-process node (default
/// config: durability Immediate, default chunk size). Each run uses a fresh data
/// dir and a different seed, so deduplication never makes a run free. The get
/// reads the object just stored (so from the page cache) into a sink.
///
/// Besides wall time it records where the time goes without a profiler: when the
/// client handed the last byte to QUIC (the rest is the node draining its chunk
/// queue and the durable commit), time to the first byte of a get, and the CPU
/// time of the whole process and of the store's writer thread (a ratio of process
/// CPU to wall time near the core count means the path is CPU-bound).
async fn stemma_big_object(runs: usize, summary: &mut Summary) -> anyhow::Result<()> {
    section("Stemma: put and get of one 1 GiB object (in-process node, durability Immediate)");
    let mut puts = Vec::new();
    let mut gets = Vec::new();
    for run in 0..runs {
        wait_for_quiet().await;
        let node = TestNode::start().await?;
        let put = put_big(&node.client, 0xb16_0000 + run as u64).await?;
        println!("  run {run}: put {}", put.describe_put());
        let get = get_big(&node.client).await?;
        println!("  run {run}: get {}", get.describe_get());
        puts.push(put);
        gets.push(get);
        node.stop().await;
    }
    let put = median_by_total(&puts);
    let get = median_by_total(&gets);
    summary.put = Some(mb_per_s(BIG_OBJECT, put.total));
    summary.get = Some(mb_per_s(BIG_OBJECT, get.total));
    summary.put_detail = Some(put.clone());
    summary.get_detail = Some(get.clone());
    println!(
        "  median: put {:.1} MB/s, get {:.1} MB/s",
        mb_per_s(BIG_OBJECT, put.total),
        mb_per_s(BIG_OBJECT, get.total)
    );
    Ok(())
}

/// An experiment, not a Stemma figure: the same 1 GiB put while a helper thread
/// calls `fdatasync` on the store file (through its own file handle) every
/// [`FLUSH_INTERVAL`]. The node commits chunk batches with `Durability::None` and
/// makes only the final commit durable, so on a machine with plenty of RAM the
/// whole upload sits dirty in the page cache until that final fsync, which then
/// writes it all while nothing else happens. Flushing as the upload goes overlaps
/// the disk writes with receiving and hashing. The difference between this and
/// the plain put is what the node's writer would gain by doing the same.
async fn put_with_background_flush(runs: usize, summary: &mut Summary) -> anyhow::Result<()> {
    section(&format!(
        "Experiment: 1 GiB put while a helper fdatasyncs the store file every {} ms",
        FLUSH_INTERVAL.as_millis()
    ));
    let mut puts = Vec::new();
    for run in 0..runs {
        wait_for_quiet().await;
        let node = TestNode::start().await?;
        let store_file = node
            .node
            .info()
            .data_dir
            .join(stemma_node::store::STORE_FILE);
        let stop = Arc::new(AtomicBool::new(false));
        let flusher = {
            let stop = stop.clone();
            tokio::task::spawn_blocking(move || -> io::Result<u32> {
                let file = std::fs::File::open(&store_file)?;
                let mut syncs = 0;
                while !stop.load(Ordering::Relaxed) {
                    file.sync_data()?;
                    syncs += 1;
                    std::thread::sleep(FLUSH_INTERVAL);
                }
                Ok(syncs)
            })
        };
        let put = put_big(&node.client, 0xf105_0000 + run as u64).await;
        stop.store(true, Ordering::Relaxed);
        let syncs = flusher.await??;
        let put = put?;
        println!(
            "  run {run}: put {} ({syncs} helper fdatasyncs)",
            put.describe_put()
        );
        puts.push(put);
        node.stop().await;
    }
    let put = median_by_total(&puts);
    summary.put_flushing = Some(mb_per_s(BIG_OBJECT, put.total));
    println!("  median: put {:.1} MB/s", mb_per_s(BIG_OBJECT, put.total));
    Ok(())
}

/// Puts [`BIG_OBJECT`] pseudo-random bytes (from `seed`) at `bench/big.bin`.
async fn put_big(client: &Client, seed: u64) -> anyhow::Result<Phased> {
    let path = ObjectPath::parse("bench/big.bin")?;
    let cpu = CpuSnapshot::take();
    let mut sent_at = None;
    let start = Instant::now();
    let options = PutOptions {
        size: Some(BIG_OBJECT),
        ..Default::default()
    };
    let reader = RandomReader::new(seed, BIG_OBJECT);
    let stored = client
        .put(&path, reader, options, |sent| {
            if sent == BIG_OBJECT {
                sent_at = Some(start.elapsed());
            }
        })
        .await?;
    let total = start.elapsed();
    let cpu = cpu.since();
    anyhow::ensure!(
        stored.info.size == BIG_OBJECT,
        "stored {} bytes",
        stored.info.size
    );
    anyhow::ensure!(
        stored.new_bytes == BIG_OBJECT,
        "dedup hit: {}",
        stored.new_bytes
    );
    Ok(Phased {
        total,
        first_phase: sent_at.unwrap_or(total),
        cpu,
        chunks: stored.info.chunks,
    })
}

/// Gets `bench/big.bin` into a sink (the client still verifies every chunk).
async fn get_big(client: &Client) -> anyhow::Result<Phased> {
    let path = ObjectPath::parse("bench/big.bin")?;
    let cpu = CpuSnapshot::take();
    let mut first_byte = None;
    let mut received = 0;
    let start = Instant::now();
    let info = client
        .get(&path, tokio::io::sink(), |n| {
            first_byte.get_or_insert_with(|| start.elapsed());
            received = n;
        })
        .await?;
    let total = start.elapsed();
    let cpu = cpu.since();
    anyhow::ensure!(
        info.size == BIG_OBJECT && received == BIG_OBJECT,
        "short get"
    );
    Ok(Phased {
        total,
        first_phase: first_byte.unwrap_or(total),
        cpu,
        chunks: info.chunks,
    })
}

/// 10,000 objects of 4 KiB, put then got by 32 concurrent tasks sharing one
/// cloned client (one QUIC connection, one stream per request). Here the cost is
/// per request and per durable commit, not per byte: it shows how well the node's
/// writer folds concurrent commits into shared fsyncs. Fresh node per run.
async fn stemma_small_objects(runs: usize, summary: &mut Summary) -> anyhow::Result<()> {
    section(&format!(
        "Stemma: {SMALL_OBJECTS} objects of {SMALL_SIZE} bytes, {SMALL_CONCURRENCY} concurrent requests"
    ));
    let mut puts = Vec::new();
    let mut gets = Vec::new();
    for run in 0..runs {
        wait_for_quiet().await;
        let node = TestNode::start().await?;
        let seed = 0x5a11_u64 << 32 | (run as u64) << 24;

        let cpu = CpuSnapshot::take();
        let start = Instant::now();
        for_each_concurrently(&node.client, move |client, i| async move {
            let mut data = vec![0u8; SMALL_SIZE];
            Prng::new(seed | i as u64).fill(&mut data);
            let stored = client
                .put(
                    &small_path(i)?,
                    data.as_slice(),
                    PutOptions::default(),
                    |_| {},
                )
                .await?;
            anyhow::ensure!(stored.new_bytes == SMALL_SIZE as u64, "dedup hit");
            Ok(())
        })
        .await?;
        let put = start.elapsed();
        let put_cpu = cpu.since();

        let cpu = CpuSnapshot::take();
        let start = Instant::now();
        for_each_concurrently(&node.client, |client, i| async move {
            let mut back = Vec::with_capacity(SMALL_SIZE);
            client.get(&small_path(i)?, &mut back, |_| {}).await?;
            anyhow::ensure!(back.len() == SMALL_SIZE, "short get");
            Ok(())
        })
        .await?;
        let get = start.elapsed();
        let get_cpu = cpu.since();

        let objects_per_s = |d: Duration| SMALL_OBJECTS as f64 / d.as_secs_f64();
        let bytes = (SMALL_OBJECTS * SMALL_SIZE) as u64;
        println!(
            "  run {run}: put {:>6.0} objects/s ({:>4.1} MB/s, {:.2} s) {}",
            objects_per_s(put),
            mb_per_s(bytes, put),
            put.as_secs_f64(),
            put_cpu.describe(put),
        );
        println!(
            "         get {:>6.0} objects/s ({:>4.1} MB/s, {:.2} s) {}",
            objects_per_s(get),
            mb_per_s(bytes, get),
            get.as_secs_f64(),
            get_cpu.describe(get),
        );
        puts.push(objects_per_s(put));
        gets.push(objects_per_s(get));
        node.stop().await;
    }
    summary.small_put = Some(median(&puts));
    summary.small_get = Some(median(&gets));
    println!(
        "  median: put {:.0} objects/s, get {:.0} objects/s",
        median(&puts),
        median(&gets)
    );
    Ok(())
}

/// Raw quinn on loopback with Stemma's exact TLS and transport settings: one
/// bidirectional stream, the client writes 1 GiB in 1 MiB writes, the server
/// reads and discards, then acknowledges the byte count. This is the ceiling for
/// a put or get of one object over one stream on this machine (client and server
/// share the runtime's cores, as they do in the Stemma measurement).
async fn quinn_baseline(runs: usize, summary: &mut Summary) -> anyhow::Result<()> {
    section(
        "Baseline A: raw quinn, one stream, 1 GiB in 1 MiB writes (Stemma's TLS/QUIC settings)",
    );
    let mut rates = Vec::new();
    for run in 0..runs {
        wait_for_quiet().await;
        let cpu = CpuSnapshot::take();
        let elapsed = quinn_transfer(run as u64).await?;
        let used = cpu.since();
        rates.push(mb_per_s(GIB, elapsed));
        println!(
            "  run {run}: {:>7.1} MB/s  {:>6.2} s  {}",
            mb_per_s(GIB, elapsed),
            elapsed.as_secs_f64(),
            used.describe(elapsed)
        );
    }
    summary.quinn = Some(median(&rates));
    println!("  median: {:.1} MB/s", median(&rates));
    Ok(())
}

/// One raw QUIC transfer; returns the time from the first write to the server's
/// acknowledgement of the last byte.
async fn quinn_transfer(seed: u64) -> anyhow::Result<Duration> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    // Server: what `stemma_node`'s endpoint does with its identity.
    let certified = rcgen::generate_simple_self_signed(vec!["stemma".to_string()])?;
    let cert_der = certified.cert.der().to_vec();
    let key_der = certified.signing_key.serialize_der();
    let mut tls =
        rustls::ServerConfig::builder_with_provider(stemma_client::tls::crypto_provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der)),
            )?;
    tls.alpn_protocols = vec![b"stemma/1".to_vec()];
    let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(
        quinn::crypto::rustls::QuicServerConfig::try_from(tls)?,
    ));
    server_config.transport_config(stemma_client::transport::transport_config());
    let server = quinn::Endpoint::server(server_config, "127.0.0.1:0".parse()?)?;
    let server_addr = server.local_addr()?;

    let accept = server.clone();
    let sink = tokio::spawn(async move {
        let connection = accept.accept().await.context("no connection")?.await?;
        let (mut send, mut recv) = connection.accept_bi().await?;
        let mut received = 0u64;
        while let Some(chunk) = recv.read_chunk(usize::MAX, true).await? {
            received += chunk.bytes.len() as u64;
        }
        send.write_all(&received.to_le_bytes()).await?;
        send.finish()?;
        // Keep the connection until the client has read the acknowledgement.
        connection.closed().await;
        anyhow::Ok(received)
    });

    // Client: what `stemma_client::Client::connect` does.
    let pin = stemma_client::tls::certificate_pin(&cert_der);
    let tls = stemma_client::tls::client_config(pin, b"stemma/1")?;
    let mut client_config = quinn::ClientConfig::new(Arc::new(
        quinn::crypto::rustls::QuicClientConfig::try_from(tls)?,
    ));
    client_config.transport_config(stemma_client::transport::transport_config());
    let mut client = quinn::Endpoint::client("0.0.0.0:0".parse()?)?;
    client.set_default_client_config(client_config);
    let connection = client.connect(server_addr, "stemma")?.await?;

    let mut piece = vec![0u8; QUIC_WRITE];
    Prng::new(0x9c1c_u64 << 32 | seed).fill(&mut piece);
    let start = Instant::now();
    let (mut send, mut recv) = connection.open_bi().await?;
    for _ in 0..GIB / QUIC_WRITE as u64 {
        send.write_all(&piece).await?;
    }
    send.finish()?;
    let mut ack = [0u8; 8];
    recv.read_exact(&mut ack).await?;
    let elapsed = start.elapsed();
    anyhow::ensure!(
        u64::from_le_bytes(ack) == GIB,
        "server got {} bytes",
        u64::from_le_bytes(ack)
    );

    connection.close(0u32.into(), b"done");
    sink.await??;
    client.wait_idle().await;
    server.close(0u32.into(), b"done");
    server.wait_idle().await;
    Ok(elapsed)
}

/// Raw redb with the node's durability: 1 GiB as values keyed by their BLAKE3
/// hash in a fresh file, durable commits (`Durability::Immediate`) every 64
/// values and, separately, after every value. Only the redb calls are timed (not
/// generating or hashing the values). Done with Stemma's default chunk size
/// (1 MiB − 8 KiB) and with exactly 1 MiB, reporting the file size each leaves:
/// this is the evidence for the default (a 1 MiB value plus its page header does
/// not fit a 1 MiB page, so redb gives it a 2 MiB page run).
///
/// A last case mimics what the node's writer does for one big upload: chunk
/// batches committed with `Durability::None`, then one durable commit (the
/// manifest's) that looks up every chunk and has to flush everything at once;
/// that final commit is timed on its own. (With `Durability::None` redb keeps
/// committed pages in its own write buffer, up to half its cache, so much of the
/// data is not even handed to the kernel before that commit.)
async fn redb_baseline(runs: usize, summary: &mut Summary) -> anyhow::Result<()> {
    section("Baseline B: raw redb, 1 GiB of values keyed by BLAKE3, Durability::Immediate");
    println!("  (only redb calls are timed; 'read' = one read transaction over all values just");
    println!("   written, mostly from redb's own cache; CPU includes hashing the values)");
    let cases = [
        RedbCase::durable(DEFAULT_CHUNK, REDB_BATCH),
        RedbCase::durable(DEFAULT_CHUNK, 1),
        RedbCase::durable(POW2_CHUNK, REDB_BATCH),
        RedbCase::durable(POW2_CHUNK, 1),
        RedbCase {
            value_len: DEFAULT_CHUNK,
            per_commit: REDB_BATCH,
            durable_each: false,
        },
    ];
    for case in cases {
        let mut writes = Vec::new();
        let mut reads = Vec::new();
        let mut last_commits = Vec::new();
        let mut last = None;
        for run in 0..runs {
            wait_for_quiet().await;
            let cpu = CpuSnapshot::take();
            let sample = tokio::task::spawn_blocking(move || redb_fill(case, run as u64)).await??;
            let used = cpu.since();
            println!(
                "  {}, run {run}: write {:>6.1} MB/s (final commit {:.2} s, checks {:.2} s)  read {:>7.0} MB/s  file {:>5.0} MiB for {} values ({:.2}x the data; {:.0} MiB unused)  CPU {:.2} s, other processes {:.2} s",
                case.label(),
                mb_per_s(sample.bytes, sample.write),
                sample.last_commit.as_secs_f64(),
                sample.checks.as_secs_f64(),
                mb_per_s(sample.bytes, sample.read),
                sample.file_len as f64 / MIB as f64,
                sample.values,
                sample.file_len as f64 / sample.bytes as f64,
                sample.fragmented as f64 / MIB as f64,
                used.process,
                used.others.max(0.0),
            );
            writes.push(mb_per_s(sample.bytes, sample.write));
            reads.push(mb_per_s(sample.bytes, sample.read));
            last_commits.push(sample.last_commit.as_secs_f64());
            last = Some(sample);
        }
        let last = last.expect("at least one run");
        summary.redb.push(RedbRow {
            case,
            write: median(&writes),
            read: median(&reads),
            last_commit: median(&last_commits),
            file_len: last.file_len,
            fragmented: last.fragmented,
            values: last.values,
        });
    }
    Ok(())
}

/// One configuration of the redb baseline.
#[derive(Debug, Clone, Copy)]
struct RedbCase {
    value_len: usize,
    per_commit: usize,
    /// Every commit `Immediate`; otherwise `None` except the last (the node's
    /// pattern for one big upload).
    durable_each: bool,
}

impl RedbCase {
    fn durable(value_len: usize, per_commit: usize) -> Self {
        Self {
            value_len,
            per_commit,
            durable_each: true,
        }
    }

    fn label(&self) -> String {
        let commits = if self.durable_each {
            format!("{} per durable commit", self.per_commit)
        } else {
            format!(
                "{} per non-durable commit, then a durable commit checking every value (the node's pattern)",
                self.per_commit
            )
        };
        format!("{:>7} B values, {commits}", self.value_len)
    }
}

/// What one redb run measured.
#[derive(Debug)]
struct RedbSample {
    bytes: u64,
    values: u64,
    write: Duration,
    /// The last commit alone (included in `write`).
    last_commit: Duration,
    /// In the node's pattern, the existence checks inside the last commit.
    checks: Duration,
    read: Duration,
    file_len: u64,
    /// Bytes of the table's pages that hold no data (redb's own count).
    fragmented: u64,
}

/// Writes at least 1 GiB into a fresh redb file, then reads it all back once.
fn redb_fill(case: RedbCase, seed: u64) -> anyhow::Result<RedbSample> {
    let dir = tempdir()?;
    let file = dir.path().join("bench.redb");
    let db = Database::create(&file)?;
    let values = GIB.div_ceil(case.value_len as u64);
    let mut value = vec![0u8; case.value_len];
    Prng::new(0x4edb_u64 << 32 | seed).fill(&mut value);
    let mut keys = Vec::with_capacity(values as usize);
    let mut write = Duration::ZERO;
    let mut last_commit = Duration::ZERO;
    let mut written = 0u64;
    while written < values {
        let batch = (case.per_commit as u64).min(values - written);
        let t = Instant::now();
        let mut txn = db.begin_write()?;
        txn.set_durability(if case.durable_each {
            redb::Durability::Immediate
        } else {
            redb::Durability::None
        })?;
        let mut table = txn.open_table(CHUNKS)?;
        write += t.elapsed();
        for i in written..written + batch {
            // Distinct values (so distinct keys) without regenerating 1 MiB each.
            value[..8].copy_from_slice(&i.to_le_bytes());
            let key = *blake3::hash(&value).as_bytes();
            keys.push(key);
            let t = Instant::now();
            table.insert(&key, value.as_slice())?;
            write += t.elapsed();
        }
        let t = Instant::now();
        drop(table);
        txn.commit()?;
        last_commit = t.elapsed();
        write += last_commit;
        written += batch;
    }
    let mut checks = Duration::ZERO;
    if !case.durable_each {
        // The node's final commit: one durable transaction that checks every
        // chunk of the manifest is present (`Tables::commit`), then commits.
        let t = Instant::now();
        let mut txn = db.begin_write()?;
        txn.set_durability(redb::Durability::Immediate)?;
        let table = txn.open_table(CHUNKS)?;
        for key in &keys {
            anyhow::ensure!(table.get(key)?.is_some(), "value missing");
        }
        checks = t.elapsed();
        drop(table);
        txn.commit()?;
        last_commit = t.elapsed();
        write += last_commit;
    }

    let t = Instant::now();
    let txn = db.begin_read()?;
    let table = txn.open_table(CHUNKS)?;
    anyhow::ensure!(table.len()? == values, "redb holds {} values", table.len()?);
    let mut read_bytes = 0u64;
    for key in &keys {
        let v = table.get(key)?.context("value missing")?;
        read_bytes += std::hint::black_box(v.value()).len() as u64;
    }
    let read = t.elapsed();
    anyhow::ensure!(read_bytes == values * case.value_len as u64, "short read");
    let fragmented = table.stats()?.fragmented_bytes();
    drop(table);
    drop(txn);
    drop(db);
    let file_len = std::fs::metadata(&file)?.len();
    Ok(RedbSample {
        bytes: values * case.value_len as u64,
        values,
        write,
        last_commit,
        checks,
        read,
        file_len,
        fragmented,
    })
}

// ---------------------------------------------------------------------------
// Helpers: node, data, concurrency, CPU accounting
// ---------------------------------------------------------------------------

/// A node started in-process on a fresh temporary data dir, and a client of it.
struct TestNode {
    node: Node,
    client: Client,
    _dir: tempfile::TempDir,
}

impl TestNode {
    async fn start() -> anyhow::Result<Self> {
        let dir = tempdir()?;
        let node = Node::start(NodeConfig {
            data_dir: dir.path().to_path_buf(),
            listen: "127.0.0.1:0".parse()?,
            http: "127.0.0.1:0".parse()?,
            // A cluster of one: a free p2p port and no mDNS, so that the node
            // neither collides with nor discovers other nodes on this machine.
            p2p_listen: "/ip4/127.0.0.1/udp/0/quic-v1".into(),
            mdns: false,
            ..Default::default()
        })
        .await?;
        let client = Client::connect(&node.info().connection).await?;
        Ok(Self {
            node,
            client,
            _dir: dir,
        })
    }

    /// Closes the client, stops the node, then removes its data dir.
    async fn stop(self) {
        self.client.close().await;
        self.node.shutdown().await;
    }
}

fn tempdir() -> io::Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix("stemma-bench-").tempdir()
}

fn small_path(i: usize) -> anyhow::Result<ObjectPath> {
    Ok(ObjectPath::parse(&format!("bench/small/{i:05}"))?)
}

/// Runs `op(client, i)` for every i in `0..SMALL_OBJECTS` on `SMALL_CONCURRENCY`
/// tasks, each with a clone of `client`, taking indices from a shared counter.
async fn for_each_concurrently<F, Fut>(client: &Client, op: F) -> anyhow::Result<()>
where
    F: Fn(Client, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..SMALL_CONCURRENCY {
        let (client, next, op) = (client.clone(), next.clone(), op.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= SMALL_OBJECTS {
                    return anyhow::Ok(());
                }
                op(client.clone(), i).await?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// wyrand: a tiny, fast (about 1 ns per 8 bytes), deterministic generator. The
/// data only has to be incompressible and distinct per seed.
#[derive(Debug, Clone)]
struct Prng(u64);

impl Prng {
    fn new(seed: u64) -> Self {
        Self(seed ^ 0x2d35_8dcc_aa6c_78a5)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        (t >> 64) as u64 ^ t as u64
    }

    fn fill(&mut self, buf: &mut [u8]) {
        let mut words = buf.chunks_exact_mut(8);
        for word in &mut words {
            word.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = words.into_remainder();
        if !rest.is_empty() {
            let last = self.next_u64().to_le_bytes();
            rest.copy_from_slice(&last[..rest.len()]);
        }
    }
}

/// An `AsyncRead` of `len` pseudo-random bytes, generated as they are read: the
/// object is never in memory whole.
#[derive(Debug)]
struct RandomReader {
    prng: Prng,
    remaining: u64,
}

impl RandomReader {
    fn new(seed: u64, len: u64) -> Self {
        Self {
            prng: Prng::new(seed),
            remaining: len,
        }
    }
}

impl AsyncRead for RandomReader {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = (buf.remaining() as u64).min(this.remaining) as usize;
        // The client reads into an initialised buffer, so this does not zero it.
        this.prng.fill(buf.initialize_unfilled_to(n));
        buf.advance(n);
        this.remaining -= n as u64;
        Poll::Ready(Ok(()))
    }
}

/// CPU seconds used so far by each thread of this process, by thread id.
#[derive(Debug)]
struct CpuSnapshot {
    threads: HashMap<u32, (String, f64)>,
    process: f64,
    /// Busy CPU seconds of the whole machine (all processes).
    machine: f64,
}

/// CPU used between a snapshot and now.
#[derive(Debug, Clone, Copy, Default)]
struct CpuUse {
    /// The whole process (every thread, including those that ended).
    process: f64,
    /// The store's writer thread (redb inserts and commits).
    writer: f64,
    /// Other processes on the machine: anything well above zero means the
    /// measurement shared the cores and is pessimistic.
    others: f64,
}

impl CpuUse {
    fn describe(&self, wall: Duration) -> String {
        format!(
            "[CPU {:.2} s = {:.2} cores; writer thread {:.2} s; other processes {:.2} s]",
            self.process,
            self.process / wall.as_secs_f64(),
            self.writer,
            self.others.max(0.0),
        )
    }
}

impl CpuSnapshot {
    fn take() -> Self {
        let mut threads = HashMap::new();
        if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
            for entry in dir.flatten() {
                let Ok(tid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                    continue;
                };
                if let Some(t) = proc_stat_cpu(&entry.path().join("stat")) {
                    threads.insert(tid, t);
                }
            }
        }
        let process = proc_stat_cpu("/proc/self/stat".as_ref()).map_or(0.0, |(_, s)| s);
        Self {
            threads,
            process,
            machine: machine_busy().unwrap_or(0.0),
        }
    }

    fn since(&self) -> CpuUse {
        let now = Self::take();
        let writer = now
            .threads
            .iter()
            .filter(|(_, (name, _))| name == "stemma-writer")
            .map(|(tid, (_, secs))| secs - self.threads.get(tid).map_or(0.0, |(_, s)| *s))
            .sum();
        let process = now.process - self.process;
        CpuUse {
            process,
            writer,
            others: (now.machine - self.machine) - process,
        }
    }
}

/// Busy CPU seconds of all cores since boot, from `/proc/stat` (every state but
/// idle and iowait).
fn machine_busy() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<f64> = line
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time
    // is already counted in user and nice.
    let busy: f64 = ticks.iter().take(8).sum::<f64>() - ticks.get(3)? - ticks.get(4)?;
    Some(busy / CLOCK_TICKS)
}

/// (thread name, user + system CPU seconds) from a `/proc/.../stat` file.
fn proc_stat_cpu(path: &std::path::Path) -> Option<(String, f64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let (head, rest) = text.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_string();
    // Fields after the name start at field 3 (state); utime and stime are 14 and 15.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((name, (utime + stime) / CLOCK_TICKS))
}

/// Waits until other processes leave the cores alone (see [`QUIET_CORES`]).
/// Each run line still reports how much CPU other processes used during it.
async fn wait_for_quiet() {
    let deadline = Instant::now() + QUIET_MAX_WAIT;
    loop {
        let cpu = CpuSnapshot::take();
        tokio::time::sleep(QUIET_WINDOW).await;
        let others = cpu.since().others / QUIET_WINDOW.as_secs_f64();
        if others < QUIET_CORES {
            return;
        }
        if Instant::now() >= deadline {
            println!(
                "  (other processes still use {others:.1} cores after {} s: measuring anyway)",
                QUIET_MAX_WAIT.as_secs()
            );
            return;
        }
    }
}

// ---------------------------------------------------------------------------
// Statistics and reporting
// ---------------------------------------------------------------------------

/// A timed operation split in two: `first_phase` is the last byte sent (put) or
/// the first byte received (get).
#[derive(Debug, Clone)]
struct Phased {
    total: Duration,
    first_phase: Duration,
    cpu: CpuUse,
    chunks: u64,
}

impl Phased {
    fn describe_put(&self) -> String {
        format!(
            "{:>6.1} MB/s  {:>5.2} s (last byte sent at {:.2} s, reply {:.2} s later; {} chunks)  {}",
            mb_per_s(BIG_OBJECT, self.total),
            self.total.as_secs_f64(),
            self.first_phase.as_secs_f64(),
            (self.total - self.first_phase).as_secs_f64(),
            self.chunks,
            self.cpu.describe(self.total),
        )
    }

    fn describe_get(&self) -> String {
        format!(
            "{:>6.1} MB/s  {:>5.2} s (first chunk after {:.1} ms)  {}",
            mb_per_s(BIG_OBJECT, self.total),
            self.total.as_secs_f64(),
            self.first_phase.as_secs_f64() * 1e3,
            self.cpu.describe(self.total),
        )
    }
}

/// The redb baseline's medians for one configuration.
#[derive(Debug)]
struct RedbRow {
    case: RedbCase,
    write: f64,
    read: f64,
    last_commit: f64,
    file_len: u64,
    fragmented: u64,
    values: u64,
}

/// Every median, for the final table.
#[derive(Debug, Default)]
struct Summary {
    prng: Option<f64>,
    blake3: Option<f64>,
    put: Option<f64>,
    get: Option<f64>,
    put_detail: Option<Phased>,
    /// The flush experiment's put.
    put_flushing: Option<f64>,
    get_detail: Option<Phased>,
    small_put: Option<f64>,
    small_get: Option<f64>,
    quinn: Option<f64>,
    redb: Vec<RedbRow>,
}

impl Summary {
    /// The redb figure a put is compared with: the default chunk size, durable
    /// commits every 64 values.
    fn redb_reference(&self) -> Option<f64> {
        self.redb
            .iter()
            .find(|r| {
                r.case.value_len == DEFAULT_CHUNK
                    && r.case.per_commit == REDB_BATCH
                    && r.case.durable_each
            })
            .map(|r| r.write)
    }

    fn print(&self) {
        section("Summary (medians)");
        let show = |v: Option<f64>, unit: &str| match v {
            Some(v) => format!("{v:.1} {unit}"),
            None => "not run".to_string(),
        };
        let row = |name: &str, value: String| println!("  {name:<44} {value:>16}");
        row("Stemma put, 1 GiB object", show(self.put, "MB/s"));
        row("Stemma get, 1 GiB object", show(self.get, "MB/s"));
        row(
            "  experiment: put + background fdatasync",
            show(self.put_flushing, "MB/s"),
        );
        row(
            "Stemma put, 4 KiB objects (32 concurrent)",
            show(self.small_put, "obj/s"),
        );
        row(
            "Stemma get, 4 KiB objects (32 concurrent)",
            show(self.small_get, "obj/s"),
        );
        row(
            "  = put MB/s",
            show(self.small_put.map(|o| o * SMALL_SIZE as f64 / 1e6), "MB/s"),
        );
        row(
            "  = get MB/s",
            show(self.small_get.map(|o| o * SMALL_SIZE as f64 / 1e6), "MB/s"),
        );
        row("quinn raw, one stream", show(self.quinn, "MB/s"));
        row(
            "redb raw write, 1 MiB-8 KiB values, 64/commit",
            show(self.redb_reference(), "MB/s"),
        );
        row("PRNG (one core)", show(self.prng, "MB/s"));
        row("BLAKE3 (one core)", show(self.blake3, "MB/s"));

        if !self.redb.is_empty() {
            println!();
            println!(
                "  {:>8} {:>22} {:>10} {:>12} {:>9} {:>9} {:>6} {:>11} {:>10}",
                "value B",
                "commits",
                "write MB/s",
                "final commit",
                "read MB/s",
                "file MiB",
                "values",
                "file / data",
                "unused MiB"
            );
            for r in &self.redb {
                let data = r.values * r.case.value_len as u64;
                let commits = if r.case.durable_each {
                    format!("{} per durable", r.case.per_commit)
                } else {
                    format!("{} per none + durable", r.case.per_commit)
                };
                println!(
                    "  {:>8} {:>22} {:>10.1} {:>10.2} s {:>9.0} {:>9.0} {:>6} {:>11.2} {:>10.0}",
                    r.case.value_len,
                    commits,
                    r.write,
                    r.last_commit,
                    r.read,
                    r.file_len as f64 / MIB as f64,
                    r.values,
                    r.file_len as f64 / data as f64,
                    r.fragmented as f64 / MIB as f64
                );
            }
        }

        println!();
        let floor = match (self.quinn, self.redb_reference()) {
            (Some(q), Some(r)) => Some(q.min(r)),
            _ => None,
        };
        let ratio = |name: &str, num: Option<f64>, den: Option<f64>, goal: f64| {
            if let (Some(n), Some(d)) = (num, den) {
                let r = n / d;
                let verdict = if r >= goal {
                    "meets goal"
                } else {
                    "BELOW GOAL"
                };
                println!(
                    "  {name:<28} {:>6.1} %   (goal >= {:.0} %: {verdict})",
                    r * 100.0,
                    goal * 100.0
                );
            } else {
                println!("  {name:<28} not computed (a section was not run)");
            }
        };
        ratio("put / min(quinn, redb)", self.put, floor, 0.50);
        ratio("get / quinn", self.get, self.quinn, 0.60);

        if let (Some(put), Some(get)) = (&self.put_detail, &self.get_detail) {
            println!();
            println!("  Where the time goes (median run):");
            println!(
                "    put: {:.2} s total; last byte sent after {:.2} s, reply {:.2} s later; CPU {:.2} s ({:.2} cores), writer thread {:.2} s; other processes {:.2} s",
                put.total.as_secs_f64(),
                put.first_phase.as_secs_f64(),
                (put.total - put.first_phase).as_secs_f64(),
                put.cpu.process,
                put.cpu.process / put.total.as_secs_f64(),
                put.cpu.writer,
                put.cpu.others.max(0.0),
            );
            println!(
                "    get: {:.2} s total; first chunk after {:.1} ms; CPU {:.2} s ({:.2} cores); other processes {:.2} s",
                get.total.as_secs_f64(),
                get.first_phase.as_secs_f64() * 1e3,
                get.cpu.process,
                get.cpu.process / get.total.as_secs_f64(),
                get.cpu.others.max(0.0),
            );
        }
    }
}

fn section(title: &str) {
    println!();
    println!("== {title}");
}

fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64() / 1e6
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// The run with the median total time (the upper median for an even count), so
/// that its phase breakdown is a real run's.
fn median_by_total(samples: &[Phased]) -> Phased {
    let mut sorted = samples.to_vec();
    sorted.sort_by_key(|s| s.total);
    sorted[sorted.len() / 2].clone()
}
