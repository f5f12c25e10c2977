//! Tests of the whole configuration: valid files and one test per error kind,
//! asserting on the exact `file:line:col: message` text.

use super::*;

const EXAMPLE: &str = r#"[server]
sip_udp = "0.0.0.0:5060"
sip_tcp = "0.0.0.0:5060"
rtp_ports = "20000-20999"
data_dir = "data"
prompts_dir = "../../prompts"

[plugins.attendant]
path = "../../target/wasm32-wasip2/release/plugboard_attendant.wasm"

[[tenant]]
domain = "demo.plugboard.test"
[[tenant.user]]
extension = "101"
password = "secret101"
display_name = "Alice"
[tenant.dialplan]
"100" = { plugin = "attendant", config = { welcome = "welcome", timeout_s = 20 } }
"*98" = { plugin = "attendant", config = { mode = "mailbox" } }
"200" = { user = "101" }
"#;

fn path() -> &'static Path {
    Path::new("examples/demo/plugboard.toml")
}

fn err(text: &str) -> String {
    Config::from_str(text, path()).unwrap_err().to_string()
}

/// The example with `line` inserted after line `after` (1-based).
fn with_line(after: usize, line: &str) -> String {
    let mut lines: Vec<&str> = EXAMPLE.lines().collect();
    lines.insert(after, line);
    lines.join("\n")
}

