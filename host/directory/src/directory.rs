//! Lookups against the LDAP servers, with server fallback and a TTL cache.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ldap3::{LdapConnAsync, LdapConnSettings, LdapResult, Scope, SearchEntry, SearchOptions};
use serde::Serialize;

use crate::config::{DirectoryConfig, expand_filter};
use crate::numbering::{NumberError, NumberingPlan};

/// At most this many entries are read per search base; more matches than
/// one are a data problem anyway (a warning is logged).
const SIZE_LIMIT: i32 = 20;

/// A person found in the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The entry's DN (stable id).
    pub id: String,
    /// The entry's phone number: E.164 when the stored form could be
    /// normalised, otherwise as stored; `None` when the entry has none.
    pub number: Option<String>,
    /// The site extension of `number`, when it is an internal number.
    pub extension: Option<String>,
    /// The display name (`display_name` attribute, else `cn`).
    pub display_name: Option<String>,
    /// The mail address, if the entry has one.
    pub mail: Option<String>,
    /// The PIN hash, when `pin_hash` is configured and the entry has one.
    pub pin_hash: Option<String>,
}

/// Why a lookup failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// The request or the configuration is invalid (e.g. not a phone number).
    #[error("{0}")]
    Invalid(String),
    /// No server answered; the message names every server and its error.
    #[error("directory lookup failed: {0}")]
    Failed(String),
}

impl From<NumberError> for DirectoryError {
    fn from(e: NumberError) -> Self {
        DirectoryError::Invalid(e.to_string())
    }
}

/// Cached answers (found and not found), keyed by E.164 number.
#[derive(Debug)]
struct Cache {
    ttl: Duration,
    capacity: usize,
    map: HashMap<String, (Instant, Option<Entry>)>,
}

impl Cache {
    fn get(&mut self, key: &str, now: Instant) -> Option<Option<Entry>> {
        let (expires, entry) = self.map.get(key)?;
        if *expires > now {
            return Some(entry.clone());
        }
        self.map.remove(key);
        None
    }

    fn put(&mut self, key: String, entry: Option<Entry>, now: Instant) {
        if self.ttl.is_zero() || self.capacity == 0 {
            return;
        }
        if self.map.len() >= self.capacity && !self.map.contains_key(&key) {
            self.map.retain(|_, (expires, _)| *expires > now);
            if self.map.len() >= self.capacity
                && let Some(oldest) = self
                    .map
                    .iter()
                    .min_by_key(|(_, (expires, _))| *expires)
                    .map(|(k, _)| k.clone())
            {
                self.map.remove(&oldest);
            }
        }
        self.map.insert(key, (now + self.ttl, entry));
    }
}

/// A tenant's directory: numbering plan, LDAP servers and cache.
///
/// Cheap to share behind an `Arc`; every lookup opens its own connection
/// (per server tried), so a broken connection never outlives one call.
#[derive(Debug)]
pub struct Directory {
    config: DirectoryConfig,
    plan: NumberingPlan,
    tls: Option<Arc<rustls::ClientConfig>>,
    cache: Mutex<Cache>,
}

impl Directory {
    /// Check both configurations and load `ca_file`.
    pub fn new(config: DirectoryConfig, plan: NumberingPlan) -> Result<Self, DirectoryError> {
        plan.check().map_err(DirectoryError::Invalid)?;
        config.check().map_err(DirectoryError::Invalid)?;
        let tls = match &config.ca_file {
            Some(path) => Some(load_ca(path).map_err(DirectoryError::Invalid)?),
            None => None,
        };
        let cache = Cache {
            ttl: Duration::from_secs(config.cache_ttl_s),
            capacity: config.cache_size,
            map: HashMap::new(),
        };
        Ok(Directory {
            config,
            plan,
            tls,
            cache: Mutex::new(cache),
        })
    }

    /// The directory configuration.
    pub fn config(&self) -> &DirectoryConfig {
        &self.config
    }

    /// The numbering plan.
    pub fn plan(&self) -> &NumberingPlan {
        &self.plan
    }

    /// Normalise a number with the tenant's numbering plan (see
    /// [`NumberingPlan::normalize`]).
    pub fn normalize(&self, raw: &str) -> Result<String, NumberError> {
        self.plan.normalize(raw)
    }

    /// Forget every cached answer (e.g. after the directory was edited).
    pub fn clear_cache(&self) {
        self.lock_cache().map.clear();
    }

