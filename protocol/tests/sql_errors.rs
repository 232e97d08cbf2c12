//! SQL that does not parse: an error with the line and column of the
//! offending token (1-based, in the original text), and never a panic —
//! whatever the input.

use proptest::prelude::*;
use stemma_protocol::sql::{Dialect, SqlOptions, extract};

fn err_at(sql: &str, dialect: Dialect) -> (u64, u64, String) {
    let e = extract(sql, &SqlOptions::new(dialect)).expect_err(sql);
    (e.line, e.column, e.to_string())
}

#[test]
fn errors_point_at_the_offending_token() {
    let (line, column, msg) = err_at("SELECT a FROM t WHERE", Dialect::Generic);
    assert_eq!((line, column), (1, 22), "{msg}");
    assert!(msg.contains("line 1, column 22"), "{msg}");

    let (line, column, msg) = err_at(
        "SELECT 1;\n\n  INSERT INTO t VALUES (1,;\nSELECT 2",
        Dialect::Postgres,
    );
    assert_eq!((line, column), (3, 27), "{msg}");
}

#[test]
fn a_bad_statement_in_a_script_fails_the_whole_script() {
    let (line, _, msg) = err_at(
        "INSERT INTO a SELECT * FROM b;\nSELEC x FROM y;",
        Dialect::Generic,
    );
    assert_eq!(line, 2, "{msg}");
}

#[test]
fn tokenizer_errors_have_positions_too() {
    let (line, column, msg) = err_at("SELECT 'unterminated\nFROM t", Dialect::Generic);
    assert!(line >= 1 && column >= 1, "{msg}");
    assert!(msg.contains("line"), "{msg}");
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let sql = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
    let e = extract(&sql, &SqlOptions::default()).unwrap_err();
    assert!(e.line >= 1);
}

#[test]
fn empty_input_has_no_lineage() {
    let l = extract("  -- nothing\n ; ;", &SqlOptions::default()).unwrap();
    assert!(l.sources.is_empty() && l.targets.is_empty() && l.statements.is_empty());
}

const DIALECTS: [Dialect; 6] = [
    Dialect::Generic,
    Dialect::MsSql,
    Dialect::Hive,
    Dialect::Snowflake,
    Dialect::BigQuery,
    Dialect::Oracle,
];

/// Fragments that, shuffled, make SQL-looking input that exercises the
/// salvage paths (blocks, procedures, partial statements).
const WORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "INSERT",
    "INTO",
    "UPDATE",
    "SET",
    "DELETE",
    "MERGE",
    "USING",
    "WITH",
    "AS",
    "CREATE",
    "TABLE",
    "VIEW",
    "PROCEDURE",
    "BEGIN",
    "END",
    "CASE",
    "WHEN",
    "THEN",
    "IF",
    "LOOP",
    "DECLARE",
    "JOIN",
    "ON",
    "UNION",
    "ALL",
    "(",
    ")",
    ",",
    ";",
    "*",
    "=",
    "+=",
    "t",
    "a.b",
    "`x`",
    "\"Q\"",
    "'s'",
    "1",
    "@v",
    "/",
    "GO",
    "LATERAL",
    "VIEW",
    "explode(a)",
    "OVERWRITE",
    "DIRECTORY",
    "COPY",
    "ALTER",
    "EXCHANGE",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(sql in "\\PC{0,200}", d in 0usize..DIALECTS.len()) {
        let _ = extract(&sql, &SqlOptions::new(DIALECTS[d]));
    }

    #[test]
    fn sql_like_token_soup_never_panics(
        words in proptest::collection::vec(proptest::sample::select(WORDS), 0..40),
        d in 0usize..DIALECTS.len(),
    ) {
        let sql = words.join(" ");
        if let Err(e) = extract(&sql, &SqlOptions::new(DIALECTS[d])) {
            prop_assert!(e.line >= 1 && e.column >= 1, "{e}");
        }
    }
}
