//! The command line: `goproxy [serve] [flags]`, `goproxy config show [flags]` and
//! `goproxy cache stats|gc|verify [flags]`.

mod cache;

use std::ffi::OsString;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::config::{self, CliArgs, LogFormat, Settings};

#[derive(Parser, Debug)]
#[command(
    name = "goproxy",
    version,
    about = "A caching Go module proxy",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    args: CliArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the proxy (the default).
    Serve {
        #[command(flatten)]
        args: CliArgs,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Inspect and manage the cache.
    Cache {
        #[command(subcommand)]
        action: cache::CacheAction,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigAction {
    /// Print the effective configuration and where each value comes from.
    Show {
        #[command(flatten)]
        args: CliArgs,
    },
}

pub fn main() -> anyhow::Result<()> {
    let argv = config::normalize_go_style_args(std::env::args_os().collect::<Vec<OsString>>());
    let cli = Cli::parse_from(argv);
    let env = |name: &str| std::env::var(name).ok();
    match cli.command {
        Some(Command::Config {
            action: ConfigAction::Show { args },
        }) => {
            let loaded = config::load(&args, &env)?;
            print!("{}", config::render(&loaded));
            Ok(())
        }
        Some(Command::Cache { action }) => cache::run(action, &env),
        Some(Command::Serve { args }) => serve(&args, &env),
        None => serve(&cli.args, &env),
    }
}

fn serve(args: &CliArgs, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<()> {
    let loaded = config::load(args, env)?;
    let settings = Arc::new(loaded.settings);
    init_logging(&settings)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(settings))
}

pub(crate) fn init_logging(settings: &Settings) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&settings.log_level).with_context(|| {
        format!(
            "log_level: invalid filter {:?} (expected e.g. info, debug, goproxy=debug)",
            settings.log_level
        )
    })?;
    // Colour codes only for a person at a terminal, never in files or log collectors.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match settings.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    Ok(())
}

async fn run(settings: Arc<Settings>) -> anyhow::Result<()> {
    let server = crate::server::start(Arc::clone(&settings)).await?;
    let addr = server.local_addr();
    let upstreams: Vec<String> = settings.upstreams.iter().map(config::redact_url).collect();
    let dns = settings
        .dns
        .as_ref()
        .map_or_else(|| "system".to_owned(), ToString::to_string);
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        listen = %addr,
        cache_dir = %settings.cache_dir.display(),
        upstreams = %upstreams.join(","),
        gosumdb = %settings.gosumdb,
        proxy = %settings.proxy,
        dns = %dns,
        "goproxy started"
    );
    let host = if addr.ip().is_unspecified() {
        "localhost".to_owned()
    } else {
        addr.ip().to_string()
    };
    let host = if addr.is_ipv6() && !addr.ip().is_unspecified() {
        format!("[{host}]")
    } else {
        host
    };
    tracing::info!("GOPROXY=http://{host}:{}", addr.port());

    wait_for_signal().await;
    tracing::info!(deadline = ?settings.shutdown_timeout, "shutting down: finishing in-flight requests (signal again to exit now)");
    // A second signal means "now": exit without waiting for the drain.
    tokio::spawn(async {
        wait_for_signal().await;
        tracing::warn!("second signal: exiting immediately");
        std::process::exit(130);
    });
    server.shutdown(settings.shutdown_timeout).await;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
