//! The queue against a real SMTP server: Debian's `python3-aiosmtpd` writing
//! into a Maildir, started as a child process on a free loopback port.

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plugboard_mail::{
    Attachment, MailError, MailQueue, OutgoingMail, QueueOptions, Security, SmtpConfig, SmtpConfigs,
};
use plugboard_store::{EmbeddedStore, Store};

const PYTHON: &str = "/usr/bin/python3";
const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- server

/// An aiosmtpd child process, killed on drop.
struct Server {
    child: Child,
    maildir: PathBuf,
}

enum ServerTls<'a> {
    None,
    /// `--tlscert/--tlskey`: STARTTLS offered and required.
    Starttls(&'a Path, &'a Path),
    /// `--smtpscert/--smtpskey`: implicit TLS.
    Smtps(&'a Path, &'a Path),
}

impl Server {
    fn start(port: u16, maildir: &Path, tls: ServerTls<'_>) -> Server {
        Self::start_with(port, maildir, tls, &[])
    }

    fn start_with(port: u16, maildir: &Path, tls: ServerTls<'_>, extra: &[&str]) -> Server {
        // aiosmtpd's Maildir creates new/, cur/ and tmp/ only with the folder itself.
        assert!(
            !maildir.exists(),
            "{} must not exist yet",
            maildir.display()
        );
        let mut cmd = Command::new(PYTHON);
        cmd.args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"));
        match tls {
            ServerTls::None => {}
            ServerTls::Starttls(cert, key) => {
                cmd.arg("--tlscert").arg(cert).arg("--tlskey").arg(key);
            }
            ServerTls::Smtps(cert, key) => {
                cmd.arg("--smtpscert").arg(cert).arg("--smtpskey").arg(key);
            }
        }
        cmd.args(extra)
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut server = Server {
            child: cmd.spawn().expect("start aiosmtpd (python3-aiosmtpd)"),
            maildir: maildir.to_path_buf(),
        };
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("aiosmtpd exited: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd does not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// The received mails (Maildir `new/`), in no particular order.
    fn mails(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        dir.map(|e| e.unwrap().path())
            .map(|p| String::from_utf8(std::fs::read(p).unwrap()).unwrap())
            .collect()
    }

    async fn wait_for_mails(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} mails arrived",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on (right now).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------- queue helpers

#[derive(Default)]
struct Configs(Mutex<HashMap<String, SmtpConfig>>);

impl Configs {
    fn set(&self, tenant: &str, config: SmtpConfig) {
        self.0.lock().unwrap().insert(tenant.to_string(), config);
    }
}

impl SmtpConfigs for Configs {
    fn smtp(&self, tenant: &str) -> Option<SmtpConfig> {
        self.0.lock().unwrap().get(tenant).cloned()
    }
}

fn plain(port: u16, from: &str) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port: Some(port),
        security: Security::None,
        username: None,
        password: None,
        from: from.into(),
        ca_file: None,
        timeout_s: Some(5),
    }
}

fn fast() -> QueueOptions {
    QueueOptions {
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(400),
        ..QueueOptions::default()
    }
}

fn mail(tenant: &str, to: &str, subject: &str) -> OutgoingMail {
    OutgoingMail {
        tenant: tenant.into(),
        to: vec![to.into()],
        subject: subject.into(),
        body: "You have a new voice message.\nRegards, your PBX\n".into(),
        attachments: Vec::new(),
    }
}

async fn open(dir: &Path, configs: &Arc<Configs>) -> (Arc<dyn Store>, Arc<MailQueue>) {
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir).unwrap());
    let configs: Arc<dyn SmtpConfigs> = configs.clone();
    let queue = MailQueue::open(Arc::clone(&store), configs, fast())
        .await
        .unwrap();
    (store, queue)
}

