//! The plugins installed on this host: every (name, version) with its
//! manifest and its compiled, validated component.
//!
//! Installing checks everything before anything is written: the manifest
//! parses, the component compiles, targets a supported contract, exports what
//! its roles need, and imports exactly the capabilities the manifest requests
//! (no more: it could not run; no fewer: the operator would grant more than it
//! uses). Only then are `plugin.toml` and `plugin.wasm` written to
//! `<dir>/<name>/<version>/` through a temporary folder that is fsynced and
//! renamed, so a crash leaves the version fully installed or absent.
//!
//! Versions are shared by reference ([`Arc<Installed>`]): a call holds the
//! version it started with, so uninstalling or swapping never touches a
//! running call; the compiled code is freed when the last holder drops it.
//! [`Installed::active_calls`] says how many calls still run a version.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};

use crate::manifest::{Capability, Manifest, Role};
use crate::runtime::{Plugin, Runtime};

/// One installed plugin version.
#[derive(Debug)]
pub struct Installed {
    /// Its manifest.
    pub manifest: Manifest,
    /// The loaded component, labelled with the manifest version.
    pub plugin: Plugin,
    /// SHA-256 of the component bytes, lower-case hex.
    pub sha256: String,
    /// Size of the component in bytes.
    pub size: u64,
    /// Where it is kept: its folder under the catalog dir, or the file named
    /// in the configuration (not copied).
    pub location: PathBuf,
    /// Who signed the package it came from; `None` for an unsigned package
    /// (accepted only in development mode, see `[trust] allow_unsigned`).
    pub signer: Option<Signer>,
    active: AtomicUsize,
}

/// The vendor key that signed an installed version. The signature was
/// checked against the operator's trust store when it was installed; it is
/// kept beside the component as `plugin.sig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// The signer's name as the key states it (a label).
    pub name: String,
    /// The key id (`ed25519:` + 16 hex digits), which is what licences match.
    pub key_id: String,
}

/// A verified signature to keep with an installed version.
#[derive(Debug, Clone)]
pub struct Provenance {
    /// Who signed.
    pub signer: Signer,
    /// The text of the `plugin.sig` file.
    pub signature: String,
}

impl Installed {
    /// Calls running this version now.
    pub fn active_calls(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Counts a call as running this version until the guard drops.
    pub fn begin_call(self: &Arc<Self>) -> ActiveCall {
        self.active.fetch_add(1, Ordering::Relaxed);
        ActiveCall(self.clone())
    }
}

/// A call running an [`Installed`] version (see [`Installed::begin_call`]).
pub struct ActiveCall(Arc<Installed>);

impl ActiveCall {
    /// The version in use.
    pub fn installed(&self) -> &Arc<Installed> {
        &self.0
    }
}

impl Drop for ActiveCall {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why an install or uninstall was refused.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The manifest or component is not acceptable (the text says why).
    #[error("{0}")]
    Invalid(String),
    /// The version exists with other content, or is still in use.
    #[error("{0}")]
    Conflict(String),
    /// No such plugin or version.
    #[error("{0}")]
    NotFound(String),
    /// Writing or reading the catalog folder failed.
    #[error("{0}")]
    Io(String),
}

type Versions = BTreeMap<semver::Version, Arc<Installed>>;

/// The installed plugins (see the module docs).
pub struct Catalog {
    runtime: Runtime,
    dir: PathBuf,
    plugins: RwLock<BTreeMap<String, Versions>>,
    /// Serialises installs and uninstalls: the existence check, the disk
    /// write and the insert happen as one step.
    install_lock: std::sync::Mutex<()>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

use plugboard_registry::package::{
    COMPONENT_FILE as COMPONENT, MANIFEST_FILE as MANIFEST, Package, SIGNATURE_FILE as SIGNATURE,
};

impl Catalog {
    /// Opens the catalog in `dir` (created if missing) and loads every
    /// version installed there. A version that no longer loads (a damaged
    /// file, a host that dropped its contract) is logged and skipped, so one
    /// bad plugin never stops the PBX.
    pub fn open(runtime: Runtime, dir: &Path) -> Result<Catalog, CatalogError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| CatalogError::Io(format!("cannot create {}: {e}", dir.display())))?;
        let catalog = Catalog {
            runtime,
            dir: dir.to_path_buf(),
            plugins: RwLock::new(BTreeMap::new()),
            install_lock: std::sync::Mutex::new(()),
        };
        for name_dir in read_dirs(dir) {
            for version_dir in read_dirs(&name_dir) {
                if version_dir.extension().is_some_and(|e| e == "tmp") {
                    let _ = std::fs::remove_dir_all(&version_dir);
                    continue;
                }
                match catalog.load_dir(&version_dir) {
                    Ok(i) => catalog.insert(Arc::new(i)),
                    Err(e) => tracing::error!(
                        dir = %version_dir.display(),
                        "installed plugin not loaded: {e}"
                    ),
                }
            }
        }
        Ok(catalog)
    }

