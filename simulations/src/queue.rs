//! The event queue: earliest virtual time first, then insertion order, so
//! events at the same instant run in the order they were scheduled and a run
//! never depends on anything but the seed.
//!
//! A radix heap: virtual time never goes back, so an event is kept in the
//! bucket of the highest bit in which its time differs from the last time
//! taken, and a bucket is only sorted out (into lower ones, in order) when it
//! holds the earliest events. Each event moves a few times, in sequence,
//! where a binary heap of a million pending events costs twenty scattered
//! moves per event taken. Bucket order is insertion order, which keeps events
//! of the same instant in the order they were scheduled.

use std::collections::VecDeque;

use crate::network::Micros;

/// Bucket 0 holds events at the last time taken; bucket `b` those whose time
/// first differs from it in bit `b − 1`.
const BUCKETS: usize = 65;

/// Pending events.
pub struct Queue<E> {
    buckets: Vec<VecDeque<(Micros, E)>>,
    /// The time of the last event taken (events are never earlier).
    last: Micros,
    len: usize,
}

impl<E> std::fmt::Debug for Queue<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("pending", &self.len)
            .field("last", &self.last)
            .finish()
    }
}

impl<E> Default for Queue<E> {
    fn default() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| VecDeque::new()).collect(),
            last: 0,
            len: 0,
        }
    }
}

impl<E> Queue<E> {
    /// Schedules `event` at `at`; a time before the last one taken counts as
    /// that time (the simulated world never schedules into its past).
    pub fn push(&mut self, at: Micros, event: E) {
        debug_assert!(at >= self.last, "event scheduled in the past");
        let at = at.max(self.last);
        self.buckets[bucket(self.last, at)].push_back((at, event));
        self.len += 1;
    }

    /// The earliest event, if any.
    pub fn pop(&mut self) -> Option<(Micros, E)> {
        if self.buckets[0].is_empty() {
            let b = self.buckets.iter().position(|b| !b.is_empty())?;
            let mut from = std::mem::take(&mut self.buckets[b]);
            self.last = from.iter().map(|(at, _)| *at).min().expect("not empty");
            for (at, event) in from.drain(..) {
                self.buckets[bucket(self.last, at)].push_back((at, event));
            }
            // Keep the emptied bucket's memory for its next events.
            self.buckets[b] = from;
        }
        self.len -= 1;
        self.buckets[0].pop_front()
    }

    /// How many are pending.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The bucket of an event at `at` when the last time taken is `last`.
fn bucket(last: Micros, at: Micros) -> usize {
    (Micros::BITS - (at ^ last).leading_zeros()) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_then_in_insertion_order() {
        let mut q = Queue::default();
        q.push(5, "c");
        q.push(1, "a");
        q.push(5, "d");
        q.push(1, "b");
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, vec![(1, "a"), (1, "b"), (5, "c"), (5, "d")]);
    }

    #[test]
    fn takes_events_in_the_order_of_a_sort_by_time_then_insertion() {
        // Pushes interleaved with pops, as in a run: each pushed time is at or
        // after the last one taken.
        let mut q = Queue::default();
        let mut reference: Vec<(Micros, u32)> = Vec::new();
        let mut taken = Vec::new();
        let mut expected = Vec::new();
        let mut state = 7u64;
        let mut now = 0;
        for i in 0..20_000u32 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let at = now + (state >> 33) % [1, 10, 1_000, 5_000_000][(state % 4) as usize];
            q.push(at, i);
            reference.push((at, i));
            if state.is_multiple_of(3) {
                let (at, e) = q.pop().unwrap();
                now = at;
                taken.push((at, e));
                reference.sort_by_key(|&(at, e)| (at, e));
                expected.push(reference.remove(0));
            }
        }
        assert_eq!(q.len(), reference.len());
        while let Some(x) = q.pop() {
            taken.push(x);
        }
        reference.sort_by_key(|&(at, e)| (at, e));
        expected.extend(reference);
        assert_eq!(taken, expected);
        assert!(q.is_empty());
    }
}
