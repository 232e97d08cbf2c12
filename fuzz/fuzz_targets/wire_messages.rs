//! Every frame a client or a peer can send a node, and every answer a client
//! reads: the length header, the client protocol's messages, the replica
//! protocol's, and stored manifests. Each must decode or fail with an error,
//! never panic, and a decoded message must encode again within the frame
//! limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stemma_protocol::Manifest;
use stemma_protocol::replication::{ReplicaRequest, ReplicaResponse};
use stemma_protocol::wire::{self, FRAME_HEADER_LEN, GetFrame, Hello, PutFrame, Request, Response};

/// Decodes `data` as a `T`; what decodes must encode again.
fn decode<'a, T: serde::Deserialize<'a> + serde::Serialize>(data: &'a [u8]) {
    if let Ok(msg) = wire::decode::<T>(data) {
        let mut out = Vec::new();
        wire::encode(&msg, &mut out).expect("a decoded message encodes again");
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some(header) = data.first_chunk::<FRAME_HEADER_LEN>() {
        let _ = wire::decode_len(*header);
    }
    decode::<Hello>(data);
    decode::<Request>(data);
    decode::<PutFrame<'_>>(data);
    decode::<Response>(data);
    decode::<GetFrame<'_>>(data);
    decode::<ReplicaRequest>(data);
    decode::<ReplicaResponse>(data);
    if let Some(manifest) = Manifest::decode(data) {
        assert_eq!(Manifest::decode(&manifest.encode()), Some(manifest));
    }
});
