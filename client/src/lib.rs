//! The Stemma client: store and read objects on a Stemma node over QUIC.
//!
//! Connect with the node's connection string (from its `node.json`, or printed by
//! `stemma dev`), then put, get, head, list and delete. Uploads and downloads
//! stream: an object is never held in memory whole. Every chunk received is
//! checked against its BLAKE3 hash, and the whole object against its id.
//!
//! ```
//! use stemma_client::{Client, ObjectPath, PutOptions};
//!
//! # #[tokio::main(flavor = "multi_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let node = stemma_node::Node::start(stemma_node::NodeConfig {
//! #     data_dir: dir.path().into(),
//! #     listen: "127.0.0.1:0".parse()?,
//! #     http: "127.0.0.1:0".parse()?,
//! #     p2p_listen: "/ip4/127.0.0.1/udp/0/quic-v1".into(),
//! #     mdns: false,
//! #     ..Default::default()
//! # }).await?;
//! # let connection_string = node.info().connection.clone();
//! // The connection string comes from the node's node.json (or `stemma dev`).
//! let client = Client::connect(&connection_string).await?;
//! let path = ObjectPath::parse("reports/2024/q1.csv")?;
//!
//! let data: &[u8] = b"region,total\nnorth,42\n";
//! let stored = client.put(&path, data, PutOptions::default(), |_sent| {}).await?;
//! println!("stored {path} as {}", stored.info.object_id);
//!
//! let mut back = Vec::new();
//! client.get(&path, &mut back, |_received| {}).await?;
//! assert_eq!(back, data);
//!
//! let listed = client.list(&path.bucket, "2024/").await?;
//! assert_eq!(listed[0].key, "2024/q1.csv");
//!
//! client.delete(&path).await?;
//! client.close().await;
//! # node.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod connection_string;
mod error;
mod lineage;
pub mod tls;
pub mod transport;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use stemma_protocol::ManifestBuilder;
use stemma_protocol::wire::{
    self, GetFrame, Hello, HelloReply, PROTOCOL_VERSION, PutFrame, Request, Response,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub use connection_string::ConnectionString;
pub use error::Error;
pub use stemma_protocol::membership::MemberState;
pub use stemma_protocol::wire::{ListEntry, MemberRow, NodeStatus, ObjectInfo, StatusReport};
pub use stemma_protocol::{BucketName, ChunkId, NameError, ObjectId, ObjectKey, ObjectPath};

use transport::{expect_frame, read_frame, write_frame};

/// How long to wait for a node to answer the connection attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes read from the input per data frame on upload.
const UPLOAD_PIECE: usize = 1024 * 1024;

/// Options of a put.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// MIME type to record.
    pub content_type: Option<String>,
    /// User metadata to record.
    pub metadata: BTreeMap<String, String>,
    /// The size, if known: the node rejects the upload if the data differs.
    pub size: Option<u64>,
    /// The objects this one was derived from: the node records the lineage
    /// edges (`object:SOURCE → object:THIS`).
    pub derived_from: Vec<ObjectPath>,
    /// The job that produced it (`NAME` or `job:NAME`), recorded with it.
    pub job: Option<String>,
}

/// The result of a put.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The object as stored.
    pub info: ObjectInfo,
    /// Chunk bytes the put added to the node's store; 0 when every chunk was
    /// already there (deduplication).
    pub new_bytes: u64,
}

/// A connection to one node. Cheap to share: calls may run concurrently, each on
/// its own QUIC stream.
#[derive(Debug, Clone)]
pub struct Client {
    connection: quinn::Connection,
    endpoint: quinn::Endpoint,
    node_id: String,
}

impl Client {
    /// Connects and authenticates with a connection string.
    pub async fn connect(connection_string: &str) -> Result<Self, Error> {
        Self::connect_to(&connection_string.parse()?).await
    }

