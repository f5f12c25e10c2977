//! Hot swap under load: SIPp places 200 calls/s into plugin "swap" while its
//! version is switched 20 times through the admin API (swap, then rollback,
//! in turn). Version 1.0.0 answers and hangs up after 500 ms; 2.0.0
//! declines with 480. Proven:
//!
//! - no failed call (SIPp's exit status; each call accepts either behaviour);
//! - every call that started after a swap completed (and before the next
//!   began) ran the version that swap selected, by the host's CDR;
//! - the behaviour the caller saw (SIPp's per-call log) is that version's;
//! - calls in progress during a swap finished on the version they started
//!   with (answered v1 calls that ended after a swap to v2);
//! - a version in use cannot be uninstalled; once unused it can.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use plugboard_e2e::{
    DOMAIN, OPERATOR_TOKEN, Pbx, Setup, describe, free_udp_port, plugin_wasm, sipp_spawn,
    wait_bounded,
};
use serde_json::json;

const RATE: u32 = 200;
const CALLS: u32 = 5000;
const SWAPS: usize = 20;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

struct Swap {
    sent_ms: u64,
    done_ms: u64,
    version: &'static str,
}

#[test]
fn swapping_a_plugin_20_times_under_200_calls_per_second_drops_nothing() {
    let mut s = Setup::default();
    s.plugins.push(("swap".into(), plugin_wasm("swap-v1")));
    s.dialplan = vec![r#""600" = { plugin = "swap" }"#.into()];
    s.admin = vec![DOMAIN.into()];
    // Clear of the harness ranges (30000-45999) and the media tests (41000-41999).
    s.rtp_ports = Some((50000, 57999));
    let pbx = Pbx::start(&s);

    // Version 2.0.0 arrives through the CLI, as an operator would install it.
    let v2_dir = plugin_wasm("swap-v2").parent().expect("dir").to_path_buf();
    let out = pbx.cli(
        OPERATOR_TOKEN,
        &["plugin", "install", v2_dir.to_str().expect("path")],
    );
    assert!(out.status.success(), "install: {}", describe(&out));
    let path = format!("/v1/tenants/{DOMAIN}/plugins/swap");
    let (st, body) = pbx.api(
        "PUT",
        &path,
        OPERATOR_TOKEN,
        Some(&json!({"version": "1.0.0"})),
    );
    assert_eq!(st, 200, "{body}");

    let log = pbx.dir.path().join("sipp-swap.log");
    let mp = free_udp_port().to_string();
    let rate = RATE.to_string();
    let calls = CALLS.to_string();
    let sipp = sipp_spawn(
        "uac_swap.xml",
        pbx.udp,
        &[
            "-s",
            "600",
            "-key",
            "caller",
            "101",
            "-au",
            "101",
            "-ap",
            "pw101",
            "-r",
            &rate,
            "-m",
            &calls,
            "-mp",
            &mp,
            "-trace_logs",
            "-log_file",
            log.to_str().expect("path"),
            "-timeout",
            "120s",
            "-timeout_error",
        ],
    );

    std::thread::sleep(Duration::from_secs(2));
    let mut swaps = Vec::new();
    for i in 0..SWAPS {
        let sent_ms = now_ms();
        let (st, body, version) = if i % 2 == 0 {
            let (st, b) = pbx.api(
                "PUT",
                &path,
                OPERATOR_TOKEN,
                Some(&json!({"version": "2.0.0"})),
            );
            (st, b, "2.0.0")
        } else {
            let (st, b) = pbx.api("POST", &format!("{path}/rollback"), OPERATOR_TOKEN, None);
            (st, b, "1.0.0")
        };
        let done_ms = now_ms();
        assert_eq!(st, 200, "swap {i}: {body}");
        assert_eq!(body["resolved_version"], version, "swap {i}: {body}");
        swaps.push(Swap {
            sent_ms,
            done_ms,
            version,
        });
        std::thread::sleep(Duration::from_millis(1000));
    }
    let out = wait_bounded(sipp, Duration::from_secs(180));
    assert!(
        out.status.success(),
        "SIPp saw failed calls: {}\nlog tail: {}",
        describe(&out),
        tail(&pbx.log())
    );

    let cdrs = pbx.wait_cdrs(CALLS as usize, Duration::from_secs(60));
    assert_eq!(cdrs.len(), CALLS as usize);
    let seen = caller_view(&log);
    assert_eq!(seen.len(), CALLS as usize, "one SIPp log line per call");

    let mut checked_after_swap = 0;
    let mut in_progress_kept = 0;
    for c in &cdrs {
        let id = c["call_id"].as_str().expect("call_id");
        let version = c["plugin_version"].as_str().expect("plugin_version");
        let start = c["start_ms"].as_u64().expect("start_ms");
        let end = c["end_ms"].as_u64().expect("end_ms");
        // The caller saw this version's behaviour.
        let expected = if version == "1.0.0" {
            "answered"
        } else {
            "declined"
        };
        assert_eq!(seen.get(id).map(String::as_str), Some(expected), "{c}");
        // Calls placed after a swap completed ran the swapped-in version.
        for (i, sw) in swaps.iter().enumerate() {
            let next = swaps.get(i + 1).map_or(u64::MAX, |n| n.sent_ms);
            if start > sw.done_ms && start < next {
                assert_eq!(version, sw.version, "call after swap {i}: {c}");
                checked_after_swap += 1;
            }
            // Started on 1.0.0 before a swap to 2.0.0, still running after it.
            if sw.version == "2.0.0" && version == "1.0.0" && start < sw.sent_ms && end > sw.done_ms
            {
                assert_eq!(c["disposition"], "completed", "{c}");
                in_progress_kept += 1;
            }
        }
    }
    assert!(
        checked_after_swap > (CALLS as usize) / 2,
        "only {checked_after_swap} calls fell between swaps"
    );
    assert!(
        in_progress_kept > 0,
        "no call was in progress across a swap"
    );

    // The tenant uses 1.0.0 now (20 swaps end on a rollback): 2.0.0 can go,
    // 1.0.0 cannot.
    let (st, body) = pbx.api("DELETE", "/v1/plugins/swap/1.0.0", OPERATOR_TOKEN, None);
    assert!(st == 409, "{st} {body}");
    let (st, body) = pbx.api("DELETE", "/v1/plugins/swap/2.0.0", OPERATOR_TOKEN, None);
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["calls_still_running"], 0, "{body}");
}

/// Call-ID -> what the caller saw ("answered" or "declined"), from SIPp's log.
fn caller_view(log: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace().rev();
            let what = w.next()?;
            let id = w.next()?;
            matches!(what, "answered" | "declined").then(|| (id.to_string(), what.to_string()))
        })
        .collect()
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
