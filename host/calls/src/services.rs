//! The tenant services of contract 0.1.2 for one plugin run (mail, message
//! waiting, clock, speech, directory): [`RunServices`] implements
//! [`TenantServices`] for (tenant, plugin) over the host's shared parts.
//!
//! - mail goes to the durable queue ([`plugboard_mail::MailQueue`]) with the
//!   tenant's `[tenant.mail]`; recordings named as attachments are read now,
//!   so the plugin may delete them right after `send`;
//! - message waiting goes to [`crate::mwi::Mwi`];
//! - the clock is the host's (a `[testing] clock_file` under test) in the
//!   tenant's time zone;
//! - numbers and dates become stock prompts ([`plugboard_speech`]);
//!   text-to-speech runs on the host's one espeak-ng thread and is stored
//!   as a recording of the plugin (within the tenant's storage quota);
//! - the directory is the tenant's `[tenant.directory]` with its
//!   `[tenant.numbering]`, one [`Directory`] (and cache) per tenant, rebuilt
//!   when the configuration changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::TimeZone;
use plugboard_directory::Directory;
use plugboard_plugins::{
    AttachmentSource, DateTimeStyle, DirectoryEntry, DirectoryError, LocalTime, MailError,
    MailMessage, MwiCounts, Prompt, TenantServices, TtsError,
};
use plugboard_speech::Tts;
use plugboard_store::Scope;
use plugboard_tenants::Tenant;
use tracing::{info, warn};

use crate::server::Core;

/// Most attachments of one mail.
const MAX_ATTACHMENTS: usize = 10;
/// Largest total of one mail's attachments (the queue's limit on the whole
/// formatted message is 25 MiB; base64 adds a third).
const MAX_ATTACHMENT_BYTES: u64 = 18 << 20;

/// Per-tenant directories and the text-to-speech engine, shared by all runs.
#[derive(Default)]
pub struct Shared {
    directories: Mutex<HashMap<String, Arc<Directory>>>,
    tts: OnceLock<Result<Tts, String>>,
}

impl Shared {
    /// The tenant's directory, built from its configuration (rebuilt when
    /// that changed, which also empties the cache).
    fn directory(&self, tenant: &Tenant) -> Result<Arc<Directory>, DirectoryError> {
        let (Some(cfg), Some(plan)) = (&tenant.directory, &tenant.numbering) else {
            return Err(DirectoryError::Unavailable(format!(
                "no directory is configured for {}",
                tenant.domain
            )));
        };
        let mut map = self.directories.lock().expect("directories lock");
        if let Some(d) = map.get(&tenant.domain)
            && d.config() == cfg
            && d.plan() == plan
        {
            return Ok(d.clone());
        }
        let d = Arc::new(
            Directory::new(cfg.clone(), plan.clone())
                .map_err(|e| DirectoryError::Failed(e.to_string()))?,
        );
        map.insert(tenant.domain.clone(), d.clone());
        Ok(d)
    }

    /// The espeak-ng engine, loaded on first use; its error is kept and
    /// reported to every caller (the library is either installed or not).
    fn tts(&self) -> Result<Tts, TtsError> {
        self.tts
            .get_or_init(|| match Tts::load() {
                Ok(t) => {
                    info!("text-to-speech: libespeak-ng loaded");
                    Ok(t)
                }
                Err(e) => {
                    warn!("text-to-speech is unavailable: {e}");
                    Err(e.to_string())
                }
            })
            .clone()
            .map_err(TtsError::Unavailable)
    }
}

/// [`TenantServices`] of one plugin run.
pub struct RunServices {
    pub(crate) core: Arc<Core>,
    pub(crate) tenant: Arc<Tenant>,
    pub(crate) scope: Scope,
}

impl RunServices {
    fn tz(&self) -> chrono_tz::Tz {
        self.tenant.timezone.parse().unwrap_or(chrono_tz::UTC)
    }

    fn local(&self, unix_ms: u64) -> chrono::DateTime<chrono_tz::Tz> {
        let tz = self.tz();
        tz.timestamp_millis_opt(unix_ms as i64)
            .single()
            .unwrap_or_else(|| tz.timestamp_millis_opt(0).unwrap())
    }

