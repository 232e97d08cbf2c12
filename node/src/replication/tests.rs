//! The replica side against a real store: what peers send is checked before
//! it is stored, registers merge by the CRDT rule, and held replicas survive
//! a restart's orphan sweep, and the collector takes only unreferenced data.

use std::sync::Arc;

use stemma_protocol::membership::NodeId;
use stemma_protocol::names::{Hlc, NameEntry, NameValue};
use stemma_protocol::placement::{NodeSpec, PlacementConfig};
use stemma_protocol::replication::{
    ItemKind, MAX_REFS_PER_REQUEST, NameRegister, Ref, RefState, ReplicaRequest, ReplicaResponse,
    VersionId, VersionName, version_id,
};
use stemma_protocol::{BucketName, ChunkId, ManifestBuilder, ObjectId, ObjectKey};

use super::{Replication, Settings};
use crate::metrics::Metrics;
use crate::p2p::P2pHandle;
use crate::store::{Durability, GcClock, GcScan, Store};

fn replication(dir: &std::path::Path) -> Arc<Replication> {
    let (store, writer) = Store::open(dir, Durability::Immediate).unwrap();
    Replication::new(Settings {
        store,
        writer,
        p2p: P2pHandle::detached(),
        control: libp2p_stream::Behaviour::new().new_control(),
        me: NodeSpec::new(NodeId::synthetic(1), "z", 1),
        config: PlacementConfig::default(),
        write_quorum: 2,
        gc_grace: std::time::Duration::from_secs(3600),
        tombstone_grace: std::time::Duration::from_secs(86_400),
        metrics: Arc::new(Metrics::default()),
    })
}

fn register(wall: u64, node: u64, object: u8) -> NameRegister {
    NameRegister {
        entry: NameEntry {
            stamp: Hlc::new(wall, 0, NodeId::synthetic(node)),
            value: NameValue::Object(ObjectId::from_bytes([object; 32])),
        },
        size: 3,
        modified_ms: wall,
    }
}

/// A write of `photos/<key>`'s register.
fn put_name(key: &str, register: NameRegister) -> ReplicaRequest {
    ReplicaRequest::PutName {
        bucket: "photos".into(),
        key: key.into(),
        register,
    }
}

/// A read of `photos/<key>`'s register.
fn get_name(key: &str) -> ReplicaRequest {
    ReplicaRequest::GetName {
        bucket: "photos".into(),
        key: key.into(),
    }
}

#[tokio::test]
async fn a_chunk_whose_bytes_do_not_match_its_id_is_refused_counted_and_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let r = replication(dir.path());
    let id = ChunkId::of(b"the real bytes");
    let answer = r
        .answer(ReplicaRequest::PutChunk {
            id,
            data: b"other bytes".to_vec(),
        })
        .await;
    assert!(matches!(answer, ReplicaResponse::Refused(_)), "{answer:?}");
    assert_eq!(r.metrics.replication.refused_chunks.get(), 1);
    assert_eq!(
        r.answer(ReplicaRequest::GetChunk { id }).await,
        ReplicaResponse::Missing
    );
    let good = ReplicaRequest::PutChunk {
        id,
        data: b"the real bytes".to_vec(),
    };
    assert_eq!(
        r.answer(good.clone()).await,
        ReplicaResponse::Stored { new_bytes: 14 }
    );
    assert_eq!(
        r.answer(good).await,
        ReplicaResponse::Stored { new_bytes: 0 }
    );
}

#[tokio::test]
async fn a_corrupt_copy_is_reported_and_replaced_by_a_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let r = replication(dir.path());
    let data = b"some chunk".to_vec();
    let id = ChunkId::of(&data);
    let put = ReplicaRequest::PutChunk {
        id,
        data: data.clone(),
    };
    r.answer(put.clone()).await;
    r.writer.corrupt_for_tests(id).await.unwrap();
    assert_eq!(
        r.answer(ReplicaRequest::GetChunk { id }).await,
        ReplicaResponse::Corrupt
    );
    r.answer(put).await;
    assert_eq!(
        r.answer(ReplicaRequest::GetChunk { id }).await,
        ReplicaResponse::Chunk(data)
    );
}

