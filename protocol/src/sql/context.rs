//! What one statement's analysis accumulates, and what a script remembers
//! between statements.
//!
//! [`Ctx`] collects a statement's reads, writes, column edges and notes as
//! the query walkers find them, and holds the CTEs in scope. [`Session`]
//! carries across statements the tables the script itself created, with
//! their columns, so a later `SELECT *` from a temp table expands and its
//! lineage can be followed through (sqllineage's "session metadata").

use std::collections::HashMap;
use std::rc::Rc;

use super::name::{Dataset, Name};
use super::options::SqlOptions;
use super::scope::{ColRef, OutCol, Sources};

/// A change to the script's state made by a statement.
#[derive(Debug, Clone)]
pub(crate) enum Effect {
    /// A table or view was created; `columns` when they are known.
    Create {
        table: Name,
        columns: Option<Vec<Name>>,
    },
    /// A table or view was dropped.
    Drop(Name),
    /// A table was renamed.
    Rename { from: Name, to: Name },
}

/// Tables created earlier in the script.
#[derive(Debug, Default)]
pub(crate) struct Session {
    tables: HashMap<String, Option<Rc<Vec<Name>>>>,
}

impl Session {
    pub(crate) fn apply(&mut self, effect: &Effect) {
        match effect {
            Effect::Create { table, columns } => {
                self.tables
                    .insert(table.key().to_string(), columns.clone().map(Rc::new));
            }
            Effect::Drop(table) => {
                self.tables.remove(table.key());
            }
            Effect::Rename { from, to } => {
                if let Some(cols) = self.tables.remove(from.key()) {
                    self.tables.insert(to.key().to_string(), cols);
                }
            }
        }
    }

    /// `Some(columns)` when the script created `table` (columns may still
    /// be unknown).
    fn columns(&self, table: &Name) -> Option<Option<Rc<Vec<Name>>>> {
        self.tables.get(table.key()).cloned()
    }
}

