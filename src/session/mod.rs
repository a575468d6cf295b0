//! The session: one WebSocket connection, raw frames and typed messages, on the client and
//! on the server alike.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;

use crate::config::{Config, Settings};
use crate::converter::{Converter, NoConverter};
use crate::error::Error;
use crate::frame::{CloseReason, Frame, Utf8Bytes};
use crate::handshake::Handshake;
use crate::shutdown::Watch;
use crate::trace;
use crate::wire::Arrivals;
#[cfg(feature = "compression")]
use crate::wire::deflate::PerMessageDeflate;

mod halves;
pub(crate) mod link;
mod watchdog;

pub use halves::Deserialized;

use link::{Link, Transport};

/// A WebSocket session: send and receive frames, or typed values through the converter `C`.
///
/// Made by [`Client`](crate::Client) or [`Server`](crate::Server), or by wrapping a
/// tokio-tungstenite stream with [`Session::from_stream`]. It answers the peer's pings as it
/// reads them: whenever you receive, and at every tick of its watchdog (pings, timeout, send
/// timeout: all on by default) even while you are not receiving. The watchdog sends the
/// keep-alive pings and ends the session when the peer goes silent or stops reading, whether
/// or not you are receiving.
///
/// It is a [`Stream`](futures_util::Stream) of incoming frames and a [`Sink`](futures_util::Sink) of outgoing ones; [`Session::split`]
/// gives a [`SendHalf`] and a [`RecvHalf`] for use from different tasks.
///
/// Dropping a session without [`close`](Session::close) drops the connection: the peer sees
/// 1006.
///
/// # Cancel safety
///
/// What a call leaves behind when its future is dropped unfinished (a losing branch of
/// `tokio::select!`, a timeout), for the session and its halves alike. Nothing is ever torn:
/// a frame is queued whole or not at all, a message is received whole or waits.
///
/// | method | cancel safe | when cancelled |
/// |---|---|---|
/// | [`receive`](Session::receive), [`receive_message`](Session::receive_message), [`receive_deserialized`](Session::receive_deserialized), `StreamExt::next` on a session, a [`RecvHalf`] or [`incoming_deserialized`](Session::incoming_deserialized) | yes | nothing is lost: a message is taken in the poll that returns it, and what has arrived of the next one waits for the next call (pings and pongs a typed receive skipped stay skipped) |
/// | [`feed`](Session::feed), [`feed_serialized`](Session::feed_serialized), `SinkExt::feed` | yes | nothing was queued or sent (it was waiting for room in the write buffer) |
/// | [`flush`](Session::flush) | yes | what is queued stays queued, for the next write |
/// | [`send`](Session::send), [`send_text`](Session::send_text), [`send_binary`](Session::send_binary), [`send_serialized`](Session::send_serialized), `SinkExt::send` | no | the frame was either not queued (it was waiting for room in the write buffer) or queued whole, and then it goes out once with the session's next write (a send, flush or close, or a ping or pong it sends by itself); sending it again may send it twice, so use `feed` then `flush` when that matters |
/// | [`close`](Session::close) | yes | calling it again sends the close frame if it was not queued, writes it out if it was, and waits for the peer's anew |
/// | [`SendHalf::close`] | yes | calling it again sends the close frame if it was not queued and gives [`Error::Closed`] if it was |
///
/// With `feed` then `flush`, a cancelled call leaves nothing to guess: the frame goes out
/// once if `feed` returned, and not at all otherwise.
///
/// ```no_run
/// # async fn run(mut session: typed_ws::Session<typed_ws::JsonConverter>) -> Result<(), typed_ws::Error> {
/// # let mut shutdown = tokio::sync::mpsc::channel::<()>(1).1;
/// tokio::select! {
///     // Done means queued; a flush cancelled below leaves it queued for the next write.
///     queued = session.feed_serialized("update") => queued?,
///     _ = shutdown.recv() => return Ok(()),
/// }
/// tokio::select! {
///     flushed = session.flush() => flushed?,
///     _ = shutdown.recv() => {}
/// }
/// # Ok(()) }
/// ```
pub struct Session<C = NoConverter> {
    tx: SendHalf<C>,
    rx: RecvHalf<C>,
}

