//! The admin API and CLI against the real binary: tenant-admin tokens never
//! reach another tenant, tenants created at run time take calls and survive a
//! restart, capabilities must be granted, plugin config is checked against
//! the manifest, and a tenant exports and imports as one file.

use std::time::Duration;

use plugboard_e2e::{
    DOMAIN, OPERATOR_TOKEN, Pbx, Setup, call_in, describe, free_udp_port, plugin_wasm, sipp,
    tenant_token,
};
use serde_json::json;

const OTHER: &str = "other.plugboard.test";
const NEW: &str = "new.plugboard.test";

fn setup() -> Setup {
    let mut s = Setup {
        extra_toml: format!(
            "[[tenant]]\ndomain = \"{OTHER}\"\n[[tenant.user]]\nextension = \"101\"\npassword = \"b101\"\n"
        ),
        ..Setup::default()
    };
    s.plugins
        .push(("echo-info".into(), plugin_wasm("echo-info")));
    s.admin = vec![DOMAIN.into(), OTHER.into()];
    s
}

/// REGISTER `user` (password pw<user>) in `domain`; whether it got 200.
fn registers(pbx: &Pbx, domain: &str, user: &str) -> bool {
    let pw = format!("pw{user}");
    let p = free_udp_port().to_string();
    sipp(
        "register.xml",
        pbx.udp,
        &[
            "-key",
            "domain",
            domain,
            "-s",
            user,
            "-au",
            user,
            "-ap",
            &pw,
            "-key",
            "expires",
            "3600",
            "-p",
            &p,
            "-m",
            "1",
            "-timeout",
            "10s",
            "-timeout_error",
        ],
        Duration::from_secs(20),
    )
    .status
    .success()
}

#[test]
fn a_tenant_admin_gets_403_for_every_other_tenant_and_operator_route() {
    let pbx = Pbx::start(&setup());
    let mine = tenant_token(DOMAIN);
    let (st, users) = pbx.api("GET", &format!("/v1/tenants/{DOMAIN}/users"), &mine, None);
    assert_eq!(st, 200, "{users}");
    assert_eq!(users.as_array().map(Vec::len), Some(4), "{users}");
    for (method, path, body) in [
        ("GET", format!("/v1/tenants/{OTHER}"), None),
        ("GET", format!("/v1/tenants/{OTHER}/users"), None),
        ("GET", format!("/v1/tenants/{OTHER}/cdrs"), None),
        ("GET", format!("/v1/tenants/{OTHER}/calls"), None),
        ("GET", format!("/v1/tenants/{OTHER}/registrations"), None),
        (
            "PUT",
            format!("/v1/tenants/{OTHER}/dialplan/999"),
            Some(json!({"user": "101"})),
        ),
        (
            "POST",
            format!("/v1/tenants/{OTHER}/users"),
            Some(json!({"extension": "666", "password": "x"})),
        ),
        ("GET", "/v1/plugins".to_string(), None),
        ("GET", "/v1/cdrs".to_string(), None),
        ("GET", "/v1/metrics".to_string(), None),
        ("DELETE", format!("/v1/tenants/{DOMAIN}"), None),
        (
            "PUT",
            format!("/v1/tenants/{DOMAIN}/plugins/echo-info/grants"),
            Some(json!({"grants": ["kv"]})),
        ),
    ] {
        let (st, b) = pbx.api(method, &path, &mine, body.as_ref());
        assert_eq!(st, 403, "{method} {path}: {b}");
    }
    // Its own tenant document, but with a self-granted capability or a
    // higher call limit: only the operator changes those.
    let (st, mut own) = pbx.api("GET", &format!("/v1/tenants/{DOMAIN}"), &mine, None);
    assert_eq!(st, 200, "{own}");
    let mut granted = own.clone();
    granted["plugins"] = json!([{"name": "echo-info", "grants": ["kv"]}]);
    let (st, b) = pbx.api(
        "PUT",
        &format!("/v1/tenants/{DOMAIN}"),
        &mine,
        Some(&granted),
    );
    assert_eq!(st, 403, "self-granted kv: {b}");
    // A trunk is trusted by address, and mail and directory servers are
    // connections the host makes: operator only as well.
    for (field, value) in [
        (
            "trunks",
            json!([{"name": "mine", "address": "127.0.0.1:5099"}]),
        ),
        (
            "mail",
            json!({"host": "127.0.0.1", "port": 25, "security": "none", "from": "x@example.com"}),
        ),
        (
            "directory",
            json!({"servers": ["ldap://127.0.0.1:389"], "bases": ["dc=example"]}),
        ),
    ] {
        let mut doc = own.clone();
        doc[field] = value;
        if field == "directory" {
            doc["numbering"] = json!({"country_code": "49", "area_code": "30", "base_number": "1234", "extension_ranges": ["100-199"]});
        }
        let (st, b) = pbx.api("PUT", &format!("/v1/tenants/{DOMAIN}"), &mine, Some(&doc));
        assert_eq!(st, 403, "tenant admin set {field}: {b}");
        assert!(b.to_string().contains("only the operator"), "{field}: {b}");
    }
    own["limits"] = json!({"max_calls": 1000});
    let (st, b) = pbx.api("PUT", &format!("/v1/tenants/{DOMAIN}"), &mine, Some(&own));
    assert_eq!(st, 403, "raised own limit: {b}");
    // The tenant list shows only its own tenant.
    let (_, list) = pbx.api("GET", "/v1/tenants", &mine, None);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["domain"], DOMAIN);
    // Nothing changed in the other tenant.
    let (st, other) = pbx.api("GET", &format!("/v1/tenants/{OTHER}"), OPERATOR_TOKEN, None);
    assert_eq!(st, 200);
    assert_eq!(other["users"].as_array().map(Vec::len), Some(1), "{other}");
    assert!(
        other["dialplan"].as_array().is_none_or(Vec::is_empty),
        "{other}"
    );
    // No token, a wrong token.
    assert_eq!(pbx.api("GET", "/v1/tenants", "", None).0, 401);
    assert_eq!(
        pbx.api("GET", "/v1/tenants", "not-a-token-at-all", None).0,
        401
    );
}

