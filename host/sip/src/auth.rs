//! Digest authentication, server side (RFC 3261 section 22, RFC 2617,
//! RFC 7616, RFC 8760), plus the client computation used by tests and trunks.
//!
//! What is here:
//! - [`Challenge`]: the `WWW-Authenticate` / `Proxy-Authenticate` value a
//!   registrar or proxy sends with a 401/407 (always `qop="auth"`).
//! - [`parse_authorization`]: parses an `Authorization` value into
//!   [`Credentials`], tolerating any parameter order and linear white space.
//! - [`NonceManager`]: stateless nonces. A nonce is a timestamp, a random salt
//!   and an HMAC-SHA256 over both under a server secret, so the host need not
//!   remember the nonces it issued (a REGISTER flood cannot grow memory) and an
//!   expired but authentic nonce is told apart from a forged one
//!   ([`NonceState::Stale`] → answer 401 with `stale=true`, the client retries
//!   without asking the user again).
//! - [`ha1`] and [`verify`]: a credential store keeps `HA1 = H(user:realm:pw)`
//!   rather than the password; `verify` recomputes the response for `qop=auth`
//!   and the RFC 2069 form without qop, and compares in constant time.
//!
//! `auth-int` and the `-sess` algorithms are not supported: SIP phones do not
//! use them in practice, and they are refused rather than mis-verified.
//!
//! Replay of a valid nonce within its lifetime is not prevented here (that
//! would need per-nonce state for `nc`); keep the lifetime short.

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest, Sha256};

/// A digest algorithm (RFC 7616 section 6.1; RFC 8760 adds SHA-256 to SIP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// `MD5`, the default when a challenge or credential names none.
    #[default]
    Md5,
    /// `SHA-256`.
    Sha256,
}

impl Algorithm {
    /// Parses an algorithm token, case-insensitively. `-sess` variants and
    /// unknown tokens give `None`.
    pub fn from_token(s: &str) -> Option<Algorithm> {
        if s.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if s.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    /// The canonical token (`MD5`, `SHA-256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Lower-case hex digest of `data` with this algorithm.
    fn hex_digest(self, parts: &[&str]) -> String {
        fn run<D: Digest>(parts: &[&str]) -> String {
            let mut h = D::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    h.update(b":");
                }
                h.update(p.as_bytes());
            }
            hex::encode(h.finalize())
        }
        match self {
            Algorithm::Md5 => run::<Md5>(parts),
            Algorithm::Sha256 => run::<Sha256>(parts),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Writes `s` as a quoted-string, escaping `"` and `\`.
fn write_quoted(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        if c == '"' || c == '\\' {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    f.write_char('"')
}

/// A digest challenge. `Display` gives the `WWW-Authenticate` (or
/// `Proxy-Authenticate`) header value:
/// `Digest realm="..", nonce="..", [opaque="..", ]algorithm=MD5, qop="auth"[, stale=true]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// Set when the client's nonce was authentic but expired (RFC 2617 3.2.1).
    pub stale: bool,
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest realm=")?;
        write_quoted(f, &self.realm)?;
        f.write_str(", nonce=")?;
        write_quoted(f, &self.nonce)?;
        if let Some(o) = &self.opaque {
            f.write_str(", opaque=")?;
            write_quoted(f, o)?;
        }
        write!(f, ", algorithm={}, qop=\"auth\"", self.algorithm)?;
        if self.stale {
            f.write_str(", stale=true")?;
        }
        Ok(())
    }
}

/// The digest credentials of an `Authorization` / `Proxy-Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    /// The `uri` directive (the digest-uri, hashed as given).
    pub uri: String,
    /// The request-digest as sent (hex).
    pub response: String,
    /// `MD5` when absent.
    pub algorithm: Algorithm,
    pub cnonce: Option<String>,
    /// The nonce count, as sent (8 hex digits).
    pub nc: Option<String>,
    pub qop: Option<String>,
    pub opaque: Option<String>,
}

