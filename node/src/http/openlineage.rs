//! `POST /api/v1/lineage`: OpenLineage's HTTP transport. Accepts what the
//! OpenLineage clients send (Python, Airflow, Spark, dbt): one RunEvent,
//! JobEvent or DatasetEvent per request, JSON or gzip (`Content-Encoding:
//! gzip`), with an optional `Authorization: Bearer` key (checked when the
//! node has `openlineage_api_key`). 201 once recorded; 400 naming the field
//! of an invalid event; 413 over the size limit; nothing of a refused event
//! is recorded.

use std::io::Read as _;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use stemma_protocol::lineage::DEFAULT_NAMESPACE;

use crate::lineage::LineageErrorKind;
use crate::lineage::ingest::IngestError;
use crate::server::Shared;

/// The largest event accepted, compressed or not.
pub(crate) const MAX_EVENT_BYTES: usize = 16 << 20;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct IngestParams {
    namespace: Option<String>,
}

fn refuse(status: StatusCode, message: String, field: Option<&str>) -> Response {
    let mut body = serde_json::json!({ "error": message });
    if let Some(field) = field {
        body["field"] = field.into();
    }
    (status, Json(body)).into_response()
}

pub(crate) async fn ingest(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<IngestParams>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(key) = &shared.openlineage_api_key {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given.map(str::trim) != Some(key.as_str()) {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "missing or wrong Authorization: Bearer key (the node's openlineage_api_key)"
                    .into(),
                None,
            );
        }
    }
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let json = if gzip {
        let mut out = Vec::new();
        let decoder = flate2::read::GzDecoder::new(&body[..]);
        if let Err(e) = decoder
            .take(MAX_EVENT_BYTES as u64 + 1)
            .read_to_end(&mut out)
        {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("invalid gzip body: {e}"),
                None,
            );
        }
        if out.len() > MAX_EVENT_BYTES {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the event is over {MAX_EVENT_BYTES} bytes once decompressed"),
                None,
            );
        }
        out
    } else {
        body.to_vec()
    };
    let namespace = params.namespace.unwrap_or_else(|| DEFAULT_NAMESPACE.into());
    match shared.ingest.event(&namespace, &json).await {
        Ok(outcome) => (StatusCode::CREATED, Json(outcome)).into_response(),
        Err(IngestError::Event(e)) => refuse(StatusCode::BAD_REQUEST, e.to_string(), e.field()),
        Err(IngestError::Lineage(e)) => {
            let status = match e.kind() {
                LineageErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            };
            refuse(status, e.to_string(), None)
        }
    }
}
