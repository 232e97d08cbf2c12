//! Replication across real `stemma node run` processes on 127.0.0.1: five
//! nodes in five zones with RF = 3 and W = 2. Every chunk is on exactly three
//! nodes (checked through each node's `GET /debug/chunks`, not assumed);
//! every object survives the SIGKILL of two nodes and new writes go on; a
//! chunk corrupted on replicas is never served, and reads repair it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::{RngCore, SeedableRng};
use stemma_client::{ObjectPath, PutOptions};
use stemma_protocol::{ChunkId, ChunkSize};
use stemma_tests::{TestNode, http_get, http_post, seed_from_env, wait_for};

const SECRET: &str = "replication-test-secret";
const MIB: usize = 1024 * 1024;

/// Starts `n` nodes in zones `zone-1 … zone-n`, RF = 3, W = 2, and waits until
/// every node's layout holds all of them.
async fn cluster(n: usize, extra: &[&str]) -> anyhow::Result<Vec<TestNode>> {
    let args = |zone: String, join: Option<&str>| {
        let mut args: Vec<String> = [
            "--no-mdns",
            "--replication-factor",
            "3",
            "--write-quorum",
            "2",
            "--zone",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(zone);
        if let Some(join) = join {
            args.extend(["--join".to_string(), join.to_string()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let start = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        TestNode::start_in(Some(SECRET), &args)
    };
    let first = start(args("zone-1".into(), None))?;
    let join = first.p2p_addr();
    let mut nodes = vec![first];
    for i in 2..=n {
        nodes.push(start(args(format!("zone-{i}"), Some(&join)))?);
    }
    let took = wait_for(
        "every node's layout holds every node",
        Duration::from_secs(60),
        || async {
            for node in &nodes {
                if layout_nodes(node)? != n {
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )
    .await?;
    eprintln!("{n} nodes agree on a layout after {took:?}");
    Ok(nodes)
}

fn status(node: &TestNode) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::from_str(&http_get(
        node.info.http_addr,
        "/status",
    )?)?)
}

fn layout_nodes(node: &TestNode) -> anyhow::Result<usize> {
    Ok(status(node)?["layout"]["nodes"].as_u64().unwrap_or(0) as usize)
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
    let seed = seed_from_env(41);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut nodes = cluster(5, &[]).await?;
    let chunk = ChunkSize::DEFAULT.bytes();
    let mut sizes = vec![0, 1, 1000, chunk, chunk + 1, 3 * MIB + 17];
    sizes.extend((0..14).map(|i| 1 + (i * 7919) % (64 * 1024)));
    let mut objects = BTreeMap::new();
    for (i, size) in sizes.into_iter().enumerate() {
        objects.insert(format!("mixed/object-{i:02}"), random_bytes(&mut rng, size));
    }
    for (path, data) in &objects {
        put(&nodes[0], path, data).await?;
    }
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
    for (i, node) in survivors.iter().enumerate() {
        for (path, data) in &objects {
            let got = get(node, path).await?;
            assert!(got == *data, "{path} read through survivor {i} differs");
        }
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
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_replica_is_never_served_and_a_read_repairs_it() -> anyhow::Result<()> {
    let seed = seed_from_env(43);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let nodes = cluster(5, &["--fault-injection"]).await?;
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
