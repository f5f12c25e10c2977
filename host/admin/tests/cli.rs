//! The CLI against a real server on loopback.

mod common;

use std::process::ExitCode;

use clap::Parser;
use common::{A_ADMIN, OPERATOR, Server};
use plugboard_admin::cli::{self, Command, GlobalOpts};
use serde_json::{Value, json};

#[derive(Parser)]
struct TestCli {
    #[command(flatten)]
    opts: GlobalOpts,
    #[command(subcommand)]
    command: Command,
}

struct Outcome {
    code: ExitCode,
    out: String,
    err: String,
}

async fn plugboard(s_url: &str, token: Option<&str>, args: &[&str]) -> Outcome {
    let mut argv = vec!["plugboard", "--api", s_url];
    if let Some(t) = token {
        argv.extend(["--token", t]);
    }
    argv.extend_from_slice(args);
    let cli = TestCli::try_parse_from(argv).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = cli::run_to(cli.opts, cli.command, &mut out, &mut err).await;
    Outcome {
        code,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    }
}

#[tokio::test]
async fn commands_print_json_csv_and_text() {
    let s = Server::start().await;
    let url = s.url();
    let o = plugboard(&url, None, &["health"]).await;
    assert_eq!(o.code, ExitCode::SUCCESS);
    assert_eq!(o.out, "{\n  \"status\": \"ok\"\n}\n");

    let o = plugboard(&url, Some(OPERATOR), &["tenant", "list"]).await;
    let v: Value = serde_json::from_str(&o.out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);

    let o = plugboard(
        &url,
        Some(A_ADMIN),
        &[
            "user",
            "add",
            "a.test",
            "102",
            "--password",
            "p",
            "--name",
            "Bob",
        ],
    )
    .await;
    assert_eq!(o.code, ExitCode::SUCCESS, "{}", o.err);
    let o = plugboard(&url, Some(A_ADMIN), &["user", "list", "a.test"]).await;
    assert!(o.out.contains("\"display_name\": \"Bob\""), "{}", o.out);
    let o = plugboard(&url, Some(A_ADMIN), &["user", "delete", "a.test", "102"]).await;
    assert_eq!((o.code, o.out.as_str()), (ExitCode::SUCCESS, ""));

    let o = plugboard(
        &url,
        Some(A_ADMIN),
        &[
            "dialplan",
            "set",
            "a.test",
            "*98",
            "--plugin",
            "vm",
            "--config",
            "timeout_s=20",
            "--config",
            "mode=mailbox",
        ],
    )
    .await;
    assert_eq!(o.code, ExitCode::SUCCESS, "{}", o.err);
    let entry: Value = serde_json::from_str(&o.out).unwrap();
    assert_eq!(
        entry,
        json!({"number": "*98", "plugin": "vm", "config": {"timeout_s": 20, "mode": "mailbox"}})
    );
    let o = plugboard(
        &url,
        Some(A_ADMIN),
        &["dialplan", "delete", "a.test", "*98"],
    )
    .await;
    assert_eq!(o.code, ExitCode::SUCCESS, "{}", o.err);

    let o = plugboard(&url, Some(A_ADMIN), &["cdrs", "a.test", "--csv"]).await;
    assert!(o.out.starts_with("call_id,tenant,from,to,"), "{}", o.out);
    assert!(o.out.contains("\r\nc1@x,a.test,101,*98,"));

    let o = plugboard(&url, Some(OPERATOR), &["metrics"]).await;
    assert!(
        o.out.starts_with("# HELP plugboard_calls_active"),
        "{}",
        o.out
    );

    let o = plugboard(&url, Some(OPERATOR), &["calls"]).await;
    assert_eq!(
        serde_json::from_str::<Value>(&o.out)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let o = plugboard(&url, Some(A_ADMIN), &["registrations", "a.test"]).await;
    assert!(o.out.contains("sip:101@"));
    s.stop().await;
}

#[tokio::test]
async fn plugin_install_enable_swap_rollback_grant() {
    let s = Server::start().await;
    let url = s.url();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("plugin.toml"),
        "name = \"vm\"\nversion = \"1.0.0\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("plugin.wasm"), b"\0asm\x0d\0\x01\0").unwrap();
    let d = dir.path().to_str().unwrap();
    let o = plugboard(&url, Some(OPERATOR), &["plugin", "install", d]).await;
    assert_eq!(o.code, ExitCode::SUCCESS, "{}", o.err);
    assert_eq!(
        s.fake
            .last_upload
            .lock()
            .unwrap()
            .as_ref()
            .unwrap()
            .component,
        b"\0asm\x0d\0\x01\0"
    );
    let o = plugboard(
        &url,
        Some(A_ADMIN),
        &[
            "plugin",
            "enable",
            "a.test",
            "vm",
            "--config",
            "pin=\"0042\"",
        ],
    )
    .await;
    assert_eq!(o.code, ExitCode::SUCCESS, "{}", o.err);
    let o = plugboard(
        &url,
        Some(A_ADMIN),
        &["plugin", "swap", "a.test", "vm", "2.0.0"],
    )
    .await;
    let v: Value = serde_json::from_str(&o.out).unwrap();
    assert_eq!(
        (v["version"].as_str(), v["config"]["pin"].as_str()),
        (Some("2.0.0"), Some("0042"))
    );
    let o = plugboard(&url, Some(A_ADMIN), &["plugin", "rollback", "a.test", "vm"]).await;
    assert!(o.out.contains("\"version\": \"1.0.0\""));
    let o = plugboard(
        &url,
        Some(A_ADMIN),
        &["plugin", "grant", "a.test", "vm", "kv"],
    )
    .await;
    assert_eq!(o.code, ExitCode::FAILURE);
    assert_eq!(
        o.err,
        "error: this route is for the operator only (HTTP 403)\n"
    );
    let o = plugboard(
        &url,
        Some(OPERATOR),
        &["plugin", "grant", "a.test", "vm", "kv", "recordings"],
    )
    .await;
    assert!(o.out.contains("\"recordings\""), "{}", o.err);
    let o = plugboard(&url, Some(A_ADMIN), &["plugin", "disable", "a.test", "vm"]).await;
    assert_eq!(o.code, ExitCode::SUCCESS);
    let o = plugboard(
        &url,
        Some(OPERATOR),
        &["plugin", "uninstall", "vm", "1.0.0"],
    )
    .await;
    assert_eq!(o.code, ExitCode::SUCCESS, "{}", o.err);
    let o = plugboard(
        &url,
        Some(OPERATOR),
        &["plugin", "install", "/nonexistent/dir"],
    )
    .await;
    assert_eq!(o.code, ExitCode::FAILURE);
    assert!(
        o.err.starts_with("error: /nonexistent/dir") && o.err.contains("No such file"),
        "{}",
        o.err
    );
    s.stop().await;
}

#[tokio::test]
async fn prompt_upload_list_delete() {
    let s = Server::start().await;
    let url = s.url();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("welcome-de.wav");
    std::fs::write(&file, b"RIFF fake wav").unwrap();
    let f = file.to_str().unwrap();
    let o = plugboard(
        &url,
        Some(A_ADMIN),
        &["prompt", "upload", "a.test", "de", "welcome", f],
    )
    .await;
    assert_eq!(o.code, ExitCode::SUCCESS, "{}", o.err);
    let v: Value = serde_json::from_str(&o.out).unwrap();
    assert_eq!(
        v,
        json!({"language": "de", "name": "welcome", "size_bytes": 13})
    );
    let o = plugboard(&url, Some(A_ADMIN), &["prompt", "list", "a.test"]).await;
    let v: Value = serde_json::from_str(&o.out).unwrap();
    assert_eq!(v[0]["name"], "welcome");
    // Another tenant's admin is refused.
    let o = plugboard(
        &url,
        Some(A_ADMIN),
        &["prompt", "upload", "b.test", "de", "welcome", f],
    )
    .await;
    assert_eq!(o.code, ExitCode::FAILURE);
    assert!(o.err.contains("(HTTP 403)"), "{}", o.err);
    let o = plugboard(
        &url,
        Some(A_ADMIN),
        &["prompt", "delete", "a.test", "de", "welcome"],
    )
    .await;
    assert_eq!(
        (o.code, o.out.as_str()),
        (ExitCode::SUCCESS, ""),
        "{}",
        o.err
    );
    let o = plugboard(
        &url,
        Some(A_ADMIN),
        &["prompt", "delete", "a.test", "de", "welcome"],
    )
    .await;
    assert_eq!(o.code, ExitCode::FAILURE);
    assert!(o.err.contains("(HTTP 404)"), "{}", o.err);
    s.stop().await;
}

#[tokio::test]
async fn export_then_import_round_trips() {
    let s = Server::start().await;
    let url = s.url();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.json");
    let f = file.to_str().unwrap();
    let o = plugboard(
        &url,
        Some(A_ADMIN),
        &["tenant", "export", "a.test", "-o", f],
    )
    .await;
    assert_eq!((o.code, o.out.as_str()), (ExitCode::SUCCESS, ""));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "exports hold passwords");
    }
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(doc["users"][0]["password"], "pw");
    doc["language"] = json!("fr");
    std::fs::write(&file, doc.to_string()).unwrap();
    let o = plugboard(&url, Some(A_ADMIN), &["tenant", "import", f]).await;
    assert_eq!(o.code, ExitCode::SUCCESS, "{}", o.err);
    let o = plugboard(&url, Some(A_ADMIN), &["tenant", "show", "a.test"]).await;
    assert!(o.out.contains("\"language\": \"fr\""));
    // A tenant admin cannot import a file for another domain.
    doc["domain"] = json!("b.test");
    std::fs::write(&file, doc.to_string()).unwrap();
    let o = plugboard(&url, Some(A_ADMIN), &["tenant", "import", f]).await;
    assert_eq!(o.code, ExitCode::FAILURE);
    assert!(o.err.contains("(HTTP 403)"), "{}", o.err);
    s.stop().await;
}

