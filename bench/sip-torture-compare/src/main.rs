//! RFC 4475 torture-message comparison: `rsip` 0.4.0 vs `rsipstack` 0.7.14 (its own
//! `rsipstack::sip` parser). Spike for ADR 0002. Not part of the plugboard workspace.
//!
//! Usage: cargo run --release -j 1 -- [DIR]   (default DIR: ../../../shared/sip-torture, then
//!        /work/shared/sip-torture).  Env BENCH_REPS (default 1000), BENCH_RUNS (default 5).
//!
//! For each `.dat` file and each library:
//!   1. message-level parse: `SipMessage::try_from(&[u8])` inside `catch_unwind`
//!      -> OK / ERR / PANIC;
//!   2. if OK, "deep" typed parse of the headers every UA/proxy must understand
//!      (top Via, From, To, CSeq, every Contact) -- both libraries keep headers as
//!      raw strings until `.typed()` is called, so errors in them only show here;
//!   3. field extraction (method, Request-URI / status, Call-ID, CSeq, number of
//!      Via values, body length) compared with the expected values below, which were
//!      taken by hand from the bytes and the RFC 4475 text.
//! A message is "rejected" if step 1 fails or step 2 reports an error.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

// ---------------------------------------------------------------------------
// What we extract from a parsed message (library independent)
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Extract {
    is_request: bool,
    method: String,
    uri: String,
    ruri_user: String,
    ruri_host: String,
    status: u16,
    call_id: Result<String, String>,
    cseq: Result<(u32, String), String>,
    via_values: usize,
    contact_headers: usize,
    body_len: usize,
    /// errors from typed parsing of core headers ("deep" parse)
    typed_errors: Vec<String>,
}

impl Default for Extract {
    fn default() -> Self {
        Extract {
            is_request: false,
            method: String::new(),
            uri: String::new(),
            ruri_user: String::new(),
            ruri_host: String::new(),
            status: 0,
            call_id: Err("unset".into()),
            cseq: Err("unset".into()),
            via_values: 0,
            contact_headers: 0,
            body_len: 0,
            typed_errors: vec![],
        }
    }
}

#[derive(Debug, Clone)]
enum Outcome {
    Ok(Box<Extract>),
    Err(String),
    Panic(String),
}

fn short(s: impl std::fmt::Display) -> String {
    let s = s.to_string().replace(['\r', '\n'], " ");
    if s.chars().count() > 70 {
        format!("{}…", s.chars().take(70).collect::<String>())
    } else {
        s
    }
}

fn panic_msg(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".into()
    }
}

/// Number of comma-separated values in a Via header value (Via values never
/// contain quoted strings in these files, so a plain split is exact).
fn count_values(v: &str) -> usize {
    v.split(',').filter(|s| !s.trim().is_empty()).count().max(1)
}

// ---------------------------------------------------------------------------
// rsip 0.4.0
// ---------------------------------------------------------------------------
mod lib_rsip {
    use super::*;
    use rsip::prelude::*;

    pub fn parse_only(b: &[u8]) -> bool {
        rsip::SipMessage::try_from(b).is_ok()
    }

    pub fn parse_deep(b: &[u8]) -> bool {
        match rsip::SipMessage::try_from(b) {
            Ok(m) => deep(&m).is_empty(),
            Err(_) => false,
        }
    }

    fn deep(m: &rsip::SipMessage) -> Vec<String> {
        let mut errs = vec![];
        match m.via_header() {
            Ok(v) => {
                if let Err(e) = v.typed() {
                    errs.push(format!("Via: {}", short(e)))
                }
            }
            Err(e) => errs.push(format!("Via: {}", short(e))),
        }
        match m.from_header() {
            Ok(v) => {
                if let Err(e) = v.typed() {
                    errs.push(format!("From: {}", short(e)))
                }
            }
            Err(e) => errs.push(format!("From: {}", short(e))),
        }
        match m.to_header() {
            Ok(v) => {
                if let Err(e) = v.typed() {
                    errs.push(format!("To: {}", short(e)))
                }
            }
            Err(e) => errs.push(format!("To: {}", short(e))),
        }
        match m.cseq_header() {
            Ok(v) => {
                if let Err(e) = v.typed() {
                    errs.push(format!("CSeq: {}", short(e)))
                }
            }
            Err(e) => errs.push(format!("CSeq: {}", short(e))),
        }
        for c in m.contact_headers() {
            if let Err(e) = c.typed() {
                errs.push(format!("Contact: {}", short(e)))
            }
        }
        errs
    }

