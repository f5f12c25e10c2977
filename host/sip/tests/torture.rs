//! RFC 4475 torture messages against the parser, the request checks and the
//! stream framer, plus property tests (random bytes, mutations, round trips,
//! arbitrary stream splits) driven by a tiny xorshift PRNG.
//!
//! The expected outcomes are those of the table in
//! `shared/sip-torture/README.md` for an endpoint (registrar + B2BUA). Where
//! the RFC allows a choice, the comment on the table entry says which one the
//! host makes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use plugboard_sip::check::{check_request, check_response};
use plugboard_sip::framing::{FrameError, StreamFramer};
use plugboard_sip::message::Contacts;
use plugboard_sip::parse::{parse_message, reject_response};
use plugboard_sip::{Message, Method, Request};

/// What the host does with one torture file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// A request that parses and passes `check_request`.
    Accept,
    /// A request that parses; `check_request` answers with this status.
    Reject(u16),
    /// `parse_message` fails; `reject_response` answers with this status.
    Unparseable(u16),
    /// A response that parses and passes `check_response`.
    AcceptResponse,
    /// Dropped without an answer: a response that does not parse or fails
    /// `check_response`, or an unparseable request without a Via.
    Drop,
}

use Outcome::*;

const TABLE: &[(&str, Outcome)] = &[
    // 3.1.1 valid messages
    ("wsinv.dat", Accept),
    ("intmeth.dat", Reject(501)),
    ("esc01.dat", Accept),
    ("escnull.dat", Accept),
    ("esc02.dat", Reject(501)),
    ("lwsdisp.dat", Accept),
    ("longreq.dat", Accept),
    ("dblreq.dat", Accept),
    ("semiuri.dat", Accept),
    ("transports.dat", Accept),
    ("mpart01.dat", Accept),
    ("unreason.dat", AcceptResponse),
    ("noreason.dat", AcceptResponse),
    // 3.1.2 invalid messages
    ("badinv01.dat", Reject(400)),
    ("clerr.dat", Unparseable(400)),
    ("ncl.dat", Unparseable(400)),
    ("scalar02.dat", Reject(400)),
    ("scalarlg.dat", Drop),
    ("quotbal.dat", Reject(400)),
    ("ltgtruri.dat", Unparseable(400)),
    ("lwsruri.dat", Unparseable(400)),
    ("lwsstart.dat", Unparseable(400)),
    ("trws.dat", Unparseable(400)),
    // Choice: reject headers in the Request-URI rather than ignore them.
    ("escruri.dat", Reject(400)),
    // Choice: the host never reads Date, so a bad one is ignored.
    ("baddate.dat", Accept),
    ("regbadct.dat", Reject(400)),
    ("badaspec.dat", Reject(400)),
    // The archive has no empty line after the headers: incomplete message.
    ("baddn.dat", Unparseable(400)),
    ("badvers.dat", Unparseable(505)),
    ("mismatch01.dat", Reject(400)),
    ("mismatch02.dat", Reject(501)),
    ("bigcode.dat", Drop),
    // 3.2 transaction layer. Choice: accept; branch matching is the
    // transaction layer's problem.
    ("badbranch.dat", Accept),
    // 3.3 application layer
    ("insuf.dat", Reject(400)),
    ("unkscm.dat", Reject(416)),
    ("novelsc.dat", Reject(416)),
    ("unksm2.dat", Reject(400)),
    ("bext01.dat", Reject(420)),
    ("invut.dat", Reject(415)),
    ("regaut01.dat", Accept),
    ("multi01.dat", Reject(400)),
    ("mcl01.dat", Unparseable(400)),
    // An endpoint never forwards responses: nothing to drop at this layer.
    ("bcast.dat", AcceptResponse),
    ("zeromf.dat", Accept),
    ("cparam01.dat", Accept),
    ("cparam02.dat", Accept),
    ("regescrt.dat", Accept),
    ("sdp01.dat", Reject(406)),
    // 3.4 backward compatibility
    ("inv2543.dat", Accept),
    // Not in the RFC; no SIP version in the request line and no Via to
    // answer to.
    ("test.dat", Drop),
];

