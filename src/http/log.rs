//! One log line per request: client, method, path, status, bytes, duration and
//! cache outcome; the same facts feed the metrics and the status page.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request};
use axum::http::Method;
use axum::http::header::CONTENT_LENGTH;
use axum::response::Response;
use tower_layer::Layer;
use tower_service::Service;

use super::route::{self, Route};
use super::{CACHE_HEADER, ErrorReason};
use crate::gomod::ModulePath;
use crate::metrics::{Endpoint, Metrics, RequestRecord};

/// What the handler found the request to be, handed to the log line in the
/// response's extensions so that the path is not parsed a second time.
#[derive(Clone)]
pub struct Classified {
    pub kind: Endpoint,
    /// The module an artifact request named.
    pub module: Option<ModulePath>,
}

/// The logging layer: outermost, so that refused requests are logged too.
/// Written out as a service rather than `middleware::from_fn`, which boxes
/// a clone of the inner service and a `Next` on every request.
#[derive(Clone)]
pub struct LogLayer {
    metrics: Arc<Metrics>,
    text: bool,
}

impl LogLayer {
    /// `text`: the log format is text, and the line is formatted here.
    pub fn new(metrics: Arc<Metrics>, text: bool) -> Self {
        LogLayer { metrics, text }
    }
}

impl<S> Layer<S> for LogLayer {
    type Service = LogService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LogService {
            inner,
            metrics: Arc::clone(&self.metrics),
            text: self.text,
        }
    }
}

#[derive(Clone)]
pub struct LogService<S> {
    inner: S,
    metrics: Arc<Metrics>,
    text: bool,
}

impl<S> Service<Request> for LogService<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let method = request.method().clone();
        // Cloning a Uri shares its bytes; no copy of the path per request.
        let uri = request.uri().clone();
        let client = Client(
            request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        );
        let answer = self.inner.call(request);
        let metrics = Arc::clone(&self.metrics);
        let text = self.text;
        Box::pin(async move {
            let response = answer.await?;
            Ok(finish(
                &metrics,
                text,
                started,
                &method,
                uri.path(),
                client,
                response,
            ))
        })
    }
}

/// Records the answered request (metrics, status page) and writes its line.
fn finish(
    metrics: &Metrics,
    text: bool,
    started: Instant,
    method: &Method,
    path: &str,
    client: Client,
    mut response: Response,
) -> Response {
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let bytes = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let cache = match response
        .headers()
        .get(CACHE_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        Some("hit") => "hit",
        Some("miss") => "miss",
        Some("stale") => "stale",
        Some("negative") => "negative",
        _ => "none",
    };
    let Classified { kind, module } = response
        .extensions_mut()
        .remove::<Classified>()
        .unwrap_or_else(|| classify(path));
    metrics.request(&RequestRecord {
        kind,
        status,
        cache,
        duration: elapsed,
        bytes,
        path,
        module: module.as_ref().map(ModulePath::as_str),
        reason: response
            .extensions()
            .get::<ErrorReason>()
            .map(|r| r.0.as_str()),
    });
    let cache = if cache == "none" { "-" } else { cache };
    let duration_ms = (elapsed.as_secs_f64() * 10_000.0).round() / 10.0;
    let probe = matches!(kind, Endpoint::Health | Endpoint::Ready);
    // In text, the line is formatted in one pass: recording seven fields one
    // by one cost a third of a cache hit's CPU. JSON keeps them as fields.
    let line = Line {
        client: &client,
        method,
        path,
        status,
        bytes,
        duration_ms,
        cache,
    };
    match (probe, text) {
        (true, true) => tracing::debug!("{line}"),
        (true, false) => {
            tracing::debug!(%client, %method, %path, status, bytes, duration_ms, cache, "request")
        }
        (false, true) => tracing::info!("{line}"),
        (false, false) => {
            tracing::info!(%client, %method, %path, status, bytes, duration_ms, cache, "request")
        }
    }
    response
}

/// A request line as the text format writes an event with these fields.
struct Line<'a> {
    client: &'a Client,
    method: &'a Method,
    path: &'a str,
    status: u16,
    bytes: u64,
    duration_ms: f64,
    cache: &'a str,
}

impl std::fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "request client={} method={} path={} status={} bytes={} duration_ms={:?} cache={:?}",
            self.client,
            self.method,
            self.path,
            self.status,
            self.bytes,
            self.duration_ms,
            self.cache
        )
    }
}

/// The client's address, formatted only when the line is written.
struct Client(Option<SocketAddr>);

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(addr) => addr.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// The endpoint kind and, for artifacts, the module named; for answers the
/// handler did not classify (other routes, refused by authentication).
fn classify(path: &str) -> Classified {
    let kind = |kind| Classified { kind, module: None };
    match path {
        "/" => return kind(Endpoint::StatusPage),
        "/api/status" => return kind(Endpoint::StatusApi),
        "/metrics" => return kind(Endpoint::Metrics),
        "/index" => return kind(Endpoint::Index),
        _ => {}
    }
    match route::parse(path) {
        Ok(route) => classify_route(&route),
        Err(_) => kind(Endpoint::Invalid),
    }
}

/// The classification of a parsed request.
pub fn classify_route(route: &Route) -> Classified {
    let (kind, module) = match route {
        Route::Health => (Endpoint::Health, None),
        Route::Ready => (Endpoint::Ready, None),
        Route::SumDb(_) => (Endpoint::SumDb, None),
        Route::Artifact(key) => (Endpoint::of_artifact(&key.kind), Some(key.module.clone())),
    };
    Classified { kind, module }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::log_format::capture::{text, untimed};

    #[test]
    fn the_preformatted_line_reads_as_the_event_with_fields() {
        let client = Client(Some("127.0.0.1:4321".parse().unwrap()));
        let method = Method::GET;
        let path = "/example.com/m/@v/v1.0.0.info";
        for (duration_ms, cache) in [(0.1, "hit"), (12.0, "-"), (1.5, "miss")] {
            let (status, bytes) = (200u16, 53u64);
            let fields = text(
                false,
                || tracing::info!(%client, %method, %path, status, bytes, duration_ms, cache, "request"),
            );
            let line = Line {
                client: &client,
                method: &method,
                path,
                status,
                bytes,
                duration_ms,
                cache,
            };
            let preformatted = text(false, || tracing::info!("{line}"));
            assert_eq!(untimed(&preformatted), untimed(&fields));
        }
        let anonymous = text(false, || tracing::info!("{}", Client(None)));
        assert!(anonymous.trim_end().ends_with(": -"), "{anonymous}");
    }

    fn parts(path: &str) -> (&'static str, Option<String>) {
        let c = classify(path);
        (c.kind.as_str(), c.module.map(|m| m.as_str().to_owned()))
    }

    #[test]
    fn kinds_are_bounded_and_name_modules_only_for_artifacts() {
        assert_eq!(parts("/"), ("status_page", None));
        assert_eq!(parts("/healthz"), ("health", None));
        assert_eq!(parts("/sumdb/sum.golang.org/latest"), ("sumdb", None));
        assert_eq!(
            parts("/example.com/m/@v/v1.0.0.zip"),
            ("zip", Some("example.com/m".to_owned()))
        );
        assert_eq!(
            parts("/example.com/!m/@v/list"),
            ("list", Some("example.com/M".to_owned()))
        );
        assert_eq!(parts("/no/such/thing"), ("invalid", None));
    }
}
