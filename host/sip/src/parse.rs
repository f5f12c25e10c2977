//! Parsing of SIP messages and of the header values the host reads
//! (RFC 3261 sections 7, 19, 20 and 25).
//!
//! [`parse_message`] turns one datagram into a [`Message`]: it checks the
//! start line strictly (RFC 4475 3.1.2.7 to 3.1.2.10 expect a 400 for
//! `<...>`, embedded or repeated whitespace in the request line, 505 for
//! another SIP version), unfolds header lines, and frames the body by
//! Content-Length. Header values are kept as text; the typed accessors on
//! [`Headers`] (defined in this module) parse them on demand with the value
//! parsers below, so a message with a garbled header the host never reads
//! still gets through, and [`crate::check::check_request`] decides which
//! headers must be valid before the host acts.
//!
//! Everything here works on untrusted input: no panics, no indexing that can
//! go out of range, no use of a peer-supplied number as a count before it has
//! been checked against the bytes actually present.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use crate::message::{
    CSeq, Contacts, Headers, Message, Method, NameAddr, Params, Request, Response, Uri, Via,
    canonical_name,
};

/// Why a message or a header value could not be parsed.
///
/// `status` is the response code to answer an unparseable request with
/// (400 Bad Request, or 505 Version Not Supported for another SIP version);
/// for responses it has no meaning, because broken responses are dropped.
/// `reason` is a short human-readable description of the problem (it goes
/// into the `text` of a Reason header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub status: u16,
    pub reason: String,
}

impl ParseError {
    /// A 400 Bad Request error with the given description.
    pub fn bad_request(reason: impl Into<String>) -> ParseError {
        ParseError {
            status: 400,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.reason)
    }
}

impl std::error::Error for ParseError {}

fn bad(reason: impl Into<String>) -> ParseError {
    ParseError::bad_request(reason)
}

/// A short, printable excerpt of untrusted text for error messages: at most
/// 40 characters, control characters replaced by `?` (the text ends up in a
/// Reason header, where [`reason_header`] escapes quotes and backslashes).
pub(crate) fn snippet(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(40)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().nth(40).is_some() {
        out.push_str("...");
    }
    out
}

// ---------------------------------------------------------------------------
// Character classes (RFC 3261 25.1)
// ---------------------------------------------------------------------------

/// `token` characters: alphanumerics and `-.!%*_+`'~`.
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// True when `s` is a non-empty `token`.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Trims SP and HTAB (linear white space after unfolding) on both sides.
fn trim_lws(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

fn trim_lws_start(s: &str) -> &str {
    s.trim_start_matches([' ', '\t'])
}

fn trim_bytes(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if is_wsp(*first) {
            b = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = b {
        if is_wsp(*last) {
            b = rest;
        } else {
            break;
        }
    }
    b
}

/// Length of the leading run of token characters.
fn token_len(s: &str) -> usize {
    s.bytes().take_while(|b| is_token_byte(*b)).count()
}

fn bytes_to_string(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => String::from_utf8_lossy(b).into_owned(),
    }
}

// ---------------------------------------------------------------------------
// Message framing
// ---------------------------------------------------------------------------

/// Skips CR and LF octets before the start line (RFC 3261 7.5; keep-alives).
pub(crate) fn skip_leading_crlf(bytes: &[u8]) -> &[u8] {
    let n = bytes
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    bytes.get(n..).unwrap_or_default()
}

/// Finds the empty line that ends the header section, scanning from `from`
/// (which must be at the start of a line). Returns `(head_len, body_start)`:
/// `head_len` covers the start line and every header line with their line
/// ends, `body_start` is the first octet after the empty line. Bare LF line
/// ends are accepted.
pub(crate) fn find_head_end(bytes: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i < bytes.len() {
        let nl = i + bytes.get(i..)?.iter().position(|b| *b == b'\n')?;
        let line = &bytes[i..nl];
        if line.is_empty() || line == b"\r" {
            return Some((i, nl + 1));
        }
        i = nl + 1;
    }
    None
}

/// Splits `head` into lines, dropping the line ends (CRLF or bare LF).
fn lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    let head = head.strip_suffix(b"\n").unwrap_or(head);
    head.split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

/// One header field after unfolding: the raw name (trimmed) and the value
/// (continuation lines joined with one SP, trimmed).
struct RawField<'a> {
    name: &'a [u8],
    value: Cow<'a, [u8]>,
}

/// Parses the header lines (everything after the start line). Each field is
/// either a header line or an error (no colon, a bad name, a continuation
/// before the first header).
fn raw_fields<'a>(
    header_lines: impl Iterator<Item = &'a [u8]>,
) -> impl Iterator<Item = Result<RawField<'a>, ParseError>> {
    let mut lines = header_lines.peekable();
    let mut first = true;
    std::iter::from_fn(move || {
        let line = lines.next()?;
        if first && line.first().copied().is_some_and(is_wsp) {
            first = false;
            return Some(Err(bad("header continuation line before any header")));
        }
        first = false;
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            // Swallow its continuation lines so that one bad line is one error.
            while lines
                .next_if(|l| l.first().copied().is_some_and(is_wsp))
                .is_some()
            {}
            return Some(Err(bad(format!(
                "header line without a colon: {}",
                snippet(&String::from_utf8_lossy(line))
            ))));
        };
        let name = trim_bytes(&line[..colon]);
        let mut value: Cow<'a, [u8]> = Cow::Borrowed(trim_bytes(&line[colon + 1..]));
        while let Some(cont) = lines.next_if(|l| l.first().copied().is_some_and(is_wsp)) {
            let cont = trim_bytes(cont);
            if cont.is_empty() {
                continue;
            }
            let v = value.to_mut();
            if !v.is_empty() {
                v.push(b' ');
            }
            v.extend_from_slice(cont);
        }
        if name.is_empty() || !name.iter().all(|b| is_token_byte(*b)) {
            return Some(Err(bad(format!(
                "malformed header name: {}",
                snippet(&String::from_utf8_lossy(name))
            ))));
        }
        Some(Ok(RawField { name, value }))
    })
}

fn is_content_length(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")
}

