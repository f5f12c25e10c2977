//! Host-side mirrors of the WIT types and the two traits the rest of the host
//! implements for a plugin run ([`CallControl`], [`PluginStorage`]).
//!
//! Callers (the call layer, the store adapter) code against these types, never
//! against `bindgen!` output, so a new contract version changes only
//! `bindings.rs` and the per-interface modules.

use std::fmt;

/// Something to play to the caller (WIT `call.prompt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// A stock prompt by name, in the call's language (`welcome`, `digits/4`).
    Stock(String),
    /// A tenant-uploaded prompt by name; falls back to the stock prompt.
    Tenant(String),
    /// A recording of this plugin for this tenant, by id.
    Recording(String),
    /// Silence, in milliseconds.
    Silence(u32),
}

/// How `play` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayOutcome {
    /// Every prompt was played to the end.
    Completed,
    /// A DTMF key stopped playback (barge-in); the key stays buffered.
    Interrupted,
}

/// Parameters of `collect-digits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectOptions {
    /// Return once this many digits were collected (1..=64).
    pub max_digits: u32,
    /// Give up if no first digit arrives within this time.
    pub first_digit_timeout_ms: u32,
    /// Give up if no further digit arrives within this time after a digit.
    pub inter_digit_timeout_ms: u32,
    /// Keys that end the input; not part of the digits.
    pub terminators: String,
}

/// The result of `collect-digits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collected {
    /// The digits, without the terminator. May be empty.
    pub digits: String,
    /// The terminator key that ended the input, if one did.
    pub terminator: Option<char>,
    /// True when the input ended by a timeout.
    pub timed_out: bool,
}

/// Parameters of `record`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordOptions {
    /// Shorter recordings are discarded (`record` returns `None`).
    pub min_length_ms: u32,
    /// Recording stops at this length.
    pub max_length_ms: u32,
    /// Recording stops after this much silence (0 = never).
    pub silence_timeout_ms: u32,
    /// DTMF keys that stop the recording.
    pub stop_keys: String,
    /// Play a short beep before recording starts.
    pub beep: bool,
}

/// Why a recording stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordStop {
    /// The maximum length was reached.
    MaxLength,
    /// The silence timeout expired.
    Silence,
    /// A stop key was pressed.
    Key,
    /// The caller hung up.
    Hangup,
}

/// A stored recording (WIT `call.recording`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingInfo {
    /// Id to play it back or find it in `recordings`.
    pub id: String,
    /// Length of the stored audio.
    pub duration_ms: u32,
    /// What ended it.
    pub stopped_by: RecordStop,
    /// The stop key, when `stopped_by` is `Key`.
    pub key: Option<char>,
}

/// How a `dial` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialOutcome {
    /// The callee answered; the bridged call has ended.
    Answered,
    /// The callee was busy or on do-not-disturb.
    Busy,
    /// Nobody answered in time, or the callee is not registered.
    NoAnswer,
    /// The target is unknown or the call failed.
    Failed,
}

/// One side of the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    /// The user part of the URI.
    pub user: String,
    /// The display name, if any.
    pub display_name: Option<String>,
    /// The full SIP URI.
    pub uri: String,
}

/// What the host knows about the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    /// The SIP Call-ID of the inbound leg.
    pub call_id: String,
    /// Who called.
    pub caller: Party,
    /// Who was called.
    pub callee: Party,
    /// The tenant's SIP domain.
    pub tenant: String,
    /// Why the call was redirected to this plugin, if known.
    pub redirect_reason: Option<String>,
    /// Selected INVITE headers (name, value).
    pub headers: Vec<(String, String)>,
}

/// Why a call-control operation did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The remote party hung up.
    HungUp,
    /// An argument was invalid.
    Invalid(String),
    /// A named thing does not exist.
    NotFound(String),
    /// The tenant's grants or dial plan do not allow this.
    Denied(String),
    /// The operation failed in the host.
    Failed(String),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::HungUp => f.write_str("hung up"),
            CallError::Invalid(m) => write!(f, "invalid: {m}"),
            CallError::NotFound(m) => write!(f, "not found: {m}"),
            CallError::Denied(m) => write!(f, "denied: {m}"),
            CallError::Failed(m) => write!(f, "failed: {m}"),
        }
    }
}

impl std::error::Error for CallError {}

/// Why a storage operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageError {
    /// The key or id is not acceptable.
    InvalidKey(String),
    /// The tenant's storage quota is used up.
    QuotaExceeded,
    /// The storage backend failed.
    Backend(String),
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::InvalidKey(m) => write!(f, "invalid key: {m}"),
            StorageError::QuotaExceeded => f.write_str("quota exceeded"),
            StorageError::Backend(m) => write!(f, "storage backend: {m}"),
        }
    }
}

