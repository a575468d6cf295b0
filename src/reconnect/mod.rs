//! A client that reconnects: [`Client::reconnecting`](crate::Client::reconnecting) gives a
//! [`Reconnect`] to set up, which [starts](Reconnect::start) a [`Reconnecting`] handle. A
//! task of its own holds the session, connects again with backoff when the connection is
//! lost to something transient, runs the on-connect hook each time, and stops for good on
//! anything else.

mod backoff;
mod outbox;
mod retry;
mod supervisor;
#[cfg(all(test, feature = "json"))]
mod tests;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Mutex, mpsc, oneshot, watch};

pub use backoff::{
    Backoff, DEFAULT_BUSY_DELAY, DEFAULT_INITIAL_DELAY, DEFAULT_MAX_DELAY, DEFAULT_RESET_AFTER,
};

use crate::converter::Converter;
use crate::error::{Chain, Error};
use crate::frame::{CloseCode, CloseReason, Frame};
use crate::session::Session;
use outbox::Outbox;
use supervisor::Supervisor;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Opens one connection: the handshake of a [`ClientRequest`](crate::ClientRequest).
pub(crate) type Connect<C> = Box<dyn FnMut() -> BoxFuture<Result<Session<C>, Error>> + Send>;

type Hook<C> = Box<dyn FnMut(Session<C>) -> BoxFuture<Result<Session<C>, Error>> + Send>;

type Observer = Box<dyn FnMut(&ReconnectState) + Send>;

/// At most this many received messages wait for [`Reconnecting::receive_deserialized`]; past
/// them the client reads nothing more from the server until they are taken.
const RECEIVED_AHEAD: usize = 16;

/// A reconnecting client being set up: from
/// [`Client::reconnecting`](crate::Client::reconnecting) or
/// [`ClientRequest::reconnecting`](crate::ClientRequest::reconnecting).
///
/// ```no_run
/// use serde::{Deserialize, Serialize};
/// use typed_ws::{Backoff, Client, Config, JsonConverter};
///
/// #[derive(Serialize)]
/// struct Subscribe { topic: &'static str }
/// #[derive(Deserialize)]
/// struct Price { symbol: String, price: f64 }
///
/// # async fn run() -> Result<(), typed_ws::Error> {
/// let client = Client::new(Config::new().converter(JsonConverter));
/// let prices = client
///     .reconnecting("ws://127.0.0.1:8080/prices")
///     .backoff(Backoff::new().max_attempts(20))
///     // What the server must hear again on every new connection.
///     .on_connect(|mut session| async move {
///         session.send_serialized(&Subscribe { topic: "prices" }).await?;
///         Ok(session)
///     })
///     .start();
/// loop {
///     // Waits across reconnections; an error means the client has stopped for good.
///     let price: Price = prices.receive_deserialized().await?;
///     println!("{} {}", price.symbol, price.price);
/// }
/// # }
/// ```
pub struct Reconnect<C> {
    connect: Connect<C>,
    converter: C,
    timeout: Option<Duration>,
    backoff: Backoff,
    queue: usize,
    hook: Option<Hook<C>>,
    observer: Option<Observer>,
}

impl<C> fmt::Debug for Reconnect<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reconnect")
            .field("backoff", &self.backoff)
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

impl<C: Converter> Reconnect<C> {
    /// A client that opens its connections with `connect`. `converter` encodes what is
    /// queued before the first connection; `timeout` is the config's, which bounds the wait
    /// for the server's answer to a close.
    pub(crate) fn new(converter: C, timeout: Option<Duration>, connect: Connect<C>) -> Self {
        Reconnect {
            connect,
            converter,
            timeout,
            backoff: Backoff::new(),
            queue: 0,
            hook: None,
            observer: None,
        }
    }