/// Parses one Content-Length value: `1*DIGIT` that fits in `usize`.
fn parse_content_length(v: &[u8]) -> Result<usize, ParseError> {
    let text = String::from_utf8_lossy(v);
    if v.first() == Some(&b'-') {
        return Err(bad(format!("negative Content-Length {}", snippet(&text))));
    }
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return Err(bad(format!("invalid Content-Length {}", snippet(&text))));
    }
    let mut n: usize = 0;
    for d in v {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(usize::from(d - b'0')))
            .ok_or_else(|| bad(format!("Content-Length {} too large", snippet(&text))))?;
    }
    Ok(n)
}

/// Combines every Content-Length value of a header section: `None` when
/// there is none, an error when one is invalid or two disagree (RFC 4475
/// 3.3.9). Repeated equal values are accepted.
fn combine_content_length<'a>(
    values: impl Iterator<Item = &'a [u8]>,
) -> Result<Option<usize>, ParseError> {
    let mut found: Option<usize> = None;
    for v in values {
        let n = parse_content_length(v)?;
        match found {
            Some(m) if m != n => {
                return Err(bad(format!(
                    "conflicting Content-Length values {m} and {n}"
                )));
            }
            _ => found = Some(n),
        }
    }
    Ok(found)
}

/// The Content-Length of a header section (start line plus header lines), for
/// stream framing. Lines that do not parse are ignored here: the full parse
/// reports them later, while the framing stays intact.
pub(crate) fn head_content_length(head: &[u8]) -> Result<Option<usize>, ParseError> {
    let mut values: Vec<Cow<'_, [u8]>> = Vec::new();
    for f in raw_fields(lines(head).skip(1)).flatten() {
        if is_content_length(f.name) {
            values.push(f.value);
        }
    }
    combine_content_length(values.iter().map(|v| v.as_ref()))
}

/// Parses one SIP message received as a datagram (RFC 3261 7, 18.3, 25).
///
/// - Leading CR/LF octets are skipped; bare LF line ends are accepted.
/// - The start line is checked strictly: a request line is exactly
///   `Method SP Request-URI SP SIP/2.0` (400 otherwise, 505 for another
///   version), a status line has a 3-digit code from 100 to 699.
/// - Header lines are unfolded (a line starting with SP/HTAB continues the
///   previous one) and stored under their canonical names.
/// - The body is exactly Content-Length octets; octets after it are
///   discarded (RFC 4475 3.1.1.8). Without Content-Length the body is the rest
///   of the datagram (RFC 3261 18.3 for UDP; RFC 4475 3.4.1). A value larger
///   than the octets present, negative, non-numeric, or conflicting values
///   are errors (400).
pub fn parse_message(bytes: &[u8]) -> Result<Message, ParseError> {
    let bytes = skip_leading_crlf(bytes);
    if bytes.is_empty() {
        return Err(bad("empty message"));
    }
    let (head_len, body_start) = find_head_end(bytes, 0)
        .ok_or_else(|| bad("header section not terminated by an empty line"))?;
    let head = &bytes[..head_len];
    let rest = bytes.get(body_start..).unwrap_or_default();
    let mut all = lines(head);
    let start = all.next().unwrap_or_default();

    let mut headers = Headers::new();
    let mut first_error = None;
    for field in raw_fields(all) {
        match field {
            Ok(f) => {
                // Names are token characters (ASCII), checked by raw_fields;
                // push canonicalises them.
                let name = std::str::from_utf8(f.name).unwrap_or_default();
                headers.push(name, bytes_to_string(&f.value));
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }

    let is_response = start.len() >= 4 && start[..4].eq_ignore_ascii_case(b"SIP/");
    if is_response {
        let (status, reason) = parse_status_line(start)?;
        if let Some(e) = first_error {
            return Err(e);
        }
        let body = frame_body(rest, &headers)?;
        return Ok(Message::Response(Response {
            status,
            reason,
            headers,
            body,
        }));
    }
    let (method, uri) = parse_request_line(start)?;
    if let Some(e) = first_error {
        return Err(e);
    }
    let body = frame_body(rest, &headers)?;
    Ok(Message::Request(Request {
        method,
        uri,
        headers,
        body,
    }))
}

fn frame_body(rest: &[u8], headers: &Headers) -> Result<Vec<u8>, ParseError> {
    // A non-UTF-8 value was made lossy, which keeps it non-numeric.
    match combine_content_length(headers.get_all("Content-Length").map(str::as_bytes))? {
        Some(n) => match rest.get(..n) {
            Some(body) => Ok(body.to_vec()),
            None => Err(bad(format!(
                "Content-Length {n} larger than body ({} octets)",
                rest.len()
            ))),
        },
        None => Ok(rest.to_vec()),
    }
}

/// `SIP-Version SP Status-Code SP Reason-Phrase` (RFC 3261 7.2). The SP
/// before an empty reason phrase may be missing.
fn parse_status_line(line: &[u8]) -> Result<(u16, String), ParseError> {
    let sp = line.iter().position(|b| *b == b' ');
    let version = &line[..sp.unwrap_or(line.len())];
    check_version(version)?;
    let rest = match sp {
        Some(i) => line.get(i + 1..).unwrap_or_default(),
        None => return Err(bad("status line without a status code")),
    };
    let code_end = rest.iter().position(|b| *b == b' ').unwrap_or(rest.len());
    let code = &rest[..code_end];
    if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
        return Err(bad(format!(
            "invalid status code {}",
            snippet(&String::from_utf8_lossy(code))
        )));
    }
    let status = code
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    if !(100..=699).contains(&status) {
        return Err(bad(format!("status code {status} out of range")));
    }
    let reason = rest.get(code_end + 1..).unwrap_or_default();
    Ok((status, bytes_to_string(reason)))
}

fn check_version(v: &[u8]) -> Result<(), ParseError> {
    if v.eq_ignore_ascii_case(b"SIP/2.0") {
        Ok(())
    } else if v.len() >= 4 && v[..4].eq_ignore_ascii_case(b"SIP/") {
        Err(ParseError {
            status: 505,
            reason: format!(
                "SIP version {} not supported",
                snippet(&String::from_utf8_lossy(v))
            ),
        })
    } else {
        Err(bad(format!(
            "invalid SIP version {}",
            snippet(&String::from_utf8_lossy(v))
        )))
    }
}

/// `Method SP Request-URI SP SIP-Version` (RFC 3261 7.1, 25.1), strictly:
/// one SP between the elements and none at the end (RFC 4475 3.1.2.9,
/// 3.1.2.10), no whitespace inside the Request-URI (3.1.2.8) and no `<>`
/// around it (3.1.2.7).
fn parse_request_line(line: &[u8]) -> Result<(Method, Uri), ParseError> {
    let line = std::str::from_utf8(line).map_err(|_| bad("request line is not valid UTF-8"))?;
    if line.ends_with([' ', '\t']) {
        return Err(bad("trailing whitespace in the request line"));
    }
    let (Some(first), Some(last)) = (line.find(' '), line.rfind(' ')) else {
        return Err(bad(
            "request line needs a method, a Request-URI and a SIP version",
        ));
    };
    if first == last {
        return Err(bad(
            "request line needs a method, a Request-URI and a SIP version",
        ));
    }
    let method = &line[..first];
    if !is_token(method) {
        return Err(bad(format!("invalid method {}", snippet(method))));
    }
    check_version(&line.as_bytes()[last + 1..])?;
    let uri = &line[first + 1..last];
    if uri.starts_with(' ') || uri.ends_with(' ') {
        return Err(bad("more than one SP between request-line elements"));
    }
    if uri.contains([' ', '\t']) {
        return Err(bad(format!(
            "whitespace inside the Request-URI {}",
            snippet(uri)
        )));
    }
    if uri.starts_with('<') {
        return Err(bad("Request-URI enclosed in <>"));
    }
    let uri = parse_uri(uri)?;
    Ok((Method::from_token(method), uri))
}

// ---------------------------------------------------------------------------
// Error responses to unparseable requests
// ---------------------------------------------------------------------------

/// The standard reason phrase of the status codes this crate generates.
pub(crate) fn default_reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        406 => "Not Acceptable",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        501 => "Not Implemented",
        505 => "Version Not Supported",
        _ => "Error",
    }
}

