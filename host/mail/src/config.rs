//! The per-tenant SMTP settings (`[mail]` table of a tenant) and their checks.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::Tokio1Executor;
use lettre::message::Mailbox;
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use serde::{Deserialize, Serialize};

/// Default SMTP command timeout when `timeout_s` is not set.
pub const DEFAULT_TIMEOUT_S: u32 = 30;
/// Largest accepted `timeout_s`.
pub const MAX_TIMEOUT_S: u32 = 3600;

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain text, no TLS at all (only sensible for a relay on the same host).
    None,
    /// Plain connection upgraded with STARTTLS, which is required: a server
    /// that does not offer it is an error (port 587 by default).
    #[default]
    Starttls,
    /// Implicit TLS from the first byte, "SMTPS" (port 465 by default).
    Tls,
}

impl Security {
    /// The port used when `port` is not configured: 25, 587 or 465.
    pub fn default_port(self) -> u16 {
        match self {
            Security::None => 25,
            Security::Starttls => 587,
            Security::Tls => 465,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Security::None => "none",
            Security::Starttls => "starttls",
            Security::Tls => "tls",
        }
    }
}

/// SMTP settings of one tenant: the `[mail]` table of its configuration.
///
/// ```toml
/// [mail]
/// host = "smtp.example.com"
/// security = "starttls"        # "none" | "starttls" (default) | "tls"
/// username = "pbx"
/// password = "secret"
/// from = "Voicemail <vm@example.com>"
/// # port = 587                 # default by security: 25 / 587 / 465
/// # ca_file = "/etc/plugboard/private-ca.pem"
/// # timeout_s = 30
/// ```
///
/// `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Host name or IP address of the SMTP server (also the TLS server name).
    pub host: String,
    /// TCP port; defaults by `security` (see [`Security::default_port`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Connection protection; defaults to `starttls`.
    #[serde(default)]
    pub security: Security,
    /// User name for SMTP AUTH; needs `password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password for SMTP AUTH; needs `username`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The sender mailbox, e.g. `Voicemail <vm@example.com>` (From header and envelope sender).
    pub from: String,
    /// Extra trusted root certificate(s), PEM, e.g. a private CA; added to the
    /// system roots. Read when the connection settings are (re)built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Timeout of each SMTP step in seconds (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u32>,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("ca_file", &self.ca_file)
            .field("timeout_s", &self.timeout_s)
            .finish()
    }
}

impl SmtpConfig {
    /// The port actually used: `port`, or the default of `security`.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.security.default_port())
    }

    /// The SMTP step timeout actually used.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S)))
    }

    /// The parsed `from` mailbox.
    pub(crate) fn sender_mailbox(&self) -> Result<Mailbox, String> {
        self.from.trim().parse::<Mailbox>().map_err(|_| {
            format!(
                "mail.from: {:?} is not a mail address (expected e.g. \"Voicemail <vm@example.com>\")",
                self.from
            )
        })
    }

    /// Checks the settings; the error names the offending field in the
    /// operator's terms (`mail.<field>`). Also reads and parses `ca_file`.
    pub fn check(&self) -> Result<(), String> {
        check_host(&self.host)?;
        if self.port == Some(0) {
            return Err("mail.port: 0 is not a valid port".to_string());
        }
        match (&self.username, &self.password) {
            (Some(u), _) if u.is_empty() => {
                return Err(
                    "mail.username: must not be empty (leave username and password out for no authentication)"
                        .to_string(),
                );
            }
            (Some(_), None) => {
                return Err("mail.username is set but mail.password is not".to_string());
            }
            (None, Some(_)) => {
                return Err("mail.password is set but mail.username is not".to_string());
            }
            _ => {}
        }
        if self.password.is_some() && self.security == Security::None && !is_loopback(&self.host) {
            return Err(format!(
                "mail.password would be sent unencrypted to {}: set mail.security to \"starttls\" or \"tls\"",
                self.host
            ));
        }
        self.sender_mailbox()?;
        if let Some(t) = self.timeout_s
            && !(1..=MAX_TIMEOUT_S).contains(&t)
        {
            return Err(format!(
                "mail.timeout_s: must be 1..={MAX_TIMEOUT_S} seconds (got {t})"
            ));
        }
        if self.ca_file.is_some() && self.security == Security::None {
            return Err(
                "mail.ca_file is set but mail.security is \"none\" (there is no TLS to use it for)"
                    .to_string(),
            );
        }
        self.tls().map(|_| ())
    }

    /// The lettre TLS mode, with `ca_file` loaded.
    pub(crate) fn tls(&self) -> Result<Tls, String> {
        if self.security == Security::None {
            return Ok(Tls::None);
        }
        let mut builder = TlsParameters::builder(self.host.clone());
        if let Some(path) = &self.ca_file {
            builder = builder.add_root_certificate(load_ca(path)?);
        }
        let params = builder.build().map_err(|e| {
            format!(
                "mail.security = \"{}\": cannot set up TLS for {}: {}",
                self.security.name(),
                self.host,
                crate::error_chain(&e)
            )
        })?;
        Ok(match self.security {
            Security::Tls => Tls::Wrapper(params),
            _ => Tls::Required(params),
        })
    }

    /// A pooled SMTP transport for these settings.
    pub(crate) fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.clone())
                .port(self.effective_port())
                .tls(self.tls()?)
                .timeout(Some(self.timeout()));
        if let (Some(user), Some(password)) = (&self.username, &self.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(builder.build())
    }
}

fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("mail.host: must not be empty".to_string());
    }
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let name_ok = host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && !host.starts_with(['.', '-'])
        && !host.contains("..");
    if name_ok {
        return Ok(());
    }
    let hint = if host.contains(':') && !host.contains("://") {
        " (put the port in mail.port)"
    } else if host.contains("://") {
        " (give the bare host name, without a scheme)"
    } else {
        ""
    };
    Err(format!(
        "mail.host: {host:?} is not a host name or IP address{hint}"
    ))
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Reads the PEM file of `ca_file`.
fn load_ca(path: &Path) -> Result<Certificate, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("mail.ca_file: cannot read {}: {e}", path.display()))?;
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    if !pem.windows(BEGIN.len()).any(|w| w == BEGIN) {
        return Err(format!(
            "mail.ca_file: {} contains no PEM certificate (no \"-----BEGIN CERTIFICATE-----\" line)",
            path.display()
        ));
    }
    Certificate::from_pem(&pem).map_err(|e| {
        format!(
            "mail.ca_file: {}: {}",
            path.display(),
            crate::error_chain(&e)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> SmtpConfig {
        SmtpConfig {
            host: "smtp.example.com".into(),
            port: None,
            security: Security::Starttls,
            username: Some("pbx".into()),
            password: Some("secret".into()),
            from: "Voicemail <vm@example.com>".into(),
            ca_file: None,
            timeout_s: None,
        }
    }

    fn err(f: impl FnOnce(&mut SmtpConfig)) -> String {
        let mut c = base();
        f(&mut c);
        c.check().expect_err("check should fail")
    }

    #[test]
    fn a_good_config_passes_and_defaults_apply() {
        let c = base();
        c.check().unwrap();
        assert_eq!(c.effective_port(), 587);
        assert_eq!(c.timeout(), Duration::from_secs(30));
        let c = SmtpConfig {
            security: Security::Tls,
            ..base()
        };
        assert_eq!(c.effective_port(), 465);
        let c = SmtpConfig {
            security: Security::None,
            port: Some(2525),
            host: "127.0.0.1".into(),
            ..base()
        };
        c.check().unwrap();
        assert_eq!(c.effective_port(), 2525);
        // IPv6 literals and bare addresses are fine.
        SmtpConfig {
            host: "::1".into(),
            from: "vm@example.com".into(),
            ..base()
        }
        .check()
        .unwrap();
    }

    #[test]
    fn toml_like_input_deserializes_with_defaults_and_refuses_unknown_fields() {
        let c: SmtpConfig =
            serde_json::from_str(r#"{"host":"mx.example.com","from":"vm@example.com"}"#).unwrap();
        assert_eq!(c.security, Security::Starttls);
        assert_eq!(c.effective_port(), 587);
        assert_eq!(c.username, None);
        let c: SmtpConfig = serde_json::from_str(
            r#"{"host":"mx.example.com","from":"vm@example.com","security":"tls","timeout_s":5}"#,
        )
        .unwrap();
        assert_eq!(c.security, Security::Tls);
        assert_eq!(c.timeout(), Duration::from_secs(5));
        let e = serde_json::from_str::<SmtpConfig>(
            r#"{"host":"mx.example.com","from":"vm@example.com","pasword":"x"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field `pasword`"), "{e}");
        let e = serde_json::from_str::<SmtpConfig>(
            r#"{"host":"mx.example.com","from":"vm@example.com","security":"ssl"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown variant `ssl`"), "{e}");
        // Round trip.
        let back: SmtpConfig =
            serde_json::from_str(&serde_json::to_string(&base()).unwrap()).unwrap();
        assert_eq!(back, base());
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            err(|c| c.from = "x".into()),
            r#"mail.from: "x" is not a mail address (expected e.g. "Voicemail <vm@example.com>")"#
        );
        assert_eq!(err(|c| c.host.clear()), "mail.host: must not be empty");
        assert_eq!(
            err(|c| c.host = "smtp.example.com:587".into()),
            r#"mail.host: "smtp.example.com:587" is not a host name or IP address (put the port in mail.port)"#
        );
        assert_eq!(
            err(|c| c.host = "smtp://smtp.example.com".into()),
            r#"mail.host: "smtp://smtp.example.com" is not a host name or IP address (give the bare host name, without a scheme)"#
        );
        assert_eq!(
            err(|c| c.port = Some(0)),
            "mail.port: 0 is not a valid port"
        );
        assert_eq!(
            err(|c| c.password = None),
            "mail.username is set but mail.password is not"
        );
        assert_eq!(
            err(|c| c.username = None),
            "mail.password is set but mail.username is not"
        );
        assert!(
            err(|c| c.username = Some(String::new()))
                .starts_with("mail.username: must not be empty")
        );
        assert_eq!(
            err(|c| c.security = Security::None),
            r#"mail.password would be sent unencrypted to smtp.example.com: set mail.security to "starttls" or "tls""#
        );
        assert_eq!(
            err(|c| c.timeout_s = Some(0)),
            "mail.timeout_s: must be 1..=3600 seconds (got 0)"
        );
        assert_eq!(
            err(|c| {
                c.security = Security::None;
                c.username = None;
                c.password = None;
                c.ca_file = Some("/x.pem".into());
            }),
            r#"mail.ca_file is set but mail.security is "none" (there is no TLS to use it for)"#
        );
    }

    #[test]
    fn ca_file_is_read_and_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = err(|c| c.ca_file = Some(missing.clone()));
        assert!(
            e.starts_with(&format!(
                "mail.ca_file: cannot read {}: ",
                missing.display()
            )),
            "{e}"
        );
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "hello").unwrap();
        let e = err(|c| c.ca_file = Some(junk.clone()));
        assert_eq!(
            e,
            format!(
                "mail.ca_file: {} contains no PEM certificate (no \"-----BEGIN CERTIFICATE-----\" line)",
                junk.display()
            )
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let s = format!("{:?}", base());
        assert!(!s.contains("secret"), "{s}");
        assert!(s.contains("<redacted>"), "{s}");
    }
}
