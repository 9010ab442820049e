//! Settings: one struct built once at startup from defaults < config file <
//! environment < flags, then shared read-only as `Arc<Settings>`.

mod cli;
mod file;
mod load;
mod show;
mod value;

pub use cli::{CliArgs, normalize_go_style_args};
pub use load::{CONFIG_ENV, ConfigError, ConfigFile, Loaded, Source, load};
pub use show::render;
pub use value::{format_duration, human_size, parse_go_duration, redact_secrets, redact_url};

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::gomod::pattern::PrefixPatterns;
use crate::sumdb::config::{DEFAULT_GOSUMDB, GoSumDb, ProxiedSumDb};

/// The default upstream: the public Go module proxy, as the `go` command uses it.
pub const DEFAULT_UPSTREAM: &str = "https://proxy.golang.org";
pub const DEFAULT_PORT: u16 = 12345;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One user-settable configuration key, with its spelling in each layer.
///
/// `Port` has no field in [`Settings`]: it is folded into `listen`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    Port,
    Listen,
    CacheDir,
    Upstreams,
    RetryAttempts,
    RetryBackoff,
    ListTtl,
    NegativeTtl,
    LogFormat,
    LogLevel,
    ShutdownTimeout,
    UpstreamConnectTimeout,
    UpstreamHeaderTimeout,
    UpstreamIdleTimeout,
    UpstreamTimeout,
    Gosumdb,
    Gonosumdb,
    Goprivate,
    ProxiedSumdbs,
    MaxCacheAge,
    MaxCacheSize,
    CleanupInterval,
}

impl Key {
    /// Every key, in the order `config show` and error messages list them.
    pub const ALL: [Key; 22] = [
        Key::Port,
        Key::Listen,
        Key::CacheDir,
        Key::Upstreams,
        Key::RetryAttempts,
        Key::RetryBackoff,
        Key::ListTtl,
        Key::NegativeTtl,
        Key::LogFormat,
        Key::LogLevel,
        Key::ShutdownTimeout,
        Key::UpstreamConnectTimeout,
        Key::UpstreamHeaderTimeout,
        Key::UpstreamIdleTimeout,
        Key::UpstreamTimeout,
        Key::Gosumdb,
        Key::Gonosumdb,
        Key::Goprivate,
        Key::ProxiedSumdbs,
        Key::MaxCacheAge,
        Key::MaxCacheSize,
        Key::CleanupInterval,
    ];

    /// (config file key, environment variable, long flag without dashes).
    /// The env and flag names are the old Go project's where it had one.
    fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Key::Port => ("port", "PORT", "port"),
            Key::Listen => ("listen", "LISTEN", "listen"),
            Key::CacheDir => ("cache_dir", "CACHE_DIR", "cache"),
            Key::Upstreams => ("upstreams", "UPSTREAM_PROXY", "upstream"),
            Key::RetryAttempts => ("retry_attempts", "RETRY_ATTEMPTS", "retry-attempts"),
            Key::RetryBackoff => ("retry_backoff", "RETRY_BACKOFF", "retry-backoff"),
            Key::ListTtl => ("list_ttl", "LIST_TTL", "list-ttl"),
            Key::NegativeTtl => ("negative_ttl", "NEGATIVE_TTL", "negative-ttl"),
            Key::LogFormat => ("log_format", "LOG_FORMAT", "log-format"),
            Key::LogLevel => ("log_level", "LOG_LEVEL", "log-level"),
            Key::ShutdownTimeout => ("shutdown_timeout", "SHUTDOWN_TIMEOUT", "shutdown-timeout"),
            Key::UpstreamConnectTimeout => (
                "upstream_connect_timeout",
                "UPSTREAM_CONNECT_TIMEOUT",
                "upstream-connect-timeout",
            ),
            Key::UpstreamHeaderTimeout => (
                "upstream_header_timeout",
                "UPSTREAM_HEADER_TIMEOUT",
                "upstream-header-timeout",
            ),
            Key::UpstreamIdleTimeout => (
                "upstream_idle_timeout",
                "UPSTREAM_IDLE_TIMEOUT",
                "upstream-idle-timeout",
            ),
            Key::UpstreamTimeout => ("upstream_timeout", "UPSTREAM_TIMEOUT", "upstream-timeout"),
            Key::Gosumdb => ("gosumdb", "GOSUMDB", "gosumdb"),
            Key::Gonosumdb => ("gonosumdb", "GONOSUMDB", "gonosumdb"),
            Key::Goprivate => ("goprivate", "GOPRIVATE", "goprivate"),
            Key::ProxiedSumdbs => ("proxied_sumdbs", "PROXIED_SUMDBS", "proxied-sumdbs"),
            Key::MaxCacheAge => ("max_cache_age", "MAX_CACHE_AGE", "max-cache-age"),
            Key::MaxCacheSize => ("max_cache_size", "MAX_CACHE_SIZE", "max-cache-size"),
            Key::CleanupInterval => ("cleanup_interval", "CLEANUP_INTERVAL", "cleanup-interval"),
        }
    }

    /// The config file key, also used by `config show`.
    pub fn name(self) -> &'static str {
        self.names().0
    }

    pub fn env_var(self) -> &'static str {
        self.names().1
    }

    /// The long flag, without the leading `--`.
    pub fn flag(self) -> &'static str {
        self.names().2
    }

    pub fn from_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|key| key.name() == name)
    }
}

