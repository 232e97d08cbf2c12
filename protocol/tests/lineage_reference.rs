//! Every lineage query checked against a brute-force reference implementation
//! (written here, from the live state, as naively as possible) on random
//! graphs — DAGs and graphs with cycles, self-loops and dangling edges — and on
//! a generated warehouse. Unbounded answers are read page by page with small
//! pages, so the cursors are checked too.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use proptest::prelude::*;
use stemma_protocol::lineage::generate::SplitMix64;
use stemma_protocol::lineage::{
    AuditOptions, EdgeKind, EdgeSpec, EntityId, EntityKind, FindingKind, GraphIndex, LineageDoc,
    LiveState, NamingRule, NamingRules, NewEntity, Page, PageRequest, PathOptions, RankOptions,
    RecoveryOptions, RootCauseOptions, RunState, RunStatus, Traversal,
};

const NOW: i64 = 1_700_000_000_000;

fn id(s: &str) -> EntityId {
    EntityId::parse(s).unwrap()
}

struct Reference {
    state: LiveState,
    /// Visible edges (source, target, kind).
    edges: Vec<(EntityId, EntityId, EdgeKind)>,
}

impl Reference {
    fn new(state: LiveState) -> Self {
        let edges = state
            .visible_edges()
            .map(|e| (e.source.clone(), e.target.clone(), e.spec.kind.clone()))
            .collect();
        Self { state, edges }
    }

    fn oriented(&self, down: bool, kinds: &[EdgeKind]) -> Vec<(EntityId, EntityId)> {
        self.edges
            .iter()
            .filter(|(_, _, k)| kinds.is_empty() || kinds.contains(k))
            .map(|(s, t, _)| {
                if down {
                    (s.clone(), t.clone())
                } else {
                    (t.clone(), s.clone())
                }
            })
            .collect()
    }

    /// Shortest hop counts by relaxing every edge |V| times.
    fn distances(
        &self,
        start: &EntityId,
        down: bool,
        depth: Option<u32>,
        kinds: &[EdgeKind],
    ) -> BTreeMap<EntityId, u32> {
        let edges = self.oriented(down, kinds);
        let mut dist = BTreeMap::new();
        dist.insert(start.clone(), 0u32);
        for _ in 0..=self.state.entities.len() {
            for (u, v) in &edges {
                if let Some(&du) = dist.get(u)
                    && depth.is_none_or(|d| du < d)
                    && dist.get(v).is_none_or(|&dv| du + 1 < dv)
                {
                    dist.insert(v.clone(), du + 1);
                }
            }
        }
        dist
    }

    fn previous(
        &self,
        v: &EntityId,
        dist: &BTreeMap<EntityId, u32>,
        down: bool,
        kinds: &[EdgeKind],
    ) -> Option<EntityId> {
        let dv = *dist.get(v)?;
        if dv == 0 {
            return None;
        }
        self.oriented(down, kinds)
            .into_iter()
            .filter(|(a, b)| b == v && dist.get(a) == Some(&(dv - 1)))
            .map(|(a, _)| a)
            .min()
    }

    fn path(
        &self,
        v: &EntityId,
        dist: &BTreeMap<EntityId, u32>,
        down: bool,
        kinds: &[EdgeKind],
    ) -> Vec<EntityId> {
        let mut path = vec![v.clone()];
        let mut cur = v.clone();
        while let Some(p) = self.previous(&cur, dist, down, kinds) {
            path.push(p.clone());
            cur = p;
        }
        path.reverse();
        path
    }

    fn reachable(
        &self,
        start: &EntityId,
        kinds: &[EdgeKind],
        within: Option<&BTreeSet<EntityId>>,
    ) -> BTreeSet<EntityId> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![start.clone()];
        while let Some(u) = stack.pop() {
            for (a, b) in self.oriented(true, kinds) {
                if a == u && within.is_none_or(|w| w.contains(&b)) && seen.insert(b.clone()) {
                    stack.push(b);
                }
            }
        }
        seen
    }

    fn effective_run(&self, v: &EntityId) -> Option<RunState> {
        if let Some(r) = &self.state.entities[v].run {
            return Some(r.clone());
        }
        self.state
            .visible_edges()
            .filter(|e| &e.target == v)
            .filter_map(|e| e.run.clone())
            .max_by(|a, b| (a.time, &a.status, &a.message).cmp(&(b.time, &b.status, &b.message)))
    }

    fn level(&self, v: &EntityId) -> Option<i64> {
        self.state.entities[v].attributes.level
    }
}