#[tokio::test]
async fn errors_go_to_stderr_with_status() {
    let s = Server::start().await;
    let url = s.url();
    let o = plugboard(&url, None, &["tenant", "list"]).await;
    assert_eq!(o.code, ExitCode::FAILURE);
    assert_eq!(o.out, "");
    assert_eq!(
        o.err,
        "error: missing bearer token: send \"Authorization: Bearer TOKEN\" (HTTP 401)\n\
         hint: pass --token TOKEN or set PLUGBOARD_TOKEN\n"
    );
    let o = plugboard(&url, Some(A_ADMIN), &["user", "list", "b.test"]).await;
    assert_eq!(
        o.err,
        "error: a tenant administrator may only manage its own tenant (HTTP 403)\n"
    );
    let o = plugboard(&url, Some(OPERATOR), &["user", "delete", "a.test", "999"]).await;
    assert_eq!(o.err, "error: no user 999 (HTTP 404)\n");
    s.stop().await;

    // Nothing listens any more.
    let o = plugboard(&url, Some(OPERATOR), &["health"]).await;
    assert_eq!(o.code, ExitCode::FAILURE);
    assert!(
        o.err.starts_with(&format!(
            "error: cannot connect to the plugboard admin API at {url}: connection refused"
        )),
        "{}",
        o.err
    );
}
