//! The client side: connect to a `ws://` URL and get a [`Session`].

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};

use crate::config::Config;
use crate::converter::{Converter, NoConverter};
use crate::error::{BoxError, Error};
use crate::frame::{CloseCode, CloseReason};
use crate::handshake::{self, Side};
use crate::reconnect::Reconnect;
use crate::session::Session;
use crate::trace;

mod connect;

use crate::wire::Elastic;
#[cfg(feature = "compression")]
use crate::wire::deflate;
#[cfg(feature = "tls")]
use connect::connect_tls;
use connect::{Strictness, connect_tcp, own_handshake};

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
        self.reconnecting_to(|url| url.to_owned())
    }

    /// [`ClientRequest::reconnecting`], with the URL of each attempt made from this one's by
    /// `url`.
    pub(crate) fn reconnecting_to(
        self,
        mut url: impl FnMut(&str) -> String + Send + 'static,
    ) -> Reconnect<C> {
        let config = &self.client.config;
        let (converter, timeout) = (config.converter.clone(), config.settings.timeout);
        Reconnect::new(
            converter,
            timeout,
            Box::new(move || {
                let mut attempt = self.clone();
                attempt.url = url(&self.url);
                Box::pin(attempt.web_socket_session())
            }),
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
                return own_handshake(io, request, config, strict)
                    .await
                    .map_err(&fail)?;
            }
            own_handshake(Elastic::new(tcp), request, config, strict)
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

fn invalid_header(name: &str, e: impl Into<BoxError>) -> Error {
    Error::Handshake {
        status: None,
        message: format!("invalid header {name:?}"),
        source: Some(e.into()),
    }
}

#[cfg(test)]
mod tests;
