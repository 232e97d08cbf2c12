//! The simulated world: nodes running the protocol's own state machines, a
//! virtual clock, the network between them, and the scenario's happenings.
//!
//! One thread, no wall clock: the next event in virtual time is taken from the
//! queue and handed to the node it concerns; what the node's state machines
//! output becomes new events (messages through the network, timers). Every
//! random choice comes from the seed, so a run is reproducible to the byte.

use std::collections::BTreeMap;
use std::time::Duration;

use stemma_protocol::membership::{
    ClusterKey, MemberIdentity, Membership, MembershipConfig, MembershipEvent, MembershipTimer,
    NodeId, NodeMeta, Output,
};

mod lineage;
mod member;
mod replication;

use member::SimMember;

use lineage::{LineageEvent, LineagePart};
use replication::{Copied, ReplicationPart};

use crate::metrics::{Distribution, EventRow, Metrics, Sample, round6};
use crate::network::{Drop, Micros, NO_SIDE, Network, micros};
use crate::queue::Queue;
use crate::rng::{Rng, derive};
use crate::scenario::{Action, Scenario, StartMode, TimedEvent};

/// How often a node that knows no other member joins again, as `stemma node
/// run` does.
const JOIN_RETRY: Micros = 3_000_000;

fn seconds(t: Micros) -> f64 {
    t as f64 / 1e6
}

/// The id of the process in `slot` under its `identity`-th identity (a fresh
/// restart gets a new one).
fn node_id(slot: u32, identity: u32) -> NodeId {
    NodeId::synthetic((u64::from(identity) << 32) | u64::from(slot))
}

/// (slot, identity) of a simulated node id.
fn slot_of(id: &NodeId) -> (u32, u32) {
    let key = id.public_key();
    let n = u64::from_be_bytes(key[..8].try_into().expect("8 bytes"));
    (n as u32, (n >> 32) as u32)
}

/// Where a node is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    /// Not started yet.
    Waiting,
    /// Running.
    Up,
    /// Stalled: what arrives waits until it resumes.
    Paused,
    /// Crashed.
    Crashed,
    /// Left gracefully.
    Left,
}

impl Life {
    fn is_live(self) -> bool {
        matches!(self, Life::Up | Life::Paused)
    }
}

#[derive(Debug)]
struct Node {
    zone: u32,
    identity: u32,
    generation: u32,
    /// Bumped at every start: timers of an earlier process are ignored.
    process: u32,
    life: Life,
    swim: Option<Box<Membership<SimMember>>>,
    /// Events that arrived while stalled.
    inbox: Vec<Event>,
    /// How far ahead of true time this node's clock is.
    skew: Micros,
    /// Open failure records this node has not resolved yet.
    stale: u32,
    /// Whether its view is exact.
    correct: bool,
    sent_messages: u64,
    sent_bytes: u64,
}

impl Node {
    fn member_id(&self, slot: u32) -> SimMember {
        SimMember::new(slot, self.identity, self.generation)
    }
}

