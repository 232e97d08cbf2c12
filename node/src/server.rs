//! The QUIC client endpoint: TLS with the node's certificate, the token
//! handshake, then one request per bidirectional stream (see
//! `stemma_protocol::wire`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use stemma_client::transport::{self, StreamError, read_frame, write_frame};
use stemma_protocol::names::NameValue;
use stemma_protocol::replication::NameRegister;
use stemma_protocol::wire::{
    self, GetFrame, Hello, HelloReply, ListEntry, MAX_LIST_PAGE, MemberRow, ObjectInfo,
    PROTOCOL_VERSION, PutFrame, Request, Response, WireError, close_code,
};
use stemma_protocol::{
    BucketName, ChunkId, ChunkSize, Chunker, Manifest, ManifestBuilder, NameError, ObjectKey,
};
use tokio::sync::{Semaphore, oneshot, watch};
use tracing::Instrument;

use crate::identity::Identity;
use crate::lineage::ingest::{Ingest, IngestError};
use crate::lineage::provenance::{Provenance, Recorder};
use crate::lineage::{Lineage, LineageErrorKind};
use crate::metrics::Metrics;
use crate::p2p::P2pHandle;
use crate::replication::{Replication, ReplicationError, Snapshot};
use crate::store::{PinGuard, Resolved, Store, StoreError, Writer};
use stemma_protocol::lineage::LineageRequest;

/// How long a new connection has to present its token.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Chunk writes one upload keeps queued before waiting for the oldest.
const UPLOAD_WRITES_IN_FLIGHT: usize = 8;
/// Chunks a download reads ahead of the network.
const DOWNLOAD_READ_AHEAD: usize = 4;
/// Requests at most in flight at once (a permit each); shutdown takes them all.
pub(crate) const MAX_IN_FLIGHT: u32 = 1 << 16;

/// What every connection handler shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub store: Store,
    pub writer: Writer,
    pub metrics: Arc<Metrics>,
    pub token_hash: blake3::Hash,
    pub node_id: String,
    pub chunk_size: ChunkSize,
    /// One permit per request in flight.
    pub in_flight: Arc<Semaphore>,
    /// Turns true when the node stops accepting requests.
    pub stopping: watch::Sender<bool>,
    /// Membership.
    pub p2p: P2pHandle,
    /// The lineage graphs.
    pub lineage: Lineage,
    /// Records stored objects in the lineage graph.
    pub provenance: Recorder,
    /// Takes OpenLineage events.
    pub ingest: Ingest,
    /// The key OpenLineage clients must send as `Authorization: Bearer`, if any.
    pub openlineage_api_key: Option<String>,
    /// Placement and replication of objects across the cluster.
    pub replication: Arc<Replication>,
}

/// The node's QUIC endpoint, bound to `listen`.
pub(crate) fn endpoint(
    identity: &Identity,
    listen: std::net::SocketAddr,
) -> anyhow::Result<quinn::Endpoint> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let cert = CertificateDer::from(identity.cert_der.clone());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.cert_key_der.clone()));
    let mut tls =
        rustls::ServerConfig::builder_with_provider(stemma_client::tls::crypto_provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)?;
    tls.alpn_protocols = vec![wire::ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport::transport_config());
    quinn::Endpoint::server(config, listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen} (UDP): {e}"))
}

/// Accepts connections until the node stops.
pub(crate) async fn accept_loop(endpoint: quinn::Endpoint, shared: Arc<Shared>) {
    let mut stopping = shared.stopping.subscribe();
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => incoming,
            _ = stopping.wait_for(|s| *s) => return,
        };
        let Some(incoming) = incoming else { return };
        shared.metrics.connections.inc();
        let shared = shared.clone();
        let remote = incoming.remote_address();
        tokio::spawn(
            async move {
                match incoming.await {
                    Ok(connection) => serve_connection(connection, shared).await,
                    Err(e) => tracing::debug!(error = %e, "connection attempt failed"),
                }
            }
            .instrument(tracing::debug_span!("client", %remote)),
        );
    }
}

