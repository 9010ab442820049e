//! Download progress as people and log collectors see it, with the real binary:
//! live bars in a real terminal (tmux), throttled plain lines when stderr is a
//! file, and nothing when turned off.
//!
//! Slow downloads come from the fake upstream sending a zip a little at a time.

mod support;

use std::fs::File;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime};

use support::cli::*;
use support::process::{binary, command};
use support::tmux::Tmux;
use support::{FakeUpstream, Fault, Module};

/// A size as bars and progress lines print it: `391.1KiB`.
fn size_word(bytes: usize) -> String {
    goproxy::config::human_size(bytes as u64).replace(' ', "")
}

/// The bar of `name` on `screen`: a line starting with the name and showing a
/// whole percentage.
fn bar_line<'a>(screen: &'a str, name: &str) -> Option<(usize, &'a str)> {
    screen
        .lines()
        .enumerate()
        .find(|(_, line)| line.starts_with(name) && percentage(line).is_some())
}

fn percentage(line: &str) -> Option<u64> {
    line.split_whitespace()
        .find_map(|word| word.strip_suffix('%')?.parse().ok())
}

/// The request log line for `path` on `screen`.
fn request_line<'a>(screen: &'a str, path: &str) -> Option<(usize, &'a str)> {
    screen
        .lines()
        .enumerate()
        .find(|(_, line)| is_request_line(line, path))
}

/// A whole text log line: starts with its timestamp, has a level, and ends
/// with the request line's last field, with nothing of a bar in it.
fn assert_intact_request_line(line: &str, path: &str) {
    let line = line.trim_end();
    let timestamp = line.split_whitespace().next().unwrap_or("");
    assert!(
        humantime::parse_rfc3339(timestamp).is_ok(),
        "does not start with a timestamp: {line:?}"
    );
    assert!(line.contains(" INFO "), "{line:?}");
    assert_eq!(line.matches("path=").count(), 1, "{line:?}");
    let fields = text_fields(line);
    assert_eq!(
        fields.get("path").map(String::as_str),
        Some(path),
        "{line:?}"
    );
    assert_eq!(fields.get("status").map(String::as_str), Some("200"));
    let last = line.split_whitespace().last().unwrap_or("");
    assert!(last.starts_with("cache="), "cut short: {line:?}");
    assert!(
        !line.contains('%') && !line.contains("ETA") && !line.contains("B/s"),
        "bar text inside the log line: {line:?}"
    );
}

