//! Writes the fuzz targets' starting inputs into `fuzz/seeds/TARGET/`: real
//! messages of every protocol, made by the protocol's own code, and the
//! public corpora the tests use (`protocol/tests/corpora/`: OpenLineage
//! events, Apache-2.0; SQL from sqllineage's tests, MIT). `scripts/fuzz` runs
//! it before fuzzing, so the seeds follow the code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use stemma_protocol::lineage::{EdgeSpec, EntityId, LineageDoc, NewEntity, PeerSync};
use stemma_protocol::membership::{
    ClusterKey, MemberId, Membership, MembershipConfig, MembershipTimer, NodeId, NodeMeta, Output,
};
// Linked for the coverage hooks the instrumented build calls.
use libfuzzer_sys as _;
use stemma_protocol::replication::{ReplicaRequest, ReplicaResponse};
use stemma_protocol::wire::{self, FRAME_HEADER_LEN, PutFrame, Request};
use stemma_protocol::{ChunkId, ManifestBuilder};

const NOW: i64 = 1_700_000_000_000;

struct Seeds {
    dir: PathBuf,
    count: usize,
}

impl Seeds {
    fn new(root: &Path, target: &str) -> std::io::Result<Self> {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir, count: 0 })
    }

    fn add(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.count += 1;
        std::fs::write(self.dir.join(format!("seed-{:04}", self.count)), bytes)
    }

    /// The payload of `msg`'s frame (what the targets decode).
    fn message<T: serde::Serialize>(&mut self, msg: &T) -> std::io::Result<()> {
        let mut frame = Vec::new();
        wire::encode(msg, &mut frame).expect("a seed message fits a frame");
        self.add(&frame[FRAME_HEADER_LEN..])
    }
}

fn wire_messages(root: &Path) -> std::io::Result<()> {
    let mut s = Seeds::new(root, "wire_messages")?;
    s.message(&Request::Put {
        bucket: "demo".into(),
        key: "2024/report.csv".into(),
        content_type: Some("text/csv".into()),
        metadata: BTreeMap::from([("owner".into(), "finance".into())]),
        size: Some(13),
        derived_from: vec!["table:sales.orders".into()],
        job: Some("job:nightly".into()),
    })?;
    s.message(&Request::Get {
        bucket: "demo".into(),
        key: "a".into(),
    })?;
    s.message(&Request::List {
        bucket: "demo".into(),
        prefix: "2024/".into(),
        start_after: Some("2024/a".into()),
        limit: 100,
    })?;
    s.message(&Request::Lineage {
        namespace: "default".into(),
        request: br#"{"request":"stats"}"#.to_vec(),
    })?;
    s.message(&PutFrame::Data(b"region,total\n"))?;
    s.message(&PutFrame::End)?;
    let data = b"region,total\n".to_vec();
    s.message(&ReplicaRequest::PutChunk {
        id: ChunkId::of(&data),
        data: data.clone(),
    })?;
    let mut manifest = ManifestBuilder::with_metadata(None, BTreeMap::new());
    manifest.push_chunk(&data);
    let manifest = manifest.finish();
    s.add(&manifest.encode())?;
    s.message(&ReplicaRequest::PutManifest { manifest })?;
    s.message(&ReplicaRequest::GetChunk {
        id: ChunkId::of(&data),
    })?;
    s.message(&ReplicaResponse::Stored { new_bytes: 13 })?;
    s.message(&ReplicaResponse::Refused("no".into()))?;
    Ok(())
}

fn member(n: u64) -> MemberId {
    MemberId {
        node: NodeId::synthetic(n),
        generation: 0,
        addr: None,
    }
}

/// The payloads (unsealed) of three members joining and gossiping for 5 s.
fn membership_packets(root: &Path) -> std::io::Result<()> {
    let mut s = Seeds::new(root, "membership_packets")?;
    let key = ClusterKey::from_secret(b"seeds");
    let mut nodes: Vec<Membership> = (0..3)
        .map(|i| {
            let meta = NodeMeta {
                id: member(i),
                zone: format!("zone-{i}"),
                capacity: 1,
                version: "seeds".into(),
                p2p_addrs: vec!["/ip4/127.0.0.1/udp/7401/quic-v1".into()],
                client_addr: Some("127.0.0.1:7400".into()),
            };
            Membership::new(
                member(i),
                Some(meta),
                MembershipConfig::lan(3),
                key.clone(),
                i,
            )
        })
        .collect();
    for node in &mut nodes[1..] {
        node.join(NodeId::synthetic(0));
    }
    // (due, node, what): packets and timers, in time order.
    let mut pending: Vec<(Duration, usize, Result<Vec<u8>, MembershipTimer>)> = Vec::new();
    let mut now = Duration::ZERO;
    for _step in 0..2_000 {
        for (i, node) in nodes.iter_mut().enumerate() {
            for output in node.drain_outputs() {
                match output {
                    Output::Send { to, data } => {
                        let dst = u64::from_be_bytes(to.node.public_key()[..8].try_into().unwrap());
                        let (_, payload) = key.open(&data).expect("sealed with our key");
                        if s.count < 200 {
                            s.add(payload)?;
                        }
                        pending.push((now + Duration::from_millis(1), dst as usize, Ok(data)));
                    }
                    Output::Timer { timer, after } => pending.push((now + after, i, Err(timer))),
                    Output::Event(_) => {}
                }
            }
        }
        let Some(next) = (0..pending.len()).min_by_key(|&k| pending[k].0) else {
            break;
        };
        let (due, i, what) = pending.swap_remove(next);
        if due > Duration::from_secs(5) {
            break;
        }
        now = due;
        match what {
            Ok(data) => {
                let _ = nodes[i].handle_data(&data, now);
            }
            Err(timer) => nodes[i].handle_timer(timer, now),
        }
    }
    Ok(())
}

