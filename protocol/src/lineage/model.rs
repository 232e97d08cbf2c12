//! What the lineage graph is made of: entity ids and kinds, attributes, and the
//! records the index serves — the vocabulary shared by the document, the index
//! and the queries (edges and runs are in `edge.rs`).
//!
//! Ids are parsed once at the edge ("parse, don't validate"): an [`EntityId`] in
//! hand is always canonical, so two nodes that type `Table:Sales.Orders` and
//! `table:sales.orders` while cut off from each other write the *same* keys and
//! their edits merge field by field instead of creating two entities.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use super::edge::{EdgeKind, EdgeSpec, RunState, RunStatus};
use super::error::ModelError;

/// Milliseconds since the Unix epoch. Time is always passed in by the caller;
/// nothing in this module reads a clock.
pub type Millis = i64;

/// The longest entity name, in bytes.
pub const MAX_NAME_LEN: usize = 512;
/// The longest attribute key, tag or free-form kind, in bytes.
pub const MAX_KEY_LEN: usize = 128;
/// The longest attribute value (rule text included), in bytes.
pub const MAX_VALUE_LEN: usize = 256 * 1024;

/// What an entity is. The list follows the DESIGN; anything else is
/// [`EntityKind::Other`] so that a node never rejects a kind a newer node wrote.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityKind {
    /// A source system (an ERP, a sensor fleet).
    System,
    /// A database.
    Database,
    /// A schema inside a database.
    Schema,
    /// A table or view.
    Table,
    /// A column; belongs to its table (see [`EntityId::parent`]).
    Column,
    /// A job, task or pipeline.
    Job,
    /// A metric.
    Metric,
    /// A report.
    Report,
    /// A dashboard.
    Dashboard,
    /// An organisational unit that owns or consumes data.
    Department,
    /// A Stemma object (`bucket/key`).
    Object,
    /// Any other kind: lower-case `[a-z][a-z0-9_-]*`.
    Other(String),
}

impl EntityKind {
    /// The kinds Stemma knows by name.
    pub const KNOWN: [EntityKind; 11] = [
        EntityKind::System,
        EntityKind::Database,
        EntityKind::Schema,
        EntityKind::Table,
        EntityKind::Column,
        EntityKind::Job,
        EntityKind::Metric,
        EntityKind::Report,
        EntityKind::Dashboard,
        EntityKind::Department,
        EntityKind::Object,
    ];

    /// Parses a kind, case-insensitively.
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let lower = text.trim().to_ascii_lowercase();
        Ok(match lower.as_str() {
            "system" => Self::System,
            "database" => Self::Database,
            "schema" => Self::Schema,
            "table" => Self::Table,
            "column" => Self::Column,
            "job" => Self::Job,
            "metric" => Self::Metric,
            "report" => Self::Report,
            "dashboard" => Self::Dashboard,
            "department" => Self::Department,
            "object" => Self::Object,
            _ => {
                let ok = !lower.is_empty()
                    && lower.len() <= MAX_KEY_LEN
                    && lower.as_bytes()[0].is_ascii_lowercase()
                    && lower.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                    });
                if !ok {
                    return Err(ModelError::Kind(text.into()));
                }
                Self::Other(lower)
            }
        })
    }

    /// The lower-case name, as in ids.
    pub fn as_str(&self) -> &str {
        match self {
            Self::System => "system",
            Self::Database => "database",
            Self::Schema => "schema",
            Self::Table => "table",
            Self::Column => "column",
            Self::Job => "job",
            Self::Metric => "metric",
            Self::Report => "report",
            Self::Dashboard => "dashboard",
            Self::Department => "department",
            Self::Object => "object",
            Self::Other(s) => s,
        }
    }
}

/// A stable entity id, `kind:name` in canonical (lower-case) form.
///
/// The id is derived from what the user types, never generated: the same
/// entity registered on two nodes offline is one key in the document. The kind
/// is case-insensitive; names are compared lower-case (the name as typed is kept
/// as the entity's display name). Names may contain any character except control
/// characters, up to [`MAX_NAME_LEN`] bytes; surrounding spaces are trimmed.
///
/// Shared (`Arc`): query answers hand out ids by the dozen, and a clone is a
/// counter increment rather than a copy.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityId(Arc<str>);