async fn serve_connection(connection: quinn::Connection, shared: Arc<Shared>) {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&connection, &shared)).await {
        Ok(Ok(())) => {}
        Ok(Err((code, why))) => {
            if code == close_code::PROTOCOL {
                // Refusals were counted by the handshake itself.
                shared.metrics.error("handshake", why);
            }
            tracing::info!(reason = why, "client refused");
            connection.close(code.into(), why.as_bytes());
            return;
        }
        Err(_) => {
            shared.metrics.error("handshake", "timeout");
            connection.close(close_code::PROTOCOL.into(), b"handshake timeout");
            return;
        }
    }
    let mut stopping = shared.stopping.subscribe();
    loop {
        let stream = tokio::select! {
            stream = connection.accept_bi() => stream,
            // Stop taking requests; those in flight keep the connection open
            // until they finish (shutdown closes what remains after draining).
            _ = stopping.wait_for(|s| *s) => return,
        };
        let Ok((send, recv)) = stream else { return };
        let Ok(permit) = shared.in_flight.clone().try_acquire_owned() else {
            // Shutdown holds every permit: refuse new work.
            connection.close(close_code::SHUTTING_DOWN.into(), b"shutting down");
            return;
        };
        let shared = shared.clone();
        let connection = connection.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = serve_stream(send, recv, &shared).await {
                // A peer that breaks the framing loses its connection; others go on.
                shared.metrics.error("stream", "protocol");
                tracing::info!(error = %e, "protocol error: closing the connection");
                connection.close(close_code::PROTOCOL.into(), e.to_string().as_bytes());
            }
        });
    }
}

/// Returns the close code and reason on refusal.
async fn handshake(
    connection: &quinn::Connection,
    shared: &Shared,
) -> Result<(), (u32, &'static str)> {
    let protocol = (close_code::PROTOCOL, "protocol");
    let (mut send, mut recv) = connection.accept_bi().await.map_err(|_| protocol)?;
    let mut buf = Vec::new();
    let hello: Hello = transport::expect_frame(&mut recv, &mut buf)
        .await
        .map_err(|_| protocol)?;
    let refusal = if hello.version != PROTOCOL_VERSION {
        Some((
            WireError::VersionMismatch {
                client: hello.version,
                node: PROTOCOL_VERSION,
            },
            (close_code::VERSION_MISMATCH, "version_mismatch"),
        ))
    } else if blake3::hash(hello.token.as_bytes()) != shared.token_hash {
        Some((
            WireError::Unauthorized,
            (close_code::UNAUTHORIZED, "unauthorized"),
        ))
    } else {
        None
    };
    let reply = match &refusal {
        Some((e, _)) => HelloReply::Rejected(e.clone()),
        None => HelloReply::Welcome {
            version: PROTOCOL_VERSION,
            node_id: shared.node_id.clone(),
        },
    };
    write_frame(&mut send, &reply, &mut buf)
        .await
        .map_err(|_| protocol)?;
    let _ = send.finish();
    match refusal {
        None => Ok(()),
        Some((_, close)) => {
            // Counted now, not after the wait: the client may already have gone.
            shared.metrics.error("handshake", close.1);
            // Let the refusal reach the client before the connection closes.
            let _ = tokio::time::timeout(Duration::from_secs(2), send.stopped()).await;
            Err(close)
        }
    }
}

