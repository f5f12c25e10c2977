//! Ed25519 signing keys as small TOML files, and signatures with domain
//! separation.
//!
//! A vendor (or a licence issuer) has a secret key file (`acme.key`, mode
//! 0600) and gives out the public key file (`acme.pub`). Both name the
//! signer; the name is a label for people, never trusted on its own: trust
//! is decided by the public key bytes ([`KeyId`]).
//!
//! ```toml
//! # acme.pub
//! signer = "acme"
//! public = "base64 of the 32-byte Ed25519 public key"
//! ```
//!
//! Every signature is made over `"plugboard-<purpose>-v1\n" || message`, so a
//! signature made for one purpose (a package) can never be replayed as
//! another (a licence).

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer as _, Verifier as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a signature is for; part of the signed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A plugin package's content digest.
    Package,
    /// A licence file's body.
    Licence,
}

impl Purpose {
    fn prefix(self) -> &'static [u8] {
        match self {
            Purpose::Package => b"plugboard-package-v1\n",
            Purpose::Licence => b"plugboard-licence-v1\n",
        }
    }
}

/// Why a key file or a signature was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// The file is not a key file (the text says why).
    #[error("{0}")]
    Format(String),
    /// The signature does not verify with the key.
    #[error("the signature does not match (signed by another key, or the content was changed)")]
    BadSignature,
}

/// A short, stable name for a public key: `ed25519:` and the first 16 hex
/// digits of the SHA-256 of its 32 bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KeyId(pub String);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A public key with the signer's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// Who says they own it (a label).
    pub signer: String,
    key: ed25519_dalek::VerifyingKey,
}

/// A secret signing key with the signer's name.
pub struct SecretKey {
    /// Who signs with it.
    pub signer: String,
    key: ed25519_dalek::SigningKey,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("signer", &self.signer)
            .field("key_id", &self.public().id())
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicFile {
    signer: String,
    public: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretFile {
    signer: String,
    secret: String,
}

fn decode32(what: &str, text: &str) -> Result<[u8; 32], KeyError> {
    let bytes = B64
        .decode(text.trim())
        .map_err(|e| KeyError::Format(format!("{what} is not base64: {e}")))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| KeyError::Format(format!("{what} has {} bytes, not 32", b.len())))
}

/// Whether `label` is a safe short name (signers, file names): 1-64 ASCII
/// letters, digits, '-', '_' or '.'.
pub fn is_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 64
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn check_signer(signer: &str) -> Result<(), KeyError> {
    if is_label(signer) {
        Ok(())
    } else {
        Err(KeyError::Format(format!(
            "signer {signer:?}: use 1-64 letters, digits, '-', '_' or '.'"
        )))
    }
}

impl PublicKey {
    /// The key from its 32 bytes.
    pub fn from_bytes(signer: &str, bytes: &[u8; 32]) -> Result<PublicKey, KeyError> {
        check_signer(signer)?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map_err(|e| KeyError::Format(format!("not an Ed25519 public key: {e}")))?;
        Ok(PublicKey {
            signer: signer.to_string(),
            key,
        })
    }

    /// The key from its base64 text (as in key files and signatures).
    pub fn from_base64(signer: &str, text: &str) -> Result<PublicKey, KeyError> {
        check_signer(signer)?;
        Self::from_bytes(signer, &decode32("public key", text)?)
    }

    /// Parses a public key file's text.
    pub fn parse(text: &str) -> Result<PublicKey, KeyError> {
        let f: PublicFile = toml::from_str(text)
            .map_err(|e| KeyError::Format(format!("not a public key file: {e}")))?;
        Self::from_base64(&f.signer, &f.public)
    }

    /// Reads a public key file.
    pub fn read(path: &Path) -> Result<PublicKey, KeyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| KeyError::Io(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| KeyError::Format(format!("{}: {e}", path.display())))
    }

    /// The public key file's text.
    pub fn to_file_text(&self) -> String {
        toml::to_string(&PublicFile {
            signer: self.signer.clone(),
            public: self.to_base64(),
        })
        .expect("public key serialises")
    }

    /// The 32 key bytes in base64.
    pub fn to_base64(&self) -> String {
        B64.encode(self.key.as_bytes())
    }

    /// The 32 key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.key.as_bytes()
    }

    /// Its [`KeyId`].
    pub fn id(&self) -> KeyId {
        let digest = Sha256::digest(self.key.as_bytes());
        KeyId(format!("ed25519:{}", &hex::encode(digest)[..16]))
    }

    /// Checks `signature` (base64) over `message` for `purpose`.
    pub fn verify(
        &self,
        purpose: Purpose,
        message: &[u8],
        signature: &str,
    ) -> Result<(), KeyError> {
        let bytes = B64
            .decode(signature.trim())
            .map_err(|e| KeyError::Format(format!("signature is not base64: {e}")))?;
        let sig = ed25519_dalek::Signature::from_slice(&bytes).map_err(|_| {
            KeyError::Format(format!("signature has {} bytes, not 64", bytes.len()))
        })?;
        self.key
            .verify(&signed_bytes(purpose, message), &sig)
            .map_err(|_| KeyError::BadSignature)
    }
}

