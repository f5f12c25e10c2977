//! The message store over a small [`Env`] trait (kv, recordings, mail, MWI,
//! clock), so the rules are tested without the host.
//!
//! kv layout (per tenant, this plugin):
//! - `mb/<mailbox>/msg/<id>`: one message ([`Message::encode`]); ids sort by time.
//! - `mb/<mailbox>/greeting/<kind>`: recording id of an owner greeting.
//! - `mb/<mailbox>/pin`: the owner's PIN ([`crate::pin::StoredPin`]).
//! - `mb/<mailbox>/lock`: wrong-PIN counter and lock ([`crate::pin::Lock`]).
//! - `mb/<mailbox>/welcome`: time the welcome mail was queued.
//! - `ref/<recording>`: how many messages use a recording (group copies and
//!   forwards share it); the recording is deleted when it drops to 0.

use crate::hours::OfficeHours;
use crate::quota::{self, Full, Quota, Usage};
use crate::settings::{Announce, EmailMode, MailboxConf, Retention, Settings};
use crate::template::{self, Vars};

/// Message states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    New,
    Old,
    Saved,
    Deleted,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::New => "new",
            State::Old => "old",
            State::Saved => "saved",
            State::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        match s {
            "new" => Some(State::New),
            "old" => Some(State::Old),
            "saved" => Some(State::Saved),
            "deleted" => Some(State::Deleted),
            _ => None,
        }
    }
}

/// One message in one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub caller: String,
    pub caller_name: String,
    /// Unix ms when it was left.
    pub time_ms: u64,
    pub duration_ms: u32,
    /// Recording ids in play order (a forward: the comment, then the original's).
    pub recordings: Vec<String>,
    pub state: State,
    /// Unix ms of the last state change.
    pub state_ms: u64,
    pub urgent: bool,
    /// The mailbox that forwarded it, if forwarded.
    pub forwarded_by: String,
}

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

fn unesc(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut it = v.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some(o) => out.push(o),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Message {
    /// `key=value` lines (values escaped).
    pub fn encode(&self) -> String {
        format!(
            "v=1\nid={}\ncaller={}\ncaller_name={}\ntime={}\nduration={}\nrecordings={}\nstate={}\nstate_time={}\nurgent={}\nforwarded_by={}\n",
            esc(&self.id),
            esc(&self.caller),
            esc(&self.caller_name),
            self.time_ms,
            self.duration_ms,
            esc(&self.recordings.join(",")),
            self.state.name(),
            self.state_ms,
            self.urgent,
            esc(&self.forwarded_by),
        )
    }

    pub fn decode(text: &str) -> Option<Message> {
        let mut m = Message {
            id: String::new(),
            caller: String::new(),
            caller_name: String::new(),
            time_ms: 0,
            duration_ms: 0,
            recordings: Vec::new(),
            state: State::New,
            state_ms: 0,
            urgent: false,
            forwarded_by: String::new(),
        };
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let v = unesc(v);
            match k {
                "id" => m.id = v,
                "caller" => m.caller = v,
                "caller_name" => m.caller_name = v,
                "time" => m.time_ms = v.parse().ok()?,
                "duration" => m.duration_ms = v.parse().ok()?,
                "recordings" => {
                    m.recordings = v
                        .split(',')
                        .filter(|r| !r.is_empty())
                        .map(String::from)
                        .collect()
                }
                "state" => m.state = State::parse(&v)?,
                "state_time" => m.state_ms = v.parse().ok()?,
                "urgent" => m.urgent = v == "true",
                "forwarded_by" => m.forwarded_by = v,
                _ => {}
            }
        }
        (!m.id.is_empty()).then_some(m)
    }
}

/// MWI counts (the SDK's `mwi::Counts`, without the binding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub new: u32,
    pub old: u32,
    pub new_urgent: u32,
    pub old_urgent: u32,
}

/// new = new; old = old + saved; deleted messages are not counted.
pub fn counts(messages: &[Message]) -> Counts {
    let mut c = Counts::default();
    for m in messages {
        match m.state {
            State::New => {
                c.new += 1;
                c.new_urgent += u32::from(m.urgent);
            }
            State::Old | State::Saved => {
                c.old += 1;
                c.old_urgent += u32::from(m.urgent);
            }
            State::Deleted => {}
        }
    }
    c
}

/// Whether `m` is due for purging at `now` (its state older than the
/// state's retention; 0 hours = keep).
pub fn expired(m: &Message, retention: &Retention, now_ms: u64) -> bool {
    let hours = match m.state {
        State::New => retention.new_h,
        State::Old => retention.old_h,
        State::Saved => retention.saved_h,
        State::Deleted => retention.deleted_h,
    };
    hours > 0 && now_ms.saturating_sub(m.state_ms) > u64::from(hours) * 3_600_000
}

/// A mail for the plugin to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutMail {
    pub to: String,
    pub subject: String,
    pub body: String,
    /// (file name, recording id)
    pub attachments: Vec<(String, String)>,
}

