//! The cluster status `stemma status` shows: this node's layout and repair
//! figures, and what every node of the layout stores (asked over the replica
//! protocol; a node that does not answer within two seconds shows nothing).

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use stemma_protocol::replication::{ReplicaRequest, ReplicaResponse, effective_quorum};
use stemma_protocol::wire::{NodeStatus, StatusReport};

use super::{Replication, ReplicationError, blocking};

/// How long a node may take to report its store.
const STATS_TIMEOUT: Duration = Duration::from_secs(2);

impl Replication {
    /// The status as this node sees it.
    pub(crate) async fn status_report(
        self: &Arc<Self>,
        node_id: String,
    ) -> Result<StatusReport, ReplicationError> {
        let snap = self.snapshot().await?;
        let layout = &snap.layout;
        let per_node = layout.replicas_per_node();
        let mut nodes: Vec<_> = layout.view().nodes().to_vec();
        // This node first, then by id.
        nodes.sort_by_key(|n| (n.id != self.me.id, n.id));
        let stored = join_all(nodes.iter().map(|n| async move {
            let ask = self.ask(n.id, ReplicaRequest::Stats);
            match tokio::time::timeout(STATS_TIMEOUT, ask).await {
                Ok(Ok(ReplicaResponse::Stats {
                    objects,
                    chunks,
                    chunk_bytes,
                })) => Some((objects, chunks, chunk_bytes)),
                _ => None,
            }
        }))
        .await;
        let r = &self.metrics.replication;
        Ok(StatusReport {
            node_id,
            nodes: layout.view().len() as u32,
            partitions: layout.partitions().get(),
            replication: layout.replication() as u32,
            write_quorum: effective_quorum(self.write_quorum, layout.replication()) as u32,
            layout_changes: snap.changes,
            partitions_out_of_sync: r.partitions_out_of_sync.get().max(0) as u64,
            repairs: r.repairs.get(),
            per_node: nodes
                .iter()
                .zip(stored)
                .map(|(n, stored)| NodeStatus {
                    node_id: n.id.to_string(),
                    zone: n.zone.clone(),
                    replicas: per_node.get(&n.id).copied().unwrap_or(0) as u32,
                    stored,
                })
                .collect(),
        })
    }

    /// What this node's store holds, for a peer's status.
    pub(super) async fn stats_response(&self) -> ReplicaResponse {
        let store = self.store.clone();
        match blocking(move || store.stats()).await {
            Ok(stats) => ReplicaResponse::Stats {
                objects: stats.objects,
                chunks: stats.chunks,
                chunk_bytes: stats.chunk_bytes,
            },
            Err(e) => ReplicaResponse::Refused(e.to_string()),
        }
    }
}
