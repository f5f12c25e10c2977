//! `[directory]`: which LDAP servers to ask, how, and which attributes mean what.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The default search filter (OpenLDAP `inetOrgPerson`).
pub const DEFAULT_FILTER: &str =
    "(&(objectClass=person)(|(telephoneNumber={number})(telephoneNumber={extension})))";

/// The placeholders a filter may contain.
pub const FILTER_PLACEHOLDERS: [&str; 2] = ["{number}", "{extension}"];

/// The tenant's directory: `[directory]` in the tenant configuration.
///
/// See the crate documentation for an OpenLDAP and an Active Directory example.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// `ldap://host[:port]` or `ldaps://host[:port]` URLs, tried in order: the
    /// next one is used when a server cannot be reached, refuses the bind or
    /// fails the search.
    pub servers: Vec<String>,
    /// DN to bind as (simple bind); anonymous when absent.
    #[serde(default)]
    pub bind_dn: Option<String>,
    /// Password for `bind_dn`.
    #[serde(default)]
    pub bind_password: Option<String>,
    /// Search bases; every base is searched (whole subtree).
    pub bases: Vec<String>,
    /// Search filter; `{number}` is replaced by the E.164 form
    /// (`+4981424799123`), `{extension}` by the extension (`123`) or, for
    /// outside numbers, by the E.164 form again. Values are escaped.
    #[serde(default = "default_filter")]
    pub filter: String,
    /// Attribute holding the phone number.
    #[serde(default = "default_number")]
    pub number: String,
    /// Attribute holding the mail address.
    #[serde(default = "default_mail")]
    pub mail: String,
    /// Attribute holding the display name; `cn` is used when it is missing.
    #[serde(default = "default_display_name")]
    pub display_name: String,
    /// Attribute holding the voicemail PIN hash, if the directory keeps one.
    #[serde(default)]
    pub pin_hash: Option<String>,
    /// How long answers (found and not found) are cached, in seconds; 0 turns
    /// the cache off.
    #[serde(default = "default_cache_ttl_s")]
    pub cache_ttl_s: u64,
    /// Most numbers kept in the cache.
    #[serde(default = "default_cache_size")]
    pub cache_size: usize,
    /// Time one server may take for connect, bind and search, in seconds.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: u64,
    /// PEM file with the CA certificate(s) that signed the servers'
    /// certificates (`ldaps://`); the system roots when absent.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_filter() -> String {
    DEFAULT_FILTER.to_owned()
}
fn default_number() -> String {
    "telephoneNumber".to_owned()
}
fn default_mail() -> String {
    "mail".to_owned()
}
fn default_display_name() -> String {
    "displayName".to_owned()
}
fn default_cache_ttl_s() -> u64 {
    300
}
fn default_cache_size() -> usize {
    10_000
}
fn default_timeout_s() -> u64 {
    5
}

