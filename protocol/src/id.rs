//! Content ids: a chunk's id is the BLAKE3 hash of its bytes, an object's id the
//! BLAKE3 hash of its manifest's canonical encoding.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The id of a chunk: the BLAKE3 hash of its bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChunkId([u8; 32]);

/// The id of an object: the BLAKE3 hash of its [`Manifest`](crate::Manifest)'s
/// canonical encoding. Same content and metadata, same id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectId([u8; 32]);

/// A string that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a content id: expected 64 hex digits, got {got:?}")]
pub struct IdParseError {
    got: String,
}

macro_rules! hash_id {
    ($name:ident) => {
        impl $name {
            /// The id from its 32 raw bytes.
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// The 32 raw bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// The first 8 hex digits, for logs and tables.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(s, &mut bytes).map_err(|_| IdParseError { got: s.into() })?;
                Ok(Self(bytes))
            }
        }
    };
}

hash_id!(ChunkId);
hash_id!(ObjectId);

impl ChunkId {
    /// The id of these bytes.
    pub fn of(data: &[u8]) -> Self {
        Self(*blake3::hash(data).as_bytes())
    }

    /// Whether `data` hashes to this id. A mismatch means corruption.
    pub fn matches(&self, data: &[u8]) -> bool {
        Self::of(data) == *self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_id_is_blake3_and_round_trips_through_hex() {
        let id = ChunkId::of(b"hello");
        assert_eq!(id.as_bytes(), blake3::hash(b"hello").as_bytes());
        assert_eq!(id.to_string().parse::<ChunkId>().unwrap(), id);
        assert!(id.matches(b"hello"));
        assert!(!id.matches(b"hellO"));
        assert_eq!(id.short().len(), 8);
    }

    #[test]
    fn parsing_rejects_what_is_not_64_hex_digits() {
        assert!("abc".parse::<ObjectId>().is_err());
        assert!("zz".repeat(32).parse::<ObjectId>().is_err());
    }
}
