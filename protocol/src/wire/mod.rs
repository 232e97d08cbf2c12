//! The client wire protocol, version 1.
//!
//! A client opens a QUIC connection (TLS 1.3, ALPN [`ALPN`]) and then:
//!
//! 1. **Handshake** — on the first bidirectional stream the client sends a
//!    [`Hello`] frame (protocol version and access token); the node answers with a
//!    [`HelloReply`]. A wrong token or version closes the connection.
//! 2. **Requests** — each request gets a new bidirectional stream. The client sends
//!    a [`Request`] frame; a put then sends [`PutFrame::Data`] frames and ends with
//!    [`PutFrame::End`]. The node answers with a [`Response`] frame; a get's
//!    response is followed by [`GetFrame`]s, each chunk with its id so the client
//!    verifies every byte it receives.
//!
//! Every message is one frame: a 4-byte little-endian length, then that many bytes
//! of postcard. No frame is longer than [`MAX_FRAME_LEN`]; a longer length prefix
//! is rejected before anything is allocated. An upload that stops before
//! [`PutFrame::End`] is never stored.

mod frame;
mod message;

pub use frame::{FRAME_HEADER_LEN, FrameError, MAX_FRAME_LEN, decode, decode_len, encode};
pub use message::{
    GetFrame, Hello, HelloReply, ListEntry, MemberRow, NodeStatus, ObjectInfo, PutFrame, Request,
    Response, StatusReport, WireError,
};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// The TLS application protocol name.
pub const ALPN: &[u8] = b"stemma/1";

/// The most entries one listing page carries.
pub const MAX_LIST_PAGE: u32 = 1000;

/// QUIC application error codes used when closing a connection.
pub mod close_code {
    /// Normal close.
    pub const DONE: u32 = 0;
    /// A malformed, truncated or oversized frame.
    pub const PROTOCOL: u32 = 1;
    /// The token was wrong.
    pub const UNAUTHORIZED: u32 = 2;
    /// The protocol versions differ.
    pub const VERSION_MISMATCH: u32 = 3;
    /// The node is shutting down.
    pub const SHUTTING_DOWN: u32 = 4;
}
