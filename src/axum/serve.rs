//! Serving an axum `Router`, or any tower service, with what [`Server::serve`] does for its
//! own connections: the handshake deadline, the connection limit, bounded request heads.
//!
//! [`Server::serve`]: crate::Server::serve

use std::future::{Future, IntoFuture, poll_fn};
use std::io::{self, IoSlice};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::http::{Request, Response, StatusCode};
use tower_service::Service;

use crate::config::{Config, Settings};
use crate::error::BoxError;
use crate::frame::CloseReason;
use crate::http_upgrade::Refusal;
use crate::listener::{Listener, Slot};
use crate::screen::{MAX_HEAD, MAX_REQUEST_LINE};
use crate::shutdown::{Plan, Shutdown};

/// Serves `service` (an axum `Router`, or any tower service of HTTP requests) on `listener`,
/// over HTTP/1.1, with the connection defaults of [`Server::serve`](crate::Server::serve)
/// taken from `config`:
///
/// - a request head must arrive within [`Config::handshake_timeout`] (10 s by default), the
///   first on a connection and every one after it, so silent and trickling connections are
///   closed at the deadline;
/// - at most [`Config::max_connections`] connections at once, WebSocket sessions included
///   (the count follows a connection through its upgrade until the session ends); the next
///   waits in the kernel's accept queue;
/// - a request head over 64 KiB or with over 100 header fields gets 431, a request line
///   over 8 KiB 414;
/// - accept errors (out of file descriptors, say) pause accepting instead of spinning;
/// - `TCP_NODELAY` on every connection.
///
/// Pass the same `config` your routes answer upgrades with. The future never ends unless
/// it is dropped or given a signal with [`Serve::with_graceful_shutdown`]; its `io::Result`
/// is there so it replaces `axum::serve(listener, app).await?` as it is.
///
/// `axum::serve` itself builds hyper without a timer: a connection that sends nothing, or a
/// byte now and then, is kept forever, and nothing caps how many are open. Behind a reverse
/// proxy that enforces its own deadlines and limits that may be acceptable; on the open
/// internet, use this.
///
/// ```no_run
/// use axum::Router;
/// use axum::response::Response;
/// use axum::routing::get;
/// use typed_ws::axum::WebSocketUpgrade;
/// use typed_ws::{Config, JsonConverter};
///
/// # async fn run() -> std::io::Result<()> {
/// let config = Config::new().converter(JsonConverter);
/// let route = config.clone();
/// let app = Router::new().route(
///     "/ws",
///     get(move |upgrade: WebSocketUpgrade| async move {
///         upgrade.on_upgrade(&route, |mut session| async move {
///             let _ = session.send_text("hello").await;
///         })
///     }),
/// );
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// typed_ws::axum::serve(listener, app, &config).await
/// # }
/// ```
pub fn serve<C, S>(listener: TcpListener, service: S, config: &Config<C>) -> Serve<S> {
    Serve {
        listener,
        service,
        settings: config.settings.clone(),
        plan: Plan::default(),
    }
}

/// The future of [`serve`]: `.await` it.
#[must_use = "nothing is served until this is awaited"]
pub struct Serve<S> {
    listener: TcpListener,
    service: S,
    settings: Arc<Settings>,
    plan: Plan,
}

impl<S> std::fmt::Debug for Serve<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serve")
            .field("listener", &self.listener)
            .field("graceful_shutdown", &self.plan.has_signal())
            .finish_non_exhaustive()
    }
}

