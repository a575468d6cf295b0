//! The connection under a session, shared by its two halves and its watchdog task.
//!
//! There is no background task on the data path: whoever sends or receives polls the
//! tungstenite stream directly, under a mutex held only for the length of one poll, never
//! across an await. The watchdog task (see [`super::watchdog`]) takes the same mutex on its
//! ticks to send pings, to read what the peer sent while nobody was receiving, and to end a
//! session whose peer went silent or stopped taking what we write.
//!
//! tokio-tungstenite remembers one waker for reading and one for writing. So that the
//! watchdog and error paths never take a half's place in those slots, they poll with the
//! waker the half registered last ([`State::recv_waker`], [`State::send_waker`]).
//!
//! A peer that sends pings but never reads would make tungstenite queue a pong per ping
//! without bound. The link counts the pongs read while writing is blocked and, past
//! [`MAX_UNSENT_PONGS`], reads nothing more from that peer until they are written: its
//! further pings wait in the kernel, which bounds them, and the send deadline ends the session
//! if the peer never reads.
//!
//! Writes are coalesced when the peer pipelines. A send that finds more input already
//! waiting (messages the stream has counted as arrived, see [`Arrivals`], that the receiver
//! has not taken yet) leaves its frame in tungstenite's write buffer instead of flushing it:
//! the replies to a burst of requests then go out in one write. What a send leaves is flushed
//! at the latest when the next receive would wait, when tungstenite's write buffer passes its
//! 128 KiB, or by the watchdog [`FLUSH_DELAY`] after the send (rounded up to tokio's next
//! millisecond tick); a send that finds nothing
//! waiting flushes at once, so one request in flight is answered as fast as before, and a
//! task that only sends is never held back. The input is never read ahead to find out: a
//! close read early would make tungstenite answer it and refuse the replies still owed.
//!
//! The watchdog also releases the compressor of a session that has sent nothing for a while
//! (see [`crate::wire::deflate`]'s memory notes), and tells the link when the server that started it
//! shuts down (see [`shutdown`]).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Wake, Waker, ready};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::Data;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::budget::Overdrawn;
use crate::config::Settings;
use crate::error::{Chain, Error};
use crate::frame::{CloseCode, CloseReason, Frame};
use crate::handshake::Handshake;
use crate::shutdown::Watch;
use crate::trace::{self, Span};
use crate::wire::deflate::{Deflater, InflateError};
use crate::wire::{Arrivals, frames};

mod shutdown;

use shutdown::ShutdownClose;

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

/// How long [`Link::close`] waits for the peer's close frame when no timeout is configured.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// How long an ended session's connection may take, in the background, to flush the close
/// frame and read out what the peer still sends before it is dropped.
const LINGER: Duration = Duration::from_secs(2);

/// At most this many frames read ahead by the watchdog wait for the receiver.
pub(crate) const MAX_PENDING_FRAMES: usize = 1024;

/// At most this many pongs (131 bytes each at most) wait for a blocked socket before the
/// session stops reading from the peer. RFC 6455 lets a pong answer only the latest ping, so
/// nothing is lost by not reading more pings meanwhile.
pub(crate) const MAX_UNSENT_PONGS: usize = 32;

/// How long a send's flush may be put off while more input waits, when the receiver does not
/// come back for it.
pub(crate) const FLUSH_DELAY: Duration = Duration::from_millis(1);

pub(crate) struct Link {
    state: Mutex<State>,
    /// The close frame that started the closing handshake, in either direction, or 1006.
    close_reason: OnceLock<CloseReason>,
    pub(crate) settings: Arc<Settings>,
    pub(crate) handshake: Handshake,
    /// Wakes the watchdog early: when writing becomes blocked (a new deadline) or the link
    /// is dropped.
    pub(crate) watchdog: Arc<Notify>,
    /// The session's span, which its events and its watchdog are recorded in.
    pub(crate) span: Span,
    /// The shutdown of the server that started the session, if one did.
    pub(crate) shutdown: Watch,
    /// Wakes the watchdog when a put-off flush can go on, after the socket was full.
    watchdog_waker: Waker,
}