/// A Reason header value (RFC 3326) with `text` quoted and escaped.
pub(crate) fn reason_header(status: u16, text: &str) -> String {
    let mut v = format!("SIP;cause={status};text=\"");
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                v.push('\\');
                v.push(c);
            }
            c if c.is_control() => v.push(' '),
            c => v.push(c),
        }
    }
    v.push('"');
    v
}

/// Adds a To tag (RFC 3261 8.2.6.2) to the response headers when the To
/// header parses and has none. The tag is derived from the dialog and
/// transaction identifiers, so a retransmitted request gets the same tag
/// (what a stateless UAS needs, RFC 3261 8.2.7).
pub(crate) fn add_to_tag(headers: &mut Headers) {
    if headers.count("To") != 1 {
        return;
    }
    let Ok(to) = headers.to_addr() else { return };
    if to.tag().is_some() {
        return;
    }
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for name in ["Call-ID", "From", "To", "CSeq", "Via"] {
        headers.get(name).hash(&mut h);
    }
    let tag = format!("{:016x}", h.finish());
    let raw = headers.get("To").unwrap_or_default().to_string();
    headers.set("To", format!("{raw};tag={tag}"));
}

/// A best-effort error response to a request that [`parse_message`] rejected
/// (RFC 3261 8.2.6: copy Via, From, To, Call-ID and CSeq).
///
/// The raw Via, From, To, Call-ID and CSeq lines that can be found are
/// copied; the status is `err.status` with its standard reason phrase, and a
/// `Reason: SIP;cause=N;text="..."` header carries `err.reason`. A To tag is
/// added when the To header parses. Returns `None` for responses (they are
/// dropped, never answered) and when no Via can be salvaged (there is no
/// way to address the answer).
pub fn reject_response(bytes: &[u8], err: &ParseError) -> Option<Response> {
    let bytes = skip_leading_crlf(bytes);
    if bytes.len() >= 4 && bytes[..4].eq_ignore_ascii_case(b"SIP/") {
        return None;
    }
    let head_len = find_head_end(bytes, 0)
        .map(|(h, _)| h)
        .unwrap_or(bytes.len());
    let head = &bytes[..head_len];
    let mut headers = Headers::new();
    for f in raw_fields(lines(head).skip(1)).flatten() {
        let name = String::from_utf8_lossy(f.name);
        let name = canonical_name(&name);
        if matches!(name, "Via" | "From" | "To" | "Call-ID" | "CSeq") && !f.value.is_empty() {
            headers.push(name, bytes_to_string(&f.value));
        }
    }
    headers.get("Via")?;
    let status = if (300..=699).contains(&err.status) {
        err.status
    } else {
        400
    };
    add_to_tag(&mut headers);
    headers.push("Reason", reason_header(status, &err.reason));
    let mut r = Response::new(status, default_reason(status));
    r.headers = headers;
    Some(r)
}

// ---------------------------------------------------------------------------
// Value parsers
// ---------------------------------------------------------------------------

