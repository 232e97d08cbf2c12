//! The `sql` job facet, read with Stemma's own SQL extractor.
//!
//! The query becomes the `rule` of the job's output edges as it is. It is
//! also parsed, for the column lineage an output's `columnLineage` facet does
//! not give: each column pair the SQL yields whose two tables are datasets of
//! this event (matched by name, case-insensitively, allowing a missing or
//! extra qualifier the way the SQL catalog does: `orders` is
//! `public.orders`) becomes a column edge. Tables the SQL names that the
//! event does not are left alone: the event's inputs and outputs are the
//! lineage its producer vouched for. A query that does not parse costs a
//! warning, never the event.

use std::collections::HashSet;
use std::str::FromStr;

use super::facets::SqlFacet;
use super::json::Warnings;
use crate::lineage::model::NewEntity;
use crate::sql::{Dialect, SqlLineage, SqlOptions, extract};

/// The lineage of the facet's query, or `None` (with a warning) if it does
/// not parse.
pub(super) fn lineage(facet: &SqlFacet, w: &mut Warnings) -> Option<SqlLineage> {
    let dialect = match facet.dialect.as_deref() {
        None => Dialect::Generic,
        Some(name) => Dialect::from_str(name).unwrap_or_else(|e| {
            w.push(format!(
                "`{}.dialect`: {e}; read as generic SQL",
                facet.path
            ));
            Dialect::Generic
        }),
    };
    match extract(&facet.query, &SqlOptions::new(dialect)) {
        Ok(lineage) => Some(lineage),
        Err(e) => {
            w.push(format!(
                "`{}.query` does not parse, so it adds no column lineage: {e}",
                facet.path
            ));
            None
        }
    }
}

/// A dataset of the event, by the name OpenLineage gave it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Known<'a> {
    /// The dataset's `name` (without namespace), as the SQL would write it.
    pub name: &'a str,
    /// Its entity.
    pub table: &'a NewEntity,
}

/// A column edge found in the SQL: `(source table, field, target table, field)`.
pub(super) type ColumnPair<'a> = (&'a NewEntity, String, &'a NewEntity, String);

/// The column pairs of every statement whose two tables are among `known`
/// and whose target table passes `wanted`.
pub(super) fn column_pairs<'a>(
    lineage: &SqlLineage,
    known: &[Known<'a>],
    wanted: impl Fn(&NewEntity) -> bool,
) -> Vec<ColumnPair<'a>> {
    let mut out: Vec<ColumnPair<'a>> = Vec::new();
    let mut seen = HashSet::new();
    for statement in &lineage.statements {
        for (source, target) in statement.column_pairs() {
            let (Some((st, sf)), Some((tt, tf))) = (split(&source), split(&target)) else {
                continue;
            };
            let (Some(st), Some(tt)) = (find(st, known), find(tt, known)) else {
                continue;
            };
            if !wanted(tt) {
                continue;
            }
            if seen.insert((&st.id, sf.to_owned(), &tt.id, tf.to_owned())) {
                out.push((st, sf.to_owned(), tt, tf.to_owned()));
            }
        }
    }
    out
}

/// `table.column` → `(table, column)`; `None` for an unattributed column or
/// a `*`.
fn split(qualified: &str) -> Option<(&str, &str)> {
    let (table, column) = qualified.rsplit_once('.')?;
    (!table.is_empty() && !column.is_empty() && column != "*").then_some((table, column))
}

/// The one dataset the SQL name `table` stands for.
fn find<'a>(table: &str, known: &[Known<'a>]) -> Option<&'a NewEntity> {
    let table = table.to_lowercase();
    let mut found: Option<&'a NewEntity> = None;
    for k in known {
        let name = k.name.to_lowercase();
        if name == table || dot_suffix(&name, &table) || dot_suffix(&table, &name) {
            match found {
                Some(f) if f.id != k.table.id => return None,
                _ => found = Some(k.table),
            }
        }
    }
    found
}

/// True when `long` ends with `.short`.
fn dot_suffix(long: &str, short: &str) -> bool {
    long.len() > short.len()
        && long.ends_with(short)
        && long.as_bytes()[long.len() - short.len() - 1] == b'.'
}
