//! Versions whose name may never have been written.
//!
//! A put writes its references before its name, so no acknowledged object is
//! ever unreferenced. If the put fails in between (the coordinator crashed,
//! the name's owners refused or could not be reached), no name owner ever saw
//! the version, none will ever mark its references dead, and its chunks would
//! be kept forever.
//!
//! So the references sent to the owners of a version's manifest carry the
//! version's name ([`VersionName`]), and each of those owners keeps it as
//! *unconfirmed*. A grace after the write it asks the owners of the name
//! ([`check_name`]): one that holds the version's stamp has the version, and
//! will mark its references dead when a later write beats it, so there is
//! nothing left to do; a newer stamp, or none at all on every owner, means
//! the version never will be current, and its references are marked dead as
//! those of a beaten version are.

use serde::{Deserialize, Serialize};

use super::gc::{VersionId, version_id};
use crate::names::Hlc;
use crate::{BucketName, ObjectId, ObjectKey};

/// A version as the owners of its manifest need it to check that its name
/// was written: where the name lives, its stamp, and the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionName {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// The stamp of the name write.
    pub stamp: Hlc,
    /// The object (manifest) the version points at.
    pub object: ObjectId,
}

impl VersionName {
    /// The version of `bucket/key` at `stamp`, pointing at `object`.
    pub fn new(bucket: &BucketName, key: &ObjectKey, stamp: Hlc, object: ObjectId) -> Self {
        Self {
            bucket: bucket.to_string(),
            key: key.to_string(),
            stamp,
            object,
        }
    }

    /// The bucket and key, checked (a peer may send anything).
    pub fn name(&self) -> Result<(BucketName, ObjectKey), String> {
        let bucket = BucketName::parse(&self.bucket).map_err(|e| e.to_string())?;
        let key = ObjectKey::parse(&self.key).map_err(|e| e.to_string())?;
        Ok((bucket, key))
    }

    /// The version's id; an error if the bucket or key is not valid.
    pub fn version(&self) -> Result<VersionId, String> {
        let (bucket, key) = self.name()?;
        Ok(version_id(&bucket, &key, &self.stamp))
    }
}

/// What the owners of a name said about an unconfirmed version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameCheck {
    /// An owner holds the version's stamp: the name owners take it from
    /// here. Forget the version.
    Named,
    /// An owner holds a newer stamp, or every owner answered and none holds
    /// the version: it will never be current. Its references are dead.
    Orphaned,
    /// An owner did not answer and none holds a newer stamp: ask again later
    /// (the silent one may hold the version).
    Ask,
}

/// The verdict on a version written at `stamp` whose references are older
/// than the grace (so its put is over, one way or the other), from one answer
/// per owner of its name: `Some(stamp held)` for an owner that answered
/// (`Some(None)`: it holds no register), `None` for one that did not.
pub fn check_name(
    stamp: &Hlc,
    answers: impl IntoIterator<Item = Option<Option<Hlc>>>,
) -> NameCheck {
    let mut silent = false;
    let mut any = false;
    for answer in answers {
        any = true;
        match answer {
            Some(Some(held)) if held == *stamp => return NameCheck::Named,
            Some(Some(held)) if held > *stamp => return NameCheck::Orphaned,
            Some(_) => {}
            None => silent = true,
        }
    }
    if silent || !any {
        NameCheck::Ask
    } else {
        NameCheck::Orphaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::NodeId;

    fn at(wall: u64) -> Hlc {
        Hlc::new(wall, 0, NodeId::synthetic(7))
    }

    #[test]
    fn an_owner_holding_the_stamp_names_the_version_whatever_the_others_say() {
        let answers = [None, Some(None), Some(Some(at(10)))];
        assert_eq!(check_name(&at(10), answers), NameCheck::Named);
    }

    #[test]
    fn a_newer_stamp_anywhere_orphans_the_version_even_with_an_owner_silent() {
        let answers = [None, Some(Some(at(5))), Some(Some(at(11)))];
        assert_eq!(check_name(&at(10), answers), NameCheck::Orphaned);
    }

    #[test]
    fn every_owner_answering_without_the_version_orphans_it() {
        let answers = [Some(None), Some(Some(at(9))), Some(None)];
        assert_eq!(check_name(&at(10), answers), NameCheck::Orphaned);
    }

    #[test]
    fn a_silent_owner_that_may_hold_it_means_asking_again() {
        assert_eq!(
            check_name(&at(10), [Some(None), None, Some(Some(at(3)))]),
            NameCheck::Ask
        );
        assert_eq!(check_name(&at(10), []), NameCheck::Ask);
    }

    #[test]
    fn a_version_name_with_a_bad_bucket_has_no_id() {
        let object = ObjectId::from_bytes([1; 32]);
        let bad = VersionName {
            bucket: "No Such Bucket!".into(),
            key: "k".into(),
            stamp: at(1),
            object,
        };
        assert!(bad.version().is_err());
        let bucket = BucketName::parse("photos").unwrap();
        let key = ObjectKey::parse("a/b.jpg").unwrap();
        let good = VersionName::new(&bucket, &key, at(1), object);
        assert_eq!(good.version(), Ok(version_id(&bucket, &key, &at(1))));
    }
}
