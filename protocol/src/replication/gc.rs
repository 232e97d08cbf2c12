//! Garbage: a chunk may be dropped only when no live manifest references it
//! and it has stayed unreferenced for a grace period.
//!
//! The grace covers what a reference count cannot see: an upload writes its
//! chunks before its manifest (so a fresh chunk is unreferenced for the length
//! of the upload), and a manifest that references an existing chunk may still
//! be on its way from another replica. The grace must exceed the longest
//! upload and the longest replication delay of a manifest; a chunk referenced
//! again within it is kept, and its clock starts over when released again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ChunkId, Manifest};

/// What is known of a chunk's references.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRefs {
    /// Live manifests that list the chunk.
    pub references: u64,
    /// Since when (ms) the count has been zero; `None` while referenced.
    pub unreferenced_since_millis: Option<u64>,
}

/// Whether a chunk may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcVerdict {
    /// A live manifest references it.
    Referenced,
    /// Unreferenced, but not for the whole grace yet: keep it until then.
    InGrace {
        /// When (ms) it may go if still unreferenced.
        until_millis: u64,
    },
    /// Unreferenced for the whole grace: it may be dropped.
    Drop,
}

/// The GC rule.
pub fn gc_verdict(refs: &ChunkRefs, now_millis: u64, grace_millis: u64) -> GcVerdict {
    match refs.unreferenced_since_millis {
        _ if refs.references > 0 => GcVerdict::Referenced,
        // Zero references and no time recorded: treat as just released.
        None => GcVerdict::InGrace {
            until_millis: now_millis.saturating_add(grace_millis),
        },
        Some(since) => {
            let until_millis = since.saturating_add(grace_millis);
            if now_millis >= until_millis {
                GcVerdict::Drop
            } else {
                GcVerdict::InGrace { until_millis }
            }
        }
    }
}

/// A manifest released more often than it was added. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GcError {
    /// A release of a chunk that no manifest references.
    #[error("chunk {0} released but not referenced: the reference counts are out of step")]
    NotReferenced(ChunkId),
}

/// Reference counts of the chunks one node stores, from the live manifests
/// that list them (each manifest counts once per distinct chunk).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkLedger {
    chunks: BTreeMap<ChunkId, ChunkRefs>,
}

impl ChunkLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// A chunk was stored at `now_millis`. Unreferenced until a manifest lists
    /// it, so the grace protects an upload in progress.
    pub fn stored(&mut self, chunk: ChunkId, now_millis: u64) {
        self.chunks.entry(chunk).or_insert(ChunkRefs {
            references: 0,
            unreferenced_since_millis: Some(now_millis),
        });
    }

    /// A live manifest now lists these chunks.
    pub fn add_manifest(&mut self, manifest: &Manifest) {
        for chunk in distinct(manifest) {
            let refs = self.chunks.entry(chunk).or_insert(ChunkRefs {
                references: 0,
                unreferenced_since_millis: None,
            });
            refs.references += 1;
            refs.unreferenced_since_millis = None;
        }
    }

    /// A manifest is no longer live (its name was deleted or overwritten and
    /// no other name uses it) as of `now_millis`. Refused as a whole if any of
    /// its chunks is not referenced.
    pub fn remove_manifest(&mut self, manifest: &Manifest, now_millis: u64) -> Result<(), GcError> {
        let chunks = distinct(manifest);
        if let Some(missing) = chunks
            .iter()
            .find(|c| self.chunks.get(c).is_none_or(|r| r.references == 0))
        {
            return Err(GcError::NotReferenced(*missing));
        }
        for chunk in chunks {
            if let Some(refs) = self.chunks.get_mut(&chunk) {
                refs.references -= 1;
                if refs.references == 0 {
                    refs.unreferenced_since_millis = Some(now_millis);
                }
            }
        }
        Ok(())
    }

    /// The references of `chunk`, if the ledger knows it.
    pub fn refs(&self, chunk: &ChunkId) -> Option<ChunkRefs> {
        self.chunks.get(chunk).copied()
    }

    /// The chunks that may be dropped at `now_millis`, in id order.
    pub fn collectable(&self, now_millis: u64, grace_millis: u64) -> Vec<ChunkId> {
        self.chunks
            .iter()
            .filter(|(_, r)| gc_verdict(r, now_millis, grace_millis) == GcVerdict::Drop)
            .map(|(c, _)| *c)
            .collect()
    }

    /// Forgets a chunk that was dropped. A referenced chunk is kept; returns
    /// whether it was forgotten.
    pub fn forget(&mut self, chunk: &ChunkId) -> bool {
        match self.chunks.get(chunk) {
            Some(r) if r.references == 0 => self.chunks.remove(chunk).is_some(),
            _ => false,
        }
    }
}