/// Like the derived one, but the password is shown as `"***"`.
impl std::fmt::Debug for DirectoryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryConfig")
            .field("servers", &self.servers)
            .field("bind_dn", &self.bind_dn)
            .field("bind_password", &self.bind_password.as_ref().map(|_| "***"))
            .field("bases", &self.bases)
            .field("filter", &self.filter)
            .field("number", &self.number)
            .field("mail", &self.mail)
            .field("display_name", &self.display_name)
            .field("pin_hash", &self.pin_hash)
            .field("cache_ttl_s", &self.cache_ttl_s)
            .field("cache_size", &self.cache_size)
            .field("timeout_s", &self.timeout_s)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl DirectoryConfig {
    /// A configuration with the defaults for everything but servers and bases.
    pub fn new(servers: Vec<String>, bases: Vec<String>) -> Self {
        DirectoryConfig {
            servers,
            bind_dn: None,
            bind_password: None,
            bases,
            filter: default_filter(),
            number: default_number(),
            mail: default_mail(),
            display_name: default_display_name(),
            pin_hash: None,
            cache_ttl_s: default_cache_ttl_s(),
            cache_size: default_cache_size(),
            timeout_s: default_timeout_s(),
            ca_file: None,
        }
    }

    /// Validate the configuration; the message names the offending field.
    pub fn check(&self) -> Result<(), String> {
        if self.servers.is_empty() {
            return Err(
                "directory.servers is empty: name at least one ldap:// or ldaps:// URL".to_owned(),
            );
        }
        for (i, url) in self.servers.iter().enumerate() {
            check_url(url).map_err(|e| format!("directory.servers[{i}] = {url:?}: {e}"))?;
        }
        match (&self.bind_dn, &self.bind_password) {
            (Some(dn), Some(_)) if dn.trim().is_empty() => {
                return Err("directory.bind_dn is empty: remove it to bind anonymously".to_owned());
            }
            (Some(_), Some(pw)) if pw.is_empty() => {
                return Err(
                    "directory.bind_password is empty: LDAP servers treat a bind with a DN and no password as anonymous; remove both for an anonymous bind".to_owned(),
                );
            }
            (Some(_), None) => {
                return Err(
                    "directory.bind_dn is set but directory.bind_password is missing".to_owned(),
                );
            }
            (None, Some(_)) => {
                return Err(
                    "directory.bind_password is set but directory.bind_dn is missing".to_owned(),
                );
            }
            _ => {}
        }
        if self.bases.is_empty() {
            return Err(
                "directory.bases is empty: name at least one search base, e.g. \"ou=people,dc=example,dc=com\"".to_owned(),
            );
        }
        for (i, base) in self.bases.iter().enumerate() {
            if base.trim().is_empty() || !base.contains('=') {
                return Err(format!(
                    "directory.bases[{i}] = {base:?} is not a DN, e.g. \"ou=people,dc=example,dc=com\""
                ));
            }
        }
        check_filter(&self.filter)
            .map_err(|e| format!("directory.filter = {:?}: {e}", self.filter))?;
        check_attribute("number", &self.number)?;
        check_attribute("mail", &self.mail)?;
        check_attribute("display_name", &self.display_name)?;
        if let Some(attr) = &self.pin_hash {
            check_attribute("pin_hash", attr)?;
        }
        if self.cache_size == 0 && self.cache_ttl_s > 0 {
            return Err(
                "directory.cache_size is 0: set cache_ttl_s = 0 to turn the cache off".to_owned(),
            );
        }
        if self.timeout_s == 0 || self.timeout_s > 300 {
            return Err(format!(
                "directory.timeout_s = {}: use 1 to 300 seconds",
                self.timeout_s
            ));
        }
        if let Some(path) = &self.ca_file
            && path.as_os_str().is_empty()
        {
            return Err("directory.ca_file is empty: remove it to use the system roots".to_owned());
        }
        Ok(())
    }
}

fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("ldap://")
        .or_else(|| url.strip_prefix("ldaps://"))
        .ok_or("use an ldap:// or ldaps:// URL")?;
    let host = rest.split('/').next().unwrap_or_default();
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !host.ends_with(']') => (name, Some(port)),
        _ => (host, None),
    };
    if name.is_empty() || name == "[]" {
        return Err("the URL names no host".to_owned());
    }
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Err(format!("{port:?} is not a port"));
    }
    if rest.len() > host.len()
        && rest[host.len()..]
            .trim_start_matches('/')
            .contains(|c| c != '/')
    {
        return Err(
            "put search bases in directory.bases, not in the URL (write just ldap://host:port)"
                .to_owned(),
        );
    }
    Ok(())
}

fn check_filter(filter: &str) -> Result<(), String> {
    let filter = filter.trim();
    if !filter.starts_with('(') || !filter.ends_with(')') {
        return Err("a filter must be enclosed in parentheses".to_owned());
    }
    let mut depth = 0i32;
    for ch in filter.chars() {
        match ch {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err("unbalanced parentheses".to_owned());
                }
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced parentheses".to_owned());
    }
    let mut rest = filter;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            return Err("a '{' without '}'".to_owned());
        };
        let name = &rest[start..start + len + 1];
        if !FILTER_PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder {name}: use {{number}} and/or {{extension}}"
            ));
        }
        rest = &rest[start + len + 1..];
    }
    if !FILTER_PLACEHOLDERS.iter().any(|p| filter.contains(p)) {
        return Err("the filter uses neither {number} nor {extension}, so it would match the same entries for every number".to_owned());
    }
    // Syntax check by ldap3's own parser, with sample values.
    let sample = expand_filter(filter, "+4981424799123", "123");
    if ldap3::parse_filter(&sample).is_err() {
        return Err("not a valid LDAP filter".to_owned());
    }
    Ok(())
}

