//! WebSocket sessions inside any hyper 1.x server: [`upgrade`] answers the opening request
//! and gives [`Upgrading`], which becomes the [`Session`] once hyper has switched protocols.
//! The axum extractor, [`crate::axum::WebSocketUpgrade`], is built on it.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::http::{
    HeaderMap, HeaderValue, Request, Response, StatusCode, Uri,
};
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::config::{Config, Settings};
use crate::converter::Converter;
use crate::error::Error;
use crate::handshake;
use crate::handshake::Handshake;
use crate::screen;
use crate::session::Session;
use crate::shutdown::{Shutdown, Watch};
use crate::wire::{self, Elastic};

/// Answers a WebSocket upgrade request in a hyper 1.x service: the `101 Switching Protocols`
/// response to return, and the session to come once hyper has sent it and handed the
/// connection over. The converter is negotiated as [`Server`](crate::Server) does, and the
/// session has every setting of `config` (limits, keep-alive, timeouts, fragment size);
/// [`Config::handshake_timeout`] bounds the wait for hyper's upgrade. A request that is no
/// valid upgrade, or offers no converter we speak, is a [`Refusal`] to answer with.
///
/// A request served by [`typed_ws::axum::serve`](crate::axum::serve) carries its graceful
/// shutdown, which the session follows: it closes with the shutdown's reason at its next
/// receive (see [`Serve::with_graceful_shutdown`](crate::Serve::with_graceful_shutdown)).
/// The task you run it in is yours, so the server does not wait for it; the extractor's
/// [`on_upgrade`](crate::axum::WebSocketUpgrade::on_upgrade) runs its handler in one the
/// server waits for.
///
/// ```no_run
/// use std::convert::Infallible;
///
/// use hyper::server::conn::http1;
/// use hyper::service::service_fn;
/// use hyper_util::rt::TokioIo;
/// use typed_ws::{Config, http_upgrade};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = Config::new();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// let (tcp, _) = listener.accept().await?;
/// let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
///     let answer = match http_upgrade::upgrade(request, &config) {
///         Ok((response, upgrading)) => {
///             tokio::spawn(async move {
///                 if let Ok(mut session) = upgrading.await {
///                     let _ = session.send_text("hello").await;
///                 }
///             });
///             response
///         }
///         Err(refusal) => refusal.into_response(),
///     };
///     async move { Ok::<_, Infallible>(answer) }
/// });
/// http1::Builder::new()
///     .serve_connection(TokioIo::new(tcp), service)
///     .with_upgrades()
///     .await?;
/// # Ok(()) }
/// ```
pub fn upgrade<B, C: Converter>(
    mut request: Request<B>,
    config: &Config<C>,
) -> Result<(Response<String>, Upgrading<C>), Refusal> {
    let on_upgrade = hyper::upgrade::on(&mut request);
    let shutdown = request.extensions().get::<Shutdown>();
    Opening::read(&request)?.answer(config, on_upgrade, shutdown)
}

/// A checked upgrade request, before the converter is chosen.
pub(crate) struct Opening {
    switching: Response<()>,
    /// The request's URL, for the session's path and query.
    uri: Uri,
    /// The request's headers, for the subprotocols and the compression it offers.
    headers: HeaderMap,
}

impl Opening {
    /// Checks `request` as [`Server`](crate::Server) does: 405 for another method, 426 for
    /// another WebSocket version, 400 for anything else amiss.
    pub(crate) fn read<B>(request: &Request<B>) -> Result<Self, Refusal> {
        let switching =
            screen::check(request).map_err(|(status, reason)| Refusal::new(status, reason))?;
        Ok(Opening {
            switching,
            uri: request.uri().clone(),
            headers: request.headers().clone(),
        })
    }

    /// Chooses the converter for the subprotocols offered, and answers with it; the session
    /// comes through `on_upgrade`, hyper's handle on the connection, and follows `shutdown`,
    /// that of the server the request came to.
    pub(crate) fn answer<C: Converter>(
        self,
        config: &Config<C>,
        on_upgrade: OnUpgrade,
        shutdown: Option<&Shutdown>,
    ) -> Result<(Response<String>, Upgrading<C>), Refusal> {
        let mut response = self.switching.map(|()| String::new());
        let (handshake, converter) =
            handshake::answer(config, &self.uri, &self.headers, response.headers_mut())
                .map_err(|(status, reason)| Refusal::new(status, reason))?;
        let upgrading = Upgrading {
            on_upgrade,
            settings: config.settings.clone(),
            handshake,
            converter,
            shutdown: shutdown.map(Shutdown::watch).unwrap_or_default(),
        };
        Ok((response, upgrading))
    }
}

/// The session of an answered upgrade, once hyper hands the connection over: `.await` it for
/// the [`Session`]. It fails with [`Error::HandshakeTimeout`] when that takes longer than
/// [`Config::handshake_timeout`], and with [`Error::Handshake`] when hyper gives up the
/// connection instead (the client left, or the response was never sent as a `101`).
#[must_use = "the session starts only when this is awaited"]
pub struct Upgrading<C> {
    on_upgrade: OnUpgrade,
    settings: Arc<Settings>,
    handshake: Handshake,
    converter: C,
    shutdown: Watch,
}

impl<C> fmt::Debug for Upgrading<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgrading")
            .field("path", &self.handshake.path)
            .field("subprotocol", &self.handshake.subprotocol)
            .finish_non_exhaustive()
    }
}

impl<C: Converter> IntoFuture for Upgrading<C> {
    type Output = Result<Session<C>, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let Upgrading {
                on_upgrade,
                settings,
                handshake,
                converter,
                shutdown,
            } = self;
            let upgraded = handshake::bounded(settings.handshake_timeout, on_upgrade)
                .await?
                .map_err(|e| Error::Handshake {
                    status: None,
                    message: "hyper did not hand the upgraded connection over".to_owned(),
                    source: Some(Box::new(e)),
                })?;
            let opened = wire::Opened::Raw {
                io: Elastic::new(TokioIo::new(upgraded)),
                tail: Vec::new(),
                role: Role::Server,
            };
            Ok(wire::start(opened, settings, handshake, converter, shutdown).await)
        })
    }
}

/// An upgrade request refused: answer it with [`Refusal::into_response`]. As an [`Error`]
/// (`From`), it is [`Error::Handshake`] with the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    status: StatusCode,
    reason: String,
}

impl Refusal {
    pub(crate) fn new(status: StatusCode, reason: String) -> Self {
        Refusal { status, reason }
    }

    /// The HTTP status to answer with: 405 for a method other than GET, 426 for another
    /// WebSocket version, 400 for another flaw or when no converter is common.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Why, in words; the body of the answer.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The HTTP answer: the status, and the reason as plain text. A 426 names the version
    /// we speak (`Sec-WebSocket-Version: 13`), as RFC 6455 asks.
    pub fn into_response(self) -> Response<String> {
        let mut response = Response::new(format!("{}\n", self.reason));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        if self.status == StatusCode::UPGRADE_REQUIRED {
            headers.insert("sec-websocket-version", HeaderValue::from_static("13"));
        }
        response
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refused the client with {}: {}",
            self.status, self.reason
        )
    }
}

impl std::error::Error for Refusal {}

impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Self {
        Error::handshake(Some(refusal.status), refusal.to_string())
    }
}
