//! Layering: defaults < config file < environment < flags.
//!
//! Each layer's values are validated as that layer is applied, so a broken
//! value is reported (with the layer it came from) even when a higher layer
//! overrides it: a typo in a config file should not wait for the day the
//! overriding variable is removed.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use super::netrc::Netrc;
use super::private::{self, CredentialSource};
use super::value::{self, Invalid, ListenAddr};
use super::{CliArgs, DEFAULT_PORT, Key, Settings, auth, file};
use crate::net::proxy::{EnvProxies, ProxySetting};

/// Names the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "GOPROXY_CONFIG";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {}: not found (named by {named_by})", .path.display())]
    FileNotFound { path: PathBuf, named_by: Source },

    #[error("config file {}: cannot be read: {error}", .path.display())]
    FileUnreadable {
        path: PathBuf,
        error: std::io::Error,
    },

    #[error(
        "config file {}: unsupported file type (expected a .yaml, .yml or .json file)",
        .path.display()
    )]
    FileType { path: PathBuf },

    /// The file is not well-formed YAML or JSON, or not a mapping of keys.
    #[error("config file {}: {message}", .path.display())]
    FileSyntax { path: PathBuf, message: String },

    #[error(
        "config file {}: unknown key {key:?} (expected one of: {})",
        .path.display(),
        key_list()
    )]
    UnknownKey { path: PathBuf, key: String },

    /// `at` is never [`Source::Default`]: the defaults are valid.
    #[error("{}: {message}", origin(.at, *.key))]
    InvalidValue {
        at: Source,
        key: Key,
        message: String,
    },

    /// The .netrc file that private upstreams need credentials from.
    #[error(
        "netrc file {} ({named_by}): cannot be read: {error} \
         (fix its permissions, or set --netrc/NETRC/netrc to another file)",
        .path.display()
    )]
    Netrc {
        path: PathBuf,
        named_by: Source,
        error: std::io::Error,
    },
}

fn key_list() -> String {
    Key::ALL.map(Key::name).join(", ")
}

fn origin(at: &Source, key: Key) -> String {
    match at {
        Source::Default => format!("default {}", key.name()),
        Source::File(path) => format!("config file {}: {}", path.display(), key.name()),
        Source::Env(name) => format!("environment variable {name}"),
        Source::Flag(name) => format!("flag --{name}"),
    }
}

/// Where a setting's value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    /// The environment variable's name.
    Env(&'static str),
    /// The long flag's name, without `--`.
    Flag(&'static str),
}

impl Source {
    /// Higher ranks override lower ones.
    pub(super) fn rank(&self) -> u8 {
        match self {
            Source::Default => 0,
            Source::File(_) => 1,
            Source::Env(_) => 2,
            Source::Flag(_) => 3,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(path) => write!(f, "file {}", path.display()),
            Source::Env(name) => write!(f, "env {name}"),
            Source::Flag(name) => write!(f, "flag --{name}"),
        }
    }
}

/// The config file that was read, and what named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub named_by: Source,
}

/// The effective settings and where each one came from.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub settings: Settings,
    pub config_file: Option<ConfigFile>,
    sources: BTreeMap<Key, Source>,
}

impl Loaded {
    /// Where `key`'s value came from. For [`Key::Listen`] that is the layer
    /// that set `listen` itself; see [`Loaded::port_replaces_listen_port`].
    pub fn source(&self, key: Key) -> &Source {
        self.sources.get(&key).unwrap_or(&Source::Default)
    }

    /// Whether the effective port comes from `port` rather than from `listen`:
    /// true when `port` was set at a strictly higher layer than `listen`.
    pub fn port_replaces_listen_port(&self) -> bool {
        port_wins(self.source(Key::Listen), self.source(Key::Port))
    }
}

/// `listen` wins at the same or a higher layer; a `port` given above it
/// replaces only its port, so `PORT=3000` still moves a file's
/// `listen: 127.0.0.1:8080` to 127.0.0.1:3000.
fn port_wins(listen: &Source, port: &Source) -> bool {
    port.rank() > listen.rank()
}

/// Builds the settings from the defaults, the config file named by `--config`
/// or `GOPROXY_CONFIG`, the environment (read only through `env`) and the
/// flags that were actually given.
pub fn load(args: &CliArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<Loaded, ConfigError> {
    // An empty value is how shells and compose files leave a variable unset.
    let env = |name: &str| env(name).filter(|value| !value.trim().is_empty());

    let config_file = match (&args.config, env(CONFIG_ENV)) {
        (Some(path), _) => Some(ConfigFile {
            path: path.clone(),
            named_by: Source::Flag("config"),
        }),
        (None, Some(path)) => Some(ConfigFile {
            path: PathBuf::from(path),
            named_by: Source::Env(CONFIG_ENV),
        }),
        (None, None) => None,
    };

    let mut builder = Builder::new(&env);
    if let Some(config) = &config_file {
        for (key, raw) in file::read(config)? {
            builder.apply(key, raw, Source::File(config.path.clone()))?;
        }
    }
    for key in Key::ALL {
        let set = key
            .env_vars()
            .into_iter()
            .find_map(|var| env(var).map(|text| (var, text)));
        if let Some((var, text)) = set {
            builder.apply(key, Raw::Text(text), Source::Env(var))?;
        }
    }
    for key in Key::ALL {
        if let Some(text) = args.value(key) {
            builder.apply(key, Raw::Text(text), Source::Flag(key.flag()))?;
        }
    }
    builder.proxy_from_env(&env)?;
    builder.finish(config_file)
}

/// A value as a layer gives it, before parsing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Raw {
    Text(String),
    /// Only a config file has lists.
    List(Vec<String>),
    /// A config file's list with mappings in it (`private_upstreams`,
    /// `auth_users`).
    Structured(Vec<serde_json::Value>),
}

