//! Caching semantics: immutable artifacts served cache-first, mutable answers
//! refreshed after the list TTL and served stale when every upstream fails,
//! negative caching of not-found answers only, and atomic, partial-free writes.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use support::{FakeUpstream, Fault, Module, TestProxy};

const LIST: &str = "/example.com/cached/@v/list";

#[tokio::test]
async fn immutable_artifacts_are_fetched_once() {
    let upstream = FakeUpstream::start().await;
    let m = Module::simple("example.com/cached", "v1.0.0");
    upstream.add(m.clone());
    let proxy = TestProxy::start(&[&upstream.url]).await;
    for ext in ["info", "mod", "zip"] {
        let first = proxy.get(&m.url_path(ext)).await;
        assert_eq!(first.headers()["x-goproxy-cache"], "miss");
        let second = proxy.get(&m.url_path(ext)).await;
        assert_eq!(second.status(), StatusCode::OK);
        assert_eq!(second.headers()["x-goproxy-cache"], "hit");
        assert_eq!(upstream.hits(&m.url_path(ext)), 1, "{ext}");
    }
    // The cache is a valid GOPROXY=file:// tree: artifacts are stored byte-for-byte.
    let dir = proxy.cache.path().join("example.com/cached/@v");
    assert_eq!(std::fs::read(dir.join("v1.0.0.zip")).unwrap(), m.zip);
    assert_eq!(std::fs::read(dir.join("v1.0.0.mod")).unwrap(), m.go_mod);
    assert_eq!(std::fs::read(dir.join("v1.0.0.info")).unwrap(), m.info);
    // Metadata lives beside the artifact, never inside it.
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("v1.0.0.zip.meta")).unwrap()).unwrap();
    assert_eq!(meta["upstream"], upstream.url.as_str());
    assert_eq!(meta["size"], m.zip.len());
}

