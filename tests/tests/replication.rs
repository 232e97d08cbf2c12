//! Replication across real `stemma node run` processes on 127.0.0.1: five
//! nodes in five zones with RF = 3 and W = 2. Every chunk is on exactly three
//! nodes (checked through each node's `GET /debug/chunks`, not assumed);
//! every object survives the SIGKILL of two nodes and new writes go on;
//! anti-entropy then puts every chunk on all three survivors, catches the two
//! up when they restart, and moves partitions to a sixth node while reads
//! through it go on (each checked against the layout computed here from the
//! same inputs), after which every chunk is on its owners and nowhere else
//! (hand-off); a chunk corrupted on replicas is never served, and reads
//! repair it; the scrubber replaces a corrupt copy nobody reads; a key
//! written on both sides of a cut settles on the later write everywhere, and
//! the earlier write's data is collected everywhere; deleting an object frees only the
//! chunks no other object uses; a put that failed after its chunks and
//! references were written (no name owner took its name) has its chunks
//! collected.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::{RngCore, SeedableRng};
use stemma_client::{ObjectPath, PutOptions};
use stemma_protocol::membership::NodeId;
use stemma_protocol::placement::Layout;
use stemma_protocol::{ChunkId, ChunkSize};
use stemma_tests::{
    TestNode, chunks_on_owners, chunks_only_on_owners, expected_layout, http_get, http_post,
    layout_nodes, seed_from_env, wait_for, wait_for_layouts,
};

const SECRET: &str = "replication-test-secret";
const MIB: usize = 1024 * 1024;

/// The tests of this file start up to six node processes each; they run one
/// at a time, so that no test's membership (on LAN timing: 800 ms probes) is
/// starved of CPU by another's nodes on a 2-core machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starts a node in `zone`, RF = 3, W = 2, anti-entropy every 2 s, joined to
/// `join` if given.
fn start_member(zone: &str, join: Option<&str>, extra: &[&str]) -> anyhow::Result<TestNode> {
    let mut args = vec![
        "--no-mdns",
        "--replication-factor",
        "3",
        "--write-quorum",
        "2",
        "--anti-entropy-seconds",
        "2",
        "--zone",
        zone,
    ];
    if let Some(join) = join {
        args.extend(["--join", join]);
    }
    args.extend(extra);
    TestNode::start_in(Some(SECRET), &args)
}

/// Starts `n` nodes in zones `zone-1 … zone-n` and waits until every node's
/// layout holds all of them.
async fn cluster(n: usize, extra: &[&str]) -> anyhow::Result<Vec<TestNode>> {
    let first = start_member("zone-1", None, extra)?;
    let join = first.p2p_addr();
    let mut nodes = vec![first];
    for i in 2..=n {
        nodes.push(start_member(&format!("zone-{i}"), Some(&join), extra)?);
    }
    let took = wait_for_layouts(&nodes.iter().collect::<Vec<_>>(), n).await?;
    eprintln!("{n} nodes agree on a layout after {took:?}");
    Ok(nodes)
}

/// Whether every chunk of `objects` is on each of its owners in `layout`
/// (checked through each node's chunk listing).
fn on_every_owner(
    nodes: &[&TestNode],
    layout: &Layout,
    objects: &BTreeMap<String, Vec<u8>>,
) -> anyhow::Result<bool> {
    chunks_on_owners(nodes, layout, &chunks_of_all(objects))
}

/// The chunks of `objects`.
fn chunks_of_all(objects: &BTreeMap<String, Vec<u8>>) -> BTreeSet<ChunkId> {
    objects
        .values()
        .flat_map(|d| d.chunks(ChunkSize::DEFAULT.bytes()).map(ChunkId::of))
        .collect()
}

/// The chunk ids a node reports, and those it finds corrupt.
fn chunks_of(node: &TestNode) -> anyhow::Result<(BTreeSet<String>, BTreeSet<String>)> {
    let body: serde_json::Value =
        serde_json::from_str(&http_get(node.info.http_addr, "/debug/chunks?verify=true")?)?;
    let set = |field: &str| {
        body[field]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok((set("chunks"), set("corrupt")))
}

/// Which nodes (by index) hold each chunk.
fn holders(nodes: &[&TestNode]) -> anyhow::Result<BTreeMap<String, Vec<usize>>> {
    let mut map: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, node) in nodes.iter().enumerate() {
        for id in chunks_of(node)?.0 {
            map.entry(id).or_default().push(i);
        }
    }
    Ok(map)
}

