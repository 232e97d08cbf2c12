//! SQL dialects by name, and the `sqlparser` grammar that reads each.
//!
//! Users name dialects the way their tools do (`tsql`, `databricks`,
//! `sparksql`, `mariadb`, `athena` …); sqlparser knows fewer grammars. This
//! file owns that mapping so the rest of the extractor only ever sees a
//! [`Dialect`], and so the CLI can list the accepted names in its errors.

use std::fmt;
use std::str::FromStr;

use sqlparser::dialect as sp;

/// A SQL dialect the extractor can read.
///
/// Parse one from a name with [`str::parse`]; the names (and their aliases)
/// are listed by [`Dialect::NAMES`]. Names are case-insensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Dialect {
    /// Lenient, vendor-neutral SQL. Also what `ansi` means: scripts labelled
    /// ANSI routinely contain vendor syntax that sqlparser's strict ANSI
    /// grammar would reject.
    #[default]
    Generic,
    /// PostgreSQL (also Greenplum, Materialize, Vertica, CockroachDB).
    Postgres,
    /// MySQL and MariaDB.
    MySql,
    /// Apache Hive (also Impala).
    Hive,
    /// Spark SQL.
    Spark,
    /// Databricks SQL.
    Databricks,
    /// Snowflake.
    Snowflake,
    /// Google BigQuery.
    BigQuery,
    /// Microsoft SQL Server / T-SQL (also Azure Synapse and Fabric).
    MsSql,
    /// Amazon Redshift.
    Redshift,
    /// SQLite.
    Sqlite,
    /// DuckDB.
    DuckDb,
    /// Oracle.
    Oracle,
    /// Teradata.
    Teradata,
    /// ClickHouse.
    ClickHouse,
}

/// The name given to [`Dialect::from_str`] is not one the extractor knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown SQL dialect {name:?}; valid dialects: {}", Dialect::NAMES.join(", "))]
pub struct UnknownDialect {
    /// The name that was given.
    pub name: String,
}

/// Every accepted name, with the dialect it selects.
const TABLE: &[(&str, Dialect)] = &[
    ("generic", Dialect::Generic),
    ("ansi", Dialect::Generic),
    ("athena", Dialect::Generic),
    ("trino", Dialect::Generic),
    ("presto", Dialect::Generic),
    ("db2", Dialect::Generic),
    ("exasol", Dialect::Generic),
    ("postgres", Dialect::Postgres),
    ("postgresql", Dialect::Postgres),
    ("greenplum", Dialect::Postgres),
    ("materialize", Dialect::Postgres),
    ("vertica", Dialect::Postgres),
    ("cockroachdb", Dialect::Postgres),
    ("mysql", Dialect::MySql),
    ("mariadb", Dialect::MySql),
    ("hive", Dialect::Hive),
    ("impala", Dialect::Hive),
    ("spark", Dialect::Spark),
    ("sparksql", Dialect::Spark),
    ("databricks", Dialect::Databricks),
    ("snowflake", Dialect::Snowflake),
    ("bigquery", Dialect::BigQuery),
    ("mssql", Dialect::MsSql),
    ("tsql", Dialect::MsSql),
    ("sqlserver", Dialect::MsSql),
    ("synapse", Dialect::MsSql),
    ("fabric", Dialect::MsSql),
    ("redshift", Dialect::Redshift),
    ("sqlite", Dialect::Sqlite),
    ("duckdb", Dialect::DuckDb),
    ("oracle", Dialect::Oracle),
    ("teradata", Dialect::Teradata),
    ("clickhouse", Dialect::ClickHouse),
];

