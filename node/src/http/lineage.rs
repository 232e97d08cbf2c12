//! The lineage API over HTTP: `/api/v1/…`, JSON in and out (docs/API.md).
//! Every route builds a [`LineageRequest`] and returns its answer, exactly what
//! the client protocol returns for the same request.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use stemma_protocol::lineage::{
    AuditOptions, Cursor, DEFAULT_NAMESPACE, EdgeKind, EntityId, EntityKind, LineageRequest,
    NamingRule, Op, PageRequest, PathOptions, RankOptions, RecoveryOptions, RootCauseOptions,
    Traversal,
};

use crate::lineage::LineageErrorKind;
use crate::server::Shared;

/// Query-string parameters shared by the routes (each uses what applies).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Params {
    namespace: Option<String>,
    depth: Option<u32>,
    /// Comma-separated entity kinds to report.
    kinds: Option<String>,
    /// Comma-separated edge kinds to follow.
    edge_kinds: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// An error as JSON: `{"error": "...", "kind": "not_found" | "invalid" | "internal"}`.
fn error(status: StatusCode, kind: &str, message: String) -> Response {
    let body = serde_json::json!({ "error": message, "kind": kind });
    (status, Json(body)).into_response()
}

fn invalid(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid", message.into())
}

/// A request the API cannot make sense of: 400 with the reason.
pub(crate) struct BadRequest(String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        invalid(self.0)
    }
}

impl Params {
    fn namespace(&self) -> String {
        self.namespace
            .clone()
            .unwrap_or_else(|| DEFAULT_NAMESPACE.into())
    }

    fn page(&self) -> PageRequest {
        PageRequest {
            limit: self.limit,
            after: self.cursor.as_deref().map(Cursor::parse),
        }
    }

    fn list<T: std::str::FromStr>(text: &Option<String>, what: &str) -> Result<Vec<T>, BadRequest>
    where
        T::Err: std::fmt::Display,
    {
        text.as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().map_err(|e| BadRequest(format!("{what}: {e}"))))
            .collect()
    }

    fn traversal(&self) -> Result<Traversal, BadRequest> {
        Ok(Traversal {
            depth: self.depth,
            entity_kinds: Self::list::<EntityKind>(&self.kinds, "kinds")?,
            edge_kinds: Self::list::<EdgeKind>(&self.edge_kinds, "edge_kinds")?,
            page: self.page(),
        })
    }
}

fn entity(text: &str) -> Result<EntityId, BadRequest> {
    text.parse().map_err(|e| {
        BadRequest(format!(
            "entity {text:?}: {e} (write KIND:NAME, e.g. table:sales.orders)"
        ))
    })
}

/// Runs a request and turns its answer or error into a response.
async fn respond(shared: &Shared, namespace: String, request: LineageRequest) -> Response {
    match shared.lineage.request(namespace, request).await {
        Ok(answer) => Json(answer).into_response(),
        Err(e) => match e.kind() {
            LineageErrorKind::NotFound => error(StatusCode::NOT_FOUND, "not_found", e.to_string()),
            LineageErrorKind::Invalid => invalid(e.to_string()),
            LineageErrorKind::Internal => {
                error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
        },
    }
}

/// `POST /api/v1/query`: any [`LineageRequest`] as the body.
pub(crate) async fn query(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<Params>,
    body: axum::body::Bytes,
) -> Response {
    match serde_json::from_slice::<LineageRequest>(&body) {
        // Events take the node's ingestion path (deduplicated, group-committed),
        // as on POST /api/v1/lineage.
        Ok(LineageRequest::Ingest { event }) => {
            let json = serde_json::to_vec(&event).expect("JSON values serialize");
            match shared.ingest.event(&params.namespace(), &json).await {
                Ok(outcome) => (StatusCode::CREATED, Json(outcome)).into_response(),
                Err(e) => invalid(e.to_string()),
            }
        }
        Ok(request) => respond(&shared, params.namespace(), request).await,
        Err(e) => invalid(format!("invalid lineage request: {e}")),
    }
}

/// The body of `POST /api/v1/ops`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OpsBody {
    ops: Vec<Op>,
}

