//! The document layout: which Automerge keys hold what, and how values are
//! encoded. Format 1.
//!
//! Everything lives in the document's root map as scalar values; there are no
//! nested objects. That is deliberate: Automerge gives a nested map an identity
//! (the id of the operation that created it), so two nodes that create the same
//! entity offline would create two maps, and one would hide the other after the
//! merge. Flat keys derived from the entity id make concurrent creation merge
//! field by field. (`US` = U+001F, which no id or key may contain.)
//!
//! | key | value | meaning |
//! |---|---|---|
//! | `e US id US name` | str | the display name; **present = the entity exists** |
//! | `e US id US owner` / `description` / `schema` | str | attributes |
//! | `e US id US level` | int | security level |
//! | `e US id US tag:T` | bool `true` | tag `T` (one register per tag: a set) |
//! | `e US id US attr:K` | str | free attribute `K` |
//! | `e US id US retired` | timestamp | retired at (soft) |
//! | `e US id US run` | str (JSON [`RunState`]) | last run |
//! | `l US source US target` | str (JSON [`EdgeSpec`]) | the edge; present = linked |
//! | `r US source US target` | str (JSON [`RunState`]) | the edge's last run |
//! | `m US epoch` / `m US base` | uint / str | the epoch this document starts (see `epoch.rs`) |
//!
//! Keys sort so that one entity's fields, and one source's out-edges, are
//! contiguous: a prefix range finds them.
//!
//! Values that do not decode (a newer or hostile peer) are treated as absent;
//! they never panic and never reach queries.

use automerge::{ScalarValue, Value};

use super::model::{EdgeSpec, EntityId, Millis, RunState};

/// The key separator.
pub(crate) const SEP: char = '\u{1f}';

/// One entity field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Field {
    Name,
    Owner,
    Description,
    Level,
    Schema,
    Retired,
    Run,
    Tag(String),
    Extra(String),
}

impl Field {
    fn encode(&self, out: &mut String) {
        match self {
            Field::Name => out.push_str("name"),
            Field::Owner => out.push_str("owner"),
            Field::Description => out.push_str("description"),
            Field::Level => out.push_str("level"),
            Field::Schema => out.push_str("schema"),
            Field::Retired => out.push_str("retired"),
            Field::Run => out.push_str("run"),
            Field::Tag(t) => {
                out.push_str("tag:");
                out.push_str(t);
            }
            Field::Extra(k) => {
                out.push_str("attr:");
                out.push_str(k);
            }
        }
    }

    fn decode(text: &str) -> Option<Self> {
        Some(match text {
            "name" => Field::Name,
            "owner" => Field::Owner,
            "description" => Field::Description,
            "level" => Field::Level,
            "schema" => Field::Schema,
            "retired" => Field::Retired,
            "run" => Field::Run,
            _ => {
                if let Some(t) = text.strip_prefix("tag:") {
                    Field::Tag(t.into())
                } else if let Some(k) = text.strip_prefix("attr:") {
                    Field::Extra(k.into())
                } else {
                    return None;
                }
            }
        })
    }
}

/// A parsed document key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    Entity(EntityId, Field),
    Edge(EntityId, EntityId),
    EdgeRun(EntityId, EntityId),
    Meta(String),
}

impl Key {
    /// Parses a key; `None` for keys this version does not understand (they are
    /// ignored, and dropped at the next epoch).
    pub(crate) fn parse(key: &str) -> Option<Key> {
        let mut parts = key.splitn(3, SEP);
        let tag = parts.next()?;
        let a = parts.next()?;
        match tag {
            "m" => Some(Key::Meta(a.into())),
            "e" => {
                let id = EntityId::from_canonical(a)?;
                Some(Key::Entity(id, Field::decode(parts.next()?)?))
            }
            "l" | "r" => {
                let source = EntityId::from_canonical(a)?;
                let target = EntityId::from_canonical(parts.next()?)?;
                Some(if tag == "l" {
                    Key::Edge(source, target)
                } else {
                    Key::EdgeRun(source, target)
                })
            }
            _ => None,
        }
    }

    #[cfg(test)]
    pub(crate) fn encode(&self) -> String {
        match self {
            Key::Entity(id, field) => entity_key(id, field),
            Key::Edge(s, t) => edge_key(s, t),
            Key::EdgeRun(s, t) => edge_run_key(s, t),
            Key::Meta(m) => meta_key(m),
        }
    }
}

pub(crate) fn entity_key(id: &EntityId, field: &Field) -> String {
    let mut k = String::with_capacity(id.as_str().len() + 16);
    k.push('e');
    k.push(SEP);
    k.push_str(id.as_str());
    k.push(SEP);
    field.encode(&mut k);
    k
}

/// The key range holding every field of `id`.
pub(crate) fn entity_range(id: &EntityId) -> std::ops::Range<String> {
    prefix_range('e', id.as_str())
}

pub(crate) fn edge_key(source: &EntityId, target: &EntityId) -> String {
    format!("l{SEP}{source}{SEP}{target}")
}

