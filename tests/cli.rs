//! The real `goproxy` binary: configuration layering (defaults < file < env <
//! flags) seen through `goproxy config show` and a running server, Go-style
//! flags, error messages for bad input, startup banner and request logs, and
//! process-level robustness (SIGTERM drain, kill -9, two processes sharing a
//! cache directory).
//!
//! Every test runs the binary with an empty environment in its own temp dir.
//! The fake upstreams run on a tokio runtime the test owns; the test itself is
//! synchronous so it can wait on processes and send signals freely.

mod support;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use support::process::{ProxyProcess, command};
use support::{FakeUpstream, Fault, Module, client};
use tempfile::TempDir;

// ---- configuration precedence, through `config show` ----

#[test]
fn config_show_reports_defaults_when_nothing_is_set() {
    let dir = tempdir();
    let out = config_show(dir.path(), &[], &[]);
    assert_eq!(
        shown(&out, "listen"),
        ("0.0.0.0:12345".into(), "default".into())
    );
    assert_eq!(
        shown(&out, "cache_dir"),
        ("./cache".into(), "default".into())
    );
    assert_eq!(
        shown(&out, "upstreams"),
        ("https://proxy.golang.org".into(), "default".into())
    );
    assert_eq!(
        shown(&out, "retry_backoff"),
        ("100ms".into(), "default".into())
    );
    assert!(
        !out.lines().any(|l| l.starts_with("config ")),
        "no config file was named:\n{out}"
    );
}

#[test]
fn config_file_overrides_defaults() {
    let dir = tempdir();
    let yaml = write(
        dir.path(),
        "goproxy.yaml",
        "port: 3000\ncache_dir: /srv/from-yaml\nupstreams:\n  - https://a.example\n  - https://b.example\nretry_backoff: 250ms\n",
    );
    let json = write(
        dir.path(),
        "goproxy.json",
        r#"{"port": 3000, "cache_dir": "/srv/from-json", "upstreams": ["https://a.example", "https://b.example"], "retry_backoff": "250ms"}"#,
    );
    for (file, cache) in [(&yaml, "/srv/from-yaml"), (&json, "/srv/from-json")] {
        let out = config_show(dir.path(), &["--config", file], &[]);
        let from_file = format!("file {file}");
        assert_eq!(
            shown(&out, "config"),
            (file.clone(), "flag --config".into())
        );
        assert_eq!(
            shown(&out, "listen"),
            ("0.0.0.0:3000".into(), from_file.clone())
        );
        assert_eq!(shown(&out, "cache_dir"), (cache.into(), from_file.clone()));
        assert_eq!(
            shown(&out, "upstreams"),
            (
                "https://a.example,https://b.example".into(),
                from_file.clone()
            )
        );
        assert_eq!(shown(&out, "retry_backoff"), ("250ms".into(), from_file));
        assert_eq!(
            shown(&out, "retry_attempts"),
            ("3".into(), "default".into())
        );
    }
}

#[test]
fn environment_overrides_config_file() {
    let dir = tempdir();
    let file = write(
        dir.path(),
        "goproxy.yaml",
        "cache_dir: /srv/from-file\nretry_backoff: 250ms\nlist_ttl: 2m\n",
    );
    let env = [("CACHE_DIR", "/srv/from-env"), ("RETRY_BACKOFF", "2s")];
    let out = config_show(dir.path(), &["--config", &file], &env);
    assert_eq!(
        shown(&out, "cache_dir"),
        ("/srv/from-env".into(), "env CACHE_DIR".into())
    );
    assert_eq!(
        shown(&out, "retry_backoff"),
        ("2s".into(), "env RETRY_BACKOFF".into())
    );
    assert_eq!(
        shown(&out, "list_ttl"),
        ("2m".into(), format!("file {file}")),
        "untouched by env"
    );
}

#[test]
fn flags_override_environment_and_config_file() {
    let dir = tempdir();
    let file = write(
        dir.path(),
        "goproxy.yaml",
        "cache_dir: /srv/from-file\nretry_backoff: 250ms\n",
    );
    let env = [("CACHE_DIR", "/srv/from-env"), ("RETRY_BACKOFF", "2s")];
    let out = config_show(
        dir.path(),
        &[
            "--config",
            &file,
            "--cache",
            "/srv/from-flag",
            "--retry-backoff",
            "5s",
        ],
        &env,
    );
    assert_eq!(
        shown(&out, "cache_dir"),
        ("/srv/from-flag".into(), "flag --cache".into())
    );
    assert_eq!(
        shown(&out, "retry_backoff"),
        ("5s".into(), "flag --retry-backoff".into())
    );
}

