//! A tenant as one JSON document: what the admin API exports and imports,
//! and what the host stores for tenants changed at run time.
//!
//! ```json
//! {
//!   "domain": "acme.example",
//!   "language": "en",
//!   "users": [{"extension": "101", "password": "s3cret", "display_name": "Alice"}],
//!   "dialplan": [
//!     {"number": "100", "plugin": "attendant", "config": {"ring_timeout_s": "20"}},
//!     {"number": "200", "user": "101"}
//!   ],
//!   "plugins": [{"name": "attendant", "version": "1.0.0", "config": {}, "grants": ["kv"]}]
//! }
//! ```
//!
//! [`TenantDoc::into_tenant`] applies the same rules as the configuration
//! file (domain, extension and number syntax, duplicates, references);
//! whether the named plugins and versions exist is checked by the host.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::parse::{valid_domain, valid_language, valid_number, valid_plugin_name};
use crate::{DialEntry, DialTarget, Tenant, TenantPlugin, User};

/// A tenant (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantDoc {
    /// The SIP domain.
    pub domain: String,
    /// Prompt language (default `en`).
    #[serde(default)]
    pub language: Option<String>,
    /// Fallback languages for prompts, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub language_fallback: Vec<String>,
    /// IANA time zone (default `UTC`).
    #[serde(default)]
    pub timezone: Option<String>,
    /// Limits.
    #[serde(default)]
    pub limits: crate::Limits,
    /// Users.
    #[serde(default)]
    pub users: Vec<UserDoc>,
    /// Dial plan entries.
    #[serde(default)]
    pub dialplan: Vec<DialDoc>,
    /// Enabled plugins.
    #[serde(default)]
    pub plugins: Vec<TenantPluginDoc>,
    /// Outgoing mail (SMTP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<plugboard_mail::SmtpConfig>,
    /// User directory (LDAP/AD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<plugboard_directory::DirectoryConfig>,
    /// Numbering plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numbering: Option<plugboard_directory::NumberingPlan>,
    /// Peer PBXs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trunks: Vec<crate::Trunk>,
}

/// A user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserDoc {
    /// Extension and SIP user name.
    pub extension: String,
    /// Digest password.
    pub password: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Call rules (forwarding, do not disturb, busy on second call).
    #[serde(default)]
    pub rules: crate::CallRules,
}

/// A dial plan entry: `user` or `plugin` (+ `config`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialDoc {
    /// The dialled number.
    pub number: String,
    /// Ring this user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Run this plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// The plugin's configuration for this entry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, serde_json::Value>,
}

/// A plugin enabled for the tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantPluginDoc {
    /// Plugin name.
    pub name: String,
    /// Pinned version; absent = the newest installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The version before the last swap (rollback target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
    /// Tenant-wide configuration.
    #[serde(default)]
    pub config: BTreeMap<String, serde_json::Value>,
    /// Granted capabilities.
    #[serde(default)]
    pub grants: Vec<String>,
    /// Hosts the `http` capability may reach.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_hosts: Vec<String>,
}

/// Flattens a JSON config object like the file's TOML tables: nested objects
/// become dotted keys, strings stay as they are, other values become JSON text.
pub fn flatten_json(config: &BTreeMap<String, serde_json::Value>) -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    walk(&format!("{prefix}.{k}"), v, out);
                }
            }
            serde_json::Value::String(s) => out.push((prefix.to_string(), s.clone())),
            other => out.push((prefix.to_string(), other.to_string())),
        }
    }
    let mut out = Vec::new();
    for (k, v) in config {
        walk(k, v, &mut out);
    }
    out.sort();
    out
}

fn unflatten(config: &[(String, String)]) -> BTreeMap<String, serde_json::Value> {
    config
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect()
}

