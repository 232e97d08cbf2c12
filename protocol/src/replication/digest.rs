//! Anti-entropy digests: two replicas of a partition find what differs by
//! exchanging a few hundred small hashes, then exact lists of the differing
//! buckets only.
//!
//! A digest has a fixed number of buckets (a power of two, 256 by default);
//! an entry `(key, version)` — a chunk id, or a name's hash and its
//! register's version — falls in the bucket given by key bits that do not
//! choose the partition (bytes 4–7), so the entries of one partition spread
//! over all buckets. A bucket's digest is the XOR of its entries' BLAKE3
//! hashes and their count: it can be kept up to date on every write (insert
//! and remove are one XOR each) instead of being rebuilt, and it is equal for
//! equal sets whatever the order entries came in. The root is the hash of the
//! buckets: equal roots, nothing to do (one round trip).

use serde::{Deserialize, Serialize};

/// A key (32 bytes, a hash) and its version (for immutable chunks, any
/// constant; for names, [`NameEntry::version`](crate::names::NameEntry::version)).
pub type DigestEntry = ([u8; 32], u64);

/// A digest of one replica's entries in one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionDigest {
    buckets: Vec<Bucket>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Bucket {
    xor: [u8; 32],
    count: u64,
}

/// Two digests that cannot be compared. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// The bucket count is not a power of two from 1 to 65,536.
    #[error("digest fanout {got}: must be a power of two from 1 to 65536")]
    Fanout {
        /// The count given.
        got: usize,
    },
    /// The digests have different bucket counts.
    #[error("digests of {ours} and {theirs} buckets cannot be compared")]
    Mismatch {
        /// Our bucket count.
        ours: usize,
        /// Theirs.
        theirs: usize,
    },
}

/// What two replicas must exchange, from an exact comparison of the entries
/// of the buckets that differ.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryDiff {
    /// Keys they have and we do not: fetch.
    pub fetch: Vec<[u8; 32]>,
    /// Keys we have and they do not: push.
    pub push: Vec<[u8; 32]>,
    /// Keys both have at different versions: exchange both ways and merge
    /// (never happens for chunks, whose content is their key).
    pub reconcile: Vec<[u8; 32]>,
}

impl PartitionDigest {
    /// The default number of buckets: 256 × 40 bytes ≈ 10 KB to send when the
    /// roots differ, and about a 256th of the entries to list per differing
    /// bucket.
    pub const DEFAULT_FANOUT: usize = 256;

    /// An empty digest of `fanout` buckets.
    pub fn new(fanout: usize) -> Result<Self, DigestError> {
        if !fanout.is_power_of_two() || fanout > 1 << 16 {
            return Err(DigestError::Fanout { got: fanout });
        }
        Ok(Self {
            buckets: vec![Bucket::default(); fanout],
        })
    }

    /// The digest of `entries` (each key once) with the default fanout.
    pub fn build(entries: impl IntoIterator<Item = DigestEntry>) -> Self {
        let mut digest = Self {
            buckets: vec![Bucket::default(); Self::DEFAULT_FANOUT],
        };
        for (key, version) in entries {
            digest.insert(&key, version);
        }
        digest
    }

    /// The number of buckets.
    pub fn fanout(&self) -> usize {
        self.buckets.len()
    }

    /// The bucket `key` falls in.
    pub fn bucket_of(&self, key: &[u8; 32]) -> usize {
        let bits = self.buckets.len().trailing_zeros();
        let lead = u32::from_be_bytes([key[4], key[5], key[6], key[7]]);
        lead.checked_shr(32 - bits).unwrap_or(0) as usize
    }

    /// Adds an entry. A key must be in at most once: to change a version,
    /// remove the old entry first.
    pub fn insert(&mut self, key: &[u8; 32], version: u64) {
        let b = self.bucket_of(key);
        xor_into(&mut self.buckets[b].xor, &entry_hash(key, version));
        self.buckets[b].count += 1;
    }

    /// Removes an entry that was inserted.
    pub fn remove(&mut self, key: &[u8; 32], version: u64) {
        let b = self.bucket_of(key);
        xor_into(&mut self.buckets[b].xor, &entry_hash(key, version));
        self.buckets[b].count = self.buckets[b].count.saturating_sub(1);
    }

    /// A hash of every bucket: equal roots, equal entries (all but surely).
    pub fn root(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        for bucket in &self.buckets {
            hasher.update(&bucket.xor);
            hasher.update(&bucket.count.to_be_bytes());
        }
        *hasher.finalize().as_bytes()
    }

    /// The number of entries.
    pub fn len(&self) -> u64 {
        self.buckets.iter().map(|b| b.count).sum()
    }

    /// Whether the digest has no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buckets whose entries differ, in order.
    pub fn compare(&self, other: &PartitionDigest) -> Result<Vec<usize>, DigestError> {
        if self.fanout() != other.fanout() {
            return Err(DigestError::Mismatch {
                ours: self.fanout(),
                theirs: other.fanout(),
            });
        }
        Ok((0..self.fanout())
            .filter(|&b| self.buckets[b] != other.buckets[b])
            .collect())
    }
}

