//! Zip downloads from upstreams: parallel Range requests, fallbacks when ranges
//! misbehave, bodies that change mid-download, resuming after a broken
//! connection or a killed process, and the limit on concurrent downloads.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use support::TestProxy;
use support::fake_upstream::{FakeUpstream, Fault, RangeMode};
use support::module::Module;

const MB: usize = 1 << 20;

async fn parallel_proxy(upstream: &FakeUpstream, connections: u32) -> TestProxy {
    TestProxy::start_with(&[&upstream.url], |s| {
        s.download_connections = connections;
        s.download_parallel_threshold = 256 * 1024;
    })
    .await
}

async fn get_zip(proxy: &TestProxy, m: &Module) -> Vec<u8> {
    let r = proxy.get(&m.url_path("zip")).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.bytes().await.expect("body").to_vec()
}

/// The `Range` headers the upstream saw, parsed to (first, last).
fn ranges(upstream: &FakeUpstream, m: &Module) -> Vec<Option<(u64, u64)>> {
    upstream
        .ranges_requested(&m.url_path("zip"))
        .into_iter()
        .map(|r| {
            r.map(|r| {
                let (a, b) = r
                    .strip_prefix("bytes=")
                    .and_then(|s| s.split_once('-'))
                    .expect("bytes=a-b");
                (a.parse().expect("first"), b.parse().expect("last"))
            })
        })
        .collect()
}

#[tokio::test]
async fn a_large_zip_comes_over_several_connections_byte_for_byte() {
    let upstream = FakeUpstream::start().await;
    upstream.set_ranges(RangeMode::On);
    // Slow enough that the connections overlap.
    upstream.throttle(0, 8 * MB);
    let m = Module::sized("example.com/big", "v1.0.0", 4 * MB);
    upstream.add(m.clone());
    let proxy = parallel_proxy(&upstream, 4).await;
    assert_eq!(get_zip(&proxy, &m).await, m.zip);
    let seen = ranges(&upstream, &m);
    assert!(seen.len() >= 5, "first request plus pieces: {seen:?}");
    assert!(seen.iter().all(Option::is_some), "every request is ranged");
    assert!(upstream.max_zip_streams() >= 2, "pieces overlap in time");
    assert!(
        upstream.max_zip_streams() <= 4,
        "never more than 4 connections"
    );
    // Each byte was sent exactly once.
    assert_eq!(upstream.bytes_sent(&m.url_path("zip")), m.zip.len() as u64);
    let stored = proxy
        .cache_file(&m.url_path("zip")[1..])
        .expect("zip in cache");
    assert_eq!(stored, m.zip);
    assert!(
        proxy.cache_files().iter().all(|f| !f.contains(".tmp-")),
        "no partial file or state left: {:?}",
        proxy.cache_files()
    );
}

#[tokio::test]
async fn small_zips_take_one_request() {
    let upstream = FakeUpstream::start().await;
    upstream.set_ranges(RangeMode::On);
    let m = Module::simple("example.com/small", "v1.0.0");
    upstream.add(m.clone());
    let proxy = parallel_proxy(&upstream, 4).await;
    assert_eq!(get_zip(&proxy, &m).await, m.zip);
    assert_eq!(upstream.hits(&m.url_path("zip")), 1);
}

#[tokio::test]
async fn without_range_support_one_connection_takes_the_whole_body() {
    let upstream = FakeUpstream::start().await;
    upstream.set_ranges(RangeMode::Off);
    let m = Module::sized("example.com/noranges", "v1.0.0", 2 * MB);
    upstream.add(m.clone());
    let proxy = parallel_proxy(&upstream, 4).await;
    assert_eq!(get_zip(&proxy, &m).await, m.zip);
    assert_eq!(
        upstream.hits(&m.url_path("zip")),
        1,
        "the 200 is used as is"
    );
    assert_eq!(upstream.bytes_sent(&m.url_path("zip")), m.zip.len() as u64);
}

#[tokio::test]
async fn a_wrong_content_range_falls_back_to_one_plain_request() {
    let upstream = FakeUpstream::start().await;
    upstream.set_ranges(RangeMode::WrongContentRange);
    let m = Module::sized("example.com/wrongrange", "v1.0.0", 2 * MB);
    upstream.add(m.clone());
    let proxy = parallel_proxy(&upstream, 4).await;
    assert_eq!(get_zip(&proxy, &m).await, m.zip);
    let seen = ranges(&upstream, &m);
    assert_eq!(seen.last(), Some(&None), "ends with a plain GET: {seen:?}");
}

