//! Turning SQL text into statements, leniently.
//!
//! The happy path is one call to sqlparser. When it fails, the script is cut
//! into statements at top-level semicolons (keeping `BEGIN … END` blocks and
//! routine bodies whole) and each piece is tried on its own: with the chosen
//! grammar, without required semicolons (T-SQL batches), with related
//! grammars, and finally with the salvage rules of [`super::salvage`]. A
//! script fails only when a piece is unreadable by every route, and the
//! error then carries the chosen grammar's message and position in the
//! original text.

use sqlparser::ast::Statement;
use sqlparser::dialect::Dialect as Grammar;
use sqlparser::parser::{Parser, ParserError, ParserOptions};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use super::dialect::Dialect;
use super::error::{SqlError, end_position};
use super::salvage;

/// One statement of the script, as far as it could be read.
#[derive(Debug)]
pub(crate) enum Unit {
    /// A statement sqlparser read.
    Statement(Box<Statement>),
    /// A routine or block no grammar read whole; the statements found
    /// inside it, analysed together as one statement.
    Block {
        statements: Vec<Statement>,
        note: String,
    },
    /// A statement reduced to what the salvage rules recognised.
    Salvaged(salvage::Salvaged),
    /// A statement without lineage that no grammar reads (`ADD JAR`,
    /// `REFRESH TABLE` …), kept so statement numbers match the script.
    Skipped(String),
}

/// Reads `sql` into units.
pub(crate) fn parse_script(sql: &str, dialect: Dialect) -> Result<Vec<Unit>, SqlError> {
    let grammar = dialect.grammar();
    let tokens = match Tokenizer::new(&*grammar, sql).tokenize_with_location() {
        Ok(t) => t,
        Err(e) => {
            let err = SqlError::from_parser(
                &ParserError::TokenizerError(e.to_string()),
                end_position(sql),
            );
            // Another grammar may tokenize it (quoting rules differ).
            for d in dialect.fallbacks() {
                if let Ok(stmts) = parse_text(sql, d, true) {
                    return Ok(stmts
                        .into_iter()
                        .map(|s| Unit::Statement(Box::new(s)))
                        .collect());
                }
            }
            return Err(err);
        }
    };
    let whole = Parser::new(&*grammar)
        .with_tokens_with_locations(tokens.clone())
        .parse_statements();
    let whole_err = match whole {
        Ok(stmts) => {
            return Ok(stmts
                .into_iter()
                .map(|s| Unit::Statement(Box::new(s)))
                .collect());
        }
        Err(e) => e,
    };
    let source = Source::new(sql);
    let chunks = split(&tokens);
    let mut units = Vec::new();
    for chunk in &chunks {
        let toks = &tokens[chunk.start..chunk.end];
        if is_noise(toks) {
            continue;
        }
        let end = chunk_end(&tokens, chunk.end, sql);
        let first_err = if chunks.len() == 1 {
            whole_err.clone()
        } else {
            match parse_tokens(&*grammar, toks, true) {
                Ok(stmts) => {
                    units.extend(stmts.into_iter().map(|s| Unit::Statement(Box::new(s))));
                    continue;
                }
                Err(e) => e,
            }
        };
        // T-SQL batches separate statements with whitespace alone. Only
        // there: elsewhere it would cut `CREATE TABLE t SELECT …` in two.
        if dialect == Dialect::MsSql
            && let Ok(stmts) = parse_tokens(&*grammar, toks, false)
        {
            units.extend(stmts.into_iter().map(|s| Unit::Statement(Box::new(s))));
            continue;
        }
        let text = source.slice(toks, end);
        if let Some(stmts) = dialect
            .fallbacks()
            .into_iter()
            .find_map(|d| parse_text(text, d, true).ok())
        {
            units.extend(stmts.into_iter().map(|s| Unit::Statement(Box::new(s))));
            continue;
        }
        let error = SqlError::from_parser(&first_err, end);
        match salvage::salvage(toks, dialect, &error) {
            Some(unit) => units.push(unit),
            None => return Err(error),
        }
    }
    Ok(units)
}

