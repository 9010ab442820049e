//! The miss path: fetch an artifact once (however many requests want it), verify
//! it, and store it atomically; and the decisions around it (fresh, stale,
//! negative) that turn a request into something to serve.

mod behind;
mod body;
mod prefetch;
mod store;
pub mod validate;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::cache::hot::{HotCache, HotRoute};
use crate::cache::{ArtifactKey, ExpiringSet};
use crate::config::Settings;
use crate::download::DownloadSlots;
use crate::flight::{Flights, Role};
use crate::metrics::Metrics;
use crate::progress::Progress;
use crate::storage::{Object, ObjectBody, ObjectMeta, Storage, StorageError};
use crate::sumdb::client::{SumDb, SumDbError};
use crate::upstream::{Route, UpstreamError, Upstreams};

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
    /// Matches GOPRIVATE/GONOPROXY and no private upstream: never sent to a
    /// public upstream.
    #[error(
        "{name}: private module: configure a private upstream for it (private_upstreams); \
         it matches GOPRIVATE/GONOPROXY, so it is never sent to a public upstream"
    )]
    Private { name: String },
    /// The checksum database could not vouch for the module.
    #[error("{name}: {source}")]
    Sumdb {
        name: String,
        #[source]
        source: SumDbError,
    },
    /// What an upstream served does not match the checksum database.
    #[error(
        "SECURITY ERROR: checksum mismatch for {name}\n\tdownloaded:        {got}\n\tchecksum database: {want}\n\
         The upstream served content the checksum database does not vouch for; nothing was cached."
    )]
    Security {
        name: String,
        got: String,
        want: String,
    },
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

/// What a finished fetch hands its waiters.
#[derive(Clone)]
pub enum Ready {
    /// In storage: read it from there.
    Stored,
    /// Fetched and verified; served from memory while it is being stored.
    Memory { bytes: Bytes, modified: SystemTime },
}

pub struct Resolved {
    pub object: Object,
    pub outcome: CacheOutcome,
}

pub struct Fetcher {
    storage: Arc<dyn Storage>,
    upstreams: Arc<Upstreams>,
    settings: Arc<Settings>,
    /// The checksum database every public module is verified against (None: off).
    sumdb: Option<Arc<SumDb>>,
    flights: Flights<ArtifactKey, Ready, FetchError>,
    /// Keeps the runtime the flights' tails (the stores) run on.
    _behind: Option<behind::Behind>,
    negative: ExpiringSet<ArtifactKey>,
    /// Mutable entries whose refresh just failed: served stale without asking the
    /// upstreams again until this expires, so an offline proxy answers at once.
    refresh_failed: ExpiringSet<ArtifactKey>,
    /// Where zip downloads report their progress (terminal bars, status page).
    progress: Progress,
    /// The bound on concurrent zip downloads (`max_concurrent_downloads`).
    slots: DownloadSlots,
    metrics: Arc<Metrics>,
    /// Small immutable artifacts served from memory (`memory_cache_size`).
    hot: Option<HotCache>,
    /// Fetching a `.mod`'s siblings ahead (`prefetch`; None: off).
    prefetch: Option<prefetch::Prefetch>,
}

/// How long a failed refresh is remembered: short, so a recovered upstream is seen soon.
const REFRESH_RETRY_AFTER: Duration = Duration::from_secs(10);

impl Fetcher {
    pub fn new(
        storage: Arc<dyn Storage>,
        upstreams: Arc<Upstreams>,
        settings: Arc<Settings>,
        sumdb: Option<Arc<SumDb>>,
        progress: Progress,
    ) -> Self {
        let metrics = Arc::clone(upstreams.metrics());
        let negative = ExpiringSet::new(settings.negative_ttl);
        let refresh_failed = ExpiringSet::new(REFRESH_RETRY_AFTER);
        let slots = DownloadSlots::new(settings.max_concurrent_downloads);
        let hot = HotCache::new(settings.memory_cache_size);
        let prefetch = settings.prefetch.then(prefetch::Prefetch::new);
        let behind = match behind::Behind::start() {
            Ok(behind) => Some(behind),
            Err(e) => {
                tracing::warn!(error = %e, "could not start the store thread; fetched artifacts are stored at normal priority");
                None
            }
        };
        let flights = match &behind {
            Some(behind) => Flights::with_tails_on(behind.handle()),
            None => Flights::default(),
        };
        Fetcher {
            storage,
            upstreams,
            settings,
            sumdb,
            flights,
            _behind: behind,
            negative,
            refresh_failed,
            progress,
            slots,
            metrics,
            hot,
            prefetch,
        }
    }

    /// Forgets any copy of `key` kept in memory (its file was deleted).
    pub fn forget(&self, key: &str) {
        if let Some(hot) = &self.hot {
            hot.remove(key);
        }
    }

