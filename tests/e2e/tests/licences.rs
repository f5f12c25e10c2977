//! Licences with a controlled clock: every state from unlicensed to demo
//! level and through a failed validation, reminders, entitlements per
//! tenant, and capacity enforced at call setup under SIPp load.

use std::path::Path;
use std::time::Duration;

use plugboard_e2e::*;
use serde_json::{Value, json};

const B: &str = "b.e2e.plugboard.test";
const SITE: &str = "pbx1.e2e.test";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn set_clock(file: &Path, at: &str) {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, at).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

fn status(pbx: &Pbx) -> Value {
    let (st, v) = pbx.api("GET", "/v1/licence", OPERATOR_TOKEN, None);
    assert_eq!(st, 200, "{v}");
    v
}

/// Waits (at most 10 s) until the licence state is `state`.
fn wait_state(pbx: &Pbx, state: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let v = status(pbx);
        if v["state"]["kind"] == state {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "state never became {state}: {v}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A call from 101 into the licensed plugin on 500 is answered and ends well.
fn plugin_answers(pbx: &Pbx, what: &str) {
    let out = call(pbx, "uac_gets_bye.xml", "101", "500", 30);
    assert!(out.status.success(), "{what}: {}", describe(&out));
}

/// `plugboard licence sign BODY --key dir/KEY.key -o dir/OUT`; returns the signed file.
fn sign_licence(dir: &Path, body: &Path, key: &str, out: &str) -> std::path::PathBuf {
    let signed = dir.join(out);
    let key = dir.join(format!("{key}.key"));
    succeeded(
        &plugboard(&[
            "licence",
            "sign",
            s(body),
            "--key",
            s(&key),
            "-o",
            s(&signed),
        ]),
        "licence sign",
    );
    signed
}

/// The marks of the reminders sent, once there are at least `n` (at most 10 s).
fn reminder_marks(pbx: &Pbx, n: usize) -> Vec<u64> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let marks: Vec<u64> = status(pbx)["reminders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["mark"].as_u64().unwrap())
            .collect();
        if marks.len() >= n || std::time::Instant::now() > deadline {
            return marks;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn licence_body(id: &str, calls: u32) -> String {
    format!(
        "[licence]\nid = \"{id}\"\nlicensee = \"E2E GmbH\"\nsite = \"{SITE}\"\n\
         issued = 2026-12-01\nnot_before = 2026-12-01\nexpires = 2027-06-30\n\
         features = [\"recording\"]\n\n\
         [capacity]\ncalls = {calls}\ntenants = 8\nmailboxes = 50\n\n\
         [[entitlement]]\nfeature = \"acme-echo\"\ntenants = [\"{DOMAIN}\"]\n"
    )
}

#[test]
fn licence_states_entitlements_and_capacity() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let clock = w.join("clock");
    set_clock(&clock, "2026-11-15T12:00:00Z");
    generate_key(w, "licensor");
    generate_key(w, "forger");

    // A licensed plugin: echo-info whose manifest names feature acme-echo.
    let plugin = plugin_copy(w, "echo-info", |m| {
        m.replace(
            "contract = ",
            "licence_feature = \"acme-echo\"\ncontract = ",
        )
    });

    let users: Vec<(String, String)> = (101..=104)
        .map(|u| (u.to_string(), format!("pw{u}")))
        .collect();
    let pbx = Pbx::start(&Setup {
        admin: vec![DOMAIN.to_string(), B.to_string()],
        users,
        tables: format!(
            "[trust]\nallow_unsigned = true\n\n[licence]\nsite = \"{SITE}\"\nissuer_keys = [\"{}\"]\n\n\
             [testing]\nclock_file = \"{}\"\n",
            w.join("licensor.pub").display(),
            clock.display()
        ),
        extra_toml: format!("[[tenant]]\ndomain = \"{B}\"\n"),
        ..Setup::default()
    });
    assert!(
        pbx.log().contains("clock_file"),
        "a test clock must be logged"
    );

    // No licence: the core at full capacity, but the licensed plugin is locked.
    let v = status(&pbx);
    assert_eq!(v["state"]["kind"], "unlicensed", "{v}");
    assert_eq!(v["effective"]["calls"], Value::Null, "{v}");
    succeeded(
        &pbx.cli(OPERATOR_TOKEN, &["plugin", "install", s(&plugin)]),
        "install",
    );
    let (st, b) = enable_with_grants(&pbx, DOMAIN, "echo-info", &["kv"]);
    assert_eq!(st, 403, "enabled without a licence: {b}");
    assert!(b.to_string().contains("acme-echo"), "{b}");

    // A licence signed by an unknown key is refused at upload.
    let body = w.join("licence.body.toml");
    std::fs::write(&body, licence_body("PB-E2E-1", 20)).unwrap();
    let forged = sign_licence(w, &body, "forger", "forged.toml");
    let out = pbx.cli(OPERATOR_TOKEN, &["licence", "install", s(&forged)]);
    assert!(
        !out.status.success(),
        "forged licence accepted: {}",
        describe(&out)
    );

    let signed = sign_licence(w, &body, "licensor", "site.toml");
    succeeded(
        &pbx.cli(OPERATOR_TOKEN, &["licence", "install", s(&signed)]),
        "licence install",
    );

    // Before not_before: not yet valid, still full capacity.
    let v = wait_state(&pbx, "not_yet_valid");
    assert_eq!(v["next"]["state"]["kind"], "valid", "{v}");

    // Valid: the licensed capacity, the entitlement for tenant A only.
    set_clock(&clock, "2027-01-01T12:00:00Z");
    let v = wait_state(&pbx, "valid");
    assert_eq!(v["effective"]["calls"], 20, "{v}");
    assert_eq!(v["next"]["state"]["kind"], "expiring", "{v}");
    let (st, b) = enable_with_grants(&pbx, DOMAIN, "echo-info", &["kv"]);
    assert_eq!(st, 200, "enable for A: {b}");
    let (st, b) = enable_with_grants(&pbx, B, "echo-info", &["kv"]);
    assert_eq!(st, 403, "B is not entitled: {b}");
    assert!(b.to_string().contains(B), "{b}");
    succeeded(
        &pbx.cli(
            OPERATOR_TOKEN,
            &["dialplan", "set", DOMAIN, "500", "--plugin", "echo-info"],
        ),
        "dialplan",
    );
    plugin_answers(&pbx, "licensed plugin call");

    // 90 days before expiry: reminders at 90 (once, even if time jumps), then daily.
    set_clock(&clock, "2027-04-15T12:00:00Z");
    let v = wait_state(&pbx, "expiring");
    assert_eq!(v["effective"]["calls"], 20, "{v}");
    assert_eq!(reminder_marks(&pbx, 1), vec![90], "the 90-day reminder");
    set_clock(&clock, "2027-06-25T12:00:00Z");
    wait_state(&pbx, "expiring");
    assert_eq!(
        reminder_marks(&pbx, 2),
        vec![90, 6],
        "then daily in the last 15 days"
    );
    // No reminder is sent twice (the host checks every second under a test clock).
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(reminder_marks(&pbx, 2), vec![90, 6], "no repeat");
    assert!(
        pbx.log().contains("licence expiry reminder"),
        "reminders are logged"
    );

    // Expired: 25% of the licensed capacity, enforced under load: 5 calls
    // hold, 5 more get 503 with the reason, the first 5 are unaffected.
    set_clock(&clock, "2027-07-05T12:00:00Z");
    let v = wait_state(&pbx, "expired");
    assert_eq!(v["effective"]["calls"], 5, "{v}");
    let (st, metrics) = pbx.api("GET", "/v1/metrics", OPERATOR_TOKEN, None);
    assert_eq!(st, 200);
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    assert!(
        metrics.contains("plugboard_licence_state{state=\"expired\"} 1")
            && metrics.contains("plugboard_licence_capacity{item=\"calls\"} 5"),
        "{metrics}"
    );
    assert_eq!(v["next"]["state"]["kind"], "demo", "{v}");
    let p102 = free_udp_port();
    register_at(&pbx, "102", p102);
    let answering = callee_for(&pbx, "uas.xml", p102, free_udp_port(), 5);
    std::thread::sleep(Duration::from_millis(300));
    let five = ["-m", "5", "-l", "5", "-r", "20"];
    let load = calls_in_background(
        &pbx,
        DOMAIN,
        "uac_call.xml",
        ("101", "pw101"),
        "102",
        &five,
        60,
    );
    std::thread::sleep(Duration::from_millis(1500));
    let over = wait_bounded(
        calls_in_background(
            &pbx,
            DOMAIN,
            "uac_expect_503_licence.xml",
            ("103", "pw103"),
            "500",
            &["-m", "5", "-r", "20"],
            30,
        ),
        Duration::from_secs(40),
    );
    assert!(
        over.status.success(),
        "calls over the capacity: {}",
        describe(&over)
    );
    assert!(
        wait_bounded(load, Duration::from_secs(60)).status.success(),
        "the 5 admitted calls"
    );
    assert!(
        wait_bounded(answering, Duration::from_secs(10))
            .status
            .success()
    );
    // Expired, the entitlement still holds: tenant A's plugin answers.
    plugin_answers(&pbx, "entitled while expired");

    // 60 days after expiry: the demo level, 1 call and 10 mailboxes. Nothing is
    // hidden: the existing users stay; only new ones beyond 10 are refused.
    set_clock(&clock, "2027-09-01T12:00:00Z");
    let v = wait_state(&pbx, "demo");
    assert_eq!(
        (&v["effective"]["calls"], &v["effective"]["mailboxes"]),
        (&json!(1), &json!(10)),
        "{v}"
    );
    let mut added = 0;
    for ext in 200..220 {
        let (st, b) = pbx.api(
            "POST",
            &format!("/v1/tenants/{B}/users"),
            OPERATOR_TOKEN,
            Some(&json!({"extension": ext.to_string(), "password": "secret-pw"})),
        );
        if st != 201 {
            assert_eq!(st, 403, "{b}");
            assert!(b.to_string().contains("licence"), "{b}");
            break;
        }
        added += 1;
    }
    assert_eq!(
        added, 6,
        "4 users exist; the demo level allows 10 mailboxes"
    );
    let (_, users) = pbx.api(
        "GET",
        &format!("/v1/tenants/{DOMAIN}/users"),
        OPERATOR_TOKEN,
        None,
    );
    assert_eq!(users.as_array().unwrap().len(), 4, "{users}");
    // The entitlement is not honoured at the demo level: the plugin's calls get 503.
    let out = call(&pbx, "uac_expect_503.xml", "101", "500", 20);
    assert!(
        out.status.success(),
        "licensed plugin at demo level: {}",
        describe(&out)
    );

    // A licence that fails validation (changed on disk) keeps full service
    // for 28 days, then drops to the demo level.
    std::fs::write(
        &body,
        licence_body("PB-E2E-2", 40).replace("2027-06-30", "2028-06-30"),
    )
    .unwrap();
    let renewed = sign_licence(w, &body, "licensor", "renewed.toml");
    succeeded(
        &pbx.cli(OPERATOR_TOKEN, &["licence", "remove", "site"]),
        "remove",
    );
    succeeded(
        &pbx.cli(OPERATOR_TOKEN, &["licence", "install", s(&renewed)]),
        "install renewed",
    );
    let v = wait_state(&pbx, "valid");
    assert_eq!(v["effective"]["calls"], 40, "{v}");
    let on_disk = pbx.dir.path().join("data/licences/renewed.toml");
    let text = std::fs::read_to_string(&on_disk).unwrap();
    std::fs::write(&on_disk, text.replace("calls = 40", "calls = 400")).unwrap();
    let v = wait_state(&pbx, "grace");
    assert_eq!(v["effective"]["calls"], 400, "full service as written: {v}");
    assert!(v["problems"].to_string().contains("renewed"), "{v}");
    assert_eq!(v["next"]["at"], json!("2027-09-29T12:00:00Z"), "{v}");
    set_clock(&clock, "2027-09-30T12:00:00Z");
    let v = wait_state(&pbx, "invalid");
    assert_eq!(v["effective"]["calls"], 1, "{v}");
}
