//! What the extractor returns: tables read and written, column lineage,
//! paths, and the notes on what could not be resolved.
//!
//! These types are the contract with the CLI (`stemma lineage sql --json`)
//! and with the lineage graph, so their serde form is fixed:
//! `{"sources", "targets", "columns", "paths", "unresolved", "statements"}`.

use serde::{Deserialize, Serialize};

/// One target column and the source columns its values come from.
///
/// Names are written `schema.table.column`, as qualified as the SQL wrote the
/// table. A source without a table (just `column`) is a column the extractor
/// could not attribute to one table; the statement's `unresolved` notes say
/// why. A `*` column stands for "every column" of a table whose columns were
/// not known (give a catalog to expand it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnLineage {
    /// The written column.
    pub target: String,
    /// The columns read to produce it.
    pub sources: Vec<String>,
}

/// The lineage of one SQL statement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementLineage {
    /// Tables (and views) the statement reads. CTEs and subquery aliases are
    /// never listed.
    pub sources: Vec<String>,
    /// Tables (and views) the statement writes or defines.
    pub targets: Vec<String>,
    /// Column-level lineage of the written columns.
    pub columns: Vec<ColumnLineage>,
    /// Files, directories, URLs and stages read or written; never tables.
    pub paths: Vec<String>,
    /// Why some columns could not be resolved (no catalog for `SELECT *`, a
    /// positional insert, an ambiguous unqualified column …).
    #[serde(default)]
    pub unresolved: Vec<String>,
    /// The paths among [`StatementLineage::paths`] that are read.
    #[serde(skip)]
    pub path_reads: Vec<String>,
    /// The paths among [`StatementLineage::paths`] that are written.
    #[serde(skip)]
    pub path_writes: Vec<String>,
}

/// The lineage of a whole SQL text (one statement or a script).
///
/// The top level is the union over statements, with tables that a script
/// both creates (or writes) and reads treated as intermediates: they are
/// neither sources nor targets, and column lineage is followed through them
/// from the first source column to the last target column.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlLineage {
    /// Tables the script reads that it did not produce itself.
    pub sources: Vec<String>,
    /// Tables the script leaves written.
    pub targets: Vec<String>,
    /// End-to-end column lineage (intermediate tables followed through).
    pub columns: Vec<ColumnLineage>,
    /// All paths read or written.
    pub paths: Vec<String>,
    /// Every statement's notes, prefixed with its 1-based number.
    #[serde(default)]
    pub unresolved: Vec<String>,
    /// Per-statement lineage, in script order.
    pub statements: Vec<StatementLineage>,
}

impl SqlLineage {
    /// Every (source column, target column) pair of the top-level lineage,
    /// flattened; handy for tests and for recording edges.
    pub fn column_pairs(&self) -> Vec<(String, String)> {
        flatten(&self.columns)
    }
}

impl StatementLineage {
    /// Every (source column, target column) pair of this statement.
    pub fn column_pairs(&self) -> Vec<(String, String)> {
        flatten(&self.columns)
    }
}

fn flatten(columns: &[ColumnLineage]) -> Vec<(String, String)> {
    columns
        .iter()
        .flat_map(|c| c.sources.iter().map(|s| (s.clone(), c.target.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_to_the_documented_shape() {
        let stmt = StatementLineage {
            sources: vec!["s.a".into()],
            targets: vec!["s.b".into()],
            columns: vec![ColumnLineage {
                target: "s.b.x".into(),
                sources: vec!["s.a.x".into()],
            }],
            paths: vec![],
            unresolved: vec![],
            path_reads: vec![],
            path_writes: vec![],
        };
        let all = SqlLineage {
            sources: stmt.sources.clone(),
            targets: stmt.targets.clone(),
            columns: stmt.columns.clone(),
            paths: vec![],
            unresolved: vec![],
            statements: vec![stmt],
        };
        let json = serde_json::to_value(&all).unwrap();
        let expected = serde_json::json!({
            "sources": ["s.a"], "targets": ["s.b"],
            "columns": [{"target": "s.b.x", "sources": ["s.a.x"]}],
            "paths": [], "unresolved": [],
            "statements": [{
                "sources": ["s.a"], "targets": ["s.b"],
                "columns": [{"target": "s.b.x", "sources": ["s.a.x"]}],
                "paths": [], "unresolved": []
            }]
        });
        assert_eq!(json, expected);
        let back: SqlLineage = serde_json::from_value(json).unwrap();
        assert_eq!(back, all);
        assert_eq!(back.column_pairs(), vec![("s.a.x".into(), "s.b.x".into())]);
    }
}
