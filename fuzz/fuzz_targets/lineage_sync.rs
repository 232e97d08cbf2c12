//! What a peer sends on the lineage sync stream, and what a node reads back
//! from its own lineage store: any bytes as a sync frame (whole, and as the
//! body after a valid header, to reach Automerge's decoder), as a saved
//! document and as an incremental save. Each is applied or refused with an
//! error; nothing panics, and whatever was applied leaves the graph index
//! equal to one rebuilt from the document.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stemma_protocol::lineage::{EdgeSpec, EntityId, LineageDoc, NewEntity, PeerSync, SyncHeader};

const NOW: i64 = 1_700_000_000_000;

fn graph() -> LineageDoc {
    let mut doc = LineageDoc::new("default", b"fuzz-a").expect("a valid namespace and actor");
    doc.edit(NOW, |tx| {
        tx.upsert(&NewEntity::parse("table:sales.orders")?)?;
        tx.upsert(&NewEntity::parse("report:revenue")?)?;
        tx.link(
            &EntityId::parse("table:sales.orders")?,
            &EntityId::parse("report:revenue")?,
            &EdgeSpec::default(),
        )
    })
    .expect("a valid edit");
    doc
}

fn check(doc: &LineageDoc) {
    assert_eq!(doc.index().live_state(), doc.rebuild_index().live_state());
}

fuzz_target!(|data: &[u8]| {
    let source = graph();
    let mut doc = source.fork(b"fuzz-b").expect("a valid actor");

    // The whole frame.
    let mut peer = PeerSync::new();
    if doc.receive_sync(&mut peer, data, NOW).is_ok() {
        check(&doc);
    }

    // A valid header (this document's namespace and epoch), then the bytes.
    let valid = source
        .generate_sync_message(&mut PeerSync::new())
        .expect("a first message");
    let (_, body) = SyncHeader::parse(&valid).expect("a valid header");
    let mut frame = valid[..valid.len() - body.len()].to_vec();
    frame.extend_from_slice(data);
    let mut peer = PeerSync::new();
    if doc.receive_sync(&mut peer, &frame, NOW).is_ok() {
        check(&doc);
    }

    // A stored document, and a stored increment.
    if let Ok(loaded) = LineageDoc::load("default", b"fuzz-c", data) {
        check(&loaded);
    }
    if doc.load_incremental(data).is_ok() {
        check(&doc);
    }
});