/// Why an `Authorization` value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// The scheme is not `Digest` (for example `Basic`).
    UnknownScheme(String),
    /// A required directive is missing.
    Missing(&'static str),
    /// The algorithm is not MD5 or SHA-256.
    UnsupportedAlgorithm(String),
    /// The value does not follow the grammar (what went wrong).
    Malformed(&'static str),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::UnknownScheme(s) => write!(f, "unknown authentication scheme {s:?}"),
            AuthError::Missing(p) => write!(f, "digest credentials lack the {p} directive"),
            AuthError::UnsupportedAlgorithm(a) => write!(f, "unsupported digest algorithm {a:?}"),
            AuthError::Malformed(why) => write!(f, "malformed digest credentials: {why}"),
        }
    }
}

impl std::error::Error for AuthError {}

fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// RFC 3261 `token` characters.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// A small cursor over the header value.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn skip_lws(&mut self) {
        while self.i < self.s.len() && is_lws(self.s[self.i]) {
            self.i += 1;
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn token(&mut self) -> &'a [u8] {
        let start = self.i;
        while self.i < self.s.len() && is_token_char(self.s[self.i]) {
            self.i += 1;
        }
        &self.s[start..self.i]
    }
    /// A quoted-string starting at the opening quote; escapes resolved.
    fn quoted(&mut self) -> Result<String, AuthError> {
        self.i += 1; // opening quote
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(AuthError::Malformed("unterminated quoted-string")),
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => {
                    let c = self
                        .s
                        .get(self.i + 1)
                        .copied()
                        .ok_or(AuthError::Malformed("dangling escape"))?;
                    out.push(c);
                    self.i += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| AuthError::Malformed("quoted-string is not UTF-8"))
    }
}

/// Parses an `Authorization` (or `Proxy-Authorization`) header value.
///
/// The scheme is matched case-insensitively; directive names too. Values
/// may be quoted-strings (escapes resolved) or tokens, in any order, with
/// linear white space around `=` and `,`. Unknown directives are ignored;
/// a directive given twice is an error. `username`, `realm`, `nonce`, `uri`
/// and `response` are required, and `cnonce` and `nc` when `qop` is present.
pub fn parse_authorization(value: &str) -> Result<Credentials, AuthError> {
    let mut c = Cursor {
        s: value.as_bytes(),
        i: 0,
    };
    c.skip_lws();
    let scheme = c.token();
    if !scheme.eq_ignore_ascii_case(b"Digest") {
        let s = String::from_utf8_lossy(scheme).into_owned();
        return Err(AuthError::UnknownScheme(s));
    }
    if !c.peek().is_some_and(is_lws) {
        return Err(AuthError::Malformed("no space after the scheme"));
    }

    let mut username = None;
    let mut realm = None;
    let mut nonce = None;
    let mut uri = None;
    let mut response = None;
    let mut algorithm = None;
    let mut cnonce = None;
    let mut nc = None;
    let mut qop = None;
    let mut opaque = None;

    loop {
        c.skip_lws();
        if c.peek().is_none() {
            break;
        }
        let name = c.token();
        if name.is_empty() {
            return Err(AuthError::Malformed("expected a directive name"));
        }
        c.skip_lws();
        if c.peek() != Some(b'=') {
            return Err(AuthError::Malformed("expected '=' after a directive name"));
        }
        c.i += 1;
        c.skip_lws();
        let val = if c.peek() == Some(b'"') {
            c.quoted()?
        } else {
            let t = c.token();
            if t.is_empty() {
                return Err(AuthError::Malformed("empty directive value"));
            }
            // Tokens are ASCII by construction.
            String::from_utf8_lossy(t).into_owned()
        };
        let slot = match name.to_ascii_lowercase().as_slice() {
            b"username" => &mut username,
            b"realm" => &mut realm,
            b"nonce" => &mut nonce,
            b"uri" => &mut uri,
            b"response" => &mut response,
            b"algorithm" => &mut algorithm,
            b"cnonce" => &mut cnonce,
            b"nc" => &mut nc,
            b"qop" => &mut qop,
            b"opaque" => &mut opaque,
            _ => &mut None,
        };
        if slot.is_some() {
            return Err(AuthError::Malformed("a directive appears twice"));
        }
        *slot = Some(val);
        c.skip_lws();
        match c.peek() {
            None => break,
            Some(b',') => c.i += 1,
            Some(_) => return Err(AuthError::Malformed("expected ',' between directives")),
        }
    }

    let algorithm = match algorithm {
        None => Algorithm::Md5,
        Some(a) => Algorithm::from_token(&a).ok_or(AuthError::UnsupportedAlgorithm(a))?,
    };
    if qop.is_some() {
        if cnonce.is_none() {
            return Err(AuthError::Missing("cnonce"));
        }
        if nc.is_none() {
            return Err(AuthError::Missing("nc"));
        }
    }
    Ok(Credentials {
        username: username.ok_or(AuthError::Missing("username"))?,
        realm: realm.ok_or(AuthError::Missing("realm"))?,
        nonce: nonce.ok_or(AuthError::Missing("nonce"))?,
        uri: uri.ok_or(AuthError::Missing("uri"))?,
        response: response.ok_or(AuthError::Missing("response"))?,
        algorithm,
        cnonce,
        nc,
        qop,
        opaque,
    })
}

