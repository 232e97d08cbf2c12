//! The CRDT laws of the name table, tombstones, listing and the HLC rules.

use proptest::prelude::*;

use super::*;
use crate::membership::NodeId;
use crate::placement::PartitionCount;
use crate::{BucketName, ObjectId, ObjectKey};

fn bucket(name: &str) -> BucketName {
    BucketName::parse(name).unwrap()
}

fn key(name: &str) -> ObjectKey {
    ObjectKey::parse(name).unwrap()
}

fn object(n: u8) -> ObjectId {
    ObjectId::from_bytes([n; 32])
}

fn stamp(wall: u64, counter: u32, node: u64) -> Hlc {
    Hlc::new(wall, counter, NodeId::synthetic(node))
}

/// One write: bucket and key from small sets, so that writes collide.
fn write() -> impl Strategy<Value = (usize, usize, Option<u8>, Hlc)> {
    (
        0usize..2,
        0usize..4,
        prop::option::of(0u8..4),
        0u64..6,
        0u32..3,
        0u64..3,
    )
        .prop_map(|(b, k, v, w, c, n)| (b, k, v, stamp(w, c, n)))
}

fn table(writes: &[(usize, usize, Option<u8>, Hlc)]) -> NameTable {
    let buckets = [bucket("alpha"), bucket("beta")];
    let keys = [key("a"), key("a/b"), key("b"), key("c")];
    let mut t = NameTable::new();
    for &(b, k, v, s) in writes {
        match v {
            Some(v) => t.put(&buckets[b], &keys[k], object(v), s),
            None => t.delete(&buckets[b], &keys[k], s),
        };
    }
    t
}

fn merged(a: &NameTable, b: &NameTable) -> NameTable {
    let mut out = a.clone();
    out.merge(b);
    out
}

fn tables() -> impl Strategy<Value = NameTable> {
    prop::collection::vec(write(), 0..12).prop_map(|w| table(&w))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn merge_is_commutative(a in tables(), b in tables()) {
        prop_assert_eq!(merged(&a, &b), merged(&b, &a));
    }

    #[test]
    fn merge_is_associative(a in tables(), b in tables(), c in tables()) {
        prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
    }

    #[test]
    fn merge_is_idempotent(a in tables(), b in tables()) {
        prop_assert_eq!(merged(&a, &a), a.clone());
        let ab = merged(&a, &b);
        prop_assert_eq!(merged(&ab, &b), ab);
    }

    /// Writes applied in any order, or split between replicas and merged,
    /// end in the same table.
    #[test]
    fn the_order_of_writes_does_not_matter(writes in prop::collection::vec(write(), 0..16), split in 0usize..16) {
        let mut reversed = writes.clone();
        reversed.reverse();
        prop_assert_eq!(table(&writes), table(&reversed));
        let split = split.min(writes.len());
        prop_assert_eq!(merged(&table(&writes[..split]), &table(&writes[split..])), table(&writes));
    }

    /// A delete and a concurrent write: the higher stamp wins on both
    /// replicas, whichever merges first.
    #[test]
    fn a_tombstone_and_a_concurrent_write_resolve_by_the_higher_stamp(
        put in (0u64..4, 0u32..3, 0u64..3), del in (0u64..4, 0u32..3, 0u64..3),
    ) {
        let (put, del) = (stamp(put.0, put.1, put.2), stamp(del.0, del.1, del.2));
        prop_assume!(put != del);
        let (b, k) = (bucket("alpha"), key("k"));
        let mut writer = NameTable::new();
        writer.put(&b, &k, object(1), put);
        let mut deleter = NameTable::new();
        deleter.delete(&b, &k, del);
        let one = merged(&writer, &deleter);
        let other = merged(&deleter, &writer);
        prop_assert_eq!(&one, &other);
        let expected = if put > del { Some(object(1)) } else { None };
        prop_assert_eq!(one.get(&b, &k), expected);
    }

    /// Once deleted, a name stays deleted whatever older write is merged in.
    #[test]
    fn an_older_write_does_not_resurrect_a_deleted_name(
        old in (0u64..5, 0u32..3, 0u64..3), writes in prop::collection::vec(write(), 0..8),
    ) {
        let (b, k) = (bucket("alpha"), key("k"));
        let old = stamp(old.0, old.1, old.2);
        let mut replica = table(&writes);
        replica.delete(&b, &k, stamp(5, 3, 0));
        let mut stale = NameTable::new();
        stale.put(&b, &k, object(9), old);
        replica.merge(&stale);
        prop_assert_eq!(replica.get(&b, &k), None);
        prop_assert!(replica.entry(&b, &k).unwrap().is_deleted());
    }

    /// The HLC never goes back, whatever the physical clock does, and a
    /// received stamp is always below every later local one.
    #[test]
    fn hlc_stamps_only_grow(events in prop::collection::vec((any::<bool>(), 0u64..100, 0u64..100, 0u32..4), 1..40)) {
        let mut clock = HlcClock::new(NodeId::synthetic(1), 1_000);
        let mut last = clock.last();
        for (receive, physical, remote_wall, counter) in events {
            let next = if receive {
                let remote = stamp(remote_wall, counter, 2);
                let got = clock.observe(remote, physical).unwrap();
                prop_assert!(got > remote);
                got
            } else {
                clock.now(physical)
            };
            prop_assert!(next > last);
            prop_assert!(next.wall_millis >= physical);
            last = next;
        }
    }
}

