//! The `plugboard` admin subcommands: a clap [`Command`] the host binary
//! flattens into its own parser, [`GlobalOpts`] for `--api` and `--token`, and
//! [`run`].
//!
//! Embedding (the host's `main.rs`):
//!
//! ```no_run
//! use clap::{Parser, Subcommand};
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     admin: plugboard_admin::cli::GlobalOpts,
//!     #[command(subcommand)]
//!     command: Command,
//! }
//!
//! #[derive(Subcommand)]
//! enum Command {
//!     /// Start the PBX.
//!     Run,
//!     #[command(flatten)]
//!     Admin(plugboard_admin::cli::Command),
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     let cli = Cli::parse();
//!     match cli.command {
//!         Command::Run => std::process::ExitCode::SUCCESS,
//!         Command::Admin(cmd) => plugboard_admin::cli::run_blocking(cli.admin, cmd),
//!     }
//! }
//! ```
//!
//! Output goes to stdout: pretty JSON, or the text the API returned (CSV,
//! metrics). An API error prints `error: MESSAGE (HTTP STATUS)` on stderr and
//! exits with 1; so does any local problem (unreadable file, no connection).

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine as _;
use clap::{ArgGroup, Args, Subcommand};
use hyper::Method;
use serde_json::{Map, Value, json};

use crate::client::{ApiResponse, Client, ResponseBody, path};

/// Options shared by every admin subcommand (global: accepted before or after it).
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct GlobalOpts {
    /// Base URL of the admin API (plain http).
    #[arg(
        long,
        global = true,
        display_order = 900,
        value_name = "URL",
        env = "PLUGBOARD_API",
        default_value = "http://127.0.0.1:8090"
    )]
    pub api: String,

    /// Bearer token: the operator's or a tenant administrator's. Prefer the
    /// environment variable; a command line is visible to other local users.
    #[arg(
        long,
        global = true,
        display_order = 901,
        value_name = "TOKEN",
        env = "PLUGBOARD_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

/// The admin subcommands; `#[command(flatten)]` them into the binary's subcommand enum.
#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum Command {
    /// Manage tenants (SIP domains): list, show, export, import, delete.
    #[command(
        subcommand,
        after_long_help = "Examples:\n  \
        plugboard tenant list\n  \
        plugboard tenant export example.com -o example.com.json\n  \
        plugboard tenant import example.com.json\n  \
        plugboard tenant delete old.example.com"
    )]
    Tenant(TenantCommand),

    /// Manage a tenant's users (phones): list, add, delete.
    #[command(
        subcommand,
        after_long_help = "Examples:\n  \
        plugboard user list example.com\n  \
        plugboard user add example.com 101 --password s3cret --name Alice\n  \
        printf '%s\\n' \"$PW\" | plugboard user add example.com 102 --password -\n  \
        plugboard user delete example.com 101"
    )]
    User(UserCommand),

    /// Manage a tenant's dial plan: which number rings which user or plugin.
    #[command(
        subcommand,
        after_long_help = "Examples:\n  \
        plugboard dialplan list example.com\n  \
        plugboard dialplan set example.com 200 --user 101\n  \
        plugboard dialplan set example.com 100 --plugin attendant --config timeout_s=20 --config welcome=hello\n  \
        plugboard dialplan delete example.com '*98'"
    )]
    Dialplan(DialplanCommand),

    /// Manage plugins: install on the host, enable and configure per tenant,
    /// swap versions, roll back, grant capabilities.
    #[command(
        subcommand,
        after_long_help = "Examples:\n  \
        plugboard plugin install target/plugins/attendant\n  \
        plugboard plugin enable example.com attendant --config greeting=hello\n  \
        plugboard plugin swap example.com attendant 1.3.0\n  \
        plugboard plugin rollback example.com attendant\n  \
        plugboard plugin grant example.com attendant kv recordings\n  \
        plugboard plugin uninstall attendant 1.1.0"
    )]
    Plugin(PluginCommand),

    /// Manage a tenant's prompt overrides: WAV files that replace stock
    /// prompts for the tenant's calls, per language.
    #[command(
        subcommand,
        after_long_help = "Examples:\n  \
        plugboard prompt list example.com\n  \
        plugboard prompt upload example.com de welcome welcome-de.wav\n  \
        plugboard prompt delete example.com de welcome\n\n\
        Files must be 8000 Hz mono WAV (16-bit PCM, mu-law or A-law), at most\n\
        10 MiB and 10 minutes; convert with e.g.\n  \
        sox in.wav -r 8000 -c 1 -b 16 out.wav"
    )]
    Prompt(PromptCommand),

    /// Show calls in progress: all of them (operator), or one tenant's.
    #[command(after_long_help = "Examples:\n  plugboard calls\n  plugboard calls example.com")]
    Calls {
        /// Only this tenant's calls.
        domain: Option<String>,
    },

    /// Show the registered phones (contacts) of a tenant's users.
    #[command(after_long_help = "Example:\n  plugboard registrations example.com")]
    Registrations {
        /// The tenant.
        domain: String,
    },

    /// Print call detail records (CDRs), oldest first, as JSON or CSV.
    ///
    /// CSV columns: call_id, tenant, from, to, start_ms, answer_ms, end_ms,
    /// disposition, plugin, plugin_version, then any other fields sorted by name.
    #[command(after_long_help = "Examples:\n  \
        plugboard cdrs example.com --csv > calls.csv\n  \
        plugboard cdrs --since-ms $(( ($(date +%s) - 86400) * 1000 )) --limit 100")]
    Cdrs {
        /// Only this tenant's records (required for a tenant administrator).
        domain: Option<String>,
        /// Print CSV (RFC 4180) instead of JSON.
        #[arg(long)]
        csv: bool,
        /// Only calls started at or after this time, in milliseconds since the Unix epoch.
        #[arg(long, value_name = "MS")]
        since_ms: Option<u64>,
        /// At most this many records.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
    },

    /// Vendor keys: generate an Ed25519 signing key pair (offline).
    #[command(
        subcommand,
        after_long_help = "Example:\n  \
        plugboard key generate --signer acme -o keys/acme   # writes keys/acme.key and keys/acme.pub"
    )]
    Key(KeyCommand),

    /// The trust store: vendor keys whose signed plugin packages this host
    /// installs (operator).
    #[command(
        subcommand,
        after_long_help = "Examples:\n  \
        plugboard trust add acme.pub\n  \
        plugboard trust list\n  \
        plugboard trust remove ed25519:0123456789abcdef"
    )]
    Trust(TrustCommand),

    /// Licences: show the state, install or remove licence files (operator),
    /// sign a licence (licensor or vendor, offline).
    #[command(
        subcommand,
        after_long_help = "Examples:\n  \
        plugboard licence show\n  \
        plugboard licence install site.toml\n  \
        plugboard licence remove site\n  \
        plugboard licence sign body.toml --key licensor.key -o site.toml"
    )]
    Licence(LicenceCommand),

    /// Check that the PBX answers (needs no token).
    Health,

    /// Print the Prometheus metrics (operator).
    Metrics,
}

