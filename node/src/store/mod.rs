//! The node's store: chunks, manifests and names in one redb file.
//!
//! Reads run concurrently on read transactions; every write goes through one
//! writer thread ([`Writer`]) that folds many requests into one transaction.
//! Names only ever point at manifests whose chunks are all stored, and a manifest
//! is committed only once all its chunks are; so an interrupted upload leaves at
//! most orphan chunks, which are freed at the next start, and nothing half-written
//! is ever visible.

mod gc;
mod inventory;
mod tables;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use redb::{Database, ReadableDatabase, ReadableTable};
use stemma_protocol::replication::NameRegister;
use stemma_protocol::{BucketName, ChunkId, Manifest, ObjectId, ObjectKey};

pub use gc::{Collected, GcClock, GcScan};
pub use tables::NameRecord;
pub use writer::{ChunkWrite, Durability, Writer};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process has the store open.
    #[error(
        "the store {0} is in use by another process (is a node already running on this data dir?)"
    )]
    InUse(PathBuf),
    /// No such object.
    #[error("not found: {0}")]
    NotFound(String),
    /// A stored chunk does not match its hash. Nothing was changed.
    #[error("corrupt chunk {0} (its stored bytes do not match its hash)")]
    Corrupt(ChunkId),
    /// A manifest names a chunk the store does not have. Nothing was changed.
    #[error("chunk {0} is missing from the store")]
    MissingChunk(ChunkId),
    /// The database failed; the message says where.
    #[error("storage error while {context}: {message}")]
    Storage {
        /// What the store was doing.
        context: &'static str,
        /// The database's message.
        message: String,
    },
    /// The writer has stopped (the node is shutting down).
    #[error("the store is closing")]
    Closed,
}

pub(crate) trait Context<T> {
    fn context(self, context: &'static str) -> Result<T, StoreError>;
}

impl<T, E: std::fmt::Display> Context<T> for Result<T, E> {
    fn context(self, context: &'static str) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Storage {
            context,
            message: e.to_string(),
        })
    }
}

/// Counts kept by the store, exact and transactional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Names stored.
    pub objects: u64,
    /// Distinct chunks stored.
    pub chunks: u64,
    /// Bytes of chunk data stored (after deduplication).
    pub chunk_bytes: u64,
}

/// A page of a listing: (key, record) rows, and the key to continue after.
pub type ListPage = (Vec<(String, NameRecord)>, Option<String>);

/// An object as a name resolves to it.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The name's record.
    pub record: NameRecord,
    /// The manifest.
    pub manifest: Manifest,
}

/// Chunks that uploads in progress have written but not yet committed. The writer
/// never frees a pinned chunk, so a concurrent delete cannot take a chunk from
/// under an upload that deduplicated against it.
#[derive(Debug, Default)]
pub(crate) struct Pins(Mutex<HashMap<ChunkId, u32>>);

impl Pins {
    fn pin(&self, id: ChunkId) {
        *self.0.lock().expect("pins lock").entry(id).or_default() += 1;
    }

    fn unpin(&self, id: &ChunkId) {
        let mut pins = self.0.lock().expect("pins lock");
        if let Some(n) = pins.get_mut(id) {
            *n -= 1;
            if *n == 0 {
                pins.remove(id);
            }
        }
    }

    pub(crate) fn contains(&self, id: &ChunkId) -> bool {
        self.0.lock().expect("pins lock").contains_key(id)
    }
}

/// A node's store. Clone it freely: clones share the database and the writer.
#[derive(Debug, Clone)]
pub struct Store {
    db: Arc<Database>,
    pins: Arc<Pins>,
}

/// The file name of the store inside a data dir.
pub const STORE_FILE: &str = "store.redb";

