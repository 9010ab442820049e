//! Service manager notifications (systemd's `sd_notify` protocol): with
//! `Type=notify`, systemd starts units that depend on goproxy only once it
//! reports `READY=1`, which it does after the listener is bound and the cache
//! is usable; `STOPPING=1` tells it the shutdown has begun.
//!
//! The protocol is one datagram of `KEY=VALUE` lines sent to the unix socket
//! named by `$NOTIFY_SOCKET`: a path, or an abstract socket written with a
//! leading `@`. Outside systemd the variable is unset and nothing is sent.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

/// The environment variable systemd sets for `Type=notify` services.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(
        "NOTIFY_SOCKET {0:?} is neither an absolute path nor an abstract socket (@name); \
         the service manager sets it: unset it to run without one"
    )]
    BadAddress(String),
    #[error("cannot notify the service manager at {socket:?}: {source}")]
    Send {
        socket: String,
        #[source]
        source: io::Error,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Address {
    Path(PathBuf),
    /// Linux's abstract namespace: the name without the leading `@`.
    Abstract(Vec<u8>),
}

/// Where notifications go, as read once from the environment at startup.
#[derive(Clone, Debug)]
pub struct Notifier {
    shown: String,
    address: Address,
}

impl Notifier {
    /// The notifier `$NOTIFY_SOCKET` asks for; `Ok(None)` when it is unset or empty.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Self>, NotifyError> {
        match env(NOTIFY_SOCKET) {
            None => Ok(None),
            Some(text) if text.is_empty() => Ok(None),
            Some(text) => Self::new(&text).map(Some),
        }
    }

    pub fn new(socket: &str) -> Result<Self, NotifyError> {
        let address = if let Some(name) = socket.strip_prefix('@') {
            Address::Abstract(name.as_bytes().to_vec())
        } else if socket.starts_with('/') {
            Address::Path(PathBuf::from(socket))
        } else {
            return Err(NotifyError::BadAddress(socket.to_owned()));
        };
        Ok(Notifier {
            shown: socket.to_owned(),
            address,
        })
    }

    /// The service is up: the listener is bound and requests are served.
    pub fn ready(&self, status: &str) -> Result<(), NotifyError> {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)))
    }

    /// Shutdown has begun; in-flight requests are being finished.
    pub fn stopping(&self, status: &str) -> Result<(), NotifyError> {
        self.send(&format!("STOPPING=1\nSTATUS={}", one_line(status)))
    }

    /// Sends one datagram. It is a local socket owned by the service manager:
    /// a send either succeeds at once or fails, so there is nothing to retry.
    pub fn send(&self, message: &str) -> Result<(), NotifyError> {
        let failed = |source| NotifyError::Send {
            socket: self.shown.clone(),
            source,
        };
        let socket = UnixDatagram::unbound().map_err(failed)?;
        match &self.address {
            Address::Path(path) => socket.send_to(message.as_bytes(), path),
            Address::Abstract(name) => send_abstract(&socket, name, message.as_bytes()),
        }
        .map(drop)
        .map_err(failed)
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn send_abstract(socket: &UnixDatagram, name: &[u8], message: &[u8]) -> io::Result<usize> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    socket.send_to_addr(message, &addr)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn send_abstract(_: &UnixDatagram, _: &[u8], _: &[u8]) -> io::Result<usize> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract unix sockets exist only on Linux",
    ))
}

/// A status is one line of the datagram: newlines would start new keys.
fn one_line(status: &str) -> String {
    status.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn receive(socket: &UnixDatagram) -> String {
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = [0u8; 1024];
        let n = socket.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn ready_and_stopping_reach_a_path_socket() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).expect("bind");
        let text = path.to_str().expect("UTF-8").to_owned();
        let notifier = Notifier::from_env(&|name| (name == NOTIFY_SOCKET).then(|| text.clone()))
            .expect("valid address")
            .expect("a notifier");
        notifier
            .ready("serving on 127.0.0.1:1\nsecond line")
            .expect("send");
        assert_eq!(
            receive(&listener),
            "READY=1\nSTATUS=serving on 127.0.0.1:1 second line"
        );
        notifier.stopping("draining").expect("send");
        assert_eq!(receive(&listener), "STOPPING=1\nSTATUS=draining");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn abstract_sockets_are_written_with_an_at_sign() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("goproxy-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .expect("abstract address");
        let listener = UnixDatagram::bind_addr(&addr).expect("bind abstract");
        Notifier::new(&format!("@{name}"))
            .expect("valid address")
            .ready("up")
            .expect("send");
        assert_eq!(receive(&listener), "READY=1\nSTATUS=up");
    }

    #[test]
    fn unset_empty_and_bad_addresses() {
        assert!(Notifier::from_env(&|_| None).expect("ok").is_none());
        assert!(
            Notifier::from_env(&|_| Some(String::new()))
                .expect("ok")
                .is_none()
        );
        let err = Notifier::new("relative.sock").unwrap_err().to_string();
        assert!(err.contains("relative.sock"), "{err}");
        let gone = Notifier::new("/nonexistent/dir/notify.sock")
            .expect("valid address")
            .ready("up")
            .unwrap_err()
            .to_string();
        assert!(gone.contains("/nonexistent/dir/notify.sock"), "{gone}");
    }
}
