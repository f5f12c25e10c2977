//! The plugin's configuration, parsed from the flattened dial-plan entry
//! (`mailboxes.101.pin` for `[...config.mailboxes.101] pin = "..."`).
//!
//! Bad values never stop a call: they are reported as warnings and the
//! default is used (the host already checks the schema's ranges).

use std::collections::BTreeMap;

use crate::hours::OfficeHours;
use crate::quota::{DEFAULT_MAX_MESSAGES, Quota};

/// What happens to a new message besides storing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailMode {
    /// No mail.
    Off,
    /// Mail with the WAV attached; the message stays (MWI on).
    Copy,
    /// Mail with the WAV attached; the message is removed once queued (no MWI).
    Forward,
    /// Mail without attachment; the message stays.
    Alert,
}

impl EmailMode {
    /// Parses `off`, `copy`, `forward` or `alert`.
    pub fn parse(s: &str) -> Option<EmailMode> {
        match s.trim() {
            "off" => Some(EmailMode::Off),
            "copy" => Some(EmailMode::Copy),
            "forward" => Some(EmailMode::Forward),
            "alert" => Some(EmailMode::Alert),
            _ => None,
        }
    }
}

/// Hours a message may stay in each state before it is purged (0 = keep).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub new_h: u32,
    pub old_h: u32,
    pub saved_h: u32,
    pub deleted_h: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            new_h: 0,
            old_h: 720,
            saved_h: 0,
            deleted_h: 24,
        }
    }
}

/// How a stock greeting names the mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announce {
    /// The recorded name, else the configured name by text-to-speech, else the number.
    Name,
    /// The mailbox number.
    Number,
    /// Nothing: only the stock busy / not-available prompt.
    None,
}

/// One configured mailbox (`mailboxes.<number>.*`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MailboxConf {
    pub pin: Option<String>,
    pub email: Option<String>,
    pub email_mode: Option<EmailMode>,
    pub name: Option<String>,
    pub trusted: Vec<String>,
    pub members: Vec<String>,
    pub announce: Option<Announce>,
    pub office_hours: Option<OfficeHours>,
    /// Overrides `max_messages`.
    pub max_messages: Option<u32>,
    /// Overrides `max_minutes` (0 = no limit for this mailbox).
    pub max_minutes: Option<u32>,
}

/// The range of `max_messages` (also per mailbox).
pub const MAX_MESSAGES_RANGE: (u32, u32) = (1, 10_000);
/// The range of `max_minutes` (also per mailbox; 0 = no limit).
pub const MAX_MINUTES_RANGE: (u32, u32) = (0, 100_000);

/// Everything the plugin reads from its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub min_length_s: u32,
    pub max_length_s: u32,
    pub silence_s: u32,
    pub pin_min_length: usize,
    pub pin_max_length: usize,
    pub pin_max_failures: u32,
    pub lockout_minutes: u32,
    pub retention: Retention,
    pub email_mode: EmailMode,
    pub subject_template: String,
    pub office_hours: Option<OfficeHours>,
    pub default_pin: Option<String>,
    pub welcome_mail: bool,
    /// Messages a mailbox may hold (deleted ones not counted).
    pub max_messages: u32,
    /// Recorded minutes a mailbox may hold (deleted ones not counted; 0 = no limit).
    pub max_minutes: u32,
    /// A fixed mailbox for this dial-plan entry (deposit when not redirected).
    pub mailbox: Option<String>,
    /// Serve any number as a mailbox with the defaults (no PIN unless `default_pin`).
    pub any_mailbox: bool,
    pub mailboxes: BTreeMap<String, MailboxConf>,
}

/// The default subject template.
pub const DEFAULT_SUBJECT: &str =
    "Voicemail from {caller_name} ({caller}) for {mailbox}, {duration}";

