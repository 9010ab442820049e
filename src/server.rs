//! Starting and stopping the proxy: bind, build the shared state, serve until told
//! to stop, then drain in-flight requests within a deadline.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cache::evict::{self, Policy};
use crate::cache::recording::RecordingStorage;
use crate::cache::usage::UsageDb;
use crate::config::{AuthRequire, Settings};
use crate::fetch::Fetcher;
use crate::http::tls::{TlsError, TlsListener};
use crate::http::{AppState, router};
use crate::metrics::Metrics;
use crate::progress::Progress;
use crate::storage::Storage;
use crate::storage::fs::FsStorage;
use crate::sumdb::client::SumDb;
use crate::sumdb::config::GoSumDb;
use crate::sumdb::proxy::SumDbProxy;
use crate::sumdb::remote::Remote;
use crate::upstream::{UpstreamError, Upstreams};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "cannot listen on {addr}: {source} (set --listen/LISTEN or --port/PORT to a free address)"
    )]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error(
        "cache directory {dir} is not usable: {reason} (set --cache/CACHE_DIR/cache_dir to a writable directory)"
    )]
    Cache { dir: String, reason: String },
    #[error("{0}")]
    Upstream(#[from] UpstreamError),
    #[error("{0}")]
    Tls(#[from] TlsError),
    #[error(
        "auth_require is {0}, but no auth_tokens or auth_users are set: nothing would be \
         protected (set --auth-tokens/AUTH_TOKENS or --auth-users/AUTH_USERS)"
    )]
    AuthWithoutCredentials(String),
}

/// A running server.
pub struct Server {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
    usage: Option<Arc<UsageDb>>,
    cleanup: Option<JoinHandle<()>>,
    progress: Progress,
    metrics: Arc<Metrics>,
    /// Rescans the cache for the size gauges.
    stats: JoinHandle<()>,
    /// Fetches still storing what they fetched are waited for at shutdown.
    fetcher: Arc<Fetcher>,
    /// Keeps the connection workers' runtimes (and the fetches started on
    /// them) running until the server is done with them.
    _workers_alive: watch::Sender<()>,
}

impl Server {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The registry of active upstream downloads (for progress displays).
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// This server's metrics (what `/metrics` and the status page show).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Waits until what answered fetches fetched is stored (stores run after
    /// the requests are answered; fetches still downloading are not waited for).
    pub async fn settle(&self) {
        self.fetcher.settle().await;
    }

    /// Stops accepting connections and waits for in-flight requests, at most
    /// `deadline`; connections still open then are dropped.
    pub async fn shutdown(self, deadline: std::time::Duration) {
        let _ = self.shutdown.send(true);
        let started = tokio::time::Instant::now();
        let abort = self.task.abort_handle();
        if tokio::time::timeout(deadline, self.task).await.is_err() {
            tracing::warn!(
                ?deadline,
                "in-flight requests did not finish in time; closing them"
            );
            abort.abort();
        }
        // Answered fetches may still be writing to the cache; what is cut off
        // here leaves only temp files, which the next start sweeps.
        let left = deadline.saturating_sub(started.elapsed());
        if tokio::time::timeout(left, self.fetcher.settle())
            .await
            .is_err()
        {
            tracing::warn!(
                "fetched artifacts were still being stored at shutdown; what was not stored \
                 will be fetched again when asked for"
            );
        }
        if let Some(cleanup) = self.cleanup {
            cleanup.abort();
        }
        self.stats.abort();
        // Last-used times of the final requests are written before exiting.
        if let Some(usage) = self.usage {
            let flushed = tokio::task::spawn_blocking(move || usage.flush()).await;
            if let Ok(Err(e)) = flushed {
                tracing::warn!(error = %e, "could not flush the usage database");
            }
        }
    }
}

