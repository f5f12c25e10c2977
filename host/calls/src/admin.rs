//! The host side of the admin API: [`plugboard_admin::AdminBackend`] over
//! the tenant table, the plugin catalog, the registrar, live calls and CDRs.
//!
//! Every tenant change goes through [`TenantTable::update`] (serialised,
//! stored before it is visible) after [`tenants::validate`] has checked it
//! against the catalog, so a change that names a missing plugin version, an
//! ungranted capability or a bad config value is refused whole.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use plugboard_admin::{
    AdminBackend, ApiError, CdrQuery, Metric, MetricKind, PluginUpload, Principal, Sample,
};
use plugboard_plugins::{CatalogError, Installed};
use plugboard_tenants::{
    AdminConfig, DialDoc, DialTarget, Tenant, TenantDoc, TenantPlugin, UserDoc, flatten_json,
};
use serde_json::{Value, json};

use crate::server::Core;
use crate::tenants;

/// The admin backend of a running host.
pub struct Backend {
    core: Arc<Core>,
    tokens: AdminConfig,
    started: Instant,
}

impl Backend {
    pub fn new(core: Arc<Core>, tokens: AdminConfig) -> Backend {
        Backend {
            core,
            tokens,
            started: Instant::now(),
        }
    }

    fn tenant(&self, domain: &str) -> Result<Arc<Tenant>, ApiError> {
        self.core
            .tenants
            .get(domain)
            .ok_or_else(|| ApiError::not_found(format!("no tenant {domain}")))
    }

    /// Applies `f` to tenant `domain` (which must exist), validates and stores the result.
    async fn change(
        &self,
        domain: &str,
        f: impl FnOnce(&mut Tenant) -> Result<(), ApiError>,
    ) -> Result<Arc<Tenant>, ApiError> {
        let catalog = &self.core.catalog;
        let t = self
            .core
            .tenants
            .update(
                self.core.store.as_ref(),
                domain,
                |cur| -> Result<_, ApiErrorWrap> {
                    let mut t = cur
                        .cloned()
                        .ok_or_else(|| ApiError::not_found(format!("no tenant {domain}")))?;
                    let before = cur.cloned();
                    f(&mut t)?;
                    tenants::validate(catalog, &t).map_err(ApiError::bad_request)?;
                    self.check_licence(before.as_ref(), &t)?;
                    Ok(Some(t))
                },
            )
            .await
            .api()?;
        t.ok_or_else(|| ApiError::internal("tenant vanished"))
    }
}

/// Plugin `name` of tenant `t`, which must be enabled there.
fn enabled_mut<'a>(t: &'a mut Tenant, name: &str) -> Result<&'a mut TenantPlugin, ApiError> {
    t.plugins
        .iter_mut()
        .find(|p| p.name == name)
        .ok_or_else(|| ApiError::not_found(format!("plugin {name} is not enabled")))
}

impl Backend {
    /// What a change from `before` to `after` needs from the licence: room
    /// for a new tenant and for new users (mailboxes) within the capacity,
    /// and an entitlement for every newly enabled licensed plugin. Nothing
    /// that exists is ever refused or hidden.
    fn check_licence(&self, before: Option<&Tenant>, after: &Tenant) -> Result<(), ApiError> {
        use plugboard_license::Item;
        let licensing = self.core.licences.current();
        let refused = |e: String| ApiError::new(403, "licence", e);
        let all = self.core.tenants.all();
        if before.is_none() {
            let others = all.iter().filter(|t| t.domain != after.domain).count() as u32;
            licensing
                .admit(Item::Tenants, others)
                .map_err(|r| refused(r.to_string()))?;
        }
        let old_users = before.map_or(0, |t| t.users.len());
        if after.users.len() > old_users {
            let elsewhere: usize = all
                .iter()
                .filter(|t| t.domain != after.domain)
                .map(|t| t.users.len())
                .sum();
            let total = (elsewhere + after.users.len()) as u32;
            licensing
                .admit(Item::Mailboxes, total - 1)
                .map_err(|r| refused(r.to_string()))?;
        }
        for p in &after.plugins {
            let was = before
                .and_then(|b| b.plugin(&p.name))
                .and_then(|b| tenants::installed_for(&self.core.catalog, b).ok());
            let Ok(now) = tenants::installed_for(&self.core.catalog, p) else {
                continue;
            };
            if was.is_some_and(|w| w.manifest.version == now.manifest.version) {
                continue;
            }
            self.core
                .licences
                .entitled(&now, &after.domain)
                .map_err(refused)?;
        }
        Ok(())
    }

