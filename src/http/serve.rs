//! Turns a stored object into an HTTP response: validators (strong ETag,
//! Last-Modified), conditional requests (304), byte ranges (206/416, If-Range) and
//! HEAD. Bodies stream from storage; nothing is buffered whole.

use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG,
    IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, LAST_MODIFIED, RANGE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::ApiError;

use crate::storage::{Object, ObjectBody, ObjectMeta, cached_io};

/// Read size when streaming files to clients. A streaming client holds two of
/// these (the chunk being read and the one being written to the socket), so
/// this sets the memory per concurrent download.
const STREAM_CHUNK: usize = 128 * 1024;

/// Bodies up to this size are read on the async worker when the page cache
/// has them. Larger ones always read on the blocking pool: a producer that
/// never waits lets the connection queue several chunks per client (hyper
/// buffers up to ~400 KiB before pushing back), which for hundreds of clients
/// of a large zip is tens of MiB; the trip to the pool paces it.
const INLINE_READ_MAX: u64 = 4 * 1024 * 1024;

pub struct ServeOptions {
    pub content_type: &'static str,
    pub cache_control: HeaderValue,
    pub head: bool,
    /// The object's validators when the caller has them at hand (a copy in
    /// the memory cache keeps them); computed from its metadata otherwise.
    pub validators: Option<Validators>,
}

/// `ETag` and `Last-Modified` of an object.
#[derive(Clone)]
pub struct Validators {
    etag: HeaderValue,
    last_modified: HeaderValue,
}

impl Validators {
    pub fn of(meta: &ObjectMeta) -> Validators {
        Validators::from_text(meta.etag().into(), meta.http_date().into())
    }

    /// From the texts of [`ObjectMeta::etag`] and [`ObjectMeta::http_date`],
    /// shared rather than copied.
    pub fn from_text(etag: Bytes, last_modified: Bytes) -> Validators {
        // Hex digits, quotes and an HTTP date: always valid header values.
        let value = |text: Bytes| {
            HeaderValue::from_maybe_shared(text).unwrap_or_else(|_| HeaderValue::from_static(""))
        };
        Validators {
            etag: value(etag),
            last_modified: value(last_modified),
        }
    }
}

pub async fn respond(object: Object, request: &HeaderMap, opts: ServeOptions) -> Response {
    let meta = object.meta.clone();
    let validators = opts.validators.unwrap_or_else(|| Validators::of(&meta));
    let tag = validators.etag.to_str().unwrap_or_default();
    let last_modified = validators.last_modified.to_str().unwrap_or_default();
    let mut builder = Response::builder()
        .header(ETAG, validators.etag.clone())
        .header(LAST_MODIFIED, validators.last_modified.clone())
        .header(CACHE_CONTROL, opts.cache_control)
        .header(ACCEPT_RANGES, HeaderValue::from_static("bytes"));

    if not_modified(request, tag, meta.modified) {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap_or_default();
    }

    let range = match requested_range(request, tag, last_modified, meta.size) {
        RangeDecision::Full => None,
        RangeDecision::Partial(start, end) => Some((start, end)),
        RangeDecision::Unsatisfiable => {
            let mut response = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("range not satisfiable: the object has {} bytes", meta.size),
            )
            .into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{}", meta.size)) {
                response.headers_mut().insert(CONTENT_RANGE, value);
            }
            return response;
        }
    };
    builder = builder.header(CONTENT_TYPE, HeaderValue::from_static(opts.content_type));
    let (status, start, len) = match range {
        Some((start, end)) => {
            builder = builder.header(CONTENT_RANGE, format!("bytes {start}-{end}/{}", meta.size));
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        None => (StatusCode::OK, 0, meta.size),
    };
    builder = builder.status(status).header(CONTENT_LENGTH, len);
    if opts.head {
        return builder.body(Body::empty()).unwrap_or_default();
    }
    let body = match object.body {
        ObjectBody::Bytes(bytes) => {
            let end = (start + len).min(bytes.len() as u64) as usize;
            Body::from(bytes.slice(start as usize..end))
        }
        ObjectBody::File {
            file,
            len: available,
        } => {
            // A whole object's file: the range starts `start` bytes in.
            let len = len.min(available);
            let inline = len <= INLINE_READ_MAX;
            Body::from_stream(file_chunks(file.into_std().await, start, len, inline))
        }
    };
    builder.body(body).unwrap_or_default()
}

