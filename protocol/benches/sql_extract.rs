//! SQL lineage extraction rate over the sqllineage corpus.
//!
//! `cargo bench -p stemma-protocol --bench sql_extract`
//!
//! Each pass extracts every corpus case (parse + analysis, each case with
//! its own dialect) and counts the statements extracted; the figure printed
//! is the median of the passes' statements per second, with the minimum and
//! maximum beside it. Cases that do not parse are timed too (they are part
//! of real input) but not counted as statements.

use std::hint::black_box;
use std::time::Instant;

use stemma_protocol::sql::{Dialect, SqlOptions, extract};

const CORPUS: &str = include_str!("../tests/corpora/sqllineage-tests.jsonl");
const PASSES: usize = 15;

fn main() {
    let cases: Vec<(String, SqlOptions)> = CORPUS
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("corpus line");
            let dialect: Dialect = v["dialect"]
                .as_str()
                .unwrap_or("generic")
                .parse()
                .expect("dialect");
            (
                v["sql"].as_str().unwrap_or("").to_string(),
                SqlOptions::new(dialect),
            )
        })
        .collect();
    let bytes: usize = cases.iter().map(|(s, _)| s.len()).sum();

    // Warm up once (and count statements).
    let statements: usize = cases
        .iter()
        .filter_map(|(sql, opts)| extract(sql, opts).ok())
        .map(|l| l.statements.len())
        .sum();

    let mut rates = Vec::with_capacity(PASSES);
    for _ in 0..PASSES {
        let start = Instant::now();
        for (sql, opts) in &cases {
            let _ = black_box(extract(black_box(sql), opts));
        }
        let secs = start.elapsed().as_secs_f64();
        rates.push(statements as f64 / secs);
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    let median = rates[rates.len() / 2];
    println!(
        "sql_extract: {} cases, {} statements, {} KiB per pass, {} passes",
        cases.len(),
        statements,
        bytes / 1024,
        PASSES
    );
    println!(
        "sql_extract: median {:.0} statements/s (min {:.0}, max {:.0}); {:.1} MiB/s of SQL",
        median,
        rates[0],
        rates[rates.len() - 1],
        median / statements as f64 * bytes as f64 / (1024.0 * 1024.0)
    );
}
