//! `POST /debug/faults`: cut this node off from named peers, for partition
//! tests, and make it refuse name writes, for tests of failed puts. Served
//! only when the node runs with `--fault-injection`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use libp2p::PeerId;
use serde::Deserialize;

use crate::server::Shared;

/// `{"drop": ["12D3KooW…", …], "refuse_names": false}`: drop all traffic
/// with exactly these peers (an empty list heals); refuse every name write
/// while `refuse_names` is true (default false).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultsBody {
    drop: Vec<String>,
    #[serde(default)]
    refuse_names: bool,
}

pub(crate) async fn faults(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let body: FaultsBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("expected {{\"drop\": [PEER_ID, …], \"refuse_names\": BOOL}}: {e}"),
            )
                .into_response();
        }
    };
    let mut peers = Vec::new();
    for text in &body.drop {
        match text.parse::<PeerId>() {
            Ok(peer) => peers.push(peer),
            Err(e) => {
                return (
                    StatusCode::BAD_REQUEST,
                    format!("not a peer id {text:?}: {e}"),
                )
                    .into_response();
            }
        }
    }
    tracing::warn!(peers = ?body.drop, refuse_names = body.refuse_names, "fault injection: dropping traffic with these peers");
    shared.p2p.faults.drop_only(peers);
    shared.p2p.faults.set_refuse_names(body.refuse_names);
    Json(serde_json::json!({ "dropped": body.drop, "refuse_names": body.refuse_names }))
        .into_response()
}
