//! The licence file: a TOML body signed verbatim, followed by a
//! `[signature]` table.
//!
//! ```toml
//! [licence]
//! id = "PB-2026-0001"
//! licensee = "Example GmbH"
//! site = "pbx1.example.com"      # "*" = any site
//! issued = 2026-11-01
//! not_before = 2026-11-01        # optional, default = issued
//! expires = 2027-11-30           # valid through the end of that day, UTC
//! features = ["recording"]       # optional site features
//!
//! [capacity]                      # each optional; absent = unlimited
//! calls = 100
//! tenants = 10
//! mailboxes = 500
//!
//! [[entitlement]]                 # zero or more
//! feature = "acme-queue"
//! tenants = ["a.example.com"]    # or all = true (exactly one of the two)
//!
//! [signature]
//! signer = "plugboard"
//! public = "base64 Ed25519 public key"
//! value = "base64 Ed25519 signature over the bytes above this table"
//! ```
//!
//! The signed body is the exact bytes of the file before the line
//! `[signature]`: no canonicalisation, so what the licensee reads is what
//! was signed, and any change to it (even whitespace) breaks the signature.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use plugboard_registry::keys::{KeyId, PublicKey, Purpose, SecretKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The line that ends the signed body and starts the signature table.
pub const SIGNATURE_LINE: &str = "[signature]";

/// Why a licence file could not be read, parsed or signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LicenceError {
    /// The text is not TOML or does not have the licence structure.
    #[error("not a licence file: {0}")]
    Syntax(String),
    /// A field has a wrong value.
    #[error("{field}: {reason}")]
    Field {
        /// The field, as `table.key` (`licence.expires`, `entitlement[1].tenants`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// [`sign`] was given a body that already has a `[signature]` table.
    #[error("the body already has a [signature] table")]
    AlreadySigned,
}

fn field(field: impl Into<String>, reason: impl Into<String>) -> LicenceError {
    LicenceError::Field {
        field: field.into(),
        reason: reason.into(),
    }
}

/// How many of each thing a licence allows; `None` = unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    /// Concurrent calls.
    pub calls: Option<u32>,
    /// Configured tenants.
    pub tenants: Option<u32>,
    /// Mailboxes (users).
    pub mailboxes: Option<u32>,
}

impl Capacity {
    /// No limits.
    pub const UNLIMITED: Capacity = Capacity {
        calls: None,
        tenants: None,
        mailboxes: None,
    };

    /// The demo level: 1 concurrent call, 1 tenant, 10 mailboxes.
    pub const DEMO: Capacity = Capacity {
        calls: Some(1),
        tenants: Some(1),
        mailboxes: Some(10),
    };

    /// The limit for `item`.
    pub fn get(&self, item: crate::Item) -> Option<u32> {
        match item {
            crate::Item::Calls => self.calls,
            crate::Item::Tenants => self.tenants,
            crate::Item::Mailboxes => self.mailboxes,
        }
    }

    /// A quarter of each limit, rounded up, at least 1 (unlimited stays
    /// unlimited): the capacity after expiry.
    pub fn quarter(&self) -> Capacity {
        let q = |v: Option<u32>| v.map(|n| n.div_ceil(4).max(1));
        Capacity {
            calls: q(self.calls),
            tenants: q(self.tenants),
            mailboxes: q(self.mailboxes),
        }
    }
}

/// Which tenants an entitlement covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every tenant on the site (`all = true`).
    All,
    /// The named tenants.
    Tenants(Vec<String>),
}

/// A licence for one plugin feature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entitlement {
    /// The licence feature a plugin's manifest names.
    pub feature: String,
    /// Where it applies.
    pub scope: Scope,
}

impl Entitlement {
    /// Whether it covers `tenant`.
    pub fn covers(&self, tenant: &str) -> bool {
        match &self.scope {
            Scope::All => true,
            Scope::Tenants(t) => t.iter().any(|t| t.eq_ignore_ascii_case(tenant)),
        }
    }
}

/// The `[signature]` table as written in the file (not yet verified).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureTable {
    /// The signer's name (a label).
    pub signer: String,
    /// The public key, base64.
    pub public: String,
    /// The Ed25519 signature over the body, base64.
    pub value: String,
}