#[tokio::test]
async fn name_registers_merge_by_the_newest_stamp_and_bad_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let r = replication(dir.path());
    let (older, newer) = (register(1_000, 2, 1), register(2_000, 3, 2));
    for first in [newer, older] {
        r.answer(put_name("cat", first)).await;
    }
    assert_eq!(
        r.answer(get_name("cat")).await,
        ReplicaResponse::Name(Some(newer))
    );
    let bad = ReplicaRequest::PutName {
        bucket: "No Such Bucket".into(),
        key: "k".into(),
        register: newer,
    };
    assert!(matches!(r.answer(bad).await, ReplicaResponse::Refused(_)));
    // A stamp far in the future is refused: it would drag our clock along.
    let future = register(u64::MAX / 2, 2, 9);
    assert!(matches!(
        r.answer(put_name("cat", future)).await,
        ReplicaResponse::Refused(_)
    ));
}

#[tokio::test]
async fn held_replicas_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = b"held by a replica".to_vec();
    let id = ChunkId::of(&data);
    let mut builder = ManifestBuilder::new(None);
    builder.push_chunk(&data);
    let manifest = builder.finish();
    let object = manifest.object_id();
    {
        let r = replication(dir.path());
        r.answer(ReplicaRequest::PutChunk {
            id,
            data: data.clone(),
        })
        .await;
        r.answer(ReplicaRequest::PutManifest {
            manifest: manifest.clone(),
        })
        .await;
        r.writer.close().await;
    }
    let r = replication(dir.path());
    assert_eq!(
        r.answer(ReplicaRequest::GetChunk { id }).await,
        ReplicaResponse::Chunk(data)
    );
    assert_eq!(
        r.answer(ReplicaRequest::GetManifest { object }).await,
        ReplicaResponse::Manifest(manifest)
    );
}

#[tokio::test]
async fn the_collector_takes_only_what_no_live_reference_holds() {
    let dir = tempfile::tempdir().unwrap();
    let r = replication(dir.path());
    let (kept, dropped) = (b"kept chunk".to_vec(), b"dropped chunk".to_vec());
    let (k, d) = (ChunkId::of(&kept), ChunkId::of(&dropped));
    for data in [&kept, &dropped] {
        r.answer(ReplicaRequest::PutChunk {
            id: ChunkId::of(data),
            data: data.clone(),
        })
        .await;
    }
    let mut builder = ManifestBuilder::new(None);
    builder.push_chunk(b"a chunk stored elsewhere");
    let orphan = builder.finish();
    r.answer(ReplicaRequest::PutManifest {
        manifest: orphan.clone(),
    })
    .await;
    let refs = vec![
        Ref {
            target: *k.as_bytes(),
            version: VersionId([1; 32]),
            state: RefState::Live,
        },
        Ref {
            target: *d.as_bytes(),
            version: VersionId([2; 32]),
            state: RefState::Dead { since_millis: 5 },
        },
    ];
    assert_eq!(
        r.answer(ReplicaRequest::PutRefs { refs, name: None }).await,
        ReplicaResponse::Stored { new_bytes: 0 }
    );
    assert_eq!(
        r.answer(ReplicaRequest::LiveRefs {
            targets: vec![*k.as_bytes(), *d.as_bytes()],
        })
        .await,
        ReplicaResponse::LiveRefs(vec![*k.as_bytes()])
    );
    let too_many = ReplicaRequest::LiveRefs {
        targets: vec![[0; 32]; MAX_REFS_PER_REQUEST + 1],
    };
    assert!(matches!(
        r.answer(too_many).await,
        ReplicaResponse::Refused(_)
    ));

    // Within the grace of their writes, nothing goes.
    let clock = |after_ms| GcClock {
        now_millis: crate::clock::unix_millis() + after_ms,
        grace_millis: 60_000,
        tombstone_grace_millis: 86_400_000,
    };
    assert_eq!(r.store.gc_scan(clock(0)).unwrap(), GcScan::default());
    // The dead reference expired long ago: anti-entropy no longer spreads it.
    let inventory = r
        .store
        .replica_inventory(
            ItemKind::Chunk,
            PlacementConfig::default().partitions,
            clock(0),
        )
        .unwrap();
    let offered: Vec<[u8; 32]> = inventory.values().flatten().map(|(key, _)| *key).collect();
    assert_eq!(offered, vec![*k.as_bytes()]);

    let later = clock(61_000);
    let scan = r.store.gc_scan(later).unwrap();
    let mut expected = vec![
        (ItemKind::Chunk, *d.as_bytes()),
        (ItemKind::Manifest, *orphan.object_id().as_bytes()),
    ];
    expected.sort();
    let mut found = scan.collectable.clone();
    found.sort();
    assert_eq!(found, expected);
    let collected = r.writer.collect(scan, later).await.unwrap();
    assert_eq!(
        (collected.chunks, collected.bytes, collected.manifests),
        (1, dropped.len() as u64, 1)
    );
    assert_eq!(
        r.answer(ReplicaRequest::GetChunk { id: d }).await,
        ReplicaResponse::Missing
    );
    assert_eq!(
        r.answer(ReplicaRequest::GetChunk { id: k }).await,
        ReplicaResponse::Chunk(kept)
    );
}