/// Parses a token slice with `grammar`.
pub(crate) fn parse_tokens(
    grammar: &dyn Grammar,
    tokens: &[TokenWithSpan],
    require_semicolons: bool,
) -> Result<Vec<Statement>, ParserError> {
    let options = ParserOptions {
        trailing_commas: grammar.supports_trailing_commas(),
        unescape: true,
        require_semicolon_stmt_delimiter: require_semicolons,
    };
    Parser::new(grammar)
        .with_options(options)
        .with_tokens_with_locations(tokens.to_vec())
        .parse_statements()
}

/// Parses text with `dialect`'s grammar.
pub(crate) fn parse_text(
    text: &str,
    dialect: Dialect,
    require_semicolons: bool,
) -> Result<Vec<Statement>, ParserError> {
    let grammar = dialect.grammar();
    let options = ParserOptions {
        trailing_commas: grammar.supports_trailing_commas(),
        unescape: true,
        require_semicolon_stmt_delimiter: require_semicolons,
    };
    Parser::new(&*grammar)
        .with_options(options)
        .try_with_sql(text)?
        .parse_statements()
}

/// A range of token indices holding one statement (semicolon excluded).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chunk {
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Cuts a token stream at top-level semicolons.
///
/// Semicolons inside parentheses, `BEGIN … END` and `CASE … END` do not cut;
/// neither do those of an Oracle-style routine's declaration section
/// (`CREATE PROCEDURE p AS DECLARE x NUMBER; BEGIN … END;`).
pub(crate) fn split(tokens: &[TokenWithSpan]) -> Vec<Chunk> {
    let words: Vec<(usize, String)> = tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| !matches!(t.token, Token::Whitespace(_)))
        .map(|(i, t)| (i, word_upper(&t.token)))
        .collect();
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut parens: i64 = 0;
    let mut blocks: i64 = 0;
    let mut routine_header = false;
    let mut routine_declares = false;
    let mut seen_begin = false;
    for (n, (i, w)) in words.iter().enumerate() {
        let next = words.get(n + 1).map(|(_, w)| w.as_str()).unwrap_or("");
        let prev = if n > 0 { words[n - 1].1.as_str() } else { ";" };
        match &tokens[*i].token {
            Token::LParen => parens += 1,
            Token::RParen => parens = (parens - 1).max(0),
            Token::SemiColon if parens == 0 && blocks == 0 => {
                if routine_declares && !seen_begin {
                    continue;
                }
                chunks.push(Chunk { start, end: *i });
                start = *i + 1;
                routine_header = false;
                routine_declares = false;
                seen_begin = false;
            }
            _ => {}
        }
        match w.as_str() {
            "PROCEDURE" | "FUNCTION" | "TRIGGER" | "PACKAGE" if starts_create(&words, start) => {
                routine_header = true;
            }
            "DECLARE" if routine_header && (prev == "AS" || prev == "IS") => {
                routine_declares = true
            }
            _ if routine_header && prev == "IS" && w != "BEGIN" => routine_declares = true,
            "BEGIN"
                if !matches!(
                    next,
                    "TRANSACTION"
                        | "TRAN"
                        | "WORK"
                        | ";"
                        | "ISOLATION"
                        | "DEFERRED"
                        | "IMMEDIATE"
                        | "EXCLUSIVE"
                        | ""
                ) =>
            {
                blocks += 1;
                seen_begin = true;
            }
            "CASE" if prev != "END" => blocks += 1,
            "END" if !matches!(next, "IF" | "LOOP" | "WHILE" | "REPEAT" | "FOR") => {
                blocks = (blocks - 1).max(0);
            }
            _ => {}
        }
    }
    chunks.push(Chunk {
        start,
        end: tokens.len(),
    });
    chunks
}

/// Upper-case text of a word token; `;` for a semicolon; empty otherwise.
fn word_upper(token: &Token) -> String {
    match token {
        Token::Word(w) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
        Token::SemiColon => ";".to_string(),
        _ => String::new(),
    }
}

