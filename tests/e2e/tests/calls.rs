//! Calls between registered SIPp users through the B2BUA: answer with RTP both
//! ways, busy, unknown user, CANCEL, BYE from the callee, and registrations
//! that survive a restart.

use std::process::Output;
use std::time::Duration;

use plugboard_e2e::{
    Pbx, Setup, call, callee, describe, free_udp_port, register_at, sipp, sipp_spawn, wait_bounded,
};

/// A SIPp call from `from` to `number`, at most 30 s.
fn caller(pbx: &Pbx, scenario: &str, from: &str, number: &str) -> std::process::Output {
    call(pbx, scenario, from, number, 30)
}

/// Runs `callee_scenario` for 102 on `port` (where 102 registered) and a call
/// from 101 to 102 with `caller_scenario`; returns (caller, callee) outputs.
fn call_102(
    pbx: &Pbx,
    port: u16,
    callee_scenario: &str,
    caller_scenario: &str,
) -> (Output, Output) {
    let c = callee(pbx, callee_scenario, port, free_udp_port());
    std::thread::sleep(Duration::from_millis(300));
    let out = caller(pbx, caller_scenario, "101", "102");
    let cout = wait_bounded(c, Duration::from_secs(10));
    (out, cout)
}

/// Asserts that a SIPp run passed, showing its output and the host log.
fn assert_passed(o: &Output, what: &str, pbx: &Pbx) {
    assert!(
        o.status.success(),
        "{what}: {}\nlog:\n{}",
        describe(o),
        pbx.log()
    );
}

#[test]
fn a_call_between_two_registered_users_carries_rtp_both_ways() {
    let pbx = Pbx::start(&Setup::default());
    let port = free_udp_port();
    register_at(&pbx, "102", port);
    let (out, cout) = call_102(&pbx, port, "uas.xml", "uac_call.xml");
    assert_passed(&out, "caller", &pbx);
    assert_passed(&cout, "callee", &pbx);
    let cdrs = pbx.wait_cdrs(1, Duration::from_secs(5));
    let cdr = &cdrs[0];
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
    let a_to_b = cdr["bridge"]["a_to_b"].as_u64().unwrap_or(0);
    let b_to_a = cdr["bridge"]["b_to_a"].as_u64().unwrap_or(0);
    // 3 s of audio at 50 packets/s, echoed back by the callee.
    assert!(a_to_b >= 50, "caller→callee packets {a_to_b}: {cdr}");
    assert!(b_to_a >= 50, "callee→caller packets {b_to_a}: {cdr}");
}

#[test]
fn a_busy_callee_gives_486_and_an_unknown_number_404() {
    let pbx = Pbx::start(&Setup::default());
    let port = free_udp_port();
    register_at(&pbx, "102", port);
    let (out, _) = call_102(&pbx, port, "uas_busy.xml", "uac_expect_486.xml");
    assert_passed(&out, "busy", &pbx);
    let out = caller(&pbx, "uac_expect_404.xml", "101", "999");
    assert_passed(&out, "unknown number", &pbx);
    // A registered-nowhere user: 480.
    let out = caller(&pbx, "uac_expect_480.xml", "101", "104");
    assert_passed(&out, "unregistered user", &pbx);
}

#[test]
fn cancel_from_the_caller_reaches_the_ringing_callee() {
    let pbx = Pbx::start(&Setup::default());
    let port = free_udp_port();
    register_at(&pbx, "102", port);
    let (out, cout) = call_102(&pbx, port, "uas_cancelled.xml", "uac_cancel.xml");
    assert_passed(&out, "caller", &pbx);
    assert_passed(&cout, "callee saw no CANCEL", &pbx);
}

#[test]
fn bye_from_the_callee_ends_the_callers_leg() {
    let pbx = Pbx::start(&Setup::default());
    let port = free_udp_port();
    register_at(&pbx, "102", port);
    let (out, cout) = call_102(&pbx, port, "uas_hangs_up.xml", "uac_gets_bye.xml");
    assert_passed(&out, "caller got no BYE", &pbx);
    assert_passed(&cout, "callee", &pbx);
}

