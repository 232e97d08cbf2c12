//! The lineage document as the node drives it: batched edits, saves and the
//! append log, sync with peers, bad bytes, and epochs.

use proptest::prelude::*;
use stemma_protocol::lineage::{
    Attr, AttrKey, EdgeSpec, EditError, EntityId, Epoch, EpochError, LineageDoc, LoadError,
    NewEntity, Op, PeerSync, Received, SyncError, SyncHeader, Traversal, generate,
};

const NOW: i64 = 1_700_000_000_000;

fn id(s: &str) -> EntityId {
    EntityId::parse(s).unwrap()
}

fn small() -> LineageDoc {
    let mut d = LineageDoc::new("default", b"node-a/1").unwrap();
    generate::warehouse(1, 200, 500)
        .apply(&mut d, 100, NOW)
        .unwrap();
    d
}

/// Runs the sync protocol between two documents until both are quiet.
/// Returns the number of messages and bytes exchanged.
fn sync(a: &mut LineageDoc, b: &mut LineageDoc) -> (usize, usize) {
    let (mut ab, mut ba) = (PeerSync::new(), PeerSync::new());
    let (mut msgs, mut bytes) = (0, 0);
    for _ in 0..100 {
        let m1 = a.generate_sync_message(&mut ab);
        if let Some(m) = &m1 {
            msgs += 1;
            bytes += m.len();
            b.receive_sync_message(&mut ba, m).unwrap();
        }
        let m2 = b.generate_sync_message(&mut ba);
        if let Some(m) = &m2 {
            msgs += 1;
            bytes += m.len();
            a.receive_sync_message(&mut ab, m).unwrap();
        }
        if m1.is_none() && m2.is_none() {
            return (msgs, bytes);
        }
    }
    panic!("sync did not settle");
}

