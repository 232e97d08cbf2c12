//! The object manifest: what an object is made of. Its canonical encoding is
//! postcard of this struct; the object's id is the BLAKE3 hash of those bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ChunkId, ObjectId};

/// The manifest format written by this build. Part of the hashed encoding, so a
/// future format gives different ids rather than ambiguous ones.
pub const MANIFEST_FORMAT: u8 = 1;

/// An object: its chunks in order, its size, content type and user metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`] for manifests this build writes.
    pub format: u8,
    /// Total size in bytes: the sum of the chunk sizes.
    pub size: u64,
    /// The MIME type given at upload, if any.
    pub content_type: Option<String>,
    /// User metadata, sorted by key so that the encoding is canonical.
    pub metadata: BTreeMap<String, String>,
    /// The chunks, in order.
    pub chunks: Vec<ChunkId>,
}

impl Manifest {
    /// The canonical encoding (postcard).
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("a manifest always serializes")
    }

    /// Decodes a manifest; `None` if the bytes are not one.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        match postcard::take_from_bytes::<Self>(bytes) {
            Ok((manifest, [])) => Some(manifest),
            _ => None,
        }
    }

    /// The object id: BLAKE3 of the canonical encoding.
    pub fn object_id(&self) -> ObjectId {
        ObjectId::from_bytes(*blake3::hash(&self.encode()).as_bytes())
    }
}

/// Builds a manifest chunk by chunk, so that a stream never has to be held whole.
#[derive(Debug)]
pub struct ManifestBuilder {
    manifest: Manifest,
}

impl ManifestBuilder {
    /// An empty manifest with this content type.
    pub fn new(content_type: Option<String>) -> Self {
        Self::with_metadata(content_type, BTreeMap::new())
    }

    /// An empty manifest with this content type and metadata.
    pub fn with_metadata(content_type: Option<String>, metadata: BTreeMap<String, String>) -> Self {
        Self {
            manifest: Manifest {
                format: MANIFEST_FORMAT,
                size: 0,
                content_type,
                metadata,
                chunks: Vec::new(),
            },
        }
    }

    /// Appends a chunk by its bytes; returns its id.
    pub fn push_chunk(&mut self, data: &[u8]) -> ChunkId {
        let id = ChunkId::of(data);
        self.push_id(id, data.len());
        id
    }

    /// Appends a chunk already hashed.
    pub fn push_id(&mut self, id: ChunkId, len: usize) {
        self.manifest.size += len as u64;
        self.manifest.chunks.push(id);
    }

    /// Bytes so far.
    pub fn size(&self) -> u64 {
        self.manifest.size
    }

    /// The manifest.
    pub fn finish(self) -> Manifest {
        self.manifest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_content_same_id_other_content_other_id() {
        let build = |data: &[u8], ct: Option<&str>| {
            let mut b = ManifestBuilder::new(ct.map(String::from));
            b.push_chunk(data);
            b.finish()
        };
        let a = build(b"abc", None);
        assert_eq!(a.object_id(), build(b"abc", None).object_id());
        assert_ne!(a.object_id(), build(b"abd", None).object_id());
        assert_ne!(a.object_id(), build(b"abc", Some("text/plain")).object_id());
    }

    #[test]
    fn encoding_round_trips_and_rejects_trailing_bytes() {
        let mut b = ManifestBuilder::new(Some("x/y".into()));
        b.push_chunk(b"1");
        b.push_chunk(b"22");
        let m = b.finish();
        assert_eq!(m.size, 3);
        let mut bytes = m.encode();
        assert_eq!(Manifest::decode(&bytes), Some(m));
        bytes.push(0);
        assert_eq!(Manifest::decode(&bytes), None);
    }
}
