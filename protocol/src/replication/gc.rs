//! Garbage across nodes: which stored chunks and manifests may go.
//!
//! Every name write is a *version*: `bucket/key` at its stamp. A version
//! references its manifest and each chunk the manifest lists, and those
//! references ([`Ref`]) are stored beside their targets, on the targets'
//! owners, so that the node deciding whether a chunk may go holds every fact
//! it needs. A reference is written live by the coordinator of a put, before
//! the name (so no acknowledged object is ever unreferenced), and turns dead
//! when a name owner merges a register that beats it ([`superseded`]): by the
//! last-writer-wins rule a beaten version never becomes current again, so the
//! owner's word is final, whatever the order in which replicas hear of writes.
//! Dead wins over live, and the earliest death is kept ([`RefState::merge`]),
//! so the references of a target converge like any other CRDT.
//!
//! A target may go ([`gc_verdict`]) when none of its references is live and
//! it has neither been written nor lost a reference for a grace period. The
//! grace covers what a node cannot see: a chunk of an upload in progress has
//! no reference until its manifest is complete, and a reference may still be
//! on its way from another replica. A target stored before references were
//! recorded has no write time and is never collected.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::membership::NodeId;
use crate::names::{Hlc, NameEntry};
use crate::placement::{Layout, Partition};
use crate::{BucketName, Manifest, ObjectId, ObjectKey};

/// One name write: `bucket/key` at a stamp. Stamps are unique per write (they
/// carry the writer's node id), so a version is never written twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VersionId(pub [u8; 32]);

/// The version of `bucket/key` written at `stamp`.
pub fn version_id(bucket: &BucketName, key: &ObjectKey, stamp: &Hlc) -> VersionId {
    let mut hasher = blake3::Hasher::new_derive_key("stemma 2026 name version");
    hasher.update(bucket.as_str().as_bytes());
    hasher.update(&[0]);
    hasher.update(key.as_str().as_bytes());
    hasher.update(&[0]);
    hasher.update(&stamp.wall_millis.to_be_bytes());
    hasher.update(&stamp.counter.to_be_bytes());
    hasher.update(stamp.node.public_key());
    VersionId(*hasher.finalize().as_bytes())
}

/// Whether a version still references its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RefState {
    /// The version may be current: its targets must stay.
    Live,
    /// A later write beat the version (noticed at `since_millis`).
    Dead {
        /// When the first replica noticed, in ms since the Unix epoch.
        since_millis: u64,
    },
}

impl RefState {
    /// The CRDT merge: dead wins, and the earliest death is kept.
    /// Commutative, associative and idempotent.
    pub fn merge(self, other: RefState) -> RefState {
        match (self, other) {
            (RefState::Live, s) | (s, RefState::Live) => s,
            (RefState::Dead { since_millis: a }, RefState::Dead { since_millis: b }) => {
                RefState::Dead {
                    since_millis: a.min(b),
                }
            }
        }
    }

    /// As stored: 0 for live, else the time of death (at least 1).
    pub fn to_u64(self) -> u64 {
        match self {
            RefState::Live => 0,
            RefState::Dead { since_millis } => since_millis.max(1),
        }
    }

    /// The inverse of [`to_u64`](Self::to_u64).
    pub fn from_u64(value: u64) -> RefState {
        match value {
            0 => RefState::Live,
            since_millis => RefState::Dead { since_millis },
        }
    }
}

/// A version's reference to a target: a chunk id or an object id (the
/// manifest), both 32-byte hashes placed on the ring by their leading bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ref {
    /// The chunk or object id.
    pub target: [u8; 32],
    /// The version that references it.
    pub version: VersionId,
    /// Whether the reference still holds.
    pub state: RefState,
}

/// The references a version holds: on its manifest, then on each distinct
/// chunk the manifest lists.
pub fn refs_of(manifest: &Manifest, version: VersionId, state: RefState) -> Vec<Ref> {
    let mut targets: Vec<[u8; 32]> = manifest.chunks.iter().map(|c| *c.as_bytes()).collect();
    targets.sort_unstable();
    targets.dedup();
    std::iter::once(*manifest.object_id().as_bytes())
        .chain(targets)
        .map(|target| Ref {
            target,
            version,
            state,
        })
        .collect()
}

/// When a name owner merges `incoming` into what it holds (`ours`), the
/// version that lost and the object it pointed at, if it pointed at one: its
/// references are dead. `None` if nothing was beaten, or if the loser was a
/// tombstone.
pub fn superseded(ours: Option<&NameEntry>, incoming: &NameEntry) -> Option<(Hlc, ObjectId)> {
    let loser = match ours {
        Some(ours) if ours < incoming => ours,
        Some(ours) if ours > incoming => incoming,
        _ => return None,
    };
    loser.object().map(|object| (loser.stamp, object))
}

/// Whether a stored target may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcVerdict {
    /// A live reference holds it.
    Referenced,
    /// Stored before references were recorded: kept.
    Untracked,
    /// No live reference, but written or released within the grace: kept
    /// until then.
    InGrace {
        /// When (ms) it may go if nothing changes.
        until_millis: u64,
    },
    /// No live reference, and nothing happened to it for the whole grace.
    Drop,
}