/// `HA1 = H(username ":" realm ":" password)`, lower-case hex. A credential
/// store may keep this instead of the password (one per algorithm).
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> String {
    algorithm.hex_digest(&[username, realm, password])
}

/// The request-digest `creds` should carry for `method` and `ha1`, or
/// `None` for an unsupported qop (anything but `auth` or absent).
fn request_digest(creds: &Credentials, method: &str, ha1: &str) -> Option<String> {
    let alg = creds.algorithm;
    let ha2 = alg.hex_digest(&[method, &creds.uri]);
    match creds.qop.as_deref() {
        None => Some(alg.hex_digest(&[ha1, &creds.nonce, &ha2])),
        Some(q) if q.eq_ignore_ascii_case("auth") => Some(alg.hex_digest(&[
            ha1,
            &creds.nonce,
            creds.nc.as_deref()?,
            creds.cnonce.as_deref()?,
            q,
            &ha2,
        ])),
        Some(_) => None,
    }
}

/// Equality of two byte strings whose running time depends only on their
/// lengths (digests have public, fixed lengths).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    diff == 0
}

/// Checks `creds.response` against the response computed from `ha1` (the
/// hex HA1 for `creds.algorithm`, see [`ha1`]) and the request `method`.
///
/// Handles `qop=auth` and the RFC 2069 form without qop. Any other qop
/// gives `false`. Hex case is ignored; the comparison is constant-time.
/// Nonce freshness is checked separately ([`NonceManager::check`]).
pub fn verify(creds: &Credentials, method: &str, ha1: &str) -> bool {
    let ha1 = ha1.to_ascii_lowercase();
    let Some(expected) = request_digest(creds, method, &ha1) else {
        return false;
    };
    let got = creds.response.to_ascii_lowercase();
    ct_eq(expected.as_bytes(), got.as_bytes())
}

