//! The node's lineage graphs: one `LineageDoc` per namespace, kept in
//! `lineage.redb`, answering the requests of clients and HTTP callers, and
//! replicated to every member by Automerge's sync protocol (`sync.rs`).

pub mod ingest;
pub mod provenance;
mod store;
pub mod sync;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use libp2p::PeerId;
use stemma_protocol::lineage::{
    self, ApiError, CutPeer, LineageDoc, LineageRequest, LoadError, Op, PeerSync, Received,
    SyncError, openlineage::StaleRuns,
};
use tokio::sync::Notify;

/// Now, as stamped on edits (milliseconds since the Unix epoch).
pub(crate) fn now_millis() -> i64 {
    crate::clock::unix_millis() as i64
}

use crate::metrics::Metrics;
use store::{Footprint, LineageStore};

/// Why a lineage request failed.
#[derive(Debug, thiserror::Error)]
pub enum LineageError {
    /// The namespace name is not valid.
    #[error(transparent)]
    Namespace(#[from] LoadError),
    /// The operation or query was refused.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A peer's sync message was refused.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The change could not be stored (nothing was acknowledged).
    #[error("cannot store the lineage change: {0}")]
    Storage(String),
}

/// How a failure should be reported to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineageErrorKind {
    /// A named entity does not exist.
    NotFound,
    /// The request is wrong: fix it and retry.
    Invalid,
    /// The node failed.
    Internal,
}

impl LineageError {
    /// How to report it.
    pub fn kind(&self) -> LineageErrorKind {
        match self {
            LineageError::Api(e) if e.is_not_found() => LineageErrorKind::NotFound,
            LineageError::Namespace(_) | LineageError::Api(_) => LineageErrorKind::Invalid,
            LineageError::Sync(_) | LineageError::Storage(_) => LineageErrorKind::Internal,
        }
    }
}

/// The lineage graphs of this node. Cheap to clone.
#[derive(Clone)]
pub struct Lineage {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Lineage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lineage")
            .field("namespaces", &self.namespaces())
            .finish_non_exhaustive()
    }
}

struct Inner {
    docs: Mutex<Docs>,
    store: LineageStore,
    /// Actor id prefix: the node id and this run's generation, so that every
    /// run of every node writes as its own Automerge actor.
    actor: Vec<u8>,
    /// Signalled whenever a document gained changes (local or from a peer).
    changed: Notify,
    metrics: Arc<Metrics>,
}

#[derive(Default)]
struct Docs {
    by_namespace: BTreeMap<String, Entry>,
    /// Sync state per peer and namespace.
    peers: HashMap<(PeerId, String), PeerSync>,
    /// Sync state of the previous epoch with peers still on it.
    behind: HashMap<(PeerId, String), PeerSync>,
    /// (namespace, epoch) on which a peer's later epoch could not be adopted
    /// (warned once).
    stuck: HashSet<(String, u64)>,
}

/// Each group without the run states older than those recorded or kept
/// before it in the same batch.
fn without_stale_runs(docs: &Docs, groups: Vec<(String, Vec<Op>)>) -> Vec<(String, Vec<Op>)> {
    let mut filters: HashMap<String, StaleRuns<'_>> = HashMap::new();
    groups
        .into_iter()
        .map(|(namespace, ops)| {
            let filter = filters.entry(namespace.clone()).or_insert_with(|| {
                StaleRuns::new(docs.by_namespace.get(&namespace).map(|e| e.doc.index()))
            });
            let ops = filter.filter(ops);
            (namespace, ops)
        })
        .collect()
}

/// Changes [`Lineage::apply_groups`] applied but did not log yet.
#[derive(Debug, Default)]
pub struct Unlogged {
    /// (namespace, changes) to append to the log, in order.
    entries: Vec<(String, Vec<u8>)>,
    /// A namespace was compacted instead (already durable).
    compacted: bool,
}

impl Unlogged {
    /// Adds `other`'s changes after these.
    pub fn extend(&mut self, other: Unlogged) {
        self.entries.extend(other.entries);
        self.compacted |= other.compacted;
    }
}

struct Entry {
    doc: LineageDoc,
    footprint: Footprint,
    /// The document of the epoch before, kept in memory after a move until
    /// every member is on the new one: a member that lacks the new epoch's
    /// base syncs the old epoch from it first, then moves.
    previous: Option<LineageDoc>,
}

