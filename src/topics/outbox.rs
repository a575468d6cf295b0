//! A session's outbox: the handle that topics and the application queue frames through, and
//! the task that writes them to the session.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::ready;
use std::time::Duration;

use futures_util::Sink;
use serde::Serialize;

use super::DEFAULT_QUEUE;
use super::mailbox::{Batch, Mailbox, Next};
use crate::converter::{Converter, NoConverter};
use crate::error::Error;
use crate::frame::{CloseCode, CloseReason, Frame};
use crate::session::SendHalf;
use crate::wire::Alone;

/// Gives every outbox its own id, by which topics know their subscribers.
static NEXT_OUTBOX: AtomicU64 = AtomicU64::new(1);

/// How long a disconnected subscriber's writer waits to hand its close frame to the session
/// before it drops its half anyway: the session's send timeout, when set, ends a peer that
/// reads nothing sooner.
const DISCONNECT_GRACE: Duration = Duration::from_secs(10);

/// The sending side of one session, for topics and the application alike: a bounded queue
/// and a task of its own that writes it.
///
/// Made from a [`SendHalf`] (the receiving half stays with your handler), it is what
/// [`Topic::subscribe`](super::Topic::subscribe) takes. Its task writes whatever waits in one
/// batch, each frame queued without a flush and then one flush, so a burst of publications
/// goes out in as few writes as the socket allows, and a session that cannot keep up holds
/// back nobody but itself. Your own messages go through the same queue
/// ([`Outbox::send_serialized`]), in order with the topics' frames.
///
/// The outbox ends, and with it every subscription, when its session fails a write, when a
/// topic disconnects it, after [`Outbox::close`], or when every handle to it has been
/// dropped (what it queued before is still written). A handler that keeps the outbox for as
/// long as it receives therefore ends the subscriptions with the session. Cheap to clone:
/// clones are handles to the same outbox.
///
/// ```no_run
/// # async fn handler(session: typed_ws::Session<typed_ws::JsonConverter>, room: typed_ws::topics::Topic<String>) -> Result<(), typed_ws::Error> {
/// use typed_ws::topics::Outbox;
///
/// let (tx, mut rx) = session.split();
/// let outbox = Outbox::new(tx);
/// room.subscribe(&outbox)?;
/// outbox.send_serialized("welcome").await?;
/// while let Ok(text) = rx.receive_deserialized::<String>().await {
///     room.publish(&text)?;
/// }
/// // Dropping the outbox here ends the subscription.
/// # Ok(()) }
/// ```
pub struct Outbox<C = NoConverter> {
    mailbox: Arc<Mailbox>,
    converter: C,
    /// How its session compresses, when each message on its own: topics compress a
    /// publication once for all such sessions.
    alone: Option<Alone>,
}

impl<C: Converter> Outbox<C> {
    /// Takes over the sending half and starts its writer task.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn new(tx: SendHalf<C>) -> Self {
        let converter = tx.converter().clone();
        let alone = tx.compresses_alone();
        let mailbox = Arc::new(Mailbox::new(NEXT_OUTBOX.fetch_add(1, Ordering::Relaxed)));
        tokio::spawn(write(mailbox.clone(), tx));
        Outbox {
            mailbox,
            converter,
            alone,
        }
    }

    /// Queues a frame after everything already queued, waiting only while [`DEFAULT_QUEUE`]
    /// of your own frames are waiting. Returns once queued, not written; an outbox that has
    /// ended gives [`Error::Closed`] with its reason.
    pub async fn send(&self, mut frame: Frame) -> Result<(), Error> {
        loop {
            let room = self.mailbox.room.notified();
            tokio::pin!(room);
            // Registered before looking, so that room made in between is not missed.
            room.as_mut().enable();
            match self.mailbox.offer_app(frame, DEFAULT_QUEUE) {
                Ok(None) => return Ok(()),
                Ok(Some(back)) => frame = back,
                Err(reason) => return Err(Error::Closed(reason)),
            }
            room.await;
        }
    }

    /// Encodes `value` with the session's converter and queues it; see [`Outbox::send`].
    pub async fn send_serialized<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), Error> {
        let frame = self.converter.serialize(value)?;
        self.send(frame).await
    }
}

