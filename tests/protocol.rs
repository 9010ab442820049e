//! The GOPROXY protocol as served to clients: endpoints, content types, headers,
//! escaping, HEAD, conditional and range requests, and refusal of malformed paths.

mod support;

use reqwest::StatusCode;
use support::{FakeUpstream, Module, TestProxy, client};

async fn setup() -> (FakeUpstream, TestProxy, Module) {
    let upstream = FakeUpstream::start().await;
    let m = Module::simple("example.com/hello", "v1.0.0");
    upstream.add(m.clone());
    upstream.add(Module::simple("example.com/hello", "v1.1.0"));
    let proxy = TestProxy::start(&[&upstream.url]).await;
    (upstream, proxy, m)
}

#[tokio::test]
async fn serves_every_endpoint_with_its_content_type() {
    let (_up, proxy, m) = setup().await;
    let cases = [
        (
            "/example.com/hello/@v/list",
            "text/plain; charset=utf-8",
            b"v1.0.0\nv1.1.0\n".to_vec(),
        ),
        (
            &m.url_path("info") as &str,
            "application/json",
            m.info.clone(),
        ),
        (
            &m.url_path("mod"),
            "text/plain; charset=utf-8",
            m.go_mod.clone(),
        ),
        (&m.url_path("zip"), "application/zip", m.zip.clone()),
    ];
    for (path, content_type, body) in cases {
        let r = proxy.get(path).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.headers()["content-type"], content_type, "{path}");
        assert_eq!(
            r.headers()["content-length"],
            body.len().to_string().as_str(),
            "{path}"
        );
        assert!(r.headers().contains_key("etag"), "{path}");
        assert!(r.headers().contains_key("last-modified"), "{path}");
        assert!(r.headers().contains_key("cache-control"), "{path}");
        assert_eq!(r.bytes().await.unwrap().as_ref(), body.as_slice(), "{path}");
    }
    let latest = proxy.get("/example.com/hello/@latest").await;
    assert_eq!(latest.status(), StatusCode::OK);
    assert_eq!(latest.headers()["content-type"], "application/json");
    let v: serde_json::Value = serde_json::from_slice(&latest.bytes().await.unwrap()).unwrap();
    assert_eq!(v["Version"], "v1.1.0");
}

#[tokio::test]
async fn immutable_and_mutable_answers_advertise_different_lifetimes() {
    let (_up, proxy, m) = setup().await;
    let zip = proxy.get(&m.url_path("zip")).await;
    let cc = zip.headers()["cache-control"].to_str().unwrap().to_owned();
    assert!(
        cc.contains("immutable") && cc.contains("max-age=604800"),
        "{cc}"
    );
    let list = proxy.get("/example.com/hello/@v/list").await;
    assert_eq!(list.headers()["cache-control"], "public, max-age=60");
}

