//! Operations commands of the real binary: `healthcheck` against running and
//! stopped instances, `completions` and `man` generated from the CLI, `--version`
//! with the git revision, and readiness/stopping notifications to a service
//! manager over a real unix datagram socket.

mod support;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use support::cli::{path_str, run_to_exit, tempdir, write};
use support::process::{ProxyProcess, command};

fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    command(dir, args, env).output().expect("run goproxy")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A proxy process on a free loopback port, with its own cache; returns it and the port.
fn start(dir: &Path, env: &[(&str, &str)]) -> (ProxyProcess, u16) {
    let cache = dir.join("cache");
    let proxy = ProxyProcess::spawn(
        dir,
        &[
            "--listen",
            "127.0.0.1:0",
            "--cache",
            path_str(&cache),
            "--gosumdb",
            "off",
        ],
        env,
    );
    let port = proxy
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {}", proxy.url));
    (proxy, port)
}

fn assert_healthy(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("healthy"),
        "{what}: {}",
        text(&out.stdout)
    );
}

fn assert_unhealthy(out: &Output, what: &str, needles: &[&str]) {
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what}: exit 1 means unhealthy; stderr: {}",
        text(&out.stderr)
    );
    let stderr = text(&out.stderr);
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{what}: {needle:?} missing from {stderr}"
        );
    }
}

#[test]
fn healthcheck_finds_the_instance_its_settings_describe() {
    let dir = tempdir();
    let (mut proxy, port) = start(dir.path(), &[]);
    let port_text = port.to_string();

    let by_flag = run(dir.path(), &["healthcheck", "--port", &port_text], &[]);
    assert_healthy(&by_flag, "--port");
    assert!(text(&by_flag.stdout).contains(&format!("http://127.0.0.1:{port}/health")));
    assert_healthy(
        &run(dir.path(), &["healthcheck"], &[("PORT", &port_text)]),
        "PORT",
    );
    let config = write(dir.path(), "goproxy.yaml", &format!("port: {port}\n"));
    assert_healthy(
        &run(dir.path(), &["healthcheck", "--config", &config], &[]),
        "config file",
    );
    let listen = format!("127.0.0.1:{port}");
    assert_healthy(
        &run(dir.path(), &["healthcheck"], &[("LISTEN", &listen)]),
        "LISTEN",
    );
    // A URL argument wins over the settings; without a path it means /health.
    let url = format!("http://127.0.0.1:{port}");
    assert_healthy(
        &run(dir.path(), &["healthcheck", &url], &[("PORT", "1")]),
        "URL",
    );
    assert_healthy(
        &run(dir.path(), &["healthcheck", &format!("{url}/readyz")], &[]),
        "URL with path",
    );

    // Answers other than 2xx are unhealthy.
    let missing = run(
        dir.path(),
        &["healthcheck", &format!("{url}/no/such/page")],
        &[],
    );
    assert_unhealthy(&missing, "404", &["answered 404", "/no/such/page"]);

    proxy.signal("TERM");
    assert!(
        proxy.wait_exit(Duration::from_secs(15)).is_some(),
        "proxy stops"
    );
    let stopped = run(dir.path(), &["healthcheck", "--port", &port_text], &[]);
    assert_unhealthy(
        &stopped,
        "stopped",
        &[
            "unhealthy",
            &format!("127.0.0.1:{port}/health"),
            "cannot connect",
            "--port/PORT",
        ],
    );
}

#[test]
fn healthcheck_refuses_bad_input_with_exit_2() {
    let dir = tempdir();
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 4] = [
        (&["healthcheck", "--timeout", "soon"], &[], "--timeout"),
        (
            &["healthcheck", "ftp://127.0.0.1/"],
            &[],
            "only http and https",
        ),
        (&["healthcheck"], &[("PORT", "not-a-port")], "PORT"),
        (&["healthcheck", "--port", "0"], &[], "port is 0"),
    ];
    for (args, env, needle) in cases {
        let out = run(dir.path(), args, env);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(needle),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // A credential in a URL that does not parse is not echoed.
    let out = run(
        dir.path(),
        &["healthcheck", "http://user:hunter2@[::1"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !text(&out.stderr).contains("hunter2"),
        "{}",
        text(&out.stderr)
    );
}

/// Main flags and subcommands every generated artifact must mention.
const MAIN_FLAGS: [&str; 5] = ["port", "cache", "upstream", "config", "max-cache-size"];

fn completion(shell: &str) -> String {
    let dir = tempdir();
    let out = run(dir.path(), &["completions", shell], &[]);
    assert!(
        out.status.success(),
        "completions {shell}: {}",
        text(&out.stderr)
    );
    let script = text(&out.stdout);
    for flag in MAIN_FLAGS {
        assert!(script.contains(flag), "{shell} completion lacks --{flag}");
    }
    for sub in ["serve", "healthcheck", "cache", "completions", "man"] {
        assert!(script.contains(sub), "{shell} completion lacks {sub}");
    }
    script
}

/// Runs a shell's syntax check on `script`; the shells are installed by scripts/test.sh.
fn syntax_check(shell: &str, args: &[&str], script: &str) {
    let dir = tempdir();
    let file = write(dir.path(), "completion", script);
    let out = std::process::Command::new(shell)
        .args(args)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("`{shell}` is needed to check its completion script ({e}): run scripts/test.sh, which installs it"));
    assert!(
        out.status.success(),
        "{shell} rejects its completion script: {}",
        text(&out.stderr)
    );
}