impl Dialect {
    /// Every name [`Dialect::from_str`] accepts, aliases included.
    pub const NAMES: &'static [&'static str] = &[
        "generic",
        "ansi",
        "athena",
        "trino",
        "presto",
        "db2",
        "exasol",
        "postgres",
        "postgresql",
        "greenplum",
        "materialize",
        "vertica",
        "cockroachdb",
        "mysql",
        "mariadb",
        "hive",
        "impala",
        "spark",
        "sparksql",
        "databricks",
        "snowflake",
        "bigquery",
        "mssql",
        "tsql",
        "sqlserver",
        "synapse",
        "fabric",
        "redshift",
        "sqlite",
        "duckdb",
        "oracle",
        "teradata",
        "clickhouse",
    ];

    /// The canonical name of this dialect.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Generic => "generic",
            Dialect::Postgres => "postgres",
            Dialect::MySql => "mysql",
            Dialect::Hive => "hive",
            Dialect::Spark => "spark",
            Dialect::Databricks => "databricks",
            Dialect::Snowflake => "snowflake",
            Dialect::BigQuery => "bigquery",
            Dialect::MsSql => "mssql",
            Dialect::Redshift => "redshift",
            Dialect::Sqlite => "sqlite",
            Dialect::DuckDb => "duckdb",
            Dialect::Oracle => "oracle",
            Dialect::Teradata => "teradata",
            Dialect::ClickHouse => "clickhouse",
        }
    }

    /// The sqlparser grammar for this dialect.
    pub(crate) fn grammar(self) -> Box<dyn sp::Dialect> {
        match self {
            Dialect::Generic => Box::new(sp::GenericDialect),
            Dialect::Postgres => Box::new(sp::PostgreSqlDialect {}),
            Dialect::MySql => Box::new(sp::MySqlDialect {}),
            Dialect::Hive => Box::new(sp::HiveDialect {}),
            Dialect::Spark => Box::new(sp::SparkSqlDialect),
            Dialect::Databricks => Box::new(sp::DatabricksDialect),
            Dialect::Snowflake => Box::new(sp::SnowflakeDialect),
            Dialect::BigQuery => Box::new(sp::BigQueryDialect),
            Dialect::MsSql => Box::new(sp::MsSqlDialect {}),
            Dialect::Redshift => Box::new(sp::RedshiftSqlDialect {}),
            Dialect::Sqlite => Box::new(sp::SQLiteDialect {}),
            Dialect::DuckDb => Box::new(sp::DuckDbDialect),
            Dialect::Oracle => Box::new(sp::OracleDialect),
            Dialect::Teradata => Box::new(sp::TeradataDialect),
            Dialect::ClickHouse => Box::new(sp::ClickHouseDialect {}),
        }
    }

    /// Grammars to retry a statement with when this dialect's grammar rejects
    /// it, closest relatives first.
    ///
    /// Real scripts mix vendor syntax (a Hive script with a Spark-only clause,
    /// T-SQL `COPY INTO` that only the Snowflake grammar knows). A statement
    /// is reported as unparseable only when no grammar reads it.
    pub(crate) fn fallbacks(self) -> Vec<Dialect> {
        let family: &[Dialect] = match self {
            Dialect::Hive | Dialect::Spark => &[Dialect::Databricks, Dialect::Spark, Dialect::Hive],
            Dialect::Databricks => &[Dialect::Spark, Dialect::Hive],
            Dialect::Postgres | Dialect::Redshift | Dialect::DuckDb => {
                &[Dialect::Postgres, Dialect::Redshift, Dialect::DuckDb]
            }
            Dialect::MsSql => &[Dialect::Snowflake],
            Dialect::BigQuery => &[Dialect::Snowflake],
            _ => &[],
        };
        let all = [
            Dialect::Generic,
            Dialect::Databricks,
            Dialect::Snowflake,
            Dialect::MySql,
            Dialect::Postgres,
            Dialect::BigQuery,
            Dialect::MsSql,
            Dialect::Hive,
            Dialect::Redshift,
            Dialect::DuckDb,
            Dialect::Sqlite,
            Dialect::Oracle,
            Dialect::ClickHouse,
            Dialect::Teradata,
        ];
        let mut out: Vec<Dialect> = Vec::with_capacity(all.len());
        for d in family.iter().chain(all.iter()) {
            if *d != self && !out.contains(d) {
                out.push(*d);
            }
        }
        out
    }
}

impl FromStr for Dialect {
    type Err = UnknownDialect;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        TABLE
            .iter()
            .find(|(name, _)| *name == wanted)
            .map(|(_, d)| *d)
            .ok_or_else(|| UnknownDialect {
                name: s.to_string(),
            })
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_parse() {
        assert_eq!("TSQL".parse::<Dialect>().unwrap(), Dialect::MsSql);
        assert_eq!("sparksql".parse::<Dialect>().unwrap(), Dialect::Spark);
        assert_eq!("ansi".parse::<Dialect>().unwrap(), Dialect::Generic);
        assert_eq!("mariadb".parse::<Dialect>().unwrap(), Dialect::MySql);
        assert_eq!(
            "databricks".parse::<Dialect>().unwrap(),
            Dialect::Databricks
        );
    }

    #[test]
    fn every_listed_name_parses_and_the_table_lists_every_name() {
        for name in Dialect::NAMES {
            assert!(name.parse::<Dialect>().is_ok(), "{name}");
        }
        assert_eq!(TABLE.len(), Dialect::NAMES.len());
    }

    #[test]
    fn unknown_name_lists_valid_ones() {
        let err = "cobol".parse::<Dialect>().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("cobol"), "{msg}");
        assert!(msg.contains("postgres") && msg.contains("tsql"), "{msg}");
    }

    #[test]
    fn canonical_names_round_trip() {
        for (_, d) in TABLE {
            assert_eq!(d.name().parse::<Dialect>().unwrap(), *d);
        }
    }

    #[test]
    fn fallbacks_never_include_self() {
        for (_, d) in TABLE {
            assert!(!d.fallbacks().contains(d));
        }
    }
}
