//! Node configuration: a TOML file, overridden by `STEMMA_*` variables, overridden
//! by flags. Defaults work on one machine.
//!
//! ```toml
//! data_dir = "/var/lib/stemma"
//! listen = "0.0.0.0:7400"      # QUIC, for clients
//! http = "127.0.0.1:7480"      # health, metrics
//! chunk_size = 1040384         # bytes, 4 KiB ..= 1 MiB
//! durability = "immediate"     # or "relaxed"
//! p2p_listen = "/ip4/0.0.0.0/udp/7401/quic-v1"
//! p2p_advertise = "203.0.113.7:7401"  # what other nodes dial, if not the above
//! join = ["/ip4/10.0.0.5/udp/7401/quic-v1"]
//! mdns = true
//! zone = "site-a"
//! capacity = 1
//! cluster_secret_file = "/etc/stemma/cluster-secret"
//! membership = "lan"           # or "wan"
//! expected_members = 16
//! lineage_sync_seconds = 5     # anti-entropy; changes are pushed at once
//! lineage_epoch_ops = 1000000  # history that makes the graph start a new epoch; 0 = never
//! openlineage_api_key = "…"     # required as Bearer by POST /api/v1/lineage
//! replication_factor = 3       # copies of every chunk, manifest and name
//! write_quorum = 2             # durable copies before a put is acknowledged
//! partitions = 256             # power of two; the same on every node
//! anti_entropy_seconds = 30    # replica repair rounds (also soon after a layout change)
//! scrub_bytes_per_second = 8388608  # re-hashing rate of held chunks; 0 = off
//! gc_grace_seconds = 3600      # how long unreferenced data stays before it is dropped
//! tombstone_grace_seconds = 864000  # how long a delete is remembered (10 days)
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use stemma_protocol::ChunkSize;

pub use crate::store::Durability;

/// Everything a node needs to start.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Where the store, identity, certificate, token and `node.json` live.
    pub data_dir: PathBuf,
    /// UDP address of the QUIC client endpoint. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// TCP address of the HTTP endpoint (`/health`, `/metrics`). Port 0 picks one.
    pub http: SocketAddr,
    /// Chunk size for new objects, in bytes.
    pub chunk_size: u64,
    /// When an acknowledged write is on disk.
    pub durability: Durability,
    /// Multiaddr of the peer-to-peer endpoint (QUIC). Port 0 picks a free port.
    pub p2p_listen: String,
    /// The `IP:PORT` other nodes should dial to reach the p2p endpoint, when that
    /// is not the listen address (behind NAT, or listening on 0.0.0.0 with
    /// several interfaces). Without it, a non-loopback listen address is used.
    pub p2p_advertise: Option<SocketAddr>,
    /// Multiaddrs of nodes to join through (`/p2p/PEER_ID` at the end is optional).
    pub join: Vec<String>,
    /// Find other nodes on the local network by mDNS.
    pub mdns: bool,
    /// The site this node runs in; replicas are spread across zones.
    pub zone: String,
    /// Relative capacity (placement weight).
    pub capacity: u64,
    /// The cluster secret itself (prefer `cluster_secret_file` or the
    /// `STEMMA_CLUSTER_SECRET` variable, which keep it out of config files).
    pub cluster_secret: Option<String>,
    /// A file holding the cluster secret. Without a secret, the node creates one in
    /// its data dir (`cluster-secret`) and forms a cluster of its own.
    pub cluster_secret_file: Option<PathBuf>,
    /// SWIM timing preset: `lan` or `wan`.
    pub membership: MembershipPreset,
    /// Expected cluster size; scales suspicion timeouts and dissemination.
    pub expected_members: u32,
    /// Seconds between anti-entropy rounds of lineage sync with every live
    /// member (changes are also pushed as soon as they are made).
    pub lineage_sync_seconds: u64,
    /// Operations written to a lineage graph since its last epoch after which
    /// a new epoch is cut: a fresh document of the live state that replaces
    /// the history, so the graph's size stays bounded. Cut only while every
    /// member is alive and in sync (docs/ARCHITECTURE.md); 0 turns it off.
    pub lineage_epoch_ops: u64,
    /// The key OpenLineage clients must send (`Authorization: Bearer KEY`) to
    /// `POST /api/v1/lineage`; without it, any client on the HTTP address may.
    pub openlineage_api_key: Option<String>,
    /// Serve `POST /debug/faults`, which cuts the node off from named peers,
    /// and `POST /debug/corrupt-chunk`. For tests only.
    pub fault_injection: bool,
    /// Copies of every chunk, manifest and name (RF), on distinct nodes and
    /// zones; with fewer nodes than RF, one copy per node.
    pub replication_factor: u8,
    /// Durable copies (W) of every item before a put is acknowledged; at most
    /// RF, and lowered to the number of nodes when there are fewer.
    pub write_quorum: u8,
    /// Partitions of the key space: a power of two, the same on every node of
    /// a cluster (fixed when the cluster is created).
    pub partitions: u32,
    /// Seconds between anti-entropy rounds of replicated data with every live
    /// peer; a round also starts two seconds after each layout change.
    pub anti_entropy_seconds: u64,
    /// How fast the scrubber re-hashes the chunks this node holds (bytes per
    /// second; 0 turns it off). A corrupt copy is replaced from a replica.
    pub scrub_bytes_per_second: u64,
    /// How long a replicated chunk or manifest stays once nothing references
    /// it (or since it was written, for one never referenced) before the
    /// garbage collector drops it. It must exceed the longest upload and the
    /// longest delay of replication between nodes.
    pub gc_grace_seconds: u64,
    /// How long a deleted name's tombstone is kept. A replica cut off (down or
    /// partitioned) for longer, still holding the name's earlier value, would
    /// bring it back when it returns: wipe such a node and let it rejoin empty.
    pub tombstone_grace_seconds: u64,
}