#[test]
fn tenants_created_at_run_time_take_calls_survive_a_restart_and_need_grants() {
    let mut pbx = Pbx::start(&setup());
    let op = OPERATOR_TOKEN;
    let (st, b) = pbx.api(
        "POST",
        "/v1/tenants",
        op,
        Some(&json!({"domain": NEW, "users": [
            {"extension": "201", "password": "pw201"},
            {"extension": "202", "password": "pw202"}
        ]})),
    );
    assert_eq!(st, 201, "{b}");
    assert!(registers(&pbx, NEW, "201"), "a new tenant's user registers");

    // echo-info stores data: enabling it without the kv grant is refused, by name.
    let p = format!("/v1/tenants/{NEW}/plugins/echo-info");
    let (st, b) = pbx.api("PUT", &p, op, Some(&json!({})));
    assert_eq!(st, 400, "{b}");
    let msg = b["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("\"kv\"") && msg.contains("not granted"),
        "{msg}"
    );
    // Enabled with the grant (the grants route only accepts enabled plugins,
    // so enable+grant is one tenant document).
    let (st, b) = pbx.api(
        "PUT",
        &format!("/v1/tenants/{NEW}"),
        op,
        Some(&json!({"users": [
            {"extension": "201", "password": "pw201"},
            {"extension": "202", "password": "pw202"}
        ], "plugins": [{"name": "echo-info", "grants": ["kv"], "config": {"greeting": "hello"}}],
           "dialplan": [{"number": "500", "plugin": "echo-info"}]})),
    );
    assert_eq!(st, 200, "{b}");
    // A config value outside the manifest's schema names the key.
    let (st, b) = pbx.api("PUT", &p, op, Some(&json!({"config": {"colour": "red"}})));
    assert_eq!(st, 400, "{b}");
    assert!(b.to_string().contains("colour"), "{b}");
    let out = call_in(&pbx, NEW, "uac_gets_bye.xml", ("201", "pw201"), "500", 30);
    assert!(
        out.status.success(),
        "call into the new tenant: {}",
        describe(&out)
    );
    let cdr = pbx
        .wait_cdrs(1, Duration::from_secs(10))
        .into_iter()
        .find(|c| c["tenant"] == NEW)
        .expect("a CDR of the new tenant");
    assert_eq!(cdr["plugin"], "echo-info", "{cdr}");
    // The same CDR as CSV through the CLI, scoped to the tenant.
    let out = pbx.cli(op, &["cdrs", NEW, "--csv"]);
    assert!(out.status.success(), "cdrs --csv: {}", describe(&out));
    let csv = String::from_utf8_lossy(&out.stdout);
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .is_some_and(|h| h.starts_with("call_id,tenant,from,to,start_ms")),
        "{csv}"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "only the new tenant's call: {csv}");
    assert!(
        rows[0].contains(NEW) && rows[0].contains("echo-info"),
        "{csv}"
    );

    // Export with the CLI, restart: still there; delete; import the file back.
    let file = pbx.dir.path().join("new-tenant.json");
    let out = pbx.cli(op, &["tenant", "export", NEW, "-o", file.to_str().unwrap()]);
    assert!(out.status.success(), "export: {}", describe(&out));
    pbx.restart();
    assert!(
        registers(&pbx, NEW, "202"),
        "the tenant survived the restart"
    );
    let out = pbx.cli(op, &["tenant", "delete", NEW]);
    assert!(out.status.success(), "delete: {}", describe(&out));
    assert!(
        !registers(&pbx, NEW, "202"),
        "a deleted tenant takes no REGISTER"
    );
    pbx.restart();
    assert!(!registers(&pbx, NEW, "202"), "deletion survives a restart");
    let out = pbx.cli(op, &["tenant", "import", file.to_str().unwrap()]);
    assert!(out.status.success(), "import: {}", describe(&out));
    assert!(registers(&pbx, NEW, "202"), "imported again");

    // Metrics per tenant.
    let (st, m) = pbx.api("GET", "/v1/metrics", op, None);
    assert_eq!(st, 200);
    let text = m.as_str().unwrap_or_default();
    assert!(
        text.contains(&format!(
            "plugboard_registrations_total{{tenant=\"{NEW}\"}}"
        )),
        "{text}"
    );
}
