//! Placement laws: balance, minimal movement on join and leave, zone
//! distinctness, capacity weighting, determinism.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;
use crate::membership::NodeId;

const RF: u8 = 3;

fn node(n: u64, zone: usize, capacity: u64) -> NodeSpec {
    NodeSpec::new(NodeId::synthetic(n), format!("zone-{zone}"), capacity)
}

/// `zones × per_zone` nodes of capacity 1, `zones` equal zones.
fn equal_view(zones: usize, per_zone: usize) -> View {
    View::new((0..zones * per_zone).map(|i| node(i as u64, i % zones, 1))).unwrap()
}

fn config(partitions: u32) -> PlacementConfig {
    PlacementConfig::new(partitions, RF).unwrap()
}

/// Replica slots in all (`partitions × replication`).
fn slots(layout: &Layout) -> usize {
    layout.partitions().get() as usize * layout.replication()
}

/// The largest distance of a node's count from the mean, above and below.
fn spread(layout: &Layout) -> (f64, f64) {
    let counts = layout.replicas_per_node();
    let mean = slots(layout) as f64 / counts.len() as f64;
    let max = *counts.values().max().unwrap() as f64;
    let min = *counts.values().min().unwrap() as f64;
    (max - mean, mean - min)
}

/// Balance as the issue states it (within 5 % of the mean), with the one
/// replica that integer counts may need: with a mean of 12.5 no layout can be
/// closer than 0.5, which is 4 %; with a mean below 20 one replica is more
/// than 5 %.
fn assert_balanced(layout: &Layout) -> Result<(), TestCaseError> {
    let mean = slots(layout) as f64 / layout.view().len() as f64;
    let allowed = (0.05 * mean).max(1.0);
    let (above, below) = spread(layout);
    prop_assert!(above <= allowed, "max is {above} above the mean {mean}");
    prop_assert!(below <= allowed, "min is {below} below the mean {mean}");
    Ok(())
}

fn assert_distinct_zones(layout: &Layout) -> Result<(), TestCaseError> {
    for p in layout.partitions().all() {
        let replicas = layout.replicas(p);
        let zones: BTreeSet<&str> = replicas
            .iter()
            .map(|id| layout.node(id).unwrap().zone.as_str())
            .collect();
        prop_assert_eq!(zones.len(), replicas.len(), "{} shares a zone", p);
    }
    Ok(())
}

/// At most 10 % above the minimum, rounded up to whole replicas.
fn within_ten_percent(moved: usize, minimum: usize) -> bool {
    moved * 10 <= minimum * 11 + 9
}

