//! The assignment of replica slots to nodes, computed from the previous one.
//!
//! 1. Each node's target count of replicas comes from [`apportion`]: shares of
//!    `partitions × RF` proportional to capacity, capped at one replica per
//!    partition per node and at a zone quota per partition.
//! 2. Every previous replica whose node is still in the view is kept in its
//!    slot, unless it breaks the zone quota (the zones changed).
//! 3. Each empty slot goes to an eligible node below its target, chosen by
//!    hash; if none is eligible, an augmenting path through the slots filled
//!    earlier lets one of them take it and pass its slot on, until a node
//!    below target takes the last one.
//! 4. Where a tie in the apportionment decided two nodes' targets, one above
//!    its target and one below swap outcomes instead of moving a replica.
//! 5. While a node is above its target and another below, one replica moves
//!    from the first to the second, in a partition where the zone rule allows.
//!
//! Step 5 is where a join's moves happen and step 3 where a leave's do; each
//! move brings one node one step closer to its target, so the number of moves
//! is the minimum the new targets require unless the zone rule blocks a move.
//! Ties are broken by a hash of (partition, node): deterministic, and spread,
//! so a new node takes partitions from all the others, not from one.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::membership::NodeId;
use crate::placement::apportion::apportion;
use crate::placement::hash::{mix, node_key};
use crate::placement::{PlacementConfig, PlacementError, View};

/// Replicas per partition (by slot), as indices into the eligible nodes.
type Slots = Vec<Vec<Option<usize>>>;

/// The assignment under construction.
#[derive(Debug)]
struct Assigner {
    /// Nodes with capacity above zero, sorted by id.
    nodes: Vec<NodeId>,
    /// A hash of each node's id, mixed with the partition to break ties.
    keys: Vec<u64>,
    /// Each node's zone, an index into `quota`.
    zone: Vec<usize>,
    /// The most replicas of one partition a zone may hold.
    quota: Vec<usize>,
    target: Vec<u64>,
    /// Targets a tie in the apportionment decided (see `apportion::Shares`).
    may_lose: Vec<bool>,
    may_gain: Vec<bool>,
    count: Vec<u64>,
    slots: Slots,
}

/// The replicas of every partition, slot by slot, for `view`, starting from
/// `previous` (the replicas of the previous layout, if any).
pub(crate) fn assign(
    config: &PlacementConfig,
    view: &View,
    previous: Option<&[Vec<NodeId>]>,
) -> Result<Vec<Vec<NodeId>>, PlacementError> {
    let eligible: Vec<_> = view.nodes().iter().filter(|n| n.capacity > 0).collect();
    if eligible.is_empty() {
        return Err(PlacementError::NoCapacity);
    }
    let partitions = config.partitions.get() as usize;
    let rf = usize::from(config.replication).min(eligible.len());

    let mut zone_index = BTreeMap::new();
    for node in &eligible {
        let next = zone_index.len();
        zone_index.entry(node.zone.as_str()).or_insert(next);
    }
    let zone: Vec<usize> = eligible
        .iter()
        .map(|n| zone_index[n.zone.as_str()])
        .collect();
    let mut zone_size = vec![0usize; zone_index.len()];
    for &z in &zone {
        zone_size[z] += 1;
    }
    // The smallest per-zone cap that still lets RF distinct nodes be chosen:
    // 1 (distinct zones) whenever there are at least RF zones.
    let cap = (1..=rf)
        .find(|&k| zone_size.iter().map(|&n| n.min(k)).sum::<usize>() >= rf)
        .unwrap_or(rf);
    let quota: Vec<usize> = zone_size.iter().map(|&n| n.min(cap)).collect();

    let capacities: Vec<u64> = eligible.iter().map(|n| n.capacity).collect();
    let zone_caps: Vec<u64> = quota.iter().map(|&q| (q * partitions) as u64).collect();
    let shares = apportion(
        &capacities,
        &zone,
        &zone_caps,
        partitions as u64,
        (partitions * rf) as u64,
    );

    let nodes: Vec<NodeId> = eligible.iter().map(|n| n.id).collect();
    let keys = nodes.iter().map(node_key).collect();
    let mut assigner = Assigner {
        count: vec![0; nodes.len()],
        slots: vec![vec![None; rf]; partitions],
        nodes,
        keys,
        zone,
        quota,
        target: shares.held,
        may_lose: shares.may_lose,
        may_gain: shares.may_gain,
    };
    if let Some(previous) = previous {
        assigner.keep(previous);
    }
    assigner.enforce_zone_quota();
    assigner.fill();
    assigner.retarget();
    assigner.rebalance();
    Ok(assigner.finish())
}

impl Assigner {
    fn index(&self, id: &NodeId) -> Option<usize> {
        self.nodes.binary_search(id).ok()
    }

