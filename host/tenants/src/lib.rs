//! plugboard-tenants: the TOML bootstrap configuration and the tenant registry.
//!
//! [`Config::load`] reads `plugboard.toml`, checks it completely, and returns
//! either a [`Config`] or one [`ConfigError`] whose text is
//! `FILE:LINE:COLUMN: message`, e.g.
//!
//! ```text
//! examples/demo/plugboard.toml:23:13: tenant "demo.test": user "101": duplicate extension
//! ```
//!
//! so that an operator can jump straight to the problem (the binary prints it
//! and exits with code 2). Syntax and type errors take their position from the
//! TOML parser; semantic errors (duplicates, unknown plugins or users in a dial
//! plan, bad port ranges, bad addresses) from [`toml::Spanned`] values kept
//! during parsing. Unknown keys are refused everywhere, at the line of the key.
//!
//! # The file
//!
//! The canonical example, `host/tenants/plugboard.example.toml` (a test loads it):
//!
//! ```toml
#![doc = include_str!("../plugboard.example.toml")]
//! ```
//!
//! Relative paths (`data_dir`, `prompts_dir`, `plugin_cache_dir`, plugin
//! `path`) are resolved against the folder of the configuration file, so the
//! server behaves the same whatever its working directory.
//!
//! `advertise_ip` defaults (see [`ServerConfig::effective_advertise_ip`]) to
//! the `sip_udp` address if it is a specific address, else the `sip_tcp`
//! address if specific, else `127.0.0.1` (a server bound to `0.0.0.0` must be
//! told its public address to be reachable from other hosts).
//!
//! At least one of `sip_udp` and `sip_tcp` must be enabled.

#![deny(missing_docs)]

mod doc;
mod parse;

pub use doc::{DialDoc, TenantDoc, TenantPluginDoc, UserDoc, flatten_json};
pub use parse::valid_number;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Listening addresses, directories and limits.
    pub server: ServerConfig,
    /// Plugins known to this server, sorted by name.
    pub plugins: Vec<PluginDef>,
    /// Tenants in file order.
    pub tenants: Vec<Tenant>,
    /// The `[admin]` table: the HTTP admin API.
    pub admin: AdminConfig,
    /// The `[trust]` table.
    pub trust: TrustConfig,
    /// The `[licence]` table.
    pub licence: LicenceConfig,
    /// `[testing] clock_file`: a file holding the time the host believes it
    /// is (RFC 3339), for tests of time-driven behaviour. Never set in
    /// production; logged at start-up when it is.
    pub clock_file: Option<PathBuf>,
    /// The file this configuration was read from (as given).
    pub source: PathBuf,
}

/// The `[server]` table, with defaults applied and paths resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// SIP over UDP listen address; default `0.0.0.0:5060`, `None` when set to `"none"`.
    pub sip_udp: Option<SocketAddr>,
    /// SIP over TCP listen address; `None` (disabled) when absent or `"none"`.
    pub sip_tcp: Option<SocketAddr>,
    /// Bind address for RTP sockets (default `0.0.0.0`).
    pub media_ip: IpAddr,
    /// IP put in SDP and Contact as configured; see [`Self::effective_advertise_ip`].
    pub advertise_ip: Option<IpAddr>,
    /// Inclusive RTP port range (default 20000-29999).
    pub rtp_ports: (u16, u16),
    /// Where the store keeps its database and recordings (default `data`).
    pub data_dir: PathBuf,
    /// Stock prompts: `<prompts_dir>/<lang>/<name>.wav` (default `prompts`).
    pub prompts_dir: PathBuf,
    /// Cache of compiled plugin components (default `<data_dir>/plugin-cache`).
    pub plugin_cache_dir: PathBuf,
    /// Shortest registration accepted, seconds (default 60; shorter gets 423).
    pub register_min_expires: u32,
    /// Longest registration granted, seconds (default 3600).
    pub register_max_expires: u32,
    /// Registration time when the phone asks for none, seconds (default 3600).
    pub register_default_expires: u32,
    /// How long a digest nonce stays valid, seconds (default 300).
    pub nonce_lifetime_secs: u64,
    /// Digest algorithms offered in challenges, most preferred first
    /// (default `["SHA-256", "MD5"]`, RFC 8760 section 2.4). Clients that only
    /// read the first challenge (SIPp, some old phones) need `MD5` first.
    pub digest_algorithms: Vec<String>,
    /// Linear memory cap per plugin instance, MiB (default 64).
    pub plugin_memory_mb: u32,
    /// CPU time budget per plugin call, milliseconds (default 200).
    pub plugin_cpu_ms: u32,
    /// Extra CA certificates (PEM) trusted by the plugins' outbound HTTPS,
    /// besides Mozilla's roots (default none).
    pub http_ca_file: Option<PathBuf>,
    /// Delay before the first retry of a mail the SMTP server did not
    /// accept, milliseconds (default 5000; doubles per attempt).
    pub mail_retry_ms: u64,
    /// Longest delay between two attempts of one mail, seconds (default 900).
    pub mail_retry_max_s: u64,
}

