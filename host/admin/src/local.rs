//! The subcommands that run without the admin API: vendor keys, packing,
//! signing, verifying and pushing packages, signing licences; and reading
//! the package an `install` sends (from a folder, a file or a registry).

use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use plugboard_registry::keys::{PublicKey, SecretKey};
use plugboard_registry::oci::{Client, ClientOptions, Reference, VersionSpec};
use plugboard_registry::package::Package;
use plugboard_registry::trust::{TrustStore, verify};
use serde_json::{Value, json};

use crate::cli::{Command, KeyCommand, LicenceCommand, PluginCommand, read_file};

/// Whether `cmd` runs offline (no API call).
pub(crate) fn is_local(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::Key(_)
            | Command::Licence(LicenceCommand::Sign { .. })
            | Command::Plugin(
                PluginCommand::Pack { .. }
                    | PluginCommand::Unpack { .. }
                    | PluginCommand::Sign { .. }
                    | PluginCommand::Verify { .. }
                    | PluginCommand::Push { .. }
            )
    )
}

/// Runs an offline command, printing what it did to `out`.
pub(crate) async fn run(cmd: Command, out: &mut (impl Write + Send)) -> Result<(), String> {
    let say = |out: &mut (dyn Write + Send), v: Value| {
        let text = serde_json::to_string_pretty(&v).expect("json");
        writeln!(out, "{text}").map_err(|e| e.to_string())
    };
    match cmd {
        Command::Key(KeyCommand::Generate { signer, output }) => {
            let key = SecretKey::generate(&signer).map_err(|e| e.to_string())?;
            key.write_pair(&output).map_err(|e| e.to_string())?;
            say(
                out,
                json!({"signer": signer, "key_id": key.public().id().0,
                       "secret": output.with_extension("key"), "public": output.with_extension("pub")}),
            )
        }
        Command::Licence(LicenceCommand::Sign { body, key, output }) => {
            let text = String::from_utf8(read_file(&body)?)
                .map_err(|_| format!("{} is not UTF-8", body.display()))?;
            let key = SecretKey::read(&key).map_err(|e| e.to_string())?;
            let signed = plugboard_license::sign(&text, &key)
                .map_err(|e| format!("{}: {e}", body.display()))?;
            plugboard_registry::fsutil::write_atomic(&output, signed.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", output.display()))?;
            say(
                out,
                json!({"licence": output, "signer": key.signer, "key_id": key.public().id().0}),
            )
        }
        Command::Plugin(PluginCommand::Pack { dir, output }) => {
            let pkg = read_package(&dir)?;
            if pkg.signature.is_some() {
                return Err(format!(
                    "{} holds a plugin.sig; pack the unsigned plugin.toml and plugin.wasm, then sign",
                    dir.display()
                ));
            }
            let output = match output {
                Some(o) => o,
                None => pkg.file_name().map_err(|e| e.to_string())?.into(),
            };
            pkg.write(&output).map_err(|e| e.to_string())?;
            let (name, version) = pkg.name_version().map_err(|e| e.to_string())?;
            say(
                out,
                json!({"package": output, "name": name, "version": version.to_string(),
                       "digest": pkg.content_digest(), "signed": false}),
            )
        }
        Command::Plugin(PluginCommand::Unpack { package, output }) => {
            let pkg = read_package(&package)?;
            std::fs::create_dir(&output)
                .map_err(|e| format!("cannot create {}: {e}", output.display()))?;
            let mut files = vec![
                ("plugin.toml", pkg.manifest.clone().into_bytes()),
                ("plugin.wasm", pkg.component.clone()),
            ];
            if let Some(sig) = &pkg.signature {
                files.push(("plugin.sig", sig.to_file_text().into_bytes()));
            }
            for (name, bytes) in files {
                plugboard_registry::fsutil::write_atomic(&output.join(name), &bytes)
                    .map_err(|e| format!("cannot write {}: {e}", output.join(name).display()))?;
            }
            say(
                out,
                json!({"folder": output, "digest": pkg.content_digest()}),
            )
        }
        Command::Plugin(PluginCommand::Sign { package, key }) => {
            let mut pkg = read_package(&package)?;
            let key = SecretKey::read(&key).map_err(|e| e.to_string())?;
            pkg.sign(&key);
            pkg.write(&package).map_err(|e| e.to_string())?;
            say(
                out,
                json!({"package": package, "digest": pkg.content_digest(),
                       "signer": key.signer, "key_id": key.public().id().0}),
            )
        }
        Command::Plugin(PluginCommand::Verify {
            package,
            key,
            trust,
        }) => {
            let pkg = read_package(&package)?;
            let mut store = match &trust {
                Some(dir) => TrustStore::open(dir).map_err(|e| e.to_string())?,
                None => TrustStore::from_keys(Vec::new()),
            };
            for k in &key {
                store
                    .add(&PublicKey::read(k).map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?;
            }
            if trust.is_none() && key.is_empty() {
                return Err("give --key FILE.pub (repeatable) or --trust FOLDER".into());
            }
            let v = verify(&pkg, &store).map_err(|e| format!("{}: {e}", package.display()))?;
            say(
                out,
                json!({"package": package, "verified": true, "signer": v.signer,
                       "key_id": v.key_id.0, "digest": v.digest}),
            )
        }
        Command::Plugin(PluginCommand::Push {
            package,
            reference,
            plain_http,
        }) => {
            let pkg = read_package(&package)?;
            let r = Reference::parse(&reference).map_err(|e| e.to_string())?;
            let (_, version) = pkg.name_version().map_err(|e| e.to_string())?;
            // The tag is the package's version; a reference naming another is a mistake.
            let named = match &r.version {
                VersionSpec::Latest => None,
                VersionSpec::Exact(v) => Some(v.to_string()),
                VersionSpec::Req(req) => Some(req.to_string()),
            };
            if let Some(named) = named.filter(|n| *n != version.to_string()) {
                return Err(format!(
                    "{reference} names version {named}, but the package is version {version}; \
                     give the repository without a version (the tag is the package's version)"
                ));
            }
            let client = client(&r.registry, plain_http);
            let pushed = client
                .push(&pkg, &r.registry, &r.repository)
                .await
                .map_err(|e| e.to_string())?;
            say(
                out,
                json!({"pushed": pushed.reference.to_string(), "manifest_digest": pushed.digest,
                       "content_digest": pkg.content_digest(), "signed": pkg.signature.is_some()}),
            )
        }
        _ => Err("internal: not a local command".into()),
    }
}

/// The body of `POST /v1/plugins` for `source`: an `oci://` reference
/// (pulled here), a `.pbpkg` file or a folder.
pub(crate) async fn install_plan(source: &str, plain_http: bool) -> Result<Value, String> {
    let pkg = if source.starts_with("oci://") {
        let r = Reference::parse(source).map_err(|e| e.to_string())?;
        let (pkg, _version) = client(&r.registry, plain_http)
            .pull(&r)
            .await
            .map_err(|e| e.to_string())?;
        pkg
    } else {
        read_package(Path::new(source))?
    };
    let mut body = json!({
        "manifest": pkg.manifest,
        "component": base64::engine::general_purpose::STANDARD.encode(&pkg.component),
    });
    if let Some(sig) = &pkg.signature {
        body["signature"] = Value::String(sig.to_file_text());
    }
    Ok(body)
}

fn read_package(path: &Path) -> Result<Package, String> {
    Package::read(path).map_err(|e| e.to_string())
}

/// A registry client: plain HTTP for loopback registries (or when asked),
/// basic credentials from the environment.
fn client(registry: &str, plain_http: bool) -> Client {
    let host = registry
        .rsplit_once(':')
        .filter(|(h, p)| !h.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        .map_or(registry, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    Client::new(ClientOptions {
        insecure: if plain_http || loopback {
            vec![registry.to_string()]
        } else {
            Vec::new()
        },
        username: std::env::var("PLUGBOARD_REGISTRY_USER").ok(),
        password: std::env::var("PLUGBOARD_REGISTRY_PASSWORD").ok(),
    })
}
