//! What the client and server handshakes share: the time bound and the error mapping.

use std::future::Future;
use std::time::Duration;

use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::http::HeaderMap;

use crate::error::{Error, tungstenite_cause};

/// Runs a handshake within the configured deadline, if any. Past it the handshake's future,
/// and with it the connection, is dropped.
pub(crate) async fn bounded<T>(
    deadline: Option<Duration>,
    handshake: impl Future<Output = T>,
) -> Result<T, Error> {
    match deadline {
        Some(limit) => tokio::time::timeout(limit, handshake)
            .await
            .map_err(|_| Error::HandshakeTimeout(limit)),
        None => Ok(handshake.await),
    }
}

/// Which end of a handshake failed, for the wording of the error.
#[derive(Clone, Copy)]
pub(crate) enum Side {
    Client,
    Server,
}

/// Maps a failed handshake; a refusal keeps its HTTP status.
pub(crate) fn failed(e: WsError, side: Side) -> Error {
    match e {
        WsError::Http(response) => {
            let status = response.status();
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .filter(|body| !body.trim().is_empty())
                .map(|body| format!(": {}", body.trim()))
                .unwrap_or_default();
            let message = match side {
                Side::Client => format!("the server answered {status}{body}"),
                Side::Server => format!("refused the client with {status}{body}"),
            };
            Error::handshake(Some(status), message)
        }
        WsError::Io(e) => tls_failure(e),
        other => Error::Handshake {
            status: None,
            message: "the handshake did not complete".to_owned(),
            source: Some(tungstenite_cause(other)),
        },
    }
}

/// A failed TLS handshake is a handshake error that says why (an unknown issuer, a name
/// mismatch); other I/O errors stay I/O errors.
pub(crate) fn tls_failure(e: std::io::Error) -> Error {
    #[cfg(feature = "tls")]
    if crate::tls::rustls_error(&e).is_some() {
        return Error::Handshake {
            status: None,
            message: "the TLS handshake failed".to_owned(),
            source: e.into_inner(),
        };
    }
    Error::Io(e)
}

/// The subprotocol a handshake response agreed on.
pub(crate) fn subprotocol(headers: &HeaderMap) -> Option<String> {
    headers
        .get("sec-websocket-protocol")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}