/// `plugboard tenant ...`
#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum TenantCommand {
    /// List tenants (a tenant administrator sees only its own).
    List,
    /// Show a whole tenant: users, dial plan, plugins.
    Show {
        /// The tenant's SIP domain.
        domain: String,
    },
    /// Export a tenant as one JSON document (the input of `tenant import`).
    ///
    /// The document contains user passwords: keep the file private.
    Export {
        /// The tenant's SIP domain.
        domain: String,
        /// Write to this file instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Import a tenant document, replacing the tenant of its "domain" completely.
    ///
    /// Creating a tenant that does not exist yet needs the operator's token.
    #[command(after_long_help = "Examples:\n  \
        plugboard tenant import example.com.json\n  \
        plugboard tenant export a.example.com | sed 's/a.example.com/b.example.com/' | plugboard tenant import -")]
    Import {
        /// A JSON file as written by `tenant export`; `-` reads stdin.
        file: PathBuf,
    },
    /// Delete a tenant and everything in it (operator).
    Delete {
        /// The tenant's SIP domain.
        domain: String,
    },
}

/// `plugboard user ...`
#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum UserCommand {
    /// List a tenant's users.
    List {
        /// The tenant's SIP domain.
        domain: String,
    },
    /// Add a user that can register phones and be called.
    #[command(after_long_help = "Examples:\n  \
        plugboard user add example.com 101 --password s3cret --name Alice\n  \
        printf '%s\\n' \"$PW\" | plugboard user add example.com 102 --password -")]
    Add {
        /// The tenant's SIP domain.
        domain: String,
        /// Extension: the SIP user name and digest username.
        ext: String,
        /// Digest password; `-` reads one line from stdin (keeps it out of
        /// the process list and shell history).
        #[arg(long, value_name = "P")]
        password: String,
        /// Display name shown to the people this user calls.
        #[arg(long, value_name = "N")]
        name: Option<String>,
    },
    /// Delete a user.
    Delete {
        /// The tenant's SIP domain.
        domain: String,
        /// Extension.
        ext: String,
    },
}