/// Something scheduled.
#[derive(Debug)]
enum Event {
    /// A membership message arrives.
    Deliver { to: u32, from: u32, data: Vec<u8> },
    /// A membership timer of process `process` of `node` fires.
    Timer {
        node: u32,
        process: u32,
        timer: MembershipTimer<SimMember>,
    },
    /// A node starts for the first time.
    Start { node: u32 },
    /// A node alone joins again.
    RetryJoin { node: u32, process: u32 },
    /// A stalled node goes on.
    Resume { node: u32, process: u32 },
    /// A departed node comes back.
    Restart { node: u32, fresh: bool },
    /// The scenario's timed event with this index.
    Scenario(usize),
    /// A partition or cut ends.
    LiftRule(usize),
    /// The next random departure.
    Churn,
    /// A node's next stall.
    Stall { node: u32 },
    /// A row of `timeseries.csv`.
    Sample,
    /// Lineage edits and sync.
    Lineage(LineageEvent),
    /// A partition copy finished.
    Copied(Copied),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Departure {
    Crash,
    Leave,
}

/// A departed member, until every node alive at that moment has recorded it.
#[derive(Debug)]
struct Failure {
    kind: Departure,
    at: Micros,
    /// Observers still to record it.
    remaining: Vec<bool>,
    left: u32,
    first: Option<Micros>,
    last: Micros,
    /// Hops the verdict took to reach each observer (`u16::MAX`: not yet).
    hops: Vec<u16>,
    max_hop: u16,
    /// A restart replaced it before everyone declared it.
    replaced: bool,
}

/// Counters of the current sample interval.
#[derive(Debug, Default)]
struct Interval {
    lost: u64,
    partitioned: u64,
    suspicions: u64,
}

/// A running simulation.
#[derive(Debug)]
pub struct World {
    scenario: Scenario,
    config: MembershipConfig,
    key: ClusterKey,
    now: Micros,
    end: Micros,
    queue: Queue<Event>,
    nodes: Vec<Node>,
    net: Network,
    /// Choices of the scenario: who its events hit, who to join through.
    rng: Rng,
    /// Random departures and stalls: their own stream, so that turning them
    /// (or lineage) on or off leaves the other choices alone.
    churn_rng: Rng,
    live: u32,
    correct: u32,
    converged: bool,
    disrupted_at: Micros,
    initial_started: u32,
    last_initial_start: Option<Micros>,
    live_node_micros: u128,
    live_since: Micros,
    failures: BTreeMap<(u32, u32, u32), Failure>,
    interval: Interval,
    samples_after_convergence: u64,
    converged_samples: u64,
    arrivals: Vec<Micros>,
    outputs: Vec<Output<SimMember>>,
    observer_detections: Vec<f64>,
    first_detections: Vec<f64>,
    all_detections: Vec<f64>,
    leave_all: Vec<f64>,
    rounds: Vec<f64>,
    reconvergence: Vec<f64>,
    metrics: Metrics,
    samples: Vec<Sample>,
    rows: Vec<EventRow>,
    lineage: Option<LineagePart>,
    /// While non-zero, timers set are delayed by a random part of it.
    timer_jitter: Micros,
    replication: Option<ReplicationPart>,
}

/// What a finished run produced.
#[derive(Debug)]
pub struct Outcome {
    /// The scenario as run (overrides applied).
    pub scenario: Scenario,
    /// Every figure.
    pub metrics: Metrics,
    /// `timeseries.csv`'s rows.
    pub samples: Vec<Sample>,
    /// `events.csv`'s rows.
    pub events: Vec<EventRow>,
    /// Per (crash, observer) detection times, for the CDF plot.
    pub observer_detections: Vec<f64>,
    /// Per crash, the time until the first node declared it.
    pub first_detections: Vec<f64>,
    /// Per crash, the time until every node had.
    pub all_detections: Vec<f64>,
    /// Per lineage edit, the time until every live node had it.
    pub lineage_delays: Vec<f64>,
}

impl World {
    /// A world ready to run `scenario`.
    pub fn new(scenario: Scenario) -> Self {
        let seed = scenario.seed;
        let config = scenario.membership_config();
        let end = micros(scenario.duration);
        let mut world = Self {
            key: ClusterKey::from_secret(format!("stemma-sim-{seed}").as_bytes()),
            net: Network::new(
                &scenario.network,
                scenario.zones,
                derive(seed, "network", 0),
            ),
            rng: Rng::new(derive(seed, "scenario", 0)),
            churn_rng: Rng::new(derive(seed, "churn", 0)),
            config,
            now: 0,
            end,
            queue: Queue::default(),
            nodes: Vec::new(),
            live: 0,
            correct: 0,
            converged: false,
            disrupted_at: 0,
            initial_started: 0,
            last_initial_start: None,
            live_node_micros: 0,
            live_since: 0,
            failures: BTreeMap::new(),
            interval: Interval::default(),
            samples_after_convergence: 0,
            converged_samples: 0,
            arrivals: Vec::new(),
            outputs: Vec::new(),
            observer_detections: Vec::new(),
            first_detections: Vec::new(),
            all_detections: Vec::new(),
            leave_all: Vec::new(),
            rounds: Vec::new(),
            reconvergence: Vec::new(),
            metrics: Metrics::default(),
            samples: Vec::new(),
            rows: Vec::new(),
            lineage: scenario.lineage.clone().map(|w| LineagePart::new(w, seed)),
            timer_jitter: 0,
            replication: None,
            scenario,
        };
        world.schedule_scenario();
        if let Some(settings) = world.scenario.replication.clone() {
            world.replication = Some(World::replication_init(&settings, &world));
        }
        world.lineage_schedule();
        world
    }

    fn schedule_scenario(&mut self) {
        let n = self.scenario.nodes;
        for _ in 0..n {
            self.add_node();
        }
        let s = &self.scenario;
        let window = micros(s.membership.join_window);
        let mut starts = Vec::with_capacity(n as usize);
        let settled = s.membership.start == StartMode::Settled;
        for i in 0..n {
            // Node 0 first; the others spread evenly over the join window.
            let at = if n <= 1 || settled {
                0
            } else {
                window * u64::from(i) / u64::from(n - 1)
            };
            starts.push((at, i));
        }
        for (at, i) in starts {
            self.queue.push(at, Event::Start { node: i });
        }
        let sample = micros(s.sample_interval);
        self.queue.push(sample, Event::Sample);
        for (i, e) in s.events.iter().enumerate() {
            self.queue.push(micros(e.at), Event::Scenario(i));
        }
        if let Some(churn) = &s.churn
            && churn.rate > 0.0
        {
            let start = churn.start.unwrap_or(s.membership.join_window + 30.0);
            let first = start + self.churn_rng.exponential(1.0 / churn.rate);
            self.queue.push(micros(first), Event::Churn);
        }
        if let Some(stalls) = s.stalls.clone() {
            let mut rng = Rng::new(derive(s.seed, "stalls", 0));
            for i in 0..n {
                if rng.chance(stalls.fraction) {
                    let at = s.membership.join_window + stalls.every_s.sample(&mut rng);
                    self.queue.push(micros(at), Event::Stall { node: i });
                }
            }
        }
    }

