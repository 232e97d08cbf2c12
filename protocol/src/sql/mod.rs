//! Lineage extracted from SQL: the tables a statement reads and writes, and
//! which source columns each target column comes from.
//!
//! [`extract`] reads a statement or a whole script in one of several
//! [`Dialect`]s and returns a [`SqlLineage`]: per statement and for the
//! script as a whole, the source and target tables, the column lineage
//! (`schema.table.col` ← `schema.table.col`, as qualified as the SQL wrote
//! it), the paths (files, directories, stages — never tables) and notes on
//! what could not be resolved without a catalog. Pure: no I/O.
//!
//! Conventions, shared with the lineage graph: names compare
//! case-insensitively (unquoted identifiers print in lower case, quoted ones
//! as written); CTE names and subquery aliases are never tables; `DROP` and
//! `TRUNCATE` produce no lineage; a table a script creates and then reads is
//! an intermediate, followed through rather than reported.
//!
//! ```
//! use stemma_protocol::sql::{extract, Dialect, SqlOptions};
//!
//! let sql = "INSERT INTO mart.daily
//!            SELECT o.day, sum(o.amount) AS total
//!            FROM sales.orders o GROUP BY o.day";
//! let lineage = extract(sql, &SqlOptions::new(Dialect::Postgres)).unwrap();
//! assert_eq!(lineage.sources, ["sales.orders"]);
//! assert_eq!(lineage.targets, ["mart.daily"]);
//! assert_eq!(lineage.columns[1].target, "mart.daily.total");
//! assert_eq!(lineage.columns[1].sources, ["sales.orders.amount"]);
//!
//! let err = extract("SELECT FROM WHERE", &SqlOptions::default()).unwrap_err();
//! assert_eq!((err.line, err.column), (1, 13));
//! ```
//!
//! How it works, one concept per file: [`dialect`] maps names to grammars;
//! `parse` reads text leniently and `salvage` recovers what it can from
//! statements no grammar reads; `name` normalises identifiers and tells
//! paths from tables; `scope` resolves columns to relations; `expr`,
//! `query`, `tables` (the FROM clause), `statement` and `dml` walk the
//! syntax tree; `script` combines
//! statements; [`model`] is the output.

mod context;
pub mod dialect;
mod dml;
mod error;
mod expr;
pub mod model;
mod name;
mod options;
mod parse;
mod query;
mod salvage;
mod scope;
mod script;
mod statement;
mod tables;

pub use dialect::{Dialect, UnknownDialect};
pub use error::SqlError;
pub use model::{ColumnLineage, SqlLineage, StatementLineage};
pub use options::{Catalog, CatalogError, SqlOptions};

/// Extracts the lineage of `sql` (one statement or a script).
///
/// Fails only when a statement cannot be read by the chosen grammar, by any
/// related grammar, or by the salvage rules; the error says where. Nothing
/// is extracted then.
pub fn extract(sql: &str, options: &SqlOptions) -> Result<SqlLineage, SqlError> {
    let units = parse::parse_script(sql, options.dialect)?;
    Ok(script::lineage(&units, options))
}