impl From<&Tenant> for TenantDoc {
    fn from(t: &Tenant) -> TenantDoc {
        TenantDoc {
            domain: t.domain.clone(),
            language: Some(t.language.clone()),
            language_fallback: t.language_fallback.clone(),
            timezone: Some(t.timezone.clone()),
            limits: t.limits.clone(),
            users: t
                .users
                .iter()
                .map(|u| UserDoc {
                    extension: u.extension.clone(),
                    password: u.password.clone(),
                    display_name: u.display_name.clone(),
                    rules: u.rules.clone(),
                })
                .collect(),
            dialplan: t
                .dialplan
                .iter()
                .map(|e| match &e.target {
                    DialTarget::User(u) => DialDoc {
                        number: e.number.clone(),
                        user: Some(u.clone()),
                        plugin: None,
                        config: BTreeMap::new(),
                    },
                    DialTarget::Plugin { name, config } => DialDoc {
                        number: e.number.clone(),
                        user: None,
                        plugin: Some(name.clone()),
                        config: unflatten(config),
                    },
                })
                .collect(),
            plugins: t
                .plugins
                .iter()
                .map(|p| TenantPluginDoc {
                    name: p.name.clone(),
                    version: p.version.clone(),
                    previous_version: p.previous_version.clone(),
                    config: unflatten(&p.config),
                    grants: p.grants.clone(),
                    http_hosts: p.http_hosts.clone(),
                })
                .collect(),
            mail: t.mail.clone(),
            directory: t.directory.clone(),
            numbering: t.numbering.clone(),
            trunks: t.trunks.clone(),
        }
    }
}

impl TenantDoc {
    /// Checks the document and turns it into a [`Tenant`]. Errors name the
    /// field and the value. Plugins named in the dial plan but not listed
    /// under `plugins` are enabled with no grants.
    pub fn into_tenant(self) -> Result<Tenant, String> {
        let domain = self.domain.to_ascii_lowercase();
        if !valid_domain(&domain) {
            return Err(format!("domain {:?}: not a valid domain name", self.domain));
        }
        let language = self.language.unwrap_or_else(|| "en".into());
        if !valid_language(&language) {
            return Err(format!(
                "language {language:?}: use a tag like \"en\" or \"pt-BR\""
            ));
        }
        for l in &self.language_fallback {
            if !valid_language(l) {
                return Err(format!("language_fallback {l:?}: use a tag like \"en\""));
            }
        }
        let timezone = self.timezone.unwrap_or_else(|| "UTC".into());
        if !crate::valid_timezone(&timezone) {
            return Err(format!(
                "timezone {timezone:?} is not an IANA time zone like \"Europe/Berlin\""
            ));
        }
        self.limits.check()?;
        let mut users: Vec<User> = Vec::new();
        for u in self.users {
            u.check()?;
            if users.iter().any(|x| x.extension == u.extension) {
                return Err(format!("users: duplicate extension {:?}", u.extension));
            }
            users.push(u.into_user());
        }
        let mut plugins: Vec<TenantPlugin> = Vec::new();
        for p in self.plugins {
            if !valid_plugin_name(&p.name) {
                return Err(format!("plugins: {:?} is not a plugin name", p.name));
            }
            if plugins.iter().any(|x| x.name == p.name) {
                return Err(format!("plugins: {} listed twice", p.name));
            }
            plugins.push(p.into_plugin()?);
        }
        let mut dialplan: Vec<DialEntry> = Vec::new();
        for d in self.dialplan {
            if dialplan.iter().any(|x| x.number == d.number) {
                return Err(format!("dialplan: duplicate number {:?}", d.number));
            }
            let entry = d.into_entry()?;
            match &entry.target {
                DialTarget::User(u) if !users.iter().any(|x| &x.extension == u) => {
                    return Err(format!(
                        "dialplan {:?}: unknown user {u:?} in this tenant",
                        entry.number
                    ));
                }
                DialTarget::Plugin { name, .. } if !plugins.iter().any(|p| &p.name == name) => {
                    plugins.push(TenantPlugin {
                        name: name.clone(),
                        version: None,
                        previous_version: None,
                        config: Vec::new(),
                        grants: Vec::new(),
                        http_hosts: Vec::new(),
                    });
                }
                _ => {}
            }
            dialplan.push(entry);
        }
        dialplan.sort_by(|a, b| a.number.cmp(&b.number));
        plugins.sort_by(|a, b| a.name.cmp(&b.name));
        for (name, check) in [
            ("mail", self.mail.as_ref().map(|m| m.check())),
            ("directory", self.directory.as_ref().map(|d| d.check())),
            ("numbering", self.numbering.as_ref().map(|n| n.check())),
        ] {
            if let Some(Err(e)) = check {
                return Err(format!("{name}: {e}"));
            }
        }
        if self.directory.is_some() && self.numbering.is_none() {
            return Err("directory needs a numbering plan to read numbers".into());
        }
        let mut trunks: Vec<crate::Trunk> = Vec::new();
        for t in self.trunks {
            crate::check_trunk(&t, &trunks)?;
            trunks.push(t);
        }
        Ok(Tenant {
            domain,
            language,
            language_fallback: self.language_fallback,
            timezone,
            limits: self.limits,
            users,
            dialplan,
            plugins,
            mail: self.mail,
            directory: self.directory,
            numbering: self.numbering,
            trunks,
        })
    }
}