impl Store {
    /// Opens (or creates) the store in `data_dir`, frees orphan chunks left by
    /// interrupted uploads, and starts its writer.
    pub fn open(data_dir: &Path, durability: Durability) -> Result<(Store, Writer), StoreError> {
        let path = data_dir.join(STORE_FILE);
        let db = Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse(path.clone()),
            other => StoreError::Storage {
                context: "opening the store",
                message: format!("{}: {other}", path.display()),
            },
        })?;
        let store = Store {
            db: Arc::new(db),
            pins: Arc::new(Pins::default()),
        };
        store.create_tables()?;
        let writer = Writer::start(store.clone(), durability)?;
        Ok((store, writer))
    }

    fn create_tables(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_write().context("creating tables")?;
        txn.open_table(tables::CHUNKS).context("creating tables")?;
        txn.open_table(tables::CHUNK_REFS)
            .context("creating tables")?;
        txn.open_table(tables::MANIFESTS)
            .context("creating tables")?;
        txn.open_table(tables::OBJECT_REFS)
            .context("creating tables")?;
        txn.open_table(tables::NAMES).context("creating tables")?;
        txn.open_table(tables::STATS).context("creating tables")?;
        txn.open_table(tables::CHUNK_HOLDS)
            .context("creating tables")?;
        txn.open_table(tables::REPLICA_MANIFESTS)
            .context("creating tables")?;
        txn.open_table(tables::REPLICA_NAMES)
            .context("creating tables")?;
        txn.open_table(tables::REFS).context("creating tables")?;
        txn.open_table(tables::WRITTEN).context("creating tables")?;
        txn.open_table(tables::DEAD_VERSIONS)
            .context("creating tables")?;
        txn.open_table(tables::UNCONFIRMED_VERSIONS)
            .context("creating tables")?;
        txn.commit().context("creating tables")
    }

    /// Marks `id` as in use by an upload until the guard is dropped.
    pub fn pin(&self, id: ChunkId) -> PinGuard {
        self.pins.pin(id);
        PinGuard {
            pins: self.pins.clone(),
            id,
        }
    }

    /// The object a name points at.
    pub fn resolve(&self, bucket: &BucketName, key: &ObjectKey) -> Result<Resolved, StoreError> {
        let txn = self.db.begin_read().context("reading a name")?;
        let names = txn.open_table(tables::NAMES).context("reading a name")?;
        let not_found = || StoreError::NotFound(format!("{bucket}/{key}"));
        let record = names
            .get((bucket.as_str(), key.as_str()))
            .context("reading a name")?
            .ok_or_else(not_found)?;
        let record = NameRecord::decode(record.value()).ok_or(StoreError::Storage {
            context: "reading a name",
            message: format!("undecodable record for {bucket}/{key}"),
        })?;
        let manifests = txn
            .open_table(tables::MANIFESTS)
            .context("reading a manifest")?;
        let manifest = manifests
            .get(record.object_id.as_bytes())
            .context("reading a manifest")?
            .and_then(|m| Manifest::decode(m.value()))
            .ok_or(StoreError::Storage {
                context: "reading a manifest",
                message: format!(
                    "manifest {} of {bucket}/{key} is missing or undecodable",
                    record.object_id
                ),
            })?;
        Ok(Resolved { record, manifest })
    }

    /// Reads `ids` in order on one read transaction, calling `each` with every
    /// chunk after checking its hash. Stops at the first error or when `each`
    /// returns false. Runs on the calling thread: call it from a blocking task.
    pub fn read_chunks(
        &self,
        ids: &[ChunkId],
        mut each: impl FnMut(Result<(ChunkId, Vec<u8>), StoreError>) -> bool,
    ) {
        let table = self
            .db
            .begin_read()
            .context("reading chunks")
            .and_then(|txn| txn.open_table(tables::CHUNKS).context("reading chunks"));
        let table = match table {
            Ok(table) => table,
            Err(e) => {
                each(Err(e));
                return;
            }
        };
        for id in ids {
            let result = match table.get(id.as_bytes()).context("reading a chunk") {
                Ok(Some(data)) if id.matches(data.value()) => Ok((*id, data.value().to_vec())),
                Ok(Some(_)) => Err(StoreError::Corrupt(*id)),
                Ok(None) => Err(StoreError::MissingChunk(*id)),
                Err(e) => Err(e),
            };
            let failed = result.is_err();
            if !each(result) || failed {
                return;
            }
        }
    }

    /// Whether the store holds chunk `id` (without reading it).
    pub fn has_chunk(&self, id: &ChunkId) -> Result<bool, StoreError> {
        let txn = self.db.begin_read().context("reading a chunk")?;
        let table = txn.open_table(tables::CHUNKS).context("reading a chunk")?;
        Ok(table
            .get(id.as_bytes())
            .context("reading a chunk")?
            .is_some())
    }

    /// Up to `limit` names of `bucket` that start with `prefix`, after
    /// `start_after`, in key order; and the key to continue after if more remain.
    pub fn list(
        &self,
        bucket: &BucketName,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError> {
        let (out, more) = self.scan_names(
            tables::NAMES,
            bucket,
            prefix,
            start_after,
            limit,
            NameRecord::decode,
        )?;
        let next = more.then(|| out.last().map(|(k, _)| k.clone())).flatten();
        Ok((out, next))
    }

    /// Up to `limit` rows of a (bucket, key) table for `bucket` whose keys
    /// start with `prefix`, after `start_after`, decoded (rows that do not
    /// decode are skipped); and whether more follow.
    fn scan_names<T>(
        &self,
        table: redb::TableDefinition<'_, (&str, &str), &[u8]>,
        bucket: &BucketName,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        decode: impl Fn(&[u8]) -> Option<T>,
    ) -> Result<(Vec<(String, T)>, bool), StoreError> {
        let txn = self.db.begin_read().context("listing")?;
        let names = txn.open_table(table).context("listing")?;
        let b = bucket.as_str();
        let start = match start_after {
            Some(after) if after >= prefix => std::ops::Bound::Excluded((b, after)),
            _ => std::ops::Bound::Included((b, prefix)),
        };
        let mut out = Vec::new();
        for row in names
            .range::<(&str, &str)>((start, std::ops::Bound::Unbounded))
            .context("listing")?
        {
            let (k, v) = row.context("listing")?;
            let (row_bucket, key) = k.value();
            if row_bucket != b || !key.starts_with(prefix) {
                return Ok((out, false));
            }
            if out.len() == limit {
                return Ok((out, true));
            }
            if let Some(item) = decode(v.value()) {
                out.push((key.to_string(), item));
            }
        }
        Ok((out, false))
    }

    /// The store's counters.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let txn = self.db.begin_read().context("reading stats")?;
        let table = txn.open_table(tables::STATS).context("reading stats")?;
        let get = |k| -> Result<u64, StoreError> {
            Ok(table
                .get(k)
                .context("reading stats")?
                .map(|v| v.value())
                .unwrap_or(0))
        };
        Ok(StoreStats {
            objects: get(tables::stat::OBJECTS)?,
            chunks: get(tables::stat::CHUNKS)?,
            chunk_bytes: get(tables::stat::CHUNK_BYTES)?,
        })
    }

    /// Where the clock resumes: the last bound persisted by
    /// [`Writer::set_clock_bound`] (0 if none).
    pub fn clock_bound(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().context("reading the clock bound")?;
        let table = txn
            .open_table(tables::STATS)
            .context("reading the clock bound")?;
        Ok(table
            .get(tables::stat::CLOCK_BOUND)
            .context("reading the clock bound")?
            .map_or(0, |v| v.value()))
    }

    /// Chunk `id`, checked against its hash: `None` if absent,
    /// [`StoreError::Corrupt`] if the stored bytes no longer match.
    pub fn read_chunk(&self, id: &ChunkId) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().context("reading a chunk")?;
        let table = txn.open_table(tables::CHUNKS).context("reading a chunk")?;
        match table.get(id.as_bytes()).context("reading a chunk")? {
            Some(data) if id.matches(data.value()) => Ok(Some(data.value().to_vec())),
            Some(_) => Err(StoreError::Corrupt(*id)),
            None => Ok(None),
        }
    }

    /// The manifest of `object`, if this node holds it as a replica.
    pub fn replica_manifest(&self, object: &ObjectId) -> Result<Option<Manifest>, StoreError> {
        let txn = self.db.begin_read().context("reading a manifest")?;
        let table = txn
            .open_table(tables::REPLICA_MANIFESTS)
            .context("reading a manifest")?;
        let Some(bytes) = table.get(object.as_bytes()).context("reading a manifest")? else {
            return Ok(None);
        };
        match Manifest::decode(bytes.value()) {
            Some(m) if m.object_id() == *object => Ok(Some(m)),
            _ => Err(StoreError::Storage {
                context: "reading a manifest",
                message: format!("the stored manifest of {object} does not match its id"),
            }),
        }
    }

    /// The replicated register of `bucket/key`, tombstone included.
    pub fn replica_name(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<Option<NameRegister>, StoreError> {
        let txn = self.db.begin_read().context("reading a name")?;
        let table = txn
            .open_table(tables::REPLICA_NAMES)
            .context("reading a name")?;
        let Some(bytes) = table
            .get((bucket.as_str(), key.as_str()))
            .context("reading a name")?
        else {
            return Ok(None);
        };
        tables::decode_register(bytes.value())
            .map(Some)
            .ok_or(StoreError::Storage {
                context: "reading a name",
                message: format!("undecodable register for {bucket}/{key}"),
            })
    }

    /// Up to `limit` replicated registers of `bucket` whose keys start with
    /// `prefix`, after `start_after`, tombstones included; and whether more
    /// follow.
    pub fn list_replica_names(
        &self,
        bucket: &BucketName,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<(String, NameRegister)>, bool), StoreError> {
        self.scan_names(
            tables::REPLICA_NAMES,
            bucket,
            prefix,
            start_after,
            limit,
            tables::decode_register,
        )
    }

    /// Every chunk id this store holds, in order; with `verify`, also those
    /// whose bytes no longer match their hash (re-hashes every chunk: for
    /// tests and diagnosis, not for a hot path).
    pub fn chunk_ids(&self, verify: bool) -> Result<(Vec<ChunkId>, Vec<ChunkId>), StoreError> {
        let txn = self.db.begin_read().context("listing chunks")?;
        let table = txn.open_table(tables::CHUNKS).context("listing chunks")?;
        let (mut ids, mut corrupt) = (Vec::new(), Vec::new());
        for row in table.iter().context("listing chunks")? {
            let (k, v) = row.context("listing chunks")?;
            let id = ChunkId::from_bytes(*k.value());
            if verify && !id.matches(v.value()) {
                corrupt.push(id);
            }
            ids.push(id);
        }
        Ok((ids, corrupt))
    }

    /// Test fixture: replaces a stored chunk's bytes without changing its id, so
    /// that tests can prove corruption is detected and never served. Call it only
    /// on a store no node has open.
    #[doc(hidden)]
    pub fn corrupt_chunk_for_tests(data_dir: &Path, id: &ChunkId) -> Result<(), StoreError> {
        let db = Database::create(data_dir.join(STORE_FILE)).context("opening the store")?;
        let txn = db.begin_write().context("corrupting a chunk")?;
        {
            let mut table = txn
                .open_table(tables::CHUNKS)
                .context("corrupting a chunk")?;
            let mut bytes = table
                .get(id.as_bytes())
                .context("corrupting a chunk")?
                .ok_or(StoreError::MissingChunk(*id))?
                .value()
                .to_vec();
            bytes[0] ^= 0xff;
            table
                .insert(id.as_bytes(), bytes.as_slice())
                .context("corrupting a chunk")?;
        }
        txn.commit().context("corrupting a chunk")
    }
}

/// Keeps a chunk pinned (see [`Store::pin`]) while alive.
#[derive(Debug)]
pub struct PinGuard {
    pins: Arc<Pins>,
    id: ChunkId,
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        self.pins.unpin(&self.id);
    }
}