    /// The attachments' bytes, after checking their count and total size
    /// (recordings by their stored size, before anything is read).
    async fn attachment_bytes(
        &self,
        sources: Vec<AttachmentSource>,
    ) -> Result<Vec<Vec<u8>>, MailError> {
        if sources.len() > MAX_ATTACHMENTS {
            return Err(MailError::Invalid(format!(
                "{} attachments, at most {MAX_ATTACHMENTS}",
                sources.len()
            )));
        }
        let mut total = 0u64;
        let mut plan = Vec::with_capacity(sources.len());
        for source in sources {
            match source {
                AttachmentSource::Bytes(b) => {
                    total += b.len() as u64;
                    plan.push(Ok(b));
                }
                AttachmentSource::Recording(id) => {
                    let found = self
                        .core
                        .store
                        .recording_get(&self.scope, &id)
                        .await
                        .map_err(|e| MailError::Failed(format!("recording {id}: {e}")))?;
                    let Some((meta, path)) = found else {
                        return Err(MailError::NotFound(format!("recording {id}")));
                    };
                    total += meta.size_bytes;
                    plan.push(Err((id, path)));
                }
            }
            if total > MAX_ATTACHMENT_BYTES {
                return Err(MailError::Invalid(format!(
                    "attachments of more than {} MiB",
                    MAX_ATTACHMENT_BYTES >> 20
                )));
            }
        }
        let mut out = Vec::with_capacity(plan.len());
        for p in plan {
            out.push(match p {
                Ok(b) => b,
                Err((id, path)) => tokio::fs::read(&path)
                    .await
                    .map_err(|e| MailError::Failed(format!("recording {id}: {e}")))?,
            });
        }
        Ok(out)
    }
}

fn local_time(t: chrono::DateTime<chrono_tz::Tz>) -> LocalTime {
    LocalTime::at(&t, t.timezone().name())
}

fn stock(names: Vec<String>) -> Vec<Prompt> {
    names.into_iter().map(Prompt::Stock).collect()
}

#[async_trait::async_trait]
impl TenantServices for RunServices {
    async fn mail_send(&self, msg: MailMessage) -> Result<String, MailError> {
        let Some(queue) = self.core.mail.get() else {
            return Err(MailError::Unavailable(
                "the mail queue is not running".into(),
            ));
        };
        let (meta, sources): (Vec<_>, Vec<_>) = msg
            .attachments
            .into_iter()
            .map(|a| ((a.filename, a.content_type), a.source))
            .unzip();
        let attachments = meta
            .into_iter()
            .zip(self.attachment_bytes(sources).await?)
            .map(
                |((filename, content_type), bytes)| plugboard_mail::Attachment {
                    filename,
                    content_type,
                    bytes,
                },
            )
            .collect();
        let mail = plugboard_mail::OutgoingMail {
            tenant: self.tenant.domain.clone(),
            to: msg.to,
            subject: msg.subject,
            body: msg.body,
            attachments,
        };
        let id = queue.enqueue(mail).await.map_err(|e| match e {
            plugboard_mail::MailError::Unavailable => MailError::Unavailable(format!(
                "mail is not configured for {} ([tenant.mail])",
                self.tenant.domain
            )),
            plugboard_mail::MailError::Invalid(m) => MailError::Invalid(m),
            plugboard_mail::MailError::Failed(m) => MailError::Failed(m),
        })?;
        info!(tenant = %self.tenant.domain, plugin = %self.scope.plugin, %id, "mail queued");
        Ok(id)
    }

    async fn mwi_set(&self, account: &str, counts: MwiCounts) -> Result<(), String> {
        self.core
            .mwi
            .set(&self.core, &self.tenant, account, counts)
            .await
    }

    async fn mwi_get(&self, account: &str) -> MwiCounts {
        self.core
            .mwi
            .get(&self.core, &self.tenant.domain, account)
            .await
    }

    fn now(&self) -> LocalTime {
        let now = self.core.licences.clock().now();
        local_time(now.with_timezone(&self.tz()))
    }

