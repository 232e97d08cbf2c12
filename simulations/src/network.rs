//! The simulated network: what happens to a message between two nodes —
//! latency by zone pair, loss, duplication, reordering, each sender's
//! bandwidth, and the partitions and one-way cuts in force.

use crate::dist::Dist;
use crate::rng::Rng;
use crate::scenario::NetworkSettings;

/// Virtual time in microseconds.
pub type Micros = u64;

/// Later than any run ends (2⁵² µs, about 142 years). Every time drawn from a
/// distribution is clamped to it, so that adding two never overflows,
/// however long a log-normal tail or however slow a link: what would arrive
/// later simply never arrives.
pub const NEVER: Micros = 1 << 52;

/// `seconds` in microseconds, rounded, at least 0 and at most [`NEVER`].
pub fn micros(seconds: f64) -> Micros {
    (seconds * 1e6).round().clamp(0.0, NEVER as f64) as Micros
}

/// Why a message was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    /// Random loss.
    Lost,
    /// A partition or cut separates the two nodes.
    Partitioned,
}

/// A rule in force: which node is on which side. Messages between different
/// sides (a partition) or from side 0 to side 1 (a cut) are dropped.
#[derive(Debug, Clone)]
struct LinkRule {
    id: usize,
    /// Side of each node; `NO_SIDE` (and nodes added later) = not concerned.
    side_of: Vec<u8>,
    one_way: bool,
}

/// The side of a node a rule does not concern.
pub const NO_SIDE: u8 = u8::MAX;

/// The network's state and settings.
#[derive(Debug)]
pub struct Network {
    settings: NetworkSettings,
    /// Latency by (from zone, to zone).
    latency: Vec<Dist>,
    zones: usize,
    rules: Vec<LinkRule>,
    /// When each node's outgoing link is free again (bandwidth limit).
    busy_until: Vec<Micros>,
    rng: Rng,
}

impl Network {
    /// A network for `zones` zones.
    pub fn new(settings: &NetworkSettings, zones: u32, seed: u64) -> Self {
        let zones = zones as usize;
        let mut latency = vec![settings.latency_ms; zones * zones];
        for z in &settings.zone_latency {
            let (a, b) = (z.from as usize, z.to as usize);
            latency[a * zones + b] = z.latency_ms;
            if z.symmetric {
                latency[b * zones + a] = z.latency_ms;
            }
        }
        Self {
            settings: settings.clone(),
            latency,
            zones,
            rules: Vec::new(),
            busy_until: Vec::new(),
            rng: Rng::new(seed),
        }
    }

    /// Cuts nodes on different sides off from each other (or, if `one_way`,
    /// side 0 from side 1 only). `side_of[node]` is a node's side, or
    /// [`NO_SIDE`].
    pub fn add_rule(&mut self, id: usize, side_of: Vec<u8>, one_way: bool) {
        self.rules.push(LinkRule {
            id,
            side_of,
            one_way,
        });
    }

    /// Lifts a rule.
    pub fn remove_rule(&mut self, id: usize) {
        self.rules.retain(|r| r.id != id);
    }

    /// Whether a rule in force stops messages between `a` and `b` in either
    /// direction.
    pub fn separated(&self, a: u32, b: u32) -> bool {
        self.blocked(a, b) || self.blocked(b, a)
    }

    fn blocked(&self, from: u32, to: u32) -> bool {
        self.rules.iter().any(|r| {
            let side = |n: u32| r.side_of.get(n as usize).copied().unwrap_or(NO_SIDE);
            let (a, b) = (side(from), side(to));
            if a == NO_SIDE || b == NO_SIDE {
                return false;
            }
            if r.one_way { a == 0 && b == 1 } else { a != b }
        })
    }

