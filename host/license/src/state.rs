//! Licensing state: which licences count, the state they put the site in,
//! the capacity that follows, plugin entitlements and expiry reminders.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use plugboard_registry::keys::{KeyId, PublicKey};
use serde::Serialize;

use crate::clock::SharedClock;
use crate::file::{self, Capacity, LicenceFile};
use crate::log::{GraceLog, ReminderLog};

/// Days of full service for a site licence that fails validation.
pub const GRACE_DAYS: i64 = 28;
/// Days before expiry from which a licence is [`State::Expiring`].
pub const EXPIRING_DAYS: i64 = 90;
/// Days after expiry at reduced capacity before the demo level.
pub const EXPIRED_DAYS: i64 = 60;
/// Days left at which an expiry reminder is sent.
pub const REMINDER_MARKS: [u32; 18] = [
    90, 60, 30, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1,
];

/// Looks up a vendor's public key by id (the operator's plugin trust store).
pub type VendorKeys = Arc<dyn Fn(&KeyId) -> Option<PublicKey> + Send + Sync>;

/// What licensing is built from (besides the licence files).
#[derive(Clone)]
pub struct Setup {
    /// This host's configured site name.
    pub site: String,
    /// The licensor's public keys: they sign site licences, whose
    /// capacities, features and entitlements count.
    pub issuers: Vec<PublicKey>,
    /// Vendor keys: a licence signed by one contributes only its
    /// entitlements, and only for plugins signed by that same key.
    pub vendors: VendorKeys,
    /// Where the time comes from.
    pub clock: SharedClock,
    /// Where first-invalid instants are kept (grace periods).
    pub grace: Arc<dyn GraceLog>,
}

impl fmt::Debug for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Setup")
            .field("site", &self.site)
            .field(
                "issuers",
                &self.issuers.iter().map(|k| k.id()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Something a licence limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Item {
    /// Concurrent inbound calls through the B2BUA (counted at INVITE).
    Calls,
    /// Configured tenants (checked when one is created).
    Tenants,
    /// Mailboxes / users (checked when one is created).
    Mailboxes,
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Item::Calls => "concurrent calls",
            Item::Tenants => "tenants",
            Item::Mailboxes => "mailboxes",
        })
    }
}

/// The licensing state of the site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum State {
    /// No site licence: no limits.
    Unlicensed,
    /// The site licence is not valid yet: no limits until it is.
    NotYetValid,
    /// The site licence is valid: its capacities apply.
    Valid,
    /// Valid, 90 days or fewer left: its capacities apply; reminders go out.
    Expiring {
        /// Whole days left (rounded up).
        days_left: i64,
    },
    /// Expired less than 60 days ago: a quarter of each capacity.
    Expired {
        /// When the demo level starts.
        demo_at: DateTime<Utc>,
    },
    /// Expired 60 days ago or more: demo level.
    Demo,
    /// The site licence fails validation: full service (its written
    /// capacities, its entitlements) until `until`.
    Grace {
        /// When the grace period ends.
        until: DateTime<Utc>,
    },
    /// The site licence fails validation and the grace period is over:
    /// demo level.
    Invalid,
}

impl State {
    fn same_kind(&self, other: &State) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

/// A coming change of state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transition {
    /// The state it changes to.
    pub state: State,
    /// When.
    pub at: DateTime<Utc>,
}

/// The licence a state comes from, for display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LicenceSummary {
    /// Licence number.
    pub id: String,
    /// Licensed to.
    pub licensee: String,
    /// Site it is for.
    pub site: String,
    /// Last valid day.
    pub expires: NaiveDate,
    /// The signer (the trusted key's name, or the name written in a file
    /// that failed validation).
    pub signer: String,
    /// Site features.
    pub features: Vec<String>,
    /// The file's SHA-256 (hex).
    pub sha256: String,
}

/// Everything the admin API shows about licensing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The current state.
    pub state: State,
    /// The capacity in force now (`None` per item = unlimited).
    pub effective: Capacity,
    /// The capacity the licence grants, if there is one.
    pub licensed: Option<Capacity>,
    /// The licence the state comes from.
    pub licence: Option<LicenceSummary>,
    /// The next change of state, if one is scheduled.
    pub next: Option<Transition>,
    /// Whole days until the licence expires (rounded up; 0 or negative once
    /// expired); `None` without a valid site licence.
    pub days_left: Option<i64>,
    /// Why licence files are ignored or invalid.
    pub problems: Vec<String>,
}

