//! Licences and the plugin trust store at run time.
//!
//! [`Licences`] keeps the site's licensing ([`plugboard_license::Licensing`],
//! re-read when the licence folder changes), counts calls against the
//! licensed capacity at INVITE, and sends expiry reminders (logged, kept
//! durably and shown by the admin API). The clock is the system's, or
//! `[testing] clock_file` in tests. See docs/decisions/0011-licences.md.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use arc_swap::ArcSwap;
use plugboard_license::{
    FileClock, FileGraceLog, Item, Licensing, Refusal, ReminderLog, SharedClock, SystemClock,
};
use plugboard_plugins::Installed;
use plugboard_registry::keys::{KeyId, PublicKey};
use plugboard_registry::trust::TrustStore;
use plugboard_store::Store;
use plugboard_tenants::Config;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

/// The operator's trust store, shared with licensing (vendor keys).
pub type SharedTrust = Arc<RwLock<TrustStore>>;

/// An expiry reminder that was sent (kept in the store, shown by the API).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SentReminder {
    /// The licence number.
    pub licence_id: String,
    /// The reminder mark (90, 60, 30, then 15 down to 1 days).
    pub mark: u32,
    /// Whole days left when it was sent.
    pub days_left: i64,
    /// The licence's last valid day.
    pub expires: String,
    /// When it was sent (the licence clock, RFC 3339).
    pub at: String,
}

/// Licensing of this host (see the module docs).
pub struct Licences {
    setup: plugboard_license::Setup,
    dir: PathBuf,
    current: ArcSwap<Licensing>,
    fingerprint: Mutex<Vec<(String, u64, Option<std::time::SystemTime>)>>,
    reminder_log: FileGraceLog,
    calls: AtomicU32,
    /// Whether the clock comes from `[testing] clock_file`.
    pub test_clock: bool,
}

/// A call counted against the licensed capacity until dropped.
pub struct LicenceSlot(Arc<Licences>);

impl Drop for LicenceSlot {
    fn drop(&mut self) {
        self.0.calls.fetch_sub(1, Ordering::AcqRel);
    }
}

const REMINDERS_KIND: &str = "licence";
const REMINDERS_KEY: &str = "reminders";

impl Licences {
    /// Reads the issuer keys and the licence folder named in `config`.
    pub fn open(config: &Config, trust: SharedTrust) -> anyhow::Result<Licences> {
        let l = &config.licence;
        let mut issuers = Vec::new();
        for path in &l.issuer_keys {
            issuers.push(PublicKey::read(path).map_err(|e| {
                anyhow::anyhow!("{}: licence.issuer_keys: {e}", config.source.display())
            })?);
        }
        let clock: SharedClock = match &config.clock_file {
            Some(file) => {
                warn!(
                    clock_file = %file.display(),
                    "[testing] clock_file is set: licence time is read from this file, not the system clock"
                );
                Arc::new(FileClock::new(file.clone()))
            }
            None => Arc::new(SystemClock),
        };
        let data = &config.server.data_dir;
        let grace = Arc::new(FileGraceLog::open(data.join("licence-grace.json")));
        let vendors_trust = trust.clone();
        let setup = plugboard_license::Setup {
            site: l.site.clone(),
            issuers,
            vendors: Arc::new(move |id: &KeyId| vendors_trust.read().expect("trust lock").get(id)),
            clock,
            grace,
        };
        let current = Licensing::load_dir(setup.clone(), &l.dir);
        Ok(Licences {
            setup,
            fingerprint: Mutex::new(fingerprint(&l.dir)),
            dir: l.dir.clone(),
            current: ArcSwap::from_pointee(current),
            reminder_log: FileGraceLog::open(data.join("licence-reminders.json")),
            calls: AtomicU32::new(0),
            test_clock: config.clock_file.is_some(),
        })
    }

    /// The host's clock: the system's, or `[testing] clock_file` (also the
    /// tenant clock of plugins, so retention can be tested).
    pub fn clock(&self) -> SharedClock {
        self.setup.clock.clone()
    }

    /// The licensing as it is now.
    pub fn current(&self) -> Arc<Licensing> {
        self.current.load_full()
    }

    /// The licence folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Re-reads the licence folder (after a change through the API, or
    /// when the files changed on disk).
    pub fn reload(&self) {
        // One reload at a time, fingerprint to store: a slower, older load
        // can never replace a newer one.
        let mut seen = self.fingerprint.lock().expect("fingerprint lock");
        *seen = fingerprint(&self.dir);
        self.current
            .store(Arc::new(Licensing::load_dir(self.setup.clone(), &self.dir)));
    }

    fn reload_if_changed(&self) {
        let mut seen = self.fingerprint.lock().expect("fingerprint lock");
        let now = fingerprint(&self.dir);
        if *seen != now {
            info!(dir = %self.dir.display(), "licence files changed: reloading");
            *seen = now;
            self.current
                .store(Arc::new(Licensing::load_dir(self.setup.clone(), &self.dir)));
        }
    }