    /// The delays between attempts and the attempt limit; [`Backoff::new`] by default.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Lets up to `messages` typed sends made while disconnected wait, encoded, for the next
    /// connection, which sends them in order after the on-connect hook; a send with the
    /// queue full fails at once. The default, 0, makes every send while disconnected fail
    /// at once.
    ///
    /// A send that fails because the connection dropped under it is queued too, so a message
    /// the server read just before the drop may arrive twice. What is still queued when the
    /// client stops is dropped. With a [`Negotiation`](crate::Negotiation) of several
    /// converters, messages are encoded with the last session's converter (the config's
    /// first before any); should the next session agree on another one, they are dropped
    /// rather than sent in a codec the server does not expect.
    pub fn queue(mut self, messages: usize) -> Self {
        self.queue = messages;
        self
    }

    /// Runs `hook` on every new connection, the first included, before anything queued is
    /// sent and before the client counts as connected: for what the server must hear again
    /// (a hello, subscriptions). It gets the session and gives it back; messages it does not
    /// receive itself go to [`Reconnecting::receive_deserialized`] afterwards. An error
    /// fails the attempt, and is then retried or not like any other: a dropped connection
    /// is, a [`Decode`](Error::Decode) error or a 1008 close is not.
    pub fn on_connect<F, Fut>(mut self, mut hook: F) -> Self
    where
        F: FnMut(Session<C>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Session<C>, Error>> + Send + 'static,
    {
        self.hook = Some(Box::new(move |session| Box::pin(hook(session))));
        self
    }

    /// Calls `observer` with every change of [`ReconnectState`], in order, on the client's
    /// task: to log them, none missed (a [`Reconnecting::state`] watcher sees the latest
    /// only). It must not block.
    pub fn on_state(mut self, observer: impl FnMut(&ReconnectState) + Send + 'static) -> Self {
        self.observer = Some(Box::new(observer));
        self
    }

    /// Starts connecting, on a task of its own, and returns at once. Needs a tokio runtime.
    pub fn start(self) -> Reconnecting<C> {
        let (commands_tx, commands) = mpsc::channel(4);
        let (incoming_tx, incoming) = mpsc::channel(RECEIVED_AHEAD);
        let (state_tx, state) = watch::channel(ReconnectState::Connecting { attempt: 0 });
        let shared = Arc::new(Shared {
            outbox: Mutex::new(Outbox::new(self.converter, self.queue)),
            incoming: Mutex::new(incoming),
        });
        let supervisor = Supervisor {
            connect: self.connect,
            hook: self.hook,
            observer: self.observer,
            rng: self.backoff.rng(),
            backoff: self.backoff,
            close_wait: self.timeout.map_or(CLOSE_WAIT, |t| t.min(CLOSE_WAIT)),
            shared: shared.clone(),
            incoming: incoming_tx,
            state: state_tx,
        };
        tokio::spawn(supervisor.run(commands));
        Reconnecting {
            shared,
            commands: commands_tx,
            state,
        }
    }
}

/// How long a close waits for the server's answer, at most: as [`Session::close`].
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// A client that reconnects, from [`Reconnect::start`]: typed sends and receives that
/// outlive each connection. Cheap to clone; the clones share the connection, and when the
/// last one is dropped the client closes it with 1001.
///
/// Receives wait across reconnections and fail only once the client has stopped; sends
/// while disconnected fail at once or wait in the [queue](Reconnect::queue). The
/// [state](Reconnecting::state) says which is the case.
pub struct Reconnecting<C> {
    shared: Arc<Shared<C>>,
    commands: mpsc::Sender<Command>,
    state: watch::Receiver<ReconnectState>,
}

impl<C> Clone for Reconnecting<C> {
    fn clone(&self) -> Self {
        Reconnecting {
            shared: self.shared.clone(),
            commands: self.commands.clone(),
            state: self.state.clone(),
        }
    }
}

impl<C> fmt::Debug for Reconnecting<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reconnecting")
            .field("state", &*self.state.borrow())
            .finish_non_exhaustive()
    }
}

/// What the handles and the client's task share.
struct Shared<C> {
    outbox: Mutex<Outbox<C>>,
    /// Received data frames, with the converter of the session they came on.
    incoming: Mutex<mpsc::Receiver<(Frame, C)>>,
}

