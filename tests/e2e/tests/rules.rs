//! Call rules and tenant limits, changed at run time through the admin API:
//! forward on no answer (after ringing the configured time), do not disturb,
//! forward always (to a plugin), busy on a second call, and the tenant's
//! concurrent-call limit (503 with Retry-After).

use std::time::Duration;

use plugboard_e2e::{
    DOMAIN, OPERATOR_TOKEN, Pbx, Setup, call, call_in_background, callee, describe, free_udp_port,
    plugin_wasm, register_at, wait_bounded,
};
use serde_json::{Value, json};

fn set_rules(pbx: &Pbx, ext: &str, rules: Value) {
    let (st, b) = pbx.api(
        "PUT",
        &format!("/v1/tenants/{DOMAIN}/users/{ext}"),
        OPERATOR_TOKEN,
        Some(&json!({"password": format!("pw{ext}"), "rules": rules})),
    );
    assert_eq!(st, 200, "{b}");
}

fn last_cdr(pbx: &Pbx, n: usize) -> Value {
    pbx.wait_cdrs(n, Duration::from_secs(15))
        .pop()
        .expect("a CDR")
}

#[test]
fn forwarding_dnd_busy_on_second_call_and_the_call_limit() {
    let mut s = Setup::default();
    s.plugins
        .push(("echo-info".into(), plugin_wasm("echo-info")));
    s.plugin_grants
        .push(("echo-info".into(), vec!["kv".into()]));
    s.dialplan = vec![r#""500" = { plugin = "echo-info" }"#.into()];
    s.admin = vec![DOMAIN.into()];
    let pbx = Pbx::start(&s);
    let (p102, p103) = (free_udp_port(), free_udp_port());
    register_at(&pbx, "102", p102);
    register_at(&pbx, "103", p103);

    // 102 rings 5 s without answering, then the call goes to 103.
    set_rules(
        &pbx,
        "102",
        json!({"forward_no_answer": "103", "no_answer_s": 5}),
    );
    let ringing = callee(&pbx, "uas_cancelled.xml", p102, free_udp_port());
    let answering = callee(&pbx, "uas.xml", p103, free_udp_port());
    std::thread::sleep(Duration::from_millis(300));
    let t0 = std::time::Instant::now();
    let out = call(&pbx, "uac_call.xml", "101", "102", 40);
    assert!(
        out.status.success(),
        "forwarded call: {}\n{}",
        describe(&out),
        pbx.log()
    );
    assert!(
        t0.elapsed() >= Duration::from_secs(5),
        "rang the configured 5 s first"
    );
    assert!(
        wait_bounded(ringing, Duration::from_secs(10))
            .status
            .success(),
        "102 rang, then was cancelled"
    );
    assert!(
        wait_bounded(answering, Duration::from_secs(10))
            .status
            .success(),
        "103 answered"
    );
    let cdr = last_cdr(&pbx, 1);
    assert_eq!(cdr["forwarded"], "no-answer:103", "{cdr}");

    // Do not disturb: busy.
    set_rules(&pbx, "102", json!({"dnd": true}));
    let out = call(&pbx, "uac_expect_486.xml", "101", "102", 20);
    assert!(out.status.success(), "dnd: {}", describe(&out));

    // Forward always, to a plugin: 102's phone is not involved.
    set_rules(&pbx, "102", json!({"forward_always": "500"}));
    let out = call(&pbx, "uac_gets_bye.xml", "101", "102", 30);
    assert!(out.status.success(), "forward always: {}", describe(&out));
    let cdr = last_cdr(&pbx, 3);
    assert_eq!(
        (&cdr["forwarded"], &cdr["plugin"]),
        (&json!("always:500"), &json!("echo-info")),
        "{cdr}"
    );

    // Busy on a second call: while 101 talks to 103, 104 gets busy.
    set_rules(&pbx, "103", json!({"busy_on_second_call": true}));
    let answering = callee(&pbx, "uas.xml", p103, free_udp_port());
    std::thread::sleep(Duration::from_millis(300));
    let first = call_in_background(&pbx, DOMAIN, "uac_call.xml", ("101", "pw101"), "103", 30);
    std::thread::sleep(Duration::from_millis(1500));
    let out = call(&pbx, "uac_expect_486.xml", "104", "103", 20);
    assert!(
        out.status.success(),
        "second call to a busy user: {}",
        describe(&out)
    );

    // The tenant's call limit: with the first call still up, max_calls = 1
    // refuses the next call with 503.
    let (st, mut doc) = pbx.api(
        "GET",
        &format!("/v1/tenants/{DOMAIN}"),
        OPERATOR_TOKEN,
        None,
    );
    assert_eq!(st, 200);
    doc["limits"] = json!({"max_calls": 1});
    let (st, b) = pbx.api(
        "PUT",
        &format!("/v1/tenants/{DOMAIN}"),
        OPERATOR_TOKEN,
        Some(&doc),
    );
    assert_eq!(st, 200, "{b}");
    let out = call(&pbx, "uac_expect_503.xml", "104", "500", 20);
    assert!(out.status.success(), "over the limit: {}", describe(&out));
    assert!(
        wait_bounded(first, Duration::from_secs(20))
            .status
            .success(),
        "the first call is unaffected"
    );
    assert!(
        wait_bounded(answering, Duration::from_secs(10))
            .status
            .success()
    );
    // Below the limit again: calls go through.
    let out = call(&pbx, "uac_gets_bye.xml", "104", "500", 30);
    assert!(
        out.status.success(),
        "after the first call ended: {}",
        describe(&out)
    );
}
