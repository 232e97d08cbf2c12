//! Security audit: where data flows from a higher security level to a lower
//! one.
//!
//! Two kinds of findings:
//!
//! - **Edge**: a visible edge `u → w` where both have a level and
//!   `level(w) < level(u)`.
//! - **Path**: data reaches a labelled entity `w` from a labelled entity `u` of
//!   a higher level through one or more *unlabelled* entities (no level set):
//!   `u → x₁ → … → xₖ → w`, `k ≥ 1`. A path through labelled entities is not
//!   reported again: it decomposes into edge findings and shorter paths, so
//!   these two kinds together cover every leak. One finding per `w`: the
//!   highest level that reaches it this way, from the source of that level
//!   with the shortest such path (then the smallest id), and that path.
//!
//! The highest level reaching each unlabelled entity is computed once by
//! propagation (a value only rises, so the worklist terminates after at most
//! one pass per distinct level); paths are built only for the page returned.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{Direction, Page, PageRequest, paginate};
use crate::lineage::error::QueryError;
use crate::lineage::index::GraphIndex;
use crate::lineage::keys::SEP;
use crate::lineage::model::EntityId;

/// Options of the audit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditOptions {
    /// The page of findings.
    #[serde(default)]
    pub page: PageRequest,
}

/// What kind of leak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// One edge goes down in level.
    Edge,
    /// A path through unlabelled entities goes down in level.
    Path,
}

/// One finding. Edge findings come first (by source, then target), then path
/// findings (by target).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFinding {
    /// Edge or path.
    pub kind: FindingKind,
    /// Where the data comes from.
    pub from: EntityId,
    /// Where it arrives.
    pub to: EntityId,
    /// The level it comes from.
    pub from_level: i64,
    /// The lower level it arrives at.
    pub to_level: i64,
    /// The entities from `from` to `to`, both included.
    pub path: Vec<EntityId>,
}

enum Item {
    Edge(u32, u32),
    Path(u32, i64),
}

impl GraphIndex {
    fn level(&self, ix: u32) -> Option<i64> {
        self.nodes[ix as usize].attributes.level
    }

    /// Every place where data flows down in security level.
    pub fn audit(&self, opts: &AuditOptions) -> Result<Page<AuditFinding>, QueryError> {
        let n = self.ids.len();
        let mut keyed: Vec<(String, Item)> = Vec::new();
        for u in 0..n as u32 {
            let Some(lu) = self.present_level(u) else {
                continue;
            };
            for w in self.out_visible(u) {
                if self.level(w).is_some_and(|lw| lw < lu) {
                    let key = format!(
                        "0{SEP}{}{SEP}{}",
                        self.ids[u as usize], self.ids[w as usize]
                    );
                    keyed.push((key, Item::Edge(u, w)));
                }
            }
        }

        // The highest level reaching each unlabelled entity through unlabelled
        // entities only.
        let mut best: Vec<Option<i64>> = vec![None; n];
        let mut queue: VecDeque<u32> = VecDeque::new();
        for u in 0..n as u32 {
            let Some(lu) = self.present_level(u) else {
                continue;
            };
            for x in self.out_visible(u) {
                if self.level(x).is_none() && best[x as usize].is_none_or(|b| b < lu) {
                    best[x as usize] = Some(lu);
                    queue.push_back(x);
                }
            }
        }
        while let Some(x) = queue.pop_front() {
            let Some(lx) = best[x as usize] else { continue };
            for y in self.out_visible(x) {
                if self.level(y).is_none() && best[y as usize].is_none_or(|b| b < lx) {
                    best[y as usize] = Some(lx);
                    queue.push_back(y);
                }
            }
        }
        for w in 0..n as u32 {
            let Some(lw) = self.present_level(w) else {
                continue;
            };
            let incoming = self
                .in_visible(w)
                .filter(|&x| self.level(x).is_none())
                .filter_map(|x| best[x as usize])
                .max();
            if let Some(m) = incoming
                && m > lw
            {
                keyed.push((format!("1{SEP}{}", self.ids[w as usize]), Item::Path(w, m)));
            }
        }

        paginate(keyed, &opts.page, |item| match item {
            Item::Edge(u, w) => AuditFinding {
                kind: FindingKind::Edge,
                from: self.ids[u as usize].clone(),
                to: self.ids[w as usize].clone(),
                from_level: self.level(u).unwrap_or_default(),
                to_level: self.level(w).unwrap_or_default(),
                path: vec![self.ids[u as usize].clone(), self.ids[w as usize].clone()],
            },
            Item::Path(w, m) => self.leak_path(w, m),
        })
    }

    fn present_level(&self, ix: u32) -> Option<i64> {
        if self.is_present(ix) {
            self.level(ix)
        } else {
            None
        }
    }

    /// The finding for a path leak into `w` of level `m`: the source of level
    /// `m` with the shortest path through unlabelled entities (then the
    /// smallest id), and that path (smallest id at every hop).
    fn leak_path(&self, w: u32, m: i64) -> AuditFinding {
        // Hops from each unlabelled entity to `w` through unlabelled entities.
        let mut hops = vec![u32::MAX; self.ids.len()];
        let mut queue = VecDeque::new();
        for x in self.in_visible(w) {
            if self.level(x).is_none() && hops[x as usize] == u32::MAX {
                hops[x as usize] = 1;
                queue.push_back(x);
            }
        }
        let mut source: Option<(u32, u32)> = None; // (path length, slot)
        while let Some(x) = queue.pop_front() {
            let h = hops[x as usize];
            if source.is_some_and(|(len, _)| len <= h) {
                break;
            }
            for u in self.step(x, Direction::Upstream, &[]) {
                match self.level(u) {
                    Some(lu) if lu == m => {
                        let cand = (h + 1, u);
                        let better = match source {
                            None => true,
                            Some((len, s)) => {
                                cand.0 < len
                                    || (cand.0 == len
                                        && self.ids[u as usize] < self.ids[s as usize])
                            }
                        };
                        if better {
                            source = Some(cand);
                        }
                    }
                    Some(_) => {}
                    None => {
                        if hops[u as usize] == u32::MAX {
                            hops[u as usize] = h + 1;
                            queue.push_back(u);
                        }
                    }
                }
            }
        }
        let mut path = Vec::new();
        let from = match source {
            Some((_, u)) => {
                path.push(self.ids[u as usize].clone());
                let mut cur = u;
                let mut remaining = source.map_or(0, |(len, _)| len) - 1;
                while remaining > 0 {
                    let next = self
                        .out_visible(cur)
                        .filter(|&x| self.level(x).is_none() && hops[x as usize] == remaining)
                        .min_by(|&a, &b| self.ids[a as usize].cmp(&self.ids[b as usize]));
                    let Some(next) = next else { break };
                    path.push(self.ids[next as usize].clone());
                    cur = next;
                    remaining -= 1;
                }
                path.push(self.ids[w as usize].clone());
                self.ids[u as usize].clone()
            }
            None => self.ids[w as usize].clone(),
        };
        AuditFinding {
            kind: FindingKind::Path,
            from,
            to: self.ids[w as usize].clone(),
            from_level: m,
            to_level: self.level(w).unwrap_or_default(),
            path,
        }
    }
}
