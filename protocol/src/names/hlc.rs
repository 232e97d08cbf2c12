//! Hybrid logical clocks (Kulkarni et al., 2014): a timestamp close to the
//! physical time that still orders causally related events, without trusting
//! clocks to be synchronised.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::membership::NodeId;

/// A hybrid logical timestamp. Ordered by wall time, then counter, then node:
/// a total order, so two replicas always pick the same winner.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Hlc {
    /// Milliseconds since the Unix epoch: the largest physical time seen.
    pub wall_millis: u64,
    /// Events at the same wall time, in order.
    pub counter: u32,
    /// The node that made the stamp; it breaks ties between nodes.
    pub node: NodeId,
}

/// A node's hybrid logical clock. The driver passes the physical time in; the
/// clock never reads one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HlcClock {
    last: Hlc,
    max_drift_millis: u64,
}

/// A remote stamp refused. The clock did not change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClockError {
    /// The stamp is further ahead of our physical time than the drift allowed:
    /// accepting it would drag every later stamp of ours into the future.
    #[error(
        "remote stamp at {remote_millis} ms is {ahead_millis} ms ahead of local time {physical_millis} ms (at most {max_drift_millis} ms allowed): check the sender's clock"
    )]
    TooFarAhead {
        /// The remote stamp's wall time.
        remote_millis: u64,
        /// Our physical time.
        physical_millis: u64,
        /// How far ahead it is.
        ahead_millis: u64,
        /// The most allowed.
        max_drift_millis: u64,
    },
}

impl Hlc {
    /// The stamp `(wall_millis, counter)` of `node`.
    pub const fn new(wall_millis: u64, counter: u32, node: NodeId) -> Self {
        Self {
            wall_millis,
            counter,
            node,
        }
    }
}

impl fmt::Debug for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}@{}",
            self.wall_millis,
            self.counter,
            self.node.short()
        )
    }
}

impl HlcClock {
    /// The default drift allowed for remote stamps: one minute, well above
    /// what NTP leaves between healthy machines.
    pub const DEFAULT_MAX_DRIFT_MILLIS: u64 = 60_000;

    /// A fresh clock for `node`.
    pub fn new(node: NodeId, max_drift_millis: u64) -> Self {
        Self::resume(Hlc::new(0, 0, node), max_drift_millis)
    }

    /// A clock that continues after `last` (persisted before a restart), so
    /// that its stamps keep growing even if the physical clock went back.
    pub fn resume(last: Hlc, max_drift_millis: u64) -> Self {
        Self {
            last,
            max_drift_millis,
        }
    }

    /// The last stamp made or observed.
    pub fn last(&self) -> Hlc {
        self.last
    }

    /// A stamp for a local event: the physical time if it is ahead of every
    /// stamp seen, else the last stamp's wall time with the counter bumped.
    pub fn now(&mut self, physical_millis: u64) -> Hlc {
        self.advance(physical_millis, None);
        self.last
    }

    /// Takes in a stamp received from another node, so that every later stamp
    /// of ours is above it, and returns the stamp of the receipt. A stamp more
    /// than the allowed drift ahead of `physical_millis` is refused.
    pub fn observe(&mut self, remote: Hlc, physical_millis: u64) -> Result<Hlc, ClockError> {
        let ahead = remote.wall_millis.saturating_sub(physical_millis);
        if ahead > self.max_drift_millis {
            return Err(ClockError::TooFarAhead {
                remote_millis: remote.wall_millis,
                physical_millis,
                ahead_millis: ahead,
                max_drift_millis: self.max_drift_millis,
            });
        }
        self.advance(physical_millis, Some(remote));
        Ok(self.last)
    }

    /// The HLC rule: wall = max(last, remote, physical); the counter restarts
    /// at 0 when the physical time won, else it goes one past the largest
    /// counter at that wall time. A full counter moves the wall time on.
    fn advance(&mut self, physical_millis: u64, remote: Option<Hlc>) {
        let remote_wall = remote.map_or(0, |r| r.wall_millis);
        let wall = self.last.wall_millis.max(remote_wall).max(physical_millis);
        let mut counter: Option<u32> = None;
        if wall == self.last.wall_millis {
            counter = Some(self.last.counter);
        }
        if let Some(r) = remote.filter(|r| r.wall_millis == wall) {
            counter = Some(counter.map_or(r.counter, |c| c.max(r.counter)));
        }
        let (wall, counter) = match counter {
            None => (wall, 0),
            Some(u32::MAX) => (wall + 1, 0),
            Some(c) => (wall, c + 1),
        };
        self.last = Hlc::new(wall, counter, self.last.node);
    }
}
