//! Lineage in the simulated world: every node keeps the lineage graph as the
//! same `LineageDoc` the node keeps, edits it, and replicates it with the same
//! Automerge sync (`PeerSync`, turn by turn over a reliable stream): a node
//! whose graph changed pushes to a few random live peers, and every node runs
//! an anti-entropy session with one random peer every `sync_interval_s`.
//!
//! What is measured: the time from an edit to the moment every node that was
//! live then (and still is) has it, and the sync traffic.

use std::collections::BTreeMap;

use stemma_protocol::lineage::{Head, LineageDoc, NewEntity, Op, PeerSync};

use super::{Event, Life, World, micros, seconds};
use crate::metrics::{Distribution, LineageMetrics};
use crate::network::{Drop, Micros};
use crate::rng::{Rng, derive};
use crate::scenario::LineageWorkload;

/// Namespace of the simulated graph.
const NAMESPACE: &str = "default";
/// A session gives up after this many turns, as the node's does.
const MAX_TURNS: u32 = 64;
/// The stream's retransmission delay after a lost packet.
const RETRANSMIT: Micros = 200_000;

/// One sync session between two nodes.
#[derive(Debug)]
struct Session {
    /// (node, its state about the other side) for the opener and the answerer.
    sides: [(u32, PeerSync); 2],
    turns: u32,
}

/// An edit not yet on every node that was live when it was made.
#[derive(Debug)]
struct Pending {
    head: Head,
    at: Micros,
    waiting: Vec<bool>,
    left: u32,
}

/// The lineage part of a world.
#[derive(Debug)]
pub(super) struct LineagePart {
    workload: LineageWorkload,
    docs: Vec<Option<LineageDoc>>,
    sessions: BTreeMap<u64, Session>,
    next_session: u64,
    pending: Vec<Pending>,
    delays: Vec<f64>,
    edits: u64,
    messages: u64,
    bytes: u64,
    rng: Rng,
}

/// Lineage happenings.
#[derive(Debug)]
pub(super) enum LineageEvent {
    /// Time for the next edit somewhere.
    Edit,
    /// A node's anti-entropy round.
    Tick { node: u32, process: u32 },
    /// A sync frame arrives (`None`: the sender had nothing to say).
    Frame {
        session: u64,
        to_side: usize,
        frame: Option<Vec<u8>>,
    },
}

impl LineagePart {
    pub(super) fn new(workload: LineageWorkload, seed: u64) -> Self {
        Self {
            workload,
            docs: Vec::new(),
            sessions: BTreeMap::new(),
            next_session: 0,
            pending: Vec::new(),
            delays: Vec::new(),
            edits: 0,
            messages: 0,
            bytes: 0,
            rng: Rng::new(derive(seed, "lineage", 0)),
        }
    }

    pub(super) fn pending(&self) -> u64 {
        self.pending.len() as u64
    }
}

impl World {
    fn lineage(&mut self) -> &mut LineagePart {
        self.lineage
            .as_mut()
            .expect("only called when lineage is simulated")
    }

    /// Schedules the first edit; called once at the start.
    pub(super) fn lineage_schedule(&mut self) {
        let Some(part) = &self.lineage else { return };
        let w = &part.workload;
        if w.edits_per_s <= 0.0 {
            return;
        }
        let start = w
            .start
            .unwrap_or(self.scenario.membership.join_window + 10.0);
        self.queue
            .push(micros(start), Event::Lineage(LineageEvent::Edit));
    }

    /// A node (re)starts: it keeps its graph unless it lost its state, and
    /// writes as a new actor (as the node persists and bumps a session number).
    pub(super) fn lineage_start(&mut self, slot: u32, fresh: bool) {
        let Some(part) = self.lineage.as_mut() else {
            return;
        };
        let i = slot as usize;
        if part.docs.len() <= i {
            part.docs.resize_with(i + 1, || None);
        }
        let node = &self.nodes[i];
        let actor = format!("{slot}-{}-{}", node.identity, node.process);
        let doc = match part.docs[i].take() {
            Some(doc) if !fresh => doc.fork(actor.as_bytes()),
            _ => LineageDoc::new(NAMESPACE, actor.as_bytes()),
        }
        .expect("a simulated actor and namespace are valid");
        part.docs[i] = Some(doc);
        let first = self.now + micros(part.rng.unit() * part.workload.sync_interval_s);
        let process = node.process;
        self.queue.push(
            first,
            Event::Lineage(LineageEvent::Tick {
                node: slot,
                process,
            }),
        );
    }

