//! Bucket and key names, parsed once at the edge ("parse, don't validate").
//!
//! Buckets follow the S3 rules so that names move between Stemma and S3 tools
//! unchanged. Keys are any UTF-8 text without control characters, up to 1024 bytes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A bucket name: 3–63 characters of `a-z`, `0-9`, `-` and `.`, starting and ending
/// with a letter or digit, with no `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BucketName(String);

/// An object key: 1–1024 bytes of UTF-8 with no control characters, not starting
/// with `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectKey(String);

/// `bucket/key`, the way users name an object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectPath {
    /// The bucket.
    pub bucket: BucketName,
    /// The key inside the bucket.
    pub key: ObjectKey,
}

/// A name that breaks a rule; the message names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The bucket name breaks the bucket rules.
    #[error("invalid bucket name {name:?}: {rule}")]
    Bucket {
        /// The name given.
        name: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// The key breaks the key rules.
    #[error("invalid key {key:?}: {rule}")]
    Key {
        /// The key given.
        key: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// `bucket/key` was expected.
    #[error("invalid object path {path:?}: expected BUCKET/KEY, e.g. photos/2024/cat.jpg")]
    Path {
        /// The text given.
        path: String,
    },
}

impl BucketName {
    /// The longest bucket name.
    pub const MAX_LEN: usize = 63;

    /// Parses a bucket name.
    pub fn parse(name: &str) -> Result<Self, NameError> {
        let fail = |rule| {
            Err(NameError::Bucket {
                name: name.into(),
                rule,
            })
        };
        if name.len() < 3 || name.len() > Self::MAX_LEN {
            return fail("a bucket name is 3 to 63 characters long");
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            return fail("a bucket name uses only lowercase letters, digits, '-' and '.'");
        }
        let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if !edge(name.as_bytes()[0]) || !edge(name.as_bytes()[name.len() - 1]) {
            return fail("a bucket name starts and ends with a letter or digit");
        }
        if name.contains("..") {
            return fail("a bucket name has no two dots in a row");
        }
        Ok(Self(name.into()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl ObjectKey {
    /// The longest key, in bytes.
    pub const MAX_LEN: usize = 1024;

    /// Parses a key.
    pub fn parse(key: &str) -> Result<Self, NameError> {
        Self::check(key, false).map(|()| Self(key.into()))
    }

    /// Checks a key prefix for listing: the key rules, but it may be empty.
    pub fn check_prefix(prefix: &str) -> Result<(), NameError> {
        Self::check(prefix, true)
    }

    fn check(key: &str, may_be_empty: bool) -> Result<(), NameError> {
        let fail = |rule| {
            Err(NameError::Key {
                key: key.into(),
                rule,
            })
        };
        if key.is_empty() && !may_be_empty {
            return fail("a key is not empty");
        }
        if key.len() > Self::MAX_LEN {
            return fail("a key is at most 1024 bytes long");
        }
        if key.starts_with('/') {
            return fail("a key does not start with '/'");
        }
        if key.chars().any(char::is_control) {
            return fail("a key has no control characters (newlines, tabs, NUL…)");
        }
        Ok(())
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl ObjectPath {
    /// Parses `bucket/key`.
    pub fn parse(path: &str) -> Result<Self, NameError> {
        let (bucket, key) = path
            .split_once('/')
            .ok_or_else(|| NameError::Path { path: path.into() })?;
        Ok(Self {
            bucket: BucketName::parse(bucket)?,
            key: ObjectKey::parse(key)?,
        })
    }
}

/// Lets sorted maps of keys be searched by a `&str` prefix; the order is the
/// same, since a key is its text.
impl std::borrow::Borrow<str> for ObjectKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for ObjectPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.bucket, self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names_parse() {
        let p = ObjectPath::parse("photos/2024/cat.jpg").unwrap();
        assert_eq!(p.bucket.as_str(), "photos");
        assert_eq!(p.key.as_str(), "2024/cat.jpg");
        assert_eq!(p.to_string(), "photos/2024/cat.jpg");
        assert!(BucketName::parse("a.b-c9").is_ok());
    }

    #[test]
    fn each_broken_rule_is_named() {
        let msg = |r: Result<BucketName, NameError>| r.unwrap_err().to_string();
        assert!(msg(BucketName::parse("ab")).contains("3 to 63"));
        assert!(msg(BucketName::parse("Photos")).contains("lowercase"));
        assert!(msg(BucketName::parse("-abc")).contains("starts and ends"));
        assert!(msg(BucketName::parse("a..b")).contains("two dots"));
        let key = |k: &str| ObjectKey::parse(k).unwrap_err().to_string();
        assert!(key("").contains("not empty"));
        assert!(key("/x").contains("'/'"));
        assert!(key("a\nb").contains("control"));
        assert!(key(&"k".repeat(1025)).contains("1024"));
        assert!(
            ObjectPath::parse("nokey")
                .unwrap_err()
                .to_string()
                .contains("BUCKET/KEY")
        );
        assert!(ObjectKey::check_prefix("").is_ok());
    }
}
