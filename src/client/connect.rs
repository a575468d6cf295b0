//! Connecting a client: TCP, TLS for `wss://`, and the opening handshake, which typed-ws
//! runs itself rather than tungstenite (see [`own_handshake`]).

#[cfg(feature = "tls")]
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Error as WsError;
#[cfg(feature = "tls")]
use tokio_tungstenite::tungstenite::error::TlsError;
use tokio_tungstenite::tungstenite::error::{ProtocolError, SubProtocolError, UrlError};
use tokio_tungstenite::tungstenite::handshake::client::{Request, Response, generate_request};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::handshake::machine::TryParse;
use tokio_tungstenite::tungstenite::http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_PROTOCOL, UPGRADE,
};
use tokio_tungstenite::tungstenite::http::{HeaderName, StatusCode, Uri};
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::config::Config;
use crate::converter::Converter;
use crate::error::Error;
use crate::handshake::{self, Handshake};
use crate::session::Session;
use crate::shutdown::Watch;
#[cfg(feature = "compression")]
use crate::wire::deflate;
use crate::wire::{self, Elastic};

/// The largest response head [`own_handshake`] reads, as in tungstenite.
pub(super) const MAX_RESPONSE_HEAD: usize = 64 << 10;

/// Whether a client accepts a server that agrees on none of the subprotocols offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Strictness {
    /// No: tungstenite's rule.
    Strict,
    /// Yes: the negotiation has a [fallback](crate::Negotiation::fallback).
    Lenient,
}

/// The opening handshake of a client, and the session it starts. typed-ws runs it rather
/// than tungstenite for two reasons. RFC 6455 (4.1) lets a server choose none of the
/// subprotocols offered, which a negotiation with a [fallback](crate::Negotiation::fallback)
/// accepts, but tungstenite fails the connection then, and a retry without the offer would
/// cost a second connection, one that servers accepting a single connection never take. And
/// the frames a server sends right after its answer, read with it, must go through the
/// inflating layer, which they would not if tungstenite read them. The outer error is the
/// handshake's; the inner one a `Sec-WebSocket-Extensions` answer that does not fit the offer,
/// or a subprotocol no converter takes.
pub(super) async fn own_handshake<S, C>(
    mut io: Elastic<S>,
    request: Request,
    config: &Config<C>,
    strict: Strictness,
) -> Result<Result<Session<C>, Error>, WsError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    C: Converter,
{
    let offered: Vec<String> = handshake::list(request.headers(), "sec-websocket-protocol")
        .map(str::to_owned)
        .collect();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let (head, key) = generate_request(request)?;
    io.write_all(&head).await?;
    io.flush().await?;
    let mut read = Vec::new();
    let (head_len, response) = loop {
        if let Some(parsed) = Response::try_parse(&read)? {
            break parsed;
        }
        if read.len() > MAX_RESPONSE_HEAD {
            return Err(WsError::AttackAttempt);
        }
        read.reserve(4 << 10);
        if io.read_buf(&mut read).await? == 0 {
            return Err(WsError::Protocol(ProtocolError::HandshakeIncomplete));
        }
    };
    // Frames the server sent right after its answer are the session's first bytes.
    let tail = read.split_off(head_len);
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(WsError::Http(Box::new(response.map(|_| Some(tail)))));
    }
    let headers = response.headers();
    let lists = |name: HeaderName, token: &str| {
        handshake::list(headers, name.as_str()).any(|item| item.eq_ignore_ascii_case(token))
    };
    if !lists(UPGRADE, "websocket") {
        return Err(WsError::Protocol(
            ProtocolError::MissingUpgradeWebSocketHeader,
        ));
    }
    if !lists(CONNECTION, "upgrade") {
        return Err(WsError::Protocol(
            ProtocolError::MissingConnectionUpgradeHeader,
        ));
    }
    let accept = derive_accept_key(key.as_bytes());
    if headers
        .get(SEC_WEBSOCKET_ACCEPT)
        .is_none_or(|value| value != accept.as_str())
    {
        return Err(WsError::Protocol(
            ProtocolError::SecWebSocketAcceptKeyMismatch,
        ));
    }
    let subprotocol_error = match headers.get(SEC_WEBSOCKET_PROTOCOL) {
        Some(_) if offered.is_empty() => Some(SubProtocolError::ServerSentSubProtocolNoneRequested),
        Some(chosen) if !offered.iter().any(|name| chosen == name.as_str()) => {
            Some(SubProtocolError::InvalidSubProtocol)
        }
        None if strict == Strictness::Strict && !offered.is_empty() => {
            Some(SubProtocolError::NoSubProtocol)
        }
        _ => None,
    };
    if let Some(e) = subprotocol_error {
        return Err(WsError::Protocol(
            ProtocolError::SecWebSocketSubProtocolError(e),
        ));
    }
    let answer = headers
        .get_all("sec-websocket-extensions")
        .iter()
        .filter_map(|value| value.to_str().ok());
    let settings = &config.settings;
    #[cfg(feature = "compression")]
    let agreed = match &settings.compression {
        Some(compression) => match deflate::accept(compression, answer) {
            Ok(agreed) => agreed,
            Err(why) => {
                let message = format!("the server's permessage-deflate answer is invalid: {why}");
                return Ok(Err(Error::handshake(None, message)));
            }
        },
        None => match unoffered(answer) {
            Ok(()) => None,
            Err(e) => return Ok(Err(e)),
        },
    };
    #[cfg(not(feature = "compression"))]
    if let Err(e) = unoffered(answer) {
        return Ok(Err(e));
    }
    let subprotocol = handshake::subprotocol(headers);
    let converter = match config.agreement().converter_for(subprotocol.as_deref()) {
        Ok(converter) => converter,
        Err(message) => return Ok(Err(Error::handshake(None, message))),
    };
    let handshake = Handshake {
        path: Some(path),
        query,
        subprotocol,
        #[cfg(feature = "compression")]
        compression: agreed,
    };
    let opened = wire::Opened::Raw {
        io,
        tail,
        role: Role::Client,
    };
    let session = wire::start(
        opened,
        settings.clone(),
        handshake,
        converter,
        Watch::default(),
    );
    Ok(Ok(session.await))
}

