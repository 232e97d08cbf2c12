//! The store's single writer: one thread that owns every write transaction and
//! folds queued requests into one commit, so that many concurrent uploads share
//! each fsync instead of paying one each.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{ReadableTable, Table, WriteTransaction};
use serde::{Deserialize, Serialize};
use stemma_protocol::replication::{
    GcVerdict, ItemKind, NameRegister, Ref, RefState, VersionId, VersionName, gc_verdict,
    superseded, version_id,
};
use stemma_protocol::{BucketName, ChunkId, Manifest, ObjectId, ObjectKey};
use tokio::sync::{mpsc, oneshot};

use super::gc::{Collected, GcClock, GcScan, refs_range};
use super::tables::{self, NameRecord, stat};
use super::{Context, Store, StoreError};

/// When an acknowledged write is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Every acknowledged put or delete has been fsync'd (the default).
    #[default]
    Immediate,
    /// Acknowledged writes reach the disk within about a second; a power loss may
    /// lose that last second, never the store's consistency.
    Relaxed,
}

/// Requests folded into one transaction at most.
const MAX_BATCH_OPS: usize = 64;
/// Chunk bytes folded into one transaction at most.
const MAX_BATCH_BYTES: usize = 64 * 1024 * 1024;
/// In relaxed mode, the longest time between two durable commits.
const RELAXED_SYNC_INTERVAL: Duration = Duration::from_secs(1);

enum Op {
    Chunks {
        chunks: Vec<(ChunkId, Vec<u8>)>,
        reply: oneshot::Sender<Result<u64, StoreError>>,
    },
    Commit {
        bucket: BucketName,
        key: ObjectKey,
        manifest: Manifest,
        modified_ms: u64,
        reply: oneshot::Sender<Result<NameRecord, StoreError>>,
    },
    Delete {
        bucket: BucketName,
        key: ObjectKey,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Release {
        chunks: Vec<ChunkId>,
    },
    ReplicaChunk {
        id: ChunkId,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<ChunkWrite, StoreError>>,
    },
    ReplicaManifest {
        manifest: Manifest,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    ReplicaName {
        bucket: BucketName,
        key: ObjectKey,
        register: NameRegister,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    Corrupt {
        id: ChunkId,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Refs {
        refs: Vec<Ref>,
        name: Option<VersionName>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Collect {
        scan: GcScan,
        clock: GcClock,
        reply: oneshot::Sender<Result<Collected, StoreError>>,
    },
    VersionsChecked {
        named: Vec<VersionId>,
        orphaned: Vec<(VersionId, ObjectId)>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    VersionsMarked {
        versions: Vec<VersionId>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    HandOff {
        items: Vec<(ItemKind, [u8; 32])>,
        reply: oneshot::Sender<Result<Collected, StoreError>>,
    },
    ClockBound {
        millis: u64,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Stop,
}

/// What storing a replica chunk did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkWrite {
    /// The chunk was new here.
    Added,
    /// A good copy was already here.
    Present,
    /// The stored copy did not match its hash and was replaced.
    Repaired,
}

impl Op {
    fn bytes(&self) -> usize {
        match self {
            Op::Chunks { chunks, .. } => chunks.iter().map(|(_, d)| d.len()).sum(),
            Op::ReplicaChunk { data, .. } => data.len(),
            _ => 0,
        }
    }

    /// Whether the caller waits for this to be durable.
    fn needs_sync(&self) -> bool {
        matches!(
            self,
            Op::Commit { .. }
                | Op::Delete { .. }
                | Op::ReplicaChunk { .. }
                | Op::ReplicaManifest { .. }
                | Op::ReplicaName { .. }
                | Op::Refs { .. }
                | Op::Collect { .. }
                | Op::ClockBound { .. }
        )
    }
}

/// Handle to the writer thread. Clones share the thread.
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::Sender<Op>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Op::Chunks { .. } => "Chunks",
            Op::Commit { .. } => "Commit",
            Op::Delete { .. } => "Delete",
            Op::Release { .. } => "Release",
            Op::ReplicaChunk { .. } => "ReplicaChunk",
            Op::ReplicaManifest { .. } => "ReplicaManifest",
            Op::ReplicaName { .. } => "ReplicaName",
            Op::Corrupt { .. } => "Corrupt",
            Op::Refs { .. } => "Refs",
            Op::Collect { .. } => "Collect",
            Op::VersionsChecked { .. } => "VersionsChecked",
            Op::VersionsMarked { .. } => "VersionsMarked",
            Op::HandOff { .. } => "HandOff",
            Op::ClockBound { .. } => "ClockBound",
            Op::Stop => "Stop",
        })
    }
}

impl Writer {
    pub(super) fn start(store: Store, durability: Durability) -> Result<Writer, StoreError> {
        let freed = free_orphans(&store)?;
        if freed > 0 {
            tracing::info!(chunks = freed, "freed chunks left by interrupted uploads");
        }
        let (tx, rx) = mpsc::channel(256);
        let thread = std::thread::Builder::new()
            .name("stemma-writer".into())
            .spawn(move || run(store, durability, rx))
            .context("starting the writer thread")?;
        Ok(Writer {
            tx,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    /// Stores chunks (those already present are skipped). Returns the bytes added.
    /// Not durable by itself: the commit that references them is.
    pub async fn write_chunks(&self, chunks: Vec<(ChunkId, Vec<u8>)>) -> Result<u64, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Op::Chunks { chunks, reply }, rx).await
    }

    /// Queues chunks for writing and returns at once with the receiver of the
    /// result, so an upload can keep several writes in flight. Queue order is
    /// write order.
    pub async fn queue_chunks(
        &self,
        chunks: Vec<(ChunkId, Vec<u8>)>,
    ) -> Result<oneshot::Receiver<Result<u64, StoreError>>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Op::Chunks { chunks, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(rx)
    }

    /// Stores `manifest` and points `bucket/key` at it, durably. Fails with
    /// [`StoreError::MissingChunk`] (and changes nothing) if a chunk is missing.
    pub async fn commit(
        &self,
        bucket: BucketName,
        key: ObjectKey,
        manifest: Manifest,
        modified_ms: u64,
    ) -> Result<NameRecord, StoreError> {
        let (reply, rx) = oneshot::channel();
        let op = Op::Commit {
            bucket,
            key,
            manifest,
            modified_ms,
            reply,
        };
        self.send(op, rx).await
    }

    /// Removes a name, durably; frees what no other name uses.
    pub async fn delete(&self, bucket: BucketName, key: ObjectKey) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Op::Delete { bucket, key, reply }, rx).await
    }

    /// Frees chunks an abandoned upload wrote, unless something references or pins
    /// them. Fire and forget.
    pub fn release(&self, chunks: Vec<ChunkId>) {
        if !chunks.is_empty() {
            let _ = self.tx.try_send(Op::Release { chunks });
        }
    }

    /// Stores chunk `id` as a replica, durably, and marks it held (never freed
    /// as an orphan). The caller has checked `data` against `id`; a stored
    /// copy that no longer matches is replaced.
    pub async fn replica_chunk(
        &self,
        id: ChunkId,
        data: Vec<u8>,
    ) -> Result<ChunkWrite, StoreError> {
        debug_assert!(id.matches(&data));
        let (reply, rx) = oneshot::channel();
        self.send(Op::ReplicaChunk { id, data, reply }, rx).await
    }

    /// Stores a manifest as a replica, durably. Returns whether it was new.
    pub async fn replica_manifest(&self, manifest: Manifest) -> Result<bool, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Op::ReplicaManifest { manifest, reply }, rx).await
    }

