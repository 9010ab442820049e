//! Runs the real `goproxy` binary with a clean environment and reads its logs.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_goproxy")
}

/// A `goproxy` command with an empty environment (only PATH kept), run in `dir`.
pub fn command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(binary());
    cmd.args(args).current_dir(dir).env_clear();
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// A running proxy process; killed when dropped.
pub struct ProxyProcess {
    pub child: Child,
    /// `http://host:port` from the startup banner.
    pub url: String,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl ProxyProcess {
    /// Starts the binary and waits (up to 20 s) for its `GOPROXY=` banner line.
    pub fn spawn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> ProxyProcess {
        let mut child = command(dir, args, env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start goproxy binary");
        let stderr = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // The URL ends at whitespace, a JSON quote or a colour code.
                let url = line.find("GOPROXY=").map(|i| {
                    line[i + "GOPROXY=".len()..]
                        .split(|c: char| c.is_whitespace() || c == '"' || c == '\x1b')
                        .next()
                        .unwrap_or("")
                        .to_owned()
                });
                // Store the line first, so the banner is in `logs()` once `spawn` returns.
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                if let Some(url) = url {
                    let _ = tx.send(url);
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let logs = lines.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
                panic!("goproxy did not start within 20s; stderr:\n{logs}");
            }
        };
        ProxyProcess {
            child,
            url,
            stderr: lines,
        }
    }

    pub fn logs(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }

    /// Sends a signal (e.g. "TERM", "INT", "KILL") to the process.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// Waits for the process to exit, up to `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