    fn add_node(&mut self) -> u32 {
        let slot = self.nodes.len() as u32;
        self.nodes.push(Node {
            zone: slot % self.scenario.zones,
            identity: 0,
            generation: 0,
            process: 0,
            life: Life::Waiting,
            swim: None,
            inbox: Vec::new(),
            skew: 0,
            stale: 0,
            correct: false,
            sent_messages: 0,
            sent_bytes: 0,
        });
        slot
    }

    /// Runs to the end. `progress` is called with the virtual seconds reached,
    /// once per sample interval.
    pub fn run(mut self, mut progress: impl FnMut(f64)) -> Outcome {
        while let Some((at, event)) = self.queue.pop() {
            if at > self.end {
                break;
            }
            self.now = at;
            self.metrics.events += 1;
            self.metrics.max_pending_events = self
                .metrics
                .max_pending_events
                .max(self.queue.len() as u64 + 1);
            if matches!(event, Event::Sample) {
                progress(seconds(at));
            }
            self.handle(event);
        }
        self.now = self.end;
        self.finish()
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Deliver { to, from, data } => self.deliver(to, from, data),
            Event::Timer {
                node,
                process,
                timer,
            } => self.fire(node, process, timer),
            Event::Start { node } => {
                if node < self.scenario.nodes {
                    self.initial_started += 1;
                    if self.initial_started == self.scenario.nodes {
                        self.last_initial_start = Some(self.now);
                    }
                }
                self.start(node, true);
            }
            Event::RetryJoin { node, process } => self.retry_join(node, process),
            Event::Resume { node, process } => self.resume(node, process),
            Event::Restart { node, fresh } => self.restart(node, fresh),
            Event::Scenario(i) => self.scenario_event(i),
            Event::LiftRule(i) => {
                self.net.remove_rule(i);
                self.row("heal", None, format!("event={i}"));
            }
            Event::Churn => self.churn(),
            Event::Stall { node } => self.stall(node),
            Event::Sample => self.sample(),
            Event::Lineage(event) => self.lineage_event(event),
            Event::Copied(copied) => self.replication_copied(copied),
        }
    }

    // ----- the nodes' inputs -----

    fn local_now(&self, slot: u32) -> Duration {
        Duration::from_micros(self.now + self.nodes[slot as usize].skew)
    }

    fn deliver(&mut self, to: u32, from: u32, data: Vec<u8>) {
        let node = &mut self.nodes[to as usize];
        match node.life {
            Life::Up => {
                self.metrics.message_events += 1;
                self.metrics.messages_delivered += 1;
                let now = self.local_now(to);
                let swim = self.nodes[to as usize]
                    .swim
                    .as_mut()
                    .expect("a running node has SWIM");
                if swim.handle_data(&data, now).is_err() {
                    self.metrics.messages_refused += 1;
                }
                self.after_input(to, Some(from));
            }
            Life::Paused => node.inbox.push(Event::Deliver { to, from, data }),
            Life::Waiting | Life::Crashed | Life::Left => self.metrics.messages_to_down_nodes += 1,
        }
    }

    fn fire(&mut self, slot: u32, process: u32, timer: MembershipTimer<SimMember>) {
        let node = &mut self.nodes[slot as usize];
        if node.process != process {
            return;
        }
        match node.life {
            Life::Up => {
                self.metrics.timer_events += 1;
                let now = self.local_now(slot);
                let swim = self.nodes[slot as usize]
                    .swim
                    .as_mut()
                    .expect("a running node has SWIM");
                swim.handle_timer(timer, now);
                self.after_input(slot, None);
            }
            Life::Paused => node.inbox.push(Event::Timer {
                node: slot,
                process,
                timer,
            }),
            _ => {}
        }
    }

    /// Carries out what a node's state machine asked for. `cause`: the sender
    /// of the message it handled, if any.
    fn after_input(&mut self, slot: u32, cause: Option<u32>) {
        let mut outputs = std::mem::take(&mut self.outputs);
        let node = &mut self.nodes[slot as usize];
        let process = node.process;
        if let Some(swim) = node.swim.as_mut() {
            outputs.extend(swim.drain_outputs());
        }
        for output in outputs.drain(..) {
            match output {
                Output::Send { to, data } => self.send(slot, &to, data),
                Output::Timer { timer, after } => {
                    let mut at = self.now + after.as_micros() as Micros;
                    if self.timer_jitter > 0 {
                        at += self.rng.below(self.timer_jitter);
                    }
                    self.queue.push(
                        at,
                        Event::Timer {
                            node: slot,
                            process,
                            timer,
                        },
                    );
                }
                Output::Event(event) => self.on_membership_event(slot, event, cause),
            }
        }
        self.outputs = outputs;
        self.update_correct(slot);
    }

