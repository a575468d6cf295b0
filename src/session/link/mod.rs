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
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::Waker;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::Settings;
use crate::error::Error;
use crate::frame::{CloseCode, CloseReason, Frame};
use crate::handshake::Handshake;
use crate::shutdown::Watch;
use crate::trace::{self, Span};
use crate::wire::Arrivals;
#[cfg(feature = "compression")]
use crate::wire::deflate::Deflater;

mod deadlines;
mod receive;
mod send;
mod shutdown;
mod transport;

use shutdown::ShutdownClose;
pub(crate) use transport::Transport;
use transport::{NotifyWaker, finish};

/// How long [`Link::close`] waits for the peer's close frame when no timeout is configured.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

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
    /// What the watchdog read while nobody was receiving, in order; a failure that
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
    #[cfg(feature = "compression")]
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
                #[cfg(feature = "compression")]
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

    /// Whether the handshake agreed on compression.
    pub(crate) fn compressed(&self) -> bool {
        #[cfg(feature = "compression")]
        return self.handshake.compression.is_some();
        #[cfg(not(feature = "compression"))]
        false
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
