//! The garbage collector: the node side of
//! `stemma_protocol::replication::gc`.
//!
//! Each pass first checks, as an owner of their manifests, the versions whose
//! put wrote references a grace ago or more: a version no name owner holds,
//! or one a newer write beat, is recorded as dead. It then marks dead, on the
//! owners of their targets, the references
//! of the versions this node saw beaten as a name owner (kept in the store
//! until an owner of every target has them, so a crash or an unreachable
//! owner only delays it). It then drops the chunks and manifests the rule
//! lets go — but only after every other owner of the target's partition,
//! all of them reachable, confirmed it holds no live reference either: a
//! reference still on its way to this node must not cost an object its data.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::join_all;
use stemma_protocol::replication::{
    ItemKind, MAX_REFS_PER_REQUEST, NameCheck, RefState, ReplicaRequest, ReplicaResponse,
    VersionId, VersionName, check_name, gc_confirmers, refs_of,
};
use stemma_protocol::{Manifest, ObjectId};

use super::{Replication, ReplicationError, Snapshot, blocking};
use crate::store::GcScan;

/// Unconfirmed versions checked at most per pass (each asks its name's owners).
const VERSIONS_CHECKED_PER_PASS: usize = 256;
/// Versions checked at once.
const CHECKS_AT_ONCE: usize = 16;

/// Runs passes until the task is aborted: every quarter of the grace, between
/// one second and one minute.
pub(crate) async fn run(replication: Arc<Replication>) {
    let pause = (replication.gc_grace / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        tokio::time::sleep(pause).await;
        match replication.snapshot().await {
            Ok(snap) if !snap.alone() => replication.gc_pass(&snap).await,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "garbage collection: no layout"),
        }
    }
}

impl Replication {
    async fn gc_pass(self: &Arc<Self>, snap: &Snapshot) {
        self.check_unconfirmed_versions(snap).await;
        self.mark_dead_versions(snap).await;
        let (store, clock) = (self.store.clone(), self.gc_clock());
        let scan = match blocking(move || store.gc_scan(clock)).await {
            Ok(scan) => scan,
            Err(e) => {
                tracing::warn!(error = %e, "garbage collection: cannot scan the store");
                return;
            }
        };
        if scan == GcScan::default() {
            return;
        }
        let collectable = self.unreferenced_elsewhere(snap, scan.collectable).await;
        let scan = GcScan {
            collectable,
            ..scan
        };
        match self.writer.collect(scan, clock).await {
            Ok(c) => {
                let m = &self.metrics.replication;
                m.gc_chunks.inc_by(c.chunks);
                m.gc_bytes.inc_by(c.bytes);
                m.gc_manifests.inc_by(c.manifests);
                m.gc_tombstones.inc_by(c.tombstones);
                if c.chunks + c.manifests + c.tombstones > 0 {
                    tracing::info!(
                        chunks = c.chunks,
                        bytes = c.bytes,
                        manifests = c.manifests,
                        tombstones = c.tombstones,
                        "garbage collected"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "garbage collection failed"),
        }
    }

    /// Asks the owners of each due unconfirmed version's name whether they
    /// hold it ([`check_name`]); forgets the named ones and records the
    /// orphaned ones as dead.
    async fn check_unconfirmed_versions(self: &Arc<Self>, snap: &Snapshot) {
        let (store, clock) = (self.store.clone(), self.gc_clock());
        let (due, total) = match blocking(move || {
            store.unconfirmed_versions(clock, VERSIONS_CHECKED_PER_PASS)
        })
        .await
        {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "garbage collection: cannot read unconfirmed versions");
                return;
            }
        };
        let checks = futures::stream::iter(due)
            .map(|(version, name)| async move {
                let verdict = self.check_version(snap, &name).await;
                (version, name.object, verdict)
            })
            .buffer_unordered(CHECKS_AT_ONCE)
            .collect::<Vec<_>>()
            .await;
        let (mut named, mut orphaned) = (Vec::new(), Vec::new());
        for (version, object, verdict) in checks {
            match verdict {
                NameCheck::Named => named.push(version),
                NameCheck::Orphaned => orphaned.push((version, object)),
                NameCheck::Ask => {}
            }
        }
        let m = &self.metrics.replication;
        m.gc_unconfirmed_versions.set(total as i64);
        if named.is_empty() && orphaned.is_empty() {
            return;
        }
        let count = orphaned.len() as u64;
        let checked = named.len() + orphaned.len();
        match self.writer.versions_checked(named, orphaned).await {
            Ok(()) => {
                m.gc_orphaned_versions.inc_by(count);
                m.gc_unconfirmed_versions
                    .set(total.saturating_sub(checked) as i64);
                if count > 0 {
                    tracing::info!(
                        versions = count,
                        "garbage collection: versions whose name was never written are dead"
                    );
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "garbage collection: cannot record checked versions")
            }
        }
    }