    fn send(&mut self, from: u32, to: &SimMember, data: Vec<u8>) {
        let to = to.slot;
        if to as usize >= self.nodes.len() {
            return;
        }
        let bytes = data.len();
        self.metrics.messages_sent += 1;
        self.metrics.bytes_sent += bytes as u64;
        let sender = &mut self.nodes[from as usize];
        sender.sent_messages += 1;
        sender.sent_bytes += bytes as u64;
        let ends = ((from, sender.zone), (to, self.nodes[to as usize].zone));
        let mut arrivals = std::mem::take(&mut self.arrivals);
        match self
            .net
            .send(self.now, ends.0, ends.1, bytes, &mut arrivals)
        {
            Ok(()) => {
                if let Some((&last, rest)) = arrivals.split_last() {
                    for &at in rest {
                        let data = data.clone();
                        self.queue.push(at, Event::Deliver { to, from, data });
                    }
                    self.queue.push(last, Event::Deliver { to, from, data });
                }
            }
            Err(Drop::Lost) => {
                self.metrics.messages_lost += 1;
                self.interval.lost += 1;
            }
            Err(Drop::Partitioned) => {
                self.metrics.messages_partitioned += 1;
                self.interval.partitioned += 1;
            }
        }
        self.arrivals = arrivals;
    }

    fn on_membership_event(
        &mut self,
        observer: u32,
        event: MembershipEvent<SimMember>,
        cause: Option<u32>,
    ) {
        match event {
            MembershipEvent::Suspected(_) => {
                self.metrics.suspicions_raised += 1;
                self.interval.suspicions += 1;
            }
            MembershipEvent::Refuted(_) => self.metrics.suspicions_refuted += 1,
            MembershipEvent::Dead(id) => self.verdict(observer, id, Departure::Crash, cause),
            MembershipEvent::Left(id) => self.verdict(observer, id, Departure::Leave, cause),
            MembershipEvent::Renamed { from, .. } => {
                if let Some(key) = self.failure_key(&from) {
                    self.resolve(key, observer, None);
                }
            }
            MembershipEvent::Rejoined(id) => {
                self.metrics.rejoined += 1;
                self.nodes[observer as usize].generation = id.generation;
                self.row(
                    "rejoined",
                    Some(observer),
                    format!("generation={}", id.generation),
                );
            }
            MembershipEvent::Up(_) | MembershipEvent::Active | MembershipEvent::Idle => {}
        }
    }

    fn failure_key(&self, id: &SimMember) -> Option<(u32, u32, u32)> {
        let key = (id.slot, id.identity, id.generation);
        self.failures.contains_key(&key).then_some(key)
    }

    /// `observer` declared `id` dead or left.
    fn verdict(&mut self, observer: u32, id: SimMember, said: Departure, cause: Option<u32>) {
        if let Some(key) = self.failure_key(&id) {
            self.resolve(key, observer, Some((said, cause)));
            return;
        }
        let (slot, identity) = (id.slot, id.identity);
        let Some(target) = self.nodes.get(slot as usize) else {
            return;
        };
        let alive = target.life.is_live()
            && target.identity == identity
            && target.generation == id.generation;
        if said == Departure::Crash && alive {
            if self.net.separated(observer, slot) {
                // Right as far as the observer can tell: it cannot reach it.
                self.metrics.dead_across_partition += 1;
            } else {
                self.metrics.false_dead += 1;
                self.row("false_dead", Some(slot), format!("observer={observer}"));
            }
        }
    }

    /// `observer` has recorded the departure `key` (by a verdict, or by
    /// learning of its restart).
    fn resolve(
        &mut self,
        key: (u32, u32, u32),
        observer: u32,
        verdict: Option<(Departure, Option<u32>)>,
    ) {
        let now = self.now;
        let failure = self.failures.get_mut(&key).expect("checked by the caller");
        let o = observer as usize;
        if !failure.remaining.get(o).copied().unwrap_or(false) {
            return;
        }
        failure.remaining[o] = false;
        failure.left -= 1;
        failure.last = now;
        let mut first = false;
        match verdict {
            Some((_, cause)) => {
                let hop = cause
                    .and_then(|s| failure.hops.get(s as usize).copied())
                    .filter(|&h| h != u16::MAX)
                    .map_or(0, |h| h.saturating_add(1));
                failure.hops[o] = hop;
                failure.max_hop = failure.max_hop.max(hop);
                if failure.kind == Departure::Crash {
                    self.observer_detections.push(seconds(now - failure.at));
                    if failure.first.is_none() {
                        failure.first = Some(now);
                        first = true;
                    }
                }
            }
            None => failure.replaced = true,
        }
        let done = failure.left == 0;
        let since = seconds(now - failure.at);
        self.nodes[o].stale -= 1;
        self.update_correct(observer);
        if first {
            self.first_detections.push(since);
            self.row(
                "detected_first",
                Some(key.0),
                format!("after_s={};observer={observer}", round6(since)),
            );
        }
        if done {
            self.close_failure(key);
        }
    }

