//! Scenario files: the cluster, its network, what happens to it and when.
//!
//! A scenario is TOML (see `simulations/README.md` for every field, and
//! `simulations/scenarios/` for examples). Any field can be overridden from the
//! command line by its dotted path (`network.loss=0.05`); `nodes`, `seed` and
//! `duration` have flags of their own.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::dist::Dist;

/// Why a scenario cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown or mistyped fields.
    #[error("scenario {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong and where.
        message: String,
    },
    /// A `--param`/override is not `path=value`.
    #[error("bad override {0:?}: expected PATH=VALUE, e.g. network.loss=0.05")]
    Override(String),
    /// The values are out of range.
    #[error("scenario {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// Which field and why.
        message: String,
    },
}

/// A whole scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A short name, used in output file names and plots.
    #[serde(default = "default_name")]
    pub name: String,
    /// What it shows.
    #[serde(default)]
    pub description: String,
    /// The seed every random choice derives from.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Nodes started at the beginning.
    pub nodes: u32,
    /// Zones (sites); node `i` is in zone `i mod zones`.
    #[serde(default = "one")]
    pub zones: u32,
    /// Virtual seconds to simulate.
    pub duration: f64,
    /// Virtual seconds between two rows of `timeseries.csv`.
    #[serde(default = "default_sample")]
    pub sample_interval: f64,
    /// SWIM settings.
    #[serde(default)]
    pub membership: MembershipSettings,
    /// The simulated network.
    #[serde(default)]
    pub network: NetworkSettings,
    /// Random crashes and restarts all along.
    #[serde(default)]
    pub churn: Option<Churn>,
    /// Random stalls of some nodes all along.
    #[serde(default)]
    pub stalls: Option<Stalls>,
    /// Lineage edits and sync between the nodes.
    #[serde(default)]
    pub lineage: Option<LineageWorkload>,
    /// Data placed on the ring and repaired when nodes go.
    #[serde(default)]
    pub replication: Option<ReplicationSettings>,
    /// Things that happen at given times.
    #[serde(default, rename = "event")]
    pub events: Vec<TimedEvent>,
}

fn default_name() -> String {
    "scenario".into()
}
const fn default_seed() -> u64 {
    1
}
const fn one() -> u32 {
    1
}
const fn default_sample() -> f64 {
    1.0
}

/// Which SWIM preset to start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// `MembershipConfig::lan`: what `stemma node run` uses.
    #[default]
    Lan,
    /// `MembershipConfig::wan`.
    Wan,
}

/// How the initial nodes come together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartMode {
    /// They join one by one over the join window.
    #[default]
    Join,
    /// They start at once, each knowing all the others.
    Settled,
}

/// SWIM settings: a preset, then overrides of its fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembershipSettings {
    /// The preset.
    #[serde(default)]
    pub preset: Preset,
    /// The cluster size the preset is tuned for (suspicion timeout and
    /// retransmissions grow with its logarithm); default: `nodes`.
    #[serde(default)]
    pub expected_members: Option<u32>,
    /// The first nodes start spread uniformly over this many seconds (node 0
    /// first).
    #[serde(default = "default_join_window")]
    pub join_window: f64,
    /// `"join"`: the initial nodes join one by one over `join_window`, as a
    /// new cluster does. `"settled"`: they all start at 0 s already knowing
    /// each other, as after a join long ago (their timers at random phases),
    /// which skips the join storm when only the steady state matters.
    #[serde(default)]
    pub start: StartMode,
    /// Nodes join through one of the first `seeds` nodes (as `--join` lists a
    /// few well-known nodes), or through any running node when none of those
    /// runs.
    #[serde(default = "one")]
    pub seeds: u32,
    /// Whether members exchange metadata (zone, capacity…), as real nodes do.
    /// Off by default: at 10,000 nodes the metadata alone takes gigabytes.
    #[serde(default)]
    pub metadata: bool,
    /// Override: ms between two probes of one member.
    #[serde(default)]
    pub probe_period_ms: Option<f64>,
    /// Override: ms to wait for a direct probe's answer.
    #[serde(default)]
    pub probe_rtt_ms: Option<f64>,
    /// Override: ms a member stays suspect before it is declared dead.
    #[serde(default)]
    pub suspect_to_down_after_ms: Option<f64>,
    /// Override: members asked to probe indirectly.
    #[serde(default)]
    pub num_indirect_probes: Option<usize>,
    /// Override: how many times each update is piggybacked.
    #[serde(default)]
    pub max_transmissions: Option<u8>,
    /// Override: ms between two periodic announces (a member asks others for
    /// a sample of their member lists; it is how gaps in a view are filled).
    #[serde(default)]
    pub announce_every_ms: Option<f64>,
    /// Override: members asked at each periodic announce.
    #[serde(default)]
    pub announce_to: Option<usize>,
    /// Override: ms between two periodic gossips (sent only while updates
    /// wait to be disseminated).
    #[serde(default)]
    pub gossip_every_ms: Option<f64>,
    /// Override: members each periodic gossip goes to.
    #[serde(default)]
    pub gossip_to: Option<usize>,
}

