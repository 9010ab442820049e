//! Configuration through the real binary: layering (defaults < file < env <
//! flags) seen through `goproxy config show` and a running server, Go-style
//! flags, and clear errors for bad input.
//!
//! Every test runs the binary with an empty environment in its own temp dir.

mod support;

use std::net::TcpListener;
use std::time::Duration;

use support::cli::*;
use support::process::ProxyProcess;
use support::{FakeUpstream, Module};

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
    // Stored behind the answer.
    wait_until("cache_dir from the file is used", || {
        cache.join("example.com/a/@v/list").is_file()
    });
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
    wait_until("the list is stored in -cache", || {
        cache.join("example.com/a/@v/list").is_file()
    });

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
