//! Digest authentication over the wire with SHA-256 (RFC 8760) and stale
//! nonces, using the host's own client-side digest code as the UA (SIPp only
//! speaks MD5).

use std::net::UdpSocket;
use std::time::Duration;

use plugboard_e2e::{DOMAIN, Pbx, Setup};
use plugboard_sip::auth::{Algorithm, Challenge, client_authorization};
use plugboard_sip::parse::parse_message;
use plugboard_sip::{Message, Response};

fn register(sock: &UdpSocket, pbx: &Pbx, cseq: u32, auth: Option<&str>) -> Response {
    let local = sock.local_addr().expect("addr");
    let mut msg = format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-digest-{cseq};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:101@{DOMAIN}>;tag=dt1\r\nTo: <sip:101@{DOMAIN}>\r\n\
         Call-ID: digest-test@127.0.0.1\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:101@{local}>\r\nExpires: 600\r\n"
    );
    if let Some(a) = auth {
        msg.push_str(&format!("Authorization: {a}\r\n"));
    }
    msg.push_str("Content-Length: 0\r\n\r\n");
    sock.send_to(msg.as_bytes(), pbx.udp).expect("send");
    let mut buf = [0u8; 65535];
    loop {
        let (n, _) = sock.recv_from(&mut buf).expect("response within 5 s");
        if let Ok(Message::Response(r)) = parse_message(&buf[..n])
            && r.status >= 200
        {
            return r;
        }
    }
}

fn challenge(r: &Response, algorithm: &str) -> Challenge {
    let v = r
        .headers
        .get_all("WWW-Authenticate")
        .find(|v| v.contains(&format!("algorithm={algorithm}")))
        .unwrap_or_else(|| panic!("no {algorithm} challenge in {r:?}"));
    let field = |name: &str| {
        let i = v.find(&format!("{name}=\"")).expect(name) + name.len() + 2;
        v[i..].split('"').next().expect("value").to_string()
    };
    Challenge {
        realm: field("realm"),
        nonce: field("nonce"),
        opaque: None,
        algorithm: if algorithm == "SHA-256" {
            Algorithm::Sha256
        } else {
            Algorithm::Md5
        },
        stale: v.contains("stale=true"),
    }
}

#[test]
fn sha256_digest_registers_and_a_stale_nonce_is_rechallenged() {
    let setup = Setup {
        server_extra: vec![
            "digest_algorithms = [\"SHA-256\", \"MD5\"]".into(),
            "nonce_lifetime_secs = 1".into(),
        ],
        ..Setup::default()
    };
    let pbx = Pbx::start(&setup);
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");

    let r = register(&sock, &pbx, 1, None);
    assert_eq!(r.status, 401);
    let first = r.headers.get("WWW-Authenticate").expect("challenge");
    assert!(
        first.contains("algorithm=SHA-256"),
        "SHA-256 must be offered first: {first}"
    );
    let c = challenge(&r, "SHA-256");
    assert_eq!(c.realm, DOMAIN);
    let uri = format!("sip:{DOMAIN}");
    let auth = client_authorization(&c, "REGISTER", &uri, "101", "pw101", "abcdef", 1);
    assert_eq!(
        register(&sock, &pbx, 2, Some(&auth)).status,
        200,
        "SHA-256 credentials"
    );

    let bad = client_authorization(&c, "REGISTER", &uri, "101", "wrong", "abcdef", 2);
    assert_eq!(
        register(&sock, &pbx, 3, Some(&bad)).status,
        403,
        "wrong password"
    );

    // The nonce expires after 1 s: the same (correct) credentials now get a
    // fresh challenge marked stale, and the new nonce works.
    std::thread::sleep(Duration::from_millis(2200));
    let again = client_authorization(&c, "REGISTER", &uri, "101", "pw101", "abcdef", 3);
    let r = register(&sock, &pbx, 4, Some(&again));
    assert_eq!(r.status, 401, "stale nonce");
    let c2 = challenge(&r, "SHA-256");
    assert!(c2.stale, "stale=true expected: {r:?}");
    let fresh = client_authorization(&c2, "REGISTER", &uri, "101", "pw101", "abcdef", 1);
    assert_eq!(register(&sock, &pbx, 5, Some(&fresh)).status, 200);
}
