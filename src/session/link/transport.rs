//! What a link runs on: the type-erased tungstenite stream, its clean end once the session
//! is over, and the wakers the link polls it with.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::{End, State};

/// A tungstenite WebSocket stream of any transport (TCP, TLS, in-memory), type-erased so that
/// client and server sessions are one type.
pub(crate) trait Transport:
    Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Send + Unpin
{
    /// The byte stream underneath, to close it cleanly once the WebSocket is over; `None`
    /// when it is gone already.
    fn io(&mut self) -> Option<&mut dyn Io>;
}

/// A byte stream a WebSocket runs on.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

impl<S: AsyncRead + AsyncWrite + Send + Unpin> Transport for WebSocketStream<S> {
    fn io(&mut self) -> Option<&mut dyn Io> {
        Some(self.get_mut())
    }
}

/// How long an ended session's connection may take, in the background, to flush the close
/// frame and read out what the peer still sends before it is dropped.
const LINGER: Duration = Duration::from_secs(2);

/// Ends the session and lets the connection go. On the server this is what closes TCP after
/// the closing handshake, as RFC 6455 wants; the client learns of it by the end of its stream.
/// The connection lingers in the background (see [`linger`]) so that it ends with a FIN
/// rather than a reset. The watchdog is woken to see the end: it may be waiting for nothing
/// else (no ping, no timeout), and a session that is held after it ended must not keep it.
pub(super) fn finish(st: &mut State, watchdog: &Notify) {
    st.end.get_or_insert(End::Closed);
    watchdog.notify_one();
    let mut ws = std::mem::replace(&mut st.ws, Box::new(Ended));
    if ws.io().is_some()
        && let Ok(runtime) = tokio::runtime::Handle::try_current()
    {
        runtime.spawn(linger(ws));
    }
}

/// Closes a connection cleanly, within [`LINGER`]: flushes what is queued (our close frame),
/// shuts down our side, and reads out whatever the peer still sends until it closes its side.
/// Dropping a socket with unread data would reset the connection, and the peer could lose our
/// close frame with it.
async fn linger(mut ws: Box<dyn Transport>) {
    let _ = tokio::time::timeout(LINGER, async {
        let _ = std::future::poll_fn(|cx| Pin::new(&mut *ws).poll_flush(cx)).await;
        if let Some(io) = ws.io() {
            let _ = io.shutdown().await;
            let mut discard = [0; 4096];
            while matches!(io.read(&mut discard).await, Ok(n) if n > 0) {}
        }
    })
    .await;
}

/// What stands in for the connection once the session has ended.
struct Ended;

impl Stream for Ended {
    type Item = Result<Message, WsError>;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(None)
    }
}

impl Transport for Ended {
    fn io(&mut self) -> Option<&mut dyn Io> {
        None
    }
}

impl Sink<Message> for Ended {
    type Error = WsError;

    fn poll_ready(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Poll::Ready(Err(WsError::AlreadyClosed))
    }

    fn start_send(self: Pin<&mut Self>, _message: Message) -> Result<(), WsError> {
        Err(WsError::AlreadyClosed)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Poll::Ready(Ok(()))
    }
}

/// Wakes the watchdog.
pub(super) struct NotifyWaker(pub(super) Arc<Notify>);

impl Wake for NotifyWaker {
    fn wake(self: Arc<Self>) {
        self.0.notify_one();
    }
}

/// One waker for several tasks, for the one write waker that tokio-tungstenite keeps.
pub(super) fn wake_all<const N: usize>(wakers: [Option<&Waker>; N]) -> Waker {
    Waker::from(Arc::new(WakeAll(wakers.map(|waker| waker.cloned()))))
}

struct WakeAll<const N: usize>([Option<Waker>; N]);

impl<const N: usize> Wake for WakeAll<N> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        for waker in self.0.iter().flatten() {
            waker.wake_by_ref();
        }
    }
}

pub(super) fn remember(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(known) if known.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}
