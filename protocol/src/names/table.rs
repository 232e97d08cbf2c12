//! The name table of one replica: a last-writer-wins register per name.

use std::collections::BTreeMap;
use std::ops::Bound;

use serde::{Deserialize, Serialize};

use crate::names::{Hlc, NamePage};
use crate::placement::name_hash;
use crate::{BucketName, ObjectId, ObjectKey};

/// What a name points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NameValue {
    /// Deleted: a tombstone, kept so that older writes lose to it.
    Deleted,
    /// The object it names.
    Object(ObjectId),
}

/// A name's register: its value and the stamp of the write that set it.
///
/// Entries are ordered by stamp, then value; the larger one wins a merge.
/// Ordering by value too makes the merge a join even for two different writes
/// with one stamp, which a correct clock never makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NameEntry {
    /// The write's stamp.
    pub stamp: Hlc,
    /// What it wrote.
    pub value: NameValue,
}

/// The names one replica holds, sorted by bucket and key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameTable {
    buckets: BTreeMap<BucketName, BTreeMap<ObjectKey, NameEntry>>,
}

impl NameEntry {
    /// The object, unless this is a tombstone.
    pub fn object(&self) -> Option<ObjectId> {
        match self.value {
            NameValue::Object(id) => Some(id),
            NameValue::Deleted => None,
        }
    }

    /// Whether this is a tombstone.
    pub fn is_deleted(&self) -> bool {
        self.value == NameValue::Deleted
    }

    /// Whether this is a tombstone older than the grace, which may be dropped.
    pub fn is_expired_tombstone(&self, now_millis: u64, grace_millis: u64) -> bool {
        self.is_deleted() && self.stamp.wall_millis.saturating_add(grace_millis) <= now_millis
    }

    /// A 64-bit fingerprint of the entry, for anti-entropy digests: two
    /// replicas whose entries for a name differ get different versions.
    pub fn version(&self) -> u64 {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&self.stamp.wall_millis.to_be_bytes());
        hasher.update(&self.stamp.counter.to_be_bytes());
        hasher.update(self.stamp.node.public_key());
        match self.value {
            NameValue::Deleted => hasher.update(&[0]),
            NameValue::Object(id) => hasher.update(&[1]).update(id.as_bytes()),
        };
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
        u64::from_be_bytes(bytes)
    }
}

impl NameTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Points `bucket/key` at `object` as of `stamp`. Returns whether the write
    /// won (it loses to a write or delete with a higher stamp).
    pub fn put(
        &mut self,
        bucket: &BucketName,
        key: &ObjectKey,
        object: ObjectId,
        stamp: Hlc,
    ) -> bool {
        self.apply(
            bucket,
            key,
            NameEntry {
                stamp,
                value: NameValue::Object(object),
            },
        )
    }

    /// Deletes `bucket/key` as of `stamp`, leaving a tombstone. Returns whether
    /// the delete won.
    pub fn delete(&mut self, bucket: &BucketName, key: &ObjectKey, stamp: Hlc) -> bool {
        self.apply(
            bucket,
            key,
            NameEntry {
                stamp,
                value: NameValue::Deleted,
            },
        )
    }

    /// Merges one entry, as received from another replica: it replaces ours
    /// only if it is larger. Returns whether it did.
    pub fn apply(&mut self, bucket: &BucketName, key: &ObjectKey, entry: NameEntry) -> bool {
        let keys = self.buckets.entry(bucket.clone()).or_default();
        match keys.get_mut(key) {
            Some(ours) if *ours >= entry => false,
            Some(ours) => {
                *ours = entry;
                true
            }
            None => {
                keys.insert(key.clone(), entry);
                true
            }
        }
    }

    /// Merges every entry of `other` into this table.
    pub fn merge(&mut self, other: &NameTable) {
        for (bucket, key, entry) in other.entries() {
            self.apply(bucket, key, *entry);
        }
    }

    /// The object `bucket/key` names, if it exists and is not deleted.
    pub fn get(&self, bucket: &BucketName, key: &ObjectKey) -> Option<ObjectId> {
        self.entry(bucket, key).and_then(NameEntry::object)
    }

    /// The register of `bucket/key`, tombstones included.
    pub fn entry(&self, bucket: &BucketName, key: &ObjectKey) -> Option<&NameEntry> {
        self.buckets.get(bucket)?.get(key)
    }

    /// Every entry, tombstones included, sorted by bucket and key.
    pub fn entries(&self) -> impl Iterator<Item = (&BucketName, &ObjectKey, &NameEntry)> {
        self.buckets
            .iter()
            .flat_map(|(b, keys)| keys.iter().map(move |(k, e)| (b, k, e)))
    }

    /// `(name hash, entry version)` of every entry, for an anti-entropy digest.
    pub fn digest_entries(&self) -> impl Iterator<Item = ([u8; 32], u64)> + '_ {
        self.entries()
            .map(|(b, k, e)| (name_hash(b, k), e.version()))
    }

    /// The number of entries, tombstones included.
    pub fn len(&self) -> usize {
        self.buckets.values().map(BTreeMap::len).sum()
    }

    /// Whether the table has no entry.
    pub fn is_empty(&self) -> bool {
        self.buckets.values().all(BTreeMap::is_empty)
    }

    /// Up to `limit` live names of `bucket` starting with `prefix`, sorted,
    /// after `start_after` if given (the `next` of the previous page).
    pub fn list(
        &self,
        bucket: &BucketName,
        prefix: &str,
        start_after: Option<&ObjectKey>,
        limit: usize,
    ) -> NamePage {
        let Some(keys) = self.buckets.get(bucket) else {
            return NamePage::default();
        };
        let from = match start_after {
            Some(after) if after.as_str() >= prefix => Bound::Excluded(after.as_str()),
            _ => Bound::Included(prefix),
        };
        let mut live = keys
            .range::<str, _>((from, Bound::Unbounded))
            .take_while(|(k, _)| k.as_str().starts_with(prefix))
            .filter_map(|(k, e)| Some((k.clone(), e.object()?)));
        let entries: Vec<(ObjectKey, ObjectId)> = live.by_ref().take(limit).collect();
        let more = live.next().is_some();
        let next = more
            .then(|| entries.last().map(|(k, _)| k.clone()))
            .flatten();
        NamePage { entries, next }
    }

    /// Drops the tombstones older than `grace_millis` at `now_millis` and
    /// returns how many. A replica cut off for longer than the grace and still
    /// holding an older write would bring the name back when it rejoins: the
    /// grace must exceed the longest partition that should heal cleanly.
    pub fn collect_tombstones(&mut self, now_millis: u64, grace_millis: u64) -> usize {
        let before = self.len();
        for keys in self.buckets.values_mut() {
            keys.retain(|_, e| !e.is_expired_tombstone(now_millis, grace_millis));
        }
        self.buckets.retain(|_, keys| !keys.is_empty());
        before - self.len()
    }
}
