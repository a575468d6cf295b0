//! The task of a reconnecting client: it connects, runs the hook, hands received messages
//! to the handles, and when the connection ends waits and connects again, or stops.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::backoff::{Backoff, Rng};
use super::retry::{Retry, classify};
use super::{Command, Connect, Hook, Observer, ReconnectState, Shared, Stop};
use crate::converter::Converter;
use crate::error::Error;
use crate::frame::{CloseCode, CloseReason, Frame};
use crate::session::RecvHalf;

pub(super) struct Supervisor<C> {
    pub(super) connect: Connect<C>,
    pub(super) hook: Option<Hook<C>>,
    pub(super) observer: Option<Observer>,
    pub(super) backoff: Backoff,
    pub(super) rng: Rng,
    /// How long a close waits for the server's answer.
    pub(super) close_wait: Duration,
    pub(super) shared: Arc<Shared<C>>,
    pub(super) incoming: mpsc::Sender<(Frame, C)>,
    pub(super) state: watch::Sender<ReconnectState>,
}

/// How the forwarding of one connection's messages ended.
enum Forwarded {
    /// The connection ended by itself, for this reason.
    Lost(Error),
    /// A handle asked to close (`None`: every handle is gone), while this frame, if any,
    /// waited to be handed over.
    Asked(Option<Command>, Option<Frame>),
}