/// The `Authorization` value a client sends in answer to `challenge`
/// (always `qop=auth`, as our challenges offer). `nc` is the nonce count
/// for this nonce, starting at 1.
pub fn client_authorization(
    challenge: &Challenge,
    method: &str,
    uri: &str,
    username: &str,
    password: &str,
    cnonce: &str,
    nc: u32,
) -> String {
    use fmt::Write;
    let alg = challenge.algorithm;
    let nc = format!("{nc:08x}");
    let ha1 = ha1(alg, username, &challenge.realm, password);
    let ha2 = alg.hex_digest(&[method, uri]);
    let response = alg.hex_digest(&[&ha1, &challenge.nonce, &nc, cnonce, "auth", &ha2]);
    let mut out = String::with_capacity(256);
    // Writing to a String cannot fail.
    let _ = (|| -> fmt::Result {
        out.write_str("Digest username=")?;
        write_quoted(&mut out, username)?;
        out.write_str(", realm=")?;
        write_quoted(&mut out, &challenge.realm)?;
        out.write_str(", nonce=")?;
        write_quoted(&mut out, &challenge.nonce)?;
        out.write_str(", uri=")?;
        write_quoted(&mut out, uri)?;
        write!(out, ", response=\"{response}\", algorithm={alg}, cnonce=")?;
        write_quoted(&mut out, cnonce)?;
        write!(out, ", nc={nc}, qop=auth")?;
        if let Some(o) = &challenge.opaque {
            out.write_str(", opaque=")?;
            write_quoted(&mut out, o)?;
        }
        Ok(())
    })();
    out
}

/// What [`NonceManager::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceState {
    /// Issued by us and not expired.
    Valid,
    /// Issued by us but older than the lifetime: challenge again with `stale=true`.
    Stale,
    /// Not issued by us (forged, tampered, malformed, or from the future).
    Invalid,
}

type HmacSha256 = Hmac<Sha256>;

/// Length of the hex timestamp, salt and MAC parts of a nonce.
const TS_HEX: usize = 16;
const SALT_HEX: usize = 16;
const MAC_BYTES: usize = 16;
const NONCE_LEN: usize = TS_HEX + SALT_HEX + 2 * MAC_BYTES;
/// How far in the future a nonce's timestamp may be (clock adjustments).
const FUTURE_SKEW_SECS: u64 = 60;

/// Issues and checks stateless nonces:
/// `hex(timestamp) hex(salt) hex(HMAC-SHA256(secret, timestamp || salt)[..16])`,
/// 64 hex characters.
pub struct NonceManager {
    mac: HmacSha256,
    lifetime: Duration,
}

impl fmt::Debug for NonceManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("NonceManager")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl NonceManager {
    /// A manager with a 32-byte secret (random per process, or shared by a
    /// cluster) and the time a nonce stays [`NonceState::Valid`].
    pub fn new(secret: [u8; 32], lifetime: Duration) -> NonceManager {
        // HMAC pads keys shorter than the 64-byte block with zeros, so this
        // is HMAC under `secret` itself, without a fallible constructor.
        let mut key = [0u8; 64];
        key[..32].copy_from_slice(&secret);
        let mac = <HmacSha256 as hmac::digest::KeyInit>::new(&key.into());
        NonceManager { mac, lifetime }
    }

    fn tag(&self, ts: u64, salt: u64) -> [u8; 32] {
        let mut m = self.mac.clone();
        m.update(&ts.to_be_bytes());
        m.update(&salt.to_be_bytes());
        m.finalize().into_bytes().into()
    }

    /// A fresh nonce stamped with `now_unix_secs`.
    pub fn issue(&self, now_unix_secs: u64) -> String {
        let salt: u64 = rand::random();
        let tag = self.tag(now_unix_secs, salt);
        let mut s = format!("{now_unix_secs:016x}{salt:016x}");
        s.push_str(&hex::encode(&tag[..MAC_BYTES]));
        s
    }