    /// A node departed: nobody waits for it any more.
    pub(super) fn lineage_depart(&mut self, slot: u32) {
        let Some(part) = self.lineage.as_mut() else {
            return;
        };
        part.sessions
            .retain(|_, s| s.sides[0].0 != slot && s.sides[1].0 != slot);
        let now = self.now;
        let mut done = Vec::new();
        for (k, p) in part.pending.iter_mut().enumerate() {
            if p.waiting.get(slot as usize).copied().unwrap_or(false) {
                p.waiting[slot as usize] = false;
                p.left -= 1;
                if p.left == 0 {
                    done.push(k);
                }
            }
        }
        for k in done.into_iter().rev() {
            let p = part.pending.remove(k);
            part.delays.push(seconds(now - p.at));
        }
    }

    pub(super) fn lineage_event(&mut self, event: LineageEvent) {
        match event {
            LineageEvent::Edit => self.lineage_edit(),
            LineageEvent::Tick { node, process } => {
                let n = &self.nodes[node as usize];
                if n.process != process || !n.life.is_live() {
                    return;
                }
                let part = self.lineage.as_mut().expect("lineage");
                if n.life == Life::Up
                    && let Some(peer) = super::pick_live(&self.nodes, &mut part.rng, Some(node))
                {
                    self.open_session(node, peer);
                }
                let every = micros(self.lineage().workload.sync_interval_s);
                self.queue.push(
                    self.now + every,
                    Event::Lineage(LineageEvent::Tick { node, process }),
                );
            }
            LineageEvent::Frame {
                session,
                to_side,
                frame,
            } => self.on_frame(session, to_side, frame),
        }
    }

    fn lineage_edit(&mut self) {
        let w = self.lineage().workload.clone();
        let stop = micros(w.stop.unwrap_or(self.scenario.duration - 30.0));
        if self.now > stop {
            return;
        }
        let editors = w.editors.unwrap_or(u32::MAX).min(self.nodes.len() as u32);
        let running: Vec<u32> = (0..editors)
            .filter(|&e| self.nodes[e as usize].life == Life::Up)
            .collect();
        let part = self.lineage.as_mut().expect("lineage");
        let editor =
            (!running.is_empty()).then(|| running[part.rng.below(running.len() as u64) as usize]);
        if let Some(editor) = editor {
            let part = self.lineage.as_mut().expect("lineage");
            let n = part.edits;
            part.edits += 1;
            let entity = NewEntity::parse(&format!("table:sim.t{n}")).expect("a valid entity");
            let now_ms = ((self.now + self.nodes[editor as usize].skew) / 1000) as i64;
            let doc = part.docs[editor as usize]
                .as_mut()
                .expect("a live node has a graph");
            let committed = doc
                .apply(now_ms, &[Op::Upsert(entity)])
                .expect("an upsert applies");
            if let Some(head) = committed.head {
                let mut waiting = vec![false; self.nodes.len()];
                let mut left = 0;
                for (i, node) in self.nodes.iter().enumerate() {
                    if i as u32 != editor && node.life.is_live() {
                        waiting[i] = true;
                        left += 1;
                    }
                }
                if left > 0 {
                    part.pending.push(Pending {
                        head,
                        at: self.now,
                        waiting,
                        left,
                    });
                }
            }
            self.push_changes(editor);
        }
        let gap = self.lineage().rng.exponential(1.0 / w.edits_per_s);
        self.queue
            .push(self.now + micros(gap), Event::Lineage(LineageEvent::Edit));
    }

    /// `node`'s graph changed: push to `push_fanout` random live peers.
    fn push_changes(&mut self, node: u32) {
        let fanout = self.lineage().workload.push_fanout;
        let mut chosen: Vec<u32> = Vec::new();
        for _ in 0..fanout {
            let part = self.lineage.as_mut().expect("lineage");
            if let Some(peer) = super::pick_live(&self.nodes, &mut part.rng, Some(node))
                && !chosen.contains(&peer)
            {
                chosen.push(peer);
            }
        }
        for peer in chosen {
            self.open_session(node, peer);
        }
    }

    fn open_session(&mut self, from: u32, to: u32) {
        let part = self.lineage();
        let id = part.next_session;
        part.next_session += 1;
        let mut mine = PeerSync::new();
        let first = part.docs[from as usize]
            .as_ref()
            .and_then(|d| d.generate_sync_message(&mut mine));
        part.sessions.insert(
            id,
            Session {
                sides: [(from, mine), (to, PeerSync::new())],
                turns: 1,
            },
        );
        self.send_frame(id, 0, first);
    }