    /// How many answers are cached (expired ones included until touched).
    pub fn cached(&self) -> usize {
        self.lock_cache().map.len()
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        // A panic while holding the lock leaves a consistent map: keep going.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Find the person with this phone number.
    ///
    /// The number is normalised; a cached answer (found or not found) younger
    /// than `cache_ttl_s` is returned without asking a server. Otherwise the
    /// servers are tried in order, each for at most `timeout_s`, until one
    /// answers; every search base is searched. Several matches: the first by
    /// DN is returned and a warning logged. Failures are not cached.
    pub async fn lookup_number(&self, raw: &str) -> Result<Option<Entry>, DirectoryError> {
        let e164 = self.plan.normalize(raw)?;
        if let Some(hit) = self.lock_cache().get(&e164, Instant::now()) {
            tracing::debug!(number = %e164, found = hit.is_some(), "directory cache hit");
            return Ok(hit);
        }
        let extension = self.plan.extension_of(&e164);
        let filter = expand_filter(
            &self.config.filter,
            &e164,
            extension.as_deref().unwrap_or(&e164),
        );
        let mut found = self.search(&filter).await?;
        found.sort_by_cached_key(|e| e.dn.to_lowercase());
        found.dedup_by(|a, b| a.dn.eq_ignore_ascii_case(&b.dn));
        if found.len() > 1 {
            let dns: Vec<&str> = found.iter().map(|e| e.dn.as_str()).collect();
            tracing::warn!(
                number = %e164,
                matches = ?dns,
                "several directory entries have this number; using the first"
            );
        }
        let entry = found.into_iter().next().map(|e| self.to_entry(e, &e164));
        tracing::debug!(number = %e164, found = entry.is_some(), "directory lookup");
        self.lock_cache().put(e164, entry.clone(), Instant::now());
        Ok(entry)
    }

    /// Try each server in order; the error lists every server's failure.
    async fn search(&self, filter: &str) -> Result<Vec<SearchEntry>, DirectoryError> {
        let limit = Duration::from_secs(self.config.timeout_s);
        let mut errors = Vec::new();
        for url in &self.config.servers {
            let error =
                match tokio::time::timeout(limit, self.search_server(url, filter, limit)).await {
                    Ok(Ok(entries)) => return Ok(entries),
                    Ok(Err(e)) => e,
                    Err(_) => format!("no answer within {} s", self.config.timeout_s),
                };
            tracing::warn!(server = %url, error = %error, "directory server failed");
            errors.push(format!("{url}: {error}"));
        }
        Err(DirectoryError::Failed(errors.join("; ")))
    }

    async fn search_server(
        &self,
        url: &str,
        filter: &str,
        limit: Duration,
    ) -> Result<Vec<SearchEntry>, String> {
        let mut settings = LdapConnSettings::new().set_conn_timeout(limit);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, url)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let _driver = AbortOnDrop(tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "LDAP connection ended");
            }
        }));
        if let (Some(dn), Some(password)) = (&self.config.bind_dn, &self.config.bind_password) {
            let result = ldap
                .simple_bind(dn, password)
                .await
                .map_err(|e| format!("bind as {dn:?} failed: {e}"))?;
            if result.rc != 0 {
                let hint = if result.rc == 49 {
                    " (wrong directory.bind_dn or directory.bind_password)"
                } else {
                    ""
                };
                return Err(format!(
                    "bind as {dn:?} refused: {}{hint}",
                    describe(&result)
                ));
            }
        }
        let mut attrs = vec![
            self.config.number.as_str(),
            self.config.mail.as_str(),
            self.config.display_name.as_str(),
            "cn",
        ];
        if let Some(pin) = &self.config.pin_hash {
            attrs.push(pin);
        }
        let mut entries = Vec::new();
        for base in &self.config.bases {
            let result = ldap
                .with_search_options(SearchOptions::new().sizelimit(SIZE_LIMIT))
                .search(base, Scope::Subtree, filter, &attrs)
                .await
                .map_err(|e| format!("search in {base:?} failed: {e}"))?;
            match result.1.rc {
                0 => {}
                4 => tracing::warn!(
                    server = %url, base = %base, filter = %filter,
                    "more than {SIZE_LIMIT} directory entries match; using the first ones"
                ),
                32 => {
                    tracing::warn!(server = %url, base = %base, "search base does not exist on this server");
                    continue;
                }
                _ => {
                    return Err(format!(
                        "search in {base:?} failed: {}",
                        describe(&result.1)
                    ));
                }
            }
            entries.extend(
                result
                    .0
                    .into_iter()
                    .filter(|e| !e.is_ref() && !e.is_intermediate())
                    .map(SearchEntry::construct),
            );
        }
        // Best effort: the server would drop the connection anyway.
        let _ = ldap.unbind().await;
        Ok(entries)
    }

    fn to_entry(&self, found: SearchEntry, e164: &str) -> Entry {
        let numbers = values(&found, &self.config.number);
        // Prefer the stored number that is the one looked up (multi-valued
        // telephoneNumber), then any that normalises, then the raw value.
        let normalised: Vec<(String, Option<String>)> = numbers
            .iter()
            .map(|raw| (raw.clone(), self.plan.normalize(raw).ok()))
            .collect();
        let number = normalised
            .iter()
            .find(|(_, n)| n.as_deref() == Some(e164))
            .or_else(|| normalised.iter().find(|(_, n)| n.is_some()))
            .or_else(|| normalised.first())
            .map(|(raw, n)| n.clone().unwrap_or_else(|| raw.clone()));
        let extension = number.as_deref().and_then(|n| self.plan.extension_of(n));
        let display_name = first(&found, &self.config.display_name).or_else(|| first(&found, "cn"));
        Entry {
            number,
            extension,
            display_name,
            mail: first(&found, &self.config.mail),
            pin_hash: self
                .config
                .pin_hash
                .as_deref()
                .and_then(|a| first(&found, a)),
            id: found.dn,
        }
    }
}

