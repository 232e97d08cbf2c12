//! Replication figures with real `stemma node run` processes on 127.0.0.1,
//! all in one run:
//!
//! 1. put and get throughput through the client, to one node alone and to a
//!    3-node cluster with RF = 3 (every byte stored three times, all three
//!    nodes sharing this machine's cores), in alternating rounds on the same
//!    running nodes (each round fresh data), so both see the same machine;
//!    the medians, and the median of the rounds' ratios. Goal: RF = 3 put
//!    ≥ 40 % of the single-node put. A put returns after W = 2 copies; the
//!    third copies are waited for, untimed, before anything else is measured.
//! 2. five nodes in five zones, RF = 3, holding about `STEMMA_BENCH_NODE_MIB`
//!    (default 1,024) MiB each: one is SIGKILLed; the time until every
//!    survivor's layout has dropped it (detection), and until every chunk is
//!    on its three owners again (checked through each node's chunk listing),
//!    with the bytes anti-entropy copied.
//! 3. the lost node comes back, then a sixth node joins: the bytes copied
//!    until every chunk is on its owners in the six-node layout, beside the
//!    minimum (the bytes of the chunks the new layout puts on the new node,
//!    which must arrive whatever moves). After the return and after the
//!    join, the bytes the nodes that held copies without owning them hand
//!    off (drop once the owners hold them), until only owners hold chunks.
//!
//! ```text
//! cargo build --release --bin stemma
//! cargo bench -p stemma-tests --bench replication
//! ```
//!
//! `STEMMA_BENCH_PUT_MIB` (default 1024) sets the data of each round of part
//! 1, `STEMMA_BENCH_ROUNDS` (default 3) the rounds;
//! `STEMMA_BENCH_PARTS=1` stops after part 1. It only prints.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rand::{RngCore, SeedableRng};
use stemma_client::{ObjectPath, PutOptions};
use stemma_protocol::membership::NodeId;
use stemma_protocol::placement::Layout;
use stemma_protocol::{ChunkId, ChunkSize};
use stemma_tests::{
    TestNode, chunks_on_owners, chunks_only_on_owners, expected_layout, held_chunks, wait_for,
    wait_for_layouts,
};

const SECRET: &str = "replication-bench-secret";
const MIB: usize = 1024 * 1024;
/// Objects are this large: 16 chunks each.
const OBJECT: usize = 16 * 1_040_384;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn member(zone: &str, join: Option<&str>) -> anyhow::Result<TestNode> {
    let mut args = vec![
        "--no-mdns",
        "--zone",
        zone,
        "--anti-entropy-seconds",
        "5",
        "--scrub-bytes-per-second",
        "0",
    ];
    if let Some(join) = join {
        args.extend(["--join", join]);
    }
    TestNode::start_in(Some(SECRET), &args)
}

async fn cluster(n: usize) -> anyhow::Result<Vec<TestNode>> {
    let first = member("zone-1", None)?;
    let join = first.p2p_addr();
    let mut nodes = vec![first];
    for i in 2..=n {
        nodes.push(member(&format!("zone-{i}"), Some(&join))?);
    }
    let all: Vec<&TestNode> = nodes.iter().collect();
    wait_for_layouts(&all, n).await?;
    Ok(nodes)
}

/// `count` objects of [`OBJECT`] random bytes, with their chunk ids.
fn objects(count: usize, seed: u64) -> (Vec<Vec<u8>>, BTreeSet<ChunkId>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let data: Vec<Vec<u8>> = (0..count)
        .map(|_| {
            let mut d = vec![0u8; OBJECT];
            rng.fill_bytes(&mut d);
            d
        })
        .collect();
    let ids = data
        .iter()
        .flat_map(|d| d.chunks(ChunkSize::DEFAULT.bytes()).map(ChunkId::of))
        .collect();
    (data, ids)
}

/// Puts every object through one client of `node`; MB/s.
async fn put_all(node: &TestNode, prefix: &str, data: &[Vec<u8>]) -> anyhow::Result<f64> {
    let client = node.client().await?;
    let start = Instant::now();
    for (i, d) in data.iter().enumerate() {
        let path = ObjectPath::parse(&format!("{prefix}/object-{i:04}"))?;
        client
            .put(&path, d.as_slice(), PutOptions::default(), |_| {})
            .await?;
    }
    let secs = start.elapsed().as_secs_f64();
    client.close().await;
    Ok(data.len() as f64 * OBJECT as f64 / 1e6 / secs)
}