struct State {
    ws: Box<dyn Transport>,
    /// What the keep-alive task read while nobody was receiving, in order; a failure that
    /// ended the stream comes last.
    pending: VecDeque<Result<Frame, Error>>,
    pending_bytes: usize,
    recv_waker: Option<Waker>,
    send_waker: Option<Waker>,
    /// When the last frame arrived; kept only when a timeout is set.
    last_seen: Instant,
    /// Since when writing has waited for the peer to read; kept only when a send timeout is
    /// set.
    blocked_since: Option<Instant>,
    /// Pongs tungstenite queued since the last complete flush.
    unsent_pongs: usize,
    /// Messages the stream has read from the socket; `None` where writes are not coalesced
    /// (a stream typed-ws did not set up, or no watchdog to flush).
    arrivals: Option<Arc<Arrivals>>,
    /// Messages tungstenite has handed out.
    taken: u64,
    /// Since when a send has left its frame unflushed (see the module docs).
    owed_since: Option<Instant>,
    /// The watchdog knows that a flush is owed and will see to it.
    backstop_armed: bool,
    /// Compresses data messages, when the handshake agreed on permessage-deflate.
    deflater: Option<Deflater>,
    /// The server's shutdown, once the watchdog has seen it begin.
    shutdown: Option<ShutdownClose>,
    end: Option<End>,
}

/// Why the session can no longer be used.
#[derive(Debug, Clone, Copy)]
enum End {
    /// The stream ended: close handshake done, connection dropped, or a fatal read error.
    Closed,
    /// The watchdog ended the session: the peer was silent, or did not read, for this long.
    TimedOut(Duration),
}

impl Drop for Link {
    fn drop(&mut self) {
        // The watchdog may be asleep until its next tick; it has nothing left to watch.
        self.watchdog.notify_one();
        // Dropped while its server shuts down (the handler returned, or its task was dropped
        // at the deadline): the peer still gets the close, and a FIN rather than a reset.
        if let Some(reason) = self.shutdown.reason() {
            self.end_for_shutdown(reason);
        }
        if trace::ENABLED && self.close_reason.get().is_none() {
            trace::event!(debug, &self.span, "session dropped without a close frame");
        }
    }
}