impl std::error::Error for StorageError {}

/// A stored recording as listed by `recordings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingMeta {
    /// The recording id.
    pub id: String,
    /// Length of the audio.
    pub duration_ms: u32,
    /// Unix time in milliseconds.
    pub created_ms: u64,
    /// Stored size.
    pub size_bytes: u64,
}

/// Call control for one call, implemented by the call layer.
///
/// Every method may take as long as the media or signalling work takes (a
/// `collect_digits` may wait 30 s); that waiting does not count against the
/// plugin's CPU limit.
#[async_trait::async_trait]
pub trait CallControl: Send + Sync + 'static {
    /// Answer the call (200 OK). Idempotent.
    async fn answer(&self) -> Result<(), CallError>;
    /// End the call.
    async fn hangup(&self);
    /// Play prompts in order; with `barge_in` a DTMF key stops playback.
    async fn play(&self, prompts: Vec<Prompt>, barge_in: bool) -> Result<PlayOutcome, CallError>;
    /// Collect DTMF digits.
    async fn collect_digits(&self, opts: CollectOptions) -> Result<Collected, CallError>;
    /// Record the caller; `None` when shorter than the minimum.
    async fn record(&self, opts: RecordOptions) -> Result<Option<RecordingInfo>, CallError>;
    /// Dial a user of the tenant and bridge.
    async fn dial(&self, target: String, timeout_ms: u32) -> Result<DialOutcome, CallError>;
    /// Transfer the call to another number of the tenant's dial plan.
    async fn transfer(&self, target: String) -> Result<(), CallError>;
    /// Facts about the call.
    fn info(&self) -> CallInfo;
    /// How the call was redirected to the plugin, if it was (0.1.2).
    fn redirect(&self) -> Option<Redirection> {
        None
    }
}

/// Storage scoped to (tenant, plugin), implemented over the store crate.
#[async_trait::async_trait]
pub trait PluginStorage: Send + Sync + 'static {
    /// The value of a key, if set.
    async fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;
    /// Set a key (durable when this returns).
    async fn kv_set(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError>;
    /// Remove a key; true when it existed.
    async fn kv_delete(&self, key: &str) -> Result<bool, StorageError>;
    /// Keys starting with `prefix`, in order.
    async fn kv_list(&self, prefix: &str) -> Result<Vec<String>, StorageError>;
    /// One recording, if it exists.
    async fn recording_get(&self, id: &str) -> Result<Option<RecordingMeta>, StorageError>;
    /// All recordings, oldest first.
    async fn recording_list(&self) -> Result<Vec<RecordingMeta>, StorageError>;
    /// Remove a recording; true when it existed.
    async fn recording_delete(&self, id: &str) -> Result<bool, StorageError>;
}

/// What a screener sees of a new call (WIT `screening.screen-request`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenRequest {
    /// Call-ID of the INVITE.
    pub call_id: String,
    /// The tenant's domain.
    pub tenant: String,
    /// Calling user (From user part).
    pub caller: String,
    /// Calling display name.
    pub caller_name: Option<String>,
    /// Dialled number.
    pub callee: String,
    /// Transport and address the INVITE came from.
    pub source: String,
    /// The INVITE's headers.
    pub headers: Vec<(String, String)>,
}

/// A screener's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Route the call.
    Allow,
    /// Refuse it with this status and reason.
    Reject {
        /// SIP status (the host clamps it to 400-699).
        code: u16,
        /// Reason text.
        reason: String,
    },
    /// Route it to this number instead.
    Divert(String),
}

/// The call part of call events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallEvent {
    /// Call-ID.
    pub call_id: String,
    /// Calling user.
    pub caller: String,
    /// Dialled number.
    pub callee: String,
    /// Plugin handling the call, if any.
    pub plugin: Option<String>,
}