    /// Connects and authenticates with a parsed connection string.
    pub async fn connect_to(target: &ConnectionString) -> Result<Self, Error> {
        let unreachable = |reason: String| Error::Unreachable {
            address: target.address.clone(),
            reason,
        };
        let address: SocketAddr = tokio::net::lookup_host(&target.address)
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .next()
            .ok_or_else(|| unreachable("the name resolves to no address".into()))?;
        let tls = tls::client_config(target.pin, wire::ALPN)
            .map_err(|e| Error::Protocol(format!("TLS setup failed: {e}")))?;
        let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
            .map_err(|e| Error::Protocol(format!("TLS setup failed: {e}")))?;
        let mut config = quinn::ClientConfig::new(std::sync::Arc::new(quic));
        config.transport_config(transport::transport_config());
        let bind: SocketAddr = if address.is_ipv6() {
            "[::]:0".parse().expect("valid address")
        } else {
            "0.0.0.0:0".parse().expect("valid address")
        };
        let mut endpoint = quinn::Endpoint::client(bind).map_err(Error::Io)?;
        endpoint.set_default_client_config(config);
        let connecting = endpoint
            .connect(address, "stemma")
            .map_err(|e| unreachable(e.to_string()))?;
        let connection = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| unreachable(format!("no answer within {CONNECT_TIMEOUT:?}")))?
            .map_err(|e| unreachable(e.to_string()))?;
        let node_id = handshake(&connection, &target.token).await?;
        Ok(Self {
            connection,
            endpoint,
            node_id,
        })
    }

    /// The id of the node this client talks to.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Stores everything `reader` yields under `path`, streaming. `progress` is
    /// called with the number of bytes sent so far. The object is visible only once
    /// this returns `Ok`; an interrupted put leaves nothing behind.
    pub async fn put<R, P>(
        &self,
        path: &ObjectPath,
        mut reader: R,
        options: PutOptions,
        mut progress: P,
    ) -> Result<Stored, Error>
    where
        R: AsyncRead + Unpin,
        P: FnMut(u64),
    {
        let (mut send, mut recv) = self.open().await?;
        let mut frame = Vec::new();
        let request = Request::Put {
            bucket: path.bucket.to_string(),
            key: path.key.to_string(),
            content_type: options.content_type,
            metadata: options.metadata,
            size: options.size,
            derived_from: options
                .derived_from
                .iter()
                .map(ToString::to_string)
                .collect(),
            job: options.job,
        };
        write_frame(&mut send, &request, &mut frame).await?;
        let mut piece = vec![0u8; UPLOAD_PIECE];
        let mut sent = 0u64;
        loop {
            let n = fill(&mut reader, &mut piece).await?;
            if n == 0 {
                break;
            }
            if let Err(e) = write_frame(&mut send, &PutFrame::Data(&piece[..n]), &mut frame).await {
                // The node may have answered with an error and stopped reading.
                return Err(early_answer(&mut recv).await.unwrap_or(e.into()));
            }
            sent += n as u64;
            progress(sent);
        }
        if let Err(e) = write_frame(&mut send, &PutFrame::End, &mut frame).await {
            // Likewise: the last data may already have been refused.
            return Err(early_answer(&mut recv).await.unwrap_or(e.into()));
        }
        let _ = send.finish();
        let mut buf = Vec::new();
        match expect_frame::<Response>(&mut recv, &mut buf).await? {
            Response::Stored { info, new_bytes } => Ok(Stored { info, new_bytes }),
            other => Err(unexpected(other)),
        }
    }

    /// Writes the object at `path` into `writer`, streaming, verifying every chunk
    /// and finally the object id. `progress` gets the bytes received so far. On
    /// error, `writer` may hold a verified prefix of the object, never a bad byte.
    pub async fn get<W, P>(
        &self,
        path: &ObjectPath,
        mut writer: W,
        mut progress: P,
    ) -> Result<ObjectInfo, Error>
    where
        W: AsyncWrite + Unpin,
        P: FnMut(u64),
    {
        let (mut send, mut recv) = self.open().await?;
        let mut buf = Vec::new();
        let request = Request::Get {
            bucket: path.bucket.to_string(),
            key: path.key.to_string(),
        };
        write_frame(&mut send, &request, &mut buf).await?;
        let _ = send.finish();
        let info = match expect_frame::<Response>(&mut recv, &mut buf).await? {
            Response::Object(info) => info,
            other => return Err(unexpected(other)),
        };
        let mut manifest =
            ManifestBuilder::with_metadata(info.content_type.clone(), info.metadata.clone());
        loop {
            match expect_frame::<GetFrame<'_>>(&mut recv, &mut buf).await? {
                GetFrame::Chunk { id, data } => {
                    if !id.matches(data) {
                        return Err(Error::Corrupt { chunk: id });
                    }
                    manifest.push_id(id, data.len());
                    writer.write_all(data).await?;
                    progress(manifest.size());
                }
                GetFrame::End => break,
                GetFrame::Error(e) => return Err(e.into()),
            }
        }
        writer.flush().await?;
        let manifest = manifest.finish();
        if manifest.size != info.size || manifest.object_id() != info.object_id {
            return Err(Error::Protocol(format!(
                "the chunks received do not make object {} (got {} bytes, expected {})",
                info.object_id, manifest.size, info.size
            )));
        }
        Ok(info)
    }

    /// Describes the object at `path`.
    pub async fn head(&self, path: &ObjectPath) -> Result<ObjectInfo, Error> {
        let request = Request::Head {
            bucket: path.bucket.to_string(),
            key: path.key.to_string(),
        };
        match self.call(&request).await? {
            Response::Object(info) => Ok(info),
            other => Err(unexpected(other)),
        }
    }

    /// One page of the keys of `bucket` starting with `prefix`, after `start_after`.
    /// Returns the entries and the key to continue after, if there are more.
    pub async fn list_page(
        &self,
        bucket: &BucketName,
        prefix: &str,
        start_after: Option<String>,
        limit: u32,
    ) -> Result<(Vec<ListEntry>, Option<String>), Error> {
        ObjectKey::check_prefix(prefix)?;
        let request = Request::List {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            start_after,
            limit,
        };
        match self.call(&request).await? {
            Response::Listing { entries, next } => Ok((entries, next)),
            other => Err(unexpected(other)),
        }
    }

    /// All keys of `bucket` starting with `prefix`, in key order (fetched page by
    /// page).
    pub async fn list(&self, bucket: &BucketName, prefix: &str) -> Result<Vec<ListEntry>, Error> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let (entries, next) = self
                .list_page(bucket, prefix, after, wire::MAX_LIST_PAGE)
                .await?;
            all.extend(entries);
            match next {
                Some(key) => after = Some(key),
                None => return Ok(all),
            }
        }
    }

    /// Removes the name `path`. Chunks no other object uses are freed.
    pub async fn delete(&self, path: &ObjectPath) -> Result<(), Error> {
        let request = Request::Delete {
            bucket: path.bucket.to_string(),
            key: path.key.to_string(),
        };
        match self.call(&request).await? {
            Response::Deleted => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// The cluster's members as the node sees them, the node itself first.
    pub async fn members(&self) -> Result<Vec<MemberRow>, Error> {
        match self.call(&Request::Members).await? {
            Response::Members(rows) => Ok(rows),
            other => Err(unexpected(other)),
        }
    }

    /// The node's view of placement and repair, with what every node of its
    /// layout stores.
    pub async fn status(&self) -> Result<StatusReport, Error> {
        match self.call(&Request::Status).await? {
            Response::Status(report) => Ok(report),
            other => Err(unexpected(other)),
        }
    }

    /// Closes the connection politely and waits until the node has been told.
    pub async fn close(self) {
        self.connection.close(wire::close_code::DONE.into(), b"bye");
        self.endpoint.wait_idle().await;
    }

    async fn open(&self) -> Result<(quinn::SendStream, quinn::RecvStream), Error> {
        self.connection
            .open_bi()
            .await
            .map_err(|e| Error::Connection(e.to_string()))
    }

    async fn call(&self, request: &Request) -> Result<Response, Error> {
        let (mut send, mut recv) = self.open().await?;
        let mut buf = Vec::new();
        write_frame(&mut send, request, &mut buf).await?;
        let _ = send.finish();
        Ok(expect_frame::<Response>(&mut recv, &mut buf).await?)
    }
}

async fn handshake(connection: &quinn::Connection, token: &str) -> Result<String, Error> {
    let (mut send, mut recv) = connection
        .open_bi()
        .await
        .map_err(|e| Error::Connection(e.to_string()))?;
    let mut buf = Vec::new();
    let hello = Hello {
        version: PROTOCOL_VERSION,
        token: token.to_string(),
    };
    write_frame(&mut send, &hello, &mut buf).await?;
    let _ = send.finish();
    match expect_frame::<HelloReply>(&mut recv, &mut buf).await? {
        HelloReply::Welcome { node_id, .. } => Ok(node_id),
        HelloReply::Rejected(e) => Err(e.into()),
    }
}

/// After a failed upload write: the node's error answer, if it sent one.
async fn early_answer(recv: &mut quinn::RecvStream) -> Option<Error> {
    let mut buf = Vec::new();
    match tokio::time::timeout(Duration::from_secs(2), read_frame(recv, &mut buf)).await {
        Ok(Ok(Some(payload))) => match wire::decode::<Response>(payload) {
            Ok(Response::Error(e)) => Some(e.into()),
            _ => None,
        },
        _ => None,
    }
}

fn unexpected(response: Response) -> Error {
    match response {
        Response::Error(e) => e.into(),
        other => Error::Protocol(format!("unexpected answer from the node: {other:?}")),
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
async fn fill<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]).await? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
