//! The durable queue and its worker.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::address::{Address, Envelope};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncTransport, Message, Tokio1Executor};
use plugboard_store::Store;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use crate::{MailError, OutgoingMail, SmtpConfig, SmtpConfigs, error_chain};

/// Store document kind of queued mails (`doc_put(QUEUE_KIND, id, ..)`).
pub const QUEUE_KIND: &str = "mail-queue";

/// Most recipients of one mail.
const MAX_RECIPIENTS: usize = 100;
/// Version of the document header.
const DOC_VERSION: u32 = 1;

/// Tuning of a [`MailQueue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueOptions {
    /// Delay after the first failed attempt; doubles with every further one (default 5 s).
    pub base_delay: Duration,
    /// Longest delay between attempts, also used after a permanent rejection (default 15 min).
    pub max_delay: Duration,
    /// Most attempts in progress at once, all tenants together (default 4).
    pub max_concurrent: usize,
    /// Largest formatted message accepted by `enqueue` (default 25 MiB).
    pub max_message_bytes: usize,
}

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            base_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(15 * 60),
            max_concurrent: 4,
            max_message_bytes: 25 * 1024 * 1024,
        }
    }
}

/// A queued mail as shown to the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueEntry {
    /// Queue id (as returned by [`MailQueue::enqueue`]).
    pub id: String,
    /// Tenant that sent it.
    pub tenant: String,
    /// Envelope recipients (addresses).
    pub to: Vec<String>,
    /// Subject line.
    pub subject: String,
    /// Failed attempts so far.
    pub attempts: u32,
    /// When it was queued, milliseconds since the Unix epoch.
    pub enqueued_unix_ms: u64,
    /// When the next attempt is due, milliseconds since the Unix epoch.
    pub next_attempt_unix_ms: u64,
    /// Why the last attempt failed (the server's reply or the connection error).
    pub last_error: Option<String>,
}

/// Counters since this [`MailQueue`] was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueStats {
    /// Mails waiting (including those being sent right now).
    pub pending: usize,
    /// Mails accepted by a server.
    pub sent: u64,
    /// Attempts that failed (connection, TLS, authentication, rejection).
    pub failed_attempts: u64,
}

/// The JSON line in front of the message bytes in a queue document.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DocHeader {
    v: u32,
    tenant: String,
    envelope_from: Option<String>,
    envelope_to: Vec<String>,
    subject: String,
    enqueued_unix_ms: u64,
    attempts: u32,
    next_attempt_unix_ms: u64,
    last_error: Option<String>,
}

fn encode(header: &DocHeader, message: &[u8]) -> Vec<u8> {
    // serde_json escapes every control character, so the line holds no '\n'.
    let mut doc = serde_json::to_vec(header).expect("header serializes");
    doc.reserve(1 + message.len());
    doc.push(b'\n');
    doc.extend_from_slice(message);
    doc
}

fn decode(doc: &[u8]) -> Result<(DocHeader, &[u8]), String> {
    let nl = doc
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no header line")?;
    let header: DocHeader =
        serde_json::from_slice(&doc[..nl]).map_err(|e| format!("bad header: {e}"))?;
    if header.v != DOC_VERSION {
        return Err(format!("unknown document version {}", header.v));
    }
    Ok((header, &doc[nl + 1..]))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

struct Pending {
    header: DocHeader,
    /// An attempt is running (or waiting for a concurrency slot).
    in_flight: bool,
}

/// Why an attempt failed.
struct Failure {
    text: String,
    /// The server rejected the mail with a 5xx reply.
    permanent: bool,
}

impl Failure {
    fn other(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            permanent: false,
        }
    }
}

type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// The durable outgoing mail queue with its sending worker; see the crate docs.
///
/// Open with [`MailQueue::open`] (loads the mails left from before a restart),
/// run the worker with [`MailQueue::start`], stop it with [`MailQueue::stop`].
pub struct MailQueue {
    store: Arc<dyn Store>,
    configs: Arc<dyn SmtpConfigs>,
    opts: QueueOptions,
    pending: Mutex<BTreeMap<String, Pending>>,
    /// Per tenant: the settings a transport was built from, and the transport.
    transports: Mutex<HashMap<String, (SmtpConfig, Transport)>>,
    wake: Notify,
    started: AtomicBool,
    stopping: AtomicBool,
    sent: AtomicU64,
    failed_attempts: AtomicU64,
}