/// What happened (WIT `listener.event-kind`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A call was accepted for routing.
    CallStarted(CallEvent),
    /// The caller was answered.
    CallAnswered(CallEvent),
    /// The call ended.
    CallEnded {
        /// The call.
        call: CallEvent,
        /// How it ended (as in the CDR).
        disposition: String,
        /// From start to end.
        duration_ms: u64,
    },
    /// A user's registration changed.
    RegistrationChanged {
        /// The user.
        user: String,
        /// Live contacts now.
        contacts: u32,
    },
    /// A plugin run faulted.
    PluginFault {
        /// Plugin name.
        plugin: String,
        /// Its version.
        version: String,
        /// Fault kind label.
        kind: String,
        /// Details.
        message: String,
    },
    /// Repeated faults disabled a plugin for the tenant.
    PluginDisabled {
        /// Plugin name.
        plugin: String,
        /// Seconds until it is tried again.
        backoff_s: u32,
    },
    /// A plugin stored a recording.
    RecordingStored {
        /// Plugin name.
        plugin: String,
        /// Recording id.
        id: String,
        /// Length.
        duration_ms: u32,
    },
}

/// An event of one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The tenant's domain.
    pub tenant: String,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// What happened.
    pub kind: EventKind,
}

/// An outbound HTTP request of a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Method.
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// 0 = default.
    pub timeout_ms: u32,
}

/// The response to an [`HttpRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// Why an outbound request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The host is not allow-listed.
    Denied(String),
    /// Malformed request.
    Invalid(String),
    /// Connection or protocol failure.
    Failed(String),
    /// No answer in time.
    Timeout,
}

/// Outbound HTTP for one plugin in one tenant, with its allow-list applied
/// (implemented by the host's call layer).
#[async_trait::async_trait]
pub trait HttpClient: Send + Sync + 'static {
    /// Sends `req` if its host is allowed.
    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, HttpError>;
}

/// Where a mail attachment's bytes come from (WIT `mail.attachment-source`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachmentSource {
    /// A recording of the plugin for the tenant, by id.
    Recording(String),
    /// Bytes given by the plugin.
    Bytes(Vec<u8>),
}

/// One attachment of a [`MailMessage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailAttachment {
    /// File name shown to the recipient.
    pub filename: String,
    /// MIME type.
    pub content_type: String,
    /// The bytes or the recording they come from.
    pub source: AttachmentSource,
}

/// A plain-text message a plugin queues (WIT `mail.message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailMessage {
    /// Recipients.
    pub to: Vec<String>,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// Attachments.
    pub attachments: Vec<MailAttachment>,
}

/// Why `mail.send` failed (WIT `mail.mail-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailError {
    /// Mail is not configured for the tenant.
    Unavailable(String),
    /// An address, the subject or an attachment is not acceptable.
    Invalid(String),
    /// A recording named as an attachment does not exist.
    NotFound(String),
    /// The queue could not store the message.
    Failed(String),
}

/// Message counts of one mailbox (WIT `mwi.counts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct MwiCounts {
    /// New messages.
    pub new_messages: u32,
    /// Old (heard or saved) messages.
    pub old_messages: u32,
    /// New urgent messages.
    pub new_urgent: u32,
    /// Old urgent messages.
    pub old_urgent: u32,
}

/// An instant in the tenant's time zone (WIT `clock.local-time`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTime {
    /// Milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// Calendar year.
    pub year: i32,
    /// 1-12.
    pub month: u8,
    /// 1-31.
    pub day: u8,
    /// 0-23.
    pub hour: u8,
    /// 0-59.
    pub minute: u8,
    /// 0-60.
    pub second: u8,
    /// ISO 8601 weekday, 1 = Monday.
    pub weekday: u8,
    /// Offset from UTC in minutes.
    pub utc_offset_minutes: i32,
    /// IANA time zone name.
    pub zone: String,
}

/// How `say-datetime` speaks an instant (WIT `speech.datetime-style`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateTimeStyle {
    /// Hour and minute.
    Time,
    /// Weekday, "at", hour and minute.
    WeekdayTime,
    /// Weekday, month, day, "at", hour and minute.
    DateTime,
}

/// Why text-to-speech failed (WIT `speech.tts-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TtsError {
    /// No engine on this host.
    Unavailable(String),
    /// Empty or too long text.
    Invalid(String),
    /// Synthesis or storage failed.
    Failed(String),
}

/// A directory entry (WIT `directory.entry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryEntry {
    /// Distinguished name.
    pub id: String,
    /// E.164 number.
    pub number: Option<String>,
    /// Internal extension.
    pub extension: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Mail address.
    pub mail: Option<String>,
    /// PIN hash attribute.
    pub pin_hash: Option<String>,
}

/// Why a directory operation failed (WIT `directory.directory-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryError {
    /// No directory for the tenant.
    Unavailable(String),
    /// The number cannot be read.
    Invalid(String),
    /// Every server failed.
    Failed(String),
}

