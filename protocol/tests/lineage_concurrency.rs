//! The concurrency rules of the lineage document (see the module docs of
//! `stemma_protocol::lineage`), one test per rule: two replicas fork, edit
//! without seeing each other, then merge both ways.

use stemma_protocol::lineage::{
    Attr, AttrKey, EdgeKind, EdgeSpec, EntityField, EntityId, FieldValue, LineageDoc, NewEntity,
    RunState, RunStatus, Traversal,
};

const NOW: i64 = 1_700_000_000_000;

fn id(s: &str) -> EntityId {
    EntityId::parse(s).unwrap()
}

fn base() -> LineageDoc {
    let mut d = LineageDoc::new("default", b"base").unwrap();
    d.edit(NOW, |tx| {
        tx.upsert(&NewEntity::parse("table:sales.orders")?)?;
        tx.upsert(&NewEntity::parse("column:sales.orders.id")?)?;
        tx.upsert(&NewEntity::parse("report:revenue")?)?;
        tx.upsert(&NewEntity::parse("job:load")?)?;
        tx.link(
            &id("table:sales.orders"),
            &id("report:revenue"),
            &EdgeSpec::default(),
        )?;
        tx.link(
            &id("job:load"),
            &id("table:sales.orders"),
            &EdgeSpec::of(EdgeKind::Scheduling),
        )
    })
    .unwrap();
    d
}

/// Forks two replicas of `base` with different actors.
fn fork2(base: &LineageDoc) -> (LineageDoc, LineageDoc) {
    (base.fork(b"node-a").unwrap(), base.fork(b"node-b").unwrap())
}

/// Merges both ways and checks the replicas agree.
fn converge(a: &mut LineageDoc, b: &mut LineageDoc) {
    let a0 = a.fork(b"tmp").unwrap();
    a.merge(b).unwrap();
    b.merge(&a0).unwrap();
    assert_eq!(a.heads(), b.heads());
    assert_eq!(a.index().live_state(), b.index().live_state());
    assert_eq!(a.index().live_state(), a.rebuild_index().live_state());
    assert_eq!(b.index().live_state(), b.rebuild_index().live_state());
}

#[test]
fn concurrent_edits_of_one_field_pick_one_winner_and_keep_the_conflict_visible() {
    let (mut a, mut b) = fork2(&base());
    let orders = id("table:sales.orders");
    a.edit(NOW, |tx| tx.set_attr(&orders, &Attr::Owner("alice".into())))
        .unwrap();
    b.edit(NOW, |tx| tx.set_attr(&orders, &Attr::Owner("bob".into())))
        .unwrap();
    converge(&mut a, &mut b);

    let owner = a.index().entity(&orders).unwrap().attributes.owner.unwrap();
    let field = EntityField::Attr(AttrKey::Owner);
    let conflicts = a.conflicts(&orders, &field);
    assert_eq!(conflicts.len(), 2, "both values are kept");
    assert_eq!(
        conflicts[0],
        FieldValue::Text(owner.clone()),
        "the winner comes first"
    );
    assert_eq!(
        b.conflicts(&orders, &field),
        conflicts,
        "every node sees the same"
    );
    assert_eq!(a.conflicted_fields(&orders), vec![field.clone()]);

    // Writing the field again resolves the conflict.
    a.edit(NOW, |tx| tx.set_attr(&orders, &Attr::Owner("carol".into())))
        .unwrap();
    assert_eq!(
        a.conflicts(&orders, &field),
        vec![FieldValue::Text("carol".into())]
    );
    assert!(a.conflicted_fields(&orders).is_empty());
}

#[test]
fn concurrent_tags_both_survive() {
    let (mut a, mut b) = fork2(&base());
    let orders = id("table:sales.orders");
    a.edit(NOW, |tx| tx.set_attr(&orders, &Attr::Tag("pii".into())))
        .unwrap();
    b.edit(NOW, |tx| tx.set_attr(&orders, &Attr::Tag("gold".into())))
        .unwrap();
    converge(&mut a, &mut b);
    let tags = a.index().entity(&orders).unwrap().attributes.tags;
    assert_eq!(tags.into_iter().collect::<Vec<_>>(), ["gold", "pii"]);
}

