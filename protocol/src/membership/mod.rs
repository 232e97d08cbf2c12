//! Membership: who is in the cluster and who is alive, agreed without a
//! coordinator.
//!
//! [`Membership`] wraps the sans-IO SWIM implementation of the `foca` crate
//! (direct and indirect probes, suspicion refuted by incarnation, piggybacked
//! dissemination with a bounded retransmission budget, graceful leave, periodic
//! announce and gossip) and adds what Stemma needs on top: admission by cluster
//! secret ([`ClusterKey`]), member metadata (zone, capacity, addresses,
//! version), a distinction between members that *left* and members that *died*,
//! the time each member was last heard from, and counters.
//!
//! One thing foca lacks is a way for a member to learn the whole membership at
//! once: its join answer holds what fits in one packet (about 30 members), and
//! updates about members that joined earlier have already been gossiped away,
//! so in a large cluster a newcomer's view has gaps that only periodic
//! announces fill, over minutes. As memberlist does with its push-pull, every
//! member pulls from a random member now and then (every `sync_interval`,
//! scaled up with the cluster's size), and a joining member from its contact
//! at once: the puller sends a digest of its list, and the member asked
//! answers with the entries that differ, in packet-sized pieces, at most
//! 640 of them (32 packets); if more differ, the puller pulls again from
//! another member, so a joiner of a large cluster gets its list from several
//! members, none sending more than a few dozen packets at once.
//!
//! It does no I/O. Inputs: bytes received ([`Membership::handle_data`]), timers
//! that fired ([`Membership::handle_timer`]), and commands (join, leave), each
//! with the current time. Outputs ([`Output`]): bytes to send to a member,
//! timers to set, and events. Randomness comes from a seed.

mod config;
mod digest;
mod envelope;
mod identity;
mod notice;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use foca::{Foca, Notification, PostcardCodec, Runtime, State, Timer};
use rand10::SeedableRng;
use rand10::rngs::SmallRng;
use serde::{Deserialize, Serialize};

pub use config::MembershipConfig;
pub use envelope::{ClusterKey, EnvelopeError};
pub use identity::{MemberId, MemberIdentity, NodeId, NodeIdParseError};
pub use notice::NodeMeta;

use digest::Digest;
use notice::{Notice, NoticeHandler, Notices};

/// What a sealed message carries.
const KIND_SWIM: u8 = 0;
const KIND_META: u8 = 1;
const KIND_LEFT: u8 = 2;
// 3 was a request for the whole list, which digests replaced.
const KIND_MEMBERS: u8 = 4;
const KIND_META_REQUEST: u8 = 5;
const KIND_SYNC_DIGEST: u8 = 6;
const KIND_SYNC_END: u8 = 7;

/// How long to wait before asking a member for its metadata again.
const META_RETRY: Duration = Duration::from_secs(2);

/// Members per `KIND_MEMBERS` message: 20 entries of at most ~65 bytes (an
/// IPv6 address included) stay under a 1,400-byte packet with the envelope.
const MEMBERS_PER_MESSAGE: usize = 20;

/// Members one answer to a pull carries at most (32 packets), in whole
/// digest buckets; the rest comes from the next member pulled. A whole list
/// at once was N/20 packets (500 at 10,000 members) from the contact of every
/// joiner.
const ANSWER_MEMBERS: usize = 32 * MEMBERS_PER_MESSAGE;

/// Pulls one after the other at most, while answers say more differs.
const MAX_PULL_CHAIN: u32 = 64;

/// Times an unanswered pull is made again (to another member) before the
/// next periodic one.
const PULL_RETRIES: u32 = 2;

/// A member's state as this node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    /// Answering probes.
    Alive,
    /// Failed a probe; dead unless it refutes in time.
    Suspect,
    /// Declared dead.
    Dead,
    /// Left gracefully.
    Left,
}