impl Lineage {
    /// Opens the graphs stored in `dir`; `actor` identifies this node and run.
    pub fn open(dir: &Path, actor: Vec<u8>, metrics: Arc<Metrics>) -> anyhow::Result<Lineage> {
        let store = LineageStore::open(dir)?;
        let mut docs = Docs::default();
        for stored in store.load_all()? {
            let doc = LineageDoc::load(&stored.namespace, &actor, &stored.bytes).map_err(|e| {
                anyhow::anyhow!(
                    "lineage namespace {:?} cannot be loaded: {e}",
                    stored.namespace
                )
            })?;
            let footprint = Footprint {
                snapshot_bytes: (stored.bytes.len() as u64).saturating_sub(stored.log_bytes),
                log_entries: stored.log_entries,
                log_bytes: stored.log_bytes,
            };
            tracing::info!(
                namespace = stored.namespace,
                entities = doc.index().entity_count(),
                "lineage graph loaded"
            );
            docs.by_namespace.insert(
                stored.namespace,
                Entry {
                    doc,
                    footprint,
                    previous: None,
                },
            );
        }
        let lineage = Lineage {
            inner: Arc::new(Inner {
                docs: Mutex::new(docs),
                store,
                actor,
                changed: Notify::new(),
                metrics,
            }),
        };
        lineage.update_gauges(&lineage.lock());
        Ok(lineage)
    }

