//! `/sumdb/<name>/...`: the checksum database served to clients behind the proxy,
//! for the configured database and any extra `proxied_sumdbs`. Every other name
//! gets 404, so clients fall through and the proxy is no open relay. Lookups and
//! tiles are immutable and cached (a partial tile is kept byte for byte, never
//! resized); `latest` is kept for a few seconds only.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Mutex;

use super::client::SumDb;
use super::remote::Remote;
use super::tlog::Tile;
use crate::gomod::pattern::PrefixPatterns;
use crate::gomod::version::{RequestedVersion, parse_escaped_version};
use crate::gomod::{ModulePath, Version};
use crate::storage::{PutMode, Storage};
use crate::upstream::UrlError;

/// How long a fetched `latest` is reused.
const LATEST_TTL: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum SumDbProxyError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unavailable(String),
}

pub struct SumDbResponse {
    pub body: Bytes,
    pub content_type: &'static str,
    pub cache_control: &'static str,
}

pub struct SumDbProxy {
    remotes: Vec<Arc<Remote>>,
    /// The verifying client of the configured database. Its cache (lookups and
    /// tiles under `sumdb/<name>/`) holds only verified data, so answers relayed
    /// for that database are cached only once verified.
    verifier: Option<Arc<SumDb>>,
    storage: Arc<dyn Storage>,
    /// Modules whose names must not reach a public checksum database.
    private: Vec<PrefixPatterns>,
    latest: Mutex<HashMap<String, (Instant, Bytes)>>,
}

impl SumDbProxy {
    pub fn new(
        remotes: Vec<Arc<Remote>>,
        verifier: Option<Arc<SumDb>>,
        storage: Arc<dyn Storage>,
        private: Vec<PrefixPatterns>,
    ) -> Self {
        SumDbProxy {
            remotes,
            verifier,
            storage,
            private,
            latest: Mutex::new(HashMap::new()),
        }
    }

    /// Serves `rest`, the request path after `/sumdb/`.
    pub async fn handle(&self, rest: &str) -> Result<SumDbResponse, SumDbProxyError> {
        // Names may contain '/', so match whole configured names, longest first.
        let remote = self
            .remotes
            .iter()
            .filter(|r| {
                rest.len() > r.name().len()
                    && rest.starts_with(r.name())
                    && rest.as_bytes()[r.name().len()] == b'/'
            })
            .max_by_key(|r| r.name().len())
            .ok_or_else(|| {
                SumDbProxyError::NotFound(
                    "this proxy does not serve that checksum database".to_owned(),
                )
            })?;
        let sub = &rest[remote.name().len() + 1..];
        match sub {
            "supported" => self.supported(remote).await,
            "latest" => self.latest(remote).await.map(|body| text(body, "no-cache")),
            _ if sub.starts_with("lookup/") => self.lookup(remote, sub).await,
            _ if sub.starts_with("tile/") => self.tile(remote, sub).await,
            _ => Err(SumDbProxyError::NotFound(format!(
                "unknown checksum database endpoint {sub:?}"
            ))),
        }
    }

    /// 200 only when the database can really be used through this proxy (it
    /// answers now, or earlier answers are cached); never 5xx, which would stop
    /// clients from falling back.
    async fn supported(&self, remote: &Remote) -> Result<SumDbResponse, SumDbProxyError> {
        if self.latest(remote).await.is_ok() || self.has_cached(remote).await {
            return Ok(text(Bytes::new(), "no-cache"));
        }
        Err(SumDbProxyError::NotFound(format!(
            "checksum database {} is not reachable from this proxy",
            remote.name()
        )))
    }

    async fn has_cached(&self, remote: &Remote) -> bool {
        let prefix = format!("sumdb/{}/tile/", remote.name());
        matches!(self.storage.list(&prefix).await, Ok(keys) if !keys.is_empty())
    }

    async fn latest(&self, remote: &Remote) -> Result<Bytes, SumDbProxyError> {
        let mut cache = self.latest.lock().await;
        if let Some((at, body)) = cache.get(remote.name())
            && at.elapsed() < LATEST_TTL
        {
            return Ok(body.clone());
        }
        match remote.get("latest").await {
            Ok(body) => {
                cache.insert(remote.name().to_owned(), (Instant::now(), body.clone()));
                Ok(body)
            }
            Err(e) => Err(unavailable(remote, e)),
        }
    }