#[test]
fn equal_wall_times_are_ordered_by_counter_then_node() {
    assert!(stamp(10, 1, 0) > stamp(10, 0, 5));
    assert!(stamp(10, 1, 2) > stamp(10, 1, 1));
    assert!(stamp(11, 0, 0) > stamp(10, 9, 9));
    // So a tie of wall time and counter goes to the higher node id.
    let (b, k) = (bucket("alpha"), key("k"));
    let mut t = NameTable::new();
    t.put(&b, &k, object(1), stamp(10, 1, 2));
    assert!(!t.delete(&b, &k, stamp(10, 1, 1)));
    assert_eq!(t.get(&b, &k), Some(object(1)));
    assert!(t.delete(&b, &k, stamp(10, 1, 3)));
    assert_eq!(t.get(&b, &k), None);
}

#[test]
fn the_clock_follows_physical_time_and_counts_within_a_millisecond() {
    let mut clock = HlcClock::new(NodeId::synthetic(1), 1_000);
    assert_eq!(clock.now(100), stamp(100, 0, 1));
    assert_eq!(clock.now(100), stamp(100, 1, 1));
    assert_eq!(clock.now(101), stamp(101, 0, 1));
    // The physical clock goes back: the HLC does not.
    assert_eq!(clock.now(50), stamp(101, 1, 1));
    // A remote stamp ahead of us (within the drift) pulls us forward.
    assert_eq!(
        clock.observe(stamp(500, 7, 2), 102).unwrap(),
        stamp(500, 8, 1)
    );
    assert_eq!(clock.now(103), stamp(500, 9, 1));
    // Physical time catching up resets the counter.
    assert_eq!(clock.now(600), stamp(600, 0, 1));
}

#[test]
fn a_stamp_beyond_the_drift_is_refused_and_changes_nothing() {
    let mut clock = HlcClock::new(NodeId::synthetic(1), 1_000);
    clock.now(100);
    let before = clock.clone();
    let err = clock.observe(stamp(1_101, 0, 2), 100).unwrap_err();
    assert!(matches!(
        err,
        ClockError::TooFarAhead {
            ahead_millis: 1_001,
            ..
        }
    ));
    assert!(err.to_string().contains("ahead"), "{err}");
    assert_eq!(clock, before);
    // Exactly the drift is accepted.
    assert!(clock.observe(stamp(1_100, 0, 2), 100).is_ok());
}

#[test]
fn a_full_counter_moves_the_wall_time_on() {
    let mut clock = HlcClock::resume(stamp(100, u32::MAX, 1), 1_000);
    assert_eq!(clock.now(100), stamp(101, 0, 1));
}

