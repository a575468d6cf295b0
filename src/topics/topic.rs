//! One topic: its subscribers grouped by converter, its policy, its counters.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use serde::Serialize;

use super::mailbox::{Mailbox, Membership, Mode, Offered, Rule, Subscription};
use super::{DEFAULT_QUEUE, Outbox};
use crate::converter::Converter;
use crate::error::Error;
use crate::frame::{CloseCode, CloseReason, Frame};

/// Gives every topic its own id; 0 is the application's own frames in an outbox.
static NEXT_TOPIC: AtomicU64 = AtomicU64::new(1);

/// What a topic does with a subscriber whose queue is full: the slow-subscriber policy.
///
/// A subscriber's queue fills when its session's socket takes frames more slowly than the
/// topic publishes them. Whatever the policy, publishing never waits for it, and the other
/// subscribers never notice.
///
/// ```
/// use typed_ws::topics::{Policy, TopicConfig};
///
/// #[derive(serde::Serialize)]
/// struct Tick { symbol: String, price: f64 }
///
/// // A slow client gets the current price of every symbol rather than a backlog.
/// let config = TopicConfig::new().policy(Policy::conflate(|tick: &Tick| tick.symbol.clone()));
/// ```
pub struct Policy<T> {
    kind: Kind<T>,
}

/// Makes a topic's key function: called once per topic, it returns a function that maps each
/// value to a small number standing for its key, the same for equal keys.
type KeyMaker<T> = Arc<dyn Fn() -> KeyFn<T> + Send + Sync>;
type KeyFn<T> = Box<dyn FnMut(&T) -> u64 + Send>;

enum Kind<T> {
    Disconnect(Option<CloseReason>),
    DropOldest,
    Conflate(KeyMaker<T>),
}

impl<T> Policy<T> {
    /// Disconnects the subscriber (the default): its queued frames are discarded, its
    /// session gets a close frame with 1008 (policy violation) and a reason naming the topic,
    /// and the topic's `disconnected` counter goes up. The close frame goes out behind what the
    /// session had already taken to write; a peer that reads nothing at all is dropped by its
    /// session's [send timeout](crate::Config::send_timeout) (30 s by default).
    pub fn disconnect() -> Self {
        Policy {
            kind: Kind::Disconnect(None),
        }
    }

    /// [`Policy::disconnect`] with a close code and reason of your choice.
    pub fn disconnect_with(reason: CloseReason) -> Self {
        Policy {
            kind: Kind::Disconnect(Some(reason)),
        }
    }

    /// Drops the oldest of the topic's frames waiting for that subscriber to make room for
    /// the new one, and counts it in `dropped`. The subscriber stays, and gets the newest
    /// frames.
    pub fn drop_oldest() -> Self {
        Policy {
            kind: Kind::DropOldest,
        }
    }

    /// Keeps only the latest value per key for each subscriber: a value whose key already has
    /// one waiting takes its place (and its place in the queue), counted in `conflated`. `key`
    /// runs once per publication, not per subscriber. Keys should come from a bounded set
    /// (symbols, rooms, ids): the topic remembers every key it has seen. When more keys wait
    /// than the queue holds, the oldest is dropped and counted in `dropped`.
    pub fn conflate<K, F>(key: F) -> Self
    where
        K: Hash + Eq + Send + 'static,
        F: Fn(&T) -> K + Send + Sync + 'static,
        T: 'static,
    {
        let key = Arc::new(key);
        let maker: KeyMaker<T> = Arc::new(move || {
            let key = key.clone();
            let mut seen: HashMap<K, u64> = HashMap::new();
            Box::new(move |value: &T| {
                let next = seen.len() as u64;
                *seen.entry(key(value)).or_insert(next)
            })
        });
        Policy {
            kind: Kind::Conflate(maker),
        }
    }
}

impl<T> Default for Policy<T> {
    fn default() -> Self {
        Policy::disconnect()
    }
}

impl<T> Clone for Policy<T> {
    fn clone(&self) -> Self {
        let kind = match &self.kind {
            Kind::Disconnect(reason) => Kind::Disconnect(reason.clone()),
            Kind::DropOldest => Kind::DropOldest,
            Kind::Conflate(maker) => Kind::Conflate(maker.clone()),
        };
        Policy { kind }
    }
}

impl<T> fmt::Debug for Policy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Disconnect(reason) => f.debug_tuple("Disconnect").field(reason).finish(),
            Kind::DropOldest => f.write_str("DropOldest"),
            Kind::Conflate(_) => f.write_str("Conflate"),
        }
    }
}

