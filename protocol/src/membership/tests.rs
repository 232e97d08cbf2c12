//! The membership state machine on an in-memory network with a virtual clock:
//! seeded, no sockets, no threads.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet};
use std::time::Duration;

use proptest::prelude::*;
use rand10::rngs::SmallRng;
use rand10::{RngExt, SeedableRng};

use super::*;

/// A network of members delivering messages after a random latency.
struct Net {
    members: Vec<Membership>,
    /// Members whose process is stopped (receives and sends nothing).
    down: HashSet<usize>,
    /// Pairs (from, to) whose messages are dropped.
    cut: HashSet<(usize, usize)>,
    queue: BinaryHeap<Reverse<(Duration, u64, usize, Pending)>>,
    now: Duration,
    seq: u64,
    rng: SmallRng,
    events: Vec<(Duration, usize, MembershipEvent)>,
    loss: f64,
    timers: BTreeMap<u64, MembershipTimer>,
    /// Messages sent, per (from, to).
    sent: BTreeMap<(usize, usize), usize>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Pending {
    Data(usize, Vec<u8>),
    Timer(u64),
}

impl Net {
    fn new(n: usize, seed: u64, config: MembershipConfig) -> Self {
        let key = ClusterKey::from_secret(b"test cluster");
        let members = (0..n)
            .map(|i| {
                let id = member(i);
                let meta = NodeMeta {
                    id,
                    zone: format!("zone-{}", i % 3),
                    capacity: 1,
                    version: "test".into(),
                    p2p_addrs: vec![],
                    client_addr: None,
                };
                Membership::new(id, Some(meta), config.clone(), key.clone(), seed + i as u64)
            })
            .collect();
        Self {
            members,
            down: HashSet::new(),
            cut: HashSet::new(),
            queue: BinaryHeap::new(),
            now: Duration::ZERO,
            seq: 0,
            rng: SmallRng::seed_from_u64(seed),
            events: Vec::new(),
            loss: 0.0,
            timers: BTreeMap::new(),
            sent: BTreeMap::new(),
        }
    }

    fn collect(&mut self, i: usize) {
        let outputs: Vec<Output> = self.members[i].drain_outputs().collect();
        for output in outputs {
            match output {
                Output::Send { to, data } => {
                    let to = index(to);
                    *self.sent.entry((i, to)).or_default() += 1;
                    if self.down.contains(&i) || self.cut.contains(&(i, to)) {
                        continue;
                    }
                    if self.loss > 0.0 && self.rng.random::<f64>() < self.loss {
                        continue;
                    }
                    let latency = Duration::from_millis(self.rng.random_range(1..20));
                    self.push(self.now + latency, to, Pending::Data(i, data));
                }
                Output::Timer { timer, after } => {
                    self.seq += 1;
                    let token = self.seq;
                    self.timers.insert(token, timer);
                    self.push(self.now + after, i, Pending::Timer(token));
                }
                Output::Event(e) => self.events.push((self.now, i, e)),
            }
        }
    }

    fn push(&mut self, at: Duration, to: usize, what: Pending) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, to, what)));
    }

    fn run_until(&mut self, until: Duration) {
        while let Some(Reverse((at, _, _, _))) = self.queue.peek() {
            if *at > until {
                break;
            }
            let Reverse((at, _, to, what)) = self.queue.pop().expect("peeked");
            self.now = at;
            match what {
                Pending::Data(from, data) => {
                    if self.down.contains(&to) || self.cut.contains(&(from, to)) {
                        continue;
                    }
                    let _ = self.members[to].handle_data(&data, at);
                }
                Pending::Timer(token) => {
                    let timer = self.timers.remove(&token).expect("timer");
                    if self.down.contains(&to) {
                        // A stopped process keeps its timers for when it resumes.
                        let later = at + Duration::from_millis(100);
                        self.timers.insert(token, timer);
                        self.push(later, to, Pending::Timer(token));
                        continue;
                    }
                    self.members[to].handle_timer(timer, at);
                }
            }
            self.collect(to);
        }
        self.now = until;
    }

    fn join_all_to_first(&mut self) {
        for i in 1..self.members.len() {
            self.members[i].join(member(0).node);
            self.collect(i);
        }
    }

    fn state_of(&self, viewer: usize, target: usize) -> Option<MemberState> {
        self.members[viewer]
            .members()
            .into_iter()
            .find(|m| m.id.node == member(target).node)
            .map(|m| m.state)
    }

    fn all_see(&self, target: usize, state: MemberState) -> bool {
        (0..self.members.len())
            .filter(|v| *v != target && !self.down.contains(v))
            .all(|v| self.state_of(v, target) == Some(state))
    }

    fn converged(&self) -> bool {
        let n = self.members.len();
        (0..n).all(|v| self.members[v].active_members() == n - 1)
    }
}

