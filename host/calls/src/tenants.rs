//! Tenants at run time: the configuration file is the bootstrap, changes
//! made through the admin API are stored and win over it.
//!
//! The table is an [`ArcSwap`] of an immutable map: a call takes its
//! tenant's [`Arc<Tenant>`] once, at INVITE, and keeps it to the end, so a
//! change (a new dial plan, a plugin swapped to another version) applies to
//! calls that start after it and never to calls in progress. Writers are
//! serialised and persist before they publish, so what a caller sees is
//! always what a restart would load.
//!
//! Store documents: kind `tenant` (the JSON [`TenantDoc`]) for every tenant
//! created or changed at run time, kind `tenant-deleted` (a tombstone) for a
//! tenant deleted at run time. At start, a stored document wins; a tenant
//! from the file is used when the store has neither a document nor a
//! tombstone for its domain.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use plugboard_plugins::{Capability, Catalog, Installed};
use plugboard_store::Store;
use plugboard_tenants::{DialTarget, Tenant, TenantDoc, TenantPlugin};

const DOC: &str = "tenant";
const TOMBSTONE: &str = "tenant-deleted";

type Map = BTreeMap<String, Arc<Tenant>>;

/// The tenants of this host (see the module docs).
pub struct TenantTable {
    map: ArcSwap<Map>,
    write: tokio::sync::Mutex<()>,
}

impl TenantTable {
    /// Loads the stored tenants and the file's tenants the store does not override.
    pub async fn load(store: &dyn Store, from_file: &[Tenant]) -> anyhow::Result<TenantTable> {
        let mut map = Map::new();
        for (domain, bytes) in store.doc_list(DOC).await? {
            let doc: TenantDoc = match serde_json::from_slice(&bytes) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(tenant = %domain, "stored tenant unreadable, skipped: {e}");
                    continue;
                }
            };
            match doc.into_tenant() {
                Ok(t) => {
                    map.insert(domain, Arc::new(t));
                }
                Err(e) => tracing::error!(tenant = %domain, "stored tenant invalid, skipped: {e}"),
            }
        }
        let deleted: Vec<String> = store
            .doc_list(TOMBSTONE)
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        for t in from_file {
            if !map.contains_key(&t.domain) && !deleted.contains(&t.domain) {
                map.insert(t.domain.clone(), Arc::new(t.clone()));
            }
        }
        Ok(TenantTable {
            map: ArcSwap::from_pointee(map),
            write: tokio::sync::Mutex::new(()),
        })
    }

    /// The tenant for `domain` (case-insensitive).
    pub fn get(&self, domain: &str) -> Option<Arc<Tenant>> {
        self.map.load().get(&domain.to_ascii_lowercase()).cloned()
    }

    /// Every tenant, by domain.
    pub fn all(&self) -> Vec<Arc<Tenant>> {
        self.map.load().values().cloned().collect()
    }

    /// Changes one tenant: `f` gets the current tenant (if any) and returns
    /// the new one (`None` deletes it), or an error that leaves everything as
    /// it was. The change is stored durably before it becomes visible.
    pub async fn update<E>(
        &self,
        store: &dyn Store,
        domain: &str,
        f: impl FnOnce(Option<&Tenant>) -> Result<Option<Tenant>, E>,
    ) -> Result<Option<Arc<Tenant>>, E>
    where
        E: From<anyhow::Error>,
    {
        let domain = domain.to_ascii_lowercase();
        let _guard = self.write.lock().await;
        let current = self.get(&domain);
        let next = f(current.as_deref())?;
        match &next {
            Some(t) => {
                let bytes = serde_json::to_vec(&TenantDoc::from(t)).map_err(anyhow::Error::from)?;
                store
                    .doc_put(DOC, &domain, &bytes)
                    .await
                    .map_err(anyhow::Error::from)?;
                store
                    .doc_delete(TOMBSTONE, &domain)
                    .await
                    .map_err(anyhow::Error::from)?;
            }
            None => {
                store
                    .doc_put(TOMBSTONE, &domain, b"{}")
                    .await
                    .map_err(anyhow::Error::from)?;
                store
                    .doc_delete(DOC, &domain)
                    .await
                    .map_err(anyhow::Error::from)?;
            }
        }
        let next = next.map(Arc::new);
        let mut map: Map = (**self.map.load()).clone();
        match &next {
            Some(t) => map.insert(domain, t.clone()),
            None => map.remove(&domain),
        };
        self.map.store(Arc::new(map));
        Ok(next)
    }
}