    async fn lookup(&self, remote: &Remote, sub: &str) -> Result<SumDbResponse, SumDbProxyError> {
        let target = &sub["lookup/".len()..];
        let (escaped_path, escaped_version) = target.rsplit_once('@').ok_or_else(|| {
            SumDbProxyError::BadRequest(format!(
                "malformed lookup {target:?}: expected <module>@<version>"
            ))
        })?;
        let module = ModulePath::from_escaped(escaped_path)
            .map_err(|e| SumDbProxyError::BadRequest(e.to_string()))?;
        let version = match parse_escaped_version(&module, escaped_version) {
            Ok(RequestedVersion::Canonical(v)) => v,
            Ok(RequestedVersion::Query(q)) => {
                return Err(SumDbProxyError::BadRequest(format!(
                    "{module}@{}: not a canonical version",
                    q.as_str()
                )));
            }
            Err(e) => return Err(SumDbProxyError::BadRequest(e.to_string())),
        };
        if self.private.iter().any(|p| p.matches(module.as_str())) {
            return Err(SumDbProxyError::Forbidden(format!(
                "{module} is private here (GOPRIVATE/GONOSUMDB/GONOPROXY or a private upstream): \
                 it is never looked up in a public checksum database; \
                 set GONOSUMDB or GOPRIVATE for it on the client too"
            )));
        }
        self.immutable(remote, sub, Some((&module, &version)))
            .await
            .map(|body| text(body, "public, max-age=86400"))
    }

    async fn tile(&self, remote: &Remote, sub: &str) -> Result<SumDbResponse, SumDbProxyError> {
        Tile::parse_path(sub)
            .map_err(|e| SumDbProxyError::BadRequest(format!("invalid tile path {sub:?}: {e}")))?;
        let body = self.immutable(remote, sub, None).await?;
        Ok(SumDbResponse {
            body,
            content_type: "application/octet-stream",
            cache_control: "public, max-age=86400",
        })
    }

    /// A cached copy, or the database's answer, cached for next time.
    async fn immutable(
        &self,
        remote: &Remote,
        sub: &str,
        lookup: Option<(&ModulePath, &Version)>,
    ) -> Result<Bytes, SumDbProxyError> {
        let key = format!("sumdb/{}/{sub}", remote.name());
        if let Ok(Some(object)) = self.storage.get(&key).await
            && let Ok(body) = crate::storage::read_all(object).await
        {
            return Ok(body);
        }
        let body = match remote.get(sub).await {
            Ok(body) => body,
            Err(UrlError::NotFound(status)) => {
                return Err(SumDbProxyError::NotFound(format!(
                    "checksum database {} answered {status} for {sub}",
                    remote.name()
                )));
            }
            Err(e) => return Err(unavailable(remote, e)),
        };
        if self.may_cache(remote, lookup, &body).await
            && let Err(e) = self
                .storage
                .put_bytes(&key, body.clone(), PutMode::IfAbsent)
                .await
        {
            tracing::warn!(error = %e, "could not cache a checksum database answer");
        }
        Ok(body)
    }

    /// For the database this proxy verifies against, its cache is the verifying
    /// client's and holds only verified data: a relayed lookup is cached once it
    /// verifies, and tiles only when the client has authenticated them itself.
    /// Answers of other proxied databases (whose keys the proxy does not know)
    /// are cached as served; clients verify them.
    async fn may_cache(
        &self,
        remote: &Remote,
        lookup: Option<(&ModulePath, &Version)>,
        body: &[u8],
    ) -> bool {
        let Some(verifier) = self.verifier.as_ref().filter(|v| v.name() == remote.name()) else {
            return true;
        };
        let Some((module, version)) = lookup else {
            return false;
        };
        // Verified, and the record of the module asked about (not a swapped answer).
        let verified = match verifier.verify_lookup(body).await {
            Ok(record) => verifier.hashes_of(record, module, version).map(|_| ()),
            Err(e) => Err(e),
        };
        match verified {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(sumdb = %remote.name(), module = %module, version = %version, error = %e, "relayed a checksum database answer that does not verify; not caching it");
                false
            }
        }
    }
}

fn text(body: Bytes, cache_control: &'static str) -> SumDbResponse {
    SumDbResponse {
        body,
        content_type: "text/plain; charset=utf-8",
        cache_control,
    }
}

fn unavailable(remote: &Remote, e: UrlError) -> SumDbProxyError {
    SumDbProxyError::Unavailable(format!(
        "checksum database {} is unreachable: {e}",
        remote.name()
    ))
}