/// The sending half of a [`Session`], from [`Session::split`]. A [`Sink`](futures_util::Sink) of frames.
pub struct SendHalf<C = NoConverter> {
    link: Arc<Link>,
    converter: C,
    closing: bool,
}

/// The receiving half of a [`Session`], from [`Session::split`]. A [`Stream`](futures_util::Stream) of frames.
pub struct RecvHalf<C = NoConverter> {
    link: Arc<Link>,
    converter: C,
    stream_done: bool,
}

impl<C> fmt::Debug for Session<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Session");
        debug
            .field("path", &self.path())
            .field("subprotocol", &self.subprotocol());
        #[cfg(feature = "compression")]
        debug.field("compression", &self.compression());
        debug
            .field("close_reason", &self.close_reason())
            .finish_non_exhaustive()
    }
}

impl<C> fmt::Debug for SendHalf<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendHalf")
            .field("close_reason", &self.close_reason())
            .finish_non_exhaustive()
    }
}

impl<C> fmt::Debug for RecvHalf<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvHalf")
            .field("close_reason", &self.close_reason())
            .finish_non_exhaustive()
    }
}

// No field is ever pinned: the converter is only borrowed, so the halves move freely whatever
// the converter type.
impl<C> Unpin for Session<C> {}
impl<C> Unpin for SendHalf<C> {}
impl<C> Unpin for RecvHalf<C> {}

impl<C: Clone> Session<C> {
    /// Starts a session on a connection whose opening handshake is done, with no server's
    /// shutdown to follow.
    pub(crate) fn start(
        ws: Box<dyn Transport>,
        arrivals: Option<Arc<Arrivals>>,
        settings: Arc<Settings>,
        handshake: Handshake,
        converter: C,
    ) -> Self {
        Session::start_watched(
            ws,
            arrivals,
            settings,
            handshake,
            converter,
            Watch::default(),
        )
    }

    /// Starts a session that follows `shutdown`, that of the server that accepted it: the one
    /// place a session and its watchdog come to life. The watchdog is what passes the
    /// shutdown on, so it runs when there is one to follow, whatever the settings.
    pub(crate) fn start_watched(
        ws: Box<dyn Transport>,
        arrivals: Option<Arc<Arrivals>>,
        settings: Arc<Settings>,
        handshake: Handshake,
        converter: C,
        shutdown: Watch,
    ) -> Self {
        let watchdog = settings.needs_watchdog() || shutdown.is_some();
        let span = trace::session(handshake.path.as_deref(), handshake.subprotocol.as_deref());
        trace::event!(debug, &span, "session started");
        let link = Link::new(ws, settings, handshake, arrivals, span, shutdown);
        if watchdog {
            let run = watchdog::run(
                Arc::downgrade(&link),
                link.watchdog.clone(),
                link.shutdown.clone(),
            );
            tokio::spawn(trace::instrument(run, link.span.clone()));
        }
        Session {
            tx: SendHalf {
                link: link.clone(),
                converter: converter.clone(),
                closing: false,
            },
            rx: RecvHalf {
                link,
                converter,
                stream_done: false,
            },
        }
    }

    /// Puts the typed layer on a connection that another library set up (its own handshake,
    /// routing or TLS). The stream keeps the size limits it was created with; the ping
    /// interval, deadlines, fragment size and converter come from `config`. Needs a tokio
    /// runtime when a ping interval or deadline is set (the default).
    pub fn from_stream<S>(ws: WebSocketStream<S>, config: &Config<C>) -> Self
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let mut settings = Settings::clone(&config.settings);
        settings.max_message_size = ws.get_config().max_message_size.unwrap_or(usize::MAX);
        // Its reads are not typed-ws's to count, so its writes are not coalesced.
        Session::start(
            Box::new(ws),
            None,
            Arc::new(settings),
            Handshake::default(),
            config.converter.clone(),
        )
    }
}