impl ServerConfig {
    /// The IP to advertise in SDP and Contact: `advertise_ip` if set, else the
    /// `sip_udp` IP if it is not unspecified (`0.0.0.0`/`::`), else the
    /// `sip_tcp` IP likewise, else `127.0.0.1`.
    pub fn effective_advertise_ip(&self) -> IpAddr {
        if let Some(ip) = self.advertise_ip {
            return ip;
        }
        [self.sip_udp, self.sip_tcp]
            .into_iter()
            .flatten()
            .map(|a| a.ip())
            .find(|ip| !ip.is_unspecified())
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }
}

/// The `[trust]` table: which plugin packages may be installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustConfig {
    /// The trust store: a folder of vendor public keys (`*.pub`); default
    /// `<data_dir>/trust`.
    pub dir: PathBuf,
    /// Development mode: accept packages without a signature (each one is
    /// logged). Packages signed by an unknown key or changed after signing
    /// are refused even then.
    pub allow_unsigned: bool,
}

/// The `[licence]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenceConfig {
    /// This installation's name as licences state it (`site`); empty when
    /// not set (then only licences for any site, `"*"`, apply).
    pub site: String,
    /// Folder of licence files (`*.toml`); default `<data_dir>/licences`.
    pub dir: PathBuf,
    /// Public key files of the licensor, whose licences set capacities.
    pub issuer_keys: Vec<PathBuf>,
}

/// The `[admin]` table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AdminConfig {
    /// Where the admin API listens (`None`: no admin API).
    pub listen: Option<SocketAddr>,
    /// Bearer token of the operator (every tenant, every route).
    pub operator_token: Option<String>,
    /// Bearer tokens of tenant administrators: (domain, token).
    pub tenant_tokens: Vec<(String, String)>,
}

/// A `[plugins.NAME]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginDef {
    /// The plugin's name, as used in dial plans.
    pub name: String,
    /// Path of the component, resolved against the configuration folder.
    pub path: PathBuf,
    /// Line of the definition in the configuration file (1-based), for later errors.
    pub line: usize,
    /// Capabilities granted to this plugin in every tenant of the file that
    /// does not set its own `grants` (default none).
    pub grants: Vec<String>,
    /// Default allow-list for the `http` capability (see [`TenantPlugin::http_hosts`]).
    pub http_hosts: Vec<String>,
}

/// Capabilities an operator can grant (the rest come with a plugin's role).
pub const CAPABILITY_GRANTS: &[&str] = &["directory", "http", "kv", "mail", "mwi", "recordings"];

/// Checks one granted capability name; the error completes "CONTEXT: ".
pub fn check_grant(g: &str) -> Result<(), String> {
    if CAPABILITY_GRANTS.contains(&g) {
        return Ok(());
    }
    Err(format!(
        "unknown capability {g:?} in grants (grantable: {})",
        CAPABILITY_GRANTS.join(", ")
    ))
}

/// Checks granted capability names and returns them sorted, once each.
pub fn normalize_grants(mut grants: Vec<String>) -> Result<Vec<String>, String> {
    for g in &grants {
        check_grant(g)?;
    }
    grants.sort();
    grants.dedup();
    Ok(grants)
}

/// An HTTP allow-list as stored: lower-cased, sorted, once each.
pub fn normalize_hosts(mut hosts: Vec<String>) -> Vec<String> {
    for h in &mut hosts {
        *h = h.to_ascii_lowercase();
    }
    hosts.sort();
    hosts.dedup();
    hosts
}

/// A plugin enabled for a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantPlugin {
    /// The plugin's name.
    pub name: String,
    /// The version pinned for this tenant; `None` = the newest installed.
    pub version: Option<String>,
    /// The version pinned before the last change (for rollback).
    pub previous_version: Option<String>,
    /// Tenant-wide configuration (flattened like a dial plan entry's);
    /// dial plan entry values override it.
    pub config: Vec<(String, String)>,
    /// Capabilities the operator granted, sorted.
    pub grants: Vec<String>,
    /// Hosts (`host` or `host:port`) the plugin may reach with the `http`
    /// capability in this tenant, sorted.
    pub http_hosts: Vec<String>,
}