/// Reads every page of a query with pages of `limit`.
fn all_pages<T>(limit: usize, mut query: impl FnMut(PageRequest) -> Page<T>) -> Vec<T> {
    let mut out = Vec::new();
    let mut req = PageRequest::first(limit);
    let mut total = None;
    for _ in 0..10_000 {
        let page = query(req.clone());
        if let Some(t) = total {
            assert_eq!(page.total, t, "the total is stable across pages");
        }
        total = Some(page.total);
        assert!(page.items.len() <= limit);
        out.extend(page.items);
        match page.next {
            Some(c) => req = PageRequest::after(limit, c),
            None => break,
        }
    }
    assert_eq!(Some(out.len()), total.or(Some(0)));
    out
}

/// A random graph built through the document: entities of a few kinds with
/// random levels and runs, random edges (forward only for a DAG; any pair,
/// self-loops included, otherwise), and some edges left dangling by a
/// concurrent removal.
fn random_graph(seed: u64, n: usize, dag: bool, density: f64) -> LineageDoc {
    let mut rng = SplitMix64::new(seed);
    let kinds = ["table", "job", "report", "system"];
    let names: Vec<EntityId> = (0..n)
        .map(|i| id(&format!("{}:n{i:02}", kinds[rng.below(4)])))
        .collect();
    let edge_kinds = [EdgeKind::Mapping, EdgeKind::Cleaning, EdgeKind::Scheduling];
    let mut a = LineageDoc::new("default", b"a").unwrap();
    a.edit(NOW, |tx| {
        for e in &names {
            let mut ne = NewEntity::parse(e.as_str())?;
            ne.attributes.level = if rng.chance(0.35) {
                None
            } else {
                Some(rng.below(4) as i64)
            };
            tx.upsert(&ne)?;
            if rng.chance(0.3) {
                let status =
                    [RunStatus::Complete, RunStatus::Fail, RunStatus::Abort][rng.below(3)].clone();
                tx.set_run(
                    e,
                    &RunState {
                        status,
                        time: NOW + rng.below(5) as i64,
                        message: None,
                    },
                )?;
            }
        }
        for i in 0..n {
            for j in 0..n {
                if (dag && j <= i) || !rng.chance(density) {
                    continue;
                }
                tx.link(
                    &names[i],
                    &names[j],
                    &EdgeSpec::of(edge_kinds[rng.below(3)].clone()),
                )?;
                if rng.chance(0.3) {
                    tx.set_edge_run(
                        &names[i],
                        &names[j],
                        &RunState {
                            status: RunStatus::Fail,
                            time: NOW + rng.below(5) as i64,
                            message: Some("x".into()),
                        },
                    )?;
                }
            }
        }
        Ok(())
    })
    .unwrap();
    // Concurrent removal vs link: dangling edges.
    if n > 3 && rng.chance(0.7) {
        let mut b = a.fork(b"b").unwrap();
        let victim = names[rng.below(n)].clone();
        a.edit(NOW, |tx| tx.remove(&victim)).unwrap();
        let other = names[rng.below(n)].clone();
        let (s, t) = if dag && other > victim {
            (victim.clone(), other)
        } else {
            (other, victim.clone())
        };
        b.edit(NOW, |tx| tx.link(&s, &t, &EdgeSpec::default()))
            .unwrap();
        a.merge(&b).unwrap();
    }
    a
}

