//! TLS for tests: self-signed certificates made at test time with rcgen.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use typed_ws::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use typed_ws::rustls::{ClientConfig, RootCertStore, ServerConfig};

/// A self-signed certificate for some host names, with the server config that presents it.
pub struct TestCertificate {
    pub der: CertificateDer<'static>,
    pub server: Arc<ServerConfig>,
    pem: String,
    key_pem: String,
}

pub fn certificate_for(names: &[&str]) -> TestCertificate {
    let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
    let certified = rcgen::generate_simple_self_signed(names).expect("certificate");
    let der = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let server = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], key)
        .expect("server config");
    TestCertificate {
        der,
        server: Arc::new(server),
        pem: certified.cert.pem(),
        key_pem: certified.signing_key.serialize_pem(),
    }
}

impl TestCertificate {
    /// The certificate (also the root to trust) and its key as PEM files, for a peer process,
    /// in a fresh directory.
    pub fn pem_files(&self) -> (PathBuf, PathBuf) {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "typed-ws-tls-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, &self.pem).expect("write the certificate");
        std::fs::write(&key, &self.key_pem).expect("write the key");
        (cert, key)
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
