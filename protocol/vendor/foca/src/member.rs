/* This Source Code Form is subject to the terms of the Mozilla Public
 * License, v. 2.0. If a copy of the MPL was not distributed with this
 * file, You can obtain one at https://mozilla.org/MPL/2.0/. */
extern crate alloc;
use alloc::vec::Vec;

use rand::{
    RngExt,
    prelude::{IteratorRandom, SliceRandom},
};

/// State describes how a Foca instance perceives a member of the cluster.
///
/// This is part of the Suspicion Mechanism described in section 4.2 of the
/// original SWIM paper.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum State {
    /// Member is active.
    Alive,
    /// Member is active, but at least one cluster member
    /// suspects its down. For all purposes, a `Suspect` member
    /// is treated as if it were `Alive` until either it
    /// refutes the suspicion (becoming `Alive`) or fails to
    /// do so (being declared `Down`).
    Suspect,
    /// Confirmed Down.
    /// A member that reaches this state can't join the cluster
    /// with the same identity until the cluster forgets
    /// this knowledge.
    Down,
}

/// Incarnation is a member-controlled cluster-global number attached
/// to a member identity.
/// A member M's incarnation starts with zero and can only be incremented
/// by said member M when refuting suspicion.
pub type Incarnation = u16;

/// A Cluster Member. Also often called "cluster update".
///
/// A [`Member`] represents Foca's snapshot knowledge about an
/// [`crate::Identity`]. An individual cluster update is simply a
/// serialized Member which other Foca instances receive and use to
/// update their own cluster state representation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Member<T> {
    id: T,
    incarnation: Incarnation,
    state: State,
}

impl<T> Member<T> {
    /// Initializes a new member.
    ///
    /// `id` is an identity used to uniquely identify an individual
    /// cluster member (say, a primary key).
    pub const fn new(id: T, incarnation: Incarnation, state: State) -> Self {
        Self {
            id,
            incarnation,
            state,
        }
    }

    /// Shortcut for initializing a member as [`State::Alive`].
    pub fn alive(id: T) -> Self {
        Self::new(id, Incarnation::default(), State::Alive)
    }

    #[cfg(test)]
    pub(crate) fn suspect(id: T) -> Self {
        Self::new(id, Incarnation::default(), State::Suspect)
    }

    /// Shortcut for initializing a member as [`State::Down`].
    pub fn down(id: T) -> Self {
        Self::new(id, Incarnation::default(), State::Down)
    }

    /// Getter for the member's Incarnation
    pub const fn incarnation(&self) -> Incarnation {
        self.incarnation
    }

    /// Getter for the member's State
    pub const fn state(&self) -> State {
        self.state
    }

    /// Getter for the member's identity
    pub const fn id(&self) -> &T {
        &self.id
    }

    pub(crate) const fn is_active(&self) -> bool {
        match self.state {
            State::Alive | State::Suspect => true,
            State::Down => false,
        }
    }

    pub(crate) const fn change_state(&mut self, incarnation: Incarnation, state: State) -> bool {
        if self.can_change(incarnation, state) {
            self.state = state;
            self.incarnation = incarnation;
            true
        } else {
            false
        }
    }

    const fn can_change(&self, other_incarnation: Incarnation, other: State) -> bool {
        // This implements the order of preference of the Suspicion subprotocol
        // outlined on section 4.2 of the paper.
        match self.state {
            State::Alive => match other {
                State::Alive => other_incarnation > self.incarnation,
                State::Suspect => other_incarnation >= self.incarnation,
                State::Down => true,
            },
            State::Suspect => match other {
                State::Alive | State::Suspect => other_incarnation > self.incarnation,
                State::Down => true,
            },
            State::Down => false,
        }
    }

    pub(crate) fn into_identity(self) -> T {
        self.id
    }
}

pub(crate) struct Members<T: crate::Identity> {
    pub(crate) inner: Vec<Member<T>>,
    /// Position of each member in `inner`, by address.
    index: Index,
    /// Which addresses may be suspected, so that a message to a member not
    /// suspected (nearly all) skips looking it up.
    suspects: SuspectFilter,
    cursor: usize,
    num_active: usize,
}

#[cfg(test)]
impl<T: crate::Identity> Members<T> {
    pub(crate) fn len(&self) -> usize {
        self.inner.len()
    }
}

