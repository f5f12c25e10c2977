//! From TOML text to a validated [`Config`], keeping byte spans so that every
//! error can name its line and column.
//!
//! Two passes: serde (with `deny_unknown_fields` and [`Spanned`] values) for
//! shape and types, then [`Checker`] for meaning (duplicates, references,
//! ranges). The first problem found is reported.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::{
    AdminConfig, Config, ConfigError, DialEntry, DialTarget, LicenceConfig, PluginDef,
    ServerConfig, Tenant, TenantPlugin, TrustConfig, User,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server: Option<Spanned<RawServer>>,
    #[serde(default)]
    plugins: BTreeMap<Spanned<String>, RawPlugin>,
    #[serde(default)]
    tenant: Vec<RawTenant>,
    admin: Option<RawAdmin>,
    trust: Option<RawTrust>,
    licence: Option<RawLicence>,
    testing: Option<RawTesting>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrust {
    dir: Option<String>,
    #[serde(default)]
    allow_unsigned: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLicence {
    site: Option<Spanned<String>>,
    dir: Option<String>,
    #[serde(default)]
    issuer_keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTesting {
    clock_file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    listen: Option<Spanned<String>>,
    operator_token: Option<Spanned<String>>,
    #[serde(default)]
    tenant_tokens: BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    sip_udp: Option<Spanned<String>>,
    sip_tcp: Option<Spanned<String>>,
    media_ip: Option<Spanned<String>>,
    advertise_ip: Option<Spanned<String>>,
    rtp_ports: Option<Spanned<String>>,
    data_dir: Option<String>,
    prompts_dir: Option<String>,
    plugin_cache_dir: Option<String>,
    register_min_expires: Option<Spanned<u32>>,
    register_max_expires: Option<Spanned<u32>>,
    register_default_expires: Option<Spanned<u32>>,
    nonce_lifetime_secs: Option<Spanned<u64>>,
    digest_algorithms: Option<Spanned<Vec<String>>>,
    plugin_memory_mb: Option<Spanned<u32>>,
    plugin_cpu_ms: Option<Spanned<u32>>,
    http_ca_file: Option<String>,
    mail_retry_ms: Option<Spanned<u64>>,
    mail_retry_max_s: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    path: String,
    #[serde(default)]
    grants: Vec<Spanned<String>>,
    #[serde(default)]
    http_hosts: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    domain: Spanned<String>,
    language: Option<Spanned<String>>,
    #[serde(default)]
    language_fallback: Vec<Spanned<String>>,
    timezone: Option<Spanned<String>>,
    limits: Option<Spanned<crate::Limits>>,
    #[serde(default)]
    user: Vec<RawUser>,
    #[serde(default)]
    dialplan: BTreeMap<Spanned<String>, Spanned<RawDial>>,
    #[serde(default)]
    plugins: BTreeMap<Spanned<String>, RawTenantPlugin>,
    mail: Option<Spanned<plugboard_mail::SmtpConfig>>,
    directory: Option<Spanned<plugboard_directory::DirectoryConfig>>,
    numbering: Option<Spanned<plugboard_directory::NumberingPlan>>,
    #[serde(default)]
    trunk: Vec<Spanned<crate::Trunk>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenantPlugin {
    version: Option<Spanned<String>>,
    config: Option<Spanned<toml::Table>>,
    grants: Option<Vec<Spanned<String>>>,
    http_hosts: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    extension: Spanned<String>,
    password: Spanned<String>,
    display_name: Option<String>,
    rules: Option<Spanned<crate::CallRules>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDial {
    plugin: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    config: Option<Spanned<toml::Table>>,
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

struct Checker<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Checker<'_> {
    fn err(&self, span: Option<Range<usize>>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.path.to_path_buf(),
            position: Some(span.map_or((1, 1), |s| line_col(self.text, s.start))),
            message: message.into(),
        }
    }

    fn line(&self, span: &Range<usize>) -> usize {
        line_col(self.text, span.start).0
    }

    /// Resolves a configured path against the configuration file's folder.
    fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        match self.path.parent() {
            Some(base) if p.is_relative() => base.join(p),
            _ => p.to_path_buf(),
        }
    }

    fn server(&self, raw: Option<Spanned<RawServer>>) -> Result<ServerConfig, ConfigError> {
        let table_span = raw.as_ref().map(Spanned::span);
        let Some(s) = raw.map(Spanned::into_inner) else {
            return self.server(Some(Spanned::new(0..0, empty_server())));
        };
        let addr = |v: &Option<Spanned<String>>, key: &str, default: Option<SocketAddr>| match v {
            None => Ok(default),
            Some(v) if v.get_ref().eq_ignore_ascii_case("none") => Ok(None),
            Some(v) => v.get_ref().parse::<SocketAddr>().map(Some).map_err(|_| {
                self.err(
                    Some(v.span()),
                    format!(
                        "server.{key}: \"{}\" is not an address like \"0.0.0.0:5060\" or \"none\"",
                        v.get_ref()
                    ),
                )
            }),
        };
        let ip = |v: &Option<Spanned<String>>, key: &str| match v {
            None => Ok(None),
            Some(v) => v.get_ref().parse::<IpAddr>().map(Some).map_err(|_| {
                self.err(
                    Some(v.span()),
                    format!("server.{key}: \"{}\" is not an IP address", v.get_ref()),
                )
            }),
        };
        let sip_udp = addr(
            &s.sip_udp,
            "sip_udp",
            Some(SocketAddr::from(([0, 0, 0, 0], 5060))),
        )?;
        let sip_tcp = addr(&s.sip_tcp, "sip_tcp", None)?;
        if sip_udp.is_none() && sip_tcp.is_none() {
            let span = s.sip_udp.as_ref().map(Spanned::span).or(table_span.clone());
            return Err(self.err(
                span,
                "server: sip_udp and sip_tcp are both disabled; enable at least one",
            ));
        }
        let media_ip = ip(&s.media_ip, "media_ip")?.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let advertise_ip = ip(&s.advertise_ip, "advertise_ip")?;
        if advertise_ip.is_some_and(|a| a.is_unspecified())
            && let Some(v) = &s.advertise_ip
        {
            return Err(self.err(
                Some(v.span()),
                "server.advertise_ip: must be a specific address, not 0.0.0.0 or ::",
            ));
        }
        let rtp_ports = match &s.rtp_ports {
            None => (20000, 29999),
            Some(v) => parse_port_range(v.get_ref()).map_err(|why| {
                self.err(
                    Some(v.span()),
                    format!("server.rtp_ports: \"{}\": {why}", v.get_ref()),
                )
            })?,
        };
        let data_dir = self.resolve(s.data_dir.as_deref().unwrap_or("data"));
        let prompts_dir = self.resolve(s.prompts_dir.as_deref().unwrap_or("prompts"));
        let plugin_cache_dir = match &s.plugin_cache_dir {
            Some(p) => self.resolve(p),
            None => data_dir.join("plugin-cache"),
        };

        let num =
            |v: &Option<Spanned<u32>>, default: u32| v.as_ref().map_or(default, |v| *v.get_ref());
        let positive = |v: &Option<Spanned<u32>>, key: &str| -> Result<(), ConfigError> {
            match v {
                Some(x) if *x.get_ref() == 0 => Err(self.err(
                    Some(x.span()),
                    format!("server.{key}: must be greater than 0"),
                )),
                _ => Ok(()),
            }
        };
        for (v, key) in [
            (&s.register_min_expires, "register_min_expires"),
            (&s.register_max_expires, "register_max_expires"),
            (&s.register_default_expires, "register_default_expires"),
            (&s.plugin_memory_mb, "plugin_memory_mb"),
            (&s.plugin_cpu_ms, "plugin_cpu_ms"),
        ] {
            positive(v, key)?;
        }
        let min = num(&s.register_min_expires, 60);
        let max = num(&s.register_max_expires, 3600);
        let default = num(&s.register_default_expires, 3600);
        let span_of = |v: &Option<Spanned<u32>>| v.as_ref().map(Spanned::span);
        if min > max {
            let span = span_of(&s.register_max_expires)
                .or(span_of(&s.register_min_expires))
                .or(table_span.clone());
            return Err(self.err(
                span,
                format!(
                    "server: register_min_expires ({min}) is above register_max_expires ({max})"
                ),
            ));
        }
        if !(min..=max).contains(&default) {
            let span = span_of(&s.register_default_expires)
                .or(span_of(&s.register_min_expires))
                .or(span_of(&s.register_max_expires))
                .or(table_span);
            return Err(self.err(
                span,
                format!("server: register_default_expires ({default}) must lie between register_min_expires ({min}) and register_max_expires ({max})"),
            ));
        }
        let nonce_lifetime_secs = s.nonce_lifetime_secs.as_ref().map_or(300, |v| *v.get_ref());
        if nonce_lifetime_secs == 0
            && let Some(v) = &s.nonce_lifetime_secs
        {
            return Err(self.err(
                Some(v.span()),
                "server.nonce_lifetime_secs: must be greater than 0",
            ));
        }
        let digest_algorithms = match &s.digest_algorithms {
            None => vec!["SHA-256".to_string(), "MD5".to_string()],
            Some(v) => {
                let list = v.get_ref().clone();
                if list.is_empty()
                    || list.iter().any(|a| {
                        !a.eq_ignore_ascii_case("MD5") && !a.eq_ignore_ascii_case("SHA-256")
                    })
                {
                    return Err(self.err(
                        Some(v.span()),
                        "server.digest_algorithms: a non-empty list of \"SHA-256\" and \"MD5\"",
                    ));
                }
                list
            }
        };
        Ok(ServerConfig {
            digest_algorithms,
            sip_udp,
            sip_tcp,
            media_ip,
            advertise_ip,
            rtp_ports,
            data_dir,
            prompts_dir,
            plugin_cache_dir,
            register_min_expires: min,
            register_max_expires: max,
            register_default_expires: default,
            nonce_lifetime_secs,
            plugin_memory_mb: num(&s.plugin_memory_mb, 64),
            plugin_cpu_ms: num(&s.plugin_cpu_ms, 200),
            http_ca_file: s.http_ca_file.as_deref().map(|p| self.resolve(p)),
            mail_retry_ms: s
                .mail_retry_ms
                .as_ref()
                .map_or(5000, |v| *v.get_ref())
                .max(1),
            mail_retry_max_s: s
                .mail_retry_max_s
                .as_ref()
                .map_or(900, |v| *v.get_ref())
                .max(1),
        })
    }

    fn plugins(
        &self,
        raw: BTreeMap<Spanned<String>, RawPlugin>,
    ) -> Result<Vec<PluginDef>, ConfigError> {
        raw.into_iter()
            .map(|(name, p)| {
                if !valid_plugin_name(name.get_ref()) {
                    return Err(self.err(
                        Some(name.span()),
                        format!(
                            "plugin \"{}\": names use a-z, 0-9, '-' and '_' (at most 64, starting with a letter or digit)",
                            name.get_ref()
                        ),
                    ));
                }
                let grants = self.grants(&p.grants, &format!("plugin \"{}\"", name.get_ref()))?;
                Ok(PluginDef {
                    line: self.line(&name.span()),
                    path: self.resolve(&p.path),
                    name: name.into_inner(),
                    grants,
                    http_hosts: crate::normalize_hosts(p.http_hosts),
                })
            })
            .collect()
    }

    fn grants(&self, raw: &[Spanned<String>], ctx: &str) -> Result<Vec<String>, ConfigError> {
        for g in raw {
            crate::check_grant(g.get_ref())
                .map_err(|e| self.err(Some(g.span()), format!("{ctx}: {e}")))?;
        }
        let all = raw.iter().map(|g| g.get_ref().clone()).collect();
        crate::normalize_grants(all).map_err(|e| self.err(None, format!("{ctx}: {e}")))
    }

    fn tenant_plugins(
        &self,
        raw: BTreeMap<Spanned<String>, RawTenantPlugin>,
        plugins: &[PluginDef],
        ctx: &str,
    ) -> Result<Vec<TenantPlugin>, ConfigError> {
        let mut out = Vec::new();
        for (name, p) in raw {
            let Some(def) = plugins.iter().find(|d| &d.name == name.get_ref()) else {
                return Err(self.err(
                    Some(name.span()),
                    format!(
                        "{ctx}: plugins.{}: not defined under [plugins]",
                        name.get_ref()
                    ),
                ));
            };
            let mut config = Vec::new();
            if let Some(c) = &p.config {
                flatten("", c.get_ref(), &mut config);
            }
            config.sort();
            let grants = match &p.grants {
                Some(g) => self.grants(g, &format!("{ctx}: plugins.{}", name.get_ref()))?,
                None => def.grants.clone(),
            };
            out.push(TenantPlugin {
                name: name.into_inner(),
                version: p.version.map(Spanned::into_inner),
                previous_version: None,
                config,
                grants,
                http_hosts: p
                    .http_hosts
                    .map(crate::normalize_hosts)
                    .unwrap_or_else(|| def.http_hosts.clone()),
            });
        }
        Ok(out)
    }

    fn tenant(&self, raw: RawTenant, plugins: &[PluginDef]) -> Result<Tenant, ConfigError> {
        let domain = raw.domain.get_ref().to_ascii_lowercase();
        if !valid_domain(&domain) {
            return Err(self.err(
                Some(raw.domain.span()),
                format!(
                    "tenant \"{}\": not a valid domain name",
                    raw.domain.get_ref()
                ),
            ));
        }
        let ctx = format!("tenant \"{domain}\"");
        let language = match raw.language {
            None => "en".to_string(),
            Some(l) if valid_language(l.get_ref()) => l.into_inner(),
            Some(l) => {
                return Err(self.err(
                    Some(l.span()),
                    format!(
                        "{ctx}: language \"{}\": use a tag like \"en\" or \"pt-BR\"",
                        l.get_ref()
                    ),
                ));
            }
        };

        let mut language_fallback = Vec::new();
        for l in &raw.language_fallback {
            if !valid_language(l.get_ref()) {
                return Err(self.err(
                    Some(l.span()),
                    format!(
                        "{ctx}: language_fallback \"{}\": use a tag like \"en\"",
                        l.get_ref()
                    ),
                ));
            }
            language_fallback.push(l.get_ref().clone());
        }
        let timezone = match &raw.timezone {
            None => "UTC".to_string(),
            Some(tz) if crate::valid_timezone(tz.get_ref()) => tz.get_ref().clone(),
            Some(tz) => {
                return Err(self.err(
                    Some(tz.span()),
                    format!(
                        "{ctx}: timezone \"{}\" is not an IANA time zone like \"Europe/Berlin\"",
                        tz.get_ref()
                    ),
                ));
            }
        };
        // CA files are relative to the configuration file, like other paths.
        let mut raw_mail = raw.mail;
        if let Some(ca) = raw_mail.as_mut().and_then(|m| m.get_mut().ca_file.as_mut()) {
            *ca = self.resolve(&ca.to_string_lossy());
        }
        let mut raw_directory = raw.directory;
        if let Some(ca) = raw_directory
            .as_mut()
            .and_then(|d| d.get_mut().ca_file.as_mut())
        {
            *ca = self.resolve(&ca.to_string_lossy());
        }
        let mail = self.checked(raw_mail, &ctx, "mail", |m| m.check())?;
        let directory = self.checked(raw_directory, &ctx, "directory", |d| d.check())?;
        let numbering = self.checked(raw.numbering, &ctx, "numbering", |n| n.check())?;
        if directory.is_some() && numbering.is_none() {
            return Err(self.err(
                None,
                format!("{ctx}: [directory] needs a [numbering] plan to read numbers"),
            ));
        }
        let mut trunks: Vec<crate::Trunk> = Vec::new();
        for t in raw.trunk {
            let span = t.span();
            let t = t.into_inner();
            if let Err(e) = crate::check_trunk(&t, &trunks) {
                return Err(self.err(Some(span), format!("{ctx}: {e}")));
            }
            trunks.push(t);
        }
        let limits = match raw.limits {
            None => crate::Limits::default(),
            Some(l) => {
                l.get_ref()
                    .check()
                    .map_err(|e| self.err(Some(l.span()), format!("{ctx}: {e}")))?;
                l.into_inner()
            }
        };
        let mut users: Vec<User> = Vec::with_capacity(raw.user.len());
        for u in raw.user {
            let ext = u.extension.get_ref();
            if !valid_number(ext) {
                return Err(self.err(
                    Some(u.extension.span()),
                    format!(
                        "{ctx}: user \"{ext}\": extensions use 1 to 32 of A-Z a-z 0-9 . _ - + * #"
                    ),
                ));
            }
            if users.iter().any(|x| &x.extension == ext) {
                return Err(self.err(
                    Some(u.extension.span()),
                    format!("{ctx}: user \"{ext}\": duplicate extension"),
                ));
            }
            if u.password.get_ref().is_empty() {
                return Err(self.err(
                    Some(u.password.span()),
                    format!("{ctx}: user \"{ext}\": empty password"),
                ));
            }
            let rules = match u.rules {
                None => crate::CallRules::default(),
                Some(r) => {
                    r.get_ref().check().map_err(|e| {
                        self.err(Some(r.span()), format!("{ctx}: user \"{ext}\": {e}"))
                    })?;
                    r.into_inner()
                }
            };
            users.push(User {
                extension: u.extension.into_inner(),
                password: u.password.into_inner(),
                display_name: u.display_name,
                rules,
            });
        }

        let mut dialplan = Vec::with_capacity(raw.dialplan.len());
        for (number, entry) in raw.dialplan {
            let num = number.get_ref();
            if !valid_number(num) {
                return Err(self.err(
                    Some(number.span()),
                    format!(
                        "{ctx}: dial plan \"{num}\": numbers use 1 to 32 of A-Z a-z 0-9 . _ - + * #"
                    ),
                ));
            }
            let ctx = format!("{ctx}: dial plan \"{num}\"");
            let entry_span = entry.span();
            let e = entry.into_inner();
            let target = match (e.plugin, e.user) {
                (Some(p), None) => {
                    if !plugins.iter().any(|d| &d.name == p.get_ref()) {
                        let known: Vec<&str> = plugins.iter().map(|d| d.name.as_str()).collect();
                        let known = if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        };
                        return Err(self.err(
                            Some(p.span()),
                            format!(
                                "{ctx}: unknown plugin \"{}\" (defined plugins: {known})",
                                p.get_ref()
                            ),
                        ));
                    }
                    let mut config = Vec::new();
                    if let Some(c) = e.config {
                        flatten("", c.get_ref(), &mut config);
                    }
                    config.sort();
                    DialTarget::Plugin {
                        name: p.into_inner(),
                        config,
                    }
                }
                (None, Some(u)) => {
                    if let Some(c) = &e.config {
                        return Err(self.err(
                            Some(c.span()),
                            format!("{ctx}: config is only allowed with plugin, not with user"),
                        ));
                    }
                    if !users.iter().any(|x| &x.extension == u.get_ref()) {
                        return Err(self.err(
                            Some(u.span()),
                            format!("{ctx}: unknown user \"{}\" in this tenant", u.get_ref()),
                        ));
                    }
                    DialTarget::User(u.into_inner())
                }
                (Some(_), Some(u)) => {
                    return Err(self.err(
                        Some(u.span()),
                        format!("{ctx}: give either plugin or user, not both"),
                    ));
                }
                (None, None) => {
                    return Err(self.err(
                        Some(entry_span),
                        format!("{ctx}: missing target: add plugin = \"...\" or user = \"...\""),
                    ));
                }
            };
            dialplan.push(DialEntry {
                number: number.into_inner(),
                target,
            });
        }
        let mut tenant_plugins = self.tenant_plugins(raw.plugins, plugins, &ctx)?;
        // A plugin named in the dial plan is enabled with the server's default grants.
        for e in &dialplan {
            if let DialTarget::Plugin { name, .. } = &e.target
                && !tenant_plugins.iter().any(|p| &p.name == name)
                && let Some(def) = plugins.iter().find(|d| &d.name == name)
            {
                tenant_plugins.push(TenantPlugin {
                    name: name.clone(),
                    version: None,
                    previous_version: None,
                    config: Vec::new(),
                    grants: def.grants.clone(),
                    http_hosts: def.http_hosts.clone(),
                });
            }
        }
        tenant_plugins.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Tenant {
            domain,
            language,
            language_fallback,
            timezone,
            limits,
            users,
            dialplan,
            plugins: tenant_plugins,
            mail,
            directory,
            numbering,
            trunks,
        })
    }

    /// Runs `check` on an optional table; its error points at the table.
    fn checked<T>(
        &self,
        value: Option<Spanned<T>>,
        ctx: &str,
        name: &str,
        check: impl Fn(&T) -> Result<(), String>,
    ) -> Result<Option<T>, ConfigError> {
        let Some(v) = value else { return Ok(None) };
        check(v.get_ref()).map_err(|e| self.err(Some(v.span()), format!("{ctx}: [{name}] {e}")))?;
        Ok(Some(v.into_inner()))
    }
}