    /// Sends the frame of side `from_side` to the other side over a reliable
    /// stream: a lost packet costs a retransmission delay, a partition ends the
    /// session.
    fn send_frame(&mut self, session: u64, from_side: usize, frame: Option<Vec<u8>>) {
        let Some(s) = self.lineage().sessions.get(&session) else {
            return;
        };
        let (from, to) = (s.sides[from_side].0, s.sides[1 - from_side].0);
        let bytes = 4 + frame.as_ref().map_or(0, Vec::len);
        let part = self.lineage();
        part.messages += 1;
        part.bytes += bytes as u64;
        let ends = (
            (from, self.nodes[from as usize].zone),
            (to, self.nodes[to as usize].zone),
        );
        let mut arrivals = std::mem::take(&mut self.arrivals);
        let mut at = self.now;
        let mut delivered = None;
        for _ in 0..10 {
            match self.net.send(at, ends.0, ends.1, bytes, &mut arrivals) {
                Ok(()) => {
                    delivered = arrivals.first().copied();
                    break;
                }
                Err(Drop::Lost) => at += RETRANSMIT,
                Err(Drop::Partitioned) => break,
            }
        }
        self.arrivals = arrivals;
        match delivered {
            Some(arrival) => self.queue.push(
                arrival,
                Event::Lineage(LineageEvent::Frame {
                    session,
                    to_side: 1 - from_side,
                    frame,
                }),
            ),
            None => {
                self.lineage().sessions.remove(&session);
            }
        }
    }

    fn on_frame(&mut self, session: u64, side: usize, frame: Option<Vec<u8>>) {
        let Some(s) = self.lineage().sessions.get(&session) else {
            return;
        };
        let node = s.sides[side].0;
        match self.nodes[node as usize].life {
            Life::Up => {}
            Life::Paused => {
                self.nodes[node as usize]
                    .inbox
                    .push(Event::Lineage(LineageEvent::Frame {
                        session,
                        to_side: side,
                        frame,
                    }));
                return;
            }
            _ => {
                self.lineage().sessions.remove(&session);
                return;
            }
        }
        let part = self.lineage.as_mut().expect("lineage");
        let s = part.sessions.get_mut(&session).expect("checked");
        let doc = part.docs[node as usize]
            .as_mut()
            .expect("a running node has a graph");
        let mut changed = false;
        let was_quiet = frame.is_none();
        if let Some(frame) = &frame {
            match doc.receive_sync_message(&mut s.sides[side].1, frame) {
                Ok(c) => changed = c,
                Err(_) => {
                    part.sessions.remove(&session);
                    return;
                }
            }
        }
        let reply = doc.generate_sync_message(&mut s.sides[side].1);
        s.turns += 1;
        // Over after a turn in which neither side said anything.
        let end = (was_quiet && reply.is_none()) || s.turns >= MAX_TURNS;
        if changed {
            self.lineage_arrived(node);
        }
        if end {
            self.lineage().sessions.remove(&session);
        } else {
            self.send_frame(session, side, reply);
        }
        if changed {
            self.push_changes(node);
        }
    }

    /// `node`'s graph changed by sync: which pending edits does it now have?
    fn lineage_arrived(&mut self, node: u32) {
        let now = self.now;
        let part = self.lineage.as_mut().expect("lineage");
        let doc = part.docs[node as usize]
            .as_ref()
            .expect("a running node has a graph");
        let i = node as usize;
        let mut k = 0;
        while k < part.pending.len() {
            let p = &mut part.pending[k];
            if p.waiting.get(i).copied().unwrap_or(false) && doc.has_change(&p.head) {
                p.waiting[i] = false;
                p.left -= 1;
                if p.left == 0 {
                    let p = part.pending.remove(k);
                    part.delays.push(seconds(now - p.at));
                    continue;
                }
            }
            k += 1;
        }
    }

    /// The lineage figures at the end of a run.
    pub(super) fn lineage_metrics(
        &mut self,
        live_node_seconds: f64,
    ) -> Option<(LineageMetrics, Vec<f64>)> {
        let part = self.lineage.as_mut()?;
        let mut heads: Option<Vec<Head>> = None;
        let mut converged = true;
        for (i, node) in self.nodes.iter().enumerate() {
            if !node.life.is_live() {
                continue;
            }
            let Some(doc) = part.docs.get(i).and_then(Option::as_ref) else {
                continue;
            };
            let mut h = doc.heads();
            h.sort();
            match &heads {
                None => heads = Some(h),
                Some(first) => converged &= *first == h,
            }
        }
        let metrics = LineageMetrics {
            edits: part.edits,
            propagation_all_s: Distribution::of(&part.delays),
            not_everywhere_at_end: part.pending.len() as u64,
            sync_messages: part.messages,
            sync_bytes: part.bytes,
            sync_bytes_per_node_s: if live_node_seconds > 0.0 {
                crate::metrics::round6(part.bytes as f64 / live_node_seconds)
            } else {
                0.0
            },
            converged_at_end: converged,
        };
        Some((metrics, std::mem::take(&mut part.delays)))
    }
}
