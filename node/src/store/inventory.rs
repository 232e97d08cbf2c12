//! What this node holds as a replica owner, read for anti-entropy: the keys
//! of one kind of item by partition, and the registers behind name hashes;
//! and which of some keys it holds, asked before another node hands off.

use std::collections::BTreeSet;

use redb::{ReadableDatabase, ReadableTable};
use stemma_protocol::placement::{PartitionCount, name_hash};
use stemma_protocol::replication::{Inventory, ItemKind, NameRegister};
use stemma_protocol::{BucketName, ObjectKey};

use super::gc::{GcClock, expired_targets, ref_entries};
use super::{Context, Store, StoreError, tables};

impl Store {
    /// Every key of `kind` this node holds as a replica, by partition: chunk
    /// ids (version 0) and object ids of manifests (version 0), except those
    /// whose references all expired (garbage, not to be spread), name hashes
    /// with their register's version, and the targets of references with
    /// their fingerprint. One read transaction.
    pub fn replica_inventory(
        &self,
        kind: ItemKind,
        partitions: PartitionCount,
        clock: GcClock,
    ) -> Result<Inventory, StoreError> {
        const WHAT: &str = "reading the replica inventory";
        let txn = self.db.begin_read().context(WHAT)?;
        let refs = txn.open_table(tables::REFS).context(WHAT)?;
        let expired = match kind {
            ItemKind::Chunk | ItemKind::Manifest => expired_targets(&refs, clock)?,
            ItemKind::Name | ItemKind::Ref => Default::default(),
        };
        let mut inventory = Inventory::new();
        let mut add = |key: [u8; 32], version: u64| {
            if expired.contains(&key) {
                return;
            }
            let p = partitions.of_hash(&key).index();
            inventory.entry(p).or_default().push((key, version));
        };
        match kind {
            ItemKind::Chunk => {
                let table = txn.open_table(tables::CHUNK_HOLDS).context(WHAT)?;
                for row in table.iter().context(WHAT)? {
                    add(*row.context(WHAT)?.0.value(), 0);
                }
            }
            ItemKind::Manifest => {
                let table = txn.open_table(tables::REPLICA_MANIFESTS).context(WHAT)?;
                for row in table.iter().context(WHAT)? {
                    add(*row.context(WHAT)?.0.value(), 0);
                }
            }
            ItemKind::Name => {
                let table = txn.open_table(tables::REPLICA_NAMES).context(WHAT)?;
                for row in table.iter().context(WHAT)? {
                    let (k, v) = row.context(WHAT)?;
                    let (bucket, key) = k.value();
                    if let (Ok(bucket), Ok(key), Some(register)) = (
                        BucketName::parse(bucket),
                        ObjectKey::parse(key),
                        tables::decode_register(v.value()),
                    ) {
                        add(name_hash(&bucket, &key), register.entry.version());
                    }
                }
            }
            ItemKind::Ref => ref_entries(&refs, add)?,
        }
        Ok(inventory)
    }

    /// Which of `keys` this node holds as a replica of `kind` (chunks or
    /// manifests; of other kinds, none). Point lookups in one read
    /// transaction.
    pub fn held(&self, kind: ItemKind, keys: &[[u8; 32]]) -> Result<Vec<[u8; 32]>, StoreError> {
        const WHAT: &str = "reading held items";
        fn lookup<V: redb::Value + 'static>(
            table: &impl ReadableTable<&'static [u8; 32], V>,
            keys: &[[u8; 32]],
        ) -> Result<Vec<[u8; 32]>, StoreError> {
            let mut held = Vec::new();
            for key in keys {
                if table.get(key).context(WHAT)?.is_some() {
                    held.push(*key);
                }
            }
            Ok(held)
        }
        let txn = self.db.begin_read().context(WHAT)?;
        match kind {
            ItemKind::Chunk => lookup(&txn.open_table(tables::CHUNK_HOLDS).context(WHAT)?, keys),
            ItemKind::Manifest => lookup(
                &txn.open_table(tables::REPLICA_MANIFESTS).context(WHAT)?,
                keys,
            ),
            ItemKind::Name | ItemKind::Ref => Ok(Vec::new()),
        }
    }

    /// The replicated registers whose name hashes are in `hashes`, with their
    /// bucket and key.
    pub fn replica_names_by_hash(
        &self,
        hashes: &BTreeSet<[u8; 32]>,
    ) -> Result<Vec<(BucketName, ObjectKey, NameRegister)>, StoreError> {
        const WHAT: &str = "reading replicated names";
        let txn = self.db.begin_read().context(WHAT)?;
        let table = txn.open_table(tables::REPLICA_NAMES).context(WHAT)?;
        let mut out = Vec::new();
        for row in table.iter().context(WHAT)? {
            let (k, v) = row.context(WHAT)?;
            let (bucket, key) = k.value();
            let (Ok(bucket), Ok(key)) = (BucketName::parse(bucket), ObjectKey::parse(key)) else {
                continue;
            };
            if hashes.contains(&name_hash(&bucket, &key))
                && let Some(register) = tables::decode_register(v.value())
            {
                out.push((bucket, key, register));
            }
        }
        Ok(out)
    }
}
