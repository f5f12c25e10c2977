//! The plugin package: `plugin.toml` + `plugin.wasm` + optional `plugin.sig`.
//!
//! On disk a package is an uncompressed tar file (`<name>-<version>.pbpkg`)
//! holding exactly those files, written deterministically (sorted, mode
//! 0644, mtime 0, uid/gid 0), or a directory holding the same files.
//!
//! The *content digest* covers the manifest and the component, never the
//! signature:
//!
//! ```text
//! "sha256:" + hex(sha256( "plugboard-package-v1\n"
//!                         || u64_be(len(manifest)) || manifest
//!                         || u64_be(len(component)) || component ))
//! ```
//!
//! A vendor signs the digest *string* with [`Purpose::Package`]; the result
//! goes into `plugin.sig` (TOML, see [`Signature`]). Checking a signature
//! against the operator's trust store is [`crate::trust::verify`].

use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::keys::{KeyId, Purpose, SecretKey};

/// File name of the manifest inside a package.
pub const MANIFEST_FILE: &str = "plugin.toml";
/// File name of the WebAssembly component inside a package.
pub const COMPONENT_FILE: &str = "plugin.wasm";
/// File name of the signature inside a package.
pub const SIGNATURE_FILE: &str = "plugin.sig";
/// File extension of a package file.
pub const EXTENSION: &str = "pbpkg";
/// Largest package accepted: the sum of its files' sizes (64 MiB).
pub const MAX_PACKAGE_BYTES: u64 = 64 * 1024 * 1024;

const DIGEST_DOMAIN: &[u8] = b"plugboard-package-v1\n";

/// Why a package could not be read, parsed or written.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The package file (tar) is malformed or holds unexpected entries.
    #[error("not a valid plugin package: {0}")]
    Archive(String),
    /// `plugin.toml` lacks a usable `name` or `version`.
    #[error("plugin.toml: {0}")]
    Manifest(String),
    /// `plugin.sig` is not a signature file.
    #[error("plugin.sig: {0}")]
    Signature(String),
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> PackageError {
    PackageError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// A package's signature, stored as the TOML file `plugin.sig`.
///
/// The signer name and the embedded public key only say who *claims* to have
/// signed; trust comes from finding the same key bytes in the trust store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// The signer's name (a label).
    pub signer: String,
    /// The [`KeyId`] of the signing key.
    pub key_id: KeyId,
    /// The signing public key, base64 of its 32 bytes.
    pub public: String,
    /// The content digest that was signed (`sha256:<hex>`).
    pub content: String,
    /// The Ed25519 signature over `content` for [`Purpose::Package`], base64.
    pub signature: String,
}

impl Signature {
    /// Parses the text of a `plugin.sig` file.
    pub fn parse(text: &str) -> Result<Signature, PackageError> {
        toml::from_str(text)
            .map_err(|e| PackageError::Signature(format!("not a signature file: {e}")))
    }

    /// The text of the `plugin.sig` file.
    pub fn to_file_text(&self) -> String {
        toml::to_string(self).expect("signature serialises")
    }
}

/// A plugin package in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// The text of `plugin.toml`.
    pub manifest: String,
    /// The bytes of `plugin.wasm` (a WebAssembly component).
    pub component: Vec<u8>,
    /// The contents of `plugin.sig`, if the package is signed.
    pub signature: Option<Signature>,
}

#[derive(Deserialize)]
struct NameVersion {
    name: Option<toml::Value>,
    version: Option<toml::Value>,
}

impl Package {
    /// An unsigned package from its manifest text and component bytes.
    pub fn new(manifest: impl Into<String>, component: impl Into<Vec<u8>>) -> Package {
        Package {
            manifest: manifest.into(),
            component: component.into(),
            signature: None,
        }
    }

    /// The content digest, `sha256:<hex>` (see the module documentation);
    /// it does not depend on the signature.
    pub fn content_digest(&self) -> String {
        let mut h = Sha256::new();
        h.update(DIGEST_DOMAIN);
        h.update((self.manifest.len() as u64).to_be_bytes());
        h.update(self.manifest.as_bytes());
        h.update((self.component.len() as u64).to_be_bytes());
        h.update(&self.component);
        format!("sha256:{}", hex::encode(h.finalize()))
    }