/// Log levels for [`Env::log`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// What the store needs from the host.
pub trait Env {
    fn kv_get(&mut self, key: &str) -> Result<Option<String>, String>;
    fn kv_set(&mut self, key: &str, value: &str) -> Result<(), String>;
    fn kv_delete(&mut self, key: &str) -> Result<(), String>;
    fn kv_list(&mut self, prefix: &str) -> Result<Vec<String>, String>;
    fn delete_recording(&mut self, id: &str) -> Result<(), String>;
    fn set_mwi(&mut self, mailbox: &str, counts: Counts) -> Result<(), String>;
    /// Queues a mail; returns the queue id.
    fn send_mail(&mut self, mail: &OutMail) -> Result<String, String>;
    /// `(YYYY-MM-DD, HH:MM)` of `unix_ms` in the tenant's time zone.
    fn local_date_time(&mut self, unix_ms: u64) -> (String, String);
    fn log(&mut self, level: Level, message: &str);
}

/// A mailbox as served: configured, or found in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The kv and MWI id.
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub mode: EmailMode,
    /// `mailboxes.<n>.pin`.
    pub config_pin: Option<String>,
    pub trusted: Vec<String>,
    pub members: Vec<String>,
    pub announce: Announce,
    pub office_hours: Option<OfficeHours>,
    /// `max_messages` / `max_minutes`, the mailbox's own or the defaults.
    pub quota: Quota,
}

impl Mailbox {
    /// A configured mailbox.
    pub fn configured(id: &str, conf: &MailboxConf, s: &Settings) -> Mailbox {
        Mailbox {
            id: id.to_string(),
            name: conf.name.clone(),
            email: conf.email.clone(),
            mode: conf.email_mode.unwrap_or(s.email_mode),
            config_pin: conf.pin.clone(),
            trusted: conf.trusted.clone(),
            members: conf.members.clone(),
            announce: conf.announce.unwrap_or(Announce::Name),
            office_hours: conf.office_hours.clone().or_else(|| s.office_hours.clone()),
            quota: s.quota(Some(conf)),
        }
    }

    /// A mailbox with the defaults (from the directory, or `any_mailbox`).
    pub fn with_defaults(
        id: &str,
        name: Option<String>,
        email: Option<String>,
        s: &Settings,
    ) -> Mailbox {
        Mailbox {
            id: id.to_string(),
            name,
            email,
            mode: s.email_mode,
            config_pin: None,
            trusted: Vec::new(),
            members: Vec::new(),
            announce: Announce::Name,
            office_hours: s.office_hours.clone(),
            quota: s.quota(None),
        }
    }

    /// The name or, failing that, the number.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// What a mailbox's e-mail mode does with one new message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailPlan {
    pub send: bool,
    pub attach: bool,
    /// Keep the message in the mailbox (false: remove it once the mail is queued).
    pub keep: bool,
}

/// The plan for `mode`; without an address every mode acts as `off`.
pub fn mail_plan(mode: EmailMode, has_email: bool) -> MailPlan {
    match (mode, has_email) {
        (_, false) | (EmailMode::Off, _) => MailPlan {
            send: false,
            attach: false,
            keep: true,
        },
        (EmailMode::Copy, true) => MailPlan {
            send: true,
            attach: true,
            keep: true,
        },
        (EmailMode::Forward, true) => MailPlan {
            send: true,
            attach: true,
            keep: false,
        },
        (EmailMode::Alert, true) => MailPlan {
            send: true,
            attach: false,
            keep: true,
        },
    }
}

pub fn msg_prefix(mb: &str) -> String {
    format!("mb/{mb}/msg/")
}

pub fn greeting_key(mb: &str, kind: crate::greeting::GreetingKind) -> String {
    format!("mb/{mb}/greeting/{}", kind.key())
}

pub fn pin_key(mb: &str) -> String {
    format!("mb/{mb}/pin")
}

pub fn lock_key(mb: &str) -> String {
    format!("mb/{mb}/lock")
}

pub fn welcome_key(mb: &str) -> String {
    format!("mb/{mb}/welcome")
}

fn ref_key(rec: &str) -> String {
    format!("ref/{rec}")
}

/// The messages of `mb`, oldest first (undecodable records are logged and skipped).
pub fn list(env: &mut dyn Env, mb: &str) -> Result<Vec<Message>, String> {
    let prefix = msg_prefix(mb);
    let mut out = Vec::new();
    for key in env.kv_list(&prefix)? {
        if let Some(text) = env.kv_get(&key)? {
            match Message::decode(&text) {
                Some(m) => out.push(m),
                None => env.log(
                    Level::Warn,
                    &format!("{key}: unreadable message record kept as is"),
                ),
            }
        }
    }
    out.sort_by(|a, b| (a.time_ms, &a.id).cmp(&(b.time_ms, &b.id)));
    Ok(out)
}

/// Writes `m` into `mb`.
pub fn save(env: &mut dyn Env, mb: &str, m: &Message) -> Result<(), String> {
    env.kv_set(&format!("{}{}", msg_prefix(mb), m.id), &m.encode())
}

/// A fresh message id in `mb`: time-ordered, and unique without relying on
/// a read-then-write (kv has no compare-and-set, and two deposits into one
/// mailbox can land in the same millisecond): `salt` is the deposit's own
/// recording id, which the host made unique. The read check stays for the
/// rare copy that shares its recordings (a forward without a comment).
pub fn new_id(env: &mut dyn Env, mb: &str, now_ms: u64, salt: &str) -> String {
    let tag: String = salt
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(12)
        .collect();
    let base = if tag.is_empty() {
        format!("{now_ms:013}")
    } else {
        format!("{now_ms:013}-{tag}")
    };
    for n in 0..100u32 {
        let id = if n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        match env.kv_get(&format!("{}{id}", msg_prefix(mb))) {
            Ok(None) | Err(_) => return id,
            Ok(Some(_)) => {}
        }
    }
    format!("{base}-x")
}

