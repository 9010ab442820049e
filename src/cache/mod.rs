//! What is cached where, and for how long: the key layout shared by storage and
//! upstream URLs, sidecar metadata, and the in-memory memory of recent failures
//! (negative answers and failed refreshes).

pub mod key;
pub mod memo;
pub mod meta;

pub use key::{ArtifactKey, ArtifactKind};
pub use memo::ExpiringSet;
pub use meta::Sidecar;
