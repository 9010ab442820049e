//! Parallel download benchmark (run with `cargo bench --bench downloads`).
//!
//! One 40 MB module zip is fetched through the proxy from a fake upstream that
//! limits every response to a fixed bandwidth, as a congested link or a
//! throttling CDN does per connection. The same download runs with 1 and with
//! 4 connections, alternating, in one run; the ratio of the medians is the
//! figure (target: 4 connections at least 3x faster).
//!
//! `SIZE_MB`, `RATE_MB` (per connection, MB/s) and `ROUNDS` override the defaults.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::TestProxy;
use support::fake_upstream::{FakeUpstream, RangeMode};
use support::module::Module;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn download(upstream: &FakeUpstream, m: &Module, connections: u32) -> Duration {
    let proxy = TestProxy::start_with(&[&upstream.url], |s| {
        s.download_connections = connections;
        s.upstream_timeout = Duration::from_secs(600);
    })
    .await;
    let started = Instant::now();
    let response = proxy.get(&m.url_path("zip")).await;
    assert_eq!(response.status(), 200, "download failed");
    let body = response.bytes().await.expect("body");
    let elapsed = started.elapsed();
    assert!(body.as_ref() == m.zip.as_slice(), "wrong bytes");
    proxy.stop().await;
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let size = env_usize("SIZE_MB", 40) << 20;
    let rate = env_usize("RATE_MB", 10) << 20;
    let rounds = env_usize("ROUNDS", 3);
    if let Ok(filter) = std::env::var("RUST_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let upstream = FakeUpstream::start().await;
        upstream.set_ranges(RangeMode::On);
        upstream.throttle(0, rate);
        let m = Module::sized("bench.example/large", "v1.0.0", size);
        upstream.add(m.clone());
        let (mut one, mut four) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            one.push(download(&upstream, &m, 1).await);
            four.push(download(&upstream, &m, 4).await);
        }
        let (one, four) = (median(one), median(four));
        let mb = m.zip.len() as f64 / (1 << 20) as f64;
        println!(
            "zip {mb:.1} MiB, upstream limited to {} MiB/s per connection, median of {rounds}",
            rate >> 20
        );
        println!("| connections | time | throughput |");
        println!("|---|---|---|");
        for (n, t) in [(1, one), (4, four)] {
            println!(
                "| {n} | {:.2} s | {:.1} MiB/s |",
                t.as_secs_f64(),
                mb / t.as_secs_f64()
            );
        }
        println!(
            "speed-up with 4 connections: {:.2}x",
            one.as_secs_f64() / four.as_secs_f64()
        );
    });
}
