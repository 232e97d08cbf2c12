//! The error for SQL that no grammar could read, with where it failed.
//!
//! sqlparser reports the location inside its message text
//! (`"… at Line: 3, Column: 7"`); this file lifts it into fields so the CLI
//! can print `{"error", "line", "column"}` and keep sqlparser's types out of
//! the public API.

use std::fmt;

use sqlparser::parser::ParserError;

/// SQL that does not parse. Nothing was extracted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// What the parser expected and found, without the location.
    pub message: String,
    /// 1-based line of the offending token.
    pub line: u64,
    /// 1-based column (in characters) of the offending token.
    pub column: u64,
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SQL does not parse at line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for SqlError {}

impl SqlError {
    /// Converts a parser error. Errors without a location (the input ended
    /// too early) are placed at `end`, the position just past the input.
    pub(crate) fn from_parser(err: &ParserError, end: (u64, u64)) -> SqlError {
        let text = match err {
            ParserError::TokenizerError(m) | ParserError::ParserError(m) => m.clone(),
            ParserError::RecursionLimitExceeded => {
                "the statement nests too deeply (recursion limit exceeded)".to_string()
            }
        };
        match split_location(&text) {
            Some((message, line, column)) => SqlError {
                message: message.to_string(),
                line,
                column,
            },
            None => SqlError {
                message: text,
                line: end.0,
                column: end.1,
            },
        }
    }
}

/// Splits `"msg at Line: L, Column: C"` into its parts.
fn split_location(text: &str) -> Option<(&str, u64, u64)> {
    let at = text.rfind(" at Line: ")?;
    let rest = &text[at + " at Line: ".len()..];
    let (line, column) = rest.split_once(", Column: ")?;
    let line: u64 = line.trim().parse().ok()?;
    let column: u64 = column.trim().parse().ok()?;
    if line == 0 {
        return None;
    }
    Some((&text[..at], line, column.max(1)))
}

/// The (line, column) just past the end of `sql`, 1-based.
pub(crate) fn end_position(sql: &str) -> (u64, u64) {
    let line = sql.matches('\n').count() as u64 + 1;
    let last = sql.rsplit('\n').next().unwrap_or("");
    (line, last.chars().count() as u64 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifts_location_out_of_the_message() {
        let e = ParserError::ParserError("Expected: AS, found: BEGIN at Line: 3, Column: 1".into());
        let s = SqlError::from_parser(&e, (9, 9));
        assert_eq!(s.message, "Expected: AS, found: BEGIN");
        assert_eq!((s.line, s.column), (3, 1));
        assert_eq!(
            s.to_string(),
            "SQL does not parse at line 3, column 1: Expected: AS, found: BEGIN"
        );
    }

    #[test]
    fn errors_without_location_point_past_the_end() {
        let e = ParserError::ParserError("Expected: ), found: EOF".into());
        let s = SqlError::from_parser(&e, end_position("select (\n  1"));
        assert_eq!((s.line, s.column), (2, 4));
        let r = SqlError::from_parser(&ParserError::RecursionLimitExceeded, (1, 1));
        assert!(r.message.contains("recursion"));
    }
}
