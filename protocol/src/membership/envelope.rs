//! Admission: every membership message is sealed with a key derived from the
//! cluster secret. A message that does not open with our key comes from another
//! cluster (or a stranger) and is dropped before SWIM sees it.
//!
//! Layout: `[version: 1][sender: 32][mac: 32][payload]`, where the MAC is keyed
//! BLAKE3 over `sender || payload`. The secret authenticates membership traffic;
//! confidentiality comes from the transport (libp2p's TLS over QUIC).

use crate::membership::NodeId;

const VERSION: u8 = 1;
const HEADER: usize = 1 + 32 + 32;

/// The key derived from a cluster secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterKey([u8; 32]);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKey(…)")
    }
}

/// Why a sealed message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Shorter than the header.
    #[error("membership message too short ({0} bytes)")]
    TooShort(usize),
    /// A format this build does not know.
    #[error("unknown membership message version {0}")]
    UnknownVersion(u8),
    /// Sealed with another key: another cluster's secret, or none.
    #[error("membership message from outside the cluster (wrong cluster secret)")]
    WrongCluster,
}

impl ClusterKey {
    /// The key for a cluster secret (any bytes; a long random string is best).
    pub fn from_secret(secret: &[u8]) -> Self {
        Self(blake3::derive_key(
            "stemma membership 2026 cluster key v1",
            secret,
        ))
    }

    fn mac(&self, sender: &NodeId, payload: &[u8]) -> blake3::Hash {
        let mut hasher = blake3::Hasher::new_keyed(&self.0);
        hasher.update(sender.public_key());
        hasher.update(payload);
        hasher.finalize()
    }

    /// Appends the sealed message to `out`.
    pub fn seal(&self, sender: &NodeId, payload: &[u8], out: &mut Vec<u8>) {
        out.reserve(HEADER + payload.len());
        out.push(VERSION);
        out.extend_from_slice(sender.public_key());
        out.extend_from_slice(self.mac(sender, payload).as_bytes());
        out.extend_from_slice(payload);
    }

    /// The sender and payload of a sealed message, if it was sealed with this key.
    pub fn open<'a>(&self, sealed: &'a [u8]) -> Result<(NodeId, &'a [u8]), EnvelopeError> {
        if sealed.len() < HEADER {
            return Err(EnvelopeError::TooShort(sealed.len()));
        }
        if sealed[0] != VERSION {
            return Err(EnvelopeError::UnknownVersion(sealed[0]));
        }
        let sender = NodeId::from_public_key(sealed[1..33].try_into().expect("32 bytes"));
        let mac: [u8; 32] = sealed[33..HEADER].try_into().expect("32 bytes");
        let payload = &sealed[HEADER..];
        // blake3::Hash compares in constant time.
        if self.mac(&sender, payload) != blake3::Hash::from(mac) {
            return Err(EnvelopeError::WrongCluster);
        }
        Ok((sender, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn only_the_same_secret_opens() {
        let ours = ClusterKey::from_secret(b"ours");
        let theirs = ClusterKey::from_secret(b"theirs");
        let me = NodeId::synthetic(7);
        let mut sealed = Vec::new();
        ours.seal(&me, b"ping", &mut sealed);
        assert_eq!(ours.open(&sealed).unwrap(), (me, &b"ping"[..]));
        assert_eq!(theirs.open(&sealed), Err(EnvelopeError::WrongCluster));
        let mut forged = sealed.clone();
        forged[1] ^= 1; // claim another sender
        assert_eq!(ours.open(&forged), Err(EnvelopeError::WrongCluster));
        assert_eq!(ours.open(&sealed[..10]), Err(EnvelopeError::TooShort(10)));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_open_or_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert!(ClusterKey::from_secret(b"k").open(&bytes).is_err());
        }
    }
}