impl<S> Serve<S> {
    /// Shuts down gracefully once `signal` completes, as
    /// [`typed_ws::Serve::with_graceful_shutdown`](crate::Serve::with_graceful_shutdown)
    /// does, and then the future ends with `Ok(())`. The sessions of
    /// [`WebSocketUpgrade::on_upgrade`](super::WebSocketUpgrade::on_upgrade) close with the
    /// reason of [`Serve::close_with`] and are awaited as that server's are; HTTP connections
    /// finish the request under way, if any, and close. What is still open after
    /// [`Config::shutdown_timeout`] is dropped.
    ///
    /// ```no_run
    /// # async fn run(app: axum::Router, config: typed_ws::Config) -> std::io::Result<()> {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    /// typed_ws::axum::serve(listener, app, &config)
    ///     .with_graceful_shutdown(async {
    ///         let _ = tokio::signal::ctrl_c().await;
    ///     })
    ///     .await
    /// # }
    /// ```
    pub fn with_graceful_shutdown(
        mut self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        self.plan.set_signal(signal);
        self
    }

    /// The close frame that a graceful shutdown sends every session; 1001 (going away) by
    /// default. See [`typed_ws::Serve::close_with`](crate::Serve::close_with).
    ///
    /// # Panics
    ///
    /// When the code may not be sent ([`CloseCode::is_sendable`](crate::CloseCode::is_sendable)).
    pub fn close_with(mut self, reason: CloseReason) -> Self {
        self.plan.set_reason(reason);
        self
    }
}

impl<S, B> IntoFuture for Serve<S>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: hyper::body::Body + From<String> + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        let Serve {
            listener,
            service,
            settings,
            plan,
        } = self;
        Box::pin(async move {
            let shutdown = Shutdown::new();
            let listener = Listener::new(listener, settings.max_connections);
            let mut http = http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(settings.handshake_timeout)
                .max_header_size(MAX_HEAD);
            let tracker = shutdown.clone();
            // Owns the listener: dropping it once the signal comes refuses new connections
            // and resets those still in the kernel's queue.
            let accepting = async move {
                let shutdown = tracker;
                loop {
                    let (tcp, _peer, slot) = listener.accept().await;
                    let io = TokioIo::new(Held {
                        io: tcp,
                        _slot: slot,
                    });
                    let service = service.clone();
                    let requests = shutdown.clone();
                    let connection = http
                        .serve_connection(
                            io,
                            service_fn(move |request| {
                                screened(service.clone(), request, requests.clone())
                            }),
                        )
                        .with_upgrades();
                    let watching = shutdown.clone();
                    // Its errors (a timeout, a malformed request) concern that connection
                    // alone, and hyper has answered what deserved an answer.
                    tokio::spawn(shutdown.track(async move {
                        let mut connection = pin!(connection);
                        if watching
                            .before_shutdown(connection.as_mut())
                            .await
                            .is_some()
                        {
                            return;
                        }
                        // The request under way, if any, is answered; then the connection
                        // closes. An upgrade's session follows the shutdown on its own.
                        connection.as_mut().graceful_shutdown();
                        let _ = connection.await;
                    }));
                }
            };
            let reason = plan.accept_until(accepting).await;
            shutdown.run(reason, settings.shutdown_timeout).await;
            Ok(())
        })
    }
}

/// Calls `service` with `request`, unless its request line is over what
/// [`Server::serve`](crate::Server::serve) takes: 414, as there. The request carries the
/// server's shutdown, for the upgrades to follow.
async fn screened<S, B>(
    mut service: S,
    mut request: Request<Incoming>,
    shutdown: Shutdown,
) -> Result<Response<B>, S::Error>
where
    S: Service<Request<Incoming>, Response = Response<B>>,
    B: From<String>,
{
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if target > MAX_REQUEST_LINE {
        let why = format!("the request line is over {MAX_REQUEST_LINE} bytes");
        let refusal = Refusal::new(StatusCode::URI_TOO_LONG, why);
        return Ok(refusal.into_response().map(B::from));
    }
    request.extensions_mut().insert(shutdown);
    poll_fn(|cx| service.poll_ready(cx)).await?;
    service.call(request).await
}

/// A connection that holds its [`Slot`] for as long as it lives: through hyper and an
/// upgrade, into the session that ends up owning it.
struct Held<S> {
    io: S,
    _slot: Slot,
}

impl<S: AsyncRead + Unpin> AsyncRead for Held<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Held<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
