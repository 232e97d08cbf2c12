//! Who a member is: its node id (an ed25519 public key, shown as the libp2p
//! PeerId it corresponds to) and its generation (bumped on every restart and on
//! every rejoin after a false death, so the newest incarnation of a node always
//! wins), and where it listens, so that any member that hears of it second-hand
//! can reach it at once.

use std::fmt;
use std::hash::Hash;
use std::net::SocketAddr;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A node's id: its ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId([u8; 32]);

/// A member as SWIM sees it: a node in one of its generations.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MemberId {
    /// The node.
    pub node: NodeId,
    /// Restart/rejoin counter: the higher generation of a node replaces the lower.
    pub generation: u32,
    /// Its peer-to-peer endpoint (UDP, QUIC), if it has one. It travels with the
    /// id in every SWIM update, as in memberlist, so that a member learned
    /// through gossip can be probed before its metadata arrives.
    pub addr: Option<SocketAddr>,
}

/// What [`Membership`](super::Membership) needs of the ids SWIM keeps, one per
/// member in every member's list. Nodes use [`MemberId`]. A simulation of
/// thousands of nodes keeps N² of them, and may use a compact id that stands
/// for a `MemberId` (and travels as one) to save the memory.
pub trait MemberIdentity:
    foca::Identity + Copy + Eq + Hash + fmt::Debug + Serialize + DeserializeOwned
{
    /// The full id this stands for.
    fn member_id(&self) -> MemberId;

    /// The id to reach `node` by before its generation and address are known.
    fn contact(node: NodeId) -> Self;

    /// The node. (An id that stands for a `MemberId` may answer this and
    /// [`generation`](Self::generation) without building one.)
    fn node(&self) -> NodeId {
        self.member_id().node
    }

    /// The generation.
    fn generation(&self) -> u32 {
        self.member_id().generation
    }
}

impl MemberIdentity for MemberId {
    fn member_id(&self) -> MemberId {
        *self
    }

    fn contact(node: NodeId) -> Self {
        MemberId {
            node,
            generation: 0,
            addr: None,
        }
    }
}

/// Text that is not a node id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a node id: {0:?} (expected a PeerId like 12D3KooW…)")]
pub struct NodeIdParseError(String);

/// The protobuf-encoded ed25519 public key header of a libp2p PeerId, after the
/// identity multihash header.
const PEER_ID_PREFIX: [u8; 6] = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20];

impl NodeId {
    /// The id of an ed25519 public key.
    pub const fn from_public_key(key: [u8; 32]) -> Self {
        Self(key)
    }

    /// The ed25519 public key.
    pub const fn public_key(&self) -> &[u8; 32] {
        &self.0
    }

    /// A synthetic id for simulations and tests: `n` in the first bytes.
    pub fn synthetic(n: u64) -> Self {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&n.to_be_bytes());
        Self(key)
    }

    /// The libp2p PeerId bytes (identity multihash of the protobuf public key).
    pub fn peer_id_bytes(&self) -> [u8; 38] {
        let mut bytes = [0u8; 38];
        bytes[..6].copy_from_slice(&PEER_ID_PREFIX);
        bytes[6..].copy_from_slice(&self.0);
        bytes
    }

    /// The id of a libp2p PeerId given as bytes, if it is an ed25519 one.
    pub fn from_peer_id_bytes(bytes: &[u8]) -> Option<Self> {
        let key = bytes.strip_prefix(&PEER_ID_PREFIX[..])?;
        Some(Self(key.try_into().ok()?))
    }

    /// The last 8 characters of the PeerId, for tables and logs.
    pub fn short(&self) -> String {
        let full = self.to_string();
        full[full.len() - 8..].to_string()
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.peer_id_bytes()).into_string())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.short())
    }
}

impl FromStr for NodeId {
    type Err = NodeIdParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        bs58::decode(s)
            .into_vec()
            .ok()
            .and_then(|b| Self::from_peer_id_bytes(&b))
            .ok_or_else(|| NodeIdParseError(s.into()))
    }
}

impl fmt::Debug for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.node.short(), self.generation)?;
        match self.addr {
            Some(addr) => write!(f, "@{addr}"),
            None => Ok(()),
        }
    }
}

impl foca::Identity for MemberId {
    type Addr = NodeId;

    /// Rejoin automatically after being declared down by mistake, as a newer
    /// generation that replaces the one declared down.
    fn renew(&self) -> Option<Self> {
        Some(MemberId {
            generation: self.generation.wrapping_add(1),
            ..*self
        })
    }

    fn addr(&self) -> NodeId {
        self.node
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.generation > adversary.generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_the_libp2p_peer_id_and_parses_back() {
        let id = NodeId::synthetic(42);
        let text = id.to_string();
        assert!(text.starts_with("12D3KooW"), "{text}");
        assert_eq!(text.parse::<NodeId>().unwrap(), id);
        assert!("nonsense".parse::<NodeId>().is_err());
    }

    #[test]
    fn the_newer_generation_wins() {
        use foca::Identity;
        let old = MemberId {
            node: NodeId::synthetic(1),
            generation: 3,
            addr: Some("127.0.0.1:7401".parse().unwrap()),
        };
        let new = old.renew().unwrap();
        assert_eq!(new.addr(), old.addr());
        assert!(new.win_addr_conflict(&old));
        assert!(!old.win_addr_conflict(&new));
        assert_eq!(new.addr, old.addr);
    }
}