/// What a handle asks of the client's task.
enum Command {
    /// Close for good, answering when the session has ended.
    Close(CloseReason, oneshot::Sender<()>),
}

impl<C: Converter> Reconnecting<C> {
    /// Encodes `value` and sends it on the current connection. While disconnected it is
    /// queued if the [queue](Reconnect::queue) has room; otherwise the send fails at once,
    /// with [`Error::NotConnected`], and sends nothing. A send that the connection
    /// drops under is queued in the same way, or gives the error it met. An encode failure
    /// sends nothing. After the client has stopped, every send gives the error that stopped
    /// it ([`Error::Closed`] with the reason given to [`close`](Self::close)).
    pub async fn send_serialized<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), Error> {
        self.shared.outbox.lock().await.send(value).await
    }

    /// Receives the next data message and decodes it with the converter of the session it
    /// came on, waiting across reconnections. A message that does not decode gives
    /// [`Error::Decode`] and one of the wrong frame type [`Error::UnexpectedFrame`], and the
    /// client goes on. Once the client has stopped and the messages received before are
    /// taken, it gives the error that stopped it, as [`send_serialized`](Self::send_serialized).
    pub async fn receive_deserialized<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let (frame, converter) = self.receive_message().await?;
        converter.deserialize(&frame)
    }

    /// Receives the next data message without decoding it, as
    /// [`receive_deserialized`](Self::receive_deserialized) would, with the converter of the
    /// session it came on (a [`Negotiation`](crate::Negotiation) may agree on another one
    /// after a reconnection).
    pub async fn receive_message(&self) -> Result<(Frame, C), Error> {
        let received = self.shared.incoming.lock().await.recv().await;
        let Some((frame, converter)) = received else {
            return Err(self.stop_error());
        };
        if converter.is_applicable(&frame) {
            Ok((frame, converter))
        } else {
            Err(Error::UnexpectedFrame {
                converter: converter.name(),
                frame,
            })
        }
    }
}

impl<C> Reconnecting<C> {
    /// The client's state, to read ([`borrow`](watch::Receiver::borrow)) or to wait on
    /// ([`changed`](watch::Receiver::changed), [`wait_for`](watch::Receiver::wait_for)). A
    /// watcher sees the latest state, not every one; [`Reconnect::on_state`] sees them all.
    pub fn state(&self) -> watch::Receiver<ReconnectState> {
        self.state.clone()
    }

    /// Waits until the client is connected (at once if it is), or gives the error that
    /// stopped it.
    pub async fn connected(&self) -> Result<(), Error> {
        let mut state = self.state.clone();
        let reached = state
            .wait_for(|state| {
                matches!(
                    state,
                    ReconnectState::Connected | ReconnectState::Stopped(_)
                )
            })
            .await;
        match reached.as_deref() {
            Ok(ReconnectState::Connected) => Ok(()),
            _ => Err(self.stop_error()),
        }
    }

    /// Stops the client for good: closes the current connection with `reason` (sends made
    /// afterwards fail with [`Error::Closed`] and `reason`), or gives up the attempt under
    /// way or the wait for the next. Returns once the server has answered the close, or
    /// after the config's timeout (5 s at most) without an answer; messages it sends before
    /// answering can still be received. Closing a stopped client does nothing.
    pub async fn close(&self, reason: CloseReason) {
        let (done, answered) = oneshot::channel();
        if self
            .commands
            .send(Command::Close(reason, done))
            .await
            .is_ok()
        {
            // An error means the task has ended, and with it the session.
            let _ = answered.await;
        }
    }

    /// The error of calls made after the client stopped.
    fn stop_error(&self) -> Error {
        match &*self.state.borrow() {
            ReconnectState::Stopped(stop) => stop.error(),
            // Only a panic in the hook or the observer ends the task without a stop.
            _ => Error::Closed(CloseReason::new(
                CloseCode::Abnormal,
                "the reconnecting client's task ended",
            )),
        }
    }
}

