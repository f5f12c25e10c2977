//! Tenant isolation of plugin storage and lookups, from inside a plugin: the
//! `snoop` test guest plants a secret in one tenant, then, running for another
//! tenant, tries crafted kv keys, recording ids, prompt names and dial targets
//! to reach it. Both tenants are read back afterwards with `mode = "check"`.

use std::time::Duration;

use plugboard_e2e::{DOMAIN, Pbx, Setup, call, call_in, describe, plugin_wasm, repo_root};

/// The second tenant: the one whose data the probe must not reach.
const OTHER: &str = "other.plugboard.test";

fn setup() -> Setup {
    let mut s = Setup::default();
    s.plugins.push(("snoop".into(), plugin_wasm("snoop")));
    s.plugin_grants
        .push(("snoop".into(), vec!["kv".into(), "recordings".into()]));
    // The probing tenant (users 101..=104): probe and check.
    s.dialplan = vec![
        format!(
            r#""600" = {{ plugin = "snoop", config = {{ mode = "probe", other = "{OTHER}" }} }}"#
        ),
        r#""601" = { plugin = "snoop", config = { mode = "check" } }"#.into(),
    ];
    // The other tenant: user 201 only (an extension the probing tenant lacks),
    // plant and check on numbers the probing tenant's dial plan lacks.
    s.extra_toml = format!(
        "[[tenant]]\ndomain = \"{OTHER}\"\n\
         [[tenant.user]]\nextension = \"201\"\npassword = \"pw201\"\n\
         [tenant.dialplan]\n\
         \"700\" = {{ plugin = \"snoop\", config = {{ mode = \"plant\" }} }}\n\
         \"701\" = {{ plugin = \"snoop\", config = {{ mode = \"check\" }} }}\n"
    );
    s
}

/// Puts a tenant prompt (a copy of the stock beep) into `domain`'s prompt folder.
fn tenant_prompt(pbx: &Pbx, domain: &str, name: &str) {
    let dir = pbx
        .dir
        .path()
        .join("data/tenants")
        .join(domain)
        .join("prompts");
    std::fs::create_dir_all(&dir).expect("tenant prompt folder");
    std::fs::copy(
        repo_root().join("prompts/en/beep.wav"),
        dir.join(format!("{name}.wav")),
    )
    .expect("copy prompt");
}

/// Caller 201 of the other tenant calls `number`; the plugin answers and hangs up.
fn call_other(pbx: &Pbx, number: &str) {
    let out = call_in(pbx, OTHER, "uac_gets_bye.xml", ("201", "pw201"), number, 60);
    assert!(
        out.status.success(),
        "call {number} in {OTHER}: {}\nlog:\n{}",
        describe(&out),
        pbx.log()
    );
}

/// Caller 101 of the probing tenant calls `number`.
fn call_own(pbx: &Pbx, number: &str) {
    let out = call(pbx, "uac_gets_bye.xml", "101", number, 60);
    assert!(
        out.status.success(),
        "call {number} in {DOMAIN}: {}\nlog:\n{}",
        describe(&out),
        pbx.log()
    );
}

/// The text after `marker` on the single log line that contains it.
fn line_after<'a>(log: &'a str, marker: &str) -> &'a str {
    let hits: Vec<&str> = log.lines().filter(|l| l.contains(marker)).collect();
    assert_eq!(
        hits.len(),
        1,
        "want one log line with {marker:?}, got {hits:#?}"
    );
    let l = hits[0];
    &l[l.find(marker).expect("marker") + marker.len()..]
}

/// `name=<digits>` from the summary line.
fn field(summary: &str, name: &str) -> u64 {
    let tail = summary
        .split_whitespace()
        .find_map(|t| t.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {summary:?}"));
    let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("{name}= in {summary:?}"))
}

fn assert_attempt(log: &str, line: &str) {
    assert!(
        log.lines().any(|l| l.contains(line)),
        "attempt line {line:?} missing; snoop lines:\n{}",
        snoop_lines(log)
    );
}