/// One member in this node's view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo<I = MemberId> {
    /// Node and generation.
    pub id: I,
    /// Alive, suspect, dead or left.
    pub state: MemberState,
    /// `generation × 65536 + SWIM incarnation`: grows on every refutation and
    /// every restart.
    pub incarnation: u64,
    /// When a message from it last arrived (driver time); `None` if never, and for
    /// this node itself.
    pub last_heard: Option<Duration>,
    /// What it said about itself, if known.
    pub meta: Option<NodeMeta>,
}

/// Something the driver should know or do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipEvent<I = MemberId> {
    /// A member became active.
    Up(I),
    /// A member was declared dead.
    Dead(I),
    /// A member left gracefully.
    Left(I),
    /// A member is suspected (a suspicion timer started here).
    Suspected(I),
    /// A suspected member proved alive before its timer ran out.
    Refuted(I),
    /// A member came back as a newer generation (a restart).
    Renamed {
        /// The generation replaced.
        from: I,
        /// The new one.
        to: I,
    },
    /// This node was declared dead by mistake and rejoined as a new generation:
    /// persist it so a restart uses a higher one still.
    Rejoined(I),
    /// This node is known by at least one active member.
    Active,
    /// No other member is active.
    Idle,
}

/// A timer to hand back to [`Membership::handle_timer`] when it fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipTimer<I = MemberId>(TimerKind<I>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum TimerKind<I> {
    Swim(Timer<I>),
    /// Time to pull a random member's list.
    Sync,
    /// The pull with this number is unanswered if it is still the current one.
    PullRetry(u64),
}

/// A pull waiting for its answer's end.
#[derive(Debug, Clone, Copy)]
struct Pull {
    /// Its number, to tell its retry timer from older ones.
    number: u64,
    /// The member asked.
    asked: NodeId,
    /// Pulls in this chain so far.
    chained: u32,
    /// Times it was made again without an answer.
    retries: u32,
}

/// An effect of an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<I = MemberId> {
    /// Send these bytes to `to` (any reliable or unreliable transport will do).
    Send {
        /// The destination.
        to: I,
        /// The sealed message.
        data: Vec<u8>,
    },
    /// Call [`Membership::handle_timer`] with `timer` after `after`.
    Timer {
        /// The timer.
        timer: MembershipTimer<I>,
        /// The delay.
        after: Duration,
    },
    /// Something happened.
    Event(MembershipEvent<I>),
}

/// Counters of membership traffic and verdicts, since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipStats {
    /// Messages sent.
    pub messages_sent: u64,
    /// Bytes sent (sealed).
    pub bytes_sent: u64,
    /// Messages received and accepted.
    pub messages_received: u64,
    /// Bytes received and accepted.
    pub bytes_received: u64,
    /// Messages dropped because they were not sealed with the cluster key.
    pub messages_rejected: u64,
    /// Probes that got no answer, direct or indirect.
    pub probes_failed: u64,
    /// Suspicions started here.
    pub suspicions_raised: u64,
    /// Suspicions that ended with the member alive.
    pub suspicions_refuted: u64,
}

/// Why an input was refused. State is unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MembershipError {
    /// Not sealed with our cluster key; counted and dropped.
    #[error(transparent)]
    Rejected(#[from] EnvelopeError),
    /// Sealed correctly but not a valid message.
    #[error("malformed membership message: {0}")]
    Malformed(String),
}

type Swim<I> = Foca<I, PostcardCodec, SmallRng, NoticeHandler>;

/// One node's membership state machine. `I` is the id SWIM keeps per member:
/// [`MemberId`] on nodes (see [`MemberIdentity`]).
pub struct Membership<I: MemberIdentity = MemberId> {
    swim: Swim<I>,
    io: Io<I>,
}

impl<I: MemberIdentity> std::fmt::Debug for Membership<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("me", self.swim.identity())
            .field("members", &self.swim.num_members())
            .finish_non_exhaustive()
    }
}

