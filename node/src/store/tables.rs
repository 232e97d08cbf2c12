//! The redb tables of a node's store. Names carry a format version: a change of
//! layout gets a new name, never a silent reinterpretation.

use redb::TableDefinition;
use serde::{Deserialize, Serialize};
use stemma_protocol::ObjectId;
use stemma_protocol::replication::NameRegister;

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
/// Chunk id → 1: chunks this node holds as a replica owner (placed here by the
/// layout). A held chunk is never freed as an orphan: its manifest lives on the
/// owners of its object, usually other nodes.
pub const CHUNK_HOLDS: TableDefinition<'_, &[u8; 32], u64> = TableDefinition::new("chunk-holds-0");
/// Object id → manifest (canonical postcard), for manifests this node holds as
/// a replica owner; their chunks live on the chunks' owners.
pub const REPLICA_MANIFESTS: TableDefinition<'_, &[u8; 32], &[u8]> =
    TableDefinition::new("replica-manifests-0");
/// (bucket, key) → `NameRegister` (postcard): the last-writer-wins registers of
/// the names this node holds as a replica owner, tombstones included.
pub const REPLICA_NAMES: TableDefinition<'_, (&str, &str), &[u8]> =
    TableDefinition::new("replica-names-0");
/// (target, version) → [`RefState`](stemma_protocol::replication::RefState)
/// as a u64 (0 live, else dead since that ms): the references name versions
/// hold on the chunks and manifests (targets) this node stores as a replica.
pub const REFS: TableDefinition<'_, (&[u8; 32], &[u8; 32]), u64> = TableDefinition::new("refs-0");
/// Chunk or object id → when this node last wrote it as a replica (ms). What
/// has no row was stored before references were recorded and is never collected.
pub const WRITTEN: TableDefinition<'_, &[u8; 32], u64> = TableDefinition::new("written-0");
/// Version → (object, dead since ms) (postcard): versions this node, as a name
/// owner, saw beaten, whose references it has yet to mark dead on the
/// targets' owners.
pub const DEAD_VERSIONS: TableDefinition<'_, &[u8; 32], &[u8]> =
    TableDefinition::new("dead-versions-0");
/// Version → ([`VersionName`](stemma_protocol::replication::VersionName), since
/// ms) (postcard): versions whose manifest this node owns and whose name it
/// has yet to find on a name owner, a grace after their references came
/// (`stemma_protocol::replication::check_name`).
pub const UNCONFIRMED_VERSIONS: TableDefinition<'_, &[u8; 32], &[u8]> =
    TableDefinition::new("unconfirmed-versions-0");
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

/// The postcard encoding of a replicated name register.
pub fn encode_register(register: &NameRegister) -> Vec<u8> {
    postcard::to_stdvec(register).expect("a name register always serializes")
}

/// Decodes a replicated name register; `None` if the bytes are not one.
pub fn decode_register(bytes: &[u8]) -> Option<NameRegister> {
    postcard::from_bytes(bytes).ok()
}

/// Counter keys in [`STATS`].
pub mod stat {
    /// Names stored.
    pub const OBJECTS: &str = "objects";
    /// Chunks stored.
    pub const CHUNKS: &str = "chunks";
    /// Bytes of chunk data stored.
    pub const CHUNK_BYTES: &str = "chunk_bytes";
    /// A wall time (ms) no stamp of this node's clock has passed: where the
    /// clock resumes after a restart.
    pub const CLOCK_BOUND: &str = "clock_bound_ms";
}
