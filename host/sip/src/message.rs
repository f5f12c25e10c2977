//! SIP message types (RFC 3261 section 7): requests, responses, headers,
//! and the typed views of the headers the host reads.
//!
//! The types own their text. Header values are kept as received (after
//! unfolding), so that a proxy or B2BUA can pass unknown headers on untouched;
//! the typed accessors on [`Headers`] parse on demand.

use std::fmt;

/// A SIP method. Extension methods are kept verbatim (case-sensitive, RFC 3261 7.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Register,
    Options,
    Info,
    Notify,
    Subscribe,
    Refer,
    Message,
    Update,
    Prack,
    Publish,
    /// Any other token.
    Extension(String),
}

impl Method {
    /// Parses a method token. Matching is case-sensitive, as RFC 3261 requires.
    pub fn from_token(s: &str) -> Method {
        match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "NOTIFY" => Method::Notify,
            "SUBSCRIBE" => Method::Subscribe,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "PUBLISH" => Method::Publish,
            other => Method::Extension(other.to_string()),
        }
    }

    /// The method token.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Notify => "NOTIFY",
            Method::Subscribe => "SUBSCRIBE",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Publish => "PUBLISH",
            Method::Extension(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A generic `name[=value]` parameter list, in order.
pub type Params = Vec<(String, Option<String>)>;

/// Finds a parameter by name (case-insensitive). `Some(None)` is a flag parameter.
pub fn find_param<'a>(params: &'a Params, name: &str) -> Option<Option<&'a str>> {
    params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_deref())
}

/// Sets (or replaces) a parameter.
pub fn set_param(params: &mut Params, name: &str, value: Option<String>) {
    if let Some(p) = params
        .iter_mut()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
    {
        p.1 = value;
    } else {
        params.push((name.to_string(), value));
    }
}

fn write_params(f: &mut fmt::Formatter<'_>, params: &Params) -> fmt::Result {
    for (n, v) in params {
        match v {
            Some(v) => write!(f, ";{n}={v}")?,
            None => write!(f, ";{n}")?,
        }
    }
    Ok(())
}

