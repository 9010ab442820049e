//! The `/index` feed: module versions cached through the proxy appear as
//! index.golang.org-style JSON lines, oldest first, with `since` (inclusive)
//! and `limit` paging; versions stored or removed behind the proxy's back are
//! reconciled at startup; following the feed by its timestamps sees every
//! version exactly once.

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use goproxy::cache::index;
use goproxy::cache::usage::UsageDb;
use goproxy::storage::Storage;
use goproxy::storage::fs::FsStorage;
use support::lifecycle::write_version;
use support::{FakeUpstream, Module, TestProxy};

#[derive(Debug, serde::Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Entry {
    #[serde(rename = "Path")]
    path: String,
    #[serde(rename = "Version")]
    version: String,
    #[serde(rename = "Timestamp")]
    timestamp: String,
}

impl Entry {
    fn name(&self) -> String {
        format!("{}@{}", self.path, self.version)
    }
    fn nanos(&self) -> i128 {
        self.timestamp
            .parse::<jiff::Timestamp>()
            .unwrap_or_else(|e| panic!("Timestamp {:?} is not RFC 3339: {e}", self.timestamp))
            .as_nanosecond()
    }
}

/// GET /index?<query>: asserts a 200 NDJSON answer and parses every line.
async fn feed(proxy: &TestProxy, query: &str) -> Vec<Entry> {
    let response = proxy.get(&format!("/index?{query}")).await;
    assert_eq!(response.status(), 200, "GET /index?{query}");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/x-ndjson"),
        "{content_type}"
    );
    let body = response.text().await.expect("body");
    assert!(
        body.is_empty() || body.ends_with('\n'),
        "lines end with a newline: {body:?}"
    );
    body.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("line {line:?}: {e}")))
        .collect()
}

fn names(entries: &[Entry]) -> Vec<String> {
    entries.iter().map(Entry::name).collect()
}

fn now_nanos() -> i128 {
    i128::from(index::now_nanos())
}

