//! The questions users ask of the graph, answered from the [`GraphIndex`].
//!
//! Conventions shared by every query:
//!
//! - **Visibility.** Only existing entities are reported, and only edges whose
//!   two endpoints exist are followed (dangling edges are hidden).
//! - **Filters.** `edge_kinds` restricts which edges are *followed*;
//!   `entity_kinds` restricts which entities are *reported* (traversal passes
//!   through the others). Empty = all.
//! - **Determinism.** Results are sorted by a key that depends only on ids and
//!   distances (never on slot numbers or insertion order), and every choice of
//!   "one path" takes the smallest id at each step. Two replicas with the same
//!   live state give identical answers.
//! - **Pages.** Results that can be large come as a [`Page`]: at most `limit`
//!   items (default [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`]), the total, and a
//!   cursor for the next page. The cursor is the sort key of the last item
//!   (keyset paging), so it stays meaningful while the graph changes: the next
//!   page continues after that item in the current graph.
//!
//! [`GraphIndex`]: super::GraphIndex

mod audit;
mod naming;
mod rank;
mod recovery;
mod root_cause;
mod search;
mod stats;
mod traverse;

use serde::{Deserialize, Serialize};

pub use audit::{AuditFinding, AuditOptions, FindingKind};
pub use naming::{NamingRule, NamingRules, NamingViolation};
pub(crate) use rank::ReachTable;
pub use rank::{RankOptions, Ranked};
pub use recovery::{RecoveryOptions, RecoveryPlan, RecoveryStep};
pub use root_cause::{Candidate, RootCause, RootCauseOptions};
pub(crate) use search::MarkPool;
pub use stats::{Coverage, DegreeBucket, KindStats, Statistics};
pub use traverse::{Impacted, PathFound, PathOptions, Reached, Traversal};

use super::error::QueryError;
use super::index::GraphIndex;
use super::keys::SEP;
use super::model::{EdgeKind, EntityId, EntityKind};

/// The default page size.
pub const DEFAULT_LIMIT: usize = 1000;
/// The largest page size.
pub const MAX_LIMIT: usize = 10_000;

/// Which page to return.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    /// Items per page ([`DEFAULT_LIMIT`] if unset, at most [`MAX_LIMIT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Continue after this cursor (the `next` of the previous page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Cursor>,
}

impl PageRequest {
    /// The first page of `limit` items.
    pub fn first(limit: usize) -> Self {
        Self {
            limit: Some(limit),
            after: None,
        }
    }

    /// The page after `cursor`.
    pub fn after(limit: usize, cursor: Cursor) -> Self {
        Self {
            limit: Some(limit),
            after: Some(cursor),
        }
    }

    fn limit(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
    }
}

/// Where a page ended. Opaque: pass it back as [`PageRequest::after`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(String);

impl Cursor {
    fn from_key(key: &str) -> Self {
        Self(hex::encode(key))
    }

    fn key(&self) -> Result<String, QueryError> {
        let bytes = hex::decode(&self.0).map_err(|_| QueryError::BadCursor)?;
        String::from_utf8(bytes).map_err(|_| QueryError::BadCursor)
    }

    /// The cursor as text (for a URL or a CLI flag).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A cursor from text a client sent back.
    pub fn parse(text: &str) -> Self {
        Self(text.into())
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// How many items the whole answer has.
    pub total: usize,
    /// The cursor of the next page; `None` on the last page.
    pub next: Option<Cursor>,
}

/// Sorts `keyed` by key (keys are unique), cuts the requested page and turns
/// only the page's items into results (paths and records are built for the
/// page, not for the whole answer).
pub(crate) fn paginate<X, T>(
    mut keyed: Vec<(String, X)>,
    page: &PageRequest,
    mut make: impl FnMut(X) -> T,
) -> Result<Page<T>, QueryError> {
    keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let total = keyed.len();
    let start = match &page.after {
        None => 0,
        Some(c) => {
            let key = c.key()?;
            keyed.partition_point(|(k, _)| *k <= key)
        }
    };
    let end = (start + page.limit()).min(total);
    let next = (end < total && end > start).then(|| Cursor::from_key(&keyed[end - 1].0));
    let items = keyed
        .into_iter()
        .skip(start)
        .take(end - start)
        .map(|(_, x)| make(x))
        .collect();
    Ok(Page { items, total, next })
}

/// Like [`paginate`] for items already sorted by `key_of`: finds the page by
/// binary search, building O(log n) keys instead of n.
pub(crate) fn paginate_sorted<X: Copy, T>(
    sorted: &[X],
    key_of: impl Fn(X) -> String,
    page: &PageRequest,
    make: impl FnMut(X) -> T,
) -> Result<Page<T>, QueryError> {
    let total = sorted.len();
    let start = match &page.after {
        None => 0,
        Some(c) => {
            let key = c.key()?;
            sorted.partition_point(|&x| key_of(x) <= key)
        }
    };
    let end = (start + page.limit()).min(total);
    let next = (end < total && end > start).then(|| Cursor::from_key(&key_of(sorted[end - 1])));
    let items = sorted[start..end].iter().copied().map(make).collect();
    Ok(Page { items, total, next })
}

/// A sort key: a zero-padded number, then an id.
pub(crate) fn key_num_id(n: u64, id: &EntityId) -> String {
    format!("{n:020}{SEP}{id}")
}

/// The number and the id of a [`key_num_id`] key.
fn split_num_id(key: &str) -> Option<(u64, &str)> {
    let (n, id) = (key.get(..20)?, key.get(20..)?);
    Some((n.parse().ok()?, id.strip_prefix(SEP)?))
}

impl GraphIndex {
    /// [`paginate`] for slots keyed by (distance, id), the order of
    /// [`key_num_id`], without building a string per item: the sort compares
    /// the pairs, and only the cursors are strings.
    pub(crate) fn paginate_by_distance<T>(
        &self,
        mut keyed: Vec<(u32, u32)>,
        page: &PageRequest,
        make: impl FnMut(u32) -> T,
    ) -> Result<Page<T>, QueryError> {
        let key = |&(d, v): &(u32, u32)| (u64::from(d), self.ids[v as usize].as_str());
        keyed.sort_unstable_by(|a, b| key(a).cmp(&key(b)));
        let total = keyed.len();
        let start = match &page.after {
            None => 0,
            Some(c) => {
                let text = c.key()?;
                let after = split_num_id(&text).ok_or(QueryError::BadCursor)?;
                keyed.partition_point(|x| key(x) <= after)
            }
        };
        let end = (start + page.limit()).min(total);
        let next = (end < total && end > start).then(|| {
            let (d, v) = keyed[end - 1];
            Cursor::from_key(&key_num_id(u64::from(d), &self.ids[v as usize]))
        });
        let items = keyed[start..end]
            .iter()
            .map(|&(_, v)| v)
            .map(make)
            .collect();
        Ok(Page { items, total, next })
    }
}

/// Which way to traverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Towards consumers (out-edges).
    Downstream,
    /// Towards sources (in-edges).
    Upstream,
}