#[cfg(feature = "tracing")]
impl<C: Converter> trace::Opened for Session<C> {
    fn subprotocol(&self) -> Option<&str> {
        Session::subprotocol(self)
    }

    fn converter_name(&self) -> &'static str {
        self.converter().name()
    }

    fn span(&self) -> &trace::Span {
        &self.tx.link.span
    }
}

#[cfg(all(test, feature = "compression"))]
impl<C> Session<C> {
    /// Whether a compressor is allocated now.
    pub(crate) fn holds_compressor(&self) -> bool {
        self.tx.link.holds_compressor()
    }
}

impl<C> Session<C> {
    /// Sends a frame and flushes it. Data frames longer than the configured fragment size go
    /// out as several frames. Sending a close frame starts the closing handshake; prefer
    /// [`Session::close`], which also waits for the peer's answer.
    ///
    /// When the peer pipelines, the flush of a data frame is put off while more of its
    /// messages wait to be received, so that the replies to a burst go out in one write: they
    /// are written when the next receive would wait, when the write buffer fills, or a
    /// millisecond or two after the send by the session's watchdog. With nothing waiting, the
    /// frame is written before `send` returns. Only sessions whose connection typed-ws set up
    /// (not [`Session::from_stream`]) and that have a watchdog (any of ping interval, timeout
    /// or send timeout on) put flushes off.
    ///
    /// Not cancel safe: cancelled, the frame was either not queued or queued whole and still
    /// goes out (see [cancel safety](Session#cancel-safety)).
    pub async fn send(&mut self, frame: Frame) -> Result<(), Error> {
        self.tx.send(frame).await
    }

    /// Queues a frame without flushing it, waiting only while the write buffer is full; then
    /// [`Session::flush`] sends a whole burst with one write. Queued frames also go out with
    /// the next send or when the write buffer fills.
    ///
    /// Cancel safe: returning means queued; cancelled, nothing was queued.
    pub async fn feed(&mut self, frame: Frame) -> Result<(), Error> {
        self.tx.feed(frame).await
    }

    /// Writes out every queued frame.
    ///
    /// Cancel safe: what is not written yet stays queued for the next write.
    pub async fn flush(&mut self) -> Result<(), Error> {
        self.tx.flush().await
    }

    /// Sends a text frame. Not cancel safe, as [`Session::send`].
    pub async fn send_text(&mut self, text: impl Into<Utf8Bytes>) -> Result<(), Error> {
        self.tx.send(Frame::Text(text.into())).await
    }

    /// Sends a binary frame. Not cancel safe, as [`Session::send`].
    pub async fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<(), Error> {
        self.tx.send(Frame::Binary(data.into())).await
    }

    /// Receives the next frame: a reassembled data message, a ping (already answered), a
    /// pong, or the peer's close frame, which comes once; after it, and after any error that
    /// ends the connection, every call gives [`Error::Closed`] (or [`Error::Timeout`]).
    ///
    /// Cancel safe: a frame is only taken from the connection when it is returned.
    pub async fn receive(&mut self) -> Result<Frame, Error> {
        self.rx.receive().await
    }

    /// Closes the session: sends a close frame with `reason`, then waits for the peer's close
    /// frame (discarding data that arrives first) until the connection ends, for at most
    /// 5 seconds (or the configured timeout, if shorter). Closing a closed session does nothing.
    ///
    /// [`SendHalf::close`] differs: it only sends the close frame and returns, because the
    /// receiving half, perhaps in another task, is the one that reads the peer's answer.
    ///
    /// Cancel safe: calling it again finishes the job and sends the close frame once.
    pub async fn close(&mut self, reason: CloseReason) -> Result<(), Error> {
        self.tx.link.close(reason).await
    }

