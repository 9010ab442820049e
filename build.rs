//! Records the git revision the binary is built from, for `goproxy --version`.
//!
//! Outside a git checkout (a source tarball, a container build context without
//! `.git`) the revision is "unknown", unless `GOPROXY_GIT_REV` names it (the
//! Dockerfile passes it as a build argument).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=GOPROXY_GIT_REV");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| ".".into()));
    let from_env = std::env::var("GOPROXY_GIT_REV")
        .ok()
        .map(|rev| rev.trim().to_owned())
        .filter(|rev| !rev.is_empty() && rev.chars().all(|c| c.is_ascii_alphanumeric()));
    let rev = match from_env {
        Some(rev) => rev,
        None => {
            watch_git_state(&dir);
            git(&dir, &["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".to_owned())
        }
    };
    println!("cargo:rustc-env=GOPROXY_GIT_REV={rev}");
}

/// Asks cargo to run this script again when HEAD moves: a commit or a reset
/// changes the branch's ref file (or `packed-refs` once refs are packed), a
/// checkout changes HEAD itself. Paths come from git, so linked worktrees
/// (where `.git` is a file) work too. Outside a checkout nothing is watched:
/// naming files that do not exist would rerun the script on every build.
fn watch_git_state(dir: &Path) {
    let mut files = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(head_ref) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        files.push(head_ref);
    }
    for file in files {
        let Some(path) = git(dir, &["rev-parse", "--git-path", &file]) else {
            continue;
        };
        let path = dir.join(path);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}