#[test]
fn the_canonical_example_loads_with_defaults_and_resolved_paths() {
    let c = Config::from_str(EXAMPLE, path()).unwrap();
    let s = &c.server;
    assert_eq!(s.sip_udp, Some("0.0.0.0:5060".parse().unwrap()));
    assert_eq!(s.sip_tcp, Some("0.0.0.0:5060".parse().unwrap()));
    assert_eq!(s.rtp_ports, (20000, 20999));
    assert_eq!(s.media_ip, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert_eq!(s.advertise_ip, None);
    assert_eq!(s.effective_advertise_ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(s.data_dir, Path::new("examples/demo/data"));
    assert_eq!(s.prompts_dir, Path::new("examples/demo/../../prompts"));
    assert_eq!(
        s.plugin_cache_dir,
        Path::new("examples/demo/data/plugin-cache")
    );
    assert_eq!(
        (
            s.register_min_expires,
            s.register_max_expires,
            s.register_default_expires
        ),
        (60, 3600, 3600)
    );
    assert_eq!(s.nonce_lifetime_secs, 300);
    assert_eq!((s.plugin_memory_mb, s.plugin_cpu_ms), (64, 200));
    assert_eq!(
        c.plugins,
        vec![PluginDef {
            name: "attendant".into(),
            path: "examples/demo/../../target/wasm32-wasip2/release/plugboard_attendant.wasm"
                .into(),
            line: 8,
            grants: vec![],
            http_hosts: vec![],
        }]
    );
    assert_eq!(c.source, path());
    let t = c.tenant("demo.plugboard.test").unwrap();
    assert_eq!(t.language, "en");
    assert_eq!(
        t.users,
        vec![User {
            extension: "101".into(),
            password: "secret101".into(),
            display_name: Some("Alice".into()),
            rules: CallRules::default(),
        }]
    );
    assert_eq!(
        t.route("100"),
        Some(DialTarget::Plugin {
            name: "attendant".into(),
            config: vec![
                ("timeout_s".into(), "20".into()),
                ("welcome".into(), "welcome".into())
            ],
        })
    );
    assert_eq!(
        t.route("*98"),
        Some(DialTarget::Plugin {
            name: "attendant".into(),
            config: vec![("mode".into(), "mailbox".into())]
        })
    );
    assert_eq!(t.route("200"), Some(DialTarget::User("101".into())));
    assert_eq!(t.dialplan.len(), 3);
    assert_eq!(
        t.plugins,
        vec![crate::TenantPlugin {
            name: "attendant".into(),
            version: None,
            previous_version: None,
            config: vec![],
            grants: vec![],
            http_hosts: vec![],
        }],
        "a plugin named in the dial plan is enabled with the file's default grants"
    );
}

#[test]
fn rules_limits_time_zone_and_language_fallback_are_read_and_checked() {
    let text = EXAMPLE.replace(
        "display_name = \"Alice\"\n",
        "display_name = \"Alice\"\nrules = { forward_no_answer = \"200\", no_answer_s = 15, busy_on_second_call = true }\n",
    )
    .replace(
        "domain = \"demo.plugboard.test\"\n",
        "domain = \"demo.plugboard.test\"\ntimezone = \"Europe/Berlin\"\nlanguage_fallback = [\"de\"]\nlimits = { max_calls = 10 }\n",
    );
    let c = Config::from_str(&text, path()).unwrap();
    let t = c.tenant("demo.plugboard.test").unwrap();
    assert_eq!(t.timezone, "Europe/Berlin");
    assert_eq!(t.languages(), vec!["en", "de"]);
    assert_eq!(t.limits.max_calls, Some(10));
    let r = &t.user("101").unwrap().rules;
    assert_eq!(r.forward_no_answer.as_deref(), Some("200"));
    assert_eq!(r.ring_time_s(), 15);
    assert!(r.busy_on_second_call && !r.dnd);
    let e = err(&text.replace("Europe/Berlin", "Mars/Olympus"));
    assert!(e.contains("timezone \"Mars/Olympus\""), "{e}");
    let e = err(&text.replace("no_answer_s = 15", "no_answer_s = 1"));
    assert!(
        e.contains("user \"101\": rules.no_answer_s: 1 is outside 5-300"),
        "{e}"
    );
    let e = err(&text.replace("max_calls = 10", "max_calls = 0"));
    assert!(
        e.contains("limits.max_calls: must be greater than 0"),
        "{e}"
    );
    let e = err(&text.replace("busy_on_second_call", "busy_on_2nd"));
    assert!(e.contains("busy_on_2nd"), "{e}");
}

#[test]
fn tenant_plugin_tables_pin_configure_and_grant() {
    let text = EXAMPLE
        .replace(
            "plugboard_attendant.wasm\"\n",
            "plugboard_attendant.wasm\"\ngrants = [\"kv\"]\n",
        )
        .replace(
            "[tenant.dialplan]",
            "[tenant.plugins.attendant]\nversion = \"1.0.0\"\nconfig = { timeout_s = 25 }\ngrants = [\"kv\", \"recordings\"]\n[tenant.dialplan]",
        );
    let c = Config::from_str(&text, path()).unwrap();
    assert_eq!(c.plugins[0].grants, vec!["kv".to_string()]);
    let t = c.tenant("demo.plugboard.test").unwrap();
    assert_eq!(
        t.plugins,
        vec![crate::TenantPlugin {
            name: "attendant".into(),
            version: Some("1.0.0".into()),
            previous_version: None,
            config: vec![("timeout_s".into(), "25".into())],
            grants: vec!["kv".into(), "recordings".into()],
            http_hosts: vec![],
        }]
    );
    let e = err(&text.replace("grants = [\"kv\"]", "grants = [\"root\"]"));
    assert_eq!(
        e,
        "examples/demo/plugboard.toml:10:11: plugin \"attendant\": unknown capability \"root\" in grants (grantable: directory, http, kv, mail, mwi, recordings)"
    );
    let e = err(&text.replace("[tenant.plugins.attendant]", "[tenant.plugins.nope]"));
    assert!(
        e.contains("plugins.nope: not defined under [plugins]"),
        "{e}"
    );
}

#[test]
fn load_reads_the_file_and_resolves_against_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pb.toml");
    std::fs::write(&file, EXAMPLE).unwrap();
    let c = Config::load(&file).unwrap();
    assert_eq!(c.server.data_dir, dir.path().join("data"));
    assert_eq!(
        c.plugins[0].path,
        dir.path()
            .join("../../target/wasm32-wasip2/release/plugboard_attendant.wasm")
    );
    let abs = EXAMPLE.replace("data_dir = \"data\"", "data_dir = \"/var/lib/plugboard\"");
    std::fs::write(&file, abs).unwrap();
    assert_eq!(
        Config::load(&file).unwrap().server.data_dir,
        Path::new("/var/lib/plugboard")
    );

    let missing = dir.path().join("nope.toml");
    let e = Config::load(&missing).unwrap_err();
    assert_eq!(e.position, None);
    assert!(
        e.to_string().starts_with(&format!(
            "{}: cannot read configuration: ",
            missing.display()
        )),
        "{e}"
    );
}

#[test]
fn an_empty_file_is_a_server_with_defaults_and_no_tenants() {
    let c = Config::from_str("", Path::new("pb.toml")).unwrap();
    assert_eq!(c.server.sip_udp, Some("0.0.0.0:5060".parse().unwrap()));
    assert_eq!(c.server.sip_tcp, None);
    assert_eq!(c.server.rtp_ports, (20000, 29999));
    assert_eq!(c.server.data_dir, Path::new("data"));
    assert_eq!(c.server.prompts_dir, Path::new("prompts"));
    assert!(c.tenants.is_empty() && c.plugins.is_empty());
}

#[test]
fn none_disables_a_transport_and_advertise_ip_follows_a_specific_bind() {
    let c = Config::from_str(
        "[server]\nsip_udp = \"none\"\nsip_tcp = \"192.0.2.5:5070\"\nmedia_ip = \"::\"\n",
        path(),
    )
    .unwrap();
    assert_eq!(c.server.sip_udp, None);
    assert_eq!(
        c.server.effective_advertise_ip(),
        "192.0.2.5".parse::<IpAddr>().unwrap()
    );
    assert_eq!(c.server.media_ip, "::".parse::<IpAddr>().unwrap());
    let c = Config::from_str("[server]\nadvertise_ip = \"203.0.113.9\"\n", path()).unwrap();
    assert_eq!(
        c.server.effective_advertise_ip(),
        "203.0.113.9".parse::<IpAddr>().unwrap()
    );
}

#[test]
fn domain_lookup_is_case_insensitive_and_domains_are_lowercased() {
    let text = EXAMPLE.replace("demo.plugboard.test", "Demo.PlugBoard.Test");
    let c = Config::from_str(&text, path()).unwrap();
    assert_eq!(c.tenants[0].domain, "demo.plugboard.test");
    assert!(c.tenant("DEMO.plugboard.TEST").is_some());
    assert!(c.tenant("demo.plugboard.test").is_some());
    assert!(c.tenant("other.test").is_none());
}

#[test]
fn dial_plan_entries_take_precedence_over_extensions() {
    // "101" is both a user and a dial plan entry: the dial plan wins.
    let text = with_line(20, r#""101" = { plugin = "attendant" }"#);
    let c = Config::from_str(&text, path()).unwrap();
    let t = &c.tenants[0];
    assert_eq!(
        t.route("101"),
        Some(DialTarget::Plugin {
            name: "attendant".into(),
            config: vec![]
        })
    );
    // Without an entry, an extension routes to its user; unknown numbers go nowhere.
    let c = Config::from_str(EXAMPLE, path()).unwrap();
    assert_eq!(
        c.tenants[0].route("101"),
        Some(DialTarget::User("101".into()))
    );
    assert_eq!(c.tenants[0].route("999"), None);
    assert!(c.tenants[0].user("101").is_some());
    assert!(c.tenants[0].user("102").is_none());
}

#[test]
fn plugin_config_is_flattened_to_text() {
    let text = with_line(
        20,
        r#""300" = { plugin = "attendant", config = { a = true, b = 1.5, c = [1, 2], d = { e = "x", f = 3 } } }"#,
    );
    let c = Config::from_str(&text, path()).unwrap();
    let Some(DialTarget::Plugin { config, .. }) = c.tenants[0].route("300") else {
        panic!()
    };
    let kv: Vec<(&str, &str)> = config
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        kv,
        vec![
            ("a", "true"),
            ("b", "1.5"),
            ("c", "[1, 2]"),
            ("d.e", "x"),
            ("d.f", "3")
        ]
    );
}

#[test]
fn syntax_errors_carry_the_parser_position() {
    let e = err("[server]\nsip_udp = \"0.0.0.0:5060\n");
    assert!(e.starts_with("examples/demo/plugboard.toml:2:"), "{e}");
    let e = err("[server]\nrtp_ports = 5\n");
    assert!(e.starts_with("examples/demo/plugboard.toml:2:13: "), "{e}");
    // Duplicate TOML keys are a syntax error.
    let e = err(&with_line(20, r#""200" = { user = "101" }"#));
    assert!(e.starts_with("examples/demo/plugboard.toml:21:"), "{e}");
}

#[test]
fn unknown_keys_are_refused_at_their_line() {
    let e = err(&with_line(1, "sip_ucp = \"0.0.0.0:5060\""));
    assert!(
        e.starts_with("examples/demo/plugboard.toml:2:1: unknown field `sip_ucp`"),
        "{e}"
    );
    let e = err(&with_line(16, "pasword = \"x\""));
    assert!(
        e.starts_with("examples/demo/plugboard.toml:17:1: unknown field `pasword`"),
        "{e}"
    );
    let e = err(&with_line(9, "sha256 = \"ab\""));
    assert!(
        e.starts_with("examples/demo/plugboard.toml:10:1: unknown field `sha256`"),
        "{e}"
    );
    let e = err("[sever]\n");
    assert!(
        e.starts_with("examples/demo/plugboard.toml:1:2: unknown field `sever`"),
        "{e}"
    );
    let e = err(&with_line(
        20,
        r#""300" = { plugin = "attendant", cfg = {} }"#,
    ));
    assert!(e.starts_with("examples/demo/plugboard.toml:21:"), "{e}");
    assert!(e.contains("unknown field `cfg`"), "{e}");
}

#[test]
fn missing_required_fields_are_reported() {
    let e = err("[[tenant]]\nlanguage = \"en\"\n");
    assert!(e.starts_with("examples/demo/plugboard.toml:"), "{e}");
    assert!(e.contains("missing field `domain`"), "{e}");
}

#[test]
fn duplicate_extension() {
    let text = with_line(16, "[[tenant.user]]\nextension = \"101\"\npassword = \"x\"");
    assert_eq!(
        err(&text),
        "examples/demo/plugboard.toml:18:13: tenant \"demo.plugboard.test\": user \"101\": duplicate extension"
    );
}

#[test]
fn duplicate_domain_ignores_case() {
    let text = format!("{EXAMPLE}\n[[tenant]]\ndomain = \"DEMO.plugboard.test\"\n");
    assert_eq!(
        err(&text),
        "examples/demo/plugboard.toml:23:10: tenant \"demo.plugboard.test\": duplicate domain"
    );
}

#[test]
fn unknown_plugin_in_a_dial_plan() {
    let text = with_line(20, r#""300" = { plugin = "voicemail" }"#);
    assert_eq!(
        err(&text),
        "examples/demo/plugboard.toml:21:20: tenant \"demo.plugboard.test\": dial plan \"300\": unknown plugin \"voicemail\" (defined plugins: attendant)"
    );
}

#[test]
fn unknown_user_target() {
    let text = EXAMPLE.replace(r#""200" = { user = "101" }"#, r#""200" = { user = "102" }"#);
    assert_eq!(
        err(&text),
        "examples/demo/plugboard.toml:20:18: tenant \"demo.plugboard.test\": dial plan \"200\": unknown user \"102\" in this tenant"
    );
}

#[test]
fn dial_entries_need_exactly_one_target() {
    let e = err(&with_line(20, r#""300" = { }"#));
    assert!(e.starts_with("examples/demo/plugboard.toml:21:9: "), "{e}");
    assert!(
        e.ends_with("dial plan \"300\": missing target: add plugin = \"...\" or user = \"...\""),
        "{e}"
    );
    let e = err(&with_line(
        20,
        r#""300" = { plugin = "attendant", user = "101" }"#,
    ));
    assert!(e.starts_with("examples/demo/plugboard.toml:21:40: "), "{e}");
    assert!(e.ends_with("give either plugin or user, not both"), "{e}");
    let e = err(&with_line(
        20,
        r#""300" = { user = "101", config = { a = 1 } }"#,
    ));
    assert!(e.starts_with("examples/demo/plugboard.toml:21:34: "), "{e}");
}

#[test]
fn bad_port_range() {
    let text = EXAMPLE.replace("20000-20999", "20999-20000");
    assert_eq!(
        err(&text),
        "examples/demo/plugboard.toml:4:13: server.rtp_ports: \"20999-20000\": the first port must be below the last (RTP needs at least two ports)"
    );
    let e = err(&EXAMPLE.replace("20000-20999", "20000-99999"));
    assert_eq!(
        e,
        "examples/demo/plugboard.toml:4:13: server.rtp_ports: \"20000-99999\": \"99999\" is not a port number (1-65535)"
    );
}

#[test]
fn bad_addresses() {
    let e = err(&EXAMPLE.replace("sip_tcp = \"0.0.0.0:5060\"", "sip_tcp = \"0.0.0.0\""));
    assert_eq!(
        e,
        "examples/demo/plugboard.toml:3:11: server.sip_tcp: \"0.0.0.0\" is not an address like \"0.0.0.0:5060\" or \"none\""
    );
    let e = err("[server]\nmedia_ip = \"localhost\"\n");
    assert_eq!(
        e,
        "examples/demo/plugboard.toml:2:12: server.media_ip: \"localhost\" is not an IP address"
    );
    let e = err("[server]\nadvertise_ip = \"0.0.0.0\"\n");
    assert!(e.starts_with("examples/demo/plugboard.toml:2:16: "), "{e}");
    let e = err("[server]\nsip_udp = \"none\"\n");
    assert!(e.starts_with("examples/demo/plugboard.toml:2:11: "), "{e}");
    assert!(e.ends_with("enable at least one"), "{e}");
}

#[test]
fn registration_timer_limits_must_be_ordered() {
    let e = err("[server]\nregister_min_expires = 600\nregister_max_expires = 300\n");
    assert!(
        e.starts_with(
            "examples/demo/plugboard.toml:3:24: server: register_min_expires (600) is above"
        ),
        "{e}"
    );
    let e = err("[server]\nregister_default_expires = 30\n");
    assert!(
        e.starts_with(
            "examples/demo/plugboard.toml:2:28: server: register_default_expires (30) must lie"
        ),
        "{e}"
    );
    let e = err("[server]\nplugin_cpu_ms = 0\n");
    assert_eq!(
        e,
        "examples/demo/plugboard.toml:2:17: server.plugin_cpu_ms: must be greater than 0"
    );
    let e = err("[server]\nplugin_memory_mb = -1\n");
    assert!(e.starts_with("examples/demo/plugboard.toml:2:20: "), "{e}");
}

#[test]
fn bad_names_are_refused() {
    let e = err(&EXAMPLE.replace("domain = \"demo.plugboard.test\"", "domain = \"../etc\""));
    assert_eq!(
        e,
        "examples/demo/plugboard.toml:12:10: tenant \"../etc\": not a valid domain name"
    );
    let e = err(&with_line(12, "language = \"../../etc\""));
    assert!(
        e.starts_with(
            "examples/demo/plugboard.toml:13:12: tenant \"demo.plugboard.test\": language"
        ),
        "{e}"
    );
    let e = err(&EXAMPLE.replace("[plugins.attendant]", "[plugins.\"At tendant\"]"));
    assert!(
        e.starts_with("examples/demo/plugboard.toml:8:10: plugin \"At tendant\": names use"),
        "{e}"
    );
    let e = err(&EXAMPLE.replace("extension = \"101\"", "extension = \"1 01\""));
    assert!(e.starts_with("examples/demo/plugboard.toml:14:13: "), "{e}");
    let e = err(&EXAMPLE.replace("password = \"secret101\"", "password = \"\""));
    assert_eq!(
        e,
        "examples/demo/plugboard.toml:15:12: tenant \"demo.plugboard.test\": user \"101\": empty password"
    );
}

#[test]
fn the_documented_example_file_loads() {
    let text = include_str!("../plugboard.example.toml");
    let c = Config::from_str(text, Path::new("examples/demo/plugboard.toml")).unwrap();
    let t = c.tenant("demo.plugboard.test").unwrap();
    assert_eq!(t.route("200"), Some(DialTarget::User("101".into())));
    assert_eq!(c.server.rtp_ports, (20000, 20999));
    assert_eq!(c.server.data_dir, Path::new("examples/demo/data"));
}

#[test]
fn the_voicemail_for_another_pbx_example_loads() {
    let text = include_str!("../../../examples/voicemail-for-pbx.toml");
    let c = Config::from_str(text, Path::new("examples/voicemail-for-pbx.toml")).unwrap();
    let t = c.tenant("voicemail.acme.example").unwrap();
    assert_eq!(t.trunks.len(), 1);
    assert!(t.trunks[0].mwi);
    let addr: std::net::SocketAddr = "192.0.2.10:5060".parse().unwrap();
    assert_eq!(
        t.trunk_at(addr).map(|t| t.name.as_str()),
        Some("legacy-pbx")
    );
    let plan = t.numbering.as_ref().unwrap();
    for form in ["+49 8142 4799 123", "0049-81424799123", "123"] {
        assert_eq!(plan.normalize(form).unwrap(), "+4981424799123", "{form}");
    }
    assert_eq!(t.mail.as_ref().unwrap().host, "smtp.acme.example");
    assert_eq!(t.directory.as_ref().unwrap().servers.len(), 2);
}

#[test]
fn bad_service_tables_name_file_line_and_field() {
    let text = include_str!("../../../examples/voicemail-for-pbx.toml");
    let e = Config::from_str(
        &text.replace(
            "from = \"Voicemail <voicemail@acme.example>\"",
            "from = \"nobody\"",
        ),
        Path::new("vm.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("vm.toml:") && e.contains("[mail]") && e.contains("from"),
        "{e}"
    );
    let e = Config::from_str(
        &text.replace(
            "address = \"192.0.2.10:5060\"",
            "address = \"0.0.0.0:5060\"",
        ),
        Path::new("vm.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("trunk \"legacy-pbx\"") && e.contains("not a peer"),
        "{e}"
    );
    let no_plan = text.replace("[tenant.numbering]", "[tenant.numbering_off]");
    let e = Config::from_str(&no_plan, Path::new("vm.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("numbering"), "{e}");
}

#[test]
fn a_trunk_address_belongs_to_one_tenant() {
    let text = include_str!("../../../examples/voicemail-for-pbx.toml");
    let second = "\n[[tenant]]\ndomain = \"other.example\"\n\n[[tenant.trunk]]\nname = \"stolen\"\naddress = \"192.0.2.10:5060\"\n";
    let e = Config::from_str(&format!("{text}{second}"), Path::new("vm.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("other.example")
            && e.contains("already a trunk of tenant \"voicemail.acme.example\""),
        "{e}"
    );
}
