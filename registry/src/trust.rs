//! The operator's trust store of vendor public keys, and package
//! verification.
//!
//! The store is a directory of public key files (`*.pub`, the format of
//! [`crate::keys`]). `plugboard trust add` writes
//! `<signer>-<16 hex digits of the key id>.pub`; files put there by hand
//! under other names are read too. A package is trusted when its signature
//! was made by a key whose **bytes** are in the store; the signer name is
//! only a label and is never matched on its own.

use std::path::{Path, PathBuf};

use crate::keys::{KeyError, KeyId, PublicKey, Purpose};
use crate::package::Package;

/// Why the trust store could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A file or the directory could not be read or written.
    #[error("trust store: {path}: {message}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A `*.pub` file in the store is not a public key file.
    #[error("trust store: {0}")]
    BadKeyFile(KeyError),
    /// No key with this id is in the store.
    #[error("no key {0} in the trust store (`plugboard trust list` shows the keys)")]
    NotFound(KeyId),
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> TrustError {
    TrustError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// The set of public keys the operator trusts to sign packages.
#[derive(Debug, Clone)]
pub struct TrustStore {
    /// The directory, or `None` for an in-memory store.
    dir: Option<PathBuf>,
    /// Keys with the file each came from (`None` in memory), sorted by
    /// signer then key id, one entry per key id.
    keys: Vec<(PublicKey, Vec<PathBuf>)>,
}

impl TrustStore {
    /// Opens the store in `dir`, creating the directory if it is missing.
    /// Every `*.pub` file must be a valid public key file; a bad one is an
    /// error naming the file.
    pub fn open(dir: &Path) -> Result<TrustStore, TrustError> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
            let path = entry.map_err(|e| io_err(dir, e))?.path();
            if path.extension().is_some_and(|x| x == "pub") && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let mut store = TrustStore {
            dir: Some(dir.to_path_buf()),
            keys: Vec::new(),
        };
        for path in files {
            let key = PublicKey::read(&path).map_err(TrustError::BadKeyFile)?;
            store.insert(key, Some(path));
        }
        Ok(store)
    }

    /// An in-memory store holding `keys` (for tests and embedding);
    /// [`add`](Self::add) and [`remove`](Self::remove) touch no files.
    pub fn from_keys(keys: Vec<PublicKey>) -> TrustStore {
        let mut store = TrustStore {
            dir: None,
            keys: Vec::new(),
        };
        for key in keys {
            store.insert(key, None);
        }
        store
    }

    fn insert(&mut self, key: PublicKey, path: Option<PathBuf>) {
        let id = key.id();
        if let Some((_, paths)) = self.keys.iter_mut().find(|(k, _)| k.id() == id) {
            paths.extend(path);
            return;
        }
        self.keys.push((key, path.into_iter().collect()));
        self.keys
            .sort_by(|(a, _), (b, _)| (&a.signer, a.id()).cmp(&(&b.signer, b.id())));
    }

    /// The directory, if the store is on disk.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The trusted keys, sorted by signer name then key id.
    pub fn list(&self) -> Vec<PublicKey> {
        self.keys.iter().map(|(k, _)| k.clone()).collect()
    }

    /// The trusted key with this id.
    pub fn get(&self, id: &KeyId) -> Option<PublicKey> {
        self.keys
            .iter()
            .find(|(k, _)| &k.id() == id)
            .map(|(k, _)| k.clone())
    }

    /// Trusts `key`, writing `<signer>-<16 hex of the key id>.pub`
    /// atomically. Returns `false` (and changes nothing) if the same key
    /// bytes are already trusted, whatever their signer name. Two different
    /// keys may have the same signer name.
    pub fn add(&mut self, key: &PublicKey) -> Result<bool, TrustError> {
        if self.get(&key.id()).is_some() {
            return Ok(false);
        }
        let path = match &self.dir {
            None => None,
            Some(dir) => {
                let id = key.id();
                let hex = id.0.strip_prefix("ed25519:").unwrap_or(&id.0);
                let path = dir.join(format!("{}-{hex}.pub", key.signer));
                crate::fsutil::write_atomic(&path, key.to_file_text().as_bytes())
                    .map_err(|e| io_err(&path, e))?;
                Some(path)
            }
        };
        self.insert(key.clone(), path);
        Ok(true)
    }

    /// Stops trusting the key `id`, deleting its file(s); returns the key.
    pub fn remove(&mut self, id: &KeyId) -> Result<PublicKey, TrustError> {
        let i = self
            .keys
            .iter()
            .position(|(k, _)| &k.id() == id)
            .ok_or_else(|| TrustError::NotFound(id.clone()))?;
        for path in &self.keys[i].1 {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(path, e)),
            }
        }
        if let Some(dir) = &self.dir {
            crate::fsutil::sync_dir(dir).map_err(|e| io_err(dir, e))?;
        }
        Ok(self.keys.remove(i).0)
    }
}

