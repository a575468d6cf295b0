//! The client side: connect to a `ws://` URL and get a [`Session`].

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{ProtocolError, UrlError};
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue, Uri};

use crate::config::Config;
use crate::converter::{Converter, NoConverter};
use crate::error::Error;
use crate::frame::{CloseCode, CloseReason};
use crate::handshake::{self, Side};
use crate::read_buffer::Elastic;
use crate::session::Session;
use crate::session::link::Handshake;

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
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let slash = if path.starts_with('/') { "" } else { "/" };
        Endpoint(format!("ws://{host}:{port}{slash}{path}"))
    }
}

/// A connection request being prepared: see [`Client::request`].
#[derive(Debug)]
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
        let config = &self.client.config;
        let invalid_url = |message: String| Error::InvalidUrl {
            url: self.url.clone(),
            message,
        };
        let mut request = self
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| invalid_url(e.to_string()))?;
        for (name, value) in &self.headers {
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|e| invalid_header(name, e))?;
            let value =
                HeaderValue::from_str(value).map_err(|e| invalid_header(name.as_str(), e))?;
            request.headers_mut().append(name, value);
        }
        let mut offered = config.offered_subprotocols();
        offered.extend(self.subprotocols.iter().cloned());
        let offered = offered.join(", ");
        if !offered.is_empty() {
            let value = HeaderValue::from_str(&offered)
                .map_err(|e| invalid_header("Sec-WebSocket-Protocol", e))?;
            request
                .headers_mut()
                .insert("sec-websocket-protocol", value);
        }
        let path = request.uri().path().to_owned();
        let websocket_config = Some(config.settings.websocket_config());
        #[cfg(feature = "tls")]
        let connector = config
            .settings
            .tls
            .client
            .clone()
            .map(tokio_tungstenite::Connector::Rustls);
        let connect = async move {
            let tcp = Elastic::new(connect_tcp(request.uri()).await?);
            #[cfg(feature = "tls")]
            return tokio_tungstenite::client_async_tls_with_config(
                request,
                tcp,
                websocket_config,
                connector,
            )
            .await;
            #[cfg(not(feature = "tls"))]
            return tokio_tungstenite::client_async_with_config(request, tcp, websocket_config)
                .await;
        };
        // tokio-tungstenite's connect future is large (20 KiB with TLS), and debug builds copy
        // it into every frame of the futures that await it; on the heap it is copied nowhere.
        let (ws, response) =
            handshake::bounded(config.settings.handshake_timeout, Box::pin(connect))
                .await?
                .map_err(|e| match e {
                    WsError::Url(e) => invalid_url(e.to_string()),
                    WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(e)) => {
                        Error::Handshake {
                            status: None,
                            message: format!(
                                "subprotocol negotiation failed ({e}); offered: {offered}"
                            ),
                        }
                    }
                    other => handshake::failed(other, Side::Client),
                })?;
        let subprotocol = handshake::subprotocol(response.headers());
        let converter = config
            .converter_for(subprotocol.as_deref())
            .map_err(|message| Error::Handshake {
                status: None,
                message,
            })?;
        let handshake = Handshake {
            path: Some(path),
            subprotocol,
        };
        Ok(Session::start(
            Box::new(ws),
            config.settings.clone(),
            handshake,
            converter,
        ))
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

/// Opens the TCP connection for a `ws://` or `wss://` URL, with `TCP_NODELAY`: what
/// tokio-tungstenite's `connect_async` does, done here so that the session reads the socket
/// through [`Elastic`].
async fn connect_tcp(uri: &Uri) -> Result<TcpStream, WsError> {
    let port = match (uri.scheme_str(), uri.port_u16()) {
        (Some("ws" | "wss"), Some(port)) => port,
        (Some("ws"), None) => 80,
        (Some("wss"), None) => 443,
        _ => return Err(WsError::Url(UrlError::UnsupportedUrlScheme)),
    };
    if cfg!(not(feature = "tls")) && uri.scheme_str() == Some("wss") {
        return Err(WsError::Url(UrlError::TlsFeatureNotEnabled));
    }
    let host = uri.host().ok_or(WsError::Url(UrlError::NoHostName))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let tcp = TcpStream::connect((host, port)).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

fn invalid_header(name: &str, e: impl fmt::Display) -> Error {
    Error::Handshake {
        status: None,
        message: format!("invalid header {name:?}: {e}"),
    }
}
