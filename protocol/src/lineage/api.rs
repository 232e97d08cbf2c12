//! The lineage interface as values: one request type for every operation and
//! query, answered by [`answer`]. The node serves it over the client protocol
//! (JSON inside a frame) and over HTTP (`/api/v1/`), so both always offer the
//! same operations with the same JSON shapes.

use serde::{Deserialize, Serialize};

use super::document::{Committed, EntityField, Head, LineageDoc};
use super::edit::Op;
use super::error::{EditError, QueryError};
use super::model::{EntityId, EntityKind, EntityRecord, Millis, Role};
use super::query::{
    AuditFinding, AuditOptions, Impacted, NamingRule, NamingRules, NamingViolation, Page,
    PageRequest, PathFound, PathOptions, RankOptions, Ranked, Reached, RecoveryOptions,
    RecoveryPlan, RootCause, RootCauseOptions, Statistics, Traversal,
};

/// The namespace used when none is named.
pub const DEFAULT_NAMESPACE: &str = "default";

/// One operation or query on a namespace's graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "request")]
#[non_exhaustive]
pub enum LineageRequest {
    /// Apply operations as one atomic change. Answer: [`Committed`].
    Apply {
        /// The operations, in order.
        ops: Vec<Op>,
    },
    /// One entity with its role and conflicting fields. Answer: [`Shown`].
    Show {
        /// The entity.
        id: EntityId,
    },
    /// What an entity is derived from. Answer: `Page<Reached>`.
    Upstream {
        /// The start.
        id: EntityId,
        /// Depth, filters, page.
        #[serde(default)]
        traversal: Traversal,
    },
    /// What is derived from an entity. Answer: `Page<Reached>`.
    Downstream {
        /// The start.
        id: EntityId,
        /// Depth, filters, page.
        #[serde(default)]
        traversal: Traversal,
    },
    /// Everything downstream with distance and one path. Answer: `Page<Impacted>`.
    Impact {
        /// The start.
        id: EntityId,
        /// Depth, filters, page.
        #[serde(default)]
        traversal: Traversal,
    },
    /// A shortest path. Answer: `Option<PathFound>`.
    Path {
        /// Where it starts.
        from: EntityId,
        /// Where it ends.
        to: EntityId,
        /// Depth limit, edge kinds.
        #[serde(default)]
        options: PathOptions,
    },
    /// Entities by downstream reach. Answer: `Page<Ranked>`.
    Rank {
        /// Kinds, page.
        #[serde(default)]
        options: RankOptions,
    },
    /// Entities with no upstream and no downstream. Answer: `Page<EntityId>`.
    Islands {
        /// Kinds to report (empty = all).
        #[serde(default)]
        entity_kinds: Vec<EntityKind>,
        /// The page.
        #[serde(default)]
        page: PageRequest,
    },
    /// Root-cause candidates of a failed job. Answer: [`RootCause`].
    RootCause {
        /// The failed entity.
        id: EntityId,
        /// Depth, page.
        #[serde(default)]
        options: RootCauseOptions,
    },
    /// What to re-run after fixing an entity, in order. Answer: [`RecoveryPlan`].
    Recover {
        /// The fixed entity.
        id: EntityId,
        /// Edge kinds, page.
        #[serde(default)]
        options: RecoveryOptions,
    },
    /// Edges and paths that leak a security level. Answer: `Page<AuditFinding>`.
    Audit {
        /// The page.
        #[serde(default)]
        options: AuditOptions,
    },
    /// Entities whose names break a rule. Answer: `Page<NamingViolation>`.
    Names {
        /// One regex per kind.
        rules: Vec<NamingRule>,
        /// The page.
        #[serde(default)]
        page: PageRequest,
    },
    /// Counts, degrees and coverage. Answer: [`Statistics`].
    Stats,
    /// The document's heads: replicas with equal heads hold the same graph.
    /// Answer: `Vec<Head>` (hex strings).
    Heads,
    /// Record one OpenLineage event (RunEvent, JobEvent or DatasetEvent).
    /// Answer: `{"ops": N, "duplicate": bool, "warnings": [...]}`. A node also
    /// deduplicates retried events and batches commits; see
    /// [`openlineage`](super::openlineage).
    Ingest {
        /// The event, as OpenLineage clients send it.
        event: serde_json::Value,
    },
}

