//! The cache lifecycle: serving records when each module version was last used
//! (`<cache>/.usage.db`), eviction by age and by size works on whole module
//! versions (never touching a nested module), files without a usage row are
//! picked up by their file time, a download in progress survives eviction, the
//! proxy keeps serving when the usage database is unusable, the server evicts
//! periodically, and the `goproxy cache stats|gc|verify` commands and the
//! lifecycle settings work through the real binary.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use goproxy::cache::evict::{self, Policy, Report};
use goproxy::cache::usage::UsageDb;
use goproxy::storage::Storage;
use support::cli::*;
use support::lifecycle::*;
use support::process::command;
use support::{FakeUpstream, Module, TestProxy};

const DAY: i64 = 24 * 60 * 60;

fn age_policy(max_age: Duration) -> Policy {
    Policy {
        max_age,
        max_size: None,
    }
}

fn size_policy(max_size: u64) -> Policy {
    Policy {
        max_age: Duration::ZERO,
        max_size: Some(max_size),
    }
}

async fn evict_now(
    storage: &Arc<dyn Storage>,
    usage: &Arc<UsageDb>,
    policy: Policy,
    dry_run: bool,
) -> Report {
    evict::run(storage, usage, policy, now(), dry_run)
        .await
        .expect("eviction runs")
}

/// `(module, version)` of each removed entry, in the report's order.
fn removed(report: &Report) -> Vec<(String, String)> {
    report
        .removed
        .iter()
        .map(|(m, v, _, _)| key(m, v))
        .collect()
}

// ---- last-use tracking ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_info_mod_and_zip_records_the_versions_last_use_and_lists_record_none() {
    let upstream = FakeUpstream::start().await;
    // An upper-case path: rows use the escaped form, as cache paths do.
    let m = Module::simple("example.com/Served", "v1.0.0");
    upstream.add(m.clone());
    let proxy = TestProxy::start(&[&upstream.url]).await;
    let before = now();
    fetch_module_files(&proxy, "example.com/!served").await;
    fetch_version(&proxy, &m).await;
    // A second round is served from the cache and counts as a use too.
    fetch_version(&proxy, &m).await;
    let cache = proxy.stop_keep_cache().await;
    let after = now();

    let db = open_usage(cache.path());
    let all = db.last_used_all().expect("rows");
    assert_eq!(
        all.keys().cloned().collect::<Vec<_>>(),
        [key("example.com/!served", "v1.0.0")],
        "one row for the version, none for list or @latest"
    );
    let at = all[&key("example.com/!served", "v1.0.0")];
    assert!(
        (before..=after).contains(&at),
        "last use {at} outside {before}..={after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_only_a_list_and_latest_creates_no_usage_rows() {
    let upstream = FakeUpstream::start().await;
    upstream.add(Module::simple("example.com/listed", "v1.0.0"));
    let proxy = TestProxy::start(&[&upstream.url]).await;
    fetch_module_files(&proxy, "example.com/listed").await;
    let cache = proxy.stop_keep_cache().await;
    assert!(rows(&open_usage(cache.path())).is_empty());
}