    pub fn run(b: &[u8]) -> Outcome {
        let r = catch_unwind(AssertUnwindSafe(|| -> Result<Extract, String> {
            let m = rsip::SipMessage::try_from(b).map_err(|e| short(e))?;
            let mut x = Extract::default();
            match &m {
                rsip::SipMessage::Request(r) => {
                    x.is_request = true;
                    x.method = r.method.to_string();
                    x.uri = r.uri.to_string();
                    x.ruri_user = r.uri.auth.as_ref().map(|a| a.user.to_string()).unwrap_or_default();
                    x.ruri_host = r.uri.host_with_port.host.to_string();
                }
                rsip::SipMessage::Response(r) => {
                    x.status = r.status_code.code();
                }
            }
            x.call_id = m
                .call_id_header()
                .map(|h| h.value().trim().to_string())
                .map_err(|e| short(e));
            x.cseq = m
                .cseq_header()
                .map_err(|e| short(e))
                .and_then(|h| h.typed().map_err(|e| short(e)))
                .map(|c| (c.seq, c.method.to_string()));
            x.via_values = m
                .headers()
                .iter()
                .filter_map(|h| match h {
                    rsip::Header::Via(v) => Some(count_values(v.value())),
                    _ => None,
                })
                .sum();
            x.contact_headers = m.contact_headers().len();
            x.body_len = m.body().len();
            x.typed_errors = deep(&m);
            Ok(x)
        }));
        match r {
            Ok(Ok(x)) => Outcome::Ok(Box::new(x)),
            Ok(Err(e)) => Outcome::Err(e),
            Err(p) => Outcome::Panic(short(panic_msg(p))),
        }
    }
}

// ---------------------------------------------------------------------------
// rsipstack 0.7.14 -- in-tree parser `rsipstack::sip` (no rsip dependency)
// ---------------------------------------------------------------------------
mod lib_rsipstack {
    use super::*;
    use rsipstack::sip::prelude::*;
    use rsipstack::sip::{Header, SipMessage};

    pub fn parse_only(b: &[u8]) -> bool {
        SipMessage::try_from(b).is_ok()
    }

    pub fn parse_deep(b: &[u8]) -> bool {
        match SipMessage::try_from(b) {
            Ok(m) => deep(&m).is_empty(),
            Err(_) => false,
        }
    }

    fn deep(m: &SipMessage) -> Vec<String> {
        let mut errs = vec![];
        match m.top_via_header() {
            Ok(v) => {
                if let Err(e) = v.typed() {
                    errs.push(format!("Via: {}", short(e)))
                }
            }
            Err(e) => errs.push(format!("Via: {}", short(e))),
        }
        match m.from_header() {
            Ok(v) => {
                if let Err(e) = v.typed() {
                    errs.push(format!("From: {}", short(e)))
                }
            }
            Err(e) => errs.push(format!("From: {}", short(e))),
        }
        match m.to_header() {
            Ok(v) => {
                if let Err(e) = v.typed() {
                    errs.push(format!("To: {}", short(e)))
                }
            }
            Err(e) => errs.push(format!("To: {}", short(e))),
        }
        match m.cseq_header() {
            Ok(v) => {
                if let Err(e) = v.typed() {
                    errs.push(format!("CSeq: {}", short(e)))
                }
            }
            Err(e) => errs.push(format!("CSeq: {}", short(e))),
        }
        if let Err(e) = m.typed_contact_headers() {
            errs.push(format!("Contact: {}", short(e)))
        }
        errs
    }

