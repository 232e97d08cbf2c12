//! Bodies of `POST /api/v1/query` (and the client protocol's lineage
//! requests): any bytes as a JSON `LineageRequest`, answered on a small graph
//! with a cycle. A request is answered or refused with an error; queries with
//! any depth, filter, page or cursor return, and edits keep the graph index
//! equal to one rebuilt from the document.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stemma_protocol::lineage::{EdgeSpec, EntityId, LineageDoc, LineageRequest, NewEntity, answer};

const NOW: i64 = 1_700_000_000_000;

fn graph() -> LineageDoc {
    let mut doc = LineageDoc::new("default", b"fuzz").expect("a valid namespace and actor");
    doc.edit(NOW, |tx| {
        let names = [
            "table:raw.orders",
            "job:load",
            "table:sales.orders",
            "report:revenue",
        ];
        for name in names {
            tx.upsert(&NewEntity::parse(name)?)?;
        }
        for pair in names.windows(2) {
            let (a, b) = (EntityId::parse(pair[0])?, EntityId::parse(pair[1])?);
            tx.link(&a, &b, &EdgeSpec::default())?;
        }
        // A cycle back to the start.
        let (last, first) = (EntityId::parse(names[3])?, EntityId::parse(names[0])?);
        tx.link(&last, &first, &EdgeSpec::default())
    })
    .expect("a valid edit");
    doc
}

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<LineageRequest>(data) else {
        return;
    };
    let mut doc = graph();
    if answer(&mut doc, &request, NOW).is_ok() {
        assert_eq!(doc.index().live_state(), doc.rebuild_index().live_state());
    }
});