fn snoop_lines(log: &str) -> String {
    log.lines()
        .filter(|l| l.contains("snoop:"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_plugin_cannot_reach_another_tenants_data_with_crafted_keys() {
    let pbx = Pbx::start(&setup());
    // A prompt each tenant owns alone: the probe must play its own (control)
    // and must not find the other's, by plain or crafted name.
    tenant_prompt(&pbx, DOMAIN, "snoop-own");
    tenant_prompt(&pbx, OTHER, "snoop-planted");

    // 1. The other tenant plants kv secret = its domain.
    call_other(&pbx, "700");
    let log = pbx.log();
    line_after(
        &log,
        &format!("snoop: planted secret for tenant=\"{OTHER}\""),
    );

    // 2. The probing tenant tries to reach it.
    call_own(&pbx, "600");
    let log = pbx.log();
    let lines = snoop_lines(&log);
    let summary = line_after(&log, "snoop: leaked=");
    let summary = format!("leaked={summary}");
    let (leaked, tried, not_own) = (
        field(&summary, "leaked"),
        field(&summary, "tried"),
        field(&summary, "not_own"),
    );
    assert!(tried >= 20, "the probe tried only {tried}:\n{lines}");
    assert_eq!(
        leaked, 0,
        "the probe read the other tenant's secret:\n{lines}"
    );
    assert_eq!(
        not_own, 0,
        "the probe reached data that is not its own:\n{lines}"
    );
    // The controls prove the probe sees its own kv data, user directory and
    // prompt folder: refusals below are isolation, not a broken probe.
    let controls = summary
        .split_whitespace()
        .find_map(|t| t.strip_prefix("controls="))
        .expect("controls=");
    assert!(
        controls.starts_with("4/4"),
        "probe controls failed ({controls}):\n{lines}"
    );
    for l in log.lines().filter(|l| l.contains("snoop: #")) {
        assert!(
            !l.contains(" LEAK") && !l.contains(" NOT-OWN"),
            "flagged attempt: {l}"
        );
    }
    // The exact key the other tenant used is simply absent here.
    assert_attempt(&log, "kv.get \"secret\" -> none");
    // Crafted but valid keys are plain keys of the probe's own scope (absent) ...
    assert_attempt(
        &log,
        &format!("kv.get \"../../{OTHER}/snoop/secret\" -> none"),
    );
    assert_attempt(&log, &format!("kv.get \"{OTHER}/snoop/secret\" -> none"));
    // ... malformed ones are refused ...
    assert_attempt(
        &log,
        &format!(
            "kv.get \"{OTHER}\\u0000snoop\\u0000secret\" -> error \"Storage(StorageError::InvalidKey("
        ),
    );
    // ... and listing everything shows only the probe's own key.
    assert_attempt(&log, "kv.list-keys \"\" -> keys [\"mine\"]");
    assert_attempt(&log, "recordings.list \"\" -> 0 recordings []");
    assert_attempt(
        &log,
        "play.tenant \"snoop-planted\" -> error \"Call(CallError::NotFound(",
    );
    assert_attempt(&log, "call.dial \"201\" -> failed");
    assert_attempt(
        &log,
        "call.transfer \"700\" -> error \"Call(CallError::NotFound(",
    );

    // 3. From outside: the other tenant's secret is still there, unchanged, and
    // none of the probe's crafted writes or deletes reached its keys.
    call_other(&pbx, "701");
    let log = pbx.log();
    let other = line_after(&log, &format!("snoop: check tenant=\"{OTHER}\" "));
    assert!(
        other.starts_with(&format!("secret=\"{OTHER}\" keys=[\"secret\"]")),
        "the other tenant's data changed: {other}\n{}",
        snoop_lines(&log)
    );
    // The probing tenant has no `secret` (the plant did not reach it either),
    // and its crafted writes landed as plain keys of its own scope.
    call_own(&pbx, "601");
    let log = pbx.log();
    let own = line_after(&log, &format!("snoop: check tenant=\"{DOMAIN}\" "));
    assert!(own.starts_with("secret=(none) keys=["), "{own}");
    for key in [
        format!("\"../../{OTHER}/snoop/secret\""),
        format!("\"{OTHER}/snoop/secret\""),
        "\"mine\"".to_string(),
        "\"probe-report\"".to_string(),
    ] {
        assert!(own.contains(&key), "{key} missing from {own}");
    }

    let cdrs = pbx.wait_cdrs(4, Duration::from_secs(10));
    assert_eq!(cdrs.len(), 4, "{cdrs:?}");
    for (cdr, tenant) in cdrs.iter().zip([OTHER, DOMAIN, OTHER, DOMAIN]) {
        assert_eq!(cdr["tenant"], tenant, "{cdr}");
        assert_eq!(cdr["plugin"], "snoop", "{cdr}");
        assert_eq!(cdr["disposition"], "completed", "{cdr}");
    }
}
