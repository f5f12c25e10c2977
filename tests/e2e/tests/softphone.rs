//! A real softphone: baresip (Debian package) registers with digest
//! authentication, and a wrong password is refused.
//!
//! Only registration is exercised: baresip 1.0 puts the machine's first
//! non-loopback address in its SDP, and the tests send nothing off loopback.

use std::process::Command;
use std::time::Duration;

use plugboard_e2e::{DOMAIN, Pbx, Setup, free_udp_port, wait_bounded};

fn baresip(pbx: &Pbx, password: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_udp_port();
    std::fs::write(
        dir.path().join("config"),
        format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{port}\nmodule_path /usr/lib/baresip/modules\n\
             module g711.so\nmodule_app account.so\n"
        ),
    )
    .expect("config");
    std::fs::write(
        dir.path().join("accounts"),
        format!(
            "<sip:101@{DOMAIN}>;auth_pass={password};outbound=\"sip:{}\";regint=600\n",
            pbx.udp
        ),
    )
    .expect("accounts");
    let child = Command::new("baresip")
        .args(["-4", "-f"])
        .arg(dir.path())
        .args(["-t", "3"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("baresip (install the baresip package)");
    let out = wait_bounded(child, Duration::from_secs(15));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn baresip_registers_with_the_right_password_only() {
    // baresip 1.0's SIP stack fails on a challenge it cannot answer (SHA-256)
    // even when an MD5 one is offered too: offer MD5 only, as an operator with
    // such phones must.
    let setup = Setup {
        server_extra: vec!["digest_algorithms = [\"MD5\"]".into()],
        ..Setup::default()
    };
    let pbx = Pbx::start(&setup);
    let out = baresip(&pbx, "pw101");
    assert!(
        out.contains("200 OK") && out.contains("1 binding"),
        "baresip did not register:\n{out}\nlog:\n{}",
        pbx.log()
    );
    let out = baresip(&pbx, "wrong");
    assert!(
        out.contains("403"),
        "a wrong password must be refused:\n{out}"
    );
    assert!(
        !out.contains("1 binding"),
        "registered with a wrong password:\n{out}"
    );
}
