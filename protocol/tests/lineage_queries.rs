//! Lineage queries: worked examples on a small graph, one test per query.
//! (`lineage_reference.rs` checks every query against a brute-force
//! implementation on random graphs.)

use stemma_protocol::lineage::{
    AuditOptions, EdgeKind, EdgeSpec, EntityId, EntityKind, FindingKind, LineageDoc, NamingRule,
    NamingRules, NewEntity, PageRequest, PathOptions, QueryError, RankOptions, RecoveryOptions,
    RootCauseOptions, RunState, RunStatus, Traversal,
};

const NOW: i64 = 1_700_000_000_000;

fn id(s: &str) -> EntityId {
    EntityId::parse(s).unwrap()
}

fn ids(page: &[stemma_protocol::lineage::Reached]) -> Vec<(&str, u32)> {
    page.iter().map(|r| (r.id.as_str(), r.distance)).collect()
}

/// sys:a(3) → table:b(3) → table:c(-) → report:d(1); table:b → report:e(1);
/// job:j → table:b (failed); table:x ⇄ table:y, table:b → table:x; table:lonely.
fn example() -> LineageDoc {
    let mut d = LineageDoc::new("default", b"example").unwrap();
    d.edit(NOW, |tx| {
        for (name, level) in [
            ("system:a", Some(3)),
            ("table:b", Some(3)),
            ("table:c", None),
            ("report:d", Some(1)),
            ("report:e", Some(1)),
            ("job:j", None),
            ("table:x", None),
            ("table:y", None),
            ("table:lonely", None),
            ("table:Bad-Name", None),
        ] {
            let mut e = NewEntity::parse(name)?;
            e.attributes.level = level;
            tx.upsert(&e)?;
        }
        let link = |s: &str, t: &str, k: EdgeKind| (id(s), id(t), EdgeSpec::of(k));
        for (s, t, spec) in [
            link("system:a", "table:b", EdgeKind::Mapping),
            link("table:b", "table:c", EdgeKind::Transformation),
            link("table:c", "report:d", EdgeKind::Application),
            link("table:b", "report:e", EdgeKind::Application),
            link("job:j", "table:b", EdgeKind::Scheduling),
            link("table:b", "table:x", EdgeKind::Mapping),
            link("table:x", "table:y", EdgeKind::Mapping),
            link("table:y", "table:x", EdgeKind::Mapping),
        ] {
            tx.link(&s, &t, &spec)?;
        }
        tx.set_run(
            &id("job:j"),
            &RunState {
                status: RunStatus::Fail,
                time: NOW,
                message: Some("out of memory".into()),
            },
        )
    })
    .unwrap();
    d
}

#[test]
fn downstream_and_upstream_with_depth_and_filters() {
    let d = example();
    let ix = d.index();
    let b = id("table:b");
    let down1 = ix.downstream(&b, &Traversal::depth(1)).unwrap();
    assert_eq!(
        ids(&down1.items),
        [("report:e", 1), ("table:c", 1), ("table:x", 1)]
    );
    assert!(down1.items.iter().all(|r| r.via.as_ref() == Some(&b)));
    let all = ix.downstream(&b, &Traversal::unbounded()).unwrap();
    assert_eq!(all.total, 5);
    assert_eq!(
        all.items.last().map(|r| (r.id.as_str(), r.distance)),
        Some(("table:y", 2))
    );
    let reports = ix
        .downstream(
            &b,
            &Traversal::unbounded().entity_kinds(vec![EntityKind::Report]),
        )
        .unwrap();
    assert_eq!(ids(&reports.items), [("report:e", 1), ("report:d", 2)]);
    let mapping = ix
        .downstream(
            &b,
            &Traversal::unbounded().edge_kinds(vec![EdgeKind::Mapping]),
        )
        .unwrap();
    assert_eq!(ids(&mapping.items), [("table:x", 1), ("table:y", 2)]);
    let up = ix
        .upstream(&id("report:d"), &Traversal::unbounded())
        .unwrap();
    assert_eq!(
        ids(&up.items),
        [
            ("table:c", 1),
            ("table:b", 2),
            ("job:j", 3),
            ("system:a", 3)
        ]
    );
    assert_eq!(
        ix.downstream(&id("table:nope"), &Traversal::depth(1))
            .unwrap_err(),
        QueryError::UnknownEntity(id("table:nope"))
    );
}