/// `plugboard dialplan ...`
#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum DialplanCommand {
    /// Show a tenant's dial plan.
    List {
        /// The tenant's SIP domain.
        domain: String,
    },
    /// Route a number to a user's phones or to a plugin (replaces any entry for it).
    #[command(
        group(ArgGroup::new("target").required(true).args(["user", "plugin"])),
        after_long_help = "Examples:\n  \
        plugboard dialplan set example.com 200 --user 101\n  \
        plugboard dialplan set example.com '*98' --plugin voicemail --config mode=mailbox\n  \
        plugboard dialplan set example.com +4930123456 --plugin attendant --config timeout_s=20"
    )]
    Set {
        /// The tenant's SIP domain.
        domain: String,
        /// The dialled number, matched exactly (e.g. 100, *98, +4930123456).
        number: String,
        /// Ring this user's registered phones.
        #[arg(long, value_name = "EXT")]
        user: Option<String>,
        /// Hand the call to this plugin.
        #[arg(long, value_name = "NAME")]
        plugin: Option<String>,
        /// A plugin setting, repeatable. VALUE is taken as JSON when it is
        /// valid JSON (20, true, "quoted", a JSON array or object), else as a string; quote to
        /// force a string: timeout='"20"'.
        #[arg(long, value_name = "KEY=VALUE", conflicts_with = "user", value_parser = parse_key_value)]
        config: Vec<(String, Value)>,
    },
    /// Remove a number from the dial plan.
    Delete {
        /// The tenant's SIP domain.
        domain: String,
        /// The dialled number.
        number: String,
    },
}

/// `plugboard prompt ...`
#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum PromptCommand {
    /// List a tenant's prompt overrides (language, name, size, length).
    List {
        /// The tenant's SIP domain.
        domain: String,
    },
    /// Upload a WAV file as the tenant's override of a prompt in a language
    /// (replaces any previous one; the next call plays it).
    #[command(after_long_help = "Examples:\n  \
        plugboard prompt upload example.com en welcome welcome.wav\n  \
        plugboard prompt upload example.com de digits/4 vier.wav")]
    Upload {
        /// The tenant's SIP domain.
        domain: String,
        /// Language tag, e.g. en, de, pt-BR.
        language: String,
        /// Prompt name as plugins play it, without .wav (e.g. welcome, digits/4).
        name: String,
        /// The WAV file: 8000 Hz mono, 16-bit PCM, mu-law or A-law.
        file: PathBuf,
    },
    /// Remove a tenant's override; its calls play the stock prompt again.
    Delete {
        /// The tenant's SIP domain.
        domain: String,
        /// Language tag.
        language: String,
        /// Prompt name.
        name: String,
    },
}

