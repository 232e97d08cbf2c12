//! Bodies of `POST /api/v1/lineage`: any bytes as an OpenLineage event. An
//! event is turned into lineage operations or refused with an error; the
//! operations of an accepted event apply to a graph or are refused, and
//! nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stemma_protocol::lineage::LineageDoc;
use stemma_protocol::lineage::openlineage::ops_for_event;

fuzz_target!(|data: &[u8]| {
    let Ok(ingested) = ops_for_event(data) else {
        return;
    };
    let mut doc = LineageDoc::new("default", b"fuzz").expect("a valid namespace and actor");
    if doc.apply(1_700_000_000_000, &ingested.ops).is_ok() {
        let _ = doc.index().statistics();
    }
});
