//! Sidecar metadata kept next to an artifact (`<key>.meta`, JSON), never inside it:
//! when and from where it was fetched. The artifact alone stays byte-identical to
//! what the upstream served.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sidecar {
    /// Unix seconds of the fetch.
    pub fetched_at: u64,
    /// The upstream that answered, credentials removed.
    pub upstream: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Hex SHA-256 of the artifact bytes.
    pub sha256: String,
    pub size: u64,
    /// The go.sum `h1:` hash, when the checksum database vouched for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h1: Option<String>,
}

impl Sidecar {
    pub fn key_for(artifact_key: &str) -> String {
        format!("{artifact_key}.meta")
    }

    pub fn to_bytes(&self) -> bytes::Bytes {
        // Serializing a struct of strings and integers cannot fail.
        bytes::Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }
}
