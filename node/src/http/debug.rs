//! `POST /debug/faults`: cut this node off from named peers, for partition
//! tests. Served only when the node runs with `--fault-injection`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use libp2p::PeerId;
use serde::Deserialize;

use crate::server::Shared;

/// `{"drop": ["12D3KooW…", …]}`: drop all traffic with exactly these peers
/// (an empty list heals).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultsBody {
    drop: Vec<String>,
}

pub(crate) async fn faults(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let body: FaultsBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("expected {{\"drop\": [PEER_ID, …]}}: {e}"),
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
    tracing::warn!(peers = ?body.drop, "fault injection: dropping traffic with these peers");
    shared.p2p.faults.drop_only(peers);
    Json(serde_json::json!({ "dropped": body.drop })).into_response()
}