// ---- eviction by age ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn age_eviction_removes_exactly_the_old_versions_and_a_modules_files_with_its_last_version() {
    let upstream = FakeUpstream::start().await;
    let kept_module = "example.com/!aged";
    let versions: Vec<Module> = ["v1.0.0", "v1.1.0", "v1.2.0"]
        .iter()
        .map(|v| Module::simple("example.com/Aged", v))
        .collect();
    let gone = Module::simple("example.com/gone", "v1.0.0");
    for m in versions.iter().chain([&gone]) {
        upstream.add(m.clone());
    }
    let proxy = TestProxy::start(&[&upstream.url]).await;
    for m in versions.iter().chain([&gone]) {
        fetch_version(&proxy, m).await;
    }
    fetch_module_files(&proxy, kept_module).await;
    fetch_module_files(&proxy, "example.com/gone").await;
    let cache = proxy.stop_keep_cache().await;
    let root = cache.path();
    // A `.ziphash` (written when the checksum database vouched for a zip) is
    // part of its version too.
    std::fs::write(
        root.join("example.com/!aged/@v/v1.0.0.ziphash"),
        format!("{}\n", versions[0].zip_hash()),
    )
    .expect("write ziphash");

    let before = snapshot(root);
    let names: Vec<String> = before.iter().map(|(f, _)| f.clone()).collect();
    let old_files = version_files(&names, kept_module, "v1.0.0");
    for ext in [
        "info",
        "info.meta",
        "mod",
        "mod.meta",
        "zip",
        "zip.meta",
        "ziphash",
    ] {
        assert!(
            old_files.contains(&format!("{kept_module}/@v/v1.0.0.{ext}")),
            "fixture lacks .{ext}: {old_files:?}"
        );
    }
    assert_eq!(
        module_files(&names, "example.com/gone").len(),
        4,
        "{names:?}"
    );

    let usage = open_usage(root);
    let long_ago = now() - 10 * DAY;
    usage
        .set_last_used(kept_module, "v1.0.0", long_ago)
        .unwrap();
    usage
        .set_last_used(kept_module, "v1.1.0", long_ago + 1)
        .unwrap();
    usage
        .set_last_used("example.com/gone", "v1.0.0", long_ago + 2)
        .unwrap();
    let storage = fs_storage(root);
    let report = evict_now(
        &storage,
        &usage,
        age_policy(Duration::from_secs(7 * DAY as u64)),
        false,
    )
    .await;

    assert_eq!(
        removed(&report),
        [
            key(kept_module, "v1.0.0"),
            key(kept_module, "v1.1.0"),
            key("example.com/gone", "v1.0.0"),
        ],
        "oldest first"
    );
    assert_eq!(report.picked_up, 0, "every served version had a row");
    assert_eq!(report.removed[0].3, long_ago, "reports the last use");
    let gone_versions: Vec<String> = [
        version_files(&names, kept_module, "v1.0.0"),
        version_files(&names, kept_module, "v1.1.0"),
        version_files(&names, "example.com/gone", "v1.0.0"),
        module_files(&names, "example.com/gone"),
    ]
    .concat();
    let expected: Vec<(String, Vec<u8>)> = before
        .iter()
        .filter(|(f, _)| !gone_versions.contains(f))
        .cloned()
        .collect();
    assert_eq!(
        snapshot(root),
        expected,
        "exactly the old versions' files (and the emptied module's list and @latest) are gone; \
         everything else is byte-identical"
    );
    // The kept module keeps its list and @latest: one of its versions is left.
    assert_eq!(module_files(&cache_files(root), kept_module).len(), 4);
    assert!(!root.join("example.com/gone").exists());
    let freed: u64 = before
        .iter()
        .filter(|(f, _)| gone_versions.contains(f))
        .map(|(_, b)| b.len() as u64)
        .sum();
    assert_eq!(report.freed, freed);
    assert_eq!(report.size_after, report.size_before - freed);
    assert_eq!(report.size_after, total_bytes(root));
    assert_eq!(rows(&usage), [key(kept_module, "v1.2.0")], "rows removed");
}

// ---- eviction by size ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_eviction_removes_the_least_recently_used_first_and_stops_once_it_fits() {
    let upstream = FakeUpstream::start().await;
    let module = "example.com/sized";
    // Sizes and last uses in different orders: recency decides, not size or version.
    let sizes = [
        ("v1.0.0", 40_000),
        ("v1.1.0", 10_000),
        ("v1.2.0", 30_000),
        ("v1.3.0", 20_000),
    ];
    let versions: Vec<Module> = sizes
        .iter()
        .map(|(v, n)| Module::sized(module, v, *n))
        .collect();
    for m in &versions {
        upstream.add(m.clone());
    }
    let proxy = TestProxy::start(&[&upstream.url]).await;
    for m in &versions {
        fetch_version(&proxy, m).await;
    }
    fetch_module_files(&proxy, module).await;
    let cache = proxy.stop_keep_cache().await;
    let root = cache.path();
    let usage = open_usage(root);
    let t = now() - 1_000;
    for (version, at) in [
        ("v1.2.0", t),
        ("v1.0.0", t + 100),
        ("v1.3.0", t + 200),
        ("v1.1.0", t + 300),
    ] {
        usage.set_last_used(module, version, at).unwrap();
    }
    let storage = fs_storage(root);
    let size_of =
        |version: &str| bytes_of(root, &version_files(&cache_files(root), module, version));

    // Exactly the room of the least recently used version: only it goes.
    let total = total_bytes(root);
    let max = total - size_of("v1.2.0");
    let before = snapshot(root);
    let dry = evict_now(&storage, &usage, size_policy(max), true).await;
    assert_eq!(removed(&dry), [key(module, "v1.2.0")]);
    assert_eq!(snapshot(root), before, "a dry run removes nothing");
    assert_eq!(rows(&usage).len(), 4, "a dry run keeps every row");

    let report = evict_now(&storage, &usage, size_policy(max), false).await;
    assert_eq!(removed(&report), [key(module, "v1.2.0")]);
    assert_eq!(report.size_before, total);
    assert_eq!(report.size_after, max);
    assert_eq!(total_bytes(root), max);
    assert!(version_files(&cache_files(root), module, "v1.2.0").is_empty());

    // One byte less than the next one frees: the next two least recently used go,
    // in that order, and the most recently used stays.
    let total = total_bytes(root);
    let max = total - size_of("v1.0.0") - 1;
    let report = evict_now(&storage, &usage, size_policy(max), false).await;
    assert_eq!(
        removed(&report),
        [key(module, "v1.0.0"), key(module, "v1.3.0")]
    );
    let last_uses: Vec<i64> = report.removed.iter().map(|r| r.3).collect();
    assert_eq!(last_uses, [t + 100, t + 200]);
    assert!(total_bytes(root) <= max);
    assert_eq!(report.size_after, total_bytes(root));
    let left = cache_files(root);
    assert!(version_files(&left, module, "v1.0.0").is_empty());
    assert!(version_files(&left, module, "v1.3.0").is_empty());
    assert_eq!(version_files(&left, module, "v1.1.0").len(), 6, "{left:?}");
    assert_eq!(module_files(&left, module).len(), 4, "the list stays");
    assert_eq!(rows(&usage), [key(module, "v1.1.0")]);

    // Fitting already: nothing to do.
    let report = evict_now(&storage, &usage, size_policy(total_bytes(root)), false).await;
    assert!(report.removed.is_empty());
    assert_eq!(report.freed, 0);
}

