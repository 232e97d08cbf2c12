//! The replica side: answers other nodes' replica requests (and this node's
//! own, when it is an owner — the coordinator calls [`Replication::answer`]
//! directly). Input from peers is checked before anything is stored: names
//! are parsed, chunks re-hashed, stamps too far in the future refused.

use std::sync::Arc;

use futures::{AsyncWriteExt, StreamExt};
use libp2p::PeerId;
use libp2p_stream::IncomingStreams;
use stemma_protocol::membership::NodeId;
use stemma_protocol::placement::Partition;
use stemma_protocol::replication::{
    ItemKind, MAX_REFS_PER_REQUEST, NameRegister, Ref, ReplicaRequest, ReplicaResponse,
    VersionName, answer_roots,
};
use stemma_protocol::wire::MAX_LIST_PAGE;
use stemma_protocol::{BucketName, ObjectKey};
use tokio::sync::Semaphore;

use super::transport::{CALL_TIMEOUT, read_message, write_message};
use super::{Replication, blocking};
use crate::store::{ChunkWrite, StoreError};

/// Replica requests served at once; further streams wait (backpressure).
const MAX_INBOUND: usize = 64;

/// Answers peers' replica streams until the node stops.
pub(crate) async fn serve(replication: Arc<Replication>, mut incoming: IncomingStreams) {
    let permits = Arc::new(Semaphore::new(MAX_INBOUND));
    while let Some((peer, stream)) = incoming.next().await {
        if replication.p2p.faults.is_dropped(&peer) {
            continue;
        }
        // Take the stream off libp2p-stream's one-slot channel at once (a
        // stream that arrives while the slot is full is dropped); the answer
        // waits for a permit instead.
        let (replication, permits) = (replication.clone(), permits.clone());
        tokio::spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            if let Err(e) = replication.answer_stream(peer, stream).await {
                tracing::debug!(%peer, error = %e, "replica request failed");
            }
        });
    }
}

fn refused(why: impl std::fmt::Display) -> ReplicaResponse {
    ReplicaResponse::Refused(why.to_string())
}

impl Replication {
    async fn answer_stream(&self, peer: PeerId, mut stream: libp2p::Stream) -> std::io::Result<()> {
        let request = tokio::time::timeout(CALL_TIMEOUT, read_message(&mut stream)).await;
        let response = match request {
            Err(_) => return Err(std::io::ErrorKind::TimedOut.into()),
            Ok(Err(e)) => {
                // A malformed or oversized frame: say why, then close.
                self.metrics.replication.refused_requests.inc();
                tracing::info!(%peer, error = %e, "malformed replica request refused");
                refused(format!("malformed request: {e}"))
            }
            Ok(Ok(request)) if self.p2p.is_member(&peer).await => {
                match crate::p2p::node_of(&peer) {
                    Some(node) => self.answer_peer(node, request).await,
                    None => self.answer(request).await,
                }
            }
            Ok(Ok(_)) => {
                self.metrics.replication.refused_requests.inc();
                tracing::info!(%peer, "replica request from a non-member refused");
                refused("not a member of this cluster")
            }
        };
        write_message(&mut stream, &response).await?;
        stream.close().await
    }