impl Default for MembershipSettings {
    fn default() -> Self {
        Self {
            preset: Preset::Lan,
            expected_members: None,
            join_window: default_join_window(),
            start: StartMode::Join,
            seeds: 1,
            metadata: false,
            probe_period_ms: None,
            probe_rtt_ms: None,
            suspect_to_down_after_ms: None,
            num_indirect_probes: None,
            max_transmissions: None,
            announce_every_ms: None,
            announce_to: None,
            gossip_every_ms: None,
            gossip_to: None,
        }
    }
}

const fn default_join_window() -> f64 {
    10.0
}

/// The network between the nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSettings {
    /// One-way latency of a message, in milliseconds, unless a zone pair says
    /// otherwise.
    #[serde(default = "default_latency")]
    pub latency_ms: Dist,
    /// Latency between given zones.
    #[serde(default)]
    pub zone_latency: Vec<ZoneLatency>,
    /// Probability that a message is lost.
    #[serde(default)]
    pub loss: f64,
    /// Probability that a message is delivered twice.
    #[serde(default)]
    pub duplicate: f64,
    /// Probability that a message is held back by `reorder_delay_ms` more,
    /// so that later messages overtake it.
    #[serde(default)]
    pub reorder: f64,
    /// The extra delay of a reordered message, in milliseconds.
    #[serde(default = "default_reorder_delay")]
    pub reorder_delay_ms: Dist,
    /// Each node's outgoing bandwidth in bytes per second (messages queue
    /// behind each other); none means unlimited.
    #[serde(default)]
    pub bandwidth_bytes_per_s: Option<f64>,
}

impl Default for NetworkSettings {
    fn default() -> Self {
        Self {
            latency_ms: default_latency(),
            zone_latency: Vec::new(),
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay_ms: default_reorder_delay(),
            bandwidth_bytes_per_s: None,
        }
    }
}

fn default_latency() -> Dist {
    Dist::Lognormal {
        median: 1.0,
        sigma: 0.5,
    }
}

fn default_reorder_delay() -> Dist {
    Dist::Uniform {
        min: 0.0,
        max: 20.0,
    }
}

/// Latency between two zones.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneLatency {
    /// One zone.
    pub from: u32,
    /// The other.
    pub to: u32,
    /// One-way latency in milliseconds.
    pub latency_ms: Dist,
    /// Whether it applies from `to` to `from` too (default: yes).
    #[serde(default = "yes")]
    pub symmetric: bool,
}

const fn yes() -> bool {
    true
}

/// Random crashes (a Poisson process over the whole cluster) and restarts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Churn {
    /// Departures per virtual second, cluster-wide.
    pub rate: f64,
    /// Fraction of departures that are graceful leaves rather than crashes.
    #[serde(default)]
    pub leave_fraction: f64,
    /// Seconds until a departed node comes back; none: it never does.
    #[serde(default)]
    pub restart_after_s: Option<Dist>,
    /// Fraction of restarts that lose their stored state (a new identity).
    #[serde(default)]
    pub fresh_fraction: f64,
    /// When churn starts (default: after the join window and 30 s more).
    #[serde(default)]
    pub start: Option<f64>,
    /// When it stops (default: the end).
    #[serde(default)]
    pub stop: Option<f64>,
}

/// Some nodes stall now and then: the process stops (GC pause, swap, a
/// stopped VM) and comes back, handling what queued up meanwhile.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stalls {
    /// Fraction of the nodes that stall (chosen at the start).
    pub fraction: f64,
    /// Seconds between two stalls of one node.
    pub every_s: Dist,
    /// Seconds a stall lasts.
    pub duration_s: Dist,
}

