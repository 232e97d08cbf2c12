//! The redb tables of a node's store. Names carry a format version: a change of
//! layout gets a new name, never a silent reinterpretation.

use redb::TableDefinition;
use serde::{Deserialize, Serialize};
use stemma_protocol::ObjectId;

/// Chunk id → chunk bytes.
pub const CHUNKS: TableDefinition<'_, &[u8; 32], &[u8]> = TableDefinition::new("chunks-0");
/// Chunk id → how many references committed manifests hold on it. A chunk with no
/// entry here is an orphan: an upload in progress, or one that was interrupted.
pub const CHUNK_REFS: TableDefinition<'_, &[u8; 32], u64> = TableDefinition::new("chunk-refs-0");
/// Object id → manifest (canonical postcard encoding).
pub const MANIFESTS: TableDefinition<'_, &[u8; 32], &[u8]> = TableDefinition::new("manifests-0");
/// Object id → how many names point at it.
pub const OBJECT_REFS: TableDefinition<'_, &[u8; 32], u64> = TableDefinition::new("object-refs-0");
/// (bucket, key) → [`NameRecord`] (postcard).
pub const NAMES: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("names-0");
/// Counter name → value; kept in the same transactions as the data they count.
pub const STATS: TableDefinition<'_, &str, u64> = TableDefinition::new("stats-0");

/// What a name points at, with what a listing shows so that listing reads one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameRecord {
    /// The object.
    pub object_id: ObjectId,
    /// Its size in bytes.
    pub size: u64,
    /// When the name was written, in milliseconds since the Unix epoch.
    pub modified_ms: u64,
}

impl NameRecord {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("a name record always serializes")
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        postcard::from_bytes(bytes).ok()
    }
}

/// Counter keys in [`STATS`].
pub mod stat {
    /// Names stored.
    pub const OBJECTS: &str = "objects";
    /// Chunks stored.
    pub const CHUNKS: &str = "chunks";
    /// Bytes of chunk data stored.
    pub const CHUNK_BYTES: &str = "chunk_bytes";
}