    /// Whether `nonce` is one of ours and still fresh at `now_unix_secs`.
    pub fn check(&self, nonce: &str, now_unix_secs: u64) -> NonceState {
        if nonce.len() != NONCE_LEN || !nonce.is_ascii() {
            return NonceState::Invalid;
        }
        let (ts_hex, rest) = nonce.split_at(TS_HEX);
        let (salt_hex, mac_hex) = rest.split_at(SALT_HEX);
        let (Ok(ts), Ok(salt)) = (
            u64::from_str_radix(ts_hex, 16),
            u64::from_str_radix(salt_hex, 16),
        ) else {
            return NonceState::Invalid;
        };
        // from_str_radix accepts a leading '+'; insist on pure hex so that
        // one nonce has one spelling.
        if !nonce
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return NonceState::Invalid;
        }
        let mut got = [0u8; MAC_BYTES];
        if hex::decode_to_slice(mac_hex, &mut got).is_err() {
            return NonceState::Invalid;
        }
        let tag = self.tag(ts, salt);
        if !ct_eq(&tag[..MAC_BYTES], &got) {
            return NonceState::Invalid;
        }
        if ts > now_unix_secs.saturating_add(FUTURE_SKEW_SECS) {
            return NonceState::Invalid;
        }
        if now_unix_secs.saturating_sub(ts) > self.lifetime.as_secs() {
            NonceState::Stale
        } else {
            NonceState::Valid
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 section 3.5.
    const RFC2617: &str = r#"Digest username="Mufasa",
                 realm="testrealm@host.com",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 uri="/dir/index.html",
                 qop=auth,
                 nc=00000001,
                 cnonce="0a4f113b",
                 response="6629fae49393a05397450978507c4ef1",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41""#;

    #[test]
    fn rfc2617_example_verifies() {
        let c = parse_authorization(RFC2617).unwrap();
        assert_eq!(c.username, "Mufasa");
        assert_eq!(c.realm, "testrealm@host.com");
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert_eq!(c.nc.as_deref(), Some("00000001"));
        assert_eq!(
            c.opaque.as_deref(),
            Some("5ccc069c403ebaf9f0171e9517f40e41")
        );
        assert_eq!(c.algorithm, Algorithm::Md5);
        let h = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        assert!(verify(&c, "GET", &h));
        assert!(!verify(&c, "POST", &h));
        let wrong = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "circle of life",
        );
        assert!(!verify(&c, "GET", &wrong));
    }

