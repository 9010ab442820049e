//! `/metrics`: traffic through a fake upstream moves the counters and
//! histograms by exactly what happened, and the exposition is valid
//! Prometheus text. Each proxy owns its recorder, so these tests run in
//! parallel without seeing each other's traffic.

mod support;

use std::time::Duration;

use goproxy::config::TokenHash;
use goproxy::sumdb::config::GoSumDb;
use reqwest::StatusCode;
use support::prometheus::{Exposition, parse};
use support::{FakeSumDb, FakeUpstream, Fault, Module, TestProxy, client};

async fn scrape(proxy: &TestProxy) -> Exposition {
    let response = proxy.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    parse(&text).unwrap_or_else(|e| panic!("invalid exposition: {e}\n{text}"))
}

/// Scrapes until `done` holds (the cache gauges follow a background scan).
async fn scrape_until(proxy: &TestProxy, done: impl Fn(&Exposition) -> bool) -> Exposition {
    support::poll_until(|| scrape(proxy), done).await
}

fn requests(e: &Exposition, kind: &str, status: &str, cache: &str) -> f64 {
    e.value(
        "goproxy_http_requests_total",
        &[("kind", kind), ("status", status), ("cache", cache)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_moves_counters_and_histograms_exactly() {
    let upstream = FakeUpstream::start().await;
    let a = Module::simple("example.com/a", "v1.0.0");
    let b = Module::simple("example.com/b", "v1.0.0");
    upstream.add(a.clone());
    upstream.add(b.clone());
    let proxy = TestProxy::start_with(&[&upstream.url], |s| {
        s.list_ttl = Duration::from_millis(100);
    })
    .await;
    let before = scrape(&proxy).await;
    assert_eq!(before.value("goproxy_http_requests_total", &[]), 0.0);
    assert_eq!(
        before.get(
            "goproxy_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );

    // A miss, then a hit.
    assert_eq!(proxy.get(&a.url_path("info")).await.status(), 200);
    assert_eq!(proxy.get(&a.url_path("info")).await.status(), 200);
    // Not found upstream (a miss), then remembered (negative).
    let missing = "/example.com/missing/@v/v1.0.0.info";
    assert_eq!(proxy.get(missing).await.status(), 404);
    assert_eq!(proxy.get(missing).await.status(), 404);
    // A zip download.
    let zip = proxy.get(&a.url_path("zip")).await;
    assert_eq!(zip.bytes().await.unwrap().len(), a.zip.len());
    // A burst of ten requests for one slow artifact: one fetch, nine waiters.
    upstream.push_faults(
        &b.url_path("info"),
        &[Fault::Delay(Duration::from_millis(700))],
    );
    let burst: Vec<_> = (0..10)
        .map(|_| {
            let url = format!("{}{}", proxy.url, b.url_path("info"));
            tokio::spawn(async move { client().get(url).send().await.unwrap().status() })
        })
        .collect();
    for request in burst {
        assert_eq!(request.await.unwrap(), 200);
    }
    assert_eq!(upstream.hits(&b.url_path("info")), 1);
    // A list, then stale once it expired and the upstream is down.
    let list = "/example.com/a/@v/list";
    assert_eq!(proxy.get(list).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(150)).await;
    upstream.set_always(Some(Fault::Status(503)));
    let stale = proxy.get(list).await;
    assert_eq!(stale.headers()["x-goproxy-cache"], "stale");

    let e = scrape_until(&proxy, |e| e.get("goproxy_cache_entries", &[]) == Some(2.0)).await;
    assert_eq!(requests(&e, "info", "200", "miss"), 11.0);
    assert_eq!(requests(&e, "info", "200", "hit"), 1.0);
    assert_eq!(requests(&e, "info", "404", "miss"), 1.0);
    assert_eq!(requests(&e, "info", "404", "negative"), 1.0);
    assert_eq!(requests(&e, "zip", "200", "miss"), 1.0);
    assert_eq!(requests(&e, "list", "200", "miss"), 1.0);
    assert_eq!(requests(&e, "list", "200", "stale"), 1.0);
    // The first scrape counted itself once it was answered.
    assert_eq!(
        requests(&e, "metrics", "200", "none"),
        e.sum("goproxy_http_requests_total", &[("kind", "metrics")])
    );
    assert!(requests(&e, "metrics", "200", "none") >= 1.0);

    let (count, sum) = e.histogram("goproxy_http_request_duration_seconds", &[("kind", "info")]);
    assert_eq!(count, 14.0);
    // The burst waited for the 700 ms delay, ten times.
    assert!(sum >= 7.0, "sum {sum}");
    let (zips, _) = e.histogram("goproxy_http_request_duration_seconds", &[("kind", "zip")]);
    assert_eq!(zips, 1.0);

    assert_eq!(
        e.value("goproxy_http_response_bytes_total", &[("kind", "zip")]),
        a.zip.len() as f64
    );
    assert_eq!(
        e.value("goproxy_upstream_fetched_bytes_total", &[("kind", "zip")]),
        a.zip.len() as f64
    );
    let info_bytes = (a.info.len() + b.info.len()) as f64;
    assert_eq!(
        e.value("goproxy_upstream_fetched_bytes_total", &[("kind", "info")]),
        info_bytes
    );

    let up = upstream.url.as_str();
    let fetches = |result| {
        e.value(
            "goproxy_upstream_fetches_total",
            &[("upstream", up), ("result", result)],
        )
    };
    // a.info, a.zip, b.info, the list.
    assert_eq!(fetches("ok"), 4.0);
    assert_eq!(fetches("not_found"), 1.0);
    // The refresh of the list, after its retries.
    assert_eq!(fetches("error"), 1.0);
    for result in ["ok", "not_found", "error"] {
        let (count, _) = e.histogram(
            "goproxy_upstream_fetch_duration_seconds",
            &[("upstream", up), ("result", result)],
        );
        assert_eq!(count, fetches(result), "{result}");
    }
    let (_, slow) = e.histogram(
        "goproxy_upstream_fetch_duration_seconds",
        &[("upstream", up), ("result", "ok")],
    );
    assert!(slow >= 0.7, "the delayed fetch is in the sum: {slow}");

    assert_eq!(
        e.value("goproxy_fetch_deduplicated_waiters_total", &[]),
        9.0
    );
    assert_eq!(e.get("goproxy_downloads_active", &[]), Some(0.0));
    assert_eq!(e.get("goproxy_downloads_queued", &[]), Some(0.0));
    assert_eq!(e.get("goproxy_cache_entries", &[]), Some(2.0));
    let size = e.get("goproxy_cache_size_bytes", &[]).unwrap();
    assert!(size > a.zip.len() as f64, "cache size {size}");
    assert_eq!(e.value("goproxy_checksum_verifications_total", &[]), 0.0);
    for family in [
        "goproxy_http_requests_total",
        "goproxy_http_request_duration_seconds",
        "goproxy_upstream_fetches_total",
        "goproxy_cache_size_bytes",
    ] {
        assert!(e.help.contains_key(family), "HELP for {family}");
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksum_verifications_are_counted_by_result() {
    let upstream = FakeUpstream::start().await;
    let db = FakeSumDb::new("sum.test.example", 1);
    upstream.serve_sumdb(&db);
    let good = Module::simple("example.com/good", "v1.0.0");
    let bad = Module::simple("example.com/bad", "v1.0.0");
    db.add(&good);
    // The database vouches for other content than the upstream serves.
    let other = Module::with_files(
        "example.com/bad",
        "v1.0.0",
        None,
        &[("x.go", b"package bad // other\n".as_slice())],
    );
    db.add(&other);
    upstream.add(good.clone());
    upstream.add(bad.clone());
    let proxy = TestProxy::start_with(&[&upstream.url], |s| {
        s.gosumdb = GoSumDb::parse(&db.vkey).unwrap();
    })
    .await;
    assert_eq!(proxy.get(&good.url_path("mod")).await.status(), 200);
    assert_eq!(proxy.get(&good.url_path("zip")).await.status(), 200);
    assert_eq!(proxy.get(&bad.url_path("zip")).await.status(), 502);
    // Hits are not verified again.
    assert_eq!(proxy.get(&good.url_path("zip")).await.status(), 200);
    let e = scrape(&proxy).await;
    let verified = |result| {
        e.value(
            "goproxy_checksum_verifications_total",
            &[("result", result)],
        )
    };
    assert_eq!(verified("ok"), 2.0);
    assert_eq!(verified("mismatch"), 1.0);
    assert_eq!(verified("failed"), 0.0);
    assert_eq!(requests(&e, "zip", "502", "miss"), 1.0);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evictions_are_counted_with_the_bytes_they_freed() {
    let upstream = FakeUpstream::start().await;
    let m = Module::simple("example.com/evicted", "v1.0.0");
    upstream.add(m.clone());
    let proxy = TestProxy::start_with(&[&upstream.url], |s| {
        s.max_cache_size = Some(1);
        s.cleanup_interval = Duration::from_millis(100);
    })
    .await;
    assert_eq!(proxy.get(&m.url_path("zip")).await.status(), 200);
    let e = scrape_until(&proxy, |e| {
        e.value("goproxy_cache_evictions_total", &[]) >= 1.0
            && e.get("goproxy_cache_entries", &[]) == Some(0.0)
    })
    .await;
    assert_eq!(e.value("goproxy_cache_evictions_total", &[]), 1.0);
    let freed = e.value("goproxy_cache_evicted_bytes_total", &[]);
    assert!(freed >= m.zip.len() as f64, "freed {freed}");
    assert_eq!(e.get("goproxy_cache_size_bytes", &[]), Some(0.0));
    proxy.stop().await;
}

#[tokio::test]
async fn operator_pages_need_credentials_when_auth_is_on() {
    const TOKEN: &str = "tok-metrics-0123456789";
    let upstream = FakeUpstream::start().await;
    let proxy = TestProxy::start_with(&[&upstream.url], |s| {
        s.auth_tokens = vec![TokenHash::of(TOKEN)];
        s.auth_require = goproxy::config::AuthRequire::Modules(
            goproxy::gomod::pattern::PrefixPatterns::parse("example.com/private").unwrap(),
        );
    })
    .await;
    for path in ["/", "/api/status", "/metrics"] {
        assert_eq!(proxy.get(path).await.status(), 401, "{path}");
        let ok = client()
            .get(format!("{}{path}", proxy.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200, "{path}");
    }
    assert_eq!(proxy.get("/healthz").await.status(), 200);
    proxy.stop().await;
}