    fn close_failure(&mut self, key: (u32, u32, u32)) {
        let failure = self.failures.remove(&key).expect("open");
        let took = seconds(failure.last - failure.at);
        match failure.kind {
            Departure::Crash if !failure.replaced && failure.first.is_some() => {
                self.all_detections.push(took);
                self.rounds.push(f64::from(failure.max_hop));
                self.row(
                    "detected_all",
                    Some(key.0),
                    format!("after_s={};rounds={}", round6(took), failure.max_hop),
                );
            }
            Departure::Crash => self.metrics.detection_incomplete += 1,
            Departure::Leave => {
                self.leave_all.push(took);
                self.row("left_all", Some(key.0), format!("after_s={}", round6(took)));
            }
        }
        // Everyone agrees it is gone (and it has not come back since): its
        // data must live elsewhere.
        let back = self.nodes[key.0 as usize].identity == key.1
            && self.nodes[key.0 as usize].life.is_live();
        if !failure.replaced && !back {
            self.replication_gone(node_id(key.0, key.1));
        }
    }

    // ----- lives -----

    fn set_live(&mut self, delta: i32) {
        self.live_node_micros += u128::from(self.live) * u128::from(self.now - self.live_since);
        self.live_since = self.now;
        self.live = self.live.checked_add_signed(delta).expect("live count");
    }

    /// Starts the process in `slot`; `fresh`: with no stored state.
    fn start(&mut self, slot: u32, fresh: bool) {
        let via = self.join_target(slot);
        let node = &mut self.nodes[slot as usize];
        node.process += 1;
        node.life = Life::Up;
        node.stale = 0;
        node.correct = false;
        let me = node.member_id(slot);
        let meta = self.config.metadata.then(|| NodeMeta {
            id: me.member_id(),
            zone: format!("z{}", node.zone),
            capacity: 1,
            version: env!("CARGO_PKG_VERSION").into(),
            p2p_addrs: Vec::new(),
            client_addr: None,
        });
        let seed = derive(
            self.scenario.seed,
            "swim",
            (u64::from(slot) << 32) | u64::from(node.process),
        );
        let mut swim = Membership::new(me, meta, self.config.clone(), self.key.clone(), seed);
        let settled = self.scenario.membership.start == StartMode::Settled
            && self.now == 0
            && slot < self.scenario.nodes;
        if settled {
            // As after a join long ago: everyone known, timers at random phases.
            let n = self.scenario.nodes;
            swim.learn_members((0..n).map(|i| SimMember::new(i, 0, 0)), Duration::ZERO);
            self.timer_jitter = self.config.swim.probe_period.as_micros() as Micros;
        } else if let Some(via) = via {
            swim.join(via);
        }
        let process = node.process;
        node.swim = Some(Box::new(swim));
        self.set_live(1);
        self.row(
            "start",
            Some(slot),
            format!("generation={};identity={}", me.generation, me.identity),
        );
        self.after_input(slot, None);
        self.timer_jitter = 0;
        self.queue.push(
            self.now + JOIN_RETRY,
            Event::RetryJoin {
                node: slot,
                process,
            },
        );
        self.lineage_start(slot, fresh);
        self.replication_started(slot, fresh);
        self.disrupted();
    }

    fn retry_join(&mut self, slot: u32, process: u32) {
        let node = &self.nodes[slot as usize];
        if node.process != process || !node.life.is_live() {
            return;
        }
        if node.life == Life::Up
            && node.swim.as_ref().is_some_and(|s| s.active_members() == 0)
            && let Some(via) = self.join_target(slot)
        {
            let swim = self.nodes[slot as usize].swim.as_mut().expect("running");
            swim.join(via);
            self.after_input(slot, None);
        }
        self.queue.push(
            self.now + JOIN_RETRY,
            Event::RetryJoin {
                node: slot,
                process,
            },
        );
    }

    /// A node stops for good (crash) or after saying goodbye (leave).
    fn depart(&mut self, slot: u32, how: Departure) {
        let node = &mut self.nodes[slot as usize];
        if !node.life.is_live() {
            return;
        }
        if how == Departure::Leave {
            if node.life == Life::Paused {
                return;
            }
            node.swim.as_mut().expect("running").leave();
            self.after_input(slot, None);
        }
        let node = &mut self.nodes[slot as usize];
        let id = node.member_id(slot);
        node.life = if how == Departure::Leave {
            Life::Left
        } else {
            Life::Crashed
        };
        node.swim = None;
        node.inbox.clear();
        node.correct = false;
        self.set_live(-1);
        self.lineage_depart(slot);
        self.replication_live_changed();
        // It no longer owes any verdict.
        let keys: Vec<_> = self.failures.keys().copied().collect();
        for key in keys {
            let f = self.failures.get_mut(&key).expect("listed");
            if f.remaining.get(slot as usize).copied().unwrap_or(false) {
                f.remaining[slot as usize] = false;
                f.left -= 1;
                if f.left == 0 {
                    self.close_failure(key);
                }
            }
        }
        // Every live node must now record it.
        let n = self.nodes.len();
        let mut remaining = vec![false; n];
        let mut left = 0;
        for (i, other) in self.nodes.iter_mut().enumerate() {
            if other.life.is_live() {
                remaining[i] = true;
                other.stale += 1;
                left += 1;
            }
        }
        let key = (slot, self.nodes[slot as usize].identity, id.generation);
        if left > 0 {
            self.failures.insert(
                key,
                Failure {
                    kind: how,
                    at: self.now,
                    remaining,
                    left,
                    first: None,
                    last: self.now,
                    hops: vec![u16::MAX; n],
                    max_hop: 0,
                    replaced: false,
                },
            );
        }
        match how {
            Departure::Crash => {
                self.metrics.crashes += 1;
                self.row("crash", Some(slot), String::new());
            }
            Departure::Leave => {
                self.metrics.leaves += 1;
                self.row("leave", Some(slot), String::new());
            }
        }
        self.disrupted();
    }

