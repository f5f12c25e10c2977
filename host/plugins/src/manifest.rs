//! `plugin.toml`: what a plugin is, what it may use, and how it is configured.
//!
//! ```toml
//! name = "callerid-router"
//! version = "1.0.0"
//! contract = "0.1"                    # plugboard:pbx major.minor it was built against
//! roles = ["call-flow"]
//! capabilities = ["call", "config", "log"]   # exactly the plugboard interfaces it imports
//! description = "Sends known callers to one extension, others to another"
//! licence_feature = "acme-router"     # optional: needs a licence entitlement
//!
//! [config.known]
//! type = "string"                     # string | integer | boolean
//! default = ""
//! description = "Comma-separated caller extensions treated as known"
//!
//! [config.ring_timeout_s]
//! type = "integer"
//! default = 20
//! min = 1
//! max = 600
//!
//! [config.mode]
//! type = "string"
//! default = "call"
//! allowed = ["call", "mailbox"]
//! ```
//!
//! A key without `default` is required. Configuration reaches the plugin as
//! strings (`config.get`), after [`Manifest::resolve_config`] has checked every
//! value against its rule and filled in the defaults.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;

use crate::contract::SUPPORTED_MAJOR_MINOR;

/// A plugboard capability: one plugboard interface a plugin may import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// `call`: control of the call the plugin handles (part of the call-flow role).
    Call,
    /// `config`: the plugin's own configuration (always granted).
    Config,
    /// `log`: structured log lines (always granted).
    Log,
    /// `kv`: key-value storage scoped to (tenant, plugin); needs a grant.
    Kv,
    /// `recordings`: recordings scoped to (tenant, plugin); needs a grant.
    Recordings,
    /// `http`: outbound HTTP to allow-listed hosts; needs a grant.
    Http,
    /// `mail`: queue mail through the tenant's SMTP server; needs a grant (0.1.2).
    Mail,
    /// `mwi`: set message-waiting counts (RFC 3842 NOTIFY); needs a grant (0.1.2).
    Mwi,
    /// `clock`: the tenant's clock and time zone (0.1.2).
    Clock,
    /// `speech`: numbers and dates as prompts, text-to-speech (0.1.2).
    Speech,
    /// `directory`: the tenant's LDAP/AD directory; needs a grant (0.1.2).
    Directory,
    /// `redirect`: how the call was redirected to the plugin (0.1.2).
    Redirect,
}

impl Capability {
    /// Every capability, in display order.
    pub const ALL: [Capability; 12] = [
        Capability::Call,
        Capability::Config,
        Capability::Log,
        Capability::Kv,
        Capability::Recordings,
        Capability::Http,
        Capability::Mail,
        Capability::Mwi,
        Capability::Clock,
        Capability::Speech,
        Capability::Directory,
        Capability::Redirect,
    ];

    /// The capability's name in manifests, grants and errors (the WIT interface name).
    pub fn name(self) -> &'static str {
        match self {
            Capability::Call => "call",
            Capability::Config => "config",
            Capability::Log => "log",
            Capability::Kv => "kv",
            Capability::Recordings => "recordings",
            Capability::Http => "http",
            Capability::Mail => "mail",
            Capability::Mwi => "mwi",
            Capability::Clock => "clock",
            Capability::Speech => "speech",
            Capability::Directory => "directory",
            Capability::Redirect => "redirect",
        }
    }

    /// Parses a capability name.
    pub fn from_name(s: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.name() == s)
    }

    /// Whether the operator must grant it per tenant. `call`, `config`,
    /// `log`, `clock`, `speech` and `redirect` come with the role; storage,
    /// HTTP, mail, message waiting and the directory need a grant.
    pub fn needs_grant(self) -> bool {
        matches!(
            self,
            Capability::Kv
                | Capability::Recordings
                | Capability::Http
                | Capability::Mail
                | Capability::Mwi
                | Capability::Directory
        )
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a plugin does for the host; decides which export it must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Handles calls: exports `plugboard:pbx/handler`.
    CallFlow,
    /// Screens new calls before routing: exports `plugboard:pbx/screening`.
    Screener,
    /// Receives the tenant's events: exports `plugboard:pbx/events`.
    Listener,
}

