//! From statements to the lineage of a whole script.
//!
//! Each statement is analysed in turn with the tables the script created
//! so far (their columns expand `SELECT *` later on). The top level then
//! follows sqllineage's graph semantics, so scripts with temp tables read
//! as one job:
//!
//! - each statement that reads and writes adds edges read × written; a
//!   statement that only reads marks its tables as sources, one that only
//!   writes marks its tables as targets;
//! - sources are tables with no incoming edge (plus marked ones), targets
//!   tables with no outgoing edge (plus marked ones); a table written and
//!   then read is an intermediate, neither; a table that feeds itself
//!   (`INSERT OVERWRITE t SELECT … FROM t`) is both;
//! - `DROP` removes a table the script only mentioned (no edges), `ALTER …
//!   RENAME` relabels it, earlier column lineage included;
//! - column lineage runs from columns nothing feeds to columns that feed
//!   nothing, through intermediate tables.

use std::collections::{BTreeSet, HashMap};

use super::context::{Ctx, Effect, Session};
use super::model::{ColumnLineage, SqlLineage, StatementLineage};
use super::name::{Dataset, Name};
use super::options::SqlOptions;
use super::parse::Unit;
use super::scope::ColRef;
use super::statement::{salvaged, statement};

/// Analyses every unit and combines them.
pub(crate) fn lineage(units: &[Unit], opts: &SqlOptions) -> SqlLineage {
    let mut session = Session::default();
    let mut graph = TableGraph::default();
    let mut column_edges: Vec<(ColRef, ColRef)> = Vec::new();
    let mut statements = Vec::with_capacity(units.len());
    let mut unresolved = Vec::new();
    let mut paths: Vec<String> = Vec::new();

    for (i, unit) in units.iter().enumerate() {
        let mut ctx = Ctx::new(opts, &session);
        match unit {
            Unit::Statement(s) => statement(&mut ctx, s),
            Unit::Block { statements, note } => {
                ctx.note(note.clone());
                for s in statements {
                    statement(&mut ctx, s);
                }
            }
            Unit::Salvaged(s) => salvaged(&mut ctx, s),
            Unit::Skipped(note) => ctx.note(note.clone()),
        }
        let stmt = statement_lineage(&ctx);
        unresolved.extend(
            stmt.unresolved
                .iter()
                .map(|n| format!("statement {}: {n}", i + 1)),
        );
        for p in &stmt.paths {
            if !paths.contains(p) {
                paths.push(p.clone());
            }
        }
        let effects = std::mem::take(&mut ctx.effects);
        let structural = effects
            .iter()
            .any(|e| matches!(e, Effect::Drop(_) | Effect::Rename { .. }));
        if !structural {
            graph.add_statement(&ctx.reads, &ctx.writes);
            for (target, sources) in &ctx.edges {
                for s in sources {
                    column_edges.push((s.clone(), target.clone()));
                }
            }
        }
        drop(ctx);
        for effect in &effects {
            match effect {
                Effect::Drop(t) => graph.drop_if_isolated(t.key()),
                Effect::Rename { from, to } => {
                    graph.rename(from, to);
                    for (s, t) in &mut column_edges {
                        for c in [s, t] {
                            if c.table.as_ref() == Some(from) {
                                c.table = Some(to.clone());
                            }
                        }
                    }
                }
                Effect::Create { .. } => {}
            }
            session.apply(effect);
        }
        statements.push(stmt);
    }

    let (sources, targets) = graph.ends();
    SqlLineage {
        sources,
        targets,
        columns: end_to_end(&column_edges),
        paths,
        unresolved,
        statements,
    }
}

fn statement_lineage(ctx: &Ctx<'_>) -> StatementLineage {
    let tables = |ds: &[Dataset]| -> Vec<String> {
        ds.iter()
            .filter_map(|d| match d {
                Dataset::Table(t) => Some(t.text().to_string()),
                Dataset::Path(_) => None,
            })
            .collect()
    };
    let paths = |ds: &[Dataset]| -> Vec<String> {
        ds.iter()
            .filter_map(|d| match d {
                Dataset::Path(p) => Some(p.clone()),
                Dataset::Table(_) => None,
            })
            .collect()
    };
    let path_reads = paths(&ctx.reads);
    let path_writes = paths(&ctx.writes);
    let mut all_paths = path_reads.clone();
    all_paths.extend(
        path_writes
            .iter()
            .filter(|p| !path_reads.contains(p))
            .cloned(),
    );
    StatementLineage {
        sources: tables(&ctx.reads),
        targets: tables(&ctx.writes),
        columns: ctx
            .edges
            .iter()
            .map(|(t, s)| ColumnLineage {
                target: t.text(),
                sources: sorted_texts(s.iter()),
            })
            .collect(),
        paths: all_paths,
        unresolved: ctx.notes.clone(),
        path_reads,
        path_writes,
    }
}