fn refs(env: &mut dyn Env, rec: &str) -> Option<u32> {
    env.kv_get(&ref_key(rec))
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse().ok())
}

/// Counts one more message using each recording.
pub fn add_refs(env: &mut dyn Env, recordings: &[String]) -> Result<(), String> {
    for r in recordings {
        let n = refs(env, r).unwrap_or(0) + 1;
        env.kv_set(&ref_key(r), &n.to_string())?;
    }
    Ok(())
}

/// Counts one message less using each recording; with `delete`, a recording
/// no message uses any more is deleted (a missing count means one user).
pub fn release(env: &mut dyn Env, recordings: &[String], delete: bool) {
    for r in recordings {
        let n = refs(env, r).unwrap_or(1).saturating_sub(1);
        let result = if n == 0 {
            let _ = env.kv_delete(&ref_key(r));
            if delete {
                env.delete_recording(r)
            } else {
                Ok(())
            }
        } else {
            env.kv_set(&ref_key(r), &n.to_string())
        };
        if let Err(e) = result {
            env.log(Level::Warn, &format!("recording {r}: {e}"));
        }
    }
}

/// Removes message `m` from `mb` (and its recordings, when unused).
pub fn remove(env: &mut dyn Env, mb: &str, m: &Message) -> Result<(), String> {
    env.kv_delete(&format!("{}{}", msg_prefix(mb), m.id))?;
    release(env, &m.recordings, true);
    Ok(())
}

/// Sets the state of `m` (and its state time) and stores it.
pub fn set_state(
    env: &mut dyn Env,
    mb: &str,
    m: &mut Message,
    state: State,
    now_ms: u64,
) -> Result<(), String> {
    if m.state != state {
        m.state = state;
        m.state_ms = now_ms;
        save(env, mb, m)?;
    }
    Ok(())
}

/// Purges the messages of `mb` whose state is older than its retention.
/// Returns how many were purged.
pub fn purge(env: &mut dyn Env, mb: &str, retention: &Retention, now_ms: u64) -> usize {
    let msgs = match list(env, mb) {
        Ok(m) => m,
        Err(e) => {
            env.log(
                Level::Warn,
                &format!("mailbox {mb}: retention skipped: {e}"),
            );
            return 0;
        }
    };
    let mut n = 0;
    for m in msgs.iter().filter(|m| expired(m, retention, now_ms)) {
        match remove(env, mb, m) {
            Ok(()) => {
                n += 1;
                env.log(
                    Level::Info,
                    &format!("mailbox {mb}: message {} ({}) purged", m.id, m.state.name()),
                );
            }
            Err(e) => env.log(
                Level::Warn,
                &format!("mailbox {mb}: purge of {} failed: {e}", m.id),
            ),
        }
    }
    n
}

/// Recounts `mb` and sets its MWI; errors are logged.
pub fn refresh_mwi(env: &mut dyn Env, mb: &str) -> Option<Counts> {
    match list(env, mb) {
        Ok(msgs) => {
            let c = counts(&msgs);
            if let Err(e) = env.set_mwi(mb, c) {
                env.log(Level::Warn, &format!("mailbox {mb}: mwi: {e}"));
            }
            Some(c)
        }
        Err(e) => {
            env.log(
                Level::Warn,
                &format!("mailbox {mb}: counts unavailable: {e}"),
            );
            None
        }
    }
}

/// Whether a mailbox takes another message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    /// Full: no recording.
    Full { why: Full, usage: Usage },
    /// A recording of at most `max_ms` (`max_length_s`, cut to the minutes
    /// left, at least `min_length_s`).
    Free { max_ms: u32 },
}

/// Whether `mb` takes another message, by its quota and its messages as
/// stored (purge first). Messages that cannot be read count as room: a
/// storage error never turns a caller away.
pub fn room(env: &mut dyn Env, s: &Settings, mb: &Mailbox) -> Room {
    let usage = match list(env, &mb.id) {
        Ok(msgs) => quota::usage(&msgs),
        Err(e) => {
            env.log(
                Level::Warn,
                &format!("mailbox {}: quota not checked: {e}", mb.id),
            );
            return Room::Free {
                max_ms: s.max_length_s.saturating_mul(1000),
            };
        }
    };
    match mb.quota.full(&usage) {
        Some(why) => Room::Full { why, usage },
        None => Room::Free {
            max_ms: mb
                .quota
                .record_max_ms(&usage, s.min_length_s, s.max_length_s),
        },
    }
}

/// For logs: "mailbox 101 is full (max_messages: 100 messages, 5580 s recorded)".
pub fn full_text(mb: &Mailbox, why: Full, usage: &Usage) -> String {
    format!(
        "mailbox {} is full ({}: {} messages, {} s recorded)",
        mb.id,
        why.name(),
        usage.messages,
        usage.recorded_ms / 1000
    )
}

/// A message to deliver (a deposit or a forward).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub caller: String,
    pub caller_name: String,
    pub time_ms: u64,
    pub duration_ms: u32,
    pub recordings: Vec<String>,
    pub urgent: bool,
    pub forwarded_by: String,
}