#[tokio::test]
async fn head_has_headers_and_no_body() {
    let (_up, proxy, m) = setup().await;
    for path in [
        m.url_path("zip"),
        m.url_path("info"),
        "/example.com/hello/@v/list".to_owned(),
        "/health".to_owned(),
    ] {
        let r = client()
            .head(format!("{}{}", proxy.url, path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        if path.ends_with(".zip") {
            assert_eq!(
                r.headers()["content-length"],
                m.zip.len().to_string().as_str()
            );
        }
        assert!(r.bytes().await.unwrap().is_empty(), "{path}");
    }
}

#[tokio::test]
async fn upper_case_module_paths_are_escaped() {
    let upstream = FakeUpstream::start().await;
    let m = Module::simple("github.com/Azure/Go-Thing", "v1.2.3");
    upstream.add(m.clone());
    let proxy = TestProxy::start(&[&upstream.url]).await;
    assert_eq!(
        m.url_path("mod"),
        "/github.com/!azure/!go-!thing/@v/v1.2.3.mod"
    );
    let r = proxy.get(&m.url_path("zip")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().as_ref(), m.zip.as_slice());
    assert!(
        proxy
            .cache_files()
            .contains(&"github.com/!azure/!go-!thing/@v/v1.2.3.zip".to_owned())
    );
    // Raw capitals are not a valid escaped path.
    let r = proxy.get("/github.com/Azure/Go-Thing/@v/v1.2.3.mod").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn range_and_conditional_requests_on_hits() {
    let (_up, proxy, m) = setup().await;
    let path = format!("{}{}", proxy.url, m.url_path("zip"));
    let full = client().get(&path).send().await.unwrap();
    let etag = full.headers()["etag"].to_str().unwrap().to_owned();
    let last_modified = full.headers()["last-modified"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"'), "strong etag: {etag}");
    full.bytes().await.unwrap();

    let part = get_range(&path, "bytes=10-19").await;
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 10-19/{}", m.zip.len()).as_str()
    );
    assert_eq!(part.bytes().await.unwrap().as_ref(), &m.zip[10..20]);

    let tail = get_range(&path, "bytes=-5").await;
    assert_eq!(tail.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        tail.bytes().await.unwrap().as_ref(),
        &m.zip[m.zip.len() - 5..]
    );

    let resumed = client()
        .get(&path)
        .header("range", "bytes=20-")
        .header("if-range", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resumed.bytes().await.unwrap().as_ref(), &m.zip[20..]);

    let changed = client()
        .get(&path)
        .header("range", "bytes=20-")
        .header("if-range", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(
        changed.status(),
        StatusCode::OK,
        "a stale If-Range gets the whole file"
    );
    assert_eq!(changed.bytes().await.unwrap().len(), m.zip.len());

    let beyond = get_range(&path, format!("bytes={}-", m.zip.len() + 10)).await;
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let types: Vec<_> = beyond.headers().get_all("content-type").iter().collect();
    assert_eq!(
        types,
        ["text/plain; charset=utf-8"],
        "one content type, the error's"
    );
    assert_eq!(
        beyond.headers()["content-range"],
        format!("bytes */{}", m.zip.len()).as_str()
    );

    let not_modified = client()
        .get(&path)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
    let not_modified = client()
        .get(&path)
        .header("if-modified-since", &last_modified)
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn health_and_readiness() {
    let (_up, proxy, _m) = setup().await;
    for path in ["/health", "/healthz"] {
        let r = proxy.get(path).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(r.text().await.unwrap(), r#"{"status":"ok"}"#);
    }
    let r = proxy.get("/readyz").await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn readiness_fails_when_the_cache_is_not_writable() {
    let upstream = FakeUpstream::start().await;
    let proxy = TestProxy::start(&[&upstream.url]).await;
    assert_eq!(proxy.get("/readyz").await.status(), StatusCode::OK);
    // The cache directory is replaced by a regular file: nothing can be written.
    let dir = proxy.cache.path().to_owned();
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();
    let r = proxy.get("/readyz").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    let body = r.text().await.unwrap();
    assert!(
        !body.contains(dir.to_str().unwrap()),
        "no local paths in bodies: {body}"
    );
    assert_eq!(
        proxy.get("/healthz").await.status(),
        StatusCode::OK,
        "liveness does not depend on the cache"
    );
    std::fs::remove_file(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
}

#[tokio::test]
async fn startup_refuses_an_unusable_cache_directory() {
    let dir = tempfile::tempdir().unwrap();
    let blocked = dir.path().join("cache");
    std::fs::write(&blocked, b"a file, not a directory").unwrap();
    let settings = support::test_settings(&blocked, &["http://127.0.0.1:9"]);
    let err = match goproxy::server::start(std::sync::Arc::new(settings)).await {
        Ok(_) => panic!("started with a cache directory that is a file"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(blocked.to_str().unwrap()), "{err}");
    assert!(err.contains("CACHE_DIR"), "says how to fix it: {err}");
}

#[tokio::test]
async fn other_methods_are_refused() {
    let (_up, proxy, m) = setup().await;
    let r = client()
        .post(format!("{}{}", proxy.url, m.url_path("info")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["allow"], "GET, HEAD");
}

/// Every malformed path is refused with a text/plain reason, without any upstream
/// request and without touching the cache directory.
#[tokio::test]
async fn malformed_paths_never_reach_disk_or_upstream() {
    let (upstream, proxy, _m) = setup().await;
    let long = format!("/example.com/{}/@v/list", "a".repeat(3000));
    let long_element = format!("/example.com/{}/@v/list", "a".repeat(300));
    let long_version = format!("/example.com/hello/@v/{}.info", "b".repeat(300));
    let cases: Vec<(&str, u16)> = vec![
        ("/%2e%2e/%2e%2e/etc/passwd.info", 400),
        ("/example.com/%2e%2e/%2e%2e/@v/list", 400),
        ("/example.com/hello/@v/..%2f..%2fx.zip", 400),
        ("/example.com/hello/@v/%2e%2e.info", 400),
        ("/example.com/a%5cb/@v/list", 400),
        ("/example.com/a\\b/@v/list", 400),
        ("/example.com/a%00b/@v/list", 400),
        ("/example.com//hello/@v/list", 400),
        ("/example.com/hello/@v//v1.0.0.info", 400),
        ("/example.com/./hello/@v/list", 400),
        ("/example.com/hello/@v/v1.0.0.info%", 400),
        ("/example.com/hello/@v/v1.0.0.info%zz", 400),
        ("/example.com/%ff%fe/@v/list", 400),
        ("/example.com/Hello/@v/list", 400),
        ("/example.com/!!hello/@v/list", 400),
        ("/example.com/hello!/@v/list", 400),
        (&long, 414),
        (&long_element, 400),
        (&long_version, 400),
        ("/nodot/@v/list", 404),
        ("/-example.com/x/@v/list", 404),
        ("/example.com/x/v1/@v/list", 404),
        ("/example.com/hello/@v/v2.0.0.mod", 404),
        ("/example.com/hello/@v/master.zip", 404),
        ("/example.com/hello/@v/v1.0.mod", 404),
        ("/example.com/hello/@v/v1.0.0.tar", 404),
        ("/example.com/hello/@v/.tmp-x.info", 400),
        ("/example.com/hello/@v/.hidden.info", 400),
        ("/example.com/hello", 404),
    ];
    for (path, want) in cases {
        let r = support::raw_get(proxy.addr, path).await;
        assert_eq!(r.status, want, "{path}: {}", r.body);
        assert_eq!(
            r.header("content-type"),
            Some("text/plain; charset=utf-8"),
            "{path}"
        );
        assert!(!r.body.trim().is_empty(), "{path}: body says why");
        assert!(
            !r.body.contains(proxy.cache.path().to_str().unwrap()),
            "{path}: {}",
            r.body
        );
    }
    assert_eq!(
        upstream.total_hits(),
        0,
        "no malformed request reached the upstream: {:?}",
        upstream.log()
    );
    assert!(
        proxy.cache_files().is_empty(),
        "nothing written: {:?}",
        proxy.cache_files()
    );
}

#[tokio::test]
async fn absolute_paths_in_the_request_target_are_refused() {
    let (upstream, proxy, _m) = setup().await;
    for target in [
        "//etc/passwd.info",
        "/example.com/hello/@v/%2Fetc%2Fpasswd.info",
        "/%2Fetc/passwd/@v/list",
    ] {
        let r = support::raw_get(proxy.addr, target).await;
        assert_eq!(r.status, 400, "{target}: {}", r.body);
    }
    assert_eq!(upstream.total_hits(), 0);
}

/// `go get m@v2.0.0` for a module without a /v2 suffix asks for `v2.0.0.info`;
/// the upstream resolves it to `v2.0.0+incompatible`, so the proxy must ask.
#[tokio::test]
async fn bare_major_version_info_is_resolved_upstream() {
    let upstream = FakeUpstream::start().await;
    let m = Module::with_files(
        "example.com/inc",
        "v2.0.0+incompatible",
        None,
        &[("inc.go", b"package inc\n")],
    );
    upstream.add(m.clone());
    let proxy = TestProxy::start(&[&upstream.url]).await;
    let r = proxy.get("/example.com/inc/@v/v2.0.0.info").await;
    assert_eq!(r.status(), StatusCode::OK);
    let info: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(info["Version"], "v2.0.0+incompatible");
    // .mod and .zip name exact versions: v2.0.0 cannot exist for this path.
    assert_eq!(
        proxy.get("/example.com/inc/@v/v2.0.0.mod").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(upstream.hits("/example.com/inc/@v/v2.0.0.mod"), 0);
}

/// Zips over the memory cache's size stream from the file in 128 KiB chunks;
/// a range inside must come out byte for byte, across chunk boundaries.
#[tokio::test]
async fn ranges_of_a_streamed_zip_cross_chunk_boundaries() {
    let upstream = FakeUpstream::start().await;
    let m = Module::sized("example.com/large", "v1.0.0", 400 * 1024);
    upstream.add(m.clone());
    let proxy = TestProxy::start(&[&upstream.url]).await;
    let path = format!("{}{}", proxy.url, m.url_path("zip"));
    let miss = client().get(&path).send().await.unwrap();
    assert_eq!(miss.bytes().await.unwrap(), m.zip);

    let full = client().get(&path).send().await.unwrap();
    assert_eq!(full.headers()["x-goproxy-cache"], "hit");
    assert_eq!(
        full.bytes().await.unwrap(),
        m.zip,
        "whole zip from the file"
    );

    let (start, end) = (100_000, 300_000);
    let part = get_range(&path, format!("bytes={start}-{end}")).await;
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes {start}-{end}/{}", m.zip.len()).as_str()
    );
    assert_eq!(part.bytes().await.unwrap(), m.zip[start..=end]);

    let tail = get_range(&path, "bytes=-70000").await;
    assert_eq!(tail.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(tail.bytes().await.unwrap(), m.zip[m.zip.len() - 70000..]);
}

/// GET `path` with a `Range` header.
async fn get_range(path: &str, range: impl AsRef<str>) -> reqwest::Response {
    client()
        .get(path)
        .header("range", range.as_ref())
        .send()
        .await
        .unwrap()
}