#[test]
fn the_same_entity_created_on_two_nodes_offline_is_one_entity_merged_field_by_field() {
    let empty = LineageDoc::new("default", b"empty").unwrap();
    let (mut a, mut b) = fork2(&empty);
    a.edit(NOW, |tx| {
        let mut e = NewEntity::parse("Table:Sales.Orders")?;
        e.attributes.owner = Some("finance".into());
        tx.upsert(&e)
    })
    .unwrap();
    b.edit(NOW, |tx| {
        let mut e = NewEntity::parse("table:sales.orders")?;
        e.attributes.level = Some(3);
        tx.upsert(&e)
    })
    .unwrap();
    converge(&mut a, &mut b);
    assert_eq!(a.index().entity_count(), 1);
    let e = a.index().entity(&id("table:SALES.orders")).unwrap();
    assert_eq!(e.attributes.owner.as_deref(), Some("finance"));
    assert_eq!(e.attributes.level, Some(3));
    // The display names differ: a visible conflict with one winner.
    assert_eq!(a.conflicts(&e.id, &EntityField::Name).len(), 2);
}

#[test]
fn remove_wins_over_a_concurrent_attribute_edit() {
    let (mut a, mut b) = fork2(&base());
    let orders = id("table:sales.orders");
    a.edit(NOW, |tx| tx.remove(&orders)).unwrap();
    b.edit(NOW, |tx| {
        tx.set_attr(&orders, &Attr::Owner("bob".into()))?;
        tx.set_run(
            &orders,
            &RunState {
                status: RunStatus::Complete,
                time: NOW,
                message: None,
            },
        )
    })
    .unwrap();
    converge(&mut a, &mut b);
    assert!(!a.index().contains(&orders));
    assert!(
        !a.index().contains(&id("column:sales.orders.id")),
        "columns go with their table"
    );

    // Creating it again starts clean: the stray owner does not come back.
    a.edit(NOW, |tx| {
        tx.upsert(&NewEntity::parse("table:sales.orders")?)
    })
    .unwrap();
    let e = a.index().entity(&orders).unwrap();
    assert_eq!(e.attributes.owner, None);
    assert_eq!(e.run, None);
}

#[test]
fn remove_wins_over_a_concurrent_upsert_of_the_existing_entity() {
    let (mut a, mut b) = fork2(&base());
    let orders = id("table:sales.orders");
    a.edit(NOW, |tx| tx.remove(&orders)).unwrap();
    b.edit(NOW, |tx| {
        let mut e = NewEntity::parse("table:sales.orders")?;
        e.attributes.owner = Some("bob".into());
        tx.upsert(&e)
    })
    .unwrap();
    converge(&mut a, &mut b);
    assert!(!a.index().contains(&orders));
}

#[test]
fn a_creation_concurrent_with_a_remove_survives() {
    let orders = id("table:sales.orders");
    let mut a = base().fork(b"node-a").unwrap();
    a.edit(NOW, |tx| {
        tx.set_attr(&orders, &Attr::Description("old".into()))
    })
    .unwrap();
    // b removes and creates again; c never had it and creates it.
    let mut b = a.fork(b"node-b").unwrap();
    let mut c = LineageDoc::new("default", b"node-c").unwrap();
    a.edit(NOW, |tx| tx.remove(&orders)).unwrap();
    b.edit(NOW, |tx| tx.remove(&orders)).unwrap();
    b.edit(NOW, |tx| {
        let mut e = NewEntity::parse("table:sales.orders")?;
        e.attributes.owner = Some("bob".into());
        tx.upsert(&e)
    })
    .unwrap();
    c.edit(NOW, |tx| {
        let mut e = NewEntity::parse("Table:Sales.Orders")?;
        e.attributes.level = Some(2);
        tx.upsert(&e)
    })
    .unwrap();
    let mut a2 = a.fork(b"node-a2").unwrap();
    converge(&mut a, &mut b);
    let e = a
        .index()
        .entity(&orders)
        .expect("the new incarnation survives");
    assert_eq!(e.attributes.owner.as_deref(), Some("bob"));
    assert_eq!(
        e.attributes.description, None,
        "what the remover deleted stays deleted"
    );
    converge(&mut a2, &mut c);
    let e = a2
        .index()
        .entity(&orders)
        .expect("a creation elsewhere survives");
    assert_eq!(e.attributes.level, Some(2));
}

