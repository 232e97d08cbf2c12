//! What to do with a statement no grammar reads whole.
//!
//! Lineage tools meet SQL their parser does not fully know: stored
//! procedures in a vendor's procedural language, Spark DDL clauses, T-SQL
//! compound assignments, administrative commands. Rejecting the whole script
//! for one such statement would lose everything else, so each rule here
//! recovers what it can *from the tokens* and says so in a note:
//!
//! - `a += b` style assignments are rewritten to `a = b` and parsed again;
//! - routines and `BEGIN … END` blocks yield the statements found inside
//!   them (each read with `Parser::parse_statement`, which stops where the
//!   statement ends), analysed together as one statement;
//! - commands without lineage (`ADD JAR`, `REFRESH`, `SHOW …`) are skipped;
//! - `CREATE TABLE name … [AS] SELECT …` keeps its name and query;
//! - Hive's `ALTER TABLE a EXCHANGE PARTITION (…) WITH TABLE b` becomes an
//!   edge from `b` to `a`;
//! - Hive's multi-insert `FROM src INSERT … SELECT … INSERT … SELECT …`
//!   becomes one `INSERT … SELECT … FROM src` per target;
//! - `INSERT INTO t (SELECT …)` loses the parentheses sqlparser reads as a
//!   column list.
//!
//! Anything else stays an error.

use sqlparser::ast::{ObjectName, Query, Statement};
use sqlparser::dialect::Dialect as Grammar;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan};

use super::dialect::Dialect;
use super::error::SqlError;
use super::parse::{Unit, parse_tokens};

/// A statement reduced to its recognised parts.
#[derive(Debug)]
pub(crate) enum Salvaged {
    /// `CREATE TABLE|VIEW name …`, with its query when it has one.
    CreateTable {
        name: ObjectName,
        query: Option<Box<Query>>,
        note: String,
    },
    /// Data moves from `source` into `target` (partition exchange).
    Exchange {
        target: ObjectName,
        source: ObjectName,
    },
}

/// Commands that carry no lineage, by their first word.
const NO_LINEAGE: &[&str] = &[
    "ADD",
    "REFRESH",
    "CACHE",
    "UNCACHE",
    "CLEAR",
    "SHOW",
    "DESC",
    "DESCRIBE",
    "SET",
    "RESET",
    "USE",
    "ANALYZE",
    "MSCK",
    "GRANT",
    "REVOKE",
    "COMMENT",
    "EXPLAIN",
    "OPTIMIZE",
    "VACUUM",
    "LIST",
    "LS",
    "PUT",
    "GET",
    "REMOVE",
    "RM",
    "PRINT",
    "RAISERROR",
    "THROW",
    "COMMIT",
    "ROLLBACK",
    "START",
    "ABORT",
    "DECLARE",
    "EXEC",
    "EXECUTE",
    "CALL",
    "INVALIDATE",
    "COMPUTE",
    "DROP",
    "TRUNCATE",
    "KILL",
    "LOCK",
    "UNLOCK",
    "CHECKPOINT",
    "DBCC",
    "SAVEPOINT",
    "RELEASE",
    "DEALLOCATE",
    "PREPARE",
    "LISTEN",
    "NOTIFY",
    "REINDEX",
    "PRAGMA",
    "ATTACH",
    "DETACH",
    "INSTALL",
    "FLUSH",
    "BACKUP",
    "RESTORE",
    "SYNC",
    "REPAIR",
];

/// Words that may start a statement inside a routine body.
const STATEMENT_STARTS: &[&str] = &[
    "INSERT", "UPDATE", "DELETE", "MERGE", "SELECT", "WITH", "CREATE", "COPY", "UNLOAD", "ALTER",
    "REPLACE", "UPSERT",
];

/// Objects whose `CREATE` defines code rather than data.
const ROUTINES: &[&str] = &[
    "PROCEDURE",
    "FUNCTION",
    "TRIGGER",
    "PACKAGE",
    "MACRO",
    "PROC",
];