impl EntityId {
    /// Parses `KIND:NAME` as a user types it (`table:sales.orders`,
    /// `Job:Nightly_Load`).
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let (kind, name) = split_kind_name(text)?;
        Ok(Self::from_parts(&kind, &name.to_lowercase()))
    }

    /// The id of `name` of the given kind.
    pub fn new(kind: &EntityKind, name: &str) -> Result<Self, ModelError> {
        let name = check_name(name)?;
        Ok(Self::from_parts(kind, &name.to_lowercase()))
    }

    fn from_parts(kind: &EntityKind, lower_name: &str) -> Self {
        let mut s = String::with_capacity(kind.as_str().len() + 1 + lower_name.len());
        s.push_str(kind.as_str());
        s.push(':');
        s.push_str(lower_name);
        Self(s.into())
    }

    /// Accepts `text` only if it already is a canonical id. Used for ids read
    /// back from the document, so a key written by a buggy or hostile peer
    /// cannot alias another entity.
    pub(crate) fn from_canonical(text: &str) -> Option<Self> {
        let id = Self::parse(text).ok()?;
        (id.as_str() == text).then_some(id)
    }

    /// The canonical text, `kind:name`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The kind.
    pub fn kind(&self) -> EntityKind {
        let (kind, _) = self.0.split_once(':').unwrap_or(("", ""));
        // A canonical id always holds a valid kind.
        EntityKind::parse(kind).unwrap_or(EntityKind::Other(kind.into()))
    }

    /// The canonical (lower-case) name.
    pub fn name(&self) -> &str {
        self.0.split_once(':').map(|(_, n)| n).unwrap_or("")
    }

    /// The entity this one belongs to: a column `sales.orders.id` belongs to the
    /// table `sales.orders`. Derived from the id, so it never disagrees between
    /// nodes and costs nothing to store.
    pub fn parent(&self) -> Option<EntityId> {
        let name = self.0.strip_prefix("column:")?;
        let (table, column) = name.rsplit_once('.')?;
        if table.is_empty() || column.is_empty() {
            return None;
        }
        Some(Self::from_parts(&EntityKind::Table, table))
    }
}

fn split_kind_name(text: &str) -> Result<(EntityKind, String), ModelError> {
    let text = text.trim();
    let Some((kind, name)) = text.split_once(':') else {
        return Err(ModelError::Id {
            id: text.into(),
            rule: "an entity is named KIND:NAME, e.g. table:sales.orders or job:nightly_load",
        });
    };
    let kind = EntityKind::parse(kind).map_err(|_| ModelError::Id {
        id: text.into(),
        rule: "the kind is a word like table, column, job, report ([a-z][a-z0-9_-]*)",
    })?;
    let name = check_name(name).map_err(|_| ModelError::Id {
        id: text.into(),
        rule: "the name is 1 to 512 bytes without control characters",
    })?;
    Ok((kind, name))
}

fn check_name(name: &str) -> Result<String, ModelError> {
    let name = name.trim();
    if name.is_empty() || name.len() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(ModelError::Name(name.into()));
    }
    Ok(name.into())
}

impl fmt::Debug for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

/// An entity to create or refresh: its id, its display name (as typed) and the
/// attributes to set. Attributes left `None` are not touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEntity {
    /// The id.
    pub id: EntityId,
    /// The name as the user typed it (`Sales.Orders`); its lower-case form is in
    /// the id.
    pub name: String,
    /// Attributes to set.
    #[serde(default)]
    pub attributes: Attributes,
}

impl NewEntity {
    /// Parses `KIND:NAME`, keeping the name's case for display.
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let (kind, name) = split_kind_name(text)?;
        Ok(Self {
            id: EntityId::from_parts(&kind, &name.to_lowercase()),
            name,
            attributes: Attributes::default(),
        })
    }

    /// Sets the attributes.
    pub fn with(mut self, attributes: Attributes) -> Self {
        self.attributes = attributes;
        self
    }
}

/// An entity's attributes. Each field is its own register in the document, so
/// concurrent edits of different fields both survive; tags are a set (one
/// register per tag).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attributes {
    /// Who owns it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// What it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The security level: higher is more secret. Data must not flow to a lower
    /// level (the security audit reports where it does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<i64>,
    /// The schema (for tables: the column list; for others: free text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Tags.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub tags: BTreeSet<String>,
    /// Anything else, as key/value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

impl Attributes {
    /// Applies one attribute.
    pub fn set(&mut self, attr: &Attr) {
        match attr {
            Attr::Owner(v) => self.owner = Some(v.clone()),
            Attr::Description(v) => self.description = Some(v.clone()),
            Attr::Level(v) => self.level = Some(*v),
            Attr::Schema(v) => self.schema = Some(v.clone()),
            Attr::Tag(t) => {
                self.tags.insert(t.clone());
            }
            Attr::Extra(k, v) => {
                self.extra.insert(k.clone(), v.clone());
            }
        }
    }