/// When a module's last version goes, its `list` and `@latest` go with it, so
/// those bytes count towards the room made: eviction must stop as soon as the
/// cache fits, not evict one more version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_eviction_counts_the_list_and_latest_freed_with_a_modules_last_version() {
    let upstream = FakeUpstream::start().await;
    let solo = Module::sized("example.com/solo", "v1.0.0", 20_000);
    let other = Module::sized("example.com/other", "v1.0.0", 20_000);
    upstream.add(solo.clone()).add(other.clone());
    let proxy = TestProxy::start(&[&upstream.url]).await;
    for m in [&solo, &other] {
        fetch_version(&proxy, m).await;
        fetch_module_files(&proxy, &m.escaped_path()).await;
    }
    let cache = proxy.stop_keep_cache().await;
    let root = cache.path();
    let usage = open_usage(root);
    usage
        .set_last_used("example.com/solo", "v1.0.0", now() - 200)
        .unwrap();
    usage
        .set_last_used("example.com/other", "v1.0.0", now() - 100)
        .unwrap();
    let files = cache_files(root);
    let solo_bytes = bytes_of(root, &version_files(&files, "example.com/solo", "v1.0.0"))
        + bytes_of(root, &module_files(&files, "example.com/solo"));
    // Removing example.com/solo entirely makes the cache fit exactly.
    let max = total_bytes(root) - solo_bytes;

    let report = evict_now(&fs_storage(root), &usage, size_policy(max), false).await;
    assert_eq!(
        removed(&report),
        [key("example.com/solo", "v1.0.0")],
        "example.com/other was evicted although the cache already fit"
    );
    assert_eq!(total_bytes(root), max);
}

/// A module whose list (or @latest) was fetched but none of whose versions was
/// ever downloaded (`go list -m -versions`) has nothing old about it: an age
/// limit that finds nothing old must not remove its fresh list, which is what
/// the proxy serves stale when the upstreams are down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_list_of_a_module_without_cached_versions_survives_an_age_limit() {
    let upstream = FakeUpstream::start().await;
    upstream.add(Module::simple("example.com/listonly", "v1.0.0"));
    let proxy = TestProxy::start(&[&upstream.url]).await;
    fetch_module_files(&proxy, "example.com/listonly").await;
    let cache = proxy.stop_keep_cache().await;
    let root = cache.path();
    let before = snapshot(root);
    assert_eq!(before.len(), 4, "list and @latest with their metadata");

    let report = evict_now(
        &fs_storage(root),
        &open_usage(root),
        age_policy(Duration::from_secs(7 * DAY as u64)),
        false,
    )
    .await;
    assert!(report.removed.is_empty());
    assert_eq!(report.freed, 0, "nothing is older than 7 days");
    assert_eq!(
        snapshot(root),
        before,
        "a list fetched a moment ago was evicted"
    );
}

// ---- nested modules ----

