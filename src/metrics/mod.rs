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
pub const PREFETCHES: &str = "goproxy_prefetches_total";
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

/// The kind of endpoint a request was for: a bounded label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    StatusPage,
    StatusApi,
    Metrics,
    Index,
    Health,
    Ready,
    SumDb,
    List,
    Latest,
    Info,
    Mod,
    Zip,
    /// A path that is none of the above (refused).
    Invalid,
}

impl Endpoint {
    const COUNT: usize = 13;

    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::StatusPage => "status_page",
            Endpoint::StatusApi => "status_api",
            Endpoint::Metrics => "metrics",
            Endpoint::Index => "index",
            Endpoint::Health => "health",
            Endpoint::Ready => "ready",
            Endpoint::SumDb => "sumdb",
            Endpoint::List => "list",
            Endpoint::Latest => "latest",
            Endpoint::Info => "info",
            Endpoint::Mod => "mod",
            Endpoint::Zip => "zip",
            Endpoint::Invalid => "invalid",
        }
    }

    pub fn of_artifact(kind: &ArtifactKind) -> Self {
        match kind {
            ArtifactKind::List => Endpoint::List,
            ArtifactKind::Latest => Endpoint::Latest,
            ArtifactKind::Info(_) => Endpoint::Info,
            ArtifactKind::Mod(_) => Endpoint::Mod,
            ArtifactKind::Zip(_) => Endpoint::Zip,
        }
    }
}

/// What one HTTP request did, as recorded at the edge.
pub struct RequestRecord<'a> {
    pub kind: Endpoint,
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

/// Status codes with their own slot in [`RequestHandles`]; others are
/// registered per request (they are rare).
const COMMON_STATUSES: [u16; 5] = [200, 206, 304, 404, 410];
const CACHE_OUTCOMES: [&str; 5] = ["hit", "miss", "stale", "negative", "none"];

type Lazy<T> = std::sync::OnceLock<T>;

/// The handles every request updates, registered on first use (so that the
/// exposition lists only series that occurred) and then reused: registering
/// looks the key up in the recorder's map, which cost more than the update.
struct RequestHandles {
    /// By endpoint kind, status slot and cache outcome.
    requests: Vec<Lazy<Counter>>,
    durations: [Lazy<Histogram>; Endpoint::COUNT],
    bytes: [Lazy<Counter>; Endpoint::COUNT],
}

impl Default for RequestHandles {
    fn default() -> Self {
        let slots = Endpoint::COUNT * COMMON_STATUSES.len() * CACHE_OUTCOMES.len();
        RequestHandles {
            requests: (0..slots).map(|_| Lazy::new()).collect(),
            durations: std::array::from_fn(|_| Lazy::new()),
            bytes: std::array::from_fn(|_| Lazy::new()),
        }
    }
}

/// The slot of a request counter, or None for an uncommon status.
fn request_slot(kind: Endpoint, status: u16, cache: &str) -> Option<usize> {
    let status = COMMON_STATUSES.iter().position(|s| *s == status)?;
    let cache = CACHE_OUTCOMES.iter().position(|c| *c == cache)?;
    Some(((kind as usize) * COMMON_STATUSES.len() + status) * CACHE_OUTCOMES.len() + cache)
}

pub struct Metrics {
    recorder: PrometheusRecorder,
    handles: RequestHandles,
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
            handles: RequestHandles::default(),
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
                PREFETCHES,
                None,
                "Artifacts fetched ahead of a request (prefetch: on), by result.",
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
        let kind = record.kind;
        let labels = || {
            vec![
                Label::new("kind", kind.as_str()),
                Label::new("status", status_label(record.status)),
                Label::new("cache", record.cache),
            ]
        };
        match request_slot(kind, record.status, record.cache) {
            Some(slot) => self.handles.requests[slot]
                .get_or_init(|| self.counter(REQUESTS, labels()))
                .increment(1),
            None => self.counter(REQUESTS, labels()).increment(1),
        }
        let kind_label = || vec![Label::new("kind", kind.as_str())];
        self.handles.durations[kind as usize]
            .get_or_init(|| self.histogram(REQUEST_DURATION, kind_label()))
            .record(record.duration.as_secs_f64());
        self.handles.bytes[kind as usize]
            .get_or_init(|| self.counter(RESPONSE_BYTES, kind_label()))
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

