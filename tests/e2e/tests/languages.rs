//! The caller-ID router example (examples/callerid-router) in Rust, Python and
//! JavaScript, each loaded by the real binary and proven by real calls: 102
//! and 103 are registered SIPp callees; the router sends the known caller 101
//! to 102 and the other caller 104 to 103, bridging each until the caller
//! hangs up.
//!
//! Needs `scripts/build-examples.sh` (packages the three components under
//! target/plugins/) and `cargo build --release -p plugboard`.

use std::path::PathBuf;
use std::process::{Child, Output};
use std::time::Duration;

use plugboard_e2e::{
    Pbx, Setup, call, callee, describe, free_udp_port, plugin_wasm, register_at, wait_bounded,
};

/// The packaged component of the example in `lang`:
/// target/plugins/callerid-router-<lang>/plugin.wasm (its plugin.toml beside it).
fn example_plugin(lang: &str) -> PathBuf {
    // Beside the host's packaged plugins (the cargo target dir).
    let dir = plugin_wasm("echo-info")
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target/plugins")
        .join(format!("callerid-router-{lang}"));
    let wasm = dir.join("plugin.wasm");
    assert!(
        wasm.is_file() && dir.join("plugin.toml").is_file(),
        "{} (with plugin.toml beside it) not built: run scripts/build-examples.sh {lang}",
        wasm.display()
    );
    wasm
}

/// Capabilities the tenant must grant the `lang` build: componentize-py and
/// componentize-js import every interface of the `call-flow` world, so their
/// manifests list `kv` and `recordings` too (unused by the router); the Rust
/// SDK's component imports only what the code calls (call, config, log).
fn grants(lang: &str) -> &'static [&'static str] {
    match lang {
        "rust" => &[],
        _ => &["kv", "recordings"],
    }
}

fn setup(lang: &str) -> Setup {
    let mut s = Setup::default();
    // The config name must be the manifest's name (plugin.toml: "callerid-router").
    s.plugins
        .push(("callerid-router".into(), example_plugin(lang)));
    s.dialplan = vec![
        r#""500" = { plugin = "callerid-router", config = { known = "101", known_target = "102", other_target = "103" } }"#
            .into(),
    ];
    s.plugin_grants.push((
        "callerid-router".into(),
        grants(lang).iter().map(|g| g.to_string()).collect(),
    ));
    s
}

fn assert_passed(o: &Output, what: &str, pbx: &Pbx) {
    assert!(
        o.status.success(),
        "{what}: {}\nlog:\n{}",
        describe(o),
        pbx.log()
    );
}

/// True while a SIPp callee has not run its one call (it exits after it).
fn untouched(c: &mut Child) -> bool {
    matches!(c.try_wait(), Ok(None))
}

fn route_calls(lang: &str) {
    let pbx = Pbx::start(&setup(lang));
    let (p102, p103) = (free_udp_port(), free_udp_port());
    register_at(&pbx, "102", p102);
    register_at(&pbx, "103", p103);
    // Each callee takes one call (-m 1) and then exits.
    let c102 = callee(&pbx, "uas.xml", p102, free_udp_port());
    let mut c103 = callee(&pbx, "uas.xml", p103, free_udp_port());
    std::thread::sleep(Duration::from_millis(300));

    // 101 is known: bridged to 102 (3 s of audio, then the caller's BYE).
    let out = call(&pbx, "uac_call.xml", "101", "500", 30);
    assert_passed(&out, &format!("{lang}: caller 101"), &pbx);
    let o102 = wait_bounded(c102, Duration::from_secs(10));
    assert_passed(&o102, &format!("{lang}: callee 102"), &pbx);
    assert!(
        untouched(&mut c103),
        "{lang}: 103 got the call of 101; log:\n{}",
        pbx.log()
    );

    // 104 is not known: bridged to 103.
    let out = call(&pbx, "uac_call.xml", "104", "500", 30);
    assert_passed(&out, &format!("{lang}: caller 104"), &pbx);
    let o103 = wait_bounded(c103, Duration::from_secs(10));
    assert_passed(&o103, &format!("{lang}: callee 103"), &pbx);

    let cdrs = pbx.wait_cdrs(2, Duration::from_secs(5));
    assert_eq!(cdrs.len(), 2, "{lang}: {cdrs:?}");
    for (cdr, from) in cdrs.iter().zip(["101", "104"]) {
        assert_eq!(cdr["from"], from, "{lang}: {cdr}");
        assert_eq!(cdr["to"], "500", "{lang}: {cdr}");
        assert_eq!(cdr["plugin"], "callerid-router", "{lang}: {cdr}");
        assert_eq!(cdr["disposition"], "completed", "{lang}: {cdr}");
        // The transfer bridged the caller to a callee: 3 s of audio at 50
        // packets/s each way (the callee echoes).
        let a_to_b = cdr["bridge"]["a_to_b"].as_u64().unwrap_or(0);
        let b_to_a = cdr["bridge"]["b_to_a"].as_u64().unwrap_or(0);
        assert!(a_to_b >= 50 && b_to_a >= 50, "{lang}: no bridge: {cdr}");
    }
    let log = pbx.log();
    for line in [
        "callerid-router: known caller 101 -> 102",
        "callerid-router: other caller 104 -> 103",
    ] {
        assert!(
            log.contains(line),
            "{lang}: `{line}` not logged; log:\n{log}"
        );
    }
}

#[test]
fn rust_router_sends_known_callers_to_102_and_others_to_103() {
    route_calls("rust");
}

#[test]
fn python_router_sends_known_callers_to_102_and_others_to_103() {
    route_calls("python");
}

#[test]
fn javascript_router_sends_known_callers_to_102_and_others_to_103() {
    route_calls("javascript");
}
