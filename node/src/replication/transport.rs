//! The replica protocol on libp2p streams (`/stemma/replica/1`): one stream per
//! request, one length-prefixed postcard frame each way (the client
//! protocol's framing and limit, so a full chunk fits in one frame). A length
//! over the limit is refused before anything is allocated.

use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::{PeerId, StreamProtocol};
use libp2p_stream::Control;
use serde::Serialize;
use serde::de::DeserializeOwned;
use stemma_protocol::replication::ReplicaResponse;
use stemma_protocol::wire::{self, FRAME_HEADER_LEN};

/// The replica protocol's name; the version is part of it.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/stemma/replica/1");

/// How long one request may take, from opening the stream to the answer.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a call to a replica failed. Nothing is known about what the replica did.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No stream could be opened (not connected, protocol not supported).
    #[error("cannot open a replica stream to {peer}: {message}")]
    Open {
        /// The peer.
        peer: PeerId,
        /// libp2p's message.
        message: String,
    },
    /// The stream failed or carried a malformed frame.
    #[error("replica stream with {peer} failed: {source}")]
    Io {
        /// The peer.
        peer: PeerId,
        /// What went wrong.
        source: std::io::Error,
    },
    /// No answer within [`CALL_TIMEOUT`].
    #[error("replica {peer} did not answer within {CALL_TIMEOUT:?}")]
    Timeout {
        /// The peer.
        peer: PeerId,
    },
}

fn invalid(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}

/// A message encoded once, to be sent to any number of replicas: a chunk
/// written to two owners is encoded (and copied) once, not once per owner.
#[derive(Debug, Clone)]
pub struct Frame(Arc<Vec<u8>>);

impl Frame {
    /// Encodes `msg`; a message over the frame limit is an error.
    pub fn encode<T: Serialize>(msg: &T) -> std::io::Result<Frame> {
        let mut buf = Vec::new();
        wire::encode(msg, &mut buf).map_err(invalid)?;
        Ok(Frame(Arc::new(buf)))
    }

    async fn write<S: AsyncWrite + Unpin>(&self, stream: &mut S) -> std::io::Result<()> {
        stream.write_all(&self.0).await?;
        stream.flush().await
    }
}

/// Writes `msg` as one frame.
pub async fn write_message<S: AsyncWrite + Unpin, T: Serialize>(
    stream: &mut S,
    msg: &T,
) -> std::io::Result<()> {
    Frame::encode(msg)?.write(stream).await
}

/// Reads one frame as a `T`; a length over the limit is refused before the
/// payload is allocated, and an undecodable payload is an error, never a panic.
pub async fn read_message<S: AsyncRead + Unpin, T: DeserializeOwned>(
    stream: &mut S,
) -> std::io::Result<T> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    stream.read_exact(&mut header).await?;
    let len = wire::decode_len(header).map_err(invalid)?;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await?;
    wire::decode(&payload).map_err(invalid)
}

/// Attempts at a call whose stream the peer dropped unanswered.
const ATTEMPTS: u32 = 3;

/// Sends `request` (an encoded `ReplicaRequest`) to `peer` and waits for its
/// answer.
///
/// A stream the peer resets before answering is retried (twice, after 20 and
/// 40 ms): libp2p-stream hands inbound streams over through a channel of one
/// slot and drops a stream that arrives while the slot is taken, which
/// happens when several peers open streams at once. Every replica request is
/// idempotent (puts merge, reads read), so a retry is safe.
pub async fn call(
    control: &Control,
    peer: PeerId,
    request: &Frame,
) -> Result<ReplicaResponse, CallError> {
    let mut attempt = 1;
    loop {
        match call_once(control, peer, request).await {
            Err(CallError::Io { source, .. })
                if attempt < ATTEMPTS && source.kind() != std::io::ErrorKind::InvalidData =>
            {
                tracing::debug!(%peer, error = %source, attempt, "replica stream dropped; retrying");
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

async fn call_once(
    control: &Control,
    peer: PeerId,
    request: &Frame,
) -> Result<ReplicaResponse, CallError> {
    let mut control = control.clone();
    let exchange = async {
        let mut stream =
            control
                .open_stream(peer, PROTOCOL)
                .await
                .map_err(|e| CallError::Open {
                    peer,
                    message: e.to_string(),
                })?;
        let io = |source| CallError::Io { peer, source };
        request.write(&mut stream).await.map_err(io)?;
        let response = read_message(&mut stream).await.map_err(io)?;
        let _ = stream.close().await;
        Ok(response)
    };
    tokio::time::timeout(CALL_TIMEOUT, exchange)
        .await
        .map_err(|_| CallError::Timeout { peer })?
}

#[cfg(test)]
mod tests {
    use stemma_protocol::replication::ReplicaRequest;

    use super::*;

    #[tokio::test]
    async fn an_oversized_length_is_refused_before_allocating() {
        let mut bytes: &[u8] = &[0xff, 0xff, 0xff, 0x7f, 1, 2, 3];
        let err = read_message::<_, ReplicaRequest>(&mut bytes)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("limit"), "{err}");
    }

    #[tokio::test]
    async fn garbage_is_an_error_and_a_message_round_trips() {
        let mut bytes: &[u8] = &[3, 0, 0, 0, 0xff, 0xff, 0xff];
        assert!(read_message::<_, ReplicaRequest>(&mut bytes).await.is_err());
        let mut buf = futures::io::Cursor::new(Vec::new());
        let msg = ReplicaResponse::Stored { new_bytes: 7 };
        write_message(&mut buf, &msg).await.unwrap();
        let mut bytes: &[u8] = buf.get_ref();
        let back: ReplicaResponse = read_message(&mut bytes).await.unwrap();
        assert_eq!(back, msg);
    }
}
