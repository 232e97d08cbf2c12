//! Anti-entropy rounds: the node side of
//! `stemma_protocol::replication::anti_entropy`.
//!
//! Every `interval`, and a few seconds after each change of the layout, the
//! node offers every live peer the digest roots of the partitions it holds
//! items of and the layout places on that peer, kind by kind (chunks, then
//! manifests, then names, so a manifest never arrives before its chunks), and
//! pushes what the peer's answer shows it lacks. That one loop restores RF after
//! a node is lost, fills a node that joined or came back, and catches up a
//! replica that missed writes while it was down. After each kind, once the
//! layout has been the same for a while, the node hands off what it holds
//! of partitions it does not own (`handoff.rs`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use stemma_protocol::membership::NodeId;
use stemma_protocol::replication::{
    Inventory, ItemKind, MAX_REFS_PER_REQUEST, ReplicaRequest, ReplicaResponse, roots_for, to_pull,
    to_push,
};
use stemma_protocol::{ChunkId, ObjectId};
use tokio::time::Instant;

use super::{Replication, Snapshot, blocking};

/// Partitions offered per request.
const ROOTS_PER_REQUEST: usize = 64;
/// How long after a layout change the next round starts: views change in
/// bursts (a death is seen by each node within a few seconds), and a round
/// against a half-settled view pushes to owners that are about to change.
const SETTLE: Duration = Duration::from_secs(2);
/// How long the layout must have stayed the same before this node hands off
/// copies it does not own: while views converge after a change, a node that
/// has not yet seen the change would drop copies it is about to own, to be
/// copied to it again.
const HANDOFF_SETTLE: Duration = Duration::from_secs(10);
/// How often the loop looks at the layout.
const TICK: Duration = Duration::from_millis(500);

/// Runs rounds until the task is aborted.
pub(crate) async fn run(replication: Arc<Replication>, interval: Duration) {
    let mut seen_changes = None;
    let mut changed_at = Instant::now();
    let mut next_round = Instant::now() + interval;
    loop {
        tokio::time::sleep(TICK).await;
        let snap = match replication.snapshot().await {
            Ok(snap) => snap,
            Err(e) => {
                tracing::warn!(error = %e, "anti-entropy: no layout");
                continue;
            }
        };
        if seen_changes != Some(snap.changes) {
            seen_changes = Some(snap.changes);
            changed_at = Instant::now();
            next_round = next_round.min(Instant::now() + SETTLE);
        }
        if Instant::now() < next_round {
            continue;
        }
        next_round = Instant::now() + interval;
        if !snap.alone() {
            let hand_off = changed_at.elapsed() >= HANDOFF_SETTLE;
            replication.anti_entropy_round(&snap, hand_off).await;
        }
    }
}

impl Replication {
    /// Offers every live peer what this node holds of the partitions the
    /// layout places on it, and pushes what each lacks; then, if `hand_off`,
    /// drops what it holds of other partitions once their owners hold it.
    pub(crate) async fn anti_entropy_round(self: &Arc<Self>, snap: &Snapshot, hand_off: bool) {
        let started = std::time::Instant::now();
        let peers: Vec<NodeId> = snap
            .live
            .iter()
            .copied()
            .filter(|n| *n != self.me.id)
            .collect();
        let (mut differing, mut pushed) = (0, 0);
        for kind in ItemKind::ALL {
            let (store, clock) = (self.store.clone(), self.gc_clock());
            let partitions = snap.layout.partitions();
            let inventory = match blocking(move || store.replica_inventory(kind, partitions, clock))
                .await
            {
                Ok(inventory) => inventory,
                Err(e) => {
                    tracing::warn!(error = %e, kind = kind.as_str(), "anti-entropy: cannot read the store");
                    return;
                }
            };
            for peer in &peers {
                let (d, p) = self.reconcile_with(snap, *peer, kind, &inventory).await;
                differing += d;
                pushed += p;
            }
            if hand_off {
                self.hand_off(snap, kind, &inventory).await;
            }
        }
        let r = &self.metrics.replication;
        r.anti_entropy_rounds.inc();
        r.partitions_out_of_sync.set(differing as i64);
        if pushed > 0 || differing > 0 {
            tracing::info!(
                peers = peers.len(),
                partitions_differing = differing,
                items_pushed = pushed,
                took_ms = started.elapsed().as_millis() as u64,
                "anti-entropy round"
            );
        }
    }