/// One tenant (a SIP domain).
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    /// The SIP domain, lower-cased.
    pub domain: String,
    /// Prompt language (default `en`).
    pub language: String,
    /// Languages tried, in order, when a prompt is missing in `language`
    /// (then `en`). Default none.
    pub language_fallback: Vec<String>,
    /// IANA time zone of the tenant (default `UTC`), e.g. `Europe/Berlin`.
    pub timezone: String,
    /// Limits of the tenant.
    pub limits: Limits,
    /// Users (phones) in file order.
    pub users: Vec<User>,
    /// Dial plan entries, sorted by number.
    pub dialplan: Vec<DialEntry>,
    /// Plugins enabled for this tenant, sorted by name.
    pub plugins: Vec<TenantPlugin>,
    /// Outgoing mail (`[tenant.mail]`): the SMTP server of the `mail` capability.
    pub mail: Option<plugboard_mail::SmtpConfig>,
    /// The user directory (`[tenant.directory]`) of the `directory` capability.
    pub directory: Option<plugboard_directory::DirectoryConfig>,
    /// The numbering plan (`[tenant.numbering]`) for E.164 normalisation.
    pub numbering: Option<plugboard_directory::NumberingPlan>,
    /// Peer PBXs (`[[tenant.trunk]]`) whose calls are accepted by address.
    pub trunks: Vec<Trunk>,
}

/// A peer PBX connected over a SIP trunk (plugboard as its voicemail
/// server). Its INVITEs are accepted by source address without digest
/// authentication, and reach only this tenant's dial plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trunk {
    /// A name for logs.
    pub name: String,
    /// The peer's SIP address, `IP:port` (UDP). Requests from this IP and
    /// port are this trunk's.
    pub address: std::net::SocketAddr,
    /// Send message-waiting NOTIFYs for numbers that are not users of the
    /// tenant (the peer's own users) to this peer.
    #[serde(default = "yes")]
    pub mwi: bool,
}

fn yes() -> bool {
    true
}

/// Checks a trunk against the ones before it.
pub(crate) fn check_trunk(t: &Trunk, before: &[Trunk]) -> Result<(), String> {
    if t.name.is_empty() {
        return Err("trunk: empty name".into());
    }
    if t.address.ip().is_unspecified() || t.address.port() == 0 {
        return Err(format!(
            "trunk {:?}: address {} is not a peer's IP:port",
            t.name, t.address
        ));
    }
    if before
        .iter()
        .any(|b| b.name == t.name || b.address == t.address)
    {
        return Err(format!("trunk {:?}: name or address listed twice", t.name));
    }
    Ok(())
}

/// A user that can register and be called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Extension, also the SIP user name and digest username.
    pub extension: String,
    /// Digest password.
    pub password: String,
    /// Name shown to callees, if any.
    pub display_name: Option<String>,
    /// What happens to calls for this user (all off by default).
    pub rules: CallRules,
}

/// A user's call rules. Targets are numbers of the tenant's dial plan (a
/// user, a plugin such as voicemail). All off by default.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallRules {
    /// Forward every call here; the user's phones do not ring.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward_always: Option<String>,
    /// Forward here when the user is busy (a phone answered 486, do not
    /// disturb, or busy on a second call).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward_busy: Option<String>,
    /// Forward here when nobody answers within `no_answer_s` (or nobody is registered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward_no_answer: Option<String>,
    /// Seconds to ring before the no-answer rule applies (default 20; 5-300).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_answer_s: Option<u32>,
    /// Do not disturb: treat every call as busy.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dnd: bool,
    /// Busy while the user is already on a call.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub busy_on_second_call: bool,
}

impl CallRules {
    /// Ring time before the no-answer rule.
    pub fn ring_time_s(&self) -> u32 {
        self.no_answer_s.unwrap_or(20)
    }

    /// Checks ranges and target syntax.
    pub fn check(&self) -> Result<(), String> {
        if let Some(s) = self.no_answer_s
            && !(5..=300).contains(&s)
        {
            return Err(format!("rules.no_answer_s: {s} is outside 5-300"));
        }
        for (k, v) in [
            ("forward_always", &self.forward_always),
            ("forward_busy", &self.forward_busy),
            ("forward_no_answer", &self.forward_no_answer),
        ] {
            if let Some(n) = v
                && !parse::valid_number(n)
            {
                return Err(format!("rules.{k}: {n:?} is not a number of the dial plan"));
            }
        }
        Ok(())
    }
}