/// Serves one request stream. An `Err` is a framing violation: the caller closes
/// the connection.
async fn serve_stream(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    shared: &Shared,
) -> Result<(), StreamError> {
    let mut buf = Vec::new();
    let request: Request = match read_frame(&mut recv, &mut buf).await? {
        Some(payload) => wire::decode(payload)?,
        None => return Ok(()),
    };
    let kind = request_kind(&request);
    shared.metrics.request(kind);
    let span = tracing::debug_span!("request", kind);
    let outcome = async {
        match request {
            Request::Put {
                bucket,
                key,
                content_type,
                metadata,
                size,
                derived_from,
                job,
            } => {
                let upload = Upload {
                    content_type,
                    metadata,
                    size,
                    derived_from,
                    job,
                };
                put(shared, &mut recv, &bucket, &key, upload).await
            }
            Request::Get { bucket, key } => get(shared, &mut send, &bucket, &key).await,
            Request::Head { bucket, key } => {
                let (bucket, key) = parse_path(&bucket, &key)?;
                let snap = snapshot(shared).await?;
                if !snap.alone() {
                    match shared.replication.resolve(&snap, &bucket, &key).await {
                        Ok((register, manifest)) => {
                            return Ok(Response::Object(replicated_info(
                                &bucket, &key, &register, &manifest,
                            )));
                        }
                        Err(ReplicationError::NotFound(_)) => {} // maybe stored while alone
                        Err(e) => return Err(e.into()),
                    }
                }
                let resolved = resolve(shared, bucket, key).await?;
                Ok(Response::Object(resolved))
            }
            Request::List {
                bucket,
                prefix,
                start_after,
                limit,
            } => list(shared, &bucket, prefix, start_after, limit).await,
            Request::Delete { bucket, key } => {
                let (bucket, key) = parse_path(&bucket, &key)?;
                let snap = snapshot(shared).await?;
                if !snap.alone() {
                    let replication = &shared.replication;
                    let current = replication.name(&snap, &bucket, &key).await?;
                    if current.is_some_and(|r| !r.entry.is_deleted()) {
                        let tombstone = replication.register(NameValue::Deleted, 0);
                        replication
                            .put_name(&snap, &bucket, &key, tombstone)
                            .await?;
                        shared.provenance.deleted(bucket.as_str(), key.as_str());
                        return Ok(Response::Deleted);
                    }
                }
                shared
                    .writer
                    .delete(bucket.clone(), key.clone())
                    .await
                    .map_err(Failure::from)?;
                shared.provenance.deleted(bucket.as_str(), key.as_str());
                Ok(Response::Deleted)
            }
            Request::Members => Ok(Response::Members(member_rows(shared).await)),
            Request::Status => shared
                .replication
                .status_report(shared.node_id.clone())
                .await
                .map(Response::Status)
                .map_err(Failure::from),
            Request::Lineage { namespace, request } => {
                lineage_call(shared, namespace, &request).await
            }
        }
    }
    .instrument(span)
    .await;
    match outcome {
        Ok(Response::Object(_)) if kind == "get" => {} // already streamed
        Ok(response) => write_frame(&mut send, &response, &mut buf).await?,
        Err(Failure::Framing(e)) => {
            shared.metrics.error(kind, "protocol");
            return Err(e);
        }
        Err(Failure::Request(e)) => {
            shared.metrics.error(kind, error_label(&e));
            let _ = recv.stop(0u32.into());
            write_frame(&mut send, &Response::Error(e), &mut buf).await?;
        }
        Err(Failure::Gone) => return Ok(()),
    }
    let _ = send.finish();
    // Hold the request (and its shutdown permit) until the client has the whole
    // answer: a node stopping right after a put must not lose its acknowledgement.
    let _ = tokio::time::timeout(Duration::from_secs(5), send.stopped()).await;
    Ok(())
}

/// Why a request did not succeed.
enum Failure {
    /// The request was answered with this error.
    Request(WireError),
    /// The peer broke the framing.
    Framing(StreamError),
    /// The stream died (client went away): nothing to answer.
    Gone,
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Request(match e {
            StoreError::NotFound(what) => WireError::NotFound(what),
            StoreError::Corrupt(chunk) => WireError::Corrupt { chunk },
            StoreError::Closed => WireError::ShuttingDown,
            other => WireError::Internal(other.to_string()),
        })
    }
}

