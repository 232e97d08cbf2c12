//! Placement settings, fixed when the cluster is created, and the errors of
//! computing a layout.

use serde::{Deserialize, Serialize};

use crate::membership::NodeId;
use crate::placement::PartitionCount;

/// How the key space is cut and how many copies each part has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PlacementConfig {
    /// The number of partitions.
    pub partitions: PartitionCount,
    /// The replication factor RF: copies of each partition, on distinct nodes.
    pub replication: u8,
}

/// Why a layout could not be computed. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlacementError {
    /// The partition count is not a power of two from 1 to 65,536.
    #[error(
        "partitions = {got}: the partition count must be a power of two from 1 to 65536 (e.g. 256, 1024)"
    )]
    PartitionCount {
        /// The count given.
        got: u32,
    },
    /// The replication factor is zero.
    #[error("replication = 0: the replication factor must be at least 1 (the default is 3)")]
    ReplicationZero,
    /// The same node appears twice in a view.
    #[error("node {0} appears twice in the view")]
    DuplicateNode(NodeId),
    /// No node in the view has any capacity, so nothing can be placed.
    #[error("no node in the view has a capacity above zero: nothing can hold a partition")]
    NoCapacity,
    /// Two layouts with different partition counts cannot be compared.
    #[error("layouts have {left} and {right} partitions: only layouts of one cluster compare")]
    PartitionCountMismatch {
        /// This layout's count.
        left: u32,
        /// The other's.
        right: u32,
    },
}

impl PlacementConfig {
    /// The default replication factor.
    pub const DEFAULT_REPLICATION: u8 = 3;

    /// `partitions` partitions (a power of two) with `replication` copies each.
    pub fn new(partitions: u32, replication: u8) -> Result<Self, PlacementError> {
        let partitions = PartitionCount::new(partitions)?;
        if replication == 0 {
            return Err(PlacementError::ReplicationZero);
        }
        Ok(Self {
            partitions,
            replication,
        })
    }
}

impl Default for PlacementConfig {
    /// 256 partitions, RF = 3.
    fn default() -> Self {
        Self {
            partitions: PartitionCount::DEFAULT,
            replication: Self::DEFAULT_REPLICATION,
        }
    }
}