/// The mail for a new message in `mb`.
pub fn message_mail(
    env: &mut dyn Env,
    s: &Settings,
    mb: &Mailbox,
    d: &Draft,
    plan: MailPlan,
) -> Option<OutMail> {
    let to = mb.email.clone()?;
    let (date, time) = env.local_date_time(d.time_ms);
    let vars = Vars {
        caller: d.caller.clone(),
        caller_name: d.caller_name.clone(),
        mailbox: mb.id.clone(),
        mailbox_name: mb.name.clone().unwrap_or_default(),
        duration_ms: d.duration_ms,
        date: date.clone(),
        time: time.clone(),
        urgent: d.urgent,
    };
    let subject = template::render(&s.subject_template, &vars);
    let from = if d.caller_name.is_empty() {
        if d.caller.is_empty() {
            "unknown".to_string()
        } else {
            d.caller.clone()
        }
    } else {
        format!("{} ({})", d.caller_name, d.caller)
    };
    let mut body = format!(
        "New voicemail for {} ({})\n\nFrom:     {from}\nReceived: {date} {time}\nLength:   {}\n",
        mb.label(),
        mb.id,
        template::duration(d.duration_ms)
    );
    if !d.forwarded_by.is_empty() {
        body.push_str(&format!("Forwarded by mailbox {}\n", d.forwarded_by));
    }
    body.push('\n');
    body.push_str(match (plan.attach, plan.keep) {
        (true, true) => "The message is attached; it is also kept in your mailbox.\n",
        (true, false) => "The message is attached; it is not kept in your mailbox.\n",
        _ => "Call your voicemail to listen to it.\n",
    });
    let attachments = if plan.attach {
        let n = d.recordings.len();
        d.recordings
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let name = if n == 1 {
                    "message.wav".to_string()
                } else {
                    format!("message-{}.wav", i + 1)
                };
                (name, r.clone())
            })
            .collect()
    } else {
        Vec::new()
    };
    Some(OutMail {
        to,
        subject,
        body,
        attachments,
    })
}

/// What happened to one copy of a delivered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub mailbox: String,
    /// The message id, when stored.
    pub stored: Option<String>,
    /// The mail queue id, when a mail was queued.
    pub mailed: Option<String>,
    /// Still in the mailbox after delivery.
    pub kept: bool,
}

fn deliver_one(env: &mut dyn Env, s: &Settings, mb: &Mailbox, d: &Draft, now_ms: u64) -> Delivered {
    purge(env, &mb.id, &s.retention, now_ms);
    let msg = Message {
        id: new_id(
            env,
            &mb.id,
            now_ms,
            d.recordings.last().map_or("", String::as_str),
        ),
        caller: d.caller.clone(),
        caller_name: d.caller_name.clone(),
        time_ms: d.time_ms,
        duration_ms: d.duration_ms,
        recordings: d.recordings.clone(),
        state: State::New,
        state_ms: now_ms,
        urgent: d.urgent,
        forwarded_by: d.forwarded_by.clone(),
    };
    // Count the references first: a stored message never points at a
    // recording that another copy could delete.
    let stored = match add_refs(env, &msg.recordings).and_then(|()| save(env, &mb.id, &msg)) {
        Ok(()) => Some(msg.id.clone()),
        Err(e) => {
            release(env, &msg.recordings, false);
            env.log(
                Level::Error,
                &format!(
                    "mailbox {}: message from {} not stored ({e}); recordings kept: {}",
                    mb.id,
                    d.caller,
                    d.recordings.join(",")
                ),
            );
            None
        }
    };
    let plan = mail_plan(mb.mode, mb.email.is_some());
    let mut mailed = None;
    if plan.send
        && let Some(mail) = message_mail(env, s, mb, d, plan)
    {
        match env.send_mail(&mail) {
            Ok(q) => {
                env.log(
                    Level::Info,
                    &format!("mailbox {}: mail {q} queued to {}", mb.id, mail.to),
                );
                mailed = Some(q);
            }
            Err(e) => env.log(
                Level::Warn,
                &format!("mailbox {}: mail to {} failed: {e}", mb.id, mail.to),
            ),
        }
    }
    let mut kept = stored.is_some();
    // Forward mode: remove only once the mail is safely queued.
    if !plan.keep && mailed.is_some() && stored.is_some() {
        match remove(env, &mb.id, &msg) {
            Ok(()) => kept = false,
            Err(e) => env.log(
                Level::Warn,
                &format!("mailbox {}: forwarded message kept: {e}", mb.id),
            ),
        }
    }
    refresh_mwi(env, &mb.id);
    Delivered {
        mailbox: mb.id.clone(),
        stored,
        mailed,
        kept,
    }
}

