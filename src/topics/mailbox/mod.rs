//! The queue between the topics a session is subscribed to and the session's writer task.
//!
//! One mailbox per [`Outbox`](super::Outbox), so one lock, one wake-up and one task per
//! session however many topics it follows. Publishers push under the mailbox's lock and never
//! wait; the writer swaps the whole queue out under the same lock (a pointer swap, not a
//! copy) and writes it with the lock released. Each topic's policy is applied here, against
//! the number of that topic's frames waiting: the batch the writer holds no longer counts, so
//! a subscriber holds at most two queues' worth of a topic (waiting, and being written).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use bytes::Bytes;
use tokio::sync::Notify;

use super::config::Counters;
use crate::frame::{CloseCode, CloseReason, Frame};

/// The topic id of the application's own frames ([`Outbox::send`](super::Outbox::send));
/// topics count from 1.
const APP: u64 = 0;

/// The most capacity an idle writer keeps for its next batch; a subscriber that was slow
/// once gives back the rest, which keeps idle subscribers small.
const RETAIN: usize = 16;

/// A frame waiting for the writer, or the place of a conflated value whose latest frame is in
/// [`Queue::latest`].
struct Entry {
    topic: u64,
    item: Item,
}

enum Item {
    Frame(Delivery),
    Latest(u64),
}

/// A frame on its way to one session, with its payload already compressed the way that
/// session compresses when it was compressed once for many
/// ([`Alone`](crate::wire::Alone)).
#[derive(Clone)]
pub(super) struct Delivery {
    pub(super) frame: Frame,
    pub(super) compressed: Option<Bytes>,
}

impl From<Frame> for Delivery {
    fn from(frame: Frame) -> Self {
        Delivery {
            frame,
            compressed: None,
        }
    }
}

/// What a topic does when its frames fill a subscriber's queue.
#[derive(Debug, Clone)]
pub(super) enum Mode {
    Disconnect(CloseReason),
    DropOldest,
    Conflate,
}

/// A topic's rule, as a mailbox applies it.
#[derive(Debug, Clone)]
pub(super) struct Rule {
    pub(super) topic: u64,
    pub(super) queue: usize,
    pub(super) mode: Mode,
}

/// What became of one publication offered to one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Offered {
    Queued,
    /// Queued, and the topic's oldest waiting frame dropped to make room.
    Displaced,
    /// Took the place of the waiting value with the same key.
    Conflated,
    /// The queue was full under [`Mode::Disconnect`]: the subscriber is being disconnected.
    Kicked,
    /// The outbox takes nothing more (closed, released or ended).
    Gone,
}

/// A topic the outbox is subscribed to, to leave when the outbox ends and to count its
/// deliveries.
pub(super) struct Subscription {
    pub(super) topic: u64,
    pub(super) membership: Weak<dyn Membership>,
    pub(super) counters: Arc<Counters>,
}

/// A topic, as the outbox that leaves it sees it.
pub(super) trait Membership: Send + Sync {
    fn leave(&self, outbox: u64);
}

/// What the writer does next.
pub(super) enum Next {
    Write,
    Wait,
    Kick(CloseReason),
    Done,
}

/// The writer's side: the batch being written, taken whole from the queue.
#[derive(Default)]
pub(super) struct Batch {
    entries: VecDeque<Entry>,
    latest: HashMap<(u64, u64), Delivery>,
    /// Frames written per topic, added to the topics' counters once the batch is out.
    written: Vec<(u64, u64)>,
}

impl Batch {
    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Takes the next frame to write, with its topic.
    pub(super) fn pop(&mut self) -> Option<(u64, Delivery)> {
        while let Some(Entry { topic, item }) = self.entries.pop_front() {
            let delivery = match item {
                Item::Frame(delivery) => Some(delivery),
                Item::Latest(key) => self.latest.remove(&(topic, key)),
            };
            if let Some(delivery) = delivery {
                return Some((topic, delivery));
            }
        }
        None
    }

    /// Counts a frame of `topic` as handed to the session.
    pub(super) fn count(&mut self, topic: u64) {
        match self.written.iter_mut().find(|(t, _)| *t == topic) {
            Some((_, count)) => *count += 1,
            None => self.written.push((topic, 1)),
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.entries.shrink_to(RETAIN);
        self.latest = HashMap::new();
        self.written.clear();
    }
}

#[derive(Default)]
struct Queue {
    entries: VecDeque<Entry>,
    /// The latest frame of each (topic, key) waiting under [`Mode::Conflate`].
    latest: HashMap<(u64, u64), Delivery>,
    /// Frames waiting per topic (the application's under [`APP`]).
    waiting: Vec<(u64, usize)>,
    subscriptions: Vec<Subscription>,
    /// No more frames are taken: the application closed the outbox or dropped it.
    sealed: bool,
    kicked: Option<CloseReason>,
    /// Why the outbox takes nothing more, once it does not.
    reason: Option<CloseReason>,
    ended: bool,
}

impl Queue {
    fn takes_frames(&self) -> bool {
        !self.sealed && self.kicked.is_none() && !self.ended
    }

