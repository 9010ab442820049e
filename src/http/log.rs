//! One log line per request: client, method, path, status, bytes, duration and
//! cache outcome.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::Response;

use super::CACHE_HEADER;

pub async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_else(|| "-".to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let bytes = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let cache = response
        .headers()
        .get(CACHE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let duration_ms = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
    if matches!(path.as_str(), "/health" | "/healthz" | "/readyz") {
        tracing::debug!(%client, %method, %path, status, bytes, duration_ms, cache, "request");
    } else {
        tracing::info!(%client, %method, %path, status, bytes, duration_ms, cache, "request");
    }
    response
}
