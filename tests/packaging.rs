//! The container and service files, checked without a container engine: the
//! Dockerfile's build command is the documented one and its build context is
//! complete, its HEALTHCHECK is the binary's real subcommand (run here against
//! a live and a stopped proxy), port, volume and user agree with the defaults;
//! the compose file wires the same image, volume and health check; the systemd
//! unit passes `systemd-analyze verify` and its sandbox scores as "OK".
//! scripts/test.sh also lints the Dockerfile (hadolint) and validates the
//! compose file against the Compose schema (docker-compose config).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use goproxy::config::{DEFAULT_PORT, Key, Settings};
use support::cli::{path_str, tempdir};
use support::process::{ProxyProcess, binary, command};

fn repo_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// One Dockerfile instruction: its keyword (upper case), its arguments with
/// continuation lines joined, and the build stage it belongs to.
#[derive(Debug)]
struct Instruction {
    stage: usize,
    keyword: String,
    args: String,
}

fn dockerfile() -> Vec<Instruction> {
    let text = repo_file("Dockerfile");
    let mut out = Vec::new();
    let mut stage = 0;
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_empty()) {
            continue;
        }
        if let Some(body) = trimmed.strip_suffix('\\') {
            pending.push_str(body.trim());
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        let (keyword, args) = pending.split_once(' ').unwrap_or((&pending, ""));
        let keyword = keyword.to_ascii_uppercase();
        if keyword == "FROM" {
            stage += 1;
        }
        out.push(Instruction {
            stage,
            keyword,
            args: args.trim().to_owned(),
        });
        pending.clear();
    }
    out
}

fn last_stage(instructions: &[Instruction]) -> usize {
    instructions.iter().map(|i| i.stage).max().unwrap_or(0)
}

/// The arguments of the final stage's only `keyword` instruction.
fn runtime(instructions: &[Instruction], keyword: &str) -> String {
    let last = last_stage(instructions);
    let found: Vec<&Instruction> = instructions
        .iter()
        .filter(|i| i.stage == last && i.keyword == keyword)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {keyword} in the runtime stage: {found:?}"
    );
    found[0].args.clone()
}

fn json_array(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not an exec-form array {text:?}: {e}"))
}

/// The `cargo build ...` command of the build stage's RUN.
fn cargo_build_command(instructions: &[Instruction]) -> String {
    let runs: Vec<&str> = instructions
        .iter()
        .filter(|i| i.keyword == "RUN")
        .filter_map(|i| i.args.find("cargo build").map(|at| &i.args[at..]))
        .collect();
    assert_eq!(runs.len(), 1, "one cargo build: {runs:?}");
    runs[0].split("&&").next().unwrap_or("").trim().to_owned()
}

#[test]
fn the_dockerfile_builds_the_release_binary_the_readme_documents() {
    let instructions = dockerfile();
    let build = cargo_build_command(&instructions);
    assert_eq!(build, "cargo build --release --locked --bin goproxy");
    let readme = repo_file("README.md");
    assert!(
        readme.lines().any(|l| l.trim() == build),
        "README documents `{build}` as the release build"
    );
    // The revision comes in as a build argument (the context has no .git).
    let build_stage: Vec<&Instruction> = instructions.iter().filter(|i| i.stage == 1).collect();
    assert!(
        build_stage
            .iter()
            .any(|i| i.keyword == "ARG" && i.args.starts_with("GIT_REV"))
    );
    assert!(
        build_stage
            .iter()
            .any(|i| i.keyword == "ENV" && i.args == "GOPROXY_GIT_REV=${GIT_REV}")
    );
    // Build and runtime images are the same Debian release (same glibc).
    let from: Vec<&str> = instructions
        .iter()
        .filter(|i| i.keyword == "FROM")
        .map(|i| i.args.as_str())
        .collect();
    assert_eq!(from.len(), 2, "{from:?}");
    assert!(
        from[0].contains("-bookworm") && from[0].ends_with(" AS build"),
        "{from:?}"
    );
    assert!(from[1].contains("debian12"), "{from:?}");
}

