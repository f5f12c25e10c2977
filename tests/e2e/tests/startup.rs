//! Bad input at start-up: a bad config names file, line and problem and exits
//! 2; a plugin that is missing or not a component, and a SIP port in use, stop
//! the start with a message naming them.

use std::process::Command;

use plugboard_e2e::{DOMAIN, plugboard_bin, repo_root};

fn run_with(config: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, config).expect("write");
    let out = Command::new(plugboard_bin())
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .expect("run plugboard");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn server(udp: &str) -> String {
    format!(
        "[server]\nsip_udp = \"{udp}\"\ndata_dir = \"data\"\nprompts_dir = \"{}\"\n",
        repo_root().join("prompts").display()
    )
}

#[test]
fn a_bad_config_names_file_line_and_problem_and_exits_2() {
    let cfg = format!(
        "{}\n[[tenant]]\ndomain = \"{DOMAIN}\"\n[[tenant.user]]\nextension = \"101\"\npassword = \"x\"\n\
         [[tenant.user]]\nextension = \"101\"\npassword = \"y\"\n",
        server("127.0.0.1:0")
    );
    let (code, err) = run_with(&cfg);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("bad.toml:"), "no file name: {err}");
    assert!(err.contains("duplicate extension"), "no problem: {err}");
    let line = err
        .split("bad.toml:")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .unwrap_or("");
    assert_eq!(
        line, "12",
        "wrong line (the second `extension = \"101\"`): {err}"
    );

    let (code, err) = run_with(&format!("{}\nunknown_key = 1\n", server("127.0.0.1:0")));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("bad.toml:6:"), "unknown key line: {err}");
}

#[test]
fn a_missing_or_invalid_plugin_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not a component").expect("write");
    for (path, what) in [
        (dir.path().join("absent.wasm"), "absent.wasm"),
        (junk, "junk.wasm"),
    ] {
        let cfg = format!(
            "{}\n[plugins.broken]\npath = \"{}\"\n[[tenant]]\ndomain = \"{DOMAIN}\"\n",
            server("127.0.0.1:0"),
            path.display()
        );
        let (code, err) = run_with(&cfg);
        assert_eq!(code, Some(1), "{err}");
        assert!(
            err.contains("broken") && err.contains(what),
            "plugin not named: {err}"
        );
    }
}

#[test]
fn a_sip_port_in_use_is_a_clear_error() {
    let busy = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = busy.local_addr().expect("addr").to_string();
    let cfg = format!("{}\n[[tenant]]\ndomain = \"{DOMAIN}\"\n", server(&addr));
    let (code, err) = run_with(&cfg);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&addr) && err.contains("in use"),
        "port not named: {err}"
    );
}