impl From<ReplicationError> for Failure {
    fn from(e: ReplicationError) -> Self {
        match e {
            ReplicationError::Store(e) => Failure::from(e),
            ReplicationError::NotFound(what) => Failure::Request(WireError::NotFound(what)),
            ReplicationError::Unavailable {
                corrupt: Some(chunk),
                ..
            } => Failure::Request(WireError::Corrupt { chunk }),
            other => Failure::Request(WireError::Internal(other.to_string())),
        }
    }
}

/// The layout for this request.
async fn snapshot(shared: &Shared) -> Result<Snapshot, Failure> {
    Ok(shared.replication.snapshot().await?)
}

/// What a head or get reports of a replicated object.
fn replicated_info(
    bucket: &BucketName,
    key: &ObjectKey,
    register: &NameRegister,
    manifest: &Manifest,
) -> ObjectInfo {
    ObjectInfo {
        bucket: bucket.to_string(),
        key: key.to_string(),
        object_id: manifest.object_id(),
        size: manifest.size,
        chunks: manifest.chunks.len() as u64,
        content_type: manifest.content_type.clone(),
        metadata: manifest.metadata.clone(),
        modified_ms: register.modified_ms,
    }
}

impl From<NameError> for Failure {
    fn from(e: NameError) -> Self {
        Failure::Request(WireError::InvalidName(e.to_string()))
    }
}

impl From<StreamError> for Failure {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::Connection(_) | StreamError::Truncated => Failure::Gone,
            other => Failure::Framing(other),
        }
    }
}

/// The next frame of an upload; an upload that ends without its End frame is
/// refused (nothing is stored).
async fn next_put_frame<'b>(
    recv: &mut quinn::RecvStream,
    buf: &'b mut Vec<u8>,
) -> Result<PutFrame<'b>, Failure> {
    match read_frame(recv, buf).await? {
        Some(payload) => wire::decode::<PutFrame<'_>>(payload)
            .map_err(|e| Failure::Framing(StreamError::Frame(e))),
        None => Err(Failure::Request(WireError::BadRequest(
            "the upload ended without its End frame; nothing was stored".into(),
        ))),
    }
}

fn request_kind(request: &Request) -> &'static str {
    match request {
        Request::Put { .. } => "put",
        Request::Get { .. } => "get",
        Request::Head { .. } => "head",
        Request::List { .. } => "list",
        Request::Delete { .. } => "delete",
        Request::Members => "members",
        Request::Status => "status",
        Request::Lineage { .. } => "lineage",
    }
}

/// Answers a lineage request; the answer must fit in one frame.
async fn lineage_call(
    shared: &Shared,
    namespace: String,
    request: &[u8],
) -> Result<Response, Failure> {
    let request: LineageRequest = serde_json::from_slice(request).map_err(|e| {
        Failure::Request(WireError::BadRequest(format!(
            "invalid lineage request: {e}"
        )))
    })?;
    if let LineageRequest::Ingest { event } = request {
        // Through the node's ingestion: deduplicated, group-committed.
        let json = serde_json::to_vec(&event).expect("JSON values serialize");
        let outcome = shared.ingest.event(&namespace, &json).await.map_err(|e| {
            Failure::Request(match e {
                IngestError::Lineage(e) if e.kind() == LineageErrorKind::Internal => {
                    WireError::Internal(e.to_string())
                }
                other => WireError::BadRequest(other.to_string()),
            })
        })?;
        let json = serde_json::to_vec(&outcome).expect("outcomes serialize");
        return Ok(Response::Lineage(json));
    }
    let answer = shared
        .lineage
        .request(namespace, request)
        .await
        .map_err(|e| {
            Failure::Request(match e.kind() {
                LineageErrorKind::NotFound => WireError::NotFound(e.to_string()),
                LineageErrorKind::Invalid => WireError::BadRequest(e.to_string()),
                LineageErrorKind::Internal => WireError::Internal(e.to_string()),
            })
        })?;
    let json = serde_json::to_vec(&answer).expect("JSON values serialize");
    if json.len() > wire::MAX_FRAME_LEN - 1024 {
        return Err(Failure::Request(WireError::BadRequest(format!(
            "the answer ({} bytes) does not fit in one message: ask for a smaller page (limit)",
            json.len()
        ))));
    }
    Ok(Response::Lineage(json))
}

