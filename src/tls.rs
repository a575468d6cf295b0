//! TLS with rustls, behind the `tls` feature: `wss://` URLs for clients, TLS accept for
//! [`Server::serve`](crate::Server::serve). Without the feature the settings are empty and
//! `wss://` URLs are refused with [`Error::InvalidUrl`](crate::Error::InvalidUrl).

#[cfg(feature = "tls")]
use std::sync::Arc;

/// The TLS part of a [`Config`](crate::Config).
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsSettings {
    #[cfg(feature = "tls")]
    pub(crate) client: Option<Arc<rustls::ClientConfig>>,
    #[cfg(feature = "tls")]
    pub(crate) server: Option<Arc<rustls::ServerConfig>>,
}

/// The rustls error inside an I/O error from a TLS handshake, if that is what it is:
/// tokio-rustls reports certificate and protocol failures as I/O errors.
#[cfg(feature = "tls")]
pub(crate) fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}