impl Link {
    /// Wraps a connected stream. The watchdog, if the settings call for one, is the caller's
    /// to start.
    pub(crate) fn new(
        ws: Box<dyn Transport>,
        settings: Arc<Settings>,
        handshake: Handshake,
        arrivals: Option<Arc<Arrivals>>,
        span: Span,
        shutdown: Watch,
    ) -> Arc<Link> {
        // A flush put off needs the watchdog as its backstop.
        let arrivals = arrivals.filter(|_| settings.needs_watchdog());
        if let Some(arrivals) = &arrivals {
            arrivals.start();
        }
        let watchdog = Arc::new(Notify::new());
        Arc::new(Link {
            state: Mutex::new(State {
                ws,
                pending: VecDeque::new(),
                pending_bytes: 0,
                recv_waker: None,
                send_waker: None,
                last_seen: Instant::now(),
                blocked_since: None,
                unsent_pongs: 0,
                arrivals,
                taken: 0,
                owed_since: None,
                backstop_armed: false,
                deflater: handshake
                    .compression
                    .zip(settings.compression)
                    .map(|(agreed, ours)| Deflater::new(agreed, ours)),
                shutdown: None,
                end: None,
            }),
            close_reason: OnceLock::new(),
            settings,
            handshake,
            watchdog_waker: Waker::from(Arc::new(NotifyWaker(watchdog.clone()))),
            watchdog,
            span,
            shutdown,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; should a poll of the inner stream ever
        // panic, the state is still consistent enough to report errors rather than poison
        // every later call.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn close_reason(&self) -> Option<CloseReason> {
        self.close_reason.get().cloned()
    }

    /// Records the reason the session is closing and who started the close (`"local"`,
    /// `"peer"`, or `"connection"` when it dropped); the first one wins.
    fn record_close(&self, reason: CloseReason, by: &'static str) {
        if self.close_reason.set(reason).is_ok() {
            let recorded = || self.close_reason.get().into_iter();
            trace::event!(
                debug,
                &self.span,
                "session closed",
                code = recorded().map(|r| u16::from(r.code)).next(),
                reason = recorded().map(|r| trace::display(&r.reason)).next(),
                by = by,
            );
        }
    }

    fn abnormal() -> CloseReason {
        CloseReason::new(
            CloseCode::Abnormal,
            "the connection dropped without a close frame",
        )
    }

    fn end_error(&self, end: End) -> Error {
        match end {
            End::TimedOut(after) => Error::Timeout(after),
            End::Closed => Error::Closed(self.close_reason().unwrap_or_else(Self::abnormal)),
        }
    }

    // ---- receiving ----

    pub(crate) fn poll_receive(&self, cx: &mut Context<'_>) -> Poll<Result<Frame, Error>> {
        let mut st = self.lock();
        if matches!(st.shutdown, Some(ShutdownClose::Due(_))) {
            self.send_shutdown_close(&mut st);
        }
        loop {
            let item = ready!(self.poll_frame(&mut st, cx));
            // Once the shutdown's close is out, what the peer sent that no receive had handed
            // out is discarded: the receive reads on until the peer's answer ends the session.
            if item.is_err() || !matches!(st.shutdown, Some(ShutdownClose::Sent)) {
                return Poll::Ready(item);
            }
        }
    }

    /// The next frame, or the error that ended the session.
    fn poll_frame(&self, st: &mut State, cx: &mut Context<'_>) -> Poll<Result<Frame, Error>> {
        // Every message counts against the task's tokio budget, as a socket read does: with a
        // pipelining peer, messages come from buffers for thousands of receives in a row, and
        // the task would run on, and hold its replies, while other sessions wait.
        let Poll::Ready(coop) = tokio::task::coop::poll_proceed(cx) else {
            self.flush_before_waiting(st, cx);
            return Poll::Pending;
        };
        if let Some(item) = st.pending.pop_front() {
            if let Ok(frame) = &item {
                st.pending_bytes -= frame.payload().len();
            }
            coop.made_progress();
            self.charge(cx, &item);
            return Poll::Ready(item);
        }
        if let Some(end) = st.end {
            return Poll::Ready(Err(self.end_error(end)));
        }
        remember(&mut st.recv_waker, cx.waker());
        if st.unsent_pongs >= MAX_UNSENT_PONGS {
            // Wait until the pongs are written; tokio-tungstenite keeps one write waker, so it
            // must wake the sending half as well as this receiver.
            let waker = wake_all([Some(cx.waker()), st.send_waker.as_ref()]);
            let flushed = Pin::new(&mut *st.ws).poll_flush(&mut Context::from_waker(&waker));
            // A failed flush leaves the connection broken, which the read reports.
            let _flushed = ready!(self.track_write(st, flushed, true));
        }
        let Poll::Ready(item) = Pin::new(&mut *st.ws).poll_next(cx) else {
            self.flush_before_waiting(st, cx);
            return Poll::Pending;
        };
        coop.made_progress();
        let item = self.on_read(st, item);
        self.charge(cx, &item);
        Poll::Ready(item)
    }

    /// Charges a large message that came compressed to the task's tokio budget by its
    /// size, a unit per [`BYTES_PER_UNIT`], beyond the one every message costs: as if it had
    /// come from the socket in reads of that size. A peer whose kilobyte frames inflate to
    /// megabytes would otherwise have the task decode, answer and compress many of them in
    /// one go, milliseconds each, while the other sessions on its worker wait. Once the
    /// budget is spent, the next receive yields. Uncompressed messages paid for their size
    /// in socket reads already.
    fn charge(&self, cx: &mut Context<'_>, item: &Result<Frame, Error>) {
        let Ok(frame) = item else { return };
        if self.handshake.compression.is_none() {
            return;
        }
        for _ in 0..frame.payload().len() / BYTES_PER_UNIT {
            match tokio::task::coop::poll_proceed(cx) {
                Poll::Ready(coop) => coop.made_progress(),
                // Spent: tokio has arranged for the task to run again after the others.
                Poll::Pending => return,
            }
        }
    }

    /// The receiver is about to wait: the replies it put off go out now. Should the socket be
    /// full, the receiver is woken to try again, as are the sender, whose waker
    /// tokio-tungstenite would otherwise forget, and the watchdog, which sees to the flush if
    /// the receiver has stopped receiving by then.
    fn flush_before_waiting(&self, st: &mut State, cx: &mut Context<'_>) {
        if st.owed_since.is_some() {
            let waker = wake_all([
                Some(cx.waker()),
                st.send_waker.as_ref(),
                Some(&self.watchdog_waker),
            ]);
            let flushed = Pin::new(&mut *st.ws).poll_flush(&mut Context::from_waker(&waker));
            let _flushed = self.track_write(st, flushed, true);
        }
    }

    /// Turns what the stream yielded into a frame or an error, keeping the session state.
    fn on_read(
        &self,
        st: &mut State,
        item: Option<Result<Message, WsError>>,
    ) -> Result<Frame, Error> {
        match item {
            Some(Ok(message)) => {
                st.taken += 1;
                if self.settings.timeout.is_some() {
                    st.last_seen = Instant::now();
                }
                let frame = frame_of(message)?;
                match &frame {
                    Frame::Close(reason) => {
                        self.record_close(
                            reason
                                .clone()
                                .unwrap_or_else(|| CloseReason::new(CloseCode::NoStatus, "")),
                            "peer",
                        );
                        // tungstenite queued the reply; send it now rather than with the next
                        // write, which may never come.
                        self.flush_now(st);
                    }
                    Frame::Ping(_) => {
                        st.unsent_pongs += 1;
                        self.flush_now(st);
                    }
                    _ => {}
                }
                Ok(frame)
            }
            Some(Err(e)) => {
                // tokio-tungstenite yields nothing more after an error.
                let error = self.read_failed(st, e);
                trace::event!(
                    debug,
                    &self.span,
                    "session failed",
                    error = trace::display(Chain(&error))
                );
                finish(st, &self.watchdog);
                Err(error)
            }
            None => {
                self.record_close(Self::abnormal(), "connection");
                finish(st, &self.watchdog);
                Err(self.end_error(End::Closed))
            }
        }
    }

    /// Maps a read error, telling the peer why with the close code that fits.
    fn read_failed(&self, st: &mut State, e: WsError) -> Error {
        let (error, code, reason) = match e {
            WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => (
                Error::TooBig {
                    size,
                    limit: max_size,
                },
                CloseCode::TooBig,
                format!("message of {size} bytes is over the limit of {max_size} bytes"),
            ),
            WsError::Utf8(_) => (
                Error::InvalidUtf8,
                CloseCode::InvalidPayload,
                "invalid UTF-8 in a text message".to_owned(),
            ),
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                self.record_close(Self::abnormal(), "connection");
                return self.end_error(End::Closed);
            }
            WsError::Io(e) => match read_failure(&e) {
                Some(ReadFailure::Inflate(InflateError::TooBig { size, limit })) => (
                    Error::TooBig {
                        size: *size,
                        limit: *limit,
                    },
                    CloseCode::TooBig,
                    format!("compressed message inflates past the limit of {limit} bytes"),
                ),
                Some(ReadFailure::Inflate(InflateError::Invalid(why))) => (
                    Error::InvalidCompressed(why.clone()),
                    CloseCode::InvalidPayload,
                    format!("invalid compressed data: {why}"),
                ),
                Some(
                    ReadFailure::Overdrawn(overdrawn)
                    | ReadFailure::Inflate(InflateError::Overdrawn(overdrawn)),
                ) => (
                    Error::Overloaded {
                        limit: overdrawn.limit,
                    },
                    CloseCode::TryAgainLater,
                    "the server holds too many unfinished messages; try again later".to_owned(),
                ),
                None => {
                    self.record_close(Self::abnormal(), "connection");
                    return Error::Io(e);
                }
            },
            other => {
                let text = other.to_string();
                (Error::protocol(other), CloseCode::ProtocolError, text)
            }
        };
        self.send_close_now(st, CloseReason::new(code, reason));
        error
    }

    /// Reads, without waiting, what the peer has sent while nobody is receiving, so that its
    /// pings are answered and its pongs and close are seen; data waits in `pending` for the
    /// receiver, up to one maximum-size message or [`MAX_PENDING_FRAMES`]. Only the keep-alive
    /// task does this, once a tick: reading the peer's close makes tungstenite refuse further
    /// data frames, which must not happen on every send.
    pub(crate) fn read_ahead(&self) {
        let mut guard = self.lock();
        let st = &mut *guard;
        let waker = st
            .recv_waker
            .clone()
            .unwrap_or_else(|| Waker::noop().clone());
        let mut cx = Context::from_waker(&waker);
        let mut read_any = false;
        while st.end.is_none() && st.unsent_pongs < MAX_UNSENT_PONGS {
            if st.pending.len() >= MAX_PENDING_FRAMES
                || st.pending_bytes >= self.settings.max_message_size
            {
                // The peer is clearly alive; the receiver is what is slow.
                st.last_seen = Instant::now();
                break;
            }
            let Poll::Ready(item) = Pin::new(&mut *st.ws).poll_next(&mut cx) else {
                break;
            };
            let item = self.on_read(st, item);
            if let Ok(frame) = &item {
                st.pending_bytes += frame.payload().len();
            }
            st.pending.push_back(item);
            read_any = true;
        }
        if read_any {
            waker.wake();
        }
    }

    // ---- sending ----

    /// Sends one frame and, with `flush`, flushes it; without, the frame is only queued (see
    /// [`Session::feed`](crate::Session::feed)). `frame` is taken once it is queued, so the
    /// future that polls this can be polled again until it is flushed. One lock covers the
    /// whole step, since a burst pays it per message.
    pub(crate) fn poll_send(
        &self,
        cx: &mut Context<'_>,
        frame: &mut Option<Frame>,
        flush: bool,
    ) -> Poll<Result<(), Error>> {
        let mut st = self.lock();
        if let Some(end) = st.end {
            return Poll::Ready(Err(self.end_error(end)));
        }
        remember(&mut st.send_waker, cx.waker());
        if frame.is_some() {
            let ready = Pin::new(&mut *st.ws).poll_ready(cx);
            if let Err(e) = ready!(self.track_write(&mut st, ready, false)) {
                return Poll::Ready(Err(self.send_failed(e)));
            }
            let Some(frame) = frame.take() else {
                unreachable!("checked above")
            };
            let data = matches!(frame, Frame::Text(_) | Frame::Binary(_));
            if let Err(e) = self.queue(&mut st, frame) {
                return Poll::Ready(Err(e));
            }
            if flush && data && self.put_off_flush(&mut st) {
                return Poll::Ready(Ok(()));
            }
        }
        if !flush {
            return Poll::Ready(Ok(()));
        }
        let flushed = Pin::new(&mut *st.ws).poll_flush(cx);
        Poll::Ready(
            ready!(self.track_write(&mut st, flushed, true)).map_err(|e| self.send_failed(e)),
        )
    }

    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut st = self.lock();
        if let Some(end) = st.end {
            return Poll::Ready(Err(self.end_error(end)));
        }
        remember(&mut st.send_waker, cx.waker());
        let ready = Pin::new(&mut *st.ws).poll_ready(cx);
        Poll::Ready(
            ready!(self.track_write(&mut st, ready, false)).map_err(|e| self.send_failed(e)),
        )
    }