    /// RFC 7616 section 3.9.1, the SHA-256 variant.
    #[test]
    fn rfc7616_sha256_example_verifies() {
        let v = r#"Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
        let c = parse_authorization(v).unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha256);
        let h = ha1(
            Algorithm::Sha256,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        );
        assert!(verify(&c, "GET", &h));
        // The MD5 HA1 of the same password does not verify a SHA-256 response.
        let h_md5 = ha1(
            Algorithm::Md5,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        );
        assert!(!verify(&c, "GET", &h_md5));
    }

    /// RFC 7616 section 3.9.1, the MD5 variant, via client_authorization.
    #[test]
    fn client_authorization_matches_rfc7616_md5_vector() {
        let ch = Challenge {
            realm: "http-auth@example.org".into(),
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v".into(),
            opaque: Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS".into()),
            algorithm: Algorithm::Md5,
            stale: false,
        };
        let v = client_authorization(
            &ch,
            "GET",
            "/dir/index.html",
            "Mufasa",
            "Circle of Life",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            1,
        );
        let c = parse_authorization(&v).unwrap();
        assert_eq!(c.response, "8ca523f5e9506fed4657c9700eebdbec");
        assert_eq!(c.opaque, ch.opaque);
    }

    #[test]
    fn round_trip_for_both_algorithms_and_wrong_password_fails() {
        for alg in [Algorithm::Md5, Algorithm::Sha256] {
            let ch = Challenge {
                realm: "acme.example".into(),
                nonce: "abc".into(),
                opaque: None,
                algorithm: alg,
                stale: false,
            };
            let v = client_authorization(
                &ch,
                "REGISTER",
                "sip:acme.example",
                "al\"ice",
                "s3cret",
                "xyz",
                7,
            );
            let c = parse_authorization(&v).unwrap();
            assert_eq!(c.username, "al\"ice");
            assert_eq!(c.nc.as_deref(), Some("00000007"));
            assert_eq!(c.algorithm, alg);
            let good = ha1(alg, "al\"ice", "acme.example", "s3cret");
            let bad = ha1(alg, "al\"ice", "acme.example", "s3cret!");
            assert!(verify(&c, "REGISTER", &good));
            assert!(verify(&c, "REGISTER", &good.to_uppercase()));
            assert!(!verify(&c, "REGISTER", &bad));
            assert!(!verify(&c, "INVITE", &good));
        }
    }

    #[test]
    fn rfc2069_form_without_qop_verifies() {
        // RFC 2069: response = H(HA1:nonce:HA2).
        let h = ha1(Algorithm::Md5, "bob", "r", "pw");
        let ha2 = Algorithm::Md5.hex_digest(&["INVITE", "sip:x@r"]);
        let resp = Algorithm::Md5.hex_digest(&[&h, "n1", &ha2]);
        let v = format!(
            "digest USERNAME = \"bob\" ,realm=\"r\",nonce=\"n1\",uri=\"sip:x@r\",response=\"{}\"",
            resp.to_uppercase()
        );
        let c = parse_authorization(&v).unwrap();
        assert_eq!(c.qop, None);
        assert!(verify(&c, "INVITE", &h));
        assert!(!verify(
            &c,
            "INVITE",
            &ha1(Algorithm::Md5, "bob", "r", "px")
        ));
    }

    #[test]
    fn unsupported_qop_does_not_verify() {
        let h = ha1(Algorithm::Md5, "bob", "r", "pw");
        let mut c = parse_authorization(
            "Digest username=\"bob\",realm=\"r\",nonce=\"n\",uri=\"u\",response=\"00\",qop=auth-int,nc=00000001,cnonce=\"c\"",
        )
        .unwrap();
        assert!(!verify(&c, "INVITE", &h));
        // Even when the response is the one `auth` would give.
        let ha2 = Algorithm::Md5.hex_digest(&["INVITE", "u"]);
        c.response = Algorithm::Md5.hex_digest(&[&h, "n", "00000001", "c", "auth", &ha2]);
        assert!(!verify(&c, "INVITE", &h));
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            parse_authorization("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
            Err(AuthError::UnknownScheme("Basic".into()))
        );
        assert_eq!(
            parse_authorization("Digest realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\""),
            Err(AuthError::Missing("username"))
        );
        assert_eq!(
            parse_authorization(
                "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\", qop=auth, nc=00000001"
            ),
            Err(AuthError::Missing("cnonce"))
        );
        assert_eq!(
            parse_authorization(
                "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\", algorithm=MD5-sess"
            ),
            Err(AuthError::UnsupportedAlgorithm("MD5-sess".into()))
        );
        assert!(matches!(
            parse_authorization("Digestusername=\"a\""),
            Err(AuthError::UnknownScheme(_))
        ));
        for bad in [
            "Digest username=\"a",
            "Digest username=\"a\\",
            "Digest username",
            "Digest username=",
            "Digest username=\"a\" realm=\"r\"",
            "Digest username=\"a\", username=\"b\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\"",
            "Digest =\"a\"",
        ] {
            assert!(
                matches!(parse_authorization(bad), Err(AuthError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn parse_accepts_lenient_forms() {
        let c = parse_authorization(
            "  DIGEST\tresponse=abcdef , uri = \"sip:a@b\",nonce=\"n\\\"q\", Realm=\"r\",username=u, algorithm=sha-256, qop=\"auth\", cnonce=c, nc=00000002, foo=\"bar\",",
        )
        .unwrap();
        assert_eq!(c.username, "u");
        assert_eq!(c.nonce, "n\"q");
        assert_eq!(c.uri, "sip:a@b");
        assert_eq!(c.response, "abcdef");
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert_eq!(c.cnonce.as_deref(), Some("c"));
    }

    #[test]
    fn parse_never_panics_on_garbage() {
        let inputs: &[&[u8]] = &[
            b"",
            b"Digest",
            b"Digest ",
            b"Digest ,,,",
            b"Digest a=\"\xc3",
            b"\xff\xfe",
        ];
        for i in inputs {
            let s = String::from_utf8_lossy(i);
            let _ = parse_authorization(&s);
        }
        // Every prefix of a valid value.
        for n in 0..RFC2617.len() {
            if RFC2617.is_char_boundary(n) {
                let _ = parse_authorization(&RFC2617[..n]);
            }
        }
    }

    #[test]
    fn challenge_display() {
        let mut ch = Challenge {
            realm: "pb\"x".into(),
            nonce: "n1".into(),
            opaque: None,
            algorithm: Algorithm::Md5,
            stale: false,
        };
        assert_eq!(
            ch.to_string(),
            r#"Digest realm="pb\"x", nonce="n1", algorithm=MD5, qop="auth""#
        );
        ch.stale = true;
        ch.algorithm = Algorithm::Sha256;
        ch.opaque = Some("o".into());
        assert_eq!(
            ch.to_string(),
            r#"Digest realm="pb\"x", nonce="n1", opaque="o", algorithm=SHA-256, qop="auth", stale=true"#
        );
    }

    #[test]
    fn algorithm_tokens() {
        assert_eq!(Algorithm::from_token("md5"), Some(Algorithm::Md5));
        assert_eq!(Algorithm::from_token("Sha-256"), Some(Algorithm::Sha256));
        assert_eq!(Algorithm::from_token("SHA-256-sess"), None);
        assert_eq!(Algorithm::Sha256.to_string(), "SHA-256");
    }

    fn mgr() -> NonceManager {
        NonceManager::new([7u8; 32], Duration::from_secs(300))
    }

    #[test]
    fn fresh_nonce_is_valid_and_unique() {
        let m = mgr();
        let a = m.issue(1_000_000);
        let b = m.issue(1_000_000);
        assert_ne!(a, b);
        assert_eq!(a.len(), NONCE_LEN);
        assert_eq!(m.check(&a, 1_000_000), NonceState::Valid);
        assert_eq!(m.check(&a, 1_000_300), NonceState::Valid);
    }

    #[test]
    fn old_nonce_is_stale() {
        let m = mgr();
        let n = m.issue(1_000_000);
        assert_eq!(m.check(&n, 1_000_301), NonceState::Stale);
        assert_eq!(m.check(&n, u64::MAX), NonceState::Stale);
    }

    #[test]
    fn tampered_or_foreign_nonce_is_invalid() {
        let m = mgr();
        let n = m.issue(1_000_000);
        // Change each position in turn (to another hex digit).
        for i in 0..n.len() {
            let mut b = n.clone().into_bytes();
            b[i] = if b[i] == b'0' { b'1' } else { b'0' };
            let t = String::from_utf8(b).unwrap();
            assert_eq!(m.check(&t, 1_000_000), NonceState::Invalid, "pos {i}");
        }
        // Extend the timestamp to make it look fresh: the MAC no longer fits.
        let later = format!("{:016x}{}", 1_000_900u64, &n[16..]);
        assert_eq!(m.check(&later, 1_000_900), NonceState::Invalid);
        // Another secret.
        let other = NonceManager::new([8u8; 32], Duration::from_secs(300));
        assert_eq!(other.check(&n, 1_000_000), NonceState::Invalid);
        for junk in [
            "",
            "xyz",
            &"g".repeat(NONCE_LEN),
            &"é".repeat(NONCE_LEN / 2),
        ] {
            assert_eq!(m.check(junk, 1_000_000), NonceState::Invalid);
        }
        // Upper-case spelling of our own nonce is not ours.
        let upper = format!("{}F", &n[..NONCE_LEN - 1].to_uppercase());
        assert_eq!(m.check(&upper, 1_000_000), NonceState::Invalid);
    }

    #[test]
    fn nonce_from_the_future_is_invalid() {
        let m = mgr();
        let n = m.issue(2_000_000);
        assert_eq!(m.check(&n, 2_000_000 - FUTURE_SKEW_SECS), NonceState::Valid);
        assert_eq!(m.check(&n, 1_000_000), NonceState::Invalid);
    }
}