fn member(i: usize) -> MemberId {
    MemberId {
        node: NodeId::synthetic(i as u64),
        generation: 0,
        addr: None,
    }
}

fn index(id: MemberId) -> usize {
    u64::from_be_bytes(id.node.public_key()[..8].try_into().unwrap()) as usize
}

fn lan() -> MembershipConfig {
    MembershipConfig::lan(16)
}

#[test]
fn members_join_and_converge() {
    let mut net = Net::new(8, 1, lan());
    net.join_all_to_first();
    net.run_until(Duration::from_secs(20));
    assert!(net.converged(), "every member sees the 7 others");
    for v in 0..8 {
        let view = net.members[v].members();
        assert_eq!(view.len(), 8);
        assert!(view.iter().all(|m| m.state == MemberState::Alive));
        // Metadata reached everyone, late joiners included.
        assert!(
            view.iter().all(|m| m.meta.is_some()),
            "member {v} lacks metadata"
        );
    }
}

#[test]
fn metadata_lost_on_the_way_is_asked_for_again() {
    // Metadata travels once, straight to each member that comes up; with half
    // the messages lost while the members join, some of those are lost.
    let mut net = Net::new(8, 5, lan());
    net.loss = 0.3;
    net.join_all_to_first();
    for second in 1..=40 {
        net.run_until(Duration::from_secs(second));
        if second == 5 {
            net.loss = 0.0;
        }
        // As the node does: a member still alone joins again every 3 s.
        for i in 1..8 {
            if second % 3 == 0 && net.members[i].members().len() <= 1 {
                net.members[i].join(member(0).node);
                net.collect(i);
            }
        }
    }
    assert!(net.converged(), "every member sees the 7 others");
    for v in 0..8 {
        let view = net.members[v].members();
        let missing: Vec<_> = view
            .iter()
            .filter(|m| m.meta.is_none())
            .map(|m| m.id)
            .collect();
        assert!(
            missing.is_empty(),
            "member {v} lacks the metadata of {missing:?}"
        );
    }
}

#[test]
fn a_silent_member_goes_suspect_then_dead() {
    let config = lan();
    let bound = config.detection_bound();
    let mut net = Net::new(6, 2, config);
    net.join_all_to_first();
    net.run_until(Duration::from_secs(20));
    assert!(net.converged());
    net.down.insert(3);
    let crash = net.now;
    net.run_until(crash + bound * 2);
    assert!(
        net.all_see(3, MemberState::Dead),
        "everyone declares 3 dead"
    );
    let suspected = net.events.iter().any(|(t, _, e)| {
        *t > crash && matches!(e, MembershipEvent::Suspected(id) if index(*id) == 3)
    });
    assert!(suspected, "death is preceded by suspicion");
    let last_death = net
        .events
        .iter()
        .filter(|(_, _, e)| matches!(e, MembershipEvent::Dead(id) if index(*id) == 3))
        .map(|(t, _, _)| *t)
        .max()
        .unwrap();
    assert!(
        last_death - crash <= bound,
        "detected within {bound:?}, took {:?}",
        last_death - crash
    );
}

#[test]
fn a_suspected_member_that_is_alive_refutes() {
    let mut net = Net::new(6, 3, lan());
    net.join_all_to_first();
    net.run_until(Duration::from_secs(20));
    // Member 2 stalls (a long pause), long enough to be suspected, not declared dead.
    net.down.insert(2);
    let t = net.now;
    let mut suspected = false;
    while !suspected && net.now < t + Duration::from_secs(10) {
        let next = net.now + Duration::from_millis(50);
        net.run_until(next);
        suspected = net.events.iter().any(|(at, _, e)| {
            *at > t && matches!(e, MembershipEvent::Suspected(id) if index(*id) == 2)
        });
    }
    assert!(suspected);
    net.down.remove(&2);
    net.run_until(net.now + Duration::from_secs(20));
    assert!(
        net.all_see(2, MemberState::Alive),
        "2 refuted the suspicion"
    );
    let refuted: u64 = net
        .members
        .iter()
        .map(|m| m.stats().suspicions_refuted)
        .sum();
    assert!(refuted > 0);
    let dead = net
        .events
        .iter()
        .any(|(_, _, e)| matches!(e, MembershipEvent::Dead(id) if index(*id) == 2));
    assert!(!dead, "a refuted member is never declared dead");
    let incarnations: Vec<u64> = net.members[0]
        .members()
        .iter()
        .filter(|m| index(m.id) == 2)
        .map(|m| m.incarnation)
        .collect();
    assert!(incarnations[0] > 0, "refuting raised its incarnation");
}

