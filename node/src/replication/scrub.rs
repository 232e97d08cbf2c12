//! The scrubber: re-hashes every chunk this node holds as a replica, at a
//! bounded rate, and replaces a copy that no longer matches its id with a good
//! one read from another replica. Reads find corruption too, but only in what
//! is read; the scrubber finds it in what nobody reads, before the other
//! copies are lost as well.

use std::sync::Arc;
use std::time::Duration;

use stemma_protocol::ChunkId;
use stemma_protocol::replication::ItemKind;
use tokio::time::Instant;

use super::{Replication, ReplicationError, blocking};
use crate::store::StoreError;

/// Pause between two passes over the store (and before the first).
const PASS_PAUSE: Duration = Duration::from_secs(10);

/// Runs passes until the task is aborted; `bytes_per_second` bounds the
/// reading rate (0 turns the scrubber off).
pub(crate) async fn run(replication: Arc<Replication>, bytes_per_second: u64) {
    if bytes_per_second == 0 {
        return;
    }
    loop {
        tokio::time::sleep(PASS_PAUSE).await;
        replication.scrub_pass(bytes_per_second).await;
    }
}

impl Replication {
    /// One pass over the held chunks, in id order.
    async fn scrub_pass(self: &Arc<Self>, bytes_per_second: u64) {
        let store = self.store.clone();
        let (partitions, clock) = (self.config.partitions, self.gc_clock());
        let ids: Vec<ChunkId> =
            match blocking(move || store.replica_inventory(ItemKind::Chunk, partitions, clock))
                .await
            {
                Ok(inventory) => inventory
                    .into_values()
                    .flatten()
                    .map(|(key, _)| ChunkId::from_bytes(key))
                    .collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "scrubber: cannot list the held chunks");
                    return;
                }
            };
        let m = &self.metrics.replication;
        for id in ids {
            let started = Instant::now();
            let store = self.store.clone();
            let bytes = match blocking(move || store.read_chunk(&id)).await {
                Ok(Some(data)) => data.len(),
                Ok(None) => continue,
                Err(StoreError::Corrupt(_)) => {
                    m.scrub_corrupt.inc();
                    tracing::error!(chunk = %id, "scrubber: stored chunk does not match its id");
                    match self.replace_chunk(id).await {
                        Ok(()) => {
                            m.scrub_repaired.inc();
                            tracing::info!(chunk = %id, "scrubber: corrupt chunk replaced from a replica");
                        }
                        Err(e) => {
                            tracing::error!(chunk = %id, error = %e, "scrubber: no good copy found; will retry next pass");
                        }
                    }
                    stemma_protocol::ChunkSize::DEFAULT.bytes()
                }
                Err(e) => {
                    tracing::warn!(chunk = %id, error = %e, "scrubber: read failed");
                    continue;
                }
            };
            m.scrubbed_chunks.inc();
            m.scrubbed_bytes.inc_by(bytes as u64);
            let budget = Duration::from_secs_f64(bytes as f64 / bytes_per_second as f64);
            if let Some(rest) = budget.checked_sub(started.elapsed()) {
                tokio::time::sleep(rest).await;
            }
        }
    }

    /// Reads `id` from the replicas (this node's corrupt copy is skipped as
    /// corrupt) and stores the good copy here, replacing the bad one.
    async fn replace_chunk(self: &Arc<Self>, id: ChunkId) -> Result<(), ReplicationError> {
        let snap = self.snapshot().await?;
        let data = self.chunk(&snap, id).await?;
        self.writer.replica_chunk(id, data).await?;
        Ok(())
    }
}