    /// A hit for exactly `skey` (a storage key, which is also the escaped
    /// URL path) from memory, with the request it answers; None when the
    /// memory cache has no usable copy and the request must be parsed and
    /// resolved the usual way.
    pub fn hot_hit(&self, skey: &str) -> Option<(Arc<HotRoute>, Object)> {
        self.hot.as_ref()?.hit(skey, self.settings.list_ttl)
    }

    /// Waits until what answered fetches fetched is stored (at shutdown).
    pub async fn settle(&self) {
        self.flights.tails_done().await;
    }

    /// Zip downloads waiting for a slot under `max_concurrent_downloads`.
    pub fn downloads_waiting(&self) -> usize {
        self.slots.waiting()
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    pub fn upstreams(&self) -> &Arc<Upstreams> {
        &self.upstreams
    }

    /// The registry of zip downloads in progress.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Produces something to serve for `key`: from cache when it may be used, from
    /// the upstreams otherwise.
    pub async fn resolve(self: &Arc<Self>, key: &ArtifactKey) -> Result<Resolved, FetchError> {
        // Refused before the cache is read: a module declared private after
        // it was cached is not served from the cache either.
        if matches!(self.upstreams.route(key.module.as_str()), Route::Refused) {
            return Err(FetchError::Private {
                name: key.display_name(),
            });
        }
        let skey = key.storage_key();
        let storage_err = |source| FetchError::Storage {
            name: key.display_name(),
            source,
        };
        let hot = self.hot.as_ref();
        if let Some((_, object)) = self.hot_hit(&skey) {
            return Ok(Resolved {
                object,
                outcome: CacheOutcome::Hit,
            });
        }
        let cached = self.storage.get(&skey).await.map_err(storage_err)?;
        let stale = match cached {
            Some(object) if key.is_immutable() || self.is_fresh(&object) => {
                let object = match hot {
                    Some(hot) => hot.offer(key, &skey, object),
                    None => object,
                };
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
                Ok((ready, outcome)) => self.read_back(key, ready, outcome).await,
                // Only a unanimous "not found" outranks the copy we have; any other
                // failure (upstreams down, some of them saying 404, a full disk)
                // serves the stale copy: offline mode.
                Err(err) if matches!(&*err, FetchError::NotFound { source, .. } if source.all_not_found()) => {
                    Err(unshare(err, key))
                }
                Err(err) => {
                    tracing::warn!(artifact = %key.display_name(), error = %err, "refresh failed; serving the cached copy");
                    self.refresh_failed.insert(key.clone());
                    Ok(Resolved {
                        object,
                        outcome: CacheOutcome::Stale,
                    })
                }
            };
        }
        match self.fetch(key).await {
            Ok((ready, outcome)) => self.read_back(key, ready, outcome).await,
            Err(err) => Err(unshare(err, key)),
        }
    }

    fn is_fresh(&self, object: &Object) -> bool {
        crate::cache::hot::is_fresh(&object.meta, self.settings.list_ttl)
    }

    async fn read_back(
        &self,
        key: &ArtifactKey,
        ready: Ready,
        outcome: CacheOutcome,
    ) -> Result<Resolved, FetchError> {
        if let Ready::Memory { bytes, modified } = ready {
            let object = Object {
                meta: ObjectMeta {
                    size: bytes.len() as u64,
                    modified,
                },
                body: ObjectBody::Bytes(bytes),
            };
            // Kept in the memory cache only once stored (see `store_behind`).
            return Ok(Resolved { object, outcome });
        }
        match self.storage.get(&key.storage_key()).await {
            Ok(Some(object)) => Ok(Resolved { object, outcome }),
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
    /// Fetches `key` (or joins the fetch running for it); the outcome says
    /// whether this request waited for the upstream (miss) or found the fetch
    /// already answered (hit).
    async fn fetch(
        self: &Arc<Self>,
        key: &ArtifactKey,
    ) -> Result<(Ready, CacheOutcome), Arc<FetchError>> {
        let this = Arc::clone(self);
        let owned = key.clone();
        let (result, role) = self
            .flights
            .run_with_tail(
                key.clone(),
                move || this.fetch_and_store(owned),
                || FetchError::Internal {
                    name: String::new(),
                    reason: "the fetch task panicked".to_owned(),
                },
            )
            .await;
        if role == Role::Follower {
            self.metrics.deduplicated();
            tracing::debug!(artifact = %key.display_name(), "joined an in-flight fetch");
        }
        let outcome = match role {
            Role::Finished => CacheOutcome::Hit,
            Role::Leader | Role::Follower => CacheOutcome::Miss,
        };
        result.map(|ready| (ready, outcome))
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
        FetchError::Private { .. } => FetchError::Private { name },
        FetchError::Sumdb { source, .. } => FetchError::Sumdb {
            name,
            source: source.clone(),
        },
        FetchError::Security { got, want, .. } => FetchError::Security {
            name,
            got: got.clone(),
            want: want.clone(),
        },
    }
}