/// Temp files older than this are crash leftovers (a download never takes a day).
const STALE_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// Starts the proxy with the filesystem cache at `settings.cache_dir`. The cache
/// directory must be writable: a proxy that cannot cache is refused at startup.
pub async fn start(settings: Arc<Settings>) -> Result<Server, StartError> {
    let fs = Arc::new(FsStorage::new(settings.cache_dir.clone()));
    fs.check_ready().await.map_err(|e| StartError::Cache {
        dir: settings.cache_dir.display().to_string(),
        reason: e.to_string(),
    })?;
    // Leftovers of killed processes are swept in the background so startup never
    // waits on a walk of a large cache.
    let sweeper = Arc::clone(&fs);
    tokio::spawn(async move {
        match sweeper.remove_stale_temp_files(STALE_TEMP_AGE).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "removed temp files left by an earlier crash"),
            Err(e) => tracing::warn!(error = %e, "could not sweep old temp files"),
        }
    });
    let usage = open_usage(&settings);
    let fs: Arc<dyn Storage> = fs;
    let (storage, reconciled): (Arc<dyn Storage>, _) = match &usage {
        Some(usage) => {
            let reconciled = spawn_index_reconcile(&fs, usage);
            let recording = Arc::new(RecordingStorage::new(fs, Arc::clone(usage)));
            (recording, Some(reconciled))
        }
        None => (fs, None),
    };
    let metrics = Arc::new(Metrics::new());
    let mut server = serve(Arc::clone(&settings), Arc::clone(&storage), usage, metrics).await?;
    server.cleanup = server.usage.as_ref().and_then(|usage| {
        spawn_cleanup(
            &settings,
            &storage,
            usage,
            reconciled,
            &server.metrics,
            &server.fetcher,
        )
    });
    Ok(server)
}

/// Starts the proxy over any storage backend, without last-used tracking.
pub async fn start_with_storage(
    settings: Arc<Settings>,
    storage: Arc<dyn Storage>,
) -> Result<Server, StartError> {
    serve(settings, storage, None, Arc::new(Metrics::new())).await
}

/// The usage database; if it cannot be opened the proxy still serves, loudly
/// without tracking or eviction.
fn open_usage(settings: &Settings) -> Option<Arc<UsageDb>> {
    let path = settings.cache_dir.join(crate::cache::USAGE_DB_FILE);
    match UsageDb::open(&path) {
        Ok(db) => Some(Arc::new(db)),
        Err(e) => {
            tracing::error!(error = %e, "last-used tracking and cache eviction are DISABLED");
            None
        }
    }
}

/// Brings the module index in line with the files once, in the background: it
/// adds versions stored without a record (a crash, an older goproxy, files
/// copied in) and drops records of files deleted by hand.
fn spawn_index_reconcile(storage: &Arc<dyn Storage>, usage: &Arc<UsageDb>) -> JoinHandle<()> {
    let (storage, usage) = (Arc::clone(storage), Arc::clone(usage));
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        match crate::cache::index::reconcile(storage.as_ref(), &usage).await {
            Ok(r) => tracing::debug!(
                added = r.added,
                removed = r.removed,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "module index reconciled with the cache"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "could not reconcile the module index with the cache")
            }
        }
    })
}

/// Runs eviction now and then every `cleanup_interval`, when a limit is set;
/// the first run waits for `after` (the index reconciliation), so that a walk
/// made before an eviction cannot put evicted versions back into the index.
fn spawn_cleanup(
    settings: &Arc<Settings>,
    storage: &Arc<dyn Storage>,
    usage: &Arc<UsageDb>,
    after: Option<JoinHandle<()>>,
    metrics: &Arc<Metrics>,
    fetcher: &Arc<Fetcher>,
) -> Option<JoinHandle<()>> {
    let policy = Policy {
        max_age: settings.max_cache_age,
        max_size: settings.max_cache_size,
    };
    if !policy.is_active() {
        return None;
    }
    let (storage, usage, interval, metrics, fetcher) = (
        Arc::clone(storage),
        Arc::clone(usage),
        settings.cleanup_interval,
        Arc::clone(metrics),
        Arc::clone(fetcher),
    );
    Some(tokio::spawn(async move {
        if let Some(after) = after {
            let _ = after.await;
        }
        let mut ticker = tokio::time::interval(interval);
        loop {
            ticker.tick().await;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            match evict::run(&storage, &usage, policy, now, false).await {
                Ok(report) => {
                    // Copies kept in memory go with their files: an evicted
                    // version is fetched again, not served from memory.
                    for key in &report.deleted {
                        fetcher.forget(key);
                    }
                    if !report.removed.is_empty() {
                        metrics.evicted(report.removed.len(), report.freed);
                    }
                    for (module, version, size, last_used) in &report.removed {
                        tracing::info!(module, version, bytes = size, last_used, "evicted");
                    }
                    tracing::info!(
                        removed = report.removed.len(),
                        freed_bytes = report.freed,
                        size_bytes = report.size_after,
                        picked_up = report.picked_up,
                        "cache eviction finished"
                    );
                }
                Err(e) => tracing::error!(error = %e, "cache eviction failed"),
            }
        }
    }))
}