    fn waiting(&mut self, topic: u64) -> &mut usize {
        let at = match self.waiting.iter().position(|(t, _)| *t == topic) {
            Some(at) => at,
            None => {
                self.waiting.push((topic, 0));
                self.waiting.len() - 1
            }
        };
        &mut self.waiting[at].1
    }

    /// Drops the oldest waiting frame of `topic`.
    fn drop_oldest(&mut self, topic: u64) {
        if let Some(at) = self.entries.iter().position(|e| e.topic == topic)
            && let Some(Entry {
                item: Item::Latest(key),
                ..
            }) = self.entries.remove(at)
        {
            self.latest.remove(&(topic, key));
        }
    }

    /// Forgets everything waiting; the memory goes with it.
    fn discard(&mut self) {
        self.entries = VecDeque::new();
        self.latest = HashMap::new();
        self.waiting = Vec::new();
    }
}

/// One session's queue, shared by its [`Outbox`](super::Outbox) handles, its writer task and
/// the topics it is subscribed to.
pub(super) struct Mailbox {
    pub(super) id: u64,
    queue: Mutex<Queue>,
    /// Wakes the writer: frames waiting where there were none, a disconnection, the end.
    pub(super) wake: Notify,
    /// Wakes application sends waiting for room.
    pub(super) room: Notify,
    /// The [`Outbox`](super::Outbox) handles alive; the last one dropped seals the mailbox.
    pub(super) handles: AtomicUsize,
}

impl Mailbox {
    pub(super) fn new(id: u64) -> Self {
        Mailbox {
            id,
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            room: Notify::new(),
            handles: AtomicUsize::new(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics under this lock; if something did, the queue is still consistent.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Offers a topic's frame, applying the topic's rule. `key` is the value's conflation key
    /// under [`Mode::Conflate`].
    pub(super) fn offer(&self, rule: &Rule, key: Option<u64>, frame: Delivery) -> Offered {
        let mut q = self.lock();
        if !q.takes_frames() {
            return Offered::Gone;
        }
        if let Some(key) = key
            && let Some(waiting) = q.latest.get_mut(&(rule.topic, key))
        {
            *waiting = frame;
            return Offered::Conflated;
        }
        let was_empty = q.entries.is_empty();
        let mut offered = Offered::Queued;
        let waiting = q.waiting(rule.topic);
        if *waiting >= rule.queue {
            match &rule.mode {
                Mode::Disconnect(reason) => {
                    q.kicked = Some(reason.clone());
                    q.reason.get_or_insert_with(|| reason.clone());
                    q.discard();
                    drop(q);
                    self.wake.notify_one();
                    self.room.notify_waiters();
                    return Offered::Kicked;
                }
                Mode::DropOldest | Mode::Conflate => {
                    q.drop_oldest(rule.topic);
                    offered = Offered::Displaced;
                }
            }
        } else {
            *waiting += 1;
        }
        let item = match key {
            Some(key) => {
                q.latest.insert((rule.topic, key), frame);
                Item::Latest(key)
            }
            None => Item::Frame(frame),
        };
        q.entries.push_back(Entry {
            topic: rule.topic,
            item,
        });
        drop(q);
        if was_empty {
            self.wake.notify_one();
        }
        offered
    }

    /// Queues one of the application's frames unless `limit` of them wait already: `Ok(None)`
    /// when queued, `Ok(Some(frame))` to try again when there is room, the reason when the
    /// outbox takes nothing more.
    pub(super) fn offer_app(
        &self,
        frame: Frame,
        limit: usize,
    ) -> Result<Option<Frame>, CloseReason> {
        let mut q = self.lock();
        if !q.takes_frames() {
            return Err(closed(&q));
        }
        let waiting = q.waiting(APP);
        if *waiting >= limit {
            return Ok(Some(frame));
        }
        *waiting += 1;
        let was_empty = q.entries.is_empty();
        q.entries.push_back(Entry {
            topic: APP,
            item: Item::Frame(frame.into()),
        });
        drop(q);
        if was_empty {
            self.wake.notify_one();
        }
        Ok(None)
    }

    /// Queues `frames` of `topic` at once, outside its bound, after the application's `first`:
    /// what a subscription starts with (its outcome and the history it missed), bounded by
    /// the topic's history.
    pub(super) fn lead(&self, first: Option<Frame>, topic: u64, frames: Vec<Frame>) {
        let mut q = self.lock();
        if !q.takes_frames() {
            return;
        }
        let was_empty = q.entries.is_empty();
        let first = first.map(|frame| (APP, frame));
        let frames = frames.into_iter().map(|frame| (topic, frame));
        q.entries
            .extend(first.into_iter().chain(frames).map(|(topic, frame)| Entry {
                topic,
                item: Item::Frame(frame.into()),
            }));
        drop(q);
        if was_empty {
            self.wake.notify_one();
        }
    }

    /// Takes no more frames; with a reason (the application's close), queues the close frame
    /// after what waits. The writer writes what waits and ends.
    pub(super) fn seal(&self, reason: Option<CloseReason>) {
        let mut q = self.lock();
        if !q.takes_frames() {
            return;
        }
        q.sealed = true;
        q.reason = Some(reason.clone().unwrap_or_else(dropped));
        if let Some(reason) = reason {
            q.entries.push_back(Entry {
                topic: APP,
                item: Item::Frame(Frame::Close(Some(reason)).into()),
            });
        }
        drop(q);
        self.wake.notify_one();
        self.room.notify_waiters();
    }

    /// Records a subscription, unless the outbox takes nothing more (its reason, then).
    pub(super) fn join(&self, subscription: Subscription) -> Result<(), CloseReason> {
        let mut q = self.lock();
        if !q.takes_frames() {
            return Err(closed(&q));
        }
        q.subscriptions.push(subscription);
        Ok(())
    }

    /// Forgets the subscription to `topic`; its frames already waiting are still written.
    pub(super) fn part(&self, topic: u64) {
        self.lock().subscriptions.retain(|s| s.topic != topic);
    }

    /// Hands everything waiting to the writer, or says why there is nothing to write.
    pub(super) fn take(&self, batch: &mut Batch) -> Next {
        let mut q = self.lock();
        if let Some(reason) = &q.kicked {
            return Next::Kick(reason.clone());
        }
        if q.entries.is_empty() {
            return if q.sealed { Next::Done } else { Next::Wait };
        }
        std::mem::swap(&mut q.entries, &mut batch.entries);
        std::mem::swap(&mut q.latest, &mut batch.latest);
        let app_was_waiting = q.waiting.iter().any(|&(t, n)| t == APP && n > 0);
        q.waiting.clear();
        drop(q);
        if app_was_waiting {
            self.room.notify_waiters();
        }
        Next::Write
    }

    /// Whether a topic has disconnected this subscriber.
    pub(super) fn is_kicked(&self) -> bool {
        self.lock().kicked.is_some()
    }

    /// Adds what the writer handed to the session to its topics' counters, and empties the
    /// batch for the next one.
    pub(super) fn written(&self, batch: &mut Batch) {
        if !batch.written.is_empty() {
            let q = self.lock();
            for &(topic, count) in &batch.written {
                if let Some(s) = q.subscriptions.iter().find(|s| s.topic == topic) {
                    s.counters.delivered.fetch_add(count, Ordering::Relaxed);
                }
            }
        }
        batch.clear();
    }

    /// The writer has stopped: nothing more is taken, and the outbox leaves its topics.
    /// `reason` is the session's, when a write failed.
    pub(super) fn end(&self, reason: Option<CloseReason>) {
        let subscriptions = {
            let mut q = self.lock();
            q.ended = true;
            q.reason
                .get_or_insert_with(|| reason.unwrap_or_else(dropped));
            q.discard();
            std::mem::take(&mut q.subscriptions)
        };
        self.room.notify_waiters();
        for subscription in subscriptions {
            if let Some(topic) = subscription.membership.upgrade() {
                topic.leave(self.id);
            }
        }
    }

    /// Why the outbox takes nothing more; `None` while it does.
    pub(super) fn close_reason(&self) -> Option<CloseReason> {
        self.lock().reason.clone()
    }
}

/// Why an outbox that takes nothing more refused a frame.
fn closed(q: &Queue) -> CloseReason {
    q.reason.clone().unwrap_or_else(dropped)
}

/// The reason of an outbox whose handles were all dropped.
fn dropped() -> CloseReason {
    CloseReason::new(CloseCode::Normal, "the outbox was dropped")
}

#[cfg(test)]
mod tests;
