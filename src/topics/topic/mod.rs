//! One topic: its subscribers grouped by converter, its policy, its counters.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use serde::Serialize;

use super::Outbox;
use super::config::{Counters, KeyFn, Kind, TopicConfig, TopicStats};
#[cfg(any(feature = "nats", feature = "redis"))]
use super::history::Resumed;
use super::history::{Log, Position};
use super::mailbox::{Membership, Mode, Offered, Rule};
use crate::error::Error;
use crate::frame::{CloseCode, CloseReason, Frame};

/// Gives every topic its own id; 0 is the application's own frames in an outbox.
static NEXT_TOPIC: AtomicU64 = AtomicU64::new(1);

mod group;
#[cfg(any(feature = "nats", feature = "redis"))]
mod heard;
mod subscribe;

use group::Group;

/// What carries a topic's publications to other nodes.
pub(in crate::topics) type Forward<T> = Box<dyn Fn(&str, &T) -> Result<(), Error> + Send + Sync>;

/// How a set of topics reaches other nodes: set once, by
/// [`Topics::bus`](super::Topics::bus), for every topic of the set.
pub(in crate::topics) struct Remote<T> {
    pub(in crate::topics) forward: Forward<T>,
    /// The bus, when its broker numbers and keeps these topics' publications (they keep
    /// a history, on Redis): then a publication reaches this node's subscribers, too, as
    /// the broker numbered it.
    #[cfg(feature = "redis")]
    pub(in crate::topics) numbering: Option<crate::bus::Relay>,
}

pub(in crate::topics) type Forwarding<T> = Arc<OnceLock<Remote<T>>>;

struct State<T> {
    groups: Vec<Group<T>>,
    key: Option<KeyFn<T>>,
    log: Log<T>,
}

struct Shared<T> {
    name: String,
    rule: Rule,
    counters: Arc<Counters>,
    state: Mutex<State<T>>,
    forward: Forwarding<T>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic in a converter or key function leaves the groups consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T> Membership for Shared<T> {
    fn leave(&self, outbox: u64) {
        let mut state = self.lock();
        for group in &mut state.groups {
            group.members.remove(&outbox);
        }
        state.groups.retain(|g| !g.members.is_empty());
    }
}

/// A named stream of typed values, fanned out to the sessions subscribed to it.
///
/// Each publication is encoded once per converter in use among the subscribers (JSON, CBOR
/// and MessagePack sessions mix freely), and the frame, shared, is queued for every
/// subscriber's [`Outbox`], whose own task writes it: one slow socket never holds back the
/// publisher or the other subscribers, and what happens to it is the topic's [`Policy`].
/// Every subscriber gets the publications in one order, even from concurrent publishers.
/// Cheap to clone: clones are the same topic.
///
/// ```
/// use typed_ws::topics::Topic;
///
/// let prices: Topic<f64> = Topic::new("prices");
/// assert_eq!(prices.publish(&101.5)?, 0); // nobody is subscribed yet
/// assert_eq!(prices.stats().published, 1);
/// # Ok::<(), typed_ws::Error>(())
/// ```
///
/// [`Policy`]: super::Policy
pub struct Topic<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for Topic<T> {
    fn clone(&self) -> Self {
        Topic {
            shared: self.shared.clone(),
        }
    }
}

impl<T> fmt::Debug for Topic<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topic")
            .field("name", &self.shared.name)
            .field("queue", &self.shared.rule.queue)
            .field("mode", &self.shared.rule.mode)
            .finish_non_exhaustive()
    }
}