/// The accumulator of one statement's analysis.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub(crate) opts: &'a SqlOptions,
    session: &'a Session,
    pub(crate) reads: Vec<Dataset>,
    pub(crate) writes: Vec<Dataset>,
    /// Target column ← source columns, in order of first appearance.
    pub(crate) edges: Vec<(ColRef, Sources)>,
    pub(crate) notes: Vec<String>,
    pub(crate) effects: Vec<Effect>,
    /// CTEs in scope, innermost `WITH` last.
    ctes: Vec<Vec<(Name, Rc<Vec<OutCol>>)>>,
    /// Above zero while walking expressions only for the tables they read
    /// (a `WHERE` clause): column notes are not wanted there.
    quiet: u32,
    /// Tables named by `SELECT … INTO`, with the query's columns.
    pub(crate) select_into: Vec<Name>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(opts: &'a SqlOptions, session: &'a Session) -> Self {
        Ctx {
            opts,
            session,
            reads: Vec::new(),
            writes: Vec::new(),
            edges: Vec::new(),
            notes: Vec::new(),
            effects: Vec::new(),
            ctes: Vec::new(),
            quiet: 0,
            select_into: Vec::new(),
        }
    }

    pub(crate) fn default_schema(&self) -> Option<&'a str> {
        self.opts.default_schema.as_deref()
    }

    pub(crate) fn read(&mut self, d: Dataset) {
        if !self.reads.contains(&d) {
            self.reads.push(d);
        }
    }

    pub(crate) fn write(&mut self, d: Dataset) {
        if !self.writes.contains(&d) {
            self.writes.push(d);
        }
    }

    pub(crate) fn note(&mut self, note: impl Into<String>) {
        if self.quiet > 0 {
            return;
        }
        let note = note.into();
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }

    /// Records `target ← sources`. Targets without sources (constants) are
    /// dropped; a column feeding itself (`SET a = a + 1`) is kept.
    pub(crate) fn edge(&mut self, target: ColRef, sources: &Sources) {
        if sources.is_empty() {
            return;
        }
        match self.edges.iter_mut().find(|(t, _)| *t == target) {
            Some((_, existing)) => existing.extend(sources.iter().cloned()),
            None => self.edges.push((target, sources.clone())),
        }
    }

    /// The columns of a table: from the script when it created the table,
    /// otherwise from the catalog.
    pub(crate) fn known_columns(&self, table: &Name) -> Option<Rc<Vec<Name>>> {
        if let Some(cols) = self.session.columns(table) {
            return cols;
        }
        let cols = self.opts.catalog.as_ref()?.columns(table.text())?;
        Some(Rc::new(cols.iter().map(Name::new).collect()))
    }

    pub(crate) fn push_ctes(&mut self) {
        self.ctes.push(Vec::new());
    }

    pub(crate) fn pop_ctes(&mut self) {
        self.ctes.pop();
    }

    pub(crate) fn define_cte(&mut self, name: Name, columns: Rc<Vec<OutCol>>) {
        if let Some(frame) = self.ctes.last_mut() {
            match frame.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = columns,
                None => frame.push((name, columns)),
            }
        }
    }

    /// The CTE a one-part table name refers to, innermost first.
    pub(crate) fn cte(&self, name: &Name) -> Option<Rc<Vec<OutCol>>> {
        self.ctes
            .iter()
            .rev()
            .flat_map(|frame| frame.iter().rev())
            .find(|(n, _)| n == name)
            .map(|(_, cols)| cols.clone())
    }

    /// Runs `f` with column notes silenced.
    pub(crate) fn quietly<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        self.quiet += 1;
        let out = f(self);
        self.quiet -= 1;
        out
    }

    /// Maps query output columns onto a target table's columns.
    ///
    /// With `target_cols`, outputs map by position; otherwise by their own
    /// names (what a positional insert means when the target's columns are
    /// unknown). Unexpanded `*` outputs map to `target.*` only by name; in
    /// positional mode they cannot be placed and are reported.
    pub(crate) fn map_columns(
        &mut self,
        target: &Name,
        outputs: &[OutCol],
        target_cols: Option<&[Name]>,
        what: &str,
    ) {
        let has_wildcard = outputs.iter().any(|c| c.wildcard);
        match target_cols {
            Some(cols) => {
                if has_wildcard {
                    self.note(format!(
                        "{what} {}: the query selects * from a table whose columns are unknown; \
                         give a catalog to map its columns",
                        target.text()
                    ));
                    return;
                }
                if cols.len() != outputs.len() {
                    self.note(format!(
                        "{what} {}: {} target columns but the query yields {}; mapped by position as far as both go",
                        target.text(),
                        cols.len(),
                        outputs.len()
                    ));
                }
                for (col, out) in cols.iter().zip(outputs) {
                    self.edge(ColRef::new(Some(target.clone()), col.clone()), &out.sources);
                }
            }
            None => {
                if has_wildcard {
                    self.note(format!(
                        "{what} {}: the query selects * from a table whose columns are unknown; \
                         recorded as table.* (give a catalog to expand it)",
                        target.text()
                    ));
                }
                for out in outputs {
                    self.edge(
                        ColRef::new(Some(target.clone()), out.name.clone()),
                        &out.sources,
                    );
                }
            }
        }
    }

    /// Distinct source tables of the recorded edges (for tests).
    #[cfg(test)]
    pub(crate) fn edge_tables(&self) -> std::collections::BTreeSet<String> {
        self.edges
            .iter()
            .flat_map(|(_, s)| {
                s.iter()
                    .filter_map(|c| c.table.as_ref().map(|t| t.text().to_string()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_columns_shadow_the_catalog_and_follow_renames() {
        let mut catalog = super::super::options::Catalog::new();
        catalog.insert("t", vec!["a".into()]);
        let opts = SqlOptions::default().with_catalog(catalog);
        let mut session = Session::default();
        session.apply(&Effect::Create {
            table: Name::new("t"),
            columns: Some(vec![Name::new("b")]),
        });
        {
            let ctx = Ctx::new(&opts, &session);
            assert_eq!(ctx.known_columns(&Name::new("T")).unwrap()[0].text(), "b");
        }
        session.apply(&Effect::Rename {
            from: Name::new("t"),
            to: Name::new("u"),
        });
        let ctx = Ctx::new(&opts, &session);
        assert_eq!(ctx.known_columns(&Name::new("t")).unwrap()[0].text(), "a");
        assert_eq!(ctx.known_columns(&Name::new("u")).unwrap()[0].text(), "b");
    }

    #[test]
    fn edges_merge_and_drop_constants() {
        let opts = SqlOptions::default();
        let session = Session::default();
        let mut ctx = Ctx::new(&opts, &session);
        let t = ColRef::new(Some(Name::new("t")), Name::new("a"));
        let s = ColRef::new(Some(Name::new("s")), Name::new("a"));
        ctx.edge(t.clone(), &Sources::new());
        assert!(ctx.edges.is_empty());
        ctx.edge(t.clone(), &[s.clone()].into_iter().collect());
        ctx.edge(t.clone(), &[s, t].into_iter().collect());
        assert_eq!(ctx.edges.len(), 1);
        assert_eq!(ctx.edge_tables().len(), 2);
    }
}
