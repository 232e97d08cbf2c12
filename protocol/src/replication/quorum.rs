//! When a write is acknowledged: after W durable acks. A hinted copy on a
//! stand-in counts, since it is durable and will reach its owner (Dynamo's
//! sloppy quorum); the client learns the write is safe on W disks, not that W
//! owners have it.

use std::collections::BTreeSet;

use crate::membership::NodeId;

/// Where a write stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuorumState {
    /// Fewer than W acks, and enough targets still pending to reach W.
    Pending,
    /// W durable acks: acknowledge the client. Final.
    Reached,
    /// Too many targets failed for W acks to be possible: report the failure.
    /// Final unless a stand-in is added with [`WriteQuorum::substitute`].
    Failed,
}

/// A write quorum that cannot be met from the start. Nothing was tracked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuorumError {
    /// W is zero or larger than the number of targets.
    #[error(
        "write quorum W = {w} with {targets} target node(s): W must be from 1 to the number of targets"
    )]
    Unreachable {
        /// The W asked for.
        w: usize,
        /// The number of targets.
        targets: usize,
    },
}

/// Tracks the acks of one write.
#[derive(Debug, Clone)]
pub struct WriteQuorum {
    w: usize,
    pending: BTreeSet<NodeId>,
    acked: BTreeSet<NodeId>,
    failed: BTreeSet<NodeId>,
    reached: bool,
}

impl WriteQuorum {
    /// A write sent to `targets` that needs `w` durable acks.
    pub fn new(targets: impl IntoIterator<Item = NodeId>, w: usize) -> Result<Self, QuorumError> {
        let pending: BTreeSet<NodeId> = targets.into_iter().collect();
        if w == 0 || w > pending.len() {
            return Err(QuorumError::Unreachable {
                w,
                targets: pending.len(),
            });
        }
        Ok(Self {
            w,
            pending,
            acked: BTreeSet::new(),
            failed: BTreeSet::new(),
            reached: false,
        })
    }

    /// `node` stored the write durably. An ack from a node that is not a
    /// pending target (unknown, or already counted) changes nothing.
    pub fn ack(&mut self, node: NodeId) -> QuorumState {
        if self.pending.remove(&node) {
            self.acked.insert(node);
        }
        self.update()
    }

    /// `node` failed or timed out.
    pub fn fail(&mut self, node: NodeId) -> QuorumState {
        if self.pending.remove(&node) {
            self.failed.insert(node);
        }
        self.update()
    }

    /// Sends the write to `stand_in` in place of the failed `failed` (hinted
    /// handoff). Ignored unless `failed` did fail and `stand_in` is new.
    pub fn substitute(&mut self, failed: NodeId, stand_in: NodeId) -> QuorumState {
        let known = self.pending.contains(&stand_in)
            || self.acked.contains(&stand_in)
            || self.failed.contains(&stand_in);
        if self.failed.contains(&failed) && !known {
            self.pending.insert(stand_in);
        }
        self.update()
    }

    /// The state now.
    pub fn state(&self) -> QuorumState {
        if self.reached || self.acked.len() >= self.w {
            QuorumState::Reached
        } else if self.acked.len() + self.pending.len() < self.w {
            QuorumState::Failed
        } else {
            QuorumState::Pending
        }
    }

    fn update(&mut self) -> QuorumState {
        let state = self.state();
        self.reached = state == QuorumState::Reached;
        state
    }

    /// The nodes that acked.
    pub fn acked(&self) -> &BTreeSet<NodeId> {
        &self.acked
    }

    /// The targets not heard from yet.
    pub fn pending(&self) -> &BTreeSet<NodeId> {
        &self.pending
    }
}

/// The W a write needs when the layout has `replicas` copies per partition:
/// the configured `w`, but never more than there are replicas (a cluster of
/// two with W = 2 still writes; a cluster of one needs its own ack), and at
/// least 1.
pub fn effective_quorum(w: usize, replicas: usize) -> usize {
    w.min(replicas).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(i: u64) -> NodeId {
        NodeId::synthetic(i)
    }

    #[test]
    fn two_of_three_acks_reach_the_quorum_and_it_stays_reached() {
        let mut q = WriteQuorum::new([n(1), n(2), n(3)], 2).unwrap();
        assert_eq!(q.ack(n(1)), QuorumState::Pending);
        assert_eq!(
            q.ack(n(1)),
            QuorumState::Pending,
            "a repeated ack counts once"
        );
        assert_eq!(
            q.ack(n(9)),
            QuorumState::Pending,
            "a stranger's ack does not count"
        );
        assert_eq!(q.ack(n(3)), QuorumState::Reached);
        assert_eq!(q.fail(n(2)), QuorumState::Reached);
    }

    #[test]
    fn the_write_fails_once_w_acks_are_impossible() {
        let mut q = WriteQuorum::new([n(1), n(2), n(3)], 2).unwrap();
        assert_eq!(q.fail(n(1)), QuorumState::Pending);
        assert_eq!(q.fail(n(2)), QuorumState::Failed);
        // A stand-in for a failed target makes it possible again.
        assert_eq!(q.substitute(n(1), n(4)), QuorumState::Pending);
        assert_eq!(q.ack(n(4)), QuorumState::Pending);
        assert_eq!(q.ack(n(3)), QuorumState::Reached);
    }

    #[test]
    fn a_stand_in_only_replaces_a_failed_target() {
        let mut q = WriteQuorum::new([n(1), n(2), n(3)], 3).unwrap();
        q.substitute(n(1), n(4));
        assert!(!q.pending().contains(&n(4)), "n(1) has not failed");
        q.fail(n(1));
        q.substitute(n(1), n(2));
        assert_eq!(q.pending().len(), 2, "n(2) is already a target");
    }

    #[test]
    fn an_impossible_quorum_is_refused() {
        assert!(WriteQuorum::new([n(1), n(2)], 3).is_err());
        assert!(WriteQuorum::new([n(1)], 0).is_err());
        let err = WriteQuorum::new([n(1), n(1)], 2).unwrap_err();
        assert_eq!(err, QuorumError::Unreachable { w: 2, targets: 1 });
    }

    #[test]
    fn the_effective_quorum_never_exceeds_the_replicas() {
        assert_eq!(effective_quorum(2, 3), 2);
        assert_eq!(effective_quorum(2, 1), 1);
        assert_eq!(effective_quorum(3, 2), 2);
        assert_eq!(effective_quorum(0, 3), 1);
    }
}
