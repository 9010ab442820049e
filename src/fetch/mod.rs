//! The miss path: fetch an artifact once (however many requests want it), verify
//! it, and store it atomically; and the decisions around it (fresh, stale,
//! negative) that turn a request into something to serve.

pub mod flight;
pub mod validate;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::cache::{ArtifactKey, ArtifactKind, ExpiringSet, Sidecar};
use crate::config::Settings;
use crate::gomod::version::RequestedVersion;
use crate::gomod::{self, zip::MAX_GO_MOD, zip::MAX_ZIP_FILE};
use crate::storage::{Object, PutMode, Storage, StorageError};
use crate::upstream::{BodyError, Fetched, UpstreamError, Upstreams};
use flight::{Flights, Role};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{name}: not found: {source}")]
    NotFound {
        name: String,
        #[source]
        source: UpstreamError,
    },
    #[error("{name}: not found (remembered for {ttl:?})")]
    NegativeCached { name: String, ttl: Duration },
    #[error("{name}: {source}")]
    Upstream {
        name: String,
        #[source]
        source: UpstreamError,
    },
    #[error("{name}: cache storage failed: {source}")]
    Storage {
        name: String,
        #[source]
        source: StorageError,
    },
    #[error("{name}: internal error: {reason}")]
    Internal { name: String, reason: String },
}

/// How a response was produced, for logs and the `X-Goproxy-Cache` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Miss,
    /// Served from cache after a refresh failed (offline mode).
    Stale,
    Negative,
}

impl CacheOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Stale => "stale",
            CacheOutcome::Negative => "negative",
        }
    }
}

pub struct Resolved {
    pub object: Object,
    pub outcome: CacheOutcome,
}

pub struct Fetcher {
    storage: Arc<dyn Storage>,
    upstreams: Upstreams,
    settings: Arc<Settings>,
    flights: Flights<ArtifactKey, (), FetchError>,
    negative: ExpiringSet<ArtifactKey>,
    /// Mutable entries whose refresh just failed: served stale without asking the
    /// upstreams again until this expires, so an offline proxy answers at once.
    refresh_failed: ExpiringSet<ArtifactKey>,
}

/// How long a failed refresh is remembered: short, so a recovered upstream is seen soon.
const REFRESH_RETRY_AFTER: Duration = Duration::from_secs(10);