fn error_label(e: &WireError) -> &'static str {
    match e {
        WireError::NotFound(_) => "not_found",
        WireError::Unauthorized => "unauthorized",
        WireError::VersionMismatch { .. } => "version_mismatch",
        WireError::Corrupt { .. } => "corrupt",
        WireError::InvalidName(_) => "invalid_name",
        WireError::BadRequest(_) => "bad_request",
        WireError::ShuttingDown => "shutting_down",
        _ => "internal",
    }
}

fn parse_path(bucket: &str, key: &str) -> Result<(BucketName, ObjectKey), Failure> {
    Ok((BucketName::parse(bucket)?, ObjectKey::parse(key)?))
}

fn info_of(bucket: &BucketName, key: &ObjectKey, resolved: &Resolved) -> ObjectInfo {
    ObjectInfo {
        bucket: bucket.to_string(),
        key: key.to_string(),
        object_id: resolved.record.object_id,
        size: resolved.manifest.size,
        chunks: resolved.manifest.chunks.len() as u64,
        content_type: resolved.manifest.content_type.clone(),
        metadata: resolved.manifest.metadata.clone(),
        modified_ms: resolved.record.modified_ms,
    }
}

async fn resolve(
    shared: &Shared,
    bucket: BucketName,
    key: ObjectKey,
) -> Result<ObjectInfo, Failure> {
    let store = shared.store.clone();
    let resolved = tokio::task::spawn_blocking(move || {
        store
            .resolve(&bucket, &key)
            .map(|r| info_of(&bucket, &key, &r))
    })
    .await
    .map_err(|e| Failure::Request(WireError::Internal(e.to_string())))??;
    Ok(resolved)
}

struct Upload {
    content_type: Option<String>,
    metadata: std::collections::BTreeMap<String, String>,
    size: Option<u64>,
    derived_from: Vec<String>,
    job: Option<String>,
}

/// An upload's chunks: pinned while it runs, freed if it never commits.
struct UploadChunks {
    writer: Writer,
    pins: Vec<PinGuard>,
    written: Vec<ChunkId>,
    committed: bool,
}

impl Drop for UploadChunks {
    fn drop(&mut self) {
        self.pins.clear();
        if !self.committed {
            self.writer.release(std::mem::take(&mut self.written));
        }
    }
}

