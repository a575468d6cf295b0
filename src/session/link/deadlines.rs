//! What the watchdog asks of a link: the send deadline, the timeout of a silent peer, and
//! whether and how the session ended.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::Error;
use crate::frame::{CloseCode, CloseReason};
use crate::trace;

use super::shutdown::ShutdownClose;
use super::transport::finish;
use super::{End, Link, State};

impl Link {
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
    pub(super) fn end_now(&self, st: &mut State, end: End) {
        st.end = Some(end);
        finish(st, &self.watchdog);
        for waker in [&st.recv_waker, &st.send_waker].into_iter().flatten() {
            waker.wake_by_ref();
        }
    }

    /// Closes the session after `after` without a frame from the peer, when that is so;
    /// otherwise returns when the timeout would expire, as things stand. `None` means the
    /// session has ended and the watchdog can stop.
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

    /// Whether the session has ended; the watchdog stops then.
    pub(crate) fn has_ended(&self) -> bool {
        self.lock().end.is_some()
    }
}