impl Role {
    /// The role's name in manifests.
    pub fn name(self) -> &'static str {
        match self {
            Role::CallFlow => "call-flow",
            Role::Screener => "screener",
            Role::Listener => "listener",
        }
    }
}

/// The type of a configuration value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// Any text.
    String,
    /// A signed 64-bit integer.
    Integer,
    /// `true` or `false`.
    Boolean,
}

/// The rule for one configuration key.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigField {
    /// The value's type.
    pub ty: ValueType,
    /// The default, rendered as the plugin will see it; `None` = required.
    pub default: Option<String>,
    /// Smallest integer accepted.
    pub min: Option<i64>,
    /// Largest integer accepted.
    pub max: Option<i64>,
    /// The only strings accepted, when not empty.
    pub allowed: Vec<String>,
    /// For humans.
    pub description: Option<String>,
}

/// A parsed and checked `plugin.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Plugin name: lower-case letters, digits and `-`, 1-64 characters.
    pub name: String,
    /// Plugin version (semver).
    pub version: semver::Version,
    /// Contract major.minor, e.g. (0, 1).
    pub contract: (u64, u64),
    /// Roles.
    pub roles: BTreeSet<Role>,
    /// Capabilities requested: exactly the plugboard interfaces imported.
    pub capabilities: BTreeSet<Capability>,
    /// For humans.
    pub description: Option<String>,
    /// Licence feature that must be entitled for the plugin to be enabled.
    pub licence_feature: Option<String>,
    /// Configuration schema by key.
    pub config: BTreeMap<String, ConfigField>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    version: String,
    contract: String,
    roles: Vec<String>,
    capabilities: Vec<String>,
    description: Option<String>,
    licence_feature: Option<String>,
    #[serde(default)]
    config: BTreeMap<String, RawField>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    #[serde(rename = "type")]
    ty: String,
    default: Option<toml::Value>,
    min: Option<i64>,
    max: Option<i64>,
    #[serde(default)]
    allowed: Vec<String>,
    description: Option<String>,
}

/// Whether `name` is a valid plugin name.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
}