/// Lineage edits and their replication.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineageWorkload {
    /// Edits per virtual second, cluster-wide (a Poisson process).
    pub edits_per_s: f64,
    /// How many nodes edit (the first ones); default: all.
    #[serde(default)]
    pub editors: Option<u32>,
    /// Seconds between two anti-entropy rounds of a node (one random peer each).
    #[serde(default = "default_sync_interval")]
    pub sync_interval_s: f64,
    /// Peers a node pushes a change to at once.
    #[serde(default = "default_fanout")]
    pub push_fanout: u32,
    /// When edits start (default: after the join window and 10 s more).
    #[serde(default)]
    pub start: Option<f64>,
    /// When edits stop (default: 30 s before the end, so that the last ones can
    /// be seen everywhere).
    #[serde(default)]
    pub stop: Option<f64>,
}

const fn default_sync_interval() -> f64 {
    5.0
}
const fn default_fanout() -> u32 {
    3
}

/// Replicated data: its placement and repair, planned by the protocol.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicationSettings {
    /// Partitions (a power of two).
    #[serde(default = "default_partitions")]
    pub partitions: u32,
    /// Copies of each partition.
    #[serde(default = "default_rf")]
    pub rf: u8,
    /// Bytes stored in the cluster (before replication), spread evenly over
    /// the partitions; not materialised.
    #[serde(default = "default_data_bytes")]
    pub data_bytes: f64,
    /// Each node's repair bandwidth in bytes per second, sending and
    /// receiving (one copy at a time each way).
    #[serde(default = "default_repair_rate")]
    pub repair_bytes_per_s: f64,
}

const fn default_partitions() -> u32 {
    256
}
const fn default_rf() -> u8 {
    3
}
const fn default_data_bytes() -> f64 {
    1e12
}
const fn default_repair_rate() -> f64 {
    1e8
}

/// What a timed event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Kill nodes (they stop at once, saying nothing).
    Crash,
    /// Start crashed or departed nodes again (`fresh = true`: without their
    /// stored state, as a new identity).
    Restart,
    /// Nodes leave gracefully.
    Leave,
    /// `count` new nodes join, spread over `over` seconds.
    Join,
    /// Nodes stall for `duration_s`.
    Pause,
    /// Zones (`sides`) or halves of the nodes (`fraction`) stop hearing each
    /// other until `until`.
    Partition,
    /// Messages from `from_zones` to `to_zones` are dropped until `until` (one
    /// way only: an asymmetric link).
    Cut,
    /// Nodes' clocks are shifted by `offset_ms`.
    Skew,
}

/// Something that happens at a given time, to some nodes.
///
/// Nodes are chosen by exactly one of `count`, `fraction`, `zone` or `nodes`
/// (among those the action applies to: live nodes for a crash, departed ones
/// for a restart), at random from the scenario seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimedEvent {
    /// Virtual seconds from the start.
    pub at: f64,
    /// What happens.
    pub action: Action,
    /// How many nodes (crash, restart, leave, pause, skew), or how many new
    /// ones (join).
    #[serde(default)]
    pub count: Option<u32>,
    /// Which fraction of the eligible nodes.
    #[serde(default)]
    pub fraction: Option<f64>,
    /// Every eligible node of this zone.
    #[serde(default)]
    pub zone: Option<u32>,
    /// These nodes, by index.
    #[serde(default)]
    pub nodes: Option<Vec<u32>>,
    /// Restart: without stored state.
    #[serde(default)]
    pub fresh: bool,
    /// Crash: restart each node after this many seconds.
    #[serde(default)]
    pub restart_after_s: Option<Dist>,
    /// Pause: how long, in seconds.
    #[serde(default)]
    pub duration_s: Option<Dist>,
    /// Join: spread the joins over this many seconds.
    #[serde(default)]
    pub over: Option<f64>,
    /// Partition: the sides, as lists of zones.
    #[serde(default)]
    pub sides: Option<Vec<Vec<u32>>>,
    /// Cut: from these zones…
    #[serde(default)]
    pub from_zones: Option<Vec<u32>>,
    /// …to these.
    #[serde(default)]
    pub to_zones: Option<Vec<u32>>,
    /// Partition and cut: when the link comes back.
    #[serde(default)]
    pub until: Option<f64>,
    /// Skew: the clock offset, in milliseconds (may be drawn per node).
    #[serde(default)]
    pub offset_ms: Option<Dist>,
}