impl Default for Settings {
    fn default() -> Self {
        Settings {
            min_length_s: 2,
            max_length_s: 120,
            silence_s: 5,
            pin_min_length: 4,
            pin_max_length: 15,
            pin_max_failures: 3,
            lockout_minutes: 60,
            retention: Retention::default(),
            email_mode: EmailMode::Off,
            subject_template: DEFAULT_SUBJECT.to_string(),
            office_hours: None,
            default_pin: None,
            welcome_mail: true,
            max_messages: DEFAULT_MAX_MESSAGES,
            max_minutes: 0,
            mailbox: None,
            any_mailbox: false,
            mailboxes: BTreeMap::new(),
        }
    }
}

/// A comma (or space) separated list, without empty items.
pub fn split_list(s: &str) -> Vec<String> {
    s.split([',', ' ', ';'])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// `v` as a number in `min..=max`, else a warning and None.
fn parse_number(
    key: &str,
    v: &str,
    (min, max): (u32, u32),
    warnings: &mut Vec<String>,
) -> Option<u32> {
    match v.trim().parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            warnings.push(format!(
                "{key} = {v:?}: not a number in {min}..={max}; default used"
            ));
            None
        }
    }
}

fn non_empty(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_string())
}

impl Settings {
    /// Parses the flattened configuration. Returns the settings and one
    /// warning per value that was ignored.
    pub fn parse(entries: &[(String, String)]) -> (Settings, Vec<String>) {
        let mut s = Settings::default();
        let mut warnings = Vec::new();
        let num = |key: &str, v: &str, min: u32, max: u32, warnings: &mut Vec<String>| {
            parse_number(key, v, (min, max), warnings)
        };
        for (key, v) in entries {
            let w = &mut warnings;
            match key.as_str() {
                "min_length_s" => s.min_length_s = num(key, v, 0, 10, w).unwrap_or(s.min_length_s),
                "max_length_s" => {
                    s.max_length_s = num(key, v, 1, 3600, w).unwrap_or(s.max_length_s)
                }
                "silence_s" => s.silence_s = num(key, v, 0, 60, w).unwrap_or(s.silence_s),
                "pin_min_length" => {
                    s.pin_min_length =
                        num(key, v, 2, 15, w).map_or(s.pin_min_length, |n| n as usize)
                }
                "pin_max_length" => {
                    s.pin_max_length =
                        num(key, v, 2, 15, w).map_or(s.pin_max_length, |n| n as usize)
                }
                "pin_max_failures" => {
                    s.pin_max_failures = num(key, v, 1, 100, w).unwrap_or(s.pin_max_failures)
                }
                "lockout_minutes" => {
                    s.lockout_minutes = num(key, v, 0, 10_080, w).unwrap_or(s.lockout_minutes)
                }
                "retention_hours.new" => {
                    s.retention.new_h = num(key, v, 0, 1_000_000, w).unwrap_or(s.retention.new_h)
                }
                "retention_hours.old" => {
                    s.retention.old_h = num(key, v, 0, 1_000_000, w).unwrap_or(s.retention.old_h)
                }
                "retention_hours.saved" => {
                    s.retention.saved_h =
                        num(key, v, 0, 1_000_000, w).unwrap_or(s.retention.saved_h)
                }
                "retention_hours.deleted" => {
                    s.retention.deleted_h =
                        num(key, v, 0, 1_000_000, w).unwrap_or(s.retention.deleted_h)
                }
                "email_mode" => match EmailMode::parse(v) {
                    Some(m) => s.email_mode = m,
                    None => w.push(format!(
                        "email_mode = {v:?}: use off, copy, forward or alert"
                    )),
                },
                "subject_template" => {
                    if let Some(t) = non_empty(v) {
                        s.subject_template = t;
                    }
                }
                "office_hours" => match OfficeHours::parse(v) {
                    Ok(h) => s.office_hours = h,
                    Err(e) => w.push(format!("office_hours = {v:?}: {e}")),
                },
                "default_pin" => s.default_pin = non_empty(v),
                "welcome_mail" => s.welcome_mail = v.trim() != "false",
                "max_messages" => {
                    s.max_messages =
                        parse_number(key, v, MAX_MESSAGES_RANGE, w).unwrap_or(s.max_messages)
                }
                "max_minutes" => {
                    s.max_minutes =
                        parse_number(key, v, MAX_MINUTES_RANGE, w).unwrap_or(s.max_minutes)
                }
                "mailbox" => s.mailbox = non_empty(v),
                "any_mailbox" => s.any_mailbox = v.trim() == "true",
                k => {
                    if let Some(rest) = k.strip_prefix("mailboxes.") {
                        mailbox_key(&mut s, rest, v, w);
                    }
                    // Other keys (for example `language`) are not ours to judge.
                }
            }
        }
        if s.pin_max_length < s.pin_min_length {
            warnings.push(format!(
                "pin_max_length {} is below pin_min_length {}; using {}",
                s.pin_max_length, s.pin_min_length, s.pin_min_length
            ));
            s.pin_max_length = s.pin_min_length;
        }
        (s, warnings)
    }