    fn put(&mut self, p: usize, slot: usize, node: usize) {
        self.slots[p][slot] = Some(node);
        self.count[node] += 1;
    }

    fn clear(&mut self, p: usize, slot: usize) {
        if let Some(node) = self.slots[p][slot].take() {
            self.count[node] -= 1;
        }
    }

    /// Keeps the previous replicas of nodes still here, in their slots. If RF
    /// shrank (fewer nodes than RF), a replica beyond the last slot moves into
    /// an empty slot rather than being dropped while a copy is missing.
    fn keep(&mut self, previous: &[Vec<NodeId>]) {
        let rf = self.slots.first().map_or(0, Vec::len);
        for (p, replicas) in previous.iter().enumerate().take(self.slots.len()) {
            let mut spare = Vec::new();
            for (slot, id) in replicas.iter().enumerate() {
                let Some(node) = self.index(id) else { continue };
                if self.slots[p].contains(&Some(node)) {
                    continue;
                }
                if slot < rf {
                    self.put(p, slot, node);
                } else {
                    spare.push(node);
                }
            }
            for node in spare {
                if let Some(slot) = self.slots[p].iter().position(Option::is_none) {
                    self.put(p, slot, node);
                }
            }
        }
    }

    fn zone_count(&self, p: usize, zone: usize, except: Option<usize>) -> usize {
        self.slots[p]
            .iter()
            .flatten()
            .filter(|&&n| Some(n) != except && self.zone[n] == zone)
            .count()
    }

    /// Whether `node` may take a slot of `p` (in place of `replacing`).
    fn eligible(&self, p: usize, node: usize, replacing: Option<usize>) -> bool {
        !self.slots[p].contains(&Some(node))
            && self.zone_count(p, self.zone[node], replacing) < self.quota[self.zone[node]]
    }

    fn surplus(&self, node: usize) -> i64 {
        self.count[node] as i64 - self.target[node] as i64
    }

    /// Empties the slots of replicas that break a zone quota (after the zones
    /// changed), taking first from the nodes most above their targets.
    fn enforce_zone_quota(&mut self) {
        for p in 0..self.slots.len() {
            loop {
                let over = self.slots[p]
                    .iter()
                    .flatten()
                    .find(|&&n| self.zone_count(p, self.zone[n], None) > self.quota[self.zone[n]]);
                let Some(&over) = over else { break };
                let zone = self.zone[over];
                let slot = (0..self.slots[p].len())
                    .filter(|&s| self.slots[p][s].is_some_and(|n| self.zone[n] == zone))
                    .max_by_key(|&s| {
                        let n = self.slots[p][s].unwrap_or(over);
                        (self.surplus(n), mix(p, self.keys[n]))
                    });
                match slot {
                    Some(slot) => self.clear(p, slot),
                    None => break,
                }
            }
        }
    }

