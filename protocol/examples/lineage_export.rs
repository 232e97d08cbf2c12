//! Exports the generated lineage graph for another database and times Stemma's
//! queries on it, for `scripts/bench-lineage-postgres`.
//!
//! ```text
//! cargo run --release -p stemma-protocol --example lineage_export -- OUT_DIR
//! ```
//!
//! Same generator, seed, sizes and start entities as `benches/lineage_graph.rs`
//! (`LINEAGE_ENTITIES`, `LINEAGE_EDGES`, `LINEAGE_SAMPLES`, `LINEAGE_SEED`,
//! `LINEAGE_BATCH`; plus `LINEAGE_RANK_RUNS`, default 5). Every query is timed
//! for its **full answer**: all pages of up to `MAX_LIMIT` items, so that it
//! can be compared with a database returning every row. Writes to `OUT_DIR`:
//!
//! - `entities.csv`: `id,name,kind,level` (`id` = position in generation
//!   order, `name` = canonical entity id, `level` empty when unset);
//! - `edges.csv`: `source,target,kind` (numeric ids);
//! - `starts_{random,sources,sinks}.txt`: the sampled start ids, one a line;
//! - `stemma.tsv`: `query, runs, p50 ms, p99 ms, mean answer size` (ms to
//!   0.1 µs: a depth-10 query takes a few µs);
//! - `counts_<query>.tsv`: `start id, answer size` for every timed run;
//! - `answer_<query>_<k>.txt`: the full answer of the k-th run (k < 3), one
//!   item a line (`id` plus `\tdistance`, `\treach` or `\ttarget` as the
//!   query has), in byte order.
//!
//! Figures only; nothing is asserted about time. Runs on mimalloc, the node
//! binary's allocator, so the queries cost what they cost in the node.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stemma_protocol::lineage::generate::{self, Starts};
use stemma_protocol::lineage::query::{MAX_LIMIT, Reached};
use stemma_protocol::lineage::{
    AuditOptions, EntityId, FindingKind, LineageDoc, Page, PageRequest, RankOptions, Traversal,
};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NOW: i64 = 1_700_000_000_000;
/// Runs whose answers are written out in full, per query.
const ANSWERS: usize = 3;
/// Untimed runs before each query's timed ones (the same starts).
const WARMUP: usize = 10;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Every page of a paged answer, `MAX_LIMIT` items at a time.
fn all_pages<T>(mut query: impl FnMut(PageRequest) -> Page<T>) -> Vec<T> {
    let mut items = Vec::new();
    let mut page = PageRequest::first(MAX_LIMIT);
    loop {
        let p = query(page);
        items.extend(p.items);
        match p.next {
            Some(cursor) => page = PageRequest::after(MAX_LIMIT, cursor),
            None => return items,
        }
    }
}

fn csv(field: &str) -> String {
    format!("\"{}\"", field.replace('"', "\"\""))
}

struct Out {
    dir: PathBuf,
    summary: BufWriter<File>,
}

impl Out {
    fn file(&self, name: &str) -> BufWriter<File> {
        BufWriter::new(File::create(self.dir.join(name)).expect("create output file"))
    }

    /// Runs `query` once per start (after a warm-up on the first starts) and
    /// records it. The timer stops when `query` has returned the full answer;
    /// `lines` then turns it into text for the comparison, untimed (as psql's
    /// `\timing` stops when the last row has arrived, before printing).
    fn time<A>(
        &mut self,
        name: &str,
        starts: &[u32],
        mut query: impl FnMut(u32) -> A,
        lines: impl Fn(A) -> Vec<String>,
    ) {
        for &s in starts.iter().take(WARMUP) {
            drop(query(s));
        }
        let runs = starts
            .iter()
            .map(|&s| {
                let t = Instant::now();
                let answer = query(s);
                let took = t.elapsed();
                (took, lines(answer))
            })
            .collect();
        self.record(name, starts, runs);
    }

    /// Records the latencies, the answer sizes and the first answers of the
    /// runs (one per start).
    fn record(&mut self, name: &str, starts: &[u32], runs: Vec<(Duration, Vec<String>)>) {
        let mut counts = self.file(&format!("counts_{name}.tsv"));
        let mut times = Vec::with_capacity(runs.len());
        let mut total = 0usize;
        for (k, (&s, (took, mut answer))) in starts.iter().zip(runs).enumerate() {
            times.push(took);
            total += answer.len();
            writeln!(counts, "{s}\t{}", answer.len()).expect("write");
            if k < ANSWERS {
                answer.sort_unstable();
                let mut f = self.file(&format!("answer_{name}_{k}.txt"));
                for line in &answer {
                    writeln!(f, "{line}").expect("write");
                }
                f.flush().expect("write");
            }
        }
        counts.flush().expect("write");
        times.sort();
        let p = |q: f64| -> Duration {
            times[((times.len() as f64 * q) as usize).min(times.len() - 1)]
        };
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let mean = total as f64 / times.len().max(1) as f64;
        writeln!(
            self.summary,
            "{name}\t{}\t{:.4}\t{:.4}\t{mean:.0}",
            times.len(),
            ms(p(0.50)),
            ms(p(0.99))
        )
        .expect("write");
        self.summary.flush().expect("write");
        println!(
            "  {name:<18} runs {:>4}  p50 {:>10.4} ms  p99 {:>10.4} ms  mean answer {mean:.0}",
            times.len(),
            ms(p(0.50)),
            ms(p(0.99))
        );
    }
}

fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: lineage_export OUT_DIR"),
    );
    let entities = env("LINEAGE_ENTITIES", 100_000);
    let edges = env("LINEAGE_EDGES", 300_000);
    let batch = env("LINEAGE_BATCH", 1000);
    let samples = env("LINEAGE_SAMPLES", 200);
    let seed = env("LINEAGE_SEED", 42) as u64;
    let rank_runs = env("LINEAGE_RANK_RUNS", 5);
    println!("lineage_export: {entities} entities, {edges} edges, seed {seed}, into {dir:?}");
    std::fs::create_dir_all(&dir).expect("create OUT_DIR");

    let t = Instant::now();
    let wh = generate::warehouse(seed, entities, edges);
    let mut doc = LineageDoc::new("default", b"bench-node/1").expect("doc");
    for chunk in wh.ops().chunks(batch.max(1)) {
        doc.apply(NOW, chunk).expect("apply");
    }
    println!(
        "built the document: {} entities, {} edges in {:.1} s",
        doc.index().entity_count(),
        doc.index().linked_edge_count(),
        t.elapsed().as_secs_f64()
    );

    // --- Export ----------------------------------------------------------
    let num: HashMap<&EntityId, u32> = wh
        .entities
        .iter()
        .enumerate()
        .map(|(i, e)| (&e.id, i as u32))
        .collect();
    let mut out = Out {
        summary: BufWriter::new(File::create(dir.join("stemma.tsv")).expect("create")),
        dir,
    };
    let mut f = out.file("entities.csv");
    for (i, e) in wh.entities.iter().enumerate() {
        let level = e
            .attributes
            .level
            .map(|l| l.to_string())
            .unwrap_or_default();
        writeln!(
            f,
            "{i},{},{},{level}",
            csv(e.id.as_str()),
            csv(e.id.kind().as_str())
        )
        .expect("write");
    }
    f.flush().expect("write");
    let mut f = out.file("edges.csv");
    for (s, t, spec) in &wh.edges {
        writeln!(f, "{},{},{}", num[s], num[t], csv(spec.kind.as_str())).expect("write");
    }
    f.flush().expect("write");
    let Starts {
        random,
        sources,
        sinks,
    } = wh.starts(seed, samples);
    let numbered = |v: &[EntityId]| -> Vec<u32> { v.iter().map(|id| num[id]).collect() };
    let (random, sources, sinks) = (numbered(&random), numbered(&sources), numbered(&sinks));
    for (name, v) in [
        ("random", &random),
        ("sources", &sources),
        ("sinks", &sinks),
    ] {
        write_lines(&out.dir, &format!("starts_{name}.txt"), v);
    }

    // --- Queries ---------------------------------------------------------
    println!("Stemma, full answers (every page of {MAX_LIMIT}):");
    let ix = doc.index();
    let id = |n: u32| &wh.entities[n as usize].id;
    let reach = |depth: Option<u32>, down: bool| {
        move |s: u32| {
            let opts = Traversal {
                depth,
                ..Traversal::default()
            };
            all_pages(|page| {
                let opts = opts.clone().page(page);
                if down {
                    ix.downstream(id(s), &opts).expect("query")
                } else {
                    ix.upstream(id(s), &opts).expect("query")
                }
            })
        }
    };
    let with_distance = |answer: Vec<Reached>| -> Vec<String> {
        answer
            .into_iter()
            .map(|r| format!("{}\t{}", r.id, r.distance))
            .collect()
    };
    let ids_only = |answer: Vec<Reached>| -> Vec<String> {
        answer.into_iter().map(|r| r.id.to_string()).collect()
    };
    out.time(
        "down10_random",
        &random,
        reach(Some(10), true),
        with_distance,
    );
    out.time(
        "down10_sources",
        &sources,
        reach(Some(10), true),
        with_distance,
    );
    out.time("up10_sinks", &sinks, reach(Some(10), false), with_distance);
    out.time("down_all_sources", &sources, reach(None, true), ids_only);
    out.time("up_all_sinks", &sinks, reach(None, false), ids_only);
    out.time(
        "impact_sources",
        &sources,
        |s| {
            all_pages(|page| {
                ix.impact(id(s), &Traversal::unbounded().page(page))
                    .expect("query")
            })
        },
        |answer| {
            answer
                .into_iter()
                .map(|r| format!("{}\t{}", r.id, r.distance))
                .collect()
        },
    );

    // Rank, cold: on a fresh index each run (the reach table is cached per
    // index until it changes); the index build is not timed.
    let once = vec![0; rank_runs.max(1)];
    let runs = once
        .iter()
        .map(|_| {
            let fresh = doc.rebuild_index();
            let t = Instant::now();
            let page = fresh.rank(&RankOptions::default()).expect("rank");
            let took = t.elapsed();
            let answer = page
                .items
                .into_iter()
                .map(|r| format!("{}\t{}", r.id, r.reach))
                .collect();
            (took, answer)
        })
        .collect();
    out.record("rank_page1", &once, runs);

    let fixed = vec![0; samples.min(50)];
    out.time(
        "islands",
        &fixed,
        |_| all_pages(|page| ix.islands(&[], &page).expect("islands")),
        |answer| answer.into_iter().map(|id| id.to_string()).collect(),
    );
    out.time(
        "audit_edges",
        &fixed,
        |_| all_pages(|page| ix.audit(&AuditOptions { page }).expect("audit")),
        |answer| {
            answer
                .into_iter()
                .filter(|f| f.kind == FindingKind::Edge)
                .map(|f| format!("{}\t{}", f.from, f.to))
                .collect()
        },
    );
}

fn write_lines(dir: &Path, name: &str, v: &[u32]) {
    let mut f = BufWriter::new(File::create(dir.join(name)).expect("create"));
    for x in v {
        writeln!(f, "{x}").expect("write");
    }
    f.flush().expect("write");
}