    /// A prefetch ended: `fetched`, `cached` (nothing to do), `failed`, or
    /// `skipped` (too many running).
    pub fn prefetch(&self, result: &'static str) {
        self.counter(PREFETCHES, vec![Label::from_static_parts("result", result)])
            .increment(1);
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
    Endpoint::of_artifact(kind).as_str()
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

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [Endpoint; Endpoint::COUNT] = [
        Endpoint::StatusPage,
        Endpoint::StatusApi,
        Endpoint::Metrics,
        Endpoint::Index,
        Endpoint::Health,
        Endpoint::Ready,
        Endpoint::SumDb,
        Endpoint::List,
        Endpoint::Latest,
        Endpoint::Info,
        Endpoint::Mod,
        Endpoint::Zip,
        Endpoint::Invalid,
    ];

    #[test]
    fn every_common_request_has_its_own_slot() {
        let mut seen = std::collections::HashSet::new();
        for kind in KINDS {
            for status in COMMON_STATUSES {
                for cache in CACHE_OUTCOMES {
                    let slot = request_slot(kind, status, cache).expect("a slot");
                    assert!(slot < RequestHandles::default().requests.len());
                    assert!(seen.insert(slot), "{kind:?} {status} {cache} shares a slot");
                }
            }
        }
        assert_eq!(request_slot(Endpoint::Zip, 500, "none"), None);
        assert_eq!(request_slot(Endpoint::Zip, 200, "other"), None);
    }

    fn record(
        kind: Endpoint,
        status: u16,
        cache: &'static str,
        bytes: u64,
    ) -> RequestRecord<'static> {
        RequestRecord {
            kind,
            status,
            cache,
            duration: Duration::from_millis(2),
            bytes,
            path: "/p",
            module: None,
            reason: None,
        }
    }

    fn sample<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
    }

    #[test]
    fn reused_handles_count_like_registered_ones() {
        let metrics = Metrics::new();
        for _ in 0..3 {
            metrics.request(&record(Endpoint::Info, 200, "hit", 10));
        }
        metrics.request(&record(Endpoint::Info, 304, "hit", 0));
        metrics.request(&record(Endpoint::Zip, 502, "none", 7));
        metrics.request(&record(Endpoint::Zip, 502, "none", 7));
        let gauges = Gauges {
            downloads_active: 0,
            downloads_queued: 0,
        };
        let text = metrics.render(&gauges);
        let requests = |labels: &str| sample(&text, &format!("{REQUESTS}{{{labels}}}"));
        assert_eq!(
            requests(r#"kind="info",status="200",cache="hit""#),
            Some("3")
        );
        assert_eq!(
            requests(r#"kind="info",status="304",cache="hit""#),
            Some("1")
        );
        assert_eq!(
            requests(r#"kind="zip",status="502",cache="none""#),
            Some("2")
        );
        // Only series that occurred are listed.
        assert_eq!(requests(r#"kind="mod",status="200",cache="hit""#), None);
        assert_eq!(
            sample(&text, &format!(r#"{RESPONSE_BYTES}{{kind="info"}}"#)),
            Some("30")
        );
        assert_eq!(
            sample(&text, &format!(r#"{RESPONSE_BYTES}{{kind="zip"}}"#)),
            Some("14")
        );
        assert_eq!(
            sample(
                &text,
                &format!(r#"{REQUEST_DURATION}_count{{kind="info"}}"#)
            ),
            Some("4")
        );
        assert_eq!(metrics.status().totals().requests, 6);
    }
}
