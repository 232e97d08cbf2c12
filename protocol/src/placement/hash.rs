//! Deterministic tie-breaking hashes: the same on every machine, and spread,
//! so that ties between nodes go to different nodes in different partitions.

use crate::membership::NodeId;

/// A stable hash of a node's id.
pub(crate) fn node_key(id: &NodeId) -> u64 {
    let hash = blake3::hash(id.public_key());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_le_bytes(bytes)
}

/// A hash of (partition, node key): SplitMix64's finaliser.
pub(crate) fn mix(p: usize, key: u64) -> u64 {
    let mut z = key ^ (p as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The tie-breaking rank of `node` in `partition`.
pub(crate) fn rank(partition: crate::placement::Partition, node: &NodeId) -> u64 {
    mix(partition.index() as usize, node_key(node))
}
