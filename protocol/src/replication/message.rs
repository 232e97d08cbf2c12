//! The node-to-node replica protocol, version 1 (`/stemma/replica/1`): one
//! request and one response per stream, each a length-prefixed postcard frame
//! (the same framing and limit as the client protocol,
//! [`MAX_FRAME_LEN`](crate::wire::MAX_FRAME_LEN), so a full chunk fits).
//!
//! Names and buckets travel as text and are parsed by the receiver; a chunk
//! travels with its id and the receiver re-hashes it before storing; a manifest
//! is checked against the object id it is requested by. Field order is part of
//! the format: add variants at the end, never reorder.

use serde::{Deserialize, Serialize};

use super::anti_entropy::{ItemKind, Root};
use super::digest::DigestEntry;
use super::gc::Ref;
use super::unconfirmed::VersionName;
use crate::names::NameEntry;
use crate::{ChunkId, Manifest, ObjectId};

/// References (or targets, or keys) one [`ReplicaRequest::PutRefs`],
/// [`ReplicaRequest::LiveRefs`] or [`ReplicaRequest::Holds`] carries at most:
/// a full batch fits in a frame.
pub const MAX_REFS_PER_REQUEST: usize = 8_192;

/// A name's replicated register and what a listing shows of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameRegister {
    /// The last-writer-wins register: stamp and object (or tombstone).
    pub entry: NameEntry,
    /// The object's size in bytes (0 for a tombstone).
    pub size: u64,
    /// When the name was written, in milliseconds since the Unix epoch.
    pub modified_ms: u64,
}

/// What a coordinator asks a replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicaRequest {
    /// Store a chunk durably. The replica checks `data` against `id`; a stored
    /// copy that no longer matches its hash is replaced (repair).
    PutChunk {
        /// The chunk id.
        id: ChunkId,
        /// Its bytes.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// Store a manifest durably (its chunks live on their own owners).
    PutManifest {
        /// The manifest; its id is the hash of its encoding.
        manifest: Manifest,
    },
    /// Merge a name's register durably by the last-writer-wins rule.
    PutName {
        /// Bucket name (parsed by the replica).
        bucket: String,
        /// Key (parsed by the replica).
        key: String,
        /// The register.
        register: NameRegister,
    },
    /// Read a chunk.
    GetChunk {
        /// The chunk id.
        id: ChunkId,
    },
    /// Read a manifest.
    GetManifest {
        /// The object id.
        object: ObjectId,
    },
    /// Read a name's register (tombstones included).
    GetName {
        /// Bucket name.
        bucket: String,
        /// Key.
        key: String,
    },
    /// Up to `limit` registers of `bucket` whose keys start with `prefix`,
    /// after `start_after`, tombstones included, in key order.
    ListNames {
        /// Bucket name.
        bucket: String,
        /// Key prefix; empty for all.
        prefix: String,
        /// Continue after this key.
        start_after: Option<String>,
        /// At most this many (capped by the replica).
        limit: u32,
    },
    /// Anti-entropy: the digest roots of the partitions the sender holds items
    /// of this kind of, that it believes the receiver owns. Answered by
    /// [`ReplicaResponse::Entries`].
    Roots {
        /// The kind of item.
        kind: ItemKind,
        /// `(partition, root)`, at most one per partition.
        roots: Vec<Root>,
    },
    /// What the replica's store holds, for `stemma status`. Answered by
    /// [`ReplicaResponse::Stats`].
    Stats,
    /// Merge references into the replica's (see [`Ref`]); answered by
    /// [`ReplicaResponse::Stored`].
    PutRefs {
        /// The references, each merged by [`RefState::merge`](super::RefState::merge).
        refs: Vec<Ref>,
        /// A put's live references to the owners of its manifest carry the
        /// version's name, kept until the replica has checked the name was
        /// written ([`check_name`](super::check_name)); every reference
        /// sent must then be of that version.
        name: Option<VersionName>,
    },
    /// Which of these targets the replica holds a live reference to, asked
    /// before a target is collected. Answered by [`ReplicaResponse::LiveRefs`].
    LiveRefs {
        /// Chunk or object ids.
        targets: Vec<[u8; 32]>,
    },
    /// Every reference the replica holds on these targets (anti-entropy pulls
    /// them back). Answered by [`ReplicaResponse::Refs`].
    GetRefs {
        /// Chunk or object ids.
        targets: Vec<[u8; 32]>,
    },
    /// Hand-off: which of these items (chunk or object ids) the receiver, an
    /// owner, holds as a replica, asked before the sender drops its copies
    /// of a partition it does not own. Answered by [`ReplicaResponse::Held`].
    /// Point lookups, unlike an anti-entropy offer, and never answered
    /// through a fill lease (see [`handoff_candidates`](super::handoff_candidates)).
    Holds {
        /// Chunks or manifests (of other kinds nothing is held).
        kind: ItemKind,
        /// At most [`MAX_REFS_PER_REQUEST`] keys.
        keys: Vec<[u8; 32]>,
    },
}

