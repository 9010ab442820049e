//! Settings: one struct built once at startup from defaults < config file <
//! environment < flags, then shared read-only as `Arc<Settings>`.

pub mod auth;
mod cli;
mod file;
mod load;
pub mod netrc;
pub mod private;
mod show;
mod value;

pub use auth::{AuthRequire, TokenHash, UserHash};
#[cfg(test)]
mod net_tests;

pub use cli::{CliArgs, normalize_go_style_args};
pub use load::{CONFIG_ENV, ConfigError, ConfigFile, Loaded, Source, load};
pub use private::{PrivateUpstream, Secret, UpstreamAuth};
pub use show::render;
pub use value::{format_duration, human_size, parse_go_duration, redact_secrets, redact_url};

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::gomod::pattern::PrefixPatterns;
use crate::net::ca::CaFile;
use crate::net::dns::DnsServer;
use crate::net::proxy::{NoProxy, ProxySetting};
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

/// How download progress is shown: `Auto` picks bars for a person at a
/// terminal and throttled log lines everywhere else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    Auto,
    Bars,
    Lines,
    Off,
}

impl ProgressMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ProgressMode::Auto => "auto",
            ProgressMode::Bars => "bars",
            ProgressMode::Lines => "lines",
            ProgressMode::Off => "off",
        }
    }
}

impl fmt::Display for ProgressMode {
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
    Progress,
    ShutdownTimeout,
    UpstreamConnectTimeout,
    UpstreamHeaderTimeout,
    UpstreamIdleTimeout,
    UpstreamTimeout,
    Proxy,
    NoProxy,
    Dns,
    DnsBootstrap,
    DnsCaFile,
    DnsTimeout,
    UpstreamCaFile,
    Gosumdb,
    Gonosumdb,
    Goprivate,
    Gonoproxy,
    PrivateUpstreams,
    Netrc,
    ProxiedSumdbs,
    MaxCacheAge,
    MaxCacheSize,
    CleanupInterval,
    DownloadConnections,
    DownloadParallelThreshold,
    MaxConcurrentDownloads,
    MemoryCacheSize,
    Prefetch,
    AuthTokens,
    AuthUsers,
    AuthRequire,
    TlsCert,
    TlsKey,
}