#[test]
fn on_a_terminal_bars_sit_below_intact_log_lines_and_vanish_when_downloads_end() {
    let rt = runtime();
    let upstream = rt.block_on(FakeUpstream::start());
    let slow = Module::sized("example.com/slowmod", "v1.0.0", 400_000);
    let cut = Module::sized("example.com/slowmod", "v1.1.0", 400_000);
    upstream.add(slow.clone()).add(cut.clone());
    // About 4 s, then about 20 s (the second is interrupted by a shutdown).
    upstream.push_faults(&slow.url_path("zip"), &[Fault::Slow(1_000)]);
    upstream.push_faults(&cut.url_path("zip"), &[Fault::Slow(200)]);

    let dir = tempdir();
    let cache = dir.path().join("cache");
    let tmux = Tmux::start(
        dir.path(),
        200,
        40,
        &[
            binary(),
            "--listen",
            "127.0.0.1:0",
            "--cache",
            path_str(&cache),
            "--upstream",
            &upstream.url,
            "--gosumdb",
            "off",
            "--shutdown-timeout",
            "1s",
        ],
        &[],
    );
    let screen = tmux.wait_for_screen("the proxy is up", Duration::from_secs(20), |s| {
        s.contains("GOPROXY=http://")
    });
    let url = screen
        .split("GOPROXY=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("GOPROXY= line")
        .to_owned();
    assert!(screen.contains("progress=bars"), "{screen}");

    // A bar with the module, its version and a percentage.
    let name = "example.com/slowmod@v1.0.0";
    let download = rt.spawn(fetch(format!("{url}{}", slow.url_path("zip"))));
    let screen = tmux.wait_for_screen("a bar appears", Duration::from_secs(10), |s| {
        bar_line(s, name).is_some()
    });
    let (_, bar) = bar_line(&screen, name).expect("bar");
    let first = percentage(bar).expect("percentage");
    assert!(first < 100, "{bar}");
    let total = size_word(slow.zip.len());
    assert!(
        bar.contains(&format!("/{total}")) && bar.contains("ETA"),
        "{bar}"
    );
    // It is live: the percentage grows, and the speed and time left show.
    let screen = tmux.wait_for_screen("the bar advances", Duration::from_secs(10), |s| {
        bar_line(s, name).is_some_and(|(_, bar)| {
            percentage(bar).is_some_and(|p| p > first) && bar.contains("KiB/s  ETA ")
        })
    });
    let (_, bar) = bar_line(&screen, name).expect("bar");
    assert!(!bar.contains("ETA ?"), "{bar}");

    // A log line printed meanwhile scrolls above the bar, whole.
    let info = slow.url_path("info");
    assert_eq!(get(&rt, &format!("{url}{info}")).0, 200);
    let screen = tmux.wait_for_screen(
        "the request log line is printed above the bar",
        Duration::from_secs(10),
        |s| match (request_line(s, &info), bar_line(s, name)) {
            (Some((log, _)), Some((bar, _))) => log < bar,
            _ => false,
        },
    );
    let (log_at, log) = request_line(&screen, &info).expect("request line");
    assert_intact_request_line(log, &info);
    let (bar_at, bar) = bar_line(&screen, name).expect("bar");
    assert!(bar_at > log_at, "{screen}");
    assert!(
        bar.trim_end()
            .ends_with(|c: char| c.is_ascii_alphanumeric() || c == '?'),
        "{bar:?}"
    );

    // The download completes and its bar goes.
    let (status, _, body) = rt.block_on(download).expect("task").expect("download");
    assert_eq!(status, 200);
    assert!(body == slow.zip, "the zip arrived intact");
    let screen = tmux.wait_for_screen("the bar is gone", Duration::from_secs(10), |s| {
        bar_line(s, name).is_none()
    });
    assert!(
        screen
            .lines()
            .any(|l| l.contains(" fetched ") && l.contains(&format!("artifact={name}"))),
        "{screen}"
    );

    // Shutting down with a download still running neither waits for it nor
    // leaves its bar behind.
    let name = "example.com/slowmod@v1.1.0";
    let interrupted = rt.spawn(fetch(format!("{url}{}", cut.url_path("zip"))));
    tmux.wait_for_screen(
        "a bar for the second download",
        Duration::from_secs(10),
        |s| bar_line(s, name).is_some(),
    );
    let asked = Instant::now();
    tmux.send_keys("C-c");
    while !tmux.exited() {
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "still running 10 s after Ctrl-C:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // 1 s of shutdown_timeout, then the display stops at once.
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    let screen = tmux.screen();
    assert!(screen.contains(" stopped"), "{screen}");
    assert!(
        !screen.lines().any(|l| percentage(l).is_some()),
        "a bar was left on screen:\n{screen}"
    );
    let _ = rt.block_on(interrupted);
}

/// The binary with stderr going to a file, as under systemd or `2> file`.
struct FileLogged {
    child: Child,
    log: std::path::PathBuf,
    url: String,
}

impl FileLogged {
    fn spawn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> FileLogged {
        let log = dir.join("stderr.log");
        let file = File::create(&log).expect("create log file");
        let child = command(dir, args, env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .expect("start goproxy");
        let mut proxy = FileLogged {
            child,
            log,
            url: String::new(),
        };
        let text = proxy.wait_for("the proxy is up", |t| t.contains("GOPROXY="));
        proxy.url = text
            .split("GOPROXY=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("GOPROXY= line")
            .to_owned();
        proxy
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.text();
            if done(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting until {what}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the process (SIGTERM) and returns everything it wrote.
    fn stop(mut self) -> String {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().expect("try_wait").is_none() {
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.text()
    }
}

impl Drop for FileLogged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines_with<'a>(text: &'a str, message: &str, artifact: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| {
            l.contains(&format!(" {message} "))
                && text_fields(l).get("artifact").map(String::as_str) == Some(artifact)
        })
        .collect()
}

fn timestamp(line: &str) -> SystemTime {
    let word = line.split_whitespace().next().unwrap_or("");
    humantime::parse_rfc3339(word).unwrap_or_else(|e| panic!("{e}: {line}"))
}

#[test]
fn without_a_terminal_progress_is_throttled_plain_lines_and_a_completion_line() {
    let rt = runtime();
    let upstream = rt.block_on(FakeUpstream::start());
    // About 7 s: one or two progress lines.
    let slow = Module::sized("example.com/bigmod", "v1.0.0", 700_000);
    let quick = Module::simple("example.com/quick", "v1.0.0");
    upstream.add(slow.clone()).add(quick.clone());
    upstream.push_faults(&slow.url_path("zip"), &[Fault::Slow(1_000)]);

    let dir = tempdir();
    let cache = dir.path().join("cache");
    // A terminal type is set, as it often is in containers: stderr decides.
    let proxy = FileLogged::spawn(
        dir.path(),
        &proxy_args(&cache, &upstream.url, &[]),
        &[("TERM", "xterm-256color")],
    );
    let download = rt.spawn(fetch(format!("{}{}", proxy.url, slow.url_path("zip"))));
    assert_eq!(
        get(&rt, &format!("{}{}", proxy.url, quick.url_path("zip"))).0,
        200
    );
    let (status, _, body) = rt.block_on(download).expect("task").expect("download");
    assert_eq!(status, 200);
    assert!(body == slow.zip, "the zip arrived intact");
    let slow_name = "example.com/bigmod@v1.0.0";
    proxy.wait_for("the completion line", |t| {
        !lines_with(t, "download finished", slow_name).is_empty()
    });
    let text = proxy.stop();

    assert!(
        !text.contains('\x1b') && !text.contains('\r'),
        "control characters in a log file:\n{text:?}"
    );
    assert!(text.contains("progress=lines"), "{text}");

    let progress = lines_with(&text, "downloading", slow_name);
    assert!(!progress.is_empty(), "no progress line:\n{text}");
    for line in &progress {
        assert!(!line.contains('"'), "values are single words: {line}");
        let fields = text_fields(line);
        let percent: u64 = fields["percent"].parse().expect("percent");
        assert!((1..100).contains(&percent), "{line}");
        assert_eq!(fields["total"], size_word(slow.zip.len()), "{line}");
        for key in ["done", "speed", "eta"] {
            assert!(!fields[key].is_empty(), "{key} missing: {line}");
        }
        assert!(fields["speed"].ends_with("B/s"), "{line}");
        assert_eq!(fields["connections"], "1", "{line}");
    }
    // At most one line every 5 s.
    let start = timestamp(text.lines().next().expect("banner"));
    assert!(
        timestamp(progress[0])
            .duration_since(start)
            .unwrap_or_default()
            >= Duration::from_secs(5),
        "{text}"
    );
    for pair in progress.windows(2) {
        let gap = timestamp(pair[1]).duration_since(timestamp(pair[0]));
        assert!(gap.unwrap_or_default() >= Duration::from_secs(5), "{text}");
    }

    let done = lines_with(&text, "download finished", slow_name);
    assert_eq!(done.len(), 1, "{text}");
    assert!(!done[0].contains('"'), "{}", done[0]);
    let fields = text_fields(done[0]);
    assert_eq!(fields["size"], size_word(slow.zip.len()));
    assert!(fields["duration"].ends_with('s'), "{}", done[0]);
    assert!(fields["speed"].ends_with("B/s"), "{}", done[0]);

    // The quick download ended within the throttle period: only its completion line.
    let quick_name = "example.com/quick@v1.0.0";
    assert_eq!(lines_with(&text, "download finished", quick_name).len(), 1);
    assert!(
        lines_with(&text, "downloading", quick_name).is_empty(),
        "{text}"
    );
}

#[test]
fn progress_off_logs_no_progress() {
    let rt = runtime();
    let upstream = rt.block_on(FakeUpstream::start());
    let quick = Module::simple("example.com/quick", "v1.0.0");
    upstream.add(quick.clone());
    let dir = tempdir();
    let cache = dir.path().join("cache");
    let proxy = FileLogged::spawn(
        dir.path(),
        &proxy_args(&cache, &upstream.url, &[]),
        &[("PROGRESS", "off")],
    );
    assert_eq!(
        get(&rt, &format!("{}{}", proxy.url, quick.url_path("zip"))).0,
        200
    );
    proxy.wait_for("the download is logged", |t| t.contains(" fetched "));
    let text = proxy.stop();
    assert!(text.contains("progress=off"), "{text}");
    assert!(!text.contains("download finished"), "{text}");
}

#[test]
fn an_unknown_progress_mode_is_refused_naming_the_flag_and_the_choices() {
    let dir = tempdir();
    let stderr = expect_failure(dir.path(), &["--progress", "fancy"], &[]);
    assert!(
        stderr.contains(
            r#"flag --progress: invalid value "fancy" (expected auto, bars, lines or off)"#
        ),
        "{stderr}"
    );
}