/// A replica's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicaResponse {
    /// Stored durably; `new_bytes` were added (0 if it was already there).
    Stored {
        /// Bytes the write added to the replica's store.
        new_bytes: u64,
    },
    /// The chunk asked for, verified by the replica.
    Chunk(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The manifest asked for.
    Manifest(Manifest),
    /// The name asked for: `None` if the replica has no register for it.
    Name(Option<NameRegister>),
    /// A page of registers, and whether the replica has more after it.
    Names {
        /// `(key, register)`, sorted by key.
        entries: Vec<(String, NameRegister)>,
        /// Whether more keys follow the last one.
        more: bool,
    },
    /// The replica does not hold what was asked for.
    Missing,
    /// The replica's copy no longer matches its hash; it was not sent.
    Corrupt,
    /// The request was refused (bad input, not a member, store failure); the
    /// message says why. Nothing was stored.
    Refused(String),
    /// The receiver's entries of each offered partition whose root differs
    /// from the sender's ([`answer_roots`](super::answer_roots)).
    Entries(Vec<(u32, Vec<DigestEntry>)>),
    /// What the replica's store holds.
    Stats {
        /// Names (single-node tables) stored.
        objects: u64,
        /// Distinct chunks stored.
        chunks: u64,
        /// Chunk bytes stored.
        chunk_bytes: u64,
    },
    /// The targets asked about that the replica holds a live reference to.
    LiveRefs(Vec<[u8; 32]>),
    /// The keys asked about that the replica holds.
    Held(Vec<[u8; 32]>),
    /// References on the targets asked about, at most
    /// [`MAX_REFS_PER_REQUEST`] (the rest come in a later round).
    Refs(Vec<Ref>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::NodeId;
    use crate::names::{Hlc, NameValue};
    use crate::replication::{RefState, VersionId};
    use crate::wire::{self, FrameError};

    fn roundtrip<T: Serialize + for<'a> Deserialize<'a> + PartialEq + std::fmt::Debug>(msg: &T) {
        let mut buf = Vec::new();
        wire::encode(msg, &mut buf).unwrap();
        let back: T = wire::decode(&buf[wire::FRAME_HEADER_LEN..]).unwrap();
        assert_eq!(&back, msg);
    }

    #[test]
    fn every_message_round_trips_and_a_full_chunk_fits_in_a_frame() {
        let data = vec![7u8; 1 << 20];
        roundtrip(&ReplicaRequest::PutChunk {
            id: ChunkId::of(&data),
            data: data.clone(),
        });
        roundtrip(&ReplicaResponse::Chunk(data));
        let register = NameRegister {
            entry: NameEntry {
                stamp: Hlc::new(5, 1, NodeId::synthetic(3)),
                value: NameValue::Object(ObjectId::from_bytes([9; 32])),
            },
            size: 12,
            modified_ms: 5,
        };
        roundtrip(&ReplicaRequest::PutName {
            bucket: "b".into(),
            key: "k".into(),
            register,
        });
        roundtrip(&ReplicaResponse::Names {
            entries: vec![("k".into(), register)],
            more: true,
        });
        roundtrip(&ReplicaResponse::Refused("no".into()));
        roundtrip(&ReplicaRequest::Roots {
            kind: ItemKind::Name,
            roots: vec![(3, [1; 32]), (255, [2; 32])],
        });
        roundtrip(&ReplicaRequest::Holds {
            kind: ItemKind::Chunk,
            keys: vec![[3; 32]; MAX_REFS_PER_REQUEST],
        });
        roundtrip(&ReplicaResponse::Held(vec![[3; 32]; MAX_REFS_PER_REQUEST]));
        let full: Vec<DigestEntry> = (0..super::super::MAX_ANSWER_ENTRIES as u64)
            .map(|i| ([7; 32], i))
            .collect();
        let answer = ReplicaResponse::Entries(vec![(3, full)]);
        roundtrip(&answer);
        let mut buf = Vec::new();
        wire::encode(&answer, &mut buf).expect("a full answer fits in a frame");
        let refs = ReplicaRequest::PutRefs {
            name: Some(super::super::VersionName {
                bucket: "b".repeat(63),
                key: "k".repeat(1024),
                stamp: crate::names::Hlc::new(1, 2, crate::membership::NodeId::synthetic(3)),
                object: ObjectId::from_bytes([9; 32]),
            }),
            refs: (0..MAX_REFS_PER_REQUEST as u64)
                .map(|i| Ref {
                    target: [0xff; 32],
                    version: VersionId([0xfe; 32]),
                    state: RefState::Dead {
                        since_millis: u64::MAX - i,
                    },
                })
                .collect(),
        };
        roundtrip(&refs);
        wire::encode(&refs, &mut buf).expect("a full batch of references fits in a frame");
        roundtrip(&ReplicaRequest::LiveRefs {
            targets: vec![[3; 32]; MAX_REFS_PER_REQUEST],
        });
        roundtrip(&ReplicaResponse::LiveRefs(vec![[4; 32]]));
        roundtrip(&ReplicaRequest::GetRefs {
            targets: vec![[5; 32]],
        });
        if let ReplicaRequest::PutRefs { refs, .. } = refs {
            let answer = ReplicaResponse::Refs(refs);
            wire::encode(&answer, &mut buf).expect("a full answer of references fits");
        }
        roundtrip(&ReplicaRequest::Stats);
        roundtrip(&ReplicaResponse::Stats {
            objects: 1,
            chunks: 2,
            chunk_bytes: 3,
        });
    }

    proptest::proptest! {
        /// Whatever a peer sends, decoding answers without panicking, and a
        /// valid request cut short is an error.
        #[test]
        fn any_bytes_decode_to_a_message_or_an_error(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), cut in 0usize..200) {
            let _ = wire::decode::<ReplicaRequest>(&bytes);
            let _ = wire::decode::<ReplicaResponse>(&bytes);
            let request = ReplicaRequest::PutRefs {
                refs: vec![Ref {
                    target: [1; 32],
                    version: VersionId([2; 32]),
                    state: RefState::Live,
                }],
                name: Some(super::super::VersionName {
                    bucket: "photos".into(),
                    key: "cat".into(),
                    stamp: crate::names::Hlc::new(1, 2, crate::membership::NodeId::synthetic(3)),
                    object: ObjectId::from_bytes([9; 32]),
                }),
            };
            let mut buf = Vec::new();
            wire::encode(&request, &mut buf).expect("encodes");
            let payload = &buf[wire::FRAME_HEADER_LEN..];
            proptest::prop_assert_eq!(&wire::decode::<ReplicaRequest>(payload).expect("decodes"), &request);
            let cut = cut.min(payload.len() - 1);
            proptest::prop_assert!(wire::decode::<ReplicaRequest>(&payload[..cut]).is_err());
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &[][..],
            &[0xff; 3][..],
            &[0, 0xff, 0xff, 0xff, 0xff, 0x0f][..],
        ] {
            assert!(matches!(
                wire::decode::<ReplicaRequest>(bytes),
                Err(FrameError::Malformed(_) | FrameError::Trailing(_))
            ));
        }
    }
}
