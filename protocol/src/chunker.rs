//! Fixed-size chunking. Fixed size keeps chunk boundaries trivial to compute on both
//! ends and makes a chunk's place in an object a multiplication; content-defined
//! chunking can come later behind the same interface if measurements show it pays.

use serde::{Deserialize, Serialize};

/// A validated chunk size.
///
/// The default is 1 MiB − 8 KiB: the largest size whose redb record (value plus
/// page header) still fits a 1 MiB page order. An exact 1 MiB value occupies a
/// 2 MiB page run on disk and halves durable ingest; see docs/ARCHITECTURE.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkSize(u32);

/// A chunk size outside the allowed range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "chunk size {got} is out of range: it must be between {} and {} bytes",
    ChunkSize::MIN,
    ChunkSize::MAX
)]
pub struct ChunkSizeError {
    got: u64,
}

impl ChunkSize {
    /// The smallest chunk size accepted (4 KiB).
    pub const MIN: u32 = 4 * 1024;
    /// The largest chunk size accepted (1 MiB); frames are sized for it.
    pub const MAX: u32 = 1024 * 1024;
    /// The default chunk size (1 MiB − 8 KiB).
    pub const DEFAULT: ChunkSize = ChunkSize(1024 * 1024 - 8 * 1024);

    /// A chunk size, if it lies in `MIN..=MAX`.
    pub fn new(bytes: u64) -> Result<Self, ChunkSizeError> {
        if (u64::from(Self::MIN)..=u64::from(Self::MAX)).contains(&bytes) {
            Ok(Self(bytes as u32))
        } else {
            Err(ChunkSizeError { got: bytes })
        }
    }

    /// The size in bytes.
    pub const fn bytes(self) -> usize {
        self.0 as usize
    }
}

impl Default for ChunkSize {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Cuts a byte stream into chunks of exactly `size` bytes, the last one shorter.
///
/// Feed it with [`push`](Self::push) as bytes arrive, then call
/// [`finish`](Self::finish) for the remainder. An empty stream has no chunks.
#[derive(Debug)]
pub struct Chunker {
    size: usize,
    pending: Vec<u8>,
}

impl Chunker {
    /// A chunker cutting chunks of `size` bytes.
    pub fn new(size: ChunkSize) -> Self {
        Self {
            size: size.bytes(),
            pending: Vec::with_capacity(size.bytes()),
        }
    }

    /// Adds bytes; returns the chunks they complete, in order.
    pub fn push(&mut self, mut data: &[u8]) -> Vec<Vec<u8>> {
        let mut full = Vec::new();
        while !data.is_empty() {
            let take = (self.size - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == self.size {
                full.push(std::mem::replace(
                    &mut self.pending,
                    Vec::with_capacity(self.size),
                ));
            }
        }
        full
    }

    /// Bytes received but not yet part of a full chunk.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The last, possibly short, chunk; `None` when nothing is pending.
    pub fn finish(self) -> Option<Vec<u8>> {
        (!self.pending.is_empty()).then_some(self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes_out_of_range_are_rejected_with_the_range() {
        let err = ChunkSize::new(100).unwrap_err();
        assert!(err.to_string().contains("between 4096 and 1048576"));
        assert!(ChunkSize::new(2 * 1024 * 1024).is_err());
        assert_eq!(ChunkSize::new(4096).unwrap().bytes(), 4096);
    }

    #[test]
    fn empty_input_has_no_chunks() {
        let mut c = Chunker::new(ChunkSize::new(4096).unwrap());
        assert!(c.push(&[]).is_empty());
        assert_eq!(c.finish(), None);
    }

    #[test]
    fn exact_multiple_leaves_no_remainder() {
        let mut c = Chunker::new(ChunkSize::new(4096).unwrap());
        assert_eq!(c.push(&[1; 8192]).len(), 2);
        assert_eq!(c.finish(), None);
    }

    proptest! {
        #[test]
        fn chunks_concatenate_to_the_input_whatever_the_pieces(
            data in proptest::collection::vec(any::<u8>(), 0..40_000),
            cuts in proptest::collection::vec(0usize..40_000, 0..8),
        ) {
            let mut c = Chunker::new(ChunkSize::new(4096).unwrap());
            let mut cuts = cuts.into_iter().map(|x| x.min(data.len())).collect::<Vec<_>>();
            cuts.push(0);
            cuts.push(data.len());
            cuts.sort();
            let mut chunks = Vec::new();
            for w in cuts.windows(2) {
                chunks.extend(c.push(&data[w[0]..w[1]]));
            }
            chunks.extend(c.finish());
            for (i, chunk) in chunks.iter().enumerate() {
                if i + 1 < chunks.len() {
                    prop_assert_eq!(chunk.len(), 4096);
                } else {
                    prop_assert!(!chunk.is_empty() && chunk.len() <= 4096);
                }
            }
            prop_assert_eq!(chunks.concat(), data);
        }
    }
}