/// SWIM timing presets (see `stemma_protocol::membership::MembershipConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MembershipPreset {
    /// Sites on one LAN: 800 ms probes, fast detection.
    #[default]
    Lan,
    /// Sites over a WAN: 5 s probes, patient suspicion.
    Wan,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("stemma-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 7400)),
            http: SocketAddr::from(([127, 0, 0, 1], 7480)),
            chunk_size: ChunkSize::DEFAULT.bytes() as u64,
            durability: Durability::Immediate,
            p2p_listen: "/ip4/127.0.0.1/udp/7401/quic-v1".into(),
            p2p_advertise: None,
            join: Vec::new(),
            mdns: true,
            zone: "default".into(),
            capacity: 1,
            cluster_secret: None,
            cluster_secret_file: None,
            membership: MembershipPreset::Lan,
            expected_members: 16,
            lineage_sync_seconds: 5,
            lineage_epoch_ops: 1_000_000,
            openlineage_api_key: None,
            fault_injection: false,
            replication_factor: 3,
            write_quorum: 2,
            partitions: 256,
            anti_entropy_seconds: 30,
            scrub_bytes_per_second: 8 * 1024 * 1024,
            gc_grace_seconds: 3600,
            tombstone_grace_seconds: 10 * 24 * 3600,
        }
    }
}