async fn put(
    shared: &Shared,
    recv: &mut quinn::RecvStream,
    bucket: &str,
    key: &str,
    upload: Upload,
) -> Result<Response, Failure> {
    let (bucket, key) = parse_path(bucket, key)?;
    let provenance = Provenance::parse(&upload.derived_from, upload.job.as_deref())
        .map_err(|e| Failure::Request(WireError::BadRequest(e)))?;
    let snap = snapshot(shared).await?;
    if !snap.alone() {
        return put_replicated(shared, recv, bucket, key, upload, provenance, snap).await;
    }
    let mut chunker = Chunker::new(shared.chunk_size);
    let mut manifest = ManifestBuilder::with_metadata(upload.content_type, upload.metadata);
    let mut chunks = UploadChunks {
        writer: shared.writer.clone(),
        pins: Vec::new(),
        written: Vec::new(),
        committed: false,
    };
    let mut pending: VecDeque<oneshot::Receiver<Result<u64, StoreError>>> = VecDeque::new();
    let mut new_bytes = 0u64;
    let mut buf = Vec::new();
    let too_much = |got: u64| {
        Failure::Request(WireError::BadRequest(format!(
            "the upload sent {got} bytes or more, more than the {} announced",
            upload.size.unwrap_or(0)
        )))
    };
    let queue = |data: Vec<u8>, manifest: &mut ManifestBuilder, chunks: &mut UploadChunks| {
        let id = manifest.push_chunk(&data);
        chunks.pins.push(shared.store.pin(id));
        chunks.written.push(id);
        (id, data)
    };
    loop {
        let frame = next_put_frame(recv, &mut buf).await?;
        match frame {
            PutFrame::Data(data) => {
                shared.metrics.bytes_received.inc_by(data.len() as u64);
                for chunk in chunker.push(data) {
                    let item = queue(chunk, &mut manifest, &mut chunks);
                    pending.push_back(shared.writer.queue_chunks(vec![item]).await?);
                    while pending.len() > UPLOAD_WRITES_IN_FLIGHT {
                        new_bytes += wait(pending.pop_front()).await?;
                    }
                }
                let received = manifest.size() + chunker.pending_len() as u64;
                if upload.size.is_some_and(|size| received > size) {
                    return Err(too_much(received));
                }
            }
            PutFrame::End => break,
        }
    }
    if let Some(last) = chunker.finish() {
        let item = queue(last, &mut manifest, &mut chunks);
        pending.push_back(shared.writer.queue_chunks(vec![item]).await?);
    }
    while !pending.is_empty() {
        new_bytes += wait(pending.pop_front()).await?;
    }
    let manifest = manifest.finish();
    if let Some(size) = upload.size
        && size != manifest.size
    {
        return Err(Failure::Request(WireError::BadRequest(format!(
            "the upload sent {} bytes but announced {size}; nothing was stored",
            manifest.size
        ))));
    }
    let chunk_count = manifest.chunks.len() as u64;
    let content_type = manifest.content_type.clone();
    let metadata = manifest.metadata.clone();
    let record = shared
        .writer
        .commit(
            bucket.clone(),
            key.clone(),
            manifest,
            crate::clock::unix_millis(),
        )
        .await?;
    chunks.committed = true;
    tracing::debug!(%bucket, %key, object = %record.object_id.short(), size = record.size, "stored");
    shared
        .provenance
        .stored(
            bucket.as_str(),
            key.as_str(),
            &record.object_id.to_string(),
            record.size,
            provenance,
        )
        .await;
    Ok(Response::Stored {
        info: ObjectInfo {
            bucket: bucket.to_string(),
            key: key.to_string(),
            object_id: record.object_id,
            size: record.size,
            chunks: chunk_count,
            content_type,
            metadata,
            modified_ms: record.modified_ms,
        },
        new_bytes,
    })
}

/// A put in a cluster: each chunk goes to its owners as it is cut (a few in
/// flight), then the manifest to its owners, then the name's register to its
/// owners; each step waits for W durable copies, so the name is written only
/// once everything it points at is.
#[allow(clippy::too_many_arguments)]
async fn put_replicated(
    shared: &Shared,
    recv: &mut quinn::RecvStream,
    bucket: BucketName,
    key: ObjectKey,
    upload: Upload,
    provenance: Provenance,
    snap: Snapshot,
) -> Result<Response, Failure> {
    let replication = &shared.replication;
    let mut chunker = Chunker::new(shared.chunk_size);
    let mut manifest = ManifestBuilder::with_metadata(upload.content_type, upload.metadata);
    let mut in_flight = FuturesUnordered::new();
    let mut new_bytes = 0u64;
    let mut buf = Vec::new();
    loop {
        let frame = next_put_frame(recv, &mut buf).await?;
        match frame {
            PutFrame::Data(data) => {
                shared.metrics.bytes_received.inc_by(data.len() as u64);
                for chunk in chunker.push(data) {
                    let id = manifest.push_chunk(&chunk);
                    in_flight.push(replication.put_chunk(&snap, id, chunk));
                    while in_flight.len() > UPLOAD_WRITES_IN_FLIGHT {
                        if let Some(added) = in_flight.next().await {
                            new_bytes += added?;
                        }
                    }
                }
                let received = manifest.size() + chunker.pending_len() as u64;
                if upload.size.is_some_and(|size| received > size) {
                    return Err(Failure::Request(WireError::BadRequest(format!(
                        "the upload sent {received} bytes or more, more than the {} announced",
                        upload.size.unwrap_or(0)
                    ))));
                }
            }
            PutFrame::End => break,
        }
    }
    if let Some(last) = chunker.finish() {
        let id = manifest.push_chunk(&last);
        in_flight.push(replication.put_chunk(&snap, id, last));
    }
    while let Some(added) = in_flight.next().await {
        new_bytes += added?;
    }
    drop(in_flight);
    let manifest = manifest.finish();
    if let Some(size) = upload.size
        && size != manifest.size
    {
        return Err(Failure::Request(WireError::BadRequest(format!(
            "the upload sent {} bytes but announced {size}; nothing was stored",
            manifest.size
        ))));
    }
    replication.put_manifest(&snap, &manifest).await?;
    let object_id = manifest.object_id();
    let register = replication.register(NameValue::Object(object_id), manifest.size);
    replication
        .put_refs(&snap, &bucket, &key, &register.entry.stamp, &manifest)
        .await?;
    let register = replication.put_name(&snap, &bucket, &key, register).await?;
    tracing::debug!(%bucket, %key, object = %object_id.short(), size = manifest.size, "stored on the owners");
    shared
        .provenance
        .stored(
            bucket.as_str(),
            key.as_str(),
            &object_id.to_string(),
            manifest.size,
            provenance,
        )
        .await;
    Ok(Response::Stored {
        info: replicated_info(&bucket, &key, &register, &manifest),
        new_bytes,
    })
}

