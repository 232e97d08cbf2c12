//! The lineage graph at warehouse scale, in one run: build, save, load, index
//! memory, query latencies (p50/p99), apply rate, sync of a delta, and growth
//! after a million edits (30% removals) with and without an epoch.
//!
//! ```text
//! cargo bench -p stemma-protocol --bench lineage_graph
//! LINEAGE_ENTITIES=10000 LINEAGE_EDGES=30000 LINEAGE_EDITS=100000 cargo bench ... # smaller
//! ```
//!
//! Figures only; nothing is asserted about time. Runs on mimalloc, the node
//! binary's allocator.

use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use stemma_protocol::lineage::generate::{self, SplitMix64};
use stemma_protocol::lineage::{
    Attr, AuditOptions, EdgeSpec, EntityId, LineageDoc, NewEntity, Op, PageRequest, PeerSync,
    RankOptions, RunState, RunStatus, Traversal,
};

const NOW: i64 = 1_700_000_000_000;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn mb(bytes: usize) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

/// p50 and p99 of `samples` runs of `f`.
fn latency(samples: usize, mut f: impl FnMut(usize)) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..samples)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed()
        })
        .collect();
    times.sort();
    let p = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    (p(0.50), p(0.99))
}

fn row(name: &str, (p50, p99): (Duration, Duration), note: &str) {
    println!(
        "  {name:<38} p50 {:>12}  p99 {:>12}  {note}",
        ms(p50),
        ms(p99)
    );
}