impl Key {
    /// Every key, in the order `config show` and error messages list them.
    pub const ALL: [Key; 43] = [
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
        Key::Progress,
        Key::ShutdownTimeout,
        Key::UpstreamConnectTimeout,
        Key::UpstreamHeaderTimeout,
        Key::UpstreamIdleTimeout,
        Key::UpstreamTimeout,
        Key::Proxy,
        Key::NoProxy,
        Key::Dns,
        Key::DnsBootstrap,
        Key::DnsCaFile,
        Key::DnsTimeout,
        Key::UpstreamCaFile,
        Key::Gosumdb,
        Key::Gonosumdb,
        Key::Goprivate,
        Key::Gonoproxy,
        Key::PrivateUpstreams,
        Key::Netrc,
        Key::ProxiedSumdbs,
        Key::MaxCacheAge,
        Key::MaxCacheSize,
        Key::CleanupInterval,
        Key::DownloadConnections,
        Key::DownloadParallelThreshold,
        Key::MaxConcurrentDownloads,
        Key::MemoryCacheSize,
        Key::Prefetch,
        Key::AuthTokens,
        Key::AuthUsers,
        Key::AuthRequire,
        Key::TlsCert,
        Key::TlsKey,
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
            Key::Progress => ("progress", "PROGRESS", "progress"),
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
            // Its environment variables are read apart: see `env_vars`.
            Key::Proxy => ("proxy", "", "proxy"),
            Key::NoProxy => ("no_proxy", "NO_PROXY", "no-proxy"),
            Key::Dns => ("dns", "DNS_SERVER", "dns"),
            Key::DnsBootstrap => ("dns_bootstrap", "DNS_BOOTSTRAP", "dns-bootstrap"),
            Key::DnsCaFile => ("dns_ca_file", "DNS_CA_FILE", "dns-ca-file"),
            Key::DnsTimeout => ("dns_timeout", "DNS_TIMEOUT", "dns-timeout"),
            Key::UpstreamCaFile => ("upstream_ca_file", "UPSTREAM_CA_FILE", "upstream-ca-file"),
            Key::Gosumdb => ("gosumdb", "GOSUMDB", "gosumdb"),
            Key::Gonosumdb => ("gonosumdb", "GONOSUMDB", "gonosumdb"),
            Key::Goprivate => ("goprivate", "GOPRIVATE", "goprivate"),
            Key::Gonoproxy => ("gonoproxy", "GONOPROXY", "gonoproxy"),
            Key::PrivateUpstreams => (
                "private_upstreams",
                "PRIVATE_UPSTREAMS",
                "private-upstreams",
            ),
            // The go command's variable: one .netrc serves both.
            Key::Netrc => ("netrc", "NETRC", "netrc"),
            Key::ProxiedSumdbs => ("proxied_sumdbs", "PROXIED_SUMDBS", "proxied-sumdbs"),
            Key::MaxCacheAge => ("max_cache_age", "MAX_CACHE_AGE", "max-cache-age"),
            Key::MaxCacheSize => ("max_cache_size", "MAX_CACHE_SIZE", "max-cache-size"),
            Key::CleanupInterval => ("cleanup_interval", "CLEANUP_INTERVAL", "cleanup-interval"),
            Key::DownloadConnections => (
                "download_connections",
                "DOWNLOAD_CONNECTIONS",
                "download-connections",
            ),
            Key::DownloadParallelThreshold => (
                "download_parallel_threshold",
                "DOWNLOAD_PARALLEL_THRESHOLD",
                "download-parallel-threshold",
            ),
            Key::MaxConcurrentDownloads => (
                "max_concurrent_downloads",
                "MAX_CONCURRENT_DOWNLOADS",
                "max-concurrent-downloads",
            ),
            Key::MemoryCacheSize => (
                "memory_cache_size",
                "MEMORY_CACHE_SIZE",
                "memory-cache-size",
            ),
            Key::Prefetch => ("prefetch", "PREFETCH", "prefetch"),
            Key::AuthTokens => ("auth_tokens", "AUTH_TOKENS", "auth-tokens"),
            Key::AuthUsers => ("auth_users", "AUTH_USERS", "auth-users"),
            Key::AuthRequire => ("auth_require", "AUTH_REQUIRE", "auth-require"),
            Key::TlsCert => ("tls_cert", "TLS_CERT", "tls-cert"),
            Key::TlsKey => ("tls_key", "TLS_KEY", "tls-key"),
        }
    }

    /// The config file key, also used by `config show`.
    pub fn name(self) -> &'static str {
        self.names().0
    }

    /// The main environment variable; `proxy` has none of its own.
    pub fn env_var(self) -> &'static str {
        self.names().1
    }

    /// The environment variables that set this key at the environment layer,
    /// the first one set winning. Empty for `proxy`: `HTTPS_PROXY` and friends
    /// rank below the config file and are read by `net::proxy`.
    pub fn env_vars(self) -> Vec<&'static str> {
        match self {
            Key::Proxy => Vec::new(),
            // Both spellings are in common use.
            Key::NoProxy => vec!["NO_PROXY", "no_proxy"],
            _ => vec![self.names().1],
        }
    }

    /// The long flag, without the leading `--`.
    pub fn flag(self) -> &'static str {
        self.names().2
    }

    /// Whether the key is turned on or off (a config file may use a boolean).
    pub fn is_switch(self) -> bool {
        matches!(self, Key::Prefetch)
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
    /// How upstream downloads show their progress on stderr.
    pub progress: ProgressMode,
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
    /// The outbound proxy: explicit, off, or from the environment.
    pub proxy: ProxySetting,
    /// Hosts reached directly whatever `proxy` says.
    pub no_proxy: NoProxy,
    /// The DNS server for every outbound connection (None: the system resolver).
    pub dns: Option<DnsServer>,
    /// Addresses of the `dns` server when it is given by name.
    pub dns_bootstrap: Vec<std::net::IpAddr>,
    /// Extra CAs trusted for DNS servers (DoT, DoH, DoQ).
    pub dns_ca_file: Option<CaFile>,
    /// Deadline for one lookup through `dns`.
    pub dns_timeout: Duration,
    /// Extra CAs trusted for every outbound TLS connection.
    pub upstream_ca_file: Option<CaFile>,
    /// The checksum database every module is verified against.
    pub gosumdb: GoSumDb,
    /// Modules never looked up in a checksum database.
    pub gonosumdb: PrefixPatterns,
    /// Private modules: never fetched from public upstreams (unless `gonoproxy`
    /// says otherwise), never looked up in a checksum database.
    pub goprivate: PrefixPatterns,
    /// Modules never fetched from public upstreams; empty means `goprivate`, as
    /// in the go command. Use [`Settings::noproxy`].
    pub gonoproxy: PrefixPatterns,
    /// Module patterns routed to an upstream of their own, first match wins.
    pub private_upstreams: Vec<PrivateUpstream>,
    /// The .netrc file that supplied private upstream credentials, or would
    /// have (None: neither set nor present in the home directory).
    pub netrc: Option<PathBuf>,
    /// Further checksum databases served under `/sumdb/<name>/` for clients.
    pub proxied_sumdbs: Vec<ProxiedSumDb>,
    /// Module versions unused for longer are evicted (zero: kept forever).
    pub max_cache_age: Duration,
    /// Least recently used versions are evicted until the cache fits (None: no limit).
    pub max_cache_size: Option<u64>,
    /// How often eviction runs.
    pub cleanup_interval: Duration,
    /// HTTP connections one large zip download uses at once (1: no Range requests).
    pub download_connections: u32,
    /// Zips at least this big are fetched over `download_connections` connections.
    pub download_parallel_threshold: u64,
    /// Zip downloads from upstreams at the same time; 0 means no limit.
    pub max_concurrent_downloads: u32,
    /// Bytes of small artifacts (`.info`, `.mod`, lists, small zips) kept in
    /// memory for hits; 0 turns the memory cache off.
    pub memory_cache_size: u64,
    /// A fetched `.mod` also fetches its version's `.info` and `.zip` in the
    /// background, so the requests that usually follow it are hits.
    pub prefetch: bool,
    /// SHA-256 digests of the bearer tokens clients may present.
    pub auth_tokens: Vec<TokenHash>,
    /// Users for basic authentication, with Argon2 password hashes.
    pub auth_users: Vec<UserHash>,
    /// Which requests need credentials once tokens or users are configured.
    pub auth_require: AuthRequire,
    /// PEM certificate chain for the listener (TLS when set, with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
}

