//! Settings: one struct built once at startup from defaults < config file <
//! environment < flags, then shared read-only as `Arc<Settings>`.

mod cli;
mod load;
mod show;

pub use cli::{CliArgs, normalize_go_style_args};
pub use load::{ConfigError, Loaded, Source, load};
pub use show::render;

use std::path::PathBuf;
use std::time::Duration;

/// The default upstream: the public Go module proxy, as the `go` command uses it.
pub const DEFAULT_UPSTREAM: &str = "https://proxy.golang.org";
pub const DEFAULT_PORT: u16 = 12345;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The effective configuration. Every field has been validated.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Address to bind, e.g. `0.0.0.0:12345` or `127.0.0.1:0`.
    pub listen: String,
    pub cache_dir: PathBuf,
    /// Upstream GOPROXY base URLs, tried in order (no trailing slash).
    pub upstreams: Vec<url::Url>,
    /// Total attempts per upstream for transient failures (>= 1).
    pub retry_attempts: u32,
    /// First backoff delay; doubled per attempt, with jitter.
    pub retry_backoff: Duration,
    /// How long `list`, `@latest` and query `.info` answers are fresh.
    pub list_ttl: Duration,
    /// How long a not-found answer is remembered.
    pub negative_ttl: Duration,
    pub log_format: LogFormat,
    /// A tracing filter directive, e.g. `info` or `goproxy=debug`.
    pub log_level: String,
    /// How long in-flight requests may run after a shutdown signal.
    pub shutdown_timeout: Duration,
    /// TCP + TLS connect timeout for upstreams.
    pub upstream_connect_timeout: Duration,
    /// Time allowed until an upstream's response headers arrive.
    pub upstream_header_timeout: Duration,
    /// Longest pause allowed between two reads of an upstream body.
    pub upstream_idle_timeout: Duration,
    /// Overall limit for one upstream request, body included.
    pub upstream_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: format!("0.0.0.0:{DEFAULT_PORT}"),
            cache_dir: PathBuf::from("./cache"),
            upstreams: vec![
                url::Url::parse(DEFAULT_UPSTREAM).expect("default upstream is a valid URL"),
            ],
            retry_attempts: 3,
            retry_backoff: Duration::from_millis(100),
            list_ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(60),
            log_format: LogFormat::Text,
            log_level: "info".to_owned(),
            shutdown_timeout: Duration::from_secs(10),
            upstream_connect_timeout: Duration::from_secs(10),
            upstream_header_timeout: Duration::from_secs(60),
            upstream_idle_timeout: Duration::from_secs(60),
            upstream_timeout: Duration::from_secs(30 * 60),
        }
    }
}
