//! What a node creates on first start and keeps in its data dir: its ed25519
//! identity (its node id is the libp2p PeerId of that key), a self-signed TLS
//! certificate for the client endpoint, and the access token clients must present.
//! Secrets are written with mode 0600.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use libp2p_identity::{Keypair, PeerId};

const IDENTITY_FILE: &str = "identity.key";
const CERT_FILE: &str = "tls-cert.der";
const CERT_KEY_FILE: &str = "tls-key.der";
const TOKEN_FILE: &str = "token";

/// A node's persistent identity and credentials.
#[derive(Debug)]
pub struct Identity {
    /// The node's key pair (ed25519).
    pub keypair: Keypair,
    /// The TLS certificate (DER).
    pub cert_der: Vec<u8>,
    /// The certificate's private key (PKCS#8 DER).
    pub cert_key_der: Vec<u8>,
    /// The access token clients present.
    pub token: String,
}

impl Identity {
    /// The node id.
    pub fn node_id(&self) -> PeerId {
        self.keypair.public().to_peer_id()
    }

    /// Loads the identity from `dir`, creating what is missing.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create data dir {}", dir.display()))?;
        let keypair = match read_if_exists(&dir.join(IDENTITY_FILE))? {
            Some(bytes) => Keypair::from_protobuf_encoding(&bytes).with_context(|| {
                format!(
                    "{} is not a valid identity key",
                    dir.join(IDENTITY_FILE).display()
                )
            })?,
            None => {
                let keypair = Keypair::generate_ed25519();
                write_secret(&dir.join(IDENTITY_FILE), &keypair.to_protobuf_encoding()?)?;
                keypair
            }
        };
        let (cert_der, cert_key_der) = match (
            read_if_exists(&dir.join(CERT_FILE))?,
            read_if_exists(&dir.join(CERT_KEY_FILE))?,
        ) {
            (Some(cert), Some(key)) => (cert, key),
            _ => {
                let names = vec!["stemma".to_string(), "localhost".to_string()];
                let certified = rcgen::generate_simple_self_signed(names)
                    .context("cannot generate a TLS certificate")?;
                let cert = certified.cert.der().to_vec();
                let key = certified.signing_key.serialize_der();
                write_secret(&dir.join(CERT_KEY_FILE), &key)?;
                write_secret(&dir.join(CERT_FILE), &cert)?;
                (cert, key)
            }
        };
        let token = match read_if_exists(&dir.join(TOKEN_FILE))? {
            Some(bytes) => String::from_utf8(bytes)
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .with_context(|| {
                    format!("{} is not a valid token", dir.join(TOKEN_FILE).display())
                })?,
            None => {
                let token = hex::encode(rand::random::<[u8; 32]>());
                write_secret(&dir.join(TOKEN_FILE), token.as_bytes())?;
                token
            }
        };
        Ok(Self {
            keypair,
            cert_der,
            cert_key_der,
            token,
        })
    }
}

/// The cluster secret: from the config (or `STEMMA_CLUSTER_SECRET`), else from
/// `cluster_secret_file`, else the data dir's own `cluster-secret`, created on
/// first start — a node given no secret forms a cluster of its own.
pub fn cluster_secret(
    configured: Option<&str>,
    file: Option<&Path>,
    data_dir: &Path,
) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = configured {
        anyhow::ensure!(!secret.trim().is_empty(), "the cluster secret is empty");
        return Ok(secret.trim().as_bytes().to_vec());
    }
    if let Some(file) = file {
        let bytes = std::fs::read(file).map_err(|e| {
            anyhow::anyhow!(
                "cannot read the cluster secret file {}: {e}",
                file.display()
            )
        })?;
        let secret = String::from_utf8_lossy(&bytes).trim().to_string();
        anyhow::ensure!(
            !secret.is_empty(),
            "the cluster secret file {} is empty",
            file.display()
        );
        return Ok(secret.into_bytes());
    }
    let own = data_dir.join(CLUSTER_SECRET_FILE);
    match read_if_exists(&own)? {
        Some(bytes) => Ok(String::from_utf8_lossy(&bytes).trim().as_bytes().to_vec()),
        None => {
            let secret = hex::encode(rand::random::<[u8; 32]>());
            write_secret(&own, secret.as_bytes())?;
            tracing::info!(
                file = %own.display(),
                "created a new cluster secret; give it to other nodes with --cluster-secret-file to join them to this one"
            );
            Ok(secret.into_bytes())
        }
    }
}

/// The file a node creates when it was given no cluster secret.
pub const CLUSTER_SECRET_FILE: &str = "cluster-secret";
const GENERATION_FILE: &str = "generation";

/// The next restart generation: one more than the last start's, persisted.
pub fn next_generation(data_dir: &Path) -> anyhow::Result<u32> {
    let last = read_if_exists(&data_dir.join(GENERATION_FILE))?
        .and_then(|b| String::from_utf8_lossy(&b).trim().parse::<u32>().ok());
    let next = last.map_or(0, |g| g.wrapping_add(1));
    save_generation(data_dir, next)?;
    Ok(next)
}

/// Records the generation in use (after a rejoin bumped it).
pub fn save_generation(data_dir: &Path, generation: u32) -> anyhow::Result<()> {
    write_secret(
        &data_dir.join(GENERATION_FILE),
        generation.to_string().as_bytes(),
    )
}

fn read_if_exists(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    }
}

/// Writes a file readable only by its owner, atomically (temp file + rename).
pub fn write_secret(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_created_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = Identity::load_or_create(dir.path()).unwrap();
        let b = Identity::load_or_create(dir.path()).unwrap();
        assert_eq!(a.node_id(), b.node_id());
        assert_eq!(a.cert_der, b.cert_der);
        assert_eq!(a.token, b.token);
        assert_eq!(a.token.len(), 64);
        let mode = std::fs::metadata(dir.path().join(TOKEN_FILE)).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.permissions().mode() & 0o777, 0o600);
    }
}