/// `example.com/a` and `example.com/a/sub`, each with two versions, a list and
/// @latest, fetched through a proxy; returns the kept cache.
async fn nested_cache() -> tempfile::TempDir {
    let upstream = FakeUpstream::start().await;
    let all: Vec<Module> = ["example.com/a", "example.com/a/sub"]
        .iter()
        .flat_map(|p| ["v1.0.0", "v1.1.0"].map(|v| Module::simple(p, v)))
        .collect();
    for m in &all {
        upstream.add(m.clone());
    }
    let proxy = TestProxy::start(&[&upstream.url]).await;
    for m in &all {
        fetch_version(&proxy, m).await;
    }
    fetch_module_files(&proxy, "example.com/a").await;
    fetch_module_files(&proxy, "example.com/a/sub").await;
    proxy.stop_keep_cache().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicting_a_module_leaves_the_module_nested_in_its_directory_intact_and_vice_versa() {
    for (evicted, kept) in [
        ("example.com/a", "example.com/a/sub"),
        ("example.com/a/sub", "example.com/a"),
    ] {
        let cache = nested_cache().await;
        let root = cache.path();
        let before = snapshot(root);
        let names: Vec<String> = before.iter().map(|(f, _)| f.clone()).collect();
        let evicted_files: Vec<String> = [
            version_files(&names, evicted, "v1.0.0"),
            version_files(&names, evicted, "v1.1.0"),
            module_files(&names, evicted),
        ]
        .concat();
        assert_eq!(evicted_files.len(), 2 * 6 + 4, "{names:?}");

        let usage = open_usage(root);
        for v in ["v1.0.0", "v1.1.0"] {
            usage.set_last_used(evicted, v, now() - 30 * DAY).unwrap();
        }
        let report = evict_now(
            &fs_storage(root),
            &usage,
            age_policy(Duration::from_secs(DAY as u64)),
            false,
        )
        .await;
        assert_eq!(
            removed(&report),
            [key(evicted, "v1.0.0"), key(evicted, "v1.1.0")],
            "evicting {evicted}"
        );
        let expected: Vec<(String, Vec<u8>)> = before
            .into_iter()
            .filter(|(f, _)| !evicted_files.contains(f))
            .collect();
        assert_eq!(
            snapshot(root),
            expected,
            "evicting {evicted} must leave every file of {kept} (and nothing of {evicted})"
        );
        assert_eq!(
            rows(&usage),
            [key(kept, "v1.0.0"), key(kept, "v1.1.0")],
            "evicting {evicted}"
        );
    }
}

// ---- files without usage rows ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_without_usage_rows_are_picked_up_by_file_time_and_evicted_by_age() {
    let cache = tempdir();
    let root = cache.path();
    let module = "example.com/imported";
    let old = Module::simple(module, "v1.0.0");
    let fresh = Module::simple(module, "v1.1.0");
    let old_but_used = Module::simple(module, "v1.2.0");
    let old_time = now() - 30 * DAY;
    for m in [&old, &old_but_used] {
        for path in write_version(root, m) {
            set_mtime(&path, unix_to_system(old_time));
        }
    }
    let written = now();
    write_version(root, &fresh);
    std::fs::write(
        root.join(module).join("@v/list"),
        "v1.0.0\nv1.1.0\nv1.2.0\n",
    )
    .unwrap();

    let usage = open_usage(root);
    // A row wins over the file time.
    usage.set_last_used(module, "v1.2.0", now()).unwrap();
    let storage = fs_storage(root);
    let policy = age_policy(Duration::from_secs(7 * DAY as u64));

    let before = cache_files(root);
    let dry = evict_now(&storage, &usage, policy, true).await;
    assert_eq!(removed(&dry), [key(module, "v1.0.0")]);
    assert_eq!(dry.removed[0].3, old_time, "dated by its file time");
    assert_eq!(dry.picked_up, 0, "a dry run records nothing");
    assert_eq!(rows(&usage), [key(module, "v1.2.0")]);
    assert_eq!(cache_files(root), before);

    let report = evict_now(&storage, &usage, policy, false).await;
    assert_eq!(report.picked_up, 2, "v1.0.0 and v1.1.0 had no row");
    assert_eq!(removed(&report), [key(module, "v1.0.0")]);
    assert_eq!(report.removed[0].3, old_time);
    let left = cache_files(root);
    assert!(
        version_files(&left, module, "v1.0.0").is_empty(),
        "{left:?}"
    );
    assert_eq!(version_files(&left, module, "v1.1.0").len(), 3);
    assert_eq!(version_files(&left, module, "v1.2.0").len(), 3);
    assert_eq!(module_files(&left, module), [format!("{module}/@v/list")]);

    // The fresh version now has a row, dated by its files; the evicted one has none.
    let all = usage.last_used_all().unwrap();
    assert_eq!(rows(&usage), [key(module, "v1.1.0"), key(module, "v1.2.0")]);
    let fresh_at = all[&key(module, "v1.1.0")];
    assert!(
        (written..=now()).contains(&fresh_at),
        "picked-up row dated {fresh_at}, files written at {written}"
    );
    // Picked up once: the next run finds every row in place.
    let again = evict_now(&storage, &usage, policy, false).await;
    assert_eq!(again.picked_up, 0);
    assert!(again.removed.is_empty());
}

