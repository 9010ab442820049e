//! The Go checksum database: signed notes, transparency-log tiles and proofs, a
//! verifying client, and the `/sumdb/` pass-through for clients behind the proxy.

pub mod note;
pub mod tlog;