    /// A peer's request: anti-entropy offers are answered only for the
    /// partitions this peer may fill (one filler per partition, see
    /// `FillLeases`), and each push renews the pusher's lease.
    async fn answer_peer(&self, peer: NodeId, request: ReplicaRequest) -> ReplicaResponse {
        let now = self.started.elapsed();
        let partitions = self.config.partitions;
        let pushed: Vec<(ItemKind, Partition)> = match &request {
            ReplicaRequest::PutChunk { id, .. } => vec![(ItemKind::Chunk, partitions.of_chunk(id))],
            ReplicaRequest::PutManifest { manifest } => vec![(
                ItemKind::Manifest,
                partitions.of_object(&manifest.object_id()),
            )],
            ReplicaRequest::PutName { bucket, key, .. } => parse(bucket, key)
                .ok()
                .map(|(b, k)| (ItemKind::Name, partitions.of_name(&b, &k)))
                .into_iter()
                .collect(),
            ReplicaRequest::PutRefs { refs, .. } => {
                let mut parts: Vec<Partition> =
                    refs.iter().map(|r| partitions.of_hash(&r.target)).collect();
                parts.dedup();
                parts.into_iter().map(|p| (ItemKind::Ref, p)).collect()
            }
            _ => Vec::new(),
        };
        if !pushed.is_empty() {
            let mut leases = self.leases.lock().expect("leases lock");
            for (kind, partition) in pushed {
                leases.renew(kind, partition.index(), peer, now);
            }
        }
        let kind = match &request {
            ReplicaRequest::Roots { kind, .. } => Some(*kind),
            _ => None,
        };
        let answer = self.answer(request).await;
        match (kind, answer) {
            (Some(kind), ReplicaResponse::Entries(entries)) => {
                let mut leases = self.leases.lock().expect("leases lock");
                leases.expire(now);
                ReplicaResponse::Entries(
                    entries
                        .into_iter()
                        .filter(|(p, _)| leases.grant(kind, *p, peer, now))
                        .collect(),
                )
            }
            (_, answer) => answer,
        }
    }