impl MailQueue {
    /// Opens the queue on `store` and loads every queued mail (those left over
    /// from before a crash or restart included). Nothing is sent before
    /// [`MailQueue::start`].
    ///
    /// A document that cannot be decoded is logged at `error` and left in the store.
    pub async fn open(
        store: Arc<dyn Store>,
        configs: Arc<dyn SmtpConfigs>,
        opts: QueueOptions,
    ) -> Result<Arc<Self>, MailError> {
        let docs = store
            .doc_list(QUEUE_KIND)
            .await
            .map_err(|e| MailError::Failed(format!("cannot read the mail queue: {e}")))?;
        let mut pending = BTreeMap::new();
        for (id, doc) in docs {
            match decode(&doc) {
                Ok((header, _)) => {
                    pending.insert(
                        id,
                        Pending {
                            header,
                            in_flight: false,
                        },
                    );
                }
                Err(e) => {
                    tracing::error!(id, "mail queue: unreadable document left in the store: {e}")
                }
            }
        }
        if !pending.is_empty() {
            tracing::info!(
                count = pending.len(),
                "mail queue: mails waiting from before"
            );
        }
        Ok(Arc::new(Self {
            store,
            configs,
            opts,
            pending: Mutex::new(pending),
            transports: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            started: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            failed_attempts: AtomicU64::new(0),
        }))
    }

    /// Validates `mail`, builds the complete message with the tenant's `from`,
    /// stores it durably and wakes the worker. Returns the queue id.
    ///
    /// When this returns `Ok`, the mail is on disk and will be sent (after a
    /// restart, if need be).
    pub async fn enqueue(&self, mail: OutgoingMail) -> Result<String, MailError> {
        let config = self
            .configs
            .smtp(&mail.tenant)
            .ok_or(MailError::Unavailable)?;
        let tenant = mail.tenant.clone();
        let subject = mail.subject.clone();
        let (envelope, message) = build_message(&config, mail)?;
        if message.len() > self.opts.max_message_bytes {
            return Err(MailError::Invalid(format!(
                "the message is {} bytes, more than the {} accepted",
                message.len(),
                self.opts.max_message_bytes
            )));
        }
        let now = now_ms();
        let header = DocHeader {
            v: DOC_VERSION,
            tenant,
            envelope_from: envelope.from().map(ToString::to_string),
            envelope_to: envelope.to().iter().map(ToString::to_string).collect(),
            subject,
            enqueued_unix_ms: now,
            attempts: 0,
            next_attempt_unix_ms: now,
            last_error: None,
        };
        // Time first so that the store's key order is the queue order.
        let id = format!("{now:013}-{:016x}", rand::random::<u64>());
        self.store
            .doc_put(QUEUE_KIND, &id, &encode(&header, &message))
            .await
            .map_err(|e| MailError::Failed(format!("cannot store the mail: {e}")))?;
        tracing::info!(
            id,
            tenant = header.tenant,
            bytes = message.len(),
            "mail queued"
        );
        self.lock_pending().insert(
            id.clone(),
            Pending {
                header,
                in_flight: false,
            },
        );
        self.wake.notify_one();
        Ok(id)
    }

    /// The mails waiting, oldest first.
    pub async fn pending(&self) -> Vec<QueueEntry> {
        self.lock_pending()
            .iter()
            .map(|(id, p)| QueueEntry {
                id: id.clone(),
                tenant: p.header.tenant.clone(),
                to: p.header.envelope_to.clone(),
                subject: p.header.subject.clone(),
                attempts: p.header.attempts,
                enqueued_unix_ms: p.header.enqueued_unix_ms,
                next_attempt_unix_ms: p.header.next_attempt_unix_ms,
                last_error: p.header.last_error.clone(),
            })
            .collect()
    }