#[tokio::test]
async fn lists_are_refreshed_after_the_ttl() {
    let upstream = FakeUpstream::start().await;
    upstream.add(Module::simple("example.com/cached", "v1.0.0"));
    let proxy = TestProxy::start_with(&[&upstream.url], |s| {
        s.list_ttl = Duration::from_millis(300)
    })
    .await;
    assert_eq!(proxy.get(LIST).await.text().await.unwrap(), "v1.0.0\n");
    upstream.add(Module::simple("example.com/cached", "v1.1.0"));
    let cached = proxy.get(LIST).await;
    assert_eq!(cached.headers()["x-goproxy-cache"], "hit");
    assert_eq!(
        cached.text().await.unwrap(),
        "v1.0.0\n",
        "fresh within the TTL"
    );
    assert_eq!(upstream.hits(LIST), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let refreshed = proxy.get(LIST).await;
    assert_eq!(refreshed.headers()["x-goproxy-cache"], "miss");
    assert_eq!(
        refreshed.text().await.unwrap(),
        "v1.0.0\nv1.1.0\n",
        "a new version appears after the TTL"
    );
    assert_eq!(upstream.hits(LIST), 2);
    // The copy kept in memory before the refresh is not served again.
    let again = proxy.get(LIST).await;
    assert_eq!(again.headers()["x-goproxy-cache"], "hit");
    assert_eq!(again.text().await.unwrap(), "v1.0.0\nv1.1.0\n");
    assert_eq!(upstream.hits(LIST), 2);
}

#[tokio::test]
async fn stale_copy_is_served_when_every_upstream_fails() {
    let upstream = FakeUpstream::start().await;
    upstream.add(Module::simple("example.com/cached", "v1.0.0"));
    let proxy = TestProxy::start_with(&[&upstream.url], |s| {
        s.list_ttl = Duration::from_millis(100)
    })
    .await;
    assert_eq!(proxy.get(LIST).await.status(), StatusCode::OK);
    assert_eq!(
        proxy.get("/example.com/cached/@latest").await.status(),
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    upstream.set_always(Some(Fault::Status(503)));
    let stale = proxy.get(LIST).await;
    assert_eq!(stale.status(), StatusCode::OK);
    assert_eq!(stale.headers()["x-goproxy-cache"], "stale");
    assert_eq!(stale.headers()["cache-control"], "no-cache");
    assert_eq!(stale.text().await.unwrap(), "v1.0.0\n");
    let latest = proxy.get("/example.com/cached/@latest").await;
    assert_eq!(latest.headers()["x-goproxy-cache"], "stale");
    // While the upstream stays down, the stale copy is served without asking again.
    let hits = upstream.hits(LIST);
    assert_eq!(proxy.get(LIST).await.headers()["x-goproxy-cache"], "stale");
    assert_eq!(upstream.hits(LIST), hits);
}

#[tokio::test]
async fn not_found_is_cached_for_the_negative_ttl() {
    let upstream = FakeUpstream::start().await;
    let proxy = TestProxy::start_with(&[&upstream.url], |s| {
        s.negative_ttl = Duration::from_millis(300)
    })
    .await;
    let path = "/example.com/missing/@v/list";
    let first = proxy.get(path).await;
    assert_eq!(first.status(), StatusCode::NOT_FOUND);
    assert_eq!(first.headers()["content-type"], "text/plain; charset=utf-8");
    let second = proxy.get(path).await;
    assert_eq!(second.status(), StatusCode::NOT_FOUND);
    assert_eq!(second.headers()["x-goproxy-cache"], "negative");
    assert_eq!(
        upstream.hits(path),
        1,
        "the second 404 came from the negative cache"
    );
    // Once the module exists and the negative entry expires, it is found.
    upstream.add(Module::simple("example.com/missing", "v0.1.0"));
    tokio::time::sleep(Duration::from_millis(350)).await;
    let third = proxy.get(path).await;
    assert_eq!(third.status(), StatusCode::OK);
    assert_eq!(third.text().await.unwrap(), "v0.1.0\n");
    assert_eq!(upstream.hits(path), 2);
}

#[tokio::test]
async fn transient_failures_are_never_cached() {
    let upstream = FakeUpstream::start().await;
    let m = Module::simple("example.com/flaky", "v1.0.0");
    upstream.add(m.clone());
    let proxy = TestProxy::start_with(&[&upstream.url], |s| s.retry_attempts = 1).await;
    upstream.set_always(Some(Fault::Status(500)));
    assert_eq!(
        proxy.get(&m.url_path("mod")).await.status(),
        StatusCode::BAD_GATEWAY
    );
    upstream.set_always(None);
    let r = proxy.get(&m.url_path("mod")).await;
    assert_eq!(r.status(), StatusCode::OK, "the failure was not remembered");
    assert_eq!(r.bytes().await.unwrap().as_ref(), m.go_mod.as_slice());
}

#[tokio::test]
async fn a_zip_is_invisible_until_complete_and_no_temp_files_remain() {
    let upstream = FakeUpstream::start().await;
    let m = Module::sized("example.com/big", "v1.0.0", 2 << 20);
    upstream.add(m.clone());
    // 2 MiB at 64 KiB per 10 ms: the download takes about 0.3 s.
    upstream.push_faults(&m.url_path("zip"), &[Fault::Slow(64 << 10)]);
    let proxy = TestProxy::start(&[&upstream.url]).await;
    let url = format!("{}{}", proxy.url, m.url_path("zip"));
    let download = tokio::spawn(async move {
        support::client()
            .get(url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
    });
    let final_path = proxy.cache.path().join("example.com/big/@v/v1.0.0.zip");
    let mut saw_temp = false;
    while !download.is_finished() {
        if let Ok(data) = std::fs::read(&final_path) {
            assert_eq!(
                data, m.zip,
                "the final name only ever holds the complete zip"
            );
        }
        saw_temp |= proxy.cache_files().iter().any(|f| f.contains(".tmp-"));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(saw_temp, "the download was written to a temp file first");
    assert_eq!(download.await.unwrap().as_ref(), m.zip.as_slice());
    // Metadata is written behind the answer.
    proxy.settle().await;
    let files = proxy.cache_files();
    assert!(
        files.iter().all(|f| !f.contains(".tmp-")),
        "no temp files left: {files:?}"
    );
}

#[tokio::test]
async fn invalid_content_is_refused_and_not_cached() {
    let upstream = FakeUpstream::start().await;
    let m = Module::simple("example.com/bad", "v1.0.0");
    let m2 = Module::simple("example.com/bad", "v1.0.1");
    upstream.add(m.clone());
    upstream.add(m2.clone());
    let proxy = TestProxy::start(&[&upstream.url]).await;
    let wrong_version = br#"{"Version":"v9.9.9"}"#.to_vec();
    let not_a_go_mod = b"<html>502 Bad Gateway</html>\n".to_vec();
    let not_a_zip = b"PK\x03\x04 garbage".to_vec();
    let foreign_zip = support::module::build_zip(
        "example.com/other@v1.0.1/",
        &[("a.go".to_owned(), b"package a\n".to_vec())],
    );
    for (m, ext, body) in [
        (&m, "info", wrong_version),
        (&m, "mod", not_a_go_mod),
        (&m, "zip", not_a_zip),
        (&m2, "zip", foreign_zip),
    ] {
        upstream.push_faults(&m.url_path(ext), &[Fault::Body(body)]);
        let r = proxy.get(&m.url_path(ext)).await;
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY, "{ext}");
        let text = r.text().await.unwrap();
        assert!(text.contains("invalid response"), "{ext}: {text}");
        let name = format!("{}.{ext}", m.version);
        assert!(
            proxy.cache_files().iter().all(|f| !f.ends_with(&name)),
            "{name} not cached"
        );
        // The next request gets the real, valid artifact.
        let r = proxy.get(&m.url_path(ext)).await;
        assert_eq!(r.status(), StatusCode::OK, "{ext}");
    }
}

#[tokio::test]
async fn the_in_memory_backend_behaves_like_the_disk() {
    let upstream = FakeUpstream::start().await;
    let m = Module::simple("example.com/mem", "v1.0.0");
    upstream.add(m.clone());
    let proxy = TestProxy::start_in_memory(&[&upstream.url]).await;
    for ext in ["info", "mod", "zip"] {
        assert_eq!(
            proxy.get(&m.url_path(ext)).await.headers()["x-goproxy-cache"],
            "miss"
        );
        let hit = proxy.get(&m.url_path(ext)).await;
        assert_eq!(hit.headers()["x-goproxy-cache"], "hit");
        let body = hit.bytes().await.unwrap();
        let want = match ext {
            "info" => &m.info,
            "mod" => &m.go_mod,
            _ => &m.zip,
        };
        assert_eq!(body.as_ref(), want.as_slice(), "{ext}");
    }
    let part = support::client()
        .get(format!("{}{}", proxy.url, m.url_path("zip")))
        .header("range", "bytes=4-9")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes().await.unwrap().as_ref(), &m.zip[4..10]);
    assert!(
        proxy.cache_files().is_empty(),
        "nothing was written to disk"
    );
}

#[tokio::test]
async fn stale_copy_wins_over_a_mix_of_not_found_and_failures() {
    let primary = FakeUpstream::start().await;
    let mirror = FakeUpstream::start().await;
    primary.add(Module::simple("example.com/cached", "v1.0.0"));
    let proxy = TestProxy::start_with(&[&primary.url, &mirror.url], |s| {
        s.list_ttl = Duration::from_millis(100);
        s.retry_attempts = 1;
    })
    .await;
    assert_eq!(proxy.get(LIST).await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(150)).await;
    // The primary is down; the mirror never had the module.
    primary.set_always(Some(Fault::Status(503)));
    let r = proxy.get(LIST).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-goproxy-cache"], "stale");
    assert_eq!(r.text().await.unwrap(), "v1.0.0\n");
}

#[tokio::test]
async fn a_mix_of_not_found_and_failures_is_404_but_not_remembered() {
    let down = FakeUpstream::start().await;
    let mirror = FakeUpstream::start().await;
    let m = Module::simple("example.com/later", "v1.0.0");
    down.add(m.clone());
    down.set_always(Some(Fault::Status(503)));
    let proxy = TestProxy::start_with(&[&down.url, &mirror.url], |s| s.retry_attempts = 1).await;
    assert_eq!(
        proxy.get(&m.url_path("mod")).await.status(),
        StatusCode::NOT_FOUND
    );
    // The upstream that failed recovers: the next request must ask again.
    down.set_always(None);
    let r = proxy.get(&m.url_path("mod")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-goproxy-cache"], "miss");
}

#[tokio::test]
async fn gone_410_falls_through_and_is_remembered() {
    let gone = FakeUpstream::start().await;
    let other = FakeUpstream::start().await;
    gone.set_always(Some(Fault::Status(410)));
    let proxy = TestProxy::start(&[&gone.url, &other.url]).await;
    let path = "/example.com/removed/@v/v1.0.0.info";
    assert_eq!(proxy.get(path).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(gone.hits(path), 1, "410 is not retried");
    assert_eq!(other.hits(path), 1, "410 moves on to the next upstream");
    let again = proxy.get(path).await;
    assert_eq!(again.headers()["x-goproxy-cache"], "negative");
    assert_eq!(gone.hits(path) + other.hits(path), 2);
}

#[tokio::test]
async fn a_failing_disk_is_a_500_that_tries_no_other_upstream_and_is_not_remembered() {
    let first = FakeUpstream::start().await;
    let second = FakeUpstream::start().await;
    let m = Module::simple("example.com/disk", "v1.0.0");
    first.add(m.clone());
    second.add(m.clone());
    let storage = std::sync::Arc::new(support::FailingStorage::default());
    let proxy = TestProxy::start_with_storage(&[&first.url, &second.url], storage.clone()).await;
    storage.fail_writes(true);
    let r = proxy.get(&m.url_path("zip")).await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = r.text().await.unwrap();
    assert!(body.contains("internal error"), "{body}");
    assert_eq!(first.hits(&m.url_path("zip")), 1);
    assert_eq!(
        second.hits(&m.url_path("zip")),
        0,
        "another upstream cannot fix a local failure"
    );
    storage.fail_writes(false);
    let r = proxy.get(&m.url_path("zip")).await;
    assert_eq!(r.status(), StatusCode::OK, "the failure was not remembered");
    assert_eq!(r.bytes().await.unwrap().as_ref(), m.zip.as_slice());
}

#[tokio::test]
async fn a_small_artifact_is_served_from_memory_even_when_the_disk_refuses_it() {
    use goproxy::storage::Storage;
    let upstream = FakeUpstream::start().await;
    let m = Module::simple("example.com/fulldisk", "v1.0.0");
    upstream.add(m.clone());
    let storage = std::sync::Arc::new(support::FailingStorage::default());
    let proxy = TestProxy::start_with_storage(&[&upstream.url], storage.clone()).await;
    storage.fail_writes(true);
    let r = proxy.get(&m.url_path("mod")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-goproxy-cache"], "miss");
    assert_eq!(r.bytes().await.unwrap().as_ref(), m.go_mod.as_slice());
    assert!(
        storage
            .head(&m.url_path("mod")[1..])
            .await
            .unwrap()
            .is_none(),
        "nothing was stored"
    );
    let metrics = proxy.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "goproxy_cache_store_failures_total 1"),
        "{metrics}"
    );
    // Not stored, so the next request fetches it again (once the disk is
    // back, it is stored).
    storage.fail_writes(false);
    let r = proxy.get(&m.url_path("mod")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(upstream.hits(&m.url_path("mod")), 2);
    assert!(
        storage
            .head(&m.url_path("mod")[1..])
            .await
            .unwrap()
            .is_some()
    );
    let r = proxy.get(&m.url_path("mod")).await;
    assert_eq!(r.headers()["x-goproxy-cache"], "hit");
    assert_eq!(upstream.hits(&m.url_path("mod")), 2);
}
