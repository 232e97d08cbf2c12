//! Listing names across partitions: names are spread over partitions by hash,
//! so a listing asks every partition for a page and merges the pages.

use serde::{Deserialize, Serialize};

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