    pub(crate) fn start_send(&self, frame: Frame) -> Result<(), Error> {
        let mut st = self.lock();
        if let Some(end) = st.end {
            return Err(self.end_error(end));
        }
        self.queue(&mut st, frame)
    }

    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut st = self.lock();
        if let Some(end) = st.end {
            return Poll::Ready(Err(self.end_error(end)));
        }
        remember(&mut st.send_waker, cx.waker());
        let flushed = Pin::new(&mut *st.ws).poll_flush(cx);
        Poll::Ready(
            ready!(self.track_write(&mut st, flushed, true)).map_err(|e| self.send_failed(e)),
        )
    }

    /// Hands a frame to tungstenite's write buffer, split into fragments when configured. All
    /// fragments are queued under one lock, so no other data frame can come between them and a
    /// cancelled send never leaves half a message on the wire.
    fn queue(&self, st: &mut State, frame: Frame) -> Result<(), Error> {
        let message = match frame {
            Frame::Close(reason) => {
                let reason = reason.map(check_close).transpose()?;
                self.record_close(
                    reason
                        .clone()
                        .unwrap_or_else(|| CloseReason::new(CloseCode::NoStatus, "")),
                    "local",
                );
                Message::Close(reason.map(Into::into))
            }
            Frame::Ping(data) | Frame::Pong(data) if data.len() > 125 => {
                return Err(Error::Unsendable(format!(
                    "a control frame carries at most 125 bytes, not {}",
                    data.len()
                )));
            }
            Frame::Text(text) => {
                if let Some(compressed) = self.compress(st, text.as_bytes()) {
                    return self.queue_fragments(st, Data::Text, compressed, true);
                }
                match self.settings.fragment_size {
                    Some(size) if text.len() > size => {
                        return self.queue_fragments(st, Data::Text, text.into(), false);
                    }
                    _ => Message::Text(text),
                }
            }
            Frame::Binary(data) => {
                if let Some(compressed) = self.compress(st, &data) {
                    return self.queue_fragments(st, Data::Binary, compressed, true);
                }
                match self.settings.fragment_size {
                    Some(size) if data.len() > size => {
                        return self.queue_fragments(st, Data::Binary, data, false);
                    }
                    _ => Message::Binary(data),
                }
            }
            other => Message::from(other),
        };
        Pin::new(&mut *st.ws)
            .start_send(message)
            .map_err(|e| self.send_failed(e))
    }

    /// Compresses a data message's payload when the handshake agreed on it. A compressor
    /// that comes to life wakes the watchdog, which releases it once the session is idle.
    fn compress(&self, st: &mut State, data: &[u8]) -> Option<Bytes> {
        let deflater = st.deflater.as_mut()?;
        let was_live = deflater.is_live();
        let compressed = deflater.compress(data);
        if !was_live && deflater.is_live() {
            self.watchdog.notify_one();
        }
        compressed
    }

    /// The watchdog's release of a compressor that has been idle; returns when to look again.
    pub(crate) fn release_idle_compressor(&self) -> Option<Instant> {
        self.lock()
            .deflater
            .as_mut()?
            .release_if_idle(Instant::now())
    }

    /// Leaves the frame just queued unflushed when more input waits for the receiver, whose
    /// next receive, or the watchdog, will flush it (see the module docs). Returns whether it
    /// did.
    fn put_off_flush(&self, st: &mut State) -> bool {
        let Some(arrivals) = &st.arrivals else {
            return false;
        };
        if st.pending.is_empty() && arrivals.count() <= st.taken {
            return false;
        }
        self.owe_flush(st);
        true
    }

    /// Notes that what is queued is owed a flush, which the receiver's next wait or the
    /// watchdog's backstop will see to.
    fn owe_flush(&self, st: &mut State) {
        if st.owed_since.is_none() {
            st.owed_since = Some(Instant::now());
            if !st.backstop_armed {
                st.backstop_armed = true;
                self.watchdog.notify_one();
            }
        }
    }

    /// The watchdog's backstop for flushes put off: flushes what has been owed for
    /// [`FLUSH_DELAY`], or what a full socket held back, and returns when to look again;
    /// `None` when nothing is owed, or when the socket is full and will wake the watchdog once
    /// it takes more.
    pub(crate) fn flush_owed(&self) -> Option<Instant> {
        let mut st = self.lock();
        let Some(since) = st.owed_since else {
            st.backstop_armed = false;
            return None;
        };
        let due = since + FLUSH_DELAY;
        if Instant::now() < due {
            return Some(due);
        }
        let waker = wake_all([Some(&self.watchdog_waker), st.send_waker.as_ref()]);
        let flushed = Pin::new(&mut *st.ws).poll_flush(&mut Context::from_waker(&waker));
        let _flushed = self.track_write(&mut st, flushed, true);
        if st.owed_since.is_none() {
            st.backstop_armed = false;
        }
        None
    }

    /// Queues a message as raw frames: fragments of the configured size, or one frame, with
    /// RSV1 on the first when its payload is `compressed`.
    fn queue_fragments(
        &self,
        st: &mut State,
        kind: Data,
        data: Bytes,
        compressed: bool,
    ) -> Result<(), Error> {
        for frame in frames::message(kind, data, compressed, self.settings.fragment_size) {
            Pin::new(&mut *st.ws)
                .start_send(Message::Frame(frame))
                .map_err(|e| self.send_failed(e))?;
        }
        Ok(())
    }

    fn send_failed(&self, e: WsError) -> Error {
        match e {
            WsError::AlreadyClosed
            | WsError::ConnectionClosed
            | WsError::Protocol(ProtocolError::SendAfterClosing) => {
                Error::Closed(self.close_reason().unwrap_or_else(Self::abnormal))
            }
            WsError::Io(e) => {
                self.record_close(Self::abnormal(), "connection");
                Error::Io(e)
            }
            other => Error::protocol(other),
        }
    }

    /// Queues a close frame and makes one attempt to flush it, for paths that cannot wait
    /// (a failed read, a timeout). A close that cannot be flushed now goes out with the next
    /// flush, if any.
    fn send_close_now(&self, st: &mut State, reason: CloseReason) {
        let reason = reason.truncated();
        self.record_close(reason.clone(), "local");
        if Pin::new(&mut *st.ws)
            .start_send(Message::Close(Some(reason.into())))
            .is_ok()
        {
            self.flush_now(st);
        }
    }

    /// Queues a ping for the watchdog; it is flushed now if the socket takes it, or with the
    /// next flush.
    pub(crate) fn send_ping(&self) {
        let mut st = self.lock();
        if st.end.is_none()
            && Pin::new(&mut *st.ws)
                .start_send(Message::Ping(Bytes::new()))
                .is_ok()
        {
            self.flush_now(&mut st);
        }
    }

    /// Notes how a write poll went: `Pending` means the peer is not taking what we write,
    /// which starts the send deadline; `Ready` ends it, and a finished flush (`flushed`) has
    /// written every pong.
    fn track_write<T>(&self, st: &mut State, poll: Poll<T>, flushed: bool) -> Poll<T> {
        match &poll {
            Poll::Pending => {
                if st.blocked_since.is_none() && self.settings.send_timeout.is_some() {
                    st.blocked_since = Some(Instant::now());
                    self.watchdog.notify_one();
                }
            }
            Poll::Ready(_) => {
                st.blocked_since = None;
                if flushed {
                    st.unsent_pongs = 0;
                    st.owed_since = None;
                }
            }
        }
        poll
    }

    /// One flush attempt with the sending half's waker, so that its slot keeps the right
    /// waker. The error, if any, surfaces to the halves on their next call.
    fn flush_now(&self, st: &mut State) {
        let waker = st
            .send_waker
            .clone()
            .unwrap_or_else(|| Waker::noop().clone());
        let flushed = Pin::new(&mut *st.ws).poll_flush(&mut Context::from_waker(&waker));
        let _ = self.track_write(st, flushed, true);
    }

    /// When the send deadline expires, if writing is blocked now.
    pub(crate) fn send_deadline(&self) -> Option<Instant> {
        self.send_deadline_of(&self.lock())
    }

    fn send_deadline_of(&self, st: &State) -> Option<Instant> {
        Some(st.blocked_since? + self.settings.send_timeout?)
    }

    /// Ends the session when writing has been blocked for the send timeout; a write that has
    /// become possible meanwhile (nobody was waiting to retry it) clears the deadline.
    /// Returns whether the session has ended.
    pub(crate) fn check_send_deadline(&self) -> bool {
        let mut st = self.lock();
        if st.end.is_some() {
            return true;
        }
        let (Some(after), Some(deadline)) =
            (self.settings.send_timeout, self.send_deadline_of(&st))
        else {
            return false;
        };
        self.flush_now(&mut st);
        if st.blocked_since.is_none() || Instant::now() < deadline {
            return false;
        }
        let secs = after.as_secs_f64();
        let reason = format!("the peer did not read what was sent for {secs}s");
        self.time_out(&mut st, after, reason);
        true
    }

    /// Ends the session for a deadline: a 1011 close frame is attempted, the connection
    /// dropped, and both halves woken to see [`Error::Timeout`].
    fn time_out(&self, st: &mut State, after: Duration, reason: String) {
        trace::event!(
            debug,
            &self.span,
            "session timed out",
            after = trace::debug(after),
            reason = trace::display(&reason)
        );
        self.send_close_now(st, CloseReason::new(CloseCode::InternalError, reason));
        self.end_now(st, End::TimedOut(after));
    }

    /// Ends the session from outside its halves (the watchdog, a drop) and lets the
    /// connection go; both halves are woken to see `end`.
    fn end_now(&self, st: &mut State, end: End) {
        st.end = Some(end);
        finish(st, &self.watchdog);
        for waker in [&st.recv_waker, &st.send_waker].into_iter().flatten() {
            waker.wake_by_ref();
        }
    }

    /// Closes the session after `after` without a frame from the peer, when that is so;
    /// otherwise returns when the timeout would expire, as things stand. `None` means the
    /// session has ended and the keep-alive task can stop.
    pub(crate) fn check_timeout(&self, after: Duration) -> Option<Instant> {
        let mut st = self.lock();
        if st.end.is_some() {
            return None;
        }
        let deadline = st.last_seen + after;
        if Instant::now() < deadline {
            return Some(deadline);
        }
        let secs = after.as_secs_f64();
        self.time_out(
            &mut st,
            after,
            format!("no frame from the peer for {secs}s"),
        );
        None
    }

    /// What made the session fail, once it has ended: a timeout, or a close frame (from
    /// either side) with a code other than 1000, 1001 or none. `None` for a session that is
    /// open, ended well, was closed by its server's shutdown (whatever the code), or whose
    /// connection dropped without a close frame (1006; see
    /// [`Stage::Session`](crate::Stage::Session) for why).
    pub(crate) fn failure(&self) -> Option<Error> {
        let st = self.lock();
        if let Some(End::TimedOut(after)) = st.end {
            return Some(Error::Timeout(after));
        }
        if matches!(st.shutdown, Some(ShutdownClose::Sent)) {
            return None;
        }
        let reason = self.close_reason()?;
        match reason.code {
            CloseCode::Normal
            | CloseCode::GoingAway
            | CloseCode::NoStatus
            | CloseCode::Abnormal => None,
            _ => Some(Error::Closed(reason)),
        }
    }

    #[cfg(test)]
    pub(crate) fn holds_compressor(&self) -> bool {
        self.lock().deflater.as_ref().is_some_and(Deflater::is_live)
    }

    /// Whether the session has ended; the watchdog stops then.
    pub(crate) fn has_ended(&self) -> bool {
        self.lock().end.is_some()
    }

    /// Sends a close frame and waits for the peer's (discarding data that arrives first) until
    /// the connection ends, for at most [`CLOSE_WAIT`] or the configured timeout if shorter. Closing a
    /// session that is already closed does nothing.
    pub(crate) async fn close(&self, reason: CloseReason) -> Result<(), Error> {
        let mut frame = Some(Frame::Close(Some(reason)));
        match std::future::poll_fn(|cx| self.poll_send(cx, &mut frame, true)).await {
            Ok(()) | Err(Error::Closed(_)) | Err(Error::Timeout(_)) => {}
            Err(e) => return Err(e),
        }
        let wait = self
            .settings
            .timeout
            .map_or(CLOSE_WAIT, |t| t.min(CLOSE_WAIT));
        if tokio::time::timeout(wait, self.drain()).await.is_err() {
            // The peer never answered; stop waiting for it and drop the connection.
            self.record_close(Self::abnormal(), "connection");
            finish(&mut self.lock(), &self.watchdog);
        }
        Ok(())
    }

    /// Receives, discarding what comes, until the session ends: after our close frame, the
    /// wait for the peer's.
    pub(crate) async fn drain(&self) {
        while std::future::poll_fn(|cx| self.poll_receive(cx))
            .await
            .is_ok()
        {}
    }
}