#[test]
fn registrations_survive_a_restart() {
    let mut pbx = Pbx::start(&Setup::default());
    let port = free_udp_port();
    register_at(&pbx, "102", port);
    pbx.restart();
    let (out, _) = call_102(&pbx, port, "uas.xml", "uac_call.xml");
    assert_passed(&out, "call after restart", &pbx);
}

#[test]
fn all_contacts_ring_the_first_answer_wins_and_star_unregisters() {
    let pbx = Pbx::start(&Setup::default());
    let (p1, p2) = (free_udp_port(), free_udp_port());
    register_at(&pbx, "102", p1);
    register_at(&pbx, "102", p2);
    let answering = callee(&pbx, "uas.xml", p1, free_udp_port());
    let ringing = callee(&pbx, "uas_cancelled.xml", p2, free_udp_port());
    std::thread::sleep(Duration::from_millis(300));
    let out = caller(&pbx, "uac_call.xml", "101", "102");
    assert!(
        out.status.success(),
        "caller: {}\nlog:\n{}",
        describe(&out),
        pbx.log()
    );
    let a = wait_bounded(answering, Duration::from_secs(10));
    assert!(a.status.success(), "answering contact: {}", describe(&a));
    let r = wait_bounded(ringing, Duration::from_secs(10));
    assert!(
        r.status.success(),
        "the other contact was not rung and cancelled: {}",
        describe(&r)
    );

    // Contact: * with Expires: 0 removes both bindings: 102 is unreachable.
    let out = sipp(
        "unregister_all.xml",
        pbx.udp,
        &[
            "-s", "102", "-au", "102", "-ap", "pw102", "-key", "expires", "0", "-m", "1",
        ],
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "unregister: {}", describe(&out));
    let out = caller(&pbx, "uac_expect_480.xml", "101", "102");
    assert!(out.status.success(), "after unregister: {}", describe(&out));
}

#[test]
fn register_and_call_over_tcp() {
    let pbx = Pbx::start(&Setup::default());
    let port = free_udp_port();
    let p = port.to_string();
    let out = sipp(
        "register.xml",
        pbx.tcp,
        &[
            "-t", "t1", "-s", "102", "-au", "102", "-ap", "pw102", "-key", "expires", "3600", "-p",
            &p, "-m", "1",
        ],
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "TCP register: {}", describe(&out));
    // The callee keeps its own TCP listener on the registered port.
    let mp = free_udp_port().to_string();
    let callee = sipp_spawn(
        "uas.xml",
        pbx.tcp,
        &[
            "-t",
            "t1",
            "-p",
            &p,
            "-mp",
            &mp,
            "-rtp_echo",
            "-m",
            "1",
            "-timeout",
            "30s",
            "-timeout_error",
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    let mp = free_udp_port().to_string();
    let out = sipp(
        "uac_call.xml",
        pbx.tcp,
        &[
            "-t",
            "t1",
            "-s",
            "102",
            "-key",
            "caller",
            "101",
            "-au",
            "101",
            "-ap",
            "pw101",
            "-m",
            "1",
            "-mp",
            &mp,
            "-p",
            &free_udp_port().to_string(),
            "-timeout",
            "30s",
            "-timeout_error",
        ],
        Duration::from_secs(40),
    );
    assert!(
        out.status.success(),
        "TCP caller: {}\nlog:\n{}",
        describe(&out),
        pbx.log()
    );
    let cout = wait_bounded(callee, Duration::from_secs(10));
    assert!(cout.status.success(), "TCP callee: {}", describe(&cout));
}

#[test]
fn a_hold_re_invite_is_passed_through_to_the_other_leg() {
    let pbx = Pbx::start(&Setup::default());
    let port = free_udp_port();
    register_at(&pbx, "102", port);
    let (out, cout) = call_102(&pbx, port, "uas_hold.xml", "uac_hold.xml");
    assert_passed(&out, "caller", &pbx);
    assert_passed(&cout, "callee saw no hold re-INVITE", &pbx);
}