    pub fn run(b: &[u8]) -> Outcome {
        let r = catch_unwind(AssertUnwindSafe(|| -> Result<Extract, String> {
            let m = SipMessage::try_from(b).map_err(|e| short(e))?;
            let mut x = Extract::default();
            match &m {
                SipMessage::Request(r) => {
                    x.is_request = true;
                    x.method = r.method.to_string();
                    x.uri = r.uri.to_string();
                    x.ruri_user = r.uri.auth.as_ref().map(|a| a.user.to_string()).unwrap_or_default();
                    x.ruri_host = r.uri.host_with_port.host.to_string();
                }
                SipMessage::Response(r) => {
                    x.status = r.status_code.code();
                }
            }
            x.call_id = m
                .call_id_header()
                .map(|h| h.value().trim().to_string())
                .map_err(|e| short(e));
            x.cseq = m
                .cseq_header()
                .map_err(|e| short(e))
                .and_then(|h| h.typed().map_err(|e| short(e)))
                .map(|c| (c.seq, c.method.to_string()));
            x.via_values = m
                .headers()
                .iter()
                .filter_map(|h| match h {
                    Header::Via(v) => Some(count_values(v.value())),
                    _ => None,
                })
                .sum();
            x.contact_headers = m.contact_headers().len();
            x.body_len = match &m {
                SipMessage::Request(r) => r.body().len(),
                SipMessage::Response(r) => r.body().len(),
            };
            x.typed_errors = deep(&m);
            Ok(x)
        }));
        match r {
            Ok(Ok(x)) => Outcome::Ok(Box::new(x)),
            Ok(Err(e)) => Outcome::Err(e),
            Err(p) => Outcome::Panic(short(panic_msg(p))),
        }
    }
}

// ---------------------------------------------------------------------------
// Expectations (from /work/shared/sip-torture/README.md and RFC 4475)
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// RFC: the parser must/should accept (3.1.1, the "valid" rows of 3.3/3.4, and the
    /// "valid syntax; rejected by the application" rows: the parser must still parse).
    Valid,
    /// RFC: syntax/framing error; the element must reject it (400/505/drop).
    Invalid,
    /// RFC: syntax error, but the RFC explicitly allows a liberal element to accept
    /// (LWS tolerance, drop <>, ignore Date, infer brackets/quotes...).
    InvalidLiberalOk,
    /// Parses; semantically invalid (transaction/application layer must 400).
    /// A parser passes if it does not panic, whether it accepts or rejects.
    Semantic,
    /// test.dat: no expectation in the RFC.
    Unspecified,
}