    /// The runtime the plugins run on.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    fn insert(&self, i: Arc<Installed>) {
        let mut map = self.plugins.write().expect("catalog lock");
        map.entry(i.manifest.name.clone())
            .or_default()
            .insert(i.manifest.version.clone(), i);
    }

    fn load_dir(&self, dir: &Path) -> Result<Installed, CatalogError> {
        let pkg = Package::read(dir).map_err(|e| CatalogError::Io(e.to_string()))?;
        let mut installed = self.check(&pkg.manifest, &pkg.component, dir)?;
        installed.signer = signer_of(&pkg, &dir.join(SIGNATURE))?;
        Ok(installed)
    }

    /// Validates a manifest and component without installing (see the module docs).
    fn check(
        &self,
        manifest: &str,
        bytes: &[u8],
        location: &Path,
    ) -> Result<Installed, CatalogError> {
        let m = Manifest::parse(manifest)
            .map_err(|e| CatalogError::Invalid(format!("plugin.toml: {e}")))?;
        let label = format!("{} {}", m.name, m.version);
        let plugin = self
            .runtime
            .load_bytes(&m.name, bytes, &location.display().to_string())
            .map_err(|e| CatalogError::Invalid(format!("{e:#}")))?
            .with_version(m.version.to_string());
        if !m.roles.contains(&plugin.role()) {
            return Err(CatalogError::Invalid(format!(
                "{label}: the component is a {} plugin but plugin.toml declares roles {}",
                plugin.role().name(),
                m.roles
                    .iter()
                    .map(|r| r.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let imported = plugin.plugboard_imports();
        if plugin.role() != Role::CallFlow && imported.iter().any(|i| i == "call") {
            return Err(CatalogError::Invalid(format!(
                "{label}: only call-flow plugins may import plugboard:pbx/call"
            )));
        }
        for i in imported {
            let requested = Capability::from_name(i).is_some_and(|c| m.capabilities.contains(&c));
            if !requested {
                return Err(CatalogError::Invalid(format!(
                    "{label}: the component imports plugboard:pbx/{i} but plugin.toml does not \
                     request capability \"{i}\""
                )));
            }
        }
        for c in &m.capabilities {
            if !imported.iter().any(|i| i == c.name()) {
                return Err(CatalogError::Invalid(format!(
                    "{label}: plugin.toml requests capability \"{c}\" but the component does not \
                     import plugboard:pbx/{c}; request only what it uses"
                )));
            }
        }
        Ok(Installed {
            sha256: hex::encode(Sha256::digest(bytes)),
            size: bytes.len() as u64,
            manifest: m,
            plugin,
            location: location.to_path_buf(),
            signer: None,
            active: AtomicUsize::new(0),
        })
    }

    /// Installs a plugin version from its manifest text and component bytes,
    /// keeping a copy under the catalog dir, with its signature when signed
    /// (the caller has checked it against the trust store). Installing the
    /// same bytes again is a no-op; other bytes under an installed version
    /// are refused.
    pub fn install(
        &self,
        manifest: &str,
        bytes: &[u8],
        provenance: Option<&Provenance>,
    ) -> Result<Arc<Installed>, CatalogError> {
        let m = Manifest::parse(manifest)
            .map_err(|e| CatalogError::Invalid(format!("plugin.toml: {e}")))?;
        let final_dir = self.dir.join(&m.name).join(m.version.to_string());
        // Compile and check outside the lock (seconds for large components).
        let mut installed = self.check(manifest, bytes, &final_dir)?;
        installed.signer = provenance.map(|p| p.signer.clone());
        let _serial = self.install_lock.lock().expect("install lock");
        if let Some(existing) = self.get(&m.name, Some(&m.version)) {
            if existing.sha256 == installed.sha256
                && existing.location == final_dir
                && existing.manifest == m
                && existing.signer == installed.signer
            {
                return Ok(existing);
            }
            return Err(CatalogError::Conflict(format!(
                "{} {} is already installed with a different component, manifest or signature; publish a new version",
                m.name, m.version
            )));
        }
        write_version_dir(
            &final_dir,
            manifest,
            bytes,
            provenance.map(|p| p.signature.as_str()),
        )
        .map_err(|e| CatalogError::Io(format!("cannot write {}: {e}", final_dir.display())))?;
        let installed = Arc::new(installed);
        self.insert(installed.clone());
        tracing::info!(
            plugin = %m.name,
            version = %m.version,
            sha256 = %installed.sha256,
            signer = installed.signer.as_ref().map_or("unsigned", |s| s.key_id.as_str()),
            "plugin installed"
        );
        Ok(installed)
    }

    /// Loads a plugin named in the configuration file: the component read
    /// from `component` with the `plugin.toml` beside it, used in place (not
    /// copied). The caller reads both (and checks the signature) once and
    /// hands over exactly the bytes it checked. A version already installed
    /// with the same component, manifest and signer is reused.
    pub fn load_configured(
        &self,
        name: &str,
        component: &Path,
        manifest: &str,
        bytes: &[u8],
        signer: Option<Signer>,
    ) -> Result<Arc<Installed>, CatalogError> {
        let mut installed = self.check(manifest, bytes, component)?;
        installed.signer = signer;
        if installed.manifest.name != name {
            return Err(CatalogError::Invalid(format!(
                "the plugin.toml beside {} names the plugin {:?}, not {name:?}",
                component.display(),
                installed.manifest.name
            )));
        }
        let _serial = self.install_lock.lock().expect("install lock");
        if let Some(existing) = self.get(name, Some(&installed.manifest.version)) {
            if existing.sha256 == installed.sha256
                && existing.manifest == installed.manifest
                && existing.signer == installed.signer
            {
                return Ok(existing);
            }
            return Err(CatalogError::Conflict(format!(
                "{name} {} from {} differs from the installed {name} {} (component, manifest \
                 or signature); bump its version",
                installed.manifest.version,
                component.display(),
                installed.manifest.version
            )));
        }
        let installed = Arc::new(installed);
        self.insert(installed.clone());
        Ok(installed)
    }

    /// A version of `name`: exactly `version`, or the newest when `None`.
    pub fn get(&self, name: &str, version: Option<&semver::Version>) -> Option<Arc<Installed>> {
        let map = self.plugins.read().expect("catalog lock");
        let versions = map.get(name)?;
        match version {
            Some(v) => versions.get(v).cloned(),
            None => versions.values().next_back().cloned(),
        }
    }

    /// Every installed version, by name then version.
    pub fn list(&self) -> Vec<Arc<Installed>> {
        let map = self.plugins.read().expect("catalog lock");
        map.values().flat_map(|v| v.values().cloned()).collect()
    }

    /// Removes a version from the catalog and deletes its files. Calls still
    /// running it finish on the loaded copy; the caller must first make sure
    /// that no tenant uses it (see the call layer). Configured plugins (used
    /// in place) cannot be uninstalled here: edit the configuration.
    pub fn uninstall(
        &self,
        name: &str,
        version: &semver::Version,
    ) -> Result<Arc<Installed>, CatalogError> {
        let _serial = self.install_lock.lock().expect("install lock");
        let mut map = self.plugins.write().expect("catalog lock");
        let versions = map
            .get_mut(name)
            .ok_or_else(|| CatalogError::NotFound(format!("plugin {name} is not installed")))?;
        let installed = versions.get(version).cloned().ok_or_else(|| {
            CatalogError::NotFound(format!("plugin {name} {version} is not installed"))
        })?;
        let managed = self.dir.join(name).join(version.to_string());
        if installed.location != managed {
            return Err(CatalogError::Conflict(format!(
                "{name} {version} comes from the configuration file ({}); remove it there",
                installed.location.display()
            )));
        }
        let tmp = tmp_dir(&managed);
        std::fs::rename(&managed, &tmp)
            .and_then(|_| std::fs::remove_dir_all(&tmp))
            .map_err(|e| CatalogError::Io(format!("cannot remove {}: {e}", managed.display())))?;
        versions.remove(version);
        if versions.is_empty() {
            map.remove(name);
            let _ = std::fs::remove_dir(self.dir.join(name));
        }
        tracing::info!(plugin = %name, %version, calls = installed.active_calls(), "plugin uninstalled");
        Ok(installed)
    }
}

fn read_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

/// The temporary folder of a version folder: `<version>.tmp` beside it
/// (`1.2.0.tmp`, never shared with `1.2.1`), removed at open.
fn tmp_dir(version_dir: &Path) -> PathBuf {
    let mut name = version_dir.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    version_dir.with_file_name(name)
}

/// The signer of an installed version, from its `plugin.sig`, if any. The
/// signature must still cover exactly these manifest and component bytes
/// (checked with the key it names; the trust store was consulted at
/// install): a version whose files were changed on disk after a signed
/// install fails to load (logged at open) rather than lend its signer to
/// other bytes.
fn signer_of(pkg: &Package, sig_path: &Path) -> Result<Option<Signer>, CatalogError> {
    use plugboard_registry::keys::PublicKey;
    use plugboard_registry::trust::{TrustStore, verify};
    let Some(sig) = &pkg.signature else {
        return Ok(None);
    };
    let bad = |e: String| CatalogError::Invalid(format!("{}: {e}", sig_path.display()));
    let key = PublicKey::from_base64(&sig.signer, &sig.public).map_err(|e| bad(e.to_string()))?;
    let v = verify(pkg, &TrustStore::from_keys(vec![key])).map_err(|e| bad(e.to_string()))?;
    Ok(Some(Signer {
        name: v.signer,
        key_id: v.key_id.0,
    }))
}

/// Writes a version folder atomically: `<final>.tmp/`, fsync, rename, fsync parent.
fn write_version_dir(
    final_dir: &Path,
    manifest: &str,
    bytes: &[u8],
    signature: Option<&str>,
) -> std::io::Result<()> {
    use std::io::Write;
    let parent = final_dir.parent().expect("version dir has a parent");
    std::fs::create_dir_all(parent)?;
    let tmp = tmp_dir(final_dir);
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp)?;
    let mut files = vec![(MANIFEST, manifest.as_bytes()), (COMPONENT, bytes)];
    if let Some(sig) = signature {
        files.push((SIGNATURE, sig.as_bytes()));
    }
    for (name, data) in files {
        let mut f = std::fs::File::create(tmp.join(name))?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, final_dir)?;
    std::fs::File::open(parent)?.sync_all()
}