    /// Which of two candidates for an empty slot of `p` should take it: one
    /// below target before one at or above it (then the one least above);
    /// among those below target, the hash decides. Picking the node furthest
    /// below target instead fills partitions in a rotation, so the same nodes
    /// (and zones) keep landing together; when one of them later leaves, the
    /// nodes below target are then not eligible for its partitions and extra
    /// moves follow. The hash mixes the combinations; [`Assigner::augment`]
    /// and [`Assigner::rebalance`] even out the counts.
    fn need(&self, p: usize, a: usize, b: usize) -> Ordering {
        let (da, db) = (-self.surplus(a), -self.surplus(b));
        let by_need = match (da > 0, db > 0) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => da.cmp(&db),
        };
        by_need.then(mix(p, self.keys[a]).cmp(&mix(p, self.keys[b])))
    }

    fn fill(&mut self) {
        let mut filled = Vec::new();
        for p in 0..self.slots.len() {
            for slot in 0..self.slots[p].len() {
                if self.slots[p][slot].is_some() {
                    continue;
                }
                let best = (0..self.nodes.len())
                    .filter(|&n| self.eligible(p, n, None))
                    .max_by(|&a, &b| self.need(p, a, b));
                // There is always one: the zone quotas leave room for RF
                // distinct nodes in every partition.
                match best {
                    Some(node) if self.surplus(node) < 0 => self.put(p, slot, node),
                    Some(node) if !self.augment(p, slot, &filled) => self.put(p, slot, node),
                    _ => {}
                }
                filled.push((p, slot));
            }
        }
    }

    /// When no node below target may take the empty slot `(p, slot)`, looks
    /// for an augmenting path through the slots filled earlier in this pass:
    /// a node `x1` takes `(p, slot)` and leaves its filled slot to `x2`, who
    /// leaves its own to `x3`, …, until a node below target takes the last
    /// one. Breadth first, so the shortest path; each partition at most once
    /// on a path, so every step's zone check stays true. Reassigning filled
    /// slots costs no move, and it saves one that [`Assigner::rebalance`]
    /// would otherwise make. Returns whether it found one.
    fn augment(&mut self, p: usize, slot: usize, filled: &[(usize, usize)]) -> bool {
        let mut by_filler: Vec<Vec<usize>> = vec![Vec::new(); self.nodes.len()];
        for (i, &(q, s)) in filled.iter().enumerate() {
            if let Some(x) = self.slots[q][s] {
                by_filler[x].push(i);
            }
        }
        // Path nodes: usize::MAX is the empty slot; i < filled.len() is
        // filled[i]. `parent[i]` = (the path node before, the node moving).
        const START: usize = usize::MAX;
        let mut parent: Vec<Option<(usize, usize)>> = vec![None; filled.len()];
        let mut seen_partitions = vec![false; self.slots.len()];
        seen_partitions[p] = true;
        let mut queue = std::collections::VecDeque::from([START]);
        while let Some(at) = queue.pop_front() {
            let (q, s) = if at == START { (p, slot) } else { filled[at] };
            let leaving = self.slots[q][s];
            for (x, holds) in by_filler.iter().enumerate() {
                if Some(x) == leaving || !self.eligible(q, x, leaving) {
                    continue;
                }
                if self.surplus(x) < 0 {
                    self.shift(p, slot, filled, &parent, at, x);
                    return true;
                }
                for &next in holds {
                    let (nq, _) = filled[next];
                    if !seen_partitions[nq] {
                        seen_partitions[nq] = true;
                        parent[next] = Some((at, x));
                        queue.push_back(next);
                    }
                }
            }
        }
        false
    }

    /// Applies an augmenting path ending at path node `end`, which node `y`
    /// (below target) takes.
    fn shift(
        &mut self,
        p: usize,
        slot: usize,
        filled: &[(usize, usize)],
        parent: &[Option<(usize, usize)>],
        end: usize,
        y: usize,
    ) {
        let mut taker = y;
        let mut at = end;
        while at != usize::MAX {
            let (q, s) = filled[at];
            let Some((before, mover)) = parent[at] else {
                break;
            };
            self.clear(q, s);
            self.put(q, s, taker);
            taker = mover;
            at = before;
        }
        self.put(p, slot, taker);
    }

    /// Where a tie in the apportionment decided targets, the other outcome
    /// is as fair: a node one above its target that could have won the tie
    /// keeps its extra replica, and a node one below that could have lost
    /// it lowers its target. Each such pair saves a move — the slots the
    /// fill had to give a node at its target (the zone rule left no other)
    /// stay where they are.
    fn retarget(&mut self) {
        let n = self.nodes.len();
        let over: Vec<usize> = (0..n)
            .filter(|&i| self.surplus(i) == 1 && self.may_gain[i])
            .collect();
        let under: Vec<usize> = (0..n)
            .filter(|&i| self.surplus(i) == -1 && self.may_lose[i])
            .collect();
        for (o, u) in over.into_iter().zip(under) {
            self.target[o] += 1;
            self.target[u] -= 1;
        }
    }

    /// Moves replicas from nodes above target to nodes below, one at a time,
    /// the largest gaps first.
    fn rebalance(&mut self) {
        loop {
            let mut over: Vec<usize> = (0..self.nodes.len())
                .filter(|&n| self.surplus(n) > 0)
                .collect();
            let mut under: Vec<usize> = (0..self.nodes.len())
                .filter(|&n| self.surplus(n) < 0)
                .collect();
            over.sort_by_key(|&n| (-self.surplus(n), n));
            under.sort_by_key(|&n| (self.surplus(n), n));
            let found = under.iter().find_map(|&to| {
                over.iter()
                    .find_map(|&from| self.movable(from, to).map(|(p, s)| (p, s, to)))
            });
            let Some((p, slot, to)) = found else { break };
            self.clear(p, slot);
            self.put(p, slot, to);
        }
    }

    /// The slot of `from` that `to` may take, picked by hash among the
    /// partitions where the zone rule allows it.
    fn movable(&self, from: usize, to: usize) -> Option<(usize, usize)> {
        (0..self.slots.len())
            .filter_map(|p| {
                let slot = self.slots[p].iter().position(|&n| n == Some(from))?;
                self.eligible(p, to, Some(from)).then_some((p, slot))
            })
            .min_by_key(|&(p, _)| mix(p, self.keys[to]))
    }

    fn finish(self) -> Vec<Vec<NodeId>> {
        let nodes = &self.nodes;
        self.slots
            .into_iter()
            .map(|replicas| replicas.into_iter().flatten().map(|n| nodes[n]).collect())
            .collect()
    }
}
