//! What the store promises across restarts, crashes, duplicates and corruption.

use std::time::{Duration, Instant};

use stemma_client::{BucketName, Error, ObjectPath, PutOptions};
use stemma_protocol::{ChunkId, ChunkSize};
use stemma_tests::{TestNode, file_hash, random_file, seed_from_env};

const MIB: u64 = 1024 * 1024;

async fn put_file(
    node: &TestNode,
    path: &str,
    file: &std::path::Path,
) -> anyhow::Result<stemma_client::Stored> {
    let client = node.client().await?;
    let stored = client
        .put(
            &ObjectPath::parse(path)?,
            tokio::fs::File::open(file).await?,
            PutOptions::default(),
            |_| {},
        )
        .await?;
    client.close().await;
    Ok(stored)
}

/// Starts putting `file` as `path` in the background, with a connection of its own.
fn spawn_upload(
    node: &TestNode,
    path: &str,
    file: &std::path::Path,
) -> tokio::task::JoinHandle<anyhow::Result<stemma_client::Stored>> {
    let connection = node.info.connection.clone();
    let (path, file) = (path.to_string(), file.to_path_buf());
    tokio::spawn(async move {
        let client = stemma_client::Client::connect(&connection).await?;
        client
            .put(
                &ObjectPath::parse(&path)?,
                tokio::fs::File::open(&file).await?,
                PutOptions::default(),
                |_| {},
            )
            .await
            .map_err(anyhow::Error::from)
    })
}