/// Everything but SWIM itself: what foca's effects go into, and what Stemma adds.
#[derive(Debug)]
struct Io<I> {
    me: NodeId,
    key: ClusterKey,
    config: MembershipConfig,
    notices: Arc<Mutex<Notices>>,
    own_meta: Option<NodeMeta>,
    last_heard: HashMap<NodeId, Duration>,
    suspected: HashMap<NodeId, I>,
    stats: MembershipStats,
    outputs: Vec<Output<I>>,
    /// State of the generator that picks whom to pull the member list from.
    pick: u64,
    /// When a piece of a member list last arrived.
    last_list: Option<Duration>,
    /// The pull in progress, if any.
    pull: Option<Pull>,
    /// Pulls started, to number them.
    pulls: u64,
    /// When we last asked each member without known metadata for it.
    meta_asked: HashMap<NodeId, Duration>,
}

impl<I: MemberIdentity> Runtime<I> for Io<I> {
    fn notify(&mut self, notification: Notification<'_, I>) {
        let event = match notification {
            Notification::MemberUp(id) => MembershipEvent::Up(*id),
            Notification::MemberDown(id) => {
                self.suspected.remove(&id.node());
                let left = self
                    .notices
                    .lock()
                    .expect("notices lock")
                    .has_left(&id.member_id());
                if left {
                    MembershipEvent::Left(*id)
                } else {
                    MembershipEvent::Dead(*id)
                }
            }
            Notification::Rename(from, to) => MembershipEvent::Renamed {
                from: *from,
                to: *to,
            },
            Notification::Rejoin(id) => MembershipEvent::Rejoined(*id),
            Notification::Active => MembershipEvent::Active,
            Notification::Idle => MembershipEvent::Idle,
            Notification::ProbeFailed(_, _) => {
                self.stats.probes_failed += 1;
                return;
            }
            _ => return,
        };
        self.outputs.push(Output::Event(event));
    }

    fn send_to(&mut self, to: I, data: &[u8]) {
        let mut framed = Vec::with_capacity(data.len() + 1);
        framed.push(KIND_SWIM);
        framed.extend_from_slice(data);
        self.send_raw(to, &framed);
    }

    fn submit_after(&mut self, event: Timer<I>, after: Duration) {
        if let Timer::ChangeSuspectToDown { member_id, .. } = &event {
            self.stats.suspicions_raised += 1;
            self.suspected.insert(member_id.node(), *member_id);
            self.outputs
                .push(Output::Event(MembershipEvent::Suspected(*member_id)));
        }
        self.outputs.push(Output::Timer {
            timer: MembershipTimer(TimerKind::Swim(event)),
            after,
        });
    }
}

impl<I: MemberIdentity> Io<I> {
    fn send_raw(&mut self, to: I, payload: &[u8]) {
        let mut data = Vec::new();
        self.key.seal(&self.me, payload, &mut data);
        self.stats.messages_sent += 1;
        self.stats.bytes_sent += data.len() as u64;
        self.outputs.push(Output::Send { to, data });
    }
}

impl<I: MemberIdentity> Membership<I> {
    /// A member `me` of the cluster whose secret gives `key`; `meta` is what it
    /// tells others about itself; `seed` drives every random choice.
    pub fn new(
        me: I,
        meta: Option<NodeMeta>,
        config: MembershipConfig,
        key: ClusterKey,
        seed: u64,
    ) -> Self {
        let notices = Arc::new(Mutex::new(Notices::default()));
        let swim = Foca::with_custom_broadcast(
            me,
            config.swim.clone(),
            SmallRng::seed_from_u64(seed),
            PostcardCodec,
            NoticeHandler(notices.clone()),
        );
        let mut membership = Self {
            swim,
            io: Io {
                me: me.node(),
                key,
                config,
                notices,
                own_meta: meta,
                last_heard: HashMap::new(),
                suspected: HashMap::new(),
                stats: MembershipStats::default(),
                outputs: Vec::new(),
                pick: seed ^ 0x5157_5F53_594E_4321,
                last_list: None,
                pull: None,
                pulls: 0,
                meta_asked: HashMap::new(),
            },
        };
        membership.schedule_sync();
        if membership.io.config.metadata
            && let Some(meta) = membership.io.own_meta.clone()
        {
            let _ = membership
                .swim
                .add_broadcast(&NoticeHandler::encode(&Notice::Meta(meta)));
        }
        membership
    }

