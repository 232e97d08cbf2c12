//! A digest of a member list, for the periodic pull: 256 buckets of members
//! by node, each the XOR of a 32-bit hash of its entries (node, generation,
//! SWIM incarnation, state), 1 KB in all. The puller sends its digest and the member asked
//! answers with its entries in the buckets that differ, not with its whole
//! list: in a settled cluster, with nothing. (A whole list is N/20 packets
//! sent at once, which made the member asked the busiest of the cluster.)

use super::{NodeId, splitmix64 as mix};

/// Buckets of a digest: at 10,000 members, about 40 members (two packets)
/// to send for a bucket that differs. (With 64, a cluster of 10,000 under
/// churn had enough buckets differing that the member asked still sent
/// bursts of hundreds of packets.)
pub(crate) const BUCKETS: usize = 256;

/// A digest's size on the wire: one little-endian `u32` per bucket.
pub(crate) const ENCODED_LEN: usize = BUCKETS * 4;

/// Bucket hashes of a member list. 32 bits a bucket: a difference missed
/// by a collision (one pull in four billion) waits for the next pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Digest([u32; BUCKETS]);

impl Digest {
    /// The digest of an empty list.
    pub fn new() -> Self {
        Self([0; BUCKETS])
    }

    /// The bucket of a node's entries.
    pub fn bucket(node: &NodeId) -> usize {
        (node_hash(node) % BUCKETS as u64) as usize
    }

    /// Adds an entry.
    pub fn add(&mut self, node: &NodeId, generation: u32, incarnation: u16, state: u8) {
        let h = node_hash(node);
        let entry =
            (u64::from(generation) << 24) | (u64::from(incarnation) << 8) | u64::from(state);
        self.0[(h % BUCKETS as u64) as usize] ^= mix(h ^ mix(entry)) as u32;
    }

    /// The digest as sent.
    pub fn encode(&self) -> Vec<u8> {
        self.0.iter().flat_map(|h| h.to_le_bytes()).collect()
    }

    /// A digest received, if it has the right size.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != ENCODED_LEN {
            return None;
        }
        let mut buckets = [0; BUCKETS];
        for (b, word) in buckets.iter_mut().zip(bytes.chunks_exact(4)) {
            *b = u32::from_le_bytes(word.try_into().expect("4 bytes"));
        }
        Some(Self(buckets))
    }

    /// Which buckets differ from `other`'s.
    pub fn differing(&self, other: &Self) -> [bool; BUCKETS] {
        std::array::from_fn(|i| self.0[i] != other.0[i])
    }
}

/// A node's key folded to a word and mixed.
fn node_hash(node: &NodeId) -> u64 {
    let folded = node
        .public_key()
        .chunks_exact(8)
        .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
        .fold(0u64, |acc, w| acc.rotate_left(17) ^ w);
    mix(folded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(entries: &[(u64, u32, u16, u8)]) -> Digest {
        let mut d = Digest::new();
        for &(n, g, i, s) in entries {
            d.add(&NodeId::synthetic(n), g, i, s);
        }
        d
    }

    #[test]
    fn the_same_entries_in_any_order_give_the_same_digest() {
        let a = digest(&[(1, 0, 0, 0), (2, 1, 3, 1), (3, 0, 0, 2)]);
        let b = digest(&[(3, 0, 0, 2), (1, 0, 0, 0), (2, 1, 3, 1)]);
        assert_eq!(a, b);
        assert_eq!(Digest::decode(&a.encode()), Some(a));
        assert_eq!(Digest::decode(&[0; 10]), None);
    }

    #[test]
    fn an_entry_that_differs_marks_its_bucket_only() {
        let base: Vec<_> = (0..200).map(|n| (n, 0, 0, 0)).collect();
        let mut changed = base.clone();
        changed[17].2 = 1; // a refutation: incarnation 1
        let differs = digest(&base).differing(&digest(&changed));
        let bucket = Digest::bucket(&NodeId::synthetic(17));
        assert!(differs[bucket]);
        assert_eq!(differs.iter().filter(|d| **d).count(), 1);
        // A member missing on one side marks its bucket too.
        let differs = digest(&base).differing(&digest(&base[1..]));
        assert!(differs[Digest::bucket(&NodeId::synthetic(0))]);
        assert_eq!(differs.iter().filter(|d| **d).count(), 1);
    }
}
