//! The sending side of a link: frames into tungstenite's write buffer (compressed or in
//! fragments when the settings say so), and flushes, put off while the peer pipelines (see
//! the parent module).

use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use bytes::Bytes;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::Data;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::error::Error;
use crate::frame::{CloseCode, CloseReason, Frame};
use crate::wire::{Alone, frames};

use super::transport::{remember, wake_all};
use super::{FLUSH_DELAY, Link, State};

impl Link {
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

    /// How this session compresses each message on its own, when it does: what a message
    /// shared among sessions may be compressed once for ([`Link::start_send_compressed`]).
    #[cfg(feature = "compression")]
    pub(crate) fn compresses_alone(&self) -> Option<Alone> {
        Alone::of(self.handshake.compression?, self.settings.compression?)
    }

    /// Without compression, no session compresses.
    #[cfg(not(feature = "compression"))]
    pub(crate) fn compresses_alone(&self) -> Option<Alone> {
        None
    }

    /// Queues data `frame` as `compressed`, its payload compressed as
    /// [`Link::compresses_alone`] says this session compresses: the same bytes its own
    /// compressor would make, made once for many sessions.
    pub(crate) fn start_send_compressed(
        &self,
        frame: &Frame,
        compressed: Bytes,
    ) -> Result<(), Error> {
        let mut st = self.lock();
        if let Some(end) = st.end {
            return Err(self.end_error(end));
        }
        let kind = match frame {
            Frame::Text(_) => Data::Text,
            Frame::Binary(_) => Data::Binary,
            _ => {
                return Err(Error::Unsendable(
                    "only data frames go compressed".to_owned(),
                ));
            }
        };
        self.queue_fragments(&mut st, kind, compressed, true)
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
    pub(super) fn queue(&self, st: &mut State, frame: Frame) -> Result<(), Error> {
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
    #[cfg(feature = "compression")]
    pub(super) fn compress(&self, st: &mut State, data: &[u8]) -> Option<Bytes> {
        let deflater = st.deflater.as_mut()?;
        let was_live = deflater.is_live();
        let compressed = deflater.compress(data);
        if !was_live && deflater.is_live() {
            self.watchdog.notify_one();
        }
        compressed
    }

    /// Without compression, every message goes out as it is.
    #[cfg(not(feature = "compression"))]
    pub(super) fn compress(&self, _st: &mut State, _data: &[u8]) -> Option<Bytes> {
        None
    }

    /// The watchdog's release of a compressor that has been idle; returns when to look again.
    #[cfg(feature = "compression")]
    pub(crate) fn release_idle_compressor(&self) -> Option<Instant> {
        self.lock()
            .deflater
            .as_mut()?
            .release_if_idle(Instant::now())
    }

    /// Without compression there is no compressor to release.
    #[cfg(not(feature = "compression"))]
    pub(crate) fn release_idle_compressor(&self) -> Option<Instant> {
        None
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
    pub(super) fn owe_flush(&self, st: &mut State) {
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
    pub(super) fn send_close_now(&self, st: &mut State, reason: CloseReason) {
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
    pub(super) fn track_write<T>(&self, st: &mut State, poll: Poll<T>, flushed: bool) -> Poll<T> {
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
    pub(super) fn flush_now(&self, st: &mut State) {
        let waker = st
            .send_waker
            .clone()
            .unwrap_or_else(|| Waker::noop().clone());
        let flushed = Pin::new(&mut *st.ws).poll_flush(&mut Context::from_waker(&waker));
        let _ = self.track_write(st, flushed, true);
    }

    #[cfg(all(test, feature = "compression"))]
    pub(crate) fn holds_compressor(&self) -> bool {
        self.lock()
            .deflater
            .as_ref()
            .is_some_and(|deflater| deflater.is_live())
    }
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