impl Manifest {
    /// Parses and checks manifest text. Errors are one line, naming the key.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let msg = e.message().to_string();
            match e.span() {
                Some(span) => {
                    let line = text[..span.start].matches('\n').count() + 1;
                    format!("line {line}: {msg}")
                }
                None => msg,
            }
        })?;
        if !valid_name(&raw.name) {
            return Err(format!(
                "name {:?}: use 1-64 lower-case letters, digits and '-'",
                raw.name
            ));
        }
        let version = semver::Version::parse(&raw.version)
            .map_err(|e| format!("version {:?}: not a semver version ({e})", raw.version))?;
        let contract = parse_contract(&raw.contract)?;
        let mut roles = BTreeSet::new();
        for r in &raw.roles {
            match r.as_str() {
                "call-flow" => roles.insert(Role::CallFlow),
                "screener" => roles.insert(Role::Screener),
                "listener" => roles.insert(Role::Listener),
                other => {
                    return Err(format!(
                        "roles: unknown role {other:?} (this host supports: call-flow, screener, listener)"
                    ));
                }
            };
        }
        if roles.len() != 1 {
            return Err(
                "roles: exactly one role (call-flow, screener or listener): a component exports one world"
                    .into(),
            );
        }
        let mut capabilities = BTreeSet::new();
        for c in &raw.capabilities {
            let cap = Capability::from_name(c).ok_or_else(|| {
                format!(
                    "capabilities: unknown capability {c:?} (known: {})",
                    Capability::ALL.map(Capability::name).join(", ")
                )
            })?;
            capabilities.insert(cap);
        }
        let mut config = BTreeMap::new();
        for (key, f) in raw.config {
            config.insert(key.clone(), field(&key, f)?);
        }
        Ok(Manifest {
            name: raw.name,
            version,
            contract,
            roles,
            capabilities,
            description: raw.description,
            licence_feature: raw.licence_feature,
            config,
        })
    }

    /// Capabilities this plugin requests that need an operator grant and are
    /// not in `granted`.
    pub fn missing_grants<'a>(
        &self,
        granted: impl IntoIterator<Item = &'a str> + Clone,
    ) -> Vec<Capability> {
        self.capabilities
            .iter()
            .copied()
            .filter(|c| c.needs_grant() && !granted.clone().into_iter().any(|g| g == c.name()))
            .collect()
    }

    /// Checks configuration values (later layers override earlier ones) and
    /// fills in defaults. Returns every key of the schema with its value,
    /// sorted by key. Errors name the key and the rule it breaks.
    pub fn resolve_config(
        &self,
        layers: &[&[(String, String)]],
    ) -> Result<Vec<(String, String)>, String> {
        self.resolve(layers, true)
    }

    /// Like [`Manifest::resolve_config`] for one layer that may leave
    /// required keys to a later one (a tenant's config before its dial plan
    /// entries): unknown keys and bad values are still errors.
    pub fn resolve_config_partial(&self, values: &[(String, String)]) -> Result<(), String> {
        self.resolve(&[values], false).map(|_| ())
    }

    fn resolve(
        &self,
        layers: &[&[(String, String)]],
        complete: bool,
    ) -> Result<Vec<(String, String)>, String> {
        let mut values: BTreeMap<&str, &str> = BTreeMap::new();
        let mut patterned: BTreeMap<&str, (&str, &ConfigField)> = BTreeMap::new();
        for layer in layers {
            for (k, v) in layer.iter() {
                if !self.config.contains_key(k)
                    && let Some((pattern, f)) = self.pattern_field(k)
                {
                    check_value(f, v).map_err(|rule| {
                        format!("config key {k:?} (pattern {pattern:?}): {v:?} {rule}")
                    })?;
                    patterned.insert(k, (v, f));
                    continue;
                }
                if !self.config.contains_key(k) {
                    let known: Vec<&str> = self.config.keys().map(String::as_str).collect();
                    return Err(format!(
                        "config key {k:?} is not known to plugin {} {} (known keys: {})",
                        self.name,
                        self.version,
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ));
                }
                values.insert(k, v);
            }
        }
        let mut out = Vec::with_capacity(self.config.len() + patterned.len());
        for (key, f) in &self.config {
            if is_pattern(key) {
                continue;
            }
            let value = match values.get(key.as_str()) {
                Some(v) => {
                    check_value(f, v)
                        .map_err(|rule| format!("config key {key:?}: {v:?} {rule}"))?;
                    v.to_string()
                }
                None => match &f.default {
                    Some(d) => d.clone(),
                    None if complete => return Err(format!("config key {key:?} is required")),
                    None => continue,
                },
            };
            out.push((key.clone(), value));
        }
        out.extend(
            patterned
                .into_iter()
                .map(|(k, (v, _))| (k.to_string(), v.to_string())),
        );
        out.sort();
        Ok(out)
    }

    /// The schema key with `*` segments that `key` matches, if any
    /// (`mailboxes.*.pin` matches `mailboxes.101.pin`).
    fn pattern_field(&self, key: &str) -> Option<(&str, &ConfigField)> {
        self.config
            .iter()
            .filter(|(p, _)| is_pattern(p))
            .find(|(p, _)| pattern_matches(p, key))
            .map(|(p, f)| (p.as_str(), f))
    }
}

/// Whether a schema key has `*` segments (a family of keys, all optional).
fn is_pattern(key: &str) -> bool {
    key.split('.').any(|s| s == "*")
}