pub(crate) fn edge_run_key(source: &EntityId, target: &EntityId) -> String {
    format!("r{SEP}{source}{SEP}{target}")
}

/// The key range holding every out-edge of `source`.
pub(crate) fn out_edge_range(source: &EntityId) -> std::ops::Range<String> {
    prefix_range('l', source.as_str())
}

pub(crate) fn meta_key(name: &str) -> String {
    format!("m{SEP}{name}")
}

fn prefix_range(tag: char, id: &str) -> std::ops::Range<String> {
    let start = format!("{tag}{SEP}{id}{SEP}");
    // SEP + 1 is ' ': the first string after every key with this prefix.
    let end = format!("{tag}{SEP}{id} ");
    start..end
}

/// The value of one entity field, as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldValue {
    /// Text (names, owner, description, schema, free attributes).
    Text(String),
    /// An integer (the security level).
    Int(i64),
    /// A time in ms (retired at).
    Time(Millis),
    /// A set member (a tag).
    Flag,
    /// A run state.
    Run(RunState),
}

impl FieldValue {
    pub(crate) fn to_scalar(&self) -> ScalarValue {
        match self {
            FieldValue::Text(s) => ScalarValue::Str(s.as_str().into()),
            FieldValue::Int(i) => ScalarValue::Int(*i),
            FieldValue::Time(t) => ScalarValue::Timestamp(*t),
            FieldValue::Flag => ScalarValue::Boolean(true),
            FieldValue::Run(r) => ScalarValue::Str(encode_json(r).into()),
        }
    }

    /// Decodes the value of `field`; `None` if it has the wrong type.
    pub(crate) fn decode(field: &Field, value: &Value<'_>) -> Option<FieldValue> {
        let scalar = value.as_scalar()?;
        Some(match (field, scalar) {
            (
                Field::Name | Field::Owner | Field::Description | Field::Schema | Field::Extra(_),
                ScalarValue::Str(s),
            ) => FieldValue::Text(s.to_string()),
            (Field::Level, ScalarValue::Int(i)) => FieldValue::Int(*i),
            (Field::Retired, ScalarValue::Timestamp(t)) => FieldValue::Time(*t),
            (Field::Tag(_), ScalarValue::Boolean(true)) => FieldValue::Flag,
            (Field::Run, ScalarValue::Str(s)) => FieldValue::Run(decode_json(s)?),
            _ => return None,
        })
    }
}

pub(crate) fn encode_json<T: serde::Serialize>(value: &T) -> String {
    // Serialising these plain structs cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

pub(crate) fn decode_json<T: serde::de::DeserializeOwned>(text: &str) -> Option<T> {
    serde_json::from_str(text).ok()
}

/// Decodes an edge definition.
pub(crate) fn decode_edge(value: &Value<'_>) -> Option<EdgeSpec> {
    let s = value.as_str()?;
    let spec: EdgeSpec = decode_json(s)?;
    spec.check().ok()?;
    Some(spec)
}

/// Decodes a run state.
pub(crate) fn decode_run(value: &Value<'_>) -> Option<RunState> {
    decode_json(value.as_str()?)
}

/// Resolves a set of concurrent values for one key. Runs resolve to the latest
/// run (by its own time, not by Automerge's arbitrary winner), so the root-cause
/// query shows the run that actually happened last; everything else takes
/// Automerge's winner (`values[winner]`).
pub(crate) fn resolve_runs(values: &[Value<'_>]) -> Option<RunState> {
    values.iter().filter_map(decode_run).reduce(RunState::later)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let a = EntityId::parse("table:sales.orders").unwrap();
        let b = EntityId::parse("report:weekly revenue").unwrap();
        for key in [
            Key::Entity(a.clone(), Field::Name),
            Key::Entity(a.clone(), Field::Tag("pii".into())),
            Key::Entity(a.clone(), Field::Extra("x:y".into())),
            Key::Edge(a.clone(), b.clone()),
            Key::EdgeRun(b.clone(), a.clone()),
            Key::Meta("epoch".into()),
        ] {
            assert_eq!(Key::parse(&key.encode()), Some(key));
        }
        assert_eq!(Key::parse("e\u{1f}Table:X\u{1f}name"), None);
        assert_eq!(Key::parse("zzz"), None);
    }

    #[test]
    fn prefix_ranges_hold_exactly_one_entity() {
        let a = EntityId::parse("table:a").unwrap();
        let ab = EntityId::parse("table:a b").unwrap();
        let r = entity_range(&a);
        assert!(r.contains(&entity_key(&a, &Field::Name)));
        assert!(r.contains(&entity_key(&a, &Field::Tag("zz".into()))));
        assert!(!r.contains(&entity_key(&ab, &Field::Name)));
        let o = out_edge_range(&a);
        assert!(o.contains(&edge_key(&a, &ab)));
        assert!(!o.contains(&edge_key(&ab, &a)));
    }
}