    /// The configuration of mailbox `id`, if configured.
    pub fn mailbox(&self, id: &str) -> Option<&MailboxConf> {
        self.mailboxes.get(id)
    }

    /// The quota of a mailbox configured as `conf` (None: the defaults).
    pub fn quota(&self, conf: Option<&MailboxConf>) -> Quota {
        Quota {
            max_messages: conf
                .and_then(|c| c.max_messages)
                .unwrap_or(self.max_messages),
            max_minutes: conf.and_then(|c| c.max_minutes).unwrap_or(self.max_minutes),
        }
    }

    /// Retention and PIN policy read from these settings.
    pub fn pin_policy(&self) -> crate::pin::PinPolicy {
        crate::pin::PinPolicy {
            min_len: self.pin_min_length,
            max_len: self.pin_max_length,
            max_failures: self.pin_max_failures,
            lockout_ms: u64::from(self.lockout_minutes) * 60_000,
        }
    }
}

fn mailbox_key(s: &mut Settings, rest: &str, v: &str, w: &mut Vec<String>) {
    let Some((number, field)) = rest.rsplit_once('.') else {
        w.push(format!(
            "mailboxes.{rest}: expected mailboxes.<number>.<setting>"
        ));
        return;
    };
    // `*` is the manifest's pattern for any mailbox, not a mailbox.
    if number.is_empty() || number == "*" {
        return;
    }
    let mb = s.mailboxes.entry(number.to_string()).or_default();
    match field {
        "pin" => mb.pin = non_empty(v),
        "email" => mb.email = non_empty(v),
        "email_mode" => {
            if !v.trim().is_empty() {
                match EmailMode::parse(v) {
                    Some(m) => mb.email_mode = Some(m),
                    None => w.push(format!(
                        "mailboxes.{rest} = {v:?}: use off, copy, forward or alert"
                    )),
                }
            }
        }
        "name" => mb.name = non_empty(v),
        "trusted" => mb.trusted = split_list(v),
        "members" => mb.members = split_list(v),
        "announce" => match v.trim() {
            "" => {}
            "name" => mb.announce = Some(Announce::Name),
            "number" => mb.announce = Some(Announce::Number),
            "none" => mb.announce = Some(Announce::None),
            _ => w.push(format!(
                "mailboxes.{rest} = {v:?}: use name, number or none"
            )),
        },
        "office_hours" => match OfficeHours::parse(v) {
            Ok(h) => mb.office_hours = h,
            Err(e) => w.push(format!("mailboxes.{rest} = {v:?}: {e}")),
        },
        // Empty: the plugin-wide value (a bad value warns and does the same).
        "max_messages" if !v.trim().is_empty() => {
            mb.max_messages = parse_number(&format!("mailboxes.{rest}"), v, MAX_MESSAGES_RANGE, w);
        }
        "max_minutes" if !v.trim().is_empty() => {
            mb.max_minutes = parse_number(&format!("mailboxes.{rest}"), v, MAX_MINUTES_RANGE, w);
        }
        "max_messages" | "max_minutes" => {}
        _ => w.push(format!(
            "mailboxes.{rest}: unknown mailbox setting {field:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_and_overrides() {
        let (s, w) = Settings::parse(&e(&[
            ("min_length_s", "3"),
            ("max_length_s", "600"),
            ("retention_hours.old", "48"),
            ("retention_hours.deleted", "0"),
            ("email_mode", "copy"),
            ("office_hours", "mon-fri 08:00-17:00"),
            ("mailboxes.101.pin", "4711"),
            ("mailboxes.101.trusted", "+15551234, 0815"),
            ("mailboxes.101.email_mode", "forward"),
            ("mailboxes.600.members", "101,102"),
            ("mailboxes.*.pin", ""),
        ]));
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(s.min_length_s, 3);
        assert_eq!(s.max_length_s, 600);
        assert_eq!(s.retention.old_h, 48);
        assert_eq!(s.retention.deleted_h, 0);
        assert_eq!(s.retention.new_h, 0);
        assert_eq!(s.email_mode, EmailMode::Copy);
        assert!(s.office_hours.is_some());
        let mb = s.mailbox("101").unwrap();
        assert_eq!(mb.pin.as_deref(), Some("4711"));
        assert_eq!(mb.trusted, vec!["+15551234", "0815"]);
        assert_eq!(mb.email_mode, Some(EmailMode::Forward));
        assert_eq!(s.mailbox("600").unwrap().members, vec!["101", "102"]);
        assert_eq!(s.mailboxes.len(), 2);
    }

    #[test]
    fn quotas_global_and_per_mailbox() {
        let (s, w) = Settings::parse(&e(&[]));
        assert!(w.is_empty());
        assert_eq!((s.max_messages, s.max_minutes), (100, 0));
        let (s, w) = Settings::parse(&e(&[
            ("max_messages", "50"),
            ("max_minutes", "30"),
            ("mailboxes.101.max_messages", "10"),
            ("mailboxes.102.max_minutes", "0"),
            ("mailboxes.103.pin", "1"),
            ("mailboxes.*.max_messages", "7"),
        ]));
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            s.quota(s.mailbox("101")),
            Quota {
                max_messages: 10,
                max_minutes: 30
            }
        );
        assert_eq!(
            s.quota(s.mailbox("102")),
            Quota {
                max_messages: 50,
                max_minutes: 0
            },
            "0 = no limit for this mailbox"
        );
        assert_eq!(s.quota(s.mailbox("103")), s.quota(None));
        assert_eq!(s.quota(None).max_messages, 50);
    }

    #[test]
    fn bad_quotas_warn_and_keep_defaults() {
        let (s, w) = Settings::parse(&e(&[
            ("max_messages", "0"),
            ("max_minutes", "-1"),
            ("mailboxes.101.max_messages", "10001"),
            ("mailboxes.101.max_minutes", "lots"),
        ]));
        assert_eq!(w.len(), 4, "{w:?}");
        assert_eq!(s.quota(s.mailbox("101")), Quota::default());
    }

    #[test]
    fn bad_values_warn_and_keep_defaults() {
        let (s, w) = Settings::parse(&e(&[
            ("min_length_s", "11"),
            ("max_length_s", "3601"),
            ("pin_min_length", "1"),
            ("email_mode", "fax"),
        ]));
        assert_eq!(w.len(), 4, "{w:?}");
        assert_eq!(s.min_length_s, 2);
        assert_eq!(s.max_length_s, 120);
        assert_eq!(s.pin_min_length, 4);
        assert_eq!(s.email_mode, EmailMode::Off);
    }
}