#[test]
fn relink_after_unlink_starts_afresh() {
    let mut d = base();
    let (s, t) = (id("table:sales.orders"), id("report:revenue"));
    d.edit(NOW, |tx| {
        tx.link(
            &s,
            &t,
            &EdgeSpec {
                rule: Some("select 1".into()),
                ..EdgeSpec::default()
            },
        )?;
        tx.set_edge_run(
            &s,
            &t,
            &RunState {
                status: RunStatus::Fail,
                time: NOW,
                message: Some("boom".into()),
            },
        )
    })
    .unwrap();
    d.edit(NOW, |tx| tx.unlink(&s, &t)).unwrap();
    assert!(d.index().edge(&s, &t).is_none());
    assert!(
        d.edit(NOW, |tx| tx.unlink(&s, &t)).is_err(),
        "unlinking twice is an error"
    );
    d.edit(NOW, |tx| tx.link(&s, &t, &EdgeSpec::of(EdgeKind::Cleaning)))
        .unwrap();
    let e = d.index().edge(&s, &t).unwrap();
    assert_eq!(
        e.spec,
        EdgeSpec::of(EdgeKind::Cleaning),
        "the old rule is gone"
    );
    assert_eq!(e.run, None, "the old run is gone");
}

#[test]
fn a_link_concurrent_with_an_unlink_survives() {
    let (mut a, mut b) = fork2(&base());
    let (s, t) = (id("table:sales.orders"), id("report:revenue"));
    a.edit(NOW, |tx| tx.unlink(&s, &t)).unwrap();
    b.edit(NOW, |tx| {
        tx.link(
            &s,
            &t,
            &EdgeSpec {
                volume: Some(10),
                ..EdgeSpec::default()
            },
        )
    })
    .unwrap();
    converge(&mut a, &mut b);
    assert_eq!(a.index().edge(&s, &t).unwrap().spec.volume, Some(10));
}

#[test]
fn a_run_report_concurrent_with_an_unlink_does_not_revive_the_edge() {
    let (mut a, mut b) = fork2(&base());
    let (s, t) = (id("table:sales.orders"), id("report:revenue"));
    a.edit(NOW, |tx| tx.unlink(&s, &t)).unwrap();
    b.edit(NOW, |tx| {
        tx.set_edge_run(
            &s,
            &t,
            &RunState {
                status: RunStatus::Complete,
                time: NOW,
                message: None,
            },
        )
    })
    .unwrap();
    converge(&mut a, &mut b);
    assert!(a.index().edge(&s, &t).is_none());
    // Re-linking does not bring the stray run back.
    a.edit(NOW, |tx| tx.link(&s, &t, &EdgeSpec::default()))
        .unwrap();
    assert_eq!(a.index().edge(&s, &t).unwrap().run, None);
}

#[test]
fn a_dangling_edge_is_hidden_and_reappears_with_its_endpoint() {
    let (mut a, mut b) = fork2(&base());
    let (orders, dash) = (id("table:sales.orders"), id("dashboard:sales"));
    a.edit(NOW, |tx| tx.upsert(&NewEntity::parse("dashboard:sales")?))
        .unwrap();
    b.merge(&a).unwrap();
    a.edit(NOW, |tx| tx.remove(&dash)).unwrap();
    b.edit(NOW, |tx| tx.link(&orders, &dash, &EdgeSpec::default()))
        .unwrap();
    converge(&mut a, &mut b);

    assert!(!a.index().contains(&dash));
    let down = a
        .index()
        .downstream(&orders, &Traversal::unbounded())
        .unwrap();
    assert!(
        down.items.iter().all(|r| r.id != dash),
        "hidden from queries"
    );
    let stats = a.index().statistics();
    assert_eq!(stats.dangling_edges, 1);
    assert!(
        a.index()
            .live_state()
            .edges
            .contains_key(&(orders.clone(), dash.clone())),
        "but kept"
    );

    a.edit(NOW, |tx| tx.upsert(&NewEntity::parse("dashboard:sales")?))
        .unwrap();
    let down = a
        .index()
        .downstream(&orders, &Traversal::unbounded())
        .unwrap();
    assert!(
        down.items.iter().any(|r| r.id == dash),
        "back with its endpoint"
    );
    assert_eq!(a.index().statistics().dangling_edges, 0);
}

#[test]
fn removing_an_entity_removes_its_columns_and_every_edge_it_knows() {
    let mut d = base();
    let orders = id("table:sales.orders");
    d.edit(NOW, |tx| {
        tx.link(
            &id("column:sales.orders.id"),
            &id("column:mart.rev.id"),
            &EdgeSpec::default(),
        )?;
        // Linked in the same batch as the removal: the batch knows it.
        tx.link(&id("job:other"), &orders, &EdgeSpec::default())?;
        tx.remove(&orders)
    })
    .unwrap();
    let stats = d.index().statistics();
    assert_eq!(stats.dangling_edges, 0);
    assert!(!d.index().contains(&id("column:sales.orders.id")));
    assert!(d.index().contains(&id("column:mart.rev.id")));
    assert!(
        d.index().contains(&id("table:mart.rev")),
        "a column's table is created with it"
    );
    assert_eq!(d.index().live_state().edges.len(), 0);
}