/// Whether `.dockerignore` (a `*` followed by `!path` exceptions) lets `path` in.
fn in_context(ignore: &str, path: &str) -> bool {
    let mut included = true;
    for line in ignore.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.strip_prefix('!') {
            Some(pattern) if pattern.trim_end_matches('/') == path.trim_end_matches('/') => {
                included = true;
            }
            Some(_) => {}
            None if line == "*" || line.trim_end_matches('/') == path.trim_end_matches('/') => {
                included = false;
            }
            None => {}
        }
    }
    included
}

fn copy_tree(from: &Path, to: &Path) {
    let meta =
        std::fs::symlink_metadata(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    if meta.file_type().is_symlink() {
        // Unit directories hold links (masked units point at /dev/null).
        let target = std::fs::read_link(from).unwrap();
        std::os::unix::fs::symlink(target, to).unwrap();
    } else if meta.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap().flatten() {
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    }
}

#[test]
fn the_build_context_holds_everything_the_build_needs() {
    let instructions = dockerfile();
    let ignore = repo_file(".dockerignore");
    let context = tempdir();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for copy in instructions
        .iter()
        .filter(|i| i.stage == 1 && i.keyword == "COPY")
    {
        let parts: Vec<&str> = copy
            .args
            .split_whitespace()
            .filter(|p| !p.starts_with("--"))
            .collect();
        let (sources, dest) = parts.split_at(parts.len() - 1);
        let dest = context.path().join(dest[0].trim_start_matches("./"));
        for source in sources {
            assert!(
                in_context(&ignore, source),
                ".dockerignore leaves {source} out of the context"
            );
            // `COPY a b dir/` puts each source inside dir; `COPY src ./src` names the target.
            let target = if sources.len() > 1 || copy.args.ends_with('/') {
                dest.join(source)
            } else {
                dest.clone()
            };
            copy_tree(&root.join(source), &target);
        }
    }
    // Parsing the manifest (every target's source must exist) and checking
    // the lock file is what `--locked` does first; compiling is left to a
    // real container build.
    let out = Command::new("cargo")
        .args(["fetch", "--locked", "--offline", "--manifest-path"])
        .arg(context.path().join("Cargo.toml"))
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "the Dockerfile's context is not a buildable crate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn port_volume_and_user_agree_with_the_defaults() {
    let instructions = dockerfile();
    assert_eq!(runtime(&instructions, "EXPOSE"), DEFAULT_PORT.to_string());
    assert!(
        Settings::default()
            .listen
            .ends_with(&format!(":{DEFAULT_PORT}"))
    );
    assert!(
        Settings::default().listen.starts_with("0.0.0.0:"),
        "all interfaces in a container"
    );
    let volume = runtime(&instructions, "VOLUME");
    assert_eq!(runtime(&instructions, "ENV"), format!("CACHE_DIR={volume}"));
    let user = runtime(&instructions, "USER");
    let (uid, gid) = user.split_once(':').expect("uid:gid");
    let uid: u32 = uid
        .parse()
        .expect("a numeric uid (checkable by runAsNonRoot)");
    assert_ne!(uid, 0, "not root");
    assert_ne!(gid, "0");
    // The cache directory in the image belongs to that user, so a new named
    // volume mounted there is writable.
    let last = last_stage(&instructions);
    assert!(
        instructions.iter().any(|i| i.stage == last
            && i.keyword == "COPY"
            && i.args.contains(&format!("--chown={user}"))
            && i.args.ends_with(&format!(" {volume}"))),
        "{volume} is owned by {user}"
    );
}

/// Runs the HEALTHCHECK's command line with this build's binary.
fn run_healthcheck(args: &[String], env: &[(&str, &str)]) -> std::process::Output {
    let dir = tempdir();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    command(dir.path(), &args, env)
        .output()
        .expect("run healthcheck")
}

#[test]
fn the_healthcheck_is_the_binary_checking_itself() {
    let instructions = dockerfile();
    let healthcheck = runtime(&instructions, "HEALTHCHECK");
    let cmd = healthcheck
        .split_once("CMD ")
        .expect("HEALTHCHECK ... CMD [...]")
        .1;
    let argv = json_array(cmd);
    let entrypoint = json_array(&runtime(&instructions, "ENTRYPOINT"));
    assert_eq!(argv[0], entrypoint[0], "the image's own binary");
    let last = last_stage(&instructions);
    assert!(
        instructions.iter().any(|i| i.stage == last
            && i.keyword == "COPY"
            && i.args.ends_with(&format!(" {}", argv[0]))),
        "{} is copied into the image",
        argv[0]
    );
    assert_eq!(argv[1], "healthcheck");
    let docker_timeout = healthcheck
        .split_whitespace()
        .find_map(|w| w.strip_prefix("--timeout="));
    assert_eq!(
        docker_timeout,
        Some("5s"),
        "Docker's timeout outlasts the command's 3s"
    );

    // In the container the proxy listens on its default port; here the same
    // settings come from PORT, as an operator's override would.
    let dir = tempdir();
    let cache = dir.path().join("cache");
    let proxy = ProxyProcess::spawn(
        dir.path(),
        &["--cache", path_str(&cache), "--gosumdb", "off"],
        &[("LISTEN", "127.0.0.1:0")],
    );
    let port = proxy.url.rsplit(':').next().unwrap().to_owned();
    let healthy = run_healthcheck(&argv[1..], &[("PORT", &port)]);
    assert!(
        healthy.status.success(),
        "{}",
        String::from_utf8_lossy(&healthy.stderr)
    );
    drop(proxy);
    let unhealthy = run_healthcheck(&argv[1..], &[("PORT", &port)]);
    assert_eq!(unhealthy.status.code(), Some(1), "Docker's 'unhealthy'");
}

fn compose() -> serde_json::Value {
    serde_saphyr::from_str(&repo_file("docker-compose.yml")).expect("docker-compose.yml is YAML")
}

#[test]
fn the_compose_file_runs_the_image_with_a_named_cache_volume_and_health_check() {
    let doc = compose();
    let services = doc["services"].as_object().expect("services");
    assert_eq!(services.len(), 1, "one service");
    let service = &services["goproxy"];
    assert_eq!(service["build"]["context"], ".");
    assert!(
        matches!(
            service["restart"].as_str(),
            Some("unless-stopped" | "always" | "on-failure")
        ),
        "restart policy: {}",
        service["restart"]
    );
    let instructions = dockerfile();
    let volume_path = runtime(&instructions, "VOLUME");
    let volumes: Vec<&str> = service["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    let named = volumes
        .iter()
        .find_map(|v| v.strip_suffix(&format!(":{volume_path}")))
        .unwrap_or_else(|| panic!("a volume on {volume_path}: {volumes:?}"));
    assert!(
        doc["volumes"]
            .as_object()
            .expect("top-level volumes")
            .contains_key(named)
    );
    let port = runtime(&instructions, "EXPOSE");
    let ports = service["ports"].as_array().expect("ports");
    assert!(
        ports
            .iter()
            .any(|p| p.as_str() == Some(&format!("{port}:{port}"))),
        "{ports:?}"
    );

    let test: Vec<String> = service["healthcheck"]["test"]
        .as_array()
        .expect("healthcheck.test")
        .iter()
        .map(|v| v.as_str().expect("strings").to_owned())
        .collect();
    let healthcheck = runtime(&instructions, "HEALTHCHECK");
    let image_cmd = json_array(healthcheck.split_once("CMD ").expect("CMD").1);
    assert_eq!(test[0], "CMD");
    assert_eq!(test[1..], image_cmd[..], "the same check as the image's");
    for key in ["interval", "timeout", "retries", "start_period"] {
        assert!(!service["healthcheck"][key].is_null(), "healthcheck.{key}");
    }

    // Set variables are real settings; the commented examples cover the
    // settings operators reach for first.
    let known: Vec<&str> = Key::ALL.iter().map(|k| k.env_var()).collect();
    let environment = service["environment"].as_object().expect("environment map");
    for name in environment.keys() {
        assert!(
            known.contains(&name.as_str()),
            "{name} is not a goproxy setting"
        );
    }
    let text = repo_file("docker-compose.yml");
    for example in [
        "UPSTREAM_PROXY",
        "HTTP_PROXY",
        "DNS_SERVER",
        "MAX_CACHE_AGE",
        "MAX_CACHE_SIZE",
    ] {
        assert!(
            text.contains(&format!("# {example}: ")),
            "an example for {example}"
        );
    }
}

/// `key=value` lines of a unit file, by key (a key may repeat).
fn unit() -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in repo_file("packaging/goproxy.service").lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with('[') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.entry(k.to_owned()).or_default().push(v.to_owned());
        }
    }
    out
}