/// A package whose signature checked out against the trust store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signer name of the trusted key (as in the trust store).
    pub signer: String,
    /// The id of the trusted key.
    pub key_id: KeyId,
    /// The package's content digest (`sha256:<hex>`).
    pub digest: String,
}

/// Why a package is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The package has no `plugin.sig`.
    #[error("package is not signed; ask the vendor for a signed package (`plugboard plugin sign`)")]
    Unsigned,
    /// `plugin.sig` is unreadable (bad key or signature encoding).
    #[error("package signature is malformed: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// The signing key is not in the trust store.
    #[error(
        "signed by {signer} ({key_id}), a key not in the trust store; \
         add it with `plugboard trust add` if you trust it"
    )]
    UnknownKey {
        /// The signer name the signature claims.
        signer: String,
        /// The signing key's id.
        key_id: KeyId,
    },
    /// The content was changed after it was signed.
    #[error(
        "package content was changed after signing: the signature covers {expected} \
         but the content digest is {actual}"
    )]
    Tampered {
        /// The digest the signature covers.
        expected: String,
        /// The package's actual content digest.
        actual: String,
    },
    /// The signature does not verify with the trusted key.
    #[error(
        "the signature does not verify with the trusted key of {signer} ({key_id}): \
         the signature is forged or corrupted"
    )]
    BadSignature {
        /// The trusted key's signer name.
        signer: String,
        /// The trusted key's id.
        key_id: KeyId,
    },
}

