//! Partitions: the key space cut into a fixed power-of-two number of parts, so
//! that placement moves whole partitions, never single keys, and a key's
//! partition is a few bit shifts away.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::placement::PlacementError;
use crate::{BucketName, ChunkId, ObjectId, ObjectKey};

/// How many partitions the key space has: a power of two from 1 to 65,536.
/// Fixed when the cluster is created, since changing it would move every key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct PartitionCount(u32);

/// One partition, `0 .. count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Partition(u32);

impl PartitionCount {
    /// The default: 256 partitions, enough for a few dozen nodes to be balanced
    /// within a few per cent.
    pub const DEFAULT: Self = Self(256);
    /// The largest count accepted: more would only cost memory in every layout.
    pub const MAX: u32 = 1 << 16;

    /// A count of `n` partitions; `n` must be a power of two, at most
    /// [`PartitionCount::MAX`].
    pub fn new(n: u32) -> Result<Self, PlacementError> {
        if !n.is_power_of_two() || n > Self::MAX {
            return Err(PlacementError::PartitionCount { got: n });
        }
        Ok(Self(n))
    }

    /// The number of partitions.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// How many leading hash bits select a partition.
    pub const fn bits(self) -> u32 {
        self.0.trailing_zeros()
    }

    /// Every partition, in order.
    pub fn all(self) -> impl Iterator<Item = Partition> {
        (0..self.0).map(Partition)
    }

    /// The partition `index`, if it is below the count.
    pub fn partition(self, index: u32) -> Option<Partition> {
        (index < self.0).then_some(Partition(index))
    }

    /// The partition of a 32-byte hash: its leading bits.
    pub fn of_hash(self, hash: &[u8; 32]) -> Partition {
        let lead = u32::from_be_bytes([hash[0], hash[1], hash[2], hash[3]]);
        Partition(lead.checked_shr(32 - self.bits()).unwrap_or(0))
    }

    /// The partition of a chunk: its id is already a BLAKE3 hash.
    pub fn of_chunk(self, chunk: &ChunkId) -> Partition {
        self.of_hash(chunk.as_bytes())
    }

    /// The partition of an object's manifest.
    pub fn of_object(self, object: &ObjectId) -> Partition {
        self.of_hash(object.as_bytes())
    }

    /// The partition of a name: the leading bits of [`name_hash`].
    pub fn of_name(self, bucket: &BucketName, key: &ObjectKey) -> Partition {
        self.of_hash(&name_hash(bucket, key))
    }
}

impl Default for PartitionCount {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TryFrom<u32> for PartitionCount {
    type Error = PlacementError;

    fn try_from(n: u32) -> Result<Self, Self::Error> {
        Self::new(n)
    }
}

impl From<PartitionCount> for u32 {
    fn from(count: PartitionCount) -> u32 {
        count.0
    }
}

impl Partition {
    /// Its index, `0 .. count`.
    pub const fn index(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

/// The BLAKE3 hash of `bucket/key`, which places a name and keys it in
/// anti-entropy digests. A bucket name has no `/`, so the text is unambiguous.
pub fn name_hash(bucket: &BucketName, key: &ObjectKey) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(bucket.as_str().as_bytes());
    hasher.update(b"/");
    hasher.update(key.as_str().as_bytes());
    *hasher.finalize().as_bytes()
}
