//! Screener and listener plugins end to end: the block-list screener refuses
//! a blocked caller with 603 (and, reconfigured at run time, diverts it),
//! and the webhook listener posts the tenant's events to a real HTTP server
//! on loopback — and to nothing that is not on its allow-list — and over
//! HTTPS to a server whose certificate the operator's CA file vouches for.
//! A plugin that keeps faulting is disabled for the tenant, with an event.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plugboard_e2e::{
    DOMAIN, OPERATOR_TOKEN, Pbx, Setup, call, describe, free_udp_port, plugin_wasm, register_at,
};
use serde_json::{Value, json};

/// A minimal HTTP/1.1 server that answers 204 and keeps every request body.
fn webhook_server() -> (u16, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let store = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut reader = BufReader::new(conn.try_clone().expect("clone"));
            let mut len = 0usize;
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            if reader.read_exact(&mut body).is_ok()
                && let Ok(v) = serde_json::from_slice::<Value>(&body)
            {
                store.lock().expect("lock").push(v);
            }
            let _ = conn.write_all(
                b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (port, got)
}

fn wait_for(got: &Arc<Mutex<Vec<Value>>>, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = got.lock().expect("lock").clone();
        if pred(&v) || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_screener_refuses_and_diverts_and_a_listener_posts_events_to_allowed_hosts_only() {
    let (port, got) = webhook_server();
    let mut s = Setup::default();
    for p in ["echo-info", "blocklist", "webhook", "trap"] {
        s.plugins.push((p.into(), plugin_wasm(p)));
    }
    s.plugin_grants
        .push(("echo-info".into(), vec!["kv".into()]));
    s.dialplan = vec![
        r#""500" = { plugin = "echo-info" }"#.into(),
        r#""503" = { plugin = "trap" }"#.into(),
    ];
    s.admin = vec![DOMAIN.into()];
    s.extra_toml = format!(
        "[tenant.plugins.blocklist]\nconfig = {{ blocked = \"104, 09*\" }}\n\
         [tenant.plugins.webhook]\ngrants = [\"http\"]\nhttp_hosts = [\"127.0.0.1:{port}\"]\n\
         config = {{ url = \"http://127.0.0.1:{port}/hook\" }}\n"
    );
    // extra_toml lands after the tenant's dial plan: the tables belong to it.
    let pbx = Pbx::start(&s);

    // A blocked caller is refused with the configured 603.
    let out = call(&pbx, "uac_expect_603.xml", "104", "500", 30);
    assert!(
        out.status.success(),
        "blocked caller: {}\n{}",
        describe(&out),
        pbx.log()
    );
    // Anyone else reaches the plugin.
    let out = call(&pbx, "uac_gets_bye.xml", "101", "500", 30);
    assert!(out.status.success(), "allowed caller: {}", describe(&out));

    // The listener saw the allowed call start, get answered and end, in order.
    let events = wait_for(&got, |v| v.iter().any(|e| e["event"] == "call-ended"));
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    let started = names
        .iter()
        .position(|n| *n == "call-started")
        .expect("call-started posted");
    let answered = names
        .iter()
        .position(|n| *n == "call-answered")
        .expect("call-answered posted");
    let ended = names
        .iter()
        .position(|n| *n == "call-ended")
        .expect("call-ended posted");
    assert!(started < answered && answered < ended, "{names:?}");
    let e = &events[ended];
    assert_eq!(e["tenant"], DOMAIN, "{e}");
    assert_eq!(e["caller"], "101", "{e}");
    assert_eq!(e["callee"], "500", "{e}");
    assert!(
        !events.iter().any(|e| e["caller"] == "104"),
        "the refused call never started: {events:?}"
    );
    // A registration is an event too.
    register_at(&pbx, "102", free_udp_port());
    let events = wait_for(&got, |v| {
        v.iter().any(|e| e["event"] == "registration-changed")
    });
    let reg = events
        .iter()
        .find(|e| e["event"] == "registration-changed")
        .expect("registration-changed posted");
    assert_eq!(
        (reg["user"].as_str(), reg["contacts"].as_u64()),
        (Some("102"), Some(1))
    );

    // Reconfigured at run time: blocked callers are diverted to 500 instead.
    let path = format!("/v1/tenants/{DOMAIN}/plugins/blocklist");
    let (st, b) = pbx.api(
        "PUT",
        &path,
        OPERATOR_TOKEN,
        Some(&json!({"config": {"blocked": "104", "divert": "500"}})),
    );
    assert_eq!(st, 200, "{b}");
    let out = call(&pbx, "uac_gets_bye.xml", "104", "999", 30);
    assert!(
        out.status.success(),
        "diverted caller: {}\n{}",
        describe(&out),
        pbx.log()
    );
    // CDRs: the allowed call and the diverted one (the refused call never started).
    let cdr = pbx
        .wait_cdrs(2, Duration::from_secs(10))
        .into_iter()
        .rfind(|c| c["from"] == "104")
        .expect("CDR of the diverted call");
    assert_eq!(cdr["to"], "500", "{cdr}");
    assert_eq!(cdr["plugin"], "echo-info", "{cdr}");

    // A plugin that keeps faulting: three faults disable it for the tenant
    // (the next call gets 503 at once) and the listener hears about it.
    for i in 0..3 {
        let out = call(&pbx, "uac_expect_500.xml", "101", "503", 30);
        assert!(out.status.success(), "trap call {i}: {}", describe(&out));
    }
    let out = call(&pbx, "uac_expect_503.xml", "101", "503", 30);
    assert!(out.status.success(), "disabled plugin: {}", describe(&out));
    let events = wait_for(&got, |v| v.iter().any(|e| e["event"] == "plugin-disabled"));
    let faults = events
        .iter()
        .filter(|e| e["event"] == "plugin-fault")
        .count();
    assert_eq!(faults, 3, "{events:?}");
    let off = events
        .iter()
        .find(|e| e["event"] == "plugin-disabled")
        .expect("plugin-disabled posted");
    assert_eq!(
        (off["plugin"].as_str(), off["backoff_s"].as_u64()),
        (Some("trap"), Some(10)),
        "{off}"
    );

    // The webhook pointed at a host outside its allow-list posts nothing.
    let before = got.lock().expect("lock").len();
    let (st, b) = pbx.api(
        "PUT",
        &format!("/v1/tenants/{DOMAIN}/plugins/webhook"),
        OPERATOR_TOKEN,
        Some(&json!({"config": {"url": format!("http://127.0.0.2:{port}/hook")}})),
    );
    assert_eq!(st, 200, "{b}");
    let out = call(&pbx, "uac_gets_bye.xml", "101", "500", 30);
    assert!(out.status.success(), "{}", describe(&out));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        got.lock().expect("lock").len(),
        before,
        "nothing reached the server"
    );
    assert!(
        pbx.log().contains("not on this plugin's allow-list"),
        "the denial is logged"
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it (openssl).
fn test_pki(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
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
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext.cnf");
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
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
            "srv.key",
            "-out",
            "srv.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    ]
    .concat());
    run(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

/// An HTTPS server (Python's ssl + http.server) that appends each POSTed
/// body as a line to `out`; returns the child and its port.
fn https_server(dir: &std::path::Path, out: &std::path::Path) -> (std::process::Child, u16) {
    let script = dir.join("server.py");
    std::fs::write(
        &script,
        r#"import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        with open(sys.argv[3], "ab") as f:
            f.write(body + b"\n")
        self.send_response(204)
        self.end_headers()
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#,
    )
    .expect("server.py");
    let mut child = std::process::Command::new("python3")
        .arg(&script)
        .arg(dir.join("srv.pem"))
        .arg(dir.join("srv.key"))
        .arg(out)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("port line");
    (child, line.trim().parse().expect("port"))
}

#[test]
fn a_listener_posts_over_https_to_a_server_signed_by_the_operators_ca() {
    let pki = tempfile::tempdir().expect("tempdir");
    test_pki(pki.path());
    let out = pki.path().join("events.jsonl");
    let (mut server, port) = https_server(pki.path(), &out);
    let mut s = Setup::default();
    for p in ["echo-info", "webhook"] {
        s.plugins.push((p.into(), plugin_wasm(p)));
    }
    s.plugin_grants
        .push(("echo-info".into(), vec!["kv".into()]));
    s.dialplan = vec![r#""500" = { plugin = "echo-info" }"#.into()];
    s.server_extra.push(format!(
        "http_ca_file = \"{}\"",
        pki.path().join("ca.pem").display()
    ));
    s.extra_toml = format!(
        "[tenant.plugins.webhook]\ngrants = [\"http\"]\nhttp_hosts = [\"127.0.0.1:{port}\"]\n\
         config = {{ url = \"https://127.0.0.1:{port}/hook\", events = \"call-ended\" }}\n"
    );
    let pbx = Pbx::start(&s);
    let o = call(&pbx, "uac_gets_bye.xml", "101", "500", 30);
    assert!(o.status.success(), "{}", describe(&o));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut text = String::new();
    while Instant::now() < deadline && !text.contains("call-ended") {
        std::thread::sleep(Duration::from_millis(100));
        text = std::fs::read_to_string(&out).unwrap_or_default();
    }
    let _ = server.kill();
    let _ = server.wait();
    let ev: Value = serde_json::from_str(text.lines().next().unwrap_or("null")).expect("JSON line");
    assert_eq!(
        (ev["event"].as_str(), ev["caller"].as_str()),
        (Some("call-ended"), Some("101")),
        "{text}\n{}",
        pbx.log()
    );
}
