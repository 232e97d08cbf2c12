//! Recording stored objects in the lineage graph (see
//! `stemma_protocol::lineage::provenance`). A put that names its sources or
//! job is recorded before it is acknowledged, so `stemma lineage up` sees it
//! at once; every other put and delete is recorded in the background, many
//! per change, so that storing small objects does not pay for a lineage commit
//! each.

use std::time::Duration;

use stemma_protocol::lineage::provenance::{job_entity, ops_for_delete, ops_for_put};
use stemma_protocol::lineage::{DEFAULT_NAMESPACE, EntityId, Op};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::Lineage;

/// How long background records wait to be folded together.
const BATCH_WINDOW: Duration = Duration::from_millis(200);
/// The most operations in one background change.
const MAX_BATCH: usize = 10_000;

/// Where a put says its object came from.
#[derive(Debug, Default)]
pub struct Provenance {
    derived_from: Vec<(String, String)>,
    job: Option<EntityId>,
}

impl Provenance {
    /// Checks what the client sent: `bucket/key` paths and a job name.
    pub fn parse(derived_from: &[String], job: Option<&str>) -> Result<Self, String> {
        let mut sources = Vec::new();
        for path in derived_from {
            let path = stemma_protocol::ObjectPath::parse(path)
                .map_err(|e| format!("derived_from {path:?}: {e}"))?;
            sources.push((path.bucket.to_string(), path.key.to_string()));
        }
        let job = job
            .map(|j| job_entity(j).map_err(|e| format!("job {j:?}: {e}")))
            .transpose()?;
        Ok(Self {
            derived_from: sources,
            job,
        })
    }

    fn is_empty(&self) -> bool {
        self.derived_from.is_empty() && self.job.is_none()
    }
}

/// Records puts and deletes in the default namespace. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Recorder {
    lineage: Lineage,
    background: mpsc::UnboundedSender<Record>,
}

/// What the background recorder is asked to do.
#[derive(Debug)]
enum Record {
    Ops(Vec<Op>),
    /// Record everything queued so far, then answer.
    Flush(oneshot::Sender<()>),
}

impl Recorder {
    /// Starts the background recorder.
    pub fn start(lineage: Lineage) -> (Recorder, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(record_batches(lineage.clone(), rx));
        (
            Recorder {
                lineage,
                background: tx,
            },
            task,
        )
    }

    /// A put committed `bucket/key` as object `version`.
    pub async fn stored(
        &self,
        bucket: &str,
        key: &str,
        version: &str,
        size: u64,
        provenance: Provenance,
    ) {
        let ops = match ops_for_put(
            bucket,
            key,
            version,
            size,
            &provenance.derived_from,
            provenance.job.as_ref(),
        ) {
            Ok(ops) => ops,
            Err(e) => {
                tracing::debug!(bucket, key, error = %e, "object not recorded in the lineage graph");
                return;
            }
        };
        if provenance.is_empty() {
            let _ = self.background.send(Record::Ops(ops));
        } else if let Err(e) = self.lineage.apply_each(DEFAULT_NAMESPACE, ops).await {
            tracing::warn!(bucket, key, error = %e, "cannot record the object's provenance");
        }
    }

    /// `bucket/key` was deleted.
    pub fn deleted(&self, bucket: &str, key: &str) {
        if let Ok(ops) = ops_for_delete(bucket, key) {
            let _ = self.background.send(Record::Ops(ops));
        }
    }

    /// Waits until everything queued so far is recorded (at shutdown).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.background.send(Record::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

async fn record_batches(lineage: Lineage, mut rx: mpsc::UnboundedReceiver<Record>) {
    let mut flushes = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut batch = Vec::new();
        let mut next = Some(first);
        let deadline = tokio::time::Instant::now() + BATCH_WINDOW;
        while let Some(record) = next.take() {
            match record {
                Record::Ops(ops) => batch.extend(ops),
                Record::Flush(done) => {
                    flushes.push(done);
                    break;
                }
            }
            if batch.len() >= MAX_BATCH {
                break;
            }
            next = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .ok()
                .flatten();
        }
        if !batch.is_empty()
            && let Err(e) = lineage.apply_each(DEFAULT_NAMESPACE, batch).await
        {
            tracing::warn!(error = %e, "cannot record stored objects in the lineage graph");
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}