#[tokio::test]
async fn a_manifest_owner_keeps_a_put_s_version_unconfirmed_until_it_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let r = replication(dir.path());
    let (bucket, key) = (
        BucketName::parse("photos").unwrap(),
        ObjectKey::parse("cat").unwrap(),
    );
    let stamp = Hlc::new(1_000, 0, NodeId::synthetic(2));
    let object = ObjectId::from_bytes([4; 32]);
    let name = VersionName::new(&bucket, &key, stamp, object);
    let version = version_id(&bucket, &key, &stamp);
    let refs = |version, state| {
        vec![Ref {
            target: *object.as_bytes(),
            version,
            state,
        }]
    };
    let long_after = GcClock {
        now_millis: crate::clock::unix_millis() + 3_600_000,
        grace_millis: 60_000,
        tombstone_grace_millis: 86_400_000,
    };
    let unconfirmed = || r.store.unconfirmed_versions(long_after, 10).unwrap();

    // References of another version than the name's are refused, unstored.
    let other = VersionId([9; 32]);
    let answer = r
        .answer(ReplicaRequest::PutRefs {
            refs: refs(other, RefState::Live),
            name: Some(name.clone()),
        })
        .await;
    assert!(
        matches!(&answer, ReplicaResponse::Refused(why) if why.contains("sent with the name of version")),
        "{answer:?}"
    );
    assert_eq!(
        r.answer(ReplicaRequest::LiveRefs {
            targets: vec![*object.as_bytes()]
        })
        .await,
        ReplicaResponse::LiveRefs(vec![])
    );
    assert_eq!(unconfirmed(), (vec![], 0));

    // Dead references with a name keep nothing; live ones keep the version.
    let dead = RefState::Dead { since_millis: 5 };
    let stored = ReplicaResponse::Stored { new_bytes: 0 };
    let send = |state| ReplicaRequest::PutRefs {
        refs: refs(version, state),
        name: Some(name.clone()),
    };
    assert_eq!(r.answer(send(dead)).await, stored);
    assert_eq!(unconfirmed(), (vec![], 0));
    let dog = VersionName::new(&bucket, &ObjectKey::parse("dog").unwrap(), stamp, object);
    let dog_version = dog.version().unwrap();
    for name in [&name, &dog] {
        let version = name.version().unwrap();
        let answer = r
            .answer(ReplicaRequest::PutRefs {
                refs: refs(version, RefState::Live),
                name: Some(name.clone()),
            })
            .await;
        assert_eq!(answer, stored);
    }
    // Not due within the grace; due after it.
    let now = GcClock {
        now_millis: crate::clock::unix_millis(),
        ..long_after
    };
    assert_eq!(r.store.unconfirmed_versions(now, 10).unwrap(), (vec![], 2));
    let (mut due, total) = unconfirmed();
    due.sort_by_key(|(v, _)| *v);
    let mut expected = vec![(version, name), (dog_version, dog)];
    expected.sort_by_key(|(v, _)| *v);
    assert_eq!((due, total), (expected, 2));

    // Checked as named, a version is forgotten; as orphaned, it becomes a
    // dead version, whose references the next pass marks dead on their
    // owners.
    r.writer
        .versions_checked(vec![version], vec![(dog_version, object)])
        .await
        .unwrap();
    assert_eq!(unconfirmed(), (vec![], 0));
    let dead_versions = r.store.dead_versions().unwrap();
    assert_eq!(dead_versions.len(), 1);
    assert_eq!(
        (dead_versions[0].0, dead_versions[0].1),
        (dog_version, object)
    );
}

#[tokio::test]
async fn a_name_owner_remembers_the_version_a_merge_beat() {
    let dir = tempfile::tempdir().unwrap();
    let r = replication(dir.path());
    let (older, newer) = (register(1_000, 2, 1), register(2_000, 3, 2));
    r.answer(put_name("cat", older)).await;
    assert!(r.store.dead_versions().unwrap().is_empty());
    r.answer(put_name("cat", newer)).await;
    let dead = r.store.dead_versions().unwrap();
    let (bucket, key) = (
        BucketName::parse("photos").unwrap(),
        ObjectKey::parse("cat").unwrap(),
    );
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].0, version_id(&bucket, &key, &older.entry.stamp));
    assert_eq!(Some(dead[0].1), older.entry.object());
    r.writer.versions_marked(vec![dead[0].0]).await.unwrap();
    assert!(r.store.dead_versions().unwrap().is_empty());
}

