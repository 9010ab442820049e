//! Operational metrics: the Prometheus exposition at `/metrics` and the state
//! the status page shows. Every server owns its own recorder (nothing is
//! installed globally), so several proxies in one process — the tests — each
//! count only their own traffic.
//!
//! Labels stay bounded: endpoint kinds, statuses, cache outcomes, upstream
//! display URLs (from the configuration) and fixed result names. Module paths
//! are never labels; the most requested modules live in a capped map in
//! [`status::StatusBook`] instead.

pub mod cache_stats;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use metrics::{Counter, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::cache::ArtifactKind;
use cache_stats::CacheStats;
use status::StatusBook;

pub const REQUESTS: &str = "goproxy_http_requests_total";
pub const REQUEST_DURATION: &str = "goproxy_http_request_duration_seconds";
pub const RESPONSE_BYTES: &str = "goproxy_http_response_bytes_total";
pub const UPSTREAM_FETCHES: &str = "goproxy_upstream_fetches_total";
pub const UPSTREAM_DURATION: &str = "goproxy_upstream_fetch_duration_seconds";
pub const UPSTREAM_BYTES: &str = "goproxy_upstream_fetched_bytes_total";
pub const DEDUPLICATED: &str = "goproxy_fetch_deduplicated_waiters_total";
pub const DOWNLOADS_ACTIVE: &str = "goproxy_downloads_active";
pub const DOWNLOADS_QUEUED: &str = "goproxy_downloads_queued";
pub const CACHE_SIZE: &str = "goproxy_cache_size_bytes";
pub const CACHE_ENTRIES: &str = "goproxy_cache_entries";
pub const EVICTIONS: &str = "goproxy_cache_evictions_total";
pub const EVICTED_BYTES: &str = "goproxy_cache_evicted_bytes_total";
pub const STORE_FAILURES: &str = "goproxy_cache_store_failures_total";
pub const CHECKSUM_VERIFICATIONS: &str = "goproxy_checksum_verifications_total";
pub const BUILD_INFO: &str = "goproxy_build_info";
pub const UPTIME: &str = "goproxy_uptime_seconds";

/// Upper bounds of the latency histograms' buckets, in seconds: from a cache
/// hit (milliseconds) to a large zip over a slow link (minutes).
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// How an upstream answered one fetch (after its retries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamResult {
    Ok,
    NotFound,
    Error,
}

impl UpstreamResult {
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamResult::Ok => "ok",
            UpstreamResult::NotFound => "not_found",
            UpstreamResult::Error => "error",
        }
    }
}

/// The outcome of checking downloaded content against the checksum database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verification {
    /// The content matches the database's hash.
    Ok,
    /// The content differs from the database's hash: refused.
    Mismatch,
    /// The database could not vouch for the module (unreachable, bad proof).
    Failed,
}

impl Verification {
    pub fn as_str(self) -> &'static str {
        match self {
            Verification::Ok => "ok",
            Verification::Mismatch => "mismatch",
            Verification::Failed => "failed",
        }
    }
}

/// What one HTTP request did, as recorded at the edge.
pub struct RequestRecord<'a> {
    pub kind: &'static str,
    pub status: u16,
    pub cache: &'static str,
    pub duration: Duration,
    pub bytes: u64,
    pub path: &'a str,
    /// The module an artifact request named.
    pub module: Option<&'a str>,
    /// Why a request failed (the error body's first line).
    pub reason: Option<&'a str>,
}

/// Values sampled when the exposition is rendered.
pub struct Gauges {
    pub downloads_active: usize,
    pub downloads_queued: usize,
}

pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    started: std::time::Instant,
    status: StatusBook,
    cache: CacheStats,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
            .expect("the latency buckets are a constant, non-empty list")
            .build_recorder();
        let handle = recorder.handle();
        let metrics = Metrics {
            recorder,
            handle,
            started: std::time::Instant::now(),
            status: StatusBook::default(),
            cache: CacheStats::default(),
        };
        metrics.describe();
        metrics
    }

    fn describe(&self) {
        let r = &self.recorder;
        let text = |s: &'static str| SharedString::from(s);
        let counters: &[(&'static str, Option<Unit>, &'static str)] = &[
            (
                REQUESTS,
                None,
                "HTTP requests answered, by endpoint kind, status and cache outcome.",
            ),
            (
                RESPONSE_BYTES,
                Some(Unit::Bytes),
                "Bytes of response bodies served, by endpoint kind.",
            ),
            (
                UPSTREAM_FETCHES,
                None,
                "Fetches from upstreams (retries included), by upstream and result.",
            ),
            (
                UPSTREAM_BYTES,
                Some(Unit::Bytes),
                "Bytes downloaded from upstreams, by artifact kind.",
            ),
            (
                DEDUPLICATED,
                None,
                "Requests that joined a fetch already in flight instead of starting one.",
            ),
            (
                EVICTIONS,
                None,
                "Module versions removed from the cache by eviction.",
            ),
            (EVICTED_BYTES, Some(Unit::Bytes), "Bytes freed by eviction."),
            (
                STORE_FAILURES,
                None,
                "Fetched artifacts served but not stored, because the cache could not be written.",
            ),
            (
                CHECKSUM_VERIFICATIONS,
                None,
                "Checks of downloaded .mod and .zip files against the checksum database, by result.",
            ),
        ];
        for (name, unit, help) in counters {
            r.describe_counter(KeyName::from_const_str(name), *unit, text(help));
        }
        let histograms: &[(&'static str, &'static str)] = &[
            (
                REQUEST_DURATION,
                "Time to answer an HTTP request, by endpoint kind.",
            ),
            (
                UPSTREAM_DURATION,
                "Time of one fetch from one upstream (retries included), by upstream and result.",
            ),
        ];
        for (name, help) in histograms {
            r.describe_histogram(
                KeyName::from_const_str(name),
                Some(Unit::Seconds),
                text(help),
            );
        }
        let gauges: &[(&'static str, Option<Unit>, &'static str)] = &[
            (
                DOWNLOADS_ACTIVE,
                None,
                "Zip downloads from upstreams in progress.",
            ),
            (
                DOWNLOADS_QUEUED,
                None,
                "Zip downloads waiting for a slot (max_concurrent_downloads).",
            ),
            (
                CACHE_SIZE,
                Some(Unit::Bytes),
                "Bytes of module files in the cache (as of the last cache scan).",
            ),
            (
                CACHE_ENTRIES,
                None,
                "Module versions in the cache (as of the last cache scan).",
            ),
            (
                BUILD_INFO,
                None,
                "Always 1; the version label says which goproxy is running.",
            ),
            (
                UPTIME,
                Some(Unit::Seconds),
                "Seconds since this proxy started.",
            ),
        ];
        for (name, unit, help) in gauges {
            r.describe_gauge(KeyName::from_const_str(name), *unit, text(help));
        }
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &metadata())
    }

    fn histogram(&self, name: &'static str, labels: Vec<Label>) -> Histogram {
        self.recorder
            .register_histogram(&Key::from_parts(name, labels), &metadata())
    }

    fn gauge(&self, name: &'static str, labels: Vec<Label>, value: f64) {
        self.recorder
            .register_gauge(&Key::from_parts(name, labels), &metadata())
            .set(value);
    }

    /// Counts one answered HTTP request.
    pub fn request(&self, record: &RequestRecord<'_>) {
        let kind = Label::new("kind", record.kind);
        self.counter(
            REQUESTS,
            vec![
                kind.clone(),
                Label::new("status", status_label(record.status)),
                Label::new("cache", record.cache),
            ],
        )
        .increment(1);
        self.histogram(REQUEST_DURATION, vec![kind.clone()])
            .record(record.duration.as_secs_f64());
        self.counter(RESPONSE_BYTES, vec![kind])
            .increment(record.bytes);
        self.status.record(record);
    }

    /// Counts one fetch from one upstream; `upstream` is its display URL
    /// (credentials redacted).
    pub fn upstream_fetch(&self, upstream: &str, result: UpstreamResult, duration: Duration) {
        let upstream = Label::new("upstream", upstream.to_owned());
        let result = Label::new("result", result.as_str());
        self.counter(UPSTREAM_FETCHES, vec![upstream.clone(), result.clone()])
            .increment(1);
        self.histogram(UPSTREAM_DURATION, vec![upstream, result])
            .record(duration.as_secs_f64());
    }

    /// Counts bytes downloaded from an upstream for an artifact of `kind`.
    pub fn upstream_bytes(&self, kind: &'static str, bytes: u64) {
        self.counter(UPSTREAM_BYTES, vec![Label::new("kind", kind)])
            .increment(bytes);
    }

    /// A request joined a fetch another request had started.
    pub fn deduplicated(&self) {
        self.counter(DEDUPLICATED, Vec::new()).increment(1);
    }

    pub fn evicted(&self, versions: usize, bytes: u64) {
        self.counter(EVICTIONS, Vec::new())
            .increment(versions as u64);
        self.counter(EVICTED_BYTES, Vec::new()).increment(bytes);
        self.cache.changed();
    }

    pub fn verification(&self, result: Verification) {
        self.counter(
            CHECKSUM_VERIFICATIONS,
            vec![Label::new("result", result.as_str())],
        )
        .increment(1);
    }

    /// A fetched artifact could not be written to the cache.
    pub fn store_failed(&self) {
        self.counter(STORE_FAILURES, Vec::new()).increment(1);
    }

    /// Something was stored in the cache: the size gauges need a new scan.
    pub fn cache_changed(&self) {
        self.cache.changed();
    }

    pub fn status(&self) -> &StatusBook {
        &self.status
    }

    pub fn cache(&self) -> &CacheStats {
        &self.cache
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The exposition in the Prometheus text format (version 0.0.4).
    pub fn render(&self, gauges: &Gauges) -> String {
        self.gauge(DOWNLOADS_ACTIVE, Vec::new(), gauges.downloads_active as f64);
        self.gauge(DOWNLOADS_QUEUED, Vec::new(), gauges.downloads_queued as f64);
        if let Some(snapshot) = self.cache.snapshot() {
            self.gauge(CACHE_SIZE, Vec::new(), snapshot.size as f64);
            self.gauge(CACHE_ENTRIES, Vec::new(), snapshot.entries as f64);
        }
        self.gauge(
            BUILD_INFO,
            vec![Label::new("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
        self.gauge(UPTIME, Vec::new(), self.uptime().as_secs_f64());
        self.handle.render()
    }

    /// Folds recorded histogram samples into their buckets; run now and then
    /// so that memory stays bounded between scrapes.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

/// The endpoint kind of an artifact, as used in labels.
pub fn artifact_kind(kind: &ArtifactKind) -> &'static str {
    match kind {
        ArtifactKind::List => "list",
        ArtifactKind::Latest => "latest",
        ArtifactKind::Info(_) => "info",
        ArtifactKind::Mod(_) => "mod",
        ArtifactKind::Zip(_) => "zip",
    }
}

/// The status code as a label value, without formatting one for the codes
/// almost every request has.
fn status_label(status: u16) -> SharedString {
    match status {
        200 => SharedString::const_str("200"),
        206 => SharedString::const_str("206"),
        304 => SharedString::const_str("304"),
        404 => SharedString::const_str("404"),
        410 => SharedString::const_str("410"),
        other => SharedString::from_owned(other.to_string()),
    }
}

fn metadata() -> Metadata<'static> {
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()))
}

/// Shared handle, as held by every instrumented component.
pub type SharedMetrics = Arc<Metrics>;
