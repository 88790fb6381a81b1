//! The key-encryption key (KEK): AES-256-GCM over signing keys at rest.
//!
//! Production sets `GATEHOUSE_KEK`; in development a KEK is generated into
//! `$DATA_DIR/kek` (mode 0600) with a loud warning.

use crate::support::secret::random_bytes;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use gatehouse_common::b64;
use std::fmt;
use std::path::Path;

/// A 256-bit key-encryption key.
#[derive(Clone)]
pub struct Kek([u8; 32]);

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kek([redacted])")
    }
}

/// Why a KEK operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KekError {
    /// Not base64url of exactly 32 bytes.
    #[error("a KEK must be base64url of exactly 32 bytes")]
    Format,
    /// The development KEK file could not be read or written.
    #[error("development KEK file {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Encryption failed or the ciphertext does not authenticate under this KEK.
    #[error("key material does not decrypt under this KEK (wrong GATEHOUSE_KEK?)")]
    Crypto,
}

impl Kek {
    /// Reads `GATEHOUSE_KEK`'s format.
    pub fn from_base64url(s: &str) -> Result<Self, KekError> {
        let bytes = b64::decode(s).map_err(|_| KekError::Format)?;
        Ok(Self(bytes.try_into().map_err(|_| KekError::Format)?))
    }

    /// A KEK from raw bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Loads `$data_dir/kek`, creating it (0600) if absent. Logs a warning either way:
    /// a KEK next to the database protects nothing against a stolen disk.
    pub fn development(data_dir: &Path) -> Result<Self, KekError> {
        let path = data_dir.join("kek");
        let file_err = |source| KekError::File {
            path: path.display().to_string(),
            source,
        };
        let kek = match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_base64url(text.trim())?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(file_err)?;
                let bytes = random_bytes::<32>().map_err(|_| KekError::Crypto)?;
                write_private(&path, b64::encode(&bytes).as_bytes()).map_err(file_err)?;
                tracing::warn!(path = %path.display(), "generated a development key-encryption key");
                Self(bytes)
            }
            Err(e) => return Err(file_err(e)),
        };
        tracing::warn!(
            path = %path.display(),
            "USING A DEVELOPMENT KEY-ENCRYPTION KEY stored next to the data; set GATEHOUSE_KEK in production"
        );
        Ok(kek)
    }

    /// A 32-byte subkey for `label` (HMAC-SHA256 under the KEK), so other
    /// secrets every replica must share (DPoP nonces) need no configuration of their own.
    #[must_use]
    pub fn derive(&self, label: &[u8]) -> [u8; 32] {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.0);
        let tag = aws_lc_rs::hmac::sign(&key, label);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref().get(..32).unwrap_or(&[0u8; 32]));
        out
    }

    fn key(&self) -> Result<LessSafeKey, KekError> {
        Ok(LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &self.0).map_err(|_| KekError::Crypto)?,
        ))
    }

    /// Encrypts `plaintext` bound to `context` (the key id): `nonce ‖ ciphertext ‖ tag`.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, KekError> {
        let nonce_bytes = random_bytes::<NONCE_LEN>().map_err(|_| KekError::Crypto)?;
        let mut buf = plaintext.to_vec();
        self.key()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context.as_bytes()),
                &mut buf,
            )
            .map_err(|_| KekError::Crypto)?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Decrypts what [`Kek::seal`] produced for the same `context`.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, KekError> {
        if sealed.len() < NONCE_LEN {
            return Err(KekError::Crypto);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KekError::Crypto)?;
        let mut buf = ct.to_vec();
        let plain = self
            .key()?
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| KekError::Crypto)?;
        Ok(plain.to_vec())
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents)
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_bound_to_context() {
        let k = Kek::from_bytes([1; 32]);
        let sealed = k.seal("kid-1", b"secret key").unwrap();
        assert_eq!(k.open("kid-1", &sealed).unwrap(), b"secret key");
        assert!(k.open("kid-2", &sealed).is_err());
        assert!(Kek::from_bytes([2; 32]).open("kid-1", &sealed).is_err());
        assert!(k.open("kid-1", &sealed[..5]).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn development_kek_is_0600_and_stable() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("gh-kek-{}", random_id_for_test()));
        let a = Kek::development(&dir).unwrap();
        let b = Kek::development(&dir).unwrap();
        assert_eq!(a.0, b.0);
        let mode = std::fs::metadata(dir.join("kek"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn random_id_for_test() -> String {
        crate::support::secret::random_id().unwrap()
    }
}