#[derive(Debug, Clone)]
struct Expect {
    file: &'static str,
    class: Class,
    /// Request: (method, Request-URI). None for responses.
    req: Option<(&'static str, &'static str)>,
    status: u16,
    call_id: &'static str,
    cseq: (u32, &'static str),
    vias: usize,
    body: usize,
    /// Request-URI (user, host) for sip: URIs; user may match raw or %-decoded
    ruri_parts: Option<(&'static str, &'static str)>,
    /// extra check: number of Contact header fields (esc02: C%6Fntact is NOT a Contact)
    contacts: Option<usize>,
}

const fn v(
    file: &'static str,
    req: Option<(&'static str, &'static str)>,
    status: u16,
    call_id: &'static str,
    cseq: (u32, &'static str),
    vias: usize,
    body: usize,
) -> Expect {
    Expect { file, class: Class::Valid, req, status, call_id, cseq, vias, body, contacts: None, ruri_parts: None }
}
const fn other(file: &'static str, class: Class) -> Expect {
    Expect { file, class, req: None, status: 0, call_id: "", cseq: (0, ""), vias: 0, body: 0, contacts: None, ruri_parts: None }
}

const INTMETH: &str = "!interesting-Method0123456789_*+`.%indeed'~";
const INTMETH_URI: &str = "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com";
const LONGREQ_CALLID: &str = "longreq.onereallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallylongcallid";

fn expectations() -> Vec<Expect> {
    use Class::*;
    let mut e = vec![
        // --- 3.1.1 valid ---
        v("wsinv", Some(("INVITE", "sip:vivekg@chair-dnrc.example.com;unknownparam")), 0, "wsinv.ndaksdj@192.0.2.1", (9, "INVITE"), 3, 150),
        v("intmeth", Some((INTMETH, INTMETH_URI)), 0, "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{", (139122385, INTMETH), 1, 0),
        v("esc01", Some(("INVITE", "sip:sips%3Auser%40example.com@example.net")), 0, "esc01.239409asdfakjkn23onasd0-3234", (234234, "INVITE"), 1, 150),
        v("escnull", Some(("REGISTER", "sip:example.com")), 0, "escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd", (14398234, "REGISTER"), 1, 0),
        Expect { contacts: Some(2), ..v("esc02", Some(("RE%47IST%45R", "sip:registrar.example.com")), 0, "esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf", (29344, "RE%47IST%45R"), 1, 0) },
        v("lwsdisp", Some(("OPTIONS", "sip:user@example.com")), 0, "lwsdisp.1234abcd@funky.example.com", (60, "OPTIONS"), 1, 0),
        v("longreq", Some(("INVITE", "sip:user@example.com")), 0, LONGREQ_CALLID, (3882340, "INVITE"), 34, 150),
        v("dblreq", Some(("REGISTER", "sip:example.com")), 0, "dblreq.0ha0isndaksdj99sdfafnl3lk233412", (8, "REGISTER"), 1, 0),
        v("semiuri", Some(("OPTIONS", "sip:user;par=u%40example.net@example.com")), 0, "semiuri.0ha0isndaksdj", (8, "OPTIONS"), 1, 0),
        v("transports", Some(("OPTIONS", "sip:user@example.com")), 0, "transports.kijh4akdnaqjkwendsasfdj", (60, "OPTIONS"), 5, 0),
        v("mpart01", Some(("MESSAGE", "sip:kumiko@example.org")), 0, "3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..", (1, "MESSAGE"), 1, 553),
        v("unreason", None, 200, "unreason.1234ksdfak3j2erwedfsASdf", (35, "INVITE"), 1, 154),
        v("noreason", None, 100, "noreason.asndj203insdf99223ndf", (35, "INVITE"), 1, 0),
        // --- 3.1.2 invalid ---
        other("badinv01", Invalid),
        other("clerr", Invalid),
        other("ncl", Invalid),
        other("scalar02", Invalid),
        other("scalarlg", Invalid),
        other("quotbal", InvalidLiberalOk),
        other("ltgtruri", InvalidLiberalOk),
        other("lwsruri", InvalidLiberalOk),
        other("lwsstart", InvalidLiberalOk),
        other("trws", InvalidLiberalOk),
        other("escruri", InvalidLiberalOk),
        other("baddate", InvalidLiberalOk),
        other("regbadct", InvalidLiberalOk),
        other("badaspec", InvalidLiberalOk),
        other("baddn", Invalid),
        other("badvers", Invalid),
        other("mismatch01", Invalid),
        other("mismatch02", Invalid),
        other("bigcode", Invalid),
        // --- 3.2 / 3.3 / 3.4 ---
        other("badbranch", Semantic),
        other("insuf", Semantic),
        v("unkscm", Some(("OPTIONS", "nobodyKnowsThisScheme:totallyopaquecontent")), 0, "unkscm.nasdfasser0q239nwsdfasdkl34", (3923423, "OPTIONS"), 1, 0),
        v("novelsc", Some(("OPTIONS", "soap.beep://192.0.2.103:3002")), 0, "novelsc.asdfasser0q239nwsdfasdkl34", (3923423, "OPTIONS"), 1, 0),
        v("unksm2", Some(("REGISTER", "sip:example.com")), 0, "unksm2.daksdj@hyphenated-host.example.com", (234902, "REGISTER"), 1, 0),
        v("bext01", Some(("OPTIONS", "sip:user@example.com")), 0, "bext01.0ha0isndaksdj", (8, "OPTIONS"), 1, 0),
        v("invut", Some(("INVITE", "sip:user@example.com")), 0, "invut.0ha0isndaksdjadsfij34n23d", (235448, "INVITE"), 1, 40),
        v("regaut01", Some(("REGISTER", "sip:example.com")), 0, "regaut01.0ha0isndaksdj", (9338, "REGISTER"), 1, 0),
        other("multi01", Semantic),
        other("mcl01", Invalid),
        v("bcast", None, 200, "bcast.0384840201234ksdfak3j2erwedfsASdf", (35, "INVITE"), 2, 154),
        v("zeromf", Some(("OPTIONS", "sip:user@example.com")), 0, "zeromf.jfasdlfnm2o2l43r5u0asdfas", (39234321, "OPTIONS"), 1, 0),
        v("cparam01", Some(("REGISTER", "sip:example.com")), 0, "cparam01.70710@saturn.example.com", (2, "REGISTER"), 1, 0),
        v("cparam02", Some(("REGISTER", "sip:example.com")), 0, "cparam02.70710@saturn.example.com", (3, "REGISTER"), 1, 0),
        v("regescrt", Some(("REGISTER", "sip:example.com")), 0, "regescrt.k345asrl3fdbv@192.0.2.1", (14398234, "REGISTER"), 1, 0),
        v("sdp01", Some(("INVITE", "sip:user@example.com")), 0, "sdp01.ndaksdj9342dasdd", (8, "INVITE"), 1, 150),
        // 3.4.1: no Content-Length over UDP -> body is the rest of the datagram (105 bytes)
        v("inv2543", Some(("INVITE", "sip:UserB@example.com")), 0, "inv2543.1717@ift.client.example.com", (56, "INVITE"), 1, 105),
        other("test", Unspecified),
    ];
    let parts: &[(&str, &str, &str)] = &[
        ("wsinv", "vivekg", "chair-dnrc.example.com"),
        ("intmeth", "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*", "example.com"),
        ("esc01", "sips%3Auser%40example.com", "example.net"),
        ("escnull", "", "example.com"),
        ("esc02", "", "registrar.example.com"),
        ("lwsdisp", "user", "example.com"),
        ("longreq", "user", "example.com"),
        ("dblreq", "", "example.com"),
        ("semiuri", "user;par=u%40example.net", "example.com"),
        ("transports", "user", "example.com"),
        ("mpart01", "kumiko", "example.org"),
        ("unksm2", "", "example.com"),
        ("bext01", "user", "example.com"),
        ("invut", "user", "example.com"),
        ("regaut01", "", "example.com"),
        ("zeromf", "user", "example.com"),
        ("cparam01", "", "example.com"),
        ("cparam02", "", "example.com"),
        ("regescrt", "", "example.com"),
        ("sdp01", "user", "example.com"),
        ("inv2543", "UserB", "example.com"),
    ];
    for (f, u, h) in parts {
        e.iter_mut().find(|x| x.file == *f).unwrap().ruri_parts = Some((u, h));
    }
    e.sort_by_key(|x| x.file);
    e
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Compare extracted fields to expectations; returns list of mismatches.
fn field_mismatches(x: &Extract, e: &Expect) -> Vec<String> {
    let mut m = vec![];
    match e.req {
        Some((meth, uri)) => {
            if !x.is_request {
                m.push("parsed as response".into());
            } else {
                if x.method != meth {
                    m.push(format!("method={:?}", short(&x.method)));
                }
                if x.uri != uri {
                    m.push(format!("R-URI serialises as {:?}", short(&x.uri)));
                }
                if let Some((u, h)) = e.ruri_parts {
                    if x.ruri_user != u && x.ruri_user != pct_decode(u) {
                        m.push(format!("R-URI user={:?}", short(&x.ruri_user)));
                    }
                    if !x.ruri_host.eq_ignore_ascii_case(h) {
                        m.push(format!("R-URI host={:?}", short(&x.ruri_host)));
                    }
                }
            }
        }
        None => {
            if x.is_request {
                m.push("parsed as request".into());
            } else if x.status != e.status {
                m.push(format!("status={}", x.status));
            }
        }
    }
    match &x.call_id {
        Ok(c) if c == e.call_id => {}
        Ok(c) => m.push(format!("Call-ID={:?}", short(c))),
        Err(err) => m.push(format!("Call-ID err: {err}")),
    }
    match &x.cseq {
        Ok((n, meth)) if *n == e.cseq.0 && meth == e.cseq.1 => {}
        Ok((n, meth)) => m.push(format!("CSeq={} {}", n, short(meth))),
        Err(err) => m.push(format!("CSeq err: {err}")),
    }
    if x.via_values != e.vias {
        m.push(format!("Via values={} (want {})", x.via_values, e.vias));
    }
    if x.body_len != e.body {
        m.push(format!("body={}B (want {})", x.body_len, e.body));
    }
    if let Some(c) = e.contacts {
        if x.contact_headers != c {
            m.push(format!("Contact headers={} (want {})", x.contact_headers, c));
        }
    }
    m
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Pass,            // handled as the RFC says
    PassLiberal,     // invalid, accepted, and RFC allows liberal acceptance
    WrongAccept,     // invalid accepted where RFC says reject
    WrongReject,     // valid rejected (message-level or typed header error)
    WrongFields,     // valid accepted but key fields wrong
    Panic,
    Info,            // test.dat
}

fn verdict(o: &Outcome, e: &Expect) -> (Verdict, String) {
    match o {
        Outcome::Panic(p) => (Verdict::Panic, format!("PANIC: {p}")),
        Outcome::Err(err) => {
            let d = format!("ERR: {err}");
            match e.class {
                Class::Valid => (Verdict::WrongReject, d),
                Class::Invalid | Class::InvalidLiberalOk | Class::Semantic => (Verdict::Pass, d),
                Class::Unspecified => (Verdict::Info, d),
            }
        }
        Outcome::Ok(x) => {
            let typed = if x.typed_errors.is_empty() {
                String::new()
            } else {
                format!("typed-header errors: {}", x.typed_errors.join("; "))
            };
            match e.class {
                Class::Valid => {
                    let fm = field_mismatches(x, e);
                    if !x.typed_errors.is_empty() {
                        let mut d = format!("OK, but {typed}");
                        if !fm.is_empty() {
                            d.push_str(&format!("; fields: {}", fm.join(", ")));
                        }
                        (Verdict::WrongReject, d)
                    } else if !fm.is_empty() {
                        (Verdict::WrongFields, format!("OK, wrong fields: {}", fm.join(", ")))
                    } else {
                        (Verdict::Pass, "OK, fields correct".into())
                    }
                }
                Class::Invalid | Class::InvalidLiberalOk => {
                    if !x.typed_errors.is_empty() {
                        (Verdict::Pass, format!("OK at message level; {typed}"))
                    } else if e.class == Class::InvalidLiberalOk {
                        (Verdict::PassLiberal, format!("accepted (body {}B)", x.body_len))
                    } else {
                        (Verdict::WrongAccept, format!("accepted (body {}B)", x.body_len))
                    }
                }
                Class::Semantic => {
                    let mut d = format!("accepted (body {}B)", x.body_len);
                    if !typed.is_empty() {
                        d = format!("OK at message level; {typed}");
                    }
                    if let Err(err) = &x.call_id {
                        d.push_str(&format!("; Call-ID err: {err}"));
                    }
                    (Verdict::Pass, d)
                }
                Class::Unspecified => (Verdict::Info, format!("accepted; {typed}")),
            }
        }
    }
}

fn vshort(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "PASS",
        Verdict::PassLiberal => "PASS (liberal)",
        Verdict::WrongAccept => "WRONG ACCEPT",
        Verdict::WrongReject => "WRONG REJECT",
        Verdict::WrongFields => "WRONG FIELDS",
        Verdict::Panic => "PANIC",
        Verdict::Info => "n/a",
    }
}

fn class_name(c: Class) -> &'static str {
    match c {
        Class::Valid => "valid",
        Class::Invalid => "invalid",
        Class::InvalidLiberalOk => "invalid (liberal accept OK)",
        Class::Semantic => "parses; app must 400",
        Class::Unspecified => "unspecified",
    }
}

fn find_dir() -> PathBuf {
    if let Some(a) = std::env::args().nth(1) {
        return PathBuf::from(a);
    }
    for c in ["../../../shared/sip-torture", "/work/shared/sip-torture"] {
        if Path::new(c).join("README.md").exists() {
            return PathBuf::from(c);
        }
    }
    panic!("torture dir not found; pass it as the first argument");
}

fn bench(name: &str, msgs: &[Vec<u8>], reps: usize, runs: usize, f: fn(&[u8]) -> bool) -> (f64, usize) {
    let mut rates = vec![];
    let mut ok = 0;
    for _ in 0..runs {
        ok = 0;
        let t = Instant::now();
        for _ in 0..reps {
            for m in msgs {
                if f(std::hint::black_box(m)) {
                    ok += 1;
                }
            }
        }
        let dt = t.elapsed().as_secs_f64();
        rates.push((reps * msgs.len()) as f64 / dt);
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let med = rates[rates.len() / 2];
    eprintln!("  {name}: runs msg/s = {:?}", rates.iter().map(|r| *r as u64).collect::<Vec<_>>());
    (med, ok / reps)
}

fn main() {
    // Keep panics quiet (we report them ourselves).
    std::panic::set_hook(Box::new(|_| {}));
    let dir = find_dir();
    let exps = expectations();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().map(|x| x == "dat").unwrap_or(false))
        .collect();
    files.sort();
    assert_eq!(files.len(), exps.len(), "expectation table does not cover every .dat file");

    let libs: [(&str, fn(&[u8]) -> Outcome); 2] = [("rsip", lib_rsip::run), ("rsipstack", lib_rsipstack::run)];
    let mut counts: BTreeMap<(&str, Verdict), usize> = BTreeMap::new();
    let mut valid_msgs = vec![];
    let mut common_msgs = vec![];

    println!("| File | RFC class | rsip | rsipstack |");
    println!("| --- | --- | --- | --- |");
    for p in &files {
        let stem = p.file_stem().unwrap().to_str().unwrap().to_string();
        let e = exps.iter().find(|e| e.file == stem).unwrap_or_else(|| panic!("no expectation for {stem}"));
        let bytes = std::fs::read(p).unwrap();
        if e.class == Class::Valid {
            valid_msgs.push(bytes.clone());
        }
        let mut cells = vec![];
        let mut deep_ok = 0;
        for (name, run) in libs {
            let o = run(&bytes);
            if let Outcome::Ok(x) = &o {
                if x.typed_errors.is_empty() {
                    deep_ok += 1;
                }
            }
            let (vd, detail) = verdict(&o, e);
            *counts.entry((name, vd)).or_default() += 1;
            cells.push(format!("**{}** — {}", vshort(vd), detail.replace('|', "\\|")));
        }
        if e.class == Class::Valid && deep_ok == 2 {
            common_msgs.push(bytes.clone());
        }
        println!("| `{}` | {} | {} | {} |", stem, class_name(e.class), cells[0], cells[1]);
    }

    println!("\n## Summary (49 files with an RFC expectation; test.dat excluded)\n");
    println!("| Library | PASS strict | PASS incl. liberal | liberal accepts | wrong accepts | wrong rejects | wrong fields | panics |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (name, _) in libs {
        let c = |v: Verdict| *counts.get(&(name, v)).unwrap_or(&0);
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            name,
            c(Verdict::Pass),
            c(Verdict::Pass) + c(Verdict::PassLiberal),
            c(Verdict::PassLiberal),
            c(Verdict::WrongAccept),
            c(Verdict::WrongReject),
            c(Verdict::WrongFields),
            c(Verdict::Panic)
        );
    }

