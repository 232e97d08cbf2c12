//! Objects of edge-case sizes go in and come out byte-identical, through the
//! client library and through the CLI, against a real node process.

use stemma_client::{BucketName, ObjectPath, PutOptions};
use stemma_protocol::ChunkSize;
use stemma_tests::{TestNode, file_hash, random_file, seed_from_env};

const CHUNK: u64 = ChunkSize::DEFAULT.bytes() as u64;

/// 0 B, 1 B, exactly one chunk, one chunk + 1 byte, and 200 MiB.
const SIZES: [(u64, &str); 5] = [
    (0, "empty"),
    (1, "one-byte"),
    (CHUNK, "one-chunk"),
    (CHUNK + 1, "chunk-plus-one"),
    (200 * 1024 * 1024, "200mib"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_round_trips_are_byte_identical() -> anyhow::Result<()> {
    let seed = seed_from_env(1);
    let node = TestNode::start(&[])?;
    let client = node.client().await?;
    let work = tempfile::tempdir()?;
    for (i, (size, name)) in SIZES.iter().enumerate() {
        let src = work.path().join(name);
        random_file(&src, *size, seed + i as u64)?;
        let path = ObjectPath::parse(&format!("lib/{name}"))?;
        let options = PutOptions {
            size: Some(*size),
            ..Default::default()
        };
        let mut last_progress = 0;
        let file = tokio::fs::File::open(&src).await?;
        let stored = client
            .put(&path, file, options, |n| last_progress = n)
            .await?;
        assert_eq!(stored.info.size, *size, "{name}: stored size");
        assert_eq!(last_progress, *size, "{name}: progress reaches the size");
        assert_eq!(
            stored.info.chunks,
            size.div_ceil(CHUNK),
            "{name}: chunk count"
        );

        let dst = work.path().join(format!("{name}.out"));
        let out = tokio::fs::File::create(&dst).await?;
        let info = client.get(&path, out, |_| {}).await?;
        assert_eq!(info.object_id, stored.info.object_id);
        assert_eq!(std::fs::metadata(&dst)?.len(), *size, "{name}: length");
        assert_eq!(file_hash(&src)?, file_hash(&dst)?, "{name}: content");
        assert_eq!(client.head(&path).await?.size, *size);
    }
    let listed = client.list(&BucketName::parse("lib")?, "").await?;
    assert_eq!(listed.len(), SIZES.len());
    Ok(())
}

#[test]
fn cli_round_trips_are_byte_identical() -> anyhow::Result<()> {
    let seed = seed_from_env(2);
    let node = TestNode::start(&[])?;
    let work = tempfile::tempdir()?;
    for (i, (size, name)) in SIZES.iter().enumerate() {
        let src = work.path().join(name);
        random_file(&src, *size, seed + i as u64)?;
        let target = format!("cli/{name}");
        let put = node.cli(&["put", src.to_str().unwrap(), &target, "--json"]);
        assert!(
            put.status.success(),
            "put {name}: {}",
            String::from_utf8_lossy(&put.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&put.stdout)?;
        assert_eq!(json["size"], *size);

        let dst = work.path().join(format!("{name}.out"));
        let get = node.cli(&["get", &target, "-o", dst.to_str().unwrap(), "--quiet"]);
        assert!(
            get.status.success(),
            "get {name}: {}",
            String::from_utf8_lossy(&get.stderr)
        );
        assert_eq!(file_hash(&src)?, file_hash(&dst)?, "{name}: content");
    }
    // Standard output as the destination.
    let small = work.path().join("one-byte");
    let get = node.cli(&["get", "cli/one-byte", "-o", "-"]);
    assert!(get.status.success());
    assert_eq!(get.stdout, std::fs::read(small)?);

    // ls shows every key, stat describes one, rm removes it.
    let ls = node.cli(&["ls", "cli", "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&ls.stdout)?;
    assert_eq!(rows.len(), SIZES.len());
    let ls_prefix = node.cli(&["ls", "cli/chunk", "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&ls_prefix.stdout)?;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["key"], "chunk-plus-one");
    let stat = node.cli(&["stat", "cli/one-chunk", "--json"]);
    let info: serde_json::Value = serde_json::from_slice(&stat.stdout)?;
    assert_eq!(info["chunks"], 1);
    assert!(node.cli(&["rm", "cli/one-chunk"]).status.success());
    let gone = node.cli(&["stat", "cli/one-chunk"]);
    assert_eq!(
        gone.status.code(),
        Some(3),
        "not found has its own exit code"
    );
    assert!(String::from_utf8_lossy(&gone.stderr).contains("not found"));
    Ok(())
}
