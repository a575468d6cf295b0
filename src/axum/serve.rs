//! Serving an axum `Router`, or any tower service, with what [`Server::serve`] does for its
//! own connections: the handshake deadline, the connection limit, bounded request heads.
//!
//! [`Server::serve`]: crate::Server::serve

use std::future::{Future, IntoFuture, poll_fn};
use std::io::{self, IoSlice};
use std::pin::Pin;
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
use crate::http_upgrade::Refusal;
use crate::listener::{Listener, Slot};
use crate::upgrade::{MAX_HEAD, MAX_REQUEST_LINE};

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
/// it is dropped; its `io::Result` is there so it replaces `axum::serve(listener,
/// app).await?` as it is.
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
    }
}

/// The future of [`serve`]: `.await` it.
#[must_use = "nothing is served until this is awaited"]
pub struct Serve<S> {
    listener: TcpListener,
    service: S,
    settings: Arc<Settings>,
}

impl<S> std::fmt::Debug for Serve<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serve")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
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
        } = self;
        Box::pin(async move {
            let listener = Listener::new(listener, settings.max_connections);
            let mut http = http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(settings.handshake_timeout)
                .max_header_size(MAX_HEAD);
            loop {
                let (tcp, _peer, slot) = listener.accept().await;
                let io = TokioIo::new(Held {
                    io: tcp,
                    _slot: slot,
                });
                let service = service.clone();
                let connection = http
                    .serve_connection(
                        io,
                        service_fn(move |request| screened(service.clone(), request)),
                    )
                    .with_upgrades();
                // Its errors (a timeout, a malformed request) concern that connection alone,
                // and hyper has answered what deserved an answer.
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
        })
    }
}

/// Calls `service` with `request`, unless its request line is over what
/// [`Server::serve`](crate::Server::serve) takes: 414, as there.
async fn screened<S, B>(mut service: S, request: Request<Incoming>) -> Result<Response<B>, S::Error>
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
