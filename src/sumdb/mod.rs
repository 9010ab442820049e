//! The Go checksum database: signed notes, transparency-log tiles and proofs, a
//! verifying client, and the `/sumdb/` pass-through for clients behind the proxy.

pub mod client;
pub mod config;
pub mod note;
pub mod proxy;
pub mod remote;
pub mod tlog;