fn torture_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/sip-torture"
    ))
}

fn files() -> BTreeMap<String, Vec<u8>> {
    let dir = torture_dir();
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "dat") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            out.insert(name, std::fs::read(&path).expect("read torture file"));
        }
    }
    assert_eq!(
        out.len(),
        50,
        "expected the 50 RFC 4475 files in {}",
        dir.display()
    );
    out
}

fn file(name: &str) -> Vec<u8> {
    std::fs::read(torture_dir().join(name)).expect("read torture file")
}

fn request(name: &str) -> Request {
    match parse_message(&file(name)) {
        Ok(Message::Request(r)) => r,
        other => panic!("{name}: {other:?}"),
    }
}

fn outcome(bytes: &[u8]) -> Outcome {
    match parse_message(bytes) {
        Ok(Message::Request(r)) => match check_request(&r) {
            Ok(()) => Accept,
            Err(resp) => Reject(resp.status),
        },
        Ok(Message::Response(r)) => {
            if check_response(&r) {
                AcceptResponse
            } else {
                Drop
            }
        }
        Err(e) => match reject_response(bytes, &e) {
            Some(resp) => {
                assert!(!bytes.starts_with(b"SIP/"), "a response is never answered");
                assert_eq!(resp.status, e.status);
                Unparseable(resp.status)
            }
            None => Drop,
        },
    }
}

