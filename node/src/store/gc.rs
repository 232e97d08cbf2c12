//! What the garbage collector reads: the references this node holds on the
//! targets (chunks and manifests) it stores as a replica, the versions it
//! saw beaten as a name owner, and the versions whose name it has yet to
//! confirm as an owner of their manifest. The rule is `stemma_protocol::replication::gc`.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use redb::{ReadOnlyTable, ReadableDatabase, ReadableTable, ReadableTableMetadata};
use stemma_protocol::ObjectId;
use stemma_protocol::replication::{
    GcVerdict, ItemKind, Ref, RefState, VersionId, VersionName, gc_verdict, refs_fingerprint,
};

use super::{Context, Store, StoreError, tables};

/// The time now and the grace period, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcClock {
    /// Now, in ms since the Unix epoch.
    pub now_millis: u64,
    /// How long a target stays after its last reference died or it was written.
    pub grace_millis: u64,
    /// How long a name's tombstone stays after the delete.
    pub tombstone_grace_millis: u64,
}

/// What one scan found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GcScan {
    /// Targets with no live reference here, quiet for the whole grace.
    pub collectable: Vec<(ItemKind, [u8; 32])>,
    /// Targets not stored here whose references all died more than two graces
    /// ago: their references may go.
    pub forgettable: Vec<[u8; 32]>,
    /// Names whose register is a tombstone older than the tombstone grace.
    pub tombstones: Vec<(String, String)>,
}

/// What a collection removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collected {
    /// Chunks dropped.
    pub chunks: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Manifests dropped.
    pub manifests: u64,
    /// Tombstones dropped.
    pub tombstones: u64,
}

type RefsTable = ReadOnlyTable<(&'static [u8; 32], &'static [u8; 32]), u64>;

/// Calls `f` once per target with its references, in target order.
pub(super) fn for_each_target(
    refs: &RefsTable,
    mut f: impl FnMut([u8; 32], &[(VersionId, RefState)]),
) -> Result<(), StoreError> {
    const WHAT: &str = "reading references";
    let mut current: Option<[u8; 32]> = None;
    let mut group = Vec::new();
    for row in refs.iter().context(WHAT)? {
        let (k, v) = row.context(WHAT)?;
        let (target, version) = k.value();
        if current.is_some_and(|c| c != *target) {
            f(current.take().expect("checked"), &group);
            group.clear();
        }
        current = Some(*target);
        group.push((VersionId(*version), RefState::from_u64(v.value())));
    }
    if let Some(target) = current {
        f(target, &group);
    }
    Ok(())
}

/// The states of a target's references folded into one: live if any is, else
/// dead since the latest death.
fn summary(refs: &[(VersionId, RefState)]) -> RefState {
    refs.iter()
        .map(|(_, s)| *s)
        .reduce(|a, b| match (a, b) {
            (RefState::Live, _) | (_, RefState::Live) => RefState::Live,
            (RefState::Dead { since_millis: x }, RefState::Dead { since_millis: y }) => {
                RefState::Dead {
                    since_millis: x.max(y),
                }
            }
        })
        .unwrap_or(RefState::Live)
}

/// Every reference on `target`.
pub(super) fn refs_range(
    target: &[u8; 32],
) -> std::ops::RangeInclusive<(&[u8; 32], &'static [u8; 32])> {
    (target, &[0; 32])..=(target, &[0xff; 32])
}

/// Targets whose references all died more than a grace ago: anti-entropy
/// no longer spreads them (a copy pushed back to a node that collected it
/// would be kept for another grace, and pushed on in turn).
pub(super) fn expired_targets(
    refs: &RefsTable,
    clock: GcClock,
) -> Result<HashSet<[u8; 32]>, StoreError> {
    let mut expired = HashSet::new();
    for_each_target(refs, |target, group| {
        if let RefState::Dead { since_millis } = summary(group)
            && since_millis.saturating_add(clock.grace_millis) <= clock.now_millis
        {
            expired.insert(target);
        }
    })?;
    Ok(expired)
}

/// The inventory entries of the references, one per target.
pub(super) fn ref_entries(
    refs: &RefsTable,
    mut add: impl FnMut([u8; 32], u64),
) -> Result<(), StoreError> {
    for_each_target(refs, |target, group| {
        add(target, refs_fingerprint(group.iter().copied()))
    })
}