fn distinct(manifest: &Manifest) -> Vec<ChunkId> {
    let mut chunks = manifest.chunks.clone();
    chunks.sort_unstable();
    chunks.dedup();
    chunks
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::ManifestBuilder;

    fn manifest(parts: &[&[u8]]) -> Manifest {
        let mut m = ManifestBuilder::new(None);
        for part in parts {
            m.push_chunk(part);
        }
        m.finish()
    }

    #[test]
    fn the_rule() {
        let referenced = ChunkRefs {
            references: 2,
            unreferenced_since_millis: None,
        };
        assert_eq!(gc_verdict(&referenced, u64::MAX, 0), GcVerdict::Referenced);
        let released = ChunkRefs {
            references: 0,
            unreferenced_since_millis: Some(1_000),
        };
        assert_eq!(
            gc_verdict(&released, 1_500, 1_000),
            GcVerdict::InGrace {
                until_millis: 2_000
            }
        );
        assert_eq!(gc_verdict(&released, 2_000, 1_000), GcVerdict::Drop);
    }

    #[test]
    fn deleting_an_object_frees_only_the_chunks_no_other_object_uses() {
        let shared: &[u8] = b"shared chunk";
        let a = manifest(&[shared, b"only in a", b"only in a"]);
        let b = manifest(&[shared, b"only in b"]);
        let mut ledger = ChunkLedger::new();
        ledger.add_manifest(&a);
        ledger.add_manifest(&b);
        ledger.remove_manifest(&a, 10_000).unwrap();
        assert!(
            ledger.collectable(10_000 + 59_999, 60_000).is_empty(),
            "in grace"
        );
        let gone = ledger.collectable(10_000 + 60_000, 60_000);
        assert_eq!(gone, vec![ChunkId::of(b"only in a")]);
        assert!(ledger.forget(&gone[0]));
        assert!(
            !ledger.forget(&ChunkId::of(shared)),
            "still referenced by b"
        );
        // Releasing a twice is refused and changes nothing.
        let before = ledger.clone();
        assert_eq!(
            ledger.remove_manifest(&a, 70_000),
            Err(GcError::NotReferenced(ChunkId::of(b"only in a")))
        );
        assert_eq!(ledger, before);
    }

    #[test]
    fn a_chunk_of_an_upload_in_progress_is_kept_for_the_grace() {
        let mut ledger = ChunkLedger::new();
        let chunk = ChunkId::of(b"uploading");
        ledger.stored(chunk, 1_000);
        assert!(ledger.collectable(1_000 + 59_999, 60_000).is_empty());
        // The manifest arrives: referenced, never collectable.
        ledger.add_manifest(&manifest(&[b"uploading"]));
        assert!(ledger.collectable(u64::MAX, 60_000).is_empty());
    }

    proptest! {
        /// Whatever sequence of adds and removes of live manifests (sharing
        /// chunks), a chunk listed by a live manifest is never collectable.
        #[test]
        fn a_referenced_chunk_is_never_collectable(
            ops in prop::collection::vec((0usize..4, any::<bool>(), 0u64..100), 0..40),
        ) {
            let manifests: Vec<Manifest> = (0..4u8)
                .map(|i| manifest(&[&[i], &[i + 1], &[9]]))
                .collect();
            let mut live = [0usize; 4];
            let mut ledger = ChunkLedger::new();
            let mut now = 0;
            for (m, add, dt) in ops {
                now += dt;
                if add {
                    ledger.add_manifest(&manifests[m]);
                    live[m] += 1;
                } else if live[m] > 0 {
                    ledger.remove_manifest(&manifests[m], now).unwrap();
                    live[m] -= 1;
                }
                for chunk in ledger.collectable(now + 1_000_000, 10) {
                    let used = (0..4).any(|i| live[i] > 0 && manifests[i].chunks.contains(&chunk));
                    prop_assert!(!used, "{:?} is referenced", chunk);
                }
            }
        }
    }
}
