//! tinyproxy, a real HTTP proxy (forwarding and CONNECT tunnels) with basic
//! authentication, started on 127.0.0.1 for one test and killed when dropped.
//! `scripts/test.sh` installs it (Debian package `tinyproxy`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub struct Tinyproxy {
    pub addr: SocketAddr,
    child: Child,
    log: PathBuf,
    _dir: TempDir,
}

fn binary() -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"] {
        let path = PathBuf::from(dir).join("tinyproxy");
        if path.exists() {
            return path;
        }
    }
    panic!("tinyproxy not found: install the Debian package tinyproxy (scripts/test.sh does)");
}

impl Tinyproxy {
    /// A proxy that requires basic auth with `user` and `password`.
    pub fn start(user: &str, password: &str) -> Tinyproxy {
        let binary = binary();
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir");
            // tinyproxy needs a fixed port: take a free one and hand it over.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let log = dir.path().join("tinyproxy.log");
            let config = dir.path().join("tinyproxy.conf");
            std::fs::write(
                &config,
                format!(
                    "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 50\n\
                     Allow 127.0.0.1\nBasicAuth {user} {password}\n\
                     LogFile \"{}\"\nLogLevel Info\nDisableViaHeader Yes\n",
                    log.display()
                ),
            )
            .expect("write tinyproxy.conf");
            let mut child = Command::new(&binary)
                .arg("-d")
                .arg("-c")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start tinyproxy");
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if std::net::TcpStream::connect(addr).is_ok() {
                    return Tinyproxy {
                        addr,
                        child,
                        log,
                        _dir: dir,
                    };
                }
                if child.try_wait().ok().flatten().is_some() {
                    // Most likely the port was taken in between: try another.
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("tinyproxy did not start");
    }

    /// `http://user:password@127.0.0.1:port`.
    pub fn url(&self, credentials: (&str, &str)) -> String {
        format!("http://{}:{}@{}", credentials.0, credentials.1, self.addr)
    }

    /// The request lines tinyproxy received, e.g. `GET http://127.0.0.1:1234/x HTTP/1.1`
    /// or `CONNECT localhost:443 HTTP/1.1`.
    pub fn requests(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|line| line.split_once("): ").map(|(_, rest)| rest))
            .filter(|rest| {
                rest.split_whitespace()
                    .next()
                    .is_some_and(|method| method.chars().all(|c| c.is_ascii_uppercase()))
                    && rest.ends_with("HTTP/1.1")
            })
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
