//! goproxy: a caching Go module proxy.

pub mod config;
pub mod gomod;
pub mod storage;
