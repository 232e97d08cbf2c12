//! Hand-off: the node side of `stemma_protocol::replication::handoff_candidates`.
//! After an anti-entropy round (once the layout has been stable for a
//! while), for each partition of chunks or manifests this node holds but
//! does not own, every owner is asked which of those items it holds
//! (`Holds`, point lookups, never answered through a fill lease). If every
//! owner is live and holds them all, this node drops its copies. Without
//! this, a join copies the moved partitions to the new node and the old
//! owners keep them for ever.

use std::sync::Arc;

use stemma_protocol::membership::NodeId;
use stemma_protocol::replication::{
    Inventory, ItemKind, MAX_REFS_PER_REQUEST, ReplicaRequest, ReplicaResponse, handoff_candidates,
    holds_all,
};

use super::{Replication, Snapshot};

impl Replication {
    /// Drops this node's copies of `kind` in the partitions of `inventory`
    /// that every owner holds in full.
    pub(super) async fn hand_off(
        self: &Arc<Self>,
        snap: &Snapshot,
        kind: ItemKind,
        inventory: &Inventory,
    ) {
        let mut items = Vec::new();
        let candidates = handoff_candidates(&snap.layout, &self.me.id, &snap.live, kind, inventory);
        for (p, owners) in candidates {
            let keys: Vec<[u8; 32]> = inventory[&p].iter().map(|(key, _)| *key).collect();
            if self.all_hold(&owners, kind, &keys).await {
                items.extend(keys.into_iter().map(|key| (kind, key)));
            }
        }
        if items.is_empty() {
            return;
        }
        // The asks took time: if the layout changed meanwhile, this node may
        // own some of these partitions now. The next round decides again.
        match self.snapshot().await {
            Ok(now) if now.changes == snap.changes => {}
            _ => return,
        }
        match self.writer.hand_off(items).await {
            Ok(handed) => {
                let r = &self.metrics.replication;
                r.handoff_chunks.inc_by(handed.chunks);
                r.handoff_bytes.inc_by(handed.bytes);
                r.handoff_manifests.inc_by(handed.manifests);
                if handed.chunks + handed.manifests > 0 {
                    tracing::info!(
                        kind = kind.as_str(),
                        chunks = handed.chunks,
                        bytes = handed.bytes,
                        manifests = handed.manifests,
                        "handed off copies of partitions this node does not own"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "hand-off: cannot drop copies"),
        }
    }

    /// Whether every owner says it holds every one of `keys`.
    async fn all_hold(&self, owners: &[NodeId], kind: ItemKind, keys: &[[u8; 32]]) -> bool {
        for owner in owners {
            for batch in keys.chunks(MAX_REFS_PER_REQUEST) {
                let request = ReplicaRequest::Holds {
                    kind,
                    keys: batch.to_vec(),
                };
                match self.ask(*owner, request).await {
                    Ok(ReplicaResponse::Held(held)) if holds_all(batch, &held) => {}
                    _ => return false,
                }
            }
        }
        true
    }
}