/// `plugboard plugin ...`
#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum PluginCommand {
    /// List the plugin versions installed on the host (operator).
    List,
    /// Install a plugin version on the host (operator): from an OCI
    /// registry, a package file (.pbpkg) or a folder holding plugin.toml,
    /// plugin.wasm and plugin.sig.
    ///
    /// The host checks the signature against its trust store; unsigned
    /// packages are accepted only in development mode ([trust] allow_unsigned).
    /// Registry references are oci://HOST[:PORT]/REPOSITORY[@VERSION-REQ]:
    /// @^1.2 is the newest 1.x at or above 1.2, @1.2.3 exactly that version,
    /// no @ the newest release. Loopback registries are reached over plain
    /// HTTP, others over HTTPS (--plain-http to override); credentials come
    /// from PLUGBOARD_REGISTRY_USER and PLUGBOARD_REGISTRY_PASSWORD.
    #[command(after_long_help = "Examples:\n  \
        plugboard plugin install oci://registry.example.com/acme/queue@^1.2\n  \
        plugboard plugin install queue-1.2.0.pbpkg\n  \
        plugboard plugin install target/plugins/attendant")]
    Install {
        /// oci://..., a .pbpkg file or a folder.
        source: String,
        /// Reach the registry over plain HTTP even if it is not on loopback.
        #[arg(long)]
        plain_http: bool,
    },
    /// Build a package file (.pbpkg) from a folder holding plugin.toml and
    /// plugin.wasm (offline).
    #[command(
        after_long_help = "Example:\n  plugboard plugin pack target/plugins/attendant -o attendant-1.1.0.pbpkg"
    )]
    Pack {
        /// The folder.
        dir: PathBuf,
        /// The package file (default: NAME-VERSION.pbpkg here).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Extract a package into a folder (plugin.toml, plugin.wasm, plugin.sig) (offline).
    Unpack {
        /// The package file.
        package: PathBuf,
        /// The folder to create.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Sign a package with a vendor key, in place (offline).
    #[command(
        after_long_help = "Example:\n  plugboard plugin sign queue-1.2.0.pbpkg --key keys/acme.key"
    )]
    Sign {
        /// The package file.
        package: PathBuf,
        /// The secret key file (from `plugboard key generate`).
        #[arg(long)]
        key: PathBuf,
    },
    /// Check a package's signature against public keys or a trust store folder (offline).
    #[command(after_long_help = "Examples:\n  \
        plugboard plugin verify queue-1.2.0.pbpkg --key acme.pub\n  \
        plugboard plugin verify queue-1.2.0.pbpkg --trust /var/lib/plugboard/trust")]
    Verify {
        /// The package file or folder.
        package: PathBuf,
        /// A trusted public key file (repeatable).
        #[arg(long)]
        key: Vec<PathBuf>,
        /// A trust store folder of *.pub files.
        #[arg(long)]
        trust: Option<PathBuf>,
    },
    /// Publish a package to an OCI registry, tagged with its version (offline
    /// of the PBX). Versions are immutable: other content under a published
    /// version is refused.
    #[command(
        after_long_help = "Example:\n  plugboard plugin push queue-1.2.0.pbpkg oci://registry.example.com/acme/queue"
    )]
    Push {
        /// The package file.
        package: PathBuf,
        /// oci://HOST[:PORT]/REPOSITORY
        reference: String,
        /// Reach the registry over plain HTTP even if it is not on loopback.
        #[arg(long)]
        plain_http: bool,
    },
    /// Remove an installed plugin version (operator); refused while a tenant uses it.
    Uninstall {
        /// Plugin name.
        name: String,
        /// Version.
        version: String,
    },
    /// Enable a plugin for a tenant, or change its settings.
    ///
    /// Without --version the newest installed version is used (or the current
    /// one, if already enabled). Without --config an already enabled plugin
    /// keeps its configuration.
    #[command(after_long_help = "Examples:\n  \
        plugboard plugin enable example.com attendant\n  \
        plugboard plugin enable example.com attendant --version 1.2.0 --config timeout_s=20 --config welcome=hello\n  \
        plugboard plugin enable example.com attendant --grant kv")]
    Enable {
        /// The tenant's SIP domain.
        domain: String,
        /// Plugin name.
        name: String,
        /// Pin this version.
        #[arg(long, value_name = "V")]
        version: Option<String>,
        /// A setting, repeatable; VALUE as JSON when valid JSON, else a string.
        #[arg(long, value_name = "KEY=VALUE", value_parser = parse_key_value)]
        config: Vec<(String, Value)>,
        /// Grant a capability (kv, recordings, http), repeatable; operator
        /// only. Replaces the plugin's grants when given.
        #[arg(long, value_name = "CAP")]
        grant: Vec<String>,
        /// A host the http capability may reach, repeatable; operator only.
        #[arg(long, value_name = "HOST")]
        http_host: Vec<String>,
    },
    /// Switch a tenant to another installed version, keeping its configuration;
    /// the current version becomes the rollback target.
    Swap {
        /// The tenant's SIP domain.
        domain: String,
        /// Plugin name.
        name: String,
        /// The version to run.
        version: String,
    },
    /// Go back to the version that ran before the last swap.
    Rollback {
        /// The tenant's SIP domain.
        domain: String,
        /// Plugin name.
        name: String,
    },
    /// Disable a plugin for a tenant.
    Disable {
        /// The tenant's SIP domain.
        domain: String,
        /// Plugin name.
        name: String,
    },
    /// Set the capabilities a plugin may use in a tenant, replacing the previous set (operator).
    #[command(group(ArgGroup::new("set").required(true).args(["caps", "none"])))]
    Grant {
        /// The tenant's SIP domain.
        domain: String,
        /// Plugin name.
        name: String,
        /// Capabilities, e.g. kv recordings.
        #[arg(value_name = "CAP")]
        caps: Vec<String>,
        /// Revoke every capability.
        #[arg(long)]
        none: bool,
    },
}

/// `plugboard key ...`
#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum KeyCommand {
    /// Generate a signing key pair: STEM.key (secret, mode 0600) and STEM.pub.
    Generate {
        /// The signer's name written into the key files (a label).
        #[arg(long)]
        signer: String,
        /// Path without extension.
        #[arg(short, long)]
        output: PathBuf,
    },
}

/// `plugboard trust ...`
#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum TrustCommand {
    /// List the trusted vendor keys.
    List,
    /// Trust a vendor's public key file (.pub).
    Add {
        /// The public key file.
        file: PathBuf,
    },
    /// Stop trusting a key; installed versions it signed stay installed.
    Remove {
        /// The key id (ed25519:...), as `trust list` shows.
        key_id: String,
    },
}

/// `plugboard licence ...`
#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum LicenceCommand {
    /// The licence state, capacities in force and in use, the next
    /// transition and the reminders sent.
    Show,
    /// Install (or replace) a licence file; it must verify and be for this site.
    Install {
        /// The signed licence file.
        file: PathBuf,
        /// Its name on the host (default: the file name without .toml).
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove a licence file by name.
    Remove {
        /// The name (as installed).
        name: String,
    },
    /// Sign a licence body with a licensor or vendor key (offline).
    Sign {
        /// The licence body (TOML without [signature]).
        body: PathBuf,
        /// The secret key file.
        #[arg(long)]
        key: PathBuf,
        /// The signed licence file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
}

/// `KEY=VALUE`, VALUE as JSON if it parses, else as a string.
fn parse_key_value(s: &str) -> Result<(String, Value), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))?;
    if k.is_empty() {
        return Err(format!("empty key in {s:?}"));
    }
    let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()));
    Ok((k.to_owned(), value))
}

