//! The client side: connect to a `ws://` URL and get a [`Session`].

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
#[cfg(feature = "tls")]
use tokio_tungstenite::tungstenite::error::TlsError;
use tokio_tungstenite::tungstenite::error::{ProtocolError, SubProtocolError, UrlError};
use tokio_tungstenite::tungstenite::handshake::client::{Request, Response, generate_request};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::handshake::machine::TryParse;
use tokio_tungstenite::tungstenite::http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_PROTOCOL, UPGRADE,
};
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue, StatusCode, Uri};
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::config::Config;
use crate::converter::{Converter, NoConverter};
use crate::error::{BoxError, Error};
use crate::frame::{CloseCode, CloseReason};
use crate::handshake::{self, Handshake, Side};
use crate::reconnect::Reconnect;
use crate::session::Session;
use crate::shutdown::Watch;
use crate::trace;
#[cfg(feature = "compression")]
use crate::wire::deflate;
use crate::wire::{self, Elastic};

/// A WebSocket client: a [`Config`] installed once, shared by every session it opens. Cheap
/// to clone.
///
/// ```no_run
/// use serde::{Deserialize, Serialize};
/// use typed_ws::{Client, Config, JsonConverter};
///
/// #[derive(Serialize, Deserialize)]
/// struct Greeting { text: String }
///
/// # async fn run() -> Result<(), typed_ws::Error> {
/// let client = Client::new(Config::new().converter(JsonConverter));
///
/// // Scoped: the session is closed with 1000 when the block returns Ok, 1011 when it fails.
/// let reply: Greeting = client
///     .web_socket("ws://127.0.0.1:8080/echo", async |mut session| {
///         session.send_serialized(&Greeting { text: "hi".into() }).await?;
///         session.receive_deserialized().await
///     })
///     .await?;
///
/// // Owned: the session is yours to close.
/// let mut session = client.web_socket_session(("127.0.0.1", 8080, "/echo")).await?;
/// session.send_text("hello").await?;
/// # Ok(()) }
/// ```
pub struct Client<C = NoConverter> {
    config: Arc<Config<C>>,
}

impl<C> Clone for Client<C> {
    fn clone(&self) -> Self {
        Client {
            config: self.config.clone(),
        }
    }
}

impl<C> fmt::Debug for Client<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl<C: Converter> Client<C> {
    /// A client with this configuration.
    pub fn new(config: Config<C>) -> Self {
        Client {
            config: Arc::new(config),
        }
    }

    /// The installed configuration.
    pub fn config(&self) -> &Config<C> {
        &self.config
    }

    /// A connection request to customise (headers, subprotocols) before connecting.
    pub fn request(&self, endpoint: impl Into<Endpoint>) -> ClientRequest<C> {
        ClientRequest {
            client: self.clone(),
            url: endpoint.into().0,
            headers: Vec::new(),
            subprotocols: Vec::new(),
        }
    }

    /// Connects and returns the session; closing it is up to you. The endpoint is a URL
    /// (`"ws://host:port/path"`) or `(host, port, path)`.
    pub async fn web_socket_session(
        &self,
        endpoint: impl Into<Endpoint>,
    ) -> Result<Session<C>, Error> {
        self.request(endpoint).web_socket_session().await
    }

    /// Connects, runs `block` with the session, then closes it: with 1000 when the block
    /// returns `Ok`, with 1011 and the error's text when it returns `Err`. Gives back what the
    /// block returned.
    pub async fn web_socket<F, Fut, R, E>(
        &self,
        endpoint: impl Into<Endpoint>,
        block: F,
    ) -> Result<R, E>
    where
        F: FnOnce(Session<C>) -> Fut,
        Fut: Future<Output = Result<R, E>>,
        E: From<Error> + fmt::Display,
    {
        self.request(endpoint).web_socket(block).await
    }

    /// A client that connects to `endpoint` and reconnects, with backoff, whenever the
    /// connection is lost to something transient: see [`Reconnect`]. For headers or
    /// subprotocols, [`ClientRequest::reconnecting`].
    pub fn reconnecting(&self, endpoint: impl Into<Endpoint>) -> Reconnect<C> {
        self.request(endpoint).reconnecting()
    }
}

/// Where to connect: a `ws://` URL, or `(host, port, path)`.
///
/// ```
/// use typed_ws::Endpoint;
/// assert_eq!(Endpoint::from(("localhost", 8080, "/chat")).as_str(), "ws://localhost:8080/chat");
/// assert_eq!(Endpoint::from(("::1", 80, "feed")).as_str(), "ws://[::1]:80/feed");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint(String);

