//! Names as the extractor compares and prints them.
//!
//! SQL folds unquoted identifiers and keeps quoted ones, so a [`Name`]
//! prints unquoted parts in lower case and quoted parts as written; two
//! names are equal when they match case-insensitively (the convention of
//! the lineage graph). A table name keeps the qualification it was written
//! with; only a configured default schema adds one. This file also decides
//! which "table names" are really files or stages (Spark's
//! ``parquet.`/data/x` ``, Snowflake's `@stage`, quoted URLs): those are
//! paths, never tables.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use sqlparser::ast::{Ident, ObjectName, ObjectNamePart};

/// An identifier or dotted name, compared case-insensitively.
#[derive(Clone, Debug)]
pub(crate) struct Name {
    text: String,
    key: String,
}

impl Name {
    pub(crate) fn new(text: impl Into<String>) -> Name {
        let text = text.into();
        let key = text.to_lowercase();
        Name { text, key }
    }

    /// The form to print.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The lower-case form to compare.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Name {}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// An identifier as printed: folded to lower case unless it was quoted.
pub(crate) fn ident_text(id: &Ident) -> String {
    if id.quote_style.is_some() {
        id.value.clone()
    } else {
        id.value.to_lowercase()
    }
}

/// An identifier as a [`Name`].
pub(crate) fn ident_name(id: &Ident) -> Name {
    Name::new(ident_text(id))
}

/// Dotted identifiers (`a.b.c`) as one [`Name`].
pub(crate) fn idents_name(ids: &[Ident]) -> Name {
    let parts: Vec<String> = ids.iter().map(ident_text).collect();
    Name::new(parts.join("."))
}

/// What a name in table position refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Dataset {
    /// A table or view.
    Table(Name),
    /// A file, directory, URL or stage.
    Path(String),
}

/// File formats Spark and Databricks accept as ``format.`path` `` tables.
const FILE_FORMATS: &[&str] = &[
    "parquet",
    "json",
    "csv",
    "orc",
    "avro",
    "text",
    "delta",
    "binaryfile",
    "iceberg",
    "hudi",
];

/// Classifies an object name in table position. `None` when the name is
/// computed (a function part), so no dataset can be named.
pub(crate) fn dataset(name: &ObjectName, default_schema: Option<&str>) -> Option<Dataset> {
    let mut idents: Vec<&Ident> = Vec::with_capacity(name.0.len());
    for part in &name.0 {
        match part {
            ObjectNamePart::Identifier(id) => idents.push(id),
            ObjectNamePart::Function(_) => return None,
        }
    }
    let first = *idents.first()?;
    if idents.len() == 1 && (first.quote_style == Some('\'') || looks_like_path(&first.value)) {
        return Some(Dataset::Path(first.value.clone()));
    }
    if idents.len() == 2
        && idents[1].quote_style.is_some()
        && FILE_FORMATS.contains(&first.value.to_ascii_lowercase().as_str())
    {
        return Some(Dataset::Path(idents[1].value.clone()));
    }
    if let Some(p) = idents.iter().find(|i| i.value.contains("://")) {
        return Some(Dataset::Path(p.value.clone()));
    }
    let mut text: Vec<String> = idents.iter().map(|i| ident_text(i)).collect();
    if text.len() == 1
        && let Some(schema) = default_schema.filter(|s| !s.is_empty())
    {
        text.insert(0, schema.to_string());
    }
    Some(Dataset::Table(Name::new(text.join("."))))
}

/// A table name (never a path), qualified with the default schema when it
/// has no schema of its own.
pub(crate) fn table_name(name: &ObjectName, default_schema: Option<&str>) -> Option<Name> {
    match dataset(name, default_schema)? {
        Dataset::Table(n) => Some(n),
        Dataset::Path(_) => None,
    }
}

/// True for strings that name a location rather than a table: URLs, stages
/// (`@stage/dir`) and file-system paths.
pub(crate) fn looks_like_path(s: &str) -> bool {
    s.contains("://") || s.starts_with('@') || s.starts_with('/') || s.starts_with("~/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::ast::Ident;

    fn obj(parts: &[Ident]) -> ObjectName {
        ObjectName::from(parts.to_vec())
    }

    #[test]
    fn folds_unquoted_and_keeps_quoted() {
        let n = dataset(
            &obj(&[Ident::new("Sch"), Ident::with_quote('"', "MyTable")]),
            None,
        );
        assert_eq!(n, Some(Dataset::Table(Name::new("sch.MyTable"))));
        assert_eq!(Name::new("A.B"), Name::new("a.b"));
    }

    #[test]
    fn default_schema_qualifies_only_bare_names() {
        let bare = table_name(&obj(&[Ident::new("t")]), Some("s")).unwrap();
        assert_eq!(bare.text(), "s.t");
        let qualified = table_name(&obj(&[Ident::new("x"), Ident::new("t")]), Some("s")).unwrap();
        assert_eq!(qualified.text(), "x.t");
    }

    #[test]
    fn file_tables_and_stages_are_paths() {
        let spark = obj(&[Ident::new("parquet"), Ident::with_quote('`', "/data/x/")]);
        assert_eq!(
            dataset(&spark, None),
            Some(Dataset::Path("/data/x/".into()))
        );
        let stage = obj(&[Ident::new("@my_stage")]);
        assert_eq!(
            dataset(&stage, None),
            Some(Dataset::Path("@my_stage".into()))
        );
        let url = obj(&[Ident::with_quote('\'', "s3://b/k")]);
        assert_eq!(dataset(&url, None), Some(Dataset::Path("s3://b/k".into())));
        // A quoted table name is still a table.
        let quoted = obj(&[Ident::new("db"), Ident::with_quote('`', "tab")]);
        assert_eq!(
            dataset(&quoted, None),
            Some(Dataset::Table(Name::new("db.tab")))
        );
    }
}
