//! A throwaway certificate authority and a server certificate for 127.0.0.1
//! and localhost, written as PEM files for the proxy's `tls_cert`/`tls_key`
//! and for clients (`SSL_CERT_FILE` for the go command).

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use tempfile::TempDir;

pub struct TestCa {
    pub dir: TempDir,
    /// The CA certificate clients trust.
    pub ca: PathBuf,
    /// The server's certificate (signed by the CA) and key.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// A key of another certificate, for mismatch tests.
    pub other_key: PathBuf,
}

impl TestCa {
    pub fn new() -> TestCa {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "goproxy test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
            .expect("CA certificate");

        let key = KeyPair::generate().expect("server key");
        let params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("server params");
        let cert = params.signed_by(&key, &ca).expect("server certificate");

        let write = |name: &str, pem: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).expect("write PEM");
            path
        };
        TestCa {
            ca: write("ca.pem", ca.pem()),
            cert: write("server.pem", cert.pem()),
            key: write("server.key", key.serialize_pem()),
            other_key: write(
                "other.key",
                KeyPair::generate().expect("other key").serialize_pem(),
            ),
            dir,
        }
    }

    /// A reqwest client that trusts only this CA.
    pub fn client(&self) -> reqwest::Client {
        let pem = std::fs::read(&self.ca).expect("read CA");
        let ca = reqwest::Certificate::from_pem(&pem).expect("CA certificate");
        reqwest::Client::builder()
            .no_proxy()
            .tls_certs_only([ca])
            .build()
            .expect("TLS client")
    }
}
