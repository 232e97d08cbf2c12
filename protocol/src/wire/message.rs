//! The messages of protocol version 1. Field order is part of the format: add
//! variants at the end, never reorder.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::membership::MemberState;
use crate::{ChunkId, ObjectId};

/// The client's first frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The client's [`PROTOCOL_VERSION`](super::PROTOCOL_VERSION).
    pub version: u16,
    /// The node's access token, from its connection string.
    pub token: String,
}

/// The node's answer to [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    /// Accepted: requests may follow.
    Welcome {
        /// The node's protocol version.
        version: u16,
        /// The node's id.
        node_id: String,
    },
    /// Refused; the connection closes.
    Rejected(WireError),
}

/// A request, the first frame of each request stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Store an object; [`PutFrame`]s follow.
    Put {
        /// Bucket name.
        bucket: String,
        /// Key.
        key: String,
        /// MIME type, if known.
        content_type: Option<String>,
        /// User metadata.
        metadata: BTreeMap<String, String>,
        /// The size, if known in advance; the node checks it.
        size: Option<u64>,
        /// Objects (`bucket/key`) this one was derived from: recorded as
        /// lineage edges.
        derived_from: Vec<String>,
        /// The job that produced it (`NAME` or `job:NAME`), recorded with it.
        job: Option<String>,
    },
    /// Read an object: a [`Response::Object`] then [`GetFrame`]s.
    Get {
        /// Bucket name.
        bucket: String,
        /// Key.
        key: String,
    },
    /// An object's description.
    Head {
        /// Bucket name.
        bucket: String,
        /// Key.
        key: String,
    },
    /// A page of the keys in a bucket that start with a prefix, in key order.
    List {
        /// Bucket name.
        bucket: String,
        /// Key prefix; empty for all.
        prefix: String,
        /// Continue after this key (from the previous page).
        start_after: Option<String>,
        /// At most this many entries (capped at [`MAX_LIST_PAGE`](super::MAX_LIST_PAGE)).
        limit: u32,
    },
    /// Remove a name. Chunks no other object uses are freed.
    Delete {
        /// Bucket name.
        bucket: String,
        /// Key.
        key: String,
    },
    /// The cluster's members as this node sees them.
    Members,
    /// An operation or query on a lineage graph.
    Lineage {
        /// The graph's namespace (`default` unless named).
        namespace: String,
        /// A [`crate::lineage::LineageRequest`] as JSON (its serde layout is
        /// JSON-only: internally tagged).
        request: Vec<u8>,
    },
    /// The node's view of placement and replication, and what each live
    /// node stores.
    Status,
}

/// The body of a put, after its [`Request::Put`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PutFrame<'a> {
    /// The next bytes of the object (any length up to the frame limit).
    Data(#[serde(borrow, with = "serde_bytes")] &'a [u8]),
    /// The object is complete: store it.
    End,
}

/// The body of a get, after its [`Response::Object`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GetFrame<'a> {
    /// The next chunk, verified by the node; the client verifies it again.
    Chunk {
        /// Its id.
        id: ChunkId,
        /// Its bytes.
        #[serde(borrow, with = "serde_bytes")]
        data: &'a [u8],
    },
    /// All chunks were sent.
    End,
    /// Reading stopped: nothing more follows.
    Error(WireError),
}

/// The node's answer to a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The put is stored (durably, unless the node says otherwise in its config).
    Stored {
        /// The object as stored.
        info: ObjectInfo,
        /// Chunk bytes this put added to the store (0 when all were already there).
        new_bytes: u64,
    },
    /// The object: the answer to head, and the header of a get.
    Object(ObjectInfo),
    /// A page of a listing.
    Listing {
        /// The entries, in key order.
        entries: Vec<ListEntry>,
        /// Pass as `start_after` to continue; `None` at the end.
        next: Option<String>,
    },
    /// The name was removed.
    Deleted,
    /// The request failed; nothing changed.
    Error(WireError),
    /// The answer to [`Request::Members`]: this node first.
    Members(Vec<MemberRow>),
    /// The answer to [`Request::Lineage`], as JSON: the same body the HTTP API
    /// returns for that request.
    Lineage(Vec<u8>),
    /// The answer to [`Request::Status`].
    Status(StatusReport),
}

