//! Reading a parsed event with the path of every field at hand, so that an
//! error (or a facet warning) says exactly which field is wrong:
//! `inputs[2].facets.schema.fields[0].name must be a string, found a number`.
//!
//! `null` counts as absent everywhere: clients serialise unset optional
//! fields both ways.

use std::collections::HashSet;

use super::error::EventError;
use super::tree::{Entries, Json};

/// The JSON type of `v`, with its article, for messages.
pub(super) fn type_name(v: &Json<'_>) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// A JSON object and where it is in the event.
#[derive(Debug, Clone)]
pub(super) struct Obj<'a> {
    map: &'a Entries<'a>,
    path: String,
}

impl<'a> Obj<'a> {
    /// `value` as the object at `path`.
    pub(super) fn new(value: &'a Json<'a>, path: impl Into<String>) -> Result<Self, EventError> {
        let path = path.into();
        match value {
            Json::Object(map) => Ok(Self { map, path }),
            other => Err(wrong_type(path, "an object", other)),
        }
    }

    /// Where this object is.
    pub(super) fn path(&self) -> &str {
        &self.path
    }

    /// The path of `key` inside this object.
    pub(super) fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value of `key`, `None` if absent or `null`.
    pub(super) fn get(&self, key: &str) -> Option<&'a Json<'a>> {
        self.map.get(key).filter(|v| **v != Json::Null)
    }

    /// Whether `key` is present and not `null`.
    pub(super) fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The entries, sorted by key.
    pub(super) fn entries(&self) -> impl Iterator<Item = (&'a str, &'a Json<'a>)> + 'a {
        self.map
            .sorted()
            .into_iter()
            .filter(|(_, v)| **v != Json::Null)
    }

    /// A string field that must be present and not blank; returned trimmed.
    pub(super) fn req_str(&self, key: &str) -> Result<&'a str, EventError> {
        match self.opt_str(key)? {
            None => Err(EventError::Missing {
                field: self.field(key),
            }),
            Some(s) if s.is_empty() => Err(EventError::invalid(self.field(key), s, "empty")),
            Some(s) => Ok(s),
        }
    }

    /// An optional string field, trimmed.
    pub(super) fn opt_str(&self, key: &str) -> Result<Option<&'a str>, EventError> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.trim())),
            Some(other) => Err(wrong_type(self.field(key), "a string", other)),
        }
    }

    /// An optional object field.
    pub(super) fn opt_obj(&self, key: &str) -> Result<Option<Obj<'a>>, EventError> {
        self.get(key)
            .map(|v| Obj::new(v, self.field(key)))
            .transpose()
    }

    /// An object field that must be present.
    pub(super) fn req_obj(&self, key: &str) -> Result<Obj<'a>, EventError> {
        self.opt_obj(key)?.ok_or_else(|| EventError::Missing {
            field: self.field(key),
        })
    }

    /// An optional array field; absent reads as empty.
    pub(super) fn opt_array(&self, key: &str) -> Result<&'a [Json<'a>], EventError> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Json::Array(items)) => Ok(items),
            Some(other) => Err(wrong_type(self.field(key), "an array", other)),
        }
    }

    /// The objects of an optional array field, each with its path
    /// (`inputs[0]`, `inputs[1]` …).
    pub(super) fn objects(&self, key: &str) -> Result<Vec<Obj<'a>>, EventError> {
        self.opt_array(key)?
            .iter()
            .enumerate()
            .map(|(i, v)| Obj::new(v, format!("{}[{i}]", self.field(key))))
            .collect()
    }

    /// An optional non-negative integer field.
    pub(super) fn opt_u64(&self, key: &str) -> Result<Option<u64>, EventError> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::Number(n)) => match n.as_u64() {
                Some(v) => Ok(Some(v)),
                None => Err(EventError::invalid(
                    self.field(key),
                    &n.to_string(),
                    "not a non-negative integer",
                )),
            },
            Some(other) => Err(wrong_type(self.field(key), "an integer", other)),
        }
    }
}

fn wrong_type(field: String, expected: &str, found: &Json<'_>) -> EventError {
    EventError::WrongType {
        field,
        expected: expected.into(),
        found: type_name(found).into(),
    }
}

/// Where lenient reading puts what it skipped, as messages naming the field.
/// Repeats are dropped and at most [`Warnings::MAX`] are kept, so a hostile
/// event cannot make the list (or its cost) grow without bound.
#[derive(Debug, Default)]
pub(super) struct Warnings {
    list: Vec<String>,
    seen: HashSet<String>,
    dropped: usize,
}

impl Warnings {
    /// The most warnings kept for one event.
    pub(super) const MAX: usize = 100;

    /// Records a warning.
    pub(super) fn push(&mut self, message: impl Into<String>) {
        let message = message.into();
        if self.seen.contains(&message) {
            return;
        }
        if self.list.len() == Self::MAX {
            self.dropped += 1;
            return;
        }
        self.seen.insert(message.clone());
        self.list.push(message);
    }

    /// The warnings, in the order they arose.
    pub(super) fn into_vec(mut self) -> Vec<String> {
        if self.dropped > 0 {
            self.list
                .push(format!("… and {} more warnings", self.dropped));
        }
        self.list
    }

    /// The value of `result`, or `None` with its error recorded as a warning.
    pub(super) fn ok<T>(&mut self, result: Result<T, EventError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.push(format!("skipped: {e}"));
                None
            }
        }
    }

    /// The objects of the array `key` of `parent`, leniently: a wrong type
    /// or an element that is not an object is skipped with a warning, and
    /// the other elements still count.
    pub(super) fn objects<'a>(&mut self, parent: &Obj<'a>, key: &str) -> Vec<Obj<'a>> {
        let items = self.ok(parent.opt_array(key)).unwrap_or_default();
        let field = parent.field(key);
        items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| self.ok(Obj::new(v, format!("{field}[{i}]"))))
            .collect()
    }

    /// `text`, cut to what an attribute holds ([`MAX_VALUE_LEN`] bytes) with
    /// a warning naming `field` if it was longer.
    ///
    /// [`MAX_VALUE_LEN`]: crate::lineage::MAX_VALUE_LEN
    pub(super) fn clip(&mut self, field: &str, text: &str) -> String {
        let max = crate::lineage::MAX_VALUE_LEN;
        if text.len() <= max {
            return text.to_owned();
        }
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        self.push(format!(
            "`{field}` cut to {max} bytes (it had {})",
            text.len()
        ));
        text[..cut].to_owned()
    }
}
