//! Each node's share of the replica slots, proportional to capacity.
//!
//! Webster's method (Sainte-Laguë): every slot goes, one at a time, to the
//! node with the highest `capacity / (2 × held + 1)`. Integer shares end within
//! one of the exact proportional share, nobody's share grows when a node
//! joins (divisor methods are population-monotone), and the arithmetic is exact
//! integers, so every machine gets the same answer. Caps are respected on the
//! way: a node holds a partition at most once, and a zone at most its
//! per-partition quota in every partition.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A node's claim on the next slot.
#[derive(Debug, PartialEq, Eq)]
struct Claim {
    capacity: u64,
    /// `2 × held + 1`.
    divisor: u64,
    node: usize,
}

impl Ord for Claim {
    fn cmp(&self, other: &Self) -> Ordering {
        // capacity / divisor, compared exactly; on a tie the lower index (the
        // lower node id) first.
        let left = u128::from(self.capacity) * u128::from(other.divisor);
        let right = u128::from(other.capacity) * u128::from(self.divisor);
        left.cmp(&right).then(other.node.cmp(&self.node))
    }
}

impl PartialOrd for Claim {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Each node's share, and where a tie decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shares {
    /// Slots per node.
    pub held: Vec<u64>,
    /// The node's last slot tied with the last slot given: another node in
    /// the tie could have had it instead.
    pub may_lose: Vec<bool>,
    /// The node's next claim tied with the last slot given: it could have had
    /// that slot instead.
    pub may_gain: Vec<bool>,
}

/// Shares of `total` slots among nodes of `capacities` (all above zero), node
/// `i` in zone `zones[i]`, with at most `node_cap` slots per node and
/// `zone_caps[z]` per zone. The caps must leave room for `total` slots.
pub(crate) fn apportion(
    capacities: &[u64],
    zones: &[usize],
    zone_caps: &[u64],
    node_cap: u64,
    total: u64,
) -> Shares {
    let mut held = vec![0u64; capacities.len()];
    let mut zone_held = vec![0u64; zone_caps.len()];
    let mut heap: BinaryHeap<Claim> = capacities
        .iter()
        .enumerate()
        .map(|(node, &capacity)| Claim {
            capacity,
            divisor: 1,
            node,
        })
        .collect();
    let mut given = 0;
    // The claim that won the last slot: (capacity, divisor).
    let mut last = None;
    while given < total {
        let Some(claim) = heap.pop() else {
            debug_assert!(false, "caps leave room for every slot");
            break;
        };
        let node = claim.node;
        if held[node] >= node_cap || zone_held[zones[node]] >= zone_caps[zones[node]] {
            continue; // full: drop its claim for good
        }
        held[node] += 1;
        zone_held[zones[node]] += 1;
        given += 1;
        last = Some((claim.capacity, claim.divisor));
        heap.push(Claim {
            divisor: 2 * held[node] + 1,
            ..claim
        });
    }
    // capacity / divisor equal to the last winning claim, compared exactly.
    let ties = |capacity: u64, divisor: u64| {
        last.is_some_and(|(c, d): (u64, u64)| {
            u128::from(capacity) * u128::from(d) == u128::from(c) * u128::from(divisor)
        })
    };
    let may_lose = (0..held.len())
        .map(|n| held[n] > 0 && ties(capacities[n], 2 * held[n] - 1))
        .collect();
    let may_gain = (0..held.len())
        .map(|n| {
            held[n] < node_cap
                && zone_held[zones[n]] < zone_caps[zones[n]]
                && ties(capacities[n], 2 * held[n] + 1)
        })
        .collect();
    Shares {
        held,
        may_lose,
        may_gain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_capacities_get_equal_shares_within_one() {
        let shares = apportion(&[1; 7], &[0; 7], &[1000], 1000, 100);
        assert_eq!(shares.held.iter().sum::<u64>(), 100);
        // The extra slots go to the lowest ids, by a tie any node could have won.
        assert_eq!(shares.held, vec![15, 15, 14, 14, 14, 14, 14]);
        assert_eq!(
            shares.may_lose,
            [true, true, false, false, false, false, false]
        );
        assert_eq!(
            shares.may_gain,
            [false, false, true, true, true, true, true]
        );
    }

    #[test]
    fn shares_follow_capacity() {
        let shares = apportion(&[1, 2, 3, 4], &[0, 1, 2, 3], &[1000; 4], 1000, 100);
        assert_eq!(shares.held, vec![10, 20, 30, 40]);
    }

    #[test]
    fn caps_push_the_rest_to_the_others() {
        // Node 0 would get 90 but holds at most 50.
        let shares = apportion(&[9, 1], &[0, 1], &[1000, 1000], 50, 100);
        assert_eq!(shares.held, vec![50, 50]);
        // Zone 0 (nodes 0 and 1) may hold at most 40 in all.
        let shares = apportion(&[5, 5, 1, 1], &[0, 0, 1, 1], &[40, 1000], 1000, 100);
        assert_eq!(shares.held, vec![20, 20, 30, 30]);
    }
}
