//! Inbound authentication: who may use the proxy. Once `auth_tokens` or
//! `auth_users` are set, requests need `Authorization: Bearer <token>` or
//! `Authorization: Basic` with a user's password or, under any user name, a
//! token as the password (what a .netrc entry sends). `auth_require: private`
//! limits this to requests that name a private module. The health probes are
//! always open.
//!
//! Tokens are compared as SHA-256 digests in constant time. Passwords are
//! checked with Argon2, which is slow on purpose: a password that passed once
//! is remembered (as a digest) so a busy client does not pay for it on every
//! request, and at most two checks run at once so that guessing cannot take
//! every CPU.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use argon2::password_hash::PasswordVerifier;
use argon2::password_hash::phc::PasswordHash;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use super::ApiError;
use super::route::{self, Route};
use crate::config::{AuthRequire, Settings, TokenHash};
use crate::gomod::ModulePath;

/// Argon2 checks running at once.
const CONCURRENT_PASSWORD_CHECKS: usize = 2;

pub struct Authenticator {
    settings: Arc<Settings>,
    users: Vec<User>,
    hashing: Semaphore,
}

struct User {
    name: String,
    /// None when the configured hash does not parse (it was checked at
    /// startup, so never): nobody can log in as this user then.
    hash: Option<PasswordHash>,
    /// SHA-256 of the password that last passed Argon2 for this user.
    verified: Mutex<Option<[u8; 32]>>,
}

/// Why a request was refused.
enum Denied {
    Missing,
    Invalid { user: Option<String> },
}

impl Authenticator {
    /// None when no tokens or users are configured: authentication is off.
    pub fn new(settings: Arc<Settings>) -> Option<Arc<Authenticator>> {
        if !settings.auth_enabled() {
            return None;
        }
        let users = settings
            .auth_users
            .iter()
            .map(|user| User {
                name: user.name.clone(),
                hash: PasswordHash::new(&user.hash)
                    .inspect_err(|e| tracing::error!(user = %user.name, error = %e, "unusable password hash; this user cannot log in"))
                    .ok(),
                verified: Mutex::new(None),
            })
            .collect();
        Some(Arc::new(Authenticator {
            settings,
            users,
            hashing: Semaphore::new(CONCURRENT_PASSWORD_CHECKS),
        }))
    }

    /// Whether a request for `raw_path` must authenticate.
    fn guards(&self, raw_path: &str) -> bool {
        // The index feed enumerates the cache, private modules included; the
        // status page, its data and the metrics name modules and upstreams.
        if matches!(raw_path, "/index" | "/" | "/api/status" | "/metrics") {
            return true;
        }
        let module = match route::parse(raw_path) {
            Ok(Route::Health | Route::Ready) => return false,
            _ if self.settings.auth_require == AuthRequire::All => return true,
            Ok(Route::Artifact(key)) => key.module,
            Ok(Route::SumDb(rest)) => match lookup_module(&rest) {
                Some(module) => module,
                None => return false,
            },
            // Refused as malformed anyway, naming nothing.
            Err(_) => return false,
        };
        let module = module.as_str();
        // Private modules are guarded whatever else is listed.
        self.settings.is_private(module)
            || matches!(&self.settings.auth_require, AuthRequire::Modules(p) if p.matches(module))
    }

    async fn check(&self, headers: &HeaderMap) -> Result<(), Denied> {
        let Some(value) = headers.get(AUTHORIZATION) else {
            return Err(Denied::Missing);
        };
        let invalid = Err(Denied::Invalid { user: None });
        let Ok(value) = value.to_str() else {
            return invalid;
        };
        let (scheme, credentials) = value.trim().split_once(' ').unwrap_or((value, ""));
        let credentials = credentials.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return if self.is_token(credentials) {
                Ok(())
            } else {
                invalid
            };
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return invalid;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        let Some((name, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
            return invalid;
        };
        // A token as the password: how a .netrc entry carries one.
        if self.is_token(password) {
            return Ok(());
        }
        match self.users.iter().find(|user| user.name == name) {
            Some(user) if self.password_matches(user, password).await => Ok(()),
            _ => Err(Denied::Invalid {
                user: Some(name.to_owned()),
            }),
        }
    }

    fn is_token(&self, token: &str) -> bool {
        if token.is_empty() {
            return false;
        }
        let presented = TokenHash::of(token);
        // Every digest is compared, so the time taken does not tell which.
        let found = self
            .settings
            .auth_tokens
            .iter()
            .fold(subtle::Choice::from(0), |found, known| {
                found | known.0.ct_eq(&presented.0)
            });
        found.into()
    }

    async fn password_matches(&self, user: &User, password: &str) -> bool {
        let Some(hash) = user.hash.clone() else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        let remembered = user.verified.lock().ok().and_then(|slot| *slot);
        if remembered.is_some_and(|known| bool::from(known.ct_eq(&digest))) {
            return true;
        }
        let Ok(_permit) = self.hashing.acquire().await else {
            return false;
        };
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .await
        .unwrap_or(false);
        if ok && let Ok(mut slot) = user.verified.lock() {
            *slot = Some(digest);
        }
        ok
    }

    fn challenge(&self, denied: &Denied) -> Response {
        let message = match denied {
            Denied::Missing => {
                "authentication required: send a bearer token, or basic credentials \
                 (the go command sends those of its .netrc entry for this host, over https)"
            }
            Denied::Invalid { .. } => {
                "authentication failed: unknown user, wrong password or unknown token"
            }
        };
        let mut response = ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
        let headers = response.headers_mut();
        headers.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Basic realm="goproxy", charset="UTF-8""#),
        );
        if !self.settings.auth_tokens.is_empty() {
            headers.append(
                WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="goproxy""#),
            );
        }
        response
    }
}

