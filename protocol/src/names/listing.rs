//! Listing names across partitions: names are spread over partitions by hash,
//! so a listing asks every partition for a page and merges the pages.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::names::NameEntry;
use crate::{ObjectId, ObjectKey};

/// A page of a listing, sorted by key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamePage {
    /// Keys and the objects they name.
    pub entries: Vec<(ObjectKey, ObjectId)>,
    /// The key to list after for the next page; `None` on the last page.
    pub next: Option<ObjectKey>,
}

/// One page of up to `limit` entries from pages of distinct partitions, each
/// listed with the same prefix, start and limit. Correct because a partition
/// that had more to say returned `limit` keys, all at or before any key it
/// left out, so the first `limit` keys of the merge are the true first ones.
pub fn merge_pages(pages: impl IntoIterator<Item = NamePage>, limit: usize) -> NamePage {
    let mut more = false;
    let mut entries = Vec::new();
    for page in pages {
        more |= page.next.is_some();
        entries.extend(page.entries);
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.dedup_by(|a, b| a.0 == b.0);
    more |= entries.len() > limit;
    entries.truncate(limit);
    let next = more
        .then(|| entries.last().map(|(k, _)| k.clone()))
        .flatten();
    NamePage { entries, next }
}

/// A page of registers from one replica, tombstones included: `(key, entry,
/// payload)` sorted by key, and whether the replica has more keys after them.
pub type RegisterPage<K, T> = (Vec<(K, NameEntry, T)>, bool);

/// One page of up to `limit` keys from pages of registers that several
/// replicas returned for the same prefix, start and limit. A key held by
/// several replicas keeps its winning register (the larger entry, the CRDT
/// rule); tombstones take part in the merge, so a delete hides older writes
/// still held elsewhere, and are dropped from the result. The page may thus
/// hold fewer than `limit` live keys; the returned key to continue after is
/// `Some` whenever a replica had more, or the merge was cut at `limit`.
///
/// Correct for the same reason as [`merge_pages`]: a replica that had more to
/// say returned `limit` keys, all before any key it left out, so every replica
/// holding one of the first `limit` keys of the merge reported it.
pub fn merge_register_pages<K: Ord + Clone, T>(
    pages: impl IntoIterator<Item = RegisterPage<K, T>>,
    limit: usize,
) -> (Vec<(K, NameEntry, T)>, Option<K>) {
    let mut more = false;
    let mut merged: BTreeMap<K, (NameEntry, T)> = BTreeMap::new();
    for (entries, has_more) in pages {
        more |= has_more;
        for (key, entry, payload) in entries {
            match merged.get(&key) {
                Some((ours, _)) if *ours >= entry => {}
                _ => {
                    merged.insert(key, (entry, payload));
                }
            }
        }
    }
    more |= merged.len() > limit;
    let first: Vec<(K, (NameEntry, T))> = merged.into_iter().take(limit).collect();
    let next = more.then(|| first.last().map(|(k, _)| k.clone())).flatten();
    let live = first
        .into_iter()
        .filter(|(_, (e, _))| !e.is_deleted())
        .map(|(k, (e, t))| (k, e, t))
        .collect();
    (live, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::NodeId;
    use crate::names::{Hlc, NameValue};

    fn put(t: u64, obj: u8) -> NameEntry {
        NameEntry {
            stamp: Hlc::new(t, 0, NodeId::synthetic(1)),
            value: NameValue::Object(ObjectId::from_bytes([obj; 32])),
        }
    }

    fn del(t: u64) -> NameEntry {
        NameEntry {
            stamp: Hlc::new(t, 0, NodeId::synthetic(1)),
            value: NameValue::Deleted,
        }
    }

    #[test]
    fn the_newest_register_wins_and_tombstones_hide_older_writes() {
        let a = vec![
            ("a", put(1, 1), ()),
            ("b", put(5, 2), ()),
            ("c", put(1, 3), ()),
        ];
        let b = vec![("a", put(2, 9), ()), ("b", del(3), ()), ("c", del(4), ())];
        let (live, next) = merge_register_pages([(a.clone(), false), (b.clone(), false)], 10);
        assert_eq!(live, vec![("a", put(2, 9), ()), ("b", put(5, 2), ())]);
        assert_eq!(next, None);
        // Order of pages does not matter.
        let (again, _) = merge_register_pages([(b, false), (a, false)], 10);
        assert_eq!(again, live);
    }

    #[test]
    fn a_cut_page_continues_after_its_last_key_even_a_tombstone() {
        let a = vec![("a", put(1, 1), ()), ("b", del(2), ())];
        let b = vec![("c", put(1, 3), ())];
        let (live, next) = merge_register_pages([(a, true), (b, false)], 2);
        assert_eq!(live, vec![("a", put(1, 1), ())]);
        assert_eq!(next, Some("b"));
    }
}