fn config_object(pairs: &[(String, Value)]) -> Value {
    Value::Object(pairs.iter().cloned().collect::<Map<_, _>>())
}

/// One request to make and what to do with the answer.
#[derive(Debug)]
struct Plan {
    method: Method,
    path: String,
    body: Option<Value>,
    output: Output,
}

#[derive(Debug)]
enum Output {
    /// Pretty JSON (or the text) on stdout.
    Stdout,
    /// Pretty JSON into a file.
    File(PathBuf),
}

impl Plan {
    fn new(method: Method, path: String) -> Plan {
        Plan {
            method,
            path,
            body: None,
            output: Output::Stdout,
        }
    }

    fn get(path: String) -> Plan {
        Plan::new(Method::GET, path)
    }

    fn with_body(mut self, body: Value) -> Plan {
        self.body = Some(body);
        self
    }
}

/// Runs `cmd` against the API, printing to stdout and stderr.
pub async fn run(opts: GlobalOpts, cmd: Command) -> ExitCode {
    run_to(opts, cmd, &mut std::io::stdout(), &mut std::io::stderr()).await
}

/// [`run`] on a new single-threaded Tokio runtime, for a synchronous `main`.
pub fn run_blocking(opts: GlobalOpts, cmd: Command) -> ExitCode {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(run(opts, cmd)),
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// [`run`] with the output streams given (for tests and embedding).
pub async fn run_to<O, E>(opts: GlobalOpts, cmd: Command, out: &mut O, err: &mut E) -> ExitCode
where
    O: Write + Send,
    E: Write + Send,
{
    if crate::local::is_local(&cmd) {
        return match crate::local::run(cmd, out).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                let _ = writeln!(err, "error: {message}");
                ExitCode::FAILURE
            }
        };
    }
    let planned = match cmd {
        Command::Plugin(PluginCommand::Install { source, plain_http }) => {
            crate::local::install_plan(&source, plain_http)
                .await
                .map(|body| Plan::new(Method::POST, "/v1/plugins".into()).with_body(body))
        }
        cmd => plan(cmd, &mut std::io::stdin().lock()),
    };
    let plan = match planned {
        Ok(p) => p,
        Err(message) => {
            let _ = writeln!(err, "error: {message}");
            return ExitCode::FAILURE;
        }
    };
    let has_token = opts.token.is_some();
    let client = Client::new(opts.api, opts.token);
    let response = match client.request(plan.method, &plan.path, plan.body).await {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !response.is_success() {
        let _ = writeln!(
            err,
            "error: {} (HTTP {})",
            response.error_message(),
            response.status
        );
        if response.status == 401 && !has_token {
            let _ = writeln!(err, "hint: pass --token TOKEN or set PLUGBOARD_TOKEN");
        }
        return ExitCode::FAILURE;
    }
    match write_output(&response, &plan.output, out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write_output(
    response: &ApiResponse,
    output: &Output,
    out: &mut impl Write,
) -> Result<(), String> {
    let text = match &response.body {
        ResponseBody::Empty => return Ok(()),
        ResponseBody::Json(v) => {
            let mut s = serde_json::to_string_pretty(v).map_err(|e| e.to_string())?;
            s.push('\n');
            s
        }
        ResponseBody::Text(t) => t.clone(),
    };
    match output {
        Output::Stdout => out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| format!("cannot write to stdout: {e}")),
        Output::File(file) => write_private(file, text.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", file.display())),
    }
}

/// Writes a file readable only by its owner (exports contain passwords).
fn write_private(file: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(file)?;
    f.write_all(data)?;
    f.sync_all()
}

/// Turns a command into a request, reading local files (and stdin) as needed.
fn plan(cmd: Command, stdin: &mut impl BufRead) -> Result<Plan, String> {
    let tenant = |domain: &str, rest: &[&str]| {
        let mut segments = vec!["v1", "tenants", domain];
        segments.extend_from_slice(rest);
        path(&segments)
    };
    Ok(match cmd {
        Command::Tenant(t) => match t {
            TenantCommand::List => Plan::get("/v1/tenants".into()),
            TenantCommand::Show { domain } => Plan::get(tenant(&domain, &[])),
            TenantCommand::Export { domain, output } => {
                let mut p = Plan::get(tenant(&domain, &[]));
                if let Some(file) = output {
                    p.output = Output::File(file);
                }
                p
            }
            TenantCommand::Import { file } => {
                let text = read_text(&file, stdin)?;
                let doc: Value = serde_json::from_str(&text)
                    .map_err(|e| format!("{} is not valid JSON: {e}", file.display()))?;
                let domain = doc["domain"]
                    .as_str()
                    .ok_or_else(|| format!("{} has no \"domain\" string", file.display()))?
                    .to_owned();
                Plan::new(Method::PUT, tenant(&domain, &[])).with_body(doc)
            }
            TenantCommand::Delete { domain } => Plan::new(Method::DELETE, tenant(&domain, &[])),
        },
        Command::User(u) => match u {
            UserCommand::List { domain } => Plan::get(tenant(&domain, &["users"])),
            UserCommand::Add {
                domain,
                ext,
                password,
                name,
            } => {
                let password = if password == "-" {
                    read_line(stdin)?
                } else {
                    password
                };
                let mut body = json!({"extension": ext, "password": password});
                if let Some(name) = name {
                    body["display_name"] = Value::String(name);
                }
                Plan::new(Method::POST, tenant(&domain, &["users"])).with_body(body)
            }
            UserCommand::Delete { domain, ext } => {
                Plan::new(Method::DELETE, tenant(&domain, &["users", &ext]))
            }
        },
        Command::Dialplan(d) => match d {
            DialplanCommand::List { domain } => Plan::get(tenant(&domain, &["dialplan"])),
            DialplanCommand::Set {
                domain,
                number,
                user,
                plugin,
                config,
            } => {
                let body = match (user, plugin) {
                    (Some(user), _) => json!({"user": user}),
                    (None, Some(plugin)) => {
                        json!({"plugin": plugin, "config": config_object(&config)})
                    }
                    (None, None) => return Err("give --user EXT or --plugin NAME".into()),
                };
                Plan::new(Method::PUT, tenant(&domain, &["dialplan", &number])).with_body(body)
            }
            DialplanCommand::Delete { domain, number } => {
                Plan::new(Method::DELETE, tenant(&domain, &["dialplan", &number]))
            }
        },
        Command::Plugin(p) => match p {
            PluginCommand::List => Plan::get("/v1/plugins".into()),
            PluginCommand::Install { .. }
            | PluginCommand::Pack { .. }
            | PluginCommand::Unpack { .. }
            | PluginCommand::Sign { .. }
            | PluginCommand::Verify { .. }
            | PluginCommand::Push { .. } => {
                return Err("internal: handled by the local commands".into());
            }
            PluginCommand::Uninstall { name, version } => {
                Plan::new(Method::DELETE, path(&["v1", "plugins", &name, &version]))
            }
            PluginCommand::Enable {
                domain,
                name,
                version,
                config,
                grant,
                http_host,
            } => {
                let mut body = Map::new();
                if !grant.is_empty() {
                    body.insert("grants".into(), json!(grant));
                }
                if !http_host.is_empty() {
                    body.insert("http_hosts".into(), json!(http_host));
                }
                if let Some(v) = version {
                    body.insert("version".into(), Value::String(v));
                }
                if !config.is_empty() {
                    body.insert("config".into(), config_object(&config));
                }
                Plan::new(Method::PUT, tenant(&domain, &["plugins", &name]))
                    .with_body(Value::Object(body))
            }
            PluginCommand::Swap {
                domain,
                name,
                version,
            } => Plan::new(Method::PUT, tenant(&domain, &["plugins", &name]))
                .with_body(json!({"version": version})),
            PluginCommand::Rollback { domain, name } => Plan::new(
                Method::POST,
                tenant(&domain, &["plugins", &name, "rollback"]),
            ),
            PluginCommand::Disable { domain, name } => {
                Plan::new(Method::DELETE, tenant(&domain, &["plugins", &name]))
            }
            PluginCommand::Grant {
                domain,
                name,
                caps,
                none: _,
            } => Plan::new(Method::PUT, tenant(&domain, &["plugins", &name, "grants"]))
                .with_body(json!({"grants": caps})),
        },
        Command::Prompt(p) => match p {
            PromptCommand::List { domain } => Plan::get(tenant(&domain, &["prompts"])),
            PromptCommand::Upload {
                domain,
                language,
                name,
                file,
            } => {
                let len = std::fs::metadata(&file)
                    .map_err(|e| format!("cannot read {}: {e}", file.display()))?
                    .len();
                if len > crate::MAX_PROMPT_WAV as u64 {
                    return Err(format!(
                        "{} is {len} bytes; prompts are at most {} bytes (10 MiB)",
                        file.display(),
                        crate::MAX_PROMPT_WAV
                    ));
                }
                let wav = base64::engine::general_purpose::STANDARD.encode(read_file(&file)?);
                Plan::new(Method::PUT, tenant(&domain, &["prompts", &language, &name]))
                    .with_body(json!({"wav": wav}))
            }
            PromptCommand::Delete {
                domain,
                language,
                name,
            } => Plan::new(
                Method::DELETE,
                tenant(&domain, &["prompts", &language, &name]),
            ),
        },
        Command::Calls { domain } => match domain {
            Some(d) => Plan::get(tenant(&d, &["calls"])),
            None => Plan::get("/v1/calls".into()),
        },
        Command::Registrations { domain } => Plan::get(tenant(&domain, &["registrations"])),
        Command::Cdrs {
            domain,
            csv,
            since_ms,
            limit,
        } => {
            let mut query = BTreeMap::new();
            if csv {
                query.insert("format", "csv".to_owned());
            }
            if let Some(s) = since_ms {
                query.insert("since_ms", s.to_string());
            }
            if let Some(l) = limit {
                query.insert("limit", l.to_string());
            }
            let mut p = match domain {
                Some(d) => tenant(&d, &["cdrs"]),
                None => "/v1/cdrs".into(),
            };
            let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if !q.is_empty() {
                p.push('?');
                p.push_str(&q.join("&"));
            }
            Plan::get(p)
        }
        Command::Key(_) | Command::Licence(LicenceCommand::Sign { .. }) => {
            return Err("internal: handled by the local commands".into());
        }
        Command::Trust(t) => match t {
            TrustCommand::List => Plan::get("/v1/trust".into()),
            TrustCommand::Add { file } => {
                let text = String::from_utf8(read_file(&file)?)
                    .map_err(|_| format!("{} is not UTF-8", file.display()))?;
                Plan::new(Method::POST, "/v1/trust".into()).with_body(json!({"public_key": text}))
            }
            TrustCommand::Remove { key_id } => {
                Plan::new(Method::DELETE, path(&["v1", "trust", &key_id]))
            }
        },
        Command::Licence(l) => match l {
            LicenceCommand::Show => Plan::get("/v1/licence".into()),
            LicenceCommand::Install { file, name } => {
                let text = String::from_utf8(read_file(&file)?)
                    .map_err(|_| format!("{} is not UTF-8", file.display()))?;
                let name = match name {
                    Some(n) => n,
                    None => file
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .ok_or_else(|| format!("{}: give --name", file.display()))?
                        .to_owned(),
                };
                Plan::new(Method::PUT, path(&["v1", "licences", &name]))
                    .with_body(json!({"licence": text}))
            }
            LicenceCommand::Remove { name } => {
                Plan::new(Method::DELETE, path(&["v1", "licences", &name]))
            }
            LicenceCommand::Sign { .. } => unreachable!("matched above"),
        },
        Command::Health => Plan::get("/v1/health".into()),
        Command::Metrics => Plan::get("/v1/metrics".into()),
    })
}

pub(crate) fn read_file(file: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))
}