    /// This member.
    pub fn me(&self) -> I {
        *self.swim.identity()
    }

    /// Counters since start.
    pub fn stats(&self) -> MembershipStats {
        self.io.stats
    }

    /// The settings.
    pub fn config(&self) -> &MembershipConfig {
        &self.io.config
    }

    /// Joins through a known node (its generation and address unknown: SWIM
    /// learns them from its answer; the caller knows how to reach it).
    pub fn join(&mut self, via: NodeId) {
        let target = I::contact(via);
        // Announcing to oneself is the only failure; it changes nothing.
        let _ = self.swim.announce(target, &mut self.io);
        self.start_pull(target, 0, 0);
        self.after_input();
    }

    /// Records `members` as alive without telling anyone, as a full member
    /// list from a peer arriving at `now` would. For a simulation that starts from a settled
    /// cluster; a node learns its members by joining.
    pub fn learn_members(&mut self, members: impl IntoIterator<Item = I>, now: Duration) {
        self.io.last_list = Some(now);
        let me = self.me();
        // Collected first, so that the member list is allocated once, to size.
        let updates: Vec<_> = members
            .into_iter()
            .filter(|id| id.node() != me.node())
            .map(|id| foca::Member::new(id, 0, State::Alive))
            .collect();
        // Only an update about ourselves can fail, and those are filtered out.
        let _ = self
            .swim
            .apply_many(updates.into_iter(), false, &mut self.io);
        self.after_input();
    }

    /// Handles a message received from the network at time `now`.
    pub fn handle_data(&mut self, sealed: &[u8], now: Duration) -> Result<(), MembershipError> {
        let (sender, payload) = match self.io.key.open(sealed) {
            Ok(opened) => opened,
            Err(e) => {
                self.io.stats.messages_rejected += 1;
                return Err(e.into());
            }
        };
        self.io.stats.messages_received += 1;
        self.io.stats.bytes_received += sealed.len() as u64;
        if self.io.config.last_heard {
            self.io.last_heard.insert(sender, now);
        }
        let Some((&kind, body)) = payload.split_first() else {
            return Err(MembershipError::Malformed("empty message".into()));
        };
        if kind != KIND_META && kind != KIND_META_REQUEST {
            self.ask_meta_if_missing(sender, now);
        }
        match kind {
            KIND_SWIM => {
                let result = self.swim.handle_data(body, &mut self.io);
                self.after_input();
                result.map_err(|e| MembershipError::Malformed(e.to_string()))
            }
            KIND_META => self.record_meta(sender, body),
            KIND_META_REQUEST => {
                self.record_meta(sender, body)?;
                if let Some(payload) = self.own_meta_payload(KIND_META) {
                    let to = self.member_id_of(sender);
                    self.io.send_raw(to, &payload);
                }
                Ok(())
            }
            KIND_LEFT => {
                let id: MemberId = postcard::from_bytes(body)
                    .map_err(|e| MembershipError::Malformed(e.to_string()))?;
                if id.node != sender {
                    return Err(MembershipError::Malformed(
                        "a leave for another node".into(),
                    ));
                }
                // Record it and pass it on with SWIM's own dissemination.
                let _ = self
                    .swim
                    .add_broadcast(&NoticeHandler::encode(&Notice::Left(id)));
                Ok(())
            }
            KIND_SYNC_DIGEST => {
                let theirs = Digest::decode(body).ok_or_else(|| {
                    MembershipError::Malformed(format!(
                        "member digest of {} bytes, expected {}",
                        body.len(),
                        digest::ENCODED_LEN
                    ))
                })?;
                self.answer_pull(sender, &theirs);
                Ok(())
            }
            KIND_SYNC_END => {
                let more = match body {
                    [0] => false,
                    [1] => true,
                    _ => {
                        return Err(MembershipError::Malformed(format!(
                            "end of a member list with {} bytes, expected 0 or 1",
                            body.len()
                        )));
                    }
                };
                self.pull_answered(sender, more);
                self.after_input();
                Ok(())
            }
            KIND_MEMBERS => {
                let list: Vec<(I, u16, u8)> = postcard::from_bytes(body)
                    .map_err(|e| MembershipError::Malformed(e.to_string()))?;
                self.io.last_list = Some(now);
                let mut updates = Vec::with_capacity(list.len());
                for (id, incarnation, state) in list {
                    let state = match state {
                        0 => State::Alive,
                        1 => State::Suspect,
                        2 => State::Down,
                        other => {
                            return Err(MembershipError::Malformed(format!(
                                "unknown member state {other}"
                            )));
                        }
                    };
                    updates.push(foca::Member::new(id, incarnation, state));
                }
                // The cluster knows these already: no need to gossip them again.
                let result = self
                    .swim
                    .apply_many(updates.into_iter(), false, &mut self.io);
                self.after_input();
                result.map_err(|e| MembershipError::Malformed(e.to_string()))
            }
            other => Err(MembershipError::Malformed(format!(
                "unknown message kind {other}"
            ))),
        }
    }