fn empty_server() -> RawServer {
    RawServer {
        sip_udp: None,
        sip_tcp: None,
        media_ip: None,
        advertise_ip: None,
        rtp_ports: None,
        data_dir: None,
        prompts_dir: None,
        plugin_cache_dir: None,
        register_min_expires: None,
        register_max_expires: None,
        register_default_expires: None,
        nonce_lifetime_secs: None,
        digest_algorithms: None,
        plugin_memory_mb: None,
        plugin_cpu_ms: None,
        http_ca_file: None,
        mail_retry_ms: None,
        mail_retry_max_s: None,
    }
}

/// Flattens a plugin `config` table: dotted keys, strings unquoted, other values as TOML text.
pub(crate) fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<(String, String)>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::String(s) => out.push((key, s.clone())),
            toml::Value::Table(t) => flatten(&key, t, out),
            other => out.push((key, other.to_string())),
        }
    }
}

/// Parses `"20000-29999"` into an inclusive range of at least two ports.
fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| "expected FIRST-LAST, e.g. \"20000-29999\"".to_string())?;
    let port = |p: &str| {
        p.trim()
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| format!("\"{}\" is not a port number (1-65535)", p.trim()))
    };
    let (a, b) = (port(a)?, port(b)?);
    if a >= b {
        return Err("the first port must be below the last (RTP needs at least two ports)".into());
    }
    Ok((a, b))
}