/// Delivers a new message to `target`: stored there (mail per its mode), or,
/// for a group mailbox (`members`), copied to every member (each with its
/// own MWI and mail mode; the group itself only mails its own address, if
/// any; a member whose mailbox is full is skipped). If no copy could be
/// stored or mailed, the message is stored in the target itself, so a
/// recording is never lost. The target's own quota is the caller's to check
/// ([`room`]) before recording.
pub fn deliver(
    env: &mut dyn Env,
    s: &Settings,
    target: &Mailbox,
    draft: &Draft,
    now_ms: u64,
    resolve: &mut dyn FnMut(&str) -> Option<Mailbox>,
) -> Vec<Delivered> {
    if target.members.is_empty() {
        return vec![deliver_one(env, s, target, draft, now_ms)];
    }
    let mut out = Vec::new();
    // The group's own address first: its mail must be queued before any
    // member's forward mode could delete the shared recording.
    let plan = mail_plan(target.mode, target.email.is_some());
    let mut group_mailed = false;
    if plan.send
        && let Some(mail) = message_mail(
            env,
            s,
            target,
            draft,
            MailPlan {
                keep: false,
                ..plan
            },
        )
    {
        match env.send_mail(&mail) {
            Ok(q) => {
                group_mailed = true;
                env.log(
                    Level::Info,
                    &format!("group {}: mail {q} queued to {}", target.id, mail.to),
                );
            }
            Err(e) => env.log(
                Level::Warn,
                &format!("group {}: mail failed: {e}", target.id),
            ),
        }
    }
    let mut seen: Vec<&str> = vec![&target.id];
    // Hold a reference while copying, so a member in forward mode cannot
    // delete the recording before the others have it.
    let held = add_refs(env, &draft.recordings).is_ok();
    for member in &target.members {
        if seen.contains(&member.as_str()) {
            continue;
        }
        seen.push(member);
        match resolve(member) {
            Some(mut m) => {
                // Broadcast is one level deep.
                m.members.clear();
                // A full member gets no copy; the others do.
                purge(env, &m.id, &s.retention, now_ms);
                if let Room::Full { why, usage } = room(env, s, &m) {
                    env.log(
                        Level::Warn,
                        &format!(
                            "group {}: {}; member skipped",
                            target.id,
                            full_text(&m, why, &usage)
                        ),
                    );
                    continue;
                }
                out.push(deliver_one(env, s, &m, draft, now_ms));
            }
            None => env.log(
                Level::Warn,
                &format!("group {}: member {member} has no mailbox", target.id),
            ),
        }
    }
    let anywhere = out.iter().any(|d| d.stored.is_some() || d.mailed.is_some());
    if !anywhere && !group_mailed {
        env.log(
            Level::Warn,
            &format!(
                "group {}: no member took the message; kept in the group",
                target.id
            ),
        );
        let mut alone = target.clone();
        alone.members.clear();
        alone.mode = EmailMode::Off;
        out.push(deliver_one(env, s, &alone, draft, now_ms));
    }
    if held {
        release(env, &draft.recordings, true);
    }
    refresh_mwi(env, &target.id);
    out
}

/// The welcome mail for `mb` with its PIN.
pub fn welcome_mail(mb: &Mailbox, pin: Option<&str>) -> Option<OutMail> {
    let to = mb.email.clone()?;
    let mut body = format!(
        "Hello {},\n\nyour voice mailbox {} is ready.\n\n",
        mb.label(),
        mb.id
    );
    match pin {
        Some(p) => body.push_str(&format!(
            "Your PIN: {p}\n\nTo listen to your messages, call the voicemail number from your own \
             phone and enter the PIN, or press * while your greeting plays. Please change the PIN \
             in the mailbox options (0, then 8).\n"
        )),
        None => body.push_str(
            "To listen to your messages, call the voicemail number from your own phone.\n",
        ),
    }
    Some(OutMail {
        to,
        subject: format!("Welcome to your voice mailbox {}", mb.id),
        body,
        attachments: Vec::new(),
    })
}

#[cfg(test)]
pub mod fake {
    //! An in-memory [`Env`] for tests.
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    #[derive(Default)]
    pub struct FakeEnv {
        pub kv: BTreeMap<String, String>,
        pub recordings: BTreeSet<String>,
        pub mwi: BTreeMap<String, Counts>,
        pub mails: Vec<OutMail>,
        pub fail_mail: bool,
        pub fail_kv_set: bool,
        pub logs: Vec<String>,
    }