impl Scenario {
    /// Reads a scenario file and applies overrides (`path=value`, the value in
    /// TOML syntax; a bare word is taken as a string).
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, ScenarioError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, &shown, overrides)
    }

    /// Parses scenario text (`origin` names it in errors).
    pub fn parse(text: &str, origin: &str, overrides: &[String]) -> Result<Self, ScenarioError> {
        let parse_err = |message: String| ScenarioError::Parse {
            path: origin.into(),
            message,
        };
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| parse_err(e.to_string()))?;
        for o in overrides {
            apply_override(&mut table, o)?;
        }
        let scenario: Scenario = table
            .try_into()
            .map_err(|e: toml::de::Error| parse_err(e.to_string()))?;
        scenario.check().map_err(|message| ScenarioError::Invalid {
            path: origin.into(),
            message,
        })?;
        Ok(scenario)
    }

    /// Range checks, naming the field.
    fn check(&self) -> Result<(), String> {
        let prob = |name: &str, p: f64| {
            if (0.0..=1.0).contains(&p) {
                Ok(())
            } else {
                Err(format!("{name} = {p}: must be between 0 and 1"))
            }
        };
        let positive = |name: &str, x: f64| {
            if x.is_finite() && x > 0.0 {
                Ok(())
            } else {
                Err(format!("{name} = {x}: must be a positive number"))
            }
        };
        let dist = |name: &str, d: &Dist| d.check().map_err(|e| format!("{name}: {e}"));
        if self.nodes == 0 {
            return Err("nodes = 0: a cluster needs at least one node".into());
        }
        if self.zones == 0 {
            return Err("zones = 0: there is at least one zone".into());
        }
        positive("duration", self.duration)?;
        positive("sample_interval", self.sample_interval)?;
        if self.sample_interval < 1e-3 {
            return Err("sample_interval: at least 0.001 s".into());
        }
        let m = &self.membership;
        for (name, value) in [
            ("membership.probe_period_ms", m.probe_period_ms),
            ("membership.probe_rtt_ms", m.probe_rtt_ms),
            (
                "membership.suspect_to_down_after_ms",
                m.suspect_to_down_after_ms,
            ),
            ("membership.announce_every_ms", m.announce_every_ms),
            ("membership.gossip_every_ms", m.gossip_every_ms),
        ] {
            if let Some(x) = value {
                positive(name, x)?;
                if x < 1.0 {
                    return Err(format!("{name} = {x}: at least 1 ms"));
                }
            }
        }
        if self.membership.join_window < 0.0 {
            return Err("membership.join_window: must not be negative".into());
        }
        let n = &self.network;
        prob("network.loss", n.loss)?;
        prob("network.duplicate", n.duplicate)?;
        prob("network.reorder", n.reorder)?;
        dist("network.latency_ms", &n.latency_ms)?;
        dist("network.reorder_delay_ms", &n.reorder_delay_ms)?;
        if let Some(bw) = n.bandwidth_bytes_per_s {
            positive("network.bandwidth_bytes_per_s", bw)?;
        }
        for (i, z) in n.zone_latency.iter().enumerate() {
            if z.from >= self.zones || z.to >= self.zones {
                return Err(format!(
                    "network.zone_latency[{i}]: zones are numbered 0..{}",
                    self.zones
                ));
            }
            dist(
                &format!("network.zone_latency[{i}].latency_ms"),
                &z.latency_ms,
            )?;
        }
        if let Some(c) = &self.churn {
            if !(c.rate.is_finite() && c.rate >= 0.0) {
                return Err(format!("churn.rate = {}: must not be negative", c.rate));
            }
            prob("churn.leave_fraction", c.leave_fraction)?;
            prob("churn.fresh_fraction", c.fresh_fraction)?;
            if let Some(d) = &c.restart_after_s {
                dist("churn.restart_after_s", d)?;
            }
        }
        if let Some(s) = &self.stalls {
            prob("stalls.fraction", s.fraction)?;
            dist("stalls.every_s", &s.every_s)?;
            dist("stalls.duration_s", &s.duration_s)?;
            if s.every_s.mean() <= 0.0 {
                return Err("stalls.every_s: the mean gap must be positive".into());
            }
        }
        if let Some(l) = &self.lineage {
            if !(l.edits_per_s.is_finite() && l.edits_per_s >= 0.0) {
                return Err("lineage.edits_per_s: must not be negative".into());
            }
            positive("lineage.sync_interval_s", l.sync_interval_s)?;
            if l.sync_interval_s < 1e-3 {
                return Err("lineage.sync_interval_s: at least 0.001 s".into());
            }
            if l.push_fanout == 0 {
                return Err("lineage.push_fanout = 0: push to at least one peer".into());
            }
        }
        if let Some(r) = &self.replication {
            stemma_protocol::placement::PlacementConfig::new(r.partitions, r.rf)
                .map_err(|e| format!("replication: {e}"))?;
            positive("replication.data_bytes", r.data_bytes)?;
            positive("replication.repair_bytes_per_s", r.repair_bytes_per_s)?;
        }
        for (i, e) in self.events.iter().enumerate() {
            e.check(self.zones)
                .map_err(|m| format!("event[{i}] ({:?} at {}): {m}", e.action, e.at))?;
        }
        Ok(())
    }

    /// The SWIM settings every node uses.
    pub fn membership_config(&self) -> stemma_protocol::membership::MembershipConfig {
        use std::num::{NonZeroU8, NonZeroUsize};
        use std::time::Duration;
        let m = &self.membership;
        let expected = m.expected_members.unwrap_or(self.nodes);
        let mut config = match m.preset {
            Preset::Lan => stemma_protocol::membership::MembershipConfig::lan(expected),
            Preset::Wan => stemma_protocol::membership::MembershipConfig::wan(expected),
        };
        config.metadata = m.metadata;
        // Nothing here reads it, and at 10,000 nodes it would take gigabytes.
        config.last_heard = false;
        let ms = |x: f64| Duration::from_secs_f64(x / 1000.0);
        if let Some(x) = m.probe_period_ms {
            config.swim.probe_period = ms(x);
        }
        if let Some(x) = m.probe_rtt_ms {
            config.swim.probe_rtt = ms(x);
        }
        if let Some(x) = m.suspect_to_down_after_ms {
            config.swim.suspect_to_down_after = ms(x);
        }
        if let Some(x) = m.num_indirect_probes.and_then(NonZeroUsize::new) {
            config.swim.num_indirect_probes = x;
        }
        if let Some(x) = m.max_transmissions.and_then(NonZeroU8::new) {
            config.swim.max_transmissions = x;
        }
        if let Some(announce) = config.swim.periodic_announce.as_mut() {
            if let Some(x) = m.announce_every_ms {
                announce.frequency = ms(x);
            }
            if let Some(x) = m.announce_to.and_then(NonZeroUsize::new) {
                announce.num_members = x;
            }
        }
        if let Some(gossip) = config.swim.periodic_gossip.as_mut() {
            if let Some(x) = m.gossip_every_ms {
                gossip.frequency = ms(x);
            }
            if let Some(x) = m.gossip_to.and_then(NonZeroUsize::new) {
                gossip.num_members = x;
            }
        }
        config
    }
}

