//! The name table as a CRDT: `bucket/key → object id`, a last-writer-wins
//! register per name, stamped with a hybrid logical clock.
//!
//! Every replica of a name's partition holds a [`NameTable`] and merges what
//! others send by one rule: the entry with the higher [`Hlc`] wins (ties,
//! which a correct clock never produces, go to the higher value so the merge
//! stays a join). Merges are commutative, associative and idempotent, so
//! replicas that have seen the same writes agree, in whatever order and
//! however often the writes arrived.
//!
//! A delete writes a tombstone — an entry with no object — so that an older
//! write arriving later loses to it instead of bringing the name back.
//! Tombstones are dropped after a grace period
//! ([`NameTable::collect_tombstones`]): the grace must be longer than the
//! longest time a replica may stay cut off and still rejoin, because a replica
//! that kept the older write all that time would otherwise resurrect it.
//!
//! ```
//! use stemma_protocol::membership::NodeId;
//! use stemma_protocol::names::{HlcClock, NameTable};
//! use stemma_protocol::{BucketName, ObjectId, ObjectKey};
//!
//! let bucket = BucketName::parse("photos").unwrap();
//! let key = ObjectKey::parse("cat.jpg").unwrap();
//! let mut a_clock = HlcClock::new(NodeId::synthetic(1), HlcClock::DEFAULT_MAX_DRIFT_MILLIS);
//! let mut b_clock = HlcClock::new(NodeId::synthetic(2), HlcClock::DEFAULT_MAX_DRIFT_MILLIS);
//!
//! let (mut a, mut b) = (NameTable::new(), NameTable::new());
//! a.put(&bucket, &key, ObjectId::from_bytes([1; 32]), a_clock.now(1_000));
//! b.delete(&bucket, &key, b_clock.now(1_005)); // later: the delete wins
//! a.merge(&b);
//! b.merge(&a);
//! assert_eq!(a, b);
//! assert_eq!(a.get(&bucket, &key), None);
//! ```

mod hlc;
mod listing;
mod table;

pub use hlc::{ClockError, Hlc, HlcClock};
pub use listing::{NamePage, RegisterPage, merge_pages, merge_register_pages};
pub use table::{NameEntry, NameTable, NameValue};

#[cfg(test)]
mod tests;