impl Endpoint {
    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Endpoint {
    fn from(url: &str) -> Self {
        Endpoint(url.to_owned())
    }
}

impl From<String> for Endpoint {
    fn from(url: String) -> Self {
        Endpoint(url)
    }
}

impl From<(&str, u16, &str)> for Endpoint {
    fn from((host, port, path): (&str, u16, &str)) -> Self {
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let slash = if path.starts_with('/') { "" } else { "/" };
        Endpoint(format!("ws://{host}:{port}{slash}{path}"))
    }
}

/// A connection request being prepared: see [`Client::request`].
#[derive(Debug, Clone)]
pub struct ClientRequest<C = NoConverter> {
    client: Client<C>,
    url: String,
    headers: Vec<(String, String)>,
    subprotocols: Vec<String>,
}

impl<C: Converter> ClientRequest<C> {
    /// Adds a header to the opening handshake.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Offers a subprotocol (`Sec-WebSocket-Protocol`) after those of
    /// [`Config::subprotocols`]; call again to offer more, in order of preference.
    /// [`Session::subprotocol`] tells which one the server chose.
    pub fn subprotocol(mut self, name: impl Into<String>) -> Self {
        self.subprotocols.push(name.into());
        self
    }

    /// Connects; see [`Client::web_socket_session`].
    pub async fn web_socket_session(self) -> Result<Session<C>, Error> {
        let span = trace::client_handshake(self.url.as_str());
        trace::handshake(span, self.open()).await
    }

    /// A client that makes this request, and makes it again whenever the connection is
    /// lost to something transient: see [`Reconnect`].
    pub fn reconnecting(self) -> Reconnect<C> {
        let config = &self.client.config;
        let (converter, timeout) = (config.converter.clone(), config.settings.timeout);
        Reconnect::new(
            converter,
            timeout,
            Box::new(move || Box::pin(self.clone().web_socket_session())),
        )
    }

    /// The handshake of [`ClientRequest::web_socket_session`].
    async fn open(self) -> Result<Session<C>, Error> {
        let config = &self.client.config;
        let invalid_url = |source: BoxError| Error::InvalidUrl {
            url: self.url.clone(),
            source,
        };
        let mut request = self.url.as_str().into_client_request().map_err(|e| {
            // tungstenite's wrapper prints its source's text as well: keep what is wrong.
            invalid_url(match e {
                WsError::Url(e) => e.into(),
                WsError::HttpFormat(e) => e.into(),
                other => other.into(),
            })
        })?;
        for (name, value) in &self.headers {
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|e| invalid_header(name, e))?;
            let value =
                HeaderValue::from_str(value).map_err(|e| invalid_header(name.as_str(), e))?;
            request.headers_mut().append(name, value);
        }
        let mut offered = config.agreement().offers();
        offered.extend(self.subprotocols.iter().cloned());
        let offered = offered.join(", ");
        if !offered.is_empty() {
            let value = HeaderValue::from_str(&offered)
                .map_err(|e| invalid_header("Sec-WebSocket-Protocol", e))?;
            request
                .headers_mut()
                .insert("sec-websocket-protocol", value);
        }
        #[cfg(feature = "compression")]
        if let Some(compression) = &config.settings.compression {
            let value = HeaderValue::from_str(&deflate::offer(compression))
                .map_err(|e| invalid_header("Sec-WebSocket-Extensions", e))?;
            request
                .headers_mut()
                .insert("sec-websocket-extensions", value);
        }
        let path = request.uri().path().to_owned();
        #[cfg(feature = "tls")]
        let tls_client = config.settings.tls.client.clone();
        let strict = if config.agreement().has_fallback() {
            Strictness::Lenient
        } else {
            Strictness::Strict
        };
        let fail = move |e: WsError| match e {
            WsError::Url(e) => invalid_url(e.into()),
            WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(e)) => Error::Handshake {
                status: None,
                message: format!("subprotocol negotiation failed; offered: {offered}"),
                source: Some(e.into()),
            },
            other => handshake::failed(other, Side::Client),
        };
        let connect = async move {
            let tcp = connect_tcp(request.uri()).await.map_err(&fail)?;
            // TLS under the stack, as on the server: the layers above it see frames.
            #[cfg(feature = "tls")]
            if request.uri().scheme_str() == Some("wss") {
                let tls = connect_tls(tcp, request.uri(), tls_client).await;
                let io = Elastic::new(tls.map_err(&fail)?);
                return own_handshake(io, request, config, strict, path)
                    .await
                    .map_err(&fail)?;
            }
            own_handshake(Elastic::new(tcp), request, config, strict, path)
                .await
                .map_err(&fail)?
        };
        // The connect future is large with TLS, and debug builds copy it into every frame of
        // the futures that await it; on the heap it is copied nowhere.
        handshake::bounded(config.settings.handshake_timeout, Box::pin(connect)).await?
    }

    /// Connects and runs a block; see [`Client::web_socket`].
    pub async fn web_socket<F, Fut, R, E>(self, block: F) -> Result<R, E>
    where
        F: FnOnce(Session<C>) -> Fut,
        Fut: Future<Output = Result<R, E>>,
        E: From<Error> + fmt::Display,
    {
        let session = self.web_socket_session().await?;
        let link = session.link();
        let outcome = block(session).await;
        let reason = match &outcome {
            Ok(_) => CloseReason::new(CloseCode::Normal, ""),
            Err(e) => CloseReason::new(CloseCode::InternalError, e.to_string()),
        };
        // The block's outcome is what the caller asked for; a close that fails can only mean
        // the connection is already gone.
        let _ = link.close(reason).await;
        outcome
    }
}