/// A root directory for `systemd-analyze --root`: the system's units, the
/// unit under test, and this build's binary where ExecStart expects it.
fn systemd_root(exec: &str) -> tempfile::TempDir {
    let root = tempdir();
    let units = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_dir())
        .expect("the system's unit directory (install Debian's systemd: scripts/test.sh does)");
    copy_tree(&units, &root.path().join("usr/lib/systemd/system"));
    let etc = root.path().join("etc/systemd/system");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("goproxy.service"),
        repo_file("packaging/goproxy.service"),
    )
    .unwrap();
    let target = root.path().join(exec.trim_start_matches('/'));
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    if std::fs::hard_link(binary(), &target).is_err() {
        std::fs::copy(binary(), &target).unwrap();
    }
    root
}

fn systemd_analyze(args: &[&str]) -> std::process::Output {
    Command::new("systemd-analyze")
        .args(args)
        .output()
        .expect("systemd-analyze is needed to check the unit: run scripts/test.sh, which installs Debian's systemd")
}

#[test]
fn the_systemd_unit_is_sandboxed_notifies_readiness_and_verifies() {
    let unit = unit();
    let one = |key: &str| -> &str {
        let values = unit.get(key).unwrap_or_else(|| panic!("{key}= missing"));
        &values[0]
    };
    assert_eq!(one("Type"), "notify");
    assert_eq!(one("DynamicUser"), "yes");
    assert_eq!(one("ProtectSystem"), "strict");
    let state = one("StateDirectory");
    let cache = format!("/var/lib/{state}");
    assert!(unit["Environment"].contains(&format!("CACHE_DIR={cache}")));
    assert_eq!(one("ReadWritePaths"), cache);
    assert!(
        one("RestrictAddressFamilies").contains("AF_UNIX"),
        "the readiness datagram needs AF_UNIX"
    );
    // The stop timeout outlasts the drain deadline.
    let stop = goproxy::config::parse_go_duration(one("TimeoutStopSec")).expect("a duration");
    assert!(stop > Settings::default().shutdown_timeout + Duration::from_secs(5));

    // ExecStart names a subcommand this binary has.
    let exec: Vec<&str> = one("ExecStart").split_whitespace().collect();
    let dir = tempdir();
    let mut help = exec[1..].to_vec();
    help.push("--help");
    let out = command(dir.path(), &help, &[]).output().unwrap();
    assert!(
        out.status.success(),
        "{help:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let root = systemd_root(exec[0]);
    let root_arg = format!("--root={}", path_str(root.path()));
    let verify = systemd_analyze(&["verify", "--man=no", &root_arg, "goproxy.service"]);
    let complaints = String::from_utf8_lossy(&verify.stderr).into_owned()
        + &String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success() && complaints.trim().is_empty(),
        "systemd-analyze verify: {complaints}"
    );
    // Exposure 0..10 (scaled by 10 here); up to 2.0 is rated "OK".
    let security = systemd_analyze(&[
        "security",
        "--offline=true",
        "--threshold=20",
        &root_arg,
        "goproxy.service",
    ]);
    assert!(
        security.status.success(),
        "sandbox exposure above 2.0:\n{}",
        String::from_utf8_lossy(&security.stdout)
    );
}
