//! What is cached where, and for how long: the key layout shared by storage and
//! upstream URLs, sidecar metadata, and the in-memory memory of recent failures
//! (negative answers and failed refreshes), and the module index of what it holds.

pub mod evict;
pub mod hot;
pub mod index;
pub mod key;
pub mod memo;
pub mod meta;
pub mod recording;
pub mod scan;
pub mod usage;

/// The last-used database, at the root of the cache directory. Its name starts
/// with a dot, so it can never collide with a module path.
pub const USAGE_DB_FILE: &str = ".usage.db";

pub use key::{ArtifactKey, ArtifactKind};
pub use memo::ExpiringSet;
pub use meta::Sidecar;