/// Waits until `f` holds for the pending entries.
async fn wait_until(
    queue: &MailQueue,
    what: &str,
    f: impl Fn(&[plugboard_mail::QueueEntry]) -> bool,
) {
    let deadline = Instant::now() + WAIT;
    loop {
        let pending = queue.pending().await;
        if f(&pending) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {pending:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------- parsing

/// A tiny WAV: 0.25 s of 8 kHz 16-bit mono sawtooth (every byte value occurs, CR and LF included).
fn wav() -> Vec<u8> {
    let samples: Vec<i16> = (0..2000)
        .map(|i| ((i * 331) % 65536 - 32768) as i16)
        .collect();
    let data_len = (samples.len() * 2) as u32;
    let mut w = Vec::new();
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data_len).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&1u16.to_le_bytes()); // mono
    w.extend_from_slice(&8000u32.to_le_bytes());
    w.extend_from_slice(&16000u32.to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        w.extend_from_slice(&s.to_le_bytes());
    }
    w
}

fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        if c == b'=' {
            break;
        }
        let v = ALPHABET
            .iter()
            .position(|&a| a == c)
            .expect("base64 character") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Headers (name lower-cased, folded lines joined) and body of a message or MIME part.
fn split(text: &str) -> (HashMap<String, String>, &str) {
    let (head, body) = text.split_once("\n\n").expect("header/body separator");
    let mut headers: HashMap<String, String> = HashMap::new();
    let mut last: Option<String> = None;
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            let name = last.as_ref().expect("continuation line after a header");
            let v = headers.get_mut(name).unwrap();
            v.push(' ');
            v.push_str(line.trim());
        } else if let Some((name, value)) = line.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            headers.insert(name.clone(), value.trim().to_string());
            last = Some(name);
        }
    }
    (headers, body)
}

/// The MIME parts of a multipart message body.
fn parts<'a>(headers: &HashMap<String, String>, body: &'a str) -> Vec<&'a str> {
    let ct = &headers["content-type"];
    assert!(ct.starts_with("multipart/mixed"), "{ct}");
    let boundary = ct
        .split("boundary=")
        .nth(1)
        .expect("boundary")
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let mut pieces: Vec<&str> = body.split(delimiter.as_str()).collect();
    // Preamble before the first delimiter, epilogue after the closing "--".
    pieces.remove(0);
    let last = pieces.pop().expect("closing delimiter");
    assert!(last.starts_with("--"), "closing delimiter: {last:?}");
    pieces
        .into_iter()
        .map(|p| p.trim_start_matches('\n'))
        .collect()
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn wav_attachment_arrives_byte_exact_and_tenants_stay_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let closed = free_port();
    let server = Server::start(port, &tmp.path().join("maildir"), ServerTls::None);
    let configs = Arc::new(Configs::default());
    configs.set("a.test", plain(port, "Voicemail A <vm@a.test>"));
    // Tenant b's server is down: its mail must never go through a's server.
    configs.set("b.test", plain(closed, "Voicemail B <vm@b.test>"));
    let (_store, queue) = open(&tmp.path().join("store"), &configs).await;
    let worker = queue.start();

    let wav = wav();
    let id_a = queue
        .enqueue(OutgoingMail {
            tenant: "a.test".into(),
            to: vec!["Alice <alice@example.com>".into(), "bob@example.com".into()],
            subject: "New voicemail from 101".into(),
            body: "You have a new voice message.\nLength: 0:00.25\n".into(),
            attachments: vec![Attachment {
                filename: "msg0001.wav".into(),
                content_type: "audio/wav".into(),
                bytes: wav.clone(),
            }],
        })
        .await
        .unwrap();
    let id_b = queue
        .enqueue(mail("b.test", "carol@example.com", "for b"))
        .await
        .unwrap();
    assert_ne!(id_a, id_b);
    assert_eq!(
        queue
            .enqueue(mail("c.test", "x@example.com", "no config"))
            .await,
        Err(MailError::Unavailable)
    );

    let mails = server.wait_for_mails(1).await;
    let received = mails[0].replace("\r\n", "\n");
    let (headers, body) = split(&received);
    assert_eq!(headers["subject"], "New voicemail from 101");
    assert_eq!(headers["from"], "\"Voicemail A\" <vm@a.test>");
    assert_eq!(headers["to"], "Alice <alice@example.com>, bob@example.com");
    assert_eq!(headers["x-mailfrom"], "vm@a.test");
    assert_eq!(headers["x-rcptto"], "alice@example.com, bob@example.com");
    assert!(headers.contains_key("date"), "{headers:?}");
    assert!(headers["message-id"].starts_with('<'), "{headers:?}");
    let parts = parts(&headers, body);
    assert_eq!(parts.len(), 2, "{parts:#?}");
    let (text_headers, text) = split(parts[0]);
    assert!(
        text_headers["content-type"].starts_with("text/plain"),
        "{text_headers:?}"
    );
    assert_eq!(
        text.trim_end(),
        "You have a new voice message.\nLength: 0:00.25"
    );
    let (att_headers, att) = split(parts[1]);
    assert_eq!(att_headers["content-type"], "audio/wav");
    assert_eq!(att_headers["content-transfer-encoding"], "base64");
    assert_eq!(
        att_headers["content-disposition"],
        "attachment; filename=\"msg0001.wav\""
    );
    assert_eq!(
        base64_decode(att),
        wav,
        "the WAV must round-trip byte-exact"
    );

    // a's mail is gone from the queue; b's waits, retried, with the reason.
    wait_until(&queue, "b to fail twice", |p| {
        p.len() == 1 && p[0].id == id_b && p[0].attempts >= 2
    })
    .await;
    let b = &queue.pending().await[0];
    assert_eq!(b.tenant, "b.test");
    assert_eq!(b.to, ["carol@example.com"]);
    let err = b.last_error.as_deref().unwrap();
    assert!(err.to_lowercase().contains("connection refused"), "{err}");
    assert_eq!(server.mails().len(), 1, "b's mail must not use a's server");

    // The operator fixes b's settings: the next retry uses them.
    configs.set("b.test", plain(port, "Voicemail B <vm@b.test>"));
    let mails = server.wait_for_mails(2).await;
    let for_b: Vec<_> = mails
        .iter()
        .map(|m| split(&m.replace("\r\n", "\n")).0)
        .filter(|h| h["subject"] == "for b")
        .collect();
    assert_eq!(for_b.len(), 1);
    let headers = &for_b[0];
    assert_eq!(headers["x-mailfrom"], "vm@b.test");
    wait_until(&queue, "an empty queue", <[_]>::is_empty).await;
    let stats = queue.stats();
    assert_eq!((stats.pending, stats.sent), (0, 2));
    assert!(stats.failed_attempts >= 2, "{stats:?}");

    queue.stop();
    tokio::time::timeout(WAIT, worker).await.unwrap().unwrap();
}