    /// The plugin's `name` and `version` from `plugin.toml` (other keys are
    /// ignored here).
    pub fn name_version(&self) -> Result<(String, semver::Version), PackageError> {
        let nv: NameVersion = toml::from_str(&self.manifest)
            .map_err(|e| PackageError::Manifest(format!("not valid TOML: {e}")))?;
        let name = match nv.name {
            Some(toml::Value::String(s)) => s,
            Some(_) => return Err(PackageError::Manifest("`name` must be a string".into())),
            None => return Err(PackageError::Manifest("`name` is missing".into())),
        };
        // The same rule as the host's manifest check (plugboard-plugins).
        let ok = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-');
        if !ok {
            return Err(PackageError::Manifest(format!(
                "name {name:?}: use 1-64 lowercase letters, digits or '-', not starting with '-'"
            )));
        }
        let version = match nv.version {
            Some(toml::Value::String(s)) => semver::Version::parse(&s).map_err(|e| {
                PackageError::Manifest(format!(
                    "version {s:?} is not a semantic version (like 1.2.0): {e}"
                ))
            })?,
            Some(_) => return Err(PackageError::Manifest("`version` must be a string".into())),
            None => return Err(PackageError::Manifest("`version` is missing".into())),
        };
        Ok((name, version))
    }

    /// Signs the package with `key`, replacing any previous signature. The
    /// content digest does not change.
    pub fn sign(&mut self, key: &SecretKey) {
        let content = self.content_digest();
        let public = key.public();
        self.signature = Some(Signature {
            signer: key.signer.clone(),
            key_id: public.id(),
            public: public.to_base64(),
            signature: key.sign(Purpose::Package, content.as_bytes()),
            content,
        });
    }

    /// The conventional file name, `<name>-<version>.pbpkg`.
    pub fn file_name(&self) -> Result<String, PackageError> {
        let (name, version) = self.name_version()?;
        Ok(format!("{name}-{version}.{EXTENSION}"))
    }