    /// One unconfirmed version: what its name's owners hold.
    async fn check_version(self: &Arc<Self>, snap: &Snapshot, name: &VersionName) -> NameCheck {
        let Ok((bucket, key)) = name.name() else {
            return NameCheck::Named; // refused on arrival, so never stored: forget it
        };
        let partition = snap.layout.partitions().of_name(&bucket, &key);
        let request = ReplicaRequest::GetName {
            bucket: name.bucket.clone(),
            key: name.key.clone(),
        };
        let owners = snap.layout.replicas(partition).to_vec();
        let answers = join_all(owners.iter().map(|&n| self.ask(n, request.clone()))).await;
        check_name(
            &name.stamp,
            answers.into_iter().map(|answer| match answer {
                Ok(ReplicaResponse::Name(register)) => Some(register.map(|r| r.entry.stamp)),
                _ => None,
            }),
        )
    }

    /// Marks the references of each beaten version dead on the owners of
    /// their targets; forgets the versions done.
    async fn mark_dead_versions(self: &Arc<Self>, snap: &Snapshot) {
        let store = self.store.clone();
        let versions = match blocking(move || store.dead_versions()).await {
            Ok(versions) => versions,
            Err(e) => {
                tracing::warn!(error = %e, "garbage collection: cannot read dead versions");
                return;
            }
        };
        let pending = versions.len();
        let mut done = Vec::new();
        for (version, object, since_millis) in versions {
            if self.mark_dead(snap, version, object, since_millis).await {
                done.push(version);
            }
        }
        let marked = done.len();
        let recorded = done.is_empty() || {
            let result = self.writer.versions_marked(done).await;
            if let Err(e) = &result {
                tracing::warn!(error = %e, "garbage collection: cannot record marks");
            }
            result.is_ok()
        };
        let left = if recorded { pending - marked } else { pending };
        self.metrics
            .replication
            .gc_pending_versions
            .set(left as i64);
    }

    /// One version: reads its manifest and sends the dead references to the
    /// owners of each partition they fall in. Done once at least one owner of
    /// every partition stored them (anti-entropy brings them to the rest), or
    /// once the manifest is gone everywhere two graces after the death: by
    /// then every target it held was collected, or is held alive by another
    /// version.
    async fn mark_dead(
        self: &Arc<Self>,
        snap: &Snapshot,
        version: VersionId,
        object: ObjectId,
        since_millis: u64,
    ) -> bool {
        let manifest: Manifest = match self.manifest(snap, object).await {
            Ok(manifest) => manifest,
            Err(e) => {
                let clock = self.gc_clock();
                let long_gone = matches!(e, ReplicationError::Unavailable { .. })
                    && since_millis.saturating_add(2 * clock.grace_millis) <= clock.now_millis;
                tracing::debug!(%object, error = %e, long_gone, "garbage collection: manifest not found");
                return long_gone;
            }
        };
        let refs = refs_of(&manifest, version, RefState::Dead { since_millis });
        let sends =
            snap.by_partition(refs, |r| r.target)
                .into_iter()
                .map(|(partition, refs)| async move {
                    let owners = snap.layout.replicas(partition).to_vec();
                    let request = ReplicaRequest::PutRefs { refs, name: None };
                    let answers =
                        join_all(owners.iter().map(|&n| self.ask(n, request.clone()))).await;
                    answers
                        .iter()
                        .any(|a| matches!(a, Ok(ReplicaResponse::Stored { .. })))
                });
        join_all(sends).await.into_iter().all(|ok| ok)
    }

    /// The targets no other owner of their partition holds a live reference
    /// to. A partition with an owner down, or one that does not answer, keeps
    /// all its targets this pass.
    async fn unreferenced_elsewhere(
        self: &Arc<Self>,
        snap: &Snapshot,
        collectable: Vec<(ItemKind, [u8; 32])>,
    ) -> Vec<(ItemKind, [u8; 32])> {
        let mut confirmed = Vec::new();
        for (partition, items) in snap.by_partition(collectable, |(_, target)| *target) {
            let Some(others) = gc_confirmers(&snap.layout, partition, &self.me.id, &snap.live)
            else {
                continue;
            };
            for batch in items.chunks(MAX_REFS_PER_REQUEST) {
                let targets: Vec<[u8; 32]> = batch.iter().map(|(_, t)| *t).collect();
                let request = ReplicaRequest::LiveRefs {
                    targets: targets.clone(),
                };
                let answers = join_all(others.iter().map(|&n| self.ask(n, request.clone()))).await;
                let mut live = BTreeSet::new();
                let mut all_answered = true;
                for answer in answers {
                    match answer {
                        Ok(ReplicaResponse::LiveRefs(targets)) => live.extend(targets),
                        other => {
                            tracing::debug!(answer = ?other.map(|a| format!("{a:?}")), "garbage collection: an owner did not confirm");
                            all_answered = false;
                        }
                    }
                }
                if all_answered {
                    confirmed.extend(batch.iter().filter(|(_, t)| !live.contains(t)).copied());
                }
            }
        }
        confirmed
    }
}