async fn wait(rx: Option<oneshot::Receiver<Result<u64, StoreError>>>) -> Result<u64, Failure> {
    match rx {
        Some(rx) => Ok(rx.await.map_err(|_| StoreError::Closed)??),
        None => Ok(0),
    }
}

async fn get(
    shared: &Shared,
    send: &mut quinn::SendStream,
    bucket: &str,
    key: &str,
) -> Result<Response, Failure> {
    let (bucket, key) = parse_path(bucket, key)?;
    let snap = snapshot(shared).await?;
    if !snap.alone() {
        match shared.replication.resolve(&snap, &bucket, &key).await {
            Ok((register, manifest)) => {
                let info = replicated_info(&bucket, &key, &register, &manifest);
                return get_replicated(shared, send, info, manifest.chunks, snap).await;
            }
            Err(ReplicationError::NotFound(_)) => {} // maybe stored while alone
            Err(e) => return Err(e.into()),
        }
    }
    let store = shared.store.clone();
    let resolved = tokio::task::spawn_blocking(move || {
        store
            .resolve(&bucket, &key)
            .map(|r| (info_of(&bucket, &key, &r), r.manifest.chunks))
    })
    .await
    .map_err(|e| Failure::Request(WireError::Internal(e.to_string())))?;
    let (info, ids) = resolved?;
    let mut buf = Vec::new();
    write_frame(send, &Response::Object(info.clone()), &mut buf).await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(DOWNLOAD_READ_AHEAD);
    let store = shared.store.clone();
    tokio::task::spawn_blocking(move || {
        store.read_chunks(&ids, |chunk| tx.blocking_send(chunk).is_ok())
    });
    let mut last = GetFrame::End;
    let mut failure = None;
    while let Some(chunk) = rx.recv().await {
        match chunk {
            Ok((id, data)) => {
                write_frame(send, &GetFrame::Chunk { id, data: &data }, &mut buf).await?;
                shared.metrics.bytes_sent.inc_by(data.len() as u64);
            }
            Err(e) => {
                if let StoreError::Corrupt(chunk) = &e {
                    tracing::error!(%chunk, bucket = %info.bucket, key = %info.key, "corrupt chunk: not served");
                }
                let Failure::Request(wire_error) = Failure::from(e) else {
                    unreachable!()
                };
                failure = Some(error_label(&wire_error));
                last = GetFrame::Error(wire_error);
                break;
            }
        }
    }
    if let Some(label) = failure {
        shared.metrics.error("get", label);
    }
    write_frame(send, &last, &mut buf).await?;
    Ok(Response::Object(info))
}

