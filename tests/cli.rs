//! The real binary as a process: startup banner and request logs, and
//! robustness (SIGTERM drain, kill -9 mid-download, two processes sharing a cache
//! directory, sweeping crash leftovers).
//!
//! Every test runs the binary with an empty environment in its own temp dir.
//! The fake upstreams run on a tokio runtime the test owns; the test itself is
//! synchronous so it can wait on processes and send signals freely.

mod support;

use std::collections::HashMap;
use std::net::TcpStream;
use std::time::Duration;

use support::cli::*;
use support::process::ProxyProcess;
use support::{FakeUpstream, Fault, Module};

// ---- banner and logs ----

#[test]
fn startup_banner_names_listen_address_cache_upstreams_and_goproxy_line() {
    let dir = tempdir();
    let cache = dir.path().join("banner-cache");
    let proxy = ProxyProcess::spawn(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--cache",
            path_str(&cache),
            "--upstream",
            "http://127.0.0.1:9,http://127.0.0.1:10",
        ],
        &[],
    );
    let addr = proxy_addr(&proxy);
    assert_eq!(proxy.url, format!("http://127.0.0.1:{}", addr.port()));
    let logs = strip_ansi(&proxy.logs());
    assert!(
        logs.contains(&addr.to_string()),
        "listen address missing:\n{logs}"
    );
    assert!(
        logs.contains(path_str(&cache)),
        "cache dir missing:\n{logs}"
    );
    assert!(
        logs.contains("http://127.0.0.1:9") && logs.contains("http://127.0.0.1:10"),
        "upstreams missing:\n{logs}"
    );
    assert!(
        logs.lines().any(|l| l
            .trim_end()
            .ends_with(&format!("GOPROXY=http://127.0.0.1:{}", addr.port()))),
        "no GOPROXY= line:\n{logs}"
    );
}

#[test]
fn served_request_is_logged_with_method_path_status_and_cache_outcome() {
    let rt = runtime();
    let upstream = rt.block_on(FakeUpstream::start());
    upstream.add(Module::simple("example.com/a", "v1.0.0"));
    let dir = tempdir();
    let proxy = start_proxy(dir.path(), &dir.path().join("cache"), &upstream.url, &[]);
    let (status, _, _) = get(&rt, &format!("{}/example.com/a/@v/list", proxy.url));
    assert_eq!(status, 200);
    let (status, _, _) = get(&rt, &format!("{}/example.com/a/@v/list", proxy.url));
    assert_eq!(status, 200);

    let lines = wait_for_lines(&proxy, 2, |line| {
        is_request_line(line, "/example.com/a/@v/list")
    });
    let fields: Vec<HashMap<String, String>> = lines.iter().map(|l| text_fields(l)).collect();
    for f in &fields {
        assert_eq!(f.get("method").map(String::as_str), Some("GET"), "{f:?}");
        assert_eq!(
            f.get("path").map(String::as_str),
            Some("/example.com/a/@v/list"),
            "{f:?}"
        );
        assert_eq!(f.get("status").map(String::as_str), Some("200"), "{f:?}");
    }
    assert_eq!(
        fields[0].get("cache").map(String::as_str),
        Some("miss"),
        "{:?}",
        fields[0]
    );
    assert_eq!(
        fields[1].get("cache").map(String::as_str),
        Some("hit"),
        "{:?}",
        fields[1]
    );
}

/// Logs usually go to a file or journald; escape codes there are noise and break
/// grepping for `status=200`.
#[test]
fn text_logs_have_no_colour_codes_when_stderr_is_not_a_terminal() {
    let dir = tempdir();
    let proxy = start_proxy(
        dir.path(),
        &dir.path().join("cache"),
        "http://127.0.0.1:9",
        &[],
    );
    let rt = runtime();
    let (status, _, _) = get(&rt, &format!("{}/healthz", proxy.url));
    assert_eq!(status, 200);
    let logs = proxy.logs();
    assert!(
        !logs.contains('\x1b'),
        "ANSI escape codes in piped logs:\n{logs:?}"
    );
}