    impl Env for FakeEnv {
        fn kv_get(&mut self, key: &str) -> Result<Option<String>, String> {
            Ok(self.kv.get(key).cloned())
        }
        fn kv_set(&mut self, key: &str, value: &str) -> Result<(), String> {
            if self.fail_kv_set {
                return Err("quota exceeded".into());
            }
            self.kv.insert(key.into(), value.into());
            Ok(())
        }
        fn kv_delete(&mut self, key: &str) -> Result<(), String> {
            self.kv.remove(key);
            Ok(())
        }
        fn kv_list(&mut self, prefix: &str) -> Result<Vec<String>, String> {
            Ok(self
                .kv
                .keys()
                .filter(|k| k.starts_with(prefix))
                .cloned()
                .collect())
        }
        fn delete_recording(&mut self, id: &str) -> Result<(), String> {
            self.recordings.remove(id);
            Ok(())
        }
        fn set_mwi(&mut self, mailbox: &str, counts: Counts) -> Result<(), String> {
            self.mwi.insert(mailbox.into(), counts);
            Ok(())
        }
        fn send_mail(&mut self, mail: &OutMail) -> Result<String, String> {
            if self.fail_mail {
                return Err("smtp down".into());
            }
            // A queued mail copies its attachments: they must exist now.
            for (_, r) in &mail.attachments {
                if !self.recordings.contains(r) {
                    return Err(format!("recording {r} not found"));
                }
            }
            self.mails.push(mail.clone());
            Ok(format!("q{}", self.mails.len()))
        }
        fn local_date_time(&mut self, _unix_ms: u64) -> (String, String) {
            ("2025-03-04".into(), "10:42".into())
        }
        fn log(&mut self, _level: Level, message: &str) {
            self.logs.push(message.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeEnv;
    use super::*;

    const H: u64 = 3_600_000;

    fn msg(id: &str, state: State, state_ms: u64) -> Message {
        Message {
            id: id.into(),
            caller: "102".into(),
            caller_name: "Bob".into(),
            time_ms: state_ms,
            duration_ms: 5000,
            recordings: vec![format!("r{id}")],
            state,
            state_ms,
            urgent: false,
            forwarded_by: String::new(),
        }
    }

    fn settings(entries: &[(&str, &str)]) -> Settings {
        let e: Vec<(String, String)> = entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::parse(&e).0
    }

    fn resolver(s: &Settings) -> impl FnMut(&str) -> Option<Mailbox> + '_ {
        move |id| s.mailbox(id).map(|c| Mailbox::configured(id, c, s))
    }

    fn draft(rec: &str) -> Draft {
        Draft {
            caller: "+15551234".into(),
            caller_name: "Bob".into(),
            time_ms: 1000,
            duration_ms: 12_000,
            recordings: vec![rec.into()],
            urgent: false,
            forwarded_by: String::new(),
        }
    }

    #[test]
    fn record_round_trip() {
        let mut m = msg("1", State::Saved, 7);
        m.caller_name = "A\\B\nC=D".into();
        m.recordings = vec!["c1".into(), "o1".into()];
        m.urgent = true;
        assert_eq!(Message::decode(&m.encode()), Some(m));
        assert_eq!(Message::decode("garbage"), None);
    }

    #[test]
    fn counts_by_state() {
        let mut u = msg("4", State::New, 0);
        u.urgent = true;
        let all = [
            msg("1", State::New, 0),
            msg("2", State::Old, 0),
            msg("3", State::Saved, 0),
            msg("5", State::Deleted, 0),
            u,
        ];
        assert_eq!(
            counts(&all),
            Counts {
                new: 2,
                old: 2,
                new_urgent: 1,
                old_urgent: 0
            }
        );
    }

    #[test]
    fn retention_by_state_and_hours() {
        let r = Retention {
            new_h: 0,
            old_h: 720,
            saved_h: 0,
            deleted_h: 24,
        };
        let now = 1000 * H;
        assert!(!expired(&msg("a", State::New, 0), &r, now), "0 = keep");
        assert!(!expired(&msg("b", State::Saved, 0), &r, now), "0 = keep");
        assert!(expired(&msg("c", State::Old, now - 721 * H), &r, now));
        assert!(!expired(&msg("d", State::Old, now - 720 * H), &r, now));
        assert!(expired(&msg("e", State::Deleted, now - 25 * H), &r, now));
        assert!(!expired(&msg("f", State::Deleted, now - 23 * H), &r, now));
    }

    #[test]
    fn purge_deletes_messages_and_recordings() {
        let mut env = FakeEnv::default();
        let r = Retention::default();
        let now = 100 * H;
        for m in [
            msg("1", State::Deleted, 0),
            msg("2", State::Deleted, now - H),
            msg("3", State::Saved, 0),
        ] {
            env.recordings.insert(m.recordings[0].clone());
            save(&mut env, "101", &m).unwrap();
        }
        assert_eq!(purge(&mut env, "101", &r, now), 1);
        let left: Vec<String> = list(&mut env, "101")
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(left, vec!["3", "2"], "oldest first");
        assert!(!env.recordings.contains("r1"));
        assert!(env.recordings.contains("r2"));
    }

    #[test]
    fn email_modes() {
        assert_eq!(
            mail_plan(EmailMode::Off, true),
            MailPlan {
                send: false,
                attach: false,
                keep: true
            }
        );
        assert_eq!(
            mail_plan(EmailMode::Copy, true),
            MailPlan {
                send: true,
                attach: true,
                keep: true
            }
        );
        assert_eq!(
            mail_plan(EmailMode::Forward, true),
            MailPlan {
                send: true,
                attach: true,
                keep: false
            }
        );
        assert_eq!(
            mail_plan(EmailMode::Alert, true),
            MailPlan {
                send: true,
                attach: false,
                keep: true
            }
        );
        assert!(!mail_plan(EmailMode::Copy, false).send);
    }

    fn deliver_to(mode: &str, fail_mail: bool) -> (FakeEnv, Vec<Delivered>) {
        let s = settings(&[
            ("subject_template", "VM {caller} > {mailbox_name}"),
            ("mailboxes.101.email", "ann@example.com"),
            ("mailboxes.101.name", "Ann"),
            ("mailboxes.101.email_mode", mode),
        ]);
        let mut env = FakeEnv {
            fail_mail,
            ..Default::default()
        };
        env.recordings.insert("rec1".into());
        let mb = Mailbox::configured("101", s.mailbox("101").unwrap(), &s);
        let d = deliver(&mut env, &s, &mb, &draft("rec1"), 5000, &mut resolver(&s));
        (env, d)
    }

    #[test]
    fn copy_mode_mails_and_keeps() {
        let (env, d) = deliver_to("copy", false);
        assert_eq!(env.mails.len(), 1);
        assert_eq!(env.mails[0].subject, "VM +15551234 > Ann");
        assert_eq!(
            env.mails[0].attachments,
            vec![("message.wav".to_string(), "rec1".to_string())]
        );
        assert!(d[0].kept);
        assert_eq!(
            env.mwi["101"],
            Counts {
                new: 1,
                ..Default::default()
            }
        );
        assert!(env.recordings.contains("rec1"));
    }

    #[test]
    fn forward_mode_mails_and_removes() {
        let (env, d) = deliver_to("forward", false);
        assert_eq!(env.mails.len(), 1);
        assert!(!d[0].kept);
        assert_eq!(env.mwi["101"], Counts::default());
        assert!(!env.recordings.contains("rec1"));
        assert!(env.kv.keys().all(|k| !k.starts_with("mb/101/msg/")));
    }

    #[test]
    fn forward_mode_keeps_the_message_when_mail_fails() {
        let (env, d) = deliver_to("forward", true);
        assert!(d[0].kept);
        assert_eq!(env.mwi["101"].new, 1);
        assert!(env.recordings.contains("rec1"));
    }

    #[test]
    fn alert_and_off_modes() {
        let (env, d) = deliver_to("alert", false);
        assert!(env.mails[0].attachments.is_empty());
        assert!(d[0].kept);
        let (env, _) = deliver_to("off", false);
        assert!(env.mails.is_empty());
        assert_eq!(env.mwi["101"].new, 1);
    }

    #[test]
    fn storage_failure_never_deletes_the_recording() {
        let s = settings(&[("mailboxes.101.pin", "1")]);
        let mut env = FakeEnv {
            fail_kv_set: true,
            ..Default::default()
        };
        env.recordings.insert("rec1".into());
        let mb = Mailbox::configured("101", s.mailbox("101").unwrap(), &s);
        let d = deliver(&mut env, &s, &mb, &draft("rec1"), 5000, &mut resolver(&s));
        assert_eq!(d[0].stored, None);
        assert!(env.recordings.contains("rec1"));
        assert!(env.logs.iter().any(|l| l.contains("recordings kept: rec1")));
    }

    #[test]
    fn group_broadcast_copies_to_each_member() {
        let s = settings(&[
            ("mailboxes.600.members", "101, 102, 103, 600, 101"),
            ("mailboxes.101.pin", "1"),
            ("mailboxes.102.email", "b@example.com"),
            ("mailboxes.102.email_mode", "forward"),
            ("mailboxes.103.email", "c@example.com"),
            ("mailboxes.103.email_mode", "copy"),
        ]);
        let mut env = FakeEnv::default();
        env.recordings.insert("rec1".into());
        let group = Mailbox::configured("600", s.mailbox("600").unwrap(), &s);
        let d = deliver(
            &mut env,
            &s,
            &group,
            &draft("rec1"),
            5000,
            &mut resolver(&s),
        );
        let boxes: Vec<&str> = d.iter().map(|x| x.mailbox.as_str()).collect();
        assert_eq!(boxes, vec!["101", "102", "103"]);
        assert_eq!(env.mwi["101"].new, 1);
        assert_eq!(env.mwi["102"].new, 0, "forward mode: no MWI");
        assert_eq!(env.mwi["103"].new, 1);
        assert_eq!(env.mwi["600"].new, 0, "the group keeps no copy");
        assert_eq!(env.mails.len(), 2);
        // 101 and 103 still use the recording.
        assert!(env.recordings.contains("rec1"));
        assert_eq!(env.kv.get("ref/rec1").map(String::as_str), Some("2"));
        // Both delete it: the recording goes with the last one.
        for mb in ["101", "103"] {
            let m = list(&mut env, mb).unwrap().remove(0);
            remove(&mut env, mb, &m).unwrap();
            assert_eq!(env.recordings.contains("rec1"), mb == "101");
        }
    }

    #[test]
    fn group_without_members_keeps_the_message() {
        let s = settings(&[("mailboxes.600.members", "999")]);
        let mut env = FakeEnv::default();
        env.recordings.insert("rec1".into());
        let group = Mailbox::configured("600", s.mailbox("600").unwrap(), &s);
        let d = deliver(
            &mut env,
            &s,
            &group,
            &draft("rec1"),
            5000,
            &mut resolver(&s),
        );
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].mailbox, "600");
        assert_eq!(env.mwi["600"].new, 1);
        assert!(env.recordings.contains("rec1"));
    }