/// A node's view of the cluster's placement and repair, as `stemma status`
/// shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The node that answered.
    pub node_id: String,
    /// Nodes in its layout (itself and the alive members whose zone it knows).
    pub nodes: u32,
    /// Partitions of the key space.
    pub partitions: u32,
    /// Copies of each partition in this layout (RF, or fewer with fewer nodes).
    pub replication: u32,
    /// Durable copies a put waits for in this layout.
    pub write_quorum: u32,
    /// How many times its layout changed since it started (the layout's version
    /// as this node counts it).
    pub layout_changes: u64,
    /// Partitions whose copies differed from a peer's in its last anti-entropy
    /// round: repairs and moves in progress (0 when everything is in place).
    pub partitions_out_of_sync: u64,
    /// Items it copied to other nodes by anti-entropy since it started.
    pub repairs: u64,
    /// Every node of the layout, this one first.
    pub per_node: Vec<NodeStatus>,
}

/// One node of a [`StatusReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Node id.
    pub node_id: String,
    /// Zone.
    pub zone: String,
    /// Partition replicas the layout gives it.
    pub replicas: u32,
    /// What its store holds, if it answered: (objects, chunks, chunk bytes).
    pub stored: Option<(u64, u64, u64)>,
}

/// One member as a node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRow {
    /// Node id (libp2p PeerId).
    pub node_id: String,
    /// Restart generation.
    pub generation: u32,
    /// alive, suspect, dead or left.
    pub state: MemberState,
    /// `generation × 65536 + SWIM incarnation`.
    pub incarnation: u64,
    /// Milliseconds since the node last heard from it; `None` for itself or never.
    pub last_heard_ms_ago: Option<u64>,
    /// Zone (site), if known.
    pub zone: Option<String>,
    /// Capacity weight, if known.
    pub capacity: Option<u64>,
    /// Software version, if known.
    pub version: Option<String>,
    /// Peer-to-peer multiaddrs, if known.
    pub p2p_addrs: Vec<String>,
    /// Client endpoint, if known.
    pub client_addr: Option<String>,
}

/// What a name points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    /// Bucket name.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// The object's id (BLAKE3 of its manifest).
    pub object_id: ObjectId,
    /// Size in bytes.
    pub size: u64,
    /// Number of chunks.
    pub chunks: u64,
    /// MIME type, if given.
    pub content_type: Option<String>,
    /// User metadata.
    pub metadata: BTreeMap<String, String>,
    /// When the name was written, in milliseconds since the Unix epoch.
    pub modified_ms: u64,
}

/// One row of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEntry {
    /// Key.
    pub key: String,
    /// The object's id.
    pub object_id: ObjectId,
    /// Size in bytes.
    pub size: u64,
    /// When the name was written, in milliseconds since the Unix epoch.
    pub modified_ms: u64,
}

/// Why a request failed, as the node reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// No such object.
    #[error("not found: {0}")]
    NotFound(String),
    /// The token was missing or wrong.
    #[error(
        "unauthorized: the access token is wrong (take the connection string from the node's node.json)"
    )]
    Unauthorized,
    /// The protocol versions differ.
    #[error("protocol version mismatch: this client speaks {client}, the node speaks {node}")]
    VersionMismatch {
        /// The client's version.
        client: u16,
        /// The node's version.
        node: u16,
    },
    /// A stored chunk no longer matches its hash. It was not sent.
    #[error("corrupt chunk {chunk} in the node's store (the bytes no longer match their hash)")]
    Corrupt {
        /// The chunk.
        chunk: ChunkId,
    },
    /// A bucket or key breaks a naming rule.
    #[error("{0}")]
    InvalidName(String),
    /// The request is not valid (e.g. the data did not match the announced size).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The node is stopping; retry on another node or later.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// The node failed; the message says where.
    #[error("node error: {0}")]
    Internal(String),
}