#[test]
fn a_suspicion_nobody_can_resolve_is_refuted_through_the_member_lists() {
    // Every member holds 2 as suspect, but the gossip that spread it has run
    // out and the prober's suspect-to-down timer is gone (as an identity
    // renewal voids it): no member will declare 2 down, and probes of 2
    // succeed without clearing the suspicion. Only 2 can resolve it, by
    // refuting, and only if it learns of it.
    let mut net = Net::new(5, 11, lan());
    net.join_all_to_first();
    net.run_until(Duration::from_secs(20));
    assert!(net.converged());
    for v in [0, 1, 3, 4] {
        let m = &mut net.members[v];
        let suspect = foca::Member::new(member(2), 0, State::Suspect);
        m.swim
            .apply_many(std::iter::once(suspect), false, &mut m.io)
            .unwrap();
    }
    assert!(net.all_see(2, MemberState::Suspect));
    net.run_until(net.now + Duration::from_secs(30));
    assert!(
        net.all_see(2, MemberState::Alive),
        "2 learned of the suspicion from a member list and refuted it"
    );
}

#[test]
fn a_leave_is_disseminated_as_left_not_dead() {
    let mut net = Net::new(6, 4, lan());
    net.join_all_to_first();
    net.run_until(Duration::from_secs(20));
    net.members[4].leave();
    net.collect(4);
    net.run_until(net.now + Duration::from_millis(200));
    net.down.insert(4);
    net.run_until(net.now + Duration::from_secs(10));
    assert!(
        net.all_see(4, MemberState::Left),
        "everyone records 4 as left"
    );
}

#[test]
fn messages_from_another_cluster_are_rejected_and_counted() {
    let mut net = Net::new(3, 5, lan());
    net.join_all_to_first();
    net.run_until(Duration::from_secs(10));
    let stranger_id = member(99);
    let mut stranger = Membership::new(
        stranger_id,
        None,
        lan(),
        ClusterKey::from_secret(b"another cluster"),
        7,
    );
    stranger.join(member(0).node);
    let sent: Vec<Vec<u8>> = stranger
        .drain_outputs()
        .filter_map(|o| match o {
            Output::Send { data, .. } => Some(data),
            _ => None,
        })
        .collect();
    assert!(!sent.is_empty());
    for data in &sent {
        let err = net.members[0].handle_data(data, net.now).unwrap_err();
        assert!(matches!(
            err,
            MembershipError::Rejected(EnvelopeError::WrongCluster)
        ));
    }
    net.collect(0);
    assert_eq!(net.members[0].stats().messages_rejected, sent.len() as u64);
    assert!(
        net.members[0]
            .members()
            .iter()
            .all(|m| m.id.node != stranger_id.node)
    );
}

