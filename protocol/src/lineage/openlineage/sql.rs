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

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
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
    match extract_remembered(&facet.query, dialect) {
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

/// Queries remembered per thread, with their lineage or parse error.
const REMEMBERED_QUERIES: usize = 512;

type Extracted = Result<SqlLineage, String>;

thread_local! {
    static REMEMBERED: RefCell<HashMap<(Dialect, String), Extracted>> = RefCell::default();
}

/// `extract`, remembering the last queries seen: a job sends the same query
/// in the START and COMPLETE of every run, and runs on a schedule, so most
/// facets repeat one, and parsing it again was a sixth of the cost of
/// ingesting an event. Forgets everything when full: simpler than an LRU,
/// and the working set of a producer's queries is small.
fn extract_remembered(query: &str, dialect: Dialect) -> Extracted {
    let key = (dialect, query.to_owned());
    if let Some(found) = REMEMBERED.with_borrow(|m| m.get(&key).cloned()) {
        return found;
    }
    let extracted = extract(query, &SqlOptions::new(dialect)).map_err(|e| e.to_string());
    REMEMBERED.with_borrow_mut(|m| {
        if m.len() >= REMEMBERED_QUERIES {
            m.clear();
        }
        m.insert(key, extracted.clone());
    });
    extracted
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_query_gives_what_parsing_it_gives_and_so_does_a_bad_one() {
        let good = "INSERT INTO mart.orders SELECT id, total FROM raw.orders";
        let parsed = extract(good, &SqlOptions::new(Dialect::Postgres)).unwrap();
        for _ in 0..2 {
            assert_eq!(extract_remembered(good, Dialect::Postgres).unwrap(), parsed);
        }
        let bad = "INSERT INTO SELECT FROM";
        let error = extract(bad, &SqlOptions::new(Dialect::Generic))
            .unwrap_err()
            .to_string();
        for _ in 0..2 {
            assert_eq!(
                extract_remembered(bad, Dialect::Generic),
                Err(error.clone())
            );
        }
    }

    #[test]
    fn the_memory_stays_bounded() {
        for i in 0..REMEMBERED_QUERIES + 10 {
            let query = format!("SELECT c FROM t{i}");
            assert!(extract_remembered(&query, Dialect::Generic).is_ok());
        }
        assert!(REMEMBERED.with_borrow(|m| m.len()) <= REMEMBERED_QUERIES);
    }
}