struct Builder<'e> {
    settings: Settings,
    sources: BTreeMap<Key, Source>,
    /// Kept apart from `settings.listen` until every layer is in, because
    /// which of the two wins depends on their layers.
    port: Option<u16>,
    listen: Option<ListenAddr>,
    /// For `${VAR}` in config file credentials and the home directory's .netrc.
    env: &'e dyn Fn(&str) -> Option<String>,
}

impl<'e> Builder<'e> {
    fn new(env: &'e dyn Fn(&str) -> Option<String>) -> Self {
        Builder {
            settings: Settings::default(),
            sources: BTreeMap::new(),
            port: None,
            listen: None,
            env,
        }
    }

    fn apply(&mut self, key: Key, raw: Raw, source: Source) -> Result<(), ConfigError> {
        self.set(key, raw)
            .map_err(|Invalid(message)| ConfigError::InvalidValue {
                at: source.clone(),
                key,
                message,
            })?;
        self.sources.insert(key, source);
        Ok(())
    }

    fn set(&mut self, key: Key, raw: Raw) -> Result<(), Invalid> {
        let text = match raw {
            Raw::Text(text) => text,
            Raw::Structured(items) if key == Key::PrivateUpstreams => {
                self.settings.private_upstreams = private::from_file(&items, self.env)?;
                return Ok(());
            }
            Raw::Structured(items) if key == Key::AuthUsers => {
                self.settings.auth_users = auth::users_file(&items)?;
                return Ok(());
            }
            // Not quoted back: mappings may hold credentials.
            Raw::Structured(_) => return Err(Invalid::wrong_kind(key, "(a list of mappings)")),
            Raw::List(items) if key == Key::PrivateUpstreams => {
                let items: Vec<serde_json::Value> =
                    items.into_iter().map(serde_json::Value::String).collect();
                self.settings.private_upstreams = private::from_file(&items, self.env)?;
                return Ok(());
            }
            Raw::List(items) if key == Key::AuthUsers => {
                let items: Vec<serde_json::Value> =
                    items.into_iter().map(serde_json::Value::String).collect();
                self.settings.auth_users = auth::users_file(&items)?;
                return Ok(());
            }
            Raw::List(items) if key == Key::AuthTokens => {
                self.settings.auth_tokens = auth::tokens(items.iter().map(String::as_str))?;
                return Ok(());
            }
            Raw::List(items) if key == Key::Upstreams => {
                self.settings.upstreams = value::upstreams(items.iter().map(String::as_str))?;
                return Ok(());
            }
            Raw::List(items) if matches!(key, Key::Gonosumdb | Key::Goprivate | Key::Gonoproxy) => {
                let patterns = value::patterns(key, items.iter().map(String::as_str))?;
                self.set_patterns(key, patterns);
                return Ok(());
            }
            Raw::List(items) if key == Key::NoProxy => {
                self.settings.no_proxy = value::no_proxy(items.iter().map(String::as_str))?;
                return Ok(());
            }
            Raw::List(items) if key == Key::DnsBootstrap => {
                self.settings.dns_bootstrap =
                    value::dns_bootstrap(items.iter().map(String::as_str))?;
                return Ok(());
            }
            Raw::List(items) if key == Key::ProxiedSumdbs => {
                self.settings.proxied_sumdbs =
                    value::proxied_sumdbs(items.iter().map(String::as_str))?;
                return Ok(());
            }
            Raw::List(items) => {
                let shown = serde_json::to_string(&items).unwrap_or_default();
                return Err(Invalid::wrong_kind(key, &shown));
            }
        };
        let s = &mut self.settings;
        match key {
            Key::Port => self.port = Some(value::port(&text)?),
            Key::Listen => self.listen = Some(value::listen(&text)?),
            Key::CacheDir => s.cache_dir = value::dir(&text)?,
            Key::Upstreams => s.upstreams = value::upstream_list(&text)?,
            Key::RetryAttempts => s.retry_attempts = value::attempts(&text)?,
            Key::RetryBackoff => s.retry_backoff = value::duration(&text)?,
            Key::ListTtl => s.list_ttl = value::duration(&text)?,
            Key::NegativeTtl => s.negative_ttl = value::duration(&text)?,
            Key::LogFormat => s.log_format = value::log_format(&text)?,
            Key::LogLevel => s.log_level = value::log_level(&text)?,
            Key::Progress => s.progress = value::progress(&text)?,
            Key::ShutdownTimeout => s.shutdown_timeout = value::duration(&text)?,
            Key::UpstreamConnectTimeout => s.upstream_connect_timeout = value::timeout(&text)?,
            Key::UpstreamHeaderTimeout => s.upstream_header_timeout = value::timeout(&text)?,
            Key::UpstreamIdleTimeout => s.upstream_idle_timeout = value::timeout(&text)?,
            Key::UpstreamTimeout => s.upstream_timeout = value::timeout(&text)?,
            Key::Proxy => s.proxy = value::proxy(&text)?,
            Key::NoProxy => s.no_proxy = value::no_proxy(text.split(','))?,
            Key::Dns => s.dns = value::dns(&text)?,
            Key::DnsBootstrap => s.dns_bootstrap = value::dns_bootstrap(text.split(','))?,
            Key::DnsCaFile => s.dns_ca_file = Some(value::ca_file(key, &text)?),
            Key::DnsTimeout => s.dns_timeout = value::timeout(&text)?,
            Key::UpstreamCaFile => s.upstream_ca_file = Some(value::ca_file(key, &text)?),
            Key::Gosumdb => s.gosumdb = value::gosumdb(&text)?,
            Key::Gonosumdb | Key::Goprivate | Key::Gonoproxy => {
                let patterns = value::patterns(key, text.split(','))?;
                self.set_patterns(key, patterns);
            }
            Key::PrivateUpstreams => s.private_upstreams = private::from_text(&text)?,
            Key::Netrc => s.netrc = Some(value::file(key, &text)?),
            Key::ProxiedSumdbs => s.proxied_sumdbs = value::proxied_sumdbs(text.split(','))?,
            Key::MaxCacheAge => s.max_cache_age = value::duration(&text)?,
            Key::MaxCacheSize => s.max_cache_size = value::size(&text)?,
            Key::CleanupInterval => s.cleanup_interval = value::timeout(&text)?,
            Key::DownloadConnections => s.download_connections = value::connections(&text)?,
            Key::DownloadParallelThreshold => {
                s.download_parallel_threshold = value::threshold(&text)?
            }
            Key::MaxConcurrentDownloads => {
                s.max_concurrent_downloads = value::download_limit(&text)?
            }
            Key::MemoryCacheSize => s.memory_cache_size = value::memory_cache_size(&text)?,
            Key::Prefetch => s.prefetch = value::on_off(key, &text)?,
            Key::AuthTokens => s.auth_tokens = auth::tokens(text.split(','))?,
            Key::AuthUsers => s.auth_users = auth::users_text(&text)?,
            Key::AuthRequire => s.auth_require = auth::require(&text)?,
            Key::TlsCert => s.tls_cert = Some(value::file(key, &text)?),
            Key::TlsKey => s.tls_key = Some(value::file(key, &text)?),
        }
        Ok(())
    }