/// A capacity check that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// What ran out.
    pub item: Item,
    /// The limit reached.
    pub limit: u32,
    /// The state that set the limit.
    pub state: State,
    /// The licence's last valid day, if there is a licence.
    pub expires: Option<NaiveDate>,
}

impl fmt::Display for Refusal {
    /// The SIP/HTTP Reason text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "licence capacity reached: {} {}", self.limit, self.item)?;
        let exp = self
            .expires
            .map(|d| d.to_string())
            .unwrap_or_else(|| "?".into());
        match &self.state {
            State::Unlicensed | State::NotYetValid => f.write_str(" (unlicensed)"),
            State::Valid => write!(f, " (licensed capacity, licence valid until {exp})"),
            State::Expiring { .. } => write!(f, " (licensed capacity, licence expires on {exp})"),
            State::Expired { .. } => write!(f, " (expired on {exp}, reduced capacity)"),
            State::Demo => write!(f, " (licence expired on {exp}, demo level)"),
            State::Grace { until } => write!(
                f,
                " (licence failed validation, grace period until {})",
                until.format("%Y-%m-%d %H:%M UTC")
            ),
            State::Invalid => f.write_str(" (licence failed validation, demo level)"),
        }
    }
}

impl std::error::Error for Refusal {}

/// An expiry reminder that is due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reminder {
    /// Whole days left (rounded up).
    pub days_left: i64,
    /// The reminder mark reached (one of [`REMINDER_MARKS`]); persist it as
    /// `last_sent` once the reminder is sent.
    pub mark: u32,
    /// The licence's last valid day.
    pub expires: NaiveDate,
    /// The licence number.
    pub licence_id: String,
    /// The licence file's SHA-256: the key for `last_sent`.
    pub sha256: String,
}

#[derive(Debug)]
enum Role {
    /// Signed by an issuer key, for this site.
    Site { signer: String },
    /// Signed by a vendor key, for this site: entitlements only.
    Vendor { key: KeyId },
    /// A site licence that fails validation.
    Failed {
        reason: String,
        until: DateTime<Utc>,
    },
}

#[derive(Debug)]
struct Loaded {
    name: String,
    file: LicenceFile,
    role: Role,
}

/// The licensing of one host: evaluated against the clock on every call.
pub struct Licensing {
    site: String,
    clock: SharedClock,
    licences: Vec<Loaded>,
    problems: Vec<String>,
}

impl fmt::Debug for Licensing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Licensing")
            .field("site", &self.site)
            .field("licences", &self.licences)
            .field("problems", &self.problems)
            .finish_non_exhaustive()
    }
}

fn ceil_days(d: Duration) -> i64 {
    (d.num_seconds() + 86_399).div_euclid(86_400)
}

/// The state a validly signed licence puts the site in at `t`.
fn phase(f: &LicenceFile, t: DateTime<Utc>) -> State {
    let exp = f.expires_at();
    if t < f.valid_from() {
        State::NotYetValid
    } else if t >= exp + Duration::days(EXPIRED_DAYS) {
        State::Demo
    } else if t >= exp {
        State::Expired {
            demo_at: exp + Duration::days(EXPIRED_DAYS),
        }
    } else {
        let days_left = ceil_days(exp - t);
        if days_left <= EXPIRING_DAYS {
            State::Expiring { days_left }
        } else {
            State::Valid
        }
    }
}

struct Eval<'a> {
    state: State,
    licence: Option<&'a Loaded>,
}