fn read_text(file: &Path, stdin: &mut impl BufRead) -> Result<String, String> {
    if file == Path::new("-") {
        let mut s = String::new();
        stdin
            .read_to_string(&mut s)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        return Ok(s);
    }
    String::from_utf8(read_file(file)?).map_err(|_| format!("{} is not UTF-8", file.display()))
}

fn read_line(stdin: &mut impl BufRead) -> Result<String, String> {
    let mut line = String::new();
    stdin
        .read_line(&mut line)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    if line.is_empty() {
        return Err("no password on stdin".into());
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    /// The shape of the host binary's parser, with the admin commands flattened in.
    #[derive(Parser, Debug)]
    #[command(name = "plugboard")]
    struct HostCli {
        #[command(flatten)]
        admin: GlobalOpts,
        #[command(subcommand)]
        command: HostCommand,
    }

    #[derive(Subcommand, Debug)]
    enum HostCommand {
        Run {
            #[arg(short, long, default_value = "plugboard.toml")]
            config: PathBuf,
        },
        CheckConfig {
            config: PathBuf,
        },
        #[command(flatten)]
        Admin(Command),
    }

    fn parse(args: &[&str]) -> Result<HostCli, clap::Error> {
        HostCli::try_parse_from(std::iter::once("plugboard").chain(args.iter().copied()))
    }

    fn admin(args: &[&str]) -> Command {
        match parse(args).unwrap().command {
            HostCommand::Admin(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parser_is_valid_and_embeds() {
        HostCli::command().debug_assert();
        assert!(matches!(
            parse(&["run"]).unwrap().command,
            HostCommand::Run { .. }
        ));
        assert!(matches!(
            parse(&["check-config", "x.toml"]).unwrap().command,
            HostCommand::CheckConfig { .. }
        ));
        let cli = parse(&["tenant", "list", "--api", "http://h:1", "--token", "t"]).unwrap();
        assert_eq!(cli.admin.api, "http://h:1");
        assert_eq!(cli.admin.token.as_deref(), Some("t"));
        let cli = parse(&["--api", "http://h:2", "health"]).unwrap();
        assert_eq!(cli.admin.api, "http://h:2");
    }

    #[test]
    fn argument_rules() {
        assert!(parse(&["dialplan", "set", "d", "100"]).is_err());
        assert!(
            parse(&[
                "dialplan", "set", "d", "100", "--user", "1", "--plugin", "p"
            ])
            .is_err()
        );
        assert!(
            parse(&[
                "dialplan", "set", "d", "100", "--user", "1", "--config", "a=1"
            ])
            .is_err()
        );
        assert!(
            parse(&[
                "dialplan", "set", "d", "100", "--plugin", "p", "--config", "novalue"
            ])
            .is_err()
        );
        assert!(parse(&["plugin", "grant", "d", "p"]).is_err());
        assert!(parse(&["plugin", "grant", "d", "p", "kv", "--none"]).is_err());
        assert!(parse(&["cdrs", "--limit", "0"]).is_err());
        assert!(parse(&["user", "add", "d", "101"]).is_err());
    }

    #[test]
    fn plans() {
        let mut no_stdin: &[u8] = b"";
        let p = plan(
            admin(&[
                "dialplan", "set", "A.test", "*98", "--plugin", "vm", "--config", "t=20",
                "--config", "pin=0123", "--config", "s=\"20\"",
            ]),
            &mut no_stdin,
        )
        .unwrap();
        assert_eq!(p.method, Method::PUT);
        assert_eq!(p.path, "/v1/tenants/A.test/dialplan/%2A98");
        assert_eq!(
            p.body.unwrap(),
            json!({"plugin": "vm", "config": {"t": 20, "pin": "0123", "s": "20"}})
        );
        let p = plan(
            admin(&["cdrs", "a.test", "--csv", "--since-ms", "5"]),
            &mut no_stdin,
        )
        .unwrap();
        assert_eq!(p.path, "/v1/tenants/a.test/cdrs?format=csv&since_ms=5");
        let p = plan(
            admin(&["plugin", "swap", "a.test", "vm", "2.0.0"]),
            &mut no_stdin,
        )
        .unwrap();
        assert_eq!(p.body.unwrap(), json!({"version": "2.0.0"}));
        let p = plan(
            admin(&["plugin", "grant", "a.test", "vm", "--none"]),
            &mut no_stdin,
        )
        .unwrap();
        assert_eq!(p.body.unwrap(), json!({"grants": []}));
        let p = plan(admin(&["plugin", "enable", "a.test", "vm"]), &mut no_stdin).unwrap();
        assert_eq!(p.body.unwrap(), json!({}));
        let mut stdin: &[u8] = b"pw from stdin\n";
        let p = plan(
            admin(&["user", "add", "a.test", "101", "--password", "-"]),
            &mut stdin,
        )
        .unwrap();
        assert_eq!(
            p.body.unwrap(),
            json!({"extension": "101", "password": "pw from stdin"})
        );
        let mut stdin: &[u8] = br#"{"domain": "b.test", "users": []}"#;
        let p = plan(admin(&["tenant", "import", "-"]), &mut stdin).unwrap();
        assert_eq!(
            (p.method, p.path.as_str()),
            (Method::PUT, "/v1/tenants/b.test")
        );
        let mut stdin: &[u8] = b"{}";
        assert!(
            plan(admin(&["tenant", "import", "-"]), &mut stdin)
                .unwrap_err()
                .contains("domain")
        );
    }

    #[test]
    fn prompt_plans() {
        let mut no_stdin: &[u8] = b"";
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.wav");
        std::fs::write(&file, b"RIFF").unwrap();
        let p = plan(
            admin(&[
                "prompt",
                "upload",
                "a.test",
                "de",
                "digits/4",
                file.to_str().unwrap(),
            ]),
            &mut no_stdin,
        )
        .unwrap();
        assert_eq!(p.method, Method::PUT);
        assert_eq!(p.path, "/v1/tenants/a.test/prompts/de/digits%2F4");
        assert_eq!(p.body.unwrap(), json!({"wav": "UklGRg=="}));
        let p = plan(admin(&["prompt", "list", "a.test"]), &mut no_stdin).unwrap();
        assert_eq!(
            (p.method, p.path.as_str()),
            (Method::GET, "/v1/tenants/a.test/prompts")
        );
        let p = plan(
            admin(&["prompt", "delete", "a.test", "en", "welcome"]),
            &mut no_stdin,
        )
        .unwrap();
        assert_eq!(
            (p.method, p.path.as_str()),
            (Method::DELETE, "/v1/tenants/a.test/prompts/en/welcome")
        );
        let missing = dir.path().join("missing.wav");
        let e = plan(
            admin(&[
                "prompt",
                "upload",
                "a.test",
                "en",
                "x",
                missing.to_str().unwrap(),
            ]),
            &mut no_stdin,
        )
        .unwrap_err();
        assert!(e.contains("missing.wav"), "{e}");
    }

    #[test]
    fn help_has_examples() {
        let mut cmd = HostCli::command();
        for sub in ["tenant", "user", "dialplan", "plugin", "prompt", "cdrs"] {
            let help = cmd
                .find_subcommand_mut(sub)
                .unwrap()
                .render_long_help()
                .to_string();
            assert!(
                help.contains("Examples:") || help.contains("Example:"),
                "{sub}: {help}"
            );
        }
    }
}
