//! What the caller tells the extractor: the dialect, a default schema, and
//! an optional catalog of table columns.
//!
//! Without a catalog, `SELECT *` and positional inserts cannot be expanded
//! to named columns; the extractor says so in its `unresolved` notes. With
//! one, it expands them and attributes unqualified columns in joins.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::dialect::Dialect;

/// How to read the SQL text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SqlOptions {
    /// The grammar to read the SQL with.
    pub dialect: Dialect,
    /// Qualifies table names written without a schema (`orders` becomes
    /// `sales.orders` with `Some("sales")`). Names are otherwise kept as
    /// qualified as they were written.
    pub default_schema: Option<String>,
    /// Known tables and their ordered columns.
    pub catalog: Option<Catalog>,
}

impl SqlOptions {
    /// Options for `dialect`, without default schema or catalog.
    pub fn new(dialect: Dialect) -> Self {
        SqlOptions {
            dialect,
            ..SqlOptions::default()
        }
    }

    /// Sets the default schema.
    pub fn with_default_schema(mut self, schema: impl Into<String>) -> Self {
        self.default_schema = Some(schema.into());
        self
    }

    /// Sets the catalog.
    pub fn with_catalog(mut self, catalog: Catalog) -> Self {
        self.catalog = Some(catalog);
        self
    }
}

/// Table name → ordered column names.
///
/// Serialized as a JSON object: `{"schema.table": ["col1", "col2"]}` (table
/// names are kept in lower case). Table names are matched case-insensitively; a name written with fewer (or more)
/// qualifiers than the catalog's key still matches when exactly one catalog
/// table ends with it (`orders` finds `sales.orders`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    from = "BTreeMap<String, Vec<String>>",
    into = "BTreeMap<String, Vec<String>>"
)]
pub struct Catalog {
    /// Lower-cased table name → columns.
    tables: BTreeMap<String, Vec<String>>,
    /// Last dotted part of each name → the names ending with it.
    by_last: BTreeMap<String, Vec<String>>,
}

impl From<BTreeMap<String, Vec<String>>> for Catalog {
    fn from(tables: BTreeMap<String, Vec<String>>) -> Self {
        let mut catalog = Catalog::default();
        for (table, columns) in tables {
            catalog.insert(table, columns);
        }
        catalog
    }
}

impl From<Catalog> for BTreeMap<String, Vec<String>> {
    fn from(catalog: Catalog) -> Self {
        catalog.tables
    }
}

/// A catalog document that is not a JSON object of string arrays.
#[derive(Debug, thiserror::Error)]
#[error("invalid catalog (expected {{\"schema.table\": [\"col\", ...]}}): {message}")]
pub struct CatalogError {
    /// What was wrong, with the line and column in the document.
    pub message: String,
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Catalog::default()
    }

    /// Reads a catalog from its JSON form.
    pub fn from_json(json: &str) -> Result<Self, CatalogError> {
        serde_json::from_str(json).map_err(|e| CatalogError {
            message: e.to_string(),
        })
    }

    /// Adds (or replaces) a table.
    pub fn insert(&mut self, table: impl Into<String>, columns: Vec<String>) {
        let key = table.into().to_lowercase();
        let last = last_part(&key).to_string();
        let names = self.by_last.entry(last).or_default();
        if !names.contains(&key) {
            names.push(key.clone());
        }
        self.tables.insert(key, columns);
    }

    /// Number of tables.
    pub fn len(&self) -> usize {
        self.tables.len()
    }

    /// True when the catalog knows no table.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// The columns of `table`, matched as described on [`Catalog`].
    pub fn columns(&self, table: &str) -> Option<&[String]> {
        let wanted = table.to_lowercase();
        if let Some(cols) = self.tables.get(&wanted) {
            return Some(cols);
        }
        let mut found = None;
        for key in self.by_last.get(last_part(&wanted)).into_iter().flatten() {
            if dot_suffix(key, &wanted) || dot_suffix(&wanted, key) {
                if found.is_some() {
                    return None;
                }
                found = self.tables.get(key).map(Vec::as_slice);
            }
        }
        found
    }
}

fn last_part(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
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
    fn reads_json_and_matches_names() {
        let c =
            Catalog::from_json(r#"{"Sales.Orders": ["id", "amount"], "x.y.t": ["a"]}"#).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c.columns("sales.orders").unwrap(), ["id", "amount"]);
        assert_eq!(c.columns("orders").unwrap(), ["id", "amount"]);
        assert_eq!(c.columns("db.sales.orders").unwrap(), ["id", "amount"]);
        assert_eq!(c.columns("y.t").unwrap(), ["a"]);
        assert!(c.columns("other").is_none());
        assert!(c.columns("ders").is_none());
    }

    #[test]
    fn ambiguous_suffix_matches_nothing() {
        let c = Catalog::from_json(r#"{"a.t": ["x"], "b.t": ["y"]}"#).unwrap();
        assert!(c.columns("t").is_none());
        assert_eq!(c.columns("a.t").unwrap(), ["x"]);
    }

    #[test]
    fn rejects_wrong_shapes() {
        assert!(Catalog::from_json(r#"{"t": "x"}"#).is_err());
        assert!(Catalog::from_json("[]").is_err());
        let err = Catalog::from_json("{").unwrap_err().to_string();
        assert!(err.contains("schema.table"), "{err}");
    }
}