#[tokio::test]
async fn a_short_piece_is_completed_without_fetching_anything_twice() {
    let upstream = FakeUpstream::start().await;
    upstream.set_ranges(RangeMode::On);
    let m = Module::sized("example.com/short", "v1.0.0", 3 * MB);
    upstream.add(m.clone());
    // The second request (the first piece after the size is known) ends early.
    upstream.push_faults(&m.url_path("zip"), &[Fault::Pass, Fault::Short(10_000)]);
    let proxy = parallel_proxy(&upstream, 4).await;
    assert_eq!(get_zip(&proxy, &m).await, m.zip);
    assert_eq!(
        upstream.bytes_sent(&m.url_path("zip")),
        m.zip.len() as u64,
        "only the missing bytes were asked for again"
    );
    let seen = ranges(&upstream, &m);
    let second = seen[1].expect("ranged");
    assert!(
        seen.iter()
            .flatten()
            .any(|&(first, _)| first == second.0 + 10_000),
        "the rest of the short piece is asked for: {seen:?}"
    );
}

#[tokio::test]
async fn a_connection_reset_mid_piece_refetches_only_what_is_missing() {
    let upstream = FakeUpstream::start().await;
    upstream.set_ranges(RangeMode::On);
    upstream.throttle(0, 8 * MB);
    let m = Module::sized("example.com/reset", "v1.0.0", 4 * MB);
    upstream.add(m.clone());
    upstream.push_faults(
        &m.url_path("zip"),
        &[Fault::Pass, Fault::Pass, Fault::TruncateAt(100_000)],
    );
    let proxy = parallel_proxy(&upstream, 4).await;
    assert_eq!(get_zip(&proxy, &m).await, m.zip);
    let seen = ranges(&upstream, &m);
    let restarts = seen
        .iter()
        .flatten()
        .filter(|(first, _)| *first == 0)
        .count();
    assert_eq!(restarts, 1, "never started over: {seen:?}");
    let sent = upstream.bytes_sent(&m.url_path("zip"));
    assert!(
        sent < m.zip.len() as u64 * 3 / 2,
        "sent {sent} for a {}-byte zip",
        m.zip.len()
    );
}

async fn changed_body_is_never_spliced(mode: RangeMode, name: &str) {
    let upstream = FakeUpstream::start().await;
    upstream.set_ranges(mode);
    upstream.throttle(0, 8 * MB);
    let old = Module::sized(name, "v1.0.0", 3 * MB);
    let new = Module::sized(name, "v1.0.0", 3 * MB + 12_345);
    assert_ne!(old.zip, new.zip);
    upstream.add(old.clone());
    upstream.push_faults(
        &old.url_path("zip"),
        &[Fault::Pass, Fault::ChangeZip(new.zip.clone())],
    );
    let proxy = parallel_proxy(&upstream, 4).await;
    assert_eq!(get_zip(&proxy, &new).await, new.zip, "the new body, whole");
    let seen = ranges(&upstream, &old);
    let starts = seen
        .iter()
        .flatten()
        .filter(|(first, _)| *first == 0)
        .count()
        + seen.iter().filter(|r| r.is_none()).count();
    assert!(starts >= 2, "restarted from the beginning: {seen:?}");
}

#[tokio::test]
async fn an_etag_change_mid_download_restarts_cleanly() {
    changed_body_is_never_spliced(RangeMode::On, "example.com/changed").await;
}

#[tokio::test]
async fn a_server_ignoring_if_range_is_caught_by_its_etag() {
    changed_body_is_never_spliced(RangeMode::IgnoreIfRange, "example.com/ignoresifrange").await;
}

#[tokio::test]
async fn an_invalid_zip_is_discarded_and_reported() {
    let upstream = FakeUpstream::start().await;
    upstream.set_ranges(RangeMode::On);
    let m = Module::sized("example.com/corrupt", "v1.0.0", 2 * MB);
    let mut broken = m.zip.clone();
    let middle = broken.len() / 2;
    broken[middle] ^= 0xff;
    let mut bad = m.clone();
    bad.zip = broken;
    upstream.add(bad);
    let proxy = parallel_proxy(&upstream, 4).await;
    let r = proxy.get(&m.url_path("zip")).await;
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let body = r.text().await.unwrap();
    assert!(body.contains("invalid"), "{body}");
    assert!(
        proxy.cache_files().iter().all(|f| !f.ends_with(".zip")),
        "nothing stored: {:?}",
        proxy.cache_files()
    );
}

