//! Routing by module path. A module matching a private upstream's patterns is
//! fetched from that upstream alone, with its credentials on every request
//! (retries included): never from the public list, so a private name cannot
//! leak there through a fallback. A module matching GONOPROXY without a
//! private upstream is fetched from nowhere. Everything else goes to the
//! public upstreams in order.

use std::fmt;

use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};

use super::{UpstreamBase, UpstreamError};
use crate::config::private::CredentialSource;
use crate::config::{PrivateUpstream, Settings, UpstreamAuth};
use crate::gomod::pattern::PrefixPatterns;

/// One header that authenticates requests to a private upstream. Its value is
/// marked sensitive (kept out of HTTP/2 header compression tables) and never
/// printed.
#[derive(Clone)]
pub struct Credential {
    pub name: HeaderName,
    pub value: HeaderValue,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ***", self.name)
    }
}

/// Where the upstreams of one module are.
#[derive(Debug)]
pub enum Route<'a> {
    /// The first private upstream whose patterns match, alone.
    Private(&'a UpstreamBase),
    /// The public upstreams, in order.
    Public(&'a [UpstreamBase]),
    /// GONOPROXY (or GOPRIVATE) without a private upstream: fetched nowhere.
    Refused,
}

/// The private upstreams in configured order, each with its patterns.
pub(super) struct PrivateBases {
    entries: Vec<(PrefixPatterns, UpstreamBase)>,
    noproxy: PrefixPatterns,
}

impl PrivateBases {
    pub(super) fn new(settings: &Settings) -> Result<Self, UpstreamError> {
        let entries = settings
            .private_upstreams
            .iter()
            .map(|upstream| Ok((upstream.patterns.clone(), base(upstream)?)))
            .collect::<Result<_, UpstreamError>>()?;
        Ok(PrivateBases {
            entries,
            noproxy: settings.noproxy().clone(),
        })
    }

    pub(super) fn route<'a>(&'a self, module: &str, public: &'a [UpstreamBase]) -> Route<'a> {
        if let Some((_, base)) = self.entries.iter().find(|(p, _)| p.matches(module)) {
            Route::Private(base)
        } else if self.noproxy.matches(module) {
            Route::Refused
        } else {
            Route::Public(public)
        }
    }
}

/// Scheme, host and port: what a credential is scoped to.
type Origin = (String, Option<String>, Option<u16>);

fn origin(url: &url::Url) -> Origin {
    (
        url.scheme().to_owned(),
        url.host_str().map(str::to_owned),
        url.port_or_known_default(),
    )
}

/// reqwest drops `Authorization` when a redirect changes origin, but not a
/// header of our own (`auth.type: header`). So the client hands back a
/// redirect that leaves a credentialed private upstream's origin, and
/// `attempt::run` follows it without the credential.
pub(super) struct RedirectGuard(Vec<Origin>);

impl RedirectGuard {
    pub(super) fn new(settings: &Settings) -> Self {
        RedirectGuard(
            settings
                .private_upstreams
                .iter()
                .filter(|upstream| upstream.credentials != CredentialSource::None)
                .map(|upstream| origin(&upstream.url))
                .collect(),
        )
    }

    /// Whether the client must stop before going from `previous` (the request's
    /// URLs so far, the first one included) to `next`.
    pub(super) fn stops(&self, previous: &[url::Url], next: &url::Url) -> bool {
        match (previous.first(), previous.last()) {
            (Some(first), Some(last)) => {
                self.0.contains(&origin(first)) && origin(last) != origin(next)
            }
            _ => false,
        }
    }
}

/// The upstream with its credentials as a header. Credentials written in the
/// URL become the same `Authorization: Basic` header and leave the URL, so
/// every credential is handled (and kept from redirects) one way.
fn base(upstream: &PrivateUpstream) -> Result<UpstreamBase, UpstreamError> {
    let mut url = upstream.url.clone();
    let invalid = |what: &str| {
        UpstreamError::Client(format!(
            "private upstream {}: {what}",
            crate::config::redact_url(&upstream.url)
        ))
    };
    let credential = match (&upstream.auth, upstream.credentials) {
        (Some(auth), _) => {
            Some(header(auth).ok_or_else(|| invalid("its credential is not a valid header"))?)
        }
        (None, CredentialSource::Url) => {
            let user = percent_decode(url.username());
            let password = url.password().map(percent_decode).unwrap_or_default();
            // Only fails for URLs without a host, which were refused earlier.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            Some(
                basic(&user, &password)
                    .ok_or_else(|| invalid("its credential is not a valid header"))?,
            )
        }
        (None, _) => None,
    };
    let mut base = UpstreamBase::new(url);
    // The display keeps saying that credentials are in play.
    base.display = crate::config::redact_url(&upstream.url);
    base.credential = credential;
    Ok(base)
}

fn header(auth: &UpstreamAuth) -> Option<Credential> {
    match auth {
        UpstreamAuth::Basic { user, password } => basic(user, password.expose()),
        UpstreamAuth::Bearer(token) => {
            sensitive(AUTHORIZATION, &format!("Bearer {}", token.expose()))
        }
        UpstreamAuth::Header { name, value } => sensitive(
            HeaderName::from_bytes(name.as_bytes()).ok()?,
            value.expose(),
        ),
    }
}

fn basic(user: &str, password: &str) -> Option<Credential> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    sensitive(AUTHORIZATION, &format!("Basic {encoded}"))
}

