//! The errors of the lineage module, one enum per operation. Each variant says
//! whether the document changed. Automerge's own error types never leave this
//! module (they are turned into text), so the node does not depend on them.

use super::model::EntityId;

/// A name, kind or attribute that breaks a rule; the message names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// An entity id that is not `KIND:NAME`.
    #[error("invalid entity {id:?}: {rule}")]
    Id {
        /// The text given.
        id: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// A kind that is not a word.
    #[error("invalid kind {0:?}: a kind is a word like table, job or mapping ([a-z][a-z0-9_-]*)")]
    Kind(String),
    /// A name that is empty, too long or holds control characters.
    #[error("invalid name {0:?}: a name is 1 to 512 bytes without control characters")]
    Name(String),
    /// An attribute that breaks a rule.
    #[error("invalid attribute {text:?}: {rule}")]
    Attr {
        /// The text given.
        text: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// A namespace name that breaks the rules.
    #[error("invalid namespace {0:?}: 1 to 64 of a-z 0-9 _ - .")]
    Namespace(String),
}

/// Why an edit was refused. A refused batch changes nothing: the whole
/// Automerge transaction is rolled back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    /// The entity does not exist (or was removed). Nothing changed.
    #[error("no entity {0}: add it first (stemma lineage add {0})")]
    UnknownEntity(EntityId),
    /// The edge does not exist. Nothing changed.
    #[error("no edge {0} -> {1}")]
    UnknownEdge(EntityId, EntityId),
    /// A value breaks a rule. Nothing changed.
    #[error(transparent)]
    Invalid(#[from] ModelError),
    /// Automerge refused an operation (a bug, not a user error). Nothing changed.
    #[error("document error: {0}")]
    Document(String),
}

/// Why saved bytes could not be loaded. Nothing was loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The bytes are not an Automerge document or change log (or are corrupt).
    #[error("not a lineage document: {0}")]
    Corrupt(String),
    /// A namespace or actor that breaks the rules.
    #[error(transparent)]
    Invalid(#[from] ModelError),
    /// The actor id is empty or longer than 128 bytes.
    #[error("the actor id is 1 to 128 bytes (use the node id)")]
    Actor,
}

/// Why a sync message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The bytes are not a Stemma lineage sync message. Nothing changed; close
    /// the stream.
    #[error("malformed lineage sync message: {0}")]
    Malformed(String),
    /// The peer is in another namespace. Nothing changed.
    #[error("sync message for namespace {theirs:?}, this document is {ours:?}")]
    Namespace {
        /// Our namespace.
        ours: String,
        /// Theirs.
        theirs: String,
    },
    /// The peer is on another epoch. Nothing changed. If theirs supersedes
    /// ours ([`Epoch::supersedes`](super::Epoch::supersedes)), adopt it
    /// ([`LineageDoc::adopt_epoch`](super::LineageDoc::adopt_epoch)); otherwise
    /// the peer will adopt ours when it hears from us.
    #[error("peer is on lineage epoch {theirs}, this node on {ours}")]
    Epoch {
        /// Our epoch.
        ours: super::Epoch,
        /// Theirs.
        theirs: super::Epoch,
    },
    /// Automerge refused the changes in the message. Changes applied before the
    /// refusal stay applied (and indexed); reset the peer's sync state.
    #[error("sync message refused: {0}")]
    Refused(String),
}

/// Why an epoch could not be cut or adopted. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EpochError {
    /// The proposal does not supersede the current epoch.
    #[error("epoch {proposed} does not supersede the current epoch {current}")]
    NotNewer {
        /// The current epoch.
        current: super::Epoch,
        /// The proposal.
        proposed: super::Epoch,
    },
    /// This document lacks some of the proposal's base changes: sync the current
    /// epoch with a peer that still has it, then adopt.
    #[error("missing {missing} of the epoch's base changes: sync the old epoch first")]
    MissingBase {
        /// How many base heads are missing.
        missing: usize,
    },
    /// Automerge refused an operation (a bug).
    #[error("document error: {0}")]
    Document(String),
}

/// Why a query could not run. Queries never change anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The entity does not exist (or was removed).
    #[error("no entity {0}")]
    UnknownEntity(EntityId),
    /// The cursor is not one this query returned.
    #[error("invalid cursor: pass back the `next` value of the previous page")]
    BadCursor,
    /// A naming rule is not a valid regular expression.
    #[error("invalid naming rule for {kind}: {message}")]
    BadRule {
        /// The kind the rule is for.
        kind: String,
        /// What is wrong.
        message: String,
    },
}