// ---- a hit while eviction runs ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_download_in_progress_survives_eviction_and_the_next_request_fetches_again() {
    let upstream = FakeUpstream::start().await;
    // Far more than the socket buffers hold, so the server is still reading the
    // cached file when it is evicted.
    let big = stored_module("example.com/big", "v1.0.0", 24 << 20);
    upstream.add(big.clone());
    let proxy = TestProxy::start(&[&upstream.url]).await;
    fetch_version(&proxy, &big).await;
    let zip_path = big.url_path("zip");
    assert_eq!(upstream.hits(&zip_path), 1);

    let mut slow = proxy.get(&zip_path).await;
    assert_eq!(slow.status(), 200);
    assert_eq!(slow.headers()["x-goproxy-cache"], "hit");
    let first = slow
        .chunk()
        .await
        .expect("first chunk")
        .expect("a non-empty body");
    assert!(first.len() < big.zip.len());

    // Evict everything (the proxy keeps running and tracking meanwhile).
    let root = proxy.cache.path().to_owned();
    let usage = open_usage(&root);
    let report = evict_now(&fs_storage(&root), &usage, size_policy(1), false).await;
    assert_eq!(removed(&report), [key("example.com/big", "v1.0.0")]);
    assert!(
        !root.join("example.com/big/@v/v1.0.0.zip").exists(),
        "the zip was evicted"
    );
    // The premise: the server is still reading the file it was serving.
    #[cfg(target_os = "linux")]
    assert!(
        holds_deleted_file("example.com/big/@v/v1.0.0.zip"),
        "the server no longer had the zip open when it was evicted; the test proves nothing"
    );

    let mut body = first.to_vec();
    while let Some(chunk) = slow.chunk().await.expect("the rest of the body") {
        body.extend_from_slice(&chunk);
    }
    assert_eq!(body.len(), big.zip.len(), "complete body");
    assert!(body == big.zip, "correct bytes");

    let again = proxy.get(&zip_path).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["x-goproxy-cache"], "miss");
    let again = again.bytes().await.expect("body");
    assert!(again[..] == big.zip[..], "the refetched zip is correct");
    assert_eq!(upstream.hits(&zip_path), 2, "fetched again from upstream");
    assert_eq!(
        std::fs::read(root.join("example.com/big/@v/v1.0.0.zip")).unwrap(),
        big.zip
    );
    drop(usage);
    proxy.stop().await;
}

/// Whether this process has a file open that was deleted and whose path ended
/// with `suffix`.
#[cfg(target_os = "linux")]
fn holds_deleted_file(suffix: &str) -> bool {
    let wanted = format!("{suffix} (deleted)");
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .any(|target| target.to_string_lossy().ends_with(&wanted))
}

// ---- an unusable usage database ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_usage_database_that_is_not_a_database_does_not_stop_serving() {
    let garbage = b"this is not an SQLite database, just some bytes\n".repeat(100);
    let upstream = FakeUpstream::start().await;
    let m = Module::simple("example.com/untracked", "v1.0.0");
    upstream.add(m.clone());
    let proxy = TestProxy::start_with(&[&upstream.url], |s| {
        std::fs::write(s.cache_dir.join(".usage.db"), &garbage).unwrap();
        // A limit too: eviction is off as well, not failing repeatedly.
        s.max_cache_age = Duration::from_secs(1);
        s.cleanup_interval = Duration::from_millis(50);
    })
    .await;
    fetch_version(&proxy, &m).await;
    fetch_version(&proxy, &m).await;
    // Files a day old and without usage rows: a working eviction would pick them
    // up by file time and remove them at once (limit 1 s, runs every 50 ms).
    let day_ago = std::time::SystemTime::now() - Duration::from_secs(24 * 60 * 60);
    let dir = proxy.cache.path().join("example.com/untracked/@v");
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let file = std::fs::File::options()
            .write(true)
            .open(entry.path())
            .unwrap();
        file.set_modified(day_ago).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cache = proxy.stop_keep_cache().await;
    let root = cache.path();
    assert_eq!(
        version_files(&cache_files(root), "example.com/untracked", "v1.0.0").len(),
        6,
        "served and cached, and not evicted"
    );
    assert_eq!(
        std::fs::read(root.join(".usage.db")).unwrap(),
        garbage,
        "the operator's file is left alone"
    );
    let error = UsageDb::open(root.join(".usage.db")).expect_err("not a database");
    assert!(error.to_string().contains("usage database"), "{error}");
}