/// Tries the salvage rules on the tokens of one unparseable statement.
pub(crate) fn salvage(
    tokens: &[TokenWithSpan],
    dialect: Dialect,
    error: &SqlError,
) -> Option<Unit> {
    let words = significant_words(tokens);
    let first = words.first().map(|(_, w)| w.as_str()).unwrap_or("");
    let grammar = dialect.grammar();
    let generic = Dialect::Generic.grammar();
    let grammars: [&dyn Grammar; 2] = [&*grammar, &*generic];
    let label = words
        .iter()
        .take(3)
        .map(|(_, w)| w.as_str())
        .collect::<Vec<_>>()
        .join(" ");

    if let Some(rewritten) = without_compound_assignment(tokens) {
        for g in grammars {
            if let Ok(mut stmts) = parse_tokens(g, &rewritten, true) {
                if stmts.len() == 1 {
                    return stmts.pop().map(|s| Unit::Statement(Box::new(s)));
                }
                return Some(Unit::Block {
                    statements: stmts,
                    note: format!(
                        "{label} …: read after rewriting compound assignments (a += b) as a = b"
                    ),
                });
            }
        }
    }

    let is_routine = first == "CREATE"
        && words
            .iter()
            .take(6)
            .any(|(_, w)| ROUTINES.contains(&w.as_str()));
    let has_block = words.iter().any(|(_, w)| w == "BEGIN");
    if is_routine || has_block {
        let inner = inner_statements(tokens, &grammars);
        if !inner.is_empty() {
            let note = format!(
                "{label} …: not parsed whole ({}); lineage taken from the {} statement(s) found inside",
                error,
                inner.len()
            );
            return Some(Unit::Block {
                statements: inner,
                note,
            });
        }
        if is_routine {
            return Some(Unit::Skipped(format!(
                "{label} …: not parsed ({error}); no statement with lineage found inside"
            )));
        }
    }

    if NO_LINEAGE.contains(&first) {
        return Some(Unit::Skipped(format!(
            "{label} …: not parsed ({error}); it has no lineage"
        )));
    }

    if first == "CREATE"
        && let Some(unit) = create_table(tokens, &words, &grammars, error)
    {
        return Some(unit);
    }

    if first == "INSERT"
        && let Some(unit) = insert_parenthesized_query(tokens, &words, &grammars)
    {
        return Some(unit);
    }

    if first == "FROM"
        && let Some(statements) = hive_multi_insert(tokens, &words, &grammars)
    {
        return Some(Unit::Block {
            statements,
            note: "FROM … INSERT … INSERT …: read as one INSERT … SELECT … FROM per target"
                .to_string(),
        });
    }

    if first == "ALTER" {
        return exchange(tokens, &words, &*grammar);
    }
    None
}

/// Indices and upper-case text of the non-whitespace tokens (non-words are
/// kept as their punctuation, so positions stay meaningful).
fn significant_words(tokens: &[TokenWithSpan]) -> Vec<(usize, String)> {
    tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| !matches!(t.token, Token::Whitespace(_)))
        .map(|(i, t)| {
            let w = match &t.token {
                Token::Word(w) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
                other => other.to_string(),
            };
            (i, w)
        })
        .collect()
}

/// The tokens with `op=` assignments turned into `=`, if there were any.
fn without_compound_assignment(tokens: &[TokenWithSpan]) -> Option<Vec<TokenWithSpan>> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut changed = false;
    for (i, t) in tokens.iter().enumerate() {
        let is_op = matches!(
            t.token,
            Token::Plus
                | Token::Minus
                | Token::Mul
                | Token::Div
                | Token::Mod
                | Token::Ampersand
                | Token::Pipe
                | Token::Caret
        );
        if is_op && matches!(tokens.get(i + 1).map(|n| &n.token), Some(Token::Eq)) {
            changed = true;
            continue;
        }
        out.push(t.clone());
    }
    changed.then_some(out)
}

/// Statements found inside a routine or block: every statement-starting
/// word is tried with `parse_statement`, skipping over what was read.
fn inner_statements(tokens: &[TokenWithSpan], grammars: &[&dyn Grammar]) -> Vec<Statement> {
    let mut found = Vec::new();
    let mut i = 1; // the routine's own CREATE (or the block's first word) is not a candidate
    while let Some(first) = tokens
        .iter()
        .skip(i)
        .position(|t| !matches!(t.token, Token::Whitespace(_)))
    {
        i += first;
        let starts = matches!(&tokens[i].token, Token::Word(w)
            if w.quote_style.is_none()
                && STATEMENT_STARTS.iter().any(|s| w.value.eq_ignore_ascii_case(s)));
        if starts {
            let parsed = grammars.iter().find_map(|g| {
                let mut p = Parser::new(*g).with_tokens_with_locations(tokens[i..].to_vec());
                let stmt = p.parse_statement().ok()?;
                Some((stmt, p.index()))
            });
            if let Some((stmt, used)) = parsed
                && !matches!(
                    stmt,
                    Statement::CreateProcedure { .. } | Statement::CreateFunction(_)
                )
            {
                found.push(stmt);
                i += used.max(1);
                continue;
            }
        }
        i += 1;
    }
    found
}

