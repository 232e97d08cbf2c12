//! Membership settings, with presets for a LAN and a WAN.

use std::num::NonZeroU32;
use std::time::Duration;

/// SWIM settings. Build one with [`MembershipConfig::lan`] or
/// [`MembershipConfig::wan`]; every field of the underlying foca config is public
/// for researchers who want to tune it.
#[derive(Debug, Clone)]
pub struct MembershipConfig {
    /// The SWIM parameters.
    pub swim: foca::Config,
    /// Whether members exchange metadata (zone, capacity, addresses). A simulation
    /// that does not need it can turn it off to save memory.
    pub metadata: bool,
    /// Whether to record when each member was last heard from (`stemma
    /// members` shows it). A simulation of thousands of nodes can turn it off:
    /// it is a map entry per member per node.
    pub last_heard: bool,
    /// How often a member pulls the whole member list from a random member
    /// (scaled up with the cluster's size); `None`: only when joining.
    pub sync_interval: Option<Duration>,
}

impl MembershipConfig {
    /// A LAN or a single site: probe every second with a 500 ms round trip,
    /// suspicion lasting 4 × log10(N) probe periods (memberlist's LAN rule),
    /// gossip to 3 members every 200 ms, announce every 30 s, pull a random
    /// member's full list every 30 s (scaled with the size), and retry members
    /// declared down every 65 s so partitions heal by themselves.
    pub fn lan(expected_members: u32) -> Self {
        Self {
            swim: foca::Config::new_lan(size(expected_members)),
            metadata: true,
            last_heard: true,
            sync_interval: Some(Duration::from_secs(30)),
        }
    }

    /// Sites linked over a WAN: probe every 5 s with a 3 s round trip, suspicion
    /// of 6 × log10(N) probe periods (memberlist's WAN rule), gossip every
    /// 500 ms, announce every 60 s, pull a full list every 60 s (scaled), retry
    /// down members every 125 s.
    pub fn wan(expected_members: u32) -> Self {
        Self {
            swim: foca::Config::new_wan(size(expected_members)),
            metadata: true,
            last_heard: true,
            sync_interval: Some(Duration::from_secs(60)),
        }
    }

    /// The time within which every live member declares a crashed one dead, when
    /// messages flow: up to three probe periods until some member probes it
    /// (each member probes one member per period, in a shuffled round-robin, so
    /// with a few members one of them picks it within three periods all but
    /// rarely), a direct and an indirect round trip, the suspicion timeout, and
    /// one more period for the verdict to spread.
    pub fn detection_bound(&self) -> Duration {
        self.swim.probe_period * 4 + self.swim.probe_rtt * 2 + self.swim.suspect_to_down_after
    }
}

fn size(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).expect("max(1) is never zero")
}