#[test]
fn binary_with_a_usage_database_it_cannot_open_serves_logs_loudly_and_gc_fails_clearly() {
    require_cache_subcommand();
    let rt = runtime();
    let dir = tempdir();
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(cache.join(".usage.db")).unwrap();
    let upstream = rt.block_on(FakeUpstream::start());
    let m = Module::simple("example.com/untracked", "v1.0.0");
    upstream.add(m.clone());

    let proxy = start_proxy(
        dir.path(),
        &cache,
        &upstream.url,
        &["--max-cache-age", "1h", "--cleanup-interval", "100ms"],
    );
    let lines = wait_for_lines(&proxy, 1, |l| l.contains("usage database"));
    let line = lines[0].to_lowercase();
    assert!(
        line.contains("disabled") && line.contains("tracking") && line.contains("eviction"),
        "the log must say tracking and eviction are disabled: {}",
        lines[0]
    );
    assert!(line.contains("error"), "logged as an error: {}", lines[0]);
    let (status, headers, body) = get(&rt, &format!("{}{}", proxy.url, m.url_path("zip")));
    assert_eq!(status, 200);
    assert_eq!(headers["x-goproxy-cache"], "miss");
    assert!(body == m.zip);
    let (status, headers, _) = get(&rt, &format!("{}{}", proxy.url, m.url_path("zip")));
    assert_eq!((status, headers["x-goproxy-cache"].as_str()), (200, "hit"));
    drop(proxy);
    assert!(cache.join(".usage.db").is_dir(), "left as it was");

    let cache_arg = path_str(&cache);
    let out = run_to_exit(
        dir.path(),
        &["cache", "gc", "--max-cache-age", "1h", "--cache", cache_arg],
        &[],
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "gc must fail: {stderr}");
    assert!(
        stderr.contains("usage database") && stderr.contains(".usage.db"),
        "gc names the usage database: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        cache.join("example.com/untracked/@v/v1.0.0.zip").is_file(),
        "a failed gc removes nothing"
    );

    // stats still works, from file times, and says so.
    let out = run_to_exit(
        dir.path(),
        &["cache", "stats", "--cache", cache_arg],
        &[],
        Duration::from_secs(20),
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("usage database"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("versions         1"));
}

// ---- periodic eviction by the server ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_evicts_a_version_unused_for_longer_than_max_cache_age_within_the_interval() {
    let upstream = FakeUpstream::start().await;
    let old = Module::simple("example.com/periodic", "v1.0.0");
    let used = Module::simple("example.com/periodic", "v1.1.0");
    upstream.add(old.clone()).add(used.clone());
    let proxy = TestProxy::start_with(&[&upstream.url], |s| {
        s.max_cache_age = Duration::from_secs(60 * 60);
        s.cleanup_interval = Duration::from_millis(200);
    })
    .await;
    fetch_version(&proxy, &old).await;
    fetch_version(&proxy, &used).await;
    fetch_module_files(&proxy, "example.com/periodic").await;
    let root = proxy.cache.path().to_owned();
    let usage = open_usage(&root);

    // Wait for the server's writer to record the use, then backdate it (a later
    // touch would otherwise move it forward again).
    let deadline = Instant::now() + Duration::from_secs(10);
    while usage
        .get("example.com/periodic", "v1.0.0")
        .unwrap()
        .is_none()
    {
        assert!(Instant::now() < deadline, "the use was never recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let long_ago = now() - 2 * 60 * 60;
    usage
        .set_last_used("example.com/periodic", "v1.0.0", long_ago)
        .unwrap();
    let started = Instant::now();
    let zip = root.join("example.com/periodic/@v/v1.0.0.zip");
    while zip.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "not evicted within 5 s at a 200ms cleanup interval"
        );
        // A touch from the fetches above committed in a later batch moves the
        // row forward again; backdate it once more.
        if usage
            .get("example.com/periodic", "v1.0.0")
            .unwrap()
            .is_some_and(|at| at > long_ago)
        {
            usage
                .set_last_used("example.com/periodic", "v1.0.0", long_ago)
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Give the run that removed the zip time to finish with the version's other files.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !version_files(&cache_files(&root), "example.com/periodic", "v1.0.0").is_empty() {
        assert!(Instant::now() < deadline, "{:?}", cache_files(&root));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = cache_files(&root);
    assert_eq!(
        version_files(&left, "example.com/periodic", "v1.1.0").len(),
        6,
        "the recently used version stays: {left:?}"
    );
    assert_eq!(module_files(&left, "example.com/periodic").len(), 4);
    // Several more runs change nothing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(cache_files(&root), left);
    let deadline = Instant::now() + Duration::from_secs(5);
    while usage
        .get("example.com/periodic", "v1.0.0")
        .unwrap()
        .is_some()
    {
        assert!(Instant::now() < deadline, "the evicted row stays");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The evicted version was also in the memory cache; it goes with its
    // files, so asking again fetches it again.
    let before = upstream.hits(&old.url_path("mod"));
    let again = proxy.get(&old.url_path("mod")).await;
    assert_eq!(again.headers()["x-goproxy-cache"], "miss");
    assert_eq!(upstream.hits(&old.url_path("mod")), before + 1);
    let hit = proxy.get(&used.url_path("mod")).await;
    assert_eq!(hit.headers()["x-goproxy-cache"], "hit");
    drop(usage);
    proxy.stop().await;
}

// ---- goproxy cache stats|gc|verify (the real binary) ----

/// `/work/target/debug/goproxy` may be shared with builds of other branches;
/// fail clearly rather than with confusing output if it is not this one.
fn require_cache_subcommand() {
    let dir = tempdir();
    let out = command(dir.path(), &["cache", "--help"], &[])
        .output()
        .expect("run goproxy cache --help");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("verify"),
        "{} has no `cache` subcommand: rebuild it (cargo build) and rerun",
        support::process::binary()
    );
}

/// `example.com/BigOne@v1.0.0` (a 200 kB zip) and `example.com/small@v1.0.0`,
/// `@v1.1.0`, with lists, fetched through an in-process proxy.
fn cli_cache(rt: &tokio::runtime::Runtime) -> tempfile::TempDir {
    rt.block_on(async {
        let upstream = FakeUpstream::start().await;
        let all = [
            stored_module("example.com/BigOne", "v1.0.0", 200_000),
            Module::simple("example.com/small", "v1.0.0"),
            Module::simple("example.com/small", "v1.1.0"),
        ];
        for m in &all {
            upstream.add(m.clone());
        }
        let proxy = TestProxy::start(&[&upstream.url]).await;
        for m in &all {
            fetch_version(&proxy, m).await;
        }
        fetch_module_files(&proxy, "example.com/!big!one").await;
        fetch_module_files(&proxy, "example.com/small").await;
        proxy.stop_keep_cache().await
    })
}

fn cache_cmd(cache: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["cache"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--cache", path_str(cache)]);
    run_to_exit(cache, &all, &[], Duration::from_secs(20))
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn cache_stats_prints_modules_versions_size_and_the_largest_modules() {
    require_cache_subcommand();
    let rt = runtime();
    let cache = cli_cache(&rt);
    let root = cache.path();
    let out = cache_cmd(root, &["stats"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("modules          2\n"), "{text}");
    assert!(text.contains("versions         3\n"), "{text}");
    let total = total_bytes(root);
    assert!(
        text.contains(&format!(
            "size             {} ({total} bytes)\n",
            human(total)
        )),
        "size {total}:\n{text}"
    );
    assert!(text.contains("oldest use"), "{text}");
    assert!(text.contains("newest use"), "{text}");
    let largest: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "largest modules:")
        .skip(1)
        .collect();
    assert_eq!(largest.len(), 2, "{text}");
    assert!(
        largest[0].ends_with("example.com/BigOne (1 versions)"),
        "largest first, unescaped: {text}"
    );
    assert!(
        largest[1].ends_with("example.com/small (2 versions)"),
        "{text}"
    );
    let files = cache_files(root);
    let big = bytes_of(
        root,
        &version_files(&files, "example.com/!big!one", "v1.0.0"),
    ) + bytes_of(root, &module_files(&files, "example.com/!big!one"));
    assert!(largest[0].contains(&human(big)), "{} for {big}", largest[0]);
}

#[test]
fn cache_gc_dry_run_lists_what_would_go_and_removes_nothing() {
    require_cache_subcommand();
    let rt = runtime();
    let cache = cli_cache(&rt);
    let root = cache.path();
    let before = snapshot(root);
    let rows_before = open_usage(root).last_used_all().unwrap();
    let out = cache_cmd(root, &["gc", "--dry-run", "--max-cache-size", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for version in [
        "example.com/BigOne@v1.0.0",
        "example.com/small@v1.0.0",
        "example.com/small@v1.1.0",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("would remove {version} ("))),
            "{version}:\n{text}"
        );
    }
    assert!(text.contains("would remove 3 module versions"), "{text}");
    assert_eq!(snapshot(root), before, "a dry run removes nothing");
    assert_eq!(open_usage(root).last_used_all().unwrap(), rows_before);
}

#[test]
fn cache_gc_by_age_removes_backdated_versions_and_prints_the_freed_space() {
    require_cache_subcommand();
    let rt = runtime();
    let cache = cli_cache(&rt);
    let root = cache.path();
    {
        let usage = open_usage(root);
        for (module, version) in [
            ("example.com/!big!one", "v1.0.0"),
            ("example.com/small", "v1.0.0"),
        ] {
            usage
                .set_last_used(module, version, now() - 2 * 60 * 60)
                .unwrap();
        }
    }
    let files = cache_files(root);
    let gone: Vec<String> = [
        version_files(&files, "example.com/!big!one", "v1.0.0"),
        module_files(&files, "example.com/!big!one"),
        version_files(&files, "example.com/small", "v1.0.0"),
    ]
    .concat();
    let freed = bytes_of(root, &gone);
    let (before, after) = (total_bytes(root), total_bytes(root) - freed);

    let out = cache_cmd(root, &["gc", "--max-cache-age", "1h"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("removed example.com/BigOne@v1.0.0 (")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("removed example.com/small@v1.0.0 (")),
        "{text}"
    );
    assert!(!text.contains("small@v1.1.0"), "{text}");
    let summary = format!(
        "removed 2 module versions, {} freed; cache size {} -> {}",
        human(freed),
        human(before),
        human(after)
    );
    assert!(text.contains(&summary), "want {summary:?} in:\n{text}");
    let left = cache_files(root);
    assert!(left.iter().all(|f| !gone.contains(f)), "{left:?}");
    assert_eq!(left.len(), files.len() - gone.len());
    assert_eq!(
        rows(&open_usage(root)),
        [key("example.com/small", "v1.1.0")]
    );
}

#[test]
fn cache_gc_without_any_limit_fails_naming_both_flags() {
    require_cache_subcommand();
    let rt = runtime();
    let cache = cli_cache(&rt);
    let root = cache.path();
    let before = cache_files(root);
    let out = cache_cmd(root, &["gc"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("--max-cache-age") && err.contains("--max-cache-size"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(cache_files(root), before);
}

#[test]
fn cache_verify_passes_a_good_cache_reports_a_corrupted_zip_and_fix_deletes_it() {
    require_cache_subcommand();
    let rt = runtime();
    let cache = cli_cache(&rt);
    let root = cache.path();
    let out = cache_cmd(root, &["verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("3 module versions ok, 0 broken"),
        "{}",
        stdout(&out)
    );

    std::fs::write(
        root.join("example.com/small/@v/v1.1.0.zip"),
        b"PK\x03\x04 definitely not the zip that was served",
    )
    .unwrap();
    let before = cache_files(root);
    let out = cache_cmd(root, &["verify"]);
    assert!(!out.status.success(), "a broken zip fails verify");
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("broken example.com/small@v1.1.0: ")),
        "{text}"
    );
    assert!(text.contains("2 module versions ok, 1 broken"), "{text}");
    assert!(stderr(&out).contains("--fix"), "{}", stderr(&out));
    assert_eq!(cache_files(root), before, "verify alone deletes nothing");

    let out = cache_cmd(root, &["verify", "--fix"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("deleted example.com/small@v1.1.0"), "{text}");
    let left = cache_files(root);
    assert!(
        version_files(&left, "example.com/small", "v1.1.0").is_empty(),
        "{left:?}"
    );
    assert_eq!(version_files(&left, "example.com/small", "v1.0.0").len(), 6);
    assert_eq!(
        version_files(&left, "example.com/!big!one", "v1.0.0").len(),
        6
    );
    let out = cache_cmd(root, &["verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("2 module versions ok, 0 broken"));
}

// ---- settings ----

#[test]
fn lifecycle_settings_show_with_their_sources() {
    require_cache_subcommand();
    let dir = tempdir();
    let file = write(dir.path(), "goproxy.yaml", "cleanup_interval: 10m\n");
    let out = config_show(
        dir.path(),
        &["--config", &file, "--max-cache-size", "50GiB"],
        &[("MAX_CACHE_AGE", "30d")],
    );
    assert_eq!(
        shown(&out, "max_cache_age"),
        ("30d".into(), "env MAX_CACHE_AGE".into())
    );
    assert_eq!(
        shown(&out, "max_cache_size"),
        ("50GiB".into(), "flag --max-cache-size".into())
    );
    assert_eq!(
        shown(&out, "cleanup_interval"),
        ("10m".into(), format!("file {file}"))
    );
}

#[test]
fn an_invalid_max_cache_size_fails_naming_the_variable() {
    let dir = tempdir();
    let env = [("MAX_CACHE_SIZE", "lots")];
    let out = command(dir.path(), &["config", "show"], &env)
        .output()
        .expect("run config show");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("MAX_CACHE_SIZE") && err.contains("lots"),
        "{err}"
    );
    let err = expect_failure(dir.path(), &[], &env);
    assert!(
        err.contains("MAX_CACHE_SIZE") && err.contains("lots"),
        "{err}"
    );
}
