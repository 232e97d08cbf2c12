//! Packets on the membership port. A node receives the fuzzer's bytes twice:
//! as they are (a stranger's packet: the envelope must refuse it cleanly) and
//! sealed with the cluster's key by a member (what a buggy or hostile member
//! can send: SWIM messages, metadata notices, digest pulls and their
//! answers). Nothing may panic, and the node must go on answering its timers.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use stemma_protocol::membership::{
    ClusterKey, MemberId, Membership, MembershipConfig, NodeId, NodeMeta, Output,
};

fn member(n: u64) -> MemberId {
    MemberId {
        node: NodeId::synthetic(n),
        generation: 0,
        addr: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let key = ClusterKey::from_secret(b"fuzz cluster");
    let me = member(1);
    let meta = NodeMeta {
        id: me,
        zone: "zone-1".into(),
        capacity: 1,
        version: "fuzz".into(),
        p2p_addrs: vec![],
        client_addr: None,
    };
    let mut node = Membership::new(me, Some(meta), MembershipConfig::lan(8), key.clone(), 7);
    let now = Duration::from_secs(1);
    let _ = node.handle_data(data, now);

    let mut sealed = Vec::new();
    key.seal(&member(2).node, data, &mut sealed);
    let _ = node.handle_data(&sealed, now);
    // Split in two: a message and what follows it, as two packets.
    let cut = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    for part in [&data[..cut], &data[cut..]] {
        sealed.clear();
        key.seal(&member(3).node, part, &mut sealed);
        let _ = node.handle_data(&sealed, now + Duration::from_millis(10));
    }
    // The timers it set fire once, in order.
    let mut timers: Vec<_> = node
        .drain_outputs()
        .filter_map(|output| match output {
            Output::Timer { timer, after } => Some((after, timer)),
            _ => None,
        })
        .collect();
    timers.sort_by_key(|(after, _)| *after);
    for (after, timer) in timers {
        node.handle_timer(timer, now + after);
    }
    let _ = node.members();
});