#[test]
fn tombstones_are_collected_after_the_grace_only() {
    let (b, k1, k2, k3) = (bucket("alpha"), key("one"), key("two"), key("three"));
    let mut t = NameTable::new();
    t.delete(&b, &k1, stamp(1_000, 0, 1));
    t.delete(&b, &k2, stamp(5_000, 0, 1));
    t.put(&b, &k3, object(3), stamp(1_000, 0, 1));
    assert_eq!(t.collect_tombstones(5_999, 5_000), 0);
    assert_eq!(t.collect_tombstones(6_000, 5_000), 1);
    assert!(t.entry(&b, &k1).is_none());
    assert!(t.entry(&b, &k2).unwrap().is_deleted());
    // Live names are never collected, however old.
    assert_eq!(t.collect_tombstones(u64::MAX, 0), 1);
    assert_eq!(t.get(&b, &k3), Some(object(3)));
    assert_eq!(t.len(), 1);
}

/// After collection, the grace period is the only protection: a replica that
/// was cut off longer and kept an older write brings the name back. This is
/// why the grace must exceed the longest partition to heal.
#[test]
fn a_write_older_than_a_collected_tombstone_comes_back() {
    let (b, k) = (bucket("alpha"), key("k"));
    let mut cut_off = NameTable::new();
    cut_off.put(&b, &k, object(1), stamp(1_000, 0, 1));
    let mut healthy = cut_off.clone();
    healthy.delete(&b, &k, stamp(2_000, 0, 2));
    healthy.collect_tombstones(2_000 + 10_000, 10_000);
    healthy.merge(&cut_off);
    assert_eq!(healthy.get(&b, &k), Some(object(1)));
}

#[test]
fn listing_is_sorted_by_prefix_paginated_and_skips_tombstones() {
    let b = bucket("photos");
    let mut t = NameTable::new();
    for (i, name) in ["2024/b", "2024/a", "2023/x", "2024/c", "2024/d", "2025/a"]
        .iter()
        .enumerate()
    {
        t.put(&b, &key(name), object(i as u8), stamp(10, 0, 1));
    }
    t.put(&bucket("other"), &key("2024/z"), object(9), stamp(10, 0, 1));
    t.delete(&b, &key("2024/c"), stamp(11, 0, 1));

    let keys = |page: &NamePage| {
        page.entries
            .iter()
            .map(|(k, _)| k.to_string())
            .collect::<Vec<_>>()
    };
    let first = t.list(&b, "2024/", None, 2);
    assert_eq!(keys(&first), ["2024/a", "2024/b"]);
    assert_eq!(first.next, Some(key("2024/b")));
    let second = t.list(&b, "2024/", first.next.as_ref(), 2);
    assert_eq!(keys(&second), ["2024/d"]);
    assert_eq!(second.next, None);
    assert_eq!(keys(&t.list(&b, "", None, 10)).len(), 5);
    // A start before the prefix starts at the prefix.
    assert_eq!(
        keys(&t.list(&b, "2024/", Some(&key("2000")), 1)),
        ["2024/a"]
    );
    assert!(t.list(&bucket("none"), "", None, 10).entries.is_empty());
}

/// Names spread over partitions; listing each partition and merging the pages
/// gives the same pages as listing one table holding every name.
#[test]
fn listing_across_partitions_matches_listing_one_table() {
    let b = bucket("logs");
    let count = PartitionCount::new(8).unwrap();
    let mut whole = NameTable::new();
    let mut parts = vec![NameTable::new(); 8];
    for i in 0..200u32 {
        let k = key(&format!("day-{:03}/part-{}", i / 7, i % 7));
        let s = stamp(u64::from(i), 0, 1);
        whole.put(&b, &k, object(i as u8), s);
        parts[count.of_name(&b, &k).index() as usize].put(&b, &k, object(i as u8), s);
        if i % 5 == 0 {
            whole.delete(&b, &k, stamp(1_000, 0, 1));
            parts[count.of_name(&b, &k).index() as usize].delete(&b, &k, stamp(1_000, 0, 1));
        }
    }
    for limit in [1, 7, 50, 500] {
        let mut after: Option<ObjectKey> = None;
        let mut pages = 0;
        loop {
            let expected = whole.list(&b, "day-0", after.as_ref(), limit);
            let got = merge_pages(
                parts
                    .iter()
                    .map(|t| t.list(&b, "day-0", after.as_ref(), limit)),
                limit,
            );
            assert_eq!(got, expected, "limit {limit}, after {after:?}");
            pages += 1;
            match got.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert!(pages >= 1);
    }
}
