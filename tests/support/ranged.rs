//! How the fake upstream answers zip requests: whole or by `Range`, with a
//! strong ETag and `If-Range`, throttled per response, with faults that cut a
//! body short, and counting every byte handed to the network.

use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::fake_upstream::Fault;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RangeMode {
    /// No range support: every answer is the whole body with 200, no ETag.
    #[default]
    Off,
    /// RFC 9110 ranges with a strong ETag and `If-Range`.
    On,
    /// 206 answers always start at byte 0, whatever range was asked for (the
    /// Content-Range says so honestly).
    WrongContentRange,
    /// Ranges, but `If-Range` is ignored (206 even when the body changed).
    IgnoreIfRange,
}

/// A zip body with its strong ETag (a hash of the content, computed once).
#[derive(Clone, Debug)]
pub struct Body {
    pub bytes: Bytes,
    pub etag: String,
}

impl Body {
    pub fn new(data: Vec<u8>) -> Body {
        let etag = format!("\"{}\"", &hex(&Sha256::digest(&data))[..16]);
        Body {
            bytes: Bytes::from(data),
            etag,
        }
    }
}

/// Counts what a response sends; reports when it ends (or is dropped).
pub trait Meter: Send + 'static {
    fn add(&self, bytes: u64);
}

pub struct Reply {
    pub mode: RangeMode,
    pub throttle: Option<usize>,
    pub fault: Option<Fault>,
}

impl Reply {
    pub fn respond(&self, zip: &Body, headers: &HeaderMap, meter: impl Meter) -> Response {
        let (body, etag) = (&zip.bytes, zip.etag.clone());
        let total = body.len() as u64;
        let requested = match self.mode {
            RangeMode::Off => None,
            _ => headers
                .get("range")
                .and_then(|v| v.to_str().ok())
                .and_then(|r| parse_range(r, total)),
        };
        let if_range_ok = match (self.mode, headers.get("if-range")) {
            (RangeMode::IgnoreIfRange, _) | (_, None) => true,
            (_, Some(v)) => v.to_str().ok() == Some(etag.as_str()),
        };
        let (status, start, end) = match requested {
            Some((a, b)) if if_range_ok => match self.mode {
                RangeMode::WrongContentRange => (StatusCode::PARTIAL_CONTENT, 0, b - a),
                _ => (StatusCode::PARTIAL_CONTENT, a, b),
            },
            _ => (StatusCode::OK, 0, total),
        };
        let slice = body.slice(start as usize..end as usize);
        let (send, cut) = match &self.fault {
            Some(Fault::TruncateAt(n)) => (slice.slice(..(*n).min(slice.len())), true),
            Some(Fault::Short(n)) => (slice.slice(..(*n).min(slice.len())), false),
            _ => (slice.clone(), false),
        };
        let length = if matches!(self.fault, Some(Fault::Short(_))) {
            send.len()
        } else {
            slice.len()
        };
        let mut response = Response::new(stream(send, self.throttle, cut, meter));
        *response.status_mut() = status;
        let h = response.headers_mut();
        h.insert(
            "content-length",
            length.to_string().parse().expect("header"),
        );
        if self.mode != RangeMode::Off {
            h.insert("etag", etag.parse().expect("header"));
            h.insert("accept-ranges", "bytes".parse().expect("header"));
        }
        if status == StatusCode::PARTIAL_CONTENT {
            let range = format!("bytes {start}-{}/{total}", end - 1);
            h.insert("content-range", range.parse().expect("header"));
        }
        response
    }
}

/// `bytes=a-b` or `bytes=a-` as a half-open range inside the body.
fn parse_range(value: &str, total: u64) -> Option<(u64, u64)> {
    let spec = value.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let a: u64 = a.parse().ok()?;
    let b: u64 = if b.is_empty() {
        total - 1
    } else {
        b.parse::<u64>().ok()?.min(total - 1)
    };
    (a <= b && a < total).then_some((a, b + 1))
}

fn stream(data: Bytes, throttle: Option<usize>, cut: bool, meter: impl Meter) -> axum::body::Body {
    const CHUNK: usize = 64 * 1024;
    let chunks: Vec<Bytes> = (0..data.len())
        .step_by(CHUNK)
        .map(|i| data.slice(i..(i + CHUNK).min(data.len())))
        .collect();
    let started = tokio::time::Instant::now();
    let state = (chunks.into_iter(), meter, cut, 0u64);
    let s = futures_util::stream::unfold(state, move |(mut it, meter, cut, sent)| async move {
        match it.next() {
            Some(chunk) => {
                let sent = sent + chunk.len() as u64;
                if let Some(rate) = throttle {
                    // Paced against the start, so timer granularity never adds up.
                    let due = Duration::from_secs_f64(sent as f64 / rate.max(1) as f64);
                    tokio::time::sleep_until(started + due).await;
                }
                meter.add(chunk.len() as u64);
                Some((Ok::<Bytes, std::io::Error>(chunk), (it, meter, cut, sent)))
            }
            None if cut => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected connection reset",
                )),
                (it, meter, false, sent),
            )),
            None => None,
        }
    });
    axum::body::Body::from_stream(s)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
