//! The HTTP edge: routing, the artifact handler, health probes, the module
//! index feed, inbound authentication, TLS and request logs. Handlers talk to
//! the cache and the upstreams only through `fetch::Fetcher`.

pub mod auth;
mod error;
pub mod index;
mod log;
pub mod route;
pub mod serve;
mod status;
pub mod tls;
pub mod workers;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::header::{ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::cache::usage::UsageDb;
use crate::config::Settings;
use crate::fetch::{CacheOutcome, Fetcher, Resolved};
use crate::metrics::{Endpoint, Metrics};
use crate::sumdb::proxy::{SumDbProxy, SumDbProxyError};
pub use error::{ApiError, ErrorReason};
use route::Route;

/// Response header that says how the answer was produced: hit, miss, stale, negative.
pub const CACHE_HEADER: axum::http::HeaderName =
    axum::http::HeaderName::from_static("x-goproxy-cache");

/// Cache lifetime advertised for immutable artifacts (one week, as peers use).
const IMMUTABLE_CACHE_CONTROL: &str = "public, max-age=604800, immutable";

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub fetcher: Arc<Fetcher>,
    pub sumdb_proxy: Arc<SumDbProxy>,
    /// Last-used tracking (None when the usage database could not be opened).
    pub usage: Option<Arc<UsageDb>>,
    pub metrics: Arc<Metrics>,
}

/// What the artifact handler needs, shared by reference: extracting
/// `State<AppState>` would clone (and later drop) each of its handles on
/// every request.
struct Edge {
    state: AppState,
    /// `Cache-Control` of fresh mutable answers (lists, `@latest`).
    list_cache_control: HeaderValue,
}

