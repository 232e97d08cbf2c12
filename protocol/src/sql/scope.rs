//! Name resolution: which relation in a `FROM` clause a column comes from.
//!
//! A [`Scope`] holds the relations of one `FROM` clause (tables, subqueries,
//! CTE references, lateral views) and points to the enclosing query's scope
//! for correlated references. A relation either knows its columns (a
//! subquery's output, a CTE, a table in the catalog or created earlier in
//! the script) or does not (a table without catalog). Resolution follows
//! what a database does, minus the catalog it lacks:
//!
//! 1. relations that *have* the column win (several of them: a `USING`
//!    join column, all are sources);
//! 2. otherwise a single relation whose columns are unknown takes it;
//! 3. several unknown relations make the column ambiguous — reported, not
//!    guessed;
//! 4. otherwise the enclosing scope is asked.
//!
//! CTE names and subquery aliases are relations here, never tables.

use std::collections::BTreeSet;
use std::rc::Rc;

use super::name::Name;

/// A column of a table (or, with no table, a column that could not be
/// attributed). A `*` column stands for all columns of its table.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ColRef {
    pub(crate) table: Option<Name>,
    pub(crate) column: Name,
}

/// The source columns of a value.
pub(crate) type Sources = BTreeSet<ColRef>;

impl ColRef {
    pub(crate) fn new(table: Option<Name>, column: Name) -> ColRef {
        ColRef { table, column }
    }

    pub(crate) fn is_star(&self) -> bool {
        self.column.key() == "*"
    }

    /// `schema.table.column`, or `column` without a table.
    pub(crate) fn text(&self) -> String {
        match &self.table {
            Some(t) => format!("{}.{}", t.text(), self.column.text()),
            None => self.column.text().to_string(),
        }
    }
}

/// One output column of a query.
///
/// A `wildcard` column is an unexpanded `*`: it stands for columns whose
/// names are unknown. Any name looked up through it maps each `t.*` source
/// to `t.name` (and keeps other sources as they are: a lateral view's
/// columns all derive from its function's arguments).
#[derive(Clone, Debug)]
pub(crate) struct OutCol {
    pub(crate) name: Name,
    pub(crate) sources: Sources,
    pub(crate) wildcard: bool,
}

impl OutCol {
    pub(crate) fn named(name: Name, sources: Sources) -> OutCol {
        OutCol {
            name,
            sources,
            wildcard: false,
        }
    }

    pub(crate) fn wildcard(sources: Sources) -> OutCol {
        OutCol {
            name: Name::new("*"),
            sources,
            wildcard: true,
        }
    }

    /// The sources of column `col` seen through this wildcard.
    fn through(&self, col: &Name) -> impl Iterator<Item = ColRef> + '_ {
        let col = col.clone();
        self.sources.iter().map(move |s| {
            if s.is_star() {
                ColRef::new(s.table.clone(), col.clone())
            } else {
                s.clone()
            }
        })
    }
}

/// What a relation in `FROM` produces.
#[derive(Clone, Debug)]
pub(crate) enum RelKind {
    /// A table or view, with its columns when they are known.
    Table(Option<Rc<Vec<Name>>>),
    /// A subquery, CTE, lateral view or table function.
    Derived(Rc<Vec<OutCol>>),
}

/// One relation of a `FROM` clause.
#[derive(Clone, Debug)]
pub(crate) struct Relation {
    /// The alias, or the CTE name; what qualifiers usually match.
    pub(crate) alias: Option<Name>,
    /// The table, when the relation is one.
    pub(crate) table: Option<Name>,
    pub(crate) kind: RelKind,
}

/// Whether a relation has a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Has {
    Yes,
    Maybe,
    No,
}

impl Relation {
    pub(crate) fn table(
        table: Name,
        alias: Option<Name>,
        columns: Option<Rc<Vec<Name>>>,
    ) -> Relation {
        Relation {
            alias,
            table: Some(table),
            kind: RelKind::Table(columns),
        }
    }

    pub(crate) fn derived(alias: Option<Name>, columns: Vec<OutCol>) -> Relation {
        Relation {
            alias,
            table: None,
            kind: RelKind::Derived(Rc::new(columns)),
        }
    }

    pub(crate) fn has(&self, col: &Name) -> Has {
        match &self.kind {
            RelKind::Table(Some(cols)) => {
                if cols.contains(col) {
                    Has::Yes
                } else {
                    Has::No
                }
            }
            RelKind::Table(None) => Has::Maybe,
            RelKind::Derived(cols) => {
                if cols.iter().any(|c| !c.wildcard && c.name == *col) {
                    Has::Yes
                } else if cols.iter().any(|c| c.wildcard) {
                    Has::Maybe
                } else {
                    Has::No
                }
            }
        }
    }

    /// The sources of column `col` of this relation. A table's column is
    /// itself, even when the catalog does not list it (the SQL named it).
    pub(crate) fn resolve(&self, col: &Name) -> Sources {
        match &self.kind {
            RelKind::Table(_) => {
                let table = self.table.clone();
                std::iter::once(ColRef::new(table, col.clone())).collect()
            }
            RelKind::Derived(cols) => {
                let named: Vec<&OutCol> = cols
                    .iter()
                    .filter(|c| !c.wildcard && c.name == *col)
                    .collect();
                if !named.is_empty() {
                    return named
                        .iter()
                        .flat_map(|c| c.sources.iter().cloned())
                        .collect();
                }
                cols.iter()
                    .filter(|c| c.wildcard)
                    .flat_map(|c| c.through(col))
                    .collect()
            }
        }
    }

