//! Graceful shutdown, one mechanism for `Server::serve` and `typed_ws::axum::serve`.
//!
//! Each serve call has one [`Shutdown`], whose [`Phase`] goes from serving to closing to
//! dropping, each once. Two kinds of watchers follow it:
//!
//! - the tasks the server spawns, one per connection (and, on the axum path, one per
//!   session), each run through [`Shutdown::track`]: the server counts them, waits for them
//!   while closing, and drops them when the deadline passes;
//! - every session the server starts, through a [`Watch`] that its link and watchdog hold
//!   (see [`crate::session::link`]): once closing, the session's next receive sends the close
//!   frame, behind the replies already sent or queued, and waits for the peer's answer; a
//!   session dropped meanwhile, or still open at the deadline, sends the close frame if it has
//!   not and lets its connection go. A session that left its task (moved into one the handler
//!   spawned) is reached this way too, though the server does not wait for it.
//!
//! A phase is a `watch` value, so a session that starts after the shutdown began (its
//! handshake was under way) sees it at once, and no watcher can miss a change.

use std::future::{Future, pending, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::sync::watch;

use crate::frame::{CloseCode, CloseReason};
use crate::session::link::Link;

/// The reason sessions close with when none is chosen: 1001, going away.
pub(crate) fn default_reason() -> CloseReason {
    CloseReason::new(CloseCode::GoingAway, "the server is shutting down")
}

/// Where a serve call is in its shutdown.
#[derive(Debug, Clone)]
pub(crate) enum Phase {
    Serving,
    /// Every session closes with this reason at its next receive.
    Closing(CloseReason),
    /// The deadline passed: what is left is dropped, after this close frame if it has not
    /// been sent.
    Dropping(CloseReason),
}

impl Phase {
    /// The reason sessions close with, once the shutdown has begun.
    pub(crate) fn reason(&self) -> Option<&CloseReason> {
        match self {
            Phase::Serving => None,
            Phase::Closing(reason) | Phase::Dropping(reason) => Some(reason),
        }
    }
}

/// A serve call's shutdown, shared with the tasks it spawns. Cheap to clone. On the axum path
/// it also travels in every request's extensions, for the upgrades to find: the type is the
/// crate's own, so no other code can put one there.
#[derive(Clone)]
pub(crate) struct Shutdown(Arc<Shared>);

struct Shared {
    phase: watch::Sender<Phase>,
    /// How many tracked tasks have not ended.
    live: watch::Sender<usize>,
}

impl Shutdown {
    pub(crate) fn new() -> Self {
        Shutdown(Arc::new(Shared {
            phase: watch::Sender::new(Phase::Serving),
            live: watch::Sender::new(0),
        }))
    }

    /// What a session started by this server follows.
    pub(crate) fn watch(&self) -> Watch {
        let mut phase = self.0.phase.subscribe();
        // A session that starts after the shutdown began must see it too.
        phase.mark_changed();
        Watch(Some(phase))
    }

    /// `task`, counted until it ends, and dropped when the deadline passes. Counted from this
    /// call, not from the task's first poll, so that a task spawned by a tracked task is
    /// counted before its spawner ends.
    pub(crate) fn track<F>(&self, task: F) -> impl Future<Output = ()> + Send + 'static
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.0.live.send_modify(|live| *live += 1);
        let tracked = Tracked(self.clone());
        let phase = self.0.phase.subscribe();
        async move {
            // Holds the count, and keeps the phase's sender.
            let _tracked = tracked;
            until(task, phase, |phase| matches!(phase, Phase::Dropping(_))).await;
        }
    }

    /// `task`'s output, or `None` when the shutdown begins first; `task` is left as it is.
    #[cfg(feature = "axum")]
    pub(crate) async fn before_shutdown<F: Future>(&self, task: F) -> Option<F::Output> {
        let phase = self.0.phase.subscribe();
        until(task, phase, |phase| !matches!(phase, Phase::Serving)).await
    }

    /// What a tracked task does after the handler returned with its session: while the server
    /// shuts down, the session closes with its reason (unless it is closed already) and the
    /// peer's answer is awaited; before, nothing, as without a shutdown.
    pub(crate) async fn close_session(&self, link: &Link) {
        let reason = self.0.phase.borrow().reason().cloned();
        if let Some(reason) = reason {
            link.begin_shutdown(reason);
            link.drain().await;
        }
    }

    /// Shuts down, once accepting has stopped: every session is told to close with `reason`,
    /// the tracked tasks are awaited for at most `deadline` (`None`: not at all), and those
    /// left are dropped.
    pub(crate) async fn run(&self, reason: CloseReason, deadline: Option<Duration>) {
        self.0.phase.send_replace(Phase::Closing(reason.clone()));
        let mut live = self.0.live.subscribe();
        let ended = match deadline {
            Some(deadline) => tokio::time::timeout(deadline, live.wait_for(|live| *live == 0))
                .await
                .is_ok(),
            None => false,
        };
        if !ended {
            self.0.phase.send_replace(Phase::Dropping(reason));
            // Each drops its future when next polled, which the change has scheduled.
            let _ = live.wait_for(|live| *live == 0).await;
        }
    }
}