    /// Merges a name's register by the last-writer-wins rule, durably.
    /// Returns whether it won (replaced what was stored, or was the first).
    pub async fn replica_name(
        &self,
        bucket: BucketName,
        key: ObjectKey,
        register: NameRegister,
    ) -> Result<bool, StoreError> {
        let (reply, rx) = oneshot::channel();
        let op = Op::ReplicaName {
            bucket,
            key,
            register,
            reply,
        };
        self.send(op, rx).await
    }

    /// Merges references into the stored ones, durably; with their version's
    /// name (all of `refs` are then of that version), keeps the version as
    /// unconfirmed if it holds a live one.
    pub async fn put_refs(
        &self,
        refs: Vec<Ref>,
        name: Option<VersionName>,
    ) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Op::Refs { refs, name, reply }, rx).await
    }

    /// Forgets checked unconfirmed versions: `named` ones the name owners
    /// hold; `orphaned` ones are recorded as dead (as a name owner records a
    /// beaten version), so that their references are marked dead.
    pub async fn versions_checked(
        &self,
        named: Vec<VersionId>,
        orphaned: Vec<(VersionId, ObjectId)>,
    ) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        let op = Op::VersionsChecked {
            named,
            orphaned,
            reply,
        };
        self.send(op, rx).await
    }

    /// Drops the targets of `scan` that the GC rule still lets go (checked
    /// again in the write), and forgets its forgettable references, durably.
    pub async fn collect(&self, scan: GcScan, clock: GcClock) -> Result<Collected, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Op::Collect { scan, clock, reply }, rx).await
    }

    /// Forgets dead versions whose references were marked dead on the owners.
    pub async fn versions_marked(&self, versions: Vec<VersionId>) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Op::VersionsMarked { versions, reply }, rx).await
    }

    /// Drops this node's copies of chunks and manifests of partitions it does
    /// not own, which every owner showed it holds
    /// (`stemma_protocol::replication::handoff_candidates`). A chunk a
    /// single-node object also uses stays. Not synced: a hand-off lost to a
    /// crash is done again by a later round.
    pub async fn hand_off(
        &self,
        items: Vec<(ItemKind, [u8; 32])>,
    ) -> Result<Collected, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Op::HandOff { items, reply }, rx).await
    }

    /// Persists, durably, a wall time the clock's stamps have not passed.
    pub async fn set_clock_bound(&self, millis: u64) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Op::ClockBound { millis, reply }, rx).await
    }

    /// Test hook: flips the first byte of a stored chunk (its id unchanged), so
    /// that tests can show corruption is detected and repaired.
    pub async fn corrupt_for_tests(&self, id: ChunkId) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Op::Corrupt { id, reply }, rx).await
    }

    /// Finishes the writes already queued, then stops the thread. Later calls
    /// fail with [`StoreError::Closed`].
    pub async fn close(&self) {
        let thread = self.thread.lock().expect("writer lock").take();
        if let Some(thread) = thread {
            let _ = self.tx.send(Op::Stop).await;
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    async fn send<T>(
        &self,
        op: Op,
        rx: oneshot::Receiver<Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.tx.send(op).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

fn run(store: Store, durability: Durability, mut rx: mpsc::Receiver<Op>) {
    let mut last_sync = Instant::now();
    let mut stopping = false;
    while !stopping {
        let Some(first) = rx.blocking_recv() else {
            break;
        };
        let mut bytes = first.bytes();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_OPS && bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(op) => {
                    bytes += op.bytes();
                    batch.push(op);
                }
                Err(_) => break,
            }
        }
        if let Some(at) = batch.iter().position(|op| matches!(op, Op::Stop)) {
            stopping = true;
            // Anything queued after the stop is refused (its reply is dropped).
            batch.truncate(at);
            rx.close();
        }
        if batch.is_empty() {
            continue;
        }
        let wants_sync = batch.iter().any(Op::needs_sync);
        let sync = wants_sync
            && (durability == Durability::Immediate
                || last_sync.elapsed() >= RELAXED_SYNC_INTERVAL);
        if sync {
            last_sync = Instant::now();
        }
        apply(&store, batch, sync);
    }
}

/// A reply waiting for its transaction to commit.
enum Pending {
    Bytes(
        oneshot::Sender<Result<u64, StoreError>>,
        Result<u64, StoreError>,
    ),
    Name(
        oneshot::Sender<Result<NameRecord, StoreError>>,
        Result<NameRecord, StoreError>,
    ),
    Unit(
        oneshot::Sender<Result<(), StoreError>>,
        Result<(), StoreError>,
    ),
    Chunk(
        oneshot::Sender<Result<ChunkWrite, StoreError>>,
        Result<ChunkWrite, StoreError>,
    ),
    Flag(
        oneshot::Sender<Result<bool, StoreError>>,
        Result<bool, StoreError>,
    ),
    Collected(
        oneshot::Sender<Result<Collected, StoreError>>,
        Result<Collected, StoreError>,
    ),
}

impl Pending {
    /// Replies; if the transaction failed, every op in it failed.
    fn send(self, failure: Option<&StoreError>) {
        match self {
            Pending::Bytes(tx, r) => drop(tx.send(fail_map(r, failure))),
            Pending::Name(tx, r) => drop(tx.send(fail_map(r, failure))),
            Pending::Unit(tx, r) => drop(tx.send(fail_map(r, failure))),
            Pending::Chunk(tx, r) => drop(tx.send(fail_map(r, failure))),
            Pending::Flag(tx, r) => drop(tx.send(fail_map(r, failure))),
            Pending::Collected(tx, r) => drop(tx.send(fail_map(r, failure))),
        }
    }

    fn storage_error(&self) -> Option<StoreError> {
        let e = match self {
            Pending::Bytes(_, Err(e))
            | Pending::Name(_, Err(e))
            | Pending::Unit(_, Err(e))
            | Pending::Chunk(_, Err(e))
            | Pending::Flag(_, Err(e))
            | Pending::Collected(_, Err(e)) => e,
            _ => return None,
        };
        matches!(e, StoreError::Storage { .. }).then(|| StoreError::Storage {
            context: "writing",
            message: e.to_string(),
        })
    }
}

fn fail_map<T>(r: Result<T, StoreError>, failure: Option<&StoreError>) -> Result<T, StoreError> {
    match failure {
        Some(e) => Err(StoreError::Storage {
            context: "committing",
            message: e.to_string(),
        }),
        None => r,
    }
}

fn apply(store: &Store, batch: Vec<Op>, sync: bool) {
    let mut pending = Vec::with_capacity(batch.len());
    let outcome = (|| -> Result<(), StoreError> {
        let mut txn = store.db.begin_write().context("starting a write")?;
        if !sync {
            txn.set_durability(redb::Durability::None)
                .context("starting a write")?;
        }
        {
            let mut t = Tables::open(&txn)?;
            let now = crate::clock::unix_millis();
            for op in batch {
                match op {
                    Op::Chunks { chunks, reply } => {
                        let r = t.write_chunks(&chunks);
                        pending.push(Pending::Bytes(reply, r));
                    }
                    Op::Commit {
                        bucket,
                        key,
                        manifest,
                        modified_ms,
                        reply,
                    } => {
                        let r = t.commit(store, &bucket, &key, &manifest, modified_ms);
                        pending.push(Pending::Name(reply, r));
                    }
                    Op::Delete { bucket, key, reply } => {
                        let r = t.delete(store, &bucket, &key);
                        pending.push(Pending::Unit(reply, r));
                    }
                    Op::Release { chunks } => {
                        if let Err(e) = t.release_orphans(store, &chunks) {
                            tracing::warn!(error = %e, "could not free orphan chunks");
                        }
                    }
                    Op::ReplicaChunk { id, data, reply } => {
                        let r = t.replica_chunk(&id, &data, now);
                        pending.push(Pending::Chunk(reply, r));
                    }
                    Op::ReplicaManifest { manifest, reply } => {
                        let r = t.replica_manifest(&manifest, now);
                        pending.push(Pending::Flag(reply, r));
                    }
                    Op::ReplicaName {
                        bucket,
                        key,
                        register,
                        reply,
                    } => {
                        let r = t.replica_name(&bucket, &key, &register, now);
                        pending.push(Pending::Flag(reply, r));
                    }
                    Op::Corrupt { id, reply } => {
                        let r = t.corrupt(&id);
                        pending.push(Pending::Unit(reply, r));
                    }
                    Op::Refs { refs, name, reply } => {
                        let r = t.merge_refs(&refs).and_then(|()| match name {
                            Some(name) if refs.iter().any(|r| r.state == RefState::Live) => {
                                t.unconfirmed(&refs[0].version, &name, now)
                            }
                            _ => Ok(()),
                        });
                        pending.push(Pending::Unit(reply, r));
                    }
                    Op::VersionsChecked {
                        named,
                        orphaned,
                        reply,
                    } => {
                        let r = t.versions_checked(&named, &orphaned, now);
                        pending.push(Pending::Unit(reply, r));
                    }
                    Op::Collect { scan, clock, reply } => {
                        let r = t.collect(&scan, clock);
                        pending.push(Pending::Collected(reply, r));
                    }
                    Op::HandOff { items, reply } => {
                        let r = t.hand_off(&items);
                        pending.push(Pending::Collected(reply, r));
                    }
                    Op::ClockBound { millis, reply } => {
                        let r = t
                            .stats
                            .insert(stat::CLOCK_BOUND, millis)
                            .context("persisting the clock bound")
                            .map(drop);
                        pending.push(Pending::Unit(reply, r));
                    }
                    Op::VersionsMarked { versions, reply } => {
                        let r = versions.iter().try_for_each(|v| {
                            t.dead_versions
                                .remove(&v.0)
                                .context("forgetting a dead version")
                                .map(drop)
                        });
                        pending.push(Pending::Unit(reply, r));
                    }
                    Op::Stop => {}
                }
                // A storage error may leave the transaction half-applied: abort it all.
                if let Some(e) = pending.iter().find_map(Pending::storage_error) {
                    return Err(e);
                }
            }
        }
        txn.commit().context("committing")
    })();
    let failure = outcome.err();
    if let Some(e) = &failure {
        tracing::error!(error = %e, "write transaction failed; every write in it is rolled back");
    }
    for p in pending {
        p.send(failure.as_ref());
    }
}

/// The tables of one write transaction, with the store's write rules.
struct Tables<'t> {
    chunks: Table<'t, &'static [u8; 32], &'static [u8]>,
    chunk_refs: Table<'t, &'static [u8; 32], u64>,
    manifests: Table<'t, &'static [u8; 32], &'static [u8]>,
    object_refs: Table<'t, &'static [u8; 32], u64>,
    names: Table<'t, (&'static str, &'static str), &'static [u8]>,
    stats: Table<'t, &'static str, u64>,
    holds: Table<'t, &'static [u8; 32], u64>,
    replica_manifests: Table<'t, &'static [u8; 32], &'static [u8]>,
    replica_names: Table<'t, (&'static str, &'static str), &'static [u8]>,
    refs: Table<'t, (&'static [u8; 32], &'static [u8; 32]), u64>,
    written: Table<'t, &'static [u8; 32], u64>,
    dead_versions: Table<'t, &'static [u8; 32], &'static [u8]>,
    unconfirmed: Table<'t, &'static [u8; 32], &'static [u8]>,
}