#[tokio::test]
async fn queued_mail_survives_a_restart_and_is_sent_when_the_server_appears() {
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    let port = free_port();
    let configs = Arc::new(Configs::default());
    configs.set("a.test", plain(port, "vm@a.test"));

    // Before the "crash": queued, one or more attempts fail (nobody listens).
    let id = {
        let (store, queue) = open(&store_dir, &configs).await;
        let worker = queue.start();
        let id = queue
            .enqueue(mail("a.test", "alice@example.com", "survivor"))
            .await
            .unwrap();
        wait_until(&queue, "a failed attempt", |p| {
            p.len() == 1 && p[0].attempts >= 1
        })
        .await;
        queue.stop();
        tokio::time::timeout(WAIT, worker).await.unwrap().unwrap();
        drop(queue);
        drop(store); // the last reference: the database is closed here
        id
    };

    // After the restart: the mail, its attempt count and error are back.
    let (store, queue) = open(&store_dir, &configs).await;
    let pending = queue.pending().await;
    assert_eq!(pending.len(), 1, "{pending:#?}");
    assert_eq!(pending[0].id, id);
    assert_eq!(pending[0].subject, "survivor");
    assert!(pending[0].attempts >= 1, "{pending:#?}");
    assert!(pending[0].last_error.is_some(), "{pending:#?}");

    let server = Server::start(port, &tmp.path().join("maildir"), ServerTls::None);
    let worker = queue.start();
    let mails = server.wait_for_mails(1).await;
    assert_eq!(
        split(&mails[0].replace("\r\n", "\n")).0["subject"],
        "survivor"
    );
    wait_until(&queue, "an empty queue", <[_]>::is_empty).await;
    assert!(
        store
            .doc_list(plugboard_mail::QUEUE_KIND)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(queue.stats().sent, 1);
    queue.stop();
    tokio::time::timeout(WAIT, worker).await.unwrap().unwrap();
    assert_eq!(server.mails().len(), 1);
}

#[tokio::test]
async fn failed_attempts_are_retried_and_each_mail_is_delivered_once() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let configs = Arc::new(Configs::default());
    configs.set("a.test", plain(port, "vm@a.test"));
    let (_store, queue) = open(&tmp.path().join("store"), &configs).await;
    let worker = queue.start();
    for i in 0..3 {
        queue
            .enqueue(mail("a.test", "alice@example.com", &format!("mail {i}")))
            .await
            .unwrap();
    }
    wait_until(&queue, "two failed attempts each", |p| {
        p.len() == 3 && p.iter().all(|e| e.attempts >= 2)
    })
    .await;
    assert_eq!(queue.stats().sent, 0);

    let server = Server::start(port, &tmp.path().join("maildir"), ServerTls::None);
    server.wait_for_mails(3).await;
    wait_until(&queue, "an empty queue", <[_]>::is_empty).await;
    // Several retry intervals later: still exactly one copy of each.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let mut subjects: Vec<String> = server
        .mails()
        .iter()
        .map(|m| split(&m.replace("\r\n", "\n")).0["subject"].clone())
        .collect();
    subjects.sort();
    assert_eq!(subjects, ["mail 0", "mail 1", "mail 2"]);
    let stats = queue.stats();
    assert_eq!(stats.sent, 3);
    assert!(stats.failed_attempts >= 6, "{stats:?}");
    queue.stop();
    tokio::time::timeout(WAIT, worker).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_permanent_rejection_is_retried_at_the_capped_interval_with_the_reply() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    // SIZE limit of 100 bytes: every real message is refused with 552.
    let server = Server::start_with(
        port,
        &tmp.path().join("maildir"),
        ServerTls::None,
        &["-s", "100"],
    );
    let configs = Arc::new(Configs::default());
    configs.set("a.test", plain(port, "vm@a.test"));
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&tmp.path().join("store")).unwrap());
    let opts = QueueOptions {
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(30),
        ..QueueOptions::default()
    };
    let queue = MailQueue::open(store, configs, opts).await.unwrap();
    let worker = queue.start();
    queue
        .enqueue(mail("a.test", "alice@example.com", "too big"))
        .await
        .unwrap();
    wait_until(&queue, "a rejection", |p| {
        p.len() == 1 && p[0].attempts == 1
    })
    .await;
    let entry = &queue.pending().await[0];
    let err = entry.last_error.as_deref().unwrap();
    assert!(err.contains("552"), "the server's reply is kept: {err}");
    // Not the 100 ms of a first transient failure: the 30 s cap.
    let wait = entry.next_attempt_unix_ms - entry.enqueued_unix_ms;
    assert!(wait >= 25_000, "next attempt in {wait} ms");
    assert_eq!(queue.stats().failed_attempts, 1);
    assert!(server.mails().is_empty());
    queue.stop();
    tokio::time::timeout(WAIT, worker).await.unwrap().unwrap();
}