fn partition_counts() -> impl Strategy<Value = u32> {
    prop_oneof![Just(256u32), Just(512), Just(1024)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// Equal capacities in equal zones (so no zone quota binds): every node's
    /// count is within max(1, 5 % of the mean) of the mean.
    #[test]
    fn equal_capacities_are_balanced_within_five_percent(
        zones in 3usize..=8, per_zone in 1usize..=8, partitions in partition_counts(),
    ) {
        let layout = Layout::initial(&equal_view(zones, per_zone), config(partitions)).unwrap();
        assert_balanced(&layout)?;
    }

    /// A join moves at most 10 % more replica slots than the new node takes
    /// (each of its replicas has to arrive, so that is the minimum), the new
    /// node takes its fair share, and the result stays balanced.
    #[test]
    fn a_join_moves_within_ten_percent_of_the_minimum(
        zones in 3usize..=8, per_zone in 1usize..=8, partitions in partition_counts(),
        new_zone in 0usize..16,
    ) {
        let view = equal_view(zones, per_zone);
        let before = Layout::initial(&view, config(partitions)).unwrap();
        let joiner = node(1000, new_zone, 1);
        let after = before.next(&view.with(joiner.clone())).unwrap();
        let moved = before.diff(&after).unwrap().len();
        let minimum = after.replicas_per_node()[&joiner.id];
        prop_assert!(within_ten_percent(moved, minimum), "moved {moved}, minimum {minimum}");
        assert_distinct_zones(&after)?;
        if new_zone >= zones {
            // A new zone: no zone quota binds, so the new node gets a full share.
            let fair = slots(&after) / after.view().len();
            prop_assert!(minimum >= fair, "the new node took {minimum}, fair is {fair}");
            assert_balanced(&after)?;
        }
    }

    /// A leave moves at most 10 % more replica slots than the leaving node held.
    #[test]
    fn a_leave_moves_within_ten_percent_of_the_minimum(
        zones in 3usize..=8, per_zone in 2usize..=8, partitions in partition_counts(),
        leaver in any::<prop::sample::Index>(),
    ) {
        let view = equal_view(zones, per_zone);
        let before = Layout::initial(&view, config(partitions)).unwrap();
        let gone = view.nodes()[leaver.index(view.len())].id;
        let after = before.next(&view.without(&gone)).unwrap();
        let moved = before.diff(&after).unwrap().len();
        let minimum = before.replicas_per_node()[&gone];
        prop_assert!(within_ten_percent(moved, minimum), "moved {moved}, minimum {minimum}");
        assert_distinct_zones(&after)?;
    }

    /// Any zones, any capacities: while there are at least RF zones, no two
    /// replicas of a partition share a zone — also after joins and leaves.
    #[test]
    fn replicas_are_in_distinct_zones_while_zones_are_at_least_rf(
        nodes in prop::collection::vec((0usize..6, 1u64..=5), 3..40),
        partitions in partition_counts(),
    ) {
        let view = View::new(nodes.iter().enumerate().map(|(i, &(z, c))| node(i as u64, z, c))).unwrap();
        let zones: BTreeSet<&str> = view.nodes().iter().map(|n| n.zone.as_str()).collect();
        prop_assume!(zones.len() >= usize::from(RF));
        let layout = Layout::initial(&view, config(partitions)).unwrap();
        assert_distinct_zones(&layout)?;
        let grown = layout.next(&view.with(node(500, 0, 3))).unwrap();
        assert_distinct_zones(&grown)?;
        let shrunk = grown.next(&grown.view().without(&view.nodes()[0].id)).unwrap();
        let zones_left: BTreeSet<&str> = shrunk.view().nodes().iter().map(|n| n.zone.as_str()).collect();
        if zones_left.len() >= usize::from(RF) {
            assert_distinct_zones(&shrunk)?;
        }
    }

    /// Fewer zones than RF: replicas are still on distinct nodes, and no zone
    /// holds more of a partition than it must.
    #[test]
    fn with_fewer_zones_than_rf_replicas_spread_as_far_as_they_can(
        nodes in prop::collection::vec((0usize..2, 1u64..=3), 3..20),
    ) {
        let view = View::new(nodes.iter().enumerate().map(|(i, &(z, c))| node(i as u64, z, c))).unwrap();
        let layout = Layout::initial(&view, config(256)).unwrap();
        let zone_sizes: Vec<usize> = (0..2)
            .map(|z| view.nodes().iter().filter(|n| n.zone == format!("zone-{z}")).count())
            .collect();
        for p in layout.partitions().all() {
            let replicas = layout.replicas(p);
            let distinct: BTreeSet<_> = replicas.iter().collect();
            prop_assert_eq!(distinct.len(), usize::from(RF));
            for (z, &size) in zone_sizes.iter().enumerate() {
                let zone = format!("zone-{z}");
                let here = replicas.iter().filter(|id| layout.node(id).unwrap().zone == zone).count();
                // Two zones and RF = 3: a zone holds at most 2, or 3 when the
                // other zone has no node.
                let most = if size == view.len() { 3 } else { 2 };
                prop_assert!(here <= most, "{} has {here} replicas in {zone}", p);
            }
        }
    }

    /// Each node in its own zone with capacity 1 to 4, and no node entitled to
    /// more than one replica of every partition: each node's count is within
    /// max(1, 5 %) of its capacity-proportional share.
    #[test]
    fn capacity_weighting_is_respected(
        capacities in prop::collection::vec(1u64..=4, 3..40),
        partitions in partition_counts(),
    ) {
        let total: u64 = capacities.iter().sum();
        let max = *capacities.iter().max().unwrap();
        prop_assume!(u64::from(RF) * max <= total);
        let view = View::new(capacities.iter().enumerate().map(|(i, &c)| node(i as u64, i, c))).unwrap();
        let layout = Layout::initial(&view, config(partitions)).unwrap();
        let counts = layout.replicas_per_node();
        for spec in view.nodes() {
            let share = slots(&layout) as f64 * spec.capacity as f64 / total as f64;
            let held = counts[&spec.id] as f64;
            prop_assert!((held - share).abs() <= (0.05 * share).max(1.0),
                "capacity {} holds {held}, share {share}", spec.capacity);
        }
    }

    /// The same view given in any order gives the same layout, first and next.
    #[test]
    fn the_order_of_the_view_does_not_matter(
        nodes in prop::collection::vec((0usize..5, 1u64..=3), 3..24),
        seed in any::<u64>(),
    ) {
        let specs: Vec<NodeSpec> = nodes.iter().enumerate().map(|(i, &(z, c))| node(i as u64, z, c)).collect();
        let mut shuffled = specs.clone();
        // A seeded Fisher–Yates shuffle.
        let mut state = seed;
        for i in (1..shuffled.len()).rev() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (state >> 33) as usize % (i + 1));
        }
        let a = Layout::initial(&View::new(specs.clone()).unwrap(), config(256)).unwrap();
        let b = Layout::initial(&View::new(shuffled.clone()).unwrap(), config(256)).unwrap();
        prop_assert_eq!(&a, &b);
        let mut grown = shuffled;
        grown.insert(0, node(99, 1, 2));
        let next_a = a.next(&View::new(grown.clone()).unwrap()).unwrap();
        grown.reverse();
        let next_b = b.next(&View::new(grown).unwrap()).unwrap();
        prop_assert_eq!(next_a, next_b);
    }
}