    /// Why the session closed: the close frame that started the closing handshake, from
    /// either side, or 1006 when the connection dropped without one. `None` while open.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.tx.link.close_reason()
    }

    /// Splits the session into halves that can be moved to different tasks.
    pub fn split(self) -> (SendHalf<C>, RecvHalf<C>) {
        (self.tx, self.rx)
    }

    /// The converter of typed sends and receives.
    pub fn converter(&self) -> &C {
        &self.tx.converter
    }

    /// The request path: on the server, the path the client asked for (route on it); on the
    /// client, the path of the URL. `None` for a wrapped stream.
    pub fn path(&self) -> Option<&str> {
        self.tx.link.handshake.path.as_deref()
    }

    /// The query of the request's URL, without the `?`: on the server, what the client asked
    /// for (`since=5&epoch=2`); on the client, the URL's. `None` when there was none, and for
    /// a wrapped stream.
    pub fn query(&self) -> Option<&str> {
        self.tx.link.handshake.query.as_deref()
    }

    /// The subprotocol agreed in the handshake, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.tx.link.handshake.subprotocol.as_deref()
    }

    /// The permessage-deflate parameters agreed in the handshake; `None` when messages go
    /// uncompressed (see [`Config::compression`]).
    #[cfg(feature = "compression")]
    #[cfg_attr(docsrs, doc(cfg(feature = "compression")))]
    pub fn compression(&self) -> Option<PerMessageDeflate> {
        self.tx.link.handshake.compression
    }

    /// A handle that closes the session even after the session has moved away.
    pub(crate) fn link(&self) -> Arc<Link> {
        self.tx.link.clone()
    }
}

impl<C: Converter> Session<C> {
    /// Encodes `value` with the converter and sends it (text frame for JSON, binary for CBOR
    /// and MessagePack). An encode failure sends nothing and leaves the session usable.
    ///
    /// Not cancel safe, as [`Session::send`]: the value is encoded before anything waits, and
    /// the frame was either not queued or queued whole.
    pub async fn send_serialized<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.tx.send_serialized(value).await
    }

    /// Encodes `value` and queues it without flushing; see [`Session::feed`]. Cancel safe:
    /// returning means queued; cancelled, nothing was queued.
    pub async fn feed_serialized<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.tx.feed_serialized(value).await
    }

    /// Receives the next data message and decodes it with the converter, answering pings and
    /// skipping pongs on the way. A frame of the wrong type comes back in
    /// [`Error::UnexpectedFrame`], one that does not decode in [`Error::Decode`]; neither
    /// closes the session. The peer's close frame gives [`Error::Closed`].
    ///
    /// Cancel safe: a message is only taken from the connection when it is returned, and what
    /// has arrived of it so far waits for the next call.
    pub async fn receive_deserialized<T: DeserializeOwned>(&mut self) -> Result<T, Error> {
        self.rx.receive_deserialized().await
    }

    /// Receives the next data message the converter reads, without decoding it, as
    /// [`Session::receive_deserialized`] would (skipping pings and pongs; the peer's close and
    /// a frame of the wrong type are errors). For decoding values that borrow from the frame
    /// with [`BorrowingConverter::deserialize_borrowed`](crate::BorrowingConverter):
    ///
    /// ```no_run
    /// # async fn run(mut session: typed_ws::Session<typed_ws::MsgPackConverter>) -> Result<(), typed_ws::Error> {
    /// use typed_ws::BorrowingConverter;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Quote<'a> { symbol: &'a str, price: f64 }
    ///
    /// let frame = session.receive_message().await?;
    /// let quote: Quote<'_> = session.converter().deserialize_borrowed(&frame)?;
    /// println!("{} {}", quote.symbol, quote.price);
    /// # Ok(()) }
    /// ```
    ///
    /// Cancel safe, as [`Session::receive_deserialized`].
    pub async fn receive_message(&mut self) -> Result<Frame, Error> {
        self.rx.receive_message().await
    }

    /// The incoming messages, decoded, as a stream. Decode errors are items and the stream
    /// goes on after them; it ends when the session closes, after yielding the error if the
    /// session ended abnormally (dropped connection, timeout, protocol violation).
    pub fn incoming_deserialized<T: DeserializeOwned>(&mut self) -> Deserialized<'_, C, T> {
        self.rx.incoming_deserialized()
    }
}