/// How a topic treats its subscribers: the bound of each one's queue and the
/// [`Policy`] when it is full.
///
/// ```
/// use typed_ws::topics::{Policy, Topic, TopicConfig};
///
/// let news: Topic<String> =
///     Topic::with_config("news", TopicConfig::new().queue(64).policy(Policy::drop_oldest()));
/// ```
pub struct TopicConfig<T> {
    queue: usize,
    policy: Policy<T>,
}

impl<T> TopicConfig<T> {
    /// A queue of [`DEFAULT_QUEUE`] frames per subscriber, and [`Policy::disconnect`].
    pub fn new() -> Self {
        TopicConfig {
            queue: DEFAULT_QUEUE,
            policy: Policy::disconnect(),
        }
    }

    /// How many of the topic's frames may wait for one subscriber (at least 1) while its
    /// session writes the previous ones. A slow subscriber holds at most twice this: the
    /// frames waiting and the batch being written.
    pub fn queue(mut self, frames: usize) -> Self {
        self.queue = frames.max(1);
        self
    }

    /// What to do when a subscriber's queue is full.
    pub fn policy(mut self, policy: Policy<T>) -> Self {
        self.policy = policy;
        self
    }
}

impl<T> Default for TopicConfig<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for TopicConfig<T> {
    fn clone(&self) -> Self {
        TopicConfig {
            queue: self.queue,
            policy: self.policy.clone(),
        }
    }
}

impl<T> fmt::Debug for TopicConfig<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicConfig")
            .field("queue", &self.queue)
            .field("policy", &self.policy)
            .finish()
    }
}

/// A topic's counters, from [`Topic::stats`]. Each counts since the topic was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicStats {
    /// Sessions subscribed now.
    pub subscribers: usize,
    /// Values published (an encoding failure publishes nothing).
    pub published: u64,
    /// Encodings: one per publication and converter in use among the subscribers.
    pub encoded: u64,
    /// Frames handed to subscribers' sessions to write.
    pub delivered: u64,
    /// Frames dropped unwritten by [`Policy::drop_oldest`], or by [`Policy::conflate`] when
    /// more keys waited than the queue holds.
    pub dropped: u64,
    /// Waiting values replaced by a later one with the same key ([`Policy::conflate`]).
    pub conflated: u64,
    /// Subscribers disconnected by [`Policy::disconnect`].
    pub disconnected: u64,
    /// Values published on other nodes that came over the [bus](crate::bus) and were queued
    /// for this node's subscribers (not counted in `published`).
    pub received: u64,
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    published: AtomicU64,
    encoded: AtomicU64,
    pub(super) delivered: AtomicU64,
    dropped: AtomicU64,
    conflated: AtomicU64,
    disconnected: AtomicU64,
    received: AtomicU64,
}

/// What carries a topic's publications to other nodes: set once, by
/// [`Topics::bus`](super::Topics::bus), for every topic of the set.
pub(super) type Forward<T> = Box<dyn Fn(&str, &T) -> Result<(), Error> + Send + Sync>;
pub(super) type Forwarding<T> = Arc<OnceLock<Forward<T>>>;

/// Encodes a topic's values with one converter: the converter of a group of subscribers.
trait Encoding<T>: Send + Sync {
    fn encode(&self, value: &T) -> Result<Frame, Error>;
    /// Whether `converter` is this one (same type, equal), so its session joins the group.
    fn is(&self, converter: &dyn Any) -> bool;
}

struct With<C>(C);

impl<T: Serialize, C: Converter + PartialEq> Encoding<T> for With<C> {
    fn encode(&self, value: &T) -> Result<Frame, Error> {
        self.0.serialize(value)
    }

    fn is(&self, converter: &dyn Any) -> bool {
        converter.downcast_ref::<C>() == Some(&self.0)
    }
}

/// The subscribers that share a converter, and so each publication's frame.
struct Group<T> {
    encoding: Box<dyn Encoding<T>>,
    members: HashMap<u64, Arc<Mailbox>>,
}