/// The old project assigned every flag's default over the environment and the file.
#[test]
fn flags_not_given_do_not_override_environment_or_config_file() {
    let dir = tempdir();
    let file = write(
        dir.path(),
        "goproxy.yaml",
        "port: 3000\ncache_dir: /srv/from-file\nretry_attempts: 7\nlog_format: json\n",
    );
    let env = [
        ("LIST_TTL", "5m"),
        ("UPSTREAM_PROXY", "https://env.example"),
        ("NEGATIVE_TTL", "30s"),
    ];
    // One unrelated flag is given; it must not drag the others' defaults in.
    let out = config_show(
        dir.path(),
        &["--config", &file, "--log-level", "debug"],
        &env,
    );
    let from_file = format!("file {file}");
    assert_eq!(
        shown(&out, "listen"),
        ("0.0.0.0:3000".into(), from_file.clone())
    );
    assert_eq!(
        shown(&out, "cache_dir"),
        ("/srv/from-file".into(), from_file.clone())
    );
    assert_eq!(
        shown(&out, "retry_attempts"),
        ("7".into(), from_file.clone())
    );
    assert_eq!(shown(&out, "log_format"), ("json".into(), from_file));
    assert_eq!(
        shown(&out, "list_ttl"),
        ("5m".into(), "env LIST_TTL".into())
    );
    assert_eq!(
        shown(&out, "negative_ttl"),
        ("30s".into(), "env NEGATIVE_TTL".into())
    );
    assert_eq!(
        shown(&out, "upstreams"),
        ("https://env.example".into(), "env UPSTREAM_PROXY".into())
    );
    assert_eq!(
        shown(&out, "log_level"),
        ("debug".into(), "flag --log-level".into())
    );
}

#[test]
fn goproxy_config_env_selects_the_config_file() {
    let dir = tempdir();
    let file = write(dir.path(), "from-env.yaml", "retry_attempts: 9\n");
    let out = config_show(dir.path(), &[], &[("GOPROXY_CONFIG", &file)]);
    assert_eq!(
        shown(&out, "config"),
        (file.clone(), "env GOPROXY_CONFIG".into())
    );
    assert_eq!(
        shown(&out, "retry_attempts"),
        ("9".into(), format!("file {file}"))
    );
}

#[test]
fn config_flag_beats_goproxy_config_env() {
    let dir = tempdir();
    let env_file = write(
        dir.path(),
        "from-env.yaml",
        "retry_attempts: 9\nlist_ttl: 9m\n",
    );
    let flag_file = write(dir.path(), "from-flag.yaml", "retry_attempts: 4\n");
    let out = config_show(
        dir.path(),
        &["--config", &flag_file],
        &[("GOPROXY_CONFIG", &env_file)],
    );
    assert_eq!(
        shown(&out, "config"),
        (flag_file.clone(), "flag --config".into())
    );
    assert_eq!(
        shown(&out, "retry_attempts"),
        ("4".into(), format!("file {flag_file}"))
    );
    // Nothing is read from the file the environment named.
    assert_eq!(shown(&out, "list_ttl"), ("1m".into(), "default".into()));
}

// ---- configuration precedence, on a running server ----

#[test]
fn listen_flag_beats_listen_env_on_a_running_server() {
    let dir = tempdir();
    // LISTEN names an address that is taken: starting there would fail.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let cache = dir.path().join("cache");
    let proxy = ProxyProcess::spawn(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--cache",
            path_str(&cache),
            "--upstream",
            "http://127.0.0.1:9",
        ],
        &[("LISTEN", &taken_addr)],
    );
    let addr = proxy_addr(&proxy);
    assert_ne!(addr.to_string(), taken_addr);
    let rt = runtime();
    let (status, _, body) = get(&rt, &format!("{}/healthz", proxy.url));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

#[test]
fn upstream_env_beats_config_file_upstreams_on_a_running_server() {
    let rt = runtime();
    let from_file = rt.block_on(FakeUpstream::start());
    let from_env = rt.block_on(FakeUpstream::start());
    for upstream in [&from_file, &from_env] {
        upstream.add(Module::simple("example.com/a", "v1.0.0"));
    }
    let dir = tempdir();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let cache = dir.path().join("file-cache");
    let file = write(
        dir.path(),
        "goproxy.yaml",
        &format!(
            "listen: {}\ncache_dir: {}\nupstreams:\n  - {}\nretry_backoff: 10ms\n",
            taken.local_addr().unwrap(),
            cache.display(),
            from_file.url
        ),
    );
    // No flags: env beats the file for listen and upstreams; cache_dir stays the file's.
    let proxy = ProxyProcess::spawn(
        dir.path(),
        &[],
        &[
            ("GOPROXY_CONFIG", &file),
            ("LISTEN", "127.0.0.1:0"),
            ("UPSTREAM_PROXY", &from_env.url),
        ],
    );
    let (status, _, body) = get(&rt, &format!("{}/example.com/a/@v/list", proxy.url));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, b"v1.0.0\n");
    assert_eq!(from_env.hits("/example.com/a/@v/list"), 1);
    assert_eq!(from_file.total_hits(), 0, "the file's upstream was used");
    assert!(
        cache.join("example.com/a/@v/list").is_file(),
        "cache_dir from the file was not used"
    );
}