/// A URI as it appears in a Request-URI or a name-addr.
///
/// For `sip:`/`sips:`/`tel:` the parts are split; any other scheme keeps its
/// text in `host` (the "opaque" part) with everything else empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Uri {
    /// Lower-cased scheme (`sip`, `sips`, `tel`, ...).
    pub scheme: String,
    /// User part, still escaped as received.
    pub user: Option<String>,
    /// Password part, still escaped.
    pub password: Option<String>,
    /// Host (a name, an IPv4 address or a bracketed IPv6 reference).
    pub host: String,
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp;lr`).
    pub params: Params,
    /// The escaped headers part after `?`, without the `?`.
    pub headers: Option<String>,
}

impl Uri {
    /// A `sip:user@host[:port]` URI.
    pub fn sip(user: Option<&str>, host: &str, port: Option<u16>) -> Uri {
        Uri {
            scheme: "sip".into(),
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
            ..Uri::default()
        }
    }

    /// True for `sip` and `sips`.
    pub fn is_sip(&self) -> bool {
        self.scheme == "sip" || self.scheme == "sips"
    }

    /// A URI parameter by name.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }

    /// The user part with `%HH` escapes decoded once (RFC 3261 19.1.2).
    pub fn user_unescaped(&self) -> Option<String> {
        self.user.as_deref().map(unescape)
    }

    /// `host[:port]`.
    pub fn host_port(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }
}

/// Decodes `%HH` escapes once; invalid escapes are kept literally.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme)?;
        if !matches!(self.scheme.as_str(), "sip" | "sips" | "tel") {
            return f.write_str(&self.host);
        }
        if let Some(u) = &self.user {
            f.write_str(u)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            if self.scheme != "tel" {
                f.write_str("@")?;
            }
        }
        f.write_str(&self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write_params(f, &self.params)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

/// `[display-name] <uri> *(;param)` (From, To, Contact, Route, ...).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NameAddr {
    /// The display name without quotes (quoted-pairs resolved).
    pub display: Option<String>,
    pub uri: Uri,
    /// Header parameters after the URI (`tag`, `expires`, `q`, ...).
    pub params: Params,
}

impl NameAddr {
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr {
            display: None,
            uri,
            params: Vec::new(),
        }
    }
    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        find_param(&self.params, "tag").flatten()
    }
    /// A header parameter by name.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            f.write_str("\"")?;
            for c in d.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\" ")?;
        }
        write!(f, "<{}>", self.uri)?;
        write_params(f, &self.params)
    }
}

/// One Via value (RFC 3261 20.42).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Upper-cased transport (`UDP`, `TCP`, ...).
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
}

impl Via {
    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&str> {
        find_param(&self.params, "branch").flatten()
    }
    /// A parameter by name.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }
    /// Sets or replaces a parameter.
    pub fn set_param(&mut self, name: &str, value: Option<String>) {
        set_param(&mut self.params, name, value)
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write_params(f, &self.params)
    }
}

/// CSeq (RFC 3261 20.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// The Contact header of a REGISTER: `*` or a list of addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contacts {
    Star,
    List(Vec<NameAddr>),
}

/// Maps a compact header form (RFC 3261 7.3.3) and any case to the canonical name.
pub fn canonical_name(name: &str) -> &str {
    const NAMES: &[(&str, &str)] = &[
        ("i", "Call-ID"),
        ("m", "Contact"),
        ("e", "Content-Encoding"),
        ("l", "Content-Length"),
        ("c", "Content-Type"),
        ("f", "From"),
        ("s", "Subject"),
        ("k", "Supported"),
        ("t", "To"),
        ("v", "Via"),
        ("o", "Event"),
        ("r", "Refer-To"),
        ("u", "Allow-Events"),
        ("call-id", "Call-ID"),
        ("contact", "Contact"),
        ("content-encoding", "Content-Encoding"),
        ("content-length", "Content-Length"),
        ("content-type", "Content-Type"),
        ("from", "From"),
        ("subject", "Subject"),
        ("supported", "Supported"),
        ("to", "To"),
        ("via", "Via"),
        ("cseq", "CSeq"),
        ("max-forwards", "Max-Forwards"),
        ("expires", "Expires"),
        ("min-expires", "Min-Expires"),
        ("www-authenticate", "WWW-Authenticate"),
        ("authorization", "Authorization"),
        ("proxy-authenticate", "Proxy-Authenticate"),
        ("proxy-authorization", "Proxy-Authorization"),
        ("route", "Route"),
        ("record-route", "Record-Route"),
        ("require", "Require"),
        ("proxy-require", "Proxy-Require"),
        ("unsupported", "Unsupported"),
        ("allow", "Allow"),
        ("accept", "Accept"),
        ("user-agent", "User-Agent"),
        ("server", "Server"),
        ("reason", "Reason"),
        ("retry-after", "Retry-After"),
        ("event", "Event"),
        ("subscription-state", "Subscription-State"),
        ("diversion", "Diversion"),
        ("history-info", "History-Info"),
        ("warning", "Warning"),
        ("date", "Date"),
    ];
    NAMES
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
        .unwrap_or(name)
}

/// Header fields in order. Names are stored in canonical form
/// ([`canonical_name`]), values as received after unfolding. A header that
/// appeared as a comma-separated list stays one entry; the typed accessors split.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn new() -> Headers {
        Headers(Vec::new())
    }
    /// The first value of a header (compact forms and any case accepted).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_all(name).next()
    }
    /// Every value of a header, in order (one per header line).
    pub fn get_all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let name = canonical_name(name).to_string();
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, v)| v.as_str())
    }
    /// How many header lines carry this name.
    pub fn count(&self, name: &str) -> usize {
        self.get_all(name).count()
    }
    /// Appends a header line.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.0
            .push((canonical_name(name).to_string(), value.into()));
    }
    /// Inserts a header line before all others (used for Via).
    pub fn push_front(&mut self, name: &str, value: impl Into<String>) {
        self.0
            .insert(0, (canonical_name(name).to_string(), value.into()));
    }
    /// Replaces every line of this header by one value (appends if absent,
    /// keeps the position of the first line otherwise).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let name = canonical_name(name).to_string();
        let value = value.into();
        match self
            .0
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            Some(i) => {
                self.0[i].1 = value;
                let mut j = i + 1;
                while j < self.0.len() {
                    if self.0[j].0.eq_ignore_ascii_case(&name) {
                        self.0.remove(j);
                    } else {
                        j += 1;
                    }
                }
            }
            None => self.0.push((name, value)),
        }
    }
    /// Removes every line of this header.
    pub fn remove(&mut self, name: &str) {
        let name = canonical_name(name).to_string();
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
    }
    /// All header lines, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// A request or a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

impl Message {
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }
    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            Message::Request(r) => &mut r.headers,
            Message::Response(r) => &mut r.headers,
        }
    }
    /// The wire form; Content-Length is set from the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

fn write_wire(start: String, headers: &Headers, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(start.len() + 64 * headers.0.len() + body.len() + 32);
    out.extend_from_slice(start.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (n, v) in headers.iter() {
        if n == "Content-Length" {
            continue;
        }
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, uri: Uri) -> Request {
        Request {
            method,
            uri,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }
    /// The wire form; Content-Length is set from the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        write_wire(
            format!("{} {} SIP/2.0", self.method, self.uri),
            &self.headers,
            &self.body,
        )
    }
}

impl Response {
    /// A response with no headers and no body.
    pub fn new(status: u16, reason: impl Into<String>) -> Response {
        Response {
            status,
            reason: reason.into(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// A response to `req` (RFC 3261 8.2.6.2): copies every Via, From, To,
    /// Call-ID and CSeq. The caller adds a To tag where one is needed.
    pub fn for_request(req: &Request, status: u16, reason: impl Into<String>) -> Response {
        let mut r = Response::new(status, reason);
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            for v in req.headers.get_all(name) {
                r.headers.push(name, v);
            }
        }
        r
    }

    /// The wire form; Content-Length is set from the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        write_wire(
            format!("SIP/2.0 {} {}", self.status, self.reason),
            &self.headers,
            &self.body,
        )
    }
}
