//! Stemma's rules, with no I/O: the ids, the object manifest, the chunker, bucket
//! and key names, the client wire protocol, membership, placement of partitions
//! on nodes, the name table CRDT, replication planning and the lineage graph.
//!
//! This crate never touches a socket, a file, a clock or a thread. The node and the
//! client drive it; a simulator can drive it too. Everything here is deterministic.
//!
//! ```
//! use stemma_protocol::{Chunker, ChunkSize, ManifestBuilder};
//!
//! let mut chunker = Chunker::new(ChunkSize::new(4096).unwrap());
//! let mut manifest = ManifestBuilder::new(None);
//! let data = vec![7u8; 10_000];
//! for chunk in chunker.push(&data) {
//!     manifest.push_chunk(&chunk);
//! }
//! if let Some(last) = chunker.finish() {
//!     manifest.push_chunk(&last);
//! }
//! let manifest = manifest.finish();
//! assert_eq!(manifest.size, 10_000);
//! assert_eq!(manifest.chunks.len(), 3);
//! // Same content, same id.
//! assert_eq!(manifest.object_id(), manifest.clone().object_id());
//! ```

mod chunker;
mod id;
pub mod lineage;
mod manifest;
pub mod membership;
mod name;
pub mod names;
pub mod placement;
pub mod replication;
pub mod sql;
pub mod wire;

pub use chunker::{ChunkSize, ChunkSizeError, Chunker};
pub use id::{ChunkId, IdParseError, ObjectId};
pub use manifest::{MANIFEST_FORMAT, Manifest, ManifestBuilder};
pub use name::{BucketName, NameError, ObjectKey, ObjectPath};
