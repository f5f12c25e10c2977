//! Every RFC 4475 torture message sent over UDP to the real binary: invalid
//! messages get the status code the RFC gives, responses are dropped, valid
//! requests are not refused as malformed, and the host keeps serving.

use std::net::UdpSocket;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use plugboard_e2e::{Pbx, Setup, repo_root};

fn torture_dir() -> PathBuf {
    repo_root().join("../shared/sip-torture")
}

/// Sends one datagram and collects the status codes of the responses for `wait`.
fn exchange(sock: &UdpSocket, to: std::net::SocketAddr, msg: &[u8], wait: Duration) -> Vec<u16> {
    sock.send_to(msg, to).expect("send");
    let mut codes = Vec::new();
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 65535];
    while Instant::now() < deadline {
        sock.set_read_timeout(Some(
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        ))
        .expect("timeout");
        match sock.recv_from(&mut buf) {
            Ok((n, _)) => {
                let text = String::from_utf8_lossy(&buf[..n]);
                if let Some(code) = text
                    .strip_prefix("SIP/2.0 ")
                    .and_then(|r| r.get(..3))
                    .and_then(|c| c.parse().ok())
                {
                    codes.push(code);
                    if code >= 200 {
                        break;
                    }
                }
            }
            Err(_) => break,
        }
    }
    codes
}

/// What the host must answer: Some(codes) = the final code is one of these;
/// None = no answer at all (responses are dropped).
fn expected(file: &str) -> Option<&'static [u16]> {
    Some(match file {
        // Responses: never answered.
        "unreason.dat" | "noreason.dat" | "scalarlg.dat" | "bigcode.dat" | "bcast.dat" => {
            return None;
        }
        // Invalid syntax or framing: 400.
        "badinv01.dat" | "clerr.dat" | "ncl.dat" | "scalar02.dat" | "quotbal.dat"
        | "ltgtruri.dat" | "lwsruri.dat" | "lwsstart.dat" | "trws.dat" | "escruri.dat"
        | "regbadct.dat" | "badaspec.dat" | "baddn.dat" | "mismatch01.dat" | "insuf.dat"
        | "multi01.dat" | "mcl01.dat" | "unksm2.dat" => &[400],
        "badvers.dat" => &[505],
        "mismatch02.dat" | "intmeth.dat" | "esc02.dat" => &[501, 400],
        "unkscm.dat" | "novelsc.dat" => &[416],
        "bext01.dat" => &[420],
        "invut.dat" => &[415],
        "sdp01.dat" => &[406, 400],
        // Valid requests for domains this host does not serve, or OPTIONS.
        _ => &[200, 404, 405, 403, 401, 481],
    })
}

fn branch_of(msg: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(msg);
    let i = text.find("branch=")? + "branch=".len();
    let rest = &text[i..];
    let end = rest
        .find(|c: char| c == ';' || c == ',' || c.is_whitespace())
        .unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

#[test]
fn every_torture_message_gets_the_rfc_answer_and_the_host_survives() {
    let mut pbx = Pbx::start(&Setup::default());
    let mut branches = std::collections::HashSet::new();
    let mut files: Vec<_> = std::fs::read_dir(torture_dir())
        .expect("../shared/sip-torture beside the repository")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "dat"))
        .collect();
    files.sort();
    assert!(files.len() >= 49, "torture files missing: {}", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(path).expect("read");
        // Several files reuse a Via branch: to a real host that is a
        // retransmission of the earlier request (RFC 3261 17.2.3), answered
        // to the earlier sender. Such a file gets a fresh host.
        if let Some(b) = branch_of(&bytes)
            && !branches.insert(b)
        {
            pbx = Pbx::start(&Setup::default());
            branches.clear();
            branches.insert(branch_of(&bytes).expect("branch"));
        }
        let wait = if expected(&name).is_none() {
            Duration::from_millis(300)
        } else {
            Duration::from_secs(2)
        };
        // A fresh socket per message: retransmitted final responses to earlier
        // INVITEs (which this test never ACKs) must not be mistaken for answers.
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let codes = exchange(&sock, pbx.udp, &bytes, wait);
        let last = codes.iter().copied().rfind(|c| *c >= 200);
        match (expected(&name), last) {
            (None, None) => {}
            (None, Some(c)) => failures.push(format!("{name}: response answered with {c}")),
            (Some(_), None) if name == "test.dat" => {}
            (Some(ok), Some(c)) if ok.contains(&c) => {}
            (Some(ok), got) => failures.push(format!(
                "{name}: expected one of {ok:?}, got {got:?} ({codes:?})"
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "torture failures:\n{}\nlog:\n{}",
        failures.join("\n"),
        pbx.log()
    );
    // Still serving.
    let options = format!(
        "OPTIONS sip:{d} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKafter\r\nMax-Forwards: 70\r\n\
         From: <sip:t@{d}>;tag=1\r\nTo: <sip:{d}>\r\nCall-ID: after-torture\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        d = plugboard_e2e::DOMAIN
    );
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let codes = exchange(&sock, pbx.udp, options.as_bytes(), Duration::from_secs(2));
    assert_eq!(codes.last(), Some(&200), "OPTIONS after the torture run");
}
