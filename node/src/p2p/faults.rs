//! Fault injection for tests: a set of peers this node neither sends to nor
//! accepts anything from (membership and lineage sync alike), for partitions;
//! and a switch that makes it refuse every name write, as a replica whose
//! disk fails would, for puts that fail after their data was written. Off
//! unless the node runs with `--fault-injection`; set through
//! `POST /debug/faults` on the HTTP endpoint.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use libp2p::PeerId;

/// The peers cut off from this node. Cheap to clone; shared by every part of
/// the node that talks to peers.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    dropped: Arc<RwLock<HashSet<PeerId>>>,
    refuse_names: Arc<AtomicBool>,
}

impl Faults {
    /// Cuts this node off from exactly `peers` (empty: heal).
    pub fn drop_only(&self, peers: impl IntoIterator<Item = PeerId>) {
        *self.dropped.write().unwrap_or_else(|e| e.into_inner()) = peers.into_iter().collect();
    }

    /// Makes this node refuse (or accept again) every name write.
    pub fn set_refuse_names(&self, refuse: bool) {
        self.refuse_names.store(refuse, Ordering::Relaxed);
    }

    /// Whether this node refuses name writes.
    pub fn refuses_names(&self) -> bool {
        self.refuse_names.load(Ordering::Relaxed)
    }

    /// Whether traffic with `peer` is dropped.
    pub fn is_dropped(&self, peer: &PeerId) -> bool {
        self.dropped
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(peer)
    }
}