/// Why a licence's signature is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// The file has no `[signature]` table.
    #[error("the licence is not signed")]
    Unsigned,
    /// The public key is not one this host trusts (or not a key at all).
    #[error("signed by {signer} with key {key}, which this host does not trust")]
    UnknownKey {
        /// The signer named in the file.
        signer: String,
        /// The key's id (empty if the key is not a valid key).
        key: KeyId,
    },
    /// The key is trusted but the signature does not match the body.
    #[error(
        "the signature by {signer} ({key}) does not match the licence (changed after signing?)"
    )]
    BadSignature {
        /// The trusted key's signer.
        signer: String,
        /// The key's id.
        key: KeyId,
    },
}

impl Invalid {
    /// The key the file claims to be signed with, if it names a valid one.
    pub fn key(&self) -> Option<&KeyId> {
        match self {
            Invalid::Unsigned => None,
            Invalid::UnknownKey { key, .. } | Invalid::BadSignature { key, .. } => {
                (!key.0.is_empty()).then_some(key)
            }
        }
    }
}

/// A parsed (not yet verified) licence file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenceFile {
    /// The licence number.
    pub id: String,
    /// Who it is licensed to.
    pub licensee: String,
    /// The site (host's configured site name) or `*` for any.
    pub site: String,
    /// When it was issued.
    pub issued: NaiveDate,
    /// First day it is valid.
    pub not_before: NaiveDate,
    /// Last day it is valid (through the end of that day, UTC).
    pub expires: NaiveDate,
    /// Capacities; unlimited where absent.
    pub capacity: Capacity,
    /// Site features.
    pub features: Vec<String>,
    /// Plugin feature entitlements.
    pub entitlements: Vec<Entitlement>,
    /// The signature table, if any.
    pub signature: Option<SignatureTable>,
    body: String,
    sha256: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    licence: RawLicence,
    #[serde(default)]
    features: Option<Vec<String>>,
    #[serde(default)]
    capacity: Option<Capacity>,
    #[serde(default)]
    entitlement: Vec<RawEntitlement>,
    #[serde(default)]
    signature: Option<SignatureTable>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLicence {
    id: String,
    licensee: String,
    site: String,
    issued: toml::value::Datetime,
    #[serde(default)]
    not_before: Option<toml::value::Datetime>,
    expires: toml::value::Datetime,
    #[serde(default)]
    features: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntitlement {
    feature: String,
    #[serde(default)]
    tenants: Option<Vec<String>>,
    #[serde(default)]
    all: Option<bool>,
}

fn date(name: &str, v: &toml::value::Datetime) -> Result<NaiveDate, LicenceError> {
    let bad = || {
        field(
            name,
            format!("{v} is not a date like 2027-11-30 (no time, no offset)"),
        )
    };
    match (v.date, v.time, v.offset) {
        (Some(d), None, None) => {
            NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
                .ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

fn non_empty(name: &str, v: &str) -> Result<(), LicenceError> {
    if v.trim().is_empty() {
        Err(field(name, "must not be empty"))
    } else {
        Ok(())
    }
}

/// Where the signed body ends: the start of the first line reading exactly
/// `[signature]` (trailing whitespace allowed).
fn body_end(text: &str) -> Option<usize> {
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == SIGNATURE_LINE {
            return Some(start);
        }
        start += line.len();
    }
    None
}

/// Parses a licence file's text (does not verify the signature: see
/// [`LicenceFile::verify`]).
pub fn parse(text: &str) -> Result<LicenceFile, LicenceError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let msg = e.message().to_string();
        let hint = if msg.contains("unknown field `features`") {
            " (put features = [...] in the [licence] table, before [capacity])"
        } else {
            ""
        };
        match e.span() {
            Some(span) => {
                let start = span.start.min(text.len());
                let line_no = text[..start].matches('\n').count() + 1;
                let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
                LicenceError::Syntax(format!("line {line_no} `{line}`: {msg}{hint}"))
            }
            None => LicenceError::Syntax(format!("{msg}{hint}")),
        }
    })?;
    let l = raw.licence;
    non_empty("licence.id", &l.id)?;
    non_empty("licence.licensee", &l.licensee)?;
    non_empty("licence.site", &l.site)?;
    let issued = date("licence.issued", &l.issued)?;
    let not_before = match &l.not_before {
        Some(v) => date("licence.not_before", v)?,
        None => issued,
    };
    let expires = date("licence.expires", &l.expires)?;
    if expires < not_before {
        return Err(field(
            "licence.expires",
            format!("{expires} is before not_before {not_before}"),
        ));
    }
    let mut features = l.features.unwrap_or_default();
    features.extend(raw.features.unwrap_or_default());
    for (i, f) in features.iter().enumerate() {
        non_empty(&format!("licence.features[{i}]"), f)?;
    }
    let mut entitlements = Vec::new();
    for (i, e) in raw.entitlement.into_iter().enumerate() {
        let name = |k: &str| format!("entitlement[{}].{k}", i + 1);
        non_empty(&name("feature"), &e.feature)?;
        let scope = match (e.tenants, e.all) {
            (Some(t), None) if !t.is_empty() => {
                for (j, tenant) in t.iter().enumerate() {
                    non_empty(&format!("{}[{j}]", name("tenants")), tenant)?;
                }
                Scope::Tenants(t)
            }
            (Some(_), None) => return Err(field(name("tenants"), "lists no tenant")),
            (None, Some(true)) => Scope::All,
            (None, Some(false)) => {
                return Err(field(name("all"), "all = false: list the tenants instead"));
            }
            (None, None) => {
                return Err(field(
                    name("tenants"),
                    "missing: give tenants = [...] or all = true",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(field(
                    name("all"),
                    "give either tenants = [...] or all = true, not both",
                ));
            }
        };
        entitlements.push(Entitlement {
            feature: e.feature,
            scope,
        });
    }
    let body = match (&raw.signature, body_end(text)) {
        (Some(_), Some(end)) => text[..end].to_string(),
        (Some(_), None) => {
            return Err(field(
                "signature",
                "the [signature] table must start with a line reading exactly [signature]",
            ));
        }
        (None, Some(_)) => {
            return Err(field(
                "signature",
                "a line reading [signature] must start the signature table",
            ));
        }
        (None, None) => text.to_string(),
    };
    Ok(LicenceFile {
        id: l.id,
        licensee: l.licensee,
        site: l.site,
        issued,
        not_before,
        expires,
        capacity: raw.capacity.unwrap_or_default(),
        features,
        entitlements,
        signature: raw.signature,
        body,
        sha256: hex::encode(Sha256::digest(text.as_bytes())),
    })
}

/// Signs a licence body with `key` ([`Purpose::Licence`]) and returns the
/// whole file: the body (with a final newline added if it had none) followed
/// by the `[signature]` table. The body must parse as a licence and must not
/// already be signed.
pub fn sign(body: &str, key: &SecretKey) -> Result<String, LicenceError> {
    if body_end(body).is_some() {
        return Err(LicenceError::AlreadySigned);
    }
    let mut body = body.to_string();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    let parsed = parse(&body)?;
    if parsed.signature.is_some() {
        return Err(LicenceError::AlreadySigned);
    }
    let public = key.public();
    let table = SignatureTable {
        signer: key.signer.clone(),
        public: public.to_base64(),
        value: key.sign(Purpose::Licence, body.as_bytes()),
    };
    let text = format!(
        "{body}{SIGNATURE_LINE}\n{}",
        toml::to_string(&table).expect("signature table serialises")
    );
    debug_assert!(parse(&text).is_ok());
    Ok(text)
}

fn day_start(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(NaiveTime::MIN).and_utc()
}

impl LicenceFile {
    /// The signed bytes (the file before the `[signature]` line).
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The SHA-256 of the whole file, hex: the file's identity (grace
    /// periods and reminders are recorded against it).
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The instant it becomes valid (start of `not_before`, UTC).
    pub fn valid_from(&self) -> DateTime<Utc> {
        day_start(self.not_before)
    }

    /// The instant it expires (end of `expires`, UTC).
    pub fn expires_at(&self) -> DateTime<Utc> {
        day_start(self.expires) + Duration::days(1)
    }

    /// Whether it is for `site` (`*` matches any; case-insensitive).
    pub fn is_for_site(&self, site: &str) -> bool {
        self.site == "*" || self.site.eq_ignore_ascii_case(site)
    }

    /// Checks the signature: `trusted` maps a key id to the trusted key (or
    /// `None`). Returns the trusted key that signed it.
    pub fn verify(
        &self,
        trusted: &dyn Fn(&KeyId) -> Option<PublicKey>,
    ) -> Result<PublicKey, Invalid> {
        let sig = self.signature.as_ref().ok_or(Invalid::Unsigned)?;
        let unknown = |key: KeyId| Invalid::UnknownKey {
            signer: sig.signer.clone(),
            key,
        };
        // The signer label is checked by from_base64; fall back to a neutral
        // label so an odd name does not hide which key it is.
        let claimed = PublicKey::from_base64(&sig.signer, &sig.public)
            .or_else(|_| PublicKey::from_base64("unnamed", &sig.public))
            .map_err(|_| unknown(KeyId(String::new())))?;
        let id = claimed.id();
        let key = match trusted(&id) {
            // Ids are a truncated hash: compare the whole key.
            Some(k) if k.as_bytes() == claimed.as_bytes() => k,
            _ => return Err(unknown(id)),
        };
        key.verify(Purpose::Licence, self.body.as_bytes(), &sig.value)
            .map_err(|_| Invalid::BadSignature {
                signer: key.signer.clone(),
                key: id,
            })?;
        Ok(key)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const BODY: &str = r#"[licence]
id = "PB-2026-0001"
licensee = "Example GmbH"
site = "pbx1.example.com"
issued = 2026-11-01
expires = 2027-11-30
features = ["recording"]

[capacity]
calls = 100
tenants = 10
mailboxes = 500

[[entitlement]]
feature = "acme-queue"
tenants = ["a.example.com"]

[[entitlement]]
feature = "acme-fax"
all = true
"#;

    fn trust(k: &PublicKey) -> impl Fn(&KeyId) -> Option<PublicKey> + '_ {
        move |id| (*id == k.id()).then(|| k.clone())
    }

    #[test]
    fn parses_every_field() {
        let f = parse(BODY).unwrap();
        assert_eq!(f.id, "PB-2026-0001");
        assert_eq!(f.licensee, "Example GmbH");
        assert!(f.is_for_site("PBX1.example.com"));
        assert!(!f.is_for_site("pbx2.example.com"));
        assert_eq!(f.issued, NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());
        assert_eq!(f.not_before, f.issued);
        assert_eq!(f.valid_from().to_rfc3339(), "2026-11-01T00:00:00+00:00");
        assert_eq!(f.expires_at().to_rfc3339(), "2027-12-01T00:00:00+00:00");
        assert_eq!(
            f.capacity,
            Capacity {
                calls: Some(100),
                tenants: Some(10),
                mailboxes: Some(500)
            }
        );
        assert_eq!(f.features, vec!["recording"]);
        assert_eq!(f.entitlements.len(), 2);
        assert!(f.entitlements[0].covers("A.example.com"));
        assert!(!f.entitlements[0].covers("b.example.com"));
        assert_eq!(f.entitlements[1].scope, Scope::All);
        assert!(f.entitlements[1].covers("b.example.com"));
        assert!(f.signature.is_none());
        assert_eq!(f.body(), BODY);
        assert_eq!(f.sha256(), hex::encode(Sha256::digest(BODY.as_bytes())));
    }

    #[test]
    fn minimal_file_is_unlimited_and_star_matches_any_site() {
        let f = parse(
            "[licence]\nid = \"x\"\nlicensee = \"y\"\nsite = \"*\"\nissued = 2026-01-01\n\
             not_before = 2026-02-01\nexpires = 2026-12-31\n",
        )
        .unwrap();
        assert_eq!(f.capacity, Capacity::UNLIMITED);
        assert_eq!(f.not_before, NaiveDate::from_ymd_opt(2026, 2, 1).unwrap());
        assert!(f.is_for_site("anything"));
        assert!(f.entitlements.is_empty() && f.features.is_empty());
    }

    #[test]
    fn structure_errors_name_the_field() {
        let cases: &[(&str, &str, &str)] = &[
            ("expires = 2027-11-30", "", "expires"),
            (
                "expires = 2027-11-30",
                "expires = 2027-11-30T10:00:00Z",
                "licence.expires",
            ),
            ("expires = 2027-11-30", "expires = \"soon\"", "expires"),
            (
                "expires = 2027-11-30",
                "expires = 2026-01-01",
                "before not_before",
            ),
            (
                "licensee = \"Example GmbH\"",
                "licensee = \" \"",
                "licence.licensee",
            ),
            ("calls = 100", "calls = -1", "calls"),
            ("calls = 100", "cals = 1", "cals"),
            (
                "tenants = [\"a.example.com\"]",
                "tenants = []",
                "entitlement[1].tenants",
            ),
            (
                "tenants = [\"a.example.com\"]",
                "",
                "entitlement[1].tenants",
            ),
            ("all = true", "all = false", "entitlement[2].all"),
            (
                "all = true",
                "all = true\ntenants = [\"x\"]",
                "entitlement[2].all",
            ),
        ];
        for (from, to, want) in cases {
            let text = BODY.replace(from, to);
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains(want), "{from} -> {to}: {e}");
        }
        let e = parse("not toml [").unwrap_err();
        assert!(matches!(e, LicenceError::Syntax(_)), "{e}");
        // features after [capacity] lands in the capacity table: say so.
        let text = BODY.replace("mailboxes = 500", "mailboxes = 500\nfeatures = [\"x\"]");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("put features"), "{e}");
    }

    #[test]
    fn sign_and_verify() {
        let key = SecretKey::generate("plugboard").unwrap();
        let text = sign(BODY, &key).unwrap();
        assert!(text.starts_with(BODY));
        let f = parse(&text).unwrap();
        assert_eq!(f.body(), BODY);
        assert_eq!(f.signature.as_ref().unwrap().signer, "plugboard");
        let got = f.verify(&trust(&key.public())).unwrap();
        assert_eq!(got, key.public());
        // Signing twice is refused; so is a body that is not a licence.
        assert_eq!(sign(&text, &key), Err(LicenceError::AlreadySigned));
        assert!(sign("[licence]\n", &key).is_err());
        // A body without a final newline gets one.
        let t2 = sign(BODY.trim_end(), &key).unwrap();
        parse(&t2).unwrap().verify(&trust(&key.public())).unwrap();
    }

    #[test]
    fn verification_failures_say_why() {
        let key = SecretKey::generate("plugboard").unwrap();
        let other = SecretKey::generate("plugboard").unwrap();
        let text = sign(BODY, &key).unwrap();
        // Unsigned.
        assert_eq!(
            parse(BODY).unwrap().verify(&trust(&key.public())),
            Err(Invalid::Unsigned)
        );
        // Unknown key.
        let e = parse(&text)
            .unwrap()
            .verify(&trust(&other.public()))
            .unwrap_err();
        assert_eq!(
            e,
            Invalid::UnknownKey {
                signer: "plugboard".into(),
                key: key.public().id()
            }
        );
        assert_eq!(e.key(), Some(&key.public().id()));
        assert!(e.to_string().contains("does not trust"));
        // Tampered: one byte of the body.
        let tampered = text.replace("calls = 100", "calls = 900");
        let e = parse(&tampered)
            .unwrap()
            .verify(&trust(&key.public()))
            .unwrap_err();
        assert!(matches!(e, Invalid::BadSignature { .. }), "{e}");
        // Whitespace counts too (no canonicalisation).
        let spaced = text.replacen("\n\n", "\n\n\n", 1);
        let e = parse(&spaced)
            .unwrap()
            .verify(&trust(&key.public()))
            .unwrap_err();
        assert!(matches!(e, Invalid::BadSignature { .. }), "{e}");
        // A signature made by another key but claiming the trusted public key.
        let forged = sign(BODY, &other)
            .unwrap()
            .replace(&other.public().to_base64(), &key.public().to_base64());
        let e = parse(&forged)
            .unwrap()
            .verify(&trust(&key.public()))
            .unwrap_err();
        assert!(matches!(e, Invalid::BadSignature { .. }), "{e}");
        // A public key that is not a key.
        let junk = text.replace(&key.public().to_base64(), "AAAA");
        let e = parse(&junk)
            .unwrap()
            .verify(&trust(&key.public()))
            .unwrap_err();
        assert!(
            matches!(e, Invalid::UnknownKey { .. }) && e.key().is_none(),
            "{e}"
        );
    }

    #[test]
    fn signature_table_must_start_with_the_exact_line() {
        let key = SecretKey::generate("plugboard").unwrap();
        let text = sign(BODY, &key)
            .unwrap()
            .replace("[signature]", "[ signature ]");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("signature"), "{e}");
    }

    #[test]
    fn capacity_quarter_rounds_up_with_minimum_one() {
        let c = Capacity {
            calls: Some(100),
            tenants: Some(3),
            mailboxes: None,
        };
        assert_eq!(
            c.quarter(),
            Capacity {
                calls: Some(25),
                tenants: Some(1),
                mailboxes: None
            }
        );
        let c = Capacity {
            calls: Some(0),
            tenants: Some(5),
            mailboxes: Some(501),
        };
        assert_eq!(
            c.quarter(),
            Capacity {
                calls: Some(1),
                tenants: Some(2),
                mailboxes: Some(126)
            }
        );
    }
}
