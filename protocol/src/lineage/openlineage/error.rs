//! Why an event was rejected. Every variant names the field (as a path such
//! as `inputs[2].name`), so whoever sent the event can fix it without
//! reading our code.

use serde::{Deserialize, Serialize};

/// An OpenLineage event that cannot be ingested.
///
/// Only the fields the lineage needs are checked strictly (the event's
/// shape, `eventTime`, `eventType`, `run.runId`, job and dataset names).
/// Facets are read leniently: a malformed facet is skipped with a warning in
/// [`Ingested::warnings`](super::Ingested::warnings), never an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "error")]
#[non_exhaustive]
pub enum EventError {
    /// The bytes are not JSON.
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    Json {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the JSON parser said.
        message: String,
    },
    /// The JSON has none of the fields that tell the event kinds apart.
    #[error(
        "not an OpenLineage event: a RunEvent has `run` and `job`, a JobEvent `job`, \
         a DatasetEvent `dataset`"
    )]
    UnknownShape,
    /// A required field is absent (or `null`).
    #[error("`{field}` is missing")]
    Missing {
        /// The field's path.
        field: String,
    },
    /// A field has the wrong JSON type.
    #[error("`{field}` must be {expected}, found {found}")]
    WrongType {
        /// The field's path.
        field: String,
        /// The type the field must have.
        expected: String,
        /// The type it has.
        found: String,
    },
    /// A field has the right type but an unusable value.
    #[error("`{field}` is invalid ({value:?}): {reason}")]
    Invalid {
        /// The field's path.
        field: String,
        /// The value (cut to 80 characters).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `eventType` is not one the spec defines.
    #[error("`eventType` {value:?} is not one of START, RUNNING, COMPLETE, FAIL, ABORT, OTHER")]
    UnknownEventType {
        /// The value sent.
        value: String,
    },
}

impl EventError {
    /// The path of the offending field, when one field is to blame.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Missing { field }
            | Self::WrongType { field, .. }
            | Self::Invalid { field, .. } => Some(field),
            Self::UnknownEventType { .. } => Some("eventType"),
            Self::Json { .. } | Self::UnknownShape => None,
        }
    }

    /// An [`EventError::Invalid`], with the value cut short for the message.
    pub(super) fn invalid(
        field: impl Into<String>,
        value: &str,
        reason: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            field: field.into(),
            value: value.chars().take(80).collect(),
            reason: reason.into(),
        }
    }

    /// Converts a `serde_json` error, keeping its position.
    pub(super) fn from_json(e: &serde_json::Error) -> Self {
        let (line, column) = (e.line(), e.column());
        let text = e.to_string();
        let suffix = format!(" at line {line} column {column}");
        let message = text.strip_suffix(&suffix).unwrap_or(&text).to_owned();
        Self::Json {
            line,
            column,
            message,
        }
    }
}