    fn to_local(&self, unix_ms: u64) -> LocalTime {
        local_time(self.local(unix_ms))
    }

    fn say_number(&self, n: u32) -> Vec<Prompt> {
        stock(plugboard_speech::say_number(n, &self.tenant.language))
    }

    fn say_datetime(&self, unix_ms: u64, style: DateTimeStyle) -> Vec<Prompt> {
        let style = match style {
            DateTimeStyle::Time => plugboard_speech::DateTimeStyle::Time,
            DateTimeStyle::WeekdayTime => plugboard_speech::DateTimeStyle::WeekdayTime,
            DateTimeStyle::DateTime => plugboard_speech::DateTimeStyle::DateTime,
        };
        stock(plugboard_speech::say_datetime(
            self.local(unix_ms),
            style,
            &self.tenant.language,
        ))
    }

    async fn synthesize(&self, text: &str) -> Result<String, TtsError> {
        let tts = self.core.services.tts()?;
        let samples = tts
            .synthesize(text, &self.tenant.language)
            .await
            .map_err(|e| match e {
                plugboard_speech::TtsError::Unavailable(m) => TtsError::Unavailable(m),
                plugboard_speech::TtsError::Invalid(m) => TtsError::Invalid(m),
                other => TtsError::Failed(other.to_string()),
            })?;
        let duration_ms =
            (samples.len() as u64 * 1000 / plugboard_speech::SAMPLE_RATE as u64) as u32;
        let wav = plugboard_media::wav::write_wav_pcm16(&samples);
        let meta = crate::plugin_call::put_recording(
            &self.core,
            &self.tenant,
            &self.scope,
            wav,
            duration_ms,
        )
        .await
        .map_err(|e| TtsError::Failed(e.to_string()))?;
        Ok(meta.id)
    }

    async fn directory_lookup(
        &self,
        number: &str,
    ) -> Result<Option<DirectoryEntry>, DirectoryError> {
        let dir = self.core.services.directory(&self.tenant)?;
        let found = dir.lookup_number(number).await.map_err(|e| match e {
            plugboard_directory::DirectoryError::Invalid(m) => DirectoryError::Invalid(m),
            plugboard_directory::DirectoryError::Failed(m) => DirectoryError::Failed(m),
        })?;
        Ok(found.map(|e| DirectoryEntry {
            id: e.id,
            number: e.number,
            extension: e.extension,
            display_name: e.display_name,
            mail: e.mail,
            pin_hash: e.pin_hash,
        }))
    }

    fn normalize(&self, number: &str) -> Result<String, DirectoryError> {
        let Some(plan) = &self.tenant.numbering else {
            return Err(DirectoryError::Unavailable(format!(
                "no numbering plan is configured for {} ([tenant.numbering])",
                self.tenant.domain
            )));
        };
        plan.normalize(number)
            .map_err(|e| DirectoryError::Invalid(e.to_string()))
    }
}

/// The [`plugboard_mail::SmtpConfigs`] of the host: each tenant's current
/// `[tenant.mail]`.
pub struct TenantSmtp(pub std::sync::Weak<Core>);

impl plugboard_mail::SmtpConfigs for TenantSmtp {
    fn smtp(&self, tenant: &str) -> Option<plugboard_mail::SmtpConfig> {
        self.0.upgrade()?.tenants.get(tenant)?.mail.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_is_in_the_tenant_zone_with_its_offset() {
        let tz: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        // 2025-12-01T09:42:05Z is a Monday, 10:42 in Berlin (UTC+1).
        let t = tz.timestamp_millis_opt(1_764_582_125_000).unwrap();
        let l = local_time(t);
        assert_eq!(
            (
                l.year, l.month, l.day, l.hour, l.minute, l.second, l.weekday
            ),
            (2025, 12, 1, 10, 42, 5, 1)
        );
        assert_eq!(
            (l.utc_offset_minutes, l.zone.as_str()),
            (60, "Europe/Berlin")
        );
        // Summer time: UTC+2.
        let summer = tz.timestamp_millis_opt(1_751_362_925_000).unwrap();
        assert_eq!(local_time(summer).utc_offset_minutes, 120);
    }
}