/// Where a [`Reconnecting`] client stands; see [`Reconnecting::state`].
///
/// A run goes `Connecting { attempt: 0 }`, `Connected`, then on a loss `Lost`,
/// `Waiting { attempt: 1, .. }`, `Connecting { attempt: 1 }`, and after an attempt that
/// fails `Failed`, `Waiting { attempt: 2, .. }`, ... until `Connected` again or `Stopped`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ReconnectState {
    /// Connecting: the handshake, then the [on-connect hook](Reconnect::on_connect). Attempt
    /// 0 is the first connection; later ones count from 1 since the last connection that
    /// lasted (see [`Backoff::reset_after`]).
    Connecting {
        /// Which attempt this is.
        attempt: u32,
    },
    /// Connected: sends go out, messages come in.
    Connected,
    /// The connection ended. `cause` says how: [`Error::Closed`] with the server's close
    /// frame (code 1006 when it dropped without one), [`Error::Timeout`] for a server that
    /// went silent, [`Error::Io`], ...
    Lost {
        /// What ended it.
        cause: Arc<Error>,
    },
    /// An attempt failed: refused, timed out, answered with an HTTP status, or its hook
    /// failed.
    Failed {
        /// Which attempt failed.
        attempt: u32,
        /// Why.
        cause: Arc<Error>,
    },
    /// Waiting `delay` before the next attempt.
    Waiting {
        /// The attempt that comes after the wait.
        attempt: u32,
        /// How long the wait is.
        delay: Duration,
    },
    /// Stopped for good: sends and receives give the error that stopped it, or
    /// [`Error::Closed`] with the reason the application closed with.
    Stopped(Stop),
}

/// Why a [`Reconnecting`] client stopped.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Stop {
    /// The application closed it ([`Reconnecting::close`]), with this reason; 1001 when
    /// every handle was dropped.
    Closed(CloseReason),
    /// An end that trying again would not change: an HTTP 4xx answer, a close with 1000,
    /// 1008 and the like, a failed TLS handshake, no common converter (see the table of
    /// what is retried in the [guide](crate::guide::reconnecting)).
    Permanent(Arc<Error>),
    /// [`Backoff::max_attempts`] attempts in a row failed.
    GaveUp {
        /// How many attempts were made after the first failure.
        attempts: u32,
        /// Why the last one failed.
        last: Arc<Error>,
    },
}

impl Stop {
    /// The error that sends and receives give after the stop: the reason of the close, or a
    /// copy of the error (its sources as text).
    fn error(&self) -> Error {
        match self {
            Stop::Closed(reason) => Error::Closed(reason.clone()),
            Stop::Permanent(error) | Stop::GaveUp { last: error, .. } => retry::duplicate(error),
        }
    }
}

/// One line per state, for logs: `connected`, `connection lost: ...`,
/// `waiting 1.25s before attempt 2`, ...
impl fmt::Display for ReconnectState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReconnectState::Connecting { attempt: 0 } => write!(f, "connecting"),
            ReconnectState::Connecting { attempt } => write!(f, "connecting (attempt {attempt})"),
            ReconnectState::Connected => write!(f, "connected"),
            ReconnectState::Lost { cause } => write!(f, "connection lost: {}", Chain(&**cause)),
            ReconnectState::Failed { attempt: 0, cause } => {
                write!(f, "cannot connect: {}", Chain(&**cause))
            }
            ReconnectState::Failed { attempt, cause } => {
                write!(f, "attempt {attempt} failed: {}", Chain(&**cause))
            }
            ReconnectState::Waiting { attempt, delay } => write!(
                f,
                "waiting {:.3}s before attempt {attempt}",
                delay.as_secs_f64()
            ),
            ReconnectState::Stopped(Stop::Closed(reason)) => write!(f, "closed with {reason}"),
            ReconnectState::Stopped(Stop::Permanent(cause)) => {
                write!(f, "stopped, not retrying: {}", Chain(&**cause))
            }
            ReconnectState::Stopped(Stop::GaveUp { attempts, last }) => {
                write!(f, "gave up after {attempts} attempts: {}", Chain(&**last))
            }
        }
    }
}