    /// Sends `bytes` from node `from` to node `to` (in their zones) at `now`:
    /// the arrival times of the copies delivered (none if dropped, two if
    /// duplicated).
    pub fn send(
        &mut self,
        now: Micros,
        (from, from_zone): (u32, u32),
        (to, to_zone): (u32, u32),
        bytes: usize,
        out: &mut Vec<Micros>,
    ) -> Result<(), Drop> {
        out.clear();
        let (fz, tz) = (from_zone as usize, to_zone as usize);
        if !self.rules.is_empty() && self.blocked(from, to) {
            return Err(Drop::Partitioned);
        }
        let departs = match self.settings.bandwidth_bytes_per_s {
            Some(bw) => {
                let i = from as usize;
                if self.busy_until.len() <= i {
                    self.busy_until.resize(i + 1, 0);
                }
                let start = self.busy_until[i].max(now);
                let busy = (bytes as f64 / bw * 1e6).ceil().min(NEVER as f64) as Micros;
                self.busy_until[i] = (start + busy).min(NEVER);
                self.busy_until[i]
            }
            None => now,
        };
        if self.rng.chance(self.settings.loss) {
            return Err(Drop::Lost);
        }
        let copies = if self.rng.chance(self.settings.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut delay_ms = self.latency[fz * self.zones + tz].sample(&mut self.rng);
            if self.rng.chance(self.settings.reorder) {
                delay_ms += self.settings.reorder_delay_ms.sample(&mut self.rng);
            }
            // At least a microsecond: a message never arrives before it is sent.
            let delay = ((delay_ms * 1000.0).min(NEVER as f64) as Micros).max(1);
            out.push((departs + delay).min(NEVER));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(settings: NetworkSettings) -> Network {
        Network::new(&settings, 3, 9)
    }

    #[test]
    fn partitions_and_cuts_drop_only_what_they_separate() {
        let mut n = net(NetworkSettings::default());
        let mut out = Vec::new();
        // Node i on side i: 0 | 1 2 (node 3 is not concerned).
        n.add_rule(1, vec![0, 1, 1, NO_SIDE], false);
        assert_eq!(
            n.send(0, (0, 0), (1, 0), 10, &mut out),
            Err(Drop::Partitioned)
        );
        assert_eq!(
            n.send(0, (1, 0), (0, 0), 10, &mut out),
            Err(Drop::Partitioned)
        );
        assert!(n.send(0, (1, 0), (2, 0), 10, &mut out).is_ok());
        assert!(n.send(0, (0, 0), (3, 0), 10, &mut out).is_ok());
        n.remove_rule(1);
        n.add_rule(2, vec![0, 1, NO_SIDE], true);
        assert_eq!(
            n.send(0, (0, 0), (1, 0), 10, &mut out),
            Err(Drop::Partitioned)
        );
        assert!(n.send(0, (1, 0), (0, 0), 10, &mut out).is_ok());
        assert!(n.send(0, (0, 0), (2, 0), 10, &mut out).is_ok());
    }

    #[test]
    fn loss_and_duplication_happen_at_their_rates() {
        let mut n = net(NetworkSettings {
            loss: 0.1,
            duplicate: 0.2,
            ..NetworkSettings::default()
        });
        let mut out = Vec::new();
        let (mut lost, mut copies) = (0, 0);
        for _ in 0..100_000 {
            match n.send(0, (0, 0), (1, 0), 10, &mut out) {
                Ok(()) => copies += out.len(),
                Err(_) => lost += 1,
            }
        }
        assert!((9_000..11_000).contains(&lost), "{lost}");
        // 90 % delivered, 20 % of those twice.
        assert!((106_000..110_000).contains(&copies), "{copies}");
    }

    #[test]
    fn bandwidth_queues_messages_behind_each_other() {
        let mut n = net(NetworkSettings {
            latency_ms: Dist::constant(1.0),
            bandwidth_bytes_per_s: Some(1_000_000.0),
            ..NetworkSettings::default()
        });
        let mut out = Vec::new();
        // 1000 bytes take 1 ms to send at 1 MB/s, then 1 ms on the wire.
        n.send(0, (0, 0), (1, 0), 1000, &mut out).unwrap();
        assert_eq!(out, vec![2000]);
        n.send(0, (0, 0), (1, 0), 1000, &mut out).unwrap();
        assert_eq!(out, vec![3000]);
        // Another sender has its own link.
        n.send(0, (1, 0), (0, 0), 1000, &mut out).unwrap();
        assert_eq!(out, vec![2000]);
    }

    #[test]
    fn zone_pairs_have_their_own_latency() {
        let mut settings = NetworkSettings {
            latency_ms: Dist::constant(1.0),
            ..NetworkSettings::default()
        };
        settings.zone_latency.push(crate::scenario::ZoneLatency {
            from: 0,
            to: 2,
            latency_ms: Dist::constant(50.0),
            symmetric: false,
        });
        let mut n = net(settings);
        let mut out = Vec::new();
        n.send(0, (0, 0), (1, 2), 1, &mut out).unwrap();
        assert_eq!(out, vec![50_000]);
        n.send(0, (1, 2), (0, 0), 1, &mut out).unwrap();
        assert_eq!(out, vec![1_000]);
    }

    #[test]
    fn endless_draws_and_slow_links_arrive_never_and_overflow_nothing() {
        // A log-normal with sigma 70 draws delays of e^200 ms and more (a
        // scenario the fuzzer wrote; the sum overflowed), and a link of one
        // byte in 10^300 seconds is busy forever.
        let mut n = net(NetworkSettings {
            latency_ms: Dist::Lognormal {
                median: 900.0,
                sigma: 70.0,
            },
            bandwidth_bytes_per_s: Some(1e-300),
            ..NetworkSettings::default()
        });
        let mut out = Vec::new();
        let mut arrivals = Vec::new();
        for now in [0, 1_000_000, NEVER - 1] {
            for _ in 0..100 {
                n.send(now, (0, 0), (1, 0), 1_000, &mut out).unwrap();
                arrivals.extend_from_slice(&out);
            }
        }
        assert_eq!(arrivals.len(), 300);
        assert!(arrivals.iter().all(|&at| at == NEVER), "{arrivals:?}");
        assert_eq!(micros(f64::INFINITY), NEVER);
        assert_eq!(micros(f64::NAN), 0);
        assert_eq!(micros(-1.0), 0);
        assert_eq!(micros(1.5), 1_500_000);
    }
}