/// A configuration that cannot be used; the message names the field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for a node config.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, naming the field.
        message: String,
    },
    /// A field has a value out of range.
    #[error("invalid config: {field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl NodeConfig {
    /// Reads a TOML file; fields it omits keep their defaults.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        let config: Self = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string(),
        })?;
        Ok(config)
    }

    /// The chunk size, checked.
    pub fn chunk_size(&self) -> Result<ChunkSize, ConfigError> {
        ChunkSize::new(self.chunk_size).map_err(|e| ConfigError::Invalid {
            field: "chunk_size",
            message: e.to_string(),
        })
    }

    /// The p2p listen address, parsed.
    pub fn p2p_listen(&self) -> Result<libp2p::Multiaddr, ConfigError> {
        self.p2p_listen.parse().map_err(|e| ConfigError::Invalid {
            field: "p2p_listen",
            message: format!(
                "{:?} is not a multiaddr ({e}); e.g. /ip4/0.0.0.0/udp/7401/quic-v1",
                self.p2p_listen
            ),
        })
    }

    /// The join targets, parsed.
    pub fn join_addrs(&self) -> Result<Vec<libp2p::Multiaddr>, ConfigError> {
        self.join
            .iter()
            .map(|a| {
                a.parse().map_err(|e| ConfigError::Invalid {
                    field: "join",
                    message: format!(
                        "{a:?} is not a multiaddr ({e}); e.g. /ip4/10.0.0.5/udp/7401/quic-v1"
                    ),
                })
            })
            .collect()
    }

    /// The SWIM settings for this config.
    pub fn membership_config(&self) -> stemma_protocol::membership::MembershipConfig {
        use stemma_protocol::membership::MembershipConfig;
        match self.membership {
            MembershipPreset::Lan => MembershipConfig::lan(self.expected_members),
            MembershipPreset::Wan => MembershipConfig::wan(self.expected_members),
        }
    }

    /// The placement settings (partitions and RF), checked.
    pub fn placement(&self) -> Result<stemma_protocol::placement::PlacementConfig, ConfigError> {
        use stemma_protocol::placement::{PlacementConfig, PlacementError};
        PlacementConfig::new(self.partitions, self.replication_factor).map_err(|e| {
            let field = match e {
                PlacementError::ReplicationZero => "replication_factor",
                _ => "partitions",
            };
            ConfigError::Invalid {
                field,
                message: e.to_string(),
            }
        })
    }

    /// Rejects combinations that cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.chunk_size()?;
        self.placement()?;
        if self.write_quorum == 0 || self.write_quorum > self.replication_factor {
            return Err(ConfigError::Invalid {
                field: "write_quorum",
                message: format!(
                    "{} is not between 1 and replication_factor ({})",
                    self.write_quorum, self.replication_factor
                ),
            });
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::Invalid {
                field: "data_dir",
                message: "must not be empty".into(),
            });
        }
        self.p2p_listen()?;
        self.join_addrs()?;
        if self.zone.is_empty() {
            return Err(ConfigError::Invalid {
                field: "zone",
                message: "must not be empty".into(),
            });
        }
        if self.capacity == 0 {
            return Err(ConfigError::Invalid {
                field: "capacity",
                message: "must be at least 1".into(),
            });
        }
        if self.gc_grace_seconds == 0 {
            return Err(ConfigError::Invalid {
                field: "gc_grace_seconds",
                message: "must be at least 1: with no grace, the chunks of an upload in progress \
                          could be collected before its manifest is written"
                    .into(),
            });
        }
        if self.tombstone_grace_seconds < self.anti_entropy_seconds.saturating_mul(2) {
            return Err(ConfigError::Invalid {
                field: "tombstone_grace_seconds",
                message: format!(
                    "{} is shorter than two anti-entropy rounds ({} s): a delete could be \
                     forgotten before every owner heard of it",
                    self.tombstone_grace_seconds,
                    self.anti_entropy_seconds.saturating_mul(2)
                ),
            });
        }
        if self.listen.port() != 0 && self.listen == self.http {
            return Err(ConfigError::Invalid {
                field: "http",
                message: "must differ from listen".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_file_keeps_defaults() {
        let c: NodeConfig = toml::from_str("durability = \"relaxed\"").unwrap();
        assert_eq!(c.durability, Durability::Relaxed);
        assert_eq!(c.listen, NodeConfig::default().listen);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_named() {
        let e = toml::from_str::<NodeConfig>("chunksize = 5").unwrap_err();
        assert!(e.to_string().contains("chunksize"), "{e}");
        let e = toml::from_str::<NodeConfig>("durability = \"sometimes\"").unwrap_err();
        assert!(
            e.to_string().contains("durability") || e.to_string().contains("sometimes"),
            "{e}"
        );
        let c = NodeConfig {
            chunk_size: 10,
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("chunk_size"));
    }

    #[test]
    fn replication_settings_are_checked_and_named() {
        let c: NodeConfig =
            toml::from_str("replication_factor = 5\nwrite_quorum = 3\npartitions = 1024").unwrap();
        c.validate().unwrap();
        for (text, field) in [
            ("partitions = 100", "partitions"),
            (
                "replication_factor = 0\nwrite_quorum = 0",
                "replication_factor",
            ),
            ("write_quorum = 4", "write_quorum"),
            ("write_quorum = 0", "write_quorum"),
            ("gc_grace_seconds = 0", "gc_grace_seconds"),
            ("tombstone_grace_seconds = 59", "tombstone_grace_seconds"),
        ] {
            let c: NodeConfig = toml::from_str(text).unwrap();
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(field), "{text}: {e}");
        }
    }
}
