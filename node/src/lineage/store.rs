//! The lineage documents on disk: `DATA_DIR/lineage.redb`, one snapshot per
//! namespace (a full Automerge save) and an append-only log of the changes
//! since it. Every change is logged durably before it is acknowledged; the
//! log is folded into a new snapshot once it outgrows it.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use stemma_protocol::lineage::LineageDoc;

/// namespace → the last full save.
const SNAPSHOTS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("lineage-snapshots-0");
/// (namespace, sequence) → changes saved after the snapshot, in order.
const LOG: TableDefinition<'_, (&str, u64), &[u8]> = TableDefinition::new("lineage-log-0");

/// Compact when the log holds more entries than this…
const MAX_LOG_ENTRIES: u64 = 1024;
/// …or more bytes than the snapshot and this much.
const LOG_SLACK_BYTES: u64 = 1 << 20;

/// Where the lineage documents are kept.
pub struct LineageStore {
    db: Database,
}

/// A namespace's persisted form, as found at start.
pub struct Stored {
    /// The namespace.
    pub namespace: String,
    /// Snapshot followed by the logged changes: what `LineageDoc::load` reads.
    pub bytes: Vec<u8>,
    /// Log entries after the snapshot.
    pub log_entries: u64,
    /// Bytes in the log.
    pub log_bytes: u64,
}

/// How much a namespace takes on disk.
#[derive(Debug, Clone, Copy, Default)]
pub struct Footprint {
    /// The snapshot's size.
    pub snapshot_bytes: u64,
    /// Log entries after the snapshot.
    pub log_entries: u64,
    /// Bytes in the log.
    pub log_bytes: u64,
}

impl Footprint {
    /// Total bytes.
    pub fn bytes(&self) -> u64 {
        self.snapshot_bytes + self.log_bytes
    }

    fn wants_compaction(&self) -> bool {
        self.log_entries > MAX_LOG_ENTRIES || self.log_bytes > self.snapshot_bytes + LOG_SLACK_BYTES
    }
}

impl LineageStore {
    /// Opens (or creates) `dir/lineage.redb`.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("lineage.redb");
        let db = Database::create(&path)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        let tx = db.begin_write()?;
        tx.open_table(SNAPSHOTS)?;
        tx.open_table(LOG)?;
        tx.commit()?;
        Ok(Self { db })
    }

    /// Every stored namespace.
    pub fn load_all(&self) -> anyhow::Result<Vec<Stored>> {
        let tx = self.db.begin_read()?;
        let snapshots = tx.open_table(SNAPSHOTS)?;
        let log = tx.open_table(LOG)?;
        let mut out = Vec::new();
        let mut namespaces: Vec<String> = Vec::new();
        for row in snapshots.iter()? {
            namespaces.push(row?.0.value().to_string());
        }
        for row in log.iter()? {
            let ns = row?.0.value().0.to_string();
            if namespaces.last() != Some(&ns) && !namespaces.contains(&ns) {
                namespaces.push(ns);
            }
        }
        for namespace in namespaces {
            let mut bytes = snapshots
                .get(namespace.as_str())?
                .map(|v| v.value().to_vec())
                .unwrap_or_default();
            let (mut log_entries, mut log_bytes) = (0, 0);
            for row in log.range((namespace.as_str(), 0)..=(namespace.as_str(), u64::MAX))? {
                let (_, value) = row?;
                log_entries += 1;
                log_bytes += value.value().len() as u64;
                bytes.extend_from_slice(value.value());
            }
            out.push(Stored {
                namespace,
                bytes,
                log_entries,
                log_bytes,
            });
        }
        Ok(out)
    }

    /// Logs the document's changes since its last save, durably; compacts when
    /// the log has grown past the snapshot. Returns the new footprint.
    pub fn persist(&self, doc: &mut LineageDoc, before: Footprint) -> anyhow::Result<Footprint> {
        let mut footprint = before;
        if let Some(changes) = self.take_changes(doc, &mut footprint)? {
            self.append(&[(doc.namespace().to_string(), changes)])?;
        }
        Ok(footprint)
    }

    /// The first half of [`persist`](Self::persist): takes the document's
    /// changes since its last save, for [`append`](Self::append) to log, and
    /// counts them in `footprint`. When the log has outgrown the snapshot it
    /// compacts instead, durably, and returns nothing to log: a snapshot
    /// replaces the log, so it is never deferred behind log entries (an entry
    /// appended after it is at worst a duplicate, which loading ignores).
    pub fn take_changes(
        &self,
        doc: &mut LineageDoc,
        footprint: &mut Footprint,
    ) -> anyhow::Result<Option<Vec<u8>>> {
        if footprint.wants_compaction() {
            *footprint = self.snapshot(doc)?;
            return Ok(None);
        }
        let changes = doc.save_incremental();
        if changes.is_empty() {
            return Ok(None);
        }
        footprint.log_entries += 1;
        footprint.log_bytes += changes.len() as u64;
        Ok(Some(changes))
    }

    /// Stores the whole document as the namespace's snapshot and empties its
    /// log, in one durable write (compaction; a move to a new epoch, which
    /// replaces the history). Returns the new footprint.
    pub fn snapshot(&self, doc: &mut LineageDoc) -> anyhow::Result<Footprint> {
        let snapshot = doc.save();
        let tx = self.db.begin_write()?;
        {
            let mut snapshots = tx.open_table(SNAPSHOTS)?;
            snapshots.insert(doc.namespace(), snapshot.as_slice())?;
            let mut log = tx.open_table(LOG)?;
            let ns = doc.namespace();
            log.retain_in((ns, 0)..=(ns, u64::MAX), |_, _| false)?;
        }
        tx.commit()?;
        Ok(Footprint {
            snapshot_bytes: snapshot.len() as u64,
            log_entries: 0,
            log_bytes: 0,
        })
    }

    /// The second half of [`persist`](Self::persist): logs `(namespace,
    /// changes)` entries, in order, with one durable write.
    pub fn append(&self, entries: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
        let tx = self.db.begin_write()?;
        {
            let mut log = tx.open_table(LOG)?;
            for (ns, changes) in entries {
                let ns = ns.as_str();
                let next = log
                    .range((ns, 0)..=(ns, u64::MAX))?
                    .next_back()
                    .transpose()?
                    .map_or(0, |(k, _)| k.value().1 + 1);
                log.insert((ns, next), changes.as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}
