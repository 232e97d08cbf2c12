//! The coordinator: carries a client's put, get, head, list or delete out on
//! the owners of each item, following the protocol's planners
//! ([`WriteQuorum`], [`read_order`], [`read_repair_targets`],
//! [`merge_register_pages`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::join_all;
use stemma_protocol::membership::NodeId;
use stemma_protocol::names::{Hlc, NameEntry, NameValue, merge_register_pages};
use stemma_protocol::placement::Partition;
use stemma_protocol::replication::{
    NameRegister, QuorumState, ReadOutcome, Ref, RefState, ReplicaRequest, ReplicaResponse,
    VersionName, WriteQuorum, effective_quorum, read_order, read_repair_targets, refs_of,
    version_id,
};
use stemma_protocol::{BucketName, ChunkId, Manifest, ObjectId, ObjectKey};
use tokio::sync::mpsc;

use super::{Replication, ReplicationError, Snapshot, transport};

impl Replication {
    /// Sends `request` to `node`: through the store directly for this node,
    /// else on a replica stream.
    pub(super) async fn ask(
        &self,
        node: NodeId,
        request: ReplicaRequest,
    ) -> Result<ReplicaResponse, String> {
        if node == self.me.id {
            return Ok(self.answer(request).await);
        }
        let frame = transport::Frame::encode(&request).map_err(|e| e.to_string())?;
        self.ask_remote(node, &frame).await
    }

    /// Sends an encoded request to another node.
    async fn ask_remote(
        &self,
        node: NodeId,
        frame: &transport::Frame,
    ) -> Result<ReplicaResponse, String> {
        let peer = crate::p2p::peer_of(&node).ok_or_else(|| format!("{node} has no peer id"))?;
        if self.p2p.faults.is_dropped(&peer) {
            return Err(format!("{node} is cut off by fault injection"));
        }
        transport::call(&self.control, peer, frame)
            .await
            .map_err(|e| e.to_string())
    }

    /// Writes one item to `owners` and returns once W of them stored it
    /// durably, with the most bytes any of them added. The writes to the
    /// other owners go on in the background. The request is encoded once for
    /// every other owner and handed whole to this node's store, never copied
    /// per owner (for a chunk, a mebibyte each).
    async fn replicate(
        self: &Arc<Self>,
        what: String,
        owners: &[NodeId],
        request: ReplicaRequest,
    ) -> Result<u64, ReplicationError> {
        let needed = effective_quorum(self.write_quorum, owners.len());
        let refused = |why: String| ReplicationError::Quorum {
            what: what.clone(),
            acked: 0,
            needed,
            why,
        };
        let mut quorum =
            WriteQuorum::new(owners.iter().copied(), needed).map_err(|e| refused(e.to_string()))?;
        let frame = match owners.iter().any(|&o| o != self.me.id) {
            true => Some(transport::Frame::encode(&request).map_err(|e| refused(e.to_string()))?),
            false => None,
        };
        let mut local = Some(request);
        let (tx, mut rx) = mpsc::unbounded_channel();
        for &owner in owners {
            let (this, tx) = (self.clone(), tx.clone());
            if owner == self.me.id {
                let Some(request) = local.take() else {
                    continue; // listed twice: WriteQuorum counts it once
                };
                tokio::spawn(async move {
                    let answer = Ok(this.answer(request).await);
                    let _ = tx.send((owner, answer));
                });
            } else if let Some(frame) = frame.clone() {
                tokio::spawn(async move {
                    let answer = this.ask_remote(owner, &frame).await;
                    let _ = tx.send((owner, answer));
                });
            }
        }
        drop(tx);
        let mut new_bytes = 0;
        let mut why = String::from("no answer");
        while let Some((owner, answer)) = rx.recv().await {
            let state = match answer {
                Ok(ReplicaResponse::Stored { new_bytes: added }) => {
                    self.metrics.replication.replica_writes.inc();
                    new_bytes = new_bytes.max(added);
                    quorum.ack(owner)
                }
                other => {
                    self.metrics.replication.replica_errors.inc();
                    why = match other {
                        Ok(ReplicaResponse::Refused(reason)) => format!("{owner}: {reason}"),
                        Ok(unexpected) => format!("{owner}: unexpected answer {unexpected:?}"),
                        Err(e) => e,
                    };
                    tracing::warn!(item = %what, error = %why, "replica write failed");
                    quorum.fail(owner)
                }
            };
            match state {
                QuorumState::Reached => return Ok(new_bytes),
                QuorumState::Failed => break,
                QuorumState::Pending => {}
            }
        }
        Err(ReplicationError::Quorum {
            what,
            acked: quorum.acked().len(),
            needed,
            why,
        })
    }

