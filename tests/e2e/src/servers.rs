//! Real servers and media for the voicemail end-to-end tests (the recipes of
//! ADR 0012, as in `host/mail/tests/aiosmtpd.rs` and
//! `host/directory/tests/slapd.rs`), each a child process killed on drop:
//!
//! - [`Smtp`]: Debian's `python3-aiosmtpd` writing every mail into a Maildir,
//!   read back as [`ReceivedMail`] by a small MIME reader (multipart, base64,
//!   quoted-printable, RFC 2047 subjects).
//! - [`Ldap`]: a throwaway OpenLDAP `slapd` serving an LDIF from a temp folder.
//! - [`wav_info`] / [`assert_wav`]: a strict RIFF WAV check (a torn file fails).
//! - [`RtpScript`]: an RTP capture (pcap) for SIPp's `play_pcap_audio`: a
//!   timeline of "speech" (a PCMA tone) and RFC 4733 keys, so one SIPp
//!   scenario can drive any voicemail dialogue (`-key audio FILE`).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's Python (with `python3-aiosmtpd`), not a pyenv shim.
const PYTHON: &str = "/usr/bin/python3";

/// A loopback TCP port nobody listens on right now (for a server started later).
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free TCP port")
        .port()
}

/// Waits until `port` accepts connections, or panics with `what` (the child
/// exiting first is reported with `log`).
fn wait_listening(child: &mut Child, port: u16, what: &str, log: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited at start ({status}): {}", log());
        }
        assert!(
            Instant::now() < deadline,
            "{what} does not listen on port {port} after 20 s: {}",
            log()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn run_checked(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

// ------------------------------------------------------------------ SMTP

/// aiosmtpd on a loopback port, storing every mail in a Maildir; killed on drop.
pub struct Smtp {
    child: Option<Child>,
    port: u16,
    maildir: PathBuf,
    dir: tempfile::TempDir,
}

impl Smtp {
    /// Starts on a free port and waits until it listens.
    pub fn start() -> Smtp {
        Smtp::start_on(free_tcp_port())
    }

    /// Starts on `port` (e.g. one configured before, see [`free_tcp_port`],
    /// while the server was "down") and waits until it listens (at most 20 s).
    pub fn start_on(port: u16) -> Smtp {
        assert!(
            Path::new(PYTHON).exists(),
            "{PYTHON} is missing: run scripts/install-deps.sh --test (python3-aiosmtpd)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        // aiosmtpd's Mailbox creates new/, cur/ and tmp/ only with the folder itself.
        let maildir = dir.path().join("maildir");
        let log = std::fs::File::create(dir.path().join("aiosmtpd.log")).expect("log file");
        let child = Command::new(PYTHON)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start aiosmtpd (python3-aiosmtpd)");
        let mut smtp = Smtp {
            child: Some(child),
            port,
            maildir,
            dir,
        };
        let log_path = smtp.dir.path().join("aiosmtpd.log");
        let log = move || std::fs::read_to_string(&log_path).unwrap_or_default();
        wait_listening(smtp.child.as_mut().expect("child"), port, "aiosmtpd", log);
        smtp
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The received mails (Maildir `new/`), oldest first.
    pub fn mails(&self) -> Vec<ReceivedMail> {
        let Ok(dir) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = dir
            .filter_map(Result::ok)
            .map(|e| e.path())
            .map(|p| {
                let t = std::fs::metadata(&p)
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                (t, p)
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, p)| {
                let raw = std::fs::read(&p).ok()?;
                let mut m = ReceivedMail::parse(&raw);
                m.path = p;
                Some(m)
            })
            .collect()
    }

    /// Waits (at most `timeout`) until at least `n` mails arrived; returns
    /// the mails there are then, fewer on timeout (the caller asserts).
    pub fn wait_mails(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let mails = self.mails();
            if mails.len() >= n || Instant::now() >= deadline {
                return mails;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server (SIGKILL); the mails stay readable.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One attachment of a [`ReceivedMail`], decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailAttachment {
    pub filename: String,
    /// The MIME type, lower-cased, without parameters (`audio/wav`).
    pub content_type: String,
    pub data: Vec<u8>,
}

/// A mail as the SMTP server stored it.
#[derive(Debug, Clone, Default)]
pub struct ReceivedMail {
    /// The Maildir file (empty when parsed from bytes).
    pub path: PathBuf,
    /// Every top-level header (name as written, value unfolded), in order.
    pub headers: Vec<(String, String)>,
    /// `Subject`, RFC 2047 encoded words decoded.
    pub subject: String,
    /// `From` and `To` as written (encoded words decoded).
    pub from: String,
    pub to: String,
    /// Envelope recipients (aiosmtpd's `X-RcptTo`).
    pub rcpt_to: Vec<String>,
    /// The first `text/plain` part that is not an attachment, decoded.
    pub text: String,
    pub attachments: Vec<MailAttachment>,
}

impl ReceivedMail {
    /// Parses a message (RFC 5322 + MIME).
    pub fn parse(raw: &[u8]) -> ReceivedMail {
        let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
        let part = Part::parse(&text);
        let mut mail = ReceivedMail {
            subject: decode_words(part.header("subject").unwrap_or_default()),
            from: decode_words(part.header("from").unwrap_or_default()),
            to: decode_words(part.header("to").unwrap_or_default()),
            rcpt_to: part
                .header("x-rcptto")
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            headers: part.headers.clone(),
            ..ReceivedMail::default()
        };
        part.collect(&mut mail);
        mail
    }

    /// The first value of header `name` (case-insensitive), undecoded.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One MIME entity: headers and raw body (LF line ends).
struct Part<'a> {
    headers: Vec<(String, String)>,
    body: &'a str,
}

impl<'a> Part<'a> {
    fn parse(text: &'a str) -> Part<'a> {
        let (head, body) = match text.find("\n\n") {
            Some(i) => (&text[..i], &text[i + 2..]),
            None if text.starts_with('\n') => ("", &text[1..]),
            None => (text, ""),
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some((_, v)) = headers.last_mut() {
                    // Unfolding: the line break goes, the whitespace stays.
                    v.push_str(line);
                }
            } else if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
        for (_, v) in &mut headers {
            *v = v.trim().to_string();
        }
        Part { headers, body }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// (type lower-cased, parameters with lower-cased names).
    fn content_type(&self) -> (String, Vec<(String, String)>) {
        match self.header("content-type") {
            Some(v) => {
                let (t, params) = header_params(v);
                (t.to_ascii_lowercase(), params)
            }
            None => ("text/plain".into(), Vec::new()),
        }
    }

    fn decoded_body(&self) -> Vec<u8> {
        let cte = self
            .header("content-transfer-encoding")
            .unwrap_or("7bit")
            .trim()
            .to_ascii_lowercase();
        match cte.as_str() {
            "base64" => base64_decode(self.body),
            "quoted-printable" => qp_decode(self.body),
            _ => self.body.as_bytes().to_vec(),
        }
    }

    fn filename(&self) -> Option<String> {
        let from_disposition = self
            .header("content-disposition")
            .map(header_params)
            .and_then(|(_, p)| param(&p, "filename"));
        let from_type = || param(&self.content_type().1, "name");
        from_disposition
            .or_else(from_type)
            .map(|f| decode_words(&f))
    }

    fn is_attachment(&self) -> bool {
        let disposition = self
            .header("content-disposition")
            .map(|d| header_params(d).0.to_ascii_lowercase());
        disposition.as_deref() == Some("attachment") || self.filename().is_some()
    }

    /// Walks the tree: the first plain-text part becomes the text, parts
    /// with a file name or `attachment` disposition the attachments.
    fn collect(&self, mail: &mut ReceivedMail) {
        let (ctype, params) = self.content_type();
        if ctype.starts_with("multipart/") {
            let Some(boundary) = param(&params, "boundary") else {
                return;
            };
            for child in multipart_bodies(self.body, &boundary) {
                Part::parse(child).collect(mail);
            }
            return;
        }
        if self.is_attachment() {
            mail.attachments.push(MailAttachment {
                filename: self.filename().unwrap_or_default(),
                content_type: ctype,
                data: self.decoded_body(),
            });
        } else if ctype == "text/plain" && mail.text.is_empty() {
            mail.text = String::from_utf8_lossy(&self.decoded_body()).into_owned();
        }
    }
}

/// The bodies between the delimiter lines of a multipart body.
fn multipart_bodies<'a>(body: &'a str, boundary: &str) -> Vec<&'a str> {
    let delimiter = format!("--{boundary}");
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut pos = 0;
    for line in body.split_inclusive('\n') {
        let bare = line.trim_end();
        if bare == delimiter || bare == format!("{delimiter}--") {
            if let Some(s) = start {
                // The line break before a delimiter belongs to the delimiter.
                let end = if pos > s && body.as_bytes()[pos - 1] == b'\n' {
                    pos - 1
                } else {
                    pos
                };
                out.push(&body[s..end.max(s)]);
            }
            if bare.ends_with("--") && bare != delimiter {
                return out;
            }
            start = Some(pos + line.len());
        }
        pos += line.len();
    }
    out
}

/// `value; a=b; c="d e"` → (`value`, [(a, b), (c, d e)]); names lower-cased.
fn header_params(v: &str) -> (String, Vec<(String, String)>) {
    let mut pieces = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in v.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ';' if !quoted => pieces.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    pieces.push(cur);
    let value = pieces.remove(0).trim().to_string();
    let params = pieces
        .iter()
        .filter_map(|p| {
            let (n, v) = p.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            Some((n.trim().to_ascii_lowercase(), v.to_string()))
        })
        .collect();
    (value, params)
}

fn param(params: &[(String, String)], name: &str) -> Option<String> {
    if let Some((_, v)) = params.iter().find(|(n, _)| n == name) {
        return Some(v.clone());
    }
    // RFC 2231 `name*=charset''percent-encoded`.
    let star = format!("{name}*");
    let (_, v) = params.iter().find(|(n, _)| *n == star)?;
    let encoded = v.splitn(3, '\'').nth(2).unwrap_or(v);
    Some(String::from_utf8_lossy(&percent_decode(encoded)).into_owned())
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = hex_byte(&b[i + 1..i + 3])
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn hex_byte(two: &[u8]) -> Option<u8> {
    let s = std::str::from_utf8(two).ok()?;
    u8::from_str_radix(s, 16).ok()
}

/// Standard base64, whitespace ignored, stops at padding.
pub fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Quoted-printable (RFC 2045): `=XX` bytes and `=` soft line breaks.
fn qp_decode(text: &str) -> Vec<u8> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            if b.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            if i + 2 < b.len()
                && let Some(v) = hex_byte(&b[i + 1..i + 3])
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Decodes RFC 2047 encoded words (`=?utf-8?B?...?=`, `=?utf-8?Q?...?=`;
/// UTF-8, US-ASCII and ISO-8859-1); whitespace between two encoded words
/// is dropped, everything else is kept as written.
pub fn decode_words(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    let mut pending_space = String::new();
    let mut last_was_word = false;
    while !rest.is_empty() {
        if let Some((decoded, used)) = encoded_word(rest) {
            if !last_was_word {
                out.push_str(&pending_space);
            }
            pending_space.clear();
            out.push_str(&decoded);
            rest = &rest[used..];
            last_was_word = true;
            continue;
        }
        let c = rest.chars().next().expect("not empty");
        rest = &rest[c.len_utf8()..];
        if c.is_whitespace() {
            pending_space.push(c);
            continue;
        }
        out.push_str(&pending_space);
        pending_space.clear();
        out.push(c);
        last_was_word = false;
    }
    out.push_str(&pending_space);
    out
}

/// One encoded word at the start of `s`: (text, bytes used).
fn encoded_word(s: &str) -> Option<(String, usize)> {
    let inner = s.strip_prefix("=?")?;
    let (charset, rest) = inner.split_once('?')?;
    let (enc, rest) = rest.split_once('?')?;
    let end = rest.find("?=")?;
    let payload = &rest[..end];
    if charset.contains(char::is_whitespace) || payload.contains(char::is_whitespace) {
        return None;
    }
    let bytes = match enc {
        "B" | "b" => base64_decode(payload),
        "Q" | "q" => qp_decode(&payload.replace('_', " ")),
        _ => return None,
    };
    let charset = charset
        .split('*')
        .next()
        .unwrap_or(charset)
        .to_ascii_lowercase();
    let text = if charset == "iso-8859-1" || charset == "latin1" {
        bytes.iter().map(|&b| char::from(b)).collect()
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let used = 2 + charset.len() + 1 + enc.len() + 1 + end + 2;
    Some((text, used))
}

// ------------------------------------------------------------------ LDAP

/// The directory tree's suffix.
pub const LDAP_SUFFIX: &str = "dc=example,dc=com";
/// The rootdn and its password.
pub const LDAP_ROOT_DN: &str = "cn=admin,dc=example,dc=com";
pub const LDAP_ROOT_PW: &str = "secret";
/// The two organisational units every [`Ldap`] has: searched and not searched.
pub const LDAP_PEOPLE: &str = "ou=people,dc=example,dc=com";
pub const LDAP_OTHER: &str = "ou=other,dc=example,dc=com";

const LDAP_BASE: &str = "\
dn: dc=example,dc=com
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=other,dc=example,dc=com
objectClass: organizationalUnit
ou: other
";

/// An `inetOrgPerson` entry for [`Ldap::start`]: `uid=UID,OU` with the
/// phone number and, if any, the mail address.
pub fn ldap_person(ou: &str, uid: &str, name: &str, phone: &str, mail: Option<&str>) -> String {
    let (given, sn) = name.split_once(' ').unwrap_or(("", name));
    let mut e = format!(
        "dn: uid={uid},{ou}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {name}\nsn: {sn}\n\
         displayName: {name}\ntelephoneNumber: {phone}\n"
    );
    if !given.is_empty() {
        e.push_str(&format!("givenName: {given}\n"));
    }
    if let Some(m) = mail {
        e.push_str(&format!("mail: {m}\n"));
    }
    e
}

/// A throwaway slapd (mdb backend) on a free loopback port; killed on drop.
pub struct Ldap {
    child: Option<Child>,
    url: String,
    dir: tempfile::TempDir,
}

impl Ldap {
    /// Loads the base tree (`dc=example,dc=com` with `ou=people` and
    /// `ou=other`) plus `ldif` (entries separated by blank lines, e.g. from
    /// [`ldap_person`]) with `slapadd`, starts slapd and waits until it
    /// listens (at most 20 s). Needs Debian's `slapd`.
    pub fn start(ldif: &str) -> Ldap {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("db");
        std::fs::create_dir(&db).expect("db folder");
        let conf = dir.path().join("slapd.conf");
        std::fs::write(
            &conf,
            format!(
                "include /etc/ldap/schema/core.schema\n\
                 include /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\n\
                 pidfile {dir}/slapd.pid\n\
                 modulepath /usr/lib/ldap\n\
                 moduleload back_mdb\n\
                 database mdb\n\
                 maxsize 10485760\n\
                 suffix \"{LDAP_SUFFIX}\"\n\
                 rootdn \"{LDAP_ROOT_DN}\"\n\
                 rootpw {LDAP_ROOT_PW}\n\
                 directory {db}\n",
                dir = dir.path().display(),
                db = db.display(),
            ),
        )
        .expect("slapd.conf");
        let data = dir.path().join("data.ldif");
        let entries: Vec<String> = ldif
            .split("\n\n")
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| format!("{e}\n"))
            .collect();
        std::fs::write(&data, format!("{LDAP_BASE}\n{}", entries.join("\n"))).expect("ldif");
        run_checked(Command::new("slaptest").arg("-f").arg(&conf).arg("-u"));
        run_checked(
            Command::new("slapadd")
                .arg("-f")
                .arg(&conf)
                .arg("-l")
                .arg(&data)
                .arg("-q"),
        );
        let port = free_tcp_port();
        let url = format!("ldap://127.0.0.1:{port}");
        let log_path = dir.path().join("slapd.log");
        let log = std::fs::File::create(&log_path).expect("slapd log");
        let child = Command::new("slapd")
            .args(["-d", "0", "-f"])
            .arg(&conf)
            .arg("-h")
            .arg(format!("{url}/"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start slapd (Debian package slapd)");
        let mut ldap = Ldap {
            child: Some(child),
            url,
            dir,
        };
        let read_log = move || std::fs::read_to_string(&log_path).unwrap_or_default();
        wait_listening(ldap.child.as_mut().expect("child"), port, "slapd", read_log);
        ldap
    }

    /// `ldap://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// slapd's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// Stops at once (SIGKILL: the data is throwaway; SIGTERM takes ~2 s).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Ldap {
    fn drop(&mut self) {
        self.stop();
    }
}

// ------------------------------------------------------------------ WAV

/// What a valid WAV file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavInfo {
    pub sample_rate: u32,
    pub channels: u16,
    pub bits: u16,
    /// Length of the audio, from the data chunk.
    pub duration_ms: u64,
    /// Bytes in the data chunk.
    pub data_bytes: usize,
}

/// Reads a RIFF WAV file strictly: the RIFF size must match the file (a
/// torn or truncated file fails), every chunk must fit, `fmt ` must be PCM
/// (or WAVE_FORMAT_EXTENSIBLE) with consistent block align and byte rate,
/// and the `data` chunk must hold whole frames.
pub fn wav_info(b: &[u8]) -> Result<WavInfo, String> {
    let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err(format!("not a RIFF/WAVE file ({} bytes)", b.len()));
    }
    let riff = u32_at(4) as usize;
    if riff + 8 != b.len() && riff + 9 != b.len() {
        return Err(format!(
            "RIFF size {} does not match the file size {} (torn or truncated)",
            riff + 8,
            b.len()
        ));
    }
    let mut fmt: Option<(u16, u16, u32, u32, u16, u16)> = None;
    let mut data: Option<usize> = None;
    let mut i = 12;
    while i + 8 <= b.len() {
        let id = &b[i..i + 4];
        let len = u32_at(i + 4) as usize;
        let body = i + 8;
        if body + len > b.len() {
            return Err(format!(
                "chunk {:?} at {i} claims {len} bytes, only {} left",
                String::from_utf8_lossy(id),
                b.len() - body
            ));
        }
        match id {
            b"fmt " => {
                if len < 16 {
                    return Err(format!("fmt chunk of {len} bytes"));
                }
                fmt = Some((
                    u16_at(body),
                    u16_at(body + 2),
                    u32_at(body + 4),
                    u32_at(body + 8),
                    u16_at(body + 12),
                    u16_at(body + 14),
                ));
            }
            b"data" => data = Some(len),
            _ => {}
        }
        i = body + len + (len & 1);
    }
    if i < b.len() && b.len() - i > 1 {
        return Err(format!("{} stray bytes after the last chunk", b.len() - i));
    }
    let (format, channels, rate, byte_rate, align, bits) = fmt.ok_or("no fmt chunk")?;
    if format != 1 && format != 0xFFFE {
        return Err(format!("format {format} is not PCM"));
    }
    if channels == 0 || rate == 0 || !matches!(bits, 8 | 16 | 24 | 32) {
        return Err(format!("{channels} channels, {rate} Hz, {bits} bits"));
    }
    if align != channels * bits / 8 || byte_rate != rate * u32::from(align) {
        return Err(format!(
            "block align {align} / byte rate {byte_rate} do not fit {channels} x {bits} bits at {rate} Hz"
        ));
    }
    let data = data.ok_or("no data chunk")?;
    if data % usize::from(align) != 0 {
        return Err(format!(
            "data chunk of {data} bytes is not whole frames of {align}"
        ));
    }
    let frames = (data / usize::from(align)) as u64;
    Ok(WavInfo {
        sample_rate: rate,
        channels,
        bits,
        duration_ms: frames * 1000 / u64::from(rate),
        data_bytes: data,
    })
}

/// [`wav_info`], panicking with `what` when the file is not a valid WAV.
pub fn assert_wav(bytes: &[u8], what: &str) -> WavInfo {
    wav_info(bytes).unwrap_or_else(|e| panic!("{what} is not a valid WAV file: {e}"))
}

/// A valid 16-bit PCM WAV of `samples` at `rate` Hz, mono.
pub fn wav_pcm16(samples: &[i16], rate: u32) -> Vec<u8> {
    let data = samples.len() * 2;
    let mut w = Vec::with_capacity(44 + data);
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data as u32).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&rate.to_le_bytes());
    w.extend_from_slice(&(rate * 2).to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&(data as u32).to_le_bytes());
    for s in samples {
        w.extend_from_slice(&s.to_le_bytes());
    }
    w
}

// ------------------------------------------------------------------ RTP

/// RTP payload type of the telephone events in the test scenarios' SDP.
pub const TELEPHONE_EVENT_PT: u8 = 101;
/// PCMA.
const PCMA_PT: u8 = 8;

/// A caller's side of a dialogue as an RTP capture for SIPp's
/// `<exec play_pcap_audio="[audio]"/>` (`-key audio FILE`): "speech" (a
/// 440 Hz PCMA tone, well above the host's silence level) and RFC 4733
/// keys at given times from the start of the playback. One SSRC and one
/// timeline (RTP timestamp = 8 × ms), like a phone; every key is its own
/// event (distinct timestamp), so repeated digits count. The capture starts
/// with one silent packet at 0 ms: SIPp sends the first packet at once and
/// the rest by the capture's time stamps.
#[derive(Debug, Clone)]
pub struct RtpScript {
    ssrc: u32,
    /// (time in µs, payload type, marker, RTP timestamp, payload).
    packets: Vec<(u64, u8, bool, u32, Vec<u8>)>,
}

impl Default for RtpScript {
    fn default() -> Self {
        RtpScript::new()
    }
}

/// Length of one key press and the pause after it.
const KEY_MS: u64 = 100;
const KEY_GAP_MS: u64 = 250;

impl RtpScript {
    /// An empty script (one silent packet at 0 ms) with a fresh SSRC.
    pub fn new() -> RtpScript {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ssrc = (std::process::id() << 12) ^ n.wrapping_mul(0x9E37_79B9);
        RtpScript {
            ssrc,
            packets: vec![(0, PCMA_PT, true, 0, vec![0xD5; 160])],
        }
    }

    /// Keys (`0-9`, `*`, `#`, `A-D`) pressed one after the other from
    /// `at_ms`: each 100 ms long, 250 ms apart.
    pub fn keys(mut self, at_ms: u64, keys: &str) -> RtpScript {
        let mut t = at_ms;
        for k in keys.chars() {
            let event = match k {
                '0'..='9' => k as u8 - b'0',
                '*' => 10,
                '#' => 11,
                'A'..='D' => k as u8 - b'A' + 12,
                _ => panic!("not a key: {k:?}"),
            };
            let ts = (t * 8) as u32;
            let steps = KEY_MS / 20;
            for i in 0..steps {
                let duration = ((i + 1) * 160) as u16;
                self.packets.push((
                    (t + i * 20) * 1000,
                    TELEPHONE_EVENT_PT,
                    i == 0,
                    ts,
                    telephone_event(event, false, duration),
                ));
            }
            // The end packet, sent three times (RFC 4733 section 2.5.1.4).
            for r in 0..3 {
                self.packets.push((
                    (t + KEY_MS) * 1000 + r,
                    TELEPHONE_EVENT_PT,
                    false,
                    ts,
                    telephone_event(event, true, (KEY_MS * 8) as u16),
                ));
            }
            t += KEY_MS + KEY_GAP_MS;
        }
        self
    }

    /// When keys started at `at_ms` end (for placing what follows).
    pub fn keys_end(at_ms: u64, keys: &str) -> u64 {
        at_ms + keys.chars().count() as u64 * (KEY_MS + KEY_GAP_MS)
    }

    /// `ms` of "speech" from `at_ms`: a 440 Hz tone in 20 ms PCMA packets.
    pub fn speech(mut self, at_ms: u64, ms: u64) -> RtpScript {
        let frames = ms / 20;
        for f in 0..frames {
            let t = at_ms + f * 20;
            let payload = (0..160u64)
                .map(|i| {
                    let n = (t * 8 + i) as f64;
                    let s = (n / 8000.0 * 440.0 * std::f64::consts::TAU).sin() * 10_000.0;
                    alaw_encode(s as i16)
                })
                .collect();
            self.packets
                .push((t * 1000, PCMA_PT, f == 0, (t * 8) as u32, payload));
        }
        self
    }

    /// The time of the last packet, in ms.
    pub fn end_ms(&self) -> u64 {
        self.packets.iter().map(|p| p.0).max().unwrap_or(0) / 1000
    }

    /// Writes the capture (Ethernet/IPv4/UDP, 127.0.0.1:6002 → :6000; SIPp
    /// rewrites addresses and ports) and returns its path.
    pub fn write(&self, path: &Path) -> PathBuf {
        let mut packets = self.packets.clone();
        packets.sort_by_key(|p| p.0);
        let mut out = Vec::new();
        // pcap global header: microsecond time stamps, Ethernet.
        out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&0i32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&65535u32.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        let base_s: u64 = 1_700_000_000;
        for (seq, (us, pt, marker, ts, payload)) in packets.iter().enumerate() {
            let mut rtp = Vec::with_capacity(12 + payload.len());
            rtp.push(0x80);
            rtp.push(if *marker { 0x80 } else { 0 } | pt);
            rtp.extend_from_slice(&(1000u16.wrapping_add(seq as u16)).to_be_bytes());
            rtp.extend_from_slice(&ts.to_be_bytes());
            rtp.extend_from_slice(&self.ssrc.to_be_bytes());
            rtp.extend_from_slice(payload);
            let frame = udp_frame(6002, 6000, &rtp);
            let at = base_s * 1_000_000 + us;
            out.extend_from_slice(&((at / 1_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&((at % 1_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            out.extend_from_slice(&frame);
        }
        std::fs::write(path, out).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path.to_path_buf()
    }
}

fn telephone_event(event: u8, end: bool, duration: u16) -> Vec<u8> {
    let d = duration.to_be_bytes();
    vec![event, if end { 0x80 } else { 0 } | 10, d[0], d[1]]
}

/// Ethernet + IPv4 + UDP around `payload`, loopback addresses.
fn udp_frame(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(42 + payload.len());
    f.extend_from_slice(&[0; 12]);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = vec![
        0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
    ];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    let sum = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum::<u32>();
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = !((sum & 0xffff) + (sum >> 16)) as u16;
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&0u16.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// G.711 A-law encoding of one sample.
pub fn alaw_encode(sample: i16) -> u8 {
    let mut pcm = i32::from(sample) >> 3; // 13-bit magnitude
    let sign = if pcm >= 0 {
        0xD5u8
    } else {
        pcm = -pcm - 1;
        0x55u8
    };
    let pcm = pcm.min(0xFFF);
    let seg = match pcm {
        0..=0x1F => 0,
        0x20..=0x3F => 1,
        0x40..=0x7F => 2,
        0x80..=0xFF => 3,
        0x100..=0x1FF => 4,
        0x200..=0x3FF => 5,
        0x400..=0x7FF => 6,
        _ => 7,
    };
    let mantissa = if seg < 2 {
        (pcm >> 1) & 0x0F
    } else {
        (pcm >> seg) & 0x0F
    };
    ((seg << 4) as u8 | mantissa as u8) ^ sign
}

/// G.711 A-law decoding of one byte.
pub fn alaw_decode(a: u8) -> i16 {
    let a = a ^ 0x55;
    let seg = (a & 0x70) >> 4;
    let mut t = i32::from(a & 0x0F) << 4;
    t = match seg {
        0 => t + 8,
        1 => t + 0x108,
        s => (t + 0x108) << (s - 1),
    };
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for c in bytes.chunks(3) {
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for i in 0..4 {
                if i <= c.len() {
                    out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    fn tone(ms: u32) -> Vec<u8> {
        let samples: Vec<i16> = (0..ms * 8).map(|i| ((i * 331) % 65536) as i16).collect();
        wav_pcm16(&samples, 8000)
    }

    /// As lettre writes it (CRLF, folded base64 at 76 columns, a quoted
    /// boundary, an encoded subject split over two words and a folded line).
    fn lettre_like(wav: &[u8]) -> Vec<u8> {
        let body = b64(wav);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "X-Peer: ('127.0.0.1', 40000)\r\nX-MailFrom: vm@vm.test\r\nX-RcptTo: alice@example.com, bob@example.com\r\n\
             From: \"Voicemail\" <vm@vm.test>\r\nTo: Alice <alice@example.com>\r\n\
             Subject: =?utf-8?b?Vm9pY2VtYWlsIGbDvHIgSsO2cmc=?=\r\n =?utf-8?q?_=E2=80=93_0=3A04?=\r\n\
             MIME-Version: 1.0\r\nDate: Tue, 2 Mar 2027 10:00:00 +0000\r\n\
             Content-Type: multipart/mixed;\r\n boundary=\"Bq9-xy_z\"\r\n\r\n\
             --Bq9-xy_z\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
             New voicemail for J=C3=B6rg (102)\r\nLength: 0:04 and a very long line that is soft=\r\n broken\r\n\
             --Bq9-xy_z\r\nContent-Type: audio/wav\r\nContent-Disposition: attachment; filename=\"message.wav\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--Bq9-xy_z--\r\n",
            lines.join("\r\n")
        )
        .into_bytes()
    }

    /// Sends `message` with a minimal SMTP dialogue.
    fn smtp_send(port: u16, from: &str, to: &[&str], message: &[u8]) {
        use std::io::{BufRead, BufReader, Write};
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        let mut expect = |code: &str| loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            assert!(line.starts_with(code), "expected {code}: {line}");
            if line.as_bytes().get(3) == Some(&b' ') {
                break;
            }
        };
        expect("220");
        w.write_all(b"EHLO test\r\n").unwrap();
        expect("250");
        w.write_all(format!("MAIL FROM:<{from}>\r\n").as_bytes())
            .unwrap();
        expect("250");
        for t in to {
            w.write_all(format!("RCPT TO:<{t}>\r\n").as_bytes())
                .unwrap();
            expect("250");
        }
        w.write_all(b"DATA\r\n").unwrap();
        expect("354");
        w.write_all(message).unwrap();
        w.write_all(b".\r\n").unwrap();
        expect("250");
        w.write_all(b"QUIT\r\n").unwrap();
    }

    #[test]
    fn aiosmtpd_stores_mails_that_read_back_byte_exact() {
        let port = free_tcp_port();
        // "Down" first: nothing listens on the reserved port.
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
        let smtp = Smtp::start_on(port);
        assert_eq!(smtp.port(), port);
        assert!(smtp.mails().is_empty());
        let wav = tone(700);
        // aiosmtpd adds X-Peer, X-MailFrom and X-RcptTo itself.
        let raw = String::from_utf8(lettre_like(&wav)).unwrap();
        let raw = &raw[raw.find("\r\nFrom: ").unwrap() + 2..];
        smtp_send(port, "vm@vm.test", &["alice@example.com"], raw.as_bytes());
        let mails = smtp.wait_mails(1, Duration::from_secs(10));
        assert_eq!(mails.len(), 1);
        let m = &mails[0];
        assert_eq!(m.rcpt_to, ["alice@example.com"]);
        assert_eq!(m.header("X-MailFrom"), Some("vm@vm.test"));
        assert_eq!(m.subject, "Voicemail für Jörg – 0:04");
        assert_eq!(m.attachments[0].data, wav);
        assert_eq!(
            assert_wav(&m.attachments[0].data, "attachment").duration_ms,
            700
        );
        assert!(m.path.exists());
        // Waiting for more than arrived returns what there is.
        let t = Instant::now();
        assert_eq!(smtp.wait_mails(2, Duration::from_millis(300)).len(), 1);
        assert!(t.elapsed() >= Duration::from_millis(300));
    }

    #[test]
    fn slapd_serves_people_and_other() {
        let ldif = [
            ldap_person(
                LDAP_PEOPLE,
                "alice",
                "Alice Liddell",
                "+49 8142 4799-123",
                Some("alice@example.com"),
            ),
            ldap_person(
                LDAP_OTHER,
                "mallory",
                "Mallory Hidden",
                "+49 8142 4799-199",
                Some("mallory@example.com"),
            ),
        ]
        .join("\n");
        let ldap = Ldap::start(&ldif);
        assert!(ldap.url().starts_with("ldap://127.0.0.1:"));
        let search = |base: &str, filter: &str| {
            let out = Command::new("ldapsearch")
                .args(["-x", "-LLL", "-H", ldap.url(), "-b", base, filter, "mail"])
                .output()
                .expect("ldapsearch (ldap-utils)");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        // telephoneNumberMatch ignores spaces and hyphens.
        let found = search(LDAP_PEOPLE, "(telephoneNumber=+4981424799123)");
        assert!(found.contains("mail: alice@example.com"), "{found}");
        assert!(search(LDAP_PEOPLE, "(uid=mallory)").trim().is_empty());
        assert!(search(LDAP_OTHER, "(uid=mallory)").contains("mallory@example.com"));
    }

    #[test]
    fn a_multipart_mail_with_a_wav_attachment_is_read() {
        let wav = tone(250);
        let m = ReceivedMail::parse(&lettre_like(&wav));
        assert_eq!(m.subject, "Voicemail für Jörg – 0:04");
        assert_eq!(m.to, "Alice <alice@example.com>");
        assert_eq!(m.from, "\"Voicemail\" <vm@vm.test>");
        assert_eq!(m.rcpt_to, ["alice@example.com", "bob@example.com"]);
        assert_eq!(m.header("x-mailfrom"), Some("vm@vm.test"));
        assert_eq!(
            m.text.trim_end(),
            "New voicemail for Jörg (102)\nLength: 0:04 and a very long line that is soft broken"
        );
        assert_eq!(m.attachments.len(), 1);
        let a = &m.attachments[0];
        assert_eq!(a.filename, "message.wav");
        assert_eq!(a.content_type, "audio/wav");
        assert_eq!(a.data, wav, "byte-exact");
        let info = assert_wav(&a.data, "the attachment");
        assert_eq!((info.sample_rate, info.channels, info.bits), (8000, 1, 16));
        assert_eq!(info.duration_ms, 250);
    }

    #[test]
    fn plain_and_nested_mails() {
        let m = ReceivedMail::parse(
            b"Subject: Welcome to your voice mailbox 102\nTo: a@b\n\nYour PIN is 123456.\n",
        );
        assert_eq!(m.subject, "Welcome to your voice mailbox 102");
        assert_eq!(m.text, "Your PIN is 123456.\n");
        assert!(m.attachments.is_empty());

        // multipart/alternative inside multipart/mixed, unquoted boundaries,
        // the file name from Content-Type and RFC 2231.
        let raw = "Subject: =?ISO-8859-1?Q?caf=E9?= plain =?us-ascii?q?x?=\n\
            Content-Type: multipart/mixed; boundary=outer\n\npreamble\n--outer\n\
            Content-Type: multipart/alternative; boundary=\"inner\"\n\n--inner\n\
            Content-Type: text/plain\n\nhello\n--inner\nContent-Type: text/html\n\n<p>hello</p>\n--inner--\n\
            --outer\nContent-Type: audio/x-wav; name=\"a.wav\"\nContent-Transfer-Encoding: base64\n\nAAEC\n\
            --outer\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename*=utf-8''m%C3%BC.bin\n\nraw\n\
            --outer--\nepilogue\n";
        let m = ReceivedMail::parse(raw.as_bytes());
        assert_eq!(m.subject, "café plain x");
        assert_eq!(m.text, "hello");
        assert_eq!(m.attachments.len(), 2, "{:?}", m.attachments);
        assert_eq!(m.attachments[0].filename, "a.wav");
        assert_eq!(m.attachments[0].content_type, "audio/x-wav");
        assert_eq!(m.attachments[0].data, [0, 1, 2]);
        assert_eq!(m.attachments[1].filename, "mü.bin");
        assert_eq!(m.attachments[1].data, b"raw");
    }

    #[test]
    fn encoded_words() {
        assert_eq!(decode_words("plain text"), "plain text");
        assert_eq!(
            decode_words("=?UTF-8?B?SGVsbG8=?= =?UTF-8?B?IFdvcmxk?="),
            "Hello World"
        );
        assert_eq!(decode_words("a =?utf-8?q?b_c?= d"), "a b c d");
        assert_eq!(decode_words("=?bad"), "=?bad");
    }

    #[test]
    fn wav_check_accepts_valid_and_rejects_torn_files() {
        let wav = tone(1500);
        let info = wav_info(&wav).unwrap();
        assert_eq!(
            info,
            WavInfo {
                sample_rate: 8000,
                channels: 1,
                bits: 16,
                duration_ms: 1500,
                data_bytes: 24000
            }
        );
        // Torn: the header promises more than the file holds.
        let torn = &wav[..wav.len() - 100];
        assert!(
            wav_info(torn).unwrap_err().contains("torn"),
            "{:?}",
            wav_info(torn)
        );
        // A header alone, or garbage.
        assert!(wav_info(&wav[..20]).is_err());
        assert!(wav_info(b"not a wav at all").is_err());
        // A data chunk claiming more than there is, with a fixed RIFF size.
        let mut lying = wav.clone();
        lying[40..44].copy_from_slice(&100_000u32.to_le_bytes());
        assert!(wav_info(&lying).unwrap_err().contains("claims"));
        // Half a frame.
        let mut odd = wav_pcm16(&[1, 2, 3], 8000);
        odd[40..44].copy_from_slice(&5u32.to_le_bytes());
        odd.truncate(44 + 5);
        odd.push(0); // pad byte
        let riff = (odd.len() - 8) as u32;
        odd[4..8].copy_from_slice(&riff.to_le_bytes());
        assert!(wav_info(&odd).unwrap_err().contains("whole frames"));
        // Stereo 16 kHz with an extra chunk before data.
        let mut w = Vec::new();
        w.extend_from_slice(b"RIFF\0\0\0\0WAVEfmt ");
        w.extend_from_slice(&16u32.to_le_bytes());
        for v in [1u16, 2] {
            w.extend_from_slice(&v.to_le_bytes());
        }
        w.extend_from_slice(&16000u32.to_le_bytes());
        w.extend_from_slice(&64000u32.to_le_bytes());
        w.extend_from_slice(&4u16.to_le_bytes());
        w.extend_from_slice(&16u16.to_le_bytes());
        w.extend_from_slice(b"LIST\x03\0\0\0abc\0");
        w.extend_from_slice(b"data");
        w.extend_from_slice(&32000u32.to_le_bytes());
        w.extend_from_slice(&vec![0u8; 32000]);
        let riff = (w.len() - 8) as u32;
        w[4..8].copy_from_slice(&riff.to_le_bytes());
        let i = assert_wav(&w, "stereo");
        assert_eq!((i.sample_rate, i.channels, i.duration_ms), (16000, 2, 500));
    }

    #[test]
    fn alaw_round_trips_within_its_quantisation() {
        for s in [
            -32768i16, -10000, -1000, -100, -1, 0, 1, 100, 1000, 10000, 32767,
        ] {
            let back = alaw_decode(alaw_encode(s));
            let tolerance = (i32::from(s).abs() / 16).max(16);
            assert!(
                (i32::from(back) - i32::from(s)).abs() <= tolerance,
                "{s} -> {back}"
            );
        }
        assert_eq!(alaw_encode(0), 0xD5);
    }

    #[test]
    fn rtp_script_writes_a_capture_sipp_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let s = RtpScript::new().keys(500, "11#").speech(2000, 1000);
        assert_eq!(RtpScript::keys_end(500, "11#"), 1550);
        let path = s.write(&dir.path().join("a.pcap"));
        let b = std::fs::read(path).unwrap();
        assert_eq!(&b[0..4], &0xa1b2_c3d4u32.to_le_bytes());
        // Walk the records: 1 silent + 3 keys x (5 + 3) + 50 speech packets.
        let (mut i, mut n, mut events) = (24, 0, Vec::new());
        let mut last_us = 0u64;
        let mut seqs = Vec::new();
        while i < b.len() {
            let sec = u32::from_le_bytes(b[i..i + 4].try_into().unwrap()) as u64;
            let usec = u32::from_le_bytes(b[i + 4..i + 8].try_into().unwrap()) as u64;
            let len = u32::from_le_bytes(b[i + 8..i + 12].try_into().unwrap()) as usize;
            let us = sec * 1_000_000 + usec;
            assert!(us >= last_us, "time stamps in order");
            last_us = us;
            let frame = &b[i + 16..i + 16 + len];
            assert_eq!(&frame[12..14], &[8, 0]);
            let udp_len = u16::from_be_bytes([frame[38], frame[39]]) as usize;
            assert_eq!(udp_len, len - 34);
            let rtp = &frame[42..];
            seqs.push(u16::from_be_bytes([rtp[2], rtp[3]]));
            let pt = rtp[1] & 0x7f;
            if pt == TELEPHONE_EVENT_PT {
                let ts = u32::from_be_bytes(rtp[4..8].try_into().unwrap());
                if rtp[13] & 0x80 != 0 && !events.contains(&(ts, rtp[12])) {
                    events.push((ts, rtp[12]));
                }
            }
            n += 1;
            i += 16 + len;
        }
        assert_eq!(n, 1 + 3 * 8 + 50);
        assert_eq!(
            events,
            [(4000, 1), (6800, 1), (9600, 11)],
            "three distinct events"
        );
        assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
        assert_eq!(s.end_ms(), 2980);
    }
}