impl Store {
    /// The targets that may be collected by the rule, and the references
    /// that may be forgotten. One read transaction.
    pub fn gc_scan(&self, clock: GcClock) -> Result<GcScan, StoreError> {
        const WHAT: &str = "scanning for garbage";
        let txn = self.db.begin_read().context(WHAT)?;
        let refs = txn.open_table(tables::REFS).context(WHAT)?;
        let written = txn.open_table(tables::WRITTEN).context(WHAT)?;
        let holds = txn.open_table(tables::CHUNK_HOLDS).context(WHAT)?;
        let manifests = txn.open_table(tables::REPLICA_MANIFESTS).context(WHAT)?;
        let mut summaries = BTreeMap::new();
        for_each_target(&refs, |target, group| {
            summaries.insert(target, summary(group));
        })?;
        let mut scan = GcScan::default();
        for row in written.iter().context(WHAT)? {
            let (target, at) = row.context(WHAT)?;
            let target = *target.value();
            let kind = if holds.get(&target).context(WHAT)?.is_some() {
                ItemKind::Chunk
            } else if manifests.get(&target).context(WHAT)?.is_some() {
                ItemKind::Manifest
            } else {
                continue;
            };
            let refs = summaries.get(&target).copied();
            if gc_verdict(refs, Some(at.value()), clock.now_millis, clock.grace_millis)
                == GcVerdict::Drop
            {
                scan.collectable.push((kind, target));
            }
        }
        let names = txn.open_table(tables::REPLICA_NAMES).context(WHAT)?;
        for row in names.iter().context(WHAT)? {
            let (k, v) = row.context(WHAT)?;
            let expired = tables::decode_register(v.value()).is_some_and(|r| {
                r.entry
                    .is_expired_tombstone(clock.now_millis, clock.tombstone_grace_millis)
            });
            if expired {
                let (bucket, key) = k.value();
                scan.tombstones.push((bucket.to_string(), key.to_string()));
            }
        }
        for (target, state) in summaries {
            if let RefState::Dead { since_millis } = state
                && since_millis.saturating_add(2 * clock.grace_millis) <= clock.now_millis
                && holds.get(&target).context(WHAT)?.is_none()
                && manifests.get(&target).context(WHAT)?.is_none()
            {
                scan.forgettable.push(target);
            }
        }
        Ok(scan)
    }

    /// Which of `targets` this node holds a live reference to.
    pub fn live_refs(&self, targets: &[[u8; 32]]) -> Result<Vec<[u8; 32]>, StoreError> {
        const WHAT: &str = "reading references";
        let txn = self.db.begin_read().context(WHAT)?;
        let refs = txn.open_table(tables::REFS).context(WHAT)?;
        let mut live = Vec::new();
        for target in targets {
            for row in refs.range(refs_range(target)).context(WHAT)? {
                if RefState::from_u64(row.context(WHAT)?.1.value()) == RefState::Live {
                    live.push(*target);
                    break;
                }
            }
        }
        Ok(live)
    }

    /// Every reference held on `targets`.
    pub fn refs_on(&self, targets: &BTreeSet<[u8; 32]>) -> Result<Vec<Ref>, StoreError> {
        const WHAT: &str = "reading references";
        let txn = self.db.begin_read().context(WHAT)?;
        let refs = txn.open_table(tables::REFS).context(WHAT)?;
        let mut out = Vec::new();
        for target in targets {
            for row in refs.range(refs_range(target)).context(WHAT)? {
                let (k, v) = row.context(WHAT)?;
                out.push(Ref {
                    target: *target,
                    version: VersionId(*k.value().1),
                    state: RefState::from_u64(v.value()),
                });
            }
        }
        Ok(out)
    }

    /// At most `limit` unconfirmed versions whose references came a grace ago
    /// or more (their puts are over), and how many versions are unconfirmed.
    pub fn unconfirmed_versions(
        &self,
        clock: GcClock,
        limit: usize,
    ) -> Result<(Vec<(VersionId, VersionName)>, usize), StoreError> {
        const WHAT: &str = "reading unconfirmed versions";
        let txn = self.db.begin_read().context(WHAT)?;
        let table = txn.open_table(tables::UNCONFIRMED_VERSIONS).context(WHAT)?;
        let total = table.len().context(WHAT)? as usize;
        let mut due = Vec::new();
        for row in table.iter().context(WHAT)? {
            if due.len() == limit {
                break;
            }
            let (k, v) = row.context(WHAT)?;
            if let Ok((name, since)) = postcard::from_bytes::<(VersionName, u64)>(v.value())
                && since.saturating_add(clock.grace_millis) <= clock.now_millis
            {
                due.push((VersionId(*k.value()), name));
            }
        }
        Ok((due, total))
    }

    /// The versions this node saw beaten whose references it has yet to mark
    /// dead on the targets' owners: (version, object, dead since ms).
    pub fn dead_versions(&self) -> Result<Vec<(VersionId, ObjectId, u64)>, StoreError> {
        const WHAT: &str = "reading dead versions";
        let txn = self.db.begin_read().context(WHAT)?;
        let table = txn.open_table(tables::DEAD_VERSIONS).context(WHAT)?;
        let mut out = Vec::new();
        for row in table.iter().context(WHAT)? {
            let (k, v) = row.context(WHAT)?;
            if let Ok((object, since)) = postcard::from_bytes::<(ObjectId, u64)>(v.value()) {
                out.push((VersionId(*k.value()), object, since));
            }
        }
        Ok(out)
    }
}