/// Whether every one of `nodes` holds each chunk of `ids`.
fn held_by_all(nodes: &[&TestNode], ids: &BTreeSet<String>) -> anyhow::Result<bool> {
    let held = holders(nodes)?;
    Ok(ids
        .iter()
        .all(|id| held.get(id).map_or(0, Vec::len) == nodes.len()))
}

/// Whether none of `nodes` holds any chunk of `ids`.
fn held_by_none(nodes: &[&TestNode], ids: &BTreeSet<String>) -> anyhow::Result<bool> {
    let held = holders(nodes)?;
    Ok(ids.iter().all(|id| !held.contains_key(id)))
}

/// The ids of the chunks the node cuts `data` into (fixed-size chunks of the
/// default size).
fn chunk_ids(data: &[u8]) -> Vec<String> {
    data.chunks(ChunkSize::DEFAULT.bytes())
        .map(|c| ChunkId::of(c).to_string())
        .collect()
}

fn random_bytes(rng: &mut rand::rngs::StdRng, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    rng.fill_bytes(&mut data);
    data
}

async fn put(node: &TestNode, path: &str, data: &[u8]) -> anyhow::Result<()> {
    let client = node.client().await?;
    client
        .put(
            &ObjectPath::parse(path)?,
            data,
            PutOptions::default(),
            |_| {},
        )
        .await?;
    client.close().await;
    Ok(())
}

/// Writes every object through one client of `node`.
async fn put_all(node: &TestNode, objects: &BTreeMap<String, Vec<u8>>) -> anyhow::Result<()> {
    let client = node.client().await?;
    for (path, data) in objects {
        client
            .put(
                &ObjectPath::parse(path)?,
                data.as_slice(),
                PutOptions::default(),
                |_| {},
            )
            .await?;
    }
    client.close().await;
    Ok(())
}

/// Reads every object back through one client of `node` and compares.
async fn read_all(node: &TestNode, objects: &BTreeMap<String, Vec<u8>>) -> anyhow::Result<()> {
    let client = node.client().await?;
    for (path, data) in objects {
        let mut out = Vec::new();
        client
            .get(&ObjectPath::parse(path)?, &mut out, |_| {})
            .await?;
        assert!(
            out == *data,
            "{path} read through {} differs",
            node.info.node_id
        );
    }
    client.close().await;
    Ok(())
}

async fn get(node: &TestNode, path: &str) -> anyhow::Result<Vec<u8>> {
    let client = node.client().await?;
    let mut out = Vec::new();
    client
        .get(&ObjectPath::parse(path)?, &mut out, |_| {})
        .await?;
    client.close().await;
    Ok(out)
}