fn sorted_texts<'a>(cols: impl Iterator<Item = &'a ColRef>) -> Vec<String> {
    let set: BTreeSet<String> = cols.map(ColRef::text).collect();
    set.into_iter().collect()
}

/// The dataset-level graph of the script.
#[derive(Debug, Default)]
struct TableGraph {
    /// Nodes in order of appearance: key, dataset, source-only, target-only.
    nodes: Vec<Node>,
    edges: BTreeSet<(String, String)>,
}

#[derive(Debug)]
struct Node {
    key: String,
    dataset: Dataset,
    source_only: bool,
    target_only: bool,
}

fn key_of(d: &Dataset) -> String {
    match d {
        Dataset::Table(t) => format!("t:{}", t.key()),
        Dataset::Path(p) => format!("p:{p}"),
    }
}

impl TableGraph {
    fn node(&mut self, d: &Dataset) -> &mut Node {
        let key = key_of(d);
        let at = match self.nodes.iter().position(|n| n.key == key) {
            Some(i) => i,
            None => {
                self.nodes.push(Node {
                    key,
                    dataset: d.clone(),
                    source_only: false,
                    target_only: false,
                });
                self.nodes.len() - 1
            }
        };
        &mut self.nodes[at]
    }

    fn add_statement(&mut self, reads: &[Dataset], writes: &[Dataset]) {
        for d in reads {
            let only = writes.is_empty();
            let n = self.node(d);
            n.source_only |= only;
        }
        for d in writes {
            let only = reads.is_empty();
            let n = self.node(d);
            n.target_only |= only;
        }
        if !reads.is_empty() && !writes.is_empty() {
            for r in reads {
                for w in writes {
                    self.edges.insert((key_of(r), key_of(w)));
                }
            }
        }
    }

    fn degree(&self, key: &str) -> usize {
        self.edges
            .iter()
            .filter(|(a, b)| a == key || b == key)
            .count()
    }

    fn drop_if_isolated(&mut self, table: &str) {
        let key = format!("t:{table}");
        if self.degree(&key) == 0 {
            self.nodes.retain(|n| n.key != key);
        }
    }

    fn rename(&mut self, from: &Name, to: &Name) {
        let (old, new) = (format!("t:{}", from.key()), format!("t:{}", to.key()));
        let Some(i) = self.nodes.iter().position(|n| n.key == old) else {
            return;
        };
        let had_self_loop = self.edges.contains(&(old.clone(), old.clone()));
        let edges = std::mem::take(&mut self.edges);
        self.edges = edges
            .into_iter()
            .map(|(a, b)| {
                let a = if a == old { new.clone() } else { a };
                let b = if b == old { new.clone() } else { b };
                (a, b)
            })
            .filter(|(a, b)| a != b || had_self_loop)
            .collect();
        let renamed = self.nodes.remove(i);
        match self.nodes.iter_mut().find(|n| n.key == new) {
            Some(existing) => {
                existing.source_only |= renamed.source_only;
                existing.target_only |= renamed.target_only;
            }
            None => self.nodes.insert(
                i,
                Node {
                    key: new.clone(),
                    dataset: Dataset::Table(to.clone()),
                    ..renamed
                },
            ),
        }
        if self.degree(&new) == 0 {
            self.nodes.retain(|n| n.key != new);
        }
    }

    /// Source and target tables (paths are reported separately).
    fn ends(&self) -> (Vec<String>, Vec<String>) {
        let mut sources = Vec::new();
        let mut targets = Vec::new();
        for n in &self.nodes {
            let Dataset::Table(t) = &n.dataset else {
                continue;
            };
            let ins = self.edges.iter().filter(|(_, b)| *b == n.key).count();
            let outs = self.edges.iter().filter(|(a, _)| *a == n.key).count();
            let self_loop = self.edges.contains(&(n.key.clone(), n.key.clone()));
            if (ins == 0 && outs > 0) || self_loop || n.source_only {
                sources.push(t.text().to_string());
            }
            if (outs == 0 && ins > 0) || self_loop || n.target_only {
                targets.push(t.text().to_string());
            }
        }
        (sources, targets)
    }
}

