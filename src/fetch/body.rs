//! Writing a zip body straight to a file with constant memory, and small helpers
//! for the metadata recorded beside artifacts.

use std::time::SystemTime;

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::progress::Reporter;
use crate::upstream::{BodyError, describe_error};

/// Streams a body into `path` from the start (a retry overwrites what an earlier
/// attempt left), hashing as it goes. Memory use does not depend on the body size.
pub(super) async fn stream_to_file(
    response: reqwest::Response,
    path: &std::path::Path,
    limit: u64,
    report: &Reporter,
) -> Result<(u64, String), BodyError> {
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(BodyError::Invalid(format!(
            "zip larger than the {limit}-byte limit"
        )));
    }
    let local = |e: std::io::Error| {
        BodyError::Local(format!("cannot write the download to the cache: {e}"))
    };
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .await
        .map_err(local)?;
    let mut hasher = Sha256::new();
    let mut written: u64 = 0;
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BodyError::Transient(describe_error(&e)))?;
        written += chunk.len() as u64;
        if written > limit {
            return Err(BodyError::Invalid(format!(
                "zip larger than the {limit}-byte limit"
            )));
        }
        hasher.update(&chunk);
        report.add(chunk.len() as u64);
        file.write_all(&chunk).await.map_err(local)?;
    }
    file.flush().await.map_err(local)?;
    Ok((written, hex(&hasher.finalize())))
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(super) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
