//! The data-lineage graph: an Automerge document every node can edit, an index
//! kept current from its changes, and the queries users ask of it.
//!
//! Sans-IO like the rest of this crate: the node passes in its actor id, the
//! time and the bytes it received, and gets back bytes to store and to send.
//!
//! ```
//! use stemma_protocol::lineage::{EdgeSpec, EdgeKind, EntityId, LineageDoc, NewEntity, PeerSync, Traversal};
//!
//! let now = 1_700_000_000_000;
//! let mut a = LineageDoc::new("default", b"node-a/1").unwrap();
//! let orders = EntityId::parse("table:sales.orders").unwrap();
//! let revenue = EntityId::parse("report:revenue").unwrap();
//! a.edit(now, |tx| {
//!     tx.upsert(&NewEntity::parse("table:Sales.Orders")?)?;
//!     tx.link(&orders, &revenue, &EdgeSpec::of(EdgeKind::Transformation))
//! })
//! .unwrap();
//!
//! // Another node syncs with it over any reliable stream.
//! let mut b = LineageDoc::new("default", b"node-b/1").unwrap();
//! let (mut a_to_b, mut b_to_a) = (PeerSync::new(), PeerSync::new());
//! loop {
//!     let m1 = a.generate_sync_message(&mut a_to_b);
//!     if let Some(m) = &m1 { b.receive_sync_message(&mut b_to_a, m).unwrap(); }
//!     let m2 = b.generate_sync_message(&mut b_to_a);
//!     if let Some(m) = &m2 { a.receive_sync_message(&mut a_to_b, m).unwrap(); }
//!     if m1.is_none() && m2.is_none() { break; }
//! }
//! assert_eq!(a.heads(), b.heads());
//! let down = b.index().downstream(&orders, &Traversal::depth(10)).unwrap();
//! assert_eq!(down.items[0].id, revenue);
//! ```
//!
//! # Concurrency semantics
//!
//! The document merges without a coordinator; these are the rules every node
//! applies, decided here and tested in `protocol/tests/lineage_concurrency.rs`.
//! (The layout that makes them hold is in `keys.rs`.)
//!
//! 1. **Identity.** An entity's id is its canonical `kind:name` (kind and name
//!    lower-cased). The same entity created on two nodes offline is the *same*
//!    entity: its fields merge one by one. An edge's identity is
//!    `(source, target)`: one edge per ordered pair.
//! 2. **Concurrent edits of one field.** Every entity field (name, owner,
//!    description, level, schema, each free attribute, retired) is a
//!    last-writer-wins register. Writes that are concurrent (neither node saw
//!    the other's) are resolved by Automerge's deterministic rule (the larger
//!    operation id wins: the same answer on every node, whatever the merge
//!    order). The losing values are kept and visible through
//!    [`LineageDoc::conflicts`] until the field is written again. Tags are a
//!    set (one register per tag), so concurrent tag additions both survive.
//!    **Runs** are the exception: concurrent run reports resolve to the
//!    latest run by its own reported time, so root-cause analysis sees the run
//!    that really happened last.
//! 3. **An edge's definition** (kind, rule, volume, frequency, job, extra) is
//!    one register, written whole by `link` (merging into what the writer saw).
//!    Concurrent re-definitions of one edge resolve as in rule 2, whole
//!    ([`LineageDoc::edge_conflicts`] shows the losers). This is a measured
//!    choice: Automerge costs ~40 µs and tens of bytes per operation, an edge
//!    is written by one extractor at a time, and one register per edge instead
//!    of six cuts the cost of the 300,000-edge graph by four. The edge's last
//!    run is a second register.
//! 4. **Edit vs remove.** `remove` deletes the fields (and edges) its node
//!    has seen. **Remove wins** over every concurrent edit of the entity it
//!    removed (`set_attr`, `set_run`, `retire`, and upserts of the existing
//!    entity): the stray fields those edits leave are invisible, cleared when
//!    the entity is created again and dropped at the next epoch. The exception
//!    is a **creation**: an upsert on a node where the entity did not exist
//!    (it never saw it, or saw it removed) starts a new incarnation, which a
//!    concurrent removal of the old one does not touch — the entity exists
//!    after the merge with the creator's fields. (Automerge drops a write of
//!    the value a field already holds, so re-upserting an unchanged entity
//!    costs nothing — OpenLineage re-sends datasets on every run — and for the
//!    same reason cannot outvote a removal.)
//! 5. **Unlink and re-link.** `unlink` deletes the edge and its run. A later
//!    `link` of the same pair creates it afresh (attributes from the new
//!    link only; an old run is cleared). A `link` concurrent with an `unlink`
//!    that *changes* the definition survives (**link wins**: the unlink
//!    deleted only the definition it saw); one that re-states the definition
//!    unchanged writes nothing, so the unlink wins, as in rule 4. A run report
//!    concurrent with an unlink does not revive the edge.
//! 6. **Dangling edges.** Automerge has no referential integrity: a node may
//!    link to an entity another node removes concurrently. Read-time rule: an
//!    edge is **visible only while both endpoints exist**; queries, roles and
//!    statistics ignore hidden edges (statistics count them as
//!    `dangling_edges`). If the endpoint is created again, the edge reappears.
//!    Removal itself deletes every edge its node knows of, so only
//!    concurrently-made edges dangle.
//! 7. **Retire** is soft: a retired entity stays in the graph, flagged with
//!    the retirement time; `restore` undoes it. Retiring or removing a table
//!    does the same to its columns (a column `sales.orders.id` belongs to the
//!    table `sales.orders`; the link is derived from the ids).
//! 8. **Convergence.** Replicas that have the same changes have the same heads,
//!    the same saved bytes, the same index and the same query answers,
//!    whatever order the changes arrived in (property-tested with 3 replicas
//!    merged in every order).
//! 9. **Growth.** History is kept until the next epoch (see [`Epoch`] and
//!    `epoch.rs`): a fresh document holding only the live state, computed
//!    deterministically by every node from an agreed cut.

pub mod api;
mod cut;
mod document;
mod edge;
mod edit;
mod epoch;
mod error;
mod from_sql;
pub mod generate;
mod index;
mod keys;
mod model;
pub mod openlineage;
pub mod provenance;
pub mod query;
mod state;
mod sync;

pub use api::{ApiError, DEFAULT_NAMESPACE, LineageRequest, Shown, answer};
pub use cut::CutPeer;
pub use document::{Committed, DocStats, EntityField, Head, LineageDoc};
pub use edit::{Edit, Op};
pub use epoch::Epoch;
pub use error::{EditError, EpochError, LoadError, ModelError, QueryError, SyncError};
pub use from_sql::ops_for_sql;
pub use index::GraphIndex;
pub use keys::FieldValue;
pub use model::{
    Attr, AttrKey, Attributes, EdgeKind, EdgeRecord, EdgeSpec, EntityId, EntityKind, EntityRecord,
    MAX_KEY_LEN, MAX_NAME_LEN, MAX_VALUE_LEN, Millis, NewEntity, Role, RunState, RunStatus,
};
pub use query::{
    AuditFinding, AuditOptions, Candidate, Coverage, Cursor, DegreeBucket, Direction, FindingKind,
    Impacted, KindStats, NamingRule, NamingRules, NamingViolation, Page, PageRequest, PathFound,
    PathOptions, RankOptions, Ranked, Reached, RecoveryOptions, RecoveryPlan, RecoveryStep,
    RootCause, RootCauseOptions, Statistics, Traversal,
};
pub use state::LiveState;
pub use sync::{PeerSync, Received, SyncHeader};
