//! Outgoing mail through the tenant's SMTP server (needs the operator's
//! grant). The host queues each message durably and retries it until the
//! server accepts it: once [`send`] returns ok, the message survives a crash.
//!
//! ```no_run
//! use plugboard_sdk::mail::{self, Mail};
//! # fn f() -> plugboard_sdk::Result<()> {
//! let id = mail::send(
//!     &Mail::to("ann@example.com")
//!         .subject("New voicemail")
//!         .body("A message is waiting.")
//!         .attach_recording("message.wav", "rec-42"),
//! )?;
//! # let _ = id; Ok(()) }
//! ```

use crate::__bindings::plugboard::pbx::mail as raw;
use crate::error::Result;

pub use raw::{Attachment, AttachmentSource, MailError};

/// A plain-text message from the tenant's configured sender (the WIT `message`).
pub use raw::Message as Mail;

impl Mail {
    /// A message to one recipient (`ann@example.com` or `Ann <ann@example.com>`),
    /// with an empty subject and body.
    pub fn to(recipient: impl Into<String>) -> Mail {
        Mail {
            to: vec![recipient.into()],
            subject: String::new(),
            body: String::new(),
            attachments: Vec::new(),
        }
    }

    /// Add a recipient.
    pub fn cc(mut self, recipient: impl Into<String>) -> Mail {
        self.to.push(recipient.into());
        self
    }

    /// Set the subject.
    pub fn subject(mut self, subject: impl Into<String>) -> Mail {
        self.subject = subject.into();
        self
    }

    /// Set the plain-text body (UTF-8).
    pub fn body(mut self, body: impl Into<String>) -> Mail {
        self.body = body.into();
        self
    }

    /// Attach a recording of this plugin as `audio/wav`. The host copies it
    /// into the queue, so deleting the recording afterwards is safe.
    pub fn attach_recording(mut self, filename: impl Into<String>, id: impl Into<String>) -> Mail {
        self.attachments.push(Attachment {
            filename: filename.into(),
            content_type: "audio/wav".to_string(),
            source: AttachmentSource::Recording(id.into()),
        });
        self
    }

    /// Attach bytes given by the plugin.
    pub fn attach_bytes(
        mut self,
        filename: impl Into<String>,
        content_type: impl Into<String>,
        bytes: Vec<u8>,
    ) -> Mail {
        self.attachments.push(Attachment {
            filename: filename.into(),
            content_type: content_type.into(),
            source: AttachmentSource::Bytes(bytes),
        });
        self
    }
}

/// Queue `mail`. Returns the queue id (also in the host's log). Errors say
/// why: mail not configured for the tenant, a bad address or attachment, a
/// missing recording, or a queue failure.
pub fn send(mail: &Mail) -> Result<String> {
    Ok(raw::send(mail)?)
}

impl From<MailError> for crate::Error {
    fn from(e: MailError) -> Self {
        let text = match e {
            MailError::Unavailable(m) => format!("mail unavailable: {m}"),
            MailError::Invalid(m) => format!("invalid mail: {m}"),
            MailError::NotFound(m) => format!("mail attachment not found: {m}"),
            MailError::Failed(m) => format!("mail failed: {m}"),
        };
        crate::Error::Other(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_collects_recipients_and_attachments() {
        let m = Mail::to("a@example.com")
            .cc("B <b@example.com>")
            .subject("s")
            .body("b")
            .attach_recording("m.wav", "r1")
            .attach_bytes("x.txt", "text/plain", b"hi".to_vec());
        assert_eq!(m.to, vec!["a@example.com", "B <b@example.com>"]);
        assert_eq!(m.subject, "s");
        assert_eq!(m.body, "b");
        assert_eq!(m.attachments.len(), 2);
        assert_eq!(m.attachments[0].content_type, "audio/wav");
        assert_eq!(
            m.attachments[0].source,
            AttachmentSource::Recording("r1".into())
        );
    }

    #[test]
    fn errors_map_to_text() {
        assert_eq!(
            crate::Error::from(MailError::Unavailable("no smtp".into())).to_string(),
            "mail unavailable: no smtp"
        );
    }
}