/// `*` matches one non-empty segment of letters, digits, `+`, `-` or `_`.
fn pattern_matches(pattern: &str, key: &str) -> bool {
    let (mut p, mut k) = (pattern.split('.'), key.split('.'));
    loop {
        match (p.next(), k.next()) {
            (None, None) => return true,
            (Some("*"), Some(seg)) => {
                let ok = !seg.is_empty()
                    && seg
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '_'));
                if !ok {
                    return false;
                }
            }
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

fn parse_contract(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("contract {s:?}: expected major.minor, e.g. \"0.1\"");
    let (ma, mi) = s.split_once('.').ok_or_else(bad)?;
    let v = (
        ma.parse().map_err(|_| bad())?,
        mi.parse().map_err(|_| bad())?,
    );
    if v != SUPPORTED_MAJOR_MINOR {
        let (sma, smi) = SUPPORTED_MAJOR_MINOR;
        return Err(format!(
            "contract {s:?}: this host supports plugboard:pbx contract {sma}.{smi} only{}",
            if v > SUPPORTED_MAJOR_MINOR {
                " (the plugin is newer than the host)"
            } else {
                ""
            }
        ));
    }
    Ok(v)
}

fn field(key: &str, f: RawField) -> Result<ConfigField, String> {
    let ty = match f.ty.as_str() {
        "string" => ValueType::String,
        "integer" => ValueType::Integer,
        "boolean" => ValueType::Boolean,
        other => {
            return Err(format!(
                "config.{key}: unknown type {other:?} (string, integer or boolean)"
            ));
        }
    };
    let default = match f.default {
        None => None,
        Some(toml::Value::String(s)) if ty == ValueType::String => Some(s),
        Some(toml::Value::Integer(i)) if ty == ValueType::Integer => Some(i.to_string()),
        Some(toml::Value::Boolean(b)) if ty == ValueType::Boolean => Some(b.to_string()),
        Some(v) => {
            return Err(format!("config.{key}: default {v} is not a {}", f.ty));
        }
    };
    if ty != ValueType::Integer && (f.min.is_some() || f.max.is_some()) {
        return Err(format!("config.{key}: min/max apply to integers only"));
    }
    if ty != ValueType::String && !f.allowed.is_empty() {
        return Err(format!("config.{key}: allowed applies to strings only"));
    }
    let field = ConfigField {
        ty,
        default,
        min: f.min,
        max: f.max,
        allowed: f.allowed,
        description: f.description,
    };
    if let Some(d) = &field.default {
        check_value(&field, d).map_err(|rule| format!("config.{key}: default {d:?} {rule}"))?;
    }
    Ok(field)
}

/// Checks one value against its rule; the error completes "VALUE ...".
fn check_value(f: &ConfigField, v: &str) -> Result<(), String> {
    match f.ty {
        ValueType::String => {
            if !f.allowed.is_empty() && !f.allowed.iter().any(|a| a == v) {
                return Err(format!("is not one of: {}", f.allowed.join(", ")));
            }
        }
        ValueType::Boolean => {
            if v != "true" && v != "false" {
                return Err("is not a boolean (true or false)".into());
            }
        }
        ValueType::Integer => {
            let n: i64 = v.parse().map_err(|_| "is not an integer".to_string())?;
            if let Some(min) = f.min
                && n < min
            {
                return Err(format!("is below the minimum {min}"));
            }
            if let Some(max) = f.max
                && n > max
            {
                return Err(format!("is above the maximum {max}"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "router"
version = "1.2.0"
contract = "0.1"
roles = ["call-flow"]
capabilities = ["call", "config", "log", "kv"]

[config.known]
type = "string"
default = ""

[config.timeout_s]
type = "integer"
default = 20
min = 1
max = 600

[config.mode]
type = "string"
default = "call"
allowed = ["call", "mailbox"]

[config.target]
type = "string"
"#;

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_good_manifest_parses() {
        let m = Manifest::parse(GOOD).unwrap();
        assert_eq!(m.name, "router");
        assert_eq!(m.version, semver::Version::new(1, 2, 0));
        assert!(m.capabilities.contains(&Capability::Kv));
        assert_eq!(m.config["timeout_s"].default.as_deref(), Some("20"));
        assert_eq!(m.config["target"].default, None);
    }

    #[test]
    fn config_is_checked_and_defaults_filled() {
        let m = Manifest::parse(GOOD).unwrap();
        let tenant = kv(&[("timeout_s", "30"), ("target", "102")]);
        let entry = kv(&[("mode", "mailbox")]);
        let c = m.resolve_config(&[&tenant, &entry]).unwrap();
        assert_eq!(
            c,
            kv(&[
                ("known", ""),
                ("mode", "mailbox"),
                ("target", "102"),
                ("timeout_s", "30")
            ])
        );
        let e = m
            .resolve_config(&[&kv(&[("timeout_s", "0"), ("target", "1")])])
            .unwrap_err();
        assert!(
            e.contains("\"timeout_s\"") && e.contains("minimum 1"),
            "{e}"
        );
        let e = m
            .resolve_config(&[&kv(&[("timeout_s", "x"), ("target", "1")])])
            .unwrap_err();
        assert!(e.contains("not an integer"), "{e}");
        let e = m
            .resolve_config(&[&kv(&[("mode", "fax"), ("target", "1")])])
            .unwrap_err();
        assert!(e.contains("\"mode\"") && e.contains("call, mailbox"), "{e}");
        let e = m.resolve_config(&[&kv(&[("colour", "red")])]).unwrap_err();
        assert!(e.contains("\"colour\"") && e.contains("known keys"), "{e}");
        let e = m.resolve_config(&[]).unwrap_err();
        assert!(e.contains("\"target\" is required"), "{e}");
    }

    #[test]
    fn bad_manifests_name_the_problem() {
        let cases = [
            (GOOD.replace("\"0.1\"", "\"0.2\""), "newer than the host"),
            (GOOD.replace("\"1.2.0\"", "\"1.2\""), "semver"),
            (
                GOOD.replace("name = \"router\"", "name = \"Router!\""),
                "name",
            ),
            (
                GOOD.replace("\"kv\"]", "\"kv\", \"fax\"]"),
                "unknown capability \"fax\"",
            ),
            (GOOD.replace("[\"call-flow\"]", "[\"fax\"]"), "unknown role"),
            (
                GOOD.replace("default = 20", "default = \"20\""),
                "config.timeout_s",
            ),
            (GOOD.replace("default = 20", "default = 0"), "minimum"),
            (format!("{GOOD}\nextra = 1\n"), "unknown field"),
        ];
        for (text, want) in cases {
            let e = Manifest::parse(&text).unwrap_err();
            assert!(e.contains(want), "want {want:?} in {e:?}");
        }
    }

    #[test]
    fn storage_needs_a_grant_the_rest_comes_with_the_role() {
        let m = Manifest::parse(GOOD).unwrap();
        assert_eq!(m.missing_grants(["recordings"]), vec![Capability::Kv]);
        assert!(m.missing_grants(["kv"]).is_empty());
    }

    #[test]
    fn pattern_keys_admit_families_of_optional_keys() {
        let text = format!(
            "{GOOD}\n[config.\"mailboxes.*.pin\"]\ntype = \"string\"\n\n[config.\"mailboxes.*.max_s\"]\ntype = \"integer\"\nmax = 3600\n"
        );
        let m = Manifest::parse(&text).unwrap();
        let got = m
            .resolve_config(&[&kv(&[
                ("target", "x"),
                ("mailboxes.101.pin", "1234"),
                ("mailboxes.+4930123.max_s", "60"),
            ])])
            .unwrap();
        assert!(got.contains(&("mailboxes.101.pin".into(), "1234".into())));
        assert!(got.contains(&("mailboxes.+4930123.max_s".into(), "60".into())));
        assert!(!got.iter().any(|(k, _)| k.contains('*')));
        let e = m
            .resolve_config(&[&kv(&[("target", "x"), ("mailboxes.101.max_s", "9999")])])
            .unwrap_err();
        assert!(
            e.contains("mailboxes.*.max_s") && e.contains("maximum"),
            "{e}"
        );
        for bad in ["mailboxes.101.pn", "mailboxes..pin", "mailboxes.1.2.pin"] {
            let e = m
                .resolve_config(&[&kv(&[("target", "x"), (bad, "1")])])
                .unwrap_err();
            assert!(e.contains("is not known"), "{bad}: {e}");
        }
    }
}