/// Splits a header value at commas that are outside quoted strings and
/// outside `<...>` (RFC 3261 7.3.1). Items are trimmed of SP/HTAB; empty
/// items are kept (so callers can reject `a,,b`), but an empty or all-blank
/// value gives an empty list.
pub fn split_list(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    if trim_lws(value).is_empty() {
        return out;
    }
    let b = value.as_bytes();
    let (mut in_quote, mut escaped, mut angle) = (false, false, false);
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        if in_quote {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_quote = false;
            }
            continue;
        }
        match c {
            b'"' => in_quote = true,
            b'<' => angle = true,
            b'>' => angle = false,
            b',' if !angle => {
                out.push(trim_lws(&value[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(trim_lws(&value[start..]));
    out
}

fn is_uri_forbidden(c: char) -> bool {
    c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"')
}

/// Parses a URI (RFC 3261 19.1, 25.1; RFC 3966 for `tel`).
///
/// `sip:` and `sips:` URIs are split into user, password, host, port,
/// parameters and headers (all still escaped as received); the user part
/// ends at the first `@` (it may contain `;`, `?` and `,`, RFC 4475
/// 3.1.1.9). For `tel:` the number goes into `user` and the parameters
/// into `params`, with an empty host. Any other scheme is kept opaque in
/// `host`. The scheme is lower-cased. Whitespace, control characters, `<`,
/// `>` and `"` are errors.
pub fn parse_uri(s: &str) -> Result<Uri, ParseError> {
    let colon = s
        .find(':')
        .ok_or_else(|| bad(format!("URI without a scheme: {}", snippet(s))))?;
    let scheme = &s[..colon];
    let valid_scheme = scheme
        .as_bytes()
        .first()
        .is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !valid_scheme {
        return Err(bad(format!("invalid URI scheme in {}", snippet(s))));
    }
    let rest = &s[colon + 1..];
    if rest.is_empty() {
        return Err(bad(format!("empty URI {}", snippet(s))));
    }
    if rest.contains(is_uri_forbidden) {
        return Err(bad(format!("invalid character in URI {}", snippet(s))));
    }
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "sip" | "sips" => parse_sip_uri(scheme, rest, s),
        "tel" => {
            let (number, params) = match rest.find(';') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            if number.is_empty() || number.contains(['?', '@']) {
                return Err(bad(format!("invalid tel URI {}", snippet(s))));
            }
            Ok(Uri {
                scheme,
                user: Some(number.to_string()),
                params: parse_uri_params(params, s)?,
                ..Uri::default()
            })
        }
        _ => Ok(Uri {
            scheme,
            host: rest.to_string(),
            ..Uri::default()
        }),
    }
}

fn parse_sip_uri(scheme: String, rest: &str, whole: &str) -> Result<Uri, ParseError> {
    let mut uri = Uri {
        scheme,
        ..Uri::default()
    };
    // Neither host, parameters nor headers may hold a raw '@': the first one
    // ends the userinfo.
    let hostpart = match rest.find('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let (user, password) = match userinfo.find(':') {
                Some(c) => (&userinfo[..c], Some(&userinfo[c + 1..])),
                None => (userinfo, None),
            };
            if user.is_empty() {
                return Err(bad(format!("empty user part in URI {}", snippet(whole))));
            }
            uri.user = Some(user.to_string());
            uri.password = password.map(str::to_string);
            &rest[at + 1..]
        }
        None => rest,
    };
    if hostpart.contains('@') {
        return Err(bad(format!("more than one @ in URI {}", snippet(whole))));
    }
    let (host, after) = split_host(hostpart)
        .ok_or_else(|| bad(format!("invalid host in URI {}", snippet(whole))))?;
    uri.host = host.to_string();
    let mut after = after;
    if let Some(p) = after.strip_prefix(':') {
        let end = p.find([';', '?']).unwrap_or(p.len());
        uri.port = Some(
            parse_port(&p[..end])
                .ok_or_else(|| bad(format!("invalid port in URI {}", snippet(whole))))?,
        );
        after = &p[end..];
    }
    let (params, headers) = match after.find('?') {
        Some(q) => (&after[..q], Some(&after[q + 1..])),
        None => (after, None),
    };
    uri.params = parse_uri_params(params, whole)?;
    if let Some(h) = headers {
        if h.is_empty() {
            return Err(bad(format!("empty headers part in URI {}", snippet(whole))));
        }
        uri.headers = Some(h.to_string());
    }
    Ok(uri)
}

/// Splits `host` (a name, an IPv4 address or a bracketed IPv6 reference)
/// from what follows it. `None` when the host is empty or malformed.
fn split_host(s: &str) -> Option<(&str, &str)> {
    if s.starts_with('[') {
        let end = s.find(']')?;
        let inner = &s[1..end];
        let ok = !inner.is_empty()
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        return ok.then(|| (&s[..=end], &s[end + 1..]));
    }
    let end = s
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')))
        .unwrap_or(s.len());
    (end > 0).then(|| (&s[..end], &s[end..]))
}

fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// URI parameters: `*( ";" pname [ "=" pvalue ] )`, no whitespace, names and
/// values non-empty.
fn parse_uri_params(s: &str, whole: &str) -> Result<Params, ParseError> {
    let mut out = Params::new();
    if s.is_empty() {
        return Ok(out);
    }
    let Some(s) = s.strip_prefix(';') else {
        return Err(bad(format!("invalid URI {}", snippet(whole))));
    };
    for p in s.split(';') {
        let (name, value) = match p.find('=') {
            Some(i) => (&p[..i], Some(&p[i + 1..])),
            None => (p, None),
        };
        if name.is_empty() || value.is_some_and(str::is_empty) {
            return Err(bad(format!("empty URI parameter in {}", snippet(whole))));
        }
        out.push((name.to_string(), value.map(str::to_string)));
    }
    Ok(out)
}

/// Reads a quoted string at the start of `s` (which starts with `"`).
/// Returns the content with quoted-pairs resolved and the text after the
/// closing quote.
fn take_quoted(s: &str) -> Result<(String, &str), ParseError> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((_, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e)) => out.push(e),
                None => break,
            },
            '"' => {
                // The index after the closing quote.
                let rest = chars.next().map_or("", |(j, _)| &s[j..]);
                return Ok((out, rest));
            }
            c => out.push(c),
        }
    }
    Err(bad("unterminated quoted string"))
}

/// Length of a quoted string (quotes included) at the start of `s`.
fn quoted_len(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            return Some(i + 1);
        }
    }
    None
}

/// Generic header parameters: `*( SEMI token [ EQUAL gen-value ] )` with
/// optional LWS around `;` and `=` (RFC 3261 25.1). `gen-value` is a quoted
/// string (kept with its quotes) or a run of characters other than LWS,
/// `;`, `,`, `"`, `<` and `>` (tokens, hosts, IPv6 references).
pub(crate) fn parse_params(s: &str) -> Result<Params, ParseError> {
    let mut out = Params::new();
    let mut rest = trim_lws(s);
    while !rest.is_empty() {
        let Some(r) = rest.strip_prefix(';') else {
            return Err(bad(format!("expected ';' before {}", snippet(rest))));
        };
        rest = trim_lws_start(r);
        let n = token_len(rest);
        if n == 0 {
            return Err(bad("empty or malformed parameter"));
        }
        let name = &rest[..n];
        rest = trim_lws_start(&rest[n..]);
        let mut value = None;
        if let Some(r) = rest.strip_prefix('=') {
            rest = trim_lws_start(r);
            let len = if rest.starts_with('"') {
                quoted_len(rest).ok_or_else(|| bad("unterminated quoted parameter value"))?
            } else {
                rest.bytes()
                    .position(|b| {
                        is_wsp(b) || matches!(b, b';' | b',' | b'"' | b'<' | b'>') || b < 0x20
                    })
                    .unwrap_or(rest.len())
            };
            if len == 0 {
                return Err(bad(format!("parameter {} without a value", snippet(name))));
            }
            value = Some(rest[..len].to_string());
            rest = trim_lws_start(&rest[len..]);
        }
        out.push((name.to_string(), value));
    }
    Ok(out)
}