    /// Checks a licence file before it is installed: it must parse, verify
    /// with an issuer or vendor key and be for this site.
    pub fn check(&self, name: &str, text: &str) -> Result<(), String> {
        // A throwaway grace log: a refused upload must not start the grace
        // period of a file that was never installed.
        let setup = plugboard_license::Setup {
            grace: Arc::new(plugboard_license::MemoryLog::new()),
            ..self.setup.clone()
        };
        let l = Licensing::from_texts(setup, &[(name, text)]);
        match l.status().problems.first() {
            Some(p) => Err(p.clone()),
            None => Ok(()),
        }
    }

    /// Admits a call against the licensed concurrent-calls capacity.
    pub fn admit_call(self: &Arc<Self>) -> Result<LicenceSlot, Refusal> {
        let in_use = self.calls.fetch_add(1, Ordering::AcqRel);
        if let Err(r) = self.current().admit(Item::Calls, in_use) {
            self.calls.fetch_sub(1, Ordering::AcqRel);
            return Err(r);
        }
        Ok(LicenceSlot(self.clone()))
    }

    /// Calls counted now.
    pub fn calls_in_use(&self) -> u32 {
        self.calls.load(Ordering::Acquire)
    }

    /// Whether `installed` may run for `tenant`: a plugin whose manifest names
    /// a licence feature needs an entitlement (see [`Licensing::entitled`]).
    pub fn entitled(&self, installed: &Installed, tenant: &str) -> Result<(), String> {
        let Some(feature) = &installed.manifest.licence_feature else {
            return Ok(());
        };
        let signer = installed.signer.as_ref().map(|s| KeyId(s.key_id.clone()));
        self.current()
            .entitled(feature, signer.as_ref(), tenant)
            .map_err(|e| {
                format!(
                    "plugin {} {} needs licence feature {feature}: {e}",
                    installed.manifest.name, installed.manifest.version
                )
            })
    }

    /// One periodic step: re-read changed licence files and send a due
    /// expiry reminder (logged and kept in `store`).
    pub async fn tick(&self, store: &dyn Store) {
        self.reload_if_changed();
        let Some(r) = self.current().due_reminder(&self.reminder_log) else {
            return;
        };
        let sent = SentReminder {
            licence_id: r.licence_id.clone(),
            mark: r.mark,
            days_left: r.days_left,
            expires: r.expires.to_string(),
            at: self
                .setup
                .clock
                .now()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        warn!(
            licence = %r.licence_id,
            days_left = r.days_left,
            expires = %r.expires,
            "licence expiry reminder: the licence expires in {} day(s), on {}; renew it",
            r.days_left,
            r.expires
        );
        let mut all = self.reminders(store).await;
        all.push(sent);
        match serde_json::to_vec(&all) {
            Ok(bytes) => {
                if let Err(e) = store.doc_put(REMINDERS_KIND, REMINDERS_KEY, &bytes).await {
                    warn!("cannot keep the licence reminder: {e}");
                    return;
                }
            }
            Err(e) => warn!("cannot encode the licence reminders: {e}"),
        }
        self.reminder_log.record_sent(&r.sha256, r.mark);
    }

    /// The reminders sent so far, oldest first.
    pub async fn reminders(&self, store: &dyn Store) -> Vec<SentReminder> {
        match store.doc_get(REMINDERS_KIND, REMINDERS_KEY).await {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

/// Names, sizes and modification times of the licence files.
fn fingerprint(dir: &Path) -> Vec<(String, u64, Option<std::time::SystemTime>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((
                e.file_name().to_string_lossy().into_owned(),
                m.len(),
                m.modified().ok(),
            ))
        })
        .collect();
    v.sort();
    v
}

/// Decides whether a plugin package may be installed: signed by a key in the
/// trust store, or unsigned while `[trust] allow_unsigned` (development
/// mode) is on, which is logged with `origin`. Returns what to keep with
/// the installed version.
pub fn admit_package(
    trust: &TrustStore,
    allow_unsigned: bool,
    pkg: &plugboard_registry::package::Package,
    origin: &str,
) -> Result<Option<plugboard_plugins::Provenance>, String> {
    use plugboard_registry::trust::{VerifyError, verify};
    match verify(pkg, trust) {
        Ok(v) => Ok(Some(plugboard_plugins::Provenance {
            signer: plugboard_plugins::Signer {
                name: v.signer,
                key_id: v.key_id.0,
            },
            signature: pkg
                .signature
                .as_ref()
                .map(|s| s.to_file_text())
                .unwrap_or_default(),
        })),
        Err(VerifyError::Unsigned) if allow_unsigned => {
            let (name, version) = pkg
                .name_version()
                .map(|(n, v)| (n, v.to_string()))
                .unwrap_or_else(|_| ("?".into(), "?".into()));
            warn!(
                plugin = %name,
                %version,
                digest = %pkg.content_digest(),
                origin,
                "development mode ([trust] allow_unsigned): accepting an unsigned plugin package"
            );
            Ok(None)
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Reads a configured plugin (`[plugins.NAME] path`) as a package: the
/// component, `plugin.toml` and, if present, `plugin.sig` beside it.
pub fn configured_package(
    component: &Path,
) -> Result<plugboard_registry::package::Package, String> {
    plugboard_registry::package::Package::read_beside(component).map_err(|e| {
        let manifest = component.with_file_name("plugin.toml");
        if manifest.exists() {
            e.to_string()
        } else {
            format!("{e} (every component needs a plugin.toml beside it)")
        }
    })
}
