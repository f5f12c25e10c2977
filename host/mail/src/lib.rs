//! plugboard-mail: outgoing mail for the PBX (voicemail to mail, notices),
//! per-tenant SMTP through [lettre](https://lettre.rs) with a durable,
//! retrying queue kept in the [`plugboard_store::Store`].
//!
//! # Shape
//!
//! - [`SmtpConfig`] is a tenant's `[mail]` table (server, security, login,
//!   sender, optional private CA). [`SmtpConfig::check`] explains mistakes in
//!   the operator's terms (`mail.from: "x" is not a mail address`).
//! - [`SmtpConfigs`] is how the queue finds a tenant's *current* settings; it
//!   asks at every send attempt, so a corrected password or host takes effect
//!   on the next retry without touching the queue.
//! - [`MailQueue::enqueue`] takes an [`OutgoingMail`], validates the
//!   addresses, builds the complete RFC 5322 message at once (multipart/mixed:
//!   the plain-text body plus base64 attachments, `Date`, `Message-ID`, `From`
//!   = the tenant's `from`) and writes it as **one store document** (kind
//!   [`QUEUE_KIND`]) before it returns the queue id. From then on the mail
//!   survives a crash or SIGKILL.
//! - The worker ([`MailQueue::start`]) sends due mails with lettre's pooled
//!   `AsyncSmtpTransport<Tokio1Executor>` (`send_raw` of the stored bytes) and
//!   deletes the document only after the server accepted the message (a 2xx
//!   reply to the end of DATA).
//!
//! # Delivery guarantees
//!
//! At least once. A mail is removed only after the server's acceptance; a
//! crash between acceptance and the deletion (or a failed deletion) sends it
//! again after restart. Nothing is ever dropped by the queue on its own.
//!
//! # Retries
//!
//! A failed attempt is rescheduled after `base_delay * 2^(attempts-1)`
//! (default 5 s, 10 s, 20 s, ...), capped at `max_delay` (default 15 min), with
//! up to 10 % random jitter so that many mails do not hit a recovering server
//! at the same instant. A permanent (5xx) rejection is still retried, at the
//! capped interval, and logged at `warn` with the server's reply: the cause is
//! often a configuration error the operator fixes. The schedule, the attempt
//! count and the last error live in the document, so they survive restarts
//! and [`MailQueue::pending`] shows them (admin API, metrics).
//!
//! # Tenants
//!
//! Each document records its tenant; an attempt looks up that tenant's
//! settings and uses a transport cached per tenant (rebuilt when the
//! settings change), so a mail is only ever sent with its own tenant's
//! server, credentials and sender. A tenant without settings cannot enqueue
//! ([`MailError::Unavailable`]); a queued mail whose tenant lost its settings
//! waits and retries.
//!
//! # TLS
//!
//! rustls with the ring provider only. `starttls` is lettre's
//! `Tls::Required` (a server that does not offer STARTTLS is an error, never
//! a silent plain-text fallback), `tls` is implicit TLS (`Tls::Wrapper`),
//! `none` is plain text (for a relay on the same host; [`SmtpConfig::check`]
//! refuses a password over it to any other host). The system roots are
//! trusted, plus the PEM certificates of `ca_file`.
//!
//! # Document format
//!
//! One line of JSON (version, tenant, envelope, subject, attempts, schedule,
//! last error), a `\n`, then the formatted message bytes unchanged: no base64
//! of base64, no 4x blow-up of a byte array in JSON.

#![deny(missing_docs)]

mod config;
mod queue;

pub use config::{DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S, Security, SmtpConfig};
pub use queue::{MailQueue, QUEUE_KIND, QueueEntry, QueueOptions, QueueStats};

/// Where the queue finds a tenant's SMTP settings (the tenant registry in the host).
///
/// Called at enqueue and at every send attempt; return the tenant's current
/// settings, `None` when the tenant has no `[mail]` table (or no longer exists).
pub trait SmtpConfigs: Send + Sync {
    /// The current settings of `tenant`, if it has any.
    fn smtp(&self, tenant: &str) -> Option<SmtpConfig>;
}

/// A mail to send on behalf of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// The tenant sending it: its settings (server, `from`) are used.
    pub tenant: String,
    /// Recipients, each a mailbox such as `alice@example.com` or `Alice <alice@example.com>`.
    pub to: Vec<String>,
    /// Subject line (one line; non-ASCII is encoded).
    pub subject: String,
    /// Plain-text body (UTF-8).
    pub body: String,
    /// Files attached after the body, base64-encoded.
    pub attachments: Vec<Attachment>,
}

/// A file attached to an [`OutgoingMail`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// File name shown to the recipient, e.g. `message-0001.wav`.
    pub filename: String,
    /// MIME type, e.g. `audio/wav`.
    pub content_type: String,
    /// The file's content.
    pub bytes: Vec<u8>,
}

/// Why a mail could not be queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// The tenant has no SMTP settings: mail is not available to it.
    #[error("mail is not configured for this tenant")]
    Unavailable,
    /// The mail itself is malformed (the text says what: an address, the subject, an attachment, the size).
    #[error("invalid mail: {0}")]
    Invalid(String),
    /// The mail could not be queued (storage failure, broken tenant settings).
    #[error("mail failed: {0}")]
    Failed(String),
}

/// `e` and its sources joined by ": ", skipping a source whose text the
/// previous level already contains and repeated segments
/// (lettre says "Connection error: Connection error: ...").
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    let mut segments: Vec<&str> = out.split(": ").collect();
    segments.dedup();
    segments.join(": ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn error_chain_drops_repeats() {
        let e = std::io::Error::other("Connection error: Connection error: bad cert: bad cert");
        assert_eq!(super::error_chain(&e), "Connection error: bad cert");
    }
}