async fn get_ok(proxy: &TestProxy, path: &str) {
    let response = proxy.get(path).await;
    assert_eq!(response.status(), 200, "GET {path}");
    response.bytes().await.expect("body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_fetched_through_the_proxy_are_listed_in_the_order_they_were_cached() {
    let upstream = FakeUpstream::start().await;
    let one_v1 = Module::simple("a.example/one", "v1.0.0");
    let one_v2 = Module::simple("a.example/one", "v1.1.0");
    let upper = Module::simple("github.com/Upper/Case", "v0.1.0-RC1");
    let listed_only = Module::simple("b.example/listed", "v1.0.0");
    for m in [&one_v1, &one_v2, &upper, &listed_only] {
        upstream.add(m.clone());
    }
    let proxy = TestProxy::start(&[&upstream.url]).await;
    assert!(
        feed(&proxy, "").await.is_empty(),
        "an empty cache has an empty index"
    );

    let before = now_nanos();
    get_ok(&proxy, &one_v1.url_path("mod")).await;
    get_ok(&proxy, &one_v2.url_path("zip")).await;
    get_ok(&proxy, &upper.url_path("info")).await;
    // A list names versions but caches none of them.
    get_ok(&proxy, &format!("/{}/@v/list", listed_only.escaped_path())).await;
    let after = now_nanos();

    let all = feed(&proxy, "").await;
    assert_eq!(
        names(&all),
        [
            "a.example/one@v1.0.0",
            "a.example/one@v1.1.0",
            // Unescaped, as on index.golang.org (the URL said !upper/!case).
            "github.com/Upper/Case@v0.1.0-RC1",
        ]
    );
    let times: Vec<i128> = all.iter().map(Entry::nanos).collect();
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing: {all:?}"
    );
    assert!(
        before <= times[0] && times[2] <= after,
        "cached during the test: {all:?}"
    );
    assert!(
        all.iter().all(|e| e.timestamp.ends_with('Z')),
        "UTC: {all:?}"
    );

    // The rest of a version keeps its first time.
    get_ok(&proxy, &one_v1.url_path("zip")).await;
    get_ok(&proxy, &one_v1.url_path("info")).await;
    assert_eq!(feed(&proxy, "").await, all);

    // Paging: limit cuts, since is inclusive.
    assert_eq!(names(&feed(&proxy, "limit=2").await), names(&all[..2]));
    let from_second = feed(&proxy, &format!("since={}", all[1].timestamp)).await;
    assert_eq!(names(&from_second), names(&all[1..]));
    let after_last = format!(
        "since={}",
        jiff::Timestamp::from_nanosecond(times[2] + 1).unwrap()
    );
    assert!(feed(&proxy, &after_last).await.is_empty());
    // An offset is fine (`+` must be sent as %2B in a query string).
    let offset = jiff::Timestamp::from_nanosecond(times[1])
        .unwrap()
        .display_with_offset(jiff::tz::offset(2))
        .to_string();
    assert!(offset.contains("+02:00"), "{offset}");
    let offset = offset.replace('+', "%2B");
    assert_eq!(
        names(&feed(&proxy, &format!("since={offset}")).await),
        names(&all[1..])
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_and_methods_are_refused_clearly() {
    let proxy = TestProxy::start(&[]).await;
    for (query, needle) in [
        ("since=yesterday", "since"),
        ("since=2019-04-10", "RFC 3339"),
        ("limit=0", "limit"),
        ("limit=-5", "limit"),
        ("limit=many", "\"many\""),
    ] {
        let response = proxy.get(&format!("/index?{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        let body = response.text().await.unwrap();
        assert!(body.contains(needle), "{query}: {body}");
    }
    // Too large a limit is lowered to the maximum, as index.golang.org does.
    assert_eq!(proxy.get("/index?limit=100000").await.status(), 200);
    let post = support::client()
        .post(format!("{}/index", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");
    let head = support::client()
        .head(format!("{}/index", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_usage_database_the_index_says_it_is_unavailable() {
    let proxy = TestProxy::start_with(&[], |s| {
        std::fs::write(
            s.cache_dir.join(".usage.db"),
            b"not a database\n".repeat(100),
        )
        .unwrap();
    })
    .await;
    let response = proxy.get("/index").await;
    assert_eq!(response.status(), 503);
    let body = response.text().await.unwrap();
    assert!(body.contains("usage database"), "{body}");
    proxy.stop().await;
}

/// Polls the feed until `want` holds (the startup reconciliation runs in the background).
async fn wait_for_feed(proxy: &TestProxy, want: impl Fn(&[Entry]) -> bool) -> Vec<Entry> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let entries = feed(proxy, "").await;
        if want(&entries) {
            return entries;
        }
        assert!(Instant::now() < deadline, "feed never settled: {entries:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_reconciles_the_index_with_the_files() {
    let upstream = FakeUpstream::start().await;
    let kept = Module::simple("a.example/kept", "v1.0.0");
    let deleted = Module::simple("a.example/deleted", "v1.0.0");
    upstream.add(kept.clone()).add(deleted.clone());
    let proxy = TestProxy::start(&[&upstream.url]).await;
    get_ok(&proxy, &kept.url_path("mod")).await;
    get_ok(&proxy, &deleted.url_path("mod")).await;
    let first = feed(&proxy, "").await;
    assert_eq!(
        names(&first),
        ["a.example/kept@v1.0.0", "a.example/deleted@v1.0.0"]
    );
    let cache = proxy.stop_keeping_cache().await;

    // Behind the proxy's back: one version deleted, one copied in.
    std::fs::remove_dir_all(cache.path().join("a.example/deleted")).unwrap();
    let copied = Module::simple("c.example/copied", "v2.0.0+incompatible");
    write_version(cache.path(), &copied);

    let proxy = TestProxy::start_on(cache, &[&upstream.url], |_| {}).await;
    let entries = wait_for_feed(&proxy, |e| e.len() == 2 && e[1].path == "c.example/copied").await;
    assert_eq!(
        names(&entries),
        [
            "a.example/kept@v1.0.0",
            "c.example/copied@v2.0.0+incompatible"
        ]
    );
    assert_eq!(entries[0], first[0], "a kept version keeps its time");
    // Found after the last entry a follower could have seen, so it is not skipped.
    assert!(entries[1].nanos() > first[1].nanos());
    proxy.stop().await;
}

/// A cache of a few thousand versions: one walk reconciles them, and a
/// follower paging with `since` = last timestamp sees each exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_a_large_index_page_by_page_sees_every_version_once() {
    const VERSIONS: usize = 3000;
    // Thousands of files: on a tmpfs where there is one, since unlinking them
    // on a disk mounted with `discard` takes longer than the whole test.
    let shm = Path::new("/dev/shm");
    let cache = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    for i in 0..VERSIONS {
        let dir = cache.path().join(format!("example.com/m{i:04}/@v"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("v1.0.0.mod"),
            format!("module example.com/m{i:04}\n"),
        )
        .unwrap();
    }
    let storage: Arc<dyn Storage> = Arc::new(FsStorage::new(cache.path().to_owned()));
    let usage = Arc::new(UsageDb::open(cache.path().join(".usage.db")).unwrap());
    let started = Instant::now();
    let reconciled = index::reconcile(storage.as_ref(), &usage).await.unwrap();
    let reconcile_time = started.elapsed();
    assert_eq!(reconciled.added, VERSIONS);
    drop(usage);

    let proxy = TestProxy::start_on(cache, &[], |_| {}).await;
    let mut seen = Vec::new();
    let mut since = String::new();
    let mut requests = Vec::new();
    loop {
        let started = Instant::now();
        let page = feed(&proxy, &format!("since={since}")).await;
        requests.push(started.elapsed());
        assert!(page.len() <= 2000, "pages hold at most 2000 entries");
        // The entry at `since` itself comes again: skip it.
        let new: Vec<Entry> = page
            .into_iter()
            .filter(|e| {
                seen.last()
                    .is_none_or(|last: &Entry| e.nanos() > last.nanos())
            })
            .collect();
        if new.is_empty() {
            break;
        }
        since = new.last().unwrap().timestamp.clone();
        seen.extend(new);
    }
    assert_eq!(seen.len(), VERSIONS);
    let unique: HashSet<String> = seen.iter().map(Entry::name).collect();
    assert_eq!(unique.len(), VERSIONS);
    eprintln!(
        "{VERSIONS} versions: reconcile (walk + insert) {reconcile_time:?}; /index pages of 2000: {requests:?}"
    );
    proxy.stop().await;
}