/// The module of `/sumdb/<name>/lookup/<module>@<version>`, the one sumdb
/// request that names a module.
fn lookup_module(rest: &str) -> Option<ModulePath> {
    let (_, target) = rest.split_once("/lookup/")?;
    let (escaped, _) = target.rsplit_once('@')?;
    ModulePath::from_escaped(escaped).ok()
}

/// The middleware: lets through what needs no credentials or has valid ones,
/// answers 401 with the challenges otherwise.
pub async fn require(
    State(auth): State<Arc<Authenticator>>,
    request: Request,
    next: Next,
) -> Response {
    if !auth.guards(request.uri().path()) {
        return next.run(request).await;
    }
    match auth.check(request.headers()).await {
        Ok(()) => next.run(request).await,
        Err(denied) => {
            let client = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.to_string())
                .unwrap_or_else(|| "-".to_owned());
            let path = request.uri().path();
            match &denied {
                Denied::Missing => {
                    tracing::debug!(%client, %path, "no credentials");
                }
                Denied::Invalid { user } => {
                    tracing::warn!(%client, %path, user = %user.as_deref().unwrap_or("-"), "authentication failed");
                }
            }
            auth.challenge(&denied)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{PrivateUpstream, UserHash, private::CredentialSource};
    use crate::gomod::pattern::PrefixPatterns;

    fn authenticator(require: AuthRequire) -> Arc<Authenticator> {
        let settings = Settings {
            auth_tokens: vec![TokenHash::of("tok-1"), TokenHash::of("tok-2")],
            auth_users: vec![UserHash {
                name: "alice".into(),
                hash: crate::config::auth::hash_password("wonderland").unwrap(),
            }],
            auth_require: require,
            goprivate: PrefixPatterns::parse("secret.example").unwrap(),
            private_upstreams: vec![PrivateUpstream {
                patterns: PrefixPatterns::parse("*.corp.example").unwrap(),
                url: url::Url::parse("https://nexus.example").unwrap(),
                auth: None,
                credentials: CredentialSource::None,
            }],
            ..Settings::default()
        };
        Authenticator::new(Arc::new(settings)).unwrap()
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    fn basic(user: &str, password: &str) -> HeaderMap {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        headers(&format!("Basic {encoded}"))
    }

    #[tokio::test]
    async fn tokens_users_and_tokens_as_passwords() {
        let auth = authenticator(AuthRequire::All);
        let ok = |r: Result<(), Denied>| r.is_ok();
        assert!(ok(auth.check(&headers("Bearer tok-2")).await));
        assert!(ok(auth.check(&headers("bearer   tok-1")).await));
        assert!(ok(auth.check(&basic("anyone", "tok-1")).await));
        assert!(ok(auth.check(&basic("alice", "wonderland")).await));
        // Remembered: the second check does not run Argon2 (and still agrees).
        assert!(ok(auth.check(&basic("alice", "wonderland")).await));
        for refused in [
            headers("Bearer tok-3"),
            headers("Bearer "),
            headers("Token tok-1"),
            headers("Basic !!!"),
            basic("alice", "wrong"),
            basic("bob", "wonderland"),
            basic("alice", ""),
        ] {
            assert!(matches!(
                auth.check(&refused).await,
                Err(Denied::Invalid { .. })
            ));
        }
        assert!(matches!(
            auth.check(&HeaderMap::new()).await,
            Err(Denied::Missing)
        ));
    }

    #[test]
    fn which_requests_are_guarded() {
        let all = authenticator(AuthRequire::All);
        let private = authenticator(AuthRequire::Private);
        let listed = authenticator(AuthRequire::Modules(
            PrefixPatterns::parse("github.com/acme").unwrap(),
        ));
        for open in ["/health", "/healthz", "/readyz"] {
            assert!(!all.guards(open) && !private.guards(open), "{open}");
        }
        // Listed modules, and private ones still.
        assert!(listed.guards("/github.com/acme/tool/@v/list"));
        assert!(listed.guards("/git.corp.example/team/x/@latest"));
        assert!(!listed.guards("/github.com/other/tool/@v/list"));
        assert!(!listed.guards("/sumdb/sum.golang.org/latest"));
        for path in [
            "/rsc.io/quote/@v/list",
            "/sumdb/sum.golang.org/latest",
            "/not/a/path",
            "/..",
        ] {
            assert!(all.guards(path), "{path}");
            assert!(!private.guards(path), "{path}");
        }
        for path in [
            "/git.corp.example/team/x/@v/list",
            "/git.corp.example/team/x/@latest",
            "/git.corp.example/team/x/@v/v1.0.0.zip",
            "/secret.example/@v/master.info",
            "/sumdb/sum.golang.org/lookup/git.corp.example/x@v1.0.0",
        ] {
            assert!(all.guards(path) && private.guards(path), "{path}");
        }
        assert!(!private.guards("/sumdb/sum.golang.org/lookup/rsc.io/quote@v1.5.2"));
        // The index lists every cached module, private ones too.
        for auth in [&all, &private, &listed] {
            assert!(auth.guards("/index"));
        }
    }

    #[test]
    fn challenges_name_both_schemes() {
        let auth = authenticator(AuthRequire::All);
        let response = auth.challenge(&Denied::Missing);
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenges: Vec<&str> = response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(
            challenges,
            [
                r#"Basic realm="goproxy", charset="UTF-8""#,
                r#"Bearer realm="goproxy""#
            ]
        );
    }
}
