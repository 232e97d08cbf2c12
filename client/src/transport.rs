//! Frames over QUIC streams, and the QUIC settings both ends use. Shared by the
//! client and the node so that both speak exactly the same framing.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use stemma_protocol::wire::{self, FRAME_HEADER_LEN, FrameError};

/// A stream that could not carry a frame.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The bytes were not a valid frame.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame (truncated)")]
    Truncated,
    /// The stream or connection failed.
    #[error("{0}")]
    Connection(String),
}

/// Writes `msg` as one frame, reusing `buf`.
pub async fn write_frame<T: Serialize + ?Sized>(
    send: &mut quinn::SendStream,
    msg: &T,
    buf: &mut Vec<u8>,
) -> Result<(), StreamError> {
    buf.clear();
    wire::encode(msg, buf)?;
    send.write_all(buf)
        .await
        .map_err(|e| StreamError::Connection(e.to_string()))
}

/// Reads one frame's payload into `buf`; `Ok(None)` if the stream ended cleanly
/// before a new frame began. Never allocates more than the frame limit.
pub async fn read_frame<'b>(
    recv: &mut quinn::RecvStream,
    buf: &'b mut Vec<u8>,
) -> Result<Option<&'b [u8]>, StreamError> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    match recv.read_exact(&mut header).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(quinn::ReadExactError::FinishedEarly(_)) => return Err(StreamError::Truncated),
        Err(quinn::ReadExactError::ReadError(e)) => {
            return Err(StreamError::Connection(e.to_string()));
        }
    }
    let len = wire::decode_len(header)?;
    buf.resize(len, 0);
    match recv.read_exact(buf).await {
        Ok(()) => Ok(Some(&buf[..])),
        Err(quinn::ReadExactError::FinishedEarly(_)) => Err(StreamError::Truncated),
        Err(quinn::ReadExactError::ReadError(e)) => Err(StreamError::Connection(e.to_string())),
    }
}

/// Reads one frame that must be there, decoded as `T`.
pub async fn expect_frame<'b, T: serde::Deserialize<'b>>(
    recv: &mut quinn::RecvStream,
    buf: &'b mut Vec<u8>,
) -> Result<T, StreamError> {
    match read_frame(recv, buf).await? {
        Some(payload) => Ok(wire::decode(payload)?),
        None => Err(StreamError::Truncated),
    }
}

/// QUIC settings for bulk transfer on fast links: windows large enough to keep a
/// loopback or LAN path full, an idle timeout that notices a dead peer.
pub fn transport_config() -> Arc<quinn::TransportConfig> {
    let mut config = quinn::TransportConfig::default();
    config
        .stream_receive_window(quinn::VarInt::from_u32(16 * 1024 * 1024))
        .receive_window(quinn::VarInt::from_u32(64 * 1024 * 1024))
        .send_window(64 * 1024 * 1024)
        .max_concurrent_bidi_streams(quinn::VarInt::from_u32(256))
        .max_concurrent_uni_streams(quinn::VarInt::from_u32(0))
        .keep_alive_interval(Some(Duration::from_secs(5)))
        .max_idle_timeout(Some(
            Duration::from_secs(30)
                .try_into()
                .expect("30 s is a valid idle timeout"),
        ));
    Arc::new(config)
}
