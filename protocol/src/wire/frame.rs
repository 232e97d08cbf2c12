//! Length-prefixed postcard frames with a hard size limit.

use serde::{Deserialize, Serialize};

/// Bytes in a frame header (the little-endian `u32` length).
pub const FRAME_HEADER_LEN: usize = 4;

/// The largest frame payload: a full 1 MiB chunk plus room for its envelope.
pub const MAX_FRAME_LEN: usize = 1024 * 1024 + 64 * 1024;

/// A frame that cannot be encoded or decoded. Nothing was consumed or allocated
/// beyond the frame limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix is over the limit.
    #[error("frame of {len} bytes is over the {MAX_FRAME_LEN}-byte limit")]
    TooLarge {
        /// The announced length.
        len: usize,
    },
    /// A zero length prefix: no message is empty.
    #[error("empty frame")]
    Empty,
    /// The payload is not a valid message of the expected type.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// Bytes left over after the message.
    #[error("malformed frame: {0} trailing bytes after the message")]
    Trailing(usize),
}

/// Appends `msg` as one frame to `out`.
pub fn encode<T: Serialize + ?Sized>(msg: &T, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    let mut out_buf = std::mem::take(out);
    out_buf =
        postcard::to_extend(msg, out_buf).map_err(|e| FrameError::Malformed(e.to_string()))?;
    *out = out_buf;
    let len = out.len() - start - FRAME_HEADER_LEN;
    if len > MAX_FRAME_LEN {
        out.truncate(start);
        return Err(FrameError::TooLarge { len });
    }
    out[start..start + FRAME_HEADER_LEN].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(())
}

/// The payload length announced by a frame header, checked against the limit.
pub fn decode_len(header: [u8; FRAME_HEADER_LEN]) -> Result<usize, FrameError> {
    let len = u32::from_le_bytes(header) as usize;
    match len {
        0 => Err(FrameError::Empty),
        len if len > MAX_FRAME_LEN => Err(FrameError::TooLarge { len }),
        len => Ok(len),
    }
}

/// Decodes a frame payload (without its header) as a `T`, borrowing from it.
pub fn decode<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T, FrameError> {
    if payload.len() > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge { len: payload.len() });
    }
    let (msg, rest) =
        postcard::take_from_bytes(payload).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if rest.is_empty() {
        Ok(msg)
    } else {
        Err(FrameError::Trailing(rest.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{GetFrame, Hello, PutFrame, Request, Response};
    use proptest::prelude::*;

    fn split(frame: &[u8]) -> ([u8; 4], &[u8]) {
        (frame[..4].try_into().unwrap(), &frame[4..])
    }

    #[test]
    fn frames_round_trip() {
        let hello = Hello {
            version: 1,
            token: "t".into(),
        };
        let mut buf = Vec::new();
        encode(&hello, &mut buf).unwrap();
        let (header, payload) = split(&buf);
        assert_eq!(decode_len(header).unwrap(), payload.len());
        assert_eq!(decode::<Hello>(payload).unwrap(), hello);
    }

    #[test]
    fn oversized_lengths_are_rejected_before_reading() {
        let header = ((MAX_FRAME_LEN + 1) as u32).to_le_bytes();
        assert!(matches!(
            decode_len(header),
            Err(FrameError::TooLarge { .. })
        ));
        assert_eq!(decode_len([0; 4]), Err(FrameError::Empty));
        let too_big = PutFrame::Data(&[0u8; MAX_FRAME_LEN]);
        let mut buf = vec![9];
        assert!(matches!(
            encode(&too_big, &mut buf),
            Err(FrameError::TooLarge { .. })
        ));
        assert_eq!(buf, vec![9], "a failed encode leaves the buffer as it was");
    }

    #[test]
    fn truncated_and_trailing_payloads_are_errors() {
        let mut buf = Vec::new();
        encode(
            &Request::Head {
                bucket: "abc".into(),
                key: "k".into(),
            },
            &mut buf,
        )
        .unwrap();
        let (_, payload) = split(&buf);
        assert!(decode::<Request>(&payload[..payload.len() - 1]).is_err());
        let mut longer = payload.to_vec();
        longer.push(0);
        assert_eq!(decode::<Request>(&longer), Err(FrameError::Trailing(1)));
    }

    proptest! {
        /// Arbitrary bytes never panic the decoder, whatever type is expected.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = decode::<Hello>(&bytes);
            let _ = decode::<Request>(&bytes);
            let _ = decode::<Response>(&bytes);
            let _ = decode::<PutFrame<'_>>(&bytes);
            let _ = decode::<GetFrame<'_>>(&bytes);
            if bytes.len() >= 4 {
                let _ = decode_len(bytes[..4].try_into().unwrap());
            }
        }

        /// Huge declared lengths inside a payload (a string or a vector claiming
        /// gigabytes) are errors, not allocations.
        #[test]
        fn huge_inner_lengths_are_errors(tag in 0u8..8, len in (1u64 << 31)..(1u64 << 62)) {
            let mut bytes = vec![tag];
            let mut v = len;
            while v >= 0x80 { bytes.push((v as u8) | 0x80); v >>= 7; }
            bytes.push(v as u8);
            prop_assert!(decode::<Request>(&bytes).is_err());
            prop_assert!(decode::<Response>(&bytes).is_err());
            prop_assert!(decode::<GetFrame<'_>>(&bytes).is_err());
        }

        #[test]
        fn any_put_data_round_trips(data in proptest::collection::vec(any::<u8>(), 0..10_000)) {
            let mut buf = Vec::new();
            encode(&PutFrame::Data(&data), &mut buf).unwrap();
            let (header, payload) = split(&buf);
            prop_assert_eq!(decode_len(header).unwrap(), payload.len());
            prop_assert_eq!(decode::<PutFrame<'_>>(payload).unwrap(), PutFrame::Data(&data));
        }
    }
}