/// The exact difference between our entries and theirs (each key once per
/// side, in any order): typically the entries of the buckets
/// [`PartitionDigest::compare`] found different. Each list is sorted.
pub fn diff_entries(ours: &[DigestEntry], theirs: &[DigestEntry]) -> EntryDiff {
    let mut ours = ours.to_vec();
    let mut theirs = theirs.to_vec();
    ours.sort_unstable();
    theirs.sort_unstable();
    let mut diff = EntryDiff::default();
    let (mut i, mut j) = (0, 0);
    while i < ours.len() || j < theirs.len() {
        match (ours.get(i), theirs.get(j)) {
            (Some(a), Some(b)) if a.0 == b.0 => {
                if a.1 != b.1 {
                    diff.reconcile.push(a.0);
                }
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.0 < b.0 => {
                diff.push.push(a.0);
                i += 1;
            }
            (Some(a), None) => {
                diff.push.push(a.0);
                i += 1;
            }
            (_, Some(b)) => {
                diff.fetch.push(b.0);
                j += 1;
            }
            (None, None) => break,
        }
    }
    diff
}

fn entry_hash(key: &[u8; 32], version: u64) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(key);
    hasher.update(&version.to_be_bytes());
    *hasher.finalize().as_bytes()
}

fn xor_into(acc: &mut [u8; 32], hash: &[u8; 32]) {
    for (a, h) in acc.iter_mut().zip(hash) {
        *a ^= h;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn key(n: u16) -> [u8; 32] {
        *blake3::hash(&n.to_be_bytes()).as_bytes()
    }

    /// Replicas as maps key → version.
    fn replica() -> impl Strategy<Value = BTreeMap<u16, u64>> {
        prop::collection::btree_map(0u16..2000, 0u64..3, 0..300)
    }

    fn entries(r: &BTreeMap<u16, u64>) -> Vec<DigestEntry> {
        r.iter().map(|(&k, &v)| (key(k), v)).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

        /// Comparing digests, then diffing only the differing buckets, finds
        /// exactly what a full comparison finds.
        #[test]
        fn the_bucket_diff_finds_exactly_the_differences(a in replica(), b in replica()) {
            let (ours, theirs) = (entries(&a), entries(&b));
            let (da, db) = (PartitionDigest::build(ours.clone()), PartitionDigest::build(theirs.clone()));
            prop_assert_eq!(da.root() == db.root(), a == b);
            let buckets = da.compare(&db).unwrap();
            let pick = |e: &[DigestEntry]| -> Vec<DigestEntry> {
                e.iter().copied().filter(|(k, _)| buckets.contains(&da.bucket_of(k))).collect()
            };
            let narrow = diff_entries(&pick(&ours), &pick(&theirs));
            prop_assert_eq!(&narrow, &diff_entries(&ours, &theirs));
            let mut fetch: Vec<[u8; 32]> = b.keys().filter(|k| !a.contains_key(k)).map(|&k| key(k)).collect();
            fetch.sort_unstable();
            prop_assert_eq!(narrow.fetch, fetch);
            let reconcile = a.iter().filter(|(k, v)| b.get(k).is_some_and(|w| w != *v)).count();
            prop_assert_eq!(narrow.reconcile.len(), reconcile);
        }

        /// Kept up to date entry by entry, a digest equals one built at once.
        #[test]
        fn incremental_updates_match_a_rebuild(a in replica(), b in replica()) {
            let mut digest = PartitionDigest::build(entries(&a));
            for (k, v) in &a {
                if !b.contains_key(k) || b[k] != *v {
                    digest.remove(&key(*k), *v);
                }
            }
            for (k, v) in &b {
                if !a.contains_key(k) || a[k] != *v {
                    digest.insert(&key(*k), *v);
                }
            }
            prop_assert_eq!(digest.root(), PartitionDigest::build(entries(&b)).root());
            prop_assert_eq!(digest.len(), b.len() as u64);
        }
    }

    #[test]
    fn only_changed_buckets_differ() {
        let base: Vec<DigestEntry> = (0..1000).map(|n| (key(n), 0)).collect();
        let mut changed = base.clone();
        changed[10].1 = 1;
        changed.pop();
        let (a, b) = (
            PartitionDigest::build(base),
            PartitionDigest::build(changed.clone()),
        );
        let buckets = a.compare(&b).unwrap();
        assert!(!buckets.is_empty() && buckets.len() <= 2, "{buckets:?}");
        assert!(a.compare(&PartitionDigest::new(16).unwrap()).is_err());
        assert!(PartitionDigest::new(100).is_err());
        // Order does not matter.
        changed.reverse();
        assert_eq!(PartitionDigest::build(changed).root(), b.root());
    }
}