/// `POST /api/v1/ops`: `{"ops": [...]}` applied as one change.
pub(crate) async fn ops(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<Params>,
    body: axum::body::Bytes,
) -> Response {
    match serde_json::from_slice::<OpsBody>(&body) {
        Ok(OpsBody { ops }) => {
            respond(&shared, params.namespace(), LineageRequest::Apply { ops }).await
        }
        Err(e) => invalid(format!("invalid operations: {e}")),
    }
}

/// `GET /api/v1/entities/{id}`.
pub(crate) async fn entity_show(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Result<Response, BadRequest> {
    entity_query(State(shared), Path((id, "show".into())), Query(params)).await
}

/// `GET /api/v1/entities/{id}/{query}` (a `/` in the id is written `%2F`).
pub(crate) async fn entity_query(
    State(shared): State<Arc<Shared>>,
    Path((id, what)): Path<(String, String)>,
    Query(params): Query<Params>,
) -> Result<Response, BadRequest> {
    let id = entity(&id)?;
    let traversal = params.traversal()?;
    let request = match what.as_str() {
        "show" => LineageRequest::Show { id },
        "upstream" => LineageRequest::Upstream { id, traversal },
        "downstream" => LineageRequest::Downstream { id, traversal },
        "impact" => LineageRequest::Impact { id, traversal },
        "root-cause" => LineageRequest::RootCause {
            id,
            options: RootCauseOptions {
                depth: params.depth,
                page: params.page(),
            },
        },
        "recovery" => LineageRequest::Recover {
            id,
            options: RecoveryOptions {
                edge_kinds: traversal.edge_kinds,
                page: params.page(),
            },
        },
        other => {
            return Ok(error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!(
                    "no entity query {other:?}: use upstream, downstream, impact, root-cause or recovery"
                ),
            ));
        }
    };
    Ok(respond(&shared, params.namespace(), request).await)
}

/// `GET /api/v1/{query}` for the graph-wide queries.
pub(crate) async fn graph_query(
    State(shared): State<Arc<Shared>>,
    Path(what): Path<String>,
    Query(params): Query<Params>,
) -> Result<Response, BadRequest> {
    let kinds = Params::list::<EntityKind>(&params.kinds, "kinds")?;
    let request = match what.as_str() {
        "path" => {
            let (Some(from), Some(to)) = (&params.from, &params.to) else {
                return Err(BadRequest("path needs ?from=KIND:NAME&to=KIND:NAME".into()));
            };
            let edge_kinds = Params::list::<EdgeKind>(&params.edge_kinds, "edge_kinds")?;
            LineageRequest::Path {
                from: entity(from)?,
                to: entity(to)?,
                options: PathOptions {
                    max_depth: params.depth,
                    edge_kinds,
                },
            }
        }
        "rank" => LineageRequest::Rank {
            options: RankOptions {
                entity_kinds: kinds,
                page: params.page(),
            },
        },
        "islands" => LineageRequest::Islands {
            entity_kinds: kinds,
            page: params.page(),
        },
        "audit" => LineageRequest::Audit {
            options: AuditOptions {
                page: params.page(),
            },
        },
        "stats" => LineageRequest::Stats,
        "heads" => LineageRequest::Heads,
        other => {
            return Ok(error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no lineage query {other:?} (see docs/API.md)"),
            ));
        }
    };
    Ok(respond(&shared, params.namespace(), request).await)
}

/// The body of `POST /api/v1/names`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NamesBody {
    rules: Vec<NamingRule>,
}

/// `POST /api/v1/names`: `{"rules": [{"kind": "table", "pattern": "^[a-z_.]+$"}]}`.
pub(crate) async fn names(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<Params>,
    body: axum::body::Bytes,
) -> Response {
    match serde_json::from_slice::<NamesBody>(&body) {
        Ok(NamesBody { rules }) => {
            let page = params.page();
            respond(
                &shared,
                params.namespace(),
                LineageRequest::Names { rules, page },
            )
            .await
        }
        Err(e) => invalid(format!("invalid naming rules: {e}")),
    }
}