async fn get_hash(node: &TestNode, path: &str) -> anyhow::Result<blake3::Hash> {
    let client = node.client().await?;
    let mut out = Vec::new();
    client
        .get(&ObjectPath::parse(path)?, &mut out, |_| {})
        .await?;
    Ok(blake3::hash(&out))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storing_the_same_bytes_twice_adds_no_chunk_bytes() -> anyhow::Result<()> {
    let seed = seed_from_env(3);
    let node = TestNode::start(&[])?;
    let work = tempfile::tempdir()?;
    let src = work.path().join("50mib");
    random_file(&src, 50 * MIB, seed)?;

    let first = put_file(&node, "dedup/one", &src).await?;
    assert_eq!(first.new_bytes, 50 * MIB);
    let stored_after_first = node.metric("stemma_stored_bytes")?;
    assert_eq!(stored_after_first, (50 * MIB) as f64);

    let second = put_file(&node, "dedup/two", &src).await?;
    assert_eq!(second.new_bytes, 0, "the second put adds no chunk bytes");
    assert_eq!(second.info.object_id, first.info.object_id);
    assert_eq!(node.metric("stemma_stored_bytes")?, stored_after_first);
    assert_eq!(node.metric("stemma_objects")?, 2.0);

    // Deleting one name keeps the chunks the other still uses; deleting both frees them.
    let client = node.client().await?;
    client.delete(&ObjectPath::parse("dedup/one")?).await?;
    assert_eq!(node.metric("stemma_stored_bytes")?, stored_after_first);
    assert_eq!(get_hash(&node, "dedup/two").await?, file_hash(&src)?);
    client.delete(&ObjectPath::parse("dedup/two")?).await?;
    assert_eq!(node.metric("stemma_stored_bytes")?, 0.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_survives_a_restart() -> anyhow::Result<()> {
    let seed = seed_from_env(4);
    let mut node = TestNode::start(&[])?;
    let work = tempfile::tempdir()?;
    let mut expected = Vec::new();
    for (i, size) in [0, 1, 4096, 3 * MIB + 17].into_iter().enumerate() {
        let src = work.path().join(format!("f{i}"));
        random_file(&src, size, seed + i as u64)?;
        let key = format!("keep/f{i}");
        put_file(&node, &key, &src).await?;
        expected.push((key, file_hash(&src)?));
    }
    let node_id = node.info.node_id.clone();
    assert_eq!(node.terminate()?, Some(0), "SIGTERM is a clean exit");
    assert!(
        !node.dir.join("node.json").exists(),
        "a stopped node removes node.json"
    );
    node.restart()?;
    assert_eq!(node.info.node_id, node_id, "the identity is kept");
    for (key, hash) in &expected {
        assert_eq!(get_hash(&node, key).await?, *hash, "{key}");
    }
    let client = node.client().await?;
    assert_eq!(
        client.list(&BucketName::parse("keep")?, "").await?.len(),
        expected.len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_killed_midway_leaves_no_trace_and_harms_nothing() -> anyhow::Result<()> {
    let seed = seed_from_env(5);
    let mut node = TestNode::start(&[])?;
    let work = tempfile::tempdir()?;
    let earlier = work.path().join("earlier");
    random_file(&earlier, 5 * MIB, seed)?;
    put_file(&node, "crash/earlier", &earlier).await?;
    let stored_before = node.metric("stemma_stored_bytes")?;

    let big = work.path().join("big");
    random_file(&big, 200 * MIB, seed + 1)?;
    let upload = spawn_upload(&node, "crash/interrupted", &big);
    // Kill the node once a good part of the upload has arrived.
    let deadline = Instant::now() + Duration::from_secs(120);
    while node.metric("stemma_received_bytes_total")? < (40 * MIB) as f64 {
        assert!(Instant::now() < deadline, "the upload never got going");
        assert!(!upload.is_finished(), "the upload finished before the kill");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node.kill();
    let outcome = upload.await?;
    assert!(
        outcome.is_err(),
        "an upload cut by a crash is not acknowledged"
    );

    node.restart()?;
    let client = node.client().await?;
    let missing = client
        .head(&ObjectPath::parse("crash/interrupted")?)
        .await
        .unwrap_err();
    assert!(matches!(missing, Error::NotFound(_)), "{missing}");
    let listed = client.list(&BucketName::parse("crash")?, "").await?;
    assert_eq!(
        listed.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
        ["earlier"]
    );
    assert_eq!(
        get_hash(&node, "crash/earlier").await?,
        file_hash(&earlier)?
    );
    assert_eq!(
        node.metric("stemma_stored_bytes")?,
        stored_before,
        "chunks of the interrupted upload are freed on restart"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_chunk_is_reported_with_its_id_and_never_returned() -> anyhow::Result<()> {
    let seed = seed_from_env(6);
    let mut node = TestNode::start(&[])?;
    let work = tempfile::tempdir()?;
    let chunk = ChunkSize::DEFAULT.bytes();
    let src = work.path().join("three-chunks");
    random_file(&src, 3 * chunk as u64, seed)?;
    put_file(&node, "rot/victim", &src).await?;
    let data = std::fs::read(&src)?;
    let bad = ChunkId::of(&data[chunk..2 * chunk]);

    node.terminate()?;
    stemma_node::store::Store::corrupt_chunk_for_tests(&node.dir, &bad)?;
    node.restart()?;

    // Library: a typed error naming the chunk; only the verified first chunk was written.
    let client = node.client().await?;
    let mut out = Vec::new();
    let err = client
        .get(&ObjectPath::parse("rot/victim")?, &mut out, |_| {})
        .await
        .unwrap_err();
    match err {
        Error::Corrupt { chunk: id } => assert_eq!(id, bad),
        other => panic!("expected a corruption error, got {other}"),
    }
    assert_eq!(
        out,
        data[..chunk],
        "only bytes before the corrupt chunk, all verified"
    );

    // CLI: its own exit code, the chunk id in the message, no output file left.
    let dst = work.path().join("out");
    let get = node.cli(&["get", "rot/victim", "-o", dst.to_str().unwrap()]);
    assert_eq!(get.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&get.stderr).contains(&bad.to_string()));
    assert!(!dst.exists());
    assert!(std::fs::read_dir(work.path())?.all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".partial")
    }));
    assert_eq!(
        node.metric("stemma_request_errors_total{kind=\"get\",error=\"corrupt\"}")?,
        2.0
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_put_either_finishes_it_or_rolls_it_back() -> anyhow::Result<()> {
    let seed = seed_from_env(7);
    let mut node = TestNode::start(&[])?;
    let work = tempfile::tempdir()?;
    let big = work.path().join("big");
    random_file(&big, 100 * MIB, seed)?;
    let upload = spawn_upload(&node, "term/inflight", &big);
    let deadline = Instant::now() + Duration::from_secs(120);
    while node.metric("stemma_received_bytes_total")? < (20 * MIB) as f64 {
        assert!(Instant::now() < deadline, "the upload never got going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(node.terminate()?, Some(0), "a graceful stop exits 0");
    let outcome = upload.await?;
    if let Err(e) = &outcome {
        eprintln!("the upload failed: {e}");
    }
    let acknowledged = outcome.is_ok();
    node.restart()?;
    let client = node.client().await?;
    let path = ObjectPath::parse("term/inflight")?;
    if acknowledged {
        assert_eq!(get_hash(&node, "term/inflight").await?, file_hash(&big)?);
    } else {
        assert!(matches!(client.head(&path).await, Err(Error::NotFound(_))));
        assert_eq!(node.metric("stemma_stored_bytes")?, 0.0);
    }
    eprintln!(
        "the in-flight put was {}",
        if acknowledged {
            "finished"
        } else {
            "rolled back"
        }
    );
    Ok(())
}