/// Ends the session and lets the connection go. On the server this is what closes TCP after
/// the closing handshake, as RFC 6455 wants; the client learns of it by the end of its stream.
/// The connection lingers in the background (see [`linger`]) so that it ends with a FIN
/// rather than a reset. The watchdog is woken to see the end: it may be waiting for nothing
/// else (no ping, no timeout), and a session that is held after it ended must not keep it.
fn finish(st: &mut State, watchdog: &Notify) {
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

/// The payload bytes that cost the receiving task one more unit of its tokio budget.
const BYTES_PER_UNIT: usize = 8 << 10;

/// Why the layers under tungstenite ended a read, when one of them did: they can only say it
/// inside an I/O error.
enum ReadFailure<'a> {
    Inflate(&'a InflateError),
    Overdrawn(&'a Overdrawn),
}

fn read_failure(e: &std::io::Error) -> Option<ReadFailure<'_>> {
    let inner = e.get_ref()?;
    if let Some(inflate) = inner.downcast_ref::<InflateError>() {
        return Some(ReadFailure::Inflate(inflate));
    }
    inner
        .downcast_ref::<Overdrawn>()
        .map(ReadFailure::Overdrawn)
}

/// The frame a read gave. Fails only for `Message::Frame`, a raw frame that tungstenite never
/// hands out when reading.
fn frame_of(message: Message) -> Result<Frame, Error> {
    Ok(match message {
        Message::Text(text) => Frame::Text(text),
        Message::Binary(data) => Frame::Binary(data),
        Message::Ping(data) => Frame::Ping(data),
        Message::Pong(data) => Frame::Pong(data),
        Message::Close(close) => Frame::Close(close.map(CloseReason::from)),
        Message::Frame(_) => {
            return Err(Error::Protocol("a raw frame is not a message".into()));
        }
    })
}

/// Validates a close frame the caller asked to send.
fn check_close(reason: CloseReason) -> Result<CloseReason, Error> {
    if !reason.code.is_sendable() {
        return Err(Error::Unsendable(format!(
            "close code {} may not be sent",
            reason.code
        )));
    }
    Ok(reason.truncated())
}

/// Wakes the watchdog.
struct NotifyWaker(Arc<Notify>);

impl Wake for NotifyWaker {
    fn wake(self: Arc<Self>) {
        self.0.notify_one();
    }
}

/// One waker for several tasks, for the one write waker that tokio-tungstenite keeps.
fn wake_all<const N: usize>(wakers: [Option<&Waker>; N]) -> Waker {
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

fn remember(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(known) if known.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}
