//! Reading a small upstream body whole, refusing it as soon as it is too large.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::{BodyError, describe_error};

/// Reads a whole (small) body, refusing it as soon as it exceeds `limit`.
pub async fn read_limited(response: reqwest::Response, limit: u64) -> Result<Bytes, BodyError> {
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(BodyError::Invalid(format!(
            "body larger than {limit} bytes"
        )));
    }
    let mut buf = BytesMut::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BodyError::Transient(describe_error(&e)))?;
        if buf.len() as u64 + chunk.len() as u64 > limit {
            return Err(BodyError::Invalid(format!(
                "body larger than {limit} bytes"
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}