/// Column lineage from columns nothing feeds to columns that feed nothing.
fn end_to_end(edges: &[(ColRef, ColRef)]) -> Vec<ColumnLineage> {
    let mut index: HashMap<&ColRef, usize> = HashMap::new();
    let mut nodes: Vec<&ColRef> = Vec::new();
    for (s, t) in edges {
        for c in [s, t] {
            if !index.contains_key(c) {
                index.insert(c, nodes.len());
                nodes.push(c);
            }
        }
    }
    let mut out_adj: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    let mut indeg = vec![0usize; nodes.len()];
    let mut self_loops: Vec<usize> = Vec::new();
    for (s, t) in edges {
        let (a, b) = (index[s], index[t]);
        if a == b {
            self_loops.push(a);
            continue;
        }
        if !out_adj[a].contains(&b) {
            out_adj[a].push(b);
            indeg[b] += 1;
        }
    }
    // leaf -> sources, leaves in order of appearance
    let mut result: Vec<(usize, BTreeSet<String>)> = Vec::new();
    let add = |leaf: usize, root: &ColRef, result: &mut Vec<(usize, BTreeSet<String>)>| match result
        .iter_mut()
        .find(|(l, _)| *l == leaf)
    {
        Some((_, s)) => {
            s.insert(root.text());
        }
        None => result.push((leaf, std::iter::once(root.text()).collect())),
    };
    for root in 0..nodes.len() {
        if indeg[root] != 0 || out_adj[root].is_empty() {
            continue;
        }
        let mut seen = vec![false; nodes.len()];
        let mut stack = vec![root];
        seen[root] = true;
        while let Some(n) = stack.pop() {
            if out_adj[n].is_empty() {
                add(n, nodes[root], &mut result);
                continue;
            }
            for &m in &out_adj[n] {
                if !seen[m] {
                    seen[m] = true;
                    stack.push(m);
                }
            }
        }
    }
    for n in self_loops {
        add(n, nodes[n], &mut result);
    }
    result.sort_by_key(|(leaf, _)| *leaf);
    result
        .into_iter()
        .map(|(leaf, sources)| ColumnLineage {
            target: nodes[leaf].text(),
            sources: sources.into_iter().collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(t: &str, c: &str) -> ColRef {
        ColRef::new(Some(Name::new(t)), Name::new(c))
    }

    #[test]
    fn column_paths_run_through_intermediates() {
        let edges = vec![
            (col("a", "x"), col("tmp", "x")),
            (col("tmp", "x"), col("b", "y")),
            (col("c", "z"), col("b", "y")),
        ];
        let got = end_to_end(&edges);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].target, "b.y");
        assert_eq!(got[0].sources, ["a.x", "c.z"]);
    }

    #[test]
    fn self_feeding_columns_are_kept() {
        let edges = vec![
            (col("t", "p"), col("t", "p")),
            (col("s", "p"), col("t", "p")),
        ];
        let got = end_to_end(&edges);
        assert_eq!(got[0].sources, ["s.p", "t.p"]);
    }

    #[test]
    fn graph_ends_follow_sqllineage() {
        let t = |s: &str| Dataset::Table(Name::new(s));
        let mut g = TableGraph::default();
        g.add_statement(&[t("b")], &[t("a")]);
        g.add_statement(&[t("a")], &[t("c")]);
        let (s, tg) = g.ends();
        assert_eq!((s, tg), (vec!["b".to_string()], vec!["c".to_string()]));

        let mut g = TableGraph::default();
        g.add_statement(&[], &[t("x")]);
        g.drop_if_isolated("x");
        assert_eq!(g.ends(), (vec![], vec![]));

        let mut g = TableGraph::default();
        g.add_statement(&[t("s")], &[t("a")]);
        g.rename(&Name::new("a"), &Name::new("z"));
        assert_eq!(g.ends(), (vec!["s".to_string()], vec!["z".to_string()]));
    }
}
