//! The status page at `/` in a real headless browser (Debian's chromium): the
//! numbers its script renders from `/api/status` match the server's state, and
//! the screenshot is a real, non-blank picture. Also the JSON itself.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::{FakeUpstream, Module, TestProxy, client};

const CHROMIUM: &str = "/usr/bin/chromium";
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 2000;

async fn status(proxy: &TestProxy) -> Value {
    let response = proxy.get("/api/status").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    serde_json::from_slice(&response.bytes().await.unwrap()).expect("JSON")
}

/// Polls `/api/status` until `done` holds.
async fn status_until(proxy: &TestProxy, done: impl Fn(&Value) -> bool) -> Value {
    support::poll_until(|| status(proxy), done).await
}

fn chromium(profile: &Path, args: &[&str], url: &str) -> std::process::Output {
    Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size={WIDTH},{HEIGHT}"))
        .arg("--virtual-time-budget=5000")
        .args(args)
        .arg(url)
        .output()
        .expect("run chromium (scripts/test.sh installs it)")
}

/// The `data-value` of the element with this id in the rendered DOM.
fn shown(dom: &str, id: &str) -> String {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("#{id} not in the page"));
    let element = &dom[start..dom[start..].find('>').map_or(dom.len(), |e| start + e)];
    let value = element
        .split("data-value=\"")
        .nth(1)
        .unwrap_or_else(|| panic!("#{id} has no value: {element}"));
    value[..value.find('"').unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_shows_the_servers_numbers_in_a_real_browser() {
    let upstream = FakeUpstream::start().await;
    let small = Module::simple("example.com/small", "v1.0.0");
    // Slow enough to be in progress while the browser looks.
    let big = Module::sized("example.com/big", "v1.0.0", 3_000_000);
    upstream.add(small.clone());
    upstream.add(big.clone());
    upstream.throttle(1_000_000, 100_000);
    let proxy = TestProxy::start(&[&upstream.url]).await;

    for ext in ["info", "mod", "zip", "info"] {
        assert_eq!(proxy.get(&small.url_path(ext)).await.status(), 200);
    }
    assert_eq!(proxy.get("/example.com/absent/@v/list").await.status(), 404);
    let url = format!("{}{}", proxy.url, big.url_path("zip"));
    let download = tokio::spawn(async move { client().get(url).send().await });
    let expected = status_until(&proxy, |s| {
        s["downloads"]["active"]
            .as_array()
            .is_some_and(|a| a.len() == 1)
            && s["cache"]["entries"] == 1
    })
    .await;
    assert_eq!(
        expected["downloads"]["active"][0]["name"],
        "example.com/big@v1.0.0"
    );
    assert_eq!(expected["cache"]["entries"], 1);
    assert_eq!(expected["requests"]["hits"], 1);
    assert_eq!(expected["requests"]["misses"], 4);

    let profile = tempfile::tempdir().unwrap();
    let page = format!("{}/", proxy.url);
    let dom = chromium(profile.path(), &["--dump-dom"], &page);
    assert!(
        dom.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8(dom.stdout).unwrap();
    assert!(
        dom.contains("data-loaded=\"true\""),
        "the script rendered the status: {dom}"
    );
    assert_eq!(shown(&dom, "cache-entries"), "1");
    assert_eq!(shown(&dom, "hits"), "1");
    assert_eq!(shown(&dom, "misses"), "4");
    assert_eq!(shown(&dom, "negative"), "0");
    assert_eq!(shown(&dom, "hit-ratio"), "0.2");
    assert_eq!(shown(&dom, "active-count"), "1");
    assert_eq!(shown(&dom, "queued"), "0");
    assert!(
        dom.contains("data-name=\"example.com/big@v1.0.0\""),
        "download row"
    );
    assert!(
        dom.contains("data-module=\"example.com/small\""),
        "top module row"
    );
    assert!(
        dom.contains("/example.com/absent/@v/list"),
        "recent error row"
    );
    assert!(
        dom.contains(&format!("export GOPROXY={}", proxy.url)),
        "GOPROXY hint"
    );
    assert!(dom.contains(&upstream.url), "upstream listed");
    assert!(dom.contains(env!("CARGO_PKG_VERSION")), "version shown");
    // The browser's own requests add to the totals, never to hits or misses.
    let after = status(&proxy).await;
    assert_eq!(after["requests"]["hits"], 1);
    assert_eq!(after["requests"]["misses"], 4);

    let png = profile.path().join("status.png");
    let shot = chromium(
        profile.path(),
        &[&format!("--screenshot={}", png.display())],
        &page,
    );
    assert!(
        shot.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    check_png(&png);
    if let Ok(dir) = std::env::var("GOPROXY_SCREENSHOT_DIR") {
        std::fs::copy(&png, Path::new(&dir).join("status.png")).unwrap();
    }
    download.abort();
    proxy.stop().await;
}

/// A decodable PNG of the window's size with more than one colour in it.
fn check_png(path: &Path) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("buffer size")];
    let info = reader.next_frame(&mut pixels).expect("a frame");
    assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
    let channels = info.color_type.samples();
    let pixels = &pixels[..info.buffer_size()];
    let first = &pixels[..channels];
    let distinct = pixels
        .chunks(channels)
        .filter(|p| *p != first)
        .take(1000)
        .count();
    assert!(distinct >= 1000, "the screenshot is (nearly) one colour");
}

#[tokio::test]
async fn status_json_reports_traffic_modules_and_errors() {
    let upstream = FakeUpstream::start().await;
    let m = Module::simple("example.com/popular", "v1.0.0");
    upstream.add(m.clone());
    let proxy = TestProxy::start_with(&[&upstream.url], |s| {
        s.private_upstreams = Vec::new();
    })
    .await;
    for _ in 0..3 {
        proxy.get(&m.url_path("info")).await;
    }
    proxy.get("/example.com/other/@v/v1.0.0.mod").await;
    let s = status_until(&proxy, |s| s["cache"]["entries"] == 1).await;
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert!(s["uptime_seconds"].is_u64());
    assert_eq!(s["upstreams"][0]["url"], upstream.url.as_str());
    assert_eq!(s["upstreams"][0]["modules"], "public");
    assert_eq!(s["cache"]["entries"], 1);
    assert!(s["cache"]["size_bytes"].as_u64().unwrap() > 0);
    let r = &s["requests"];
    assert_eq!(
        (r["hits"].as_u64(), r["misses"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(r["hit_ratio"], 0.5);
    assert_eq!(s["top_modules"][0]["module"], "example.com/popular");
    assert_eq!(s["top_modules"][0]["requests"], 3);
    assert_eq!(s["top_modules"][1]["module"], "example.com/other");
    let error = &s["recent_errors"][0];
    assert_eq!(error["path"], "/example.com/other/@v/v1.0.0.mod");
    assert_eq!(error["status"], 404);
    assert!(
        error["reason"].as_str().unwrap().contains("not found"),
        "{error}"
    );
    assert_eq!(s["downloads"]["queued"], 0);
    assert_eq!(s["downloads"]["active"], serde_json::json!([]));
    proxy.stop().await;
}