/// Gets every object back through one client of `node`; MB/s.
async fn get_all(node: &TestNode, prefix: &str, data: &[Vec<u8>]) -> anyhow::Result<f64> {
    let client = node.client().await?;
    let start = Instant::now();
    for (i, d) in data.iter().enumerate() {
        let path = ObjectPath::parse(&format!("{prefix}/object-{i:04}"))?;
        let mut out = Vec::with_capacity(d.len());
        client.get(&path, &mut out, |_| {}).await?;
        anyhow::ensure!(out == *d, "{path} came back different");
    }
    let secs = start.elapsed().as_secs_f64();
    client.close().await;
    Ok(data.len() as f64 * OBJECT as f64 / 1e6 / secs)
}

fn copied_bytes(nodes: &[&TestNode]) -> anyhow::Result<f64> {
    metric_sum(nodes, "stemma_replication_repair_bytes_total")
}

/// Bytes of chunk copies a node dropped by hand-off.
const HANDOFF_BYTES: &str = "stemma_replication_handoff_bytes_total";

/// Waits until every chunk is on its owners only (the others handed their
/// copies off); returns the bytes handed off since the sum was `before`.
async fn handed_off(
    all: &[&TestNode],
    layout: &Layout,
    chunks: &BTreeSet<ChunkId>,
    before: f64,
) -> anyhow::Result<f64> {
    wait_for(
        "only owners hold chunks",
        Duration::from_secs(600),
        || async { chunks_only_on_owners(all, layout, chunks) },
    )
    .await?;
    Ok(metric_sum(all, HANDOFF_BYTES)? - before)
}

