//! `plugboard:pbx/mail` (0.1.2): forwards to [`crate::TenantServices`],
//! whose mail queue is durable when `send` returns.

use crate::bindings::plugboard::pbx::mail::{
    Attachment, AttachmentSource, Host, MailError, Message,
};
use crate::state::PluginState;
use crate::types as t;

impl Host for PluginState {
    async fn send(&mut self, message: Message) -> Result<String, MailError> {
        self.cpu.reset_stretch();
        let msg = t::MailMessage {
            to: message.to,
            subject: message.subject,
            body: message.body,
            attachments: message.attachments.into_iter().map(attachment).collect(),
        };
        self.services.mail_send(msg).await.map_err(|e| match e {
            t::MailError::Unavailable(m) => MailError::Unavailable(m),
            t::MailError::Invalid(m) => MailError::Invalid(m),
            t::MailError::NotFound(m) => MailError::NotFound(m),
            t::MailError::Failed(m) => MailError::Failed(m),
        })
    }
}

fn attachment(a: Attachment) -> t::MailAttachment {
    t::MailAttachment {
        filename: a.filename,
        content_type: a.content_type,
        source: match a.source {
            AttachmentSource::Recording(id) => t::AttachmentSource::Recording(id),
            AttachmentSource::Bytes(b) => t::AttachmentSource::Bytes(b),
        },
    }
}