impl<T> Members<T>
where
    T: PartialEq + Clone + crate::Identity,
{
    pub(crate) const fn num_active(&self) -> usize {
        self.num_active
    }

    pub(crate) fn new(inner: Vec<Member<T>>) -> Self {
        // XXX This doesn't prevent someone initializing with
        //     duplicated members... Not a problem (yet?) since
        //     inner is always empty outside of tests
        let num_active = inner.iter().filter(|member| member.is_active()).count();

        let mut suspects = SuspectFilter::default();
        for member in inner.iter().filter(|m| m.state == State::Suspect) {
            suspects.add(&member.id.addr());
        }
        let mut members = Self {
            cursor: 0,
            num_active,
            inner,
            index: Index::default(),
            suspects,
        };
        members.reindex();
        members
    }

    /// Room for `more` members without growing the list (or the index) again.
    pub(crate) fn reserve(&mut self, more: usize) {
        self.grow_list(more);
        let wanted = Index::capacity_for(self.inner.len() + more);
        if wanted > self.index.slots.len() {
            self.index.rebuild_with(&self.inner, wanted);
        }
    }

    /// Room for `more` members in the list. When it must grow, it grows by
    /// what is needed and an eighth more, not double: every member keeps a
    /// list of the whole cluster, and an update about one new member must not
    /// double them all (nor move them all: the eighth is kept spare).
    fn grow_list(&mut self, more: usize) {
        if more > self.inner.capacity() - self.inner.len() {
            let wanted = self.inner.len() + more;
            self.inner.reserve_exact(more + wanted / 8 + 4);
        }
    }

    fn reindex(&mut self) {
        self.index.rebuild(&self.inner);
    }

    /// Touches the members `ids` will look up, ahead of applying updates
    /// about them one by one. In a cluster of thousands, member lists do not
    /// fit in the cache, and each lookup is two cache misses (the index slot,
    /// then the member) waited for in turn. Here every slot is loaded first
    /// and then every member, without one load waiting for another, so the
    /// processor overlaps the misses. It changes nothing.
    pub(crate) fn warm<'a>(&self, ids: impl Iterator<Item = &'a T>)
    where
        T: 'a,
    {
        if self.index.slots.is_empty() {
            return;
        }
        let mut slots = [EMPTY; 16];
        let mut n = 0;
        for id in ids.take(slots.len()) {
            slots[n] = self.index.slots[self.index.home(&id.addr())];
            n += 1;
        }
        let mut touched = 0u8;
        for &pos in &slots[..n] {
            if let Some(member) = self.inner.get(pos as usize) {
                touched ^= member.state as u8;
            }
        }
        core::hint::black_box(touched);
    }

    fn position_of(&self, addr: &T::Addr) -> Option<usize> {
        self.index.find(&self.inner, addr).map(|(_, pos)| pos)
    }

    /// Swaps two members and keeps the index right.
    fn swap(&mut self, a: usize, b: usize) {
        if a == b {
            return;
        }
        let slot_a = self.index.slot_of(&self.inner, a);
        let slot_b = self.index.slot_of(&self.inner, b);
        self.inner.swap(a, b);
        self.index.slots[slot_a] = b as u32;
        self.index.slots[slot_b] = a as u32;
    }

    // Next member that's considered active
    // Chosen at random (shuffle + round-robin)
    pub(crate) fn next(&mut self, mut rng: impl RngExt) -> Option<&Member<T>> {
        // Round-robin with a shuffle at the end
        if self.cursor >= self.inner.len() {
            self.inner.shuffle(&mut rng);
            self.reindex();
            self.cursor = 0;
        }

        // Find an active member from cursor..len()
        let position = self
            .inner
            .iter()
            .skip(self.cursor)
            .position(|m| m.is_active())
            // Since we skip(), position() will start counting from zero
            // this ensures it's actually the index of the chosen member
            .map(|pos| pos + self.cursor);

        // And if we don't find any: try from 0..cursor
        let position = position.or_else(|| {
            self.inner
                .iter()
                .take(self.cursor)
                .position(|m| m.is_active())
        });

        if let Some(pos) = position {
            if pos < self.cursor {
                // We wrapped around the list to find a member. A shuffle
                // is needed, so we set it to MAX. Any other value could
                // cause the shuffle to not happen since members may join
                // in-between probes
                self.cursor = usize::MAX;
            } else {
                self.cursor = pos.saturating_add(1);
            }
            self.inner.get(pos)
        } else {
            None
        }
    }

    fn choose_members<F>(
        &self,
        wanted: usize,
        output: &mut Vec<Member<T>>,
        mut rng: impl RngExt,
        picker: F,
    ) where
        F: Fn(&Member<T>) -> bool,
    {
        // A few members out of many: draw positions at random rather than
        // scan every member (and draw a number per member) on every gossip
        // round. Falls back to the scan when eligible members are scarce.
        let len = self.inner.len();
        if len >= 64 && wanted.saturating_mul(8) <= len {
            let start = output.len();
            let mut chosen: Vec<usize> = Vec::with_capacity(wanted);
            let mut tries = wanted * 8 + 16;
            while chosen.len() < wanted && tries > 0 {
                tries -= 1;
                let i = rng.random_range(0..len);
                if !chosen.contains(&i) && picker(&self.inner[i]) {
                    chosen.push(i);
                    output.push(self.inner[i].clone());
                }
            }
            if chosen.len() == wanted {
                return;
            }
            output.truncate(start);
        }

        // Basic reservoir sampling
        let mut num_chosen = 0;
        let mut num_seen = 0;

        for member in &self.inner {
            if !picker(member) {
                continue;
            }

            num_seen += 1;
            if num_chosen < wanted {
                num_chosen += 1;
                output.push(member.clone());
            } else {
                let replace_at = rng.random_range(0..num_seen);
                if replace_at < wanted {
                    output[replace_at] = member.clone();
                }
            }
        }
    }

    pub(crate) fn choose_down_members(
        &self,
        wanted: usize,
        output: &mut Vec<Member<T>>,
        rng: impl RngExt,
    ) {
        self.choose_members(wanted, output, rng, |member| !member.is_active());
    }

    pub(crate) fn choose_active_members<F>(
        &self,
        wanted: usize,
        output: &mut Vec<Member<T>>,
        rng: impl RngExt,
        picker: F,
    ) where
        F: Fn(&T) -> bool,
    {
        self.choose_members(wanted, output, rng, |member| {
            member.is_active() && picker(member.id())
        });
    }

    pub(crate) fn remove_if_down(&mut self, id: &T) -> Option<Member<T>> {
        let pos = self
            .position_of(&id.addr())
            .filter(|&pos| &self.inner[pos].id == id && self.inner[pos].state == State::Down)?;
        // Move it last first, so that removing it moves nobody else.
        let last = self.inner.len() - 1;
        self.swap(pos, last);
        let slot = self.index.slot_of(&self.inner, last);
        self.index.remove_slot(&self.inner, slot);
        self.inner.pop()
    }

    pub(crate) fn iter_active(&self) -> impl Iterator<Item = &Member<T>> {
        self.inner.iter().filter(|m| m.is_active())
    }

    /// The member `id`, if it is known under this identity and suspected.
    pub(crate) fn suspected(&self, id: &T) -> Option<&Member<T>> {
        let addr = id.addr();
        if !self.suspects.may_hold(&addr) {
            return None;
        }
        self.position_of(&addr)
            .map(|pos| &self.inner[pos])
            .filter(|m| &m.id == id && m.state == State::Suspect)
    }

    pub(crate) fn is_active(&self, id: &T) -> bool {
        self.position_of(&id.addr())
            .is_some_and(|pos| &self.inner[pos].id == id && self.inner[pos].is_active())
    }

    pub(crate) fn apply_existing_if<F: Fn(&Member<T>) -> bool>(
        &mut self,
        mut update: Member<T>,
        condition: F,
    ) -> Option<ApplySummary<T>> {
        if let Some(known_member) = self
            .position_of(&update.id().addr())
            .map(|pos| &mut self.inner[pos])
        {
            let id_conflict = known_member.id != update.id;

            // If the update wins the conflict, the full member
            // state is replaced (it's essentially a rejoin)
            // If it doesn't, it gets discarded
            if id_conflict && known_member.id.win_addr_conflict(&update.id) {
                return Some(ApplySummary {
                    is_active_now: known_member.is_active(),
                    apply_successful: false,
                    changed_active_set: false,
                    conflict: ConflictResult::Lost,
                });
            }

            if !condition(known_member) {
                return Some(ApplySummary {
                    is_active_now: known_member.is_active(),
                    apply_successful: false,
                    changed_active_set: false,
                    conflict: if id_conflict {
                        ConflictResult::FailedCondition
                    } else {
                        ConflictResult::NoConflict
                    },
                });
            }
            let was_active = known_member.is_active();
            let was_suspect = known_member.state == State::Suspect;

            let (apply_successful, conflict) = if id_conflict {
                core::mem::swap(&mut known_member.id, &mut update.id);
                known_member.state = update.state;
                known_member.incarnation = update.incarnation;
                (true, ConflictResult::Replaced(update.id))
            } else {
                (
                    known_member.change_state(update.incarnation, update.state),
                    ConflictResult::NoConflict,
                )
            };

            let is_active_now = known_member.is_active();
            let is_suspect_now = known_member.state == State::Suspect;
            let changed_active_set = is_active_now != was_active;
            if was_suspect != is_suspect_now {
                // An identity that replaces another has the same address.
                let addr = known_member.id.addr();
                if is_suspect_now {
                    self.suspects.add(&addr);
                } else {
                    self.suspects.remove(&addr);
                }
            }

            if changed_active_set {
                // XXX Overzealous checking
                if is_active_now {
                    self.num_active = self.num_active.saturating_add(1);
                } else {
                    self.num_active = self.num_active.saturating_sub(1);
                }
            }

            Some(ApplySummary {
                is_active_now,
                apply_successful,
                changed_active_set,
                conflict,
            })
        } else {
            None
        }
    }

    pub(crate) fn apply(&mut self, update: Member<T>, mut rng: impl RngExt) -> ApplySummary<T> {
        self.apply_existing_if(update.clone(), |_member| true)
            .unwrap_or_else(|| {
                // Unknown member, we'll register it
                let is_active_now = update.is_active();
                if update.state == State::Suspect {
                    self.suspects.add(&update.id.addr());
                }

                // Insert at the end and swap with a random position.
                self.grow_list(1);
                self.inner.push(update);
                let inserted_at = self.inner.len() - 1;
                self.index.insert(&self.inner, inserted_at);

                let swap_idx = (0..self.inner.len())
                    .choose(&mut rng)
                    .unwrap_or(inserted_at);

                self.swap(swap_idx, inserted_at);

                if is_active_now {
                    self.num_active = self.num_active.saturating_add(1);
                }

                ApplySummary {
                    is_active_now,
                    apply_successful: true,
                    // Registering a new active member changes the active set
                    changed_active_set: is_active_now,
                    conflict: ConflictResult::NoConflict,
                }
            })
    }
}