impl Licensing {
    /// Builds licensing from licence files' `(name, text)`; a file that
    /// does not parse or is not trusted is ignored and reported in
    /// [`Status::problems`].
    pub fn from_texts<N: AsRef<str>, T: AsRef<str>>(setup: Setup, files: &[(N, T)]) -> Licensing {
        let mut problems = Vec::new();
        let mut licences: Vec<Loaded> = Vec::new();
        let now = setup.clock.now();
        let issuer = |id: &KeyId| setup.issuers.iter().find(|k| k.id() == *id).cloned();
        let any = |id: &KeyId| issuer(id).or_else(|| (setup.vendors)(id));
        for (name, text) in files {
            let name = name.as_ref();
            let f = match file::parse(text.as_ref()) {
                Ok(f) => f,
                Err(e) => {
                    problems.push(format!("{name}: {e}; ignored"));
                    continue;
                }
            };
            if licences.iter().any(|l| l.file.sha256() == f.sha256()) {
                continue;
            }
            let is_issuer =
                |k: &PublicKey| setup.issuers.iter().any(|i| i.as_bytes() == k.as_bytes());
            let failed = |reason: String| {
                let since = setup.grace.first_invalid(f.sha256()).unwrap_or_else(|| {
                    setup.grace.record_invalid(f.sha256(), now);
                    now
                });
                Role::Failed {
                    reason,
                    until: since + Duration::days(GRACE_DAYS),
                }
            };
            let wrong_site = || {
                format!(
                    "the licence is for site {}, this site is {}",
                    f.site, setup.site
                )
            };
            let role = match f.verify(&any) {
                Ok(key) if is_issuer(&key) => {
                    if f.is_for_site(&setup.site) {
                        Role::Site { signer: key.signer }
                    } else {
                        failed(wrong_site())
                    }
                }
                Ok(key) => {
                    if f.is_for_site(&setup.site) {
                        Role::Vendor { key: key.id() }
                    } else {
                        problems.push(format!("{name}: {}; ignored", wrong_site()));
                        continue;
                    }
                }
                Err(e @ file::Invalid::BadSignature { .. })
                    if e.key().is_some_and(|id| issuer(id).is_some()) =>
                {
                    failed(e.to_string())
                }
                Err(e) => {
                    problems.push(format!("{name}: {e}; ignored"));
                    continue;
                }
            };
            licences.push(Loaded {
                name: name.to_string(),
                file: f,
                role,
            });
        }
        Licensing {
            site: setup.site,
            clock: setup.clock,
            licences,
            problems,
        }
    }

    /// Builds licensing from the `*.toml` files in `dir` (sorted by name).
    /// A missing directory means no licence; unreadable files are reported
    /// in [`Status::problems`].
    pub fn load_dir(setup: Setup, dir: &Path) -> Licensing {
        let mut problems = Vec::new();
        let mut files = Vec::new();
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                let mut paths: Vec<_> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
                    .collect();
                paths.sort();
                for p in paths {
                    let name = p
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned();
                    match std::fs::read_to_string(&p) {
                        Ok(text) => files.push((name, text)),
                        Err(e) => problems.push(format!("{name}: cannot read: {e}; ignored")),
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => problems.push(format!("{}: cannot read the directory: {e}", dir.display())),
        }
        let mut l = Licensing::from_texts(setup, &files);
        problems.append(&mut l.problems);
        l.problems = problems;
        for p in &l.problems {
            tracing::warn!("licence: {p}");
        }
        l
    }

    /// This host's site name.
    pub fn site(&self) -> &str {
        &self.site
    }

    fn grace_until(l: &Loaded) -> Option<DateTime<Utc>> {
        match l.role {
            Role::Failed { until, .. } => Some(until),
            _ => None,
        }
    }

    fn evaluate<'a>(&'a self, t: DateTime<Utc>) -> Eval<'a> {
        let site = || {
            self.licences
                .iter()
                .filter(|l| matches!(l.role, Role::Site { .. }))
        };
        let in_effect = site()
            .filter(|l| l.file.valid_from() <= t)
            .max_by_key(|l| (l.file.expires_at(), l.file.issued));
        let winner = in_effect.or_else(|| site().min_by_key(|l| l.file.valid_from()));
        let failed = self
            .licences
            .iter()
            .filter_map(|l| Self::grace_until(l).map(|u| (u, l)))
            .max_by_key(|(u, _)| *u);
        let grace = |(until, l): (DateTime<Utc>, &'a Loaded)| -> Eval<'a> {
            let state = if t < until {
                State::Grace { until }
            } else {
                State::Invalid
            };
            Eval {
                state,
                licence: Some(l),
            }
        };
        match winner {
            Some(w) => {
                let state = phase(&w.file, t);
                match failed {
                    Some((until, l))
                        if t < until && matches!(state, State::Expired { .. } | State::Demo) =>
                    {
                        grace((until, l))
                    }
                    _ => Eval {
                        state,
                        licence: Some(w),
                    },
                }
            }
            None => match failed {
                Some(f) => grace(f),
                None => Eval {
                    state: State::Unlicensed,
                    licence: None,
                },
            },
        }
    }