    /// Stores `n` messages of `secs` seconds each in `mb` (state `state`).
    fn fill(env: &mut FakeEnv, mb: &str, n: u32, secs: u32, state: State) {
        for i in 0..n {
            let mut m = msg(&format!("{mb}-{state:?}-{i}"), state, 100 * H);
            m.duration_ms = secs * 1000;
            save(env, mb, &m).unwrap();
        }
    }

    #[test]
    fn room_by_count_minutes_and_deleted() {
        let s = settings(&[
            ("max_minutes", "2"),
            ("mailboxes.101.max_messages", "3"),
            ("mailboxes.102.max_minutes", "0"),
        ]);
        let mb = |id: &str| Mailbox::configured(id, s.mailbox(id).unwrap(), &s);
        let mut env = FakeEnv::default();
        // Two messages and two deleted ones: room for one more of up to 120 s
        // (max_length_s), 60 s of the 2 minutes being left.
        fill(&mut env, "101", 2, 30, State::New);
        fill(&mut env, "101", 5, 600, State::Deleted);
        assert_eq!(
            room(&mut env, &s, &mb("101")),
            Room::Free { max_ms: 60_000 }
        );
        // The third message fills it by count.
        fill(&mut env, "101", 1, 1, State::Saved);
        assert!(matches!(
            room(&mut env, &s, &mb("101")),
            Room::Full {
                why: Full::Messages,
                usage: Usage {
                    messages: 3,
                    recorded_ms: 61_000
                }
            }
        ));
        // 102: no minute limit of its own, 100 messages by default.
        fill(&mut env, "102", 4, 60, State::Old);
        assert_eq!(
            room(&mut env, &s, &mb("102")),
            Room::Free { max_ms: 120_000 }
        );
        // A mailbox with the defaults: full by the 2 minutes.
        let dflt = Mailbox::with_defaults("103", None, None, &s);
        fill(&mut env, "103", 2, 60, State::New);
        assert!(matches!(
            room(&mut env, &s, &dflt),
            Room::Full {
                why: Full::Minutes,
                ..
            }
        ));
        // Deleting a message makes room again.
        let mut m = list(&mut env, "103").unwrap().remove(0);
        set_state(&mut env, "103", &mut m, State::Deleted, 200 * H).unwrap();
        assert_eq!(room(&mut env, &s, &dflt), Room::Free { max_ms: 60_000 });
    }

