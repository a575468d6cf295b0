//! The server side: accept WebSocket connections on any byte stream and get a [`Session`].

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

use crate::config::Config;
use crate::converter::{Converter, NoConverter};
use crate::error::{Chain, Error};
use crate::handshake::{self, Side};
use crate::screen;
use crate::serve::Serve;
use crate::session::Session;
use crate::shutdown::Watch;
use crate::trace;
use crate::wire;

/// A WebSocket server: a [`Config`] installed once, shared by every session it accepts. Cheap
/// to clone.
///
/// ```no_run
/// use tokio::net::TcpListener;
/// use typed_ws::{Config, Frame, JsonConverter, Server};
///
/// # async fn run() -> Result<(), typed_ws::Error> {
/// let server = Server::new(Config::new().converter(JsonConverter));
/// let listener = TcpListener::bind("127.0.0.1:8080").await?;
/// server
///     .serve(listener, |mut session| async move {
///         // Echo every data frame back.
///         while let Ok(frame) = session.receive().await {
///             if frame.is_data() && session.send(frame).await.is_err() {
///                 break;
///             }
///         }
///     })
///     .await;
/// # Ok(()) }
/// ```
pub struct Server<C = NoConverter> {
    config: Arc<Config<C>>,
    on_failure: Option<Arc<FailureHook>>,
}

/// What [`Server::on_failure`] installs.
type FailureHook = dyn Fn(Failure) + Send + Sync;

impl<C> Clone for Server<C> {
    fn clone(&self) -> Self {
        Server {
            config: self.config.clone(),
            on_failure: self.on_failure.clone(),
        }
    }
}

impl<C> fmt::Debug for Server<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("on_failure", &self.on_failure.is_some())
            .finish_non_exhaustive()
    }
}

/// A connection that [`Server::serve`] or [`Server::serve_with`] could not bring to a good
/// end, as reported to [`Server::on_failure`].
///
/// Its text (`Display`) quotes at most 200 bytes of anything the peer sent, so it can go to a
/// log as it is.
#[derive(Debug)]
#[non_exhaustive]
pub struct Failure {
    /// The peer's address.
    pub peer: SocketAddr,
    /// Where the connection failed.
    pub stage: Stage,
    /// What went wrong: for a session, [`Error::Timeout`] or [`Error::Closed`] with the close
    /// frame that ended it.
    pub error: Error,
}

/// Where a [`Failure`] happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// The opening handshake (TLS included): the handler never saw the connection.
    Handshake,
    /// The session, after the handler had it: it ended with a close code other than 1000,
    /// 1001 or none, or by a timeout. A connection that merely drops without a close frame
    /// (1006) is not reported: on the internet that is how many clients leave (a closed
    /// laptop, a lost mobile network), and one log line per departure would drown the
    /// failures; a peer that vanishes silently is reported when its timeout ends it. Nor is
    /// a session closed by a graceful shutdown ([`Serve::with_graceful_shutdown`]).
    Session,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match self.stage {
            Stage::Handshake => "handshake failed",
            Stage::Session => "session failed",
        };
        write!(f, "{}: {stage}: {}", self.peer, Chain(&self.error))
    }
}

impl<C: Converter> Server<C> {
    /// A server with this configuration.
    pub fn new(config: Config<C>) -> Self {
        Server {
            config: Arc::new(config),
            on_failure: None,
        }
    }

    /// Calls `hook` for every connection that [`Server::serve`] or [`Server::serve_with`]
    /// could not bring to a good end: failed handshakes (timeouts, refusals, TLS errors,
    /// requests that are no upgrade) and sessions that failed (see [`Stage::Session`]).
    /// Without a hook they pass silently. The hook runs on a runtime thread: hand the
    /// failure on (a channel, a logger that does not block) rather than write to a slow
    /// sink from it.
    ///
    /// ```no_run
    /// # use typed_ws::{Config, Server};
    /// let server = Server::new(Config::new()).on_failure(|failure| {
    ///     // e.g. "127.0.0.1:50312: handshake failed: the opening handshake did not complete within 10s"
    ///     eprintln!("{failure}");
    /// });
    /// ```
    pub fn on_failure(mut self, hook: impl Fn(Failure) + Send + Sync + 'static) -> Self {
        self.on_failure = Some(Arc::new(hook));
        self
    }

    /// The installed configuration.
    pub fn config(&self) -> &Config<C> {
        &self.config
    }

