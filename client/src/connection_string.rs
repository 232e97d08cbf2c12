//! The connection string: everything a client needs to reach one node safely.
//!
//! `stemma://HOST:PORT?pin=CERT_HASH&token=TOKEN` — the node's QUIC address, the
//! BLAKE3 hash of its TLS certificate (the client trusts that certificate and no
//! other), and the access token. A node writes its own into `node.json`.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A parsed connection string.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionString {
    /// `host:port` of the node's client endpoint.
    pub address: String,
    /// BLAKE3 hash of the node's certificate (DER).
    pub pin: [u8; 32],
    /// Access token.
    pub token: String,
}

const SCHEME: &str = "stemma://";

impl FromStr for ConnectionString {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why: &str| {
            Error::InvalidConnectionString(format!(
                "{why}; expected stemma://HOST:PORT?pin=HEX&token=TOKEN (see the node's node.json)"
            ))
        };
        let rest = s
            .trim()
            .strip_prefix(SCHEME)
            .ok_or_else(|| bad("it does not start with stemma://"))?;
        let (address, query) = rest
            .split_once('?')
            .ok_or_else(|| bad("it has no ?pin=…&token=… part"))?;
        if address.is_empty() || !address.contains(':') {
            return Err(bad("the address has no port"));
        }
        let (mut pin, mut token) = (None, None);
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("pin", v)) => {
                    let mut bytes = [0u8; 32];
                    hex::decode_to_slice(v, &mut bytes)
                        .map_err(|_| bad("the pin is not 64 hex digits"))?;
                    pin = Some(bytes);
                }
                Some(("token", v)) if !v.is_empty() => token = Some(v.to_string()),
                _ => return Err(bad(&format!("unknown or empty parameter {pair:?}"))),
            }
        }
        Ok(Self {
            address: address.to_string(),
            pin: pin.ok_or_else(|| bad("the pin is missing"))?,
            token: token.ok_or_else(|| bad("the token is missing"))?,
        })
    }
}

impl fmt::Display for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCHEME}{}?pin={}&token={}",
            self.address,
            hex::encode(self.pin),
            self.token
        )
    }
}

/// Never prints the token.
impl fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionString")
            .field("address", &self.address)
            .field("pin", &hex::encode(&self.pin[..4]))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let c = ConnectionString {
            address: "127.0.0.1:7400".into(),
            pin: [0xab; 32],
            token: "secret".into(),
        };
        assert_eq!(c.to_string().parse::<ConnectionString>().unwrap(), c);
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn broken_strings_say_what_is_wrong() {
        let err = |s: &str| s.parse::<ConnectionString>().unwrap_err().to_string();
        assert!(err("http://x:1?pin=00&token=t").contains("stemma://"));
        assert!(err("stemma://x:1").contains("?pin="));
        assert!(err("stemma://x:1?pin=00&token=t").contains("64 hex"));
        assert!(err(&format!("stemma://x:1?pin={}", "a".repeat(64))).contains("token is missing"));
        assert!(err("stemma://host?pin=00").contains("port"));
    }
}
