//! Edges and runs: what an edge does, its definition, and the state of the
//! last run of a job or along an edge.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::ModelError;
use super::model::{EntityId, Millis, check_key, check_value, string_serde};

/// What an edge does. Unknown kinds from newer nodes are kept as
/// [`EdgeKind::Other`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EdgeKind {
    /// Data copied or mapped field to field (the default).
    #[default]
    Mapping,
    /// Data cleaned (filtered, deduplicated, fixed).
    Cleaning,
    /// Data transformed (joined, aggregated, computed).
    Transformation,
    /// A job scheduled or triggered by another.
    Scheduling,
    /// Data used by an application.
    Application,
    /// An object derived from another (recorded when stored).
    Derivation,
    /// Any other kind, lower-case.
    Other(String),
}

impl EdgeKind {
    /// Parses a kind, case-insensitively.
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let lower = text.trim().to_ascii_lowercase();
        Ok(match lower.as_str() {
            "mapping" => Self::Mapping,
            "cleaning" => Self::Cleaning,
            "transformation" => Self::Transformation,
            "scheduling" => Self::Scheduling,
            "application" => Self::Application,
            "derivation" => Self::Derivation,
            _ => {
                check_key(&lower).map_err(|_| ModelError::Kind(text.into()))?;
                Self::Other(lower)
            }
        })
    }

    /// The lower-case name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Mapping => "mapping",
            Self::Cleaning => "cleaning",
            Self::Transformation => "transformation",
            Self::Scheduling => "scheduling",
            Self::Application => "application",
            Self::Derivation => "derivation",
            Self::Other(s) => s,
        }
    }
}

string_serde!(EdgeKind);
string_serde!(RunStatus);

/// The state of a job's last run, in OpenLineage's vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RunStatus {
    /// Started.
    Start,
    /// Running.
    Running,
    /// Completed successfully.
    Complete,
    /// Failed.
    Fail,
    /// Aborted.
    Abort,
    /// Anything else, upper-case.
    Other(String),
}

impl RunStatus {
    /// Parses a status, case-insensitively (`COMPLETE`, `fail`, `FAILED`).
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let upper = text.trim().to_ascii_uppercase();
        Ok(match upper.as_str() {
            "START" | "STARTED" => Self::Start,
            "RUNNING" => Self::Running,
            "COMPLETE" | "COMPLETED" | "SUCCESS" => Self::Complete,
            "FAIL" | "FAILED" => Self::Fail,
            "ABORT" | "ABORTED" => Self::Abort,
            _ => {
                check_key(&upper).map_err(|_| ModelError::Kind(text.into()))?;
                Self::Other(upper)
            }
        })
    }

    /// The upper-case name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Start => "START",
            Self::Running => "RUNNING",
            Self::Complete => "COMPLETE",
            Self::Fail => "FAIL",
            Self::Abort => "ABORT",
            Self::Other(s) => s,
        }
    }

    /// Whether the run ended badly (a root-cause suspect).
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Fail | Self::Abort)
    }
}

/// The last run of a job or an edge: its status, when, and what it said.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunState {
    /// The status.
    pub status: RunStatus,
    /// When (ms since the Unix epoch), as reported by whoever ran it.
    pub time: Millis,
    /// A message (an error, a row count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl RunState {
    /// Picks the later of two runs; equal times are broken by the encoded value
    /// so every node picks the same one.
    pub(crate) fn later(a: RunState, b: RunState) -> RunState {
        if (b.time, &b.status, &b.message) > (a.time, &a.status, &a.message) {
            b
        } else {
            a
        }
    }
}

/// An edge's definition: how `source` becomes `target`. It is one register in the
/// document (see the module docs for why), written whole by [`link`].
///
/// [`link`]: super::Edit::link
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeSpec {
    /// What the edge does.
    #[serde(default)]
    pub kind: EdgeKind,
    /// The rule or SQL text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Rows (or bytes) moved per update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<u64>,
    /// How often it updates (`hourly`, a cron expression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency: Option<String>,
    /// The job that produces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<EntityId>,
    /// Anything else.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

impl EdgeSpec {
    /// An edge of this kind with nothing else set.
    pub fn of(kind: EdgeKind) -> Self {
        Self {
            kind,
            ..Self::default()
        }
    }

    /// Merges `update` into `self`: its kind replaces ours, its `Some` fields and
    /// extra keys replace ours, the rest stay.
    pub fn merge(&mut self, update: &EdgeSpec) {
        self.kind = update.kind.clone();
        if update.rule.is_some() {
            self.rule.clone_from(&update.rule);
        }
        if update.volume.is_some() {
            self.volume = update.volume;
        }
        if update.frequency.is_some() {
            self.frequency.clone_from(&update.frequency);
        }
        if update.job.is_some() {
            self.job.clone_from(&update.job);
        }
        for (k, v) in &update.extra {
            self.extra.insert(k.clone(), v.clone());
        }
    }

    pub(crate) fn check(&self) -> Result<(), ModelError> {
        for v in [&self.rule, &self.frequency].into_iter().flatten() {
            check_value(v)?;
        }
        for (k, v) in &self.extra {
            check_key(k)?;
            check_value(v)?;
        }
        Ok(())
    }
}
