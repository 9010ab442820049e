//! Go module formats: module paths and their `!`-escaping, Go's semver dialect,
//! pseudo-versions, module zips, `h1:` directory hashes and go.mod module lines.
//!
//! Nothing here knows about HTTP or storage. The rules follow golang.org/x/mod
//! (`module`, `semver`, `zip`, `sumdb/dirhash`, `modfile`) and are tested with
//! its published vectors.

pub mod dirhash;
pub mod modfile;
pub mod path;
pub mod pattern;
pub mod semver;
pub mod version;
pub mod zip;

pub use path::ModulePath;
pub use version::{Query, Version};

/// Everything that can be wrong with a Go module path, version, zip or go.mod.
#[derive(Debug, thiserror::Error)]
pub enum GoModError {
    #[error("malformed module path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("malformed file path {path:?}: {reason}")]
    InvalidFilePath { path: String, reason: String },
    #[error("invalid escaped module path {escaped:?}: {reason}")]
    InvalidEscapedPath { escaped: String, reason: String },
    #[error("invalid version {version:?}: {reason}")]
    InvalidVersion { version: String, reason: String },
    #[error("version {version} is not valid for module {path}: {reason}")]
    VersionMismatch {
        path: String,
        version: String,
        reason: String,
    },
    #[error("invalid module zip: {0}")]
    InvalidZip(String),
    #[error("invalid go.mod: {0}")]
    InvalidGoMod(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
