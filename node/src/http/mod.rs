//! The HTTP endpoint: `GET /health`, `GET /metrics` (Prometheus / OpenMetrics
//! text), the lineage API under `/api/v1/` (with OpenLineage's
//! `POST /api/v1/lineage`), `GET /status` and `GET /debug/chunks` (placement
//! and what this node holds) and, for tests, `/debug/faults` and
//! `/debug/corrupt-chunk`.

mod admin;
mod debug;
mod lineage;
mod openlineage;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::server::Shared;

pub(crate) fn router(shared: Arc<Shared>, fault_injection: bool) -> Router {
    let mut router = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/status", get(admin::status))
        .route("/debug/chunks", get(admin::chunks))
        .route(
            "/api/v1/lineage",
            post(openlineage::ingest).layer(DefaultBodyLimit::max(openlineage::MAX_EVENT_BYTES)),
        )
        .route("/api/v1/query", post(lineage::query))
        .route("/api/v1/ops", post(lineage::ops))
        .route("/api/v1/names", post(lineage::names))
        .route("/api/v1/entities/{id}", get(lineage::entity_show))
        .route("/api/v1/entities/{id}/{query}", get(lineage::entity_query))
        .route("/api/v1/{query}", get(lineage::graph_query));
    if fault_injection {
        router = router
            .route("/debug/faults", post(debug::faults))
            .route("/debug/corrupt-chunk", post(admin::corrupt_chunk));
    }
    router.with_state(shared)
}

async fn health(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let stopping = *shared.stopping.borrow();
    let status = if stopping {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = serde_json::json!({
        "status": if stopping { "stopping" } else { "ok" },
        "node_id": shared.node_id,
        "version": env!("CARGO_PKG_VERSION"),
    });
    (status, Json(body))
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let membership = crate::metrics::MembershipSnapshot {
        stats: shared.p2p.stats().await,
        states: shared
            .p2p
            .members()
            .await
            .into_iter()
            .map(|(m, _)| m.state)
            .collect(),
    };
    let store = shared.store.clone();
    match tokio::task::spawn_blocking(move || store.stats()).await {
        Ok(Ok(stats)) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            shared.metrics.render(stats, &membership),
        )
            .into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