    /// Counters since [`MailQueue::open`], and the number of mails waiting.
    pub fn stats(&self) -> QueueStats {
        QueueStats {
            pending: self.lock_pending().len(),
            sent: self.sent.load(Ordering::Relaxed),
            failed_attempts: self.failed_attempts.load(Ordering::Relaxed),
        }
    }

    /// Starts the worker on the current tokio runtime. Mails due now (those
    /// loaded by [`MailQueue::open`] included) are sent at once.
    ///
    /// Call once; a second call only logs a warning. The handle completes
    /// after [`MailQueue::stop`], once the attempts in progress have ended.
    pub fn start(self: &Arc<Self>) -> JoinHandle<()> {
        if self.started.swap(true, Ordering::SeqCst) {
            tracing::warn!("mail queue worker already started");
            return tokio::spawn(async {});
        }
        let me = Arc::clone(self);
        tokio::spawn(me.run())
    }

    /// Asks the worker to stop: no new attempt begins; await the handle of
    /// [`MailQueue::start`] to wait for those in progress. Queued mails stay
    /// in the store for the next start.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    fn lock_pending(&self) -> MutexGuard<'_, BTreeMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn run(self: Arc<Self>) {
        let slots = Arc::new(Semaphore::new(self.opts.max_concurrent.max(1)));
        let mut attempts = JoinSet::new();
        loop {
            while let Some(done) = attempts.try_join_next() {
                if let Err(e) = done {
                    tracing::error!("mail attempt task failed: {e}");
                }
            }
            if self.stopping.load(Ordering::SeqCst) {
                break;
            }
            let now = now_ms();
            let mut due = Vec::new();
            let mut next: Option<u64> = None;
            for (id, p) in self.lock_pending().iter_mut() {
                if p.in_flight {
                    continue;
                }
                if p.header.next_attempt_unix_ms <= now {
                    p.in_flight = true;
                    due.push(id.clone());
                } else {
                    let t = p.header.next_attempt_unix_ms;
                    next = Some(next.map_or(t, |n| n.min(t)));
                }
            }
            for id in due {
                let me = Arc::clone(&self);
                let slots = Arc::clone(&slots);
                attempts.spawn(async move {
                    let _slot = slots.acquire_owned().await;
                    me.attempt(&id).await;
                    me.wake.notify_one();
                });
            }
            let sleep = next.map_or(Duration::from_secs(3600), |t| {
                Duration::from_millis(t.saturating_sub(now))
            });
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(sleep) => {}
            }
        }
        while let Some(done) = attempts.join_next().await {
            if let Err(e) = done {
                tracing::error!("mail attempt task failed: {e}");
            }
        }
        let transports: Vec<Transport> = self
            .lock_transports()
            .drain()
            .map(|(_, (_, t))| t)
            .collect();
        for t in transports {
            t.shutdown().await;
        }
    }

    fn lock_transports(&self) -> MutexGuard<'_, HashMap<String, (SmtpConfig, Transport)>> {
        self.transports.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One attempt to send mail `id`; updates the store and the memory state.
    async fn attempt(&self, id: &str) {
        let doc = match self.store.doc_get(QUEUE_KIND, id).await {
            Ok(Some(doc)) => doc,
            Ok(None) => {
                // Gone from the store: nothing left to send.
                self.lock_pending().remove(id);
                return;
            }
            Err(e) => {
                let text = format!("cannot read the queued mail: {e}");
                tracing::error!(id, "{text}");
                self.reschedule_in_memory(id, text);
                return;
            }
        };
        let (mut header, message) = match decode(&doc) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(id, "mail queue: unreadable document left in the store: {e}");
                self.lock_pending().remove(id);
                return;
            }
        };
        match self.send(&header, message).await {
            Ok(reply) => {
                self.sent.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    id,
                    tenant = header.tenant,
                    failed_attempts = header.attempts,
                    "mail sent: {reply}"
                );
                if let Err(e) = self.store.doc_delete(QUEUE_KIND, id).await {
                    tracing::error!(
                        id,
                        "mail sent but not removed from the queue (it will be sent again after a restart): {e}"
                    );
                }
                self.lock_pending().remove(id);
            }
            Err(failure) => {
                self.failed_attempts.fetch_add(1, Ordering::Relaxed);
                header.attempts = header.attempts.saturating_add(1);
                let delay = if failure.permanent {
                    tracing::warn!(
                        id,
                        tenant = header.tenant,
                        attempts = header.attempts,
                        "mail rejected by the server, retrying in {:?}: {}",
                        self.opts.max_delay,
                        failure.text
                    );
                    self.opts.max_delay
                } else {
                    let d = backoff(&self.opts, header.attempts);
                    tracing::info!(
                        id,
                        tenant = header.tenant,
                        attempts = header.attempts,
                        "mail not sent, retrying in {d:?}: {}",
                        failure.text
                    );
                    d
                };
                header.next_attempt_unix_ms = now_ms().saturating_add(millis(jitter(delay)));
                header.last_error = Some(failure.text);
                if let Err(e) = self
                    .store
                    .doc_put(QUEUE_KIND, id, &encode(&header, message))
                    .await
                {
                    tracing::error!(id, "cannot save the retry schedule of a mail: {e}");
                }
                if let Some(p) = self.lock_pending().get_mut(id) {
                    p.header = header;
                    p.in_flight = false;
                }
            }
        }
    }

    fn reschedule_in_memory(&self, id: &str, text: String) {
        self.failed_attempts.fetch_add(1, Ordering::Relaxed);
        let mut pending = self.lock_pending();
        if let Some(p) = pending.get_mut(id) {
            p.header.attempts = p.header.attempts.saturating_add(1);
            let delay = backoff(&self.opts, p.header.attempts);
            p.header.next_attempt_unix_ms = now_ms().saturating_add(millis(delay));
            p.header.last_error = Some(text);
            p.in_flight = false;
        }
    }

    async fn send(&self, header: &DocHeader, message: &[u8]) -> Result<String, Failure> {
        let transport = self.transport(&header.tenant)?;
        let from = match &header.envelope_from {
            Some(a) => Some(
                a.parse::<Address>()
                    .map_err(|e| Failure::other(format!("bad stored sender {a:?}: {e}")))?,
            ),
            None => None,
        };
        let to = header
            .envelope_to
            .iter()
            .map(|a| {
                a.parse::<Address>()
                    .map_err(|e| Failure::other(format!("bad stored recipient {a:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let envelope = Envelope::new(from, to)
            .map_err(|e| Failure::other(format!("bad stored envelope: {e}")))?;
        match transport.send_raw(&envelope, message).await {
            Ok(reply) => Ok(format!(
                "{} {}",
                reply.code(),
                reply.message().collect::<Vec<_>>().join(" ")
            )),
            Err(e) => Err(Failure {
                permanent: e.is_permanent(),
                text: error_chain(&e),
            }),
        }
    }

    /// The tenant's transport, rebuilt when its settings changed.
    fn transport(&self, tenant: &str) -> Result<Transport, Failure> {
        let config = self.configs.smtp(tenant).ok_or_else(|| {
            Failure::other(format!("tenant {tenant:?} has no mail settings (any more)"))
        })?;
        let mut transports = self.lock_transports();
        if let Some((built_from, t)) = transports.get(tenant)
            && *built_from == config
        {
            return Ok(t.clone());
        }
        let t = config.transport().map_err(Failure::other)?;
        if transports
            .insert(tenant.to_string(), (config, t.clone()))
            .is_some()
        {
            tracing::info!(tenant, "mail settings changed: new SMTP transport");
        }
        Ok(t)
    }
}

/// Delay after the `attempts`-th failure: base * 2^(attempts-1), capped.
fn backoff(opts: &QueueOptions, attempts: u32) -> Duration {
    let factor = 1u32 << attempts.saturating_sub(1).min(20);
    opts.base_delay.saturating_mul(factor).min(opts.max_delay)
}

/// Adds up to 10 % to `d`.
fn jitter(d: Duration) -> Duration {
    let extra = millis(d) / 10;
    if extra == 0 {
        return d;
    }
    d + Duration::from_millis(rand::random_range(0..=extra))
}

fn single_line(what: &str, s: &str) -> Result<(), MailError> {
    if s.chars().any(char::is_control) {
        return Err(MailError::Invalid(format!(
            "{what} {s:?} contains a line break or control character"
        )));
    }
    Ok(())
}

/// Builds the RFC 5322 message: returns its envelope and formatted bytes.
fn build_message(
    config: &SmtpConfig,
    mail: OutgoingMail,
) -> Result<(Envelope, Vec<u8>), MailError> {
    let from = config.sender_mailbox().map_err(|e| {
        MailError::Failed(format!(
            "the mail settings of tenant {:?} are broken: {e}",
            mail.tenant
        ))
    })?;
    if mail.to.is_empty() {
        return Err(MailError::Invalid("no recipient".to_string()));
    }
    if mail.to.len() > MAX_RECIPIENTS {
        return Err(MailError::Invalid(format!(
            "{} recipients, at most {MAX_RECIPIENTS} are accepted",
            mail.to.len()
        )));
    }
    single_line("the subject", &mail.subject)?;
    let mut builder = Message::builder()
        .from(from)
        .subject(mail.subject)
        .date_now()
        .message_id(None);
    for to in &mail.to {
        let mailbox = to
            .trim()
            .parse::<Mailbox>()
            .map_err(|_| MailError::Invalid(format!("recipient {to:?} is not a mail address")))?;
        builder = builder.to(mailbox);
    }
    let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(mail.body));
    for a in mail.attachments {
        if a.filename.is_empty() || a.filename.len() > 255 {
            return Err(MailError::Invalid(
                "an attachment file name must be 1..=255 bytes".to_string(),
            ));
        }
        single_line("the attachment file name", &a.filename)?;
        if a.filename.contains(['/', '\\']) {
            return Err(MailError::Invalid(format!(
                "the attachment file name {:?} contains a path separator",
                a.filename
            )));
        }
        let content_type = ContentType::parse(&a.content_type).map_err(|_| {
            MailError::Invalid(format!(
                "attachment {:?}: {:?} is not a MIME type",
                a.filename, a.content_type
            ))
        })?;
        let body = Body::new_with_encoding(a.bytes, ContentTransferEncoding::Base64)
            .map_err(|_| MailError::Invalid("attachment cannot be encoded".to_string()))?;
        parts =
            parts.singlepart(lettre::message::Attachment::new(a.filename).body(body, content_type));
    }
    let message = builder
        .multipart(parts)
        .map_err(|e| MailError::Invalid(error_chain(&e)))?;
    Ok((message.envelope().clone(), message.formatted()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Attachment, Security};

    struct Fixed(Option<SmtpConfig>);
    impl SmtpConfigs for Fixed {
        fn smtp(&self, _tenant: &str) -> Option<SmtpConfig> {
            self.0.clone()
        }
    }

    fn config() -> SmtpConfig {
        SmtpConfig {
            host: "127.0.0.1".into(),
            port: Some(9),
            security: Security::None,
            username: None,
            password: None,
            from: "Voicemail <vm@example.com>".into(),
            ca_file: None,
            timeout_s: Some(2),
        }
    }

    fn mail() -> OutgoingMail {
        OutgoingMail {
            tenant: "a.test".into(),
            to: vec!["Alice <alice@example.com>".into(), "bob@example.com".into()],
            subject: "Voicemail from 101".into(),
            body: "You have a new message.\n".into(),
            attachments: vec![Attachment {
                filename: "msg.wav".into(),
                content_type: "audio/wav".into(),
                bytes: vec![0, 1, 2, 255, b'\n', b'\r'],
            }],
        }
    }

    async fn queue(configs: Option<SmtpConfig>) -> (tempfile::TempDir, Arc<MailQueue>) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(plugboard_store::EmbeddedStore::open(dir.path()).unwrap());
        let q = MailQueue::open(store, Arc::new(Fixed(configs)), QueueOptions::default())
            .await
            .unwrap();
        (dir, q)
    }

    #[test]
    fn documents_round_trip_and_keep_bytes() {
        let header = DocHeader {
            v: DOC_VERSION,
            tenant: "t".into(),
            envelope_from: Some("a@b.c".into()),
            envelope_to: vec!["d@e.f".into()],
            subject: "line\nbreak \u{1}".into(),
            enqueued_unix_ms: 1,
            attempts: 2,
            next_attempt_unix_ms: 3,
            last_error: Some("x\ny".into()),
        };
        let body = b"\nbinary\n\0\xff".to_vec();
        let doc = encode(&header, &body);
        let (h, b) = decode(&doc).unwrap();
        assert_eq!(b, &body[..]);
        assert_eq!(h.subject, header.subject);
        assert_eq!(h.attempts, 2);
        assert!(decode(b"junk").is_err());
        assert!(decode(b"{\"v\":9}\nx").is_err());
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let o = QueueOptions::default();
        let s = Duration::from_secs;
        assert_eq!(backoff(&o, 1), s(5));
        assert_eq!(backoff(&o, 2), s(10));
        assert_eq!(backoff(&o, 3), s(20));
        assert_eq!(backoff(&o, 8), s(640));
        assert_eq!(backoff(&o, 9), s(900));
        assert_eq!(backoff(&o, u32::MAX), s(900));
        let j = jitter(s(100));
        assert!(j >= s(100) && j <= s(110));
    }

    #[tokio::test]
    async fn enqueue_refuses_bad_mail_and_missing_settings() {
        let (_d, q) = queue(None).await;
        assert_eq!(q.enqueue(mail()).await, Err(MailError::Unavailable));

        let (_d, q) = queue(Some(config())).await;
        let bad = |f: fn(&mut OutgoingMail)| {
            let mut m = mail();
            f(&mut m);
            m
        };
        assert_eq!(
            q.enqueue(bad(|m| m.to.push("not an address".into()))).await,
            Err(MailError::Invalid(
                "recipient \"not an address\" is not a mail address".into()
            ))
        );
        assert_eq!(
            q.enqueue(bad(|m| m.to.clear())).await,
            Err(MailError::Invalid("no recipient".into()))
        );
        assert!(matches!(
            q.enqueue(bad(|m| m.subject = "a\r\nBcc: x@y.z".into())).await,
            Err(MailError::Invalid(e)) if e.contains("line break")
        ));
        assert!(matches!(
            q.enqueue(bad(|m| m.attachments[0].content_type = "wav".into())).await,
            Err(MailError::Invalid(e)) if e.contains("is not a MIME type")
        ));
        assert!(matches!(
            q.enqueue(bad(|m| m.attachments[0].filename = "../x.wav".into())).await,
            Err(MailError::Invalid(e)) if e.contains("path separator")
        ));
        assert!(q.pending().await.is_empty());

        let (_d, q) = queue(Some(SmtpConfig {
            from: "nobody".into(),
            ..config()
        }))
        .await;
        assert!(matches!(
            q.enqueue(mail()).await,
            Err(MailError::Failed(e)) if e.contains("mail.from: \"nobody\" is not a mail address")
        ));
    }

    #[tokio::test]
    async fn enqueue_stores_a_complete_message() {
        let (_d, q) = queue(Some(config())).await;
        let id = q.enqueue(mail()).await.unwrap();
        let doc = q.store.doc_get(QUEUE_KIND, &id).await.unwrap().unwrap();
        let (h, msg) = decode(&doc).unwrap();
        assert_eq!(h.tenant, "a.test");
        assert_eq!(h.envelope_from.as_deref(), Some("vm@example.com"));
        assert_eq!(h.envelope_to, ["alice@example.com", "bob@example.com"]);
        let text = String::from_utf8(msg.to_vec()).unwrap();
        for needle in [
            "From: Voicemail <vm@example.com>\r\n",
            "To: Alice <alice@example.com>, bob@example.com\r\n",
            "Subject: Voicemail from 101\r\n",
            "Date: ",
            "Message-ID: <",
            "Content-Type: multipart/mixed;",
            "Content-Type: audio/wav\r\n",
            "Content-Disposition: attachment; filename=\"msg.wav\"\r\n",
            "Content-Transfer-Encoding: base64\r\n",
            "AAEC/woN\r\n",
        ] {
            assert!(text.contains(needle), "{needle:?} missing in\n{text}");
        }
        let p = q.pending().await;
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].id, id);
        assert_eq!(p[0].attempts, 0);
        assert_eq!(q.stats().pending, 1);
    }
}