/// Fails a handshake whose `Sec-WebSocket-Extensions` answer agrees to anything when nothing
/// was offered.
pub(super) fn unoffered<'a>(mut answer: impl Iterator<Item = &'a str>) -> Result<(), Error> {
    match answer.next() {
        Some(_) => {
            let message = "the server answered with extensions, none of which was offered";
            Err(Error::handshake(None, message))
        }
        None => Ok(()),
    }
}

/// TLS for a `wss://` URL, for [`own_handshake`] to run on: the configured client settings,
/// or the webpki roots, as tokio-tungstenite would set it up.
#[cfg(feature = "tls")]
pub(super) async fn connect_tls<S>(
    io: S,
    uri: &Uri,
    client: Option<Arc<rustls::ClientConfig>>,
) -> Result<tokio_rustls::client::TlsStream<S>, WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let client = client.unwrap_or_else(|| {
        let roots = webpki_roots::TLS_SERVER_ROOTS.iter().cloned().collect();
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(Arc::new(roots))
            .with_no_client_auth();
        Arc::new(config)
    });
    let host = uri.host().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|_| WsError::Tls(TlsError::InvalidDnsName))?;
    Ok(tokio_rustls::TlsConnector::from(client)
        .connect(name, io)
        .await?)
}

/// Opens the TCP connection for a `ws://` or `wss://` URL, with `TCP_NODELAY`: what
/// tokio-tungstenite's `connect_async` does, done here so that the session reads the socket
/// through [`Elastic`].
pub(super) async fn connect_tcp(uri: &Uri) -> Result<TcpStream, WsError> {
    let (host, port) = address(uri)?;
    let tcp = TcpStream::connect((host, port)).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// The host (IPv6 without brackets) and port a `ws://` or `wss://` URL names, the scheme's
/// port if it names none.
pub(super) fn address(uri: &Uri) -> Result<(&str, u16), WsError> {
    let default_port = match uri.scheme_str() {
        Some("ws") => 80,
        Some("wss") if cfg!(feature = "tls") => 443,
        Some("wss") => return Err(WsError::Url(UrlError::TlsFeatureNotEnabled)),
        _ => return Err(WsError::Url(UrlError::UnsupportedUrlScheme)),
    };
    let authority = uri.authority().ok_or(WsError::Url(UrlError::NoHostName))?;
    let host = authority.host();
    if host.is_empty() {
        return Err(WsError::Url(UrlError::EmptyHostName));
    }
    // `Uri` accepts any digits as a port and reports one that does not fit as none at all,
    // which would connect to the default port instead.
    let after_host = authority.as_str().rsplit(']').next().unwrap_or_default();
    let port = match after_host.rsplit_once(':') {
        Some((_, "")) | None => default_port,
        Some((_, digits)) => digits.parse().map_err(|_| {
            WsError::Url(UrlError::UnableToConnect(format!(
                "{uri}: the port {digits} is not a number from 0 to 65535"
            )))
        })?,
    };
    Ok((host.trim_start_matches('[').trim_end_matches(']'), port))
}
