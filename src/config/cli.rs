//! Command-line flags. Every setting is an `Option` so "not given" can be told
//! apart from "given with the default value": the old project assigned every
//! flag's default over the environment and the config file.
//!
//! Values are kept as text and parsed by `load`, like the environment's, so a
//! bad flag gets the same message as a bad variable and a password in
//! `--upstream` is never echoed back.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Args as _;

use super::Key;

// A `///` comment here would become the `about` text of whatever command
// flattens these flags. Durations are written as in Go (100ms, 1m30s, 1.5h)
// or in days (30d).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct CliArgs {
    /// Port to listen on, on all interfaces; 0 picks a free port.
    /// [env: PORT] [default: 12345]
    #[arg(long, value_name = "PORT")]
    pub port: Option<String>,

    /// Address to listen on, host:port (e.g. 127.0.0.1:8080, [::1]:8080);
    /// a port set at a higher layer than this replaces its port.
    /// [env: LISTEN] [default: 0.0.0.0:<port>]
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,

    /// Cache directory. [env: CACHE_DIR] [default: ./cache]
    #[arg(long, value_name = "DIR")]
    pub cache: Option<String>,

    /// Upstream module proxies, comma-separated, tried in order.
    /// [env: UPSTREAM_PROXY] [default: https://proxy.golang.org]
    #[arg(long, value_name = "URL,...")]
    pub upstream: Option<String>,

    /// Config file, YAML (.yaml, .yml) or JSON (.json); environment variables
    /// and flags override its values. [env: GOPROXY_CONFIG]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Attempts per upstream request, the first one included (at least 1).
    /// [env: RETRY_ATTEMPTS] [default: 3]
    #[arg(long, value_name = "N")]
    pub retry_attempts: Option<String>,

    /// Delay before the first retry, doubled for each next one.
    /// [env: RETRY_BACKOFF] [default: 100ms]
    #[arg(long, value_name = "DURATION")]
    pub retry_backoff: Option<String>,

    /// How long list, @latest and query answers stay fresh.
    /// [env: LIST_TTL] [default: 60s]
    #[arg(long, value_name = "DURATION")]
    pub list_ttl: Option<String>,

    /// How long a not-found answer is remembered.
    /// [env: NEGATIVE_TTL] [default: 60s]
    #[arg(long, value_name = "DURATION")]
    pub negative_ttl: Option<String>,

    /// Log format: text or json. [env: LOG_FORMAT] [default: text]
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,

    /// Log filter: a level or any tracing EnvFilter directive, e.g.
    /// goproxy=debug,warn. [env: LOG_LEVEL] [default: info]
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,

    /// Download progress on stderr: bars (live, at the bottom of a terminal),
    /// lines (a throttled log line per download), off, or auto (bars on a
    /// terminal, lines elsewhere). [env: PROGRESS] [default: auto]
    #[arg(long, value_name = "MODE")]
    pub progress: Option<String>,

    /// How long in-flight requests may run after a shutdown signal.
    /// [env: SHUTDOWN_TIMEOUT] [default: 10s]
    #[arg(long, value_name = "DURATION")]
    pub shutdown_timeout: Option<String>,

    /// TCP and TLS connect timeout for upstreams.
    /// [env: UPSTREAM_CONNECT_TIMEOUT] [default: 10s]
    #[arg(long, value_name = "DURATION")]
    pub upstream_connect_timeout: Option<String>,

    /// Time allowed until an upstream's response headers arrive.
    /// [env: UPSTREAM_HEADER_TIMEOUT] [default: 60s]
    #[arg(long, value_name = "DURATION")]
    pub upstream_header_timeout: Option<String>,

    /// Longest pause allowed between two reads of an upstream body.
    /// [env: UPSTREAM_IDLE_TIMEOUT] [default: 60s]
    #[arg(long, value_name = "DURATION")]
    pub upstream_idle_timeout: Option<String>,

    /// Overall limit for one upstream request, body included.
    /// [env: UPSTREAM_TIMEOUT] [default: 30m]
    #[arg(long, value_name = "DURATION")]
    pub upstream_timeout: Option<String>,

    /// Outbound proxy for all traffic: http://, https://, socks5:// (names
    /// resolved here) or socks5h:// (names resolved by the proxy), with
    /// optional user:password@; "off" ignores the proxy environment variables.
    /// [default: HTTPS_PROXY, HTTP_PROXY, SOCKS5_PROXY from the environment]
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,

    /// Hosts reached without the proxy: comma-separated names (with their
    /// subdomains), IP addresses or CIDR ranges, or * for all. [env: NO_PROXY]
    #[arg(long, value_name = "HOSTS")]
    pub no_proxy: Option<String>,

    /// DNS server for every outbound connection: an IP address, udp://,
    /// tcp://, tls://, quic:// host[:port], or an https:// DoH URL (#json for
    /// the JSON API). [env: DNS_SERVER] [default: system]
    #[arg(long, value_name = "SERVER")]
    pub dns: Option<String>,

    /// IP addresses of the --dns server when it is given by name,
    /// comma-separated (otherwise the system resolver finds them).
    /// [env: DNS_BOOTSTRAP]
    #[arg(long, value_name = "IPS")]
    pub dns_bootstrap: Option<String>,

    /// PEM file of extra CA certificates trusted for DNS servers (DoT, DoH,
    /// DoQ). [env: DNS_CA_FILE]
    #[arg(long, value_name = "FILE")]
    pub dns_ca_file: Option<String>,

    /// Deadline for one lookup through --dns. [env: DNS_TIMEOUT] [default: 5s]
    #[arg(long, value_name = "DURATION")]
    pub dns_timeout: Option<String>,

    /// PEM file of extra CA certificates trusted for every outbound TLS
    /// connection: upstreams, checksum databases, HTTPS proxies and DNS
    /// servers. [env: UPSTREAM_CA_FILE]
    #[arg(long, value_name = "FILE")]
    pub upstream_ca_file: Option<String>,

    /// Checksum database to verify modules against: off, sum.golang.org, or a
    /// verifier key <name>+<hash>+<key>, optionally followed by its URL.
    /// [env: GOSUMDB] [default: sum.golang.org]
    #[arg(long, value_name = "DB")]
    pub gosumdb: Option<String>,

    /// Module path patterns never looked up in the checksum database
    /// (comma-separated globs matched against path prefixes).
    /// [env: GONOSUMDB]
    #[arg(long, value_name = "PATTERNS")]
    pub gonosumdb: Option<String>,

    /// Private module path patterns: never fetched from public upstreams and
    /// never looked up in a checksum database. [env: GOPRIVATE]
    #[arg(long, value_name = "PATTERNS")]
    pub goprivate: Option<String>,

    /// Module path patterns never fetched from public upstreams; defaults to
    /// GOPRIVATE, as in the go command ("none" lets GOPRIVATE modules through).
    /// [env: GONOPROXY]
    #[arg(long, value_name = "PATTERNS")]
    pub gonoproxy: Option<String>,

    /// Upstreams of private modules, PATTERNS=URL entries separated by spaces;
    /// the first matching entry's upstream alone serves a module. Credentials
    /// come from the URL or .netrc (or the config file's auth).
    /// [env: PRIVATE_UPSTREAMS]
    #[arg(long, value_name = "PATTERNS=URL ...")]
    pub private_upstreams: Option<String>,

    /// .netrc file with credentials for private upstreams.
    /// [env: NETRC] [default: ~/.netrc if present]
    #[arg(long, value_name = "FILE")]
    pub netrc: Option<String>,

    /// Further checksum databases to serve under /sumdb/<name>/ for clients,
    /// comma-separated names (each optionally "name url"). [env: PROXIED_SUMDBS]
    #[arg(long, value_name = "NAMES")]
    pub proxied_sumdbs: Option<String>,

    /// Evict module versions not used for this long, e.g. 720h or 30d; 0s keeps
    /// everything. [env: MAX_CACHE_AGE] [default: 0s]
    #[arg(long, value_name = "DURATION")]
    pub max_cache_age: Option<String>,

    /// Evict the least recently used module versions until the cache fits, e.g.
    /// 50GiB; 0 means no limit. [env: MAX_CACHE_SIZE] [default: no limit]
    #[arg(long, value_name = "SIZE")]
    pub max_cache_size: Option<String>,

    /// How often eviction runs. [env: CLEANUP_INTERVAL] [default: 24h]
    #[arg(long, value_name = "DURATION")]
    pub cleanup_interval: Option<String>,

    /// Connections one large zip download uses at once, with Range requests; 1
    /// disables parallel downloads. [env: DOWNLOAD_CONNECTIONS] [default: 4]
    #[arg(long, value_name = "N")]
    pub download_connections: Option<String>,

    /// Zips at least this big are downloaded over several connections.
    /// [env: DOWNLOAD_PARALLEL_THRESHOLD] [default: 512KiB]
    #[arg(long, value_name = "SIZE")]
    pub download_parallel_threshold: Option<String>,

    /// Zip downloads from upstreams at the same time; more wait in order; 0 means
    /// no limit. [env: MAX_CONCURRENT_DOWNLOADS] [default: 4]
    #[arg(long, value_name = "N")]
    pub max_concurrent_downloads: Option<String>,

    /// Memory for small artifacts (.info, .mod, lists, zips up to 64KiB)
    /// served on cache hits, e.g. 64MiB; 0 turns it off.
    /// [env: MEMORY_CACHE_SIZE] [default: 32MiB]
    #[arg(long, value_name = "SIZE")]
    pub memory_cache_size: Option<String>,

    /// on: a .mod fetched from an upstream also fetches that version's .info
    /// and .zip in the background, so a `go mod download` or build finds them
    /// cached. [env: PREFETCH] [default: off]
    #[arg(long, value_name = "on|off")]
    pub prefetch: Option<String>,
    /// Bearer tokens clients may use, as SHA-256 digests (sha256:<hex>),
    /// comma-separated; see `goproxy auth hash --token`. [env: AUTH_TOKENS]
    #[arg(long, value_name = "HASHES")]
    pub auth_tokens: Option<String>,

    /// Users for basic authentication, name:<argon2 hash> entries separated by
    /// spaces; see `goproxy auth hash`. [env: AUTH_USERS]
    #[arg(long, value_name = "NAME:HASH ...")]
    pub auth_users: Option<String>,

    /// Which requests need credentials when tokens or users are set: all (but
    /// the health probes) or private (private modules only).
    /// [env: AUTH_REQUIRE] [default: all]
    #[arg(long, value_name = "WHICH")]
    pub auth_require: Option<String>,

    /// PEM certificate chain: serve HTTPS (with --tls-key). [env: TLS_CERT]
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<String>,

    /// PEM private key of --tls-cert. [env: TLS_KEY]
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<String>,
}

