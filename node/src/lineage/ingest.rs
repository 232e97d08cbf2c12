//! Ingesting OpenLineage events: each event is mapped to operations
//! (`stemma_protocol::lineage::openlineage`), deduplicated on
//! `(runId, eventType, eventTime)` and the event's bytes — clients retry with
//! the same bytes, while real producers reuse runIds for different events
//! (the corpus has such), which must not be dropped — and applied with
//! **group commit**: whatever events are waiting are applied together, each
//! as its own atomic change, and stored with one durable write. An idle node
//! answers after one commit; a busy one folds hundreds of events into it.
//! Applying and logging are two stages: while the disk syncs one group's
//! changes, the next group is applied, and the logging stage then writes
//! every group that waited with one sync. An event is answered only once its
//! changes are logged.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use stemma_protocol::lineage::Op;
use stemma_protocol::lineage::openlineage::{EventError, ops_for_event};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Lineage, LineageError, Unlogged};

/// Events applied in one group at most.
const MAX_GROUP: usize = 1024;
/// Applied groups that may wait for the disk at once.
const LOG_QUEUE: usize = 4;
/// Dedup keys remembered (the most recent ones).
const DEDUP_KEYS: usize = 100_000;

/// What happened to an event.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Operations applied (0 for a duplicate).
    pub ops: usize,
    /// The event was seen before and ignored.
    pub duplicate: bool,
    /// What was skipped or read leniently, each naming the field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Why an event was refused; nothing of it was recorded.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Not a valid OpenLineage event.
    #[error(transparent)]
    Event(#[from] EventError),
    /// The graph refused it or could not store it.
    #[error(transparent)]
    Lineage(#[from] LineageError),
}

/// The ingestion queue. Cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    lineage: Lineage,
    queue: mpsc::Sender<Job>,
    seen: Arc<Mutex<Dedup>>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest").finish_non_exhaustive()
    }
}

struct Job {
    namespace: String,
    ops: Vec<Op>,
    done: oneshot::Sender<Result<usize, LineageError>>,
}

#[derive(Default)]
struct Dedup {
    keys: HashSet<String>,
    order: VecDeque<String>,
}

impl Dedup {
    fn insert(&mut self, key: String) {
        if self.keys.insert(key.clone()) {
            self.order.push_back(key);
            if self.order.len() > DEDUP_KEYS
                && let Some(old) = self.order.pop_front()
            {
                self.keys.remove(&old);
            }
        }
    }
}

impl Ingest {
    /// Starts the group-commit task.
    pub fn start(lineage: Lineage) -> (Ingest, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4 * MAX_GROUP);
        let task = tokio::spawn(commit_groups(lineage.clone(), rx));
        let ingest = Ingest {
            lineage,
            queue: tx,
            seen: Arc::default(),
        };
        (ingest, task)
    }

    /// Maps, deduplicates and records one event (JSON); returns once it is
    /// stored.
    pub async fn event(&self, namespace: &str, json: &[u8]) -> Result<Outcome, IngestError> {
        let ingested = ops_for_event(json)?;
        let key = ingested.dedup_key.map(|k| {
            let digest = blake3::hash(json);
            format!("{namespace}\u{1f}{k}\u{1f}{}", &digest.to_hex()[..32])
        });
        if let Some(key) = &key
            && self.lock().keys.contains(key)
        {
            return Ok(Outcome {
                ops: 0,
                duplicate: true,
                warnings: ingested.warnings,
            });
        }
        let (done, result) = oneshot::channel();
        let job = Job {
            namespace: namespace.to_string(),
            ops: ingested.ops,
            done,
        };
        let closed = || LineageError::Storage("the node is stopping".into());
        self.queue.send(job).await.map_err(|_| closed())?;
        let count = result.await.map_err(|_| closed())??;
        if let Some(key) = key {
            self.lock().insert(key);
        }
        if let Some(at) = ingested.event_time {
            let delay = (super::now_millis() - at).max(0) as f64 / 1000.0;
            self.lineage.metrics().lineage.event_delay.observe(delay);
        }
        Ok(Outcome {
            ops: count,
            duplicate: false,
            warnings: ingested.warnings,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Dedup> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The first stage: applies whatever events are waiting, as one group, and
/// hands the changes to the logging stage, then goes on with the next group
/// while the disk syncs.
async fn commit_groups(lineage: Lineage, mut rx: mpsc::Receiver<Job>) {
    let (to_log, applied) = mpsc::channel(LOG_QUEUE);
    let logger = tokio::spawn(log_groups(lineage.clone(), applied));
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        lineage
            .metrics()
            .lineage
            .ingest_group_events
            .observe(jobs.len() as f64);
        let groups: Vec<(String, Vec<Op>)> = jobs
            .iter_mut()
            .map(|j| (std::mem::take(&mut j.namespace), std::mem::take(&mut j.ops)))
            .collect();
        let (results, unlogged) = lineage.apply_groups(groups).await;
        let batch = Applied {
            done: jobs.into_iter().map(|j| j.done).collect(),
            results,
            unlogged,
        };
        if to_log.send(batch).await.is_err() {
            break;
        }
    }
    drop(to_log);
    let _ = logger.await;
}

/// Groups applied and waiting for their changes to be logged.
struct Applied {
    done: Vec<oneshot::Sender<Result<usize, LineageError>>>,
    results: Vec<Result<usize, LineageError>>,
    unlogged: Unlogged,
}

/// The second stage: logs every applied batch waiting with one durable
/// write, then answers their events.
async fn log_groups(lineage: Lineage, mut rx: mpsc::Receiver<Applied>) {
    while let Some(first) = rx.recv().await {
        let mut batches = vec![first];
        while let Ok(batch) = rx.try_recv() {
            batches.push(batch);
        }
        let mut unlogged = Unlogged::default();
        for batch in &mut batches {
            unlogged.extend(std::mem::take(&mut batch.unlogged));
        }
        let logged = lineage.log(unlogged).await;
        for batch in batches {
            for (done, result) in batch.done.into_iter().zip(batch.results) {
                let result = match (&logged, result) {
                    (Err(e), Ok(_)) => Err(LineageError::Storage(e.to_string())),
                    (_, result) => result,
                };
                let _ = done.send(result);
            }
        }
    }
}