impl LineageRequest {
    /// Whether the request changes the graph.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            LineageRequest::Apply { .. } | LineageRequest::Ingest { .. }
        )
    }
}

/// The answer to [`LineageRequest::Show`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shown {
    /// The entity.
    pub entity: EntityRecord,
    /// Source, intermediate or sink, derived from its edges.
    pub role: Role,
    /// Direct upstream entities.
    pub upstream: Vec<EntityId>,
    /// Direct downstream entities.
    pub downstream: Vec<EntityId>,
    /// Fields written concurrently on different nodes (the shown value is the
    /// deterministic winner).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<EntityField>,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The edit was refused (nothing was applied).
    #[error(transparent)]
    Edit(#[from] EditError),
    /// The query cannot be answered.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// Not a valid OpenLineage event.
    #[error(transparent)]
    Event(#[from] super::openlineage::EventError),
}

impl ApiError {
    /// Whether the error names an entity that does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::Query(QueryError::UnknownEntity(_)))
    }
}

/// Answers `request` from `doc` (writes are stamped `now`), as JSON.
pub fn answer(
    doc: &mut LineageDoc,
    request: &LineageRequest,
    now: Millis,
) -> Result<serde_json::Value, ApiError> {
    let value = match request {
        LineageRequest::Apply { ops } => to_json::<Committed>(&doc.apply(now, ops)?),
        LineageRequest::Ingest { event } => {
            let bytes = serde_json::to_vec(event).expect("JSON values serialize");
            let ingested = super::openlineage::ops_for_event(&bytes)?;
            let ops = super::openlineage::StaleRuns::new(Some(doc.index())).filter(ingested.ops);
            let committed = doc.apply(now, &ops)?;
            serde_json::json!({
                "ops": committed.ops, "duplicate": false, "warnings": ingested.warnings,
            })
        }
        LineageRequest::Show { id } => to_json(&show(doc, id)?),
        LineageRequest::Upstream { id, traversal } => {
            to_json::<Page<Reached>>(&doc.index().upstream(id, traversal)?)
        }
        LineageRequest::Downstream { id, traversal } => {
            to_json::<Page<Reached>>(&doc.index().downstream(id, traversal)?)
        }
        LineageRequest::Impact { id, traversal } => {
            to_json::<Page<Impacted>>(&doc.index().impact(id, traversal)?)
        }
        LineageRequest::Path { from, to, options } => {
            to_json::<Option<PathFound>>(&doc.index().path(from, to, options)?)
        }
        LineageRequest::Rank { options } => to_json::<Page<Ranked>>(&doc.index().rank(options)?),
        LineageRequest::Islands { entity_kinds, page } => {
            to_json::<Page<EntityId>>(&doc.index().islands(entity_kinds, page)?)
        }
        LineageRequest::RootCause { id, options } => {
            to_json::<RootCause>(&doc.index().root_cause(id, options)?)
        }
        LineageRequest::Recover { id, options } => {
            to_json::<RecoveryPlan>(&doc.index().recovery_order(id, options)?)
        }
        LineageRequest::Audit { options } => {
            to_json::<Page<AuditFinding>>(&doc.index().audit(options)?)
        }
        LineageRequest::Names { rules, page } => {
            let rules = NamingRules::new(rules)?;
            to_json::<Page<NamingViolation>>(&doc.index().naming_violations(&rules, page)?)
        }
        LineageRequest::Stats => to_json::<Statistics>(&doc.index().statistics()),
        LineageRequest::Heads => to_json::<Vec<Head>>(&doc.heads()),
    };
    Ok(value)
}

fn show(doc: &LineageDoc, id: &EntityId) -> Result<Shown, QueryError> {
    let index = doc.index();
    let entity = index
        .entity(id)
        .ok_or_else(|| QueryError::UnknownEntity(id.clone()))?;
    let role = index
        .role(id)
        .ok_or_else(|| QueryError::UnknownEntity(id.clone()))?;
    let ids = |page: Page<Reached>| page.items.into_iter().map(|r| r.id).collect();
    Ok(Shown {
        entity,
        role,
        upstream: ids(index.upstream(id, &Traversal::depth(1))?),
        downstream: ids(index.downstream(id, &Traversal::depth(1))?),
        conflicts: doc.conflicted_fields(id),
    })
}

fn to_json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("lineage answers serialize to JSON")
}
