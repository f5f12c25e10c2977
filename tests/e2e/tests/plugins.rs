//! Calls into WebAssembly plugins through the real binary: a plugin that
//! answers, plays and stores; plugins that spin, allocate past their cap and
//! trap, each contained to its own call with the next call served normally.

use std::time::Duration;

use plugboard_e2e::{Pbx, Setup, call, describe, plugin_wasm};

fn setup() -> Setup {
    let mut s = Setup::default();
    for name in ["echo-info", "spin", "hog", "trap"] {
        s.plugins.push((name.to_string(), plugin_wasm(name)));
    }
    // echo-info stores the last caller: storage needs a grant.
    s.plugin_grants
        .push(("echo-info".into(), vec!["kv".into()]));
    s.dialplan = vec![
        r#""500" = { plugin = "echo-info", config = { greeting = "hello" } }"#.into(),
        r#""501" = { plugin = "spin" }"#.into(),
        r#""502" = { plugin = "hog" }"#.into(),
        r#""503" = { plugin = "trap" }"#.into(),
    ];
    // A small memory cap: the hog reaches it in a few allocations, long before
    // the (wall-clock measured) CPU budget, even on a loaded machine.
    s.server_extra.push("plugin_memory_mb = 16".into());
    s
}

/// Caller 101 calls `number`; the plugin side must answer and end the call with BYE.
fn call_plugin(pbx: &Pbx, number: &str) -> std::process::Output {
    call_plugin_with(pbx, number, "uac_gets_bye.xml")
}

fn call_plugin_with(pbx: &Pbx, number: &str, scenario: &str) -> std::process::Output {
    call(pbx, scenario, "101", number, 30)
}

fn last_cdr(pbx: &Pbx, n: usize) -> serde_json::Value {
    let cdrs = pbx.wait_cdrs(n, Duration::from_secs(5));
    assert!(
        cdrs.len() >= n,
        "expected {n} CDRs, got {}: {cdrs:?}",
        cdrs.len()
    );
    cdrs[n - 1].clone()
}

#[test]
fn a_plugin_answers_plays_and_hangs_up() {
    let pbx = Pbx::start(&setup());
    let out = call_plugin(&pbx, "500");
    assert!(
        out.status.success(),
        "{}\nlog:\n{}",
        describe(&out),
        pbx.log()
    );
    let cdr = last_cdr(&pbx, 1);
    assert_eq!(cdr["plugin"], "echo-info", "{cdr}");
    assert_eq!(cdr["plugin_version"], "1.0.0", "{cdr}");
    assert_eq!(cdr["disposition"], "completed", "{cdr}");
    // beep (0.3 s) + "hello" (about 1.7 s) at 50 packets per second.
    let sent = cdr["rtp_a_tx"].as_u64().unwrap_or(0);
    assert!(sent >= 80, "host sent {sent} RTP packets: {cdr}");
    // The plugin's log line reached the host log with the call's context.
    assert!(pbx.log().contains("echo-info: call"), "plugin log missing");
}

#[test]
fn faulty_plugins_are_contained_and_the_next_call_is_served() {
    let pbx = Pbx::start(&setup());
    let mut n = 0;
    // spin and hog answer first: their caller hears the error prompt, then BYE.
    // trap panics before answering: its caller gets 500 with a Reason.
    for (number, fault, scenario) in [
        ("501", "fault:cpu-limit", "uac_gets_bye.xml"),
        ("502", "fault:memory-limit", "uac_gets_bye.xml"),
        ("503", "fault:trap", "uac_expect_500.xml"),
    ] {
        let out = call_plugin_with(&pbx, number, scenario);
        assert!(
            out.status.success(),
            "{number}: {}\nlog:\n{}",
            describe(&out),
            pbx.log()
        );
        n += 1;
        let cdr = last_cdr(&pbx, n);
        assert_eq!(cdr["disposition"], fault, "{number}: {cdr}");
        // The next call into a healthy plugin works normally.
        let out = call_plugin(&pbx, "500");
        assert!(out.status.success(), "after {number}: {}", describe(&out));
        n += 1;
        let cdr = last_cdr(&pbx, n);
        assert_eq!(cdr["disposition"], "completed", "after {number}: {cdr}");
    }
    let log = pbx.log();
    assert!(log.contains("plugin fault"), "faults are logged");
}