impl UserDoc {
    /// Checks extension and password.
    pub fn check(&self) -> Result<(), String> {
        if !valid_number(&self.extension) {
            return Err(format!(
                "user {:?}: extensions use 1 to 32 of A-Z a-z 0-9 . _ - + * #",
                self.extension
            ));
        }
        if self.password.is_empty() {
            return Err(format!("user {:?}: empty password", self.extension));
        }
        self.rules
            .check()
            .map_err(|e| format!("user {:?}: {e}", self.extension))
    }

    /// The user (call [`UserDoc::check`] first).
    pub fn into_user(self) -> User {
        User {
            extension: self.extension,
            password: self.password,
            display_name: self.display_name,
            rules: self.rules,
        }
    }
}

impl DialDoc {
    /// Checks the entry's shape (references are checked by the tenant).
    pub fn into_entry(self) -> Result<DialEntry, String> {
        let n = &self.number;
        if !valid_number(n) {
            return Err(format!(
                "dialplan {n:?}: numbers use 1 to 32 of A-Z a-z 0-9 . _ - + * #"
            ));
        }
        let target = match (self.user, self.plugin) {
            (Some(u), None) if self.config.is_empty() => DialTarget::User(u),
            (Some(_), None) => {
                return Err(format!(
                    "dialplan {n:?}: config is only allowed with plugin"
                ));
            }
            (None, Some(p)) => {
                if !valid_plugin_name(&p) {
                    return Err(format!("dialplan {n:?}: {p:?} is not a plugin name"));
                }
                DialTarget::Plugin {
                    name: p,
                    config: flatten_json(&self.config),
                }
            }
            (Some(_), Some(_)) => {
                return Err(format!(
                    "dialplan {n:?}: give either plugin or user, not both"
                ));
            }
            (None, None) => return Err(format!("dialplan {n:?}: give plugin or user")),
        };
        Ok(DialEntry {
            number: self.number,
            target,
        })
    }
}

impl TenantPluginDoc {
    fn into_plugin(self) -> Result<TenantPlugin, String> {
        let grants = crate::normalize_grants(self.grants)
            .map_err(|e| format!("plugins.{}: {e}", self.name))?;
        let http_hosts = crate::normalize_hosts(self.http_hosts);
        Ok(TenantPlugin {
            config: flatten_json(&self.config),
            name: self.name,
            version: self.version,
            previous_version: self.previous_version,
            grants,
            http_hosts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_round_trips_and_bad_ones_name_the_field() {
        let doc: TenantDoc = serde_json::from_value(serde_json::json!({
            "domain": "ACME.example",
            "users": [{"extension": "101", "password": "pw"}],
            "dialplan": [
                {"number": "500", "plugin": "router", "config": {"known": "101", "n": {"x": 1}}},
                {"number": "200", "user": "101"}
            ],
            "plugins": [{"name": "echo", "version": "1.0.0", "grants": ["kv"]}]
        }))
        .unwrap();
        let t = doc.into_tenant().unwrap();
        assert_eq!(t.domain, "acme.example");
        assert_eq!(t.plugins.len(), 2, "router enabled by the dial plan");
        assert_eq!(
            t.route("500"),
            Some(DialTarget::Plugin {
                name: "router".into(),
                config: vec![("known".into(), "101".into()), ("n.x".into(), "1".into())]
            })
        );
        let again = TenantDoc::from(&t).into_tenant().unwrap();
        assert_eq!(again, t);

        let bad = |v: serde_json::Value| {
            serde_json::from_value::<TenantDoc>(v)
                .map_err(|e| e.to_string())
                .and_then(TenantDoc::into_tenant)
                .unwrap_err()
        };
        let e = bad(serde_json::json!({"domain": "a b"}));
        assert!(e.contains("domain"), "{e}");
        let e = bad(
            serde_json::json!({"domain": "a.test", "dialplan": [{"number": "1", "user": "9"}]}),
        );
        assert!(e.contains("unknown user \"9\""), "{e}");
        let e = bad(
            serde_json::json!({"domain": "a.test", "plugins": [{"name": "x", "grants": ["root"]}]}),
        );
        assert!(e.contains("\"root\""), "{e}");
        let e = bad(serde_json::json!({"domain": "a.test", "colour": 1}));
        assert!(e.contains("colour"), "{e}");
    }
}
