//! Which outbound proxy a request goes through.
//!
//! Resolution, highest first: the `proxy` setting (flag, then config file),
//! then the environment: `HTTPS_PROXY` for https targets, `HTTP_PROXY` for http
//! targets, `SOCKS5_PROXY` for targets without one of those (each also in lower
//! case; upper case wins). `proxy: off` ignores the environment. Hosts matching
//! `no_proxy` (flag, `NO_PROXY`/`no_proxy`, or config file) are reached directly
//! whichever way the proxy was chosen, as curl does.
//!
//! The environment ranks below the config file because proxy variables are
//! usually exported machine-wide for other tools, while a config file is written
//! for this service.

use std::fmt;

use url::Url;

pub use super::no_proxy::{EXPECTED_NO_PROXY, NoProxy};
use crate::config::redact_url;

/// A validated proxy URL: `http`, `https`, `socks5` (names resolved here) or
/// `socks5h` (names resolved by the proxy), with optional credentials.
/// `Display` and `Debug` hide the credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl(Url);

pub const EXPECTED_PROXY: &str = "expected off or a URL http://host:port, https://host:port, \
     socks5://host:port or socks5h://host:port, optionally with user:password@";

impl ProxyUrl {
    /// A proxy URL as the `proxy` setting takes it: the scheme is required.
    pub fn parse(text: &str) -> Result<ProxyUrl, String> {
        Self::parse_or(text, None)
    }

    /// A URL from a proxy environment variable: like curl and Go, a bare
    /// `host:port` means `default_scheme://host:port`.
    fn parse_env(text: &str, default_scheme: &str) -> Result<ProxyUrl, String> {
        Self::parse_or(text, Some(default_scheme))
    }

    fn parse_or(text: &str, default_scheme: Option<&str>) -> Result<ProxyUrl, String> {
        let text = text.trim();
        let has_scheme = text.contains("://");
        let mut url = match (has_scheme, default_scheme) {
            (false, Some(scheme)) => Url::parse(&format!("{scheme}://{text}")),
            (false, None) => return Err("it has no scheme".to_owned()),
            (true, _) => Url::parse(text),
        }
        .map_err(|e| match e {
            url::ParseError::RelativeUrlWithoutBase => "it has no scheme".to_owned(),
            e => e.to_string(),
        })?;
        let default_port = match url.scheme() {
            "http" => 80,
            "https" => 443,
            "socks5" | "socks5h" => 1080,
            other => return Err(format!("scheme {other:?} is not supported")),
        };
        if url.host_str().is_none_or(str::is_empty) {
            return Err("it has no host".to_owned());
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err("a proxy URL has no path, query or fragment".to_owned());
        }
        if url.port().is_none() {
            // Written out so every client library connects to the same port.
            let _ = url.set_port(Some(default_port));
        }
        Ok(ProxyUrl(url))
    }

    pub fn url(&self) -> &Url {
        &self.0
    }

    pub fn scheme(&self) -> &str {
        self.0.scheme()
    }

    /// The URL with its credentials, for the HTTP client only.
    fn secret_text(&self) -> String {
        String::from(self.0.clone())
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({self})")
    }
}

/// A proxy taken from an environment variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvProxy {
    pub var: &'static str,
    pub url: ProxyUrl,
}

/// The proxy environment variables, read once at startup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvProxies {
    pub https: Option<EnvProxy>,
    pub http: Option<EnvProxy>,
    /// For targets that have no scheme-specific proxy.
    pub socks5: Option<EnvProxy>,
}

const HTTPS_VARS: [&str; 2] = ["HTTPS_PROXY", "https_proxy"];
const HTTP_VARS: [&str; 2] = ["HTTP_PROXY", "http_proxy"];
const SOCKS5_VARS: [&str; 2] = ["SOCKS5_PROXY", "socks5_proxy"];

/// Every environment variable that can name a proxy, for error messages and docs.
pub const PROXY_ENV_VARS: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "SOCKS5_PROXY",
    "socks5_proxy",
];