#[test]
fn json_log_format_writes_json_lines() {
    let rt = runtime();
    let upstream = rt.block_on(FakeUpstream::start());
    upstream.add(Module::simple("example.com/a", "v1.0.0"));
    let dir = tempdir();
    let proxy = start_proxy(
        dir.path(),
        &dir.path().join("cache"),
        &upstream.url,
        &["--log-format", "json"],
    );
    assert!(proxy.url.starts_with("http://127.0.0.1:"), "{}", proxy.url);
    let (status, _, _) = get(&rt, &format!("{}/example.com/a/@v/list", proxy.url));
    assert_eq!(status, 200);

    let lines = wait_for_lines(&proxy, 1, |line| {
        line.contains(r#""message":"request""#) && line.contains("/example.com/a/@v/list")
    });
    let request: serde_json::Value =
        serde_json::from_str(&lines[0]).expect("request log line is JSON");
    let fields = &request["fields"];
    assert_eq!(fields["method"], "GET", "{request}");
    assert_eq!(fields["path"], "/example.com/a/@v/list", "{request}");
    assert_eq!(fields["status"], 200, "{request}");
    assert_eq!(fields["cache"], "miss", "{request}");
    for line in proxy.logs().lines() {
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(line);
        assert!(parsed.is_ok(), "not a JSON line: {line}");
    }
    assert!(proxy.logs().contains("GOPROXY=http://127.0.0.1:"));
}

#[test]
fn upstream_password_never_appears_in_logs_or_error_bodies() {
    let rt = runtime();
    let upstream = rt.block_on(FakeUpstream::start());
    upstream.set_always(Some(Fault::Status(500)));
    let with_password = upstream
        .url
        .replacen("http://", "http://alice:s3cret-pw@", 1);
    let dir = tempdir();
    let proxy = start_proxy(
        dir.path(),
        &dir.path().join("cache"),
        &with_password,
        &["--retry-attempts", "1"],
    );
    let (status, _, body) = get(&rt, &format!("{}/example.com/a/@v/list", proxy.url));
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains(&upstream.url.trim_start_matches("http://").to_string()),
        "the reason names the upstream: {body}"
    );
    assert!(
        !body.contains("s3cret-pw"),
        "password in the error body: {body}"
    );
    wait_for_lines(&proxy, 1, |line| {
        is_request_line(line, "/example.com/a/@v/list")
    });
    assert!(
        !proxy.logs().contains("s3cret-pw"),
        "password in the logs:\n{}",
        proxy.logs()
    );
    assert!(upstream.total_hits() >= 1);
}

// ---- process robustness ----

#[test]
fn sigterm_lets_an_in_flight_download_finish_then_exits_zero() {
    let rt = runtime();
    let upstream = rt.block_on(FakeUpstream::start());
    let m = Module::sized("example.com/slow", "v1.0.0", 400_000);
    upstream.add(m.clone());
    // ~200 chunks, 10 ms apart: about two seconds on the wire.
    upstream.push_faults(&m.url_path("zip"), &[Fault::Slow(2_000)]);
    let dir = tempdir();
    let mut proxy = start_proxy(
        dir.path(),
        &dir.path().join("cache"),
        &upstream.url,
        &["--shutdown-timeout", "30s"],
    );
    let addr = proxy_addr(&proxy);

    let download = rt.spawn(fetch(format!("{}{}", proxy.url, m.url_path("zip"))));
    wait_until("the upstream zip download starts", || {
        upstream.hits(&m.url_path("zip")) == 1
    });
    proxy.signal("TERM");

    // The listener closes while the download is still being served.
    wait_until("new connections are refused", || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err()
    });
    assert!(
        proxy.child.try_wait().unwrap().is_none(),
        "exited before the in-flight download finished"
    );
    assert!(
        !download.is_finished(),
        "the download finished before the listener closed; the test proves nothing"
    );

    let (status, _, body) = rt
        .block_on(download)
        .unwrap()
        .expect("in-flight download completes");
    assert_eq!(status, 200);
    assert!(
        body == m.zip,
        "body differs from the fixture zip ({} vs {} bytes)",
        body.len(),
        m.zip.len()
    );
    let exit = proxy
        .wait_exit(Duration::from_secs(20))
        .expect("exits after draining");
    assert!(exit.success(), "exit status {exit}:\n{}", proxy.logs());
}

#[test]
fn kill_9_mid_download_leaves_no_partial_zip_and_a_restart_serves_the_full_zip() {
    let rt = runtime();
    let upstream = rt.block_on(FakeUpstream::start());
    let m = Module::sized("example.com/slow", "v1.0.0", 400_000);
    upstream.add(m.clone());
    upstream.push_faults(&m.url_path("zip"), &[Fault::Slow(2_000)]);
    let dir = tempdir();
    let cache = dir.path().join("cache");
    let at_v = cache.join("example.com/slow/@v");
    let url = m.url_path("zip");

    let mut first = start_proxy(dir.path(), &cache, &upstream.url, &[]);
    let download = rt.spawn(fetch(format!("{}{url}", first.url)));
    wait_until("a partial temp file is being written", || {
        files_in(&at_v)
            .iter()
            .any(|(name, len)| name.starts_with(".tmp-") && *len > 0)
    });
    first.signal("KILL");
    first.wait_exit(Duration::from_secs(10)).expect("killed");
    if let Ok(Ok((_, _, body))) = rt.block_on(download) {
        assert!(
            body != m.zip,
            "the full zip cannot have been served before the kill"
        );
    }

    let left = files_in(&at_v);
    assert!(
        !at_v.join("v1.0.0.zip").exists(),
        "partial zip published: {left:?}"
    );
    for (name, len) in &left {
        assert!(
            name.starts_with(".tmp-"),
            "unexpected file after kill -9: {name}"
        );
        // A resumable download file is sized up front (sparse), so only other
        // temp files say something by their length.
        if !name.ends_with(".partial") {
            assert!(*len < m.zip.len() as u64, "{name} is {len} bytes");
        }
    }

    let second = start_proxy(dir.path(), &cache, &upstream.url, &[]);
    let (status, headers, body) = get(&rt, &format!("{}{url}", second.url));
    assert_eq!(status, 200);
    assert_eq!(
        headers.get("x-goproxy-cache").map(String::as_str),
        Some("miss"),
        "{headers:?}"
    );
    assert!(
        body == m.zip,
        "restart served {} bytes, not the fixture zip",
        body.len()
    );
    assert_eq!(
        upstream.hits(&url),
        2,
        "the zip was fetched again, not taken from the temp file"
    );
    // Published behind the answer.
    wait_until("the zip is in the cache", || {
        at_v.join("v1.0.0.zip").exists()
    });
    assert_eq!(std::fs::read(at_v.join("v1.0.0.zip")).unwrap(), m.zip);
    let (status, headers, body) = get(&rt, &format!("{}{url}", second.url));
    assert_eq!(
        (status, headers.get("x-goproxy-cache").map(String::as_str)),
        (200, Some("hit"))
    );
    assert!(body == m.zip);
}