    /// Handles a timer that fired at time `now`.
    pub fn handle_timer(&mut self, timer: MembershipTimer<I>, now: Duration) {
        let timer = match timer.0 {
            TimerKind::Swim(timer) => timer,
            TimerKind::Sync => {
                // A list received within half the interval (at join, say)
                // makes this pull redundant.
                let recent = self
                    .io
                    .last_list
                    .zip(self.sync_interval())
                    .is_some_and(|(at, interval)| now.saturating_sub(at) < interval / 2);
                if !recent {
                    self.pull_members();
                }
                self.schedule_sync();
                self.after_input();
                return;
            }
            TimerKind::PullRetry(number) => {
                self.pull_unanswered(number);
                self.after_input();
                return;
            }
        };
        let suspicion = match &timer {
            Timer::ChangeSuspectToDown { member_id, .. } => Some(*member_id),
            _ => None,
        };
        let _ = self.swim.handle_timer(timer, &mut self.io);
        if let Some(id) = suspicion
            && self.io.suspected.get(&id.node()) == Some(&id)
        {
            // The timer ran out without a death: the member refuted.
            self.io.suspected.remove(&id.node());
            self.io.stats.suspicions_refuted += 1;
            self.io
                .outputs
                .push(Output::Event(MembershipEvent::Refuted(id)));
        }
        self.after_input();
    }

    /// Leaves the cluster: tells a few members now, and lets the notice spread so
    /// that everyone records `left` rather than `dead`.
    pub fn leave(&mut self) {
        let me = self.me().member_id();
        let _ = self
            .swim
            .add_broadcast(&NoticeHandler::encode(&Notice::Left(me)));
        // Tell every active member directly first: once SWIM marks us down, the
        // others ignore what we piggyback, so the notice must not depend on it.
        let mut payload = vec![KIND_LEFT];
        payload.extend_from_slice(&postcard::to_stdvec(&me).expect("an id serializes"));
        let active: Vec<I> = self.swim.iter_members().map(|m| *m.id()).collect();
        for id in active {
            self.io.send_raw(id, &payload);
        }
        let _ = self.swim.broadcast(&mut self.io);
        let _ = self.swim.leave_cluster(&mut self.io);
        self.after_input();
    }

    /// Takes the outputs produced so far. (The buffer goes with them, so that
    /// a burst — the Up events of a whole member list — does not keep its
    /// memory for the node's lifetime.)
    pub fn drain_outputs(&mut self) -> std::vec::IntoIter<Output<I>> {
        std::mem::take(&mut self.io.outputs).into_iter()
    }

