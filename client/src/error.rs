//! Client errors, one variant per thing a caller may want to handle differently.

use stemma_protocol::wire::WireError;
use stemma_protocol::{ChunkId, NameError};

use crate::transport::StreamError;

/// Why a client call failed. Unless a variant says otherwise, nothing changed on
/// the node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection string is malformed.
    #[error("invalid connection string: {0}")]
    InvalidConnectionString(String),
    /// The node could not be reached.
    #[error(
        "cannot reach the node at {address}: {reason} (is it running? check --node or STEMMA_NODE)"
    )]
    Unreachable {
        /// The address tried.
        address: String,
        /// What went wrong.
        reason: String,
    },
    /// The node refused the access token.
    #[error(
        "unauthorized: the node refused the access token (take the connection string from the node's node.json)"
    )]
    Unauthorized,
    /// Client and node speak different protocol versions.
    #[error(
        "protocol version mismatch: this client speaks {client}, the node speaks {node}; use matching releases"
    )]
    VersionMismatch {
        /// The client's version.
        client: u16,
        /// The node's version.
        node: u16,
    },
    /// No such object.
    #[error("not found: {0}")]
    NotFound(String),
    /// A chunk's bytes do not match its hash, in the node's store or in transit.
    /// Bytes before it may have been written to the output; the corrupt ones were not.
    #[error("corrupt chunk {chunk}: its bytes do not match its hash; it was not returned")]
    Corrupt {
        /// The chunk.
        chunk: ChunkId,
    },
    /// A bucket or key breaks a naming rule.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// The node rejected the request (the message says why).
    #[error("rejected by the node: {0}")]
    Rejected(String),
    /// The node is shutting down; retry later or on another node.
    #[error("the node is shutting down; retry later")]
    ShuttingDown,
    /// The node failed while serving the request.
    #[error("the node failed: {0}")]
    Node(String),
    /// The node sent something this client does not understand.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The connection broke during the request. A put interrupted this way is not
    /// stored.
    #[error("connection lost: {0}")]
    Connection(String),
    /// Reading the input or writing the output failed (local I/O).
    #[error("local I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

impl From<WireError> for Error {
    fn from(e: WireError) -> Self {
        match e {
            WireError::NotFound(what) => Error::NotFound(what),
            WireError::Unauthorized => Error::Unauthorized,
            WireError::VersionMismatch { client, node } => Error::VersionMismatch { client, node },
            WireError::Corrupt { chunk } => Error::Corrupt { chunk },
            WireError::InvalidName(msg) | WireError::BadRequest(msg) => Error::Rejected(msg),
            WireError::ShuttingDown => Error::ShuttingDown,
            WireError::Internal(msg) => Error::Node(msg),
            other => Error::Protocol(format!("unknown error from the node: {other}")),
        }
    }
}

impl From<StreamError> for Error {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::Connection(msg) => Error::Connection(msg),
            other => Error::Protocol(other.to_string()),
        }
    }
}
