//! How a topic treats its subscribers ([`TopicConfig`], [`Policy`]) and what it counts
//! ([`TopicStats`]).

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::DEFAULT_QUEUE;
use super::history::History;
use crate::frame::CloseReason;

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
    pub(super) kind: Kind<T>,
}

/// Makes a topic's key function: called once per topic, it returns a function that maps each
/// value to a small number standing for its key, the same for equal keys.
type KeyMaker<T> = Arc<dyn Fn() -> KeyFn<T> + Send + Sync>;
pub(super) type KeyFn<T> = Box<dyn FnMut(&T) -> u64 + Send>;

pub(super) enum Kind<T> {
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
    pub(super) queue: usize,
    pub(super) policy: Policy<T>,
    pub(super) history: History<T>,
}

impl<T> TopicConfig<T> {
    /// A queue of [`DEFAULT_QUEUE`] frames per subscriber, and [`Policy::disconnect`].
    pub fn new() -> Self {
        TopicConfig {
            queue: DEFAULT_QUEUE,
            policy: Policy::disconnect(),
            history: History::none(),
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

    /// Keeps the topic's latest publications, so that a subscriber that comes back with its
    /// last [`Position`](super::Position) gets what it missed
    /// ([`Topic::subscribe_since`](super::Topic::subscribe_since)). None by default.
    pub fn history(mut self, history: History<T>) -> Self {
        self.history = history;
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
            history: self.history.clone(),
        }
    }
}

impl<T> fmt::Debug for TopicConfig<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicConfig")
            .field("queue", &self.queue)
            .field("policy", &self.policy)
            .field("history", &self.history)
            .finish()
    }
}

/// A topic's counters, from [`Topic::stats`](super::Topic::stats). Each counts since the topic was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicStats {
    /// Sessions subscribed now.
    pub subscribers: usize,
    /// Values published (an encoding failure publishes nothing).
    pub published: u64,
    /// Encodings: one per publication and converter in use among the subscribers (and way of
    /// compressing, below).
    pub encoded: u64,
    /// Compressions made once for many subscribers: one per publication and way of
    /// compressing among the subscribers whose sessions compress each message on its own
    /// (permessage-deflate without context takeover on the server's side, which
    /// [`Compression::no_context_takeover`](crate::Compression::no_context_takeover) asks
    /// for). Subscribers that compress with context takeover compress each message
    /// themselves.
    pub compressed: u64,
    /// Frames handed to subscribers' sessions to write.
    pub delivered: u64,
    /// Frames dropped unwritten by [`Policy::drop_oldest`], or by [`Policy::conflate`] when
    /// more keys waited than the queue holds.
    pub dropped: u64,
    /// Waiting values replaced by a later one with the same key ([`Policy::conflate`]).
    pub conflated: u64,
    /// Subscribers disconnected by [`Policy::disconnect`].
    pub disconnected: u64,
    /// Past publications queued for subscribers that came back
    /// ([`Topic::subscribe_since`](super::Topic::subscribe_since)).
    pub replayed: u64,
    /// Values published on other nodes that came over the [bus](crate::bus) and were queued
    /// for this node's subscribers (not counted in `published`).
    pub received: u64,
    /// Publications this node missed live (its subscription to the broker was down) and read
    /// back from the broker's history, then queued in order for its subscribers: on a bus
    /// whose broker keeps the history ([`Bus::keeps_history`](crate::bus::Bus::keeps_history)).
    pub read_back: u64,
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) published: AtomicU64,
    pub(super) encoded: AtomicU64,
    pub(super) delivered: AtomicU64,
    pub(super) dropped: AtomicU64,
    pub(super) conflated: AtomicU64,
    pub(super) disconnected: AtomicU64,
    pub(super) received: AtomicU64,
    pub(super) replayed: AtomicU64,
    pub(super) compressed: AtomicU64,
    pub(super) read_back: AtomicU64,
}