/// The median (the mean of the two middle values for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// A metric summed over `nodes`.
fn metric_sum(nodes: &[&TestNode], name: &str) -> anyhow::Result<f64> {
    let mut sum = 0.0;
    for node in nodes {
        sum += node.metric(name)?;
    }
    Ok(sum)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    println!("binary {}", stemma_tests::stemma_bin().display());
    let put_mib = env_or("STEMMA_BENCH_PUT_MIB", 1024);
    let node_mib = env_or("STEMMA_BENCH_NODE_MIB", 1024);

    // 1. Throughput: one node and three with RF = 3, side by side in
    // alternating rounds, each round with fresh data (the same bytes twice
    // would be deduplicated).
    let rounds = env_or("STEMMA_BENCH_ROUNDS", 3).max(1);
    let single = TestNode::start_in(Some(SECRET), &["--no-mdns"])?;
    let three = cluster(3).await?;
    let count = (put_mib * MIB).div_ceil(OBJECT);
    println!(
        "throughput, {rounds} rounds of {count} objects of {OBJECT} bytes (MB/s; one node's, then RF = 3's):"
    );
    let mut ratios = Vec::new();
    let mut figures: [Vec<f64>; 4] = Default::default();
    // Distinct chunks each of the three holds once a round's put is done.
    let mut held = 0.0;
    for round in 0..rounds {
        let (data, chunks) = objects(count, 100 + round as u64);
        let prefix = format!("bench-{round}");
        let single_put = put_all(&single, &prefix, &data).await?;
        let single_get = get_all(&single, &prefix, &data).await?;
        let rf3_put = put_all(&three[0], &prefix, &data).await?;
        // With W = 2 the last chunks' third copies may still be on their way
        // when the put returns; they finish here, untimed, rather than
        // slowing whatever is measured next.
        held += chunks.len() as f64;
        let third_copies = wait_for("every chunk on all three", Duration::from_secs(300), || {
            let three = &three;
            async move {
                for node in three {
                    if node.metric("stemma_chunks")? < held {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        })
        .await?;
        let rf3_get = get_all(&three[1], &prefix, &data).await?;
        let ratio = 100.0 * rf3_put / single_put;
        println!(
            "  round {}: put {single_put:7.1} / {rf3_put:7.1} ({ratio:.1} %)   get {single_get:7.1} / {rf3_get:7.1}   (third copies done {:.1} s after the put)",
            round + 1,
            third_copies.as_secs_f64()
        );
        ratios.push(ratio);
        for (all, x) in figures
            .iter_mut()
            .zip([single_put, rf3_put, single_get, rf3_get])
        {
            all.push(x);
        }
    }
    drop(single);
    drop(three);
    let [single_put, rf3_put, single_get, rf3_get] = figures.map(median);
    println!("  medians: one node put {single_put:7.1}, get {single_get:7.1}");
    println!("           RF = 3   put {rf3_put:7.1}, get {rf3_get:7.1}");
    println!(
        "  RF = 3 put / one node's put, median of the rounds: {:.1} % (range {:.1}–{:.1} %; goal >= 40 %)",
        median(ratios.clone()),
        ratios.iter().copied().fold(f64::INFINITY, f64::min),
        ratios.iter().copied().fold(0.0, f64::max)
    );
    if std::env::var("STEMMA_BENCH_PARTS").is_ok_and(|parts| parts == "1") {
        return Ok(());
    }

    // 2. Five nodes hold node_mib each (total logical data node_mib × 5 / 3);
    // one is killed.
    let zones: Vec<String> = (1..=6).map(|i| format!("zone-{i}")).collect();
    let mut nodes = cluster(5).await?;
    let (data, chunks) = objects((node_mib * MIB * 5 / 3).div_ceil(OBJECT), 2);
    let fill = put_all(&nodes[0], "data", &data).await?;
    drop(data);
    let all: Vec<&TestNode> = nodes.iter().collect();
    let layout = expected_layout(&all, &zones)?;
    wait_for(
        "every chunk on its owners",
        Duration::from_secs(300),
        || async { chunks_on_owners(&all, &layout, &chunks) },
    )
    .await?;
    let victim_bytes = held_chunks(&nodes[4])?.len() as f64 * ChunkSize::DEFAULT.bytes() as f64;
    let before = copied_bytes(&all)?;
    println!(
        "five nodes filled at {fill:.1} MB/s; node 5 holds {:.0} MiB",
        victim_bytes / MIB as f64
    );
    let killed = Instant::now();
    nodes[4].kill();
    let survivors: Vec<&TestNode> = nodes[..4].iter().collect();
    wait_for_layouts(&survivors, 4).await?;
    let detected = killed.elapsed();
    let layout = expected_layout(&survivors, &zones)?;
    wait_for("RF restored", Duration::from_secs(600), || async {
        chunks_on_owners(&survivors, &layout, &chunks)
    })
    .await?;
    let restored = killed.elapsed();
    let copied = copied_bytes(&survivors)? - before;
    println!(
        "losing a node that held {:.0} MiB: every survivor's layout dropped it after {:.1} s; RF = 3 restored after {:.1} s ({:.1} s of copying, {:.0} MiB copied, {:.1} MB/s)",
        victim_bytes / MIB as f64,
        detected.as_secs_f64(),
        restored.as_secs_f64(),
        (restored - detected).as_secs_f64(),
        copied / MIB as f64,
        copied / 1e6 / (restored - detected).as_secs_f64()
    );

    // 3. The lost node comes back; then a sixth node joins the five: bytes
    // moved against the minimum. (Counters start again at 0 in a restarted
    // node: the survivors' hand-offs are counted from here.)
    let survivors: Vec<&TestNode> = nodes[..4].iter().collect();
    let handed_before = metric_sum(&survivors, HANDOFF_BYTES)?;
    nodes[4].restart()?;
    let all: Vec<&TestNode> = nodes.iter().collect();
    wait_for_layouts(&all, 5).await?;
    let layout = expected_layout(&all, &zones)?;
    wait_for("the five settled", Duration::from_secs(600), || async {
        chunks_on_owners(&all, &layout, &chunks)
    })
    .await?;
    // The survivors stood in for the lost node; now they hand those copies off.
    let settled = Instant::now();
    let handed = handed_off(&all, &layout, &chunks, handed_before).await?;
    println!(
        "hand-off after the node came back: {:.0} MiB of copies dropped, done {:.1} s after every owner held its chunks",
        handed / MIB as f64,
        settled.elapsed().as_secs_f64()
    );
    nodes.push(member("zone-6", Some(&nodes[0].p2p_addr()))?);
    let all: Vec<&TestNode> = nodes.iter().collect();
    let before = copied_bytes(&all)?;
    let handed_before = metric_sum(&all, HANDOFF_BYTES)?;
    let joined = Instant::now();
    wait_for_layouts(&all, 6).await?;
    let layout = expected_layout(&all, &zones)?;
    wait_for("the new node filled", Duration::from_secs(600), || async {
        chunks_on_owners(&all, &layout, &chunks)
    })
    .await?;
    let moved = copied_bytes(&all)? - before;
    let new_id: NodeId = nodes[5].info.node_id.parse()?;
    let minimum = chunks
        .iter()
        .filter(|c| {
            layout
                .replicas(layout.partitions().of_chunk(c))
                .contains(&new_id)
        })
        .count() as f64
        * ChunkSize::DEFAULT.bytes() as f64;
    println!(
        "a sixth node joining: {:.0} MiB copied in {:.1} s; minimum {:.0} MiB (the new node's share); {:.2}x the minimum",
        moved / MIB as f64,
        joined.elapsed().as_secs_f64(),
        minimum / MIB as f64,
        moved / minimum
    );

    // The nodes whose partitions moved to the new one hand their copies
    // off: every chunk ends on its three owners only.
    let handed = handed_off(&all, &layout, &chunks, handed_before).await?;
    println!(
        "hand-off after the join: {:.0} MiB of copies dropped by the old owners, done {:.1} s after the join",
        handed / MIB as f64,
        joined.elapsed().as_secs_f64(),
    );
    Ok(())
}