    /// Answers one request on `namespace` (created by its first write).
    pub async fn request(
        &self,
        namespace: String,
        request: LineageRequest,
    ) -> Result<serde_json::Value, LineageError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.request_blocking(&namespace, &request))
            .await
            .map_err(|e| LineageError::Storage(format!("lineage task failed: {e}")))?
    }

    fn request_blocking(
        &self,
        namespace: &str,
        request: &LineageRequest,
    ) -> Result<serde_json::Value, LineageError> {
        let mut docs = self.lock();
        if !request.is_write() && !docs.by_namespace.contains_key(namespace) {
            // Nothing written here yet: answer from an empty graph.
            let mut empty = LineageDoc::new(namespace, &self.inner.actor)?;
            return Ok(lineage::answer(&mut empty, request, now_millis())?);
        }
        let entry = self.entry(&mut docs, namespace)?;
        let answer = lineage::answer(&mut entry.doc, request, now_millis())?;
        if request.is_write() {
            self.persist(entry)?;
            let ops = answer["ops"].as_u64().unwrap_or(0);
            self.inner.metrics.lineage.edits.inc_by(ops);
            self.after_change(&docs);
        }
        Ok(answer)
    }

    /// Applies operations as one change, skipping those that fail (a retire of
    /// an object recorded before provenance existed, say); stored before this
    /// returns.
    pub async fn apply_each(&self, namespace: &str, ops: Vec<Op>) -> Result<(), LineageError> {
        let (this, namespace) = (self.clone(), namespace.to_string());
        tokio::task::spawn_blocking(move || {
            let mut docs = this.lock();
            let entry = this.entry(&mut docs, &namespace)?;
            let (committed, results) = entry.doc.apply_each(now_millis(), &ops);
            for error in results.iter().filter_map(|r| r.as_ref().err()) {
                tracing::debug!(%error, "lineage operation skipped");
            }
            if committed.head.is_some() {
                this.persist(entry)?;
                this.inner
                    .metrics
                    .lineage
                    .edits
                    .inc_by(committed.ops as u64);
                this.after_change(&docs);
            }
            Ok(())
        })
        .await
        .map_err(|e| LineageError::Storage(format!("lineage task failed: {e}")))?
    }

    /// Applies groups of operations, each atomically (a group that fails
    /// changes nothing) — all in one change when they all succeed — without
    /// the run states older than those recorded (see
    /// `openlineage::StaleRuns`); returns each group's outcome (operations
    /// applied), in order, and the changes still to be logged
    /// with [`log`](Self::log). Until they are, nothing may be acknowledged:
    /// splitting the two lets a caller apply the next groups while the disk
    /// syncs these (the ingest pipeline).
    pub async fn apply_groups(
        &self,
        groups: Vec<(String, Vec<Op>)>,
    ) -> (Vec<Result<usize, LineageError>>, Unlogged) {
        let n = groups.len();
        let this = self.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut docs = this.lock();
            let groups = without_stale_runs(&docs, groups);
            let mut results = Vec::with_capacity(groups.len());
            let mut touched: Vec<String> = Vec::new();
            let now = now_millis();
            // Fast path: one namespace and every group valid → one change for
            // all of them (an Automerge change has a fixed cost). If any group
            // fails, nothing was applied and each group is applied alone.
            let one_namespace = groups.windows(2).all(|w| w[0].0 == w[1].0);
            if one_namespace && groups.len() > 1 {
                let namespace = &groups[0].0;
                let mut all = groups.iter().flat_map(|(_, ops)| ops);
                if let Ok(entry) = this.entry(&mut docs, namespace)
                    && let Ok(committed) = entry
                        .doc
                        .edit(now, |tx| all.try_for_each(|op| tx.apply(op)))
                {
                    this.inner
                        .metrics
                        .lineage
                        .edits
                        .inc_by(committed.ops as u64);
                    if committed.head.is_some() {
                        touched.push(namespace.clone());
                    }
                    results.extend(groups.iter().map(|(_, ops)| Ok(ops.len())));
                }
            }
            if results.is_empty() {
                for (namespace, ops) in &groups {
                    let result = this
                        .entry(&mut docs, namespace)
                        .map_err(LineageError::from)
                        .and_then(|entry| {
                            entry
                                .doc
                                .apply(now, ops)
                                .map_err(|e| LineageError::Api(e.into()))
                        });
                    if let Ok(committed) = &result {
                        this.inner
                            .metrics
                            .lineage
                            .edits
                            .inc_by(committed.ops as u64);
                        if committed.head.is_some() && !touched.contains(namespace) {
                            touched.push(namespace.clone());
                        }
                    }
                    results.push(result.map(|_| ops.len()));
                }
            }
            let mut unlogged = Unlogged::default();
            for namespace in &touched {
                let Some(entry) = docs.by_namespace.get_mut(namespace) else {
                    continue;
                };
                match this
                    .inner
                    .store
                    .take_changes(&mut entry.doc, &mut entry.footprint)
                {
                    Ok(Some(changes)) => unlogged.entries.push((namespace.clone(), changes)),
                    Ok(None) => unlogged.compacted = true,
                    Err(e) => {
                        // Nothing acknowledged: every group of that namespace fails.
                        for (result, (ns, _)) in results.iter_mut().zip(&groups) {
                            if ns == namespace && result.is_ok() {
                                *result = Err(LineageError::Storage(e.to_string()));
                            }
                        }
                    }
                }
            }
            if !touched.is_empty() {
                this.update_gauges(&docs);
            }
            (results, unlogged)
        })
        .await;
        outcome.unwrap_or_else(|e| {
            let failed = (0..n)
                .map(|_| Err(LineageError::Storage(format!("lineage task failed: {e}"))))
                .collect();
            (failed, Unlogged::default())
        })
    }

    /// Logs what [`apply_groups`](Self::apply_groups) left unlogged (several
    /// calls' worth at once), durably, then passes the changes on to peers.
    pub async fn log(&self, unlogged: Unlogged) -> Result<(), LineageError> {
        if unlogged.entries.is_empty() && !unlogged.compacted {
            return Ok(());
        }
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            if !unlogged.entries.is_empty() {
                this.inner
                    .store
                    .append(&unlogged.entries)
                    .map_err(|e| LineageError::Storage(e.to_string()))?;
            }
            // The gauges were updated when the changes were applied; the
            // graph's lock is not taken again here.
            this.inner.changed.notify_one();
            Ok(())
        })
        .await
        .map_err(|e| LineageError::Storage(format!("lineage task failed: {e}")))?
    }

    /// The namespaces this node holds.
    pub fn namespaces(&self) -> Vec<String> {
        self.lock().by_namespace.keys().cloned().collect()
    }

    /// The next sync message for `peer` on `namespace`, if there is anything to
    /// say (off the async threads: a first sync may carry a whole graph).
    pub async fn generate_sync(&self, peer: PeerId, namespace: &str) -> Option<Vec<u8>> {
        let (this, namespace) = (self.clone(), namespace.to_string());
        tokio::task::spawn_blocking(move || this.generate_sync_blocking(peer, &namespace))
            .await
            .ok()
            .flatten()
    }

    fn generate_sync_blocking(&self, peer: PeerId, namespace: &str) -> Option<Vec<u8>> {
        let mut docs = self.lock();
        let docs = &mut *docs;
        let entry = docs.by_namespace.get(namespace)?;
        let key = (peer, namespace.to_string());
        let old = match (docs.behind.get_mut(&key), &entry.previous) {
            (Some(state), Some(previous)) => previous.generate_sync_message(state),
            _ => None,
        };
        let message = match old {
            Some(message) => message,
            None => {
                // Nothing (more) to say on the previous epoch: a fresh start
                // on the current one, whose first message moves the peer.
                if docs.behind.remove(&key).is_some() {
                    docs.peers.remove(&key);
                }
                let state = docs.peers.entry(key).or_default();
                entry.doc.generate_sync_message(state)?
            }
        };
        let m = &self.inner.metrics.lineage;
        m.sync_messages_sent.inc();
        m.sync_sent_bytes.inc_by(message.len() as u64);
        Some(message)
    }

    /// Applies a sync message from `peer` on `namespace` (created if new here);
    /// new changes are stored before this returns.
    pub async fn receive_sync(
        &self,
        peer: PeerId,
        namespace: &str,
        message: Vec<u8>,
    ) -> Result<(), LineageError> {
        let (this, namespace) = (self.clone(), namespace.to_string());
        tokio::task::spawn_blocking(move || this.receive_sync_blocking(peer, &namespace, &message))
            .await
            .map_err(|e| LineageError::Storage(format!("lineage task failed: {e}")))?
    }

    fn receive_sync_blocking(
        &self,
        peer: PeerId,
        namespace: &str,
        message: &[u8],
    ) -> Result<(), LineageError> {
        let m = &self.inner.metrics.lineage;
        m.sync_messages_received.inc();
        m.sync_received_bytes.inc_by(message.len() as u64);
        let mut docs = self.lock();
        let docs = &mut *docs;
        let key = (peer, namespace.to_string());
        let entry = self.entry_in(&mut docs.by_namespace, namespace)?;
        let state = docs.peers.entry(key).or_default();
        let now = now_millis();
        match entry.doc.receive_sync(state, message, now)? {
            Received::Applied { changed: false, .. } => {}
            Received::Applied { made_at, .. } => {
                for at in made_at {
                    m.sync_delay.observe((now - at).max(0) as f64 / 1000.0);
                }
                self.persist(entry)?;
                self.after_change(docs);
            }
            Received::Moved { previous } => {
                self.moved(entry, *previous, "adopted from a peer")?;
                self.after_change(docs);
            }
            Received::PeerBehind => {
                // Let it finish the previous epoch from ours, if we hold it.
                if let Some(previous) = &mut entry.previous {
                    let state = docs
                        .behind
                        .entry((peer, namespace.to_string()))
                        .or_default();
                    let received = previous.receive_sync(state, message, now_millis())?;
                    tracing::debug!(%peer, namespace, ?received, "lineage peer on an earlier epoch");
                }
            }
            Received::CannotMove(e) => {
                let epoch = entry.doc.epoch().number;
                if docs.stuck.insert((namespace.to_string(), epoch)) {
                    tracing::warn!(
                        %peer, namespace, error = %e,
                        "a lineage peer is on a later epoch this node cannot move to yet; \
                         it keeps its graph and moves once a peer that still holds the \
                         previous epoch has synced it"
                    );
                }
            }
        }
        Ok(())
    }

    /// Cuts the next epoch of every namespace where this node should (the
    /// rule: `LineageDoc::epoch_to_cut`), and lets go of previous
    /// epochs every member has left behind: `me` is this node,
    /// `members` every other member that has not left and whether it is
    /// alive, `after_ops` the history that warrants a cut (0: never).
    pub async fn cut_epochs(&self, me: PeerId, members: Vec<(PeerId, bool)>, after_ops: u64) {
        let this = self.clone();
        let cut = tokio::task::spawn_blocking(move || {
            let mut docs = this.lock();
            let docs = &mut *docs;
            let me = me.to_bytes();
            let ids: Vec<(PeerId, Vec<u8>, bool)> = members
                .into_iter()
                .map(|(peer, alive)| (peer, peer.to_bytes(), alive))
                .collect();
            let mut cut = false;
            for (namespace, entry) in docs.by_namespace.iter_mut() {
                // The previous epoch goes once every member spoke on this one
                // (and none is still syncing the previous one).
                let current = ids.iter().map(|(peer, _, _)| {
                    let key = (*peer, namespace.clone());
                    docs.peers
                        .get(&key)
                        .filter(|_| !docs.behind.contains_key(&key))
                });
                if entry.doc.all_moved(current) {
                    entry.previous = None;
                }
                let peers: Vec<CutPeer<'_>> = ids
                    .iter()
                    .map(|(peer, id, alive)| CutPeer {
                        id,
                        alive: *alive,
                        sync: docs.peers.get(&(*peer, namespace.clone())),
                    })
                    .collect();
                let Some(proposal) = entry.doc.epoch_to_cut(&me, &peers, after_ops) else {
                    continue;
                };
                let result = entry
                    .doc
                    .adopt_epoch(&proposal, now_millis())
                    .map_err(|e| LineageError::Storage(e.to_string()))
                    .and_then(|next| {
                        let previous = std::mem::replace(&mut entry.doc, next);
                        this.moved(entry, previous, "cut here")
                    });
                match result {
                    Ok(()) => cut = true,
                    Err(e) => tracing::error!(namespace, error = %e, "cannot cut a lineage epoch"),
                }
            }
            if cut {
                this.after_change(docs);
            }
        });
        let _ = cut.await;
    }

    /// Forgets the sync state with `peer` (after a failed session, or when it
    /// restarted), so the next session starts from scratch.
    pub fn reset_peer(&self, peer: PeerId) {
        let mut docs = self.lock();
        docs.peers.retain(|(p, _), _| *p != peer);
        docs.behind.retain(|(p, _), _| *p != peer);
    }

    /// Waits until some document gained changes.
    pub async fn changed(&self) {
        self.inner.changed.notified().await;
    }

    /// The current heads of a namespace, as hex (empty if absent).
    pub fn heads(&self, namespace: &str) -> Vec<String> {
        self.lock()
            .by_namespace
            .get(namespace)
            .map(|e| e.doc.heads().iter().map(|h| h.to_string()).collect())
            .unwrap_or_default()
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    fn lock(&self) -> MutexGuard<'_, Docs> {
        // A panic while holding the lock leaves the documents as they were
        // after the last complete Automerge operation; keep serving them.
        self.inner.docs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn entry<'a>(&self, docs: &'a mut Docs, namespace: &str) -> Result<&'a mut Entry, LoadError> {
        self.entry_in(&mut docs.by_namespace, namespace)
    }

    fn entry_in<'a>(
        &self,
        by_namespace: &'a mut BTreeMap<String, Entry>,
        namespace: &str,
    ) -> Result<&'a mut Entry, LoadError> {
        if !by_namespace.contains_key(namespace) {
            let doc = LineageDoc::new(namespace, &self.inner.actor)?;
            by_namespace.insert(
                namespace.to_string(),
                Entry {
                    doc,
                    footprint: Footprint::default(),
                    previous: None,
                },
            );
        }
        Ok(by_namespace
            .get_mut(namespace)
            .expect("inserted just above"))
    }

    /// After `entry` moved to a new epoch from `previous`: stores the new
    /// document whole (its history replaces the old one) and keeps the old
    /// one in memory for members still on it.
    fn moved(
        &self,
        entry: &mut Entry,
        previous: LineageDoc,
        how: &str,
    ) -> Result<(), LineageError> {
        entry.footprint = self
            .inner
            .store
            .snapshot(&mut entry.doc)
            .map_err(|e| LineageError::Storage(e.to_string()))?;
        self.inner.metrics.lineage.epochs.inc();
        let from = previous.epoch().clone();
        entry.previous = Some(previous);
        tracing::info!(
            namespace = entry.doc.namespace(),
            from = %from,
            to = %entry.doc.epoch(),
            bytes = entry.footprint.bytes(),
            "lineage graph moved to a new epoch ({how})"
        );
        Ok(())
    }

    fn persist(&self, entry: &mut Entry) -> Result<(), LineageError> {
        entry.footprint = self
            .inner
            .store
            .persist(&mut entry.doc, entry.footprint)
            .map_err(|e| LineageError::Storage(e.to_string()))?;
        Ok(())
    }

    /// After a document gained changes: gauges, and a nudge to replication.
    fn after_change(&self, docs: &Docs) {
        self.update_gauges(docs);
        self.inner.changed.notify_one();
    }

    fn update_gauges(&self, docs: &Docs) {
        let m = &self.inner.metrics.lineage;
        let (mut bytes, mut changes, mut entities, mut edges, mut epoch) = (0, 0, 0, 0, 0);
        for entry in docs.by_namespace.values() {
            epoch = epoch.max(entry.doc.epoch().number);
            bytes += entry.footprint.bytes();
            changes += entry.doc.stats().changes;
            entities += entry.doc.index().entity_count() as u64;
            edges += entry.doc.index().linked_edge_count() as u64;
        }
        m.document_bytes.set(bytes as i64);
        m.changes.set(changes as i64);
        m.entities.set(entities as i64);
        m.edges.set(edges as i64);
        m.epoch.set(epoch as i64);
    }
}