#[test]
fn a_restart_with_a_higher_generation_replaces_the_old_one() {
    let mut net = Net::new(4, 6, lan());
    net.join_all_to_first();
    net.run_until(Duration::from_secs(10));
    net.down.insert(2);
    net.run_until(net.now + Duration::from_secs(30));
    assert!(net.all_see(2, MemberState::Dead));
    // The process comes back with a new generation, as a restarted node does.
    let reborn = MemberId {
        generation: 1,
        ..member(2)
    };
    net.members[2] = Membership::new(
        reborn,
        None,
        lan(),
        ClusterKey::from_secret(b"test cluster"),
        60,
    );
    net.down.remove(&2);
    net.members[2].join(member(0).node);
    net.collect(2);
    net.run_until(net.now + Duration::from_secs(20));
    assert!(net.all_see(2, MemberState::Alive));
    let seen = net.members[1]
        .members()
        .into_iter()
        .find(|m| m.id.node == reborn.node)
        .unwrap();
    assert_eq!(seen.id.generation, 1);
    assert!(
        seen.incarnation >= 1 << 16,
        "the incarnation grew with the generation"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    /// With no loss and no crash, nobody is ever declared dead.
    #[test]
    fn without_loss_or_crash_no_member_is_declared_dead(seed in any::<u64>(), n in 2usize..12) {
        let mut net = Net::new(n, seed, lan());
        net.join_all_to_first();
        net.run_until(Duration::from_secs(60));
        let deaths = net.events.iter().filter(|(_, _, e)| matches!(e, MembershipEvent::Dead(_))).count();
        prop_assert_eq!(deaths, 0);
        prop_assert!(net.converged());
    }
}

#[test]
fn a_late_joiner_learns_every_member_from_its_contact_at_once() {
    // More members than one join answer (a packet) can hold, and no periodic
    // announce or pull: only the list asked for at join can teach the
    // newcomer about the members whose joins were gossiped long ago.
    let mut config = MembershipConfig::lan(64);
    config.swim.periodic_announce = None;
    config.sync_interval = None;
    let n = 61;
    let mut net = Net::new(n, 11, config);
    for i in 1..n - 1 {
        net.members[i].join(member(0).node);
        net.collect(i);
        net.run_until(net.now + Duration::from_millis(200));
    }
    net.run_until(net.now + Duration::from_secs(60));
    let newcomer = n - 1;
    net.members[newcomer].join(member(7).node);
    net.collect(newcomer);
    net.run_until(net.now + Duration::from_secs(1));
    assert_eq!(
        net.members[newcomer].active_members(),
        n - 1,
        "the newcomer knows everyone after one second"
    );
}

#[test]
fn a_joiner_of_a_large_cluster_gets_its_list_from_several_members_in_bounded_answers() {
    // 1,000 settled members, no periodic pull or announce: the newcomer's
    // list comes from its join's pulls alone. No member sends it more than
    // one answer's worth (32 pieces and the end, plus a few SWIM messages).
    let mut config = MembershipConfig::lan(1_000);
    config.swim.periodic_announce = None;
    config.sync_interval = None;
    let n = 1_000;
    let mut net = Net::new(n, 5, config);
    let everyone: Vec<MemberId> = (0..n - 1).map(member).collect();
    for i in 0..n - 1 {
        net.members[i].learn_members(everyone.iter().copied(), Duration::ZERO);
        net.collect(i);
    }
    let newcomer = n - 1;
    net.members[newcomer].join(member(3).node);
    net.collect(newcomer);
    net.run_until(Duration::from_secs(2));
    assert_eq!(
        net.members[newcomer].active_members(),
        n - 1,
        "the newcomer knows everyone after two seconds"
    );
    let to_newcomer: Vec<usize> = (0..n - 1)
        .map(|i| net.sent.get(&(i, newcomer)).copied().unwrap_or(0))
        .collect();
    let most = to_newcomer.iter().copied().max().unwrap_or(0);
    let answered = to_newcomer.iter().filter(|&&c| c >= 10).count();
    assert!(most <= 40, "a member sent the newcomer {most} messages");
    assert!(
        answered >= 2,
        "the list came from {answered} member(s), not several"
    );
}

#[test]
fn a_pull_with_a_malformed_end_is_refused_and_an_end_nobody_asked_for_is_ignored() {
    let key = ClusterKey::from_secret(b"test cluster");
    let mut m = Membership::new(member(0), None, lan(), key.clone(), 1);
    let mut sealed = Vec::new();
    key.seal(&member(1).node, &[KIND_SYNC_END, 7, 7], &mut sealed);
    let err = m.handle_data(&sealed, Duration::ZERO).unwrap_err();
    assert!(err.to_string().contains("end of a member list"), "{err}");
    // An end saying "more" from a member never asked starts no pull.
    m.drain_outputs().for_each(drop);
    m.learn_members([member(1), member(2)], Duration::ZERO);
    m.drain_outputs().for_each(drop);
    let mut sealed = Vec::new();
    key.seal(&member(1).node, &[KIND_SYNC_END, 1], &mut sealed);
    m.handle_data(&sealed, Duration::ZERO).unwrap();
    let sent = m
        .drain_outputs()
        .filter(|o| matches!(o, Output::Send { .. }))
        .count();
    assert_eq!(sent, 0);
}

#[test]
fn a_member_list_with_an_unknown_state_is_refused() {
    let key = ClusterKey::from_secret(b"test cluster");
    let mut m = Membership::new(member(0), None, lan(), key.clone(), 1);
    let mut payload = vec![KIND_MEMBERS];
    payload.extend(postcard::to_stdvec(&vec![(member(1), 0u16, 9u8)]).unwrap());
    let mut sealed = Vec::new();
    key.seal(&member(1).node, &payload, &mut sealed);
    let err = m.handle_data(&sealed, Duration::ZERO).unwrap_err();
    assert!(err.to_string().contains("unknown member state 9"), "{err}");
    assert_eq!(m.active_members(), 0);
}

/// An answer to a pull: its `KIND_MEMBERS` pieces, the members they list,
/// and its end's "more" flag (`None` if it has no end).
fn sent_lists(outputs: &[Output]) -> (usize, Vec<MemberId>, Option<bool>) {
    let key = ClusterKey::from_secret(b"test cluster");
    let mut listed = Vec::new();
    let mut pieces = 0;
    let mut more = None;
    for output in outputs {
        if let Output::Send { data, .. } = output {
            let (_, payload) = key.open(data).unwrap();
            match payload[0] {
                KIND_MEMBERS => {
                    pieces += 1;
                    let piece: Vec<(MemberId, u16, u8)> =
                        postcard::from_bytes(&payload[1..]).unwrap();
                    listed.extend(piece.into_iter().map(|(id, _, _)| id));
                }
                KIND_SYNC_END => more = Some(payload[1] == 1),
                _ => {}
            }
        }
    }
    (pieces, listed, more)
}

/// The first message `m` sends, which must be there.
fn first_sent(m: &mut Membership) -> Vec<u8> {
    m.drain_outputs()
        .find_map(|o| match o {
            Output::Send { data, .. } => Some(data),
            _ => None,
        })
        .expect("a message was sent")
}

#[test]
fn a_periodic_pull_brings_only_the_entries_that_differ() {
    let key = ClusterKey::from_secret(b"test cluster");
    let everyone: Vec<MemberId> = (0..300).map(member).collect();
    let mut a = Membership::new(member(0), None, lan(), key.clone(), 1);
    let mut b = Membership::new(member(1), None, lan(), key.clone(), 2);
    a.learn_members(everyone.clone(), Duration::ZERO);
    b.learn_members(everyone[..299].iter().copied(), Duration::ZERO);
    a.drain_outputs().for_each(drop);
    b.drain_outputs().for_each(drop);

    // b lacks member 299: a's answer to b's digest lists its bucket only.
    b.start_pull(member(0), 0, 0);
    let data = first_sent(&mut b);
    assert!(
        data.len() < 1_200,
        "the digest fits one packet: {} bytes",
        data.len()
    );
    a.handle_data(&data, Duration::ZERO).unwrap();
    let answer: Vec<Output> = a.drain_outputs().collect();
    let (pieces, listed, more) = sent_lists(&answer);
    assert!(listed.contains(&member(299)));
    assert!(
        listed.len() < 10,
        "one bucket of 300 members: {}",
        listed.len()
    );
    assert_eq!((pieces, more), (1, Some(false)));
    for output in answer {
        if let Output::Send { data, .. } = output {
            b.handle_data(&data, Duration::ZERO).unwrap();
        }
    }
    assert_eq!(b.active_members(), 299, "b learned member 299");

    assert!(b.io.pull.is_none(), "the end of the answer ends the pull");

    // Now they agree: a pull is answered with its end alone.
    b.drain_outputs().for_each(drop);
    b.start_pull(member(0), 0, 0);
    let data = first_sent(&mut b);
    a.handle_data(&data, Duration::ZERO).unwrap();
    let (pieces, _, more) = sent_lists(&a.drain_outputs().collect::<Vec<_>>());
    assert_eq!((pieces, more), (0, Some(false)));

    // A digest of the wrong size is refused, saying why.
    let mut sealed = Vec::new();
    key.seal(&member(1).node, &[KIND_SYNC_DIGEST, 1, 2, 3], &mut sealed);
    let err = a.handle_data(&sealed, Duration::ZERO).unwrap_err();
    assert!(
        err.to_string().contains("member digest of 3 bytes"),
        "{err}"
    );
}