#[test]
fn a_node_with_twice_the_capacity_holds_twice_the_replicas() {
    let view = View::new((0..12).map(|i| node(i, i as usize, if i < 4 { 2 } else { 1 }))).unwrap();
    let layout = Layout::initial(&view, config(1024)).unwrap();
    let counts = layout.replicas_per_node();
    let mean = |range: std::ops::Range<u64>| {
        let n = range.end - range.start;
        range
            .map(|i| counts[&NodeId::synthetic(i)] as f64)
            .sum::<f64>()
            / n as f64
    };
    let ratio = mean(0..4) / mean(4..12);
    assert!((ratio - 2.0).abs() < 0.05, "ratio {ratio}");
}

#[test]
fn partition_counts_must_be_powers_of_two() {
    for bad in [0, 3, 100, 1000, 1 << 17] {
        let err = PartitionCount::new(bad).unwrap_err();
        assert_eq!(err, PlacementError::PartitionCount { got: bad });
        assert!(err.to_string().contains("power of two"), "{err}");
    }
    assert_eq!(PartitionCount::new(1024).unwrap().bits(), 10);
    assert_eq!(
        PlacementConfig::new(256, 0),
        Err(PlacementError::ReplicationZero)
    );
    // Serde checks the rule too.
    assert!(serde_json::from_str::<PartitionCount>("300").is_err());
    assert_eq!(
        serde_json::from_str::<PartitionCount>("512").unwrap().get(),
        512
    );
}

#[test]
fn a_partition_is_the_leading_bits_of_the_hash() {
    let count = PartitionCount::new(256).unwrap();
    let mut hash = [0u8; 32];
    hash[0] = 0xAB;
    hash[1] = 0xFF;
    assert_eq!(count.of_hash(&hash).index(), 0xAB);
    let one = PartitionCount::new(1).unwrap();
    assert_eq!(one.of_hash(&hash).index(), 0);
    let chunk = crate::ChunkId::of(b"some bytes");
    assert_eq!(
        count.of_chunk(&chunk).index(),
        u32::from(chunk.as_bytes()[0])
    );
    let bucket = crate::BucketName::parse("photos").unwrap();
    let key = crate::ObjectKey::parse("2024/cat.jpg").unwrap();
    let expected = blake3::hash(b"photos/2024/cat.jpg");
    assert_eq!(
        count.of_name(&bucket, &key).index(),
        u32::from(expected.as_bytes()[0])
    );
}

#[test]
fn a_node_given_twice_is_refused() {
    let err = View::new([node(1, 0, 1), node(2, 1, 1), node(1, 2, 1)]).unwrap_err();
    assert_eq!(err, PlacementError::DuplicateNode(NodeId::synthetic(1)));
    let empty = View::new([node(1, 0, 0)]).unwrap();
    assert_eq!(
        Layout::initial(&empty, config(256)),
        Err(PlacementError::NoCapacity)
    );
}