impl<C> Outbox<C> {
    /// Ends the outbox: it leaves its topics and takes nothing more, and its task writes
    /// what is queued, then a close frame with `reason`. Receive on the other half to see the
    /// peer's answer, as after [`SendHalf::close`].
    pub fn close(&self, reason: CloseReason) {
        self.mailbox.seal(Some(reason));
    }

    /// Why the outbox takes nothing more: a topic disconnected it, it was closed, or its
    /// session ended (then the session's close reason). `None` while it is open.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.mailbox.close_reason()
    }

    /// The session's converter.
    pub fn converter(&self) -> &C {
        &self.converter
    }

    pub(super) fn mailbox(&self) -> &Arc<Mailbox> {
        &self.mailbox
    }

    pub(super) fn compresses_alone(&self) -> Option<Alone> {
        self.alone
    }
}

impl<C: Clone> Clone for Outbox<C> {
    fn clone(&self) -> Self {
        self.mailbox.handles.fetch_add(1, Ordering::Relaxed);
        Outbox {
            mailbox: self.mailbox.clone(),
            converter: self.converter.clone(),
            alone: self.alone,
        }
    }
}

impl<C> Drop for Outbox<C> {
    fn drop(&mut self) {
        if self.mailbox.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.mailbox.seal(None);
        }
    }
}

impl<C> fmt::Debug for Outbox<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbox")
            .field("id", &self.mailbox.id)
            .field("close_reason", &self.close_reason())
            .finish_non_exhaustive()
    }
}

/// The outbox's task: writes each batch, then waits for the next, until the outbox ends.
async fn write<C>(mailbox: Arc<Mailbox>, mut tx: SendHalf<C>) {
    let mut batch = Batch::default();
    let kicked = loop {
        match mailbox.take(&mut batch) {
            Next::Write => {}
            Next::Wait => {
                mailbox.wake.notified().await;
                continue;
            }
            Next::Kick(reason) => break Some(reason),
            Next::Done => break None,
        }
        let written = loop {
            tokio::select! {
                biased;
                // A disconnection cuts the batch short: the socket may never take it.
                () = mailbox.wake.notified() => if mailbox.is_kicked() {
                    break Ok(());
                },
                written = write_batch(&mut tx, &mut batch) => break written,
            }
        };
        mailbox.written(&mut batch);
        if written.is_err() {
            let abnormal = || CloseReason::new(CloseCode::Abnormal, "");
            mailbox.end(Some(tx.close_reason().unwrap_or_else(abnormal)));
            return;
        }
    };
    mailbox.end(kicked.clone());
    if let Some(reason) = kicked {
        // Behind what the session has taken already; a peer that reads nothing never sees it.
        let _ = tokio::time::timeout(DISCONNECT_GRACE, tx.close(reason)).await;
    }
}

/// Hands every frame of the batch to the session, unflushed, then flushes once: one write
/// for the batch when the socket takes it. Cancel-safe: a frame leaves the batch only once
/// the session has taken it.
async fn write_batch<C>(tx: &mut SendHalf<C>, batch: &mut Batch) -> Result<(), Error> {
    std::future::poll_fn(|cx| {
        while !batch.is_empty() {
            ready!(Pin::new(&mut *tx).poll_ready(cx))?;
            let Some((topic, delivery)) = batch.pop() else {
                break;
            };
            match delivery.compressed {
                Some(compressed) => tx.start_send_compressed(&delivery.frame, compressed)?,
                None => Pin::new(&mut *tx).start_send(delivery.frame)?,
            }
            batch.count(topic);
        }
        Pin::new(&mut *tx).poll_flush(cx)
    })
    .await
}