    /// Stores a chunk on its owners (W durable copies). Returns the bytes it
    /// added on the replica that gained the most (0 if every owner had it).
    pub(crate) async fn put_chunk(
        self: &Arc<Self>,
        snap: &Snapshot,
        id: ChunkId,
        data: Vec<u8>,
    ) -> Result<u64, ReplicationError> {
        let partition = snap.layout.partitions().of_chunk(&id);
        let owners = snap.layout.replicas(partition).to_vec();
        let request = ReplicaRequest::PutChunk { id, data };
        self.replicate(format!("chunk {id}"), &owners, request)
            .await
    }

    /// Stores a manifest on the owners of its object (W durable copies).
    pub(crate) async fn put_manifest(
        self: &Arc<Self>,
        snap: &Snapshot,
        manifest: &Manifest,
    ) -> Result<(), ReplicationError> {
        let object = manifest.object_id();
        let partition = snap.layout.partitions().of_object(&object);
        let owners = snap.layout.replicas(partition).to_vec();
        let request = ReplicaRequest::PutManifest {
            manifest: manifest.clone(),
        };
        self.replicate(format!("manifest {object}"), &owners, request)
            .await
            .map(|_| ())
    }

    /// A register for `value`, stamped now by this node's clock.
    pub(crate) fn register(&self, value: NameValue, size: u64) -> NameRegister {
        let stamp = self.stamp();
        NameRegister {
            entry: NameEntry { stamp, value },
            size,
            modified_ms: stamp.wall_millis,
        }
    }

    /// Records on the owners of the manifest and of each chunk (W durable
    /// copies per partition) that the version `bucket/key` at `stamp`
    /// references them, before the name is written: no acknowledged object
    /// is ever unreferenced, so garbage collection never takes its data.
    ///
    /// The manifest's partition goes first, with the version's name, which
    /// its owners keep until they have seen the name written
    /// ([`check_name`](stemma_protocol::replication::check_name)): if the put
    /// fails later, they are the ones who mark the references dead. If it
    /// fails there, no other reference was written, and the chunks, written
    /// without any, go by the GC rule.
    pub(crate) async fn put_refs(
        self: &Arc<Self>,
        snap: &Snapshot,
        bucket: &BucketName,
        key: &ObjectKey,
        stamp: &Hlc,
        manifest: &Manifest,
    ) -> Result<(), ReplicationError> {
        let version = version_id(bucket, key, stamp);
        let object = manifest.object_id();
        let refs = refs_of(manifest, version, RefState::Live);
        let mut by_partition = snap.by_partition(refs, |r| r.target);
        let first = snap.layout.partitions().of_hash(object.as_bytes());
        let refs = by_partition.remove(&first).unwrap_or_default();
        let name = VersionName::new(bucket, key, *stamp, object);
        self.write_refs(snap, bucket, key, first, refs, Some(name))
            .await?;
        let rest = by_partition
            .into_iter()
            .map(|(partition, refs)| self.write_refs(snap, bucket, key, partition, refs, None));
        for outcome in join_all(rest).await {
            outcome?;
        }
        Ok(())
    }

    /// One partition's references of a version, to its owners.
    async fn write_refs(
        self: &Arc<Self>,
        snap: &Snapshot,
        bucket: &BucketName,
        key: &ObjectKey,
        partition: Partition,
        refs: Vec<Ref>,
        name: Option<VersionName>,
    ) -> Result<u64, ReplicationError> {
        let owners = snap.layout.replicas(partition).to_vec();
        let what = format!(
            "references of {bucket}/{key} in partition {}",
            partition.index()
        );
        self.replicate(what, &owners, ReplicaRequest::PutRefs { refs, name })
            .await
    }

    /// Writes a name's register on the owners of the name (W durable copies).
    pub(crate) async fn put_name(
        self: &Arc<Self>,
        snap: &Snapshot,
        bucket: &BucketName,
        key: &ObjectKey,
        register: NameRegister,
    ) -> Result<NameRegister, ReplicationError> {
        let partition = snap.layout.partitions().of_name(bucket, key);
        let owners = snap.layout.replicas(partition).to_vec();
        let request = ReplicaRequest::PutName {
            bucket: bucket.to_string(),
            key: key.to_string(),
            register,
        };
        self.replicate(format!("name {bucket}/{key}"), &owners, request)
            .await?;
        Ok(register)
    }

