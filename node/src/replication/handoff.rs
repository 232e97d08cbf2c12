//! Hand-off: the node side of `stemma_protocol::replication::handoff_candidates`.
//! After each anti-entropy round, for each partition of chunks or manifests
//! this node holds but does not own, every owner is asked whether it holds
//! all of it (`Holds`: that partition's root, answered exactly, never
//! through a fill lease, which answers a differing offer as if equal); if
//! every one of them is live and shows it does, this node drops its copies. Without this, a join copies the
//! moved partitions to the new node and the old owners keep them for ever.

use std::sync::Arc;

use stemma_protocol::replication::{
    Inventory, ItemKind, ReplicaRequest, ReplicaResponse, handoff_candidates, holds_all, root_of,
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
        for (p, owners) in handoff_candidates(&snap.layout, &self.me.id, kind, inventory) {
            if !owners.iter().all(|o| snap.live.contains(o)) {
                continue;
            }
            let ours = &inventory[&p];
            if self.all_hold(&owners, kind, p, ours).await {
                items.extend(ours.iter().map(|(key, _)| (kind, *key)));
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

    /// Whether every owner answers with proof that it holds all of `ours` of
    /// partition `p`.
    async fn all_hold(
        &self,
        owners: &[stemma_protocol::membership::NodeId],
        kind: ItemKind,
        p: u32,
        ours: &[stemma_protocol::replication::DigestEntry],
    ) -> bool {
        let root = root_of(ours);
        for owner in owners {
            let request = ReplicaRequest::Holds {
                kind,
                root: (p, root),
            };
            match self.ask(*owner, request).await {
                Ok(ReplicaResponse::Entries(answer)) if holds_all(p, ours, &answer) => {}
                _ => return false,
            }
        }
        true
    }
}
