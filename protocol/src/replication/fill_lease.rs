//! Fill leases: one peer at a time fills a partition a node lacks.
//!
//! When a node joins or comes back, every holder of its partitions offers them
//! in its next anti-entropy round, and those rounds start together (two
//! seconds after the same layout change). Answering every offer would have
//! each holder push the same items: two or three times the bytes a move
//! needs. So the receiver grants a partition to the first peer whose offer
//! differed, answers the others' offers of that partition as if equal, and
//! lets the lease lapse if the holder stops pushing (it died, or it is done):
//! each item the holder pushes renews it.

use std::collections::HashMap;
use std::time::Duration;

use super::anti_entropy::ItemKind;
use crate::membership::NodeId;

/// How long a lease lasts without a push renewing it.
pub const FILL_LEASE: Duration = Duration::from_secs(10);

/// The leases a receiver has granted, by (kind, partition).
#[derive(Debug, Default)]
pub struct FillLeases {
    granted: HashMap<(ItemKind, u32), (NodeId, Duration)>,
}

impl FillLeases {
    /// No leases.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `peer` may fill `partition` at `now` (time since any fixed
    /// origin): yes if nobody else holds an unexpired lease on it, and then
    /// the lease is `peer`'s.
    pub fn grant(&mut self, kind: ItemKind, partition: u32, peer: NodeId, now: Duration) -> bool {
        match self.granted.get(&(kind, partition)) {
            Some(&(holder, until)) if holder != peer && now < until => false,
            _ => {
                self.granted
                    .insert((kind, partition), (peer, now + FILL_LEASE));
                true
            }
        }
    }

    /// A push from `peer` into `partition` arrived at `now`: its lease, if it
    /// holds one, runs on.
    pub fn renew(&mut self, kind: ItemKind, partition: u32, peer: NodeId, now: Duration) {
        if let Some((holder, until)) = self.granted.get_mut(&(kind, partition))
            && *holder == peer
        {
            *until = now + FILL_LEASE;
        }
    }

    /// Forgets expired leases (call now and then; they are harmless but take
    /// room).
    pub fn expire(&mut self, now: Duration) {
        self.granted.retain(|_, (_, until)| now < *until);
    }

    /// Leases held now.
    pub fn len(&self) -> usize {
        self.granted.len()
    }

    /// Whether no lease is held.
    pub fn is_empty(&self) -> bool {
        self.granted.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn one_filler_at_a_time_and_the_lease_lapses_without_pushes() {
        let (a, b) = (NodeId::synthetic(1), NodeId::synthetic(2));
        let mut leases = FillLeases::new();
        assert!(leases.grant(ItemKind::Chunk, 7, a, S));
        assert!(!leases.grant(ItemKind::Chunk, 7, b, 2 * S), "a holds it");
        assert!(
            leases.grant(ItemKind::Chunk, 8, b, 2 * S),
            "another partition"
        );
        assert!(leases.grant(ItemKind::Name, 7, b, 2 * S), "another kind");
        assert!(
            leases.grant(ItemKind::Chunk, 7, a, 3 * S),
            "the holder again"
        );
        // Pushes renew a's lease past its first expiry.
        leases.renew(ItemKind::Chunk, 7, a, 12 * S);
        leases.renew(ItemKind::Chunk, 7, b, 12 * S);
        assert!(!leases.grant(ItemKind::Chunk, 7, b, 20 * S));
        // a stops; after FILL_LEASE without a push, b gets it.
        assert!(leases.grant(ItemKind::Chunk, 7, b, 22 * S + FILL_LEASE));
        leases.expire(100 * S);
        assert!(leases.is_empty());
    }
}
