//! Naming-standard checks: a regular expression per entity kind, and the
//! entities whose display name does not match.

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use super::{Page, PageRequest, paginate};
use crate::lineage::error::QueryError;
use crate::lineage::index::GraphIndex;
use crate::lineage::keys::SEP;
use crate::lineage::model::{EntityId, EntityKind};

/// One rule as configured: names of `kind` must match `pattern` in full (the
/// pattern is anchored for you: `[a-z_]+` means `^(?:[a-z_]+)$`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamingRule {
    /// The kind the rule applies to.
    pub kind: EntityKind,
    /// The regular expression (Rust `regex` syntax).
    pub pattern: String,
}

/// Compiled rules.
#[derive(Debug, Clone)]
pub struct NamingRules {
    rules: Vec<(NamingRule, Regex)>,
}

/// An entity that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamingViolation {
    /// The entity.
    pub id: EntityId,
    /// Its display name (what was checked).
    pub name: String,
    /// Its kind.
    pub kind: EntityKind,
    /// The pattern it does not match.
    pub pattern: String,
}

impl NamingRules {
    /// Compiles the rules; an invalid pattern is an error naming its kind.
    pub fn new(rules: &[NamingRule]) -> Result<Self, QueryError> {
        let mut compiled = Vec::with_capacity(rules.len());
        for rule in rules {
            let regex = RegexBuilder::new(&format!("^(?:{})$", rule.pattern))
                .size_limit(1 << 20)
                .build()
                .map_err(|e| QueryError::BadRule {
                    kind: rule.kind.to_string(),
                    message: e.to_string(),
                })?;
            compiled.push((rule.clone(), regex));
        }
        Ok(Self { rules: compiled })
    }

    /// The rules.
    pub fn rules(&self) -> impl Iterator<Item = &NamingRule> {
        self.rules.iter().map(|(r, _)| r)
    }
}

impl GraphIndex {
    /// Entities whose name breaks a rule of their kind, by id (one violation
    /// per broken rule).
    pub fn naming_violations(
        &self,
        rules: &NamingRules,
        page: &PageRequest,
    ) -> Result<Page<NamingViolation>, QueryError> {
        let mut keyed: Vec<(String, (u32, usize))> = Vec::new();
        for v in 0..self.ids.len() as u32 {
            let Some(name) = self.nodes[v as usize].name.as_deref() else {
                continue;
            };
            for (i, (rule, regex)) in rules.rules.iter().enumerate() {
                if rule.kind == *self.kind_of(v) && !regex.is_match(name) {
                    keyed.push((format!("{}{SEP}{i:06}", self.ids[v as usize]), (v, i)));
                }
            }
        }
        paginate(keyed, page, |(v, i)| NamingViolation {
            id: self.ids[v as usize].clone(),
            name: self.name_of(v),
            kind: self.kind_of(v).clone(),
            pattern: rules.rules[i].0.pattern.clone(),
        })
    }
}