    /// Carries out one replica request on this node's store.
    pub(crate) async fn answer(&self, request: ReplicaRequest) -> ReplicaResponse {
        let outcome = match request {
            ReplicaRequest::PutChunk { id, data } => {
                if !id.matches(&data) {
                    self.metrics.replication.refused_chunks.inc();
                    self.metrics.replication.refused_requests.inc();
                    tracing::warn!(chunk = %id, "a chunk whose bytes do not match its id was refused");
                    return refused(format!("the bytes sent do not match chunk {id}"));
                }
                let len = data.len() as u64;
                self.writer.replica_chunk(id, data).await.map(|w| {
                    if w == ChunkWrite::Repaired {
                        tracing::info!(chunk = %id, "corrupt chunk replaced by a good copy");
                    }
                    ReplicaResponse::Stored {
                        new_bytes: if w == ChunkWrite::Present { 0 } else { len },
                    }
                })
            }
            ReplicaRequest::PutManifest { manifest } => self
                .writer
                .replica_manifest(manifest)
                .await
                .map(|_| ReplicaResponse::Stored { new_bytes: 0 }),
            ReplicaRequest::PutName {
                bucket,
                key,
                register,
            } => return self.put_name_here(&bucket, &key, register).await,
            ReplicaRequest::GetChunk { id } => {
                let store = self.store.clone();
                match blocking(move || store.read_chunk(&id)).await {
                    Ok(Some(data)) => Ok(ReplicaResponse::Chunk(data)),
                    Ok(None) => Ok(ReplicaResponse::Missing),
                    Err(StoreError::Corrupt(_)) => {
                        tracing::error!(chunk = %id, "corrupt chunk in the store: not served");
                        Ok(ReplicaResponse::Corrupt)
                    }
                    Err(e) => Err(e),
                }
            }
            ReplicaRequest::GetManifest { object } => {
                let store = self.store.clone();
                blocking(move || store.replica_manifest(&object))
                    .await
                    .map(|m| m.map_or(ReplicaResponse::Missing, ReplicaResponse::Manifest))
            }
            ReplicaRequest::GetName { bucket, key } => {
                let (bucket, key) = match parse(&bucket, &key) {
                    Ok(parsed) => parsed,
                    Err(why) => return why,
                };
                let store = self.store.clone();
                blocking(move || store.replica_name(&bucket, &key))
                    .await
                    .map(ReplicaResponse::Name)
            }
            ReplicaRequest::Stats => return self.stats_response().await,
            ReplicaRequest::PutRefs { refs, name } => {
                if let Some(why) = self.over_limit(refs.len(), "references sent") {
                    return why;
                }
                if let Some(name) = &name
                    && let Err(why) = same_version(&refs, name)
                {
                    return refused(why);
                }
                self.writer
                    .put_refs(refs, name)
                    .await
                    .map(|()| ReplicaResponse::Stored { new_bytes: 0 })
            }
            ReplicaRequest::GetRefs { targets } => {
                if let Some(why) = self.over_limit(targets.len(), "targets asked about") {
                    return why;
                }
                let store = self.store.clone();
                let targets = targets.into_iter().collect();
                blocking(move || store.refs_on(&targets))
                    .await
                    .map(|mut refs| {
                        refs.truncate(MAX_REFS_PER_REQUEST);
                        ReplicaResponse::Refs(refs)
                    })
            }
            ReplicaRequest::LiveRefs { targets } => {
                if let Some(why) = self.over_limit(targets.len(), "targets asked about") {
                    return why;
                }
                let store = self.store.clone();
                blocking(move || store.live_refs(&targets))
                    .await
                    .map(ReplicaResponse::LiveRefs)
            }
            ReplicaRequest::Holds { kind, keys } => {
                if let Some(why) = self.over_limit(keys.len(), "keys asked about") {
                    return why;
                }
                let store = self.store.clone();
                blocking(move || store.held(kind, &keys))
                    .await
                    .map(ReplicaResponse::Held)
            }
            ReplicaRequest::Roots { kind, roots } => {
                let partitions = self.config.partitions;
                if roots.len() > partitions.get() as usize {
                    self.metrics.replication.refused_requests.inc();
                    return refused(format!(
                        "{} roots offered for {} partitions",
                        roots.len(),
                        partitions.get()
                    ));
                }
                let (store, clock) = (self.store.clone(), self.gc_clock());
                blocking(move || store.replica_inventory(kind, partitions, clock))
                    .await
                    .map(|inventory| ReplicaResponse::Entries(answer_roots(&inventory, &roots)))
            }
            ReplicaRequest::ListNames {
                bucket,
                prefix,
                start_after,
                limit,
            } => {
                let Ok(bucket) = BucketName::parse(&bucket) else {
                    return refused(format!("invalid bucket {bucket:?}"));
                };
                let limit = limit.clamp(1, MAX_LIST_PAGE) as usize;
                let store = self.store.clone();
                blocking(move || {
                    store.list_replica_names(&bucket, &prefix, start_after.as_deref(), limit)
                })
                .await
                .map(|(entries, more)| ReplicaResponse::Names { entries, more })
            }
        };
        outcome.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "replica request failed in the store");
            refused(e)
        })
    }

    /// A refusal if a request carries more than [`MAX_REFS_PER_REQUEST`] items.
    fn over_limit(&self, len: usize, what: &str) -> Option<ReplicaResponse> {
        (len > MAX_REFS_PER_REQUEST).then(|| {
            self.metrics.replication.refused_requests.inc();
            refused(format!(
                "{len} {what}, at most {MAX_REFS_PER_REQUEST} per request"
            ))
        })
    }

    async fn put_name_here(
        &self,
        bucket: &str,
        key: &str,
        register: NameRegister,
    ) -> ReplicaResponse {
        let (bucket, key) = match parse(bucket, key) {
            Ok(parsed) => parsed,
            Err(why) => return why,
        };
        if self.p2p.faults.refuses_names() {
            return refused("name writes are refused by fault injection");
        }
        if register.entry.stamp.node != self.me.id {
            let observed = self
                .clock
                .lock()
                .expect("clock lock")
                .observe(register.entry.stamp, crate::clock::unix_millis());
            if let Err(e) = observed {
                self.metrics.replication.refused_requests.inc();
                return refused(e);
            }
        }
        match self.writer.replica_name(bucket, key, register).await {
            Ok(_) => ReplicaResponse::Stored { new_bytes: 0 },
            Err(e) => refused(e),
        }
    }
}

/// Checks that references sent with a version's name are all of that version.
fn same_version(refs: &[Ref], name: &VersionName) -> Result<(), String> {
    let version = name
        .version()
        .map_err(|e| format!("references sent with a bad name: {e}"))?;
    match refs.iter().find(|r| r.version != version) {
        Some(other) => Err(format!(
            "references of version {} sent with the name of version {} ({}/{})",
            hex::encode(other.version.0),
            hex::encode(version.0),
            name.bucket,
            name.key
        )),
        None => Ok(()),
    }
}

#[allow(clippy::result_large_err)]
fn parse(bucket: &str, key: &str) -> Result<(BucketName, ObjectKey), ReplicaResponse> {
    let bucket = BucketName::parse(bucket).map_err(refused)?;
    let key = ObjectKey::parse(key).map_err(refused)?;
    Ok((bucket, key))
}
