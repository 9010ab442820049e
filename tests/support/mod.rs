//! Shared test support: synthetic Go modules built in memory, a fake upstream
//! GOPROXY with fault injection, and helpers to run the proxy (in-process or as
//! the real binary) and the real `go` command against it.
#![allow(dead_code, unused_imports)] // each test file uses a different part of this module

pub mod cli;
pub mod dns;
pub mod failing_storage;
pub mod fake_upstream;
pub mod go;
pub mod http_proxy;
pub mod lifecycle;
pub mod module;
pub mod process;
pub mod prometheus;
pub mod ranged;
pub mod server_tls;
pub mod socks;
pub mod sumdb;
pub mod tls;
pub mod tmux;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use goproxy::config::Settings;
use goproxy::server::Server;
use tempfile::TempDir;

pub use failing_storage::FailingStorage;
pub use fake_upstream::{FakeUpstream, Fault};
pub use module::Module;
pub use sumdb::{DbFault, FakeSumDb};

/// A proxy running in this process with its own temporary cache directory.
pub struct TestProxy {
    pub url: String,
    pub addr: SocketAddr,
    pub cache: TempDir,
    pub settings: Arc<Settings>,
    server: Option<Server>,
}

/// Settings for tests: loopback, a temp cache, fast retries.
pub fn test_settings(cache: &std::path::Path, upstreams: &[&str]) -> Settings {
    Settings {
        listen: "127.0.0.1:0".to_owned(),
        cache_dir: cache.to_owned(),
        upstreams: upstreams
            .iter()
            .map(|u| url::Url::parse(u).expect("upstream URL"))
            .collect(),
        retry_attempts: 3,
        retry_backoff: Duration::from_millis(10),
        upstream_connect_timeout: Duration::from_secs(2),
        upstream_header_timeout: Duration::from_secs(5),
        upstream_idle_timeout: Duration::from_secs(5),
        upstream_timeout: Duration::from_secs(60),
        // Tests of the checksum database turn it on with their own test database.
        gosumdb: goproxy::sumdb::config::GoSumDb::Off,
        ..Settings::default()
    }
}

impl TestProxy {
    pub async fn start(upstreams: &[&str]) -> TestProxy {
        Self::start_with(upstreams, |_| {}).await
    }

    pub async fn start_with(upstreams: &[&str], tweak: impl FnOnce(&mut Settings)) -> TestProxy {
        let cache = tempfile::tempdir().expect("temp cache dir");
        Self::start_on(cache, upstreams, tweak).await
    }

    /// A proxy over an existing cache directory (e.g. one a stopped proxy left,
    /// to test what survives a restart).
    pub async fn start_on(
        cache: TempDir,
        upstreams: &[&str],
        tweak: impl FnOnce(&mut Settings),
    ) -> TestProxy {
        let mut settings = test_settings(cache.path(), upstreams);
        tweak(&mut settings);
        let settings = Arc::new(settings);
        let server = goproxy::server::start(Arc::clone(&settings))
            .await
            .expect("proxy starts");
        Self::running(cache, settings, server)
    }

    /// A proxy whose cache is the in-memory storage backend.
    pub async fn start_in_memory(upstreams: &[&str]) -> TestProxy {
        let cache = tempfile::tempdir().expect("temp dir");
        let settings = Arc::new(test_settings(cache.path(), upstreams));
        let storage = Arc::new(goproxy::storage::memory::MemoryStorage::new());
        let server = goproxy::server::start_with_storage(Arc::clone(&settings), storage)
            .await
            .expect("proxy starts");
        Self::running(cache, settings, server)
    }

    /// A proxy over the given storage backend.
    pub async fn start_with_storage(
        upstreams: &[&str],
        storage: Arc<dyn goproxy::storage::Storage>,
    ) -> TestProxy {
        let cache = tempfile::tempdir().expect("temp dir");
        let settings = Arc::new(test_settings(cache.path(), upstreams));
        let server = goproxy::server::start_with_storage(Arc::clone(&settings), storage)
            .await
            .expect("proxy starts");
        Self::running(cache, settings, server)
    }

    fn running(cache: TempDir, settings: Arc<Settings>, server: Server) -> TestProxy {
        let addr = server.local_addr();
        TestProxy {
            url: format!("http://{addr}"),
            addr,
            cache,
            settings,
            server: Some(server),
        }
    }

    /// A request to the proxy; returns once what it fetched is stored too
    /// (stores run after the answer), so the cache can be inspected at once.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        let response = client()
            .get(format!("{}{}", self.url, path))
            .send()
            .await
            .expect("request to proxy");
        self.settle().await;
        response
    }

    /// Waits until what answered fetches fetched is stored.
    pub async fn settle(&self) {
        if let Some(server) = &self.server {
            server.settle().await;
        }
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown(Duration::from_secs(5)).await;
        }
    }

    /// Stops the proxy and hands back its cache directory, for [`Self::start_on`].
    pub async fn stop_keeping_cache(mut self) -> TempDir {
        if let Some(server) = self.server.take() {
            server.shutdown(Duration::from_secs(5)).await;
        }
        let placeholder = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.cache, placeholder)
    }

    /// The bytes of a cache file, by path relative to the cache directory.
    pub fn cache_file(&self, rel: &str) -> Option<Vec<u8>> {
        std::fs::read(self.cache.path().join(rel)).ok()
    }

    /// Every file below the cache directory, as relative paths, sorted; the
    /// last-used database (created at startup) is bookkeeping, not cache content.
    pub fn cache_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(self.cache.path(), self.cache.path(), &mut out);
        out.retain(|f| !f.starts_with(goproxy::cache::USAGE_DB_FILE));
        out.sort();
        out
    }
}

fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// A plain HTTP client without connection reuse surprises.
/// Takes `next()` until `done` holds, at most 10 s (then the last value, for
/// the caller's assertions to describe); for state that follows a background
/// task, such as the cache gauges.
pub async fn poll_until<T, F>(mut next: impl FnMut() -> F, done: impl Fn(&T) -> bool) -> T
where
    F: std::future::Future<Output = T>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let value = next().await;
        if done(&value) || std::time::Instant::now() > deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// A response read by `raw_get`.
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends `GET <target>` byte-for-byte over a fresh connection, so that no client
/// library normalizes `..`, `%2e` or `//` before the server sees them.
pub async fn raw_get(addr: SocketAddr, target: &str) -> RawResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    RawResponse {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}