impl CliArgs {
    /// The flag's text for `key`, if the flag was given.
    pub(super) fn value(&self, key: Key) -> Option<String> {
        match key {
            Key::Port => &self.port,
            Key::Listen => &self.listen,
            Key::CacheDir => &self.cache,
            Key::Upstreams => &self.upstream,
            Key::RetryAttempts => &self.retry_attempts,
            Key::RetryBackoff => &self.retry_backoff,
            Key::ListTtl => &self.list_ttl,
            Key::NegativeTtl => &self.negative_ttl,
            Key::LogFormat => &self.log_format,
            Key::LogLevel => &self.log_level,
            Key::Progress => &self.progress,
            Key::ShutdownTimeout => &self.shutdown_timeout,
            Key::UpstreamConnectTimeout => &self.upstream_connect_timeout,
            Key::UpstreamHeaderTimeout => &self.upstream_header_timeout,
            Key::UpstreamIdleTimeout => &self.upstream_idle_timeout,
            Key::UpstreamTimeout => &self.upstream_timeout,
            Key::Proxy => &self.proxy,
            Key::NoProxy => &self.no_proxy,
            Key::Dns => &self.dns,
            Key::DnsBootstrap => &self.dns_bootstrap,
            Key::DnsCaFile => &self.dns_ca_file,
            Key::DnsTimeout => &self.dns_timeout,
            Key::UpstreamCaFile => &self.upstream_ca_file,
            Key::Gosumdb => &self.gosumdb,
            Key::Gonosumdb => &self.gonosumdb,
            Key::Goprivate => &self.goprivate,
            Key::Gonoproxy => &self.gonoproxy,
            Key::PrivateUpstreams => &self.private_upstreams,
            Key::Netrc => &self.netrc,
            Key::ProxiedSumdbs => &self.proxied_sumdbs,
            Key::MaxCacheAge => &self.max_cache_age,
            Key::MaxCacheSize => &self.max_cache_size,
            Key::DownloadConnections => &self.download_connections,
            Key::DownloadParallelThreshold => &self.download_parallel_threshold,
            Key::MaxConcurrentDownloads => &self.max_concurrent_downloads,
            Key::MemoryCacheSize => &self.memory_cache_size,
            Key::Prefetch => &self.prefetch,
            Key::CleanupInterval => &self.cleanup_interval,
            Key::AuthTokens => &self.auth_tokens,
            Key::AuthUsers => &self.auth_users,
            Key::AuthRequire => &self.auth_require,
            Key::TlsCert => &self.tls_cert,
            Key::TlsKey => &self.tls_key,
        }
        .clone()
    }
}