/// Checks `pkg`'s signature against `trust`, in this order: signed at all,
/// signing key in the store (by key bytes, never by name), content digest
/// equal to the signed digest, signature valid.
pub fn verify(pkg: &Package, trust: &TrustStore) -> Result<Verified, VerifyError> {
    let sig = pkg.signature.as_ref().ok_or(VerifyError::Unsigned)?;
    let claimed =
        PublicKey::from_base64(&sig.signer, &sig.public).map_err(|e| VerifyError::Malformed {
            reason: format!("public key: {e}"),
        })?;
    let key_id = claimed.id();
    if key_id != sig.key_id {
        return Err(VerifyError::Malformed {
            reason: format!(
                "key_id {} does not match the public key ({key_id})",
                sig.key_id
            ),
        });
    }
    let trusted = match trust.get(&key_id) {
        Some(k) if k.as_bytes() == claimed.as_bytes() => k,
        _ => {
            return Err(VerifyError::UnknownKey {
                signer: sig.signer.clone(),
                key_id,
            });
        }
    };
    let actual = pkg.content_digest();
    if sig.content != actual {
        return Err(VerifyError::Tampered {
            expected: sig.content.clone(),
            actual,
        });
    }
    match trusted.verify(Purpose::Package, sig.content.as_bytes(), &sig.signature) {
        Ok(()) => Ok(Verified {
            signer: trusted.signer.clone(),
            key_id,
            digest: actual,
        }),
        Err(KeyError::Format(reason)) => Err(VerifyError::Malformed { reason }),
        Err(_) => Err(VerifyError::BadSignature {
            signer: trusted.signer.clone(),
            key_id,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;

    fn signed(key: &SecretKey) -> Package {
        let mut p = Package::new("name = \"queue\"\nversion = \"1.0.0\"\n", b"wasm".to_vec());
        p.sign(key);
        p
    }

    #[test]
    fn verify_accepts_a_trusted_signature() {
        let key = SecretKey::generate("acme").unwrap();
        let p = signed(&key);
        let v = verify(&p, &TrustStore::from_keys(vec![key.public()])).unwrap();
        assert_eq!(v.signer, "acme");
        assert_eq!(v.key_id, key.public().id());
        assert_eq!(v.digest, p.content_digest());
    }

    #[test]
    fn verify_refusals_in_order() {
        let key = SecretKey::generate("acme").unwrap();
        let trust = TrustStore::from_keys(vec![key.public()]);
        let mut p = signed(&key);

        let unsigned = Package::new(p.manifest.clone(), p.component.clone());
        let e = verify(&unsigned, &trust).unwrap_err();
        assert_eq!(e, VerifyError::Unsigned);
        assert!(e.to_string().starts_with("package is not signed;"), "{e}");

        // Another key with the same signer name is not trusted.
        let impostor = SecretKey::generate("acme").unwrap();
        let mut forged = signed(&impostor);
        forged.component = b"evil".to_vec(); // unknown key is reported before tampering
        let e = verify(&forged, &trust).unwrap_err();
        assert_eq!(
            e,
            VerifyError::UnknownKey {
                signer: "acme".into(),
                key_id: impostor.public().id()
            }
        );
        let text = e.to_string();
        assert!(
            text.contains(&format!("signed by acme ({})", impostor.public().id())),
            "{text}"
        );
        assert!(text.contains("plugboard trust add"), "{text}");

        // Changed content after signing.
        let original = p.content_digest();
        p.component.push(0);
        let e = verify(&p, &trust).unwrap_err();
        assert_eq!(
            e,
            VerifyError::Tampered {
                expected: original.clone(),
                actual: p.content_digest()
            }
        );
        assert!(e.to_string().contains("changed after signing"), "{e}");

        // The signed digest rewritten to match, without a new signature.
        p.signature.as_mut().unwrap().content = p.content_digest();
        let e = verify(&p, &trust).unwrap_err();
        assert!(matches!(e, VerifyError::BadSignature { .. }), "{e}");
        assert!(e.to_string().contains("does not verify"), "{e}");

        // A signature claiming a trusted key id but carrying other key bytes.
        let mut q = signed(&impostor);
        q.signature.as_mut().unwrap().key_id = key.public().id();
        let e = verify(&q, &trust).unwrap_err();
        assert!(matches!(e, VerifyError::Malformed { .. }), "{e}");
    }

    #[test]
    fn store_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trust");
        let mut store = TrustStore::open(&path).unwrap();
        assert!(store.list().is_empty());
        let a = SecretKey::generate("acme").unwrap().public();
        let b = SecretKey::generate("acme").unwrap().public();
        let c = SecretKey::generate("beta").unwrap().public();
        assert!(store.add(&a).unwrap());
        assert!(!store.add(&a).unwrap());
        // Same bytes under another name: still the same key, a no-op.
        let renamed = PublicKey::from_bytes("other", a.as_bytes()).unwrap();
        assert!(!store.add(&renamed).unwrap());
        assert!(store.add(&b).unwrap());
        assert!(store.add(&c).unwrap());
        let hex = &a.id().0["ed25519:".len()..];
        assert!(path.join(format!("acme-{hex}.pub")).is_file());
        assert_eq!(std::fs::read_dir(&path).unwrap().count(), 3);

        let reopened = TrustStore::open(&path).unwrap();
        assert_eq!(reopened.list().len(), 3);
        assert_eq!(reopened.get(&b.id()), Some(b.clone()));
        assert_eq!(reopened.list()[2].signer, "beta");

        let mut store = reopened;
        assert_eq!(store.remove(&a.id()).unwrap(), a);
        let e = store.remove(&a.id()).unwrap_err();
        assert!(matches!(e, TrustError::NotFound(_)));
        assert!(e.to_string().contains(&a.id().0), "{e}");
        assert_eq!(TrustStore::open(&path).unwrap().list().len(), 2);

        // A hand-copied file under any name is read; a bad one is named.
        std::fs::write(path.join("vendor.pub"), a.to_file_text()).unwrap();
        assert!(TrustStore::open(&path).unwrap().get(&a.id()).is_some());
        std::fs::write(path.join("broken.pub"), "signer = 1").unwrap();
        let e = TrustStore::open(&path).unwrap_err();
        assert!(e.to_string().contains("broken.pub"), "{e}");
    }

    #[test]
    fn in_memory_store() {
        let a = SecretKey::generate("acme").unwrap().public();
        let mut store = TrustStore::from_keys(vec![a.clone(), a.clone()]);
        assert_eq!(store.list(), vec![a.clone()]);
        assert!(store.dir().is_none());
        assert_eq!(store.remove(&a.id()).unwrap(), a);
        assert!(store.list().is_empty());
        assert!(store.add(&a).unwrap());
    }
}
