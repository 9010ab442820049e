//! The operator's views: `/` (a self-contained HTML status page), `/api/status`
//! (the JSON it refreshes itself from) and `/metrics` (Prometheus text format).

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::AppState;
use crate::config::redact_url;
use crate::metrics::Gauges;
use crate::metrics::status::{ModuleCount, RecentError, Totals};

/// The page: inline CSS and script, no external assets, so it works offline.
const PAGE: &str = include_str!("status.html");
/// Modules listed under "most requested".
const TOP_MODULES: usize = 10;

#[derive(Serialize)]
pub struct Status {
    version: &'static str,
    uptime_seconds: u64,
    upstreams: Vec<UpstreamView>,
    /// None until the first cache scan finished.
    cache: Option<CacheView>,
    requests: Totals,
    downloads: DownloadsView,
    top_modules: Vec<ModuleCount>,
    recent_errors: Vec<RecentError>,
}

#[derive(Serialize)]
struct UpstreamView {
    /// Credentials redacted.
    url: String,
    /// "public", or the module patterns routed to this private upstream.
    modules: String,
}

#[derive(Serialize)]
struct CacheView {
    size_bytes: u64,
    entries: u64,
    scanned_seconds_ago: u64,
}

#[derive(Serialize)]
struct DownloadsView {
    queued: usize,
    active: Vec<DownloadView>,
}

#[derive(Serialize)]
struct DownloadView {
    name: String,
    done_bytes: u64,
    total_bytes: Option<u64>,
    percent: Option<f64>,
    bytes_per_second: f64,
    eta_seconds: Option<u64>,
    connections: u64,
}

pub async fn page() -> Response {
    let headers = [
        (CONTENT_TYPE, "text/html; charset=utf-8"),
        (CACHE_CONTROL, "no-store"),
    ];
    (headers, PAGE).into_response()
}

pub async fn api(State(state): State<AppState>) -> Response {
    ([(CACHE_CONTROL, "no-store")], axum::Json(status(&state))).into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let gauges = Gauges {
        downloads_active: state.fetcher.progress().active(),
        downloads_queued: state.fetcher.downloads_waiting(),
    };
    let headers = [
        (CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"),
        (CACHE_CONTROL, "no-store"),
    ];
    (headers, state.metrics.render(&gauges)).into_response()
}

pub fn status(state: &AppState) -> Status {
    let metrics = &state.metrics;
    let mut upstreams: Vec<UpstreamView> = state
        .settings
        .private_upstreams
        .iter()
        .map(|private| UpstreamView {
            url: redact_url(&private.url),
            modules: private.patterns.to_string(),
        })
        .collect();
    upstreams.extend(
        state
            .fetcher
            .upstreams()
            .bases()
            .iter()
            .map(|base| UpstreamView {
                url: base.display.clone(),
                modules: "public".to_owned(),
            }),
    );
    let cache = metrics.cache().snapshot().map(|s| CacheView {
        size_bytes: s.size,
        entries: s.entries,
        scanned_seconds_ago: s.at.elapsed().as_secs(),
    });
    let active = state
        .fetcher
        .progress()
        .snapshot()
        .into_iter()
        .map(|s| DownloadView {
            percent: s.percent(),
            bytes_per_second: s.speed(),
            eta_seconds: s.eta().map(|d| d.as_secs()),
            name: s.name,
            done_bytes: s.done,
            total_bytes: s.total,
            connections: s.connections,
        })
        .collect();
    Status {
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: metrics.uptime().as_secs(),
        upstreams,
        cache,
        requests: metrics.status().totals(),
        downloads: DownloadsView {
            queued: state.fetcher.downloads_waiting(),
            active,
        },
        top_modules: metrics.status().top_modules(TOP_MODULES),
        recent_errors: metrics.status().recent_errors(),
    }
}