    /// The winning register of `bucket/key` among its owners (all asked at
    /// once; past them, every other live node), with owners that lacked it
    /// or held an older one brought up to date. A tombstone is returned too.
    pub(crate) async fn name(
        self: &Arc<Self>,
        snap: &Snapshot,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<Option<NameRegister>, ReplicationError> {
        let partition = snap.layout.partitions().of_name(bucket, key);
        let owners = snap.layout.replicas(partition).to_vec();
        let ask_all = |nodes: Vec<NodeId>| {
            let request = ReplicaRequest::GetName {
                bucket: bucket.to_string(),
                key: key.to_string(),
            };
            join_all(nodes.into_iter().map(move |node| {
                let request = request.clone();
                async move { (node, self.ask(node, request).await) }
            }))
        };
        let mut answers = ask_all(owners.clone()).await;
        let found = |answers: &[(NodeId, Result<ReplicaResponse, String>)]| {
            answers
                .iter()
                .filter_map(|(_, a)| match a {
                    Ok(ReplicaResponse::Name(Some(r))) => Some(*r),
                    _ => None,
                })
                .max_by_key(|r| r.entry)
        };
        if found(&answers).is_none() {
            let others: Vec<NodeId> = snap
                .live
                .iter()
                .copied()
                .filter(|n| !owners.contains(n))
                .collect();
            answers.extend(ask_all(others).await);
        }
        let Some(winner) = found(&answers) else {
            return Ok(None);
        };
        let stale: Vec<NodeId> = answers
            .iter()
            .filter(|(node, _)| owners.contains(node))
            .filter(|(_, a)| match a {
                Ok(ReplicaResponse::Name(Some(r))) => r.entry < winner.entry,
                Ok(ReplicaResponse::Name(None)) => true,
                _ => false,
            })
            .map(|(node, _)| *node)
            .collect();
        if !stale.is_empty() {
            self.repair(
                stale,
                format!("name {bucket}/{key}"),
                ReplicaRequest::PutName {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                    register: winner,
                },
            );
        }
        Ok(Some(winner))
    }

    /// The object `bucket/key` names now: its register and manifest.
    pub(crate) async fn resolve(
        self: &Arc<Self>,
        snap: &Snapshot,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<(NameRegister, Manifest), ReplicationError> {
        let register = self.name(snap, bucket, key).await?;
        let not_found = || ReplicationError::NotFound(format!("{bucket}/{key}"));
        let register = register.ok_or_else(not_found)?;
        let object = register.entry.object().ok_or_else(not_found)?;
        let manifest = self.manifest(snap, object).await?;
        Ok((register, manifest))
    }

    /// The nodes to read an item of `partition` from, in order: the owners
    /// (nearest first), the previous layout's owners, then every other live
    /// node — data written under an older layout stays where it was put
    /// until rebalancing moves it.
    fn read_candidates(&self, snap: &Snapshot, partition: Partition) -> Vec<NodeId> {
        let mut order = read_order(
            &snap.layout,
            snap.previous.as_deref(),
            partition,
            &snap.live,
            self.me.id,
            &BTreeMap::new(),
        );
        for node in &snap.live {
            if !order.contains(node) {
                order.push(*node);
            }
        }
        order
    }

    /// Reads one item from the first candidate that has it right, then sends
    /// it back to the owners that lacked it or held it corrupt.
    #[allow(clippy::too_many_arguments)]
    async fn read_item<T>(
        self: &Arc<Self>,
        snap: &Snapshot,
        partition: Partition,
        chunk: Option<ChunkId>,
        what: String,
        request: ReplicaRequest,
        check: impl Fn(ReplicaResponse) -> Result<T, ReadOutcome>,
        repair: impl Fn(&T) -> ReplicaRequest,
    ) -> Result<T, ReplicationError> {
        let owners = snap.layout.replicas(partition);
        let mut outcomes: Vec<(NodeId, ReadOutcome)> = Vec::new();
        let mut why = Vec::new();
        for node in self.read_candidates(snap, partition) {
            let outcome = match self.ask(node, request.clone()).await {
                Ok(answer) => check(answer),
                Err(e) => {
                    why.push(format!("{}: {e}", node.short()));
                    Err(ReadOutcome::Unreachable)
                }
            };
            match outcome {
                Ok(item) => {
                    outcomes.push((node, ReadOutcome::Found));
                    let targets: Vec<NodeId> = read_repair_targets(&outcomes)
                        .into_iter()
                        .filter(|n| owners.contains(n))
                        .collect();
                    if !targets.is_empty() {
                        self.repair(targets, what, repair(&item));
                    }
                    return Ok(item);
                }
                Err(outcome) => {
                    if matches!(outcome, ReadOutcome::Missing | ReadOutcome::Corrupt)
                        && owners.contains(&node)
                    {
                        self.metrics.replication.read_misses.inc();
                        tracing::warn!(item = %what, node = %node.short(), ?outcome, "replica lacks a good copy");
                    }
                    if outcome != ReadOutcome::Unreachable {
                        why.push(format!("{}: {outcome:?}", node.short()));
                    }
                    outcomes.push((node, outcome));
                }
            }
        }
        let corrupt = outcomes.iter().any(|(_, o)| *o == ReadOutcome::Corrupt);
        Err(ReplicationError::Unavailable {
            what,
            why: why.join(", "),
            corrupt: chunk.filter(|_| corrupt),
        })
    }

    /// The manifest of `object`, checked against its id.
    pub(crate) async fn manifest(
        self: &Arc<Self>,
        snap: &Snapshot,
        object: ObjectId,
    ) -> Result<Manifest, ReplicationError> {
        let partition = snap.layout.partitions().of_object(&object);
        self.read_item(
            snap,
            partition,
            None,
            format!("manifest {object}"),
            ReplicaRequest::GetManifest { object },
            |answer| match answer {
                ReplicaResponse::Manifest(m) if m.object_id() == object => Ok(m),
                ReplicaResponse::Manifest(_) | ReplicaResponse::Corrupt => {
                    Err(ReadOutcome::Corrupt)
                }
                ReplicaResponse::Missing => Err(ReadOutcome::Missing),
                _ => Err(ReadOutcome::Unreachable),
            },
            |m| ReplicaRequest::PutManifest {
                manifest: m.clone(),
            },
        )
        .await
    }

    /// Chunk `id`, checked against its hash.
    pub(crate) async fn chunk(
        self: &Arc<Self>,
        snap: &Snapshot,
        id: ChunkId,
    ) -> Result<Vec<u8>, ReplicationError> {
        let partition = snap.layout.partitions().of_chunk(&id);
        self.read_item(
            snap,
            partition,
            Some(id),
            format!("chunk {id}"),
            ReplicaRequest::GetChunk { id },
            |answer| match answer {
                ReplicaResponse::Chunk(data) if id.matches(&data) => Ok(data),
                ReplicaResponse::Chunk(_) | ReplicaResponse::Corrupt => Err(ReadOutcome::Corrupt),
                ReplicaResponse::Missing => Err(ReadOutcome::Missing),
                _ => Err(ReadOutcome::Unreachable),
            },
            |data| ReplicaRequest::PutChunk {
                id,
                data: data.clone(),
            },
        )
        .await
    }

    /// Sends `request` to `targets` in the background: read repair.
    fn repair(self: &Arc<Self>, targets: Vec<NodeId>, what: String, request: ReplicaRequest) {
        for node in targets {
            let (this, request, what) = (self.clone(), request.clone(), what.clone());
            tokio::spawn(async move {
                match this.ask(node, request).await {
                    Ok(ReplicaResponse::Stored { .. }) => {
                        this.metrics.replication.read_repairs.inc();
                        tracing::info!(item = %what, node = %node.short(), "read repair: replica brought up to date");
                    }
                    other => {
                        tracing::warn!(item = %what, node = %node.short(), answer = ?other.map(|a| format!("{a:?}")), "read repair failed");
                    }
                }
            });
        }
    }

    /// A page of the live names of `bucket` under `prefix`: every live node
    /// is asked for a page of its registers (names are spread over all
    /// partitions), and the pages are merged by the CRDT rule.
    pub(crate) async fn list(
        self: &Arc<Self>,
        snap: &Snapshot,
        bucket: &BucketName,
        prefix: &str,
        start_after: Option<String>,
        limit: u32,
    ) -> (Vec<(String, NameRegister)>, Option<String>) {
        let request = ReplicaRequest::ListNames {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            start_after,
            limit,
        };
        let answers = join_all(snap.live.iter().map(|&node| {
            let request = request.clone();
            async move { (node, self.ask(node, request).await) }
        }))
        .await;
        let pages = answers.into_iter().filter_map(|(node, answer)| match answer {
            Ok(ReplicaResponse::Names { entries, more }) => Some((
                entries
                    .into_iter()
                    .map(|(k, r)| (k, r.entry, r))
                    .collect::<Vec<_>>(),
                more,
            )),
            other => {
                tracing::warn!(node = %node.short(), answer = ?other.map(|a| format!("{a:?}")), "a node did not list its names");
                None
            }
        });
        let (entries, next) = merge_register_pages(pages, limit as usize);
        (entries.into_iter().map(|(k, _, r)| (k, r)).collect(), next)
    }
}
