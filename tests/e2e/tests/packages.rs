//! Signed plugin packages through a real OCI registry (Debian's
//! docker-registry on loopback): a vendor generates a key, packs, signs and
//! pushes versions; the operator trusts the vendor's key and installs by
//! semver range. Unsigned, unknown-key and tampered packages are refused
//! with the reason, and the installed plugin answers calls.

use std::path::Path;

use plugboard_e2e::*;
use serde_json::json;

fn refused(out: &std::process::Output, what: &str, reason: &str) {
    assert!(
        !out.status.success(),
        "{what} was accepted: {}",
        describe(out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(reason),
        "{what}: expected {reason:?} in: {err}"
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn signed_packages_through_an_oci_registry() {
    let registry = OciRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();

    // The vendor: a key, two versions of "swap" and echo-info, packed and signed.
    generate_key(w, "acme");
    // Another key that also calls itself acme: trust goes by key, not by name.
    std::fs::create_dir_all(w.join("mallory")).unwrap();
    generate_key(&w.join("mallory"), "acme");
    let mut pushed = Vec::new();
    for name in ["swap-v1", "swap-v2", "echo-info"] {
        let dir = plugin_copy(w, name, |m| m);
        let pkg = w.join(format!("{name}.pbpkg"));
        succeeded(
            &plugboard(&["plugin", "pack", s(&dir), "-o", s(&pkg)]),
            "pack",
        );
        succeeded(
            &plugboard(&["plugin", "sign", s(&pkg), "--key", s(&w.join("acme.key"))]),
            "sign",
        );
        let v = succeeded(
            &plugboard(&["plugin", "verify", s(&pkg), "--key", s(&w.join("acme.pub"))]),
            "verify",
        );
        assert!(
            v.contains("acme") && v.contains("sha256:"),
            "verify output: {v}"
        );
        let repo = if name == "echo-info" {
            "acme/echo-info"
        } else {
            "acme/swap"
        };
        let out = succeeded(
            &plugboard(&[
                "plugin",
                "push",
                s(&pkg),
                &format!("oci://{}/{repo}", registry.addr),
            ]),
            "push",
        );
        pushed.push(out);
    }
    // The tag is the package's version: a reference naming another is refused.
    let out = plugboard(&[
        "plugin",
        "push",
        s(&w.join("echo-info.pbpkg")),
        &format!("oci://{}/acme/echo-info@9.9.9", registry.addr),
    ]);
    refused(&out, "push under another version", "names version 9.9.9");
    // Verifying against the wrong key names the problem.
    let out = plugboard(&[
        "plugin",
        "verify",
        s(&w.join("echo-info.pbpkg")),
        "--key",
        s(&w.join("mallory/acme.pub")),
    ]);
    refused(&out, "verify with another key", "not in the trust store");

    // The operator: a host that accepts signed packages only.
    let pbx = Pbx::start(&Setup {
        admin: vec![DOMAIN.to_string()],
        tables: String::new(),
        users: vec![("101".into(), "pw101".into())],
        ..Setup::default()
    });
    let swap_1 = format!("oci://{}/acme/swap@^1", registry.addr);

    // Signed by a key the operator has not trusted yet: refused.
    let out = pbx.cli(OPERATOR_TOKEN, &["plugin", "install", &swap_1]);
    refused(&out, "install before trusting", "not in the trust store");
    // A tenant administrator cannot change the trust store.
    let out = pbx.cli(
        &tenant_token(DOMAIN),
        &["trust", "add", s(&w.join("acme.pub"))],
    );
    refused(&out, "trust add by a tenant admin", "HTTP 403");
    succeeded(
        &pbx.cli(OPERATOR_TOKEN, &["trust", "add", s(&w.join("acme.pub"))]),
        "trust add",
    );
    let keys = succeeded(&pbx.cli(OPERATOR_TOKEN, &["trust", "list"]), "trust list");
    assert!(
        keys.contains("\"acme\"") && keys.contains("ed25519:"),
        "{keys}"
    );

    // Semver resolution from the registry's tags: ^1 is 1.0.0, ^2 is 2.0.0.
    let out = succeeded(
        &pbx.cli(OPERATOR_TOKEN, &["plugin", "install", &swap_1]),
        "install ^1",
    );
    assert!(out.contains("\"1.0.0\""), "{out}");
    let out = succeeded(
        &pbx.cli(
            OPERATOR_TOKEN,
            &[
                "plugin",
                "install",
                &format!("oci://{}/acme/swap@^2", registry.addr),
            ],
        ),
        "install ^2",
    );
    assert!(out.contains("\"2.0.0\""), "{out}");
    let out = pbx.cli(
        OPERATOR_TOKEN,
        &[
            "plugin",
            "install",
            &format!("oci://{}/acme/swap@^3", registry.addr),
        ],
    );
    refused(&out, "install ^3", "1.0.0");
    let (st, list) = pbx.api("GET", "/v1/plugins", OPERATOR_TOKEN, None);
    assert_eq!(st, 200);
    let swap: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "swap")
        .collect();
    assert_eq!(swap.len(), 2, "{list}");
    assert!(swap.iter().all(|p| p["signer"]["name"] == "acme"), "{list}");

    // Refused packages, each with its reason; none gets installed.
    let unsigned = w.join("unsigned.pbpkg");
    let dir = plugin_copy(w, "echo-info", |m| m.replace("1.0.0", "1.0.1"));
    succeeded(
        &plugboard(&["plugin", "pack", s(&dir), "-o", s(&unsigned)]),
        "pack unsigned",
    );
    refused(
        &pbx.cli(OPERATOR_TOKEN, &["plugin", "install", s(&unsigned)]),
        "unsigned package",
        "not signed",
    );
    let unknown = w.join("unknown.pbpkg");
    std::fs::copy(&unsigned, &unknown).unwrap();
    succeeded(
        &plugboard(&[
            "plugin",
            "sign",
            s(&unknown),
            "--key",
            s(&w.join("mallory/acme.key")),
        ]),
        "sign",
    );
    refused(
        &pbx.cli(OPERATOR_TOKEN, &["plugin", "install", s(&unknown)]),
        "unknown key",
        "not in the trust store",
    );
    // Tampered: signed by acme, then the manifest is changed inside the
    // package folder (the signature stays).
    let tampered = plugin_copy(&w.join("t"), "echo-info", |m| m.replace("1.0.0", "1.0.2"));
    let signed = w.join("t.pbpkg");
    succeeded(
        &plugboard(&["plugin", "pack", s(&tampered), "-o", s(&signed)]),
        "pack",
    );
    succeeded(
        &plugboard(&[
            "plugin",
            "sign",
            s(&signed),
            "--key",
            s(&w.join("acme.key")),
        ]),
        "sign",
    );
    succeeded(
        &plugboard(&["plugin", "unpack", s(&signed), "-o", s(&w.join("t2"))]),
        "unpack",
    );
    let m = std::fs::read_to_string(w.join("t2/plugin.toml")).unwrap();
    std::fs::write(
        w.join("t2/plugin.toml"),
        m.replace("Test plugin", "Evil plugin"),
    )
    .unwrap();
    refused(
        &pbx.cli(OPERATOR_TOKEN, &["plugin", "install", s(&w.join("t2"))]),
        "tampered package",
        "changed after signing",
    );
    let (_, list) = pbx.api("GET", "/v1/plugins", OPERATOR_TOKEN, None);
    assert!(
        !list.to_string().contains("1.0.1") && !list.to_string().contains("1.0.2"),
        "a refused package was installed: {list}"
    );

    // The pulled, verified plugin answers calls.
    succeeded(
        &pbx.cli(
            OPERATOR_TOKEN,
            &[
                "plugin",
                "install",
                &format!("oci://{}/acme/echo-info", registry.addr),
            ],
        ),
        "install latest",
    );
    // A tenant administrator may enable, but not grant capabilities.
    let out = pbx.cli(
        &tenant_token(DOMAIN),
        &["plugin", "enable", DOMAIN, "echo-info", "--grant", "kv"],
    );
    refused(&out, "grant by a tenant admin", "HTTP 403");
    succeeded(
        &pbx.cli(
            OPERATOR_TOKEN,
            &["plugin", "enable", DOMAIN, "echo-info", "--grant", "kv"],
        ),
        "enable with a grant",
    );
    succeeded(
        &pbx.cli(
            OPERATOR_TOKEN,
            &["dialplan", "set", DOMAIN, "500", "--plugin", "echo-info"],
        ),
        "dialplan",
    );
    let out = call(&pbx, "uac_gets_bye.xml", "101", "500", 30);
    assert!(
        out.status.success(),
        "call into the pulled plugin: {}",
        describe(&out)
    );
    let cdr = pbx.wait_cdrs(1, std::time::Duration::from_secs(10));
    assert_eq!(cdr[0]["plugin"], json!("echo-info"), "{cdr:?}");
}

#[test]
fn development_mode_is_explicit_and_logged() {
    // Without [trust] allow_unsigned, an unsigned configured plugin stops the start.
    let work = tempfile::tempdir().unwrap();
    let dir = plugin_copy(work.path(), "echo-info", |m| m);
    let mut setup = Setup {
        plugins: vec![("echo-info".into(), dir.join("plugin.wasm"))],
        tables: String::new(),
        ..Setup::default()
    };
    let Err(out) = Pbx::try_start(&setup) else {
        panic!("an unsigned plugin must not start");
    };
    assert!(
        out.contains("echo-info") && out.contains("not signed"),
        "{out}"
    );
    // With it, the host starts and says so in its log, naming the plugin.
    setup.tables = "[trust]\nallow_unsigned = true\n".into();
    let pbx = Pbx::start(&setup);
    let log = pbx.log();
    assert!(
        log.contains("development mode") && log.contains("echo-info"),
        "dev mode not logged: {log}"
    );
}
