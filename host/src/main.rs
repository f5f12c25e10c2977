//! `plugboard`: the PBX host binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// plugboard: a multi-tenant IP PBX whose features are WebAssembly plugins.
///
/// The host does SIP (UDP and TCP), RTP media, storage and the plugin runtime;
/// call flows such as the demo attendant are WebAssembly components named in
/// the configuration file's dial plans.
#[derive(Parser)]
#[command(
    version,
    about,
    long_about = None,
    after_help = "Run the PBX with `plugboard run -c plugboard.toml`; every other command talks to a\n\
                  running PBX through its admin API (`[admin] listen` in the configuration),\n\
                  authenticated by --token or PLUGBOARD_TOKEN."
)]
struct Cli {
    #[command(flatten)]
    admin: plugboard_admin::cli::GlobalOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the PBX with a configuration file (see docs/operator-guide.md).
    Run {
        /// The TOML configuration file.
        #[arg(short, long, default_value = "plugboard.toml")]
        config: PathBuf,
    },
    /// Check a configuration file and exit: 0 when valid, 2 with "file:line:col: problem" when not.
    CheckConfig {
        /// The TOML configuration file.
        config: PathBuf,
    },
    #[command(flatten)]
    Admin(plugboard_admin::cli::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PLUGBOARD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let (path, command_kind) = match cli.command {
        Command::Run { config } => (config, Kind::Run),
        Command::CheckConfig { config } => (config, Kind::Check),
        Command::Admin(cmd) => return plugboard_admin::cli::run_blocking(cli.admin, cmd),
    };
    let config = match plugboard_tenants::Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match command_kind {
        Kind::Check => {
            println!(
                "{}: ok ({} tenants, {} plugins)",
                path.display(),
                config.tenants.len(),
                config.plugins.len()
            );
            ExitCode::SUCCESS
        }
        Kind::Run => run(config),
    }
}

enum Kind {
    Run,
    Check,
}

fn run(config: plugboard_tenants::Config) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let admin = config.admin.clone();
        let server = match plugboard_calls::Server::start(config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
        let mut admin_addr = None;
        let mut admin_task = None;
        if let Some(listen) = admin.listen {
            let listener = match tokio::net::TcpListener::bind(listen).await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: admin API: cannot listen on {listen}: {e}");
                    return ExitCode::FAILURE;
                }
            };
            admin_addr = listener.local_addr().ok();
            let backend = plugboard_calls::admin::Backend::new(server.core.clone(), admin);
            admin_task = Some(tokio::spawn(plugboard_admin::serve(
                listener,
                std::sync::Arc::new(backend),
                async move {
                    let _ = admin_stopped.await;
                },
            )));
        }
        // One machine-readable line for scripts and tests.
        println!(
            "plugboard ready udp={} tcp={} admin={}",
            server
                .udp_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|| "-".into()),
            server
                .tcp_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|| "-".into()),
            admin_addr
                .map(|a| a.to_string())
                .unwrap_or_else(|| "-".into())
        );
        wait_for_signal().await;
        tracing::info!("shutting down");
        let _ = stop_admin.send(());
        if let Some(t) = admin_task {
            let _ = t.await;
        }
        server.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
