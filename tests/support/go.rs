//! Runs the real `go` command against a proxy, in a fresh, isolated environment
//! so nothing of the machine leaks in.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// The `go` binary; the tests that need it fail (never skip) when it is missing.
pub fn go_binary() -> PathBuf {
    let candidates = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("go"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    candidates
        .into_iter()
        .chain([PathBuf::from("/usr/local/go/bin/go"), PathBuf::from("/usr/lib/go/bin/go")])
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("the `go` command is required by the end-to-end tests but was not found on PATH or in /usr/local/go/bin: install Go 1.21 or newer")
        })
}

/// A throwaway GOPATH/GOMODCACHE/HOME for one test.
pub struct GoEnv {
    pub root: TempDir,
    pub proxy: String,
    /// `GOSUMDB` for the go command: `off` unless a test brings its database.
    pub gosumdb: String,
}

impl GoEnv {
    pub fn new(proxy: &str) -> GoEnv {
        Self::with_gosumdb(proxy, "off")
    }

    /// An environment whose go command verifies against `gosumdb` (e.g. a test
    /// database's verifier key, which go then reaches through the proxy's
    /// `/sumdb/<name>/`). `GONOSUMDB`/`GOPRIVATE` stay empty.
    pub fn with_gosumdb(proxy: &str, gosumdb: &str) -> GoEnv {
        GoEnv {
            root: tempfile::tempdir().expect("go temp root"),
            proxy: proxy.to_owned(),
            gosumdb: gosumdb.to_owned(),
        }
    }

    pub fn modcache(&self) -> PathBuf {
        self.root.path().join("gopath/pkg/mod")
    }

    /// A directory for a scratch module, created on first use.
    pub fn work_dir(&self) -> PathBuf {
        let dir = self.root.path().join("work");
        std::fs::create_dir_all(&dir).expect("work dir");
        dir
    }

    pub fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let root = self.root.path();
        let mut cmd = Command::new(go_binary());
        cmd.args(args).current_dir(dir).env_clear();
        if let Ok(path) = std::env::var("PATH") {
            cmd.env("PATH", path);
        }
        cmd.env("HOME", root.join("home"))
            .env("GOPATH", root.join("gopath"))
            .env("GOMODCACHE", self.modcache())
            .env("GOCACHE", root.join("gocache"))
            .env("GOENV", "off")
            .env("GOPROXY", &self.proxy)
            .env("GOSUMDB", &self.gosumdb)
            .env("GONOSUMDB", "")
            .env("GOPRIVATE", "")
            .env("GONOPROXY", "")
            .env("GOINSECURE", "")
            .env("GOFLAGS", "-modcacherw")
            .env("GOTOOLCHAIN", "local")
            .env("GO111MODULE", "on")
            .env("CGO_ENABLED", "0");
        cmd
    }

    pub fn run(&self, dir: &Path, args: &[&str]) -> Output {
        self.command(dir, args).output().expect("run go")
    }

    /// Runs and asserts success, returning stdout.
    pub fn run_ok(&self, dir: &Path, args: &[&str]) -> String {
        expect_success(args, self.run(dir, args))
    }
}

/// Asserts that a `go` run succeeded (showing its output if not) and returns stdout.
pub fn expect_success(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "go {args:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `go` on a blocking thread so an in-process proxy keeps serving.
pub async fn go_run(go: &GoEnv, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = go.command(dir, args);
    tokio::task::spawn_blocking(move || cmd.output().expect("run go"))
        .await
        .expect("go thread")
}

/// Runs `go` on a blocking thread, asserts success and returns its stdout.
pub async fn go_ok(go: &GoEnv, dir: &Path, args: &[&str]) -> String {
    expect_success(args, go_run(go, dir, args).await)
}