/// True when the statement starting at token `start` begins with CREATE.
fn starts_create(words: &[(usize, String)], start: usize) -> bool {
    words
        .iter()
        .find(|(i, _)| *i >= start)
        .is_some_and(|(_, w)| w == "CREATE" || w == "ALTER" || w == "REPLACE")
}

/// Chunks with nothing to parse: empty, Oracle's `/` line, T-SQL's `GO`.
fn is_noise(tokens: &[TokenWithSpan]) -> bool {
    tokens.iter().all(|t| match &t.token {
        Token::Whitespace(_) | Token::Div | Token::EOF => true,
        Token::Word(w) => w.quote_style.is_none() && w.value.eq_ignore_ascii_case("GO"),
        _ => false,
    })
}

/// The position just past a chunk: its terminating token's, or the end of
/// the text.
fn chunk_end(tokens: &[TokenWithSpan], end: usize, sql: &str) -> (u64, u64) {
    match tokens.get(end) {
        Some(t) if t.span.start.line > 0 => (t.span.start.line, t.span.start.column),
        _ => end_position(sql),
    }
}

/// Maps token locations back to byte offsets in the text.
struct Source<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Source { text, line_starts }
    }

    fn offset(&self, loc: Location) -> usize {
        let Some(&line_start) = self.line_starts.get((loc.line.max(1) - 1) as usize) else {
            return self.text.len();
        };
        let line = &self.text[line_start..];
        let skip = loc.column.max(1) as usize - 1;
        line_start
            + line
                .char_indices()
                .nth(skip)
                .map(|(i, _)| i)
                .unwrap_or(line.len())
    }

    /// The text of a token slice, up to `end`.
    fn slice(&self, tokens: &[TokenWithSpan], end: (u64, u64)) -> &'a str {
        let Some(first) = tokens.iter().find(|t| t.span.start.line > 0) else {
            return "";
        };
        let from = self.offset(first.span.start);
        let to = self.offset(Location::new(end.0, end.1)).max(from);
        &self.text[from..to.min(self.text.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(sql: &str) -> usize {
        let g = Dialect::Generic.grammar();
        let tokens = Tokenizer::new(&*g, sql).tokenize_with_location().unwrap();
        split(&tokens).len()
    }

    #[test]
    fn splits_at_top_level_semicolons_only() {
        assert_eq!(count("select 1; select 2"), 2);
        assert_eq!(count("select ';'; select (1;2)"), 2);
        assert_eq!(
            count("create procedure p() begin select 1; select 2; end; select 3"),
            2
        );
        assert_eq!(count("select case when a then 1 end; select 2"), 2);
        assert_eq!(count("begin transaction; select 1; commit"), 3);
        assert_eq!(
            count(
                "create procedure p as declare x number := 0; begin if x then x := 1; end if; end; select 1"
            ),
            2
        );
    }

    #[test]
    fn whole_scripts_parse_in_one_go() {
        let units = parse_script(
            "select a from t; insert into u select * from t",
            Dialect::Generic,
        )
        .unwrap();
        assert_eq!(units.len(), 2);
    }

    #[test]
    fn a_failing_statement_is_retried_with_other_grammars() {
        // Only the Snowflake grammar knows COPY INTO.
        let units = parse_script("select 1; copy into t from 's3://b/k'", Dialect::MsSql).unwrap();
        assert_eq!(units.len(), 2);
    }

    #[test]
    fn tsql_batches_without_semicolons_parse() {
        let units = parse_script(
            "insert into a select * from b\ninsert into c select * from d",
            Dialect::MsSql,
        )
        .unwrap();
        assert_eq!(units.len(), 2);
    }

    #[test]
    fn errors_point_into_the_original_text() {
        let err =
            parse_script("select 1;\nselect 2;\nselect from where;", Dialect::Generic).unwrap_err();
        assert_eq!(err.line, 3, "{err}");
    }

    #[test]
    fn source_offsets_follow_characters() {
        let s = Source::new("é;\nab");
        assert_eq!(s.offset(Location::new(1, 2)), 2);
        assert_eq!(s.offset(Location::new(2, 2)), 5);
        assert_eq!(s.offset(Location::new(9, 1)), 6);
    }
}