#[test]
fn pages_follow_the_cursor_and_bad_cursors_are_refused() {
    let d = example();
    let b = id("table:b");
    let mut seen = Vec::new();
    let mut page = PageRequest::first(2);
    loop {
        let p = d
            .index()
            .downstream(&b, &Traversal::unbounded().page(page.clone()))
            .unwrap();
        assert_eq!(p.total, 5);
        assert!(p.items.len() <= 2);
        seen.extend(p.items.iter().map(|r| r.id.to_string()));
        match p.next {
            Some(c) => page = PageRequest::after(2, c),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["report:e", "table:c", "table:x", "report:d", "table:y"]
    );
    let bad = PageRequest::after(2, stemma_protocol::lineage::Cursor::parse("zz"));
    assert_eq!(
        d.index()
            .downstream(&b, &Traversal::unbounded().page(bad))
            .unwrap_err(),
        QueryError::BadCursor
    );
}

#[test]
fn impact_and_path_give_shortest_paths() {
    let d = example();
    let ix = d.index();
    let impact = ix.impact(&id("system:a"), &Traversal::unbounded()).unwrap();
    let to_d = impact
        .items
        .iter()
        .find(|i| i.id == id("report:d"))
        .unwrap();
    assert_eq!(to_d.distance, 3);
    let path: Vec<&str> = to_d.path.iter().map(|e| e.as_str()).collect();
    assert_eq!(path, ["system:a", "table:b", "table:c", "report:d"]);
    let p = ix
        .path(&id("job:j"), &id("table:y"), &PathOptions::default())
        .unwrap()
        .unwrap();
    let path: Vec<&str> = p.entities.iter().map(|e| e.as_str()).collect();
    assert_eq!(path, ["job:j", "table:b", "table:x", "table:y"]);
    assert_eq!(p.edges.len(), 3);
    assert_eq!(p.edges[0].spec.kind, EdgeKind::Scheduling);
    assert!(
        ix.path(&id("report:d"), &id("system:a"), &PathOptions::default())
            .unwrap()
            .is_none()
    );
    let short = PathOptions {
        max_depth: Some(2),
        ..PathOptions::default()
    };
    assert!(
        ix.path(&id("job:j"), &id("table:y"), &short)
            .unwrap()
            .is_none()
    );
}

#[test]
fn rank_islands_and_statistics() {
    let d = example();
    let ix = d.index();
    let rank = ix.rank(&RankOptions::default()).unwrap();
    let top: Vec<(&str, u32)> = rank
        .items
        .iter()
        .take(3)
        .map(|r| (r.id.as_str(), r.reach))
        .collect();
    assert_eq!(top, [("job:j", 6), ("system:a", 6), ("table:b", 5)]);
    let x = rank.items.iter().find(|r| r.id == id("table:x")).unwrap();
    assert_eq!(
        (x.reach, x.direct),
        (1, 1),
        "a cycle reaches its other member"
    );
    let islands = ix.islands(&[], &PageRequest::default()).unwrap();
    let islands: Vec<&str> = islands.items.iter().map(|e| e.as_str()).collect();
    assert_eq!(islands, ["table:bad-name", "table:lonely"]);
    let s = ix.statistics();
    assert_eq!((s.entities, s.edges, s.dangling_edges), (10, 8, 0));
    assert_eq!(
        (s.by_role.source, s.by_role.sink, s.by_role.isolated),
        (2, 2, 2)
    );
    assert_eq!(s.by_kind["table"].total, 6);
    assert_eq!(s.coverage.with_lineage, 8);
    assert!((s.coverage.ratio - 0.8).abs() < 1e-9);
    assert_eq!(s.max_out_degree, 3);
    assert_eq!(s.edges_by_kind["mapping"], 4);
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["coverage"]["total"], 10);
}

#[test]
fn root_cause_puts_failed_runs_first() {
    let d = example();
    let rc = d
        .index()
        .root_cause(&id("report:d"), &RootCauseOptions::default())
        .unwrap();
    let first = &rc.candidates.items[0];
    assert_eq!(first.id, id("job:j"));
    assert!(first.suspect);
    assert_eq!(
        first.run.as_ref().unwrap().message.as_deref(),
        Some("out of memory")
    );
    assert_eq!(first.via, Some(id("table:b")));
    assert_eq!(rc.candidates.total, 4);
    assert!(rc.candidates.items[1..].iter().all(|c| !c.suspect));
}

#[test]
fn recovery_order_is_topological_and_reports_cycles() {
    let d = example();
    let plan = d
        .index()
        .recovery_order(&id("system:a"), &RecoveryOptions::default())
        .unwrap();
    let steps: Vec<(&str, u32)> = plan
        .steps
        .items
        .iter()
        .map(|s| (s.id.as_str(), s.stage))
        .collect();
    assert_eq!(
        steps,
        [
            ("table:b", 0),
            ("report:e", 1),
            ("table:c", 1),
            ("table:x", 1),
            ("table:y", 1),
            ("report:d", 2)
        ]
    );
    assert_eq!(plan.cycles, vec![vec![id("table:x"), id("table:y")]]);
    assert_eq!(plan.steps.items[3].cycle, Some(0));
}

#[test]
fn audit_finds_edges_and_paths_that_lower_the_level() {
    let d = example();
    let findings = d.index().audit(&AuditOptions::default()).unwrap();
    let got: Vec<(FindingKind, &str, &str, i64, i64, usize)> = findings
        .items
        .iter()
        .map(|f| {
            (
                f.kind,
                f.from.as_str(),
                f.to.as_str(),
                f.from_level,
                f.to_level,
                f.path.len(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (FindingKind::Edge, "table:b", "report:e", 3, 1, 2),
            (FindingKind::Path, "table:b", "report:d", 3, 1, 3),
        ]
    );
}

#[test]
fn naming_rules_report_violators() {
    let d = example();
    let rules = NamingRules::new(&[NamingRule {
        kind: EntityKind::Table,
        pattern: "[a-z][a-z0-9_.]*".into(),
    }])
    .unwrap();
    let v = d
        .index()
        .naming_violations(&rules, &PageRequest::default())
        .unwrap();
    assert_eq!(v.total, 1);
    assert_eq!(v.items[0].name, "Bad-Name");
    assert!(matches!(
        NamingRules::new(&[NamingRule {
            kind: EntityKind::Job,
            pattern: "(".into()
        }]),
        Err(QueryError::BadRule { .. })
    ));
}