impl<C: Converter> Supervisor<C> {
    /// Runs until the client stops. `commands` is apart from `self` so that it can be
    /// awaited beside the methods that borrow `self`.
    pub(super) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let max_attempts = self.backoff.max_attempts_value();
        let reset_after = self.backoff.reset_after_value();
        // Losses and failed attempts since the last connection that lasted.
        let mut failures = 0;
        let mut attempt = 0;
        let stop = loop {
            self.set(ReconnectState::Connecting { attempt });
            let opened = tokio::select! {
                biased;
                command = commands.recv() => return self.close_disconnected(command).await,
                opened = self.open() => opened,
            };
            let cause = match opened {
                Ok(mut rx) => {
                    self.set(ReconnectState::Connected);
                    let since = Instant::now();
                    match self.forward(&mut rx, &mut commands).await {
                        Forwarded::Lost(cause) => {
                            self.shared.outbox.lock().await.disconnect();
                            if since.elapsed() >= reset_after {
                                failures = 0;
                            }
                            let cause = Arc::new(cause);
                            self.set(ReconnectState::Lost {
                                cause: cause.clone(),
                            });
                            drain_after_close(&mut rx, &cause, self.close_wait).await;
                            cause
                        }
                        Forwarded::Asked(command, pending) => {
                            return self.close_connected(command, pending, rx).await;
                        }
                    }
                }
                Err(cause) => {
                    let cause = Arc::new(cause);
                    self.set(ReconnectState::Failed {
                        attempt,
                        cause: cause.clone(),
                    });
                    cause
                }
            };
            let retry = classify(&cause);
            if retry == Retry::Never {
                break Stop::Permanent(cause);
            }
            failures += 1;
            if max_attempts.is_some_and(|max| failures > max) {
                break Stop::GaveUp {
                    attempts: failures - 1,
                    last: cause,
                };
            }
            attempt = failures;
            let busy = retry == Retry::MuchLater;
            let delay = self.backoff.delay(failures, busy, &mut self.rng);
            self.set(ReconnectState::Waiting { attempt, delay });
            tokio::select! {
                biased;
                command = commands.recv() => return self.close_disconnected(command).await,
                () = tokio::time::sleep(delay) => {}
            }
        };
        self.stop(stop).await;
    }

    fn set(&mut self, state: ReconnectState) {
        if let Some(observer) = &mut self.observer {
            observer(&state);
        }
        self.state.send_replace(state);
    }

    /// One attempt: the handshake, the hook, then what was queued. Gives the receiving half;
    /// the sending half is the outbox's.
    async fn open(&mut self) -> Result<RecvHalf<C>, Error> {
        let mut session = (self.connect)().await?;
        if let Some(hook) = &mut self.hook {
            let link = session.link();
            session = match hook(session).await {
                Ok(session) => session,
                Err(e) => {
                    // As `Client::web_socket` closes after a failed block.
                    let reason = CloseReason::new(CloseCode::InternalError, e.to_string());
                    let _ = link.close(reason).await;
                    return Err(e);
                }
            };
        }
        let (tx, rx) = session.split();
        self.shared.outbox.lock().await.connect(tx).await?;
        Ok(rx)
    }

    /// Hands every data message to the handles until the connection ends or a handle asks
    /// to close.
    async fn forward(
        &mut self,
        rx: &mut RecvHalf<C>,
        commands: &mut mpsc::Receiver<Command>,
    ) -> Forwarded {
        loop {
            let received = tokio::select! {
                biased;
                command = commands.recv() => return Forwarded::Asked(command, None),
                received = rx.receive() => received,
            };
            let frame = match received {
                Ok(Frame::Ping(_) | Frame::Pong(_)) => continue,
                Ok(Frame::Close(reason)) => {
                    let reason =
                        reason.unwrap_or_else(|| CloseReason::new(CloseCode::NoStatus, ""));
                    return Forwarded::Lost(Error::Closed(reason));
                }
                Ok(frame) => frame,
                Err(e) => return Forwarded::Lost(e),
            };
            // Waits while the handles have RECEIVED_AHEAD messages to take, but not past a
            // close.
            tokio::select! {
                biased;
                command = commands.recv() => return Forwarded::Asked(command, Some(frame)),
                // The receiver is in `shared`, which this task holds: it is never closed.
                permit = self.incoming.reserve() => if let Ok(permit) = permit {
                    permit.send((frame, rx.converter().clone()));
                },
            }
        }
    }

    /// A close asked for, or every handle gone, while connected: sends the close frame and
    /// hands over what the server sends until it answers, for at most the close wait.
    async fn close_connected(
        mut self,
        command: Option<Command>,
        pending: Option<Frame>,
        mut rx: RecvHalf<C>,
    ) {
        let (reason, done) = asked(command);
        let tx = self
            .shared
            .outbox
            .lock()
            .await
            .stop(Stop::Closed(reason.clone()));
        if let Some(mut tx) = tx {
            // A connection already gone has nothing to answer; the drain below ends at once.
            let _ = tx.close(reason.clone()).await;
        }
        let converter = rx.converter().clone();
        let incoming = self.incoming.clone();
        let _ = tokio::time::timeout(self.close_wait, async {
            if let Some(frame) = pending {
                let _ = incoming.send((frame, converter.clone())).await;
            }
            loop {
                match rx.receive().await {
                    Ok(frame @ (Frame::Text(_) | Frame::Binary(_))) => {
                        let _ = incoming.send((frame, converter.clone())).await;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        })
        .await;
        self.set(ReconnectState::Stopped(Stop::Closed(reason)));
        answer(done);
    }

    /// A close asked for, or every handle gone, while connecting or waiting: the attempt
    /// under way, if any, is dropped.
    async fn close_disconnected(mut self, command: Option<Command>) {
        let (reason, done) = asked(command);
        self.stop(Stop::Closed(reason)).await;
        answer(done);
    }

    async fn stop(&mut self, stop: Stop) {
        drop(self.shared.outbox.lock().await.stop(stop.clone()));
        self.set(ReconnectState::Stopped(stop));
    }
}

/// After the server's close frame, waits for it to end the connection, as RFC 6455 has
/// the server close TCP first, so that it does not hold a connection in TIME_WAIT.
async fn drain_after_close<C>(rx: &mut RecvHalf<C>, cause: &Error, close_wait: Duration) {
    if matches!(cause, Error::Closed(reason) if reason.code != CloseCode::Abnormal) {
        let _ =
            tokio::time::timeout(close_wait, async { while rx.receive().await.is_ok() {} }).await;
    }
}

/// The reason to close with and whom to tell: 1001 when every handle is gone.
fn asked(command: Option<Command>) -> (CloseReason, Option<oneshot::Sender<()>>) {
    match command {
        Some(Command::Close(reason, done)) => (reason, Some(done)),
        None => (CloseReason::new(CloseCode::GoingAway, ""), None),
    }
}

fn answer(done: Option<oneshot::Sender<()>>) {
    if let Some(done) = done {
        // The handle that asked may have stopped waiting.
        let _ = done.send(());
    }
}