fn sensitive(name: HeaderName, value: &str) -> Option<Credential> {
    let mut value = HeaderValue::from_str(value).ok()?;
    value.set_sensitive(true);
    Some(Credential { name, value })
}

/// The URL keeps user info percent-encoded; the header carries it decoded.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn private(patterns: &str, url: &str, auth: Option<UpstreamAuth>) -> PrivateUpstream {
        let url = url::Url::parse(url).unwrap();
        let credentials = match (&auth, url.username().is_empty()) {
            (Some(_), _) => CredentialSource::Config,
            (None, false) => CredentialSource::Url,
            (None, true) => CredentialSource::None,
        };
        PrivateUpstream {
            patterns: PrefixPatterns::parse(patterns).unwrap(),
            url,
            auth,
            credentials,
        }
    }

    fn settings(
        private_upstreams: Vec<PrivateUpstream>,
        goprivate: &str,
        gonoproxy: &str,
    ) -> Settings {
        Settings {
            private_upstreams,
            goprivate: PrefixPatterns::parse(goprivate).unwrap(),
            gonoproxy: PrefixPatterns::parse(gonoproxy).unwrap(),
            ..Settings::default()
        }
    }

    fn routed(bases: &PrivateBases, module: &str) -> String {
        match bases.route(module, &[]) {
            Route::Private(base) => base.display.clone(),
            Route::Public(_) => "public".to_owned(),
            Route::Refused => "refused".to_owned(),
        }
    }

    #[test]
    fn first_match_then_gonoproxy_then_public() {
        let s = settings(
            vec![
                private("*.corp.example", "https://a.example", None),
                private(
                    "git.corp.example/team,other.example",
                    "https://b.example",
                    None,
                ),
            ],
            "*.secret.example",
            "",
        );
        let bases = PrivateBases::new(&s).unwrap();
        assert_eq!(
            routed(&bases, "git.corp.example/team/x"),
            "https://a.example"
        );
        assert_eq!(routed(&bases, "other.example/y"), "https://b.example");
        assert_eq!(routed(&bases, "x.secret.example/z"), "refused");
        assert_eq!(routed(&bases, "rsc.io/quote"), "public");

        // GONOPROXY replaces GOPRIVATE for routing, as in the go command.
        let s = settings(vec![], "*.secret.example", "none");
        let bases = PrivateBases::new(&s).unwrap();
        assert_eq!(routed(&bases, "x.secret.example/z"), "public");
        assert!(s.is_private("x.secret.example/z"));
        let s = settings(vec![], "", "rsc.io/private");
        assert_eq!(
            routed(&PrivateBases::new(&s).unwrap(), "rsc.io/private/x"),
            "refused"
        );
    }

    #[test]
    fn every_credential_becomes_one_sensitive_header() {
        let cases = [
            (
                private(
                    "a",
                    "https://x.example",
                    Some(UpstreamAuth::Basic {
                        user: "ci".into(),
                        password: Secret::new("p:w"),
                    }),
                ),
                "authorization",
                "Basic Y2k6cDp3",
            ),
            (
                private(
                    "a",
                    "https://x.example",
                    Some(UpstreamAuth::Bearer(Secret::new("tok"))),
                ),
                "authorization",
                "Bearer tok",
            ),
            (
                private(
                    "a",
                    "https://x.example",
                    Some(UpstreamAuth::Header {
                        name: "Private-Token".into(),
                        value: Secret::new("glpat"),
                    }),
                ),
                "private-token",
                "glpat",
            ),
            (
                private("a", "https://ci:p%3Aw@x.example/go", None),
                "authorization",
                "Basic Y2k6cDp3",
            ),
        ];
        for (upstream, name, value) in cases {
            let base = base(&upstream).unwrap();
            let credential = base.credential.clone().expect("a credential");
            assert_eq!(credential.name.as_str(), name);
            assert_eq!(credential.value.to_str().unwrap(), value);
            assert!(credential.value.is_sensitive());
            assert!(base.url.username().is_empty() && base.url.password().is_none());
            let shown = format!("{base:?}");
            assert!(!shown.contains(value), "{shown}");
        }
        assert!(
            base(&private("a", "https://x.example", None))
                .unwrap()
                .credential
                .is_none()
        );
    }

    #[test]
    fn redirects_off_credentialed_origins_are_stopped() {
        let s = settings(
            vec![
                private(
                    "a",
                    "https://nexus.example/go",
                    Some(UpstreamAuth::Bearer(Secret::new("t"))),
                ),
                private("b", "https://open.example/go", None),
            ],
            "",
            "",
        );
        let guard = RedirectGuard::new(&s);
        let url = |u: &str| url::Url::parse(u).unwrap();
        let from_nexus = [url("https://nexus.example/go/a/@v/v1.0.0.zip")];
        assert!(guard.stops(&from_nexus, &url("https://s3.example/bucket/x")));
        assert!(guard.stops(&from_nexus, &url("https://nexus.example:8443/x")));
        assert!(guard.stops(&from_nexus, &url("http://nexus.example/x")));
        assert!(!guard.stops(&from_nexus, &url("https://nexus.example:443/other")));
        let from_open = [url("https://open.example/go/b/@v/list")];
        assert!(!guard.stops(&from_open, &url("https://elsewhere.example/")));
        assert!(!guard.stops(&[], &url("https://elsewhere.example/")));
    }
}
