//! `GET /index?since=<RFC 3339>&limit=<n>`: the module versions this cache
//! holds, in the format of index.golang.org, so mirrors and tools can follow
//! this cache as they follow the public index: one JSON object per line,
//! `{"Path":…,"Version":…,"Timestamp":…}`, oldest first, `Timestamp` being when
//! the version was first cached here (RFC 3339, UTC, nanoseconds).
//!
//! As on index.golang.org, `since` is inclusive and defaults to the beginning
//! of time, and `limit` defaults to 2000, which is also its maximum: a larger
//! value is lowered to it. To follow the feed, pass the last `Timestamp` seen
//! as the next `since` and skip the one entry repeated (timestamps are unique).
//!
//! No module path can be `index` (the first element of a module path has a
//! dot), so this route never shadows a module.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState, method_not_allowed};
use crate::cache::index::{DEFAULT_LIMIT, IndexRow, MAX_LIMIT};
use crate::gomod::ModulePath;
use crate::gomod::version::parse_escaped_version;

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
pub struct IndexQuery {
    /// Unix nanoseconds, inclusive.
    pub since: i64,
    pub limit: usize,
}

#[derive(serde::Serialize)]
struct Line<'a> {
    #[serde(rename = "Path")]
    path: &'a str,
    #[serde(rename = "Version")]
    version: &'a str,
    #[serde(rename = "Timestamp")]
    timestamp: String,
}

pub async fn handle(State(state): State<AppState>, method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return method_not_allowed(&method);
    }
    let query = match parse_query(uri.query().unwrap_or("")) {
        Ok(query) => query,
        Err(message) => return ApiError::new(StatusCode::BAD_REQUEST, message).into_response(),
    };
    let Some(usage) = state.usage.as_ref().map(Arc::clone) else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the module index is unavailable: the usage database could not be opened (see the proxy's log)",
        )
        .into_response();
    };
    let rows = tokio::task::spawn_blocking(move || usage.cached_since(query.since, query.limit))
        .await
        .map_err(|e| e.to_string())
        .and_then(|rows| rows.map_err(|e| e.to_string()));
    let rows = match rows {
        Ok(rows) => rows,
        Err(error) => {
            tracing::error!(%error, "cannot read the module index");
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot read the module index (see the proxy's log)",
            )
            .into_response();
        }
    };
    let mut body = String::with_capacity(rows.len() * 100);
    for row in &rows {
        match render(row) {
            Some(line) => {
                body.push_str(&line);
                body.push('\n');
            }
            None => tracing::warn!(
                module = row.module,
                version = row.version,
                "module index row is not a valid module version; left out"
            ),
        }
    }
    let headers = [
        (CONTENT_TYPE, "application/x-ndjson; charset=utf-8"),
        // The feed grows all the time: caches must ask again.
        (CACHE_CONTROL, "no-cache"),
    ];
    (headers, body).into_response()
}

/// Parses `since` and `limit`; other parameters are ignored, as index.golang.org does.
pub fn parse_query(raw: &str) -> Result<IndexQuery, String> {
    let mut since = None;
    let mut limit = None;
    for (name, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        // The first occurrence wins, like Go's FormValue.
        match name.as_ref() {
            "since" if since.is_none() => since = Some(value.into_owned()),
            "limit" if limit.is_none() => limit = Some(value.into_owned()),
            _ => {}
        }
    }
    let since = match since.as_deref() {
        None | Some("") => i64::MIN,
        Some(text) => parse_since(text)?,
    };
    let limit = match limit.as_deref() {
        None | Some("") => DEFAULT_LIMIT,
        Some(text) => match text.parse::<u64>() {
            Ok(0) | Err(_) => {
                return Err(format!(
                    "limit: invalid value {text:?} (expected a whole number from 1 to {MAX_LIMIT})"
                ));
            }
            Ok(n) => usize::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT),
        },
    };
    Ok(IndexQuery { since, limit })
}

fn parse_since(text: &str) -> Result<i64, String> {
    let timestamp: jiff::Timestamp = text.parse().map_err(|e| {
        format!(
            "since: invalid timestamp {text:?}: {e} (expected RFC 3339, e.g. 2019-04-10T19:08:52.997264Z)"
        )
    })?;
    // Times outside what the index can hold (before 1678 or after 2262) clamp
    // to its ends: everything, or nothing.
    let nanos = timestamp.as_nanosecond();
    Ok(i64::try_from(nanos).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX }))
}

/// One line of the feed, with the path and version unescaped.
fn render(row: &IndexRow) -> Option<String> {
    let module = ModulePath::from_escaped(&row.module).ok()?;
    let version = parse_escaped_version(&module, &row.version).ok()?;
    let version = match &version {
        crate::gomod::version::RequestedVersion::Canonical(v) => v.as_str(),
        crate::gomod::version::RequestedVersion::Query(_) => return None,
    };
    let line = Line {
        path: module.as_str(),
        version,
        timestamp: format_timestamp(row.cached_at),
    };
    serde_json::to_string(&line).ok()
}

/// RFC 3339 in UTC with as many fractional digits as needed, like Go's
/// `time.RFC3339Nano` (which index.golang.org uses).
pub fn format_timestamp(nanos: i64) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(nanos))
        .map(|t| t.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_like_go_rfc3339nano() {
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00Z");
        let t = parse_since("2019-04-10T19:08:52.997264Z").expect("parse");
        assert_eq!(format_timestamp(t), "2019-04-10T19:08:52.997264Z");
        assert_eq!(format_timestamp(t + 1), "2019-04-10T19:08:52.997264001Z");
        assert_eq!(
            format_timestamp(1_554_923_332_100_000_000),
            "2019-04-10T19:08:52.1Z"
        );
    }

    #[test]
    fn since_accepts_rfc3339_with_offsets() {
        let utc = parse_since("2019-04-10T19:08:52Z").expect("parse");
        assert_eq!(parse_since("2019-04-10T21:08:52+02:00"), Ok(utc));
        assert_eq!(utc, 1_554_923_332_000_000_000);
        assert_eq!(parse_since("1000-01-01T00:00:00Z"), Ok(i64::MIN));
        assert_eq!(parse_since("9999-01-01T00:00:00Z"), Ok(i64::MAX));
        for bad in [
            "yesterday",
            "2019-04-10",
            "1554923332",
            "2019-13-01T00:00:00Z",
        ] {
            let err = parse_since(bad).unwrap_err();
            assert!(err.contains("since") && err.contains(bad), "{err}");
        }
    }

    #[test]
    fn limit_defaults_to_and_is_capped_at_2000() {
        let q = |raw| parse_query(raw);
        assert_eq!(
            q("").expect("ok"),
            IndexQuery {
                since: i64::MIN,
                limit: 2000
            }
        );
        assert_eq!(q("limit=10").expect("ok").limit, 10);
        assert_eq!(q("limit=5000").expect("ok").limit, 2000);
        assert!(
            q("limit=99999999999999999999999")
                .unwrap_err()
                .contains("limit")
        );
        assert!(q("limit=0").unwrap_err().contains("limit"));
        assert!(q("limit=-1").unwrap_err().contains("limit"));
        assert!(q("limit=ten").unwrap_err().contains("\"ten\""));
        assert_eq!(q("limit=3&limit=7&other=x").expect("ok").limit, 3);
        // `+` in a query string is a space; an offset must be written %2B.
        assert_eq!(
            q("since=2019-04-10T21:08:52%2B02:00").expect("ok").since,
            1_554_923_332_000_000_000
        );
    }
}
