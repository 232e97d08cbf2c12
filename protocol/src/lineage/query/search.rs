//! Breadth-first search over the index, on reusable marks.
//!
//! Every traversal needs the distance of each slot it reached. A fresh
//! `Vec<u32>` per query costs as much as the whole graph (400 KB at 100,000
//! entities: an allocation, a clear and page faults) even when the answer is a
//! dozen entities. A search instead borrows a buffer from a pool kept in the
//! index and stamps the slots it reaches; a slot stamped by an earlier search
//! counts as unreached. Starting a search is O(1), and a query costs what it
//! touches.
//!
//! The search also keeps, for every slot it reaches, the previous hop that
//! results report (`via`, paths): of the neighbours one hop closer to the
//! start, the one with the smallest id. Every such neighbour is expanded
//! before the slot's own level is, so the search sees them all.

use std::collections::VecDeque;
use std::sync::Mutex;

use super::Direction;
use crate::lineage::index::GraphIndex;
use crate::lineage::model::{EdgeKind, EntityId};

/// Buffers kept for concurrent searches; more are allocated when needed and
/// dropped on return.
const POOLED: usize = 8;

/// The buffers of finished searches, waiting for the next ones.
#[derive(Default)]
pub(crate) struct MarkPool(Mutex<Vec<Marks>>);

impl std::fmt::Debug for MarkPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MarkPool")
    }
}

/// Distances and previous hops per slot, valid where the stamp is the current
/// search's. One array of triples: a slot's mark is one cache line away, not
/// three.
#[derive(Default)]
struct Marks {
    slots: Vec<Mark>,
    current: u32,
}

#[derive(Clone, Copy, Default)]
struct Mark {
    stamp: u32,
    dist: u32,
    via: u32,
}

impl Marks {
    /// Forgets the previous search in O(1) (a full clear once every 2³² searches).
    fn begin(&mut self, slots: usize) {
        if self.slots.len() < slots {
            self.slots.resize(slots, Mark::default());
        }
        self.current = self.current.wrapping_add(1);
        if self.current == 0 {
            self.slots.fill(Mark::default());
            self.current = 1;
        }
    }

    #[inline]
    fn get(&self, v: u32) -> u32 {
        let m = &self.slots[v as usize];
        if m.stamp == self.current {
            m.dist
        } else {
            u32::MAX
        }
    }

    #[inline]
    fn set(&mut self, v: u32, dist: u32, via: u32) {
        self.slots[v as usize] = Mark {
            stamp: self.current,
            dist,
            via,
        };
    }
}

/// The result of a breadth-first search; its buffer returns to the pool when
/// it is dropped.
pub(crate) struct Bfs<'a> {
    /// Reached slots in BFS order, the start excluded.
    pub(crate) order: Vec<u32>,
    marks: Marks,
    pool: &'a MarkPool,
}

impl Bfs<'_> {
    /// Hops from the start to `v`; `u32::MAX` if not reached.
    #[inline]
    pub(crate) fn dist(&self, v: u32) -> u32 {
        self.marks.get(v)
    }

    /// The previous hop on a shortest path to `v`: of the neighbours one hop
    /// closer to the start, the one with the smallest id. `None` for the start
    /// and for slots not reached.
    pub(crate) fn via(&self, v: u32) -> Option<u32> {
        let d = self.dist(v);
        (d != 0 && d != u32::MAX).then(|| self.marks.slots[v as usize].via)
    }
}

impl Drop for Bfs<'_> {
    fn drop(&mut self) {
        if let Ok(mut pool) = self.pool.0.lock()
            && pool.len() < POOLED
        {
            pool.push(std::mem::take(&mut self.marks));
        }
    }
}

impl GraphIndex {
    /// Breadth-first search from `start`, up to `depth` hops; once `stop` is
    /// reached, finishes the level before it and stops.
    pub(crate) fn bfs(
        &self,
        start: u32,
        dir: Direction,
        depth: Option<u32>,
        kinds: &[EdgeKind],
        stop: Option<u32>,
    ) -> Bfs<'_> {
        let mut marks = self
            .marks
            .0
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
            .unwrap_or_default();
        marks.begin(self.ids.len());
        let mut order = Vec::new();
        let mut queue = VecDeque::new();
        marks.set(start, 0, start);
        queue.push_back(start);
        let mut limit = depth.unwrap_or(u32::MAX);
        while let Some(u) = queue.pop_front() {
            let d = marks.get(u);
            if d >= limit {
                continue;
            }
            for v in self.step(u, dir, kinds) {
                let dv = marks.get(v);
                if dv == u32::MAX {
                    marks.set(v, d + 1, u);
                    order.push(v);
                    if Some(v) == stop {
                        limit = d + 1;
                    }
                    queue.push_back(v);
                } else if dv == d + 1 {
                    let via = &mut marks.slots[v as usize].via;
                    if self.ids[u as usize] < self.ids[*via as usize] {
                        *via = u;
                    }
                }
            }
        }
        Bfs {
            order,
            marks,
            pool: &self.marks,
        }
    }

    /// The path from the start to `v` (both included), deterministic.
    pub(crate) fn path_to(&self, v: u32, bfs: &Bfs<'_>) -> Vec<EntityId> {
        let mut path = vec![self.ids[v as usize].clone()];
        let mut cur = v;
        while let Some(p) = bfs.via(cur) {
            path.push(self.ids[p as usize].clone());
            cur = p;
        }
        path.reverse();
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_search_forgets_the_previous_one() {
        let mut m = Marks::default();
        m.begin(4);
        m.set(2, 7, 0);
        assert_eq!(m.get(2), 7);
        m.begin(6);
        assert_eq!(m.get(2), u32::MAX);
        assert_eq!(m.get(5), u32::MAX);
    }

    #[test]
    fn the_stamp_wrapping_clears_the_marks() {
        let mut m = Marks::default();
        m.begin(3);
        m.set(1, 4, 0);
        m.current = u32::MAX;
        m.slots[1].stamp = u32::MAX;
        m.begin(3);
        assert_eq!(m.current, 1);
        assert_eq!(m.get(1), u32::MAX);
    }
}