fn openlineage_events(root: &Path, corpora: &Path) -> std::io::Result<()> {
    let mut s = Seeds::new(root, "openlineage_events")?;
    let events = std::fs::read_to_string(corpora.join("openlineage/all-events.jsonl"))?;
    for line in events.lines().filter(|l| !l.trim().is_empty()) {
        s.add(line.as_bytes())?;
    }
    Ok(())
}

fn sql_lineage(root: &Path, corpora: &Path) -> std::io::Result<()> {
    let mut s = Seeds::new(root, "sql_lineage")?;
    let cases = std::fs::read_to_string(corpora.join("sqllineage-tests.jsonl"))?;
    for (n, line) in cases.lines().enumerate() {
        let Ok(case) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if let Some(sql) = case["sql"].as_str() {
            // The first byte picks the dialect.
            let mut seed = vec![n as u8];
            seed.extend_from_slice(sql.as_bytes());
            s.add(&seed)?;
        }
    }
    Ok(())
}

fn id(s: &str) -> EntityId {
    EntityId::parse(s).expect("a valid id")
}

fn lineage_sync(root: &Path) -> std::io::Result<()> {
    let mut s = Seeds::new(root, "lineage_sync")?;
    let mut a = LineageDoc::new("default", b"seed-a").expect("valid");
    a.edit(NOW, |tx| {
        tx.upsert(&NewEntity::parse("table:raw.orders")?)?;
        tx.upsert(&NewEntity::parse("table:sales.orders")?)?;
        tx.link(
            &id("table:raw.orders"),
            &id("table:sales.orders"),
            &EdgeSpec::default(),
        )
    })
    .expect("a valid edit");
    let mut b = a.fork(b"seed-b").expect("valid");
    b.edit(NOW, |tx| {
        tx.upsert(&NewEntity::parse("report:revenue")?)?;
        tx.link(
            &id("table:sales.orders"),
            &id("report:revenue"),
            &EdgeSpec::default(),
        )
    })
    .expect("a valid edit");
    let (mut to_b, mut to_a) = (PeerSync::new(), PeerSync::new());
    for _ in 0..10 {
        let mut quiet = true;
        if let Some(m) = a.generate_sync_message(&mut to_b) {
            s.add(&m)?;
            let _ = b.receive_sync(&mut to_a, &m, NOW);
            quiet = false;
        }
        if let Some(m) = b.generate_sync_message(&mut to_a) {
            s.add(&m)?;
            let _ = a.receive_sync(&mut to_b, &m, NOW);
            quiet = false;
        }
        if quiet {
            break;
        }
    }
    s.add(&a.save())?;
    b.edit(NOW, |tx| tx.upsert(&NewEntity::parse("dashboard:sales")?))
        .expect("a valid edit");
    s.add(&b.save_incremental())?;
    Ok(())
}

fn lineage_api(root: &Path) -> std::io::Result<()> {
    let mut s = Seeds::new(root, "lineage_api")?;
    let requests = [
        r#"{"request":"downstream","id":"table:raw.orders","traversal":{"depth":10,"entity_kinds":["report"],"page":{"limit":100}}}"#,
        r#"{"request":"upstream","id":"report:revenue"}"#,
        r#"{"request":"impact","id":"job:load","traversal":{}}"#,
        r#"{"request":"path","from":"table:raw.orders","to":"report:revenue","options":{"max_depth":5}}"#,
        r#"{"request":"rank","options":{"page":{"limit":2}}}"#,
        r#"{"request":"islands"}"#,
        r#"{"request":"root_cause","id":"report:revenue","options":{"depth":3}}"#,
        r#"{"request":"recover","id":"table:raw.orders","options":{}}"#,
        r#"{"request":"audit","options":{}}"#,
        r#"{"request":"names","rules":[{"kind":"table","pattern":"^[a-z_]+\\.[a-z_]+$"}]}"#,
        r#"{"request":"stats"}"#,
        r#"{"request":"heads"}"#,
        r#"{"request":"show","id":"table:sales.orders"}"#,
    ];
    for request in requests {
        s.add(request.as_bytes())?;
    }
    Ok(())
}

fn sim_scenarios(root: &Path, scenarios: &Path) -> std::io::Result<()> {
    let mut s = Seeds::new(root, "sim_scenarios")?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenarios)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    for file in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "toml"))
    {
        s.add(&std::fs::read(file)?)?;
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = fuzz.join("seeds");
    let corpora = fuzz.join("../protocol/tests/corpora");
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    wire_messages(&root)?;
    membership_packets(&root)?;
    openlineage_events(&root, &corpora)?;
    sql_lineage(&root, &corpora)?;
    lineage_sync(&root)?;
    lineage_api(&root)?;
    sim_scenarios(&root, &fuzz.join("../simulations/scenarios"))?;
    Ok(())
}
