//! The event as a JSON tree that borrows from the request's bytes: strings
//! and keys point into them (unless they hold escapes) and an object is a
//! vector of entries. Building serde_json's `Value` instead (a `String` per
//! key and per string, a B-tree per object) and dropping it again was half
//! of the cost of mapping an event.

use std::borrow::Cow;

use serde_json::Number;

/// A JSON value read from an event.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Json<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number.
    Number(Number),
    /// A string, borrowed unless it held escapes.
    String(Cow<'a, str>),
    /// An array.
    Array(Vec<Json<'a>>),
    /// An object.
    Object(Entries<'a>),
}

/// An object's entries in the order they were written. A key written twice
/// counts once, with its last value, as in serde_json.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct Entries<'a>(Vec<(Cow<'a, str>, Json<'a>)>);

impl<'a> Entries<'a> {
    /// Adds an entry (a repeated key's later value wins on lookup).
    pub(super) fn push(&mut self, key: Cow<'a, str>, value: Json<'a>) {
        self.0.push((key, value));
    }

    /// The value of `key`. Objects in events are small, so a scan beats a
    /// map; from the end, so the last of repeated keys wins.
    pub(super) fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Each key once (with its last value), sorted by key: the order does not
    /// depend on how a producer ordered its keys.
    pub(super) fn sorted(&self) -> Vec<(&str, &Json<'a>)> {
        let mut entries: Vec<(&str, &Json<'a>)> =
            self.0.iter().map(|(k, v)| (k.as_ref(), v)).collect();
        // Stable: among equal keys the written order stays, so the last of
        // each run is the value that wins.
        entries.sort_by(|a, b| a.0.cmp(b.0));
        let mut out: Vec<(&str, &Json<'a>)> = Vec::with_capacity(entries.len());
        for entry in entries {
            match out.last_mut() {
                Some(last) if last.0 == entry.0 => *last = entry,
                _ => out.push(entry),
            }
        }
        out
    }
}

#[cfg(test)]
impl Json<'_> {
    /// The same value as serde_json's tree, to compare with it.
    pub(super) fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Number(n.clone()),
            Json::String(s) => Value::String(s.to_string()),
            Json::Array(items) => Value::Array(items.iter().map(Json::to_value).collect()),
            Json::Object(entries) => {
                let mut map = serde_json::Map::new();
                for (k, v) in &entries.0 {
                    map.insert(k.to_string(), v.to_value());
                }
                Value::Object(map)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_reads_as_its_last_value_and_sorted_lists_it_once() {
        let mut entries = Entries::default();
        entries.push("b".into(), Json::Bool(false));
        entries.push("a".into(), Json::Null);
        entries.push("b".into(), Json::Bool(true));
        assert_eq!(entries.get("b"), Some(&Json::Bool(true)));
        assert_eq!(entries.get("c"), None);
        assert_eq!(
            entries.sorted(),
            vec![("a", &Json::Null), ("b", &Json::Bool(true))]
        );
    }
}