    let reps: usize = std::env::var("BENCH_REPS").ok().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    for (label, set) in [("all valid-class files", &valid_msgs), ("files both libraries accept (deep)", &common_msgs)] {
        let total: usize = set.iter().map(|m| m.len()).sum();
        println!(
            "\n## Throughput: {} ({} files, {} bytes), x{} per run, median of {} runs, 1 thread\n",
            label,
            set.len(),
            total,
            reps,
            runs
        );
        println!("| Library | message parse only (msg/s) | + typed Via/From/To/CSeq/Contact (msg/s) | files OK (parse / deep) |");
        println!("| --- | ---: | ---: | --- |");
        let (a, aok) = bench("rsip parse", set, reps, runs, lib_rsip::parse_only);
        let (b, bok) = bench("rsip deep", set, reps, runs, lib_rsip::parse_deep);
        println!("| rsip | {:.0} | {:.0} | {aok} / {bok} of {} |", a, b, set.len());
        let (a, aok) = bench("rsipstack parse", set, reps, runs, lib_rsipstack::parse_only);
        let (b, bok) = bench("rsipstack deep", set, reps, runs, lib_rsipstack::parse_deep);
        println!("| rsipstack | {:.0} | {:.0} | {aok} / {bok} of {} |", a, b, set.len());
    }
}