/// Hive's multi-insert, `FROM src INSERT … SELECT a … INSERT … SELECT b …`:
/// each insert is rebuilt as `INSERT … SELECT a FROM src …` and parsed.
fn hive_multi_insert(
    tokens: &[TokenWithSpan],
    words: &[(usize, String)],
    grammars: &[&dyn Grammar],
) -> Option<Vec<Statement>> {
    let mut depth = 0i64;
    let mut inserts: Vec<usize> = Vec::new();
    let mut depth_at: Vec<i64> = Vec::with_capacity(words.len());
    for (i, w) in words {
        match w.as_str() {
            "(" => depth += 1,
            ")" => depth -= 1,
            "INSERT" if depth == 0 => inserts.push(*i),
            _ => {}
        }
        depth_at.push(depth);
    }
    let from_at = words.first()?.0;
    let first_insert = *inserts.first()?;
    let from_clause = &tokens[from_at + 1..first_insert];
    let mut statements = Vec::new();
    for (n, &start) in inserts.iter().enumerate() {
        let end = inserts.get(n + 1).copied().unwrap_or(tokens.len());
        let segment = &tokens[start..end];
        // Where the select list ends: the first clause keyword at depth 0.
        let in_segment = |i: usize| i >= start && i < end;
        let select_at = words
            .iter()
            .zip(&depth_at)
            .position(|((i, w), d)| in_segment(*i) && *d == 0 && w == "SELECT")?;
        let list_end = words
            .iter()
            .zip(&depth_at)
            .skip(select_at + 1)
            .find(|((i, w), d)| {
                in_segment(*i)
                    && **d == 0
                    && matches!(
                        w.as_str(),
                        "WHERE"
                            | "GROUP"
                            | "HAVING"
                            | "ORDER"
                            | "CLUSTER"
                            | "DISTRIBUTE"
                            | "SORT"
                            | "LIMIT"
                            | "WINDOW"
                    )
            })
            .map(|((i, _), _)| *i)
            .unwrap_or(end);
        let split = list_end - start;
        let space = TokenWithSpan::wrap(Token::Whitespace(sqlparser::tokenizer::Whitespace::Space));
        let mut rebuilt: Vec<TokenWithSpan> = segment[..split].to_vec();
        rebuilt.push(space.clone());
        rebuilt.push(tokens[from_at].clone());
        rebuilt.extend_from_slice(from_clause);
        rebuilt.push(space);
        rebuilt.extend_from_slice(&segment[split..]);
        let stmt = grammars.iter().find_map(|g| {
            let mut stmts = parse_tokens(*g, &rebuilt, true).ok()?;
            (stmts.len() == 1).then(|| stmts.remove(0))
        })?;
        statements.push(stmt);
    }
    Some(statements)
}

/// `INSERT INTO t (WITH … SELECT …)`: a parenthesised query where a column
/// list is expected. The parentheses are dropped and the statement re-read.
fn insert_parenthesized_query(
    tokens: &[TokenWithSpan],
    words: &[(usize, String)],
    grammars: &[&dyn Grammar],
) -> Option<Unit> {
    let open = words
        .windows(2)
        .find(|w| w[0].1 == "(" && (w[1].1 == "WITH" || w[1].1 == "SELECT"))
        .map(|w| w[0].0)?;
    let mut depth = 0i64;
    let mut close = None;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    let close = close?;
    let rewritten: Vec<TokenWithSpan> = tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != open && *i != close)
        .map(|(_, t)| t.clone())
        .collect();
    grammars.iter().find_map(|g| {
        let mut stmts = parse_tokens(*g, &rewritten, true).ok()?;
        (stmts.len() == 1).then(|| Unit::Statement(Box::new(stmts.remove(0))))
    })
}

