//! Installing plugins: a manifest must match its component exactly, the
//! contract must be one this host implements, and a refused install leaves
//! nothing behind. Uses the guests built by scripts/build-plugins.sh.

use std::path::{Path, PathBuf};

use plugboard_plugins::*;

fn wasm(name: &str) -> Vec<u8> {
    let p: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    std::fs::read(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/build-plugins.sh)", p.display()))
}

const ECHO: &str = r#"
name = "echo-info"
version = "1.0.0"
contract = "0.1"
roles = ["call-flow"]
capabilities = ["call", "config", "kv", "log"]

[config.greeting]
type = "string"
default = "welcome"
"#;

/// A provenance for ECHO + `bytes` signed by one fixed test key.
fn signed_by_acme(bytes: &[u8]) -> plugboard_plugins::Provenance {
    use plugboard_registry::keys::SecretKey;
    const ACME: &str =
        "signer = \"acme\"\nsecret = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\n";
    let key = SecretKey::parse(ACME).unwrap();
    let mut pkg = plugboard_registry::package::Package::new(ECHO, bytes);
    pkg.sign(&key);
    plugboard_plugins::Provenance {
        signer: plugboard_plugins::Signer {
            name: "acme".into(),
            key_id: key.public().id().0,
        },
        signature: pkg.signature.unwrap().to_file_text(),
    }
}

fn catalog(dir: &Path) -> Catalog {
    let rt = Runtime::new(RuntimeConfig {
        cache_dir: dir.join("cache"),
        max_instances: 4,
        worker_threads: 1,
        ..Default::default()
    })
    .unwrap();
    Catalog::open(rt, &dir.join("plugins")).unwrap()
}

fn refused(c: &Catalog, manifest: &str, bytes: &[u8]) -> String {
    match c.install(manifest, bytes, None) {
        Err(CatalogError::Invalid(m)) => m,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn an_exact_manifest_installs_and_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = wasm("test_plugin_echo_info");
    {
        let c = catalog(dir.path());
        let i = c.install(ECHO, &bytes, None).unwrap();
        assert_eq!(i.manifest.version.to_string(), "1.0.0");
        assert!(
            dir.path()
                .join("plugins/echo-info/1.0.0/plugin.wasm")
                .is_file()
        );
        // The same bytes again: a no-op; other bytes under the same version: refused.
        c.install(ECHO, &bytes, None).unwrap();
        let other = wasm("test_plugin_trap");
        assert!(matches!(
            c.install(
                &ECHO.replace("\"call\", \"config\", \"kv\", \"log\"", ""),
                &other,
                None
            ),
            Err(CatalogError::Conflict(_))
        ));
        // The same bytes with another manifest, or now with a signer: refused too.
        assert!(matches!(
            c.install(
                &ECHO.replace("contract", "description = \"changed\"\ncontract"),
                &bytes,
                None
            ),
            Err(CatalogError::Conflict(_))
        ));
        let signed = signed_by_acme(&bytes);
        assert!(matches!(
            c.install(ECHO, &bytes, Some(&signed)),
            Err(CatalogError::Conflict(_))
        ));
    }
    let c = catalog(dir.path());
    assert!(
        c.get("echo-info", None).is_some(),
        "reloaded from the catalog dir"
    );
    // A signed version keeps its signer across a reopen (from plugin.sig).
    let other_dir = tempfile::tempdir().unwrap();
    {
        let c = catalog(other_dir.path());
        let signed = signed_by_acme(&bytes);
        c.install(ECHO, &bytes, Some(&signed)).unwrap();
    }
    let key_id = signed_by_acme(&bytes).signer.key_id;
    {
        let c = catalog(other_dir.path());
        let i = c.get("echo-info", None).unwrap();
        assert_eq!(i.signer.as_ref().map(|s| &s.key_id), Some(&key_id));
    }
    // Files changed on disk after a signed install: the version does not
    // load, rather than lend the signer to other bytes.
    let manifest = other_dir.path().join("plugins/echo-info/1.0.0/plugin.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("welcome", "changed")).unwrap();
    assert!(catalog(other_dir.path()).get("echo-info", None).is_none());
}

#[test]
fn manifests_that_ask_too_much_or_too_little_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let c = catalog(dir.path());
    let bytes = wasm("test_plugin_echo_info");
    let e = refused(
        &c,
        &ECHO.replace("\"kv\", ", "\"kv\", \"recordings\", "),
        &bytes,
    );
    assert!(
        e.contains("requests capability \"recordings\" but the component does not import"),
        "{e}"
    );
    let e = refused(&c, &ECHO.replace("\"kv\", ", ""), &bytes);
    assert!(
        e.contains("imports plugboard:pbx/kv but plugin.toml does not request"),
        "{e}"
    );
    let e = refused(
        &c,
        &ECHO.replace("contract = \"0.1\"", "contract = \"0.2\""),
        &bytes,
    );
    assert!(e.contains("newer than the host"), "{e}");
    let e = refused(
        &c,
        &ECHO.replace("[\"call-flow\"]", "[\"listener\"]"),
        &bytes,
    );
    assert!(e.contains("is a call-flow plugin"), "{e}");
    let e = refused(&c, ECHO, b"\0asm\x01\0\0\0");
    assert!(e.contains("not a loadable component"), "{e}");
    assert!(
        !dir.path().join("plugins/echo-info").exists(),
        "a refused install leaves nothing behind"
    );
    assert!(c.list().is_empty());
}

#[test]
fn config_is_checked_against_the_schema_of_the_installed_version() {
    let dir = tempfile::tempdir().unwrap();
    let c = catalog(dir.path());
    let i = c
        .install(ECHO, &wasm("test_plugin_echo_info"), None)
        .unwrap();
    let ok = i.manifest.resolve_config(&[&[]]).unwrap();
    assert_eq!(ok, vec![("greeting".to_string(), "welcome".to_string())]);
    let e = i
        .manifest
        .resolve_config(&[&[("colour".to_string(), "red".to_string())]])
        .unwrap_err();
    assert!(e.contains("\"colour\""), "{e}");
}