    /// Performs the server handshake on a connected stream (a `TcpStream`, a TLS stream, an
    /// in-memory duplex...), for any request path; [`Session::path`] tells which one. For
    /// TCP, set `TCP_NODELAY` on the stream first, as [`Server::serve`] does, or small
    /// messages wait for Nagle's algorithm.
    pub async fn accept<S>(&self, io: S) -> Result<Session<C>, Error>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        self.accept_with(io, |_| Ok(())).await
    }

    /// Like [`Server::accept`], but `check` sees the request first (path, headers) and can
    /// refuse it with an HTTP status, which the client gets as
    /// [`Error::Handshake`] with that status.
    ///
    /// ```no_run
    /// # use typed_ws::{Config, Server};
    /// # async fn run(server: Server, tcp: tokio::net::TcpStream) -> Result<(), typed_ws::Error> {
    /// use typed_ws::http::StatusCode;
    /// let session = server
    ///     .accept_with(tcp, |request| match request.uri().path() {
    ///         "/echo" => Ok(()),
    ///         _ => Err(StatusCode::NOT_FOUND),
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn accept_with<S, F>(&self, io: S, check: F) -> Result<Session<C>, Error>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
        F: FnOnce(&Request) -> Result<(), StatusCode> + Unpin,
    {
        let deadline = self.config.settings.handshake_timeout;
        // On the heap, the handshake's state (kilobytes) is freed when it ends; inline, it
        // would stay in the caller's future, and so in every session's task, for good.
        let upgrade = Box::pin(handshake::bounded(
            deadline,
            self.upgrade(io, check, Watch::default()),
        ));
        trace::handshake(trace::server_handshake(None), async { upgrade.await? }).await
    }

    /// The server handshake of [`Server::accept_with`], without its deadline; the session
    /// follows `shutdown`.
    pub(crate) async fn upgrade<S, F>(
        &self,
        io: S,
        check: F,
        shutdown: Watch,
    ) -> Result<Session<C>, Error>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
        F: FnOnce(&Request) -> Result<(), StatusCode> + Unpin,
    {
        let config = &self.config;
        let mut agreed = None;
        // tungstenite's callback signature fixes the large error type.
        #[allow(clippy::result_large_err)]
        let callback =
            |request: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
                trace::record_path(request.uri().path());
                if let Err(status) = check(request) {
                    return Err(refusal(
                        status,
                        status.canonical_reason().unwrap_or_default().to_owned(),
                    ));
                }
                let answered = handshake::answer(
                    config,
                    request.uri(),
                    request.headers(),
                    response.headers_mut(),
                )
                .map_err(|(status, why)| refusal(status, why))?;
                agreed = Some(answered);
                Ok(response)
            };
        let io = screen::screen(io).await?;
        let ws = tokio_tungstenite::accept_hdr_async_with_config(
            wire::stack(io),
            callback,
            Some(config.settings.websocket_config()),
        )
        .await
        .map_err(|e| handshake::failed(e, Side::Server))?;
        // tungstenite completes a handshake only after the callback accepted it.
        let (handshake, converter) = agreed
            .ok_or_else(|| Error::handshake(None, "the handshake completed without a decision"))?;
        let opened = wire::Opened::Accepted(Box::new(ws));
        Ok(wire::start(
            opened,
            config.settings.clone(),
            handshake,
            converter,
            shutdown,
        )
        .await)
    }

    /// Accepts connections on `listener`, each in its own task: the handshake, then
    /// `handler` with the session. Connections whose handshake fails are dropped without
    /// reaching the handler, and reported to [`Server::on_failure`]. At most
    /// [`Config::max_connections`] connections are handled at once; the next waits in the
    /// kernel's accept queue until one ends. An accept error that concerns one connection is
    /// skipped; any other (out of file descriptors, say) pauses accepting until a connection
    /// ends or 100 ms pass, instead of spinning. Sets `TCP_NODELAY` on every connection.
    ///
    /// Nothing happens until the [`Serve`] is awaited; it serves forever, or until the
    /// signal given to [`Serve::with_graceful_shutdown`], which closes every session and
    /// waits for them before it ends.
    pub fn serve<F, Fut>(&self, listener: TcpListener, handler: F) -> Serve<C>
    where
        F: Fn(Session<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.serve_with(listener, |_| Ok(()), handler)
    }

    /// Like [`Server::serve`], but every request goes through `check` first, as in
    /// [`Server::accept_with`]: route on the path, check headers, refuse with a status.
    ///
    /// ```no_run
    /// # use typed_ws::{Config, Server};
    /// # async fn run(server: Server, listener: tokio::net::TcpListener) {
    /// use typed_ws::http::StatusCode;
    /// server
    ///     .serve_with(
    ///         listener,
    ///         |request| match request.uri().path() {
    ///             "/echo" => Ok(()),
    ///             _ => Err(StatusCode::NOT_FOUND),
    ///         },
    ///         |mut session| async move {
    ///             while let Ok(frame) = session.receive().await {
    ///                 if frame.is_data() && session.send(frame).await.is_err() {
    ///                     break;
    ///                 }
    ///             }
    ///         },
    ///     )
    ///     .await;
    /// # }
    /// ```
    pub fn serve_with<K, F, Fut>(&self, listener: TcpListener, check: K, handler: F) -> Serve<C>
    where
        K: Fn(&Request) -> Result<(), StatusCode> + Send + Sync + 'static,
        F: Fn(Session<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler = move |session| -> Pin<Box<dyn Future<Output = ()> + Send>> {
            Box::pin(handler(session))
        };
        Serve::new(self.clone(), listener, Arc::new(check), Arc::new(handler))
    }

    pub(crate) fn report(&self, peer: SocketAddr, stage: Stage, error: Error) {
        if let Some(hook) = &self.on_failure {
            hook(Failure { peer, stage, error });
        }
    }
}

fn refusal(status: StatusCode, body: String) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(body));
    *response.status_mut() = status;
    response
}

impl<C> Server<C> {
    /// The TLS acceptor of `serve`, when the config has TLS server settings.
    #[cfg(feature = "tls")]
    pub(crate) fn tls_acceptor(&self) -> Option<tokio_rustls::TlsAcceptor> {
        self.config
            .settings
            .tls
            .server
            .clone()
            .map(tokio_rustls::TlsAcceptor::from)
    }

    #[cfg(not(feature = "tls"))]
    pub(crate) fn tls_acceptor(&self) -> Option<std::convert::Infallible> {
        None
    }
}