    fn restart(&mut self, slot: u32, fresh: bool) {
        let node = &mut self.nodes[slot as usize];
        if !matches!(node.life, Life::Crashed | Life::Left) {
            return;
        }
        if fresh {
            node.identity += 1;
            node.generation = 0;
        } else {
            node.generation += 1;
        }
        self.metrics.restarts += 1;
        self.row("restart", Some(slot), format!("fresh={fresh}"));
        self.start(slot, fresh);
    }

    fn pause(&mut self, slot: u32, for_s: f64) {
        let node = &mut self.nodes[slot as usize];
        if node.life != Life::Up {
            return;
        }
        node.life = Life::Paused;
        let process = node.process;
        self.metrics.stalls += 1;
        self.queue.push(
            self.now + micros(for_s),
            Event::Resume {
                node: slot,
                process,
            },
        );
        self.row("pause", Some(slot), format!("for_s={}", round6(for_s)));
    }

    fn resume(&mut self, slot: u32, process: u32) {
        let node = &mut self.nodes[slot as usize];
        if node.process != process || node.life != Life::Paused {
            return;
        }
        node.life = Life::Up;
        let inbox = std::mem::take(&mut node.inbox);
        self.row("resume", Some(slot), format!("queued={}", inbox.len()));
        for event in inbox {
            self.handle(event);
        }
    }

    fn stall(&mut self, slot: u32) {
        let Some(stalls) = self.scenario.stalls.clone() else {
            return;
        };
        let for_s = stalls.duration_s.sample(&mut self.churn_rng);
        self.pause(slot, for_s);
        let next = self.now + micros(for_s + stalls.every_s.sample(&mut self.churn_rng));
        self.queue.push(next, Event::Stall { node: slot });
    }

    fn churn(&mut self) {
        let churn = self
            .scenario
            .churn
            .clone()
            .expect("scheduled only with churn");
        let stop = churn.stop.map_or(self.end, micros);
        if self.now > stop {
            return;
        }
        let victim = pick_live(&self.nodes, &mut self.churn_rng, None);
        if let Some(slot) = victim.filter(|_| self.live > 1) {
            let how = if self.churn_rng.chance(churn.leave_fraction) {
                Departure::Leave
            } else {
                Departure::Crash
            };
            self.depart(slot, how);
            if let Some(after) = &churn.restart_after_s {
                let at = self.now + micros(after.sample(&mut self.churn_rng));
                let fresh = self.churn_rng.chance(churn.fresh_fraction);
                self.queue.push(at, Event::Restart { node: slot, fresh });
            }
        }
        let next = self.now + micros(self.churn_rng.exponential(1.0 / churn.rate));
        self.queue.push(next, Event::Churn);
    }

    /// Whom `slot` joins through: a running seed, else any running node.
    fn join_target(&mut self, slot: u32) -> Option<NodeId> {
        let seeds: Vec<u32> = (0..self.scenario.membership.seeds.min(self.nodes.len() as u32))
            .filter(|&s| s != slot && self.nodes[s as usize].life == Life::Up)
            .collect();
        let via = if seeds.is_empty() {
            self.pick_live(Some(slot))?
        } else {
            seeds[self.rng.below(seeds.len() as u64) as usize]
        };
        Some(node_id(via, self.nodes[via as usize].identity))
    }

    /// A random running node other than `except`, drawn from the scenario's
    /// stream.
    fn pick_live(&mut self, except: Option<u32>) -> Option<u32> {
        pick_live(&self.nodes, &mut self.rng, except)
    }

    // ----- the scenario's timeline -----