/// How the call was redirected to the plugin (WIT `redirect.redirection`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirection {
    /// The number originally called (user part).
    pub original: String,
    /// RFC 5806 reason name: `user-busy`, `no-answer`, `unconditional`, ...
    pub reason: String,
    /// `rules`, `diversion` or `history-info`.
    pub source: String,
}

/// The tenant services of contract 0.1.2 (mail, message waiting, clock,
/// speech, directory) for one plugin run, implemented by the call layer for
/// (tenant, plugin). [`NoServices`] answers "not configured" everywhere.
#[async_trait::async_trait]
pub trait TenantServices: Send + Sync + 'static {
    /// Queue a mail (durable when this returns ok).
    async fn mail_send(&self, msg: MailMessage) -> Result<String, MailError>;
    /// Set the message counts of an account; notifies on change.
    async fn mwi_set(&self, account: &str, counts: MwiCounts) -> Result<(), String>;
    /// The counts last set for an account.
    async fn mwi_get(&self, account: &str) -> MwiCounts;
    /// Now, in the tenant's time zone.
    fn now(&self) -> LocalTime;
    /// An instant in the tenant's time zone.
    fn to_local(&self, unix_ms: u64) -> LocalTime;
    /// A number as stock prompts.
    fn say_number(&self, n: u32) -> Vec<Prompt>;
    /// An instant as stock prompts.
    fn say_datetime(&self, unix_ms: u64, style: DateTimeStyle) -> Vec<Prompt>;
    /// Text-to-speech into a recording of the plugin; returns its id.
    async fn synthesize(&self, text: &str) -> Result<String, TtsError>;
    /// Look a number up in the tenant's directory.
    async fn directory_lookup(
        &self,
        number: &str,
    ) -> Result<Option<DirectoryEntry>, DirectoryError>;
    /// A number in E.164 by the tenant's numbering plan.
    fn normalize(&self, number: &str) -> Result<String, DirectoryError>;
}

/// Tenant services of a host where none are configured: mail, message
/// waiting, speech and directory answer "unavailable", the clock is the
/// system clock in UTC.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoServices;

impl LocalTime {
    /// The fields of `t` in its own time zone, named `zone`.
    pub fn at<Tz: chrono::TimeZone>(t: &chrono::DateTime<Tz>, zone: &str) -> LocalTime {
        use chrono::{Datelike, Offset, Timelike};
        LocalTime {
            unix_ms: t.timestamp_millis().max(0) as u64,
            year: t.year(),
            month: t.month() as u8,
            day: t.day() as u8,
            hour: t.hour() as u8,
            minute: t.minute() as u8,
            second: t.second() as u8,
            weekday: t.weekday().number_from_monday() as u8,
            utc_offset_minutes: t.offset().fix().local_minus_utc() / 60,
            zone: zone.to_string(),
        }
    }
}

fn utc_local(unix_ms: u64) -> LocalTime {
    let t = chrono::DateTime::from_timestamp_millis(unix_ms as i64).unwrap_or_default();
    LocalTime {
        unix_ms,
        ..LocalTime::at(&t, "UTC")
    }
}

#[async_trait::async_trait]
impl TenantServices for NoServices {
    async fn mail_send(&self, _msg: MailMessage) -> Result<String, MailError> {
        Err(MailError::Unavailable(
            "mail is not configured on this host".into(),
        ))
    }
    async fn mwi_set(&self, _account: &str, _counts: MwiCounts) -> Result<(), String> {
        Err("message waiting is not available on this host".into())
    }
    async fn mwi_get(&self, _account: &str) -> MwiCounts {
        MwiCounts::default()
    }
    fn now(&self) -> LocalTime {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        utc_local(ms)
    }
    fn to_local(&self, unix_ms: u64) -> LocalTime {
        utc_local(unix_ms)
    }
    fn say_number(&self, _n: u32) -> Vec<Prompt> {
        Vec::new()
    }
    fn say_datetime(&self, _unix_ms: u64, _style: DateTimeStyle) -> Vec<Prompt> {
        Vec::new()
    }
    async fn synthesize(&self, _text: &str) -> Result<String, TtsError> {
        Err(TtsError::Unavailable(
            "text-to-speech is not available on this host".into(),
        ))
    }
    async fn directory_lookup(
        &self,
        _number: &str,
    ) -> Result<Option<DirectoryEntry>, DirectoryError> {
        Err(DirectoryError::Unavailable(
            "no directory is configured".into(),
        ))
    }
    fn normalize(&self, _number: &str) -> Result<String, DirectoryError> {
        Err(DirectoryError::Unavailable(
            "no numbering plan is configured".into(),
        ))
    }
}