/// Parses one `name-addr` or `addr-spec` with header parameters
/// (From, To, Contact, Route, ...; RFC 3261 20.10, 25.1).
///
/// - `"quoted \"name\"" <uri>;p=v`: quoted-pairs are resolved; an
///   unterminated quote is an error (RFC 4475 3.1.2.6).
/// - `token token <uri>`: an unquoted display name must be tokens separated
///   by LWS (`Bell, Alexander` is an error, 3.1.2.15); `caller<sip:...>`
///   without LWS is accepted (3.1.1.6). Non-ASCII characters are tolerated
///   there too (phones send unquoted UTF-8 names).
/// - No whitespace inside `<...>` (3.1.2.14).
/// - Without `<>`, the URI ends at the first `;` and what follows are header
///   parameters, not URI parameters (3.3.12); such a URI must not contain
///   `?` or `,` (RFC 3261 20.10, RFC 4475 3.1.2.13).
pub fn parse_name_addr(s: &str) -> Result<NameAddr, ParseError> {
    let s = trim_lws(s);
    if s.is_empty() {
        return Err(bad("empty address"));
    }
    let (display, rest) = if s.starts_with('"') {
        let (d, rest) = take_quoted(s).map_err(|_| {
            bad(format!(
                "unterminated quoted display name in {}",
                snippet(s)
            ))
        })?;
        let rest = trim_lws_start(rest);
        if !rest.starts_with('<') {
            return Err(bad(format!(
                "display name not followed by <URI> in {}",
                snippet(s)
            )));
        }
        (Some(d), rest)
    } else if let Some(lt) = s.find('<') {
        let d = trim_lws(&s[..lt]);
        if !d
            .bytes()
            .all(|b| is_token_byte(b) || is_wsp(b) || b >= 0x80)
        {
            return Err(bad(format!("display name must be quoted: {}", snippet(d))));
        }
        ((!d.is_empty()).then(|| d.to_string()), &s[lt..])
    } else {
        // addr-spec
        let end = s.find(';').unwrap_or(s.len());
        let text = trim_lws(&s[..end]);
        if text.contains(['?', ',']) {
            return Err(bad(format!(
                "URI with '?' or ',' must be enclosed in <>: {}",
                snippet(text)
            )));
        }
        let uri = parse_uri(text)?;
        let params = parse_params(&s[end..])?;
        return Ok(NameAddr {
            display: None,
            uri,
            params,
        });
    };
    // rest starts with '<'
    let gt = rest
        .find('>')
        .ok_or_else(|| bad(format!("unterminated <URI> in {}", snippet(s))))?;
    let inner = &rest[1..gt];
    if inner.contains([' ', '\t']) {
        return Err(bad(format!("whitespace inside <URI> in {}", snippet(s))));
    }
    let uri = parse_uri(inner)?;
    let params = parse_params(&rest[gt + 1..])?;
    Ok(NameAddr {
        display,
        uri,
        params,
    })
}

/// Parses one Via value: `SIP/2.0/transport sent-by *(; param)` with LWS
/// allowed around `/`, `:` and `;` (RFC 3261 20.42, 25.1).
fn parse_via(s: &str) -> Result<Via, ParseError> {
    let err = || bad(format!("malformed Via {}", snippet(s)));
    let mut rest = trim_lws(s);
    let mut parts = [""; 3];
    for (i, part) in parts.iter_mut().enumerate() {
        if i > 0 {
            rest = trim_lws_start(rest.strip_prefix('/').ok_or_else(err)?);
        }
        let n = token_len(rest);
        if n == 0 {
            return Err(err());
        }
        *part = &rest[..n];
        rest = trim_lws_start(&rest[n..]);
    }
    let [proto, version, transport] = parts;
    if !proto.eq_ignore_ascii_case("SIP") || version != "2.0" {
        return Err(bad(format!("unsupported Via protocol {proto}/{version}")));
    }
    // trim_lws_start above already consumed the LWS before sent-by; it must
    // have been there (the transport token stops at a non-token character).
    let (host, after) = split_host(rest).ok_or_else(err)?;
    let mut after = trim_lws_start(after);
    let mut port = None;
    if let Some(p) = after.strip_prefix(':') {
        let p = trim_lws_start(p);
        let end = p
            .bytes()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(p.len());
        port = Some(parse_port(&p[..end]).ok_or_else(err)?);
        after = &p[end..];
    }
    let params = parse_params(after)?;
    Ok(Via {
        transport: transport.to_ascii_uppercase(),
        host: host.to_string(),
        port,
        params,
    })
}

/// Parses a Via header value: one or more comma-separated via-parms. Any
/// transport token is accepted (RFC 4475 3.1.1.10); empty elements and
/// empty parameters (`;;,;`) are errors (3.1.2.1).
pub fn parse_via_list(value: &str) -> Result<Vec<Via>, ParseError> {
    let items = split_list(value);
    if items.is_empty() {
        return Err(bad("empty Via"));
    }
    items.into_iter().map(parse_via).collect()
}

/// Parses a CSeq value: `1*DIGIT LWS Method`; the number must fit in 32 bits
/// (RFC 3261 8.1.1.5, RFC 4475 3.1.2.4). Leading zeros are fine.
pub fn parse_cseq(value: &str) -> Result<CSeq, ParseError> {
    let v = trim_lws(value);
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    let (num, rest) = v.split_at(digits);
    let method = trim_lws(rest);
    if digits == 0 || rest.len() == method.len() || !is_token(method) {
        return Err(bad(format!("malformed CSeq {}", snippet(v))));
    }
    let seq =
        parse_u32(num).ok_or_else(|| bad(format!("CSeq number {} too large", snippet(num))))?;
    Ok(CSeq {
        seq,
        method: Method::from_token(method),
    })
}