/// Streams a replicated object's chunks, each read from the nearest replica
/// that has it right (a few ahead of the network).
async fn get_replicated(
    shared: &Shared,
    send: &mut quinn::SendStream,
    info: ObjectInfo,
    ids: Vec<ChunkId>,
    snap: Snapshot,
) -> Result<Response, Failure> {
    let mut buf = Vec::new();
    write_frame(send, &Response::Object(info.clone()), &mut buf).await?;
    let replication = &shared.replication;
    let snap = &snap;
    let mut chunks = futures::stream::iter(ids)
        .map(|id| async move { (id, replication.chunk(snap, id).await) })
        .buffered(DOWNLOAD_READ_AHEAD);
    let mut last = GetFrame::End;
    while let Some((id, chunk)) = chunks.next().await {
        match chunk {
            Ok(data) => {
                write_frame(send, &GetFrame::Chunk { id, data: &data }, &mut buf).await?;
                shared.metrics.bytes_sent.inc_by(data.len() as u64);
            }
            Err(e) => {
                tracing::error!(chunk = %id, bucket = %info.bucket, key = %info.key, error = %e, "chunk unavailable: download stopped");
                let wire_error = match Failure::from(e) {
                    Failure::Request(w) => w,
                    _ => WireError::Internal(format!("chunk {id} unavailable")),
                };
                shared.metrics.error("get", error_label(&wire_error));
                last = GetFrame::Error(wire_error);
                break;
            }
        }
    }
    write_frame(send, &last, &mut buf).await?;
    Ok(Response::Object(info))
}

async fn list(
    shared: &Shared,
    bucket: &str,
    prefix: String,
    start_after: Option<String>,
    limit: u32,
) -> Result<Response, Failure> {
    let bucket = BucketName::parse(bucket)?;
    ObjectKey::check_prefix(&prefix)?;
    let limit = limit.clamp(1, MAX_LIST_PAGE) as usize;
    let snap = snapshot(shared).await?;
    if !snap.alone() {
        let (rows, next) = shared
            .replication
            .list(&snap, &bucket, &prefix, start_after, limit as u32)
            .await;
        let entries = rows
            .into_iter()
            .filter_map(|(key, r)| {
                Some(ListEntry {
                    key,
                    object_id: r.entry.object()?,
                    size: r.size,
                    modified_ms: r.modified_ms,
                })
            })
            .collect();
        return Ok(Response::Listing { entries, next });
    }
    let store = shared.store.clone();
    let (rows, next) = tokio::task::spawn_blocking(move || {
        store.list(&bucket, &prefix, start_after.as_deref(), limit)
    })
    .await
    .map_err(|e| Failure::Request(WireError::Internal(e.to_string())))??;
    let entries = rows
        .into_iter()
        .map(|(key, r)| ListEntry {
            key,
            object_id: r.object_id,
            size: r.size,
            modified_ms: r.modified_ms,
        })
        .collect();
    Ok(Response::Listing { entries, next })
}

async fn member_rows(shared: &Shared) -> Vec<MemberRow> {
    shared
        .p2p
        .members()
        .await
        .into_iter()
        .map(|(m, ago)| MemberRow {
            node_id: m.id.node.to_string(),
            generation: m.id.generation,
            state: m.state,
            incarnation: m.incarnation,
            last_heard_ms_ago: ago.map(|d| d.as_millis() as u64),
            zone: m.meta.as_ref().map(|x| x.zone.clone()),
            capacity: m.meta.as_ref().map(|x| x.capacity),
            version: m.meta.as_ref().map(|x| x.version.clone()),
            p2p_addrs: m
                .meta
                .as_ref()
                .map(|x| x.p2p_addrs.clone())
                .unwrap_or_default(),
            client_addr: m.meta.and_then(|x| x.client_addr),
        })
        .collect()
}