impl TimedEvent {
    fn check(&self, zones: u32) -> Result<(), String> {
        if !(self.at.is_finite() && self.at >= 0.0) {
            return Err("at: must be a time ≥ 0".into());
        }
        let selectors = [
            self.count.is_some(),
            self.fraction.is_some(),
            self.zone.is_some(),
            self.nodes.is_some(),
        ]
        .into_iter()
        .filter(|x| *x)
        .count();
        let zone_ok = |z: &u32| *z < zones;
        match self.action {
            Action::Crash | Action::Restart | Action::Leave | Action::Pause | Action::Skew => {
                if selectors != 1 {
                    return Err(
                        "choose nodes with exactly one of count, fraction, zone, nodes".into(),
                    );
                }
            }
            Action::Join => {
                if self.count.is_none() {
                    return Err("join needs count (how many new nodes)".into());
                }
            }
            Action::Partition => {
                if let Some(sides) = &self.sides
                    && !(2..=254).contains(&sides.len())
                {
                    return Err("sides: between 2 and 254 lists of zones".into());
                }
                if self.sides.is_none() && self.fraction.is_none() {
                    return Err("partition needs sides = [[zones…], [zones…]] or fraction".into());
                }
                if let Some(sides) = &self.sides
                    && !sides.iter().flatten().all(zone_ok)
                {
                    return Err(format!("sides: zones are numbered 0..{zones}"));
                }
            }
            Action::Cut => {
                let (Some(from), Some(to)) = (&self.from_zones, &self.to_zones) else {
                    return Err("cut needs from_zones and to_zones".into());
                };
                if !from.iter().chain(to).all(zone_ok) {
                    return Err(format!("zones are numbered 0..{zones}"));
                }
            }
        }
        if let Some(f) = self.fraction
            && !(0.0..=1.0).contains(&f)
        {
            return Err(format!("fraction = {f}: must be between 0 and 1"));
        }
        if let Some(z) = self.zone
            && z >= zones
        {
            return Err(format!("zone = {z}: zones are numbered 0..{zones}"));
        }
        if self.action == Action::Pause && self.duration_s.is_none() {
            return Err("pause needs duration_s".into());
        }
        if self.action == Action::Skew && self.offset_ms.is_none() {
            return Err("skew needs offset_ms".into());
        }
        if let Some(until) = self.until
            && until < self.at
        {
            return Err(format!("until = {until} is before at"));
        }
        for d in [&self.restart_after_s, &self.duration_s]
            .into_iter()
            .flatten()
        {
            d.check()?;
        }
        Ok(())
    }
}