/// Attribute values by case-insensitive name (servers may answer in their
/// own spelling, e.g. `telephonenumber`).
fn values(entry: &SearchEntry, attr: &str) -> Vec<String> {
    entry
        .attrs
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(attr))
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn first(entry: &SearchEntry, attr: &str) -> Option<String> {
    values(entry, attr)
        .into_iter()
        .map(|v| v.trim().to_owned())
        .find(|v| !v.is_empty())
}

fn describe(result: &LdapResult) -> String {
    let mut text = format!("rc={}", result.rc);
    if let Some(name) = rc_name(result.rc) {
        text.push_str(&format!(" ({name})"));
    }
    if !result.text.is_empty() {
        text.push_str(&format!(": {}", result.text));
    }
    text
}

fn rc_name(rc: u32) -> Option<&'static str> {
    Some(match rc {
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        7 => "authMethodNotSupported",
        8 => "strongerAuthRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        13 => "confidentialityRequired",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        80 => "other",
        _ => return None,
    })
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn load_ca(path: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("directory.ca_file {shown}: cannot read: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        let cert = cert.map_err(|e| format!("directory.ca_file {shown}: not PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("directory.ca_file {shown}: bad certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "directory.ca_file {shown}: no certificate in the file (expected PEM \"-----BEGIN CERTIFICATE-----\")"
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> Option<Entry> {
        Some(Entry {
            id: id.to_owned(),
            number: None,
            extension: None,
            display_name: Some(id.to_owned()),
            mail: None,
            pin_hash: None,
        })
    }

    #[test]
    fn cache_expires_and_stays_bounded() {
        let t0 = Instant::now();
        let mut cache = Cache {
            ttl: Duration::from_secs(10),
            capacity: 3,
            map: HashMap::new(),
        };
        cache.put("+1".into(), entry("a"), t0);
        cache.put("+2".into(), None, t0 + Duration::from_secs(1));
        assert_eq!(
            cache.get("+1", t0 + Duration::from_secs(9)),
            Some(entry("a"))
        );
        assert_eq!(cache.get("+2", t0 + Duration::from_secs(9)), Some(None));
        assert_eq!(cache.get("+3", t0), None);
        assert_eq!(cache.get("+1", t0 + Duration::from_secs(10)), None);
        assert_eq!(cache.map.len(), 1, "expired entries are dropped when read");

        cache.put("+3".into(), entry("c"), t0 + Duration::from_secs(2));
        cache.put("+4".into(), entry("d"), t0 + Duration::from_secs(3));
        assert_eq!(cache.map.len(), 3);
        // Full: the one expiring first (+2) goes.
        cache.put("+5".into(), entry("e"), t0 + Duration::from_secs(4));
        assert_eq!(cache.map.len(), 3);
        assert_eq!(cache.get("+2", t0 + Duration::from_secs(4)), None);
        assert!(cache.get("+5", t0 + Duration::from_secs(4)).is_some());
        // Full of expired entries: all of them go.
        cache.put("+6".into(), None, t0 + Duration::from_secs(100));
        assert_eq!(cache.map.len(), 1);
        // Replacing a key does not evict.
        cache.put("+6".into(), entry("f"), t0 + Duration::from_secs(101));
        assert_eq!(cache.map.len(), 1);
    }

    #[test]
    fn cache_off() {
        let mut cache = Cache {
            ttl: Duration::ZERO,
            capacity: 10,
            map: HashMap::new(),
        };
        cache.put("+1".into(), entry("a"), Instant::now());
        assert_eq!(cache.get("+1", Instant::now()), None);
    }

    #[test]
    fn ca_file_errors_are_clear() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = load_ca(&missing).unwrap_err();
        assert!(
            err.starts_with("directory.ca_file ") && err.contains("cannot read"),
            "{err}"
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "just text\n").unwrap();
        let err = load_ca(&empty).unwrap_err();
        assert!(err.contains("no certificate in the file"), "{err}");
    }

    #[test]
    fn describe_names_the_code() {
        let result = LdapResult {
            rc: 49,
            matched: String::new(),
            text: String::new(),
            refs: vec![],
            ctrls: vec![],
        };
        assert_eq!(describe(&result), "rc=49 (invalidCredentials)");
    }
}