/// Inserts `record` under `version` unless the table has a row for it: the
/// first record of a version stays.
fn insert_new(
    table: &mut Table<'_, &'static [u8; 32], &'static [u8]>,
    version: &VersionId,
    record: &[u8],
) -> Result<(), redb::StorageError> {
    if table.get(&version.0)?.is_none() {
        table.insert(&version.0, record)?;
    }
    Ok(())
}

impl<'t> Tables<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Self, StoreError> {
        Ok(Tables {
            chunks: txn.open_table(tables::CHUNKS).context("opening tables")?,
            chunk_refs: txn
                .open_table(tables::CHUNK_REFS)
                .context("opening tables")?,
            manifests: txn
                .open_table(tables::MANIFESTS)
                .context("opening tables")?,
            object_refs: txn
                .open_table(tables::OBJECT_REFS)
                .context("opening tables")?,
            names: txn.open_table(tables::NAMES).context("opening tables")?,
            stats: txn.open_table(tables::STATS).context("opening tables")?,
            holds: txn
                .open_table(tables::CHUNK_HOLDS)
                .context("opening tables")?,
            replica_manifests: txn
                .open_table(tables::REPLICA_MANIFESTS)
                .context("opening tables")?,
            replica_names: txn
                .open_table(tables::REPLICA_NAMES)
                .context("opening tables")?,
            refs: txn.open_table(tables::REFS).context("opening tables")?,
            written: txn.open_table(tables::WRITTEN).context("opening tables")?,
            dead_versions: txn
                .open_table(tables::DEAD_VERSIONS)
                .context("opening tables")?,
            unconfirmed: txn
                .open_table(tables::UNCONFIRMED_VERSIONS)
                .context("opening tables")?,
        })
    }

    fn bump(&mut self, key: &str, delta: i64) -> Result<(), StoreError> {
        let now = self
            .stats
            .get(key)
            .context("updating stats")?
            .map(|v| v.value())
            .unwrap_or(0);
        let new = now.saturating_add_signed(delta);
        self.stats.insert(key, new).context("updating stats")?;
        Ok(())
    }

    fn write_chunks(&mut self, chunks: &[(ChunkId, Vec<u8>)]) -> Result<u64, StoreError> {
        let mut added = 0u64;
        for (id, data) in chunks {
            if self
                .chunks
                .get(id.as_bytes())
                .context("writing a chunk")?
                .is_some()
            {
                continue;
            }
            self.chunks
                .insert(id.as_bytes(), data.as_slice())
                .context("writing a chunk")?;
            added += data.len() as u64;
            self.bump(stat::CHUNKS, 1)?;
        }
        self.bump(stat::CHUNK_BYTES, added as i64)?;
        Ok(added)
    }

    fn commit(
        &mut self,
        store: &Store,
        bucket: &BucketName,
        key: &ObjectKey,
        manifest: &Manifest,
        modified_ms: u64,
    ) -> Result<NameRecord, StoreError> {
        let object_id = manifest.object_id();
        let oid = object_id.as_bytes();
        if self
            .manifests
            .get(oid)
            .context("reading a manifest")?
            .is_none()
        {
            for id in &manifest.chunks {
                if self
                    .chunks
                    .get(id.as_bytes())
                    .context("checking chunks")?
                    .is_none()
                {
                    return Err(StoreError::MissingChunk(*id));
                }
            }
            self.manifests
                .insert(oid, manifest.encode().as_slice())
                .context("writing a manifest")?;
            for id in &manifest.chunks {
                self.add_chunk_ref(id, 1)?;
            }
        }
        self.add_object_ref(&object_id, 1)?;
        let record = NameRecord {
            object_id,
            size: manifest.size,
            modified_ms,
        };
        let previous = self
            .names
            .insert((bucket.as_str(), key.as_str()), record.encode().as_slice())
            .context("writing a name")?
            .and_then(|old| NameRecord::decode(old.value()));
        match previous {
            Some(old) => self.release_object(store, &old.object_id)?,
            None => self.bump(stat::OBJECTS, 1)?,
        }
        Ok(record)
    }

    fn delete(
        &mut self,
        store: &Store,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<(), StoreError> {
        let old = self
            .names
            .remove((bucket.as_str(), key.as_str()))
            .context("removing a name")?
            .and_then(|old| NameRecord::decode(old.value()))
            .ok_or_else(|| StoreError::NotFound(format!("{bucket}/{key}")))?;
        self.bump(stat::OBJECTS, -1)?;
        self.release_object(store, &old.object_id)
    }

    fn add_object_ref(&mut self, id: &ObjectId, delta: i64) -> Result<u64, StoreError> {
        add_ref(&mut self.object_refs, id.as_bytes(), delta)
    }

    fn add_chunk_ref(&mut self, id: &ChunkId, delta: i64) -> Result<u64, StoreError> {
        add_ref(&mut self.chunk_refs, id.as_bytes(), delta)
    }

    /// Drops one name's reference to an object; frees the object and its chunks
    /// when nothing else uses them.
    fn release_object(&mut self, store: &Store, id: &ObjectId) -> Result<(), StoreError> {
        if self.add_object_ref(id, -1)? > 0 {
            return Ok(());
        }
        let manifest = self
            .manifests
            .remove(id.as_bytes())
            .context("removing a manifest")?
            .and_then(|m| Manifest::decode(m.value()));
        let Some(manifest) = manifest else {
            return Ok(());
        };
        for chunk in &manifest.chunks {
            if self.add_chunk_ref(chunk, -1)? == 0
                && !store.pins.contains(chunk)
                && !self.is_held(chunk)?
            {
                self.free_chunk(chunk)?;
            }
        }
        Ok(())
    }

    fn release_orphans(&mut self, store: &Store, chunks: &[ChunkId]) -> Result<(), StoreError> {
        for chunk in chunks {
            let referenced = self
                .chunk_refs
                .get(chunk.as_bytes())
                .context("freeing")?
                .is_some();
            if !referenced && !store.pins.contains(chunk) && !self.is_held(chunk)? {
                self.free_chunk(chunk)?;
            }
        }
        Ok(())
    }

    fn is_held(&self, id: &ChunkId) -> Result<bool, StoreError> {
        Ok(self
            .holds
            .get(id.as_bytes())
            .context("reading holds")?
            .is_some())
    }

    fn replica_chunk(
        &mut self,
        id: &ChunkId,
        data: &[u8],
        now: u64,
    ) -> Result<ChunkWrite, StoreError> {
        let stored_len = self
            .chunks
            .get(id.as_bytes())
            .context("writing a replica chunk")?
            .map(|old| (old.value().len(), id.matches(old.value())));
        let outcome = match stored_len {
            Some((_, true)) => ChunkWrite::Present,
            Some((old_len, false)) => {
                self.chunks
                    .insert(id.as_bytes(), data)
                    .context("repairing a chunk")?;
                self.bump(stat::CHUNK_BYTES, data.len() as i64 - old_len as i64)?;
                ChunkWrite::Repaired
            }
            None => {
                self.chunks
                    .insert(id.as_bytes(), data)
                    .context("writing a replica chunk")?;
                self.bump(stat::CHUNKS, 1)?;
                self.bump(stat::CHUNK_BYTES, data.len() as i64)?;
                ChunkWrite::Added
            }
        };
        self.holds
            .insert(id.as_bytes(), 1)
            .context("writing a replica chunk")?;
        self.written
            .insert(id.as_bytes(), now)
            .context("writing a replica chunk")?;
        Ok(outcome)
    }

    fn replica_manifest(&mut self, manifest: &Manifest, now: u64) -> Result<bool, StoreError> {
        let id = manifest.object_id();
        self.written
            .insert(id.as_bytes(), now)
            .context("writing a replica manifest")?;
        if self
            .replica_manifests
            .get(id.as_bytes())
            .context("writing a replica manifest")?
            .is_some()
        {
            return Ok(false);
        }
        self.replica_manifests
            .insert(id.as_bytes(), manifest.encode().as_slice())
            .context("writing a replica manifest")?;
        Ok(true)
    }

    fn replica_name(
        &mut self,
        bucket: &BucketName,
        key: &ObjectKey,
        register: &NameRegister,
        now: u64,
    ) -> Result<bool, StoreError> {
        let k = (bucket.as_str(), key.as_str());
        let ours = self
            .replica_names
            .get(k)
            .context("writing a replica name")?
            .and_then(|v| tables::decode_register(v.value()));
        if let Some((stamp, object)) = superseded(ours.as_ref().map(|r| &r.entry), &register.entry)
        {
            self.dead_version(&version_id(bucket, key, &stamp), object, now)?;
        }
        if ours.is_some_and(|ours| ours.entry >= register.entry) {
            return Ok(false);
        }
        self.replica_names
            .insert(k, tables::encode_register(register).as_slice())
            .context("writing a replica name")?;
        Ok(true)
    }

    /// Records `version`, pointing at `object`, as dead since `now`, unless
    /// it already is.
    fn dead_version(
        &mut self,
        version: &VersionId,
        object: ObjectId,
        now: u64,
    ) -> Result<(), StoreError> {
        let record = postcard::to_stdvec(&(object, now)).expect("always serializes");
        insert_new(&mut self.dead_versions, version, &record).context("recording a dead version")
    }

    /// Keeps `version` as unconfirmed since `now`, unless it already is.
    fn unconfirmed(
        &mut self,
        version: &VersionId,
        name: &VersionName,
        now: u64,
    ) -> Result<(), StoreError> {
        let record = postcard::to_stdvec(&(name, now)).expect("always serializes");
        insert_new(&mut self.unconfirmed, version, &record)
            .context("recording an unconfirmed version")
    }

    fn versions_checked(
        &mut self,
        named: &[VersionId],
        orphaned: &[(VersionId, ObjectId)],
        now: u64,
    ) -> Result<(), StoreError> {
        const WHAT: &str = "forgetting a checked version";
        for version in named {
            self.unconfirmed.remove(&version.0).context(WHAT)?;
        }
        for (version, object) in orphaned {
            self.unconfirmed.remove(&version.0).context(WHAT)?;
            self.dead_version(version, *object, now)?;
        }
        Ok(())
    }

    fn merge_refs(&mut self, refs: &[Ref]) -> Result<(), StoreError> {
        const WHAT: &str = "merging references";
        for r in refs {
            let key = (&r.target, &r.version.0);
            let ours = self.refs.get(key).context(WHAT)?.map(|v| v.value());
            let merged = ours.map_or(r.state, |v| RefState::from_u64(v).merge(r.state));
            if ours != Some(merged.to_u64()) {
                self.refs.insert(key, merged.to_u64()).context(WHAT)?;
            }
        }
        Ok(())
    }

    /// Drops what the scan found collectable if the rule, checked again
    /// against this transaction's state, still lets it go; forgets the
    /// references of targets long gone.
    fn collect(&mut self, scan: &GcScan, clock: GcClock) -> Result<Collected, StoreError> {
        const WHAT: &str = "collecting garbage";
        let mut collected = Collected::default();
        for (kind, target) in &scan.collectable {
            let mut states = Vec::new();
            for row in self.refs.range(refs_range(target)).context(WHAT)? {
                states.push(RefState::from_u64(row.context(WHAT)?.1.value()));
            }
            let written = self.written.get(target).context(WHAT)?.map(|v| v.value());
            if gc_verdict(states, written, clock.now_millis, clock.grace_millis) != GcVerdict::Drop
            {
                continue;
            }
            match kind {
                ItemKind::Chunk => {
                    let id = ChunkId::from_bytes(*target);
                    if self.holds.remove(target).context(WHAT)?.is_none() {
                        continue;
                    }
                    let bytes = self.chunk_len(&id)?;
                    // A chunk a single-node object also uses stays.
                    if self.chunk_refs.get(target).context(WHAT)?.is_none() {
                        self.free_chunk(&id)?;
                        collected.chunks += 1;
                        collected.bytes += bytes;
                    }
                }
                ItemKind::Manifest => {
                    if self
                        .replica_manifests
                        .remove(target)
                        .context(WHAT)?
                        .is_some()
                    {
                        collected.manifests += 1;
                    }
                }
                ItemKind::Name | ItemKind::Ref => continue,
            }
            self.written.remove(target).context(WHAT)?;
            self.forget_refs(target)?;
        }
        for (bucket, key) in &scan.tombstones {
            let k = (bucket.as_str(), key.as_str());
            let expired = self
                .replica_names
                .get(k)
                .context(WHAT)?
                .and_then(|v| tables::decode_register(v.value()))
                .is_some_and(|r| {
                    r.entry
                        .is_expired_tombstone(clock.now_millis, clock.tombstone_grace_millis)
                });
            if expired {
                self.replica_names.remove(k).context(WHAT)?;
                collected.tombstones += 1;
            }
        }
        for target in &scan.forgettable {
            if self.holds.get(target).context(WHAT)?.is_none()
                && self.replica_manifests.get(target).context(WHAT)?.is_none()
            {
                self.forget_refs(target)?;
            }
        }
        Ok(collected)
    }

    fn hand_off(&mut self, items: &[(ItemKind, [u8; 32])]) -> Result<Collected, StoreError> {
        const WHAT: &str = "handing off copies";
        let mut handed = Collected::default();
        for (kind, target) in items {
            match kind {
                ItemKind::Chunk => {
                    if self.holds.remove(target).context(WHAT)?.is_none() {
                        continue;
                    }
                    let id = ChunkId::from_bytes(*target);
                    if self.chunk_refs.get(target).context(WHAT)?.is_some() {
                        continue;
                    }
                    handed.bytes += self.chunk_len(&id)?;
                    self.free_chunk(&id)?;
                    handed.chunks += 1;
                }
                ItemKind::Manifest => {
                    if self
                        .replica_manifests
                        .remove(target)
                        .context(WHAT)?
                        .is_none()
                    {
                        continue;
                    }
                    handed.manifests += 1;
                }
                ItemKind::Name | ItemKind::Ref => continue,
            }
            self.written.remove(target).context(WHAT)?;
        }
        Ok(handed)
    }

    fn chunk_len(&self, id: &ChunkId) -> Result<u64, StoreError> {
        Ok(self
            .chunks
            .get(id.as_bytes())
            .context("collecting garbage")?
            .map_or(0, |d| d.value().len() as u64))
    }

    fn forget_refs(&mut self, target: &[u8; 32]) -> Result<(), StoreError> {
        self.refs
            .retain_in(refs_range(target), |_, _| false)
            .context("forgetting references")
    }

    fn corrupt(&mut self, id: &ChunkId) -> Result<(), StoreError> {
        let mut bytes = self
            .chunks
            .get(id.as_bytes())
            .context("corrupting a chunk")?
            .ok_or(StoreError::MissingChunk(*id))?
            .value()
            .to_vec();
        match bytes.first_mut() {
            Some(b) => *b ^= 0xff,
            None => bytes.push(0xff),
        }
        self.chunks
            .insert(id.as_bytes(), bytes.as_slice())
            .context("corrupting a chunk")?;
        Ok(())
    }

    fn free_chunk(&mut self, id: &ChunkId) -> Result<(), StoreError> {
        let removed = self
            .chunks
            .remove(id.as_bytes())
            .context("freeing a chunk")?
            .map(|data| data.value().len());
        if let Some(len) = removed {
            self.bump(stat::CHUNKS, -1)?;
            self.bump(stat::CHUNK_BYTES, -(len as i64))?;
        }
        Ok(())
    }
}

