//! The receiving side of a link: frames out of tungstenite, the errors that end a session
//! with the close code that fits, and what the watchdog reads while nobody receives.

use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::budget::Overdrawn;
use crate::error::{Chain, Error};
use crate::frame::{CloseCode, CloseReason, Frame};
use crate::trace;
#[cfg(feature = "compression")]
use crate::wire::deflate::InflateError;

use super::shutdown::ShutdownClose;
use super::transport::{finish, remember, wake_all};
use super::{End, Link, MAX_PENDING_FRAMES, MAX_UNSENT_PONGS, State};

impl Link {
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
        if !self.compressed() {
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
                #[cfg(feature = "compression")]
                Some(ReadFailure::TooBig { size, limit }) => (
                    Error::TooBig { size, limit },
                    CloseCode::TooBig,
                    format!("compressed message inflates past the limit of {limit} bytes"),
                ),
                #[cfg(feature = "compression")]
                Some(ReadFailure::Invalid(why)) => (
                    Error::InvalidCompressed(why.to_owned()),
                    CloseCode::InvalidPayload,
                    format!("invalid compressed data: {why}"),
                ),
                Some(ReadFailure::Overdrawn(overdrawn)) => (
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
    /// receiver, up to one maximum-size message or [`MAX_PENDING_FRAMES`]. Only the watchdog
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
}

/// The payload bytes that cost the receiving task one more unit of its tokio budget.
const BYTES_PER_UNIT: usize = 8 << 10;

/// Why the layers under tungstenite ended a read, when one of them did: they can only say it
/// inside an I/O error.
enum ReadFailure<'a> {
    /// A compressed message inflated past the size limit: `size` bytes so far.
    #[cfg(feature = "compression")]
    TooBig { size: usize, limit: usize },
    /// A compressed message's payload is not DEFLATE data.
    #[cfg(feature = "compression")]
    Invalid(&'a str),
    /// The budget for unfinished messages is spent.
    Overdrawn(&'a Overdrawn),
}

fn read_failure(e: &std::io::Error) -> Option<ReadFailure<'_>> {
    let inner = e.get_ref()?;
    #[cfg(feature = "compression")]
    if let Some(inflate) = inner.downcast_ref::<InflateError>() {
        return Some(match inflate {
            InflateError::TooBig { size, limit } => ReadFailure::TooBig {
                size: *size,
                limit: *limit,
            },
            InflateError::Invalid(why) => ReadFailure::Invalid(why),
            InflateError::Overdrawn(overdrawn) => ReadFailure::Overdrawn(overdrawn),
        });
    }
    inner
        .downcast_ref::<Overdrawn>()
        .map(ReadFailure::Overdrawn)
}

/// The frame a read gave. Fails only for `Message::Frame`, a raw frame that tungstenite never
/// hands out when reading.
#[inline]
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