impl EnvProxies {
    /// Reads the variables through `env` (blank values count as unset). An
    /// unusable value is an error naming the variable.
    pub fn read(
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<EnvProxies, (&'static str, String)> {
        let first = |vars: [&'static str; 2], default_scheme: &str| {
            let Some((var, text)) = vars
                .into_iter()
                .find_map(|var| env(var).map(|text| (var, text)))
            else {
                return Ok(None);
            };
            match ProxyUrl::parse_env(&text, default_scheme) {
                Ok(url) => Ok(Some(EnvProxy { var, url })),
                Err(reason) => Err((var, invalid_message(&text, &reason))),
            }
        };
        let socks5 = first(SOCKS5_VARS, "socks5")?;
        if let Some(proxy) = &socks5
            && !matches!(proxy.url.scheme(), "socks5" | "socks5h")
        {
            return Err((
                proxy.var,
                format!(
                    "invalid proxy URL \"{}\" (expected socks5://host:port or socks5h://host:port)",
                    proxy.url
                ),
            ));
        }
        Ok(EnvProxies {
            https: first(HTTPS_VARS, "http")?,
            http: first(HTTP_VARS, "http")?,
            socks5,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.https.is_none() && self.http.is_none() && self.socks5.is_none()
    }

    /// The variable whose proxy `https` or `http` targets use.
    fn for_target(&self, https: bool) -> Option<&EnvProxy> {
        let specific = if https { &self.https } else { &self.http };
        specific.as_ref().or(self.socks5.as_ref())
    }

    /// The variables in use, in the order they rank.
    pub fn vars(&self) -> Vec<&'static str> {
        [&self.https, &self.http, &self.socks5]
            .into_iter()
            .flatten()
            .map(|p| p.var)
            .collect()
    }
}

/// The effective proxy choice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxySetting {
    /// `proxy` is not set: the environment decides (possibly no proxy at all).
    Environment(Box<EnvProxies>),
    /// `proxy: off`: direct connections, whatever the environment says.
    Off,
    /// One proxy for every target.
    Url(ProxyUrl),
}

impl Default for ProxySetting {
    fn default() -> Self {
        ProxySetting::Environment(Box::default())
    }
}

impl ProxySetting {
    /// The `proxy` setting's value: `off` or a proxy URL.
    pub fn parse(text: &str) -> Result<ProxySetting, String> {
        let trimmed = text.trim();
        if trimmed.eq_ignore_ascii_case("off") {
            return Ok(ProxySetting::Off);
        }
        ProxyUrl::parse(trimmed)
            .map(ProxySetting::Url)
            .map_err(|reason| invalid_message(text, &reason))
    }

    /// The proxy used for `url`, honouring `no_proxy`; None means direct.
    pub fn proxy_for(&self, url: &Url, no_proxy: &NoProxy) -> Option<&ProxyUrl> {
        if url.host_str().is_some_and(|host| no_proxy.matches(host)) {
            return None;
        }
        match self {
            ProxySetting::Off => None,
            ProxySetting::Url(proxy) => Some(proxy),
            ProxySetting::Environment(env) => env
                .for_target(url.scheme() == "https")
                .map(|found| &found.url),
        }
    }

    /// The proxies for reqwest, most specific first (reqwest takes the first
    /// that matches a request).
    pub fn reqwest_proxies(&self, no_proxy: &NoProxy) -> Result<Vec<reqwest::Proxy>, String> {
        let bypass = || no_proxy.reqwest();
        let build = |make: fn(String) -> reqwest::Result<reqwest::Proxy>, url: &ProxyUrl| {
            make(url.secret_text())
                .map(|proxy| proxy.no_proxy(bypass()))
                .map_err(|e| format!("proxy {url}: {e}"))
        };
        let mut proxies = Vec::new();
        match self {
            ProxySetting::Off => {}
            ProxySetting::Url(url) => proxies.push(build(reqwest::Proxy::all, url)?),
            ProxySetting::Environment(env) => {
                if let Some(p) = &env.https {
                    proxies.push(build(reqwest::Proxy::https, &p.url)?);
                }
                if let Some(p) = &env.http {
                    proxies.push(build(reqwest::Proxy::http, &p.url)?);
                }
                if let Some(p) = &env.socks5 {
                    proxies.push(build(reqwest::Proxy::all, &p.url)?);
                }
            }
        }
        Ok(proxies)
    }
}

/// `off`, `none`, one URL, or which proxy each kind of target gets from the
/// environment; credentials hidden.
impl fmt::Display for ProxySetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxySetting::Off => f.write_str("off"),
            ProxySetting::Url(url) => write!(f, "{url}"),
            ProxySetting::Environment(env) => match (env.for_target(true), env.for_target(false)) {
                (None, None) => f.write_str("none"),
                (Some(s), Some(p)) if s == p => write!(f, "{}", s.url),
                (https, http) => {
                    let show = |p: Option<&EnvProxy>| match p {
                        Some(p) => p.url.to_string(),
                        None => "direct".to_owned(),
                    };
                    write!(f, "https: {}, http: {}", show(https), show(http))
                }
            },
        }
    }
}