pub(crate) fn valid_plugin_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Host names (already lower-cased): labels of a-z, 0-9, '-', '_' separated by single dots.
pub(crate) fn valid_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        })
}

/// Prompt language tags; they become a folder name, so no separators or dots.
pub(crate) fn valid_language(s: &str) -> bool {
    (2..=16).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Extensions and dialled numbers.
pub fn valid_number(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+' | b'*' | b'#')
        })
}

pub(crate) fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let ck = Checker { text, path };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        // toml's message may span several lines with a source excerpt; keep the first.
        let msg = e
            .message()
            .lines()
            .next()
            .unwrap_or("invalid TOML")
            .trim()
            .to_string();
        ck.err(e.span(), msg)
    })?;
    let server = ck.server(raw.server)?;
    let plugins = ck.plugins(raw.plugins)?;
    let mut tenants: Vec<Tenant> = Vec::with_capacity(raw.tenant.len());
    let mut seen = HashSet::new();
    for t in raw.tenant {
        let span = t.domain.span();
        let tenant = ck.tenant(t, &plugins)?;
        if !seen.insert(tenant.domain.clone()) {
            return Err(ck.err(
                Some(span),
                format!("tenant \"{}\": duplicate domain", tenant.domain),
            ));
        }
        for trunk in &tenant.trunks {
            if let Some(other) = tenants.iter().find(|o| o.trunk_at(trunk.address).is_some()) {
                return Err(ck.err(
                    Some(span),
                    format!(
                        "tenant \"{}\": trunk {:?} at {} is already a trunk of tenant \"{}\" (a peer belongs to one tenant)",
                        tenant.domain, trunk.name, trunk.address, other.domain
                    ),
                ));
            }
        }
        tenants.push(tenant);
    }
    let admin = ck.admin(raw.admin)?;
    let trust = TrustConfig {
        dir: raw
            .trust
            .as_ref()
            .and_then(|t| t.dir.as_deref())
            .map(|d| ck.resolve(d))
            .unwrap_or_else(|| server.data_dir.join("trust")),
        allow_unsigned: raw.trust.as_ref().is_some_and(|t| t.allow_unsigned),
    };
    let licence = ck.licence(raw.licence, &server.data_dir)?;
    let clock_file = raw
        .testing
        .and_then(|t| t.clock_file)
        .map(|f| ck.resolve(&f));
    Ok(Config {
        server,
        plugins,
        tenants,
        admin,
        trust,
        licence,
        clock_file,
        source: path.to_path_buf(),
    })
}