impl Settings {
    /// GONOPROXY as the go command reads it: GOPRIVATE when unset, so
    /// `gonoproxy: none` sends GOPRIVATE modules to the upstreams after all.
    pub fn noproxy(&self) -> &PrefixPatterns {
        if self.gonoproxy.is_empty() {
            &self.goprivate
        } else {
            &self.gonoproxy
        }
    }

    /// The private upstream `module` is routed to: the first whose patterns match.
    pub fn private_upstream(&self, module: &str) -> Option<&PrivateUpstream> {
        self.private_upstreams
            .iter()
            .find(|upstream| upstream.patterns.matches(module))
    }

    /// Whether `module` is private here: routed to a private upstream, kept from
    /// public upstreams (GONOPROXY) or named by GOPRIVATE. Such names never reach
    /// a checksum database, and `auth_require: private` guards them.
    pub fn is_private(&self, module: &str) -> bool {
        self.private_upstream(module).is_some()
            || self.noproxy().matches(module)
            || self.goprivate.matches(module)
    }

    /// Whether clients must authenticate (for some requests at least).
    pub fn auth_enabled(&self) -> bool {
        !self.auth_tokens.is_empty() || !self.auth_users.is_empty()
    }
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
            progress: ProgressMode::Auto,
            shutdown_timeout: Duration::from_secs(10),
            upstream_connect_timeout: Duration::from_secs(10),
            upstream_header_timeout: Duration::from_secs(60),
            upstream_idle_timeout: Duration::from_secs(60),
            upstream_timeout: Duration::from_secs(30 * 60),
            proxy: ProxySetting::default(),
            no_proxy: NoProxy::default(),
            dns: None,
            dns_bootstrap: Vec::new(),
            dns_ca_file: None,
            dns_timeout: Duration::from_secs(5),
            upstream_ca_file: None,
            gosumdb: GoSumDb::parse(DEFAULT_GOSUMDB)
                .expect("the built-in checksum database key is valid"),
            gonosumdb: PrefixPatterns::default(),
            goprivate: PrefixPatterns::default(),
            gonoproxy: PrefixPatterns::default(),
            private_upstreams: Vec::new(),
            netrc: None,
            proxied_sumdbs: Vec::new(),
            max_cache_age: Duration::ZERO,
            max_cache_size: None,
            cleanup_interval: Duration::from_secs(24 * 60 * 60),
            download_connections: 4,
            download_parallel_threshold: 512 * 1024,
            max_concurrent_downloads: 4,
            memory_cache_size: 32 << 20,
            prefetch: false,
            auth_tokens: Vec::new(),
            auth_users: Vec::new(),
            auth_require: AuthRequire::All,
            tls_cert: None,
            tls_key: None,
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
            .field("progress", &self.progress)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("upstream_connect_timeout", &self.upstream_connect_timeout)
            .field("upstream_header_timeout", &self.upstream_header_timeout)
            .field("upstream_idle_timeout", &self.upstream_idle_timeout)
            .field("upstream_timeout", &self.upstream_timeout)
            .field("proxy", &self.proxy.to_string())
            .field("no_proxy", &self.no_proxy.to_string())
            .field("dns", &self.dns)
            .field("dns_bootstrap", &self.dns_bootstrap)
            .field("dns_ca_file", &self.dns_ca_file)
            .field("dns_timeout", &self.dns_timeout)
            .field("upstream_ca_file", &self.upstream_ca_file)
            .field("gosumdb", &self.gosumdb.to_string())
            .field("gonosumdb", &self.gonosumdb.to_string())
            .field("goprivate", &self.goprivate.to_string())
            .field("gonoproxy", &self.gonoproxy.to_string())
            .field("private_upstreams", &self.private_upstreams)
            .field("netrc", &self.netrc)
            .field("proxied_sumdbs", &self.proxied_sumdbs)
            .field("max_cache_age", &self.max_cache_age)
            .field("max_cache_size", &self.max_cache_size)
            .field("cleanup_interval", &self.cleanup_interval)
            .field("download_connections", &self.download_connections)
            .field(
                "download_parallel_threshold",
                &self.download_parallel_threshold,
            )
            .field("max_concurrent_downloads", &self.max_concurrent_downloads)
            .field("memory_cache_size", &self.memory_cache_size)
            .field("prefetch", &self.prefetch)
            .field("auth_tokens", &self.auth_tokens)
            .field("auth_users", &self.auth_users)
            .field("auth_require", &self.auth_require)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
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
            upstreams: vec![url::Url::parse("https://someone:hunter2@proxy.example").unwrap()],
            private_upstreams: vec![PrivateUpstream {
                patterns: PrefixPatterns::parse("corp.example").unwrap(),
                url: url::Url::parse("https://nexus:pa55@nexus.example").unwrap(),
                auth: None,
                credentials: private::CredentialSource::Url,
            }],
            ..Settings::default()
        };
        let shown = format!("{settings:?}");
        for secret in ["hunter2", "someone", "nexus:", "pa55"] {
            assert!(!shown.contains(secret), "{secret}: {shown}");
        }
        assert!(shown.contains("https://***@proxy.example"), "{shown}");
        assert!(shown.contains("https://***@nexus.example"), "{shown}");

        let settings = Settings {
            proxy: ProxySetting::parse("socks5h://me:hunter2@127.0.0.1:1080").unwrap(),
            ..Settings::default()
        };
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("socks5h://***@127.0.0.1:1080"), "{shown}");
    }
}
