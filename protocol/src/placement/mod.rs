//! Placement: which nodes hold which part of the key space.
//!
//! The key space is cut into a fixed power-of-two number of [`Partition`]s (256
//! by default, chosen when the cluster is created). A partition is the leading
//! bits of a BLAKE3 hash: of the chunk id for chunks (already a BLAKE3 hash),
//! of `bucket/key` for names. A [`Layout`] assigns every partition to RF
//! distinct nodes of a [`View`] (node id, zone, capacity):
//!
//! - **weighted** — each node's share of the `partitions × RF` replica slots is
//!   proportional to its capacity (Webster apportionment, so integer counts are
//!   within one of the exact share), capped so that no node holds a partition
//!   twice and no zone more than its fair part;
//! - **zone-aware** — with at least RF zones, the RF replicas of a partition are
//!   in RF distinct zones; with fewer, they are spread as evenly as the zones
//!   allow;
//! - **stable** — [`Layout::next`] starts from the previous layout and moves a
//!   replica only to reach the new targets, so a join moves about the new node's
//!   share and a leave about the leaving node's share (the minimum possible);
//! - **deterministic** — every node computing from the same previous layout and
//!   the same view gets the same layout, whatever the order the view was given
//!   in: nodes are sorted by id and ties are broken by a hash of
//!   (partition, node), never by a hash map's iteration order.
//!
//! ```
//! use stemma_protocol::membership::NodeId;
//! use stemma_protocol::placement::{Layout, NodeSpec, PlacementConfig, View};
//!
//! let node = |n: u64, zone: &str| NodeSpec::new(NodeId::synthetic(n), zone, 1);
//! let view = View::new([node(1, "a"), node(2, "b"), node(3, "c")]).unwrap();
//! let layout = Layout::initial(&view, PlacementConfig::default()).unwrap();
//! assert_eq!(layout.version(), 1);
//!
//! let bigger = View::new([node(1, "a"), node(2, "b"), node(3, "c"), node(4, "d")]).unwrap();
//! let next = layout.next(&bigger).unwrap();
//! assert_eq!(next.version(), 2);
//! // Only the new node's share moves: 256 × 3 / 4 replica slots.
//! assert_eq!(layout.diff(&next).unwrap().len(), 192);
//! ```

mod apportion;
mod assign;
mod config;
pub(crate) mod hash;
mod layout;
mod partition;
mod view;

pub use config::{PlacementConfig, PlacementError};
pub use layout::{Layout, Move};
pub use partition::{Partition, PartitionCount, name_hash};
pub use view::{NodeSpec, View};

#[cfg(test)]
mod tests;