impl SecretKey {
    /// A new random key for `signer`.
    pub fn generate(signer: &str) -> Result<SecretKey, KeyError> {
        check_signer(signer)?;
        let seed: [u8; 32] = rand::random();
        Ok(SecretKey {
            signer: signer.to_string(),
            key: ed25519_dalek::SigningKey::from_bytes(&seed),
        })
    }

    /// Parses a secret key file's text.
    pub fn parse(text: &str) -> Result<SecretKey, KeyError> {
        let f: SecretFile = toml::from_str(text)
            .map_err(|e| KeyError::Format(format!("not a secret key file: {e}")))?;
        check_signer(&f.signer)?;
        Ok(SecretKey {
            signer: f.signer,
            key: ed25519_dalek::SigningKey::from_bytes(&decode32("secret key", &f.secret)?),
        })
    }

    /// Reads a secret key file.
    pub fn read(path: &Path) -> Result<SecretKey, KeyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| KeyError::Io(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| KeyError::Format(format!("{}: {e}", path.display())))
    }

    /// The secret key file's text (keep it secret: write it with mode 0600).
    pub fn to_file_text(&self) -> String {
        format!(
            "# plugboard signing key: keep this file secret\n{}",
            toml::to_string(&SecretFile {
                signer: self.signer.clone(),
                secret: B64.encode(self.key.to_bytes()),
            })
            .expect("secret key serialises")
        )
    }

    /// Writes `<stem>.key` (mode 0600, refused if it exists) and `<stem>.pub`.
    pub fn write_pair(&self, stem: &Path) -> Result<(), KeyError> {
        use std::io::Write;
        let secret = stem.with_extension("key");
        let public = stem.with_extension("pub");
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let io = |p: &Path, e: std::io::Error| KeyError::Io(format!("{}: {e}", p.display()));
        let mut f = opts.open(&secret).map_err(|e| io(&secret, e))?;
        f.write_all(self.to_file_text().as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| io(&secret, e))?;
        std::fs::write(&public, self.public().to_file_text()).map_err(|e| io(&public, e))
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            signer: self.signer.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// Signs `message` for `purpose`; the signature in base64.
    pub fn sign(&self, purpose: Purpose, message: &[u8]) -> String {
        B64.encode(self.key.sign(&signed_bytes(purpose, message)).to_bytes())
    }
}

fn signed_bytes(purpose: Purpose, message: &[u8]) -> Vec<u8> {
    let mut v = purpose.prefix().to_vec();
    v.extend_from_slice(message);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_round_trip_through_files() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::generate("acme").unwrap();
        key.write_pair(&dir.path().join("acme")).unwrap();
        let secret = SecretKey::read(&dir.path().join("acme.key")).unwrap();
        let public = PublicKey::read(&dir.path().join("acme.pub")).unwrap();
        assert_eq!(public, key.public());
        assert_eq!(public.id(), key.public().id());
        assert!(public.id().0.starts_with("ed25519:") && public.id().0.len() == 24);
        let sig = secret.sign(Purpose::Package, b"hello");
        public.verify(Purpose::Package, b"hello", &sig).unwrap();
        assert_eq!(
            public.verify(Purpose::Package, b"hellO", &sig),
            Err(KeyError::BadSignature)
        );
        // The same bytes signed for another purpose do not verify.
        assert_eq!(
            public.verify(Purpose::Licence, b"hello", &sig),
            Err(KeyError::BadSignature)
        );
        // The secret key file is not world-readable and is never overwritten.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("acme.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0);
        }
        assert!(key.write_pair(&dir.path().join("acme")).is_err());
    }

    #[test]
    fn another_key_does_not_verify() {
        let a = SecretKey::generate("acme").unwrap();
        let b = SecretKey::generate("acme").unwrap();
        let sig = a.sign(Purpose::Licence, b"x");
        assert_eq!(
            b.public().verify(Purpose::Licence, b"x", &sig),
            Err(KeyError::BadSignature)
        );
        assert_ne!(a.public().id(), b.public().id());
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let e = PublicKey::parse("signer = \"a\"\npublic = \"AAAA\"\n").unwrap_err();
        assert!(e.to_string().contains("3 bytes, not 32"), "{e}");
        let e = PublicKey::parse("signer = \"a b\"\npublic = \"AAAA\"\n").unwrap_err();
        assert!(e.to_string().contains("signer"), "{e}");
        let e = SecretKey::parse("public = 1").unwrap_err();
        assert!(e.to_string().contains("not a secret key file"), "{e}");
    }
}