pub fn router(state: AppState) -> Router {
    let edge = Arc::new(Edge {
        list_cache_control: HeaderValue::try_from(format!(
            "public, max-age={}",
            state.settings.list_ttl.as_secs()
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("no-cache")),
        state: state.clone(),
    });
    let mut router = Router::new()
        .route("/index", axum::routing::any(index::handle))
        .route("/", axum::routing::get(status::page))
        .route("/api/status", axum::routing::get(status::api))
        .route("/metrics", axum::routing::get(status::metrics))
        .fallback(move |request: Request| {
            let edge = Arc::clone(&edge);
            async move { handle(&edge, request).await }
        });
    if let Some(authenticator) = auth::Authenticator::new(Arc::clone(&state.settings)) {
        router = router.layer(axum::middleware::from_fn_with_state(
            authenticator,
            auth::require,
        ));
    }
    // Outermost, so refused requests are logged too.
    let metrics = Arc::clone(&state.metrics);
    let text = state.settings.log_format == crate::config::LogFormat::Text;
    router
        .layer(log::LogLayer::new(metrics, text))
        .with_state(state)
}

// Takes the request whole: the Method/Uri/HeaderMap extractors would each
// clone their part on every hit.
async fn handle(edge: &Edge, request: Request) -> Response {
    let state = &edge.state;
    let (method, headers) = (request.method(), request.headers());
    if method != Method::GET && method != Method::HEAD {
        return method_not_allowed(method);
    }
    let head = method == Method::HEAD;
    // The commonest request, a hit kept in memory, is looked up by its path
    // as it came: only paths that were parsed and validated when they were
    // stored can match.
    if let Some((hot, object)) = request
        .uri()
        .path()
        .strip_prefix('/')
        .and_then(|path| state.fetcher.hot_hit(path))
    {
        if let (Some(usage), Some(version)) = (&state.usage, &hot.version_escaped) {
            usage.touch(&hot.module_escaped, version);
        }
        let resolved = Resolved {
            object,
            outcome: CacheOutcome::Hit,
        };
        let validators = serve::Validators::from_text(hot.etag.clone(), hot.last_modified.clone());
        let mut response = answer(edge, &hot.key, resolved, Some(validators), head, headers).await;
        response.extensions_mut().insert(log::Classified {
            kind: Endpoint::of_artifact(&hot.key.kind),
            module: Some(hot.key.module.clone()),
        });
        return response;
    }
    let route = match route::parse(request.uri().path()) {
        Ok(route) => route,
        Err(rejection) => {
            let mut response = ApiError::new(rejection.status, rejection.message).into_response();
            response.extensions_mut().insert(log::Classified {
                kind: Endpoint::Invalid,
                module: None,
            });
            return response;
        }
    };
    let classified = log::classify_route(&route);
    let mut response = match route {
        Route::Health => json_ok(r#"{"status":"ok"}"#),
        Route::Ready => ready(state).await,
        Route::SumDb(rest) => sumdb(state, &rest, method == Method::HEAD).await,
        Route::Artifact(key) => artifact(edge, key, head, headers).await,
    };
    response.extensions_mut().insert(classified);
    response
}

/// Serves one module artifact (`list`, `.info`, `.mod`, `.zip`, `@latest`).
async fn artifact(
    edge: &Edge,
    key: crate::cache::ArtifactKey,
    head: bool,
    headers: &axum::http::HeaderMap,
) -> Response {
    let state = &edge.state;
    let resolved = match state.fetcher.resolve(&key).await {
        Ok(resolved) => resolved,
        Err(err) => return ApiError::from(err).into_response(),
    };
    // Queued for the usage writer; never waits on the database.
    if let (Some(usage), Some(version)) = (&state.usage, key.escaped_version()) {
        usage.touch(&key.module.escaped(), &version);
    }
    answer(edge, &key, resolved, None, head, headers).await
}

/// The response for `key` once something to serve was found.
async fn answer(
    edge: &Edge,
    key: &crate::cache::ArtifactKey,
    resolved: Resolved,
    validators: Option<serve::Validators>,
    head: bool,
    headers: &axum::http::HeaderMap,
) -> Response {
    let cache_control = match resolved.outcome {
        CacheOutcome::Stale => HeaderValue::from_static("no-cache"),
        _ if key.is_immutable() => HeaderValue::from_static(IMMUTABLE_CACHE_CONTROL),
        _ => edge.list_cache_control.clone(),
    };
    let opts = serve::ServeOptions {
        content_type: key.content_type(),
        cache_control,
        head,
        validators,
    };
    let mut response = serve::respond(resolved.object, headers, opts).await;
    response.headers_mut().insert(
        CACHE_HEADER,
        HeaderValue::from_static(resolved.outcome.as_str()),
    );
    response
}

/// The next connection on `listener`, with TCP_NODELAY set: responses go out
/// as headers then body, and without it Nagle's algorithm holds the body until
/// the client's delayed ACK (~40 ms per request on keep-alive connections).
/// Failed accepts are handled as axum does: a failed connection is the
/// client's problem; anything else (out of file descriptors) calls for a pause.
async fn accept(
    listener: &tokio::net::TcpListener,
) -> (tokio::net::TcpStream, std::net::SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((stream, client)) => {
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "could not set TCP_NODELAY");
                }
                return (stream, client);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::ConnectionReset
                ) => {}
            Err(e) => {
                tracing::error!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

fn method_not_allowed(method: &Method) -> Response {
    let mut response = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} not allowed (use GET or HEAD)"),
    )
    .into_response();
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

fn json_ok(body: &'static str) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

async fn ready(state: &AppState) -> Response {
    match state.fetcher.storage().check_ready().await {
        Ok(()) => json_ok(r#"{"status":"ready"}"#),
        Err(err) => {
            tracing::error!(error = %err, "readiness check failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the cache storage is not writable (see the proxy's log)",
            )
            .into_response()
        }
    }
}

async fn sumdb(state: &AppState, rest: &str, head: bool) -> Response {
    match state.sumdb_proxy.handle(rest).await {
        Ok(answer) => {
            let length = answer.body.len();
            let body = if head {
                axum::body::Body::empty()
            } else {
                axum::body::Body::from(answer.body)
            };
            let mut response = Response::new(body);
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(answer.content_type));
            headers.insert(
                CACHE_CONTROL,
                HeaderValue::from_static(answer.cache_control),
            );
            headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
            response
        }
        Err(err) => {
            let status = match err {
                SumDbProxyError::NotFound(_) => StatusCode::NOT_FOUND,
                SumDbProxyError::Forbidden(_) => StatusCode::FORBIDDEN,
                SumDbProxyError::BadRequest(_) => StatusCode::BAD_REQUEST,
                SumDbProxyError::Unavailable(_) => StatusCode::BAD_GATEWAY,
            };
            ApiError::new(status, err.to_string()).into_response()
        }
    }
}