#[tokio::test]
async fn concurrent_downloads_are_limited_and_the_rest_wait_their_turn() {
    let upstream = FakeUpstream::start().await;
    upstream.set_ranges(RangeMode::On);
    // Zips (of any size) take ~200 ms each; small files are not throttled.
    upstream.throttle(100_000, 2 * MB);
    let modules: Vec<Module> = (0..5)
        .map(|i| Module::sized(&format!("example.com/limit{i}"), "v1.0.0", 400_000))
        .collect();
    for m in &modules {
        upstream.add(m.clone());
    }
    let cached = Module::simple("example.com/cached", "v1.0.0");
    upstream.add(cached.clone());
    let proxy = TestProxy::start_with(&[&upstream.url], |s| {
        s.max_concurrent_downloads = 2;
        s.download_connections = 1;
    })
    .await;
    assert_eq!(
        proxy.get(&cached.url_path("info")).await.status(),
        StatusCode::OK
    );
    let downloads = futures_util::future::join_all(modules.iter().map(|m| get_zip(&proxy, m)));
    let hit = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Not `proxy.get`: that also waits for the downloads to be stored.
        let r = support::client()
            .get(format!("{}{}", proxy.url, cached.url_path("info")))
            .send()
            .await
            .expect("request to proxy");
        assert_eq!(r.headers()["x-goproxy-cache"], "hit");
        // How many downloads had reached the upstream when the hit was answered.
        modules
            .iter()
            .filter(|m| upstream.hits(&m.url_path("zip")) > 0)
            .count()
    };
    let (bodies, started_before_hit) = tokio::join!(downloads, hit);
    for (body, m) in bodies.iter().zip(&modules) {
        assert_eq!(body, &m.zip);
    }
    assert_eq!(upstream.max_concurrent_zips(), 2, "at most two at once");
    assert!(
        started_before_hit < modules.len(),
        "the cache hit was answered while downloads were still queued \
         ({started_before_hit} of {} had started)",
        modules.len()
    );
}

/// Bytes the state file of a resumable download records as safely on disk.
fn recorded(state: &std::path::Path) -> u64 {
    let Ok(bytes) = std::fs::read(state) else {
        return 0;
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return 0;
    };
    value["done"]
        .as_array()
        .map(|ranges| {
            ranges
                .iter()
                .map(|r| r[1].as_u64().unwrap_or(0) - r[0].as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn a_download_killed_mid_way_resumes_with_only_the_missing_bytes() {
    killed_download_resumes(&[
        "--download-connections",
        "2",
        "--download-parallel-threshold",
        "256KiB",
    ]);
}

/// With one connection the first answer is the whole body: a large one must
/// still keep its state and resume.
#[test]
fn a_whole_body_download_killed_mid_way_resumes_too() {
    killed_download_resumes(&["--download-connections", "1"]);
}

fn killed_download_resumes(args: &[&str]) {
    use support::cli;
    let rt = cli::runtime();
    let upstream = rt.block_on(FakeUpstream::start());
    upstream.set_ranges(RangeMode::On);
    upstream.throttle(0, MB);
    let m = Module::sized("example.com/resume", "v1.0.0", 6 * MB);
    upstream.add(m.clone());
    let zip_path = m.url_path("zip");
    let dir = cli::tempdir();
    let cache = dir.path().join("cache");
    let mut first = cli::start_proxy(dir.path(), &cache, &upstream.url, args);
    let _pending = rt.spawn(cli::fetch(format!("{}{zip_path}", first.url)));
    let state = cache.join("example.com/resume/@v/.tmp-v1.0.0.zip.partial.json");
    cli::wait_until("a checkpoint records progress", || {
        recorded(&state) >= MB as u64
    });
    first.child.kill().expect("SIGKILL");
    first.child.wait().expect("reaped");
    let kept = recorded(&state);
    assert!(kept < m.zip.len() as u64, "killed before the end");
    // Let the upstream notice the dead connections before counting.
    std::thread::sleep(Duration::from_millis(300));
    let sent_before = upstream.bytes_sent(&zip_path);

    upstream.throttle(0, 64 * MB);
    let second = cli::start_proxy(dir.path(), &cache, &upstream.url, args);
    let (status, _, body) = cli::get(&rt, &format!("{}{zip_path}", second.url));
    assert_eq!(status, 200);
    assert!(body == m.zip, "the resumed zip is byte-identical");
    assert_eq!(
        upstream.bytes_sent(&zip_path) - sent_before,
        m.zip.len() as u64 - kept,
        "exactly the bytes the state did not record were fetched again"
    );
    assert!(second.logs().contains("resuming an interrupted download"));
    // Metadata is written behind the answer.
    cli::wait_until("no temp file is left", || {
        cli::files_in(&cache)
            .iter()
            .all(|(name, _)| !name.contains(".tmp-"))
    });
}