/// The GC rule for one target: its references' states, when this node last
/// wrote it (`None` if unknown), the time now and the grace, in ms.
pub fn gc_verdict(
    refs: impl IntoIterator<Item = RefState>,
    written_millis: Option<u64>,
    now_millis: u64,
    grace_millis: u64,
) -> GcVerdict {
    let mut last_death = 0;
    for state in refs {
        match state {
            RefState::Live => return GcVerdict::Referenced,
            RefState::Dead { since_millis } => last_death = last_death.max(since_millis),
        }
    }
    let Some(written) = written_millis else {
        return GcVerdict::Untracked;
    };
    let until_millis = written.max(last_death).saturating_add(grace_millis);
    if now_millis >= until_millis {
        GcVerdict::Drop
    } else {
        GcVerdict::InGrace { until_millis }
    }
}

/// Whom to ask before dropping targets of `partition`: every other owner in
/// `layout`, all of which must be `live` — `None` if one is not, since its
/// live reference may be the one this node has not received yet. The targets
/// go only if every node asked answers that it holds no live reference.
pub fn gc_confirmers(
    layout: &Layout,
    partition: Partition,
    me: &NodeId,
    live: &BTreeSet<NodeId>,
) -> Option<Vec<NodeId>> {
    let others: Vec<NodeId> = layout
        .replicas(partition)
        .iter()
        .copied()
        .filter(|n| n != me)
        .collect();
    others.iter().all(|n| live.contains(n)).then_some(others)
}