/// Rewrites Go-style single-dash long flags (`-port 3000`, `-cache=x`) to
/// `--port 3000` and `--cache=x`, so the old project's command lines keep
/// working. Only names of our long flags (and `-help`) are rewritten; values,
/// one-letter flags, negative numbers, subcommands and everything after `--`
/// pass through unchanged. Takes the arguments with or without the program
/// name.
pub fn normalize_go_style_args(args: Vec<OsString>) -> Vec<OsString> {
    let command = CliArgs::augment_args(clap::Command::new("goproxy"));
    // (long name, whether it takes a value)
    let mut flags: Vec<(&str, bool)> = command
        .get_arguments()
        .filter_map(|arg| Some((arg.get_long()?, arg.get_action().takes_values())))
        .collect();
    flags.push(("help", false));
    let takes_value = |name: &str| {
        flags
            .iter()
            .find(|(long, _)| *long == name)
            .map(|(_, takes)| *takes)
    };

    let mut out = Vec::with_capacity(args.len());
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            out.push(arg);
            out.extend(args);
            break;
        }
        let (body, single_dash) = match text.strip_prefix("--") {
            Some(body) => (body, false),
            None => match text.strip_prefix('-') {
                Some(body) => (body, true),
                None => {
                    out.push(arg);
                    continue;
                }
            },
        };
        let (name, inline_value) = match body.split_once('=') {
            Some((name, _)) => (name, true),
            None => (body, false),
        };
        let Some(takes) = takes_value(name).filter(|_| name.chars().count() > 1) else {
            out.push(arg);
            continue;
        };
        out.push(if single_dash {
            OsString::from(format!("-{text}"))
        } else {
            arg
        });
        // The next word is this flag's value, even if it looks like a flag.
        if takes && !inline_value {
            out.extend(args.next());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalize(args: &[&str]) -> Vec<String> {
        normalize_go_style_args(args.iter().map(OsString::from).collect())
            .into_iter()
            .map(|arg| arg.into_string().unwrap())
            .collect()
    }

    #[test]
    fn go_style_flags_become_long_flags() {
        assert_eq!(
            normalize(&["goproxy", "-port", "3000", "-cache=/x", "-upstream", "a,b"]),
            [
                "goproxy",
                "--port",
                "3000",
                "--cache=/x",
                "--upstream",
                "a,b"
            ]
        );
        assert_eq!(
            normalize(&["-retry-attempts=5", "-log-format", "json", "-help"]),
            ["--retry-attempts=5", "--log-format", "json", "--help"]
        );
        // The old project's -proxy and -dns.
        assert_eq!(
            normalize(&["-proxy", "socks5h://p:1080", "-dns=tls://dns.google"]),
            ["--proxy", "socks5h://p:1080", "--dns=tls://dns.google"]
        );
    }

    #[test]
    fn everything_else_is_left_alone() {
        let untouched: &[&[&str]] = &[
            &["goproxy", "serve", "--port", "3000", "--cache=/x"],
            // a value that looks like a flag stays a value
            &["goproxy", "--log-level", "-port"],
            &["goproxy", "--cache", "-cache"],
            // one-letter and unknown flags, negative numbers
            &[
                "goproxy", "-h", "-V", "-x", "-socks", "http://p", "-1", "-10", "-",
            ],
            // after `--`
            &["goproxy", "--", "-port", "1"],
            &["config", "show"],
        ];
        for args in untouched {
            assert_eq!(normalize(args), *args);
        }
        assert_eq!(
            normalize(&["goproxy", "-cache", "-port", "-port", "1", "--", "-port"]),
            ["goproxy", "--cache", "-port", "--port", "1", "--", "-port"]
        );
    }

    #[test]
    fn every_key_has_a_flag() {
        let command = CliArgs::augment_args(clap::Command::new("goproxy"));
        let longs: Vec<&str> = command
            .get_arguments()
            .filter_map(|a| a.get_long())
            .collect();
        for key in Key::ALL {
            assert!(longs.contains(&key.flag()), "{:?} has no flag", key);
        }
        assert_eq!(longs.len(), Key::ALL.len() + 1, "{longs:?}");
        assert!(longs.contains(&"config"));
        command.debug_assert();
    }
}