impl GraphIndex {
    /// Whether the edge `s → t` passes an edge-kind filter.
    pub(crate) fn edge_passes(&self, s: u32, t: u32, kinds: &[EdgeKind]) -> bool {
        kinds.is_empty()
            || self
                .edge_spec(s, t)
                .is_some_and(|e| kinds.contains(&e.kind))
    }

    /// Visible neighbours of `ix` in `dir` through edges of the given kinds.
    pub(crate) fn step<'a>(
        &'a self,
        ix: u32,
        dir: Direction,
        kinds: &'a [EdgeKind],
    ) -> impl Iterator<Item = u32> + 'a {
        let list = match dir {
            Direction::Downstream => &self.out[ix as usize],
            Direction::Upstream => &self.inn[ix as usize],
        };
        list.iter().copied().filter(move |&w| {
            self.is_present(w)
                && match dir {
                    Direction::Downstream => self.edge_passes(ix, w, kinds),
                    Direction::Upstream => self.edge_passes(w, ix, kinds),
                }
        })
    }

    pub(crate) fn start(&self, id: &EntityId) -> Result<u32, QueryError> {
        self.present_slot(id)
            .ok_or_else(|| QueryError::UnknownEntity(id.clone()))
    }

    pub(crate) fn kind_of(&self, ix: u32) -> &EntityKind {
        &self.nodes[ix as usize].kind
    }

    pub(crate) fn name_of(&self, ix: u32) -> String {
        self.nodes[ix as usize].name.clone().unwrap_or_default()
    }

    /// Strongly connected components of the visible subgraph on `members`
    /// (slots for which `inside` holds), following `kinds` edges. Returns the
    /// component of each slot (`u32::MAX` outside) and the number of
    /// components, numbered so that every edge between two components goes
    /// from a higher number to a lower one (Tarjan's completion order: sinks
    /// first).
    pub(crate) fn components(
        &self,
        members: &[u32],
        inside: &dyn Fn(u32) -> bool,
        kinds: &[EdgeKind],
    ) -> (Vec<u32>, u32) {
        let n = self.ids.len();
        let mut index = vec![u32::MAX; n];
        let mut low = vec![0u32; n];
        let mut comp = vec![u32::MAX; n];
        let mut on_stack = vec![false; n];
        let mut stack: Vec<u32> = Vec::new();
        let mut calls: Vec<(u32, Vec<u32>, usize)> = Vec::new();
        let mut counter = 0u32;
        let mut count = 0u32;
        let succ = |v: u32| -> Vec<u32> {
            self.step(v, Direction::Downstream, kinds)
                .filter(|&w| inside(w))
                .collect()
        };
        for &root in members {
            if index[root as usize] != u32::MAX {
                continue;
            }
            index[root as usize] = counter;
            low[root as usize] = counter;
            counter += 1;
            stack.push(root);
            on_stack[root as usize] = true;
            calls.push((root, succ(root), 0));
            while let Some((v, succs, pos)) = calls.last_mut() {
                let v = *v;
                if *pos < succs.len() {
                    let w = succs[*pos];
                    *pos += 1;
                    if index[w as usize] == u32::MAX {
                        index[w as usize] = counter;
                        low[w as usize] = counter;
                        counter += 1;
                        stack.push(w);
                        on_stack[w as usize] = true;
                        calls.push((w, succ(w), 0));
                    } else if on_stack[w as usize] {
                        low[v as usize] = low[v as usize].min(index[w as usize]);
                    }
                    continue;
                }
                calls.pop();
                if let Some((u, _, _)) = calls.last() {
                    low[*u as usize] = low[*u as usize].min(low[v as usize]);
                }
                if low[v as usize] == index[v as usize] {
                    while let Some(w) = stack.pop() {
                        on_stack[w as usize] = false;
                        comp[w as usize] = count;
                        if w == v {
                            break;
                        }
                    }
                    count += 1;
                }
            }
        }
        (comp, count)
    }
}

/// Entity kinds as a filter: empty = all.
pub(crate) fn kind_ok(filter: &[EntityKind], kind: &EntityKind) -> bool {
    filter.is_empty() || filter.contains(kind)
}
