//! Tenant isolation on the wire: two tenants with the same extensions never
//! reach each other's users, bindings or credentials.

use std::time::Duration;

use plugboard_e2e::{Pbx, Setup, describe, free_udp_port, sipp, sipp_spawn, wait_bounded};

const OTHER: &str = "other.plugboard.test";

#[test]
fn tenants_with_the_same_extensions_stay_apart() {
    let setup = Setup {
        extra_toml: format!(
            "[[tenant]]\ndomain = \"{OTHER}\"\n[[tenant.user]]\nextension = \"101\"\npassword = \"b101\"\n\
             [[tenant.user]]\nextension = \"102\"\npassword = \"b102\"\n"
        ),
        ..Setup::default()
    };
    let pbx = Pbx::start(&setup);
    // 102 of the first tenant registers.
    let port = free_udp_port();
    let p = port.to_string();
    let out = sipp(
        "register.xml",
        pbx.udp,
        &[
            "-s", "102", "-au", "102", "-ap", "pw102", "-key", "expires", "3600", "-p", &p, "-m",
            "1",
        ],
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "register: {}", describe(&out));
    // The first tenant's password is refused in the other tenant.
    let out = sipp(
        "register_refused.xml",
        pbx.udp,
        &[
            "-key", "domain", OTHER, "-s", "102", "-au", "102", "-ap", "pw102", "-key", "expires",
            "3600", "-m", "1",
        ],
        Duration::from_secs(20),
    );
    assert!(
        out.status.success(),
        "cross-tenant password must get 403: {}",
        describe(&out)
    );
    // 101 of the other tenant calls 102: that is the other tenant's 102, who is
    // not registered (480); the first tenant's 102 must not ring.
    let mut callee = sipp_spawn(
        "uas.xml",
        pbx.udp,
        &[
            "-p",
            &p,
            "-mp",
            &free_udp_port().to_string(),
            "-m",
            "1",
            "-timeout",
            "8s",
            "-timeout_error",
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    let out = sipp(
        "uac_expect_480.xml",
        pbx.udp,
        &[
            "-key",
            "domain",
            OTHER,
            "-s",
            "102",
            "-key",
            "caller",
            "101",
            "-au",
            "101",
            "-ap",
            "b101",
            "-m",
            "1",
            "-timeout",
            "20s",
            "-timeout_error",
        ],
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "other tenant's call: {}\nlog:\n{}",
        describe(&out),
        pbx.log()
    );
    let rang = callee
        .try_wait()
        .ok()
        .flatten()
        .is_some_and(|s| s.success());
    let _ = callee.kill();
    let cout = wait_bounded(callee, Duration::from_secs(2));
    assert!(
        !rang,
        "the first tenant's 102 was rung by the other tenant: {}",
        describe(&cout)
    );
    let cdrs = pbx.wait_cdrs(1, Duration::from_secs(5));
    assert_eq!(cdrs[0]["tenant"], OTHER, "{:?}", cdrs);
    assert_eq!(cdrs[0]["disposition"], "noanswer", "{:?}", cdrs);
}