    /// The environment's proxy variables apply only when neither the config
    /// file nor a flag set `proxy`; they are not even parsed otherwise, so
    /// `--proxy off` gets past a variable meant for another tool.
    fn proxy_from_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if self.sources.contains_key(&Key::Proxy) {
            return Ok(());
        }
        let found = EnvProxies::read(env).map_err(|(var, message)| ConfigError::InvalidValue {
            at: Source::Env(var),
            key: Key::Proxy,
            message,
        })?;
        if let Some(first) = found.vars().first() {
            self.sources.insert(Key::Proxy, Source::Env(first));
        }
        self.settings.proxy = ProxySetting::Environment(Box::new(found));
        Ok(())
    }

    fn set_patterns(&mut self, key: Key, patterns: crate::gomod::pattern::PrefixPatterns) {
        match key {
            Key::Goprivate => self.settings.goprivate = patterns,
            Key::Gonoproxy => self.settings.gonoproxy = patterns,
            _ => self.settings.gonosumdb = patterns,
        }
    }

    /// The .netrc file: the one set, else the home directory's if there is one
    /// (as the go command looks for it). It is read only when a private
    /// upstream has no credentials of its own.
    fn resolve_netrc(&mut self) -> Result<(), ConfigError> {
        let named_by = self.sources.get(&Key::Netrc).cloned();
        if named_by.is_none() {
            self.settings.netrc = (self.env)("HOME")
                .map(|home| PathBuf::from(home).join(".netrc"))
                .filter(|path| path.is_file());
        }
        let Some(path) = self.settings.netrc.clone() else {
            return Ok(());
        };
        let needed = self
            .settings
            .private_upstreams
            .iter()
            .any(|upstream| upstream.credentials == CredentialSource::None);
        if !needed {
            return Ok(());
        }
        let netrc = Netrc::read(&path).map_err(|error| ConfigError::Netrc {
            path: path.clone(),
            named_by: named_by.unwrap_or(Source::Default),
            error,
        })?;
        private::apply_netrc(&mut self.settings.private_upstreams, &netrc);
        Ok(())
    }

    fn finish(mut self, config_file: Option<ConfigFile>) -> Result<Loaded, ConfigError> {
        self.resolve_netrc()?;
        let port = self.port.unwrap_or(DEFAULT_PORT);
        let port_replaces = port_wins(
            self.sources.get(&Key::Listen).unwrap_or(&Source::Default),
            self.sources.get(&Key::Port).unwrap_or(&Source::Default),
        );
        self.settings.listen = match &self.listen {
            Some(listen) if port_replaces => listen.with_port(port),
            Some(listen) => listen.to_string(),
            None => format!("0.0.0.0:{port}"),
        };
        Ok(Loaded {
            settings: self.settings,
            config_file,
            sources: self.sources,
        })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::config::{LogFormat, normalize_go_style_args};
    use clap::Parser;
    use std::collections::HashMap;
    use std::path::Path;
    use std::time::Duration;

    #[derive(Parser)]
    struct TestCli {
        #[command(flatten)]
        args: CliArgs,
    }

    /// Parses flags the way the binary does, Go-style spellings included.
    pub(in crate::config) fn flags(flags: &[&str]) -> CliArgs {
        let argv = std::iter::once("goproxy")
            .chain(flags.iter().copied())
            .map(Into::into)
            .collect();
        TestCli::try_parse_from(normalize_go_style_args(argv))
            .unwrap()
            .args
    }

    pub(in crate::config) fn load_with(
        args: &CliArgs,
        vars: &[(&str, &str)],
    ) -> Result<Loaded, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        load(args, &|name| vars.get(name).cloned())
    }

    pub(in crate::config) fn write(dir: &Path, name: &str, text: &str) -> String {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn error(args: &CliArgs, vars: &[(&str, &str)]) -> String {
        load_with(args, vars).unwrap_err().to_string()
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let loaded = load_with(&flags(&[]), &[]).unwrap();
        let (got, want) = (&loaded.settings, Settings::default());
        assert_eq!(format!("{got:?}"), format!("{want:?}"));
        assert_eq!(got.listen, "0.0.0.0:12345");
        assert!(loaded.config_file.is_none());
        for key in Key::ALL {
            assert_eq!(loaded.source(key), &Source::Default, "{key:?}");
        }
    }

    /// A PEM file holding one self-signed CA certificate.
    pub(in crate::config) fn ca_file(dir: &Path, name: &str) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        write(dir, name, &params.self_signed(&key).unwrap().pem())
    }

    /// One valid value per key and layer, all different from the default.
    fn samples(key: Key, dir: &Path) -> [String; 3] {
        let texts = match key {
            Key::Port => ["1001", "1002", "1003"],
            Key::Listen => ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"],
            Key::CacheDir => ["/file", "/env", "/flag"],
            Key::Upstreams => [
                "https://file.example",
                "https://env.example",
                "https://flag.example",
            ],
            Key::RetryAttempts => ["4", "5", "6"],
            Key::LogFormat => ["json", "text", "json"],
            Key::LogLevel => ["debug", "warn", "error"],
            Key::Progress => ["lines", "bars", "off"],
            Key::Gosumdb => [
                "off",
                "sum.golang.google.cn",
                "sum.golang.org https://sumdb.example",
            ],
            Key::Gonosumdb | Key::Goprivate | Key::Gonoproxy => {
                ["file.example", "env.example/x", "*.flag.example"]
            }
            Key::PrivateUpstreams => [
                "file.example=https://file-up.example",
                "env.example=https://env-up.example",
                "*.flag.example,flag.example=https://flag-up.example/go",
            ],
            Key::Netrc | Key::TlsCert | Key::TlsKey => ["/file.pem", "/env.pem", "/flag.pem"],
            Key::AuthTokens => [
                "sha256:1111111111111111111111111111111111111111111111111111111111111111",
                "sha256:2222222222222222222222222222222222222222222222222222222222222222",
                "sha256:3333333333333333333333333333333333333333333333333333333333333333",
            ],
            Key::AuthUsers => [USER_SAMPLES[0], USER_SAMPLES[1], USER_SAMPLES[2]],
            Key::AuthRequire => ["private", "all", "github.com/acme,*.corp.example"],
            Key::ProxiedSumdbs => ["file.example", "env.example", "flag.example"],
            Key::MaxCacheSize => ["1GiB", "2GiB", "3GiB"],
            Key::MemoryCacheSize => ["1MiB", "2MiB", "3MiB"],
            Key::Prefetch => ["on", "off", "on"],
            Key::DownloadConnections | Key::MaxConcurrentDownloads => ["7", "8", "9"],
            Key::DownloadParallelThreshold => ["1MiB", "2MiB", "3MiB"],
            Key::Proxy => [
                "http://file.example:3128",
                "unused: the environment ranks below the file",
                "socks5h://flag.example:1080",
            ],
            Key::NoProxy => ["file.example", "env.example", "flag.example"],
            Key::Dns => [
                "udp://127.0.0.1:1",
                "tls://dns.env.example:853",
                "https://flag.example/dns-query",
            ],
            Key::DnsBootstrap => ["127.0.0.1", "10.0.0.2", "::1"],
            Key::DnsCaFile | Key::UpstreamCaFile => {
                return ["file", "env", "flag"]
                    .map(|layer| ca_file(dir, &format!("{}-{layer}.pem", key.name())));
            }
            _ => ["1s", "2s", "3s"],
        };
        texts.map(str::to_owned)
    }

    const USER_SAMPLES: [&str; 3] = [
        "file-user:$argon2id$v=19$m=19456,t=2,p=1$d+uwN1a15JWTgq2mp7udOQ$rz2YtkFsM988bzYazTqmSr6qbhS+ERzpv813dAPTufY",
        "env-user:$argon2id$v=19$m=19456,t=2,p=1$d+uwN1a15JWTgq2mp7udOQ$rz2YtkFsM988bzYazTqmSr6qbhS+ERzpv813dAPTufY",
        "flag-user:$argon2id$v=19$m=19456,t=2,p=1$d+uwN1a15JWTgq2mp7udOQ$rz2YtkFsM988bzYazTqmSr6qbhS+ERzpv813dAPTufY",
    ];

    /// How `config show` prints a sample: users by name only.
    fn shown_as(key: Key, sample: &str) -> &str {
        match key {
            Key::AuthUsers => sample.split(':').next().unwrap_or(sample),
            _ => sample,
        }
    }

    #[test]
    fn each_layer_overrides_the_one_below_for_every_key() {
        let dir = tempfile::tempdir().unwrap();
        for key in Key::ALL {
            let [in_file, in_env, in_flag] = samples(key, dir.path());
            let file = write(
                dir.path(),
                "c.json",
                &format!("{{{:?}: {in_file:?}}}", key.name()),
            );
            let config = ["--config", file.as_str()];
            let flag = format!("--{}={in_flag}", key.flag());
            let env: Vec<(&str, &str)> = key
                .env_vars()
                .into_iter()
                .take(1)
                .map(|var| (var, in_env.as_str()))
                .collect();

            let loaded = load_with(&flags(&config), &[]).unwrap();
            assert_eq!(
                loaded.source(key),
                &Source::File(file.clone().into()),
                "{key:?}"
            );
            let shown = crate::config::render(&loaded);
            assert!(shown.contains(shown_as(key, &in_file)), "{key:?}: {shown}");

            if let Some((var, _)) = env.first() {
                let loaded = load_with(&flags(&config), &env).unwrap();
                assert_eq!(loaded.source(key), &Source::Env(var), "{key:?}");
            }

            let loaded =
                load_with(&flags(&[&config[..], &[flag.as_str()]].concat()), &env).unwrap();
            assert_eq!(loaded.source(key), &Source::Flag(key.flag()), "{key:?}");
            let shown = crate::config::render(&loaded);
            assert!(shown.contains(shown_as(key, &in_flag)), "{key:?}: {shown}");
        }
    }

    #[test]
    fn flags_not_given_do_not_override_env_or_file() {
        // The old project assigned every flag's default last, so PORT and the
        // file's retry_attempts were silently ignored.
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "c.yaml",
            "retry_attempts: 5\ncache_dir: /from-file\n",
        );
        let args = flags(&["--config", &file, "--log-level", "debug"]);
        let loaded = load_with(&args, &[("PORT", "3000"), ("CACHE_DIR", "/from-env")]).unwrap();
        let s = &loaded.settings;
        assert_eq!(s.listen, "0.0.0.0:3000");
        assert_eq!(s.retry_attempts, 5);
        assert_eq!(s.cache_dir, Path::new("/from-env"));
        assert_eq!(s.log_level, "debug");
        assert_eq!(s.upstreams[0].as_str(), "https://proxy.golang.org/");
    }

    #[test]
    fn empty_env_values_count_as_unset() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "c.yaml", "port: 4000\n");
        let vars = [
            ("PORT", ""),
            ("UPSTREAM_PROXY", ""),
            ("LOG_LEVEL", "  "),
            ("GOPROXY_CONFIG", ""),
        ];
        let loaded = load_with(&flags(&["--config", &file]), &vars).unwrap();
        assert_eq!(loaded.settings.listen, "0.0.0.0:4000");
        assert_eq!(loaded.source(Key::Upstreams), &Source::Default);
    }

    #[test]
    fn config_file_from_env_and_flag() {
        let dir = tempfile::tempdir().unwrap();
        let from_env = write(dir.path(), "env.yml", "retry_attempts: 7\n");
        let from_flag = write(dir.path(), "flag.yaml", "retry_attempts: 8\n");

        let loaded = load_with(&flags(&[]), &[("GOPROXY_CONFIG", &from_env)]).unwrap();
        assert_eq!(loaded.settings.retry_attempts, 7);
        let config = loaded.config_file.unwrap();
        assert_eq!(config.named_by, Source::Env("GOPROXY_CONFIG"));

        let loaded = load_with(
            &flags(&["-config", &from_flag]),
            &[("GOPROXY_CONFIG", &from_env)],
        )
        .unwrap();
        assert_eq!(loaded.settings.retry_attempts, 8);
        assert_eq!(loaded.config_file.unwrap().named_by, Source::Flag("config"));
    }

    #[test]
    fn yaml_in_the_old_projects_shape() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "goproxy.yaml",
            "# written for the Go version\n\
             port: \"12345\"\n\
             cache_dir: /var/cache/goproxy\n\
             upstreams:\n  - https://goproxy.io/\n  - https://proxy.golang.org\n\
             retry_attempts: 2\n\
             retry_backoff: 250ms\n\
             list_ttl: 1h30m\n\
             negative_ttl: 30d\n\
             log_level: off\n\
             log_format: ~\n",
        );
        let loaded = load_with(&flags(&["--config", &file]), &[]).unwrap();
        let s = &loaded.settings;
        assert_eq!(s.listen, "0.0.0.0:12345");
        assert_eq!(loaded.source(Key::Port), &Source::File(file.clone().into()));
        assert_eq!(s.cache_dir, Path::new("/var/cache/goproxy"));
        let upstreams: Vec<&str> = s.upstreams.iter().map(url::Url::as_str).collect();
        assert_eq!(
            upstreams,
            ["https://goproxy.io/", "https://proxy.golang.org/"]
        );
        assert_eq!(s.retry_attempts, 2);
        assert_eq!(s.retry_backoff, Duration::from_millis(250));
        assert_eq!(s.list_ttl, Duration::from_secs(5400));
        assert_eq!(s.negative_ttl, Duration::from_secs(30 * 86_400));
        // YAML 1.1 would have made this `false`.
        assert_eq!(s.log_level, "off");
        assert_eq!(s.log_format, LogFormat::Text);
        assert_eq!(loaded.source(Key::LogFormat), &Source::Default);
    }

    #[test]
    fn json_with_numbers_and_comma_string_upstreams() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "c.JSON",
            r#"{"port": 8081, "upstreams": "https://a.example, https://b.example/x/", "upstream_timeout": "1.5h", "log_format": "json"}"#,
        );
        let s = load_with(&flags(&["--config", &file]), &[])
            .unwrap()
            .settings;
        assert_eq!(s.listen, "0.0.0.0:8081");
        let upstreams: Vec<&str> = s.upstreams.iter().map(url::Url::as_str).collect();
        assert_eq!(upstreams, ["https://a.example/", "https://b.example/x"]);
        assert_eq!(s.upstream_timeout, Duration::from_secs(5400));
        assert_eq!(s.log_format, LogFormat::Json);
    }

    #[test]
    fn empty_yaml_file_sets_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "c.yaml", "# nothing yet\n");
        let loaded = load_with(&flags(&["--config", &file]), &[]).unwrap();
        assert_eq!(loaded.settings.listen, "0.0.0.0:12345");
        assert!(loaded.config_file.is_some());
    }

    #[test]
    fn listen_and_port() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "c.yaml", "listen: 127.0.0.1:8080\nport: 9000\n");
        let with_file = flags(&["--config", &file]);
        let listen =
            |args: &CliArgs, vars: &[(&str, &str)]| load_with(args, vars).unwrap().settings.listen;
        // Same layer: listen wins.
        assert_eq!(listen(&with_file, &[]), "127.0.0.1:8080");
        assert_eq!(
            listen(&flags(&[]), &[("LISTEN", "[::1]:1"), ("PORT", "2")]),
            "[::1]:1"
        );
        assert_eq!(
            listen(&flags(&["--listen", "[::1]:1", "--port", "2"]), &[]),
            "[::1]:1"
        );
        // A port at a higher layer replaces only listen's port.
        assert_eq!(listen(&with_file, &[("PORT", "3000")]), "127.0.0.1:3000");
        assert_eq!(
            listen(&flags(&["--port", "0"]), &[("LISTEN", "[::1]:1")]),
            "[::1]:0"
        );
        // A port below listen is ignored.
        assert_eq!(
            listen(&with_file, &[("LISTEN", "localhost:1")]),
            "localhost:1"
        );
        assert_eq!(
            listen(&flags(&["--listen", ":7"]), &[("PORT", "3")]),
            "0.0.0.0:7"
        );
        // Port alone.
        assert_eq!(listen(&flags(&["-port", "0"]), &[]), "0.0.0.0:0");
    }

    #[test]
    fn file_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "goproxy.yaml",
                "upstream: https://x.example\n",
                // The list goes on with every key (it is `Key::ALL`).
                r#": unknown key "upstream" (expected one of: port, listen, cache_dir, upstreams, retry_attempts,"#,
            ),
            (
                "x.json",
                r#"{"retry_backoff": "fast"}"#,
                r#": retry_backoff: invalid duration "fast" (expected e.g. 100ms, 2s, 1m30s)"#,
            ),
            (
                "x.json",
                r#"{"upstream_timeout": "0s"}"#,
                r#": upstream_timeout: invalid duration "0s" (expected a duration above zero, e.g. 10s, 1m30s)"#,
            ),
            (
                "x.yaml",
                "port: [1, 2]\n",
                ": port: invalid value [1,2] (expected a port number 0–65535)",
            ),
            (
                "x.yaml",
                "cache_dir: true\n",
                ": cache_dir: invalid value true (expected a directory path)",
            ),
            (
                "x.yaml",
                "upstreams: []\n",
                ": upstreams: no upstream URL given (expected absolute http or https URLs",
            ),
            (
                "x.yaml",
                "progress: fancy\n",
                r#": progress: invalid value "fancy" (expected auto, bars, lines or off)"#,
            ),
            (
                "x.yaml",
                "log_format: xml\n",
                r#": log_format: invalid value "xml" (expected text or json)"#,
            ),
            (
                "x.yaml",
                "listen: 8080\n",
                r#": listen: invalid value "8080" (expected host:port, e.g."#,
            ),
            (
                "x.yaml",
                "- port\n",
                ": expected a mapping of keys to values at the top level",
            ),
            (
                "x.yaml",
                "port: [\n",
                ": unclosed bracket '[' at line 1, column 7",
            ),
            (
                "x.json",
                "{\"port\": }",
                ": expected value at line 1 column 10",
            ),
            (
                "x.yaml",
                "port: 1\nport: 2\n",
                ": duplicate mapping key: port at line 2, column 1",
            ),
        ];
        for (name, text, want) in cases {
            let file = write(dir.path(), name, text);
            let got = error(&flags(&["--config", &file]), &[]);
            let want = format!("config file {file}{want}");
            assert!(got.starts_with(&want), "\n got: {got}\nwant: {want}");
        }
    }

    #[test]
    fn prefetch_is_a_switch_a_file_may_set_with_a_boolean() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "c.yaml", "prefetch: true\n");
        assert!(
            load_with(&flags(&["--config", &file]), &[])
                .unwrap()
                .settings
                .prefetch
        );
        let json = write(dir.path(), "c.json", r#"{"prefetch": "on"}"#);
        assert!(
            load_with(&flags(&["--config", &json]), &[])
                .unwrap()
                .settings
                .prefetch
        );
        let off = load_with(&flags(&["--config", &file]), &[("PREFETCH", "off")]).unwrap();
        assert!(!off.settings.prefetch);
        let got = error(&flags(&["--prefetch", "sometimes"]), &[]);
        assert!(
            got.contains("prefetch: invalid value \"sometimes\" (expected on or off)"),
            "{got}"
        );
    }

    #[test]
    fn a_bad_file_value_fails_even_when_overridden() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "c.yaml", "retry_attempts: none\n");
        let got = error(&flags(&["--config", &file, "--retry-attempts", "2"]), &[]);
        assert!(
            got.contains("retry_attempts: invalid value \"none\""),
            "{got}"
        );
    }

    #[test]
    fn missing_and_unsupported_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.yaml");
        let missing = missing.to_str().unwrap();
        assert_eq!(
            error(&flags(&["--config", missing]), &[]),
            format!("config file {missing}: not found (named by flag --config)")
        );
        assert_eq!(
            error(&flags(&[]), &[("GOPROXY_CONFIG", missing)]),
            format!("config file {missing}: not found (named by env GOPROXY_CONFIG)")
        );
        let toml = write(dir.path(), "goproxy.toml", "port = 1\n");
        assert_eq!(
            error(&flags(&["--config", &toml]), &[]),
            format!(
                "config file {toml}: unsupported file type (expected a .yaml, .yml or .json file)"
            )
        );
    }

    #[test]
    fn env_and_flag_errors() {
        type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
        let cases: [Case; 7] = [
            (
                &[],
                &[("RETRY_ATTEMPTS", "three")],
                r#"environment variable RETRY_ATTEMPTS: invalid value "three" (expected a whole number ≥ 1)"#,
            ),
            (
                &["--retry-attempts", "0"],
                &[],
                r#"flag --retry-attempts: invalid value "0" (expected a whole number ≥ 1)"#,
            ),
            (
                &[],
                &[("LIST_TTL", "5 minutes")],
                r#"environment variable LIST_TTL: invalid duration "5 minutes" (expected e.g. 100ms, 2s, 1m30s)"#,
            ),
            (
                &["-port", "70000"],
                &[],
                r#"flag --port: invalid value "70000" (expected a port number 0–65535)"#,
            ),
            (
                &[],
                &[("LISTEN", "::1:80")],
                r#"environment variable LISTEN: invalid value "::1:80" (expected host:port, e.g. 0.0.0.0:12345, 127.0.0.1:8080 or [::1]:8080)"#,
            ),
            (
                &["--upstream", " , "],
                &[],
                "flag --upstream: no upstream URL given (expected absolute http or https URLs \
                 without query or fragment, comma-separated, e.g. https://proxy.golang.org)",
            ),
            (
                &[],
                &[("UPSTREAM_PROXY", "https://a.example,direct")],
                r#"environment variable UPSTREAM_PROXY: invalid upstream URL "direct" (relative URL without a base; expected"#,
            ),
        ];
        for (args, vars, want) in cases {
            let got = error(&flags(args), vars);
            assert!(got.starts_with(want), "\n got: {got}\nwant: {want}");
        }
    }

    #[test]
    fn private_upstreams_and_auth_from_a_yaml_file() {
        let dir = tempfile::tempdir().unwrap();
        let netrc = write(
            dir.path(),
            "netrc",
            "machine git.example login ci password from-netrc\n",
        );
        let file = write(
            dir.path(),
            "goproxy.yaml",
            "private_upstreams:\n\
             \x20 - pattern: \"*.corp.example.com,rsc.io/private\"\n\
             \x20   url: https://nexus.example/repository/go/\n\
             \x20   auth: {type: bearer, value: \"${NEXUS_TOKEN}\"}\n\
             \x20 - git.example/team=https://git.example/go\n\
             gonoproxy: none\n\
             auth_tokens: [\"sha256:1a7674eb4ee78df7e1ac439a93c3fa8e3c945784d4dec9fd8e3011738b2f1d62\"]\n\
             auth_users:\n\
             \x20 - name: alice\n\
             \x20   password_hash: $argon2id$v=19$m=19456,t=2,p=1$d+uwN1a15JWTgq2mp7udOQ$rz2YtkFsM988bzYazTqmSr6qbhS+ERzpv813dAPTufY\n\
             auth_require: private\n",
        );
        let vars = [("NEXUS_TOKEN", "nx-secret"), ("NETRC", netrc.as_str())];
        let loaded = load_with(&flags(&["--config", &file]), &vars).unwrap();
        let s = &loaded.settings;
        assert_eq!(s.private_upstreams.len(), 2);
        assert_eq!(
            s.private_upstreams[0].auth,
            Some(crate::config::UpstreamAuth::Bearer(
                crate::config::Secret::new("nx-secret")
            ))
        );
        assert_eq!(s.private_upstreams[1].credentials, CredentialSource::Netrc);
        assert!(s.is_private("git.corp.example.com/x") && s.is_private("rsc.io/private"));
        assert_eq!(
            s.private_upstream("git.example/team/y")
                .unwrap()
                .url
                .as_str(),
            "https://git.example/go"
        );
        assert_eq!(s.noproxy().to_string(), "none");
        assert_eq!(s.auth_tokens.len(), 1);
        assert_eq!(s.auth_users[0].name, "alice");
        assert_eq!(s.auth_require, crate::config::AuthRequire::Private);
        assert_eq!(loaded.source(Key::Netrc), &Source::Env("NETRC"));
        let shown = crate::config::render(&loaded);
        assert!(
            !shown.contains("nx-secret") && !shown.contains("from-netrc"),
            "{shown}"
        );
        assert!(
            shown.contains("[bearer ***]") && shown.contains("[basic ci:*** from netrc]"),
            "{shown}"
        );
        assert!(!format!("{loaded:?}").contains("nx-secret"));

        // Unset variables are named, never guessed at.
        let got = error(&flags(&["--config", &file]), &[]);
        assert!(
            got.contains("private_upstreams: entry 1: auth.value: environment variable NEXUS_TOKEN is not set"),
            "{got}"
        );
    }

    #[test]
    fn the_home_netrc_is_the_default_and_a_named_one_must_be_readable() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            ".netrc",
            "machine git.example login me password pw\n",
        );
        let home = dir.path().to_str().unwrap();
        let args = flags(&["--private-upstreams", "git.example=https://git.example"]);
        let loaded = load_with(&args, &[("HOME", home)]).unwrap();
        assert_eq!(loaded.settings.netrc, Some(dir.path().join(".netrc")));
        assert_eq!(
            loaded.settings.private_upstreams[0].credentials,
            CredentialSource::Netrc
        );
        // No HOME, no .netrc: no credentials, and no error.
        let loaded = load_with(&args, &[]).unwrap();
        assert_eq!(
            loaded.settings.private_upstreams[0].credentials,
            CredentialSource::None
        );

        let missing = dir.path().join("nope");
        let missing = missing.to_str().unwrap();
        let got = error(&args, &[("NETRC", missing)]);
        assert!(
            got.starts_with(&format!(
                "netrc file {missing} (env NETRC): cannot be read: "
            )),
            "{got}"
        );
        // Not read when nothing needs it.
        assert!(load_with(&flags(&[]), &[("NETRC", missing)]).is_ok());
    }

    #[test]
    fn mappings_under_other_keys_are_not_quoted_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "c.yaml",
            "upstreams:\n  - url: https://x.example\n    auth: {type: bearer, value: hunter2}\n",
        );
        let got = error(&flags(&["--config", &file]), &[]);
        assert!(
            got.contains("upstreams: invalid value (a list of mappings)"),
            "{got}"
        );
        assert!(!got.contains("hunter2"), "{got}");
    }

    #[test]
    fn upstream_passwords_never_reach_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "c.yaml",
            "upstreams: [https://me:hunter2@corp.example/?q]\n",
        );
        let from_file = error(&flags(&["--config", &file]), &[]);
        let broken = write(
            dir.path(),
            "b.yaml",
            "upstreams: https://me:hunter2@corp.example\n  x: [\n",
        );
        let from_syntax = error(&flags(&["--config", &broken]), &[]);
        let from_flag = error(
            &flags(&["--upstream", "ftp://me:hunter2@corp.example"]),
            &[],
        );
        for got in [from_file, from_syntax, from_flag] {
            assert!(!got.contains("hunter2") && !got.contains("me:"), "{got}");
        }
    }
}