fn check_all(ix: &GraphIndex, seed: u64) {
    let r = Reference::new(ix.live_state());
    let mut rng = SplitMix64::new(seed ^ 0xABCD);
    let limit = 1 + rng.below(4);
    let all_kinds = [EdgeKind::Mapping, EdgeKind::Cleaning, EdgeKind::Scheduling];
    let entities: Vec<EntityId> = r.state.entities.keys().cloned().collect();

    for start in &entities {
        for down in [true, false] {
            let depth = if rng.chance(0.5) {
                None
            } else {
                Some(rng.below(4) as u32)
            };
            let kinds: Vec<EdgeKind> = all_kinds
                .iter()
                .filter(|_| rng.chance(0.3))
                .cloned()
                .collect();
            let ekinds: Vec<EntityKind> = if rng.chance(0.3) {
                vec![EntityKind::Table]
            } else {
                vec![]
            };
            let opts = Traversal {
                depth,
                entity_kinds: ekinds.clone(),
                edge_kinds: kinds.clone(),
                page: PageRequest::default(),
            };
            let got = all_pages(limit, |p| {
                let o = opts.clone().page(p);
                if down {
                    ix.downstream(start, &o)
                } else {
                    ix.upstream(start, &o)
                }
                .unwrap()
            });
            let dist = r.distances(start, down, depth, &kinds);
            let mut want: Vec<(u32, EntityId)> = dist
                .iter()
                .filter(|(v, _)| *v != start)
                .filter(|(v, _)| ekinds.is_empty() || ekinds.contains(&v.kind()))
                .map(|(v, d)| (*d, v.clone()))
                .collect();
            want.sort();
            let got_pairs: Vec<(u32, EntityId)> =
                got.iter().map(|x| (x.distance, x.id.clone())).collect();
            assert_eq!(
                got_pairs,
                want,
                "{} from {start} depth {depth:?} kinds {kinds:?}",
                if down { "down" } else { "up" }
            );
            for x in &got {
                assert_eq!(
                    x.via,
                    r.previous(&x.id, &dist, down, &kinds),
                    "via of {}",
                    x.id
                );
            }
        }

        // Impact, with paths.
        let got = all_pages(limit, |p| {
            ix.impact(start, &Traversal::unbounded().page(p)).unwrap()
        });
        let dist = r.distances(start, true, None, &[]);
        for x in &got {
            assert_eq!(x.path, r.path(&x.id, &dist, true, &[]));
            assert_eq!(x.path.len() as u32, x.distance + 1);
        }
        assert_eq!(got.len(), dist.len() - 1);

        // Paths to every entity.
        for to in &entities {
            let max_depth = if rng.chance(0.5) {
                None
            } else {
                Some(rng.below(3) as u32)
            };
            let opts = PathOptions {
                max_depth,
                edge_kinds: vec![],
            };
            let got = ix.path(start, to, &opts).unwrap();
            let dist = r.distances(start, true, max_depth, &[]);
            match (got, dist.get(to)) {
                (None, None) => {}
                (Some(p), Some(_)) => {
                    assert_eq!(p.entities, r.path(to, &dist, true, &[]));
                    assert_eq!(p.edges.len() + 1, p.entities.len());
                }
                (g, w) => panic!("path {start} -> {to}: got {g:?}, want distance {w:?}"),
            }
        }

        // Root cause.
        let got = all_pages(limit, |p| {
            ix.root_cause(
                start,
                &RootCauseOptions {
                    depth: None,
                    page: p,
                },
            )
            .unwrap()
            .candidates
        });
        let dist = r.distances(start, false, None, &[]);
        let mut want: Vec<(bool, u32, EntityId)> = dist
            .iter()
            .filter(|(v, _)| *v != start)
            .map(|(v, d)| {
                let suspect = r
                    .effective_run(v)
                    .is_some_and(|run| run.status.is_failure());
                (!suspect, *d, v.clone())
            })
            .collect();
        want.sort();
        let got_keys: Vec<(bool, u32, EntityId)> = got
            .iter()
            .map(|c| (!c.suspect, c.distance, c.id.clone()))
            .collect();
        assert_eq!(got_keys, want);
        for c in &got {
            assert_eq!(c.run, r.effective_run(&c.id));
        }

        // Recovery order.
        let kinds: Vec<EdgeKind> = all_kinds
            .iter()
            .filter(|_| rng.chance(0.2))
            .cloned()
            .collect();
        let plan = ix
            .recovery_order(
                start,
                &RecoveryOptions {
                    edge_kinds: kinds.clone(),
                    page: PageRequest::default(),
                },
            )
            .unwrap();
        let steps = all_pages(limit, |p| {
            ix.recovery_order(
                start,
                &RecoveryOptions {
                    edge_kinds: kinds.clone(),
                    page: p,
                },
            )
            .unwrap()
            .steps
        });
        let mut set = r.reachable(start, &kinds, None);
        set.remove(start);
        let reach_in: HashMap<EntityId, BTreeSet<EntityId>> = set
            .iter()
            .map(|u| (u.clone(), r.reachable(u, &kinds, Some(&set))))
            .collect();
        let comp = |u: &EntityId| -> BTreeSet<EntityId> {
            let mut c: BTreeSet<EntityId> = set
                .iter()
                .filter(|v| reach_in[u].contains(*v) && reach_in[*v].contains(u))
                .cloned()
                .collect();
            c.insert(u.clone());
            c
        };
        let inner: Vec<(EntityId, EntityId)> = r
            .oriented(true, &kinds)
            .into_iter()
            .filter(|(a, b)| set.contains(a) && set.contains(b))
            .collect();
        let mut stage: BTreeMap<BTreeSet<EntityId>, u32> =
            set.iter().map(|u| (comp(u), 0)).collect();
        for _ in 0..=set.len() {
            for (a, b) in &inner {
                let (ca, cb) = (comp(a), comp(b));
                if ca != cb {
                    let s = stage[&ca] + 1;
                    let e = stage.get_mut(&cb).unwrap();
                    *e = (*e).max(s);
                }
            }
        }
        let mut want: Vec<(u32, EntityId)> =
            set.iter().map(|u| (stage[&comp(u)], u.clone())).collect();
        want.sort();
        let got: Vec<(u32, EntityId)> = steps.iter().map(|s| (s.stage, s.id.clone())).collect();
        assert_eq!(got, want, "recovery from {start}");
        let mut cycles: Vec<Vec<EntityId>> = stage
            .keys()
            .filter(|c| c.len() > 1 || inner.iter().any(|(a, b)| a == b && c.contains(a)))
            .map(|c| c.iter().cloned().collect())
            .collect();
        cycles.sort();
        assert_eq!(plan.cycles, cycles);
        for s in &steps {
            let in_cycle = cycles.iter().position(|c| c.contains(&s.id));
            assert_eq!(s.cycle, in_cycle);
        }
    }

    // Rank and islands.
    let ranked = all_pages(limit, |p| {
        ix.rank(&RankOptions {
            entity_kinds: vec![],
            page: p,
        })
        .unwrap()
    });
    let mut want: Vec<(std::cmp::Reverse<u32>, EntityId, u32)> = entities
        .iter()
        .map(|e| {
            let mut reach = r.reachable(e, &[], None);
            reach.remove(e);
            let direct: BTreeSet<&EntityId> = r
                .edges
                .iter()
                .filter(|(s, _, _)| s == e)
                .map(|(_, t, _)| t)
                .collect();
            (
                std::cmp::Reverse(reach.len() as u32),
                e.clone(),
                direct.len() as u32,
            )
        })
        .collect();
    want.sort();
    let got: Vec<(std::cmp::Reverse<u32>, EntityId, u32)> = ranked
        .iter()
        .map(|x| (std::cmp::Reverse(x.reach), x.id.clone(), x.direct))
        .collect();
    assert_eq!(got, want);
    let islands = all_pages(limit, |p| ix.islands(&[], &p).unwrap());
    let want: Vec<EntityId> = entities
        .iter()
        .filter(|e| r.edges.iter().all(|(s, t, _)| s != *e && t != *e))
        .cloned()
        .collect();
    assert_eq!(islands, want);

    // Audit.
    let findings = all_pages(limit, |p| ix.audit(&AuditOptions { page: p }).unwrap());
    let mut want_edges: Vec<(EntityId, EntityId)> = r
        .edges
        .iter()
        .filter(|(s, t, _)| matches!((r.level(s), r.level(t)), (Some(a), Some(b)) if b < a))
        .map(|(s, t, _)| (s.clone(), t.clone()))
        .collect();
    want_edges.sort();
    want_edges.dedup();
    let got_edges: Vec<(EntityId, EntityId)> = findings
        .iter()
        .filter(|f| f.kind == FindingKind::Edge)
        .map(|f| (f.from.clone(), f.to.clone()))
        .collect();
    assert_eq!(got_edges, want_edges);
    // Path leaks: per labelled source, BFS through unlabelled entities.
    let mut best: BTreeMap<EntityId, (i64, u32, EntityId)> = BTreeMap::new();
    for u in entities.iter().filter(|u| r.level(u).is_some()) {
        let lu = r.level(u).unwrap();
        let mut dist: BTreeMap<EntityId, u32> = BTreeMap::new();
        let mut frontier = vec![u.clone()];
        let mut d = 0;
        while !frontier.is_empty() {
            d += 1;
            let mut next = Vec::new();
            for x in &frontier {
                for (a, b, _) in &r.edges {
                    if a != x {
                        continue;
                    }
                    match r.level(b) {
                        None => {
                            if !dist.contains_key(b) {
                                dist.insert(b.clone(), d);
                                next.push(b.clone());
                            }
                        }
                        Some(lw) if x != u && lw < lu => {
                            let cand = (lu, d, u.clone());
                            let e = best.entry(b.clone()).or_insert(cand.clone());
                            if cand.0 > e.0 || (cand.0 == e.0 && (cand.1, &cand.2) < (e.1, &e.2)) {
                                *e = cand;
                            }
                        }
                        Some(_) => {}
                    }
                }
            }
            frontier = next;
        }
    }
    let got_paths: Vec<_> = findings
        .iter()
        .filter(|f| f.kind == FindingKind::Path)
        .collect();
    assert_eq!(
        got_paths.len(),
        best.len(),
        "path findings: {got_paths:?} vs {best:?}"
    );
    for (f, (w, (lu, len, u))) in got_paths.iter().zip(&best) {
        assert_eq!((&f.to, f.from_level, &f.from), (w, *lu, u));
        assert_eq!(f.path.len() as u32, len + 1);
        assert_eq!(f.to_level, r.level(w).unwrap());
        for pair in f.path.windows(2) {
            assert!(
                r.edges
                    .iter()
                    .any(|(a, b, _)| *a == pair[0] && *b == pair[1]),
                "path edge {pair:?}"
            );
        }
        assert!(
            f.path[1..f.path.len() - 1]
                .iter()
                .all(|x| r.level(x).is_none())
        );
    }

    // Naming and statistics.
    let rules = NamingRules::new(&[NamingRule {
        kind: EntityKind::Table,
        pattern: "n[0-4].*".into(),
    }])
    .unwrap();
    let got = all_pages(limit, |p| ix.naming_violations(&rules, &p).unwrap());
    let want: Vec<EntityId> = entities
        .iter()
        .filter(|e| e.kind() == EntityKind::Table && !("01234".contains(&e.name()[1..2])))
        .cloned()
        .collect();
    assert_eq!(got.iter().map(|v| v.id.clone()).collect::<Vec<_>>(), want);
    let s = ix.statistics();
    assert_eq!(s.entities, entities.len());
    assert_eq!(s.edges, r.edges.len());
    assert_eq!(s.dangling_edges, r.state.edges.len() - r.edges.len());
    assert_eq!(s.coverage.total - s.coverage.with_lineage, islands.len());
}

#[test]
fn queries_agree_with_the_reference_on_a_generated_warehouse() {
    let mut d = LineageDoc::new("default", b"w").unwrap();
    stemma_protocol::lineage::generate::warehouse(5, 60, 120)
        .apply(&mut d, 50, NOW)
        .unwrap();
    check_all(d.index(), 5);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn queries_agree_with_the_reference_on_random_dags(seed in any::<u64>(), n in 2usize..14, density in 0.05f64..0.4) {
        let d = random_graph(seed, n, true, density);
        check_all(d.index(), seed);
    }

    #[test]
    fn queries_agree_with_the_reference_on_graphs_with_cycles(seed in any::<u64>(), n in 2usize..14, density in 0.05f64..0.4) {
        let d = random_graph(seed, n, false, density);
        check_all(d.index(), seed);
    }
}
