//! HTTPS for the listener (`tls_cert`, `tls_key`), so tokens and passwords do
//! not cross the network in clear, and so the go command sends its .netrc
//! credentials at all (it only does over https).
//!
//! Handshakes run in tasks of their own, never in the accept loop: a client
//! that connects and then stalls must not hold up everyone behind it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;

/// A client gets this long to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "only {set} is set: HTTPS needs both tls_cert and tls_key \
         (--tls-cert/TLS_CERT and --tls-key/TLS_KEY)"
    )]
    Half { set: &'static str },
    #[error("{key} {}: cannot be read: {error} (set --{flag} to a readable PEM file)", .path.display())]
    Unreadable {
        key: &'static str,
        flag: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("tls_cert {}: {reason} (expected PEM \"-----BEGIN CERTIFICATE-----\" blocks, the server's first)", .path.display())]
    BadCert { path: PathBuf, reason: String },
    #[error("tls_key {}: {reason} (expected a PEM private key: PKCS#8, PKCS#1 RSA or SEC1 EC)", .path.display())]
    BadKey { path: PathBuf, reason: String },
    #[error("tls_cert {} and tls_key {} do not go together: {reason}", .cert.display(), .key.display())]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// The server configuration for `tls_cert` and `tls_key` if both are set;
/// None if neither is.
pub fn server_config(
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<Option<Arc<ServerConfig>>, TlsError> {
    let (cert, key) = match (cert, key) {
        (None, None) => return Ok(None),
        (Some(_), None) => return Err(TlsError::Half { set: "tls_cert" }),
        (None, Some(_)) => return Err(TlsError::Half { set: "tls_key" }),
        (Some(cert), Some(key)) => (cert, key),
    };
    let read = |path: &Path, key_name, flag| {
        std::fs::read(path).map_err(|error| TlsError::Unreadable {
            key: key_name,
            flag,
            path: path.to_owned(),
            error,
        })
    };
    let cert_pem = read(cert, "tls_cert", "tls-cert/TLS_CERT/tls_cert")?;
    let key_pem = read(key, "tls_key", "tls-key/TLS_KEY/tls_key")?;
    let bad_cert = |reason: String| TlsError::BadCert {
        path: cert.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_cert(format!("not valid PEM: {e}")))?;
    if chain.is_empty() {
        return Err(bad_cert("no certificate in it".to_owned()));
    }
    let private_key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::BadKey {
        path: key.to_owned(),
        reason: match e {
            rustls::pki_types::pem::Error::NoItemsFound => "no private key in it".to_owned(),
            other => format!("not valid PEM: {other}"),
        },
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| {
            builder
                .with_no_client_auth()
                .with_single_cert(chain, private_key)
        })
        .map_err(|e| TlsError::Mismatch {
            cert: cert.to_owned(),
            key: key.to_owned(),
            reason: e.to_string(),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}

/// Accepted connections after their TLS handshake.
pub struct TlsListener {
    handshaken: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> TlsListener {
        let (tx, handshaken) = mpsc::channel(64);
        tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), tx));
        TlsListener { handshaken }
    }
}

/// Accepts until the listener is dropped (the server stopped accepting).
async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (stream, client) = tokio::select! {
            () = tx.closed() => return,
            accepted = super::accept(&tcp) => accepted,
        };
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, client)).await;
                }
                Ok(Err(e)) => tracing::debug!(%client, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%client, "TLS handshake timed out"),
            }
        });
    }
}

impl super::workers::Connections for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Guard = ();

    async fn next(&mut self) -> (Self::Io, SocketAddr, ()) {
        match self.handshaken.recv().await {
            Some((stream, client)) => (stream, client, ()),
            // The accept loop only ends once this listener is gone.
            None => std::future::pending().await,
        }
    }
}