    fn scenario_event(&mut self, index: usize) {
        let e = self.scenario.events[index].clone();
        match e.action {
            Action::Crash => {
                for slot in self.choose(&e, |l| l.is_live()) {
                    self.depart(slot, Departure::Crash);
                    if let Some(after) = &e.restart_after_s {
                        let at = self.now + micros(after.sample(&mut self.rng));
                        self.queue.push(
                            at,
                            Event::Restart {
                                node: slot,
                                fresh: e.fresh,
                            },
                        );
                    }
                }
            }
            Action::Leave => {
                for slot in self.choose(&e, |l| l == Life::Up) {
                    self.depart(slot, Departure::Leave);
                }
            }
            Action::Restart => {
                for slot in self.choose(&e, |l| matches!(l, Life::Crashed | Life::Left)) {
                    self.restart(slot, e.fresh);
                }
            }
            Action::Pause => {
                let d = e.duration_s.expect("checked");
                for slot in self.choose(&e, |l| l == Life::Up) {
                    let for_s = d.sample(&mut self.rng);
                    self.pause(slot, for_s);
                }
            }
            Action::Skew => {
                let d = e.offset_ms.expect("checked");
                for slot in self.choose(&e, Life::is_live) {
                    let ms = d.sample(&mut self.rng);
                    self.nodes[slot as usize].skew = micros(ms / 1000.0);
                    self.row("skew", Some(slot), format!("offset_ms={}", round6(ms)));
                }
            }
            Action::Join => {
                let count = e.count.expect("checked");
                let over = micros(e.over.unwrap_or(0.0));
                for k in 0..count {
                    let slot = self.add_node();
                    let offset = u128::from(over) * u128::from(k) / u128::from(count.max(1));
                    let at = self.now + offset as Micros; // < over ≤ NEVER
                    self.queue.push(at, Event::Start { node: slot });
                }
            }
            Action::Partition | Action::Cut => {
                let sides: Vec<Vec<u32>> = match (e.action, &e.sides) {
                    (Action::Cut, _) => vec![
                        e.from_zones.clone().expect("checked"),
                        e.to_zones.clone().expect("checked"),
                    ],
                    (_, Some(sides)) => sides.clone(),
                    _ => Vec::new(),
                };
                let n = self.nodes.len();
                let side_of: Vec<u8> = if sides.is_empty() {
                    let cut = (e.fraction.expect("checked") * n as f64).round() as usize;
                    (0..n).map(|i| u8::from(i >= cut)).collect()
                } else {
                    self.nodes
                        .iter()
                        .map(|node| {
                            sides
                                .iter()
                                .position(|s| s.contains(&node.zone))
                                .map_or(NO_SIDE, |p| p as u8)
                        })
                        .collect()
                };
                self.net.add_rule(index, side_of, e.action == Action::Cut);
                if let Some(until) = e.until {
                    self.queue.push(micros(until), Event::LiftRule(index));
                }
                let kind = if e.action == Action::Cut {
                    "cut"
                } else {
                    "partition"
                };
                self.row(kind, None, format!("event={index}"));
            }
        }
    }

    /// The nodes an event applies to, among those whose life passes `eligible`.
    fn choose(&mut self, e: &TimedEvent, eligible: impl Fn(Life) -> bool) -> Vec<u32> {
        let mut pool: Vec<u32> = (0..self.nodes.len() as u32)
            .filter(|&i| eligible(self.nodes[i as usize].life))
            .collect();
        if let Some(zone) = e.zone {
            pool.retain(|&i| self.nodes[i as usize].zone == zone);
            return pool;
        }
        if let Some(list) = &e.nodes {
            pool.retain(|i| list.contains(i));
            return pool;
        }
        let want = match (e.count, e.fraction) {
            (Some(c), _) => c as usize,
            (None, Some(f)) => (f * pool.len() as f64).round() as usize,
            _ => pool.len(),
        }
        .min(pool.len());
        // A partial Fisher–Yates shuffle: `want` nodes at random.
        for k in 0..want {
            let j = k + self.rng.below((pool.len() - k) as u64) as usize;
            pool.swap(k, j);
        }
        pool.truncate(want);
        pool
    }

    // ----- views and samples -----

    fn is_correct(&self, slot: u32) -> bool {
        let node = &self.nodes[slot as usize];
        node.life.is_live()
            && node.stale == 0
            && node
                .swim
                .as_ref()
                .is_some_and(|s| s.active_members() + 1 == self.live as usize)
    }

    fn update_correct(&mut self, slot: u32) {
        let now_correct = self.is_correct(slot);
        let node = &mut self.nodes[slot as usize];
        if now_correct != node.correct {
            node.correct = now_correct;
            if now_correct {
                self.correct += 1;
            } else {
                self.correct -= 1;
            }
            self.check_converged();
        }
    }

    /// The live set changed: every view's exactness may have.
    fn disrupted(&mut self) {
        let mut correct = 0;
        for slot in 0..self.nodes.len() as u32 {
            let c = self.is_correct(slot);
            self.nodes[slot as usize].correct = c;
            correct += u32::from(c);
        }
        self.correct = correct;
        if self.converged {
            // Reconvergence counts from the disruption that broke exact views.
            self.converged = false;
            self.disrupted_at = self.now;
        }
        self.check_converged();
    }

    fn check_converged(&mut self) {
        let now = self.live > 0 && self.correct == self.live;
        if now == self.converged {
            return;
        }
        self.converged = now;
        if !now {
            self.disrupted_at = self.now;
            return;
        }
        let Some(last_start) = self.last_initial_start else {
            return;
        };
        let took = seconds(self.now - self.disrupted_at);
        if self.metrics.initial_convergence_s.is_none() {
            let since = seconds(self.now - last_start);
            self.metrics.initial_convergence_s = Some(round6(since));
            self.row(
                "converged",
                None,
                format!("initial=true;after_s={}", round6(since)),
            );
        } else {
            self.reconvergence.push(took);
            self.row("converged", None, format!("after_s={}", round6(took)));
        }
    }