/// How many suspected members' addresses fall in each of 64 buckets by hash.
/// An empty bucket proves an address is not suspected; members hold a few
/// suspects at a time, so nearly every bucket is empty.
struct SuspectFilter {
    counts: [u32; 64],
}

impl Default for SuspectFilter {
    fn default() -> Self {
        Self { counts: [0; 64] }
    }
}

impl SuspectFilter {
    fn bucket<A: core::hash::Hash>(addr: &A) -> usize {
        // The high bits: the index uses the low ones.
        (hash_of(addr) >> 58) as usize
    }

    fn add<A: core::hash::Hash>(&mut self, addr: &A) {
        self.counts[Self::bucket(addr)] += 1;
    }

    fn remove<A: core::hash::Hash>(&mut self, addr: &A) {
        let count = &mut self.counts[Self::bucket(addr)];
        debug_assert!(*count > 0, "a suspect removed twice");
        *count = count.saturating_sub(1);
    }

    fn may_hold<A: core::hash::Hash>(&self, addr: &A) -> bool {
        self.counts[Self::bucket(addr)] > 0
    }
}

/// Positions in `Members::inner` by member address: an open-addressing hash
/// table (linear probing) of 4-byte positions whose keys are the members' own
/// addresses, so it costs 8 bytes a member rather than a copy of each address.
#[derive(Default)]
struct Index {
    slots: Vec<u32>,
    mask: usize,
    len: usize,
}

