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

/// Shares of `total` slots among nodes of `capacities` (all above zero), node
/// `i` in zone `zones[i]`, with at most `node_cap` slots per node and
/// `zone_caps[z]` per zone. The caps must leave room for `total` slots.
pub(crate) fn apportion(
    capacities: &[u64],
    zones: &[usize],
    zone_caps: &[u64],
    node_cap: u64,
    total: u64,
) -> Vec<u64> {
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
        heap.push(Claim {
            divisor: 2 * held[node] + 1,
            ..claim
        });
    }
    held
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_capacities_get_equal_shares_within_one() {
        let shares = apportion(&[1; 7], &[0; 7], &[1000], 1000, 100);
        assert_eq!(shares.iter().sum::<u64>(), 100);
        assert!(shares.iter().all(|&s| s == 14 || s == 15), "{shares:?}");
        // The extra slots go to the lowest ids.
        assert_eq!(shares, vec![15, 15, 14, 14, 14, 14, 14]);
    }

    #[test]
    fn shares_follow_capacity() {
        let shares = apportion(&[1, 2, 3, 4], &[0, 1, 2, 3], &[1000; 4], 1000, 100);
        assert_eq!(shares, vec![10, 20, 30, 40]);
    }

    #[test]
    fn caps_push_the_rest_to_the_others() {
        // Node 0 would get 90 but holds at most 50.
        let shares = apportion(&[9, 1], &[0, 1], &[1000, 1000], 50, 100);
        assert_eq!(shares, vec![50, 50]);
        // Zone 0 (nodes 0 and 1) may hold at most 40 in all.
        let shares = apportion(&[5, 5, 1, 1], &[0, 0, 1, 1], &[40, 1000], 1000, 100);
        assert_eq!(shares, vec![20, 20, 30, 30]);
    }
}