    /// Removes one attribute.
    pub fn unset(&mut self, key: &AttrKey) {
        match key {
            AttrKey::Owner => self.owner = None,
            AttrKey::Description => self.description = None,
            AttrKey::Level => self.level = None,
            AttrKey::Schema => self.schema = None,
            AttrKey::Tag(t) => {
                self.tags.remove(t);
            }
            AttrKey::Extra(k) => {
                self.extra.remove(k);
            }
        }
    }

    /// Every attribute as a list of [`Attr`] (the order is fixed).
    pub fn to_list(&self) -> Vec<Attr> {
        let mut out = Vec::new();
        if let Some(v) = &self.owner {
            out.push(Attr::Owner(v.clone()));
        }
        if let Some(v) = &self.description {
            out.push(Attr::Description(v.clone()));
        }
        if let Some(v) = self.level {
            out.push(Attr::Level(v));
        }
        if let Some(v) = &self.schema {
            out.push(Attr::Schema(v.clone()));
        }
        out.extend(self.tags.iter().map(|t| Attr::Tag(t.clone())));
        out.extend(
            self.extra
                .iter()
                .map(|(k, v)| Attr::Extra(k.clone(), v.clone())),
        );
        out
    }
}

/// One attribute with its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "key", content = "value")]
pub enum Attr {
    /// The owner.
    Owner(String),
    /// The description.
    Description(String),
    /// The security level.
    Level(i64),
    /// The schema.
    Schema(String),
    /// A tag.
    Tag(String),
    /// A free key/value.
    Extra(String, String),
}

impl Attr {
    /// Parses `key=value` as typed after `--attr`: `owner`, `description`,
    /// `level` (an integer), `schema` and `tag` are known keys; anything else is
    /// a free attribute.
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let Some((key, value)) = text.split_once('=') else {
            return Err(ModelError::Attr {
                text: text.into(),
                rule: "an attribute is KEY=VALUE, e.g. owner=finance or level=3",
            });
        };
        let attr = match AttrKey::parse(key)? {
            AttrKey::Owner => Attr::Owner(value.into()),
            AttrKey::Description => Attr::Description(value.into()),
            AttrKey::Schema => Attr::Schema(value.into()),
            AttrKey::Level => Attr::Level(value.trim().parse().map_err(|_| ModelError::Attr {
                text: text.into(),
                rule: "level is an integer; higher is more secret",
            })?),
            AttrKey::Tag(_) => Attr::Tag(value.trim().into()),
            AttrKey::Extra(k) => Attr::Extra(k, value.into()),
        };
        attr.check()?;
        Ok(attr)
    }

    /// The key of this attribute.
    pub fn key(&self) -> AttrKey {
        match self {
            Attr::Owner(_) => AttrKey::Owner,
            Attr::Description(_) => AttrKey::Description,
            Attr::Level(_) => AttrKey::Level,
            Attr::Schema(_) => AttrKey::Schema,
            Attr::Tag(t) => AttrKey::Tag(t.clone()),
            Attr::Extra(k, _) => AttrKey::Extra(k.clone()),
        }
    }

    /// Checks lengths and characters; called by every write.
    pub(crate) fn check(&self) -> Result<(), ModelError> {
        self.key().check()?;
        let value = match self {
            Attr::Owner(v) | Attr::Description(v) | Attr::Schema(v) | Attr::Extra(_, v) => v,
            Attr::Tag(_) | Attr::Level(_) => return Ok(()),
        };
        check_value(value)
    }
}

/// The key of an attribute, to unset it or ask for its conflicts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "key", content = "name")]
pub enum AttrKey {
    /// The owner.
    Owner,
    /// The description.
    Description,
    /// The security level.
    Level,
    /// The schema.
    Schema,
    /// One tag.
    Tag(String),
    /// A free key.
    Extra(String),
}

impl AttrKey {
    /// Parses a key as typed: known names, `tag:NAME` for one tag, anything else
    /// is a free key.
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let text = text.trim();
        let key = match text {
            "owner" => Self::Owner,
            "description" | "comment" => Self::Description,
            "level" | "security_level" => Self::Level,
            "schema" => Self::Schema,
            "tag" | "tags" => Self::Tag(String::new()),
            _ => match text.strip_prefix("tag:") {
                Some(tag) => Self::Tag(tag.into()),
                None => Self::Extra(text.into()),
            },
        };
        if let Self::Extra(k) = &key {
            check_key(k)?;
        }
        Ok(key)
    }

    pub(crate) fn check(&self) -> Result<(), ModelError> {
        match self {
            Self::Tag(k) | Self::Extra(k) => check_key(k),
            _ => Ok(()),
        }
    }
}