    /// The JSON view of plugin `name` of `t` after a change.
    fn plugin_view(&self, t: &Tenant, name: &str) -> Result<Value, ApiError> {
        let p = t
            .plugin(name)
            .ok_or_else(|| ApiError::internal("plugin vanished"))?;
        Ok(tenant_plugin_json(&self.core, t, p))
    }
}

impl From<anyhow::Error> for ApiErrorWrap {
    fn from(e: anyhow::Error) -> Self {
        ApiErrorWrap(ApiError::internal(format!("storage: {e:#}")))
    }
}

/// [`ApiError`] with a conversion from storage errors (orphan rule).
pub struct ApiErrorWrap(ApiError);

trait IntoApi<T> {
    fn api(self) -> Result<T, ApiError>;
}

impl<T> IntoApi<T> for Result<T, ApiErrorWrap> {
    fn api(self) -> Result<T, ApiError> {
        self.map_err(|e| e.0)
    }
}

impl From<ApiError> for ApiErrorWrap {
    fn from(e: ApiError) -> Self {
        ApiErrorWrap(e)
    }
}

fn catalog_err(e: CatalogError) -> ApiError {
    match e {
        CatalogError::Invalid(m) => ApiError::bad_request(m),
        CatalogError::Conflict(m) => ApiError::conflict(m),
        CatalogError::NotFound(m) => ApiError::not_found(m),
        CatalogError::Io(m) => ApiError::internal(m),
    }
}