// ---- Go-style flags ----

#[test]
fn go_style_single_dash_flags_configure_a_running_server() {
    let rt = runtime();
    let upstream = rt.block_on(FakeUpstream::start());
    upstream.add(Module::simple("example.com/a", "v1.0.0"));
    let dir = tempdir();
    let cache = dir.path().join("dash-cache");
    let proxy = ProxyProcess::spawn(
        dir.path(),
        &[
            "-listen",
            "127.0.0.1:0",
            "-cache",
            path_str(&cache),
            "-upstream",
            &upstream.url,
            "-retry-backoff",
            "10ms",
        ],
        &[],
    );
    let (status, _, body) = get(&rt, &format!("{}/example.com/a/@v/list", proxy.url));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, b"v1.0.0\n");
    assert_eq!(upstream.hits("/example.com/a/@v/list"), 1);
    assert!(cache.join("example.com/a/@v/list").is_file());

    let out = config_show(
        dir.path(),
        &["-retry-backoff", "250ms", "-upstream", &upstream.url],
        &[],
    );
    assert_eq!(
        shown(&out, "retry_backoff"),
        ("250ms".into(), "flag --retry-backoff".into())
    );
    assert_eq!(
        shown(&out, "upstreams"),
        (upstream.url.clone(), "flag --upstream".into())
    );
}

// ---- bad input ----

#[test]
fn unknown_config_key_is_an_error_naming_the_key_and_file() {
    let dir = tempdir();
    let file = write(
        dir.path(),
        "goproxy.yaml",
        "port: 3000\nretry_backofff: 1s\n",
    );
    let err = expect_failure(dir.path(), &["--config", &file], &[]);
    assert!(err.contains("retry_backofff"), "{err}");
    assert!(err.contains(&file), "{err}");
}

#[test]
fn bad_duration_in_environment_is_an_error_naming_the_variable_and_value() {
    let dir = tempdir();
    let err = expect_failure(dir.path(), &[], &[("RETRY_BACKOFF", "soonish")]);
    assert!(err.contains("RETRY_BACKOFF"), "{err}");
    assert!(err.contains("soonish"), "{err}");
}

#[test]
fn bad_upstream_url_is_an_error_without_echoing_a_password() {
    let dir = tempdir();
    let err = expect_failure(dir.path(), &["--upstream", "proxy.example.com/go"], &[]);
    assert!(err.contains("upstream"), "{err}");
    assert!(err.contains("proxy.example.com/go"), "{err}");

    let err = expect_failure(
        dir.path(),
        &[],
        &[("UPSTREAM_PROXY", "ftp://proxy.example.com")],
    );
    assert!(err.contains("UPSTREAM_PROXY"), "{err}");

    let err = expect_failure(
        dir.path(),
        &[
            "--upstream",
            "https://alice:hunter22@proxy.example.com/?q=1",
        ],
        &[],
    );
    assert!(err.contains("upstream"), "{err}");
    assert!(!err.contains("hunter22"), "password echoed: {err}");
}

#[test]
fn unsupported_config_extension_is_an_error() {
    let dir = tempdir();
    let file = write(dir.path(), "goproxy.toml", "port = 3000\n");
    let err = expect_failure(dir.path(), &["--config", &file], &[]);
    assert!(err.contains(&file), "{err}");
    assert!(
        err.contains(".yaml") && err.contains(".json"),
        "should say what is supported: {err}"
    );
}

#[test]
fn unusable_cache_directory_is_refused_at_startup() {
    let dir = tempdir();
    // A regular file where the cache directory should be.
    let not_a_dir = write(dir.path(), "cache-is-a-file", "");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--cache",
        &not_a_dir,
        "--upstream",
        "http://127.0.0.1:9",
    ];
    let out = run_to_exit(dir.path(), &args, &[], Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "started with an unusable cache:\n{err}"
    );
    assert!(
        err.contains(&not_a_dir),
        "the message names the directory: {err}"
    );
    assert!(!err.contains("GOPROXY="), "{err}");
}

