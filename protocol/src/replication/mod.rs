//! Replication planning, as pure functions of a [`Layout`](crate::placement::Layout)
//! and local facts (which nodes are live, how far they are, what a replica
//! holds): where a write goes and when it is acknowledged, where a read goes
//! first and where it falls back, what anti-entropy must fetch or push, what
//! a layout change or a lost node requires copying, and what garbage may go.
//!
//! Nothing here sends a byte: the node carries the plans out and feeds the
//! answers back (acks to a [`WriteQuorum`], digests to
//! [`PartitionDigest::compare`]).
//!
//! ```
//! use std::collections::BTreeSet;
//! use stemma_protocol::membership::NodeId;
//! use stemma_protocol::placement::{Layout, NodeSpec, PlacementConfig, View};
//! use stemma_protocol::replication::{QuorumState, WriteQuorum, write_plan};
//!
//! let view = View::new((1..=5).map(|n| NodeSpec::new(NodeId::synthetic(n), format!("z{n}"), 1))).unwrap();
//! let layout = Layout::initial(&view, PlacementConfig::default()).unwrap();
//! let partition = layout.partitions().of_hash(&[7; 32]);
//! let owners = layout.replicas(partition).to_vec();
//!
//! // One owner is down: its copy goes to a stand-in, with a hint.
//! let live: BTreeSet<NodeId> = view.nodes().iter().map(|n| n.id).filter(|id| *id != owners[0]).collect();
//! let plan = write_plan(&layout, partition, &live);
//! assert_eq!(plan.hinted.len(), 1);
//!
//! let mut quorum = WriteQuorum::new(plan.targets(), 2).unwrap();
//! assert_eq!(quorum.ack(owners[1]), QuorumState::Pending);
//! assert_eq!(quorum.ack(owners[2]), QuorumState::Reached);
//! ```

mod anti_entropy;
mod digest;
mod fill_lease;
mod gc;
mod handoff;
mod message;
mod quorum;
mod read;
mod repair;
mod unconfirmed;
mod write;

pub use anti_entropy::{
    Inventory, ItemKind, MAX_ANSWER_ENTRIES, Root, answer_roots, partition_of, root_of, roots_for,
    to_pull, to_push,
};
pub use digest::{DigestEntry, DigestError, EntryDiff, PartitionDigest, diff_entries};
pub use fill_lease::{FILL_LEASE, FillLeases};
pub use gc::{
    GcVerdict, Ref, RefState, VersionId, gc_confirmers, gc_verdict, refs_fingerprint, refs_of,
    superseded, version_id,
};
pub use handoff::{handoff_candidates, holds_all};
pub use message::{MAX_REFS_PER_REQUEST, NameRegister, ReplicaRequest, ReplicaResponse};
pub use quorum::{QuorumError, QuorumState, WriteQuorum, effective_quorum};
pub use read::{ReadOutcome, read_order, read_repair_targets};
pub use repair::{RepairPlan, Transfer, repair_plan, under_replicated};
pub use unconfirmed::{NameCheck, VersionName, check_name};
pub use write::{Hint, WritePlan, write_plan, write_targets};