#[test]
fn completions_generate_for_bash_zsh_and_fish_and_parse_in_each_shell() {
    let bash = completion("bash");
    assert!(
        bash.contains("complete -F _goproxy"),
        "registers the function"
    );
    syntax_check("bash", &["-n"], &bash);
    let zsh = completion("zsh");
    assert!(zsh.starts_with("#compdef goproxy"), "zsh autoload header");
    syntax_check("zsh", &["-n"], &zsh);
    let fish = completion("fish");
    assert!(fish.contains("complete -c goproxy"));
    syntax_check("fish", &["--no-execute"], &fish);

    let dir = tempdir();
    let bad = run(dir.path(), &["completions", "tcsh"], &[]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("bash"),
        "lists the shells: {}",
        text(&bad.stderr)
    );
}

/// Renders a man page with man(1) (groff) to plain text.
fn render_man(page: &Path) -> String {
    let out = std::process::Command::new("man")
        .arg("-l")
        .arg(page)
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .output()
        .expect("man(1) is needed to render the pages: run scripts/test.sh, which installs it");
    assert!(
        out.status.success(),
        "man -l {}: {}",
        page.display(),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn man_pages_render_and_document_the_flags() {
    let dir = tempdir();
    let out = run(dir.path(), &["man"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let roff = text(&out.stdout);
    assert!(
        roff.contains(".TH goproxy 1"),
        "a section 1 page: {}",
        &roff[..200.min(roff.len())]
    );
    let page = write(dir.path(), "goproxy.1", &roff);
    let shown = render_man(Path::new(&page));
    for flag in MAIN_FLAGS {
        assert!(
            shown.contains(&format!("--{flag}")),
            "goproxy(1) lacks --{flag}:\n{shown}"
        );
    }
    assert!(shown.contains("healthcheck"), "lists the subcommands");
    assert!(shown.contains(goproxy::cli::VERSION), "names the version");

    let pages = dir.path().join("man1");
    let out = run(dir.path(), &["man", "--out-dir", path_str(&pages)], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for name in [
        "goproxy.1",
        "goproxy-healthcheck.1",
        "goproxy-cache-gc.1",
        "goproxy-completions.1",
    ] {
        assert!(pages.join(name).is_file(), "{name} written");
    }
    let healthcheck = render_man(&pages.join("goproxy-healthcheck.1"));
    assert!(healthcheck.contains("--timeout"), "{healthcheck}");
}

#[test]
fn version_names_the_release_and_git_revision() {
    let dir = tempdir();
    let out = run(dir.path(), &["--version"], &[]);
    assert!(out.status.success());
    let line = text(&out.stdout);
    assert_eq!(line.trim(), format!("goproxy {}", goproxy::cli::VERSION));
    assert!(goproxy::cli::VERSION.starts_with(env!("CARGO_PKG_VERSION")));
    let head = std::process::Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short",
            "HEAD",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| text(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    assert_eq!(
        goproxy::cli::GIT_REV,
        head,
        "built from this checkout's HEAD"
    );
    assert!(line.contains(&format!("({head})")), "{line}");
}

fn receive(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("a notification within 20 s");
    text(&buf[..n])
}

#[test]
fn the_service_manager_hears_ready_then_stopping() {
    let dir = tempdir();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let (mut proxy, port) = start(dir.path(), &[("NOTIFY_SOCKET", path_str(&socket_path))]);

    let ready = receive(&socket);
    assert!(ready.starts_with("READY=1\n"), "{ready:?}");
    assert!(
        ready.contains(&format!("STATUS=serving on 127.0.0.1:{port}")),
        "{ready:?}"
    );
    // Ready means ready: the port answers at once.
    assert_healthy(
        &run(
            dir.path(),
            &["healthcheck", "--port", &port.to_string()],
            &[],
        ),
        "after READY",
    );

    proxy.signal("TERM");
    let stopping = receive(&socket);
    assert!(stopping.starts_with("STOPPING=1\n"), "{stopping:?}");
    let status = proxy.wait_exit(Duration::from_secs(15)).expect("exits");
    assert!(status.success(), "{status}");
}

#[test]
fn a_malformed_notify_socket_is_refused_at_startup() {
    let dir = tempdir();
    let out = run_to_exit(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--cache",
            path_str(&dir.path().join("cache")),
        ],
        &[("NOTIFY_SOCKET", "relative/notify.sock")],
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("NOTIFY_SOCKET"),
        "{}",
        text(&out.stderr)
    );
}