    #[test]
    fn group_broadcast_skips_full_members() {
        let s = settings(&[
            ("mailboxes.600.members", "101, 102, 103"),
            ("mailboxes.101.max_messages", "2"),
            ("mailboxes.102.max_minutes", "1"),
            ("mailboxes.103.max_messages", "2"),
        ]);
        let mut env = FakeEnv::default();
        env.recordings.insert("rec1".into());
        // 101 full by count, 102 by minutes; 103 has a deleted message only
        // besides one kept, so it has room.
        fill(&mut env, "101", 2, 5, State::Saved);
        fill(&mut env, "102", 1, 60, State::New);
        fill(&mut env, "103", 1, 5, State::Old);
        fill(&mut env, "103", 1, 5, State::Deleted);
        let group = Mailbox::configured("600", s.mailbox("600").unwrap(), &s);
        let d = deliver(
            &mut env,
            &s,
            &group,
            &draft("rec1"),
            100 * H,
            &mut resolver(&s),
        );
        let boxes: Vec<&str> = d.iter().map(|x| x.mailbox.as_str()).collect();
        assert_eq!(boxes, vec!["103"]);
        assert_eq!(list(&mut env, "101").unwrap().len(), 2);
        assert_eq!(list(&mut env, "102").unwrap().len(), 1);
        assert_eq!(env.mwi["103"].new, 1);
        for (mb, why) in [("101", "max_messages"), ("102", "max_minutes")] {
            assert!(
                env.logs
                    .iter()
                    .any(|l| l.contains(&format!("mailbox {mb} is full ({why}"))
                        && l.contains("member skipped")),
                "{mb}: {:?}",
                env.logs
            );
        }
        assert!(env.recordings.contains("rec1"));
        assert_eq!(env.kv.get("ref/rec1").map(String::as_str), Some("1"));
    }

    #[test]
    fn group_with_every_member_full_keeps_the_message() {
        let s = settings(&[
            ("mailboxes.600.members", "101"),
            ("mailboxes.101.max_messages", "1"),
        ]);
        let mut env = FakeEnv::default();
        env.recordings.insert("rec1".into());
        fill(&mut env, "101", 1, 5, State::New);
        let group = Mailbox::configured("600", s.mailbox("600").unwrap(), &s);
        let d = deliver(
            &mut env,
            &s,
            &group,
            &draft("rec1"),
            100 * H,
            &mut resolver(&s),
        );
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].mailbox, "600");
        assert_eq!(list(&mut env, "101").unwrap().len(), 1);
        assert!(env.recordings.contains("rec1"));
    }

    #[test]
    fn ids_are_unique_and_time_ordered() {
        let mut env = FakeEnv::default();
        let a = new_id(&mut env, "101", 42, "");
        save(&mut env, "101", &msg(&a, State::New, 42)).unwrap();
        let b = new_id(&mut env, "101", 42, "");
        assert_eq!(a, "0000000000042");
        assert_eq!(b, "0000000000042-1");
        // Two deposits in the same millisecond, each with its own recording,
        // get distinct ids without reading each other's writes.
        let c = new_id(&mut env, "101", 43, "rec-a1/b2");
        let d = new_id(&mut env, "101", 43, "rec-c3");
        assert_eq!(
            (c.as_str(), d.as_str()),
            ("0000000000043-reca1b2", "0000000000043-recc3")
        );
        assert!(a < c && b < c);
    }

    #[test]
    fn welcome_mail_carries_the_pin() {
        let s = Settings::default();
        let mb = Mailbox::with_defaults(
            "101",
            Some("Ann".into()),
            Some("ann@example.com".into()),
            &s,
        );
        let m = welcome_mail(&mb, Some("4711")).unwrap();
        assert!(m.body.contains("Your PIN: 4711"));
        assert!(m.subject.contains("101"));
        let none = Mailbox::with_defaults("102", None, None, &s);
        assert_eq!(welcome_mail(&none, Some("1")), None);
    }
}