    fn capacity(state: &State, l: Option<&Loaded>) -> Capacity {
        let licensed = l.map(|l| l.file.capacity).unwrap_or_default();
        match state {
            State::Unlicensed | State::NotYetValid => Capacity::UNLIMITED,
            State::Valid | State::Expiring { .. } | State::Grace { .. } => licensed,
            State::Expired { .. } => licensed.quarter(),
            State::Demo => {
                let min = |d: Option<u32>, l: Option<u32>| match (d, l) {
                    (Some(d), Some(l)) => Some(d.min(l.max(1))),
                    (d, _) => d,
                };
                Capacity {
                    calls: min(Capacity::DEMO.calls, licensed.calls),
                    tenants: min(Capacity::DEMO.tenants, licensed.tenants),
                    mailboxes: min(Capacity::DEMO.mailboxes, licensed.mailboxes),
                }
            }
            State::Invalid => Capacity::DEMO,
        }
    }

    fn next(&self, now: DateTime<Utc>, current: &State) -> Option<Transition> {
        let mut at: Vec<DateTime<Utc>> = Vec::new();
        for l in &self.licences {
            match l.role {
                Role::Site { .. } => {
                    let exp = l.file.expires_at();
                    at.extend([
                        l.file.valid_from(),
                        exp - Duration::days(EXPIRING_DAYS),
                        exp,
                        exp + Duration::days(EXPIRED_DAYS),
                    ]);
                }
                Role::Failed { until, .. } => at.push(until),
                Role::Vendor { .. } => {}
            }
        }
        at.retain(|t| *t > now);
        at.sort();
        at.into_iter().find_map(|t| {
            let state = self.evaluate(t).state;
            (!state.same_kind(current)).then_some(Transition { state, at: t })
        })
    }

    /// The licensing status now.
    pub fn status(&self) -> Status {
        let now = self.clock.now();
        let Eval { state, licence } = self.evaluate(now);
        let mut problems = Vec::new();
        for l in &self.licences {
            if let Role::Failed { reason, until } = &l.role {
                let day = until.format("%Y-%m-%d %H:%M UTC");
                problems.push(if now < *until {
                    format!(
                        "{}: {reason}; full service until {day} (grace period)",
                        l.name
                    )
                } else {
                    format!("{}: {reason}; grace period ended {day}", l.name)
                });
            }
        }
        problems.extend(self.problems.iter().cloned());
        let summary = licence.map(|l| LicenceSummary {
            id: l.file.id.clone(),
            licensee: l.file.licensee.clone(),
            site: l.file.site.clone(),
            expires: l.file.expires,
            signer: match &l.role {
                Role::Site { signer } => signer.clone(),
                _ => l
                    .file
                    .signature
                    .as_ref()
                    .map(|s| s.signer.clone())
                    .unwrap_or_default(),
            },
            features: l.file.features.clone(),
            sha256: l.file.sha256().to_string(),
        });
        let days_left = licence
            .filter(|l| matches!(l.role, Role::Site { .. }))
            .map(|l| ceil_days(l.file.expires_at() - now));
        Status {
            effective: Self::capacity(&state, licence),
            licensed: licence.map(|l| l.file.capacity),
            licence: summary,
            next: self.next(now, &state),
            days_left,
            problems,
            state,
        }
    }

    /// The current state (see [`Licensing::status`]).
    pub fn state(&self) -> State {
        self.evaluate(self.clock.now()).state
    }

    /// Checks that one more `item` fits when `in_use` are in use now.
    pub fn admit(&self, item: Item, in_use: u32) -> Result<(), Refusal> {
        let Eval { state, licence } = self.evaluate(self.clock.now());
        match Self::capacity(&state, licence).get(item) {
            Some(limit) if in_use >= limit => Err(Refusal {
                item,
                limit,
                expires: licence.map(|l| l.file.expires),
                state,
            }),
            _ => Ok(()),
        }
    }