    /// The package as a deterministic, uncompressed tar file.
    pub fn to_tar(&self) -> Vec<u8> {
        let sig = self.signature.as_ref().map(Signature::to_file_text);
        // Sorted by name: plugin.sig < plugin.toml < plugin.wasm.
        let mut files: Vec<(&str, &[u8])> = Vec::with_capacity(3);
        if let Some(sig) = &sig {
            files.push((SIGNATURE_FILE, sig.as_bytes()));
        }
        files.push((MANIFEST_FILE, self.manifest.as_bytes()));
        files.push((COMPONENT_FILE, &self.component));
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut header = tar::Header::new_ustar();
            header.set_path(name).expect("short file name");
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            header.set_cksum();
            builder.append(&header, data).expect("writing to memory");
        }
        builder.into_inner().expect("writing to memory")
    }

    /// Parses a package file. Refuses entries other than `plugin.toml`,
    /// `plugin.wasm` and `plugin.sig`, duplicates, missing files, entries
    /// that are not regular files, and packages over [`MAX_PACKAGE_BYTES`].
    pub fn from_tar(bytes: &[u8]) -> Result<Package, PackageError> {
        let bad = |m: String| PackageError::Archive(m);
        let mut archive = tar::Archive::new(bytes);
        let mut manifest = None;
        let mut component = None;
        let mut signature = None;
        let mut total: u64 = 0;
        let entries = archive
            .entries()
            .map_err(|e| bad(format!("cannot read tar: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| bad(format!("cannot read tar: {e}")))?;
            let raw = entry.path_bytes().into_owned();
            let name = String::from_utf8_lossy(&raw).into_owned();
            if name.contains('/') || name.contains('\\') || name.contains("..") || name.is_empty() {
                return Err(bad(format!(
                    "entry {name:?}: only plain file names are allowed (no directories, no '..')"
                )));
            }
            let slot = match name.as_str() {
                MANIFEST_FILE => &mut manifest,
                COMPONENT_FILE => &mut component,
                SIGNATURE_FILE => &mut signature,
                _ => {
                    return Err(bad(format!(
                        "unexpected entry {name:?} (a package holds only {MANIFEST_FILE}, \
                         {COMPONENT_FILE} and {SIGNATURE_FILE})"
                    )));
                }
            };
            if entry.header().entry_type() != tar::EntryType::Regular {
                return Err(bad(format!("entry {name:?} is not a regular file")));
            }
            if slot.is_some() {
                return Err(bad(format!("entry {name:?} appears twice")));
            }
            let size = entry
                .header()
                .size()
                .map_err(|e| bad(format!("entry {name:?}: {e}")))?;
            total = total.saturating_add(size);
            if total > MAX_PACKAGE_BYTES {
                return Err(bad(format!(
                    "package is larger than {MAX_PACKAGE_BYTES} bytes"
                )));
            }
            let mut data = Vec::with_capacity(size as usize);
            (&mut entry)
                .take(size)
                .read_to_end(&mut data)
                .map_err(|e| bad(format!("entry {name:?}: {e}")))?;
            *slot = Some(data);
        }
        let manifest = manifest.ok_or_else(|| bad(format!("{MANIFEST_FILE} is missing")))?;
        let component = component.ok_or_else(|| bad(format!("{COMPONENT_FILE} is missing")))?;
        Self::from_parts(manifest, component, signature)
    }

    fn from_parts(
        manifest: Vec<u8>,
        component: Vec<u8>,
        signature: Option<Vec<u8>>,
    ) -> Result<Package, PackageError> {
        let manifest = String::from_utf8(manifest)
            .map_err(|_| PackageError::Manifest("not valid UTF-8".into()))?;
        let signature = match signature {
            None => None,
            Some(bytes) => {
                let text = String::from_utf8(bytes)
                    .map_err(|_| PackageError::Signature("not valid UTF-8".into()))?;
                Some(Signature::parse(&text)?)
            }
        };
        Ok(Package {
            manifest,
            component,
            signature,
        })
    }

    /// Reads a package from a `.pbpkg` file, or from a directory holding
    /// `plugin.toml`, `plugin.wasm` and optionally `plugin.sig` (other files
    /// in the directory are ignored).
    pub fn read(path: &Path) -> Result<Package, PackageError> {
        let meta = std::fs::metadata(path).map_err(|e| io_err(path, e))?;
        if meta.is_dir() {
            Self::read_files(path, &path.join(COMPONENT_FILE)).map_err(|e| io_err(path, e))
        } else {
            if meta.len() > MAX_PACKAGE_BYTES + 64 * 1024 {
                return Err(io_err(
                    path,
                    format!("package is larger than {MAX_PACKAGE_BYTES} bytes"),
                ));
            }
            let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
            Self::from_tar(&bytes).map_err(|e| io_err(path, e))
        }
    }

    /// Reads an unpacked package whose component is the file `component`
    /// (any name), with `plugin.toml` and optionally `plugin.sig` beside it:
    /// how a plugin named in the host's configuration file is laid out.
    pub fn read_beside(component: &Path) -> Result<Package, PackageError> {
        let folder = match component.parent() {
            Some(f) if !f.as_os_str().is_empty() => f,
            _ => Path::new("."),
        };
        Self::read_files(folder, component)
    }

    /// `plugin.toml` and `plugin.sig` (optional) from `folder`, the
    /// component from `component`; each error names its file.
    fn read_files(folder: &Path, component: &Path) -> Result<Package, PackageError> {
        let read = |p: &Path, optional: bool| -> Result<Option<Vec<u8>>, PackageError> {
            match std::fs::read(p) {
                Ok(b) => Ok(Some(b)),
                Err(e) if optional && e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io_err(p, e)),
            }
        };
        let manifest = read(&folder.join(MANIFEST_FILE), false)?.unwrap_or_default();
        let component = read(component, false)?.unwrap_or_default();
        let signature = read(&folder.join(SIGNATURE_FILE), true)?;
        let total =
            (manifest.len() + component.len() + signature.as_ref().map_or(0, Vec::len)) as u64;
        if total > MAX_PACKAGE_BYTES {
            return Err(io_err(
                folder,
                format!("package is larger than {MAX_PACKAGE_BYTES} bytes"),
            ));
        }
        Self::from_parts(manifest, component, signature).map_err(|e| io_err(folder, e))
    }

    /// Writes the package file atomically (a temporary file in the same
    /// directory, fsync, rename, fsync of the directory).
    pub fn write(&self, path: &Path) -> Result<(), PackageError> {
        crate::fsutil::write_atomic(path, &self.to_tar()).map_err(|e| io_err(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "name = \"queue\"\nversion = \"1.2.0\"\ncontract = \"0.1\"\n[config.x]\ntype = \"string\"\n";

    fn pkg() -> Package {
        Package::new(MANIFEST, b"\0asm fake component".to_vec())
    }

    type RawEntry<'a> = (&'a str, &'a [u8], tar::EntryType);

    /// A tar with arbitrary entries, for the refusal tests.
    fn raw_tar(entries: &[RawEntry]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data, kind) in entries {
            let mut h = tar::Header::new_gnu();
            h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn digest_follows_the_definition_and_ignores_the_signature() {
        let mut p = pkg();
        let mut bytes = b"plugboard-package-v1\n".to_vec();
        bytes.extend((MANIFEST.len() as u64).to_be_bytes());
        bytes.extend(MANIFEST.as_bytes());
        bytes.extend((p.component.len() as u64).to_be_bytes());
        bytes.extend(&p.component);
        let want = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        assert_eq!(p.content_digest(), want);
        let key = SecretKey::generate("acme").unwrap();
        p.sign(&key);
        assert_eq!(p.content_digest(), want);
        let sig = p.signature.as_ref().unwrap();
        assert_eq!(sig.content, want);
        assert_eq!(sig.key_id, key.public().id());
        key.public()
            .verify(Purpose::Package, want.as_bytes(), &sig.signature)
            .unwrap();
        // Moving bytes between manifest and component changes the digest.
        let q = Package::new(&MANIFEST[..MANIFEST.len() - 1], {
            let mut c = b"\n".to_vec();
            c.extend(&p.component);
            c
        });
        assert_ne!(q.content_digest(), want);
    }

    #[test]
    fn name_version_and_file_name() {
        let p = pkg();
        assert_eq!(
            p.name_version().unwrap(),
            ("queue".into(), semver::Version::new(1, 2, 0))
        );
        assert_eq!(p.file_name().unwrap(), "queue-1.2.0.pbpkg");
        let e = Package::new("name = \"q\"\nversion = \"1.2\"\n", vec![])
            .name_version()
            .unwrap_err();
        assert!(e.to_string().contains("not a semantic version"), "{e}");
        let e = Package::new("version = \"1.2.0\"\n", vec![])
            .name_version()
            .unwrap_err();
        assert!(e.to_string().contains("`name` is missing"), "{e}");
        let e = Package::new("name = \"../x\"\nversion = \"1.0.0\"\n", vec![])
            .name_version()
            .unwrap_err();
        assert!(e.to_string().contains("lowercase"), "{e}");
        let e = Package::new("name = ", vec![]).name_version().unwrap_err();
        assert!(e.to_string().contains("not valid TOML"), "{e}");
    }

    #[test]
    fn tar_round_trip_is_deterministic() {
        let mut p = pkg();
        let unsigned = p.to_tar();
        assert_eq!(unsigned, pkg().to_tar());
        assert_eq!(Package::from_tar(&unsigned).unwrap(), p);
        p.sign(&SecretKey::generate("acme").unwrap());
        let signed = p.to_tar();
        assert_eq!(signed, p.to_tar());
        let back = Package::from_tar(&signed).unwrap();
        assert_eq!(back, p);
        let mut names = vec![];
        for e in tar::Archive::new(&signed[..]).entries().unwrap() {
            let e = e.unwrap();
            assert_eq!(e.header().mode().unwrap(), 0o644);
            assert_eq!(e.header().mtime().unwrap(), 0);
            names.push(e.path().unwrap().to_string_lossy().into_owned());
        }
        assert_eq!(names, ["plugin.sig", "plugin.toml", "plugin.wasm"]);
    }

    #[test]
    fn bad_tars_are_refused() {
        use tar::EntryType::{Directory, Regular, Symlink};
        let m = MANIFEST.as_bytes();
        let cases: Vec<(Vec<RawEntry>, &str)> = vec![
            (vec![("plugin.toml", m, Regular)], "plugin.wasm is missing"),
            (
                vec![("plugin.wasm", b"x", Regular)],
                "plugin.toml is missing",
            ),
            (
                vec![
                    ("plugin.toml", m, Regular),
                    ("plugin.wasm", b"x", Regular),
                    ("evil.sh", b"x", Regular),
                ],
                "unexpected entry \"evil.sh\"",
            ),
            (
                vec![
                    ("plugin.toml", m, Regular),
                    ("plugin.toml", m, Regular),
                    ("plugin.wasm", b"x", Regular),
                ],
                "appears twice",
            ),
            (
                vec![("../plugin.toml", m, Regular)],
                "only plain file names",
            ),
            (vec![("x/plugin.toml", m, Regular)], "only plain file names"),
            (vec![("plugin.wasm", b"", Symlink)], "not a regular file"),
            (vec![("plugin.toml", b"", Directory)], "not a regular file"),
        ];
        for (entries, want) in cases {
            let e = Package::from_tar(&raw_tar(&entries)).unwrap_err();
            assert!(e.to_string().contains(want), "{e} (wanted {want})");
        }
        let e = Package::from_tar(&raw_tar(&[
            ("plugin.toml", m, Regular),
            ("plugin.wasm", b"x", Regular),
            ("plugin.sig", b"x = 1", Regular),
        ]))
        .unwrap_err();
        assert!(e.to_string().starts_with("plugin.sig: "), "{e}");
        assert!(Package::from_tar(b"garbage that is not a tar").is_err());
    }

    #[test]
    fn oversized_packages_are_refused() {
        // A header announcing a huge entry: refused before reading data.
        let mut h = tar::Header::new_gnu();
        h.set_path("plugin.wasm").unwrap();
        h.set_size(MAX_PACKAGE_BYTES + 1);
        h.set_cksum();
        let mut bytes = h.as_bytes().to_vec();
        bytes.extend([0u8; 1024]);
        let e = Package::from_tar(&bytes).unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
    }

    #[test]
    fn read_and_write_files_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = pkg();
        p.sign(&SecretKey::generate("acme").unwrap());
        let file = dir.path().join(p.file_name().unwrap());
        p.write(&file).unwrap();
        assert_eq!(Package::read(&file).unwrap(), p);
        // Overwriting works and leaves no temporary files behind.
        p.write(&file).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("plugin.toml"), &p.manifest).unwrap();
        std::fs::write(src.join("plugin.wasm"), &p.component).unwrap();
        std::fs::write(src.join("README"), "ignored").unwrap();
        let unsigned = Package::read(&src).unwrap();
        assert_eq!(unsigned.signature, None);
        assert_eq!(unsigned.content_digest(), p.content_digest());
        std::fs::write(
            src.join("plugin.sig"),
            p.signature.as_ref().unwrap().to_file_text(),
        )
        .unwrap();
        assert_eq!(Package::read(&src).unwrap(), p);

        std::fs::remove_file(src.join("plugin.wasm")).unwrap();
        let e = Package::read(&src).unwrap_err();
        assert!(e.to_string().contains("plugin.wasm"), "{e}");
        let e = Package::read(&dir.path().join("nope.pbpkg")).unwrap_err();
        assert!(e.to_string().contains("nope.pbpkg"), "{e}");
    }

    #[test]
    fn signature_file_refuses_unknown_fields() {
        let mut p = pkg();
        p.sign(&SecretKey::generate("acme").unwrap());
        let text = p.signature.as_ref().unwrap().to_file_text();
        assert_eq!(
            Signature::parse(&text).unwrap(),
            *p.signature.as_ref().unwrap()
        );
        let e = Signature::parse(&format!("{text}extra = 1\n")).unwrap_err();
        assert!(e.to_string().contains("extra"), "{e}");
    }
}