/// Replace `{number}` and `{extension}` in `filter` by the escaped values (one
/// pass: text coming from a value is never expanded again).
pub(crate) fn expand_filter(filter: &str, number: &str, extension: &str) -> String {
    let mut out = String::with_capacity(filter.len() + 2 * number.len());
    let mut rest = filter;
    loop {
        let next = FILTER_PLACEHOLDERS
            .iter()
            .filter_map(|p| rest.find(p).map(|at| (at, *p)))
            .min();
        let Some((at, placeholder)) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..at]);
        let value = if placeholder == "{number}" {
            number
        } else {
            extension
        };
        out.push_str(&ldap3::ldap_escape(value));
        rest = &rest[at + placeholder.len()..];
    }
}

fn check_attribute(field: &str, attr: &str) -> Result<(), String> {
    let ok = !attr.is_empty()
        && attr
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == ';')
        && attr
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "directory.{field} = {attr:?} is not an attribute name (letters, digits and '-', e.g. \"telephoneNumber\")"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> DirectoryConfig {
        DirectoryConfig::new(
            vec![
                "ldap://127.0.0.1:3890".into(),
                "ldaps://ldap2.example.com".into(),
            ],
            vec!["ou=people,dc=example,dc=com".into()],
        )
    }

    #[test]
    fn defaults_from_toml() {
        let config: DirectoryConfig = toml_like(
            r#"{"servers": ["ldap://ldap.example.com"], "bases": ["dc=example,dc=com"]}"#,
        );
        assert_eq!(config.filter, DEFAULT_FILTER);
        assert_eq!(config.number, "telephoneNumber");
        assert_eq!(config.mail, "mail");
        assert_eq!(config.display_name, "displayName");
        assert_eq!(config.cache_ttl_s, 300);
        assert_eq!(config.timeout_s, 5);
        assert_eq!(config.pin_hash, None);
        config.check().unwrap();
    }

    fn toml_like(json: &str) -> DirectoryConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn debug_hides_the_password() {
        let config = DirectoryConfig {
            bind_dn: Some("cn=pbx".into()),
            bind_password: Some("hunter2".into()),
            ..base()
        };
        let text = format!("{config:?}");
        assert!(
            !text.contains("hunter2") && text.contains("\"***\""),
            "{text}"
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = serde_json::from_str::<DirectoryConfig>(
            r#"{"servers": ["ldap://x"], "bases": ["dc=x"], "server": "ldap://y"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `server`"), "{err}");
    }

    #[test]
    fn filter_expansion_escapes_values() {
        assert_eq!(
            expand_filter(DEFAULT_FILTER, "+4981424799123", "123"),
            "(&(objectClass=person)(|(telephoneNumber=+4981424799123)(telephoneNumber=123)))"
        );
        assert_eq!(
            expand_filter("(|(a={extension})(b={number}))", "*)(uid=*", "{number}"),
            "(|(a=\\7bnumber\\7d)(b=\\2a\\29\\28uid=\\2a))"
                .replace("\\7b", "{")
                .replace("\\7d", "}")
        );
    }

    #[test]
    fn check_messages_name_the_field() {
        let cases: Vec<(DirectoryConfig, &str)> = vec![
            (
                DirectoryConfig {
                    servers: vec![],
                    ..base()
                },
                "directory.servers is empty",
            ),
            (
                DirectoryConfig {
                    servers: vec!["ldap.example.com".into()],
                    ..base()
                },
                "directory.servers[0] = \"ldap.example.com\": use an ldap:// or ldaps:// URL",
            ),
            (
                DirectoryConfig {
                    servers: vec!["ldap://a".into(), "http://b".into()],
                    ..base()
                },
                "directory.servers[1]",
            ),
            (
                DirectoryConfig {
                    servers: vec!["ldap://:389".into()],
                    ..base()
                },
                "names no host",
            ),
            (
                DirectoryConfig {
                    servers: vec!["ldap://h:ldap".into()],
                    ..base()
                },
                "\"ldap\" is not a port",
            ),
            (
                DirectoryConfig {
                    servers: vec!["ldap://h/dc=example,dc=com".into()],
                    ..base()
                },
                "put search bases in directory.bases",
            ),
            (
                DirectoryConfig {
                    bind_dn: Some("cn=admin".into()),
                    ..base()
                },
                "directory.bind_password is missing",
            ),
            (
                DirectoryConfig {
                    bind_password: Some("x".into()),
                    ..base()
                },
                "directory.bind_dn is missing",
            ),
            (
                DirectoryConfig {
                    bind_dn: Some("cn=admin".into()),
                    bind_password: Some("".into()),
                    ..base()
                },
                "directory.bind_password is empty",
            ),
            (
                DirectoryConfig {
                    bases: vec![],
                    ..base()
                },
                "directory.bases is empty",
            ),
            (
                DirectoryConfig {
                    bases: vec!["people".into()],
                    ..base()
                },
                "directory.bases[0] = \"people\" is not a DN",
            ),
            (
                DirectoryConfig {
                    filter: "objectClass=person".into(),
                    ..base()
                },
                "directory.filter = \"objectClass=person\": a filter must be enclosed in parentheses",
            ),
            (
                DirectoryConfig {
                    filter: "(&(objectClass=person)(mobile={number})".into(),
                    ..base()
                },
                "unbalanced parentheses",
            ),
            (
                DirectoryConfig {
                    filter: "(telephoneNumber={phone})".into(),
                    ..base()
                },
                "unknown placeholder {phone}",
            ),
            (
                DirectoryConfig {
                    filter: "(objectClass=person)".into(),
                    ..base()
                },
                "neither {number} nor {extension}",
            ),
            (
                DirectoryConfig {
                    filter: "(telephoneNumber~~{number})".into(),
                    ..base()
                },
                "not a valid LDAP filter",
            ),
            (
                DirectoryConfig {
                    mail: "e mail".into(),
                    ..base()
                },
                "directory.mail = \"e mail\" is not an attribute name",
            ),
            (
                DirectoryConfig {
                    pin_hash: Some("".into()),
                    ..base()
                },
                "directory.pin_hash",
            ),
            (
                DirectoryConfig {
                    timeout_s: 0,
                    ..base()
                },
                "directory.timeout_s = 0",
            ),
            (
                DirectoryConfig {
                    cache_size: 0,
                    ..base()
                },
                "directory.cache_size is 0",
            ),
            (
                DirectoryConfig {
                    ca_file: Some(PathBuf::new()),
                    ..base()
                },
                "directory.ca_file is empty",
            ),
        ];
        for (config, want) in cases {
            let err = config.check().expect_err(want);
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
        base().check().unwrap();
        DirectoryConfig {
            cache_size: 0,
            cache_ttl_s: 0,
            ..base()
        }
        .check()
        .unwrap();
        DirectoryConfig {
            servers: vec!["ldap://[::1]:389".into(), "ldap://h/".into()],
            ..base()
        }
        .check()
        .unwrap();
    }

    #[test]
    fn active_directory_example_is_valid() {
        let config = DirectoryConfig {
            bind_dn: Some("CN=pbx,OU=Service,DC=corp,DC=example".into()),
            bind_password: Some("secret".into()),
            filter: "(&(objectCategory=person)(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2))(|(ipPhone={extension})(telephoneNumber={number})))".into(),
            number: "ipPhone".into(),
            mail: "userPrincipalName".into(),
            ..base()
        };
        config.check().unwrap();
    }
}