#[test]
fn concurrent_run_reports_resolve_to_the_latest_run() {
    let (mut a, mut b) = fork2(&base());
    let job = id("job:load");
    let late = RunState {
        status: RunStatus::Fail,
        time: NOW + 5_000,
        message: Some("disk full".into()),
    };
    let early = RunState {
        status: RunStatus::Complete,
        time: NOW,
        message: None,
    };
    // Whatever Automerge's winner, the later run wins: try both assignments.
    for (x, y) in [(&late, &early), (&early, &late)] {
        let (mut a2, mut b2) = (a.fork(b"a2").unwrap(), b.fork(b"b2").unwrap());
        a2.edit(NOW, |tx| tx.set_run(&job, x)).unwrap();
        b2.edit(NOW, |tx| tx.set_run(&job, y)).unwrap();
        converge(&mut a2, &mut b2);
        assert_eq!(a2.index().entity(&job).unwrap().run.as_ref(), Some(&late));
        assert_eq!(
            a2.conflicts(&job, &EntityField::Run)[0],
            FieldValue::Run(late.clone())
        );
    }
    converge(&mut a, &mut b);
}

#[test]
fn a_third_concurrent_run_counts_even_when_it_loses_automerges_choice() {
    // Automerge reports no change when a key already in conflict gains a
    // value that does not become its winner; the index must still see it.
    let base = base();
    let job = id("job:load");
    let run = |ms, status| RunState {
        status,
        time: NOW + ms,
        message: None,
    };
    for actors in [[b"x1", b"x2", b"x3"], [b"x3", b"x2", b"x1"]] {
        for latest in 0..3 {
            let mut replicas: Vec<LineageDoc> =
                actors.iter().map(|a| base.fork(*a).unwrap()).collect();
            for (i, r) in replicas.iter_mut().enumerate() {
                let ms = if i == latest { 9_000 } else { i as i64 };
                r.edit(NOW, |tx| tx.set_run(&job, &run(ms, RunStatus::Complete)))
                    .unwrap();
            }
            for order in [[0, 1, 2], [0, 2, 1], [1, 2, 0], [2, 1, 0]] {
                let mut merged = replicas[order[0]].fork(b"merged").unwrap();
                merged.merge(&replicas[order[1]]).unwrap();
                merged.merge(&replicas[order[2]]).unwrap();
                assert_eq!(
                    merged.index().entity(&job).unwrap().run,
                    Some(run(9_000, RunStatus::Complete)),
                    "actors {actors:?}, latest on {latest}, merged in {order:?}"
                );
                assert_eq!(
                    merged.index().live_state(),
                    merged.rebuild_index().live_state()
                );
            }
        }
    }
}

#[test]
fn retire_and_restore_are_soft_and_cover_columns() {
    let mut d = base();
    let orders = id("table:sales.orders");
    d.edit(NOW + 1, |tx| tx.retire(&orders)).unwrap();
    let e = d.index().entity(&orders).unwrap();
    assert_eq!(e.retired, Some(NOW + 1));
    assert_eq!(
        d.index()
            .entity(&id("column:sales.orders.id"))
            .unwrap()
            .retired,
        Some(NOW + 1)
    );
    let down = d
        .index()
        .downstream(&orders, &Traversal::unbounded())
        .unwrap();
    assert_eq!(down.total, 1, "retired entities keep their lineage");
    d.edit(NOW, |tx| tx.restore(&orders)).unwrap();
    assert_eq!(d.index().entity(&orders).unwrap().retired, None);
    assert_eq!(
        d.index()
            .entity(&id("column:sales.orders.id"))
            .unwrap()
            .retired,
        None
    );
    assert_eq!(d.index().statistics().retired, 0);
}

#[test]
fn edge_definitions_are_one_register() {
    let (mut a, mut b) = fork2(&base());
    let (s, t) = (id("table:sales.orders"), id("report:revenue"));
    a.edit(NOW, |tx| {
        tx.link(
            &s,
            &t,
            &EdgeSpec {
                rule: Some("a".into()),
                ..EdgeSpec::default()
            },
        )
    })
    .unwrap();
    b.edit(NOW, |tx| {
        tx.link(
            &s,
            &t,
            &EdgeSpec {
                volume: Some(7),
                ..EdgeSpec::default()
            },
        )
    })
    .unwrap();
    converge(&mut a, &mut b);
    let winner = a.index().edge(&s, &t).unwrap().spec;
    let all = a.edge_conflicts(&s, &t);
    assert_eq!(all.len(), 2);
    assert_eq!(all[0], winner);
}