/// A private CA and a server certificate for 127.0.0.1 signed by it (openssl CLI).
fn make_ca_and_server_cert(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=plugboard test CA",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    ]
    .concat());
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

#[tokio::test]
async fn starttls_and_implicit_tls_with_a_private_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_ca_and_server_cert(tmp.path());
    let starttls_port = free_port();
    let smtps_port = free_port();
    let starttls = Server::start(
        starttls_port,
        &tmp.path().join("starttls"),
        ServerTls::Starttls(&cert, &key),
    );
    let smtps = Server::start(
        smtps_port,
        &tmp.path().join("smtps"),
        ServerTls::Smtps(&cert, &key),
    );

    let tls = |port, security, ca_file: Option<&Path>| SmtpConfig {
        port: Some(port),
        security,
        ca_file: ca_file.map(Path::to_path_buf),
        ..plain(port, "vm@a.test")
    };
    let configs = Arc::new(Configs::default());
    configs.set(
        "starttls.test",
        tls(starttls_port, Security::Starttls, Some(&ca)),
    );
    configs.set("smtps.test", tls(smtps_port, Security::Tls, Some(&ca)));
    // Same server, but the private CA is not trusted: must fail, never fall back to plain text.
    configs.set(
        "untrusted.test",
        tls(starttls_port, Security::Starttls, None),
    );
    for t in ["starttls.test", "smtps.test", "untrusted.test"] {
        configs.smtp(t).unwrap().check().unwrap();
    }

    let (_store, queue) = open(&tmp.path().join("store"), &configs).await;
    let worker = queue.start();
    for t in ["starttls.test", "smtps.test", "untrusted.test"] {
        queue
            .enqueue(mail(t, "alice@example.com", t))
            .await
            .unwrap();
    }
    let got = starttls.wait_for_mails(1).await;
    assert_eq!(
        split(&got[0].replace("\r\n", "\n")).0["subject"],
        "starttls.test"
    );
    let got = smtps.wait_for_mails(1).await;
    assert_eq!(
        split(&got[0].replace("\r\n", "\n")).0["subject"],
        "smtps.test"
    );

    wait_until(&queue, "the untrusted one to fail", |p| {
        p.len() == 1 && p[0].tenant == "untrusted.test" && p[0].attempts >= 1
    })
    .await;
    let err = queue.pending().await[0].last_error.clone().unwrap();
    assert!(err.contains("invalid peer certificate"), "{err}");
    assert!(!err.contains("Connection error: Connection error"), "{err}");
    assert_eq!(starttls.mails().len(), 1);
    queue.stop();
    tokio::time::timeout(WAIT, worker).await.unwrap().unwrap();
}