    /// Every member this node knows, itself first.
    pub fn members(&self) -> Vec<MemberInfo<I>> {
        let notices = self.io.notices.lock().expect("notices lock");
        let me = self.me();
        let mut out = vec![MemberInfo {
            id: me,
            state: MemberState::Alive,
            // foca does not expose its own refutation count: the SWIM part of our
            // own incarnation is what the others report.
            incarnation: incarnation(me.generation(), 0),
            last_heard: None,
            meta: notices
                .meta
                .get(&me.node())
                .cloned()
                .or(self.io.own_meta.clone()),
        }];
        for member in self.swim.iter_membership_state() {
            let id = *member.id();
            let state = match member.state() {
                State::Alive => MemberState::Alive,
                State::Suspect => MemberState::Suspect,
                State::Down if notices.has_left(&id.member_id()) => MemberState::Left,
                State::Down => MemberState::Dead,
            };
            out.push(MemberInfo {
                id,
                state,
                incarnation: incarnation(id.generation(), member.incarnation()),
                last_heard: self.io.last_heard.get(&id.node()).copied(),
                meta: notices.meta.get(&id.node()).cloned(),
            });
        }
        out
    }

    /// How many other members are active (alive or suspect).
    pub fn active_members(&self) -> usize {
        self.swim.num_members()
    }

    /// Metadata a member published, if known.
    pub fn meta(&self, node: &NodeId) -> Option<NodeMeta> {
        self.io
            .notices
            .lock()
            .expect("notices lock")
            .meta
            .get(node)
            .cloned()
    }

    /// Stores a member's metadata (from `KIND_META` or `KIND_META_REQUEST`),
    /// unless we hold a later generation's.
    fn record_meta(&mut self, sender: NodeId, body: &[u8]) -> Result<(), MembershipError> {
        let meta: NodeMeta =
            postcard::from_bytes(body).map_err(|e| MembershipError::Malformed(e.to_string()))?;
        if meta.id.node != sender {
            return Err(MembershipError::Malformed(
                "metadata about another node".into(),
            ));
        }
        let mut notices = self.io.notices.lock().expect("notices lock");
        let newer = notices
            .meta
            .get(&sender)
            .is_none_or(|m| m.id.generation <= meta.id.generation);
        if newer {
            notices.meta.insert(sender, meta);
        }
        Ok(())
    }

    /// Our metadata as a message of `kind`, if we have metadata to tell.
    fn own_meta_payload(&self, kind: u8) -> Option<Vec<u8>> {
        let meta = NodeMeta {
            id: self.me().member_id(),
            ..self.io.own_meta.clone()?
        };
        let mut payload = vec![kind];
        payload.extend_from_slice(&postcard::to_stdvec(&meta).expect("metadata serializes"));
        Some(payload)
    }

    /// A member's metadata travels once, straight to each member that comes
    /// up; if that message is lost, the first message from the member that
    /// arrives without its metadata known asks for it again (at most every
    /// [`META_RETRY`]), carrying ours.
    fn ask_meta_if_missing(&mut self, sender: NodeId, now: Duration) {
        if !self.io.config.metadata || sender == self.io.me {
            return;
        }
        let known = self
            .io
            .notices
            .lock()
            .expect("notices lock")
            .meta
            .contains_key(&sender);
        if known {
            self.io.meta_asked.remove(&sender);
            return;
        }
        let recent = self
            .io
            .meta_asked
            .get(&sender)
            .is_some_and(|&at| now.saturating_sub(at) < META_RETRY);
        if recent {
            return;
        }
        let Some(payload) = self.own_meta_payload(KIND_META_REQUEST) else {
            return;
        };
        self.io.meta_asked.insert(sender, now);
        let to = self.member_id_of(sender);
        self.io.send_raw(to, &payload);
    }

    /// The member id we know for `node` (with its address), or a bare one.
    fn member_id_of(&self, node: NodeId) -> I {
        self.swim
            .iter_membership_state()
            .map(|m| *m.id())
            .find(|id| id.node() == node)
            .unwrap_or_else(|| I::contact(node))
    }