    fn sample(&mut self) {
        let interval = self.scenario.sample_interval;
        let live = f64::from(self.live.max(1));
        let (mut messages, mut bytes, mut max_messages, mut max_bytes) = (0u64, 0u64, 0u64, 0u64);
        for node in &mut self.nodes {
            messages += node.sent_messages;
            bytes += node.sent_bytes;
            max_messages = max_messages.max(node.sent_messages);
            max_bytes = max_bytes.max(node.sent_bytes);
            node.sent_messages = 0;
            node.sent_bytes = 0;
        }
        let m = &mut self.metrics;
        m.max_messages_per_node_s = m
            .max_messages_per_node_s
            .max(max_messages as f64 / interval);
        m.max_bytes_per_node_s = m.max_bytes_per_node_s.max(max_bytes as f64 / interval);
        if m.initial_convergence_s.is_some() {
            self.samples_after_convergence += 1;
            self.converged_samples += u64::from(self.converged);
        }
        let interval_counts = std::mem::take(&mut self.interval);
        let replication = self.replication_sample(interval);
        self.samples.push(Sample {
            t: seconds(self.now),
            live: self.live,
            converged_fraction: f64::from(self.correct) / live,
            messages_per_node_s: messages as f64 / live / interval,
            bytes_per_node_s: bytes as f64 / live / interval,
            max_messages_per_node_s: max_messages as f64 / interval,
            lost: interval_counts.lost,
            partitioned: interval_counts.partitioned,
            suspicions: interval_counts.suspicions,
            open_failures: self
                .failures
                .values()
                .filter(|f| f.kind == Departure::Crash)
                .count() as u64,
            false_dead: self.metrics.false_dead,
            lineage_pending: self.lineage.as_ref().map(LineagePart::pending),
            under_replicated: replication.map(|r| r.0),
            unavailable: replication.map(|r| r.1),
        });
        self.queue.push(self.now + micros(interval), Event::Sample);
    }

    fn row(&mut self, kind: &'static str, node: Option<u32>, detail: String) {
        self.rows.push(EventRow {
            t: round6(seconds(self.now)),
            kind,
            node,
            detail,
        });
    }

    fn finish(mut self) -> Outcome {
        self.set_live(0);
        let open: Vec<_> = self.failures.keys().copied().collect();
        for key in open {
            let f = self.failures.remove(&key).expect("listed");
            if f.kind == Departure::Crash {
                self.metrics.detection_incomplete += 1;
            }
        }
        let live_node_seconds = self.live_node_micros as f64 / 1e6;
        let m = &mut self.metrics;
        m.virtual_seconds = seconds(self.end);
        m.nodes_total = self
            .nodes
            .iter()
            .filter(|n| n.life != Life::Waiting)
            .count() as u32;
        m.nodes_alive_at_end = self.live;
        if live_node_seconds > 0.0 {
            m.messages_per_node_s = round6(m.messages_sent as f64 / live_node_seconds);
            m.bytes_per_node_s = round6(m.bytes_sent as f64 / live_node_seconds);
        }
        m.max_messages_per_node_s = round6(m.max_messages_per_node_s);
        m.max_bytes_per_node_s = round6(m.max_bytes_per_node_s);
        m.detection_first_s = Distribution::of(&self.first_detections);
        m.detection_all_s = Distribution::of(&self.all_detections);
        m.detection_observer_s = Distribution::of(&self.observer_detections);
        m.leave_all_s = Distribution::of(&self.leave_all);
        m.dissemination_rounds = Distribution::of(&self.rounds);
        m.reconvergence_s = Distribution::of(&self.reconvergence);
        if self.samples_after_convergence > 0 {
            m.converged_time_fraction =
                round6(self.converged_samples as f64 / self.samples_after_convergence as f64);
        }
        self.metrics.replication = self.replication_metrics(live_node_seconds);
        let mut lineage_delays = Vec::new();
        if let Some((metrics, delays)) = self.lineage_metrics(live_node_seconds) {
            self.metrics.lineage = Some(metrics);
            lineage_delays = delays;
        }
        Outcome {
            scenario: self.scenario,
            metrics: self.metrics,
            samples: self.samples,
            events: self.rows,
            observer_detections: self.observer_detections,
            first_detections: self.first_detections,
            all_detections: self.all_detections,
            lineage_delays,
        }
    }
}

/// A random running node other than `except`, drawn from `rng`.
fn pick_live(nodes: &[Node], rng: &mut Rng, except: Option<u32>) -> Option<u32> {
    let n = nodes.len() as u64;
    let ok = |i: u32| nodes[i as usize].life == Life::Up && Some(i) != except;
    for _ in 0..64 {
        let i = rng.below(n) as u32;
        if ok(i) {
            return Some(i);
        }
    }
    let start = rng.below(n) as u32;
    (0..n as u32)
        .map(|k| (start + k) % n as u32)
        .find(|&i| ok(i))
}
