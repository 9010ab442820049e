//! The single error type at the HTTP edge. Every error body is
//! `text/plain; charset=utf-8` (the only kind the go command shows to its user),
//! names the module and what went wrong, and never contains local paths or
//! upstream credentials.

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::fetch::{CacheOutcome, FetchError};
use crate::sumdb::client::SumDbError;

use super::CACHE_HEADER;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub outcome: Option<CacheOutcome>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            outcome: None,
        }
    }
}

impl From<FetchError> for ApiError {
    fn from(err: FetchError) -> Self {
        match err {
            FetchError::NotFound { .. } => ApiError {
                status: StatusCode::NOT_FOUND,
                message: err.to_string(),
                outcome: Some(CacheOutcome::Miss),
            },
            FetchError::NegativeCached { .. } => ApiError {
                status: StatusCode::NOT_FOUND,
                message: err.to_string(),
                outcome: Some(CacheOutcome::Negative),
            },
            FetchError::Private { .. } => ApiError {
                status: StatusCode::NOT_FOUND,
                message: err.to_string(),
                outcome: None,
            },
            FetchError::Sumdb {
                source: SumDbError::NotFound { .. },
                ..
            } => ApiError {
                status: StatusCode::NOT_FOUND,
                message: err.to_string(),
                outcome: Some(CacheOutcome::Miss),
            },
            FetchError::Security { .. }
            | FetchError::Sumdb {
                source: SumDbError::Security(_),
                ..
            } => {
                tracing::error!(error = %err, "refused a module that failed checksum verification");
                ApiError {
                    status: StatusCode::BAD_GATEWAY,
                    message: err.to_string(),
                    outcome: Some(CacheOutcome::Miss),
                }
            }
            FetchError::Sumdb { .. } | FetchError::Upstream { .. } => ApiError {
                status: StatusCode::BAD_GATEWAY,
                message: err.to_string(),
                outcome: Some(CacheOutcome::Miss),
            },
            FetchError::Storage { ref name, .. } | FetchError::Internal { ref name, .. } => {
                // The details (which may include local error text) go to the log only.
                tracing::error!(error = %err, "internal error");
                ApiError {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    message: format!(
                        "{name}: internal error in the proxy cache (see the proxy's log)"
                    ),
                    outcome: None,
                }
            }
        }
    }
}

/// The message of an error response, kept beside it for the status page's
/// list of recent errors (the body itself is streamed, not read back).
#[derive(Clone, Debug)]
pub struct ErrorReason(pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let reason = ErrorReason(self.message.clone());
        let mut body = self.message;
        body.push('\n');
        let mut response = Response::new(Body::from(body));
        response.extensions_mut().insert(reason);
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(outcome) = self.outcome {
            headers.insert(CACHE_HEADER, HeaderValue::from_static(outcome.as_str()));
        }
        response
    }
}