    /// What `*` expands to for this relation.
    pub(crate) fn star(&self) -> Vec<OutCol> {
        match &self.kind {
            RelKind::Table(Some(cols)) => cols
                .iter()
                .map(|c| OutCol::named(c.clone(), self.resolve(c)))
                .collect(),
            RelKind::Table(None) => {
                let star = ColRef::new(self.table.clone(), Name::new("*"));
                vec![OutCol::wildcard(std::iter::once(star).collect())]
            }
            RelKind::Derived(cols) => cols.as_ref().clone(),
        }
    }

    /// The sources of `count(*)`: every column of the relation.
    pub(crate) fn all_sources(&self) -> Sources {
        match &self.kind {
            RelKind::Table(_) => {
                std::iter::once(ColRef::new(self.table.clone(), Name::new("*"))).collect()
            }
            RelKind::Derived(cols) => cols
                .iter()
                .filter(|c| c.wildcard)
                .flat_map(|c| c.sources.iter().cloned())
                .collect(),
        }
    }

    fn matches_alias(&self, q: &Name) -> bool {
        self.alias.as_ref().is_some_and(|a| a == q)
    }

    fn matches_table(&self, q: &Name) -> bool {
        let Some(t) = &self.table else { return false };
        if t == q {
            return true;
        }
        let (long, short) = if t.key().len() > q.key().len() {
            (t.key(), q.key())
        } else {
            (q.key(), t.key())
        };
        long.len() > short.len()
            && long.ends_with(short)
            && long.as_bytes()[long.len() - short.len() - 1] == b'.'
    }
}

/// The outcome of looking a column up in one scope.
#[derive(Debug)]
pub(crate) enum Lookup {
    Found(Sources),
    /// Several relations with unknown columns could hold it.
    Ambiguous(Vec<String>),
    Missing,
}

/// The relations of one `FROM` clause, and the enclosing query's scope.
#[derive(Debug, Default)]
pub(crate) struct Scope<'p> {
    pub(crate) rels: Vec<Relation>,
    pub(crate) parent: Option<&'p Scope<'p>>,
}

impl<'p> Scope<'p> {
    pub(crate) fn new(parent: Option<&'p Scope<'p>>) -> Self {
        Scope {
            rels: Vec::new(),
            parent,
        }
    }

    /// The relation a qualifier names, here or in an enclosing scope.
    /// Aliases are preferred to table names.
    pub(crate) fn qualified(&self, q: &Name) -> Option<&Relation> {
        let mut scope = Some(self);
        while let Some(s) = scope {
            if let Some(r) = s.rels.iter().find(|r| r.matches_alias(q)) {
                return Some(r);
            }
            if let Some(r) = s.rels.iter().find(|r| r.matches_table(q)) {
                return Some(r);
            }
            scope = s.parent;
        }
        None
    }

    /// Looks an unqualified column up in this scope only.
    pub(crate) fn local(&self, col: &Name) -> Lookup {
        let mut yes: Vec<&Relation> = Vec::new();
        let mut maybe: Vec<&Relation> = Vec::new();
        for r in &self.rels {
            match r.has(col) {
                Has::Yes => yes.push(r),
                Has::Maybe => maybe.push(r),
                Has::No => {}
            }
        }
        if !yes.is_empty() {
            return Lookup::Found(yes.iter().flat_map(|r| r.resolve(col)).collect());
        }
        match maybe.len() {
            0 => Lookup::Missing,
            1 => Lookup::Found(maybe[0].resolve(col)),
            _ => Lookup::Ambiguous(
                maybe
                    .iter()
                    .map(|r| {
                        r.table
                            .as_ref()
                            .or(r.alias.as_ref())
                            .map(|n| n.text().to_string())
                            .unwrap_or_else(|| "a subquery".to_string())
                    })
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::new(s)
    }

    fn known(table: &str, cols: &[&str]) -> Relation {
        Relation::table(
            n(table),
            None,
            Some(Rc::new(cols.iter().map(|c| n(c)).collect())),
        )
    }

    #[test]
    fn known_columns_beat_unknown_tables() {
        let scope = Scope {
            rels: vec![known("s.a", &["x"]), Relation::table(n("s.b"), None, None)],
            parent: None,
        };
        match scope.local(&n("x")) {
            Lookup::Found(s) => assert_eq!(s.iter().next().unwrap().text(), "s.a.x"),
            other => panic!("{other:?}"),
        }
        match scope.local(&n("y")) {
            Lookup::Found(s) => assert_eq!(s.iter().next().unwrap().text(), "s.b.y"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn two_unknown_tables_are_ambiguous() {
        let scope = Scope {
            rels: vec![
                Relation::table(n("a"), None, None),
                Relation::table(n("b"), None, None),
            ],
            parent: None,
        };
        assert!(matches!(scope.local(&n("x")), Lookup::Ambiguous(v) if v.len() == 2));
    }

    #[test]
    fn wildcards_pass_names_through() {
        let star = ColRef::new(Some(n("t")), n("*"));
        let sub = Relation::derived(
            Some(n("sq")),
            vec![OutCol::wildcard([star].into_iter().collect())],
        );
        let got: Vec<String> = sub.resolve(&n("c")).iter().map(ColRef::text).collect();
        assert_eq!(got, ["t.c"]);
        assert_eq!(sub.has(&n("c")), Has::Maybe);
    }

    #[test]
    fn qualifiers_match_aliases_then_tables() {
        let outer = Scope {
            rels: vec![Relation::table(n("db.t"), Some(n("x")), None)],
            parent: None,
        };
        let inner = Scope {
            rels: vec![Relation::table(n("u"), None, None)],
            parent: Some(&outer),
        };
        assert!(inner.qualified(&n("x")).is_some());
        assert!(inner.qualified(&n("t")).is_some());
        assert!(inner.qualified(&n("db.t")).is_some());
        assert!(inner.qualified(&n("other")).is_none());
    }
}