#[test]
fn config_show_redacts_upstream_passwords() {
    let dir = tempdir();
    let file = write(
        dir.path(),
        "goproxy.yaml",
        "upstreams:\n  - https://alice:s3cret-pass@corp.example/go\n  - https://proxy.golang.org\n",
    );
    let out = config_show(dir.path(), &["--config", &file], &[]);
    assert!(!out.contains("s3cret-pass"), "password shown:\n{out}");
    let (upstreams, _) = shown(&out, "upstreams");
    assert!(upstreams.contains("corp.example/go"), "{upstreams}");
    assert!(
        upstreams.contains("https://proxy.golang.org"),
        "{upstreams}"
    );
}

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
        assert!(*len < m.zip.len() as u64, "{name} is {len} bytes");
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

// ---- helpers ----

fn tempdir() -> TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config file");
    path.to_str().expect("UTF-8 temp path").to_owned()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// Runs `goproxy config show`, asserts success and returns stdout.
fn config_show(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut all = vec!["config", "show"];
    all.extend_from_slice(args);
    let out = command(dir, &all, env)
        .output()
        .expect("run goproxy config show");
    assert!(
        out.status.success(),
        "config show {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The (value, source) of `key` in `config show` output (`key = value (source)`).
fn shown(out: &str, key: &str) -> (String, String) {
    for line in out.lines() {
        let Some((k, rest)) = line.split_once(" = ") else {
            continue;
        };
        if k.trim() != key {
            continue;
        }
        let (value, source) = rest
            .rsplit_once(" (")
            .unwrap_or_else(|| panic!("no source in {line:?}"));
        let source = source
            .strip_suffix(')')
            .unwrap_or_else(|| panic!("no source in {line:?}"));
        return (value.trim().to_owned(), source.to_owned());
    }
    panic!("no {key} line in config show output:\n{out}");
}

/// Starts the server with `args` and expects it to exit non-zero by itself;
/// returns its stderr.
fn expect_failure(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut all = vec!["--listen", "127.0.0.1:0", "--cache"];
    let cache = dir.join("cache");
    all.push(path_str(&cache));
    all.extend_from_slice(args);
    let out = run_to_exit(dir, &all, env, Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "goproxy {all:?} succeeded; stderr:\n{stderr}"
    );
    assert!(
        !stderr.contains("panicked"),
        "a panic is not an error message:\n{stderr}"
    );
    assert!(
        !stderr.contains("GOPROXY="),
        "the server started despite bad input:\n{stderr}"
    );
    stderr
}

fn run_to_exit(dir: &Path, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Output {
    let mut child = command(dir, args, env)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start goproxy");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!(
                "goproxy {args:?} still running after {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect output")
}

/// A server on 127.0.0.1 with a free port, the given cache and upstream, fast retries.
fn start_proxy(dir: &Path, cache: &Path, upstream: &str, extra: &[&str]) -> ProxyProcess {
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--cache",
        path_str(cache),
        "--upstream",
        upstream,
        "--retry-backoff",
        "10ms",
    ];
    args.extend_from_slice(extra);
    ProxyProcess::spawn(dir, &args, &[])
}

fn proxy_addr(proxy: &ProxyProcess) -> SocketAddr {
    proxy
        .url
        .trim_start_matches("http://")
        .parse()
        .unwrap_or_else(|e| panic!("bad URL {}: {e}", proxy.url))
}

type Fetched = (u16, HashMap<String, String>, Vec<u8>);

async fn fetch(url: String) -> reqwest::Result<Fetched> {
    let response = client().get(url).send().await?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let body = response.bytes().await?.to_vec();
    Ok((status, headers, body))
}

fn get(rt: &tokio::runtime::Runtime, url: &str) -> Fetched {
    rt.block_on(fetch(url.to_owned()))
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until at least `n` log lines match, and returns the matching lines (colour codes removed).
fn wait_for_lines(proxy: &ProxyProcess, n: usize, matches: impl Fn(&str) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lines: Vec<String> = strip_ansi(&proxy.logs())
            .lines()
            .filter(|l| matches(l))
            .map(str::to_owned)
            .collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than {n} matching log lines:\n{}",
            proxy.logs()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether a text log line is the request line for `path`.
fn is_request_line(line: &str, path: &str) -> bool {
    let fields = text_fields(line);
    fields.get("path").map(String::as_str) == Some(path) && fields.contains_key("status")
}

/// `key=value` pairs of a text log line, quotes removed.
fn text_fields(line: &str) -> HashMap<String, String> {
    line.split_whitespace()
        .filter_map(|word| word.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters, then one final byte in '@'..='~'.
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Files directly in `dir` (name, size); empty if it does not exist.
fn files_in(dir: &Path) -> Vec<(String, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().map(|m| m.len()).unwrap_or(0),
            )
        })
        .collect()
}