/// Settings that only make sense together, and the exposures worth a warning.
fn check_access(settings: &Settings) -> Result<(), StartError> {
    if settings.auth_require != AuthRequire::All && !settings.auth_enabled() {
        return Err(StartError::AuthWithoutCredentials(
            settings.auth_require.to_string(),
        ));
    }
    if !settings.private_upstreams.is_empty() && !settings.auth_enabled() {
        tracing::warn!(
            "private modules are served to every client: set auth_tokens or auth_users \
             (with auth_require: private to guard only them)"
        );
    }
    if settings.auth_enabled() && settings.tls_cert.is_none() {
        tracing::warn!(
            "clients send credentials over plain http: set tls_cert and tls_key, \
             or terminate TLS in front of the proxy (the go command sends .netrc \
             credentials over https only)"
        );
    }
    Ok(())
}

async fn serve(
    settings: Arc<Settings>,
    storage: Arc<dyn Storage>,
    usage: Option<Arc<UsageDb>>,
    metrics: Arc<Metrics>,
) -> Result<Server, StartError> {
    check_access(&settings)?;
    let tls =
        crate::http::tls::server_config(settings.tls_cert.as_deref(), settings.tls_key.as_deref())?;
    let upstreams = Arc::new(Upstreams::new(Arc::clone(&settings), Arc::clone(&metrics))?);
    let (sumdb, sumdb_proxy) = checksum_databases(&settings, &upstreams, &storage);
    let progress = Progress::new();
    let fetcher = Arc::new(Fetcher::new(
        Arc::clone(&storage),
        upstreams,
        Arc::clone(&settings),
        sumdb,
        progress.clone(),
    ));
    let state = AppState {
        settings: Arc::clone(&settings),
        fetcher: Arc::clone(&fetcher),
        sumdb_proxy,
        usage: usage.clone(),
        metrics: Arc::clone(&metrics),
    };
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: settings.listen.clone(),
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: settings.listen.clone(),
        source,
    })?;
    let (shutdown, signal) = watch::channel(false);
    let (workers_alive, release) = watch::channel(());
    let app = router(state);
    let task = match tls {
        None => {
            let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
            tokio::spawn(crate::http::workers::serve(
                listener, app, signal, release, workers,
            ))
        }
        Some(config) => {
            let listener = TlsListener::new(listener, config);
            // Served on this runtime: the handshakes already are.
            tokio::spawn(async move {
                crate::http::workers::serve_connections(listener, app, signal).await;
                Ok(())
            })
        }
    };
    let stats = {
        let (metrics, storage) = (Arc::clone(&metrics), Arc::clone(&storage));
        tokio::spawn(async move {
            metrics
                .cache()
                .run(storage.as_ref(), || metrics.upkeep())
                .await
        })
    };
    Ok(Server {
        local_addr,
        shutdown,
        task,
        usage,
        cleanup: None,
        progress,
        metrics,
        stats,
        fetcher,
        _workers_alive: workers_alive,
    })
}

/// The verifying client for `gosumdb` (unless it is off), and the `/sumdb/`
/// pass-through for it and every `proxied_sumdbs` name, sharing one connection
/// to each database.
fn checksum_databases(
    settings: &Settings,
    upstreams: &Arc<Upstreams>,
    storage: &Arc<dyn Storage>,
) -> (Option<Arc<SumDb>>, Arc<SumDbProxy>) {
    let mut remotes: Vec<Arc<Remote>> = Vec::new();
    let sumdb = match &settings.gosumdb {
        GoSumDb::Off => None,
        GoSumDb::On(spec) => {
            let remote = Arc::new(Remote::new(
                spec.name.clone(),
                spec.url.clone(),
                Arc::clone(upstreams),
            ));
            remotes.push(Arc::clone(&remote));
            Some(Arc::new(SumDb::new(
                (**spec).clone(),
                remote,
                Arc::clone(storage),
            )))
        }
    };
    for extra in &settings.proxied_sumdbs {
        if !remotes.iter().any(|r| r.name() == extra.name) {
            remotes.push(Arc::new(Remote::new(
                extra.name.clone(),
                extra.url.clone(),
                Arc::clone(upstreams),
            )));
        }
    }
    // Every name private here: a lookup would leak it to the database.
    let mut private = vec![
        settings.goprivate.clone(),
        settings.gonosumdb.clone(),
        settings.noproxy().clone(),
    ];
    private.extend(
        settings
            .private_upstreams
            .iter()
            .map(|upstream| upstream.patterns.clone()),
    );
    let proxy = Arc::new(SumDbProxy::new(
        remotes,
        sumdb.clone(),
        Arc::clone(storage),
        private,
    ));
    (sumdb, proxy)
}