#[tokio::test]
async fn a_tombstone_older_than_its_grace_is_collected_and_a_live_name_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let r = replication(dir.path());
    let mut tombstone = register(1_000, 2, 0);
    tombstone.entry.value = NameValue::Deleted;
    let live = register(1_000, 2, 1);
    r.answer(put_name("gone", tombstone)).await;
    r.answer(put_name("kept", live)).await;
    let clock = |now_millis| GcClock {
        now_millis,
        grace_millis: 60_000,
        tombstone_grace_millis: 10_000,
    };
    // Within the grace, the tombstone stays: it still beats a late older write.
    assert!(
        r.store
            .gc_scan(clock(10_999))
            .unwrap()
            .tombstones
            .is_empty()
    );
    let scan = r.store.gc_scan(clock(11_000)).unwrap();
    assert_eq!(scan.tombstones, vec![("photos".into(), "gone".into())]);
    let collected = r.writer.collect(scan, clock(11_000)).await.unwrap();
    assert_eq!(collected.tombstones, 1);
    assert_eq!(
        r.answer(get_name("gone")).await,
        ReplicaResponse::Name(None)
    );
    assert_eq!(
        r.answer(get_name("kept")).await,
        ReplicaResponse::Name(Some(live))
    );
}

#[tokio::test]
async fn after_a_restart_the_clock_resumes_above_every_stamp_it_made() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let r = replication(dir.path());
        let stamp = r.stamp();
        r.persist_clock_bound().await.unwrap();
        r.writer.close().await;
        stamp
    };
    let r = replication(dir.path());
    let bound = r.store.clock_bound().unwrap();
    assert!(bound > before.wall_millis, "the bound leads the clock");
    let after = r.stamp();
    assert!(after > before, "{after:?} is not above {before:?}");
    assert!(
        after.wall_millis >= bound,
        "the clock resumed from the persisted bound, not from the wall clock alone"
    );
}

#[tokio::test]
async fn holds_names_the_replica_items_held_and_a_hand_off_drops_exactly_those() {
    let dir = tempfile::tempdir().unwrap();
    let r = replication(dir.path());
    let data = b"a chunk of a partition moved away".to_vec();
    let chunk = *ChunkId::of(&data).as_bytes();
    r.answer(ReplicaRequest::PutChunk {
        id: ChunkId::of(&data),
        data: data.clone(),
    })
    .await;
    let mut builder = ManifestBuilder::new(None);
    builder.push_chunk(&data);
    let manifest = builder.finish();
    let object = *manifest.object_id().as_bytes();
    r.answer(ReplicaRequest::PutManifest { manifest }).await;
    let holds = |kind, keys: Vec<[u8; 32]>| ReplicaRequest::Holds { kind, keys };

    let absent = [9; 32];
    assert_eq!(
        r.answer(holds(ItemKind::Chunk, vec![absent, chunk])).await,
        ReplicaResponse::Held(vec![chunk])
    );
    assert_eq!(
        r.answer(holds(ItemKind::Manifest, vec![object, chunk]))
            .await,
        ReplicaResponse::Held(vec![object])
    );
    assert_eq!(
        r.answer(holds(ItemKind::Name, vec![chunk])).await,
        ReplicaResponse::Held(vec![])
    );
    let too_many = holds(ItemKind::Chunk, vec![chunk; MAX_REFS_PER_REQUEST + 1]);
    assert!(matches!(
        r.answer(too_many).await,
        ReplicaResponse::Refused(_)
    ));

    let handed = r
        .writer
        .hand_off(vec![(ItemKind::Chunk, chunk), (ItemKind::Manifest, object)])
        .await
        .unwrap();
    assert_eq!(
        (handed.chunks, handed.bytes, handed.manifests),
        (1, data.len() as u64, 1)
    );
    assert_eq!(r.store.read_chunk(&ChunkId::of(&data)).unwrap(), None);
    assert_eq!(
        r.answer(holds(ItemKind::Chunk, vec![chunk])).await,
        ReplicaResponse::Held(vec![])
    );
    // Handing off what is no longer here does nothing.
    let again = r
        .writer
        .hand_off(vec![(ItemKind::Chunk, chunk)])
        .await
        .unwrap();
    assert_eq!(again.chunks, 0);
}
