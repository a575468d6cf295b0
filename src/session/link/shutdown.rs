//! A session's part in its server's graceful shutdown (see [`crate::shutdown`]).
//!
//! The close frame does not go out when the shutdown begins but at the session's next
//! receive, or at once if a receive is waiting: a handler that has received a message and is
//! working on its reply gets to send it, and the close follows it on the wire. What the
//! peer sent that no receive had handed out by then is discarded, as after
//! [`Session::close`](crate::Session::close).

use crate::frame::CloseReason;

use super::{End, Link, State};

/// Where a session is in its server's shutdown.
pub(super) enum ShutdownClose {
    /// The next receive sends this close frame.
    Due(CloseReason),
    /// Sent: receives discard what comes until the peer's answer ends the session.
    Sent,
}

impl Link {
    /// Has the next receive close the session with `reason`, and wakes a receive that is
    /// waiting. Nothing changes for a session that is closing already, from either side.
    pub(crate) fn begin_shutdown(&self, reason: CloseReason) {
        let mut st = self.lock();
        if st.end.is_some() || st.shutdown.is_some() || self.close_reason().is_some() {
            return;
        }
        st.shutdown = Some(ShutdownClose::Due(reason));
        if let Some(waker) = &st.recv_waker {
            waker.wake_by_ref();
        }
    }

    /// Sends the close frame that the shutdown made due. It goes behind the frames already
    /// queued, so replies sent or put off go out first; should the socket be full, it is owed
    /// a flush as a put-off reply is, which the receive's wait or the watchdog sees to.
    pub(super) fn send_shutdown_close(&self, st: &mut State) {
        let due = st
            .shutdown
            .take_if(|shutdown| matches!(shutdown, ShutdownClose::Due(_)));
        let Some(ShutdownClose::Due(reason)) = due else {
            return;
        };
        // A close under way since the shutdown began, the handler's or the peer's, stands:
        // the session ends as it would have.
        if self.close_reason().is_some() {
            return;
        }
        st.shutdown = Some(ShutdownClose::Sent);
        self.owe_flush(st);
        self.send_close_now(st, reason);
    }

    /// Ends the session now, for a shutdown whose deadline passed or a session dropped while
    /// its server shuts down: the close frame is sent unless a close is under way, and the
    /// connection lingers to end with a FIN (see `finish`).
    pub(crate) fn end_for_shutdown(&self, reason: CloseReason) {
        let mut st = self.lock();
        if st.end.is_some() {
            return;
        }
        if self.close_reason().is_none() {
            st.shutdown = Some(ShutdownClose::Due(reason));
            self.send_shutdown_close(&mut st);
        }
        self.end_now(&mut st, End::Closed);
    }
}
