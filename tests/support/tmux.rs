//! Runs a command in a real terminal: a detached tmux session of a fixed size,
//! on a private server socket, whose screen the test reads as a person would
//! see it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A tmux server with one session running one command; killed when dropped.
pub struct Tmux {
    socket: PathBuf,
    _dir: TempDir,
}

const SESSION: &str = "t";

impl Tmux {
    /// Starts `argv` (run directly, not through a shell) in `cwd` on a
    /// `cols`×`rows` terminal, with only `env` (and PATH) in its environment.
    /// The pane stays on screen after the command exits, so its last screen
    /// can be read.
    pub fn start(cwd: &Path, cols: u16, rows: u16, argv: &[&str], env: &[(&str, &str)]) -> Tmux {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("tmux.conf");
        std::fs::write(&config, "set -g remain-on-exit on\nset -g status off\n")
            .expect("write tmux.conf");
        let socket = dir.path().join("socket");
        let tmux = Tmux { socket, _dir: dir };
        let (cols, rows) = (cols.to_string(), rows.to_string());
        let mut args = vec![
            "-f",
            config.to_str().expect("UTF-8 path"),
            "new-session",
            "-d",
            "-s",
            SESSION,
            "-x",
            &cols,
            "-y",
            &rows,
            "-c",
            cwd.to_str().expect("UTF-8 path"),
            "--",
        ];
        args.extend_from_slice(argv);
        let mut cmd = tmux.command(&args);
        // The server, and so the pane, inherits this environment; tmux adds
        // TERM for the terminal it emulates.
        cmd.env_clear();
        if let Ok(path) = std::env::var("PATH") {
            cmd.env("PATH", path);
        }
        cmd.envs(env.iter().copied());
        let out = cmd.output().unwrap_or_else(|e| {
            panic!("cannot run tmux ({e}); scripts/test.sh installs it (apt-get install tmux)")
        });
        check(&out, "new-session");
        tmux
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.arg("-S").arg(&self.socket).args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.command(args).output().expect("run tmux");
        check(&out, args[0]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The visible screen as text (no colours), wrapped lines joined.
    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-J", "-t", SESSION])
    }

    /// Waits (up to `limit`) until `done` holds for the screen, and returns it.
    pub fn wait_for_screen(
        &self,
        what: &str,
        limit: Duration,
        done: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting until {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types keys into the terminal, e.g. `C-c`.
    pub fn send_keys(&self, keys: &str) {
        self.run(&["send-keys", "-t", SESSION, keys]);
    }

    /// Whether the command has exited.
    pub fn exited(&self) -> bool {
        self.run(&["display-message", "-p", "-t", SESSION, "#{pane_dead}"])
            .trim()
            == "1"
    }
}

fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "tmux {what} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command(&["kill-server"]).output();
    }
}
