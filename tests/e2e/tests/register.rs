//! REGISTER with digest authentication against the real binary, driven by SIPp.

use std::time::Duration;

use plugboard_e2e::{Pbx, Setup, describe, free_udp_port, sipp};

fn register(
    pbx: &Pbx,
    scenario: &str,
    user: &str,
    pw: &str,
    expires: &str,
    port: u16,
) -> std::process::Output {
    let port = port.to_string();
    sipp(
        scenario,
        pbx.udp,
        &[
            "-s",
            user,
            "-au",
            user,
            "-ap",
            pw,
            "-key",
            "expires",
            expires,
            "-p",
            &port,
            "-m",
            "1",
            "-recv_timeout",
            "5000",
        ],
        Duration::from_secs(20),
    )
}

#[test]
fn register_with_the_right_password_is_accepted_and_a_wrong_one_refused() {
    let pbx = Pbx::start(&Setup::default());
    let ok = register(
        &pbx,
        "register.xml",
        "101",
        "pw101",
        "3600",
        free_udp_port(),
    );
    assert!(ok.status.success(), "right password: {}", describe(&ok));
    let bad = register(
        &pbx,
        "register_refused.xml",
        "101",
        "wrong",
        "3600",
        free_udp_port(),
    );
    assert!(
        bad.status.success(),
        "wrong password must get 403: {}",
        describe(&bad)
    );
    // A wrong password must not be answered with 200 either.
    let bad200 = register(&pbx, "register.xml", "102", "nope", "3600", free_udp_port());
    assert!(
        !bad200.status.success(),
        "wrong password accepted: {}",
        describe(&bad200)
    );
}

#[test]
fn register_below_the_minimum_expiry_gets_423() {
    let pbx = Pbx::start(&Setup::default());
    let out = register(
        &pbx,
        "register_brief.xml",
        "103",
        "pw103",
        "5",
        free_udp_port(),
    );
    assert!(
        out.status.success(),
        "expected 423 Interval Too Brief: {}",
        describe(&out)
    );
}
