//! One log line per request: client, method, path, status, bytes, duration and
//! cache outcome; the same facts feed the metrics and the status page.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::Response;

use super::route::{self, Route};
use super::{CACHE_HEADER, ErrorReason};
use crate::metrics::{Metrics, RequestRecord, artifact_kind};

pub async fn log_request(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    // Cloning a Uri shares its bytes; no copy of the path per request.
    let uri = request.uri().clone();
    let path = uri.path();
    let client = Client(
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0),
    );
    let response = next.run(request).await;
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
    let (kind, module) = classify(path);
    metrics.request(&RequestRecord {
        kind,
        status,
        cache,
        duration: elapsed,
        bytes,
        path,
        module: module.as_deref(),
        reason: response
            .extensions()
            .get::<ErrorReason>()
            .map(|r| r.0.as_str()),
    });
    let cache = if cache == "none" { "-" } else { cache };
    let duration_ms = (elapsed.as_secs_f64() * 10_000.0).round() / 10.0;
    if kind == "health" || kind == "ready" {
        tracing::debug!(%client, %method, %path, status, bytes, duration_ms, cache, "request");
    } else {
        tracing::info!(%client, %method, %path, status, bytes, duration_ms, cache, "request");
    }
    response
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

/// The endpoint kind (a bounded label) and, for artifacts, the module named.
fn classify(path: &str) -> (&'static str, Option<String>) {
    match path {
        "/" => return ("status_page", None),
        "/api/status" => return ("status_api", None),
        "/metrics" => return ("metrics", None),
        "/index" => return ("index", None),
        _ => {}
    }
    match route::parse(path) {
        Ok(Route::Health) => ("health", None),
        Ok(Route::Ready) => ("ready", None),
        Ok(Route::SumDb(_)) => ("sumdb", None),
        Ok(Route::Artifact(key)) => (artifact_kind(&key.kind), Some(key.module.to_string())),
        Err(_) => ("invalid", None),
    }
}

#[cfg(test)]
mod tests {
    use super::classify;

    #[test]
    fn kinds_are_bounded_and_name_modules_only_for_artifacts() {
        assert_eq!(classify("/"), ("status_page", None));
        assert_eq!(classify("/healthz"), ("health", None));
        assert_eq!(classify("/sumdb/sum.golang.org/latest"), ("sumdb", None));
        assert_eq!(
            classify("/example.com/m/@v/v1.0.0.zip"),
            ("zip", Some("example.com/m".to_owned()))
        );
        assert_eq!(
            classify("/example.com/!m/@v/list"),
            ("list", Some("example.com/M".to_owned()))
        );
        assert_eq!(classify("/no/such/thing"), ("invalid", None));
    }
}