#[test]
fn every_file_has_the_expected_outcome() {
    let files = files();
    let table: BTreeMap<&str, Outcome> = TABLE.iter().copied().collect();
    assert_eq!(table.len(), TABLE.len(), "duplicate entries in TABLE");
    let mut failures = Vec::new();
    for (name, bytes) in &files {
        let Some(want) = table.get(name.as_str()) else {
            failures.push(format!("{name}: not in TABLE"));
            continue;
        };
        let got = outcome(bytes);
        if got != *want {
            failures.push(format!("{name}: expected {want:?}, got {got:?}"));
        }
    }
    for name in table.keys() {
        if !files.contains_key(*name) {
            failures.push(format!("{name}: in TABLE but not on disk"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rejections_carry_useful_headers() {
    let clerr = file("clerr.dat");
    let e = parse_message(&clerr).unwrap_err();
    let r = reject_response(&clerr, &e).unwrap();
    let reason = r.headers.get("Reason").unwrap();
    assert!(
        reason.contains("text=\"Content-Length 9999 larger than body"),
        "{reason}"
    );
    assert_eq!(
        r.headers.get("Call-ID"),
        Some("clerr.0ha0isndaksdjweiafasdk3")
    );
    assert!(r.headers.to_addr().unwrap().tag().is_some());

    let bext = check_request(&request("bext01.dat")).unwrap_err();
    assert_eq!(
        bext.headers.get("Unsupported"),
        Some("nothingSupportsThis, nothingSupportsThisEither")
    );
    for name in ["intmeth.dat", "esc02.dat", "mismatch02.dat"] {
        let r = check_request(&request(name)).unwrap_err();
        assert_eq!(
            r.headers.get("Allow"),
            Some("INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER"),
            "{name}"
        );
    }
    let invut = check_request(&request("invut.dat")).unwrap_err();
    assert_eq!(invut.headers.get("Accept"), Some("application/sdp"));
    let scalar = check_request(&request("scalar02.dat")).unwrap_err();
    assert!(scalar.headers.get("Reason").unwrap().contains("CSeq"));
    let multi = check_request(&request("multi01.dat")).unwrap_err();
    assert_eq!(multi.headers.count("Call-ID"), 2, "every Call-ID is echoed");
}

#[test]
fn specific_values() {
    // esc01: the user part unescapes once.
    let r = request("esc01.dat");
    assert_eq!(
        r.uri.user_unescaped().as_deref(),
        Some("sips:user@example.com")
    );
    assert_eq!(r.uri.host, "example.net");
    let to = r.headers.to_addr().unwrap();
    assert_eq!(to.uri.user_unescaped().as_deref(), Some("user"));
    let from = r.headers.from_addr().unwrap();
    assert_eq!(from.uri.user_unescaped().as_deref(), Some("I have spaces"));
    let Some(Contacts::List(c)) = r.headers.contacts().unwrap() else {
        panic!("esc01 contact")
    };
    assert_eq!(c[0].uri.user_unescaped().as_deref(), Some("caller"));
    assert_eq!(c[0].uri.param("%6C%72"), Some(None));
    let value = c[0].uri.param("n%61me").flatten().unwrap();
    assert_eq!(plugboard_sip::message::unescape(value), "value%41");
    assert_eq!(r.headers.content_type().as_deref(), Some("application/sdp"));

    // escnull: %00 does not truncate; two distinct contacts.
    let r = request("escnull.dat");
    let to = r.headers.to_addr().unwrap();
    assert_eq!(to.uri.user_unescaped().as_deref(), Some("null-\0-null"));
    let Some(Contacts::List(c)) = r.headers.contacts().unwrap() else {
        panic!("escnull contacts")
    };
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].uri.user_unescaped().as_deref(), Some("\0"));
    assert_eq!(c[1].uri.user_unescaped().as_deref(), Some("\0\0"));
    assert_ne!(c[0].uri, c[1].uri);

    // esc02: unknown method, literal display name, C%6Fntact is not Contact.
    let r = request("esc02.dat");
    assert_eq!(r.method, Method::Extension("RE%47IST%45R".into()));
    assert_eq!(
        r.headers.to_addr().unwrap().display.as_deref(),
        Some("%Z%45")
    );
    let Some(Contacts::List(c)) = r.headers.contacts().unwrap() else {
        panic!("esc02 contacts")
    };
    assert_eq!(c.len(), 2);
    assert_eq!(
        r.headers.get("C%6Fntact"),
        Some("<sip:alias2@host2.example.com>")
    );

    // cparam01: unknownparam is a contact parameter.
    let r = request("cparam01.dat");
    let Some(Contacts::List(c)) = r.headers.contacts().unwrap() else {
        panic!("cparam01 contacts")
    };
    assert_eq!(c[0].param("unknownparam"), Some(None));
    assert_eq!(c[0].uri.param("unknownparam"), None);
    assert_eq!(c[0].uri.user.as_deref(), Some("+19725552222"));

    // cparam02: unknownparam is a URI parameter.
    let r = request("cparam02.dat");
    let Some(Contacts::List(c)) = r.headers.contacts().unwrap() else {
        panic!("cparam02 contacts")
    };
    assert_eq!(c[0].uri.param("unknownparam"), Some(None));
    assert_eq!(c[0].param("unknownparam"), None);

    // regescrt: the escaped header stays in the contact URI.
    let r = request("regescrt.dat");
    let Some(Contacts::List(c)) = r.headers.contacts().unwrap() else {
        panic!("regescrt contacts")
    };
    assert_eq!(
        c[0].uri.headers.as_deref(),
        Some("Route=%3Csip:sip.example.com%3E")
    );

    // semiuri: the user part holds the semicolon.
    let r = request("semiuri.dat");
    assert_eq!(r.uri.user.as_deref(), Some("user;par=u%40example.net"));
    assert_eq!(
        r.uri.user_unescaped().as_deref(),
        Some("user;par=u@example.net")
    );
    assert_eq!(r.uri.host, "example.com");
    assert!(r.uri.params.is_empty());
    assert_eq!(
        r.headers.get("Accept"),
        Some(
            "application/sdp, application/pkcs7-mime, multipart/mixed, multipart/signed, \
             message/sip, message/sipfrag"
        )
    );

    // longreq: 34 Via lines (compact and odd-case names; the README's "28"
    // undercounts).
    let r = request("longreq.dat");
    assert_eq!(r.headers.count("Via"), 34);
    let vias = r.headers.vias().unwrap();
    assert_eq!(vias.len(), 34);
    assert_eq!(vias[0].host, "sip33.example.com");
    assert_eq!(vias.last().unwrap().host, "host.example.com");
    assert_eq!(r.body.len(), 150);
    let to = r.headers.to_addr().unwrap();
    assert!(to.display.unwrap().contains("extremeextreme"));
    assert_eq!(to.uri.port, Some(6000));

    // wsinv: folding, odd spacing, leading zeros, unknown headers kept.
    let r = request("wsinv.dat");
    assert_eq!(r.uri.param("unknownparam"), Some(None));
    let to = r.headers.to_addr().unwrap();
    assert_eq!(to.tag(), Some("1918181833n"));
    let from = r.headers.from_addr().unwrap();
    assert_eq!(from.display.as_deref(), Some("J Rosenberg \\\""));
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(r.headers.max_forwards().unwrap(), Some(68));
    assert_eq!(r.headers.cseq().unwrap().seq, 9);
    assert_eq!(r.headers.cseq().unwrap().method, Method::Invite);
    let vias = r.headers.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(
        (
            vias[0].transport.as_str(),
            vias[0].host.as_str(),
            vias[0].branch()
        ),
        ("UDP", "192.0.2.2", Some("390skdjuw"))
    );
    assert_eq!(vias[1].branch(), Some("z9hG4bK9ikj8"));
    assert_eq!(vias[2].host, "192.168.255.111");
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(
        r.headers.get("NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(
        r.headers.get("UnknownHeaderWithUnusualValue"),
        Some(";;,,;;,;")
    );
    assert_eq!(r.headers.get("Subject"), Some(""));
    let Some(Contacts::List(c)) = r.headers.contacts().unwrap() else {
        panic!("wsinv contact")
    };
    assert_eq!(c[0].display.as_deref(), Some("Quoted string \"\""));
    assert_eq!(c[0].param("newparam"), Some(Some("newvalue")));
    assert_eq!(c[0].param("secondparam"), Some(None));
    assert_eq!(c[0].param("q"), Some(Some("0.33")));
    assert_eq!(r.body.len(), 150);

    // intmeth: unusual characters everywhere.
    let r = request("intmeth.dat");
    assert_eq!(
        r.method.as_str(),
        "!interesting-Method0123456789_*+`.%indeed'~"
    );
    assert_eq!(
        r.uri.user.as_deref(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        r.uri.password.as_deref(),
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    let to = r.headers.to_addr().unwrap();
    assert_eq!(to.display.as_deref(), Some("BEL:\x07 NUL:\0 DEL:\x7f"));
    let from = r.headers.from_addr().unwrap();
    assert_eq!(
        from.display.as_deref(),
        Some("token1~` token2'+_ token3*%!.-")
    );
    assert_eq!(from.tag(), Some("_token~1'+`*%!-."));

    // transports: unknown transports are fine.
    let r = request("transports.dat");
    let t: Vec<String> = r
        .headers
        .vias()
        .unwrap()
        .into_iter()
        .map(|v| v.transport)
        .collect();
    assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);

    // dblreq: only the REGISTER, trailing octets discarded.
    let r = request("dblreq.dat");
    assert_eq!(r.method, Method::Register);
    assert!(r.body.is_empty());
    assert_eq!(
        r.headers.call_id(),
        Some("dblreq.0ha0isndaksdj99sdfafnl3lk233412")
    );

    // mpart01: binary body framed by Content-Length.
    let r = request("mpart01.dat");
    assert_eq!(r.body.len(), 553);
    assert!(r.body.contains(&0));
    assert!(r.body.ends_with(b"--7a9cbec02ceef655--\r\n"));

    // inv2543: no Content-Length, body is the rest of the datagram.
    let r = request("inv2543.dat");
    assert!(r.body.starts_with(b"v=0\r\n") && r.body.ends_with(b"RTP/AVP 0\r\n"));

    // lwsdisp, unksm2, novelsc, unkscm.
    let r = request("lwsdisp.dat");
    assert_eq!(
        r.headers.from_addr().unwrap().display.as_deref(),
        Some("caller")
    );
    let r = request("unksm2.dat");
    assert_eq!(r.headers.to_addr().unwrap().uri.scheme, "isbn");
    assert_eq!(r.headers.from_addr().unwrap().uri.scheme, "http");
    let r = request("novelsc.dat");
    assert_eq!(r.uri.scheme, "soap.beep");
    let r = request("unkscm.dat");
    assert_eq!(r.uri.host, "totallyopaquecontent");

    // Responses.
    match parse_message(&file("noreason.dat")).unwrap() {
        Message::Response(r) => assert_eq!((r.status, r.reason.as_str()), (100, "")),
        _ => panic!("noreason"),
    }
    match parse_message(&file("unreason.dat")).unwrap() {
        Message::Response(r) => {
            assert_eq!(r.status, 200);
            assert!(r.reason.starts_with("= 2**3 * 5**2 "));
            assert!(!r.reason.is_ascii());
        }
        _ => panic!("unreason"),
    }
    match parse_message(&file("bcast.dat")).unwrap() {
        Message::Response(r) => assert_eq!(r.headers.vias().unwrap()[1].host, "255.255.255.255"),
        _ => panic!("bcast"),
    }
    // badvers answers 505.
    let e = parse_message(&file("badvers.dat")).unwrap_err();
    assert_eq!(e.status, 505);
}

// ---------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn byte(&mut self) -> u8 {
        // Bias toward the bytes that matter to the grammar.
        const SPECIAL: &[u8] = b"\r\n :;,<>\"\\@?=/%[]\t0123456789\0\xff";
        if self.next().is_multiple_of(2) {
            SPECIAL[self.below(SPECIAL.len())]
        } else {
            self.next() as u8
        }
    }
}

/// Runs everything a received message goes through; must never panic.
fn exercise(bytes: &[u8]) {
    match parse_message(bytes) {
        Ok(m) => {
            let h = m.headers();
            let _ = (
                h.vias(),
                h.top_via(),
                h.from_addr(),
                h.to_addr(),
                h.call_id(),
            );
            let _ = (
                h.cseq(),
                h.contacts(),
                h.max_forwards(),
                h.expires(),
                h.content_type(),
            );
            match &m {
                Message::Request(r) => {
                    let _ = check_request(r);
                }
                Message::Response(r) => {
                    let _ = check_response(r);
                }
            }
            let _ = m.to_bytes();
        }
        Err(e) => {
            let _ = reject_response(bytes, &e);
        }
    }
    let mut f = StreamFramer::new(8192);
    f.push(bytes);
    for _ in 0..8 {
        if f.next().is_none() {
            break;
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..3000 {
        let len = rng.below(300);
        let mut b: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
        if rng.below(2) == 0 {
            // Give it a plausible start so the header code gets exercised.
            let mut m = b"INVITE sip:a@b SIP/2.0\r\nVia: ".to_vec();
            m.append(&mut b);
            b = m;
        }
        exercise(&b);
    }
}

#[test]
fn truncations_and_mutations_never_panic() {
    let mut rng = XorShift(0xDEAD_BEEF_CAFE_F00D);
    for bytes in files().values() {
        for cut in 0..bytes.len().min(600) {
            exercise(&bytes[..cut]);
        }
        for _ in 0..300 {
            let mut b = bytes.clone();
            for _ in 0..=rng.below(4) {
                let i = rng.below(b.len());
                match rng.below(3) {
                    0 => b[i] = rng.byte(),
                    1 => {
                        b.remove(i);
                    }
                    _ => b.insert(i, rng.byte()),
                }
            }
            exercise(&b);
        }
    }
}

/// Drops Content-Length lines: printing moves the header to the end and
/// recomputes it from the body, so it is the one thing that may differ.
fn without_content_length(mut m: Message) -> Message {
    m.headers_mut().remove("Content-Length");
    m
}

#[test]
fn print_then_parse_gives_the_same_message() {
    let mut checked = 0;
    for (name, bytes) in files() {
        let Ok(m) = parse_message(&bytes) else {
            continue;
        };
        let printed = m.to_bytes();
        let again = parse_message(&printed).unwrap_or_else(|e| panic!("{name}: reparse: {e}"));
        assert_eq!(
            without_content_length(again),
            without_content_length(m.clone()),
            "{name}"
        );
        // And the typed views survive as well.
        let (a, b) = (m.headers(), parse_message(&printed).unwrap());
        assert_eq!(a.vias(), b.headers().vias(), "{name}");
        assert_eq!(a.from_addr(), b.headers().from_addr(), "{name}");
        assert_eq!(a.contacts(), b.headers().contacts(), "{name}");
        checked += 1;
    }
    assert!(checked >= 35, "only {checked} files parsed");
}

#[test]
fn typed_values_round_trip_through_display() {
    for (name, bytes) in files() {
        let Ok(m) = parse_message(&bytes) else {
            continue;
        };
        if let Message::Request(r) = &m {
            assert_eq!(
                r.uri.to_string().parse::<plugboard_sip::Uri>().as_ref(),
                Ok(&r.uri),
                "{name}"
            );
        }
        for addr in [m.headers().from_addr(), m.headers().to_addr()]
            .into_iter()
            .flatten()
        {
            let again: plugboard_sip::NameAddr = addr
                .to_string()
                .parse()
                .unwrap_or_else(|e| panic!("{name}: {addr}: {e}"));
            assert_eq!(again, addr, "{name}");
        }
        if let Ok(Some(Contacts::List(list))) = m.headers().contacts() {
            for c in list {
                assert_eq!(
                    c.to_string().parse::<plugboard_sip::NameAddr>(),
                    Ok(c),
                    "{name}"
                );
            }
        }
    }
}

#[test]
fn stream_framer_is_split_independent() {
    let mut messages = Vec::new();
    for (_, bytes) in files() {
        if let Ok(m) = parse_message(&bytes) {
            messages.push(m);
        }
    }
    let mut stream = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        if i % 3 == 0 {
            stream.extend_from_slice(b"\r\n\r\n"); // keep-alive
        }
        stream.extend(m.to_bytes());
    }
    let mut rng = XorShift(0x1234_5678_9ABC_DEF1);
    for round in 0..200 {
        let mut f = StreamFramer::new(8192);
        let mut got = Vec::new();
        let mut i = 0;
        while i < stream.len() {
            let n = if round == 0 { 1 } else { 1 + rng.below(700) };
            let end = (i + n).min(stream.len());
            f.push(&stream[i..end]);
            i = end;
            while let Some(item) = f.next() {
                got.push(item.expect("valid message"));
            }
        }
        assert_eq!(f.buffered(), 0);
        assert_eq!(got.len(), messages.len(), "round {round}");
        for (a, b) in got.into_iter().zip(&messages) {
            assert_eq!(without_content_length(a), without_content_length(b.clone()));
        }
    }
}

#[test]
fn torture_files_on_a_stream() {
    let next = |name: &str| {
        let mut f = StreamFramer::new(65536);
        f.push(&file(name));
        f.next()
    };
    // Content-Length larger than what arrived: keep waiting (RFC 4475 3.1.2.2).
    assert!(next("clerr.dat").is_none());
    // Negative or conflicting Content-Length: close the connection.
    for name in ["ncl.dat", "mcl01.dat"] {
        match next(name) {
            Some(Err(e @ FrameError::BadContentLength(_))) => assert!(e.is_fatal()),
            other => panic!("{name}: {other:?}"),
        }
    }
    // No Content-Length on a stream: framing is impossible.
    assert_eq!(
        next("inv2543.dat"),
        Some(Err(FrameError::MissingContentLength))
    );
    // Framing intact, message malformed: answer and go on.
    match next("ltgtruri.dat") {
        Some(Err(FrameError::Message(e, raw))) => {
            assert_eq!(e.status, 400);
            assert_eq!(reject_response(&raw, &e).map(|r| r.status), Some(400));
        }
        other => panic!("ltgtruri: {other:?}"),
    }
    // dblreq on a stream: the REGISTER, then the INVITE (a whole second
    // message there), then its body overruns Content-Length 150 by 5 octets
    // ("C\r\n\r\n"), which reads as a header section without Content-Length.
    let mut f = StreamFramer::new(65536);
    f.push(&file("dblreq.dat"));
    let mut methods = Vec::new();
    while let Some(Ok(m)) = f.next() {
        match m {
            Message::Request(r) => methods.push(r.method),
            Message::Response(_) => panic!("dblreq response"),
        }
    }
    assert_eq!(methods, [Method::Register, Method::Invite]);
    assert_eq!(f.next(), Some(Err(FrameError::MissingContentLength)));
}