    /// One peer, one kind: offers the roots, pushes what the answer asks for.
    /// Returns (partitions that differed, items pushed).
    async fn reconcile_with(
        self: &Arc<Self>,
        snap: &Snapshot,
        peer: NodeId,
        kind: ItemKind,
        inventory: &Inventory,
    ) -> (usize, usize) {
        let roots = roots_for(&snap.layout, &peer, inventory);
        let (mut differing, mut pushed) = (0, 0);
        for batch in roots.chunks(ROOTS_PER_REQUEST) {
            let request = ReplicaRequest::Roots {
                kind,
                roots: batch.to_vec(),
            };
            let answer = match self.ask(peer, request).await {
                Ok(ReplicaResponse::Entries(answer)) => answer,
                Ok(other) => {
                    tracing::warn!(%peer, answer = ?other, "anti-entropy: unexpected answer");
                    return (differing, pushed);
                }
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "anti-entropy: peer unreachable");
                    return (differing, pushed);
                }
            };
            differing += answer.len();
            let keys: BTreeSet<[u8; 32]> = answer
                .iter()
                .filter_map(|(p, theirs)| inventory.get(p).map(|ours| to_push(ours, theirs)))
                .flatten()
                .collect();
            pushed += self.push(peer, kind, keys).await;
            if kind == ItemKind::Ref {
                let keys: Vec<[u8; 32]> = answer
                    .iter()
                    .filter_map(|(p, theirs)| inventory.get(p).map(|ours| to_pull(ours, theirs)))
                    .flatten()
                    .collect();
                self.pull_refs(peer, keys).await;
            }
        }
        (differing, pushed)
    }

    /// Sends `peer` the items of `kind` with these keys from this node's store;
    /// returns how many it stored.
    async fn push(
        self: &Arc<Self>,
        peer: NodeId,
        kind: ItemKind,
        keys: BTreeSet<[u8; 32]>,
    ) -> usize {
        let mut stored = 0;
        let store = self.store.clone();
        match kind {
            ItemKind::Chunk => {
                for key in keys {
                    let id = ChunkId::from_bytes(key);
                    let store = store.clone();
                    match blocking(move || store.read_chunk(&id)).await {
                        Ok(Some(data)) => {
                            let len = data.len() as u64;
                            if self.send(peer, ReplicaRequest::PutChunk { id, data }).await {
                                self.metrics.replication.repair_bytes.inc_by(len);
                                stored += 1;
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(chunk = %id, error = %e, "anti-entropy: local copy unreadable, not pushed");
                        }
                    }
                }
            }
            ItemKind::Manifest => {
                for key in keys {
                    let object = ObjectId::from_bytes(key);
                    let store = store.clone();
                    if let Ok(Some(manifest)) =
                        blocking(move || store.replica_manifest(&object)).await
                    {
                        stored += usize::from(
                            self.send(peer, ReplicaRequest::PutManifest { manifest })
                                .await,
                        );
                    }
                }
            }
            ItemKind::Name => match blocking(move || store.replica_names_by_hash(&keys)).await {
                Ok(names) => {
                    for (bucket, key, register) in names {
                        let request = ReplicaRequest::PutName {
                            bucket: bucket.to_string(),
                            key: key.to_string(),
                            register,
                        };
                        stored += usize::from(self.send(peer, request).await);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "anti-entropy: cannot read names"),
            },
            ItemKind::Ref => match blocking(move || store.refs_on(&keys)).await {
                Ok(refs) => {
                    for batch in refs.chunks(MAX_REFS_PER_REQUEST) {
                        let request = ReplicaRequest::PutRefs {
                            refs: batch.to_vec(),
                            name: None,
                        };
                        if self.send(peer, request).await {
                            stored += batch.len();
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "anti-entropy: cannot read references"),
            },
        }
        stored
    }

    /// Fetches the peer's references on `targets` and merges them into ours.
    async fn pull_refs(&self, peer: NodeId, targets: Vec<[u8; 32]>) {
        for batch in targets.chunks(MAX_REFS_PER_REQUEST) {
            let request = ReplicaRequest::GetRefs {
                targets: batch.to_vec(),
            };
            match self.ask(peer, request).await {
                Ok(ReplicaResponse::Refs(refs)) => {
                    if let Err(e) = self.writer.put_refs(refs, None).await {
                        tracing::warn!(error = %e, "anti-entropy: cannot merge pulled references");
                    }
                }
                other => {
                    tracing::debug!(%peer, answer = ?other.map(|a| format!("{a:?}")), "anti-entropy: references not pulled");
                }
            }
        }
    }

    /// Sends one put; whether the peer stored it.
    async fn send(&self, peer: NodeId, request: ReplicaRequest) -> bool {
        match self.ask(peer, request).await {
            Ok(ReplicaResponse::Stored { .. }) => {
                self.metrics.replication.repairs.inc();
                true
            }
            Ok(other) => {
                tracing::warn!(%peer, answer = ?other, "anti-entropy: push refused");
                false
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "anti-entropy: push failed");
                false
            }
        }
    }
}