/// Sets `a.b.c = value` in a TOML table.
fn apply_override(table: &mut toml::Table, spec: &str) -> Result<(), ScenarioError> {
    let (path, raw) = spec
        .split_once('=')
        .ok_or_else(|| ScenarioError::Override(spec.into()))?;
    let path = path.trim();
    if path.is_empty() {
        return Err(ScenarioError::Override(spec.into()));
    }
    let value = parse_value(raw.trim());
    let mut keys: Vec<&str> = path.split('.').collect();
    let last = keys.pop().expect("split yields at least one item");
    let mut here = table;
    for key in keys {
        let entry = here
            .entry(key.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        here = entry
            .as_table_mut()
            .ok_or_else(|| ScenarioError::Override(format!("{spec} ({key} is not a table)")))?;
    }
    here.insert(last.to_string(), value);
    Ok(())
}

/// A TOML value from the command line: a number, a boolean, an inline table or
/// array, or else a string.
fn parse_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "nodes = 10\nduration = 60\n";

    #[test]
    fn a_minimal_scenario_gets_working_defaults() {
        let s = Scenario::parse(MINIMAL, "t", &[]).unwrap();
        assert_eq!(s.nodes, 10);
        assert_eq!(s.zones, 1);
        assert_eq!(s.seed, 1);
        assert_eq!(s.network.loss, 0.0);
        assert!(s.events.is_empty());
    }

    #[test]
    fn overrides_reach_nested_fields() {
        let s = Scenario::parse(
            MINIMAL,
            "t",
            &[
                "network.loss=0.05".into(),
                "nodes=7".into(),
                "name=x".into(),
            ],
        )
        .unwrap();
        assert_eq!(s.network.loss, 0.05);
        assert_eq!(s.nodes, 7);
        assert_eq!(s.name, "x");
    }

    #[test]
    fn errors_name_the_field() {
        let err = |text: &str| {
            Scenario::parse(text, "f.toml", &[])
                .unwrap_err()
                .to_string()
        };
        assert!(
            err("nodes = 3\n").contains("duration"),
            "{}",
            err("nodes = 3\n")
        );
        let e = err("nodes = 3\nduration = 5\n[network]\nloss = 2\n");
        assert!(e.contains("network.loss") && e.contains("f.toml"), "{e}");
        let e = err("nodes = 3\nduration = 5\nspeed = 1\n");
        assert!(e.contains("speed"), "{e}");
        let e = err("nodes = 3\nduration = 5\n[[event]]\nat = 1\naction = \"crash\"\n");
        assert!(e.contains("event[0]") && e.contains("count"), "{e}");
        let e = err(
            "nodes = 3\nduration = 5\nzones = 2\n[[event]]\nat = 1\naction = \"cut\"\nfrom_zones = [0]\nto_zones = [5]\n",
        );
        assert!(e.contains("zones are numbered"), "{e}");
        let e = Scenario::parse(MINIMAL, "t", &["membership.probe_period_ms=-1".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("membership.probe_period_ms"), "{e}");
        let e = err(
            "nodes = 3\nduration = 5\n[[event]]\nat = 1\naction = \"partition\"\nsides = [[0]]\n",
        );
        assert!(e.contains("between 2 and 254"), "{e}");
        let e = err("nodes = 3\nduration = 5\nsample_interval = 1e-9\n");
        assert!(e.contains("sample_interval"), "{e}");
        assert!(matches!(
            Scenario::parse(MINIMAL, "t", &["loss".into()]),
            Err(ScenarioError::Override(_))
        ));
    }
}