impl Fetcher {
    pub fn new(storage: Arc<dyn Storage>, upstreams: Upstreams, settings: Arc<Settings>) -> Self {
        let negative = ExpiringSet::new(settings.negative_ttl);
        let refresh_failed = ExpiringSet::new(REFRESH_RETRY_AFTER);
        Fetcher {
            storage,
            upstreams,
            settings,
            flights: Flights::default(),
            negative,
            refresh_failed,
        }
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    pub fn upstreams(&self) -> &Upstreams {
        &self.upstreams
    }

    /// Produces something to serve for `key`: from cache when it may be used, from
    /// the upstreams otherwise.
    pub async fn resolve(self: &Arc<Self>, key: &ArtifactKey) -> Result<Resolved, FetchError> {
        let skey = key.storage_key();
        let storage_err = |source| FetchError::Storage {
            name: key.display_name(),
            source,
        };
        let cached = self.storage.get(&skey).await.map_err(storage_err)?;
        let stale = match cached {
            Some(object) if key.is_immutable() || self.is_fresh(&object) => {
                return Ok(Resolved {
                    object,
                    outcome: CacheOutcome::Hit,
                });
            }
            Some(object) => Some(object),
            None => None,
        };
        if self.negative.contains(key) {
            return Err(FetchError::NegativeCached {
                name: key.display_name(),
                ttl: self.settings.negative_ttl,
            });
        }
        if let Some(object) = stale {
            if self.refresh_failed.contains(key) {
                return Ok(Resolved {
                    object,
                    outcome: CacheOutcome::Stale,
                });
            }
            return match self.fetch(key).await {
                Ok(()) => self.read_back(key).await,
                Err(err) if matches!(*err, FetchError::Upstream { .. }) => {
                    tracing::warn!(artifact = %key.display_name(), error = %err, "refresh failed; serving the cached copy");
                    self.refresh_failed.insert(key.clone());
                    Ok(Resolved {
                        object,
                        outcome: CacheOutcome::Stale,
                    })
                }
                Err(err) => Err(unshare(err, key)),
            };
        }
        match self.fetch(key).await {
            Ok(()) => self.read_back(key).await,
            Err(err) => Err(unshare(err, key)),
        }
    }

    fn is_fresh(&self, object: &Object) -> bool {
        let age = SystemTime::now()
            .duration_since(object.meta.modified)
            .unwrap_or(Duration::ZERO);
        age < self.settings.list_ttl
    }

    async fn read_back(&self, key: &ArtifactKey) -> Result<Resolved, FetchError> {
        match self.storage.get(&key.storage_key()).await {
            Ok(Some(object)) => Ok(Resolved {
                object,
                outcome: CacheOutcome::Miss,
            }),
            Ok(None) => Err(FetchError::Internal {
                name: key.display_name(),
                reason: "stored artifact disappeared before it could be served".to_owned(),
            }),
            Err(source) => Err(FetchError::Storage {
                name: key.display_name(),
                source,
            }),
        }
    }

    /// Fetches and stores `key`, sharing one upstream fetch among concurrent callers.
    async fn fetch(self: &Arc<Self>, key: &ArtifactKey) -> Result<(), Arc<FetchError>> {
        let this = Arc::clone(self);
        let owned = key.clone();
        let (result, role) = self
            .flights
            .run(
                key.clone(),
                move || async move { this.fetch_and_store(&owned).await },
                || FetchError::Internal {
                    name: String::new(),
                    reason: "the fetch task panicked".to_owned(),
                },
            )
            .await;
        if role == Role::Follower {
            tracing::debug!(artifact = %key.display_name(), "joined an in-flight fetch");
        }
        result
    }

    async fn fetch_and_store(&self, key: &ArtifactKey) -> Result<(), FetchError> {
        let name = key.display_name();
        let path = key.storage_key();
        let started = std::time::Instant::now();
        let outcome = match &key.kind {
            ArtifactKind::Zip(version) => self.fetch_zip(key, version).await,
            _ => self.fetch_small(key).await,
        };
        match outcome {
            Ok(sidecar) => {
                self.negative.remove(key);
                self.refresh_failed.remove(key);
                tracing::info!(artifact = %name, upstream = %sidecar.upstream, bytes = sidecar.size, elapsed_ms = started.elapsed().as_millis() as u64, "fetched");
                // Metadata is a convenience: failing to write it must not fail the fetch.
                if let Err(e) = self
                    .storage
                    .put_bytes(
                        &Sidecar::key_for(&path),
                        sidecar.to_bytes(),
                        PutMode::Overwrite,
                    )
                    .await
                {
                    tracing::warn!(artifact = %name, error = %e, "could not write sidecar metadata");
                }
                Ok(())
            }
            Err(FetchError::Upstream {
                source: source @ UpstreamError::NotFound { .. },
                ..
            }) => {
                self.negative.insert(key.clone());
                Err(FetchError::NotFound { name, source })
            }
            Err(e) => Err(e),
        }
    }

    async fn fetch_small(&self, key: &ArtifactKey) -> Result<Sidecar, FetchError> {
        let name = key.display_name();
        let limit = match key.kind {
            ArtifactKind::List => validate::MAX_LIST,
            ArtifactKind::Mod(_) => MAX_GO_MOD,
            _ => validate::MAX_INFO,
        };
        let check = |body: &[u8]| -> Result<(), String> {
            match &key.kind {
                ArtifactKind::List => validate::list(body),
                ArtifactKind::Latest | ArtifactKind::Info(RequestedVersion::Query(_)) => {
                    validate::info(body, None)
                }
                ArtifactKind::Info(RequestedVersion::Canonical(v)) => validate::info(body, Some(v)),
                ArtifactKind::Mod(_) => validate::go_mod(body, &key.module),
                ArtifactKind::Zip(_) => Err("zips are not small".to_owned()),
            }
        };
        let fetched: Fetched<Bytes> = self
            .upstreams
            .fetch(&key.storage_key(), |response| async move {
                let body = read_limited(response, limit).await?;
                check(&body).map_err(BodyError::Invalid)?;
                Ok(body)
            })
            .await
            .map_err(|source| FetchError::Upstream {
                name: name.clone(),
                source,
            })?;
        let sidecar = Sidecar {
            fetched_at: unix_now(),
            upstream: fetched.upstream,
            etag: fetched.etag,
            sha256: hex(&Sha256::digest(&fetched.value)),
            size: fetched.value.len() as u64,
        };
        let mode = if key.is_immutable() {
            PutMode::IfAbsent
        } else {
            PutMode::Overwrite
        };
        self.storage
            .put_bytes(&key.storage_key(), fetched.value, mode)
            .await
            .map_err(|source| FetchError::Storage { name, source })?;
        Ok(sidecar)
    }

    async fn fetch_zip(
        &self,
        key: &ArtifactKey,
        version: &gomod::Version,
    ) -> Result<Sidecar, FetchError> {
        let name = key.display_name();
        let storage_err = |source| FetchError::Storage {
            name: name.clone(),
            source,
        };
        let staged = self
            .storage
            .stage(&key.storage_key())
            .await
            .map_err(storage_err)?;
        let staged_path = staged.path().to_owned();
        let module = key.module.clone();
        let version = version.clone();
        let fetched = self
            .upstreams
            .fetch(&key.storage_key(), |response| {
                let path = staged_path.clone();
                let module = module.clone();
                let version = version.clone();
                async move {
                    let (size, sha256) = stream_to_file(response, &path, MAX_ZIP_FILE).await?;
                    let check = tokio::task::spawn_blocking(move || {
                        gomod::zip::check_zip(&module, &version, &path)
                    })
                    .await
                    .map_err(|e| BodyError::Local(format!("zip check task failed: {e}")))?;
                    check.map_err(|e| BodyError::Invalid(e.to_string()))?;
                    Ok((size, sha256))
                }
            })
            .await
            .map_err(|source| FetchError::Upstream {
                name: name.clone(),
                source,
            })?;
        let (size, sha256) = fetched.value;
        self.storage
            .commit(staged, PutMode::IfAbsent)
            .await
            .map_err(storage_err)?;
        Ok(Sidecar {
            fetched_at: unix_now(),
            upstream: fetched.upstream,
            etag: fetched.etag,
            sha256,
            size,
        })
    }
}

fn unshare(err: Arc<FetchError>, key: &ArtifactKey) -> FetchError {
    let name = key.display_name();
    match &*err {
        FetchError::NotFound { source, .. } => FetchError::NotFound {
            name,
            source: source.clone(),
        },
        FetchError::NegativeCached { ttl, .. } => FetchError::NegativeCached { name, ttl: *ttl },
        FetchError::Upstream { source, .. } => FetchError::Upstream {
            name,
            source: source.clone(),
        },
        FetchError::Storage { source, .. } => FetchError::Internal {
            name,
            reason: format!("cache storage failed: {source}"),
        },
        FetchError::Internal { reason, .. } => FetchError::Internal {
            name,
            reason: reason.clone(),
        },
    }
}

/// Reads a whole (small) body, refusing it as soon as it exceeds `limit`.
async fn read_limited(response: reqwest::Response, limit: u64) -> Result<Bytes, BodyError> {
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(BodyError::Invalid(format!(
            "body larger than {limit} bytes"
        )));
    }
    let mut buf = BytesMut::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BodyError::Transient(crate::upstream::describe_error(&e)))?;
        if buf.len() as u64 + chunk.len() as u64 > limit {
            return Err(BodyError::Invalid(format!(
                "body larger than {limit} bytes"
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Streams a body into `path` from the start (a retry overwrites what an earlier
/// attempt left), hashing as it goes. Memory use does not depend on the body size.
async fn stream_to_file(
    response: reqwest::Response,
    path: &std::path::Path,
    limit: u64,
) -> Result<(u64, String), BodyError> {
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(BodyError::Invalid(format!(
            "zip larger than the {limit}-byte limit"
        )));
    }
    let local = |e: std::io::Error| {
        BodyError::Local(format!("cannot write the download to the cache: {e}"))
    };
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .await
        .map_err(local)?;
    let mut hasher = Sha256::new();
    let mut written: u64 = 0;
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BodyError::Transient(crate::upstream::describe_error(&e)))?;
        written += chunk.len() as u64;
        if written > limit {
            return Err(BodyError::Invalid(format!(
                "zip larger than the {limit}-byte limit"
            )));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(local)?;
    }
    file.flush().await.map_err(local)?;
    Ok((written, hex(&hasher.finalize())))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
