//! What members tell each other besides liveness, piggybacked on SWIM messages
//! with the same bounded retransmission budget: a node's metadata (zone,
//! capacity, addresses, version) and "I left" notices, so that the cluster can
//! tell a graceful leave from a death.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::membership::{MemberId, MemberIdentity, NodeId};

/// What a node says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeMeta {
    /// The node and generation this describes.
    pub id: MemberId,
    /// The site (zone) the node runs in.
    pub zone: String,
    /// Relative storage capacity, for weighting placement.
    pub capacity: u64,
    /// Software version.
    pub version: String,
    /// Multiaddrs of its peer-to-peer endpoint.
    pub p2p_addrs: Vec<String>,
    /// Address of its client endpoint.
    pub client_addr: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Notice {
    Meta(NodeMeta),
    Left(MemberId),
}

/// Dissemination key: a newer generation of the same notice replaces the older.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoticeKey {
    left: bool,
    id: MemberId,
}

impl foca::Invalidates for NoticeKey {
    fn invalidates(&self, other: &Self) -> bool {
        self.left == other.left
            && self.id.node == other.id.node
            && self.id.generation >= other.id.generation
    }
}

/// What this member has learned from notices.
#[derive(Debug, Default)]
pub(crate) struct Notices {
    pub meta: HashMap<NodeId, NodeMeta>,
    pub left: HashMap<NodeId, u32>,
}

impl Notices {
    pub fn has_left(&self, id: &MemberId) -> bool {
        self.left.get(&id.node) == Some(&id.generation)
    }
}

/// A notice that could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("undecodable membership notice")]
pub struct BadNotice;

/// foca's custom-broadcast handler for notices; shares what it learns with the
/// [`Membership`](crate::membership::Membership) that owns it.
#[derive(Debug, Clone)]
pub(crate) struct NoticeHandler(pub Arc<Mutex<Notices>>);

impl NoticeHandler {
    pub fn encode(notice: &Notice) -> Vec<u8> {
        postcard::to_stdvec(notice).expect("a notice always serializes")
    }
}

impl<I: MemberIdentity> foca::BroadcastHandler<I> for NoticeHandler {
    type Key = NoticeKey;
    type Error = BadNotice;

    fn receive_item(
        &mut self,
        data: &[u8],
        _sender: Option<&I>,
    ) -> Result<Option<NoticeKey>, BadNotice> {
        let notice: Notice = postcard::from_bytes(data).map_err(|_| BadNotice)?;
        let mut known = self.0.lock().expect("notices lock");
        Ok(match notice {
            Notice::Meta(meta) => {
                let id = meta.id;
                let newer = known
                    .meta
                    .get(&id.node)
                    .is_none_or(|m| m.id.generation < id.generation);
                newer.then(|| {
                    known.meta.insert(id.node, meta);
                    NoticeKey { left: false, id }
                })
            }
            Notice::Left(id) => {
                let newer = known.left.get(&id.node).is_none_or(|g| *g < id.generation);
                newer.then(|| {
                    known.left.insert(id.node, id.generation);
                    NoticeKey { left: true, id }
                })
            }
        })
    }
}
