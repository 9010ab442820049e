//! `prefetch: on`: a `.mod` fetched from an upstream brings its version's
//! `.info` and `.zip` into the cache, so the requests that follow are hits;
//! nothing is fetched twice, and nothing extra is fetched when it is off.

mod support;

use std::time::Duration;

use support::go::{GoEnv, go_ok};
use support::prometheus::parse;
use support::{FakeUpstream, Module, TestProxy, poll_until};

/// Waits (up to ten seconds) until the upstream was asked for `path` once.
async fn wait_for_fetch(upstream: &FakeUpstream, path: &str) {
    let hits = poll_until(|| std::future::ready(upstream.hits(path)), |n| *n >= 1).await;
    assert_eq!(hits, 1, "{path}");
}

async fn prefetches(proxy: &TestProxy, result: &str) -> f64 {
    let text = proxy.get("/metrics").await.text().await.unwrap();
    let exposition = parse(&text).unwrap();
    exposition
        .get("goproxy_prefetches_total", &[("result", result)])
        .unwrap_or(0.0)
}

/// The prefetch counter for `result` once it reached `at_least`: a
/// prefetch is counted after the requests it served were answered.
async fn prefetches_reaching(proxy: &TestProxy, result: &str, at_least: f64) -> f64 {
    poll_until(|| prefetches(proxy, result), |n| *n >= at_least).await
}

#[tokio::test]
async fn a_fetched_mod_brings_its_info_and_zip() {
    let upstream = FakeUpstream::start().await;
    let m = Module::simple("example.com/ahead", "v1.0.0");
    upstream.add(m.clone());
    let proxy = TestProxy::start_with(&[&upstream.url], |s| s.prefetch = true).await;

    let first = proxy.get(&m.url_path("mod")).await;
    assert_eq!(first.headers()["x-goproxy-cache"], "miss");
    assert_eq!(first.bytes().await.unwrap(), m.go_mod);
    wait_for_fetch(&upstream, &m.url_path("info")).await;
    wait_for_fetch(&upstream, &m.url_path("zip")).await;

    for (ext, body) in [("info", &m.info), ("zip", &m.zip)] {
        // Either stored already or still being fetched: never a second fetch.
        let response = proxy.get(&m.url_path(ext)).await;
        assert_eq!(response.status(), 200);
        assert_eq!(&response.bytes().await.unwrap()[..], &body[..], "{ext}");
        assert_eq!(upstream.hits(&m.url_path(ext)), 1, "{ext}");
    }
    assert_eq!(upstream.hits(&m.url_path("mod")), 1);
    assert_eq!(prefetches_reaching(&proxy, "fetched", 2.0).await, 2.0);
    let dir = proxy.cache.path().join("example.com/ahead/@v");
    assert_eq!(std::fs::read(dir.join("v1.0.0.zip")).unwrap(), m.zip);
}

#[tokio::test]
async fn what_is_cached_already_is_not_fetched_again() {
    let upstream = FakeUpstream::start().await;
    let m = Module::simple("example.com/ahead", "v1.0.0");
    upstream.add(m.clone());
    let proxy = TestProxy::start_with(&[&upstream.url], |s| s.prefetch = true).await;

    assert_eq!(proxy.get(&m.url_path("zip")).await.status(), 200);
    assert_eq!(proxy.get(&m.url_path("mod")).await.status(), 200);
    wait_for_fetch(&upstream, &m.url_path("info")).await;
    assert_eq!(prefetches_reaching(&proxy, "cached", 1.0).await, 1.0);
    assert_eq!(prefetches_reaching(&proxy, "fetched", 1.0).await, 1.0);
    assert_eq!(upstream.hits(&m.url_path("zip")), 1);
    // A `.mod` served from the cache starts nothing.
    let again = proxy.get(&m.url_path("mod")).await;
    assert_eq!(again.headers()["x-goproxy-cache"], "hit");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(prefetches(&proxy, "fetched").await, 1.0);
    assert_eq!(prefetches(&proxy, "cached").await, 1.0);
}

#[tokio::test]
async fn nothing_is_fetched_ahead_by_default() {
    let upstream = FakeUpstream::start().await;
    let m = Module::simple("example.com/ahead", "v1.0.0");
    upstream.add(m.clone());
    let proxy = TestProxy::start(&[&upstream.url]).await;

    assert_eq!(proxy.get(&m.url_path("mod")).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(upstream.hits(&m.url_path("info")), 0);
    assert_eq!(upstream.hits(&m.url_path("zip")), 0);
    assert_eq!(upstream.total_hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_mod_download_through_a_prefetching_proxy_fetches_each_file_once() {
    let upstream = FakeUpstream::start().await;
    let modules: Vec<Module> = (0..8)
        .map(|i| Module::simple(&format!("example.com/dep{i}"), "v1.0.0"))
        .collect();
    for m in &modules {
        upstream.add(m.clone());
    }
    let proxy = TestProxy::start_with(&[&upstream.url], |s| s.prefetch = true).await;
    let go = GoEnv::new(&proxy.url);
    let dir = go.root.path().join("root");
    std::fs::create_dir_all(&dir).unwrap();
    let requires: String = modules
        .iter()
        .map(|m| format!("require {} v1.0.0\n", m.path))
        .collect();
    std::fs::write(
        dir.join("go.mod"),
        format!("module example.com/root\n\ngo 1.21\n\n{requires}"),
    )
    .unwrap();

    go_ok(&go, &dir, &["mod", "download"]).await;

    for m in &modules {
        let downloaded = go
            .modcache()
            .join("cache/download")
            .join(&m.path)
            .join("@v/v1.0.0.zip");
        assert_eq!(std::fs::read(&downloaded).unwrap(), m.zip, "{}", m.path);
        for ext in ["info", "mod", "zip"] {
            assert_eq!(upstream.hits(&m.url_path(ext)), 1, "{} {ext}", m.path);
        }
    }
}