pub(crate) fn check_key(key: &str) -> Result<(), ModelError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || key.chars().any(char::is_control) {
        return Err(ModelError::Attr {
            text: key.into(),
            rule: "keys and tags are 1 to 128 bytes without control characters",
        });
    }
    Ok(())
}

pub(crate) fn check_value(value: &str) -> Result<(), ModelError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(ModelError::Attr {
            text: value.chars().take(40).collect(),
            rule: "attribute values are at most 256 KiB",
        });
    }
    Ok(())
}

macro_rules! string_serde {
    ($ty:ty) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $ty {
            type Err = ModelError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_serde!(EntityKind);
string_serde!(EntityId);
pub(crate) use string_serde;
/// An entity as the graph sees it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityRecord {
    /// The id.
    pub id: EntityId,
    /// The display name.
    pub name: String,
    /// Attributes.
    pub attributes: Attributes,
    /// When it was retired, if it was (retired entities stay in the graph).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<Millis>,
    /// Its last run (for jobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunState>,
}

/// An edge as the graph sees it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeRecord {
    /// Where data comes from.
    pub source: EntityId,
    /// Where it goes.
    pub target: EntityId,
    /// The definition.
    pub spec: EdgeSpec,
    /// The last run that moved data along it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunState>,
}

/// The role of an entity, derived from its visible edges (never stored, so it
/// can never disagree with the graph).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Has downstream, no upstream.
    Source,
    /// Has both.
    Intermediate,
    /// Has upstream, no downstream.
    Sink,
    /// Has neither (an island).
    Isolated,
}

impl Role {
    /// The role of an entity with `upstream` and `downstream` visible edges.
    pub fn of(upstream: usize, downstream: usize) -> Self {
        match (upstream > 0, downstream > 0) {
            (false, true) => Self::Source,
            (true, true) => Self::Intermediate,
            (true, false) => Self::Sink,
            (false, false) => Self::Isolated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_canonical() {
        let a = EntityId::parse("Table:Sales.Orders").unwrap();
        let b = EntityId::parse(" table:sales.orders ").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "table:sales.orders");
        assert_eq!(a.kind(), EntityKind::Table);
        assert_eq!(a.name(), "sales.orders");
        let n = NewEntity::parse("Table:Sales.Orders").unwrap();
        assert_eq!(n.name, "Sales.Orders");
        assert_eq!(n.id, a);
        let odd = EntityId::parse("pipeline:a:b c").unwrap();
        assert_eq!(odd.kind(), EntityKind::Other("pipeline".into()));
        assert_eq!(odd.name(), "a:b c");
        assert!(EntityId::from_canonical("table:Sales").is_none());
        assert!(EntityId::from_canonical("table:sales").is_some());
    }

    #[test]
    fn bad_ids_say_why() {
        for bad in [
            "orders",
            "table:",
            ":x",
            "ta ble:x",
            "table:a\u{1f}b",
            "9x:y",
        ] {
            let e = EntityId::parse(bad).unwrap_err();
            assert!(!e.to_string().is_empty(), "{bad}");
        }
    }

    #[test]
    fn columns_belong_to_tables() {
        let c = EntityId::parse("column:sales.orders.id").unwrap();
        assert_eq!(c.parent().unwrap().as_str(), "table:sales.orders");
        assert_eq!(EntityId::parse("column:id").unwrap().parent(), None);
        assert_eq!(EntityId::parse("table:a.b").unwrap().parent(), None);
    }

    #[test]
    fn attributes_parse_as_typed() {
        assert_eq!(
            Attr::parse("owner=finance").unwrap(),
            Attr::Owner("finance".into())
        );
        assert_eq!(Attr::parse("level=3").unwrap(), Attr::Level(3));
        assert_eq!(Attr::parse("tag=pii").unwrap(), Attr::Tag("pii".into()));
        assert_eq!(
            Attr::parse("sla=4h").unwrap(),
            Attr::Extra("sla".into(), "4h".into())
        );
        assert!(Attr::parse("level=high").is_err());
        assert!(Attr::parse("nokey").is_err());
    }

    #[test]
    fn kinds_round_trip_through_json() {
        let k: EdgeKind = serde_json::from_str("\"Transformation\"").unwrap();
        assert_eq!(k, EdgeKind::Transformation);
        assert_eq!(
            serde_json::to_string(&EntityKind::Dashboard).unwrap(),
            "\"dashboard\""
        );
        let id: EntityId = serde_json::from_str("\"Job:Nightly\"").unwrap();
        assert_eq!(id.as_str(), "job:nightly");
        assert!(serde_json::from_str::<EntityId>("\"nokind\"").is_err());
        assert_eq!(RunStatus::parse("failed").unwrap(), RunStatus::Fail);
    }
}
