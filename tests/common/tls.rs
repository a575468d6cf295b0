//! TLS for tests: self-signed certificates from `certificates/`, made once with
//! `openssl req -x509` (P-256, a subject alternative name, valid for 100 years from 2026-12-07)
//! rather than at test time, so that no certificate generator is built with the examples.

use std::path::PathBuf;
use std::sync::Arc;

use typed_ws::rustls::pki_types::pem::PemObject;
use typed_ws::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use typed_ws::rustls::{ClientConfig, RootCertStore, ServerConfig};

/// A self-signed certificate, with the server config that presents it.
pub struct TestCertificate {
    pub der: CertificateDer<'static>,
    pub server: Arc<ServerConfig>,
    stem: &'static str,
}

/// The certificate `certificates/<stem>.pem`: `localhost` and `localhost-other` (two roots
/// for the same name) or `example.com`.
pub fn certificate(stem: &'static str) -> TestCertificate {
    let (cert, key) = paths(stem);
    let der = CertificateDer::from_pem_file(&cert).expect("certificate");
    let key = PrivateKeyDer::from_pem_file(&key).expect("key");
    let server = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], key)
        .expect("server config");
    TestCertificate {
        der,
        server: Arc::new(server),
        stem,
    }
}

fn paths(stem: &str) -> (PathBuf, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/common/certificates");
    (
        dir.join(format!("{stem}.pem")),
        dir.join(format!("{stem}.key.pem")),
    )
}

impl TestCertificate {
    /// The certificate (also the root to trust) and its key as PEM files, for a peer process.
    pub fn pem_files(&self) -> (PathBuf, PathBuf) {
        paths(self.stem)
    }
}

/// A client config that trusts exactly `cert`.
pub fn trusting(cert: CertificateDer<'static>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(cert).expect("root");
    Arc::new(
        ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}