/// A 64-bit fingerprint of a target's references in version order, for
/// anti-entropy digests: replicas whose references differ get different ones.
pub fn refs_fingerprint(refs: impl IntoIterator<Item = (VersionId, RefState)>) -> u64 {
    let mut hasher = blake3::Hasher::new();
    for (version, state) in refs {
        hasher.update(&version.0);
        hasher.update(&state.to_u64().to_be_bytes());
    }
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
    u64::from_be_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::ManifestBuilder;
    use crate::membership::NodeId;
    use crate::names::NameValue;

    fn manifest(parts: &[&[u8]]) -> Manifest {
        let mut m = ManifestBuilder::new(None);
        for part in parts {
            m.push_chunk(part);
        }
        m.finish()
    }

    fn state() -> impl Strategy<Value = RefState> {
        prop_oneof![
            Just(RefState::Live),
            (1u64..100).prop_map(|since_millis| RefState::Dead { since_millis }),
        ]
    }

    #[test]
    fn the_rule() {
        let dead = |since_millis| RefState::Dead { since_millis };
        assert_eq!(
            gc_verdict([dead(5), RefState::Live], Some(0), u64::MAX, 0),
            GcVerdict::Referenced
        );
        assert_eq!(gc_verdict([], None, u64::MAX, 0), GcVerdict::Untracked);
        // Written at 1 000, released at 3 000: the later of the two counts.
        assert_eq!(
            gc_verdict([dead(3_000)], Some(1_000), 3_999, 1_000),
            GcVerdict::InGrace {
                until_millis: 4_000
            }
        );
        assert_eq!(
            gc_verdict([dead(3_000)], Some(1_000), 4_000, 1_000),
            GcVerdict::Drop
        );
        // An upload's chunk: no reference yet, kept for the grace after its write.
        assert_eq!(
            gc_verdict([], Some(1_000), 1_500, 1_000),
            GcVerdict::InGrace {
                until_millis: 2_000
            }
        );
    }

    #[test]
    fn every_other_owner_confirms_and_a_partition_with_one_down_waits() {
        use crate::placement::{NodeSpec, PlacementConfig, View};
        let view =
            View::new((1..=4).map(|n| NodeSpec::new(NodeId::synthetic(n), format!("z{n}"), 1)))
                .unwrap();
        let layout = Layout::initial(&view, PlacementConfig::default()).unwrap();
        let partition = layout.partitions().of_hash(&[9; 32]);
        let owners = layout.replicas(partition).to_vec();
        let all: BTreeSet<NodeId> = view.nodes().iter().map(|n| n.id).collect();
        let asked = gc_confirmers(&layout, partition, &owners[0], &all).unwrap();
        assert_eq!(asked, owners[1..].to_vec());
        let outsider = *all.iter().find(|n| !owners.contains(n)).unwrap();
        assert_eq!(
            gc_confirmers(&layout, partition, &outsider, &all).unwrap(),
            owners,
            "a node that is not an owner asks all of them"
        );
        let mut one_down = all.clone();
        one_down.remove(&owners[2]);
        assert_eq!(
            gc_confirmers(&layout, partition, &owners[0], &one_down),
            None
        );
    }

    #[test]
    fn a_version_references_its_manifest_and_each_distinct_chunk_once() {
        let m = manifest(&[b"a", b"b", b"a"]);
        let refs = refs_of(&m, VersionId([1; 32]), RefState::Live);
        assert_eq!(refs.len(), 3);
        assert_eq!(refs[0].target, *m.object_id().as_bytes());
    }

    #[test]
    fn the_loser_of_a_merge_is_superseded_and_a_tombstone_holds_nothing() {
        let node = NodeId::synthetic(1);
        let at = |wall_millis, value| NameEntry {
            stamp: Hlc {
                wall_millis,
                counter: 0,
                node,
            },
            value,
        };
        let a = ObjectId::from_bytes([1; 32]);
        let b = ObjectId::from_bytes([2; 32]);
        let old = at(1, NameValue::Object(a));
        let new = at(2, NameValue::Object(b));
        assert_eq!(superseded(Some(&old), &new), Some((old.stamp, a)));
        // The late arrival of an older write: it is the loser.
        assert_eq!(superseded(Some(&new), &old), Some((old.stamp, a)));
        assert_eq!(superseded(None, &new), None);
        assert_eq!(superseded(Some(&new), &new), None);
        assert_eq!(
            superseded(Some(&at(1, NameValue::Deleted)), &new),
            None,
            "a tombstone references nothing"
        );
    }

    proptest! {
        #[test]
        fn merge_is_a_crdt(a in state(), b in state(), c in state()) {
            prop_assert_eq!(a.merge(b), b.merge(a));
            prop_assert_eq!(a.merge(b).merge(c), a.merge(b.merge(c)));
            prop_assert_eq!(a.merge(a), a);
            prop_assert_eq!(RefState::from_u64(a.to_u64()), a);
        }

        /// Writes and deletes of one key reach two name owners in any order,
        /// with repeats; their coordinators write live references first, the
        /// owners mark the losers dead; a chunk owner merges every reference
        /// in any order. At the end the current version's chunks are never
        /// collectable, and every other version's are.
        #[test]
        fn the_current_version_is_never_collected_and_the_rest_always_is(
            writes in prop::collection::vec((1u64..50, 0u8..4), 1..12),
            order_a in prop::collection::vec(any::<prop::sample::Index>(), 0..30),
            order_b in prop::collection::vec(any::<prop::sample::Index>(), 0..30),
            ref_order in any::<u64>(),
        ) {
            let (bucket, key) = (BucketName::parse("photos").unwrap(), ObjectKey::parse("k").unwrap());
            // Object 0 is a tombstone; others have manifests sharing chunk 9.
            let manifests: Vec<Manifest> = (0..4u8).map(|i| manifest(&[&[i], &[9]])).collect();
            let entries: Vec<NameEntry> = writes
                .iter()
                .enumerate()
                .map(|(i, &(wall, object))| NameEntry {
                    stamp: Hlc { wall_millis: wall, counter: i as u32, node: NodeId::synthetic(1) },
                    value: if object == 0 {
                        NameValue::Deleted
                    } else {
                        NameValue::Object(manifests[object as usize].object_id())
                    },
                })
                .collect();
            let manifest_of = |e: &NameEntry| {
                e.object().map(|o| manifests.iter().find(|m| m.object_id() == o).unwrap().clone())
            };
            let mut refs: Vec<Ref> = Vec::new();
            for e in &entries {
                if let Some(m) = manifest_of(e) {
                    refs.extend(refs_of(&m, version_id(&bucket, &key, &e.stamp), RefState::Live));
                }
            }
            // Each owner hears every write once in order, plus repeats.
            for order in [&order_a, &order_b] {
                let deliveries = (0..entries.len()).chain(order.iter().map(|i| i.index(entries.len())));
                let mut ours: Option<NameEntry> = None;
                for (t, i) in deliveries.enumerate() {
                    if let Some((stamp, object)) = superseded(ours.as_ref(), &entries[i]) {
                        let m = manifests.iter().find(|m| m.object_id() == object).unwrap();
                        let dead = RefState::Dead { since_millis: 100 + t as u64 };
                        refs.extend(refs_of(m, version_id(&bucket, &key, &stamp), dead));
                    }
                    ours = Some(ours.map_or(entries[i], |o| o.max(entries[i])));
                }
            }
            // The chunk owner merges them in a shuffled order.
            refs.sort_by_cached_key(|r| {
                let state = r.state.to_u64().to_be_bytes();
                *blake3::hash(&[&ref_order.to_be_bytes()[..], &r.target, &r.version.0, &state].concat()).as_bytes()
            });
            let mut held: BTreeMap<[u8; 32], BTreeMap<VersionId, RefState>> = BTreeMap::new();
            for r in refs {
                let slot = held.entry(r.target).or_default().entry(r.version).or_insert(r.state);
                *slot = slot.merge(r.state);
            }
            let current = entries.iter().max().unwrap();
            let live_targets: Vec<[u8; 32]> = manifest_of(current)
                .map(|m| refs_of(&m, VersionId([0; 32]), RefState::Live).into_iter().map(|r| r.target).collect())
                .unwrap_or_default();
            for (target, versions) in &held {
                let verdict = gc_verdict(versions.values().copied(), Some(0), u64::MAX, 10);
                if live_targets.contains(target) {
                    prop_assert_eq!(verdict, GcVerdict::Referenced);
                } else {
                    prop_assert_eq!(verdict, GcVerdict::Drop);
                }
            }
        }
    }
}