/// `task`'s output, or `None` once `phase` comes to one that `stop` picks. The task is polled at
/// every wake, and the phase looked at then only by its version, an atomic load: the wait for
/// it, which takes the watch's lock whenever it is polled, is polled to register and then only
/// once the phase has moved on. Polling it at every wake of a connection's task cost a few
/// percent of a small message's round trip.
async fn until<F: Future>(
    task: F,
    mut phase: watch::Receiver<Phase>,
    stop: fn(&Phase) -> bool,
) -> Option<F::Output> {
    let mut moved = phase.clone();
    let mut task = pin!(task);
    // `false` when the sender is gone, and with it any shutdown.
    let mut stopped = pin!(async move { phase.wait_for(stop).await.is_ok() });
    let mut registered = false;
    poll_fn(|cx| {
        if let Poll::Ready(output) = task.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        // An error means the sender is gone, and `stopped` has completed: never again.
        if registered && !moved.has_changed().unwrap_or(false) {
            return Poll::Pending;
        }
        registered = true;
        moved.mark_unchanged();
        match stopped.as_mut().poll(cx) {
            Poll::Ready(true) => Poll::Ready(None),
            Poll::Ready(false) | Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// A tracked task's place in the count.
struct Tracked(Shutdown);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.0.live.send_modify(|live| *live -= 1);
    }
}

/// The shutdown as a session follows it; empty for sessions no serve call started.
#[derive(Clone, Default)]
pub(crate) struct Watch(Option<watch::Receiver<Phase>>);

impl Watch {
    pub(crate) fn is_some(&self) -> bool {
        self.0.is_some()
    }

    /// The reason to close with, once the shutdown has begun.
    pub(crate) fn reason(&self) -> Option<CloseReason> {
        self.0.as_ref()?.borrow().reason().cloned()
    }

    /// The next phase past serving that this watch has not given yet, and the watch for the
    /// phases after it; never resolves for an empty watch, nor once the server is gone. The
    /// future owns the watch so that the watchdog can keep it across its ticks, rather than
    /// wait afresh at each.
    pub(crate) async fn next(mut self) -> (Phase, Watch) {
        if let Some(phase) = &mut self.0 {
            while phase.changed().await.is_ok() {
                let now = phase.borrow_and_update().clone();
                if !matches!(now, Phase::Serving) {
                    return (now, self);
                }
            }
        }
        pending().await
    }
}

/// What a serve call shuts down on, and how: the builder state of
/// [`Serve::with_graceful_shutdown`](crate::Serve::with_graceful_shutdown) and
/// [`Serve::close_with`](crate::Serve::close_with), and of their axum twins.
pub(crate) struct Plan {
    signal: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    reason: CloseReason,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            signal: None,
            reason: default_reason(),
        }
    }
}

impl Plan {
    pub(crate) fn set_signal(&mut self, signal: impl Future<Output = ()> + Send + 'static) {
        self.signal = Some(Box::pin(signal));
    }

    /// Sets the close reason.
    ///
    /// # Panics
    ///
    /// When its code may not be sent in a close frame: 1005, 1006, 1015 and codes outside
    /// 1000-4999 ([`CloseCode::is_sendable`]).
    pub(crate) fn set_reason(&mut self, reason: CloseReason) {
        assert!(
            reason.code.is_sendable(),
            "close code {} may not be sent in a close frame",
            reason.code
        );
        self.reason = reason.truncated();
    }

    /// Runs `accepting`, which never ends, until the signal comes (forever without one), and
    /// gives the reason to close with.
    pub(crate) async fn accept_until(self, accepting: impl Future<Output = ()>) -> CloseReason {
        match self.signal {
            Some(signal) => {
                tokio::select! {
                    () = accepting => {}
                    () = signal => {}
                }
            }
            None => accepting.await,
        }
        self.reason
    }

    pub(crate) fn has_signal(&self) -> bool {
        self.signal.is_some()
    }
}
