//! `GET /status` (layout, replicas per node, store figures) and
//! `GET /debug/chunks` (the chunk ids this node holds, optionally re-hashed):
//! read-only views that let operators and tests check placement through the
//! node rather than by assumption. With `--fault-injection`,
//! `POST /debug/corrupt-chunk {"chunk": ID}` damages a stored chunk.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use stemma_protocol::ChunkId;
use stemma_protocol::replication::effective_quorum;

use crate::server::Shared;

fn failed(e: impl std::fmt::Display) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
}

pub(crate) async fn status(State(shared): State<Arc<Shared>>) -> Response {
    let snap = match shared.replication.snapshot().await {
        Ok(snap) => snap,
        Err(e) => return failed(e),
    };
    let store = shared.store.clone();
    let stats = match tokio::task::spawn_blocking(move || store.stats()).await {
        Ok(Ok(stats)) => stats,
        Ok(Err(e)) => return failed(e),
        Err(e) => return failed(e),
    };
    let layout = &snap.layout;
    let per_node: BTreeMap<String, usize> = layout
        .replicas_per_node()
        .into_iter()
        .map(|(node, n)| (node.to_string(), n))
        .collect();
    let zones: BTreeMap<String, String> = layout
        .view()
        .nodes()
        .iter()
        .map(|n| (n.id.to_string(), n.zone.clone()))
        .collect();
    Json(serde_json::json!({
        "node_id": shared.node_id,
        "mode": if snap.alone() { "single" } else { "replicated" },
        "layout": {
            "nodes": layout.view().len(),
            "partitions": layout.partitions().get(),
            "replication": layout.replication(),
            "write_quorum": effective_quorum(shared.replication.write_quorum(), layout.replication()),
            "changes": snap.changes,
            "replicas_per_node": per_node,
            "zones": zones,
        },
        "store": {
            "objects": stats.objects,
            "chunks": stats.chunks,
            "chunk_bytes": stats.chunk_bytes,
        },
    }))
    .into_response()
}

/// `?verify=true` re-hashes every chunk and lists the corrupt ones.
#[derive(Debug, Deserialize)]
pub(crate) struct ChunksQuery {
    #[serde(default)]
    verify: bool,
}

pub(crate) async fn chunks(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<ChunksQuery>,
) -> Response {
    let store = shared.store.clone();
    match tokio::task::spawn_blocking(move || store.chunk_ids(query.verify)).await {
        Ok(Ok((ids, corrupt))) => Json(serde_json::json!({
            "node_id": shared.node_id,
            "chunks": ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "corrupt": corrupt.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }))
        .into_response(),
        Ok(Err(e)) => failed(e),
        Err(e) => failed(e),
    }
}

/// `{"chunk": ID}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CorruptBody {
    chunk: String,
}

pub(crate) async fn corrupt_chunk(
    State(shared): State<Arc<Shared>>,
    body: axum::body::Bytes,
) -> Response {
    let id = serde_json::from_slice::<CorruptBody>(&body)
        .map_err(|e| e.to_string())
        .and_then(|b| b.chunk.parse::<ChunkId>().map_err(|e| e.to_string()));
    let id = match id {
        Ok(id) => id,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("expected {{\"chunk\": CHUNK_ID}}: {e}"),
            )
                .into_response();
        }
    };
    tracing::warn!(chunk = %id, "fault injection: corrupting a stored chunk");
    match shared.writer.corrupt_for_tests(id).await {
        Ok(()) => Json(serde_json::json!({ "corrupted": id.to_string() })).into_response(),
        Err(e) => (StatusCode::NOT_FOUND, e.to_string()).into_response(),
    }
}