impl Checker<'_> {
    fn licence(
        &self,
        raw: Option<RawLicence>,
        data_dir: &Path,
    ) -> Result<LicenceConfig, ConfigError> {
        let Some(l) = raw else {
            return Ok(LicenceConfig {
                site: String::new(),
                dir: data_dir.join("licences"),
                issuer_keys: Vec::new(),
            });
        };
        let site = match &l.site {
            None => String::new(),
            Some(v) => {
                let site = v.get_ref().trim().to_ascii_lowercase();
                if site.is_empty() || site.contains(char::is_whitespace) || site == "*" {
                    return Err(self.err(
                        Some(v.span()),
                        "licence.site: the name of this installation as licences state it, \
                         like \"pbx1.example.com\"",
                    ));
                }
                site
            }
        };
        Ok(LicenceConfig {
            site,
            dir: l
                .dir
                .as_deref()
                .map(|d| self.resolve(d))
                .unwrap_or_else(|| data_dir.join("licences")),
            issuer_keys: l.issuer_keys.iter().map(|k| self.resolve(k)).collect(),
        })
    }

    fn admin(&self, raw: Option<RawAdmin>) -> Result<AdminConfig, ConfigError> {
        let Some(a) = raw else {
            return Ok(AdminConfig::default());
        };
        let listen = match &a.listen {
            None => None,
            Some(v) => Some(v.get_ref().parse::<SocketAddr>().map_err(|_| {
                self.err(
                    Some(v.span()),
                    format!(
                        "admin.listen: \"{}\" is not an address like \"127.0.0.1:8090\"",
                        v.get_ref()
                    ),
                )
            })?),
        };
        let token = |t: &Spanned<String>, key: &str| {
            if t.get_ref().len() < 16 {
                Err(self.err(
                    Some(t.span()),
                    format!("admin.{key}: tokens need at least 16 characters"),
                ))
            } else {
                Ok(t.get_ref().clone())
            }
        };
        let operator_token = a
            .operator_token
            .as_ref()
            .map(|t| token(t, "operator_token"))
            .transpose()?;
        if listen.is_some() && operator_token.is_none() {
            return Err(self.err(
                a.listen.as_ref().map(Spanned::span),
                "admin: listen needs an operator_token",
            ));
        }
        let mut tenant_tokens = Vec::new();
        for (domain, t) in &a.tenant_tokens {
            tenant_tokens.push((
                domain.to_ascii_lowercase(),
                token(t, &format!("tenant_tokens.\"{domain}\""))?,
            ));
        }
        Ok(AdminConfig {
            listen,
            operator_token,
            tenant_tokens,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_not_bytes() {
        let t = "a\nbé=c\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 2), (2, 1));
        assert_eq!(line_col(t, 5), (2, 3)); // after "bé" (3 bytes)
        assert_eq!(line_col(t, 4), (2, 2)); // inside 'é': clamps to its start
        assert_eq!(line_col(t, 999), (3, 1));
    }

    #[test]
    fn port_ranges() {
        assert_eq!(parse_port_range("20000-20999"), Ok((20000, 20999)));
        assert_eq!(parse_port_range(" 10 - 12 "), Ok((10, 12)));
        assert!(parse_port_range("20000").is_err());
        assert!(parse_port_range("0-10").is_err());
        assert!(parse_port_range("100-100").is_err());
        assert!(parse_port_range("200-100").is_err());
        assert!(parse_port_range("1-70000").is_err());
    }

    #[test]
    fn name_rules() {
        assert!(valid_domain("demo.plugboard.test"));
        assert!(valid_domain("192.0.2.1"));
        assert!(!valid_domain("a..b"));
        assert!(!valid_domain("a/b"));
        assert!(!valid_domain(".."));
        assert!(valid_language("pt-BR"));
        assert!(!valid_language("../en"));
        assert!(valid_number("*98"));
        assert!(!valid_number("1 0"));
        assert!(valid_plugin_name("voice_mail-2"));
        assert!(!valid_plugin_name("Voice"));
        assert!(!valid_plugin_name("-x"));
    }
}