/// Moves a reference count by `delta`; a count of zero is no row at all.
fn add_ref(
    table: &mut Table<'_, &'static [u8; 32], u64>,
    key: &[u8; 32],
    delta: i64,
) -> Result<u64, StoreError> {
    let now = table
        .get(key)
        .context("counting references")?
        .map(|v| v.value())
        .unwrap_or(0);
    let new = now.saturating_add_signed(delta);
    if new == 0 {
        table.remove(key).context("counting references")?;
    } else {
        table.insert(key, new).context("counting references")?;
    }
    Ok(new)
}

/// Frees every chunk no manifest references: what uploads interrupted by a crash
/// or a shutdown left behind. Runs before the node serves anything.
fn free_orphans(store: &Store) -> Result<usize, StoreError> {
    let txn = store.db.begin_write().context("freeing orphan chunks")?;
    let freed;
    {
        let mut t = Tables::open(&txn)?;
        let mut orphans = Vec::new();
        for row in t.chunks.iter().context("freeing orphan chunks")? {
            let (id, _) = row.context("freeing orphan chunks")?;
            let id = ChunkId::from_bytes(*id.value());
            if t.chunk_refs
                .get(id.as_bytes())
                .context("freeing orphan chunks")?
                .is_none()
                && !t.is_held(&id)?
            {
                orphans.push(id);
            }
        }
        freed = orphans.len();
        for id in &orphans {
            t.free_chunk(id)?;
        }
    }
    txn.commit().context("freeing orphan chunks")?;
    Ok(freed)
}
