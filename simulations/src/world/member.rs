//! Who a simulated node is. Every SWIM member keeps an id for every other
//! member, so a 10,000-node run keeps 10⁸ of them: [`SimMember`] is the
//! 12-byte stand-in for a 68-byte [`MemberId`] (a 32-byte key and a socket
//! address) that the membership state machine keeps instead. It travels on
//! the simulated wire as the `MemberId` it stands for, byte for byte, so
//! message sizes are those of real nodes.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use stemma_protocol::membership::{MemberId, MemberIdentity, NodeId};

use super::{node_id, slot_of};

/// The process in `slot` under its `identity`-th node id (a restart without
/// its stored state gets a new one), in one of its generations.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SimMember {
    pub slot: u32,
    pub identity: u32,
    pub generation: u32,
}

impl SimMember {
    /// The member in `slot` under `identity`, at `generation`.
    pub fn new(slot: u32, identity: u32, generation: u32) -> Self {
        Self {
            slot,
            identity,
            generation,
        }
    }

    /// The simulated node `id` stands for, at generation 0 (`None` if `id` is
    /// not one of the simulation's synthetic ids).
    pub fn of_node(id: &NodeId) -> Option<Self> {
        if id.public_key()[8..].iter().any(|&b| b != 0) {
            return None;
        }
        let (slot, identity) = slot_of(id);
        Some(Self::new(slot, identity, 0))
    }
}

impl fmt::Debug for SimMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}#{}", self.slot, self.identity, self.generation)
    }
}

impl foca::Identity for SimMember {
    /// Slot and identity: a node across its generations.
    type Addr = u64;

    fn renew(&self) -> Option<Self> {
        Some(Self {
            generation: self.generation.wrapping_add(1),
            ..*self
        })
    }

    fn addr(&self) -> u64 {
        (u64::from(self.identity) << 32) | u64::from(self.slot)
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.generation > adversary.generation
    }
}

impl MemberIdentity for SimMember {
    fn member_id(&self) -> MemberId {
        MemberId {
            node: node_id(self.slot, self.identity),
            generation: self.generation,
            addr: None,
        }
    }

    fn contact(node: NodeId) -> Self {
        // Every node id in a simulation is one of its own.
        Self::of_node(&node).expect("a simulated node id")
    }

    fn node(&self) -> NodeId {
        node_id(self.slot, self.identity)
    }

    fn generation(&self) -> u32 {
        self.generation
    }
}

impl Serialize for SimMember {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.member_id().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SimMember {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = MemberId::deserialize(deserializer)?;
        match (Self::of_node(&id.node), id.addr) {
            (Some(member), None) => Ok(Self {
                generation: id.generation,
                ..member
            }),
            _ => Err(serde::de::Error::custom(format!(
                "{id:?} is not a simulated member"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn travels_as_the_member_id_it_stands_for() {
        let member = SimMember::new(7, 2, 5);
        let bytes = postcard::to_stdvec(&member).unwrap();
        assert_eq!(bytes, postcard::to_stdvec(&member.member_id()).unwrap());
        assert_eq!(postcard::from_bytes::<SimMember>(&bytes).unwrap(), member);
        assert_eq!(SimMember::contact(member.node()), SimMember::new(7, 2, 0));
    }

    #[test]
    fn refuses_an_id_that_is_not_simulated() {
        let real = MemberId {
            node: NodeId::from_public_key([9; 32]),
            generation: 0,
            addr: None,
        };
        let bytes = postcard::to_stdvec(&real).unwrap();
        assert!(postcard::from_bytes::<SimMember>(&bytes).is_err());
        assert_eq!(SimMember::of_node(&real.node), None);
    }

    #[test]
    fn is_a_fraction_of_the_size_of_a_member_id() {
        assert_eq!(size_of::<SimMember>(), 12);
        assert!(size_of::<MemberId>() >= 64);
    }
}