/// What a call needs to run a tenant's plugin: the version and its config.
pub struct Resolved {
    /// The installed version the tenant uses now.
    pub installed: Arc<Installed>,
    /// Checked configuration with defaults.
    pub config: Vec<(String, String)>,
}

/// Resolves plugin `name` for `tenant` with a dial plan entry's `config`.
/// Errors say what the operator must fix.
pub fn resolve(
    catalog: &Catalog,
    tenant: &Tenant,
    name: &str,
    entry_config: &[(String, String)],
) -> Result<Resolved, String> {
    let binding = tenant
        .plugin(name)
        .ok_or_else(|| format!("plugin {name} is not enabled for tenant {}", tenant.domain))?;
    let installed = installed_for(catalog, binding)?;
    check_grants(&installed, binding, &tenant.domain)?;
    let config = installed
        .manifest
        .resolve_config(&[&binding.config, entry_config])
        .map_err(|e| format!("tenant {}: plugin {name}: {e}", tenant.domain))?;
    Ok(Resolved { installed, config })
}

/// The installed version a binding names (its pin, else the newest).
pub fn installed_for(catalog: &Catalog, binding: &TenantPlugin) -> Result<Arc<Installed>, String> {
    let name = &binding.name;
    let version =
        match &binding.version {
            Some(v) => Some(semver::Version::parse(v).map_err(|e| {
                format!("plugin {name}: version {v:?} is not a semver version ({e})")
            })?),
            None => None,
        };
    catalog
        .get(name, version.as_ref())
        .ok_or_else(|| match &version {
            Some(v) => format!("plugin {name} {v} is not installed"),
            None => format!("plugin {name} is not installed"),
        })
}

fn check_grants(installed: &Installed, binding: &TenantPlugin, domain: &str) -> Result<(), String> {
    let missing = installed
        .manifest
        .missing_grants(binding.grants.iter().map(String::as_str));
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = missing.iter().map(|c: &Capability| c.name()).collect();
    Err(format!(
        "plugin {} {} needs capability {} which is not granted for tenant {domain}",
        binding.name,
        installed.manifest.version,
        names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// Checks every plugin binding and plugin dial plan entry of `tenant`
/// against the catalog: installed, granted, configured within the schema.
pub fn validate(catalog: &Catalog, tenant: &Tenant) -> Result<(), String> {
    for binding in &tenant.plugins {
        let installed = installed_for(catalog, binding)?;
        check_grants(&installed, binding, &tenant.domain)?;
        let entries: Vec<&[(String, String)]> = tenant
            .dialplan
            .iter()
            .filter_map(|e| match &e.target {
                DialTarget::Plugin { name, config } if *name == binding.name => {
                    Some(config.as_slice())
                }
                _ => None,
            })
            .collect();
        let ctx = |e: String| format!("tenant {}: plugin {}: {e}", tenant.domain, binding.name);
        if entries.is_empty() {
            installed
                .manifest
                .resolve_config_partial(&binding.config)
                .map_err(ctx)?;
        }
        for entry in entries {
            installed
                .manifest
                .resolve_config(&[&binding.config, entry])
                .map_err(ctx)?;
        }
    }
    Ok(())
}

/// The tenant's plugin limits for a run (the runtime caps them at its own).
pub fn run_limits(tenant: &Tenant) -> plugboard_plugins::RunLimits {
    plugboard_plugins::RunLimits {
        memory_bytes: tenant
            .limits
            .plugin_memory_mb
            .map(|mb| mb as usize * 1024 * 1024),
        cpu_time: tenant
            .limits
            .plugin_cpu_ms
            .map(|ms| std::time::Duration::from_millis(ms as u64)),
    }
}