/// Limits of a tenant; `None` = the server's.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Calls in progress at once (caller side); over it: 503 + Retry-After.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_calls: Option<u32>,
    /// Linear memory cap of one plugin instance, MiB (at most the server's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin_memory_mb: Option<u32>,
    /// CPU budget of one plugin instance between host calls, ms (at most the server's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin_cpu_ms: Option<u32>,
    /// Recordings stored by the tenant's plugins, MiB; over it a recording is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_mb: Option<u64>,
}

impl Limits {
    /// Checks that every limit is positive.
    pub fn check(&self) -> Result<(), String> {
        for (k, v) in [
            ("max_calls", self.max_calls.map(u64::from)),
            ("plugin_memory_mb", self.plugin_memory_mb.map(u64::from)),
            ("plugin_cpu_ms", self.plugin_cpu_ms.map(u64::from)),
            ("storage_mb", self.storage_mb),
        ] {
            if v == Some(0) {
                return Err(format!("limits.{k}: must be greater than 0"));
            }
        }
        Ok(())
    }
}

/// Whether `tz` names an IANA time zone.
pub fn valid_timezone(tz: &str) -> bool {
    tz.parse::<chrono_tz::Tz>().is_ok()
}

/// One dial plan entry: a dialled number and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialEntry {
    /// The dialled number, matched exactly.
    pub number: String,
    /// Where the call goes.
    pub target: DialTarget,
}

/// Where a dialled number leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialTarget {
    /// Ring this user's registered phones (by extension).
    User(String),
    /// Hand the call to a plugin with this entry's configuration.
    Plugin {
        /// The plugin's name (defined under `[plugins]`).
        name: String,
        /// The entry's `config` table flattened: nested tables become dotted
        /// keys (`a.b`), strings are unquoted, other values are rendered as
        /// TOML text (`20`, `true`, `[1, 2]`). Sorted by key.
        config: Vec<(String, String)>,
    },
}

/// A configuration problem, located in its file.
///
/// `Display` gives `FILE:LINE:COLUMN: message`, or `FILE: message` when there
/// is no position (the file could not be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The configuration file.
    pub file: PathBuf,
    /// 1-based line and column (in characters), if the problem has a place in the file.
    pub position: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, col)) => {
                write!(f, "{}:{line}:{col}: {}", self.file.display(), self.message)
            }
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and validates the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            position: None,
            message: format!("cannot read configuration: {e}"),
        })?;
        Self::from_str(&text, path)
    }

    /// Parses and validates configuration `text`; `path` names it in errors and
    /// is the base for relative paths (its parent folder).
    pub fn from_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
        parse::parse(text, path)
    }

    /// The tenant for a SIP domain, compared case-insensitively.
    pub fn tenant(&self, domain: &str) -> Option<&Tenant> {
        self.tenants
            .iter()
            .find(|t| t.domain.eq_ignore_ascii_case(domain))
    }

    /// The plugin definition named `name`.
    pub fn plugin(&self, name: &str) -> Option<&PluginDef> {
        self.plugins.iter().find(|p| p.name == name)
    }
}

impl Tenant {
    /// The trunk a request from `addr` belongs to, if any.
    pub fn trunk_at(&self, addr: std::net::SocketAddr) -> Option<&Trunk> {
        self.trunks.iter().find(|t| t.address == addr)
    }

    /// The user with extension `ext`.
    pub fn user(&self, ext: &str) -> Option<&User> {
        self.users.iter().find(|u| u.extension == ext)
    }

    /// The tenant's binding of plugin `name`, if enabled.
    pub fn plugin(&self, name: &str) -> Option<&TenantPlugin> {
        self.plugins.iter().find(|p| p.name == name)
    }

    /// Languages to try for a prompt, in order: the tenant's, its fallbacks, `en`.
    pub fn languages(&self) -> Vec<&str> {
        let mut out: Vec<&str> = vec![self.language.as_str()];
        for l in self
            .language_fallback
            .iter()
            .map(String::as_str)
            .chain(["en"])
        {
            if !out.contains(&l) {
                out.push(l);
            }
        }
        out
    }

    /// Route a dialled number: exact dial plan entry first, then a user with that extension.
    pub fn route(&self, number: &str) -> Option<DialTarget> {
        if let Some(e) = self.dialplan.iter().find(|e| e.number == number) {
            return Some(e.target.clone());
        }
        self.user(number)
            .map(|u| DialTarget::User(u.extension.clone()))
    }
}

#[cfg(test)]
mod tests;
