//! Extra certificate authorities from PEM files, for internal upstreams, HTTPS
//! proxies and DNS servers whose certificates the system does not trust. They
//! are trusted in addition to the platform's roots, never instead of them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// A PEM bundle read and checked at startup: at least one certificate, each
/// one parseable.
#[derive(Clone)]
pub struct CaFile {
    path: PathBuf,
    certs: Arc<[CertificateDer<'static>]>,
}

impl CaFile {
    /// Reads every `CERTIFICATE` block of the file; other blocks (keys, CRLs)
    /// are ignored.
    pub fn load(path: &Path) -> Result<CaFile, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("not a PEM certificate bundle: {e}"))?;
        if certs.is_empty() {
            return Err("it holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned());
        }
        // Catch a corrupt certificate now rather than at the first handshake.
        let mut store = rustls::RootCertStore::empty();
        for cert in &certs {
            store
                .add(cert.clone())
                .map_err(|e| format!("a certificate in it is not usable as a CA: {e}"))?;
        }
        Ok(CaFile {
            path: path.to_owned(),
            certs: certs.into(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn certs(&self) -> &[CertificateDer<'static>] {
        &self.certs
    }

    /// The certificates in the form reqwest takes.
    pub fn reqwest_certs(&self) -> Vec<reqwest::Certificate> {
        self.certs
            .iter()
            .filter_map(|der| reqwest::Certificate::from_der(der).ok())
            .collect()
    }
}

impl fmt::Debug for CaFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} certificates)",
            self.path.display(),
            self.certs.len()
        )
    }
}

impl fmt::Display for CaFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())
    }
}

/// A rustls client configuration that trusts the platform's roots plus
/// `extra`, verified the way reqwest verifies upstreams (rustls-platform-verifier
/// over aws-lc-rs), so DNS servers and upstreams are held to the same rules.
pub fn client_config(
    extra: impl IntoIterator<Item = CertificateDer<'static>>,
) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra, Arc::clone(&provider))
            .map_err(|e| format!("cannot set up certificate verification: {e}"))?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn loads_bundles_and_rejects_what_is_no_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, format!("{}\n{}", ca_pem(), ca_pem())).unwrap();
        let ca = CaFile::load(&good).unwrap();
        assert_eq!(ca.certs().len(), 2);
        assert_eq!(ca.reqwest_certs().len(), 2);
        assert_eq!(ca.to_string(), good.display().to_string());

        let missing = CaFile::load(&dir.path().join("nope.pem")).unwrap_err();
        assert!(missing.starts_with("cannot read it: "), "{missing}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "just text\n").unwrap();
        let error = CaFile::load(&empty).unwrap_err();
        assert!(error.contains("holds no PEM certificate"), "{error}");

        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let error = CaFile::load(&broken).unwrap_err();
        assert!(error.starts_with("not a PEM certificate bundle"), "{error}");
    }

    #[test]
    fn builds_a_client_config_with_extra_roots() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, ca_pem()).unwrap();
        let ca = CaFile::load(&path).unwrap();
        client_config(ca.certs().iter().cloned()).unwrap();
        client_config([]).unwrap();
    }
}
