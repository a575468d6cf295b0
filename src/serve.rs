//! What [`Server::serve`] and [`Server::serve_with`] return: the accept loop, to await, and
//! its graceful shutdown (see [`crate::shutdown`]).

use std::fmt;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::Request;
use tokio_tungstenite::tungstenite::http::StatusCode;

use crate::converter::{Converter, NoConverter};
use crate::frame::CloseReason;
use crate::handshake;
use crate::listener::Listener;
use crate::server::{Server, Stage};
use crate::session::Session;
use crate::shutdown::{Plan, Shutdown};
use crate::trace;

/// The check of [`Server::serve_with`].
pub(crate) type Check = dyn Fn(&Request) -> Result<(), StatusCode> + Send + Sync;

/// A handler of [`Server::serve`], its future boxed.
pub(crate) type Handler<C> =
    dyn Fn(Session<C>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync;

/// The server of [`Server::serve`] and [`Server::serve_with`]: `.await` it. Without
/// [`Serve::with_graceful_shutdown`] it serves until it is dropped.
///
/// ```no_run
/// use tokio::net::TcpListener;
/// use typed_ws::{CloseCode, CloseReason, Config, JsonConverter, Server};
///
/// # async fn run() -> Result<(), typed_ws::Error> {
/// let server = Server::new(Config::new().converter(JsonConverter));
/// let listener = TcpListener::bind("127.0.0.1:8080").await?;
/// server
///     .serve(listener, |mut session| async move {
///         // Each message received is answered; the receive after the shutdown began ends
///         // the loop with the close.
///         while let Ok(frame) = session.receive().await {
///             if frame.is_data() && session.send(frame).await.is_err() {
///                 break;
///             }
///         }
///     })
///     .with_graceful_shutdown(async {
///         let _ = tokio::signal::ctrl_c().await;
///     })
///     // 1012 rather than the default 1001: clients may come back soon.
///     .close_with(CloseReason::new(CloseCode::ServiceRestart, "restarting"))
///     .await;
/// # Ok(()) }
/// ```
#[must_use = "nothing is served until this is awaited"]
pub struct Serve<C = NoConverter> {
    server: Server<C>,
    listener: TcpListener,
    check: Arc<Check>,
    handler: Arc<Handler<C>>,
    plan: Plan,
}

impl<C> fmt::Debug for Serve<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serve")
            .field("listener", &self.listener)
            .field("graceful_shutdown", &self.plan.has_signal())
            .finish_non_exhaustive()
    }
}

impl<C> Serve<C> {
    pub(crate) fn new(
        server: Server<C>,
        listener: TcpListener,
        check: Arc<Check>,
        handler: Arc<Handler<C>>,
    ) -> Self {
        Serve {
            server,
            listener,
            check,
            handler,
            plan: Plan::default(),
        }
    }

    /// Shuts the server down gracefully once `signal` completes (`tokio::signal::ctrl_c()`,
    /// a channel, ...), and then the future ends:
    ///
    /// 1. The listener is closed: new connections are refused.
    /// 2. Every session closes with the reason of [`Serve::close_with`] (1001, going away, by
    ///    default) at its next receive, or at once if a receive is waiting. A message a
    ///    handler has received is answered, if the handler replies before it receives
    ///    again: the close frame goes behind the replies sent or queued. That receive then
    ///    waits for the peer's answering close and gives
    ///    [`Error::Closed`](crate::Error::Closed) with the reason; what the peer sent that no
    ///    receive had handed out is discarded, as after [`Session::close`]. A handler that
    ///    returns with its session open has it closed the same way, and a handshake under way
    ///    completes, its session closing at its first receive.
    /// 3. The close handshakes and the handlers are awaited for at most
    ///    [`Config::shutdown_timeout`](crate::Config::shutdown_timeout) (10 s by default).
    ///    Then the handlers left are dropped, their sessions sent the close frame if they had
    ///    not had it, and the connections let go.
    ///
    /// A handler that never receives (it only sends) is reached when it returns or at the
    /// deadline. With a split session, the receiving half's wait ends at once, so the replies
    /// the sending half sends after that fail with `Error::Closed`. Sessions closed this way
    /// are not reported to [`Server::on_failure`], whatever the code.
    pub fn with_graceful_shutdown(
        mut self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        self.plan.set_signal(signal);
        self
    }

    /// The close frame that a graceful shutdown sends every session; by default 1001 (going
    /// away) with the reason "the server is shutting down". 1012
    /// ([`CloseCode::ServiceRestart`](crate::CloseCode::ServiceRestart)) tells clients that
    /// the server is restarting. A reason over 123 bytes is cut to fit the frame.
    ///
    /// # Panics
    ///
    /// When the code may not be sent ([`CloseCode::is_sendable`](crate::CloseCode::is_sendable)).
    pub fn close_with(mut self, reason: CloseReason) -> Self {
        self.plan.set_reason(reason);
        self
    }
}

impl<C: Converter> IntoFuture for Serve<C> {
    type Output = ();
    type IntoFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

impl<C: Converter> Serve<C> {
    async fn run(self) {
        let Serve {
            server,
            listener,
            check,
            handler,
            plan,
        } = self;
        let settings = server.config().settings.clone();
        let shutdown = Shutdown::new();
        let listener = Listener::new(listener, settings.max_connections);
        let tracker = shutdown.clone();
        // Owns the listener: dropping it once the signal comes refuses new connections and
        // resets those still in the kernel's queue.
        let accepting = async move {
            let shutdown = tracker;
            loop {
                let (tcp, peer, slot) = listener.accept().await;
                let connection = Connection {
                    server: server.clone(),
                    check: check.clone(),
                    handler: handler.clone(),
                    shutdown: shutdown.clone(),
                };
                tokio::spawn(shutdown.track(async move {
                    connection.run(tcp, peer).await;
                    drop(slot);
                }));
            }
        };
        let reason = plan.accept_until(accepting).await;
        shutdown.run(reason, settings.shutdown_timeout).await;
    }
}

/// What one connection's task needs of its serve call.
struct Connection<C> {
    server: Server<C>,
    check: Arc<Check>,
    handler: Arc<Handler<C>>,
    shutdown: Shutdown,
}

impl<C: Converter> Connection<C> {
    /// The handshake (TLS included), then the handler, then the reports.
    async fn run(self, tcp: TcpStream, peer: SocketAddr) {
        let Connection {
            server,
            check,
            handler,
            shutdown,
        } = self;
        let check = move |request: &Request| check(request);
        let watch = shutdown.watch();
        let deadline = server.config().settings.handshake_timeout;
        let span = trace::server_handshake(Some(peer));
        // Boxed for the reason given in `Server::accept_with`.
        let accepted = Box::pin(handshake::bounded(deadline, async {
            match server.tls_acceptor() {
                #[cfg(feature = "tls")]
                Some(tls) => {
                    let tls = tls.accept(tcp).await.map_err(handshake::tls_failure)?;
                    server.upgrade(tls, check, watch).await
                }
                _ => server.upgrade(tcp, check, watch).await,
            }
        }));
        match trace::handshake(span, async { accepted.await? }).await {
            Ok(session) => {
                let link = session.link();
                handler(session).await;
                shutdown.close_session(&link).await;
                if let Some(error) = link.failure() {
                    server.report(peer, Stage::Session, error);
                }
            }
            Err(error) => server.report(peer, Stage::Handshake, error),
        }
    }
}
