//! SQL sent for lineage extraction (`stemma lineage sql`, the HTTP API,
//! OpenLineage's SQL facet), in every dialect: the first byte picks the
//! dialect, the rest is the SQL. Extraction succeeds or says why; what it
//! finds becomes operations that apply to a graph or are refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stemma_protocol::lineage::{LineageDoc, ops_for_sql};
use stemma_protocol::sql::{self, Dialect, SqlOptions};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let name = Dialect::NAMES[usize::from(pick) % Dialect::NAMES.len()];
    let dialect: Dialect = name.parse().expect("a listed dialect");
    let Ok(lineage) = sql::extract(text, &SqlOptions::new(dialect)) else {
        return;
    };
    let Ok(ops) = ops_for_sql(&lineage, text, None) else {
        return;
    };
    let mut doc = LineageDoc::new("default", b"fuzz").expect("a valid namespace and actor");
    let _ = doc.apply(1_700_000_000_000, &ops);
});