/// `len` bytes of `file` from `offset`, in chunks read straight into the
/// buffers handed to the connection: no intermediate copy (as tokio's `File`
/// plus a `ReaderStream` would make) and no full-size buffer for a file of a
/// few KiB. With `inline`, a chunk in the page cache is read right here; any
/// other is read on the blocking pool. A file shorter than `len` ends the
/// stream early, which the client sees as a short body.
fn file_chunks(
    file: std::fs::File,
    offset: u64,
    len: u64,
    inline: bool,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures_util::stream::try_unfold(
        (file, offset, len),
        move |(file, offset, remaining)| async move {
            if remaining == 0 {
                return Ok(None);
            }
            let want = usize::try_from(remaining).map_or(STREAM_CHUNK, |r| r.min(STREAM_CHUNK));
            let mut buf = vec![0u8; want];
            let cached = match inline {
                true => cached_io::read_at(&file, &mut buf, offset),
                false => None,
            };
            let (file, buf) = match cached {
                Some(Ok(n)) => {
                    buf.truncate(n);
                    (file, buf)
                }
                Some(Err(e)) => return Err(e),
                None => tokio::task::spawn_blocking(move || {
                    let n = cached_io::read_at_blocking(&file, &mut buf, offset)?;
                    buf.truncate(n);
                    Ok::<_, std::io::Error>((file, buf))
                })
                .await
                .map_err(std::io::Error::other)??,
            };
            if buf.is_empty() {
                return Ok(None);
            }
            let read = buf.len() as u64;
            Ok(Some((
                Bytes::from(buf),
                (file, offset + read, remaining - read),
            )))
        },
    )
}

/// RFC 9110 §13.1.2/13.1.3: If-None-Match wins over If-Modified-Since.
fn not_modified(request: &HeaderMap, tag: &str, modified: SystemTime) -> bool {
    if let Some(inm) = request.get(IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        return inm
            .split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.trim_start_matches("W/") == tag);
    }
    if let Some(ims) = request.get(IF_MODIFIED_SINCE).and_then(|v| v.to_str().ok())
        && let Ok(since) = httpdate::parse_http_date(ims)
    {
        // HTTP dates have one-second resolution.
        return unix_secs(modified) <= unix_secs(since);
    }
    false
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

#[derive(Debug, PartialEq, Eq)]
enum RangeDecision {
    Full,
    /// Inclusive byte positions.
    Partial(u64, u64),
    Unsatisfiable,
}

fn requested_range(
    request: &HeaderMap,
    tag: &str,
    last_modified: &str,
    size: u64,
) -> RangeDecision {
    let Some(range) = request.get(RANGE).and_then(|v| v.to_str().ok()) else {
        return RangeDecision::Full;
    };
    // If-Range needs a strong match; otherwise the client's partial copy is of other
    // bytes and it must get the whole object.
    if let Some(if_range) = request.get(IF_RANGE).and_then(|v| v.to_str().ok()) {
        let if_range = if_range.trim();
        let matches = if if_range.starts_with('"') {
            if_range == tag
        } else {
            if_range == last_modified
        };
        if !matches {
            return RangeDecision::Full;
        }
    }
    parse_range(range, size)
}

/// One `bytes=` range; several ranges are answered with the whole object, which
/// RFC 9110 allows and no module client asks for.
fn parse_range(header: &str, size: u64) -> RangeDecision {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeDecision::Full;
    };
    if spec.contains(',') {
        return RangeDecision::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeDecision::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        (true, true) => RangeDecision::Full,
        (true, false) => match parse(last) {
            None => RangeDecision::Full,
            Some(0) => RangeDecision::Unsatisfiable,
            Some(_) if size == 0 => RangeDecision::Unsatisfiable,
            Some(n) => RangeDecision::Partial(size.saturating_sub(n), size - 1),
        },
        (false, _) => {
            let Some(start) = parse(first) else {
                return RangeDecision::Full;
            };
            let end = if last.is_empty() {
                size.saturating_sub(1)
            } else {
                match parse(last) {
                    Some(e) if e >= start => e.min(size.saturating_sub(1)),
                    _ => return RangeDecision::Full,
                }
            };
            if start >= size {
                RangeDecision::Unsatisfiable
            } else {
                RangeDecision::Partial(start, end)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_forms() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeDecision::Partial(0, 9));
        assert_eq!(
            parse_range("bytes=90-", 100),
            RangeDecision::Partial(90, 99)
        );
        assert_eq!(
            parse_range("bytes=-10", 100),
            RangeDecision::Partial(90, 99)
        );
        assert_eq!(
            parse_range("bytes=-200", 100),
            RangeDecision::Partial(0, 99)
        );
        assert_eq!(
            parse_range("bytes=50-500", 100),
            RangeDecision::Partial(50, 99)
        );
        assert_eq!(parse_range("bytes=100-", 100), RangeDecision::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), RangeDecision::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), RangeDecision::Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 100), RangeDecision::Full);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeDecision::Full);
        assert_eq!(parse_range("items=0-1", 100), RangeDecision::Full);
        assert_eq!(parse_range("bytes=x-1", 100), RangeDecision::Full);
    }

    #[test]
    fn if_range_must_match_strongly() {
        let mut h = HeaderMap::new();
        h.insert(RANGE, HeaderValue::from_static("bytes=1-2"));
        h.insert(IF_RANGE, HeaderValue::from_static("\"abc\""));
        assert_eq!(
            requested_range(&h, "\"abc\"", "date", 10),
            RangeDecision::Partial(1, 2)
        );
        assert_eq!(
            requested_range(&h, "\"other\"", "date", 10),
            RangeDecision::Full
        );
        h.insert(
            IF_RANGE,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(
            requested_range(&h, "\"abc\"", "Wed, 21 Oct 2015 07:28:00 GMT", 10),
            RangeDecision::Partial(1, 2)
        );
    }
}