/// `1*DIGIT` that fits in a `u32` (leading zeros allowed).
fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.bytes().try_fold(0u32, |acc, d| {
        acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}

impl FromStr for Uri {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Uri, ParseError> {
        parse_uri(s)
    }
}

impl FromStr for NameAddr {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<NameAddr, ParseError> {
        parse_name_addr(s)
    }
}

/// Typed accessors: each parses the raw header text on demand.
impl Headers {
    /// Every Via value of every Via line, in order (top first).
    pub fn vias(&self) -> Result<Vec<Via>, ParseError> {
        let mut out = Vec::new();
        for line in self.get_all("Via") {
            out.extend(
                parse_via_list(line).map_err(|e| bad(format!("invalid Via: {}", e.reason)))?,
            );
        }
        Ok(out)
    }

    /// The topmost Via value; an error when there is none or it is malformed.
    pub fn top_via(&self) -> Result<Via, ParseError> {
        let line = self.get("Via").ok_or_else(|| bad("missing Via"))?;
        let first = split_list(line).into_iter().next().unwrap_or_default();
        parse_via(first).map_err(|e| bad(format!("invalid Via: {}", e.reason)))
    }

    fn single_addr(&self, name: &str) -> Result<NameAddr, ParseError> {
        let v = self
            .get(name)
            .ok_or_else(|| bad(format!("missing {name}")))?;
        parse_name_addr(v).map_err(|e| bad(format!("invalid {name}: {}", e.reason)))
    }

    /// The From address (the first From line).
    pub fn from_addr(&self) -> Result<NameAddr, ParseError> {
        self.single_addr("From")
    }

    /// The To address (the first To line).
    pub fn to_addr(&self) -> Result<NameAddr, ParseError> {
        self.single_addr("To")
    }

    /// The Call-ID (the first Call-ID line), `None` when absent or empty.
    pub fn call_id(&self) -> Option<&str> {
        self.get("Call-ID").map(trim_lws).filter(|s| !s.is_empty())
    }

    /// The CSeq (the first CSeq line), see [`parse_cseq`].
    pub fn cseq(&self) -> Result<CSeq, ParseError> {
        let v = self.get("CSeq").ok_or_else(|| bad("missing CSeq"))?;
        parse_cseq(v)
    }

    /// The Contact header: `None` when absent, `Contacts::Star` for `*`
    /// (which must then be the only value, RFC 3261 10.2.2), otherwise every
    /// address of every Contact line in order.
    pub fn contacts(&self) -> Result<Option<Contacts>, ParseError> {
        let mut list = Vec::new();
        let mut star = false;
        let mut any = false;
        for line in self.get_all("Contact") {
            any = true;
            let items = split_list(line);
            if items.is_empty() {
                return Err(bad("empty Contact"));
            }
            for item in items {
                if item == "*" {
                    star = true;
                } else {
                    list.push(
                        parse_name_addr(item)
                            .map_err(|e| bad(format!("invalid Contact: {}", e.reason)))?,
                    );
                }
            }
        }
        match (any, star) {
            (false, _) => Ok(None),
            (true, true) if list.is_empty() => Ok(Some(Contacts::Star)),
            (true, true) => Err(bad("Contact * mixed with addresses")),
            (true, false) => Ok(Some(Contacts::List(list))),
        }
    }

    /// Max-Forwards: `None` when absent, an error when it is not a number
    /// from 0 to 255 (RFC 3261 20.22). Leading zeros are fine.
    pub fn max_forwards(&self) -> Result<Option<u32>, ParseError> {
        let Some(v) = self.get("Max-Forwards") else {
            return Ok(None);
        };
        let v = trim_lws(v);
        match parse_u32(v) {
            Some(n) if n <= 255 => Ok(Some(n)),
            _ => Err(bad(format!("invalid Max-Forwards {}", snippet(v)))),
        }
    }

    /// The Expires header in seconds; `None` when absent, malformed or over
    /// 2^32-1 (RFC 4475 3.1.2.4: treat as absent / default).
    pub fn expires(&self) -> Option<u32> {
        parse_u32(trim_lws(self.get("Expires")?))
    }

    /// The media type of Content-Type, lower-cased, without parameters
    /// (`application/sdp`); `None` when absent or empty.
    pub fn content_type(&self) -> Option<String> {
        let v = self.get("Content-Type")?;
        let t = trim_lws(v.split(';').next().unwrap_or_default());
        (!t.is_empty()).then(|| t.to_ascii_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Contacts;

    fn req(text: &str) -> Request {
        match parse_message(text.as_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    const BASIC: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds\r\n\
        Max-Forwards: 70\r\n\
        To: Bob <sip:bob@example.com>\r\n\
        From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n\
        Call-ID: a84b4c76e66710@pc33.example.com\r\n\
        CSeq: 314159 INVITE\r\n\
        Contact: <sip:alice@pc33.example.com>\r\n\
        Content-Type: application/sdp\r\n\
        Content-Length: 4\r\n\r\nv=0\r\nJUNK";

    #[test]
    fn parses_a_basic_request() {
        let r = req(BASIC);
        assert_eq!(r.method, Method::Invite);
        assert_eq!(r.uri, Uri::sip(Some("bob"), "example.com", None));
        assert_eq!(r.body, b"v=0\r");
        let via = r.headers.top_via().unwrap();
        assert_eq!(via.transport, "UDP");
        assert_eq!(via.host, "pc33.example.com");
        assert_eq!(via.branch(), Some("z9hG4bK776asdhds"));
        assert_eq!(r.headers.from_addr().unwrap().tag(), Some("1928301774"));
        assert_eq!(
            r.headers.from_addr().unwrap().display.as_deref(),
            Some("Alice")
        );
        assert_eq!(r.headers.to_addr().unwrap().display.as_deref(), Some("Bob"));
        assert_eq!(r.headers.cseq().unwrap().seq, 314159);
        assert_eq!(r.headers.max_forwards().unwrap(), Some(70));
        assert_eq!(r.headers.content_type().as_deref(), Some("application/sdp"));
        assert_eq!(r.headers.call_id(), Some("a84b4c76e66710@pc33.example.com"));
    }

    #[test]
    fn bare_lf_and_leading_crlf_are_tolerated() {
        let text = BASIC.replace("\r\n", "\n");
        let r = req(&format!("\r\n\r\n{text}"));
        assert_eq!(r.headers.cseq().unwrap().seq, 314159);
        assert_eq!(r.body, b"v=0\n");
    }

    #[test]
    fn folding_is_unfolded_with_one_space() {
        let r = req("OPTIONS sip:a@b SIP/2.0\r\nSubject: one\r\n   two\r\n\tthree\r\nl: 0\r\n\r\n");
        assert_eq!(r.headers.get("s"), Some("one two three"));
    }

    #[test]
    fn content_length_errors() {
        let base = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n";
        let e =
            parse_message(format!("{base}Content-Length: 10\r\n\r\nabc").as_bytes()).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.reason.contains("Content-Length 10 larger"), "{e}");
        for cl in ["-1", "x", "", "99999999999999999999999"] {
            let m = format!("{base}Content-Length: {cl}\r\n\r\n");
            assert_eq!(parse_message(m.as_bytes()).unwrap_err().status, 400, "{cl}");
        }
        let m = format!("{base}l: 3\r\nContent-Length: 2\r\n\r\nabc");
        assert!(
            parse_message(m.as_bytes())
                .unwrap_err()
                .reason
                .contains("conflicting")
        );
        let m = format!("{base}l: 3\r\nContent-Length: 3\r\n\r\nabc");
        assert!(parse_message(m.as_bytes()).is_ok());
        // No Content-Length: the rest of the datagram.
        let m = format!("{base}\r\nabc\r\n");
        match parse_message(m.as_bytes()).unwrap() {
            Message::Request(r) => assert_eq!(r.body, b"abc\r\n"),
            _ => panic!(),
        }
    }

    #[test]
    fn request_line_is_strict() {
        let cases = [
            ("INVITE  sip:a@b SIP/2.0", 400),
            ("INVITE sip:a@b  SIP/2.0", 400),
            ("INVITE sip:a@b SIP/2.0 ", 400),
            ("INVITE <sip:a@b> SIP/2.0", 400),
            ("INVITE sip:a@b; lr SIP/2.0", 400),
            ("INVITE sip:a@b", 400),
            ("INVITE sip:a@b SIP/3.0", 505),
            ("INVITE sip:a@b HTTP/1.1", 400),
            ("INV@ITE sip:a@b SIP/2.0", 400),
        ];
        for (line, status) in cases {
            let m = format!("{line}\r\nl: 0\r\n\r\n");
            assert_eq!(
                parse_message(m.as_bytes()).unwrap_err().status,
                status,
                "{line}"
            );
        }
        assert!(parse_message(b"INVITE sip:a@b sip/2.0\r\n\r\n").is_ok());
    }

    #[test]
    fn status_line() {
        let ok = |l: &str| match parse_message(format!("{l}\r\n\r\n").as_bytes()) {
            Ok(Message::Response(r)) => Some((r.status, r.reason)),
            _ => None,
        };
        assert_eq!(ok("SIP/2.0 200 OK"), Some((200, "OK".into())));
        assert_eq!(ok("SIP/2.0 100 "), Some((100, String::new())));
        assert_eq!(ok("SIP/2.0 180"), Some((180, String::new())));
        assert_eq!(ok("SIP/2.0 099 x"), None);
        assert_eq!(ok("SIP/2.0 700 x"), None);
        assert_eq!(ok("SIP/2.0 4294967301 x"), None);
        assert_eq!(ok("SIP/2.0 20 x"), None);
        assert_eq!(ok("SIP/2.0"), None);
    }

    #[test]
    fn header_line_errors() {
        for h in ["Foo bar", ": x", "Fo o: x", "\u{e9}: x"] {
            let m = format!("OPTIONS sip:a@b SIP/2.0\r\n{h}\r\n\r\n");
            assert_eq!(parse_message(m.as_bytes()).unwrap_err().status, 400, "{h}");
        }
        let m = "OPTIONS sip:a@b SIP/2.0\r\n folded\r\nl: 0\r\n\r\n";
        assert!(parse_message(m.as_bytes()).is_err());
        assert!(parse_message(b"OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n").is_err());
    }

    #[test]
    fn non_utf8_values_are_kept_lossily() {
        let m = b"OPTIONS sip:a@b SIP/2.0\r\nX-Y: a\xffb\r\n\r\n";
        let r = match parse_message(m).unwrap() {
            Message::Request(r) => r,
            _ => panic!(),
        };
        assert_eq!(r.headers.get("X-Y"), Some("a\u{fffd}b"));
    }

    #[test]
    fn sip_uri_parts() {
        let u = parse_uri("SIP:alice:secret@[2001:db8::1]:5070;transport=tcp;lr?subject=x%20y")
            .unwrap();
        assert_eq!(u.scheme, "sip");
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.password.as_deref(), Some("secret"));
        assert_eq!(u.host, "[2001:db8::1]");
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.param("transport"), Some(Some("tcp")));
        assert_eq!(u.param("lr"), Some(None));
        assert_eq!(u.headers.as_deref(), Some("subject=x%20y"));
        let again: Uri = u.to_string().parse().unwrap();
        assert_eq!(again, u);

        let semi = parse_uri("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(
            semi.user_unescaped().as_deref(),
            Some("user;par=u@example.net")
        );
        assert_eq!(semi.host, "example.com");
        assert!(semi.params.is_empty());
    }

    #[test]
    fn other_uri_schemes() {
        let t = parse_uri("tel:+1-201-555-0123;phone-context=example.com").unwrap();
        assert_eq!(t.user.as_deref(), Some("+1-201-555-0123"));
        assert_eq!(t.param("phone-context"), Some(Some("example.com")));
        assert_eq!(
            t.to_string(),
            "tel:+1-201-555-0123;phone-context=example.com"
        );
        let o = parse_uri("soap.beep://192.0.2.103:3002").unwrap();
        assert_eq!(o.scheme, "soap.beep");
        assert_eq!(o.host, "//192.0.2.103:3002");
        assert!(!o.is_sip());
    }

    #[test]
    fn bad_uris() {
        for u in [
            "",
            "sip:",
            "nocolon",
            "1sip:a",
            "sip:a b@c",
            "sip:@host",
            "sip:a@",
            "sip:a@b:99999",
            "sip:a@b:x",
            "sip:a@b;;lr",
            "sip:a@b;x=",
            "sip:a@b@c",
            "sip:a@[zz]",
            "sip:<a@b>",
            "sip:a@b?",
        ] {
            assert!(parse_uri(u).is_err(), "{u}");
        }
    }

    #[test]
    fn name_addr_forms() {
        let n = parse_name_addr(
            "\"J Rosenberg \\\\\\\"\"   <sip:jdrosen@example.com>  ;  tag = 98asjd8",
        )
        .unwrap();
        assert_eq!(n.display.as_deref(), Some("J Rosenberg \\\""));
        assert_eq!(n.tag(), Some("98asjd8"));
        let again: NameAddr = n.to_string().parse().unwrap();
        assert_eq!(again, n);

        let n = parse_name_addr("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display.as_deref(), Some("caller"));

        let n = parse_name_addr("sip:+1972@gw1.example.net;unknownparam").unwrap();
        assert_eq!(n.param("unknownparam"), Some(None));
        assert!(n.uri.params.is_empty());

        let n = parse_name_addr("<sip:+1972@gw1.example.net;unknownparam>").unwrap();
        assert_eq!(n.uri.param("unknownparam"), Some(None));
        assert!(n.params.is_empty());

        let n = parse_name_addr("J\u{f6}rg M <sip:a@b>").unwrap();
        assert_eq!(n.display.as_deref(), Some("J\u{f6}rg M"));

        let n = parse_name_addr("A. Bell <sip:a@b>;p=\"x;y, z\"").unwrap();
        assert_eq!(n.display.as_deref(), Some("A. Bell"));
        assert_eq!(n.param("p"), Some(Some("\"x;y, z\"")));
    }

    #[test]
    fn bad_name_addrs() {
        for s in [
            "\"Mr. J. User <sip:j.user@example.com>",
            "Bell, Alexander <sip:a.g.bell@example.com>",
            "\"W\" < sip:t.watson@example.org >",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "\"Joe\" <sip:joe@example.org>;;;;",
            "<sip:a@b",
            "\"x\" sip:a@b",
            "<sip:a@b> junk",
            "",
        ] {
            assert!(parse_name_addr(s).is_err(), "{s}");
        }
    }

    #[test]
    fn via_lists() {
        let v = parse_via_list(
            "SIP  / 2.0  / TCP     spindle.example.com   ;  branch  =   z9hG4bK9ikj8  ,  \
             SIP  /    2.0   / UDP  192.168.255.111   ; branch= z9hG4bK30239",
        )
        .unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].transport, "TCP");
        assert_eq!(v[0].host, "spindle.example.com");
        assert_eq!(v[0].branch(), Some("z9hG4bK9ikj8"));
        assert_eq!(v[1].host, "192.168.255.111");
        assert_eq!(v[1].branch(), Some("z9hG4bK30239"));
        let v = parse_via_list("SIP/2.0/udp [::1]:5060;received=::2;rport").unwrap();
        assert_eq!(v[0].transport, "UDP");
        assert_eq!(v[0].host, "[::1]");
        assert_eq!(v[0].port, Some(5060));
        assert_eq!(v[0].param("received"), Some(Some("::2")));
        assert_eq!(v[0].param("rport"), Some(None));
        for bad in [
            "SIP/2.0/UDP 192.0.2.15;;,;,,",
            "",
            "SIP/2.0/UDP",
            "SIP/2.0 h",
            "SIP/7.0/UDP h",
            "SIP/2.0/UDP h:99999",
            "SIP/2.0/UDP h,",
        ] {
            assert!(parse_via_list(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn split_list_respects_quotes_and_angles() {
        assert_eq!(
            split_list(" \"a,\\\"b\" <sip:x,y@h>;p=1 , c,,"),
            vec!["\"a,\\\"b\" <sip:x,y@h>;p=1", "c", "", ""]
        );
        assert!(split_list("  ").is_empty());
    }

    #[test]
    fn typed_scalars() {
        let r = req(
            "REGISTER sip:h SIP/2.0\r\nCSeq: 0009\r\n  REGISTER\r\nMax-Forwards: 0068\r\n\
             Expires: 99999999999\r\nContact: *\r\nContent-Type: Application/SDP ; x=y\r\nl:0\r\n\r\n",
        );
        assert_eq!(
            r.headers.cseq().unwrap(),
            CSeq {
                seq: 9,
                method: Method::Register
            }
        );
        assert_eq!(r.headers.max_forwards().unwrap(), Some(68));
        assert_eq!(r.headers.expires(), None);
        assert_eq!(r.headers.contacts().unwrap(), Some(Contacts::Star));
        assert_eq!(r.headers.content_type().as_deref(), Some("application/sdp"));
        assert!(parse_cseq("36893488147419103232 REGISTER").is_err());
        assert!(parse_cseq("1INVITE").is_err());
        assert!(parse_cseq("1 INVITE x").is_err());
        assert_eq!(parse_cseq("4294967295 BYE").unwrap().seq, u32::MAX);
        let r = req("OPTIONS sip:h SIP/2.0\r\nMax-Forwards: 300\r\nContact: *, <sip:a@b>\r\n\r\n");
        assert!(r.headers.max_forwards().is_err());
        assert!(r.headers.contacts().is_err());
        let r = req("OPTIONS sip:h SIP/2.0\r\n\r\n");
        assert_eq!(r.headers.contacts().unwrap(), None);
        assert!(r.headers.top_via().is_err());
        assert_eq!(r.headers.vias().unwrap(), vec![]);
    }

    #[test]
    fn reject_response_salvages_headers() {
        let m = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n\
            To: <sip:a@b>\r\nFrom: <sip:c@d>;tag=1\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\
            Subject: dropped\r\nContent-Length: 9999\r\n\r\nbody";
        let e = parse_message(m).unwrap_err();
        let r = reject_response(m, &e).unwrap();
        assert_eq!(r.status, 400);
        assert_eq!(r.headers.get("Via"), Some("SIP/2.0/UDP h;branch=z9hG4bKx"));
        assert!(r.headers.to_addr().unwrap().tag().is_some());
        assert_eq!(r.headers.get("Subject"), None);
        let reason = r.headers.get("Reason").unwrap();
        assert!(
            reason.starts_with("SIP;cause=400;text=\"Content-Length 9999 larger"),
            "{reason}"
        );
        // Deterministic tag: a retransmission gets the same response.
        assert_eq!(reject_response(m, &e), Some(r));
        // No Via: nothing to answer.
        assert_eq!(
            reject_response(b"INVITE sip:a@b SIP/2.0\r\nl: 9\r\n\r\n", &e),
            None
        );
        // Responses are never answered.
        assert_eq!(
            reject_response(b"SIP/2.0 999 x\r\nVia: SIP/2.0/UDP h\r\n\r\n", &e),
            None
        );
    }

    #[test]
    fn reason_header_escapes() {
        assert_eq!(
            reason_header(400, "a\"b\\c\r"),
            "SIP;cause=400;text=\"a\\\"b\\\\c \""
        );
    }
}