/// The effective configuration. Every field has been validated.
///
/// `Debug` is written by hand so that upstream credentials never reach a log.
#[derive(Clone)]
pub struct Settings {
    /// Address to bind, e.g. `0.0.0.0:12345` or `127.0.0.1:0`.
    pub listen: String,
    pub cache_dir: PathBuf,
    /// Upstream GOPROXY base URLs, tried in order. Paths carry no trailing
    /// slash, except that `url` always serializes an empty path as `/`, so
    /// join them with `UpstreamBase::join`. May hold credentials: log
    /// them through [`redact_url`].
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
    /// The checksum database every module is verified against.
    pub gosumdb: GoSumDb,
    /// Modules never looked up in a checksum database.
    pub gonosumdb: PrefixPatterns,
    /// Private modules: never fetched from public upstreams, never looked up in a
    /// checksum database.
    pub goprivate: PrefixPatterns,
    /// Further checksum databases served under `/sumdb/<name>/` for clients.
    pub proxied_sumdbs: Vec<ProxiedSumDb>,
    /// Module versions unused for longer are evicted (zero: kept forever).
    pub max_cache_age: Duration,
    /// Least recently used versions are evicted until the cache fits (None: no limit).
    pub max_cache_size: Option<u64>,
    /// How often eviction runs.
    pub cleanup_interval: Duration,
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
            gosumdb: GoSumDb::parse(DEFAULT_GOSUMDB)
                .expect("the built-in checksum database key is valid"),
            gonosumdb: PrefixPatterns::default(),
            goprivate: PrefixPatterns::default(),
            proxied_sumdbs: Vec::new(),
            max_cache_age: Duration::ZERO,
            max_cache_size: None,
            cleanup_interval: Duration::from_secs(24 * 60 * 60),
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let upstreams: Vec<String> = self.upstreams.iter().map(redact_url).collect();
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("cache_dir", &self.cache_dir)
            .field("upstreams", &upstreams)
            .field("retry_attempts", &self.retry_attempts)
            .field("retry_backoff", &self.retry_backoff)
            .field("list_ttl", &self.list_ttl)
            .field("negative_ttl", &self.negative_ttl)
            .field("log_format", &self.log_format)
            .field("log_level", &self.log_level)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("upstream_connect_timeout", &self.upstream_connect_timeout)
            .field("upstream_header_timeout", &self.upstream_header_timeout)
            .field("upstream_idle_timeout", &self.upstream_idle_timeout)
            .field("upstream_timeout", &self.upstream_timeout)
            .field("gosumdb", &self.gosumdb.to_string())
            .field("gonosumdb", &self.gonosumdb.to_string())
            .field("goprivate", &self.goprivate.to_string())
            .field("proxied_sumdbs", &self.proxied_sumdbs)
            .field("max_cache_age", &self.max_cache_age)
            .field("max_cache_size", &self.max_cache_size)
            .field("cleanup_interval", &self.cleanup_interval)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_round_trip() {
        for key in Key::ALL {
            assert_eq!(Key::from_name(key.name()), Some(key));
        }
        assert_eq!(Key::from_name("upstream"), None);
    }

    #[test]
    fn debug_redacts_upstream_credentials() {
        let settings = Settings {
            upstreams: vec![url::Url::parse("https://user:hunter2@proxy.example").unwrap()],
            ..Settings::default()
        };
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("user"), "{shown}");
        assert!(shown.contains("https://***@proxy.example"), "{shown}");
    }
}
