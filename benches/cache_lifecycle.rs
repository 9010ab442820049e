//! Cache lifecycle benchmarks (run with `cargo bench --bench cache_lifecycle`):
//!
//! 1. Cache hits with last-used tracking on vs off, side by side in one run:
//!    the ratio is what counts (target: tracking costs under 5% of throughput).
//! 2. Eviction of 100 000 module versions (target: under 30 s).
//!
//! Sizes can be lowered for a quick look: `HITS=20000 VERSIONS=10000`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use goproxy::cache::evict::{self, Policy};
use goproxy::cache::usage::UsageDb;
use goproxy::config::Settings;
use goproxy::storage::Storage;
use goproxy::storage::fs::FsStorage;
use goproxy::sumdb::config::GoSumDb;

const MODULES: usize = 1_000;
const CONCURRENCY: usize = 32;
const ROUNDS: usize = 3;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn settings(cache: &std::path::Path) -> Settings {
    Settings {
        listen: "127.0.0.1:0".to_owned(),
        cache_dir: cache.to_owned(),
        // Hits never reach an upstream; a closed port makes any miss obvious.
        upstreams: vec![url::Url::parse("http://127.0.0.1:9").expect("url")],
        gosumdb: GoSumDb::Off,
        ..Settings::default()
    }
}

/// A cache with `MODULES` module versions, each with an .info and a .mod.
fn populate(root: &std::path::Path) -> Vec<String> {
    let mut paths = Vec::new();
    for i in 0..MODULES {
        let dir = root.join(format!("bench.example/m{i}/@v"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(
            dir.join("v1.0.0.info"),
            r#"{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"}"#,
        )
        .expect("write");
        std::fs::write(
            dir.join("v1.0.0.mod"),
            format!("module bench.example/m{i}\n"),
        )
        .expect("write");
        paths.push(format!("/bench.example/m{i}/@v/v1.0.0.info"));
        paths.push(format!("/bench.example/m{i}/@v/v1.0.0.mod"));
    }
    paths
}

async fn drive(url: &str, paths: &Arc<Vec<String>>, hits: usize) -> f64 {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("client");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..CONCURRENCY {
        let (client, paths, url) = (client.clone(), Arc::clone(paths), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut i = worker;
            while i < hits {
                let path = &paths[i % paths.len()];
                let response = client
                    .get(format!("{url}{path}"))
                    .send()
                    .await
                    .expect("request");
                assert!(
                    response.status().is_success(),
                    "{path}: {}",
                    response.status()
                );
                response.bytes().await.expect("body");
                i += CONCURRENCY;
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    hits as f64 / started.elapsed().as_secs_f64()
}

async fn hits_benchmark() {
    let hits = env_usize("HITS", 100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = Arc::new(populate(dir.path()));
    let settings = Arc::new(settings(dir.path()));
    let mut on = Vec::new();
    let mut off = Vec::new();
    for _ in 0..ROUNDS {
        // Tracking on: the server as `goproxy` runs it, with the usage database.
        let server = goproxy::server::start(Arc::clone(&settings))
            .await
            .expect("start");
        on.push(drive(&format!("http://{}", server.local_addr()), &paths, hits).await);
        server.shutdown(Duration::from_secs(5)).await;
        // Tracking off: the same cache without a usage database.
        let storage: Arc<dyn Storage> = Arc::new(FsStorage::new(dir.path()));
        let server = goproxy::server::start_with_storage(Arc::clone(&settings), storage)
            .await
            .expect("start");
        off.push(drive(&format!("http://{}", server.local_addr()), &paths, hits).await);
        server.shutdown(Duration::from_secs(5)).await;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (on, off) = (median(&mut on), median(&mut off));
    let rows = UsageDb::open(dir.path().join(goproxy::cache::USAGE_DB_FILE))
        .expect("db")
        .last_used_all()
        .expect("rows")
        .len();
    println!(
        "cache hits: {hits} requests x {ROUNDS} rounds, {CONCURRENCY} connections, {} distinct files",
        paths.len()
    );
    println!("  tracking off: {off:>10.0} req/s (median)");
    println!("  tracking on:  {on:>10.0} req/s (median)");
    println!(
        "  ratio on/off: {:.3} (cost {:+.1}%); {rows} versions recorded",
        on / off,
        (1.0 - on / off) * 100.0
    );
}

async fn eviction_benchmark() {
    let versions = env_usize("VERSIONS", 100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rows = Vec::with_capacity(versions);
    for i in 0..versions {
        let module = format!("evict.example/m{}", i / 10);
        let version = format!("v1.0.{}", i % 10);
        let dir = dir.path().join(&module).join("@v");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(
            dir.join(format!("{version}.info")),
            b"{\"Version\":\"v1.0.0\"}",
        )
        .expect("write");
        std::fs::write(dir.join(format!("{version}.mod")), b"module x\n").expect("write");
        rows.push((module, version, 1_000 + i as i64));
    }
    let usage =
        Arc::new(UsageDb::open(dir.path().join(goproxy::cache::USAGE_DB_FILE)).expect("db"));
    usage.insert_missing(&rows).expect("rows");
    let storage: Arc<dyn Storage> = Arc::new(FsStorage::new(dir.path()));
    let policy = Policy {
        max_age: Duration::from_secs(60),
        max_size: None,
    };
    let started = Instant::now();
    let report = evict::run(&storage, &usage, policy, 1_000_000, false)
        .await
        .expect("eviction");
    let elapsed = started.elapsed();
    assert_eq!(report.removed.len(), versions);
    println!(
        "eviction: {versions} module versions ({} files) removed in {:.2} s",
        versions * 2,
        elapsed.as_secs_f64()
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        hits_benchmark().await;
        eviction_benchmark().await;
    });
}