/// The largest response head [`own_handshake`] reads, as in tungstenite.
const MAX_RESPONSE_HEAD: usize = 64 << 10;

/// Whether a client accepts a server that agrees on none of the subprotocols offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strictness {
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
async fn own_handshake<S, C>(
    mut io: Elastic<S>,
    request: Request,
    config: &Config<C>,
    strict: Strictness,
    path: String,
) -> Result<Result<Session<C>, Error>, WsError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    C: Converter,
{
    let offered: Vec<String> = handshake::list(request.headers(), "sec-websocket-protocol")
        .map(str::to_owned)
        .collect();
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
fn unoffered<'a>(mut answer: impl Iterator<Item = &'a str>) -> Result<(), Error> {
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
async fn connect_tls<S>(
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
async fn connect_tcp(uri: &Uri) -> Result<TcpStream, WsError> {
    let (host, port) = address(uri)?;
    let tcp = TcpStream::connect((host, port)).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// The host (IPv6 without brackets) and port a `ws://` or `wss://` URL names, the scheme's
/// port if it names none.
fn address(uri: &Uri) -> Result<(&str, u16), WsError> {
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

fn invalid_header(name: &str, e: impl Into<BoxError>) -> Error {
    Error::Handshake {
        status: None,
        message: format!("invalid header {name:?}"),
        source: Some(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::net::TcpListener;

    use super::*;

    /// Bounds every await that could reach the network, so that a regression fails fast.
    const LIMIT: Duration = Duration::from_secs(10);

    async fn connect(url: &str) -> Result<TcpStream, WsError> {
        let uri: Uri = url.parse().expect("a URI");
        tokio::time::timeout(LIMIT, connect_tcp(&uri))
            .await
            .expect("connect_tcp within the limit")
    }

    fn address_of(url: &str) -> Result<(String, u16), WsError> {
        let uri: Uri = url.parse().expect("a URI");
        address(&uri).map(|(host, port)| (host.to_owned(), port))
    }

    #[test]
    fn the_address_is_the_url_s_host_and_port_or_the_scheme_s_port() {
        let ok = |host: &str, port| Ok::<_, ()>((host.to_owned(), port));
        let address = |url| address_of(url).map_err(|_| ());
        assert_eq!(address("ws://example.com/chat"), ok("example.com", 80));
        assert_eq!(address("ws://example.com:/chat"), ok("example.com", 80));
        assert_eq!(address("ws://example.com:8080"), ok("example.com", 8080));
        assert_eq!(address("ws://user@example.com:0/"), ok("example.com", 0));
        assert_eq!(address("ws://[::1]/"), ok("::1", 80));
        assert_eq!(address("ws://[::1]:65535/"), ok("::1", 65535));
        if cfg!(feature = "tls") {
            assert_eq!(address("wss://example.com/"), ok("example.com", 443));
        }
    }

    #[test]
    fn a_port_out_of_range_or_an_empty_host_is_refused() {
        for url in [
            "ws://127.0.0.1:99999/",
            "ws://[::1]:65536/",
            "ws://host:8o/",
        ] {
            match address_of(url) {
                Err(WsError::Url(UrlError::UnableToConnect(why))) => {
                    assert!(why.contains("not a number from 0 to 65535"), "{why}");
                }
                other => panic!("{url}: expected a bad port, got {other:?}"),
            }
        }
        match address_of("ws://:80/x") {
            Err(WsError::Url(UrlError::EmptyHostName)) => {}
            other => panic!("expected EmptyHostName, got {other:?}"),
        }
    }

    #[test]
    fn an_endpoint_from_parts_is_a_ws_url() {
        let url = |host, port, path| Endpoint::from((host, port, path)).0;
        assert_eq!(
            url("example.com", 8080, "/chat"),
            "ws://example.com:8080/chat"
        );
        assert_eq!(
            url("example.com", 80, "chat?room=1"),
            "ws://example.com:80/chat?room=1"
        );
        assert_eq!(url("127.0.0.1", 9000, ""), "ws://127.0.0.1:9000/");
        // Without brackets the port would read as part of the address.
        assert_eq!(
            url("2001:db8::7", 443, "/feed"),
            "ws://[2001:db8::7]:443/feed"
        );
        assert_eq!(url("[::1]", 443, "/feed"), "ws://[::1]:443/feed");
    }

    /// Port 1 on loopback refuses at once: a regression that connected anyway would show as
    /// a different error, not a hang.
    #[tokio::test]
    async fn schemes_other_than_ws_and_wss_are_refused_before_connecting() {
        for url in ["http://127.0.0.1:1/", "https://127.0.0.1:1/", "127.0.0.1:1"] {
            match connect(url).await {
                Err(WsError::Url(UrlError::UnsupportedUrlScheme)) => {}
                other => panic!("{url}: expected UnsupportedUrlScheme, got {other:?}"),
            }
        }
    }

    #[cfg(not(feature = "tls"))]
    #[tokio::test]
    async fn wss_without_the_tls_feature_is_refused_before_connecting() {
        match connect("wss://127.0.0.1:1/").await {
            Err(WsError::Url(UrlError::TlsFeatureNotEnabled)) => {}
            other => panic!("expected TlsFeatureNotEnabled, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_bad_scheme_or_a_missing_host_is_an_invalid_url_naming_it() {
        let client = Client::new(Config::new());
        for url in ["http://127.0.0.1:1/", "ws:///chat", "ws://"] {
            let error = tokio::time::timeout(LIMIT, client.web_socket_session(url))
                .await
                .expect("refused within the limit")
                .expect_err(url);
            match error {
                Error::InvalidUrl { url: given, .. } => assert_eq!(given, url),
                other => panic!("{url}: expected InvalidUrl, got {other:?}"),
            }
        }
    }

    /// Connects to `url`, which names `listener`, and checks that the connection is the one
    /// `listener` accepted.
    async fn connect_to(listener: &TcpListener, url: &str) -> TcpStream {
        let (tcp, accepted) = tokio::join!(connect(url), async {
            tokio::time::timeout(LIMIT, listener.accept()).await
        });
        let tcp = tcp.unwrap_or_else(|e| panic!("{url}: {e}"));
        let (_, from) = accepted.expect("accept within the limit").expect("accept");
        assert_eq!(tcp.local_addr().expect("local addr"), from, "{url}");
        tcp
    }

    #[tokio::test]
    async fn an_explicit_port_is_used_with_either_scheme() {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let schemes: &[&str] = if cfg!(feature = "tls") {
            &["ws", "wss"]
        } else {
            &["ws"]
        };
        for scheme in schemes {
            let tcp = connect_to(&listener, &format!("{scheme}://{addr}/chat")).await;
            assert!(
                tcp.nodelay().expect("nodelay"),
                "{scheme}: TCP_NODELAY is set"
            );
        }
    }

    #[tokio::test]
    async fn an_ipv6_literal_is_connected_to_without_its_brackets() {
        let listener = TcpListener::bind("[::1]:0")
            .await
            .expect("bind IPv6 loopback");
        let port = listener.local_addr().expect("local addr").port();
        let endpoint = Endpoint::from(("::1", port, "/v6"));
        assert_eq!(endpoint.as_str(), format!("ws://[::1]:{port}/v6"));
        connect_to(&listener, endpoint.as_str()).await;
    }
}
