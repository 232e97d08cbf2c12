//! Fault injection for tests of partitions: a set of peers this node neither
//! sends to nor accepts anything from (membership and lineage sync alike).
//! Off unless the node runs with `--fault-injection`; set through
//! `POST /debug/faults` on the HTTP endpoint.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use libp2p::PeerId;

/// The peers cut off from this node. Cheap to clone; shared by every part of
/// the node that talks to peers.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    dropped: Arc<RwLock<HashSet<PeerId>>>,
}

impl Faults {
    /// Cuts this node off from exactly `peers` (empty: heal).
    pub fn drop_only(&self, peers: impl IntoIterator<Item = PeerId>) {
        *self.dropped.write().unwrap_or_else(|e| e.into_inner()) = peers.into_iter().collect();
    }

    /// Whether traffic with `peer` is dropped.
    pub fn is_dropped(&self, peer: &PeerId) -> bool {
        self.dropped
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(peer)
    }
}
