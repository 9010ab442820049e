//! goproxy: a caching Go module proxy.
//!
//! A request's path through the crate: `http::route` parses and validates it,
//! `fetch::Fetcher` serves it from `storage` when the cache may be used, otherwise
//! fetches it once from the `upstream`s, validates it (`gomod`) and stores it
//! atomically; `http::serve` streams the answer.

pub mod cache;
pub mod cli;
pub mod config;
pub mod download;
pub mod fetch;
pub mod flight;
pub mod gomod;
pub mod http;
pub mod metrics;
pub mod net;
pub mod notify;
pub mod progress;
pub mod server;
pub mod storage;
pub mod sumdb;
pub mod upstream;