    /// Answers a pull from `to`, whose digest is `theirs`: the members we know
    /// of (any state) in the buckets that differ, in packet-sized pieces,
    /// then whether more differ than this answer holds. An answer holds at
    /// most [`ANSWER_MEMBERS`], in whole buckets from a random one on, so
    /// that members pulled one after the other send different buckets.
    ///
    /// The puller's own entry goes along only when we suspect it, in a
    /// differing bucket or not: SWIM tells a suspect of its suspicion by
    /// gossip alone, which it misses if it was cut off while the gossip ran,
    /// and a suspicion whose prober's timer is gone (voided by an identity
    /// renewal, or lost with a restart) is resolved by nobody else. The list
    /// lets the suspect refute it.
    fn answer_pull(&mut self, to: NodeId, theirs: &Digest) {
        let differs = self.digest_without(to).differing(theirs);
        self.io.pick = splitmix64(self.io.pick);
        let first = (self.io.pick % digest::BUCKETS as u64) as usize;
        // (rank of the bucket from the first one, entry)
        let mut list: Vec<(usize, (I, u16, u8))> = self
            .swim
            .iter_membership_state()
            .filter_map(|m| {
                let id = m.id();
                let bucket = Digest::bucket(&id.node());
                let wanted = if id.node() == to {
                    m.state() == State::Suspect
                } else {
                    differs[bucket]
                };
                // The puller's own entry first: it must not be cut.
                let rank = match id.node() == to {
                    true => 0,
                    false => 1 + (bucket + digest::BUCKETS - first) % digest::BUCKETS,
                };
                wanted.then(|| (rank, (*id, m.incarnation(), state_code(m.state()))))
            })
            .collect();
        let more = list.len() > ANSWER_MEMBERS;
        if more {
            list.sort_unstable_by_key(|(rank, _)| *rank);
            // Whole buckets only: cut before the bucket the limit falls in
            // (unless it is the first).
            let last = list[ANSWER_MEMBERS].0;
            let keep = list.partition_point(|(rank, _)| *rank < last).max(1);
            list.truncate(keep);
        }
        let dest = self.member_id_of(to);
        for piece in list.chunks(MEMBERS_PER_MESSAGE) {
            let entries: Vec<(I, u16, u8)> = piece.iter().map(|(_, e)| *e).collect();
            let mut payload = vec![KIND_MEMBERS];
            payload.extend(postcard::to_stdvec(&entries).expect("members serialize"));
            self.io.send_raw(dest, &payload);
        }
        self.io.send_raw(dest, &[KIND_SYNC_END, u8::from(more)]);
    }

    /// The digest of our list without `node`'s entry. A puller leaves out
    /// the member it asks and the member asked leaves out the puller, so that
    /// two members that agree on everyone else have equal digests.
    fn digest_without(&self, node: NodeId) -> Digest {
        let mut digest = Digest::new();
        for m in self.swim.iter_membership_state() {
            let id = m.id();
            if id.node() != node {
                digest.add(
                    &id.node(),
                    id.generation(),
                    m.incarnation(),
                    state_code(m.state()),
                );
            }
        }
        digest
    }

    /// Starts a pull from a random active member (the periodic one).
    fn pull_members(&mut self) {
        if let Some(id) = self.random_member() {
            self.start_pull(id, 0, 0);
        }
    }

    /// A random active member, if there is one.
    fn random_member(&mut self) -> Option<I> {
        let n = self.swim.num_members();
        if n == 0 {
            return None;
        }
        self.io.pick = splitmix64(self.io.pick);
        let k = (self.io.pick % n as u64) as usize;
        self.swim.iter_members().nth(k).map(|m| *m.id())
    }