#[test]
fn a_batch_is_one_change_and_a_failed_batch_changes_nothing() {
    let mut d = LineageDoc::new("default", b"a").unwrap();
    let c = d
        .edit(NOW, |tx| {
            for i in 0..100 {
                tx.upsert(&NewEntity::parse(&format!("table:t{i}"))?)?;
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(c.ops, 100);
    assert!(c.head.is_some());
    assert_eq!(d.stats().changes, 1);
    let heads = d.heads();
    let err = d
        .edit(NOW, |tx| {
            tx.upsert(&NewEntity::parse("table:new")?)?;
            tx.set_attr(&id("table:missing"), &Attr::Owner("x".into()))
        })
        .unwrap_err();
    assert_eq!(err, EditError::UnknownEntity(id("table:missing")));
    assert_eq!(d.heads(), heads, "nothing written");
    assert!(
        !d.index().contains(&id("table:new")),
        "the index did not move either"
    );
    // An edit that changes nothing makes no change.
    let c = d
        .edit(NOW, |tx| tx.upsert(&NewEntity::parse("table:t1")?))
        .unwrap();
    assert_eq!(c.head, None);
}

#[test]
fn apply_each_skips_failing_operations_and_commits_the_rest() {
    let mut d = LineageDoc::new("default", b"a").unwrap();
    let ops = vec![
        Op::Upsert(NewEntity::parse("table:a").unwrap()),
        Op::SetAttr {
            id: id("table:nope"),
            attr: Attr::Level(1),
        },
        Op::Link {
            source: id("table:a"),
            target: id("report:b"),
            spec: EdgeSpec::default(),
        },
        Op::UnsetAttr {
            id: id("table:a"),
            key: AttrKey::Owner,
        },
    ];
    let (c, results) = d.apply_each(NOW, &ops);
    assert_eq!(c.ops, 3);
    assert!(results[0].is_ok() && results[1].is_err() && results[2].is_ok() && results[3].is_ok());
    assert!(d.index().edge(&id("table:a"), &id("report:b")).is_some());
    assert_eq!(d.stats().changes, 1);
    // Ops travel as JSON.
    let json = serde_json::to_string(&ops).unwrap();
    let back: Vec<Op> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, ops);
}

#[test]
fn save_load_and_the_append_log_round_trip() {
    let mut d = small();
    let full = d.save();
    assert!(d.save_incremental().is_empty(), "nothing since the save");
    d.edit(NOW, |tx| tx.upsert(&NewEntity::parse("table:extra")?))
        .unwrap();
    let inc1 = d.save_incremental();
    d.edit(NOW, |tx| tx.remove(&id("table:extra"))).unwrap();
    let inc2 = d.save_incremental();
    assert!(!inc1.is_empty() && !inc2.is_empty());

    let mut log = full.clone();
    log.extend(&inc1);
    log.extend(&inc2);
    let loaded = LineageDoc::load("default", b"node-a/2", &log).unwrap();
    assert_eq!(loaded.heads(), d.heads());
    assert_eq!(loaded.index().live_state(), d.index().live_state());
    assert_eq!(loaded.to_bytes(), d.to_bytes(), "same changes, same bytes");

    // A crash mid-append leaves a torn tail: it is ignored.
    let mut torn = full.clone();
    torn.extend(&inc1);
    torn.extend(&inc2[..inc2.len() / 2]);
    let loaded = LineageDoc::load("default", b"node-a/2", &torn).unwrap();
    assert!(loaded.index().contains(&id("table:extra")));

    // Incremental bytes apply to another copy.
    let mut other = LineageDoc::load("default", b"node-b/1", &full).unwrap();
    assert!(other.load_incremental(&inc1).unwrap());
    assert!(other.load_incremental(&inc2).unwrap());
    assert!(!other.load_incremental(&inc2).unwrap(), "idempotent");
    assert_eq!(other.heads(), d.heads());
}

#[test]
fn sync_converges_two_and_three_nodes_after_offline_edits() {
    let mut a = small();
    let mut b = LineageDoc::new("default", b"node-b/1").unwrap();
    let (msgs, bytes) = sync(&mut a, &mut b);
    assert!(msgs >= 2 && bytes > 0);
    assert_eq!(a.heads(), b.heads());
    assert_eq!(b.index().live_state(), a.index().live_state());

    let mut c = b.fork(b"node-c/1").unwrap();
    a.edit(NOW, |tx| {
        tx.set_attr(&id("system:sys_0"), &Attr::Owner("a".into()))
    })
    .unwrap();
    b.edit(NOW, |tx| tx.upsert(&NewEntity::parse("report:from_b")?))
        .unwrap();
    c.edit(NOW, |tx| {
        tx.link(
            &id("report:report 1"),
            &id("dashboard:new"),
            &EdgeSpec::default(),
        )
    })
    .unwrap();
    sync(&mut a, &mut b);
    sync(&mut b, &mut c);
    sync(&mut a, &mut c);
    assert_eq!(a.heads(), b.heads());
    assert_eq!(b.heads(), c.heads());
    assert_eq!(a.index().live_state(), c.index().live_state());
    // Nothing left to say.
    assert_eq!(sync(&mut a, &mut b).0, 2);
}

#[test]
fn peer_state_survives_a_reconnect() {
    let mut a = small();
    let mut b = LineageDoc::new("default", b"node-b/1").unwrap();
    sync(&mut a, &mut b);
    let mut ab = PeerSync::new();
    let mut ba = PeerSync::new();
    // Establish shared heads, persist them, edit, and resume from the bytes.
    loop {
        let m = a.generate_sync_message(&mut ab);
        if let Some(m) = &m {
            b.receive_sync_message(&mut ba, m).unwrap();
        }
        let n = b.generate_sync_message(&mut ba);
        if let Some(n) = &n {
            a.receive_sync_message(&mut ab, n).unwrap();
        }
        if m.is_none() && n.is_none() {
            break;
        }
    }
    assert_eq!(ab.shared_heads(), a.heads());
    let mut ab = PeerSync::decode(&ab.encode()).unwrap();
    ab.reset();
    a.edit(NOW, |tx| tx.upsert(&NewEntity::parse("table:late")?))
        .unwrap();
    let mut ba = PeerSync::decode(&ba.encode()).unwrap();
    let m = a.generate_sync_message(&mut ab).unwrap();
    b.receive_sync_message(&mut ba, &m).unwrap();
    while let Some(n) = b.generate_sync_message(&mut ba) {
        a.receive_sync_message(&mut ab, &n).unwrap();
        match a.generate_sync_message(&mut ab) {
            Some(m) => b.receive_sync_message(&mut ba, &m).unwrap(),
            None => break,
        };
    }
    assert!(b.index().contains(&id("table:late")));
}

#[test]
fn sync_refuses_other_namespaces_and_epochs() {
    let mut a = small();
    let mut other = LineageDoc::new("finance", b"x").unwrap();
    let m = a.generate_sync_message(&mut PeerSync::new()).unwrap();
    assert!(matches!(
        other.receive_sync_message(&mut PeerSync::new(), &m),
        Err(SyncError::Namespace { .. })
    ));
    let (header, _) = SyncHeader::parse(&m).unwrap();
    assert_eq!(header.namespace, "default");
    assert_eq!(header.epoch, Epoch::zero());

    let mut next = a.compact_epoch().unwrap();
    let err = next
        .receive_sync_message(&mut PeerSync::new(), &m)
        .unwrap_err();
    match err {
        SyncError::Epoch { ours, theirs } => {
            assert!(ours.supersedes(&theirs));
            assert!(!theirs.supersedes(&ours));
        }
        e => panic!("{e}"),
    }
    let m2 = next.generate_sync_message(&mut PeerSync::new()).unwrap();
    let err = a
        .receive_sync_message(&mut PeerSync::new(), &m2)
        .unwrap_err();
    let SyncError::Epoch { theirs, .. } = err else {
        panic!()
    };
    // The lagging node adopts the newer epoch from the proposal alone.
    let adopted = a.adopt_epoch(&theirs, NOW).unwrap();
    assert_eq!(adopted.heads(), next.heads());
    assert_eq!(adopted.to_bytes(), next.to_bytes());
}

#[test]
fn bad_bytes_are_errors_not_panics() {
    let mut a = small();
    let heads = a.heads();
    for bad in [
        &b""[..],
        b"S",
        b"S\x01",
        b"S\x02\x00",
        b"\x00\x01\x02",
        &[b'S', 1, 7, b'd'][..],
    ] {
        assert!(a.receive_sync_message(&mut PeerSync::new(), bad).is_err());
    }
    assert!(LineageDoc::load("default", b"x", b"garbage").is_err());
    assert!(matches!(
        LineageDoc::new("Bad Namespace", b"x"),
        Err(LoadError::Invalid(_))
    ));
    assert!(matches!(
        LineageDoc::new("default", b""),
        Err(LoadError::Actor)
    ));
    assert!(PeerSync::decode(b"\x00").is_err());
    assert_eq!(a.heads(), heads);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Flipped, truncated and random frames from a peer never panic and never
    /// corrupt the index.
    #[test]
    fn mangled_sync_frames_never_panic(flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>(), junk in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut src = LineageDoc::new("default", b"src").unwrap();
        generate::warehouse(3, 40, 60).apply(&mut src, 50, NOW).unwrap();
        let frame = src.generate_sync_message(&mut PeerSync::new()).unwrap();
        let mut dst = LineageDoc::new("default", b"dst").unwrap();
        // The first message carries no changes; get one that does.
        let mut peer = PeerSync::new();
        let reply = {
            dst.receive_sync_message(&mut peer, &frame).unwrap();
            dst.generate_sync_message(&mut peer).unwrap()
        };
        let mut src_peer = PeerSync::new();
        src.receive_sync_message(&mut src_peer, &reply).ok();
        let with_changes = src.generate_sync_message(&mut src_peer).unwrap_or(frame.clone());
        let mut mangled = with_changes.clone();
        for (pos, byte) in flips {
            let i = pos % mangled.len();
            mangled[i] ^= byte | 1;
        }
        let _ = dst.receive_sync_message(&mut peer, &mangled);
        let _ = dst.receive_sync_message(&mut PeerSync::new(), &with_changes[..cut % with_changes.len()]);
        let _ = dst.receive_sync_message(&mut PeerSync::new(), &junk);
        let _ = LineageDoc::load("default", b"x", &mangled);
        let _ = LineageDoc::load("default", b"x", &junk);
        prop_assert_eq!(dst.index().live_state(), dst.rebuild_index().live_state());
    }
}

#[test]
fn an_epoch_keeps_the_live_state_and_drops_the_history() {
    let mut a = small();
    // Churn: add and remove many things.
    for round in 0..20 {
        a.edit(NOW, |tx| {
            for i in 0..20 {
                tx.upsert(&NewEntity::parse(&format!("table:tmp_{round}_{i}"))?)?;
                tx.link(
                    &id("system:sys_0"),
                    &id(&format!("table:tmp_{round}_{i}")),
                    &EdgeSpec::default(),
                )?;
            }
            Ok(())
        })
        .unwrap();
        a.edit(NOW, |tx| {
            for i in 0..20 {
                tx.remove(&id(&format!("table:tmp_{round}_{i}")))?;
            }
            Ok(())
        })
        .unwrap();
    }
    let b = a.fork(b"node-b/1").unwrap();
    let before = a.to_bytes().len();
    let next = a.compact_epoch().unwrap();
    let after = next.to_bytes().len();
    assert!(after < before, "{after} < {before}");
    assert_eq!(next.epoch().number, 1);
    assert_eq!(next.epoch().base, a.heads());
    assert_eq!(next.index().live_state(), a.index().live_state());
    assert_eq!(next.actor(), a.actor());

    // Every node computes the same epoch document from the same base.
    let from_b = b.adopt_epoch(next.epoch(), NOW).unwrap();
    assert_eq!(from_b.to_bytes(), next.to_bytes());
    assert_eq!(from_b.heads(), next.heads());

    // Queries answer the same.
    let q = Traversal::unbounded();
    let s = id("system:sys_0");
    assert_eq!(
        next.index().downstream(&s, &q).unwrap(),
        a.index().downstream(&s, &q).unwrap()
    );

    // Reloading an epoch document keeps its epoch.
    let reloaded = LineageDoc::load("default", b"node-c/1", &next.to_bytes()).unwrap();
    assert_eq!(reloaded.epoch(), next.epoch());
    assert_eq!(reloaded.epoch_start(), next.heads());
}

#[test]
fn adopting_an_epoch_replays_later_edits() {
    let a = small();
    let proposal = a.propose_epoch();
    let mut b = a.fork(b"node-b/1").unwrap();
    // b keeps editing after the cut, then hears of the epoch.
    b.edit(NOW, |tx| {
        tx.upsert(&NewEntity::parse("table:after_cut")?)?;
        tx.set_attr(&id("system:sys_0"), &Attr::Owner("b".into()))?;
        tx.remove(&id("table:src_0.table_0"))
    })
    .unwrap();
    let adopted_b = b.adopt_epoch(&proposal, NOW).unwrap();
    assert_eq!(adopted_b.index().live_state(), b.index().live_state());
    assert_eq!(adopted_b.epoch(), &proposal);

    // a adopts too (nothing to replay); after syncing, both agree.
    let mut adopted_a = a.adopt_epoch(&proposal, NOW).unwrap();
    let mut adopted_b = adopted_b;
    sync(&mut adopted_a, &mut adopted_b);
    assert_eq!(adopted_a.heads(), adopted_b.heads());
    assert_eq!(adopted_a.index().live_state(), b.index().live_state());

    // Not newer, or a base we do not have: refused.
    assert!(matches!(
        adopted_a.adopt_epoch(&proposal, NOW),
        Err(EpochError::NotNewer { .. })
    ));
    let elsewhere = Epoch::zero().next(vec![stemma_protocol::lineage::Head([7; 32])]);
    assert!(matches!(
        a.adopt_epoch(&elsewhere, NOW),
        Err(EpochError::MissingBase { .. })
    ));
}

/// Runs the sync protocol as the node does, moving between epochs; returns
/// what each side's receives reported (a's, b's).
fn sync_moving(a: &mut LineageDoc, b: &mut LineageDoc) -> (Vec<Received>, Vec<Received>) {
    let (mut ab, mut ba) = (PeerSync::new(), PeerSync::new());
    let (mut at_a, mut at_b) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        let m1 = a.generate_sync_message(&mut ab);
        if let Some(m) = &m1 {
            at_b.push(b.receive_sync(&mut ba, m, NOW).unwrap());
        }
        let m2 = b.generate_sync_message(&mut ba);
        if let Some(m) = &m2 {
            at_a.push(a.receive_sync(&mut ab, m, NOW).unwrap());
        }
        if m1.is_none() && m2.is_none() {
            return (at_a, at_b);
        }
    }
    panic!("sync did not settle");
}

#[test]
fn sync_moves_a_peer_to_a_later_epoch_with_its_later_edits() {
    let a = small();
    let mut b = a.fork(b"node-b/1").unwrap();
    let mut fresh = LineageDoc::new("default", b"node-c/1").unwrap();
    let cut = a.adopt_epoch(&a.propose_epoch(), NOW).unwrap();
    // b edits after the cut, before it hears of it.
    b.edit(NOW, |tx| tx.upsert(&NewEntity::parse("table:after_cut")?))
        .unwrap();
    let mut a = cut;

    // b sends first, on the old epoch: a applies nothing and answers with the
    // new one, which moves b; b's edit then reaches a on the new epoch.
    let (at_b, at_a) = sync_moving(&mut b, &mut a);
    assert!(matches!(at_a[0], Received::PeerBehind), "{:?}", at_a[0]);
    match &at_b[0] {
        Received::Moved { previous } => assert_eq!(previous.epoch(), &Epoch::zero()),
        other => panic!("b did not move: {other:?}"),
    }
    assert_eq!(a.epoch(), b.epoch());
    assert_eq!(a.heads(), b.heads());
    assert!(a.index().entity(&id("table:after_cut")).is_some());

    // A new member's empty document moves at once and fills, even after a
    // peer sent it a bogus later epoch.
    let mut forged = a.generate_sync_message(&mut PeerSync::new()).unwrap();
    let at = 3 + "default".len();
    forged[at..at + 8].copy_from_slice(&9u64.to_be_bytes());
    assert!(matches!(
        fresh
            .receive_sync(&mut PeerSync::new(), &forged, NOW)
            .unwrap(),
        Received::Moved { .. }
    ));
    assert_eq!(fresh.epoch().number, 9);
    let (_, at_fresh) = sync_moving(&mut a, &mut fresh);
    assert!(matches!(at_fresh[0], Received::Moved { .. }));
    assert_eq!(fresh.heads(), a.heads());
    assert_eq!(fresh.index().live_state(), a.index().live_state());

    // A node lacking the cut's base cannot move: nothing applied, nothing lost.
    let mut stray = LineageDoc::new("default", b"node-d/1").unwrap();
    stray
        .edit(NOW, |tx| tx.upsert(&NewEntity::parse("table:stray")?))
        .unwrap();
    let heads = stray.heads();
    let message = a.generate_sync_message(&mut PeerSync::new()).unwrap();
    let received = stray
        .receive_sync(&mut PeerSync::new(), &message, NOW)
        .unwrap();
    assert!(matches!(
        received,
        Received::CannotMove(EpochError::MissingBase { .. })
    ));
    assert_eq!(stray.heads(), heads);
    assert_eq!(stray.epoch(), &Epoch::zero());
}

#[test]
fn a_node_on_a_losing_epoch_moves_to_the_winner_and_keeps_its_edits() {
    let old = small();
    let mut left = old.fork(b"left/1").unwrap();
    let mut right = old.fork(b"right/1").unwrap();
    // Two sides of a partition edit and each cut an epoch.
    left.edit(NOW, |tx| tx.upsert(&NewEntity::parse("table:left")?))
        .unwrap();
    right
        .edit(NOW, |tx| tx.upsert(&NewEntity::parse("table:right")?))
        .unwrap();
    let mut e_left = left.compact_epoch().unwrap();
    let mut e_right = right.compact_epoch().unwrap();
    e_left
        .edit(NOW, |tx| tx.upsert(&NewEntity::parse("table:left_after")?))
        .unwrap();
    e_right
        .edit(NOW, |tx| tx.upsert(&NewEntity::parse("table:right_after")?))
        .unwrap();
    let left_wins = e_left.epoch().supersedes(e_right.epoch());
    let (winner, loser) = if left_wins {
        (&e_left, &e_right)
    } else {
        (&e_right, &e_left)
    };
    let (mut loser_old, mut winner_old) = if left_wins {
        (right.fork(b"right/2").unwrap(), left.fork(b"w").unwrap())
    } else {
        (left.fork(b"left/2").unwrap(), right.fork(b"w").unwrap())
    };
    // The loser syncs its old epoch with the winner's side to get the winning
    // base, adopts it, then replays what it wrote on the losing epoch.
    sync(&mut loser_old, &mut winner_old);
    let mut moved = loser_old.adopt_epoch(winner.epoch(), NOW).unwrap();
    loser
        .replay_since(&loser.epoch_start(), &mut moved, NOW)
        .unwrap();
    let mut winner = winner.fork(b"w2").unwrap();
    sync(&mut winner, &mut moved);
    let live = moved.index().live_state();
    for name in [
        "table:left",
        "table:right",
        "table:left_after",
        "table:right_after",
    ] {
        assert!(live.entities.contains_key(&id(name)), "{name}");
    }
}

#[test]
fn a_field_set_back_within_one_batch_keeps_the_later_value() {
    let mut d = LineageDoc::new("default", b"node-a/1").unwrap();
    let t = id("table:db.orders");
    let s = id("table:db.raw");
    let owner = |o: &str| Op::SetAttr {
        id: t.clone(),
        attr: Attr::Owner(o.into()),
    };
    let tag = Op::SetAttr {
        id: t.clone(),
        attr: Attr::Tag("pii".into()),
    };
    let link = Op::Link {
        source: s.clone(),
        target: t.clone(),
        spec: EdgeSpec::default(),
    };
    d.apply(
        NOW,
        &[
            Op::Upsert(NewEntity::parse("table:db.orders").unwrap()),
            owner("ann"),
            tag.clone(),
            link.clone(),
        ],
    )
    .unwrap();
    // Each value is changed and then set back to what is stored, in one batch.
    d.apply(
        NOW + 1,
        &[
            owner("bob"),
            owner("ann"),
            Op::UnsetAttr {
                id: t.clone(),
                key: AttrKey::Tag("pii".into()),
            },
            tag.clone(),
            Op::Unlink {
                source: s.clone(),
                target: t.clone(),
            },
            link.clone(),
        ],
    )
    .unwrap();
    let record = d.index().entity(&t).unwrap();
    assert_eq!(record.attributes.owner.as_deref(), Some("ann"));
    assert!(record.attributes.tags.contains("pii"));
    assert!(d.index().edge(&s, &t).is_some());
    // Asserting the stored values again changes nothing.
    let again = d
        .apply(
            NOW + 2,
            &[
                Op::Upsert(NewEntity::parse("table:db.orders").unwrap()),
                owner("ann"),
                tag,
                link,
            ],
        )
        .unwrap();
    assert!(again.head.is_none(), "an unchanged batch made a change");
}

#[test]
fn a_received_change_says_when_its_author_made_it() {
    let mut a = LineageDoc::new("default", b"node-a/1").unwrap();
    let mut b = LineageDoc::new("default", b"node-b/1").unwrap();
    let made = NOW + 1_234;
    a.apply(made, &[Op::Upsert(NewEntity::parse("table:a").unwrap())])
        .unwrap();
    let (_, at_b) = sync_moving(&mut a, &mut b);
    let made_at: Vec<i64> = at_b
        .into_iter()
        .flat_map(|r| match r {
            Received::Applied { made_at, .. } => made_at,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    // To the millisecond, once: the change arrived in one message.
    assert_eq!(made_at, [made]);
}
