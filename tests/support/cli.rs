//! Helpers for tests that run the real binary: config files, `config show`
//! parsing, expected failures, log scraping.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::client;
use super::process::{ProxyProcess, command};

pub fn tempdir() -> TempDir {
    tempfile::tempdir().expect("temp dir")
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config file");
    path.to_str().expect("UTF-8 temp path").to_owned()
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// Runs `goproxy config show`, asserts success and returns stdout.
pub fn config_show(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
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
pub fn shown(out: &str, key: &str) -> (String, String) {
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
pub fn expect_failure(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
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

pub fn run_to_exit(dir: &Path, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Output {
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

/// Flags for a server on 127.0.0.1 with a free port, the given cache and
/// upstream, fast retries, and no checksum database (the fixtures are not in
/// one), followed by `extra`.
pub fn proxy_args<'a>(cache: &'a Path, upstream: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--cache",
        path_str(cache),
        "--upstream",
        upstream,
        "--retry-backoff",
        "10ms",
        "--gosumdb",
        "off",
    ];
    args.extend_from_slice(extra);
    args
}

/// A server started with [`proxy_args`].
pub fn start_proxy(dir: &Path, cache: &Path, upstream: &str, extra: &[&str]) -> ProxyProcess {
    ProxyProcess::spawn(dir, &proxy_args(cache, upstream, extra), &[])
}

pub fn proxy_addr(proxy: &ProxyProcess) -> SocketAddr {
    proxy
        .url
        .trim_start_matches("http://")
        .parse()
        .unwrap_or_else(|e| panic!("bad URL {}: {e}", proxy.url))
}

pub type Fetched = (u16, HashMap<String, String>, Vec<u8>);

pub async fn fetch(url: String) -> reqwest::Result<Fetched> {
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

pub fn get(rt: &tokio::runtime::Runtime, url: &str) -> Fetched {
    rt.block_on(fetch(url.to_owned()))
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until at least `n` log lines match, and returns the matching lines (colour codes removed).
pub fn wait_for_lines(
    proxy: &ProxyProcess,
    n: usize,
    matches: impl Fn(&str) -> bool,
) -> Vec<String> {
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
pub fn is_request_line(line: &str, path: &str) -> bool {
    let fields = text_fields(line);
    fields.get("path").map(String::as_str) == Some(path) && fields.contains_key("status")
}

/// `key=value` pairs of a text log line, quotes removed.
pub fn text_fields(line: &str) -> HashMap<String, String> {
    line.split_whitespace()
        .filter_map(|word| word.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

pub fn strip_ansi(s: &str) -> String {
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
pub fn files_in(dir: &Path) -> Vec<(String, u64)> {
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