    /// Asks `from` for the entries of its list that differ from ours, by
    /// sending our digest; `chained` pulls came before it in this chain, and
    /// it is made again for the `retries`th time. If the answer's end has not
    /// come within a probe period, it is made again
    /// ([`Self::pull_unanswered`]).
    fn start_pull(&mut self, from: I, chained: u32, retries: u32) {
        self.io.pulls += 1;
        let number = self.io.pulls;
        self.io.pull = Some(Pull {
            number,
            asked: from.node(),
            chained,
            retries,
        });
        let mut payload = vec![KIND_SYNC_DIGEST];
        payload.extend(self.digest_without(from.node()).encode());
        self.io.send_raw(from, &payload);
        self.io.outputs.push(Output::Timer {
            timer: MembershipTimer(TimerKind::PullRetry(number)),
            after: self.io.config.swim.probe_period,
        });
    }

    /// The end of an answer from `sender`: if more of its list differs from
    /// ours than it sent, pulls from another member. An end nobody asked for
    /// is ignored.
    fn pull_answered(&mut self, sender: NodeId, more: bool) {
        let Some(pull) = self.io.pull.filter(|p| p.asked == sender) else {
            return;
        };
        self.io.pull = None;
        if more
            && pull.chained + 1 < MAX_PULL_CHAIN
            && let Some(next) = self.random_member()
        {
            self.start_pull(next, pull.chained + 1, 0);
        }
    }

    /// Pull number `number` got no end of answer in time: if it is still the
    /// current one, asks another member, up to [`PULL_RETRIES`] times.
    fn pull_unanswered(&mut self, number: u64) {
        let Some(pull) = self.io.pull.filter(|p| p.number == number) else {
            return;
        };
        self.io.pull = None;
        if pull.retries < PULL_RETRIES
            && let Some(next) = self.random_member()
        {
            self.start_pull(next, pull.chained, pull.retries + 1);
        }
    }

    /// Arms the next pull: `sync_interval` up to 32 members, then one more
    /// interval per doubling (memberlist's push-pull scale), so the bytes each
    /// member spends on it stay flat as the cluster grows.
    /// The wait until the next pull is drawn between half and one and a half
    /// times that, so that members started together do not pull together.
    fn schedule_sync(&mut self) {
        let Some(interval) = self.sync_interval() else {
            return;
        };
        self.io.pick = splitmix64(self.io.pick);
        let factor = 0.5 + (self.io.pick >> 11) as f64 / (1u64 << 53) as f64;
        self.io.outputs.push(Output::Timer {
            timer: MembershipTimer(TimerKind::Sync),
            after: interval.mul_f64(factor),
        });
    }

    /// The pull interval at the current size.
    fn sync_interval(&self) -> Option<Duration> {
        let base = self.io.config.sync_interval?;
        let n = self.swim.num_members() + 1;
        let scale = if n <= 32 {
            1
        } else {
            (n as f64).log2().ceil() as u32 - 4
        };
        Some(base * scale)
    }

    /// Follow-ups of an input: send our metadata straight to members that just
    /// came up, so that late joiners learn it without a cluster-wide broadcast.
    fn after_input(&mut self) {
        if !self.io.config.metadata {
            return;
        }
        let Some(payload) = self.own_meta_payload(KIND_META) else {
            return;
        };
        let ups: Vec<I> = self
            .io
            .outputs
            .iter()
            .filter_map(|o| match o {
                Output::Event(MembershipEvent::Up(id)) => Some(*id),
                Output::Event(MembershipEvent::Renamed { to, .. }) => Some(*to),
                _ => None,
            })
            .collect();
        if ups.is_empty() {
            return;
        }
        for id in ups {
            self.io.send_raw(id, &payload);
        }
    }
}

/// A member state as the member lists and digests carry it.
fn state_code(state: State) -> u8 {
    match state {
        State::Alive => 0,
        State::Suspect => 1,
        State::Down => 2,
    }
}

/// SplitMix64: enough to pick a member at random, and to hash for digests.
fn splitmix64(state: u64) -> u64 {
    let mut z = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn incarnation(generation: u32, swim: u16) -> u64 {
    (u64::from(generation) << 16) | u64::from(swim)
}

#[cfg(test)]
mod tests;