fn invalid_message(text: &str, reason: &str) -> String {
    // Parsing failed, so hide anything that may be a password the crude way.
    let shown = match text.trim().rsplit_once('@') {
        Some((before, host)) => match before.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://***@{host}"),
            None => format!("***@{host}"),
        },
        None => text.trim().to_owned(),
    };
    format!("invalid proxy URL {shown:?} ({reason}; {EXPECTED_PROXY})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    fn target(url: &str) -> Url {
        Url::parse(url).unwrap()
    }

    #[test]
    fn proxy_urls() {
        let p = ProxyUrl::parse("socks5h://user:p%40ss@127.0.0.1").unwrap();
        assert_eq!(p.url().port(), Some(1080));
        assert_eq!(p.url().password(), Some("p%40ss"));
        assert_eq!(p.to_string(), "socks5h://***@127.0.0.1:1080");
        assert!(!format!("{p:?}").contains("p%40ss"));
        assert_eq!(
            ProxyUrl::parse("http://proxy.corp:3128/")
                .unwrap()
                .to_string(),
            "http://proxy.corp:3128"
        );
        assert_eq!(
            ProxyUrl::parse("https://proxy.corp")
                .unwrap()
                .url()
                .port_or_known_default(),
            Some(443)
        );
        for (bad, reason) in [
            ("proxy.corp:3128", "it has no scheme"),
            ("proxy.corp", "it has no scheme"),
            ("socks4://p:1080", "scheme \"socks4\" is not supported"),
            ("ftp://p", "scheme \"ftp\" is not supported"),
            ("http://p:99999", "invalid port number"),
            ("http://p:3128/path", "a proxy URL has no path"),
            ("socks5://", "it has no host"),
        ] {
            let error = ProxySetting::parse(bad).unwrap_err();
            assert!(error.contains(reason), "{bad}: {error}");
            assert!(error.ends_with(&format!("; {EXPECTED_PROXY})")), "{error}");
        }
        let error = ProxySetting::parse("socks4://me:hunter2@p:1080").unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");
        assert!(error.contains("\"socks4://***@p:1080\""), "{error}");
        assert_eq!(ProxySetting::parse(" OFF ").unwrap(), ProxySetting::Off);
    }

    #[test]
    fn environment_picks_per_target_scheme() {
        let read = |vars: &[(&str, &str)]| EnvProxies::read(&env(vars));
        let got = read(&[
            ("HTTPS_PROXY", "http://alice:s3cret@secure.corp:3128"),
            ("http_proxy", "plain.corp:8080"),
            ("HTTP_PROXY", "http://upper.corp:8080"),
            ("socks5_proxy", "socks.corp"),
        ])
        .unwrap();
        let setting = ProxySetting::Environment(Box::new(got.clone()));
        let none = NoProxy::default();
        let via = |url: &str| {
            setting
                .proxy_for(&target(url), &none)
                .map(ToString::to_string)
        };
        assert_eq!(
            via("https://proxy.golang.org").as_deref(),
            Some("http://***@secure.corp:3128")
        );
        // Upper case wins over lower case, as in Go.
        assert_eq!(
            via("http://x.example").as_deref(),
            Some("http://upper.corp:8080")
        );
        assert_eq!(
            got.socks5.unwrap().url.to_string(),
            "socks5://socks.corp:1080"
        );
        assert_eq!(
            setting.to_string(),
            "https: http://***@secure.corp:3128, http: http://upper.corp:8080"
        );

        // SOCKS5_PROXY covers what has no scheme-specific proxy.
        let only_socks = ProxySetting::Environment(Box::new(
            read(&[("SOCKS5_PROXY", "socks5h://127.0.0.1:1080")]).unwrap(),
        ));
        assert_eq!(
            only_socks
                .proxy_for(&target("http://a.example"), &none)
                .unwrap()
                .to_string(),
            "socks5h://127.0.0.1:1080"
        );
        assert_eq!(only_socks.to_string(), "socks5h://127.0.0.1:1080");
        let https_only =
            ProxySetting::Environment(Box::new(read(&[("HTTPS_PROXY", "http://p:1")]).unwrap()));
        assert_eq!(
            https_only.proxy_for(&target("http://a.example"), &none),
            None
        );
        assert_eq!(https_only.to_string(), "https: http://p:1, http: direct");
        assert_eq!(ProxySetting::default().to_string(), "none");

        let (var, error) = read(&[("https_proxy", "ftp://me:pw@x")]).unwrap_err();
        assert_eq!(var, "https_proxy");
        assert!(error.contains("ftp://***@x"), "{error}");
        let (var, error) = read(&[("SOCKS5_PROXY", "http://p:1")]).unwrap_err();
        assert_eq!(var, "SOCKS5_PROXY");
        assert!(error.contains("expected socks5://"), "{error}");
    }

    #[test]
    fn no_proxy_applies_to_an_explicit_proxy_too() {
        let setting = ProxySetting::parse("socks5://127.0.0.1:1080").unwrap();
        let np = NoProxy::parse(["internal.example"]).unwrap();
        assert_eq!(
            setting.proxy_for(&target("https://mods.internal.example/x"), &np),
            None
        );
        assert!(
            setting
                .proxy_for(&target("https://proxy.golang.org"), &np)
                .is_some()
        );
        assert_eq!(ProxySetting::Off.proxy_for(&target("http://a"), &np), None);
        assert_eq!(setting.reqwest_proxies(&np).unwrap().len(), 1);
        assert!(ProxySetting::Off.reqwest_proxies(&np).unwrap().is_empty());
    }
}