fn override_err(e: crate::prompts::OverrideError) -> ApiError {
    use crate::prompts::OverrideError;
    match e {
        OverrideError::Invalid(m) => ApiError::bad_request(m),
        OverrideError::TooLarge(m) => ApiError::new(413, "payload_too_large", m),
        OverrideError::NotFound(m) => ApiError::not_found(m),
        OverrideError::Io(m) => {
            tracing::warn!(error = %m, "prompt override storage");
            ApiError::internal("could not store the prompt file (see the server log)")
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: Value) -> Result<T, ApiError> {
    serde_json::from_value(body).map_err(|e| ApiError::bad_request(e.to_string()))
}

fn doc(t: &Tenant) -> Value {
    serde_json::to_value(TenantDoc::from(t)).unwrap_or(Value::Null)
}

fn user_json(u: &plugboard_tenants::User) -> Value {
    json!({"extension": u.extension, "display_name": u.display_name})
}

/// The licence in Prometheus terms: state (one sample set to 1), days left,
/// capacity in force per item (-1 = unlimited) and calls counted now.
fn licence_metrics(l: &crate::licensing::Licences) -> Vec<Metric> {
    use plugboard_license::Item;
    let status = l.current().status();
    let state = serde_json::to_value(&status.state)
        .ok()
        .and_then(|v| v["kind"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let gauge = |name: &str, help: &str, samples| Metric {
        name: name.into(),
        help: help.into(),
        kind: MetricKind::Gauge,
        samples,
    };
    let limit = |i: Item| status.effective.get(i).map_or(-1.0, f64::from);
    vec![
        gauge(
            "plugboard_licence_state",
            "Licence state (1 for the current one)",
            vec![Sample::new(&[("state", &state)], 1.0)],
        ),
        gauge(
            "plugboard_licence_days_left",
            "Whole days until the site licence expires (absent without one)",
            status
                .days_left
                .map(|d| vec![Sample::new(&[], d as f64)])
                .unwrap_or_default(),
        ),
        gauge(
            "plugboard_licence_capacity",
            "Capacity in force per item (-1 = unlimited)",
            [Item::Calls, Item::Tenants, Item::Mailboxes]
                .into_iter()
                .map(|i| {
                    let name = serde_json::to_value(i)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    Sample::new(&[("item", &name)], limit(i))
                })
                .collect(),
        ),
        gauge(
            "plugboard_licence_calls_in_use",
            "Calls counted against the licensed capacity now",
            vec![Sample::new(&[], f64::from(l.calls_in_use()))],
        ),
    ]
}

fn key_json(k: &plugboard_registry::keys::PublicKey) -> Value {
    json!({"signer": k.signer, "key_id": k.id().0, "public": k.to_base64()})
}

/// Licence file names: letters, digits, '-', '_' and '.', not starting with '.'.
fn check_licence_name(name: &str) -> Result<(), ApiError> {
    if plugboard_registry::keys::is_label(name) && !name.starts_with('.') {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "licence name {name:?}: use 1-64 letters, digits, '-', '_' or '.'"
        )))
    }
}

fn installed_json(i: &Installed) -> Value {
    let m = &i.manifest;
    json!({
        "name": m.name,
        "version": m.version.to_string(),
        "contract": format!("{}.{}", m.contract.0, m.contract.1),
        "roles": m.roles.iter().map(|r| r.name()).collect::<Vec<_>>(),
        "capabilities": m.capabilities.iter().map(|c| c.name()).collect::<Vec<_>>(),
        "description": m.description,
        "licence_feature": m.licence_feature,
        "sha256": i.sha256,
        "signer": i.signer.as_ref().map(|s| json!({"name": s.name, "key_id": s.key_id})),
        "size_bytes": i.size,
        "active_calls": i.active_calls(),
        "location": i.location.display().to_string(),
    })
}

fn tenant_plugin_json(core: &Core, t: &Tenant, p: &TenantPlugin) -> Value {
    let resolved = tenants::installed_for(&core.catalog, p).ok();
    let resolved_role = resolved.as_ref().map(|i| i.plugin.role().name());
    json!({
        "name": p.name,
        "version": p.version,
        "resolved_version": resolved.map(|i| i.manifest.version.to_string()),
        "previous_version": p.previous_version,
        "config": p.config.iter().cloned().collect::<BTreeMap<_, _>>(),
        "grants": p.grants,
        "http_hosts": p.http_hosts,
        "role": resolved_role,
        "disabled_for_s": core.faults.check(&t.domain, &p.name, Instant::now()).err().map(|d| d.as_secs()),
    })
}

/// What only the operator may change in a tenant: its limits, and the
/// capability grants and HTTP allow-lists of its plugins. A tenant admin
/// sending a whole tenant document must leave them as they are.
fn operator_fields_unchanged(cur: &Tenant, new: &Tenant) -> Result<(), String> {
    if cur.limits != new.limits {
        return Err("only the operator changes a tenant's limits".into());
    }
    // Trunks are trusted by address; mail and directory servers are
    // connections the host makes (and files it reads: ca_file).
    if cur.trunks != new.trunks || cur.mail != new.mail || cur.directory != new.directory {
        return Err(
            "only the operator changes a tenant's trunks, mail server and directory".into(),
        );
    }
    for p in &new.plugins {
        let (grants, hosts) = cur
            .plugin(&p.name)
            .map(|c| (c.grants.as_slice(), c.http_hosts.as_slice()))
            .unwrap_or((&[], &[]));
        if p.grants != grants || p.http_hosts != hosts {
            return Err(format!(
                "only the operator grants capabilities and HTTP hosts (plugin {})",
                p.name
            ));
        }
    }
    Ok(())
}

fn eq_token(a: &str, b: &str) -> bool {
    // Length leaks, contents do not.
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[async_trait]
impl AdminBackend for Backend {
    fn authenticate(&self, token: &str) -> Option<Principal> {
        if self
            .tokens
            .operator_token
            .as_deref()
            .is_some_and(|t| eq_token(t, token))
        {
            return Some(Principal::Operator);
        }
        self.tokens
            .tenant_tokens
            .iter()
            .find(|(_, t)| eq_token(t, token))
            .map(|(d, _)| Principal::TenantAdmin { domain: d.clone() })
    }

    async fn health(&self) -> Result<Value, ApiError> {
        Ok(json!({
            "status": "ok",
            "uptime_s": self.started.elapsed().as_secs(),
            "tenants": self.core.tenants.all().len(),
            "calls": self.core.live.lock().expect("live lock").len(),
            "plugins_installed": self.core.catalog.list().len(),
        }))
    }

    async fn metrics(&self) -> Result<Vec<Metric>, ApiError> {
        let per = self
            .core
            .stats
            .per_tenant
            .lock()
            .expect("stats lock")
            .clone();
        let live = self.core.live.lock().expect("live lock").clone();
        let regs = self.core.registrar.users_per_tenant();
        let mut domains: Vec<String> = self
            .core
            .tenants
            .all()
            .iter()
            .map(|t| t.domain.clone())
            .collect();
        domains.sort();
        let family = |name: &str, help: &str, kind, f: &dyn Fn(&str) -> f64| Metric {
            name: name.into(),
            help: help.into(),
            kind,
            samples: domains
                .iter()
                .map(|d| Sample::new(&[("tenant", d)], f(d)))
                .collect(),
        };
        let counter = |d: &str, g: fn(&crate::server::TenantStats) -> u64| {
            per.get(d).map(g).unwrap_or(0) as f64
        };
        let rt = self.core.catalog.runtime().stats();
        let mut out = vec![
            family(
                "plugboard_calls_total",
                "Calls started",
                MetricKind::Counter,
                &|d| counter(d, |s| s.calls),
            ),
            family(
                "plugboard_calls_active",
                "Calls in progress",
                MetricKind::Gauge,
                &|d| live.values().filter(|c| c.tenant == d).count() as f64,
            ),
            family(
                "plugboard_registrations_total",
                "REGISTER requests accepted",
                MetricKind::Counter,
                &|d| counter(d, |s| s.registrations),
            ),
            family(
                "plugboard_registered_users",
                "Users with a live registration",
                MetricKind::Gauge,
                &|d| regs.get(d).copied().unwrap_or(0) as f64,
            ),
            family(
                "plugboard_plugin_instantiations_total",
                "Plugin instances started (one per plugin call)",
                MetricKind::Counter,
                &|d| counter(d, |s| s.plugin_runs),
            ),
            family(
                "plugboard_plugin_faults_total",
                "Plugin faults (trap, CPU, memory, instantiation)",
                MetricKind::Counter,
                &|d| counter(d, |s| s.plugin_faults),
            ),
        ];
        out.push(Metric {
            name: "plugboard_plugin_cache_hits_total".into(),
            help: "Compiled components loaded from the disk cache".into(),
            kind: MetricKind::Counter,
            samples: vec![Sample::new(&[], rt.cache_hits as f64)],
        });
        out.push(Metric {
            name: "plugboard_plugin_version_active_calls".into(),
            help: "Calls running each installed plugin version".into(),
            kind: MetricKind::Gauge,
            samples: self
                .core
                .catalog
                .list()
                .iter()
                .map(|i| {
                    let v = i.manifest.version.to_string();
                    Sample::new(
                        &[("plugin", &i.manifest.name), ("version", &v)],
                        i.active_calls() as f64,
                    )
                })
                .collect(),
        });
        out.extend(licence_metrics(&self.core.licences));
        Ok(out)
    }

    async fn list_tenants(&self) -> Result<Value, ApiError> {
        Ok(Value::Array(
            self.core
                .tenants
                .all()
                .iter()
                .map(|t| {
                    json!({"domain": t.domain, "language": t.language, "users": t.users.len(),
                           "dialplan": t.dialplan.len(), "plugins": t.plugins.len()})
                })
                .collect(),
        ))
    }

    async fn create_tenant(&self, body: Value) -> Result<Value, ApiError> {
        let d: TenantDoc = parse(body)?;
        let t = d.into_tenant().map_err(ApiError::bad_request)?;
        tenants::validate(&self.core.catalog, &t).map_err(ApiError::bad_request)?;
        let domain = t.domain.clone();
        let out = self
            .core
            .tenants
            .update(self.core.store.as_ref(), &domain, |cur| {
                if cur.is_some() {
                    return Err(ApiErrorWrap(ApiError::conflict(format!(
                        "tenant {domain} exists"
                    ))));
                }
                self.check_licence(None, &t)?;
                Ok(Some(t))
            })
            .await
            .api()?;
        Ok(out.map(|t| doc(&t)).unwrap_or(Value::Null))
    }

    async fn get_tenant(&self, domain: &str) -> Result<Value, ApiError> {
        let t = self.tenant(domain)?;
        Ok(doc(&t))
    }

    async fn put_tenant(
        &self,
        domain: &str,
        body: Value,
        may_create: bool,
    ) -> Result<Value, ApiError> {
        let mut body = body;
        if let Value::Object(m) = &mut body {
            m.entry("domain")
                .or_insert_with(|| Value::String(domain.to_string()));
        }
        let d: TenantDoc = parse(body)?;
        let t = d.into_tenant().map_err(ApiError::bad_request)?;
        if t.domain != domain {
            return Err(ApiError::bad_request(
                "domain in the body differs from the path",
            ));
        }
        tenants::validate(&self.core.catalog, &t).map_err(ApiError::bad_request)?;
        let out = self
            .core
            .tenants
            .update(self.core.store.as_ref(), domain, |cur| {
                // `may_create` is true for the operator only.
                let Some(cur) = cur else {
                    if !may_create {
                        return Err(ApiErrorWrap(ApiError::forbidden(
                            "only the operator creates tenants",
                        )));
                    }
                    self.check_licence(None, &t)?;
                    return Ok(Some(t));
                };
                if !may_create {
                    operator_fields_unchanged(cur, &t).map_err(ApiError::forbidden)?;
                }
                self.check_licence(Some(cur), &t)?;
                Ok(Some(t))
            })
            .await
            .api()?;
        Ok(out.map(|t| doc(&t)).unwrap_or(Value::Null))
    }

    async fn delete_tenant(&self, domain: &str) -> Result<Value, ApiError> {
        self.core
            .tenants
            .update(self.core.store.as_ref(), domain, |cur| {
                if cur.is_none() {
                    return Err(ApiErrorWrap(ApiError::not_found(format!(
                        "no tenant {domain}"
                    ))));
                }
                Ok(None)
            })
            .await
            .api()?;
        Ok(Value::Null)
    }

    async fn list_users(&self, domain: &str) -> Result<Value, ApiError> {
        let t = self.tenant(domain)?;
        Ok(Value::Array(t.users.iter().map(user_json).collect()))
    }

    async fn create_user(&self, domain: &str, body: Value) -> Result<Value, ApiError> {
        let u: UserDoc = parse(body)?;
        u.check().map_err(ApiError::bad_request)?;
        let t = self
            .change(domain, |t| {
                if t.user(&u.extension).is_some() {
                    return Err(ApiError::conflict(format!("user {} exists", u.extension)));
                }
                t.users.push(u.clone().into_user());
                Ok(())
            })
            .await?;
        Ok(t.user(&u.extension).map(user_json).unwrap_or(Value::Null))
    }

    async fn get_user(&self, domain: &str, ext: &str) -> Result<Value, ApiError> {
        let t = self.tenant(domain)?;
        t.user(ext)
            .map(user_json)
            .ok_or_else(|| ApiError::not_found(format!("no user {ext}")))
    }

    async fn put_user(&self, domain: &str, ext: &str, body: Value) -> Result<Value, ApiError> {
        let mut body = body;
        if let Value::Object(m) = &mut body {
            m.entry("extension")
                .or_insert_with(|| Value::String(ext.to_string()));
        }
        let u: UserDoc = parse(body)?;
        if u.extension != ext {
            return Err(ApiError::bad_request(
                "extension in the body differs from the path",
            ));
        }
        u.check().map_err(ApiError::bad_request)?;
        let t = self
            .change(domain, |t| {
                t.users.retain(|x| x.extension != ext);
                t.users.push(u.clone().into_user());
                Ok(())
            })
            .await?;
        Ok(t.user(ext).map(user_json).unwrap_or(Value::Null))
    }

    async fn delete_user(&self, domain: &str, ext: &str) -> Result<Value, ApiError> {
        self.change(domain, |t| {
            if t.user(ext).is_none() {
                return Err(ApiError::not_found(format!("no user {ext}")));
            }
            if t.dialplan
                .iter()
                .any(|e| e.target == DialTarget::User(ext.to_string()))
            {
                return Err(ApiError::conflict(format!(
                    "user {ext} is a dial plan target; change the dial plan first"
                )));
            }
            t.users.retain(|x| x.extension != ext);
            Ok(())
        })
        .await?;
        Ok(Value::Null)
    }

    async fn get_dialplan(&self, domain: &str) -> Result<Value, ApiError> {
        let t = self.tenant(domain)?;
        Ok(doc(&t)["dialplan"].clone())
    }

    async fn put_dialplan_entry(
        &self,
        domain: &str,
        number: &str,
        body: Value,
    ) -> Result<Value, ApiError> {
        let mut body = body;
        if let Value::Object(m) = &mut body {
            m.entry("number")
                .or_insert_with(|| Value::String(number.to_string()));
        }
        let d: DialDoc = parse(body)?;
        if d.number != number {
            return Err(ApiError::bad_request(
                "number in the body differs from the path",
            ));
        }
        let entry = d.into_entry().map_err(ApiError::bad_request)?;
        self.change(domain, |t| {
            match &entry.target {
                DialTarget::User(u) if t.user(u).is_none() => {
                    return Err(ApiError::bad_request(format!(
                        "unknown user {u:?} in this tenant"
                    )));
                }
                DialTarget::Plugin { name, .. } if t.plugin(name).is_none() => {
                    return Err(ApiError::bad_request(format!(
                        "plugin {name} is not enabled for this tenant; enable it first"
                    )));
                }
                _ => {}
            }
            t.dialplan.retain(|e| e.number != number);
            t.dialplan.push(entry.clone());
            t.dialplan.sort_by(|a, b| a.number.cmp(&b.number));
            Ok(())
        })
        .await?;
        self.get_dialplan(domain).await
    }

    async fn delete_dialplan_entry(&self, domain: &str, number: &str) -> Result<Value, ApiError> {
        self.change(domain, |t| {
            let before = t.dialplan.len();
            t.dialplan.retain(|e| e.number != number);
            if t.dialplan.len() == before {
                return Err(ApiError::not_found(format!("no dial plan entry {number}")));
            }
            Ok(())
        })
        .await?;
        Ok(Value::Null)
    }

    async fn list_plugins(&self) -> Result<Value, ApiError> {
        Ok(Value::Array(
            self.core
                .catalog
                .list()
                .iter()
                .map(|i| installed_json(i))
                .collect(),
        ))
    }

    async fn install_plugin(&self, upload: PluginUpload) -> Result<Value, ApiError> {
        let core = self.core.clone();
        let mut pkg = plugboard_registry::package::Package::new(upload.manifest, upload.component);
        if let Some(text) = &upload.signature {
            pkg.signature = Some(
                plugboard_registry::package::Signature::parse(text)
                    .map_err(|e| ApiError::bad_request(format!("\"signature\": {e}")))?,
            );
        }
        let provenance = {
            let trust = core.trust.read().expect("trust lock");
            crate::licensing::admit_package(
                &trust,
                core.config.trust.allow_unsigned,
                &pkg,
                "admin API",
            )
            .map_err(|e| ApiError::new(403, "untrusted_package", e))?
        };
        // Compiling a component takes from milliseconds (Rust) to seconds (Python).
        let installed = tokio::task::spawn_blocking(move || {
            core.catalog
                .install(&pkg.manifest, &pkg.component, provenance.as_ref())
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(catalog_err)?;
        Ok(installed_json(&installed))
    }

    async fn uninstall_plugin(&self, name: &str, version: &str) -> Result<Value, ApiError> {
        let v = semver::Version::parse(version)
            .map_err(|e| ApiError::bad_request(format!("version {version:?}: {e}")))?;
        // A version still selected by a tenant cannot go: swap those tenants first.
        let users: Vec<String> = self
            .core
            .tenants
            .all()
            .iter()
            .filter(|t| {
                t.plugins.iter().any(|p| {
                    p.name == name
                        && tenants::installed_for(&self.core.catalog, p)
                            .is_ok_and(|i| i.manifest.version == v)
                })
            })
            .map(|t| t.domain.clone())
            .collect();
        if !users.is_empty() {
            return Err(ApiError::conflict(format!(
                "{name} {version} is in use by tenant(s) {}; swap or disable it there first",
                users.join(", ")
            )));
        }
        let removed = self.core.catalog.uninstall(name, &v).map_err(catalog_err)?;
        Ok(json!({"name": name, "version": version, "calls_still_running": removed.active_calls()}))
    }

    async fn list_trust(&self) -> Result<Value, ApiError> {
        let trust = self.core.trust.read().expect("trust lock");
        Ok(Value::Array(trust.list().iter().map(key_json).collect()))
    }

    async fn add_trust(&self, public_key: String) -> Result<Value, ApiError> {
        let key = plugboard_registry::keys::PublicKey::parse(&public_key)
            .map_err(|e| ApiError::bad_request(format!("\"public_key\": {e}")))?;
        let added = self
            .core
            .trust
            .write()
            .expect("trust lock")
            .add(&key)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        if added {
            tracing::info!(signer = %key.signer, key_id = %key.id(), "vendor key trusted");
        }
        // Vendor-signed licences may verify now.
        self.core.licences.reload();
        Ok(key_json(&key))
    }

    async fn remove_trust(&self, key_id: &str) -> Result<Value, ApiError> {
        let id = plugboard_registry::keys::KeyId(key_id.to_string());
        let removed = self
            .core
            .trust
            .write()
            .expect("trust lock")
            .remove(&id)
            .map_err(|e| match e {
                plugboard_registry::trust::TrustError::NotFound(_) => {
                    ApiError::not_found(format!("no trusted key {key_id}"))
                }
                e => ApiError::internal(e.to_string()),
            })?;
        tracing::info!(signer = %removed.signer, %key_id, "vendor key no longer trusted");
        self.core.licences.reload();
        Ok(key_json(&removed))
    }

    async fn licence_status(&self) -> Result<Value, ApiError> {
        let l = &self.core.licences;
        let status = l.current().status();
        let mut v = serde_json::to_value(&status).map_err(|e| ApiError::internal(e.to_string()))?;
        let tenants = self.core.tenants.all();
        v["in_use"] = json!({
            "calls": l.calls_in_use(),
            "tenants": tenants.len(),
            "mailboxes": tenants.iter().map(|t| t.users.len()).sum::<usize>(),
        });
        v["reminders"] = serde_json::to_value(l.reminders(self.core.store.as_ref()).await)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(v)
    }

    async fn put_licence(&self, name: &str, text: String) -> Result<Value, ApiError> {
        check_licence_name(name)?;
        let file = format!("{name}.toml");
        self.core
            .licences
            .check(&file, &text)
            .map_err(|e| ApiError::bad_request(format!("licence refused: {e}")))?;
        let path = self.core.licences.dir().join(&file);
        let bytes = text.into_bytes();
        tokio::task::spawn_blocking(move || {
            plugboard_registry::fsutil::write_atomic(&path, &bytes)
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(format!("cannot write the licence: {e}")))?;
        tracing::info!(%name, "licence installed");
        self.core.licences.reload();
        self.licence_status().await
    }

    async fn delete_licence(&self, name: &str) -> Result<Value, ApiError> {
        check_licence_name(name)?;
        let path = self.core.licences.dir().join(format!("{name}.toml"));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ApiError::not_found(format!("no licence {name}")));
            }
            Err(e) => return Err(ApiError::internal(format!("cannot remove {name}: {e}"))),
        }
        tracing::info!(%name, "licence removed");
        self.core.licences.reload();
        self.licence_status().await
    }

    async fn list_tenant_plugins(&self, domain: &str) -> Result<Value, ApiError> {
        let t = self.tenant(domain)?;
        Ok(Value::Array(
            t.plugins
                .iter()
                .map(|p| tenant_plugin_json(&self.core, &t, p))
                .collect(),
        ))
    }

    async fn put_tenant_plugin(
        &self,
        domain: &str,
        name: &str,
        body: Value,
    ) -> Result<Value, ApiError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Body {
            version: Option<String>,
            config: Option<BTreeMap<String, Value>>,
            /// Operator only (the handler checks): capabilities to grant.
            grants: Option<Vec<String>>,
            /// Operator only: hosts the `http` capability may reach.
            http_hosts: Option<Vec<String>>,
        }
        let b: Body = parse(body)?;
        let grants = b
            .grants
            .clone()
            .map(plugboard_tenants::normalize_grants)
            .transpose()
            .map_err(ApiError::bad_request)?;
        let hosts = b.http_hosts.clone().map(plugboard_tenants::normalize_hosts);
        if let Some(v) = &b.version {
            semver::Version::parse(v)
                .map_err(|e| ApiError::bad_request(format!("version {v:?}: {e}")))?;
        }
        let newest = self.core.catalog.get(name, None);
        if newest.is_none() {
            return Err(ApiError::bad_request(format!(
                "plugin {name} is not installed"
            )));
        }
        let t = self
            .change(domain, |t| {
                match t.plugins.iter_mut().find(|p| p.name == name) {
                    Some(p) => {
                        if let Some(v) = &b.version
                            && p.version.as_deref() != Some(v.as_str())
                        {
                            p.previous_version = p.version.clone().or_else(|| {
                                tenants::installed_for(&self.core.catalog, p)
                                    .ok()
                                    .map(|i| i.manifest.version.to_string())
                            });
                            p.version = Some(v.clone());
                        }
                        if let Some(c) = &b.config {
                            p.config = flatten_json(c);
                        }
                        if let Some(g) = &grants {
                            p.grants = g.clone();
                        }
                        if let Some(h) = &hosts {
                            p.http_hosts = h.clone();
                        }
                    }
                    None => {
                        t.plugins.push(TenantPlugin {
                            name: name.to_string(),
                            version: b.version.clone(),
                            previous_version: None,
                            config: b.config.as_ref().map(flatten_json).unwrap_or_default(),
                            grants: grants.clone().unwrap_or_default(),
                            http_hosts: hosts.clone().unwrap_or_default(),
                        });
                        t.plugins.sort_by(|a, b| a.name.cmp(&b.name));
                    }
                }
                Ok(())
            })
            .await?;
        self.plugin_view(&t, name)
    }

    async fn rollback_tenant_plugin(&self, domain: &str, name: &str) -> Result<Value, ApiError> {
        let t = self
            .change(domain, |t| {
                let p = enabled_mut(t, name)?;
                let prev = p.previous_version.take().ok_or_else(|| {
                    ApiError::conflict(format!("plugin {name} has no previous version"))
                })?;
                p.previous_version = p.version.replace(prev);
                Ok(())
            })
            .await?;
        self.plugin_view(&t, name)
    }

    async fn delete_tenant_plugin(&self, domain: &str, name: &str) -> Result<Value, ApiError> {
        self.change(domain, |t| {
            if t.plugin(name).is_none() {
                return Err(ApiError::not_found(format!("plugin {name} is not enabled")));
            }
            if let Some(e) = t
                .dialplan
                .iter()
                .find(|e| matches!(&e.target, DialTarget::Plugin { name: n, .. } if n == name))
            {
                return Err(ApiError::conflict(format!(
                    "dial plan entry {} uses plugin {name}; change the dial plan first",
                    e.number
                )));
            }
            t.plugins.retain(|p| p.name != name);
            Ok(())
        })
        .await?;
        Ok(Value::Null)
    }

    async fn put_tenant_plugin_grants(
        &self,
        domain: &str,
        name: &str,
        body: Value,
    ) -> Result<Value, ApiError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Body {
            grants: Vec<String>,
            /// Hosts the `http` capability may reach (kept when absent).
            http_hosts: Option<Vec<String>>,
        }
        let b: Body = parse(body)?;
        let grants =
            plugboard_tenants::normalize_grants(b.grants).map_err(ApiError::bad_request)?;
        let hosts = b.http_hosts.map(plugboard_tenants::normalize_hosts);
        let t = self
            .change(domain, |t| {
                let p = enabled_mut(t, name)?;
                p.grants = grants;
                if let Some(hosts) = hosts {
                    p.http_hosts = hosts;
                }
                Ok(())
            })
            .await?;
        self.plugin_view(&t, name)
    }

    async fn list_prompts(&self, domain: &str) -> Result<Value, ApiError> {
        self.tenant(domain)?;
        let list = self
            .core
            .prompts
            .list_overrides(domain)
            .await
            .map_err(override_err)?;
        serde_json::to_value(list).map_err(|e| ApiError::internal(e.to_string()))
    }

    async fn put_prompt(
        &self,
        domain: &str,
        language: &str,
        name: &str,
        wav: Vec<u8>,
    ) -> Result<Value, ApiError> {
        self.tenant(domain)?;
        let stored = self
            .core
            .prompts
            .put_override(domain, language, name, wav)
            .await
            .map_err(override_err)?;
        tracing::info!(
            tenant = %domain,
            language = %language,
            prompt = %name,
            size = stored.size_bytes,
            "prompt override stored"
        );
        serde_json::to_value(stored).map_err(|e| ApiError::internal(e.to_string()))
    }

    async fn delete_prompt(
        &self,
        domain: &str,
        language: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.tenant(domain)?;
        self.core
            .prompts
            .delete_override(domain, language, name)
            .await
            .map_err(override_err)?;
        tracing::info!(tenant = %domain, language = %language, prompt = %name, "prompt override removed");
        Ok(Value::Null)
    }

    async fn list_calls(&self, domain: Option<&str>) -> Result<Value, ApiError> {
        if let Some(d) = domain {
            self.tenant(d)?;
        }
        let live = self.core.live.lock().expect("live lock");
        let mut calls: Vec<_> = live
            .values()
            .filter(|c| domain.is_none_or(|d| c.tenant == d))
            .cloned()
            .collect();
        calls.sort_by_key(|c| c.start_ms);
        serde_json::to_value(calls).map_err(|e| ApiError::internal(e.to_string()))
    }

    async fn list_registrations(&self, domain: &str) -> Result<Value, ApiError> {
        self.tenant(domain)?;
        Ok(Value::Array(
            self.core
                .registrar
                .tenant_bindings(domain)
                .into_iter()
                .map(|(user, b)| {
                    json!({"user": user, "contact": b.contact, "expires_at_unix": b.expires_at_unix,
                           "source": b.source, "user_agent": b.user_agent})
                })
                .collect(),
        ))
    }

    async fn list_cdrs(&self, domain: Option<&str>, q: CdrQuery) -> Result<Value, ApiError> {
        let path = self.core.config.server.data_dir.join("cdr.jsonl");
        let domain = domain.map(str::to_string);
        let limit = q.limit.unwrap_or(10_000).min(100_000) as usize;
        let since = q.since_ms.unwrap_or(0);
        let rows = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<Value>> {
            let f = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            let mut out = std::collections::VecDeque::new();
            for line in std::io::BufReader::new(f).lines() {
                let Ok(v) = serde_json::from_str::<Value>(&line?) else {
                    continue;
                };
                if domain.as_deref().is_some_and(|d| v["tenant"] != d) {
                    continue;
                }
                if v["start_ms"].as_u64().unwrap_or(0) < since {
                    continue;
                }
                out.push_back(v);
                if out.len() > limit {
                    out.pop_front();
                }
            }
            Ok(out.into())
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(format!("reading CDRs: {e}")))?;
        Ok(Value::Array(rows))
    }
}
