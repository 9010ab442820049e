//! The command line: `goproxy [serve] [flags]`, `goproxy config show [flags]`,
//! `goproxy cache stats|gc|verify [flags]`, `goproxy auth hash`,
//! `goproxy healthcheck [URL]`, and `goproxy completions <shell>` / `goproxy man`
//! for packagers.

mod auth;
mod cache;
mod docs;
mod healthcheck;
pub(crate) mod log_format;
mod log_writer;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::config::{self, CliArgs, LogFormat, Settings};
use crate::notify::Notifier;
use crate::progress::display::{Display, Output, Stderr};

/// The git revision the binary was built from ("unknown" outside a checkout).
pub const GIT_REV: &str = env!("GOPROXY_GIT_REV");

/// What `--version` prints after the name: the release and the git revision.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("GOPROXY_GIT_REV"),
    ")"
);

#[derive(Parser, Debug)]
#[command(
    name = "goproxy",
    version = VERSION,
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
    /// Prepare credentials for inbound authentication.
    Auth {
        #[command(subcommand)]
        action: auth::AuthAction,
    },
    /// Check that a running proxy answers GET /health (exit 0), or not (exit 1).
    Healthcheck(healthcheck::HealthcheckArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the manual page goproxy(1), or write every page into a directory.
    Man {
        /// Write goproxy.1 and one page per subcommand into this directory.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
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

pub fn main() -> anyhow::Result<ExitCode> {
    let argv = config::normalize_go_style_args(std::env::args_os().collect::<Vec<OsString>>());
    let cli = Cli::parse_from(argv);
    let env = |name: &str| std::env::var(name).ok();
    let done = |result: anyhow::Result<()>| result.map(|()| ExitCode::SUCCESS);
    match cli.command {
        Some(Command::Config {
            action: ConfigAction::Show { args },
        }) => {
            let loaded = config::load(&args, &env)?;
            print!("{}", config::render(&loaded));
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Cache { action }) => done(cache::run(action, &env)),
        Some(Command::Auth { action }) => done(auth::run(action)),
        Some(Command::Healthcheck(args)) => healthcheck::run(&args, &env),
        Some(Command::Completions { shell }) => {
            done(docs::completions(shell, &mut std::io::stdout().lock()))
        }
        Some(Command::Man { out_dir: Some(dir) }) => done(docs::man_pages(&dir)),
        Some(Command::Man { out_dir: None }) => done(docs::man(&mut std::io::stdout().lock())),
        Some(Command::Serve { args }) => done(serve(&args, &env)),
        None => done(serve(&cli.args, &env)),
    }
}

fn serve(args: &CliArgs, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<()> {
    let loaded = config::load(args, env)?;
    let settings = Arc::new(loaded.settings);
    // Read once, before anything else could change the environment.
    let notifier = Notifier::from_env(env)?;
    let term = env("TERM");
    let stderr = Stderr {
        is_terminal: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        term: term.as_deref(),
    };
    // Decided before logging starts: with bars, log lines are written above them.
    let progress = Output::choose(settings.progress, settings.log_format, stderr);
    let (writer, flush) = log_writer(&progress)?;
    init_logging(&settings, writer)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(run(settings, progress, notifier, Arc::clone(&flush)));
    // Lines still queued are written before the caller reports an error or exits.
    flush.flush();
    result
}

/// Where log lines go. Plain stderr is written by a dedicated thread so that a
/// request never waits for the write (or for a lock shared with every other
/// request); with bars the lines are written in place, above the bars.
fn log_writer(progress: &Output) -> anyhow::Result<(BoxMakeWriter, Arc<LogFlush>)> {
    if matches!(progress, Output::Bars(_)) {
        return Ok((progress.log_writer(), Arc::new(LogFlush(Mutex::new(None)))));
    }
    let (writer, guard) =
        log_writer::spawn(std::io::stderr()).context("cannot start the log writer thread")?;
    Ok((
        BoxMakeWriter::new(writer),
        Arc::new(LogFlush(Mutex::new(Some(guard)))),
    ))
}

/// Holds the log writer thread open; [`LogFlush::flush`] writes out what is
/// queued and ends it (later lines are written directly), so call it just
/// before exiting.
pub(crate) struct LogFlush(Mutex<Option<log_writer::Guard>>);

impl LogFlush {
    pub(crate) fn flush(&self) {
        let guard = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(guard) = guard {
            guard.finish();
        }
    }
}

pub(crate) fn init_logging(settings: &Settings, writer: BoxMakeWriter) -> anyhow::Result<()> {
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
        .with_writer(writer)
        .with_ansi(ansi);
    match settings.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.event_format(log_format::TextFormat::new()).init(),
    }
    Ok(())
}

async fn run(
    settings: Arc<Settings>,
    progress: Output,
    notifier: Option<Notifier>,
    log_flush: Arc<LogFlush>,
) -> anyhow::Result<()> {
    let server = crate::server::start(Arc::clone(&settings)).await?;
    let display = Display::start(&progress, server.progress());
    let addr = server.local_addr();
    let upstreams: Vec<String> = settings.upstreams.iter().map(config::redact_url).collect();
    let private: Vec<String> = settings
        .private_upstreams
        .iter()
        .map(ToString::to_string)
        .collect();
    let auth = if settings.auth_enabled() {
        settings.auth_require.to_string()
    } else {
        "off".to_owned()
    };
    let scheme = if settings.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let dns = settings
        .dns
        .as_ref()
        .map_or_else(|| "system".to_owned(), ToString::to_string);
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        revision = GIT_REV,
        listen = %addr,
        cache_dir = %settings.cache_dir.display(),
        upstreams = %upstreams.join(","),
        private_upstreams = %private.join(" "),
        gosumdb = %settings.gosumdb,
        progress = %progress,
        auth = %auth,
        tls = settings.tls_cert.is_some(),
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
    tracing::info!("GOPROXY={scheme}://{host}:{}", addr.port());
    // systemd holds back dependent units until this arrives; failing to send
    // it is logged, and systemd's start timeout reports the rest.
    if let Some(Err(e)) = notifier
        .as_ref()
        .map(|n| n.ready(&format!("serving on {addr}")))
    {
        tracing::error!(error = %e, "could not report readiness to the service manager");
    }

    wait_for_signal().await;
    if let Some(Err(e)) = notifier
        .as_ref()
        .map(|n| n.stopping("finishing in-flight requests"))
    {
        tracing::warn!(error = %e, "could not report the shutdown to the service manager");
    }
    tracing::info!(deadline = ?settings.shutdown_timeout, "shutting down: finishing in-flight requests (signal again to exit now)");
    // A second signal means "now": exit without waiting for the drain.
    let screen = progress.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::warn!("second signal: exiting immediately");
        screen.clear();
        log_flush.flush();
        std::process::exit(130);
    });
    // Downloads still running keep their bars while the server drains.
    server.shutdown(settings.shutdown_timeout).await;
    display.stop().await;
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