const EMPTY: u32 = u32::MAX;

impl Index {
    fn home<A: core::hash::Hash>(&self, addr: &A) -> usize {
        hash_of(addr) as usize & self.mask
    }

    /// (slot, position) of the member at `addr`.
    fn find<T: crate::Identity>(&self, inner: &[Member<T>], addr: &T::Addr) -> Option<(usize, usize)> {
        if self.slots.is_empty() {
            return None;
        }
        let mut i = self.home(addr);
        loop {
            let pos = self.slots[i];
            if pos == EMPTY {
                return None;
            }
            if inner[pos as usize].id.addr() == *addr {
                return Some((i, pos as usize));
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The slot holding position `pos` (the member there must be indexed).
    fn slot_of<T: crate::Identity>(&self, inner: &[Member<T>], pos: usize) -> usize {
        let mut i = self.home(&inner[pos].id.addr());
        while self.slots[i] as usize != pos {
            i = (i + 1) & self.mask;
        }
        i
    }

    /// Slots for `members`, at most three quarters full.
    fn capacity_for(members: usize) -> usize {
        ((members + 1) * 4 / 3 + 1).next_power_of_two().max(16)
    }

    fn insert<T: crate::Identity>(&mut self, inner: &[Member<T>], pos: usize) {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.rebuild_with(&inner[..pos], Self::capacity_for(pos + 1) * 2);
        }
        let mut i = self.home(&inner[pos].id.addr());
        while self.slots[i] != EMPTY {
            i = (i + 1) & self.mask;
        }
        self.slots[i] = pos as u32;
        self.len += 1;
    }

    /// Empties `slot`, shifting back the entries that probed past it.
    fn remove_slot<T: crate::Identity>(&mut self, inner: &[Member<T>], slot: usize) {
        let mut hole = slot;
        let mut j = slot;
        loop {
            j = (j + 1) & self.mask;
            let pos = self.slots[j];
            if pos == EMPTY {
                break;
            }
            let home = self.home(&inner[pos as usize].id.addr());
            // Move it into the hole unless its home lies cyclically in (hole, j].
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.slots[hole] = pos;
                hole = j;
            }
        }
        self.slots[hole] = EMPTY;
        self.len -= 1;
    }

    /// Indexes `inner` from scratch.
    fn rebuild<T: crate::Identity>(&mut self, inner: &[Member<T>]) {
        self.rebuild_with(inner, Self::capacity_for(inner.len()));
    }

    /// Indexes `inner` from scratch into `capacity` slots (a power of two).
    fn rebuild_with<T: crate::Identity>(&mut self, inner: &[Member<T>], capacity: usize) {
        self.slots.clear();
        self.slots.resize(capacity, EMPTY);
        self.mask = capacity - 1;
        self.len = 0;
        for pos in 0..inner.len() {
            let mut i = self.home(&inner[pos].id.addr());
            while self.slots[i] != EMPTY {
                i = (i + 1) & self.mask;
            }
            self.slots[i] = pos as u32;
            self.len += 1;
        }
    }
}

/// A fast hash of `value`, every bit mixed into the low ones.
pub(crate) fn hash_of<A: core::hash::Hash + ?Sized>(value: &A) -> u64 {
    let mut h = FxHasher(0);
    value.hash(&mut h);
    // SplitMix64's finaliser.
    let mut z = h.0;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The Fx hash (rustc's): fast, and good enough once finalised.
struct FxHasher(u64);

impl core::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(0x517C_C1B7_2722_0A95);
        }
    }