    /// Whether a plugin feature is licensed for `tenant`: an entitlement
    /// for `feature` covering `tenant` in a licence honoured now (its own
    /// dates put it in Valid, Expiring or Expired, or it is in its grace
    /// period), signed by an issuer key or by the vendor key that signed
    /// the plugin (`plugin_signer`). The error says why not.
    pub fn entitled(
        &self,
        feature: &str,
        plugin_signer: Option<&KeyId>,
        tenant: &str,
    ) -> Result<(), String> {
        let now = self.clock.now();
        let mut why_not = Vec::new();
        for l in &self.licences {
            // A site licence's `features` unlock a feature for every tenant;
            // an `[[entitlement]]` for the tenants it names.
            let site_wide = matches!(l.role, Role::Site { .. } | Role::Failed { .. })
                && l.file.features.iter().any(|f| f == feature);
            let carries = site_wide
                || l.file
                    .entitlements
                    .iter()
                    .any(|e| e.feature == feature && e.covers(tenant));
            if !carries {
                continue;
            }
            let f = &l.file;
            let lic = format!("the licence {} carrying {feature}", f.id);
            let dated = |why_not: &mut Vec<String>| match phase(f, now) {
                State::NotYetValid => {
                    why_not.push(format!("{lic} is not valid before {}", f.not_before));
                    false
                }
                State::Demo => {
                    why_not.push(format!("{lic} expired on {}, demo level", f.expires));
                    false
                }
                _ => true,
            };
            match &l.role {
                Role::Site { .. } => {
                    if dated(&mut why_not) {
                        return Ok(());
                    }
                }
                Role::Vendor { key } => {
                    if plugin_signer != Some(key) {
                        why_not.push(format!(
                            "{lic} is signed by vendor key {key}, not by this plugin's signer ({})",
                            plugin_signer.map_or("unsigned".to_string(), |k| k.to_string())
                        ));
                    } else if dated(&mut why_not) {
                        return Ok(());
                    }
                }
                Role::Failed { reason, until } => {
                    // Only while the site is in grace on this very file: a
                    // failed file never adds entitlements next to a valid
                    // licence.
                    let in_grace = matches!(
                        self.evaluate(now),
                        Eval { state: State::Grace { .. }, licence: Some(g) }
                            if std::ptr::eq(g, l)
                    );
                    if now < *until && in_grace {
                        return Ok(());
                    }
                    if now < *until {
                        why_not.push(format!(
                            "{lic} failed validation ({reason}); another licence is in force"
                        ));
                        continue;
                    }
                    why_not.push(format!(
                        "{lic} failed validation ({reason}) and its grace period ended {}, demo level",
                        until.format("%Y-%m-%d")
                    ));
                }
            }
        }
        if why_not.is_empty() {
            Err(format!(
                "no licence entitles feature {feature} for tenant {tenant}"
            ))
        } else {
            Err(why_not.join("; "))
        }
    }

    /// The expiry reminder due now, given the mark of the last one sent for
    /// the current licence (`None` if none was): marks are
    /// [`REMINDER_MARKS`]; with `d` whole days left (rounded up) the mark is
    /// the smallest one ≥ `d`, due if it is below `last_sent`. After a clock
    /// jump only the latest mark is sent.
    pub fn reminder_due(&self, last_sent: Option<u32>) -> Option<Reminder> {
        let now = self.clock.now();
        let Eval { state, licence } = self.evaluate(now);
        let (State::Expiring { days_left }, Some(l)) = (state, licence) else {
            return None;
        };
        let mark = *REMINDER_MARKS
            .iter()
            .rev()
            .find(|m| i64::from(**m) >= days_left)?;
        if last_sent.is_some_and(|last| mark >= last) {
            return None;
        }
        Some(Reminder {
            days_left,
            mark,
            expires: l.file.expires,
            licence_id: l.file.id.clone(),
            sha256: l.file.sha256().to_string(),
        })
    }

    /// [`Licensing::reminder_due`] with `last_sent` read from `log` for the
    /// current licence; after sending, call
    /// `log.record_sent(&reminder.sha256, reminder.mark)`.
    pub fn due_reminder(&self, log: &dyn ReminderLog) -> Option<Reminder> {
        let Eval { licence, .. } = self.evaluate(self.clock.now());
        self.reminder_due(log.last_sent(licence?.file.sha256()))
    }
}

#[cfg(test)]
mod tests;