/// Every expected chunk is on exactly `copies` of `nodes`, and no node holds a
/// chunk that is not expected.
fn assert_placement(
    nodes: &[&TestNode],
    objects: &BTreeMap<String, Vec<u8>>,
    copies: usize,
) -> anyhow::Result<()> {
    let expected: BTreeSet<String> = objects.values().flat_map(|d| chunk_ids(d)).collect();
    let held = holders(nodes)?;
    for id in &expected {
        let on = held.get(id).map_or(0, Vec::len);
        assert_eq!(on, copies, "chunk {id} is on {on} nodes, not {copies}");
    }
    for id in held.keys() {
        assert!(expected.contains(id), "stray chunk {id}");
    }
    eprintln!("{} chunks, each on exactly {copies} nodes", expected.len());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_keep_every_object_through_the_loss_of_two() -> anyhow::Result<()> {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let seed = seed_from_env(41);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut nodes = cluster(5, &[]).await?;
    let chunk = ChunkSize::DEFAULT.bytes();
    // 200 objects from 1 B to 20 MiB: the chunk boundaries, a few large ones,
    // and the rest log-uniform up to 256 KiB (a store holds mostly small
    // objects, and the run stays short).
    let mut sizes = vec![1, 1000, chunk, chunk + 1, 3 * MIB + 17, 20 * MIB];
    while sizes.len() < 200 {
        let exp = rng.next_u32() % 18;
        sizes.push(1 + (rng.next_u64() % (1u64 << (exp + 1))) as usize);
    }
    let mut objects = BTreeMap::new();
    for (i, size) in sizes.into_iter().enumerate() {
        objects.insert(format!("mixed/object-{i:03}"), random_bytes(&mut rng, size));
    }
    put_all(&nodes[0], &objects).await?;
    let all: Vec<&TestNode> = nodes.iter().collect();
    assert_placement(&all, &objects, 3)?;

    // Listing and reading through another node.
    let client = nodes[2].client().await?;
    let listed = client
        .list(&stemma_client::BucketName::parse("mixed")?, "")
        .await?;
    client.close().await;
    let keys: Vec<String> = listed.iter().map(|e| format!("mixed/{}", e.key)).collect();
    assert_eq!(keys, objects.keys().cloned().collect::<Vec<_>>());

    // Two nodes die at once; the survivors must notice and still serve all.
    nodes[3].kill();
    nodes[4].kill();
    let survivors: Vec<&TestNode> = nodes[..3].iter().collect();
    wait_for(
        "the survivors drop the dead nodes from their layout",
        Duration::from_secs(40),
        || async {
            for node in &survivors {
                if layout_nodes(node)? != 3 {
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )
    .await?;
    for node in &survivors {
        read_all(node, &objects).await?;
    }

    // New writes go on, on the three survivors, and read back anywhere.
    let mut fresh = BTreeMap::new();
    for (i, size) in [0, 5, chunk + 3].into_iter().enumerate() {
        let path = format!("after/object-{i}");
        let data = random_bytes(&mut rng, size);
        put(survivors[1], &path, &data).await?;
        fresh.insert(path, data);
    }
    for (path, data) in &fresh {
        assert!(get(survivors[2], path).await? == *data, "{path} differs");
    }
    let held = holders(&survivors)?;
    for id in fresh.values().flat_map(|d| chunk_ids(d)) {
        assert_eq!(held.get(&id).map_or(0, Vec::len), 3, "new chunk {id}");
    }

    // Anti-entropy re-replicates: with three nodes left, RF = 3 puts every
    // partition on all three, and the survivors copy what they lacked.
    let mut everything = objects.clone();
    everything.extend(fresh);
    let zones: Vec<String> = (1..=6).map(|i| format!("zone-{i}")).collect();
    let layout = expected_layout(&survivors, &zones)?;
    let took = wait_for(
        "every chunk is on all three survivors",
        Duration::from_secs(60),
        || async { on_every_owner(&survivors, &layout, &everything) },
    )
    .await?;
    eprintln!("RF restored on the survivors {took:?} after their layouts changed");

    // The two come back: each gets the chunks of its partitions that were
    // written while it was down.
    nodes[3].restart()?;
    nodes[4].restart()?;
    let all: Vec<&TestNode> = nodes.iter().collect();
    wait_for_layouts(&all, 5).await?;
    let layout = expected_layout(&all, &zones)?;
    let took = wait_for(
        "every chunk is on its three owners again",
        Duration::from_secs(60),
        || async { on_every_owner(&all, &layout, &everything) },
    )
    .await?;
    eprintln!("the restarted nodes caught up {took:?} after the layouts agreed");
    let mut repairs = 0.0;
    for node in &all {
        repairs += node.metric("stemma_replication_repairs_total")?;
    }
    assert!(repairs > 0.0, "nothing was copied by anti-entropy");
    eprintln!("{repairs} items copied by anti-entropy so far");

    // A sixth node joins: partitions move to it while reads through it go on
    // and never fail.
    let sixth = start_member("zone-6", Some(&nodes[0].p2p_addr()), &[])?;
    nodes.push(sixth);
    let all: Vec<&TestNode> = nodes.iter().collect();
    wait_for_layouts(&all, 6).await?;
    let layout = expected_layout(&all, &zones)?;
    let paths: Vec<&String> = everything.keys().collect();
    let reads = std::cell::Cell::new(0usize);
    let failed = std::cell::RefCell::new(Vec::new());
    let took = wait_for(
        "every chunk is on its owners in the six-node layout",
        Duration::from_secs(90),
        || async {
            for _ in 0..3 {
                let path = paths[reads.get() % paths.len()];
                match get(all[5], path).await {
                    Ok(got) => assert!(
                        got == everything[path],
                        "{path} read through the new node differs"
                    ),
                    Err(e) => failed.borrow_mut().push(format!("{path}: {e}")),
                }
                reads.set(reads.get() + 1);
            }
            on_every_owner(&all, &layout, &everything)
        },
    )
    .await?;
    assert!(
        failed.borrow().is_empty(),
        "reads failed during the move: {:?}",
        failed.borrow()
    );
    let reads = reads.get();
    let moved = holders(&[all[5]])?.len();
    assert!(moved > 0, "no chunk moved to the new node");
    eprintln!(
        "{moved} chunks moved to the sixth node in {took:?}; {reads} reads through it, none failed"
    );

    // The nodes that gave partitions up (and the survivors that stood in for
    // the two while they were down) hand their copies off: every chunk ends
    // on its three owners and nowhere else.
    let took = wait_for(
        "every chunk is on its owners and nowhere else",
        Duration::from_secs(60),
        || async { chunks_only_on_owners(&all, &layout, &chunks_of_all(&everything)) },
    )
    .await?;
    let mut handed = 0.0;
    for node in &all {
        handed += node.metric("stemma_replication_handoff_chunks_total")?;
    }
    assert!(handed > 0.0, "no node handed a copy off");
    read_all(all[0], &everything).await?;
    eprintln!("{handed} copies handed off; only owners hold chunks {took:?} later");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_replica_is_never_served_and_a_read_repairs_it() -> anyhow::Result<()> {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let seed = seed_from_env(43);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // The scrubber off: this test is about reads.
    let nodes = cluster(5, &["--fault-injection", "--scrub-bytes-per-second", "0"]).await?;
    let all: Vec<&TestNode> = nodes.iter().collect();
    let data = random_bytes(&mut rng, 2 * MIB + 5);
    put(&nodes[0], "scrub/target", &data).await?;
    let held = holders(&all)?;
    let ids = chunk_ids(&data);
    let first = held[&ids[0]].clone();
    assert_eq!(first.len(), 3);

    // The first chunk goes bad on two of its three replicas.
    let bad = [first[0], first[1]];
    for &i in &bad {
        http_post(
            nodes[i].info.http_addr,
            "/debug/corrupt-chunk",
            &format!("{{\"chunk\": \"{}\"}}", ids[0]),
        )?;
        assert!(chunks_of(&nodes[i])?.1.contains(&ids[0]), "not corrupted");
    }

    // A node that holds no copy reads it right, and so do the bad replicas
    // themselves (they read their own copy first, find it corrupt, fall back).
    let outsider = (0..5).find(|i| !first.contains(i)).expect("a non-holder");
    assert!(get(&nodes[outsider], "scrub/target").await? == data);
    for &i in &bad {
        assert!(
            get(&nodes[i], "scrub/target").await? == data,
            "via node {i}"
        );
    }

    // Both bad replicas were repaired by the reads.
    wait_for(
        "the bad replicas are repaired",
        Duration::from_secs(10),
        || async {
            for &i in &bad {
                if !chunks_of(&nodes[i])?.1.is_empty() {
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )
    .await?;
    let mut repairs = 0.0;
    let mut misses = 0.0;
    for node in &nodes {
        repairs += node.metric("stemma_replication_read_repairs_total")?;
        misses += node.metric("stemma_replication_read_misses_total")?;
    }
    assert!(repairs >= 2.0, "{repairs} read repairs counted");
    assert!(misses >= 2.0, "{misses} bad copies counted");
    assert_placement(
        &all,
        &BTreeMap::from([("scrub/target".to_string(), data)]),
        3,
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scrubber_replaces_a_corrupt_copy_nobody_reads() -> anyhow::Result<()> {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let seed = seed_from_env(47);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let nodes = cluster(
        3,
        &[
            "--fault-injection",
            "--scrub-bytes-per-second",
            "1073741824",
        ],
    )
    .await?;
    let all: Vec<&TestNode> = nodes.iter().collect();
    let data = random_bytes(&mut rng, MIB + 5);
    put(&nodes[0], "scrub/unread", &data).await?;
    let ids = chunk_ids(&data);
    let victim = holders(&all)?[&ids[0]][0];
    http_post(
        nodes[victim].info.http_addr,
        "/debug/corrupt-chunk",
        &format!("{{\"chunk\": \"{}\"}}", ids[0]),
    )?;
    assert!(
        chunks_of(&nodes[victim])?.1.contains(&ids[0]),
        "not corrupted"
    );
    let took = wait_for(
        "the scrubber replaces the corrupt copy",
        Duration::from_secs(45),
        || async {
            Ok(chunks_of(&nodes[victim])?.1.is_empty()
                && nodes[victim].metric("stemma_scrub_repaired_total")? >= 1.0)
        },
    )
    .await?;
    eprintln!("the scrubber replaced the corrupt copy within {took:?}");
    // No client read the object in between: the scrubber found it.
    assert!(nodes[victim].metric("stemma_scrub_corrupt_total")? >= 1.0);
    assert!(get(&nodes[victim], "scrub/unread").await? == data);

    // `stemma status` shows the layout and what each node stores.
    let out = nodes[1].cli(&["status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(report["nodes"], 3);
    assert_eq!(report["replication"], 3);
    assert_eq!(report["node_id"], nodes[1].info.node_id.as_str());
    let per_node = report["per_node"].as_array().expect("per_node");
    assert_eq!(per_node.len(), 3);
    assert_eq!(
        per_node[0]["node_id"],
        nodes[1].info.node_id.as_str(),
        "itself first"
    );
    for n in per_node {
        assert_eq!(
            n["replicas"], 256,
            "RF 3 on three nodes: every partition everywhere"
        );
        let stored = n["stored"].as_array().expect("every node answered");
        assert!(stored[2].as_u64().unwrap_or(0) >= data.len() as u64, "{n}");
    }
    let out = nodes[1].cli(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("layout: 3 nodes, 256 partitions, RF 3, W 2"),
        "{text}"
    );
    Ok(())
}

/// Object `a` shares its first chunk with `b`; `c` is overwritten. Once `a`
/// is deleted, the collector drops on every node exactly the chunks no live
/// object references any more (`a`'s own and old `c`'s), keeps the shared
/// one, and every live object still reads back whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_removes_only_unreferenced_chunks() -> anyhow::Result<()> {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let seed = seed_from_env(53);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let nodes = cluster(3, &["--gc-grace-seconds", "2"]).await?;
    let all: Vec<&TestNode> = nodes.iter().collect();
    let size = ChunkSize::DEFAULT.bytes();
    let shared = random_bytes(&mut rng, size);
    let a = [shared.clone(), random_bytes(&mut rng, size)].concat();
    let b = [shared, random_bytes(&mut rng, size / 2)].concat();
    let old_c = random_bytes(&mut rng, size + 7);
    let new_c = random_bytes(&mut rng, 100);
    put(&nodes[0], "garbage/a", &a).await?;
    put(&nodes[1], "garbage/b", &b).await?;
    put(&nodes[2], "garbage/c", &old_c).await?;
    put(&nodes[0], "garbage/c", &new_c).await?;

    let garbage: BTreeSet<String> = chunk_ids(&a)[1..]
        .iter()
        .cloned()
        .chain(chunk_ids(&old_c))
        .collect();
    let live: BTreeSet<String> = chunk_ids(&b).into_iter().chain(chunk_ids(&new_c)).collect();
    assert!(live.contains(&chunk_ids(&a)[0]), "the shared chunk is live");
    wait_for(
        "every chunk on all three nodes",
        Duration::from_secs(30),
        || async { Ok(held_by_all(&all, &garbage)? && held_by_all(&all, &live)?) },
    )
    .await?;

    let client = nodes[1].client().await?;
    client.delete(&ObjectPath::parse("garbage/a")?).await?;
    client.close().await;
    let took = wait_for(
        "the collector drops the unreferenced chunks everywhere",
        Duration::from_secs(60),
        || async { held_by_none(&all, &garbage) },
    )
    .await?;
    eprintln!("unreferenced chunks dropped on every node within {took:?}");
    assert!(held_by_all(&all, &live)?, "a referenced chunk was dropped");
    for node in &nodes {
        assert!(get(node, "garbage/b").await? == b);
        assert!(get(node, "garbage/c").await? == new_c);
        assert!(
            get(node, "garbage/a").await.is_err(),
            "a deleted object reads"
        );
    }
    let freed: f64 = nodes
        .iter()
        .map(|n| n.metric("stemma_gc_bytes_total"))
        .sum::<anyhow::Result<f64>>()?;
    let expected = 3 * (a.len() - size + old_c.len());
    assert_eq!(freed, expected as f64, "GC'd bytes over the three nodes");
    let manifests: f64 = nodes
        .iter()
        .map(|n| n.metric("stemma_gc_manifests_total"))
        .sum::<anyhow::Result<f64>>()?;
    assert_eq!(
        manifests, 6.0,
        "the manifests of a and old c, on three nodes"
    );
    Ok(())
}

/// A put whose chunks and references reached every node but whose name none
/// took (every node refuses name writes, by fault injection) fails; once the
/// nodes take names again, the owners of its manifest find, a grace later,
/// that no name owner holds the version, and its chunks are collected
/// everywhere. An object written before keeps all its chunks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_whose_name_was_never_written_has_its_chunks_collected() -> anyhow::Result<()> {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let seed = seed_from_env(59);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let nodes = cluster(3, &["--fault-injection", "--gc-grace-seconds", "2"]).await?;
    let all: Vec<&TestNode> = nodes.iter().collect();
    let size = ChunkSize::DEFAULT.bytes();
    let kept = random_bytes(&mut rng, size + 11);
    let failed = random_bytes(&mut rng, 2 * size + 5);
    put(&nodes[0], "failed/kept", &kept).await?;

    let refuse_names = |refuse: bool| -> anyhow::Result<()> {
        let body = serde_json::json!({ "drop": [], "refuse_names": refuse }).to_string();
        for node in &nodes {
            http_post(node.info.http_addr, "/debug/faults", &body)?;
        }
        Ok(())
    };
    refuse_names(true)?;
    let outcome = put(&nodes[1], "failed/never-named", &failed).await;
    let error = outcome.expect_err("a put whose name no owner takes fails");
    eprintln!("the put failed as it should: {error:#}");
    let orphan: BTreeSet<String> = chunk_ids(&failed).into_iter().collect();
    wait_for(
        "the failed put's chunks on all three nodes",
        Duration::from_secs(30),
        || async { held_by_all(&all, &orphan) },
    )
    .await?;
    refuse_names(false)?;

    let took = wait_for(
        "the failed put's chunks collected everywhere",
        Duration::from_secs(60),
        || async { held_by_none(&all, &orphan) },
    )
    .await?;
    eprintln!("chunks of the failed put dropped on every node within {took:?}");
    let kept_ids: BTreeSet<String> = chunk_ids(&kept).into_iter().collect();
    assert!(
        held_by_all(&all, &kept_ids)?,
        "a chunk of a live object was dropped"
    );
    for node in &nodes {
        assert!(get(node, "failed/kept").await? == kept);
        assert!(
            get(node, "failed/never-named").await.is_err(),
            "the failed put's object reads"
        );
    }
    let orphaned: f64 = nodes
        .iter()
        .map(|n| n.metric("stemma_gc_orphaned_versions_total"))
        .sum::<anyhow::Result<f64>>()?;
    assert!(orphaned >= 1.0, "no node counted the orphaned version");
    Ok(())
}

/// Makes `node` drop all traffic with `peers` (an empty list heals).
fn drop_traffic(node: &TestNode, peers: &[&TestNode]) -> anyhow::Result<()> {
    let ids: Vec<&str> = peers.iter().map(|p| p.info.node_id.as_str()).collect();
    let body = serde_json::json!({ "drop": ids }).to_string();
    http_post(node.info.http_addr, "/debug/faults", &body)?;
    Ok(())
}

/// What every node reads for `path` right now.
async fn read_everywhere(nodes: &[&TestNode], path: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut values = Vec::new();
    for node in nodes {
        values.push(get(node, path).await?);
    }
    Ok(values)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_written_on_both_sides_of_a_cut_settles_on_the_later_write_everywhere()
-> anyhow::Result<()> {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let nodes = cluster(5, &["--fault-injection", "--gc-grace-seconds", "2"]).await?;
    let all: Vec<&TestNode> = nodes.iter().collect();
    let (side_a, side_b) = all.split_at(3);
    for node in side_a {
        drop_traffic(node, side_b)?;
    }
    for node in side_b {
        drop_traffic(node, side_a)?;
    }
    let took = wait_for(
        "each side's layout holds only its own nodes",
        Duration::from_secs(60),
        || async {
            for node in side_a {
                if layout_nodes(node)? != 3 {
                    return Ok(false);
                }
            }
            for node in side_b {
                if layout_nodes(node)? != 2 {
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )
    .await?;
    eprintln!("the cut split the layouts after {took:?}");

    // The same key on both sides; B's write comes later, so its hybrid
    // logical clock stamp is higher.
    let path = "race/key";
    put(side_a[0], path, b"written on side A").await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    put(side_b[0], path, b"written on side B, later").await?;
    assert_eq!(get(side_a[1], path).await?, b"written on side A");
    assert_eq!(get(side_b[1], path).await?, b"written on side B, later");

    for node in &all {
        drop_traffic(node, &[])?;
    }
    wait_for_layouts(&all, 5).await?;
    let took = wait_for(
        "every node reads the later write",
        Duration::from_secs(60),
        || async {
            let values = read_everywhere(&all, path).await?;
            Ok(values.iter().all(|v| v == b"written on side B, later"))
        },
    )
    .await?;
    eprintln!("every node reads the later write {took:?} after the layouts agreed");

    // The earlier write lost: its data is collected on every node (nodes
    // that held it under a side's layout and own it no longer too: they pull
    // the dead references from the owners), the winner's stays on its owners,
    // and further anti-entropy rounds (every 2 s here) never bring the loser
    // or its data back.
    let zones: Vec<String> = (1..=5).map(|i| format!("zone-{i}")).collect();
    let layout = expected_layout(&all, &zones)?;
    let loser = ChunkId::of(b"written on side A").to_string();
    let winner = ChunkId::of(b"written on side B, later");
    let collected = wait_for(
        "the losing write's chunk is collected everywhere",
        Duration::from_secs(60),
        || async { Ok(!holders(&all)?.contains_key(&loser)) },
    )
    .await;
    if collected.is_err() {
        // Say where it stayed, for whoever investigates.
        let owners = layout.replicas(
            layout
                .partitions()
                .of_chunk(&ChunkId::of(b"written on side A")),
        );
        for i in holders(&all)?.remove(&loser).unwrap_or_default() {
            let id: NodeId = all[i].info.node_id.parse()?;
            eprintln!(
                "node {i} still holds the losing chunk (an owner: {}; gc {} chunks, {} handed off)",
                owners.contains(&id),
                all[i].metric("stemma_gc_chunks_total")?,
                all[i].metric("stemma_replication_handoff_chunks_total")?,
            );
        }
    }
    let took = collected?;
    eprintln!(
        "the losing write's chunk was collected everywhere {took:?} after every node read the winner"
    );
    assert!(
        chunks_on_owners(&all, &layout, &BTreeSet::from([winner]))?,
        "the winner keeps its copies"
    );
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            !holders(&all)?.contains_key(&loser),
            "the losing write's data came back"
        );
        for (i, value) in read_everywhere(&all, path).await?.iter().enumerate() {
            assert_eq!(
                value.as_slice(),
                b"written on side B, later",
                "node {i} went back to the earlier write"
            );
        }
    }
    Ok(())
}