#[test]
fn next_with_the_same_view_bumps_the_version_and_moves_nothing() {
    let view = equal_view(3, 2);
    let first = Layout::initial(&view, config(256)).unwrap();
    assert_eq!(first.version(), 1);
    let second = first.next(&view).unwrap();
    assert_eq!(second.version(), 2);
    assert!(first.diff(&second).unwrap().is_empty());
    assert_eq!(second.next(&view).unwrap().version(), 3);
}

#[test]
fn the_diff_lists_every_changed_slot_with_both_owners() {
    let view = equal_view(4, 1);
    let before = Layout::initial(&view, config(256)).unwrap();
    let gone = NodeId::synthetic(2);
    let after = before.next(&view.without(&gone)).unwrap();
    let moves = before.diff(&after).unwrap();
    // Node 2 held 3/4 of the partitions; each of its slots moves, nothing else.
    assert_eq!(moves.len(), before.partitions_of(&gone).len());
    for m in &moves {
        assert_eq!(m.from, Some(gone));
        let to = m.to.unwrap();
        assert_ne!(to, gone);
        assert_eq!(after.replicas(m.partition)[usize::from(m.slot)], to);
        assert_eq!(before.replicas(m.partition)[usize::from(m.slot)], gone);
    }
    // Slots that did not move keep their owner.
    let moved: BTreeSet<(Partition, u8)> = moves.iter().map(|m| (m.partition, m.slot)).collect();
    for p in before.partitions().all() {
        for (slot, id) in before.replicas(p).iter().enumerate() {
            if !moved.contains(&(p, slot as u8)) {
                assert_eq!(after.replicas(p)[slot], *id);
            }
        }
    }
    let other = Layout::initial(&view, config(512)).unwrap();
    assert!(matches!(
        before.diff(&other),
        Err(PlacementError::PartitionCountMismatch { .. })
    ));
}

#[test]
fn fewer_nodes_than_rf_hold_every_partition_and_grow_back() {
    let two = View::new([node(1, 0, 1), node(2, 1, 1)]).unwrap();
    let small = Layout::initial(&two, config(256)).unwrap();
    assert_eq!(small.replication(), 2);
    assert!(
        small
            .partitions()
            .all()
            .all(|p| small.replicas(p).len() == 2)
    );
    let three = small.next(&two.with(node(3, 2, 1))).unwrap();
    assert_eq!(three.replication(), 3);
    let moves = small.diff(&three).unwrap();
    // Only the new third slot of every partition is filled, by the new node.
    assert_eq!(moves.len(), 256);
    assert!(
        moves
            .iter()
            .all(|m| m.from.is_none() && m.to == Some(NodeId::synthetic(3)))
    );
    // And back: the third node leaves, the third slots go away.
    let back = three.next(&two).unwrap();
    let moves = three.diff(&back).unwrap();
    assert_eq!(moves.len(), 256);
    assert!(
        moves
            .iter()
            .all(|m| m.from == Some(NodeId::synthetic(3)) && m.to.is_none())
    );
}

#[test]
fn a_drained_node_holds_nothing() {
    let view = equal_view(4, 2);
    let before = Layout::initial(&view, config(256)).unwrap();
    let drained = view.with(node(0, 0, 0));
    let after = before.next(&drained).unwrap();
    assert_eq!(after.replicas_per_node()[&NodeId::synthetic(0)], 0);
    let moved = before.diff(&after).unwrap().len();
    let minimum = before.replicas_per_node()[&NodeId::synthetic(0)];
    assert!(
        moved >= minimum && within_ten_percent(moved, minimum),
        "moved {moved}, minimum {minimum}"
    );
}

/// A case proptest found: when the first layout filled partitions in a
/// rotation, the leaving node's partitions held the same two other zones
/// again and again, and the nodes of those zones could not take its
/// replicas (36 extra moves out of 204).
#[test]
fn a_leave_from_a_zone_of_three_moves_only_the_leaving_node_s_replicas() {
    let view = equal_view(5, 3);
    let before = Layout::initial(&view, config(1024)).unwrap();
    let gone = view.nodes()[13].id;
    let after = before.next(&view.without(&gone)).unwrap();
    let moves = before.diff(&after).unwrap();
    assert_eq!(moves.len(), before.replicas_per_node()[&gone]);
    assert!(moves.iter().all(|m| m.from == Some(gone)));
}