fn main() {
    let entities = env("LINEAGE_ENTITIES", 100_000);
    let edges = env("LINEAGE_EDGES", 300_000);
    let edits = env("LINEAGE_EDITS", 1_000_000);
    let batch = env("LINEAGE_BATCH", 1000);
    let samples = env("LINEAGE_SAMPLES", 200);
    let seed = env("LINEAGE_SEED", 42) as u64;
    println!(
        "lineage_graph: {entities} entities, {edges} edges, {edits} growth edits, batch {batch} ops/change, seed {seed}"
    );

    // --- Build -------------------------------------------------------------
    let t = Instant::now();
    let wh = generate::warehouse(seed, entities, edges);
    let ops = wh.ops();
    println!("generate: {} ops in {}", ops.len(), ms(t.elapsed()));
    let mut doc = LineageDoc::new("default", b"bench-node/1").unwrap();
    let t = Instant::now();
    for chunk in ops.chunks(batch) {
        doc.apply(NOW, chunk).unwrap();
    }
    let build = t.elapsed();
    let st = doc.stats();
    println!(
        "build: {} ({:.0} ops/s, {} changes, {} Automerge ops, {} entities, {} linked edges)",
        ms(build),
        ops.len() as f64 / build.as_secs_f64(),
        st.changes,
        st.ops,
        doc.index().entity_count(),
        doc.index().linked_edge_count()
    );

    // --- Save, load, index -------------------------------------------------
    let t = Instant::now();
    let saved = doc.save();
    println!("save: {} in {}", mb(saved.len()), ms(t.elapsed()));
    let t = Instant::now();
    let loaded = LineageDoc::load("default", b"bench-node/2", &saved).unwrap();
    let load = t.elapsed();
    let t = Instant::now();
    let rebuilt = loaded.rebuild_index();
    let index_build = t.elapsed();
    println!(
        "load: {} (of which index build {}); index memory estimate {}",
        ms(load),
        ms(index_build),
        mb(rebuilt.memory_estimate())
    );
    drop(rebuilt);
    drop(loaded);
    let t = Instant::now();
    let epoch = doc.compact_epoch().unwrap();
    let compact = t.elapsed();
    println!(
        "bulk snapshot (epoch of the live state): {} in {}",
        mb(epoch.to_bytes().len()),
        ms(compact)
    );
    drop(epoch);

    // --- Queries -----------------------------------------------------------
    let ix = doc.index();
    let ids: Vec<EntityId> = wh.entities.iter().map(|e| e.id.clone()).collect();
    // Sources (system / source tables) have the largest downstream, sinks
    // (reports and dashboards) the largest upstream.
    let generate::Starts {
        random: starts,
        sources: src_starts,
        sinks: sink_starts,
    } = wh.starts(seed, samples);
    println!(
        "queries ({samples} samples each; random = any entity, sources = systems and source tables, sinks = reports and dashboards):"
    );
    let mut sizes = Vec::new();
    let d10 = Traversal::depth(10);
    let unbounded = Traversal::unbounded();
    row(
        "downstream depth 10 (random)",
        latency(samples, |i| {
            sizes.push(ix.downstream(&starts[i], &d10).unwrap().total);
        }),
        &format!("mean answer {:.0}", mean(&sizes)),
    );
    sizes.clear();
    row(
        "downstream depth 10 (sources)",
        latency(samples, |i| {
            sizes.push(ix.downstream(&src_starts[i], &d10).unwrap().total);
        }),
        &format!("mean answer {:.0}", mean(&sizes)),
    );
    sizes.clear();
    row(
        "upstream depth 10 (sinks)",
        latency(samples, |i| {
            sizes.push(ix.upstream(&sink_starts[i], &d10).unwrap().total);
        }),
        &format!("mean answer {:.0}", mean(&sizes)),
    );
    sizes.clear();
    row(
        "downstream unbounded, page 1 (sources)",
        latency(samples, |i| {
            sizes.push(ix.downstream(&src_starts[i], &unbounded).unwrap().total);
        }),
        &format!("mean answer {:.0}, pages of 1000", mean(&sizes)),
    );
    sizes.clear();
    row(
        "upstream unbounded, page 1 (sinks)",
        latency(samples, |i| {
            sizes.push(ix.upstream(&sink_starts[i], &unbounded).unwrap().total);
        }),
        &format!("mean answer {:.0}", mean(&sizes)),
    );
    sizes.clear();
    row(
        "impact, page 1 with paths (sources)",
        latency(samples, |i| {
            sizes.push(ix.impact(&src_starts[i], &unbounded).unwrap().total);
        }),
        &format!("mean answer {:.0}", mean(&sizes)),
    );
    let rank_opts = RankOptions::default();
    let t = Instant::now();
    let rank = ix.rank(&rank_opts).unwrap();
    println!(
        "  rank, cold (reach of every entity)     {}  (top: {} reaches {})",
        ms(t.elapsed()),
        rank.items[0].id,
        rank.items[0].reach
    );
    row(
        "rank, cached, page 1",
        latency(samples.min(50), |_| drop(ix.rank(&rank_opts).unwrap())),
        "",
    );
    let mut n_islands = 0;
    row(
        "islands, page 1",
        latency(samples.min(50), |_| {
            n_islands = ix.islands(&[], &PageRequest::default()).unwrap().total
        }),
        &format!("{n_islands} islands"),
    );
    let mut n_findings = 0;
    row(
        "audit, page 1",
        latency(samples.min(50), |_| {
            n_findings = ix.audit(&AuditOptions::default()).unwrap().total
        }),
        &format!("{n_findings} findings"),
    );
    row(
        "statistics",
        latency(samples.min(20), |_| drop(ix.statistics())),
        "",
    );

    // --- Apply rate and change size ------------------------------------------
    println!("apply rate (set_attr on existing entities, index kept current):");
    for per_change in [1usize, 10, 100, 1000] {
        let n = (per_change * 20).clamp(200, 20_000);
        let before = doc.save_incremental().len();
        let _ = before;
        let t = Instant::now();
        let mut i = 0;
        while i < n {
            let chunk: Vec<Op> = (i..(i + per_change).min(n))
                .map(|k| Op::SetAttr {
                    id: ids[(k * 7919) % ids.len()].clone(),
                    attr: Attr::Extra("bench".into(), format!("{per_change}-{k}")),
                })
                .collect();
            doc.apply(NOW, &chunk).unwrap();
            i += per_change;
        }
        let el = t.elapsed();
        let bytes = doc.save_incremental().len();
        println!(
            "  {per_change:>5} ops/change: {:>9.0} ops/s, {:>7.1} bytes/op in the append log",
            n as f64 / el.as_secs_f64(),
            bytes as f64 / n as f64
        );
    }

    // --- Sync of a delta ---------------------------------------------------
    let mut peer = doc.fork(b"bench-peer/1").unwrap();
    doc.edit(NOW, |tx| {
        for k in 0..1000 {
            tx.set_attr(
                &ids[(k * 104_729) % ids.len()],
                &Attr::Owner(format!("sync-{k}")),
            )?;
        }
        Ok(())
    })
    .unwrap();
    let t = Instant::now();
    let (mut a, mut b) = (PeerSync::new(), PeerSync::new());
    let (mut msgs, mut bytes) = (0, 0);
    loop {
        let m = doc.generate_sync_message(&mut a);
        if let Some(m) = &m {
            msgs += 1;
            bytes += m.len();
            peer.receive_sync_message(&mut b, m).unwrap();
        }
        let n = peer.generate_sync_message(&mut b);
        if let Some(n) = &n {
            msgs += 1;
            bytes += n.len();
            doc.receive_sync_message(&mut a, n).unwrap();
        }
        if m.is_none() && n.is_none() {
            break;
        }
    }
    println!(
        "sync of 1000 edits (one change) between two full replicas: {} messages, {} bytes, {} (cold peer state)",
        msgs,
        bytes,
        ms(t.elapsed())
    );
    drop(peer);

    // --- Growth ------------------------------------------------------------
    println!("growth: {edits} edits (30% removals), {batch} per change…");
    let fresh_before = doc.compact_epoch().unwrap().to_bytes().len();
    let stored_before = doc.to_bytes().len();
    let mut live: Vec<EntityId> = doc.index().live_state().entities.keys().cloned().collect();
    let mut links: Vec<(EntityId, EntityId)> =
        doc.index().live_state().edges.keys().cloned().collect();
    let mut created: Vec<EntityId> = Vec::new();
    let mut rng = SplitMix64::new(seed ^ 0x6204);
    let mut done = 0usize;
    let mut refused = 0usize;
    let mut removals = 0usize;
    let mut next_new = 0usize;
    let t = Instant::now();
    // The mix: 30% removals (10% remove an entity made during this phase,
    // 20% unlink; removing warehouse tables would take their columns and
    // edges along and hollow the graph out), 25% attribute edits, 10% new
    // entities, 25% new links, 10% run reports.
    // Refused edits (the target went with an earlier cascade) do not count.
    while done < edits {
        let n = batch.min(edits - done);
        let mut chunk = Vec::with_capacity(n);
        let mut is_removal = Vec::with_capacity(n);
        let ix = doc.index();
        for _ in 0..n {
            let roll = rng.below(100);
            // Targets are drawn from what exists when the batch starts (an
            // earlier cascade may have taken them).
            let pick_ix = |rng: &mut SplitMix64, v: &mut Vec<EntityId>| loop {
                let i = rng.below(v.len());
                if ix.contains(&v[i]) || v.len() == 1 {
                    break i;
                }
                v.swap_remove(i);
            };
            let pick = |rng: &mut SplitMix64, v: &mut Vec<EntityId>| {
                let i = pick_ix(rng, v);
                v[i].clone()
            };
            // An entity made during this phase (not in this batch), if any.
            let mut removable = None;
            if (20..30).contains(&roll) {
                for _ in 0..10 {
                    if created.is_empty() {
                        break;
                    }
                    let i = rng.below(created.len());
                    if ix.contains(&created[i]) {
                        removable = Some(created.swap_remove(i));
                        break;
                    }
                }
            }
            let op = if let Some(id) = removable {
                Op::Remove { id }
            } else if roll < 30 && !links.is_empty() {
                let (s, t) = loop {
                    let pair = links.swap_remove(rng.below(links.len()));
                    if ix.edge(&pair.0, &pair.1).is_some() || links.is_empty() {
                        break pair;
                    }
                };
                Op::Unlink {
                    source: s,
                    target: t,
                }
            } else if roll < 55 {
                Op::SetAttr {
                    id: pick(&mut rng, &mut live),
                    attr: if rng.chance(0.5) {
                        Attr::Owner(format!("team_{}", rng.below(50)))
                    } else {
                        Attr::Level(rng.below(4) as i64)
                    },
                }
            } else if roll < 65 {
                next_new += 1;
                let e = NewEntity::parse(&format!("table:growth.t{next_new}")).unwrap();
                created.push(e.id.clone());
                Op::Upsert(e)
            } else if roll < 90 {
                let s = if !created.is_empty() && rng.chance(0.2) {
                    created[rng.below(created.len())].clone()
                } else {
                    pick(&mut rng, &mut live)
                };
                let t = pick(&mut rng, &mut live);
                links.push((s.clone(), t.clone()));
                Op::Link {
                    source: s,
                    target: t,
                    spec: EdgeSpec::default(),
                }
            } else {
                Op::SetRun {
                    id: pick(&mut rng, &mut live),
                    run: RunState {
                        status: if rng.chance(0.05) {
                            RunStatus::Fail
                        } else {
                            RunStatus::Complete
                        },
                        time: NOW + done as i64,
                        message: None,
                    },
                }
            };
            is_removal.push(matches!(op, Op::Unlink { .. } | Op::Remove { .. }));
            chunk.push(op);
        }
        let (_, results) = doc.apply_each(NOW, &chunk);
        for (r, removal) in results.iter().zip(&is_removal) {
            match r {
                Ok(()) => {
                    done += 1;
                    removals += usize::from(*removal);
                }
                Err(_) => refused += 1,
            }
        }
    }
    let growth = t.elapsed();
    let st = doc.stats();
    let stored = doc.to_bytes().len();
    let t = Instant::now();
    let next = doc.compact_epoch().unwrap();
    let compact = t.elapsed();
    let fresh = next.to_bytes().len();
    println!(
        "  applied in {} ({:.0} edits/s; {} removals = {:.1}%; {} more refused, their target gone with a cascade); history {} changes, {} Automerge ops",
        ms(growth),
        edits as f64 / growth.as_secs_f64(),
        removals,
        100.0 * removals as f64 / edits.max(1) as f64,
        refused,
        st.changes,
        st.ops
    );
    println!(
        "  stored size: before {} (live {}), after {} (live {}): history / live = {:.2}",
        mb(stored_before),
        mb(fresh_before),
        mb(stored),
        mb(fresh),
        stored as f64 / fresh as f64
    );
    let t2 = Instant::now();
    let reloaded = LineageDoc::load("default", b"bench-node/3", &doc.to_bytes()).unwrap();
    let reload = t2.elapsed();
    let t3 = Instant::now();
    let reloaded_epoch = LineageDoc::load("default", b"bench-node/3", &next.to_bytes()).unwrap();
    let reload_epoch = t3.elapsed();
    println!(
        "  epoch 1 cut in {}: stored {} ({} entities, {} edges); load {} vs {} with history",
        ms(compact),
        mb(fresh),
        reloaded_epoch.index().entity_count(),
        reloaded_epoch.index().linked_edge_count(),
        ms(reload_epoch),
        ms(reload)
    );
    assert_eq!(
        reloaded.index().live_state(),
        reloaded_epoch.index().live_state()
    );
}

fn mean(v: &[usize]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<usize>() as f64 / v.len() as f64
    }
}