struct State<T> {
    groups: Vec<Group<T>>,
    key: Option<KeyFn<T>>,
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
                }),
                forward,
            }),
        }
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Subscribes the outbox's session. Subscribing twice does nothing more; the subscription
    /// lasts until [`Topic::unsubscribe`] or the end of the outbox (its session ended, it was
    /// closed or disconnected, or every handle to it was dropped). An outbox that has ended
    /// gives [`Error::Closed`] with its reason.
    ///
    /// Sessions whose converters are equal (same type, `==`) share each publication's frame.
    pub fn subscribe<C: Converter + PartialEq>(&self, outbox: &Outbox<C>) -> Result<(), Error> {
        let mailbox = outbox.mailbox();
        let mut state = self.shared.lock();
        if state
            .groups
            .iter()
            .any(|g| g.members.contains_key(&mailbox.id))
        {
            return Ok(());
        }
        let membership: Arc<dyn Membership> = self.shared.clone();
        mailbox
            .join(Subscription {
                topic: self.shared.rule.topic,
                membership: Arc::downgrade(&membership),
                counters: self.shared.counters.clone(),
            })
            .map_err(Error::Closed)?;
        let converter: &dyn Any = outbox.converter();
        let at = match state.groups.iter().position(|g| g.encoding.is(converter)) {
            Some(at) => at,
            None => {
                state.groups.push(Group {
                    encoding: Box::new(With(outbox.converter().clone())),
                    members: HashMap::new(),
                });
                state.groups.len() - 1
            }
        };
        state.groups[at].members.insert(mailbox.id, mailbox.clone());
        Ok(())
    }

    /// Ends the outbox's subscription; frames already queued for it are still written.
    /// Returns whether it was subscribed.
    pub fn unsubscribe<C>(&self, outbox: &Outbox<C>) -> bool {
        let mailbox = outbox.mailbox();
        let mut state = self.shared.lock();
        let mut was = false;
        for group in &mut state.groups {
            was |= group.members.remove(&mailbox.id).is_some();
        }
        state.groups.retain(|g| !g.members.is_empty());
        // Under the topic's lock, so that a subscription made again meanwhile is not forgotten.
        mailbox.part(self.shared.rule.topic);
        was
    }

    /// Publishes a value: encodes it once per converter in use among the subscribers and
    /// queues the frame for each, applying the topic's [`Policy`] to full queues. Never waits:
    /// the subscribers' own tasks write. Returns how many subscribers the value was queued
    /// for (conflated ones included, disconnected ones not).
    ///
    /// On a [bus](crate::bus), the value also goes to the topic's subscribers on every other
    /// node.
    ///
    /// An [`Error::Encode`] from any converter queues nothing for anyone.
    pub fn publish(&self, value: &T) -> Result<usize, Error> {
        self.fan_out(value, true)
    }

    #[cfg(any(feature = "nats", feature = "redis"))]
    /// Queues a value from another node for this node's subscribers.
    pub(super) fn publish_received(&self, value: &T) -> Result<usize, Error> {
        self.fan_out(value, false)
    }

    #[cfg(any(feature = "nats", feature = "redis"))]
    /// Whether anyone on this node is subscribed: a value from another node is decoded only
    /// then.
    pub(super) fn has_subscribers(&self) -> bool {
        !self.shared.lock().groups.is_empty()
    }

    fn fan_out(&self, value: &T, local: bool) -> Result<usize, Error> {
        let shared = &*self.shared;
        let counters = &shared.counters;
        let mut state = shared.lock();
        let frames = state
            .groups
            .iter()
            .map(|g| g.encoding.encode(value))
            .collect::<Result<Vec<_>, _>>()?;
        if local {
            // Under the topic's lock: one publisher's values leave in the order they were
            // published, here and on the bus.
            if let Some(forward) = shared.forward.get() {
                forward(&shared.name, value)?;
            }
            counters.published.fetch_add(1, Ordering::Relaxed);
        } else {
            counters.received.fetch_add(1, Ordering::Relaxed);
        }
        if frames.is_empty() {
            return Ok(0);
        }
        counters
            .encoded
            .fetch_add(frames.len() as u64, Ordering::Relaxed);
        let key = state.key.as_mut().map(|key| key(value));
        let (mut queued, mut dropped, mut conflated, mut kicked) = (0, 0, 0, 0);
        let mut gone = Vec::new();
        for (group, frame) in state.groups.iter_mut().zip(frames) {
            for (&id, mailbox) in &group.members {
                match mailbox.offer(&shared.rule, key, frame.clone()) {
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
            (&counters.dropped, dropped),
            (&counters.conflated, conflated),
            (&counters.disconnected, kicked),
        ] {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
        Ok(queued)
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
        }
    }
}