/// `CREATE [modifiers] TABLE|VIEW [IF NOT EXISTS] name … [[AS] query]`.
fn create_table(
    tokens: &[TokenWithSpan],
    words: &[(usize, String)],
    grammars: &[&dyn Grammar],
    error: &SqlError,
) -> Option<Unit> {
    let table_at = words
        .iter()
        .take(8)
        .position(|(_, w)| w == "TABLE" || w == "VIEW")?;
    let mut name_at = table_at + 1;
    if words.get(name_at).map(|(_, w)| w.as_str()) == Some("IF") {
        name_at += 3;
    }
    let (start, _) = *words.get(name_at)?;
    let mut p = Parser::new(grammars[0]).with_tokens_with_locations(tokens[start..].to_vec());
    let name = p.parse_object_name(false).ok()?;
    let after_name = start + p.index();
    let mut depth = 0i64;
    let mut query = None;
    for (i, w) in words.iter().filter(|(i, _)| *i >= after_name) {
        match w.as_str() {
            "(" => depth += 1,
            ")" => depth -= 1,
            "SELECT" | "WITH" if depth == 0 => {
                query = grammars.iter().find_map(|g| {
                    Parser::new(*g)
                        .with_tokens_with_locations(tokens[*i..].to_vec())
                        .parse_query()
                        .ok()
                });
                break;
            }
            _ => {}
        }
    }
    Some(Unit::Salvaged(Salvaged::CreateTable {
        name,
        query,
        note: format!("CREATE: not parsed whole ({error}); read its name and query only"),
    }))
}

/// `ALTER TABLE target EXCHANGE PARTITION (…) WITH TABLE source`.
fn exchange(
    tokens: &[TokenWithSpan],
    words: &[(usize, String)],
    grammar: &dyn Grammar,
) -> Option<Unit> {
    if words.get(1).map(|(_, w)| w.as_str()) != Some("TABLE")
        || !words.iter().any(|(_, w)| w == "EXCHANGE")
    {
        return None;
    }
    let name_at = |n: usize| -> Option<ObjectName> {
        let (start, _) = *words.get(n)?;
        Parser::new(grammar)
            .with_tokens_with_locations(tokens[start..].to_vec())
            .parse_object_name(false)
            .ok()
    };
    let target = name_at(2)?;
    let with_table = words
        .windows(2)
        .position(|w| w[0].1 == "WITH" && w[1].1 == "TABLE")?;
    let source = name_at(with_table + 2)?;
    Some(Unit::Salvaged(Salvaged::Exchange { target, source }))
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse_script;
    use super::*;

    fn units(sql: &str, d: Dialect) -> Vec<Unit> {
        parse_script(sql, d).unwrap()
    }

    #[test]
    fn procedures_yield_their_inner_statements() {
        let u = units(
            "CREATE PROCEDURE p()\nBEGIN\nINSERT INTO t2 SELECT a FROM t1;\nIF x THEN LEAVE; END IF;\nEND",
            Dialect::BigQuery,
        );
        assert_eq!(u.len(), 1);
        match &u[0] {
            Unit::Block { statements, .. } => assert_eq!(statements.len(), 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn commands_without_lineage_are_skipped() {
        let u = units("ADD JAR /tmp/x.jar; SELECT 1", Dialect::Spark);
        assert!(matches!(u[0], Unit::Skipped(_)));
        assert_eq!(u.len(), 2);
    }

    #[test]
    fn spark_ddl_keeps_its_name_and_query() {
        let u = units(
            "CREATE TABLE s (id INT) USING CSV PARTITIONED BY (id) CLUSTERED BY (id) INTO 4 buckets AS SELECT id FROM t",
            Dialect::Spark,
        );
        match &u[0] {
            Unit::Salvaged(Salvaged::CreateTable { name, query, .. }) => {
                assert_eq!(name.to_string(), "s");
                assert!(query.is_some());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn compound_assignments_are_rewritten() {
        let u = units(
            "UPDATE t SET a += 1 FROM t JOIN s ON t.id = s.id",
            Dialect::MsSql,
        );
        assert!(matches!(u[0], Unit::Statement(_)));
    }

    #[test]
    fn exchange_partition_is_recognised() {
        let u = units(
            "ALTER TABLE a EXCHANGE PARTITION (p='1') WITH TABLE b",
            Dialect::Hive,
        );
        assert!(matches!(u[0], Unit::Salvaged(Salvaged::Exchange { .. })));
    }

    #[test]
    fn hive_multi_insert_becomes_one_insert_per_target() {
        let u = units(
            "FROM src s INSERT OVERWRITE TABLE t1 SELECT s.a WHERE s.a > 0 INSERT OVERWRITE TABLE t2 SELECT s.b, count(1) GROUP BY s.b",
            Dialect::Hive,
        );
        match &u[0] {
            Unit::Block { statements, .. } => assert_eq!(statements.len(), 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_stays_an_error() {
        assert!(parse_script("SELEC * FROM t", Dialect::Generic).is_err());
        assert!(parse_script("INSERT INTO", Dialect::Generic).is_err());
    }
}