#[test]
fn two_processes_sharing_a_cache_both_serve_an_uncached_zip_correctly() {
    let rt = runtime();
    let upstream = rt.block_on(FakeUpstream::start());
    let m = Module::sized("example.com/shared", "v1.0.0", 200_000);
    upstream.add(m.clone());
    let url = m.url_path("zip");
    // Both upstream answers are held back 300 ms, so the two processes fetch and
    // write the same artifact at the same time.
    let hold = Fault::Delay(Duration::from_millis(300));
    upstream.push_faults(&url, &[hold.clone(), hold]);
    let dir = tempdir();
    let cache = dir.path().join("cache");
    let a = start_proxy(dir.path(), &cache, &upstream.url, &[]);
    let b = start_proxy(dir.path(), &cache, &upstream.url, &[]);

    let from_a = rt.spawn(fetch(format!("{}{url}", a.url)));
    let from_b = rt.spawn(fetch(format!("{}{url}", b.url)));
    for (name, download) in [("a", from_a), ("b", from_b)] {
        let (status, _, body) = rt.block_on(download).unwrap().expect("download");
        assert_eq!(status, 200, "proxy {name}");
        assert!(
            body == m.zip,
            "proxy {name} served {} bytes, not the fixture zip",
            body.len()
        );
    }
    assert_eq!(upstream.hits(&url), 2, "each process fetches for itself");
    assert_eq!(
        upstream.max_concurrent(),
        2,
        "the two fetches did not overlap"
    );

    let at_v = cache.join("example.com/shared/@v");
    // Both publish (and write metadata) behind their answers: wait until
    // neither has a temp file left, and that stays so for a while.
    let settled = || {
        at_v.join("v1.0.0.zip.meta").exists()
            && files_in(&at_v).iter().all(|(n, _)| !n.starts_with(".tmp-"))
    };
    let mut quiet_since = std::time::Instant::now();
    wait_until("both processes are done storing", || {
        if !settled() {
            quiet_since = std::time::Instant::now();
        }
        quiet_since.elapsed() > Duration::from_millis(500)
    });
    assert_eq!(std::fs::read(at_v.join("v1.0.0.zip")).unwrap(), m.zip);
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(at_v.join("v1.0.0.zip.meta")).unwrap()).unwrap();
    assert_eq!(meta["size"], m.zip.len());
    let leftovers: Vec<_> = files_in(&at_v)
        .into_iter()
        .filter(|(n, _)| n.starts_with(".tmp-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temp files left behind: {leftovers:?}"
    );
    for proxy in [&a, &b] {
        let (status, headers, body) = get(&rt, &format!("{}{url}", proxy.url));
        assert_eq!(
            (status, headers.get("x-goproxy-cache").map(String::as_str)),
            (200, Some("hit"))
        );
        assert!(body == m.zip);
    }
}

#[test]
fn startup_sweeps_day_old_temp_files_and_keeps_fresh_ones() {
    let dir = tempdir();
    let cache = dir.path().join("cache");
    let at_v = cache.join("example.com/crashed/@v");
    std::fs::create_dir_all(&at_v).unwrap();
    let old = at_v.join(".tmp-left-by-a-crash");
    let fresh = at_v.join(".tmp-another-process-is-writing");
    std::fs::write(&old, b"partial").unwrap();
    std::fs::write(&fresh, b"partial").unwrap();
    let two_days_ago = std::time::SystemTime::now() - Duration::from_secs(48 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(two_days_ago)
        .unwrap();

    let _proxy = start_proxy(dir.path(), &cache, "http://127.0.0.1:9", &[]);
    wait_until("the day-old temp file is swept", || !old.exists());
    assert!(
        fresh.exists(),
        "a fresh temp file may belong to a live download and must stay"
    );
}