    fn write_u32(&mut self, word: u32) {
        self.write_u64(u64::from(word));
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517C_C1B7_2722_0A95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub(crate) struct ApplySummary<T> {
    pub(crate) is_active_now: bool,
    pub(crate) apply_successful: bool,
    pub(crate) changed_active_set: bool,
    pub(crate) conflict: ConflictResult<T>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ConflictResult<T> {
    NoConflict,
    Replaced(T),
    Lost,
    FailedCondition,
}

#[cfg(test)]
mod tests {

    use crate::Identity;

    use super::*;

    use alloc::vec;
    use rand::{SeedableRng, rngs::SmallRng};

    #[derive(Clone, Debug, PartialEq, Eq, Copy, PartialOrd, Ord)]
    struct Id(&'static str);
    impl crate::Identity for Id {
        type Addr = &'static str;

        fn renew(&self) -> Option<Self> {
            None
        }

        fn addr(&self) -> Self::Addr {
            self.0
        }

        fn win_addr_conflict(&self, _adversary: &Self) -> bool {
            panic!("addr is self, there'll never be a conflict");
        }
    }

    use State::*;

    #[test]
    fn alive_transitions() {
        let mut member = Member::new(Id("a"), 0, Alive);

        // Alive => Alive
        assert!(
            member.change_state(member.incarnation + 1, Alive),
            "can transition to a higher incarnation"
        );

        assert_eq!(1, member.incarnation);
        assert_eq!(Alive, member.state);

        assert!(
            !member.change_state(member.incarnation - 1, Alive),
            "cannot transition to a lower incarnation"
        );

        assert!(
            !member.change_state(member.incarnation, Alive),
            "cannot transition to same state and incarnation {:?}",
            member
        );

        // Alive => Suspect
        assert!(
            !member.change_state(member.incarnation - 1, Suspect),
            "lower suspect incarnation shouldn't transition"
        );

        assert!(
            member.change_state(member.incarnation, Suspect),
            "transition to suspect with same incarnation"
        );
        assert_eq!(Suspect, member.state);

        member = Member::new(Id("b"), 0, Alive);
        assert!(
            member.change_state(member.incarnation + 1, Suspect),
            "transition to suspect with higher incarnation"
        );
        assert_eq!(1, member.incarnation);
        assert_eq!(Suspect, member.state);

        // Alive => Down, always works
        assert!(
            Member::new("c", 1, Alive).change_state(0, Down),
            "transitions to down on lower incarnation"
        );
        assert!(
            Member::new("c", 0, Alive).change_state(0, Down),
            "transitions to down on same incarnation"
        );
        assert!(
            Member::new("c", 0, Alive).change_state(1, Down),
            "transitions to down on higher incarnation"
        );
    }

    #[test]
    fn suspect_transitions() {
        let mut member = Member::new(Id("a"), 0, Suspect);

        // Suspect => Suspect
        assert!(
            member.change_state(member.incarnation + 1, Suspect),
            "can transition to a higher incarnation"
        );

        assert_eq!(1, member.incarnation);
        assert_eq!(Suspect, member.state);

        assert!(
            !member.change_state(member.incarnation - 1, Suspect),
            "cannot transition to a lower incarnation"
        );

        assert!(
            !member.change_state(member.incarnation, Suspect),
            "cannot transition to same state and incarnation {:?}",
            member
        );

        // Suspect => Alive
        assert!(
            !member.change_state(member.incarnation - 1, Alive),
            "lower alive incarnation shouldn't transition"
        );
        assert!(
            !member.change_state(member.incarnation, Alive),
            "same alive incarnation shouldn't transition"
        );

        assert!(
            member.change_state(member.incarnation + 1, Alive),
            "can transition to alive with higher incarnation"
        );
        assert_eq!(Alive, member.state);

        // Suspect => Down, always works
        assert!(
            Member::new("c", 1, Suspect).change_state(0, Down),
            "transitions to down on lower incarnation"
        );
        assert!(
            Member::new("c", 0, Suspect).change_state(0, Down),
            "transitions to down on same incarnation"
        );
        assert!(
            Member::new("c", 0, Suspect).change_state(1, Down),
            "transitions to down on higher incarnation"
        );
    }

    #[test]
    fn down_never_transitions() {
        let mut member = Member::new("dead", 1, Down);

        for incarnation in 0..=2 {
            assert!(!member.change_state(incarnation, Alive));
            assert!(!member.change_state(incarnation, Suspect));
            assert!(!member.change_state(incarnation, Down));
        }
    }

    #[test]
    fn next_walks_sequentially_then_shuffles() {
        let ordered_ids = vec![Id("1"), Id("2"), Id("3"), Id("4"), Id("5")];
        let mut members = Members::new(ordered_ids.iter().cloned().map(Member::alive).collect());

        let mut rng = SmallRng::seed_from_u64(0xF0CA);

        for wanted in ordered_ids.iter() {
            let got = members
                .next(&mut rng)
                .expect("Non-empty set of Alive members should always yield Some()")
                .id;
            assert_eq!(wanted, &got);
        }

        // By now we walked through all known live members so
        // the internal state should've shuffled.
        // We'll verify that by calling `next()` multiple
        // times and comparing with the original `ordered_ids`
        let mut after_shuffle = (0..ordered_ids.len())
            .map(|_| members.next(&mut rng).unwrap().id)
            .collect::<Vec<_>>();
        assert_ne!(ordered_ids, after_shuffle);

        // The shuffle only happens once the cursor walks
        // through the whole set, so `after_shuffle` should
        // contain every member, like `ordered_ids`, but in
        // a distinct order
        after_shuffle.sort_unstable();
        assert_eq!(ordered_ids, after_shuffle);
    }

    #[test]
    fn apply_existing_if_behaviour() {
        let mut members = Members::new(Vec::new());

        assert_eq!(
            None,
            members.apply_existing_if(Member::alive(Id("1")), |_member| true),
            "Only yield None only if member is not found"
        );

        let mut rng = SmallRng::seed_from_u64(0xF0CA);
        let _ = members.apply(Member::alive(Id("1")), &mut rng);

        assert_ne!(
            None,
            members.apply_existing_if(Member::alive(Id("1")), |_member| true),
            "Must yield Some() if existing, regardless of condition"
        );

        assert_ne!(
            None,
            members.apply_existing_if(Member::alive(Id("1")), |_member| false),
            "Must yield Some() if existing, regardless of condition"
        );
    }

    #[test]
    fn apply_summary_behaviour() {
        let mut members = Members::new(Vec::new());
        let mut rng = SmallRng::seed_from_u64(0xF0CA);

        // New and active member
        let res = members.apply(Member::suspect(Id("1")), &mut rng);
        assert_eq!(
            ApplySummary {
                is_active_now: true,
                apply_successful: true,
                changed_active_set: true,
                conflict: ConflictResult::NoConflict,
            },
            res,
        );
        assert_eq!(1, members.len());
        assert_eq!(1, members.num_active());

        // Failed attempt to change member id=1 to alive
        // (since it's already suspect with same incarnation)
        let res = members.apply(Member::alive(Id("1")), &mut rng);
        assert_eq!(
            ApplySummary {
                is_active_now: true,
                apply_successful: false,
                changed_active_set: false,
                conflict: ConflictResult::NoConflict,
            },
            res,
        );
        assert_eq!(1, members.len());

        // Successful attempt at changing member id=1 to
        // alive by using a higher incarnation
        let res = members.apply(Member::new(Id("1"), 1, State::Alive), &mut rng);
        assert_eq!(
            ApplySummary {
                is_active_now: true,
                apply_successful: true,
                changed_active_set: false,
                conflict: ConflictResult::NoConflict,
            },
            res,
        );
        assert_eq!(1, members.len());

        // Change existing member to down
        let res = members.apply(Member::down(Id("1")), &mut rng);
        assert_eq!(
            ApplySummary {
                is_active_now: false,
                apply_successful: true,
                changed_active_set: true,
                conflict: ConflictResult::NoConflict,
            },
            res,
        );
        assert_eq!(1, members.len());
        assert_eq!(0, members.num_active());

        // New and inactive member
        let res = members.apply(Member::down(Id("2")), &mut rng);
        assert_eq!(
            ApplySummary {
                is_active_now: false,
                apply_successful: true,
                changed_active_set: false,
                conflict: ConflictResult::NoConflict,
            },
            res,
        );
        assert_eq!(2, members.len());
        assert_eq!(0, members.num_active());
    }

    #[test]
    fn remove_if_down_works() {
        let mut members = Members::new(Vec::new());
        let mut rng = SmallRng::seed_from_u64(0xF0CA);

        assert_eq!(
            None,
            members.remove_if_down(&Id("1")),
            "cant remove member that does not exist"
        );
        let _ = members.apply(Member::alive(Id("1")), &mut rng);

        assert_eq!(
            None,
            members.remove_if_down(&Id("1")),
            "cant remove member that isnt down"
        );
        let _ = members.apply(Member::down(Id("1")), &mut rng);

        assert_eq!(
            Some(Member::down(Id("1"))),
            members.remove_if_down(&Id("1")),
            "must return the removed member"
        );
    }

    #[test]
    fn next_yields_none_with_no_active_members() {
        let mut members = Members::new(Vec::new());
        let mut rng = SmallRng::seed_from_u64(0xF0CA);

        assert_eq!(
            None,
            members.next(&mut rng),
            "next() should yield None when there are no members"
        );

        let _ = members.apply(Member::down(Id("-1")), &mut rng);
        let _ = members.apply(Member::down(Id("-2")), &mut rng);
        let _ = members.apply(Member::down(Id("-3")), &mut rng);

        assert_eq!(
            None,
            members.next(&mut rng),
            "next() should yield None when there are no active members"
        );

        let _ = members.apply(Member::alive(Id("1")), &mut rng);

        for _i in 0..10 {
            assert_eq!(
                Some(Id("1")),
                members.next(&mut rng).map(|m| m.id),
                "next() should yield the same member if its the only active"
            );
        }
    }

    #[test]
    fn choosing_few_of_many_samples_distinct_eligible_members() {
        // 200 members, every fourth one down: the random-position path.
        let names: Vec<&'static str> = (0..200)
            .map(|i| &*alloc::boxed::Box::leak(alloc::format!("{i}").into_boxed_str()))
            .collect();
        let members = Members::new(
            names
                .iter()
                .enumerate()
                .map(|(i, n)| if i % 4 == 0 { Member::down(Id(n)) } else { Member::alive(Id(n)) })
                .collect(),
        );
        let mut rng = SmallRng::seed_from_u64(7);
        let mut seen = alloc::collections::BTreeSet::new();
        for _ in 0..2000 {
            let mut out = Vec::new();
            members.choose_active_members(3, &mut out, &mut rng, |_| true);
            assert_eq!(3, out.len());
            assert!(out.iter().all(|m| m.is_active()));
            let distinct: alloc::collections::BTreeSet<_> = out.iter().map(|m| m.id).collect();
            assert_eq!(3, distinct.len());
            seen.extend(distinct);
        }
        // Every active member gets picked at some point.
        assert_eq!(150, seen.len());
        // Scarce eligible members fall back to the full scan and still find them.
        let mut out = Vec::new();
        members.choose_active_members(3, &mut out, &mut rng, |id| id.0 == "5" || id.0 == "9");
        assert_eq!(2, out.len());
    }

    #[test]
    fn a_full_list_grows_by_an_eighth_not_double() {
        let names: Vec<&'static str> = (0..2000)
            .map(|i| &*alloc::boxed::Box::leak(alloc::format!("m{i}").into_boxed_str()))
            .collect();
        let mut members = Members::new(Vec::new());
        members.reserve(1000);
        let mut rng = SmallRng::seed_from_u64(3);
        for name in &names[..1000] {
            let _ = members.apply(Member::alive(Id(name)), &mut rng);
        }
        assert_eq!(members.inner.capacity(), 1000 + 1000 / 8 + 4);
        for name in &names[1000..] {
            let _ = members.apply(Member::alive(Id(name)), &mut rng);
            let len = members.inner.len();
            assert!(members.inner.capacity() <= len + len / 8 + 5, "{len}");
        }
    }

    #[test]
    fn the_index_and_the_suspect_filter_survive_random_operations() {
        use rand::RngExt;
        let names: Vec<&'static str> = (0..300)
            .map(|i| &*alloc::boxed::Box::leak(alloc::format!("m{i}").into_boxed_str()))
            .collect();
        let mut members = Members::new(Vec::new());
        let mut rng = SmallRng::seed_from_u64(11);
        for step in 0..5000 {
            let n = names[rng.random_range(0..names.len())];
            match rng.random_range(0..5) {
                0 => {
                    let _ = members.apply(Member::alive(Id(n)), &mut rng);
                }
                1 => {
                    let _ = members.apply(Member::down(Id(n)), &mut rng);
                }
                2 => {
                    let incarnation = rng.random_range(0..3);
                    let _ = members.apply(Member::new(Id(n), incarnation, State::Suspect), &mut rng);
                }
                3 => {
                    let _ = members.remove_if_down(&Id(n));
                }
                _ => {
                    let _ = members.next(&mut rng);
                }
            }
            assert_eq!(members.index.len, members.inner.len(), "step {step}");
            for (pos, m) in members.inner.iter().enumerate() {
                assert_eq!(members.position_of(&m.id.0), Some(pos), "step {step}");
                let suspected = m.state == State::Suspect;
                assert_eq!(members.suspected(&m.id).is_some(), suspected, "step {step}");
            }
            let suspects = members.inner.iter().filter(|m| m.state == State::Suspect).count();
            let counted: u32 = members.suspects.counts.iter().sum();
            assert_eq!(counted as usize, suspects, "step {step}");
        }
    }

    #[test]
    fn the_index_follows_inserts_swaps_and_removals() {
        let mut members = Members::new(Vec::new());
        let mut rng = SmallRng::seed_from_u64(3);
        for n in ["a", "b", "c", "d", "e"] {
            let _ = members.apply(Member::alive(Id(n)), &mut rng);
        }
        let _ = members.apply(Member::down(Id("c")), &mut rng);
        assert!(members.remove_if_down(&Id("c")).is_some());
        for _ in 0..20 {
            // Walk past the end a few times so the list is reshuffled.
            let _ = members.next(&mut rng);
        }
        for n in ["a", "b", "d", "e"] {
            assert!(members.is_active(&Id(n)), "{n}");
            let pos = members.position_of(&n).unwrap();
            assert_eq!(members.inner[pos].id, Id(n));
        }
        assert!(!members.is_active(&Id("c")));
        assert_eq!(4, members.len());
    }

    #[test]
    fn choose_active_members_behaviour() {
        let members = Members::new(Vec::from([
            // 5 active members
            Member::alive(Id("1")),
            Member::alive(Id("2")),
            Member::alive(Id("3")),
            Member::suspect(Id("4")),
            Member::suspect(Id("5")),
            // 2 down
            Member::down(Id("6")),
            Member::down(Id("7")),
        ]));

        assert_eq!(7, members.len());
        assert_eq!(5, members.num_active());

        let mut out = Vec::new();
        let mut rng = SmallRng::seed_from_u64(0xF0CA);

        out.clear();
        members.choose_active_members(0, &mut out, &mut rng, |_| true);
        assert_eq!(0, out.len(), "Can pointlessly choose 0 members");

        out.clear();
        members.choose_active_members(10, &mut out, &mut rng, |_| false);
        assert_eq!(0, out.len(), "Filtering works");

        out.clear();
        members.choose_active_members(members.len(), &mut out, &mut rng, |_| true);
        assert_eq!(
            members.num_active(),
            out.len(),
            "Only chooses active members"
        );

        out.clear();
        members.choose_active_members(2, &mut out, &mut rng, |_| true);
        assert_eq!(2, out.len(), "Respects `wanted` even if we have more");

        out.clear();
        members.choose_active_members(usize::MAX, &mut out, &mut rng, |&member_id| {
            member_id.0.parse::<usize>().expect("number") > 4
        });
        assert_eq!(vec![Member::suspect(Id("5"))], out);

        out.clear();
        members.choose_down_members(3, &mut out, &mut rng);
        assert_eq!(2, out.len());
        assert!(out.iter().any(|m| m.id == Id("7")));
        assert!(out.iter().any(|m| m.id == Id("6")));
    }

    #[test]
    fn sets_replaced_id_on_addr_conflict() {
        let id = crate::testing::ID::new(1).rejoinable();
        let mut members = Members::new(Vec::from([
            // 5 active members
            Member::alive(id),
        ]));

        let renewed = id.renew().unwrap();
        let summary = members
            .apply_existing_if(Member::alive(renewed), |_| true)
            .expect("member found");

        assert!(summary.apply_successful);
        assert_eq!(ConflictResult::Replaced(id), summary.conflict);

        let another = renewed.renew().unwrap();
        let summary = members
            .apply_existing_if(Member::alive(another), |_| false)
            .expect("member found");

        assert!(!summary.apply_successful);
        assert_eq!(
            ConflictResult::FailedCondition,
            summary.conflict,
            "must not apply if condition fails"
        );

        // trying to go back to the past leads to
        // conflict resolution failure
        let summary = members
            .apply_existing_if(Member::alive(id), |_| true)
            .expect("member found");

        assert_eq!(ConflictResult::Lost, summary.conflict,);
        assert!(!summary.apply_successful, "must not apply if conflict lost");
    }
}
