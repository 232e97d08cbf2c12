//! The lineage graph from a client: every operation and query of
//! [`LineageRequest`], typed. Each call names the namespace (`"default"`
//! unless you keep several graphs apart).

use serde::de::DeserializeOwned;
use stemma_protocol::lineage::{
    AuditFinding, AuditOptions, Committed, EntityId, EntityKind, Head, Impacted, LineageRequest,
    NamingRule, NamingViolation, Op, Page, PageRequest, PathFound, PathOptions, RankOptions,
    Ranked, Reached, RecoveryOptions, RecoveryPlan, RootCause, RootCauseOptions, Shown, Statistics,
    Traversal,
};
use stemma_protocol::wire::{Request, Response};

use crate::{Client, Error, unexpected};

impl Client {
    /// Sends any lineage request and decodes its answer as `T` (see
    /// [`LineageRequest`] for the answer type of each).
    pub async fn lineage<T: DeserializeOwned>(
        &self,
        namespace: &str,
        request: &LineageRequest,
    ) -> Result<T, Error> {
        let request = Request::Lineage {
            namespace: namespace.to_string(),
            request: serde_json::to_vec(request).expect("lineage requests serialize"),
        };
        match self.call(&request).await? {
            Response::Lineage(json) => serde_json::from_slice(&json)
                .map_err(|e| Error::Protocol(format!("malformed lineage answer: {e}"))),
            other => Err(unexpected(other)),
        }
    }

    /// Applies operations as one atomic change.
    pub async fn lineage_apply(&self, namespace: &str, ops: Vec<Op>) -> Result<Committed, Error> {
        self.lineage(namespace, &LineageRequest::Apply { ops })
            .await
    }

    /// One entity, its role, direct neighbours and conflicting fields.
    pub async fn lineage_show(&self, namespace: &str, id: &EntityId) -> Result<Shown, Error> {
        self.lineage(namespace, &LineageRequest::Show { id: id.clone() })
            .await
    }

    /// What `id` is derived from.
    pub async fn upstream(
        &self,
        namespace: &str,
        id: &EntityId,
        traversal: Traversal,
    ) -> Result<Page<Reached>, Error> {
        let id = id.clone();
        self.lineage(namespace, &LineageRequest::Upstream { id, traversal })
            .await
    }

    /// What is derived from `id`.
    pub async fn downstream(
        &self,
        namespace: &str,
        id: &EntityId,
        traversal: Traversal,
    ) -> Result<Page<Reached>, Error> {
        let id = id.clone();
        self.lineage(namespace, &LineageRequest::Downstream { id, traversal })
            .await
    }

    /// Everything downstream of `id`, with distance and one path each.
    pub async fn impact(
        &self,
        namespace: &str,
        id: &EntityId,
        traversal: Traversal,
    ) -> Result<Page<Impacted>, Error> {
        let id = id.clone();
        self.lineage(namespace, &LineageRequest::Impact { id, traversal })
            .await
    }

    /// A shortest path from `from` to `to`, if any.
    pub async fn path(
        &self,
        namespace: &str,
        from: &EntityId,
        to: &EntityId,
        options: PathOptions,
    ) -> Result<Option<PathFound>, Error> {
        let (from, to) = (from.clone(), to.clone());
        self.lineage(namespace, &LineageRequest::Path { from, to, options })
            .await
    }

    /// Entities ranked by downstream reach.
    pub async fn rank(&self, namespace: &str, options: RankOptions) -> Result<Page<Ranked>, Error> {
        self.lineage(namespace, &LineageRequest::Rank { options })
            .await
    }

    /// Entities with no upstream and no downstream.
    pub async fn islands(
        &self,
        namespace: &str,
        entity_kinds: Vec<EntityKind>,
        page: PageRequest,
    ) -> Result<Page<EntityId>, Error> {
        self.lineage(namespace, &LineageRequest::Islands { entity_kinds, page })
            .await
    }

    /// Root-cause candidates of a failed job: its upstream with last runs.
    pub async fn root_cause(
        &self,
        namespace: &str,
        id: &EntityId,
        options: RootCauseOptions,
    ) -> Result<RootCause, Error> {
        let id = id.clone();
        self.lineage(namespace, &LineageRequest::RootCause { id, options })
            .await
    }

    /// What to re-run after fixing `id`, in topological order.
    pub async fn recovery_order(
        &self,
        namespace: &str,
        id: &EntityId,
        options: RecoveryOptions,
    ) -> Result<RecoveryPlan, Error> {
        let id = id.clone();
        self.lineage(namespace, &LineageRequest::Recover { id, options })
            .await
    }

    /// Edges and paths along which data flows to a lower security level.
    pub async fn audit(
        &self,
        namespace: &str,
        options: AuditOptions,
    ) -> Result<Page<AuditFinding>, Error> {
        self.lineage(namespace, &LineageRequest::Audit { options })
            .await
    }

    /// Entities whose names break the rules (one regex per kind).
    pub async fn naming_violations(
        &self,
        namespace: &str,
        rules: Vec<NamingRule>,
        page: PageRequest,
    ) -> Result<Page<NamingViolation>, Error> {
        self.lineage(namespace, &LineageRequest::Names { rules, page })
            .await
    }

    /// Counts by kind and role, degree distribution and coverage.
    pub async fn lineage_stats(&self, namespace: &str) -> Result<Statistics, Error> {
        self.lineage(namespace, &LineageRequest::Stats).await
    }

    /// The document's heads: nodes with equal heads hold the same graph.
    pub async fn lineage_heads(&self, namespace: &str) -> Result<Vec<Head>, Error> {
        self.lineage(namespace, &LineageRequest::Heads).await
    }
}