impl<T: Serialize + 'static> Topic<T> {
    /// A topic with the default [`TopicConfig`].
    pub fn new(name: impl Into<String>) -> Self {
        Self::with_config(name, TopicConfig::new())
    }

    /// A topic with its own queue bound and policy.
    pub fn with_config(name: impl Into<String>, config: TopicConfig<T>) -> Self {
        Self::forwarded(name.into(), config, Arc::default())
    }

    /// A topic of a [`Topics`](super::Topics), whose publications go where the set's do.
    pub(super) fn forwarded(name: String, config: TopicConfig<T>, forward: Forwarding<T>) -> Self {
        let (mode, key) = match config.policy.kind {
            Kind::Disconnect(reason) => {
                let reason = reason.unwrap_or_else(|| {
                    CloseReason::new(
                        CloseCode::PolicyViolation,
                        format!("too slow for topic {name}"),
                    )
                });
                (Mode::Disconnect(reason), None)
            }
            Kind::DropOldest => (Mode::DropOldest, None),
            Kind::Conflate(maker) => (Mode::Conflate, Some(maker())),
        };
        let rule = Rule {
            topic: NEXT_TOPIC.fetch_add(1, Ordering::Relaxed),
            queue: config.queue,
            mode,
        };
        Topic {
            shared: Arc::new(Shared {
                name,
                rule,
                counters: Arc::default(),
                state: Mutex::new(State {
                    groups: Vec::new(),
                    key,
                    log: Log::new(config.history),
                }),
                forward,
            }),
        }
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Publishes a value: encodes it once per converter in use among the subscribers and
    /// queues the frame for each, applying the topic's [`Policy`] to full queues. Never waits:
    /// the subscribers' own tasks write. Returns how many subscribers the value was queued
    /// for (conflated ones included, disconnected ones not).
    ///
    /// On a [bus](crate::bus), the value also goes to the topic's subscribers on every other
    /// node. A topic whose history is [on the broker](super::History::on_broker) queues it
    /// for this node's subscribers too only when it comes back from the broker, numbered, and
    /// returns 0.
    ///
    /// An [`Error::Encode`] from any converter queues nothing for anyone.
    ///
    /// [`Policy`]: super::Policy
    pub fn publish(&self, value: &T) -> Result<usize, Error> {
        let shared = &*self.shared;
        let counters = &shared.counters;
        let state = shared.lock();
        #[cfg(feature = "redis")]
        if let Some(remote) = shared.forward.get()
            && remote.numbering.is_some()
        {
            // The broker numbers it, and it is queued here when it comes back, in the
            // broker's order.
            (remote.forward)(&shared.name, value)?;
            counters.published.fetch_add(1, Ordering::Relaxed);
            return Ok(0);
        }
        let at = state.log.next();
        let frames = Self::encode_all(&state, at, value)?;
        // Under the topic's lock: one publisher's values leave in the order they were
        // published, here and on the bus.
        if let Some(remote) = shared.forward.get() {
            (remote.forward)(&shared.name, value)?;
        }
        counters.published.fetch_add(1, Ordering::Relaxed);
        Ok(self.queue(state, at, Duration::ZERO, value, frames))
    }

    /// Each group's frame for the value at `at`.
    fn encode_all(state: &State<T>, at: Position, value: &T) -> Result<Vec<Option<Frame>>, Error> {
        state
            .groups
            .iter()
            .map(|g| g.encode(at, value).map(Some))
            .collect()
    }

    /// Records the value at `at` (published `age` ago) and queues its frames: how many
    /// subscribers it was queued for.
    fn queue(
        &self,
        mut state: MutexGuard<'_, State<T>>,
        at: Position,
        age: Duration,
        value: &T,
        frames: Vec<Option<Frame>>,
    ) -> usize {
        let counters = &self.shared.counters;
        state.log.record_at(at.seq, age, value);
        if frames.is_empty() {
            return 0;
        }
        counters
            .encoded
            .fetch_add(frames.len() as u64, Ordering::Relaxed);
        let key = state.key.as_mut().map(|key| key(value));
        let (queued, compressed) = self.offer(state, key, frames);
        if compressed > 0 {
            counters.compressed.fetch_add(compressed, Ordering::Relaxed);
        }
        queued
    }

    #[cfg(any(feature = "nats", feature = "redis"))]
    /// Sends numbered subscribers a notice that their stream starts again (a `reset`).
    fn notify(&self, state: MutexGuard<'_, State<T>>, notice: &Resumed) {
        // The converter that encodes every value of a group encodes these four numbers.
        let frames = state
            .groups
            .iter()
            .map(|g| {
                g.sequenced
                    .then(|| g.encoding.encode_notice(notice))
                    .transpose()
            })
            .collect::<Result<Vec<_>, _>>();
        if let Ok(frames) = frames {
            self.offer(state, None, frames);
        }
    }

    /// Offers each group its frame (none for `None`) under the topic's policy, forgets the
    /// subscribers that are gone, and counts what the policy did. How many were queued, and
    /// how many frames were compressed once for their group.
    fn offer(
        &self,
        mut state: MutexGuard<'_, State<T>>,
        key: Option<u64>,
        frames: Vec<Option<Frame>>,
    ) -> (usize, u64) {
        let shared = &*self.shared;
        let (mut queued, mut dropped, mut conflated, mut kicked, mut compressed) = (0, 0, 0, 0, 0);
        let mut gone = Vec::new();
        for (group, frame) in state.groups.iter_mut().zip(frames) {
            let Some(frame) = frame else { continue };
            let (delivery, once) = group.deliver(frame);
            compressed += u64::from(once);
            for (&id, mailbox) in &group.members {
                match mailbox.offer(&shared.rule, key, delivery.clone()) {
                    Offered::Queued => queued += 1,
                    Offered::Displaced => {
                        queued += 1;
                        dropped += 1;
                    }
                    Offered::Conflated => {
                        queued += 1;
                        conflated += 1;
                    }
                    Offered::Kicked => {
                        kicked += 1;
                        gone.push(id);
                    }
                    Offered::Gone => gone.push(id),
                }
            }
            for id in gone.drain(..) {
                group.members.remove(&id);
            }
        }
        state.groups.retain(|g| !g.members.is_empty());
        drop(state);
        for (counter, n) in [
            (&shared.counters.dropped, dropped),
            (&shared.counters.conflated, conflated),
            (&shared.counters.disconnected, kicked),
        ] {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
        (queued, compressed)
    }

    /// Whether this is the topic's only handle, and it has no subscribers and keeps nothing:
    /// forgetting it loses nothing but its counters.
    pub(super) fn is_idle(&self) -> bool {
        if Arc::strong_count(&self.shared) > 1 {
            return false;
        }
        let mut state = self.shared.lock();
        state.groups.is_empty() && state.log.keeps_nothing()
    }

    /// Where the topic's numbered stream is: its epoch and the number of the last value
    /// published (0 before the first). See [`Topic::subscribe_since`].
    pub fn position(&self) -> Position {
        let next = self.shared.lock().log.next();
        Position {
            epoch: next.epoch,
            seq: next.seq - 1,
        }
    }

    /// The topic's subscribers now, and its counters.
    pub fn stats(&self) -> TopicStats {
        let subscribers = self
            .shared
            .lock()
            .groups
            .iter()
            .map(|g| g.members.len())
            .sum();
        let c = &self.shared.counters;
        TopicStats {
            subscribers,
            published: c.published.load(Ordering::Relaxed),
            encoded: c.encoded.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            conflated: c.conflated.load(Ordering::Relaxed),
            disconnected: c.disconnected.load(Ordering::Relaxed),
            received: c.received.load(Ordering::Relaxed),
            replayed: c.replayed.load(Ordering::Relaxed),
            compressed: c.compressed.load(Ordering::Relaxed),
            read_back: c.read_back.load(Ordering::Relaxed),
        }
    }
}
