//! What the opening handshakes share, client, server and hyper alike: what a handshake
//! settles for its session ([`Handshake`]), the server's answer to a request ([`answer`]),
//! header lists, the time bound and the error mapping.

use std::future::Future;
use std::time::Duration;

use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::http::{HeaderMap, HeaderValue, StatusCode, Uri};

use crate::config::Config;
use crate::converter::Converter;
use crate::error::{Error, tungstenite_cause};
#[cfg(feature = "compression")]
use crate::wire::deflate::{self, PerMessageDeflate};

/// What the opening handshake settled for one session.
#[derive(Debug, Default)]
pub(crate) struct Handshake {
    pub(crate) path: Option<String>,
    /// The query of the request's URL, without the `?`.
    pub(crate) query: Option<String>,
    pub(crate) subprotocol: Option<String>,
    #[cfg(feature = "compression")]
    pub(crate) compression: Option<PerMessageDeflate>,
}

/// The server's answer to an opening request for `uri` with `headers`, for [`Server`] and
/// hyper alike: the subprotocol and the compression it agrees to, written into `response`
/// (the 101's headers), with the session's [`Handshake`] and converter; or the status and
/// reason to refuse the request with, when it offers no converter we speak.
///
/// [`Server`]: crate::Server
pub(crate) fn answer<C: Converter>(
    config: &Config<C>,
    uri: &Uri,
    headers: &HeaderMap,
    response: &mut HeaderMap,
) -> Result<(Handshake, C), (StatusCode, String)> {
    let offered: Vec<&str> = list(headers, "sec-websocket-protocol").collect();
    let (subprotocol, converter) = config
        .agreement()
        .answer(&offered)
        .map_err(|why| (StatusCode::BAD_REQUEST, why))?;
    if let Some(chosen) = &subprotocol {
        let value = HeaderValue::from_str(chosen).map_err(|_| {
            let why = format!("bad subprotocol {chosen:?}");
            (StatusCode::INTERNAL_SERVER_ERROR, why)
        })?;
        response.insert("sec-websocket-protocol", value);
    }
    #[cfg(feature = "compression")]
    let compression = deflate::answer_request(config.settings.compression.as_ref(), headers).map(
        |(answer, agreed)| {
            response.insert("sec-websocket-extensions", answer);
            agreed
        },
    );
    let handshake = Handshake {
        path: Some(uri.path().to_owned()),
        query: uri.query().map(str::to_owned),
        subprotocol,
        #[cfg(feature = "compression")]
        compression,
    };
    Ok((handshake, converter))
}

/// The elements of every `name` header in `headers`, in order: comma-separated lists
/// (RFC 9110 5.6.1), empty elements left out.
pub(crate) fn list<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(elements)
}

/// The elements of one header list value, trimmed, empty ones left out; a comma inside a
/// quoted string is data.
pub(crate) fn elements(value: &str) -> impl Iterator<Item = &str> {
    split_unquoted(value, b',')
        .into_iter()
        .map(str::trim)
        .filter(|element| !element.is_empty())
}

/// Splits at `separator` except inside quoted strings, where commas and semicolons are data.
pub(crate) fn split_unquoted(text: &str, separator: u8) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, byte) in text.bytes().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && byte == b'\\' {
            escaped = true;
        } else if byte == b'"' {
            quoted = !quoted;
        } else if byte == separator && !quoted {
            // Both separators are ASCII, so `i` is a char boundary.
            parts.push(&text[start..i]);
            start = i + 1;
        }
    }
    parts.push(&text[start..]);
    parts
}

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
