//! Sequenced topics: every publication numbered, the latest kept, and subscribers that come
//! back given what they missed.
//!
//! Every topic numbers its publications from 1, within an *epoch*: a number drawn when the
//! topic is made, so a topic made again (a restarted process, say) has another, and positions
//! from before cannot be mistaken for its own. A topic configured with a [`History`] keeps its
//! latest publications, by count and by age. A session subscribed with
//! [`Topic::subscribe_since`] gets, first, a [`Resumed`] frame that says what it gets, then
//! the publications it missed that are still kept, then the live ones, each as a
//! [`Sequenced`] value, with nothing missing or repeated at the seam.
//!
//! # The wire form
//!
//! Each frame is one value in the session's codec (a JSON object, or a CBOR or MessagePack
//! map with these string keys), so a browser reads it as any other message:
//!
//! ```text
//! {"outcome": "recovered", "count": 12, "seq": 1041, "epoch": 3571480912831}   first frame
//! {"seq": 1030, "epoch": 3571480912831, "data": {...the value...}}            then each value
//! ```
//!
//! `outcome` is `live` (no position was given), `recovered` (everything after the position
//! given follows: `count` values, then the live ones) or `reset` (the position is from another
//! epoch, or older than what is kept: what was missed is lost, and the client should resync
//! from its own source of truth); `seq` is the topic's last publication then, so the first
//! value to come has `seq + 1 - count`. The position `{"epoch": 0, "seq": 0}` is the one before
//! anything, in any epoch: everything kept from the first publication on follows it if the
//! history still reaches back there. Epochs stay below 2⁵³, so JavaScript numbers hold
//! them exactly.
//!
//! A `reset` frame can also come in the middle of the stream: on a [bus](crate::bus), a node
//! that lost its subscription to the broker does not know what other nodes published
//! meanwhile, so when it is back every topic starts another epoch, numbered from 1, and its
//! numbered subscribers are sent `{"outcome": "reset", "count": 0, "seq": 0, "epoch": NEW}`:
//! values go missing, but never silently. On a bus, positions are each node's own (each keeps
//! its history in memory, and hears every publication while it keeps one, subscribers or
//! not): a subscriber comes back to the node it left, unless the history is on the broker.
//!
//! # On the broker
//!
//! With [`History::on_broker`] on a Redis [bus](crate::bus), Redis numbers the publications
//! and keeps the history, in a stream per topic (the keys `typed-ws.history.{namespace}.{topic}`
//! and, for the epoch and the last number, the hash `typed-ws.position.{namespace}.{topic}`),
//! so a position holds on every node:
//! - a publication is queued for subscribers on every node, the publishing one included, when
//!   it comes back from Redis, numbered: every node delivers a topic in the broker's order (a
//!   value published just before [`Topic::subscribe_since`] may come after its outcome frame,
//!   as a live value);
//! - a node reads a topic's stream the first time one of its subscribers comes back there
//!   (waiting a few seconds at most for Redis), and again, for what it missed, when its
//!   subscription to Redis is back after an outage: its subscribers miss nothing the stream
//!   still keeps, and a hole past it is told with a `reset` frame;
//! - the epoch is drawn by Redis when the topic's hash is made, by its first publication (a
//!   subscriber reading a topic never published makes nothing in Redis, and is given epoch
//!   0, the one before anything), so it changes only when Redis loses its data (restarted
//!   without persistence): numbered subscribers get a `reset` frame (epoch 0 until the next
//!   publication draws a new one), and positions from before are reset;
//! - the stream is trimmed to the history's count, and expires when nothing was published for
//!   its `max_age`; the small hash stays, so a quiet topic keeps its numbering (one per topic
//!   name ever published: delete the keys of topics that are gone for good);
//! - each node that has the topic keeps the same tail in memory, so that a subscriber coming
//!   back there is answered without a round trip.
//!
//! [`Topic::subscribe_since`]: super::Topic::subscribe_since

use std::any::Any;
use std::collections::VecDeque;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How much of a topic's past it keeps for subscribers that come back: the latest `count`
/// publications, none older than `max_age` if set.
///
/// ```
/// use std::time::Duration;
/// use typed_ws::topics::{History, TopicConfig};
///
/// #[derive(Clone, serde::Serialize)]
/// struct Tick { symbol: String, price: f64 }
///
/// let config: TopicConfig<Tick> =
///     TopicConfig::new().history(History::last(10_000).max_age(Duration::from_secs(300)));
/// ```
pub struct History<T> {
    count: usize,
    max_age: Option<Duration>,
    /// How a value is kept: only a history of at least one needs `T: Clone + Send`, and a
    /// topic of values that are not `Send` can still number them.
    keep: Option<fn(&T) -> Kept>,
    on_broker: bool,
}

impl<T> History<T> {
    /// Keeps nothing: positions still count, but a subscriber that comes back is reset
    /// unless it missed nothing.
    pub fn none() -> Self {
        History {
            count: 0,
            max_age: None,
            keep: None,
            on_broker: false,
        }
    }

    /// Keeps the latest `count` publications.
    pub fn last(count: usize) -> Self
    where
        T: Clone + Send + 'static,
    {
        History {
            count,
            max_age: None,
            keep: Some(|value| Box::new(value.clone())),
            on_broker: false,
        }
    }

    /// Keeps the history on the [bus](crate::bus)'s broker instead of in each node's memory,
    /// for topics on a bus ([`Topics::bus`](super::Topics::bus)): Redis numbers every
    /// publication and keeps the latest in a stream per topic, so that positions are the
    /// same on every node and a subscriber comes back to any of them. A bus whose broker
    /// keeps no history ([`Bus::keeps_history`](crate::bus::Bus::keeps_history): NATS) is
    /// refused. See [history on the broker](crate::topics::history#on-the-broker).
    ///
    /// ```
    /// use typed_ws::topics::{History, TopicConfig};
    ///
    /// let config: TopicConfig<String> = TopicConfig::new().history(History::last(1_000).on_broker());
    /// ```
    pub fn on_broker(mut self) -> Self {
        self.on_broker = true;
        self
    }

    /// Whether the history is to be kept on the broker.
    #[cfg(any(feature = "nats", feature = "redis"))]
    pub(super) fn is_on_broker(&self) -> bool {
        self.on_broker
    }

    /// Whether any publication is kept.
    #[cfg(any(feature = "nats", feature = "redis"))]
    pub(super) fn keeps(&self) -> bool {
        self.keep.is_some() && self.count > 0
    }

    /// The bounds, for a broker that keeps the history: how many, and how old at most.
    #[cfg(feature = "redis")]
    pub(super) fn bounds(&self) -> (usize, Option<Duration>) {
        (self.count, self.max_age)
    }

    /// Forgets publications older than `age`, however few there are.
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }
}

impl<T> Clone for History<T> {
    fn clone(&self) -> Self {
        History {
            count: self.count,
            max_age: self.max_age,
            keep: self.keep,
            on_broker: self.on_broker,
        }
    }
}

impl<T> fmt::Debug for History<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("History")
            .field("count", &self.count)
            .field("max_age", &self.max_age)
            .field("on_broker", &self.on_broker)
            .finish()
    }
}

/// Where a subscriber is in a topic's stream: the last publication it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position {
    /// The topic's epoch.
    pub epoch: u64,
    /// The last publication's number; 0 before the first.
    pub seq: u64,
}

/// A publication of a sequenced subscription, as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sequenced<T> {
    /// The publication's number in the topic, from 1.
    pub seq: u64,
    /// The topic's epoch.
    pub epoch: u64,
    /// The value published.
    pub data: T,
}

impl<T> Sequenced<T> {
    /// The position of this publication, to come back with.
    pub fn position(&self) -> Position {
        Position {
            epoch: self.epoch,
            seq: self.seq,
        }
    }
}

/// What a sequenced subscription gets: the first frame it is sent, and what
/// [`Topic::subscribe_since`](super::Topic::subscribe_since) returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resumed {
    /// What happened to the position given.
    pub outcome: Outcome,
    /// How many missed publications follow before the live ones.
    pub count: u64,
    /// The topic's last publication when the subscription was made.
    pub seq: u64,
    /// The topic's epoch.
    pub epoch: u64,
}

/// What became of the position a subscriber came back with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// No position was given: the live publications follow.
    Live,
    /// Everything after the position follows, then the live publications.
    Recovered,
    /// The position is from another epoch, or older than the history reaches: what was
    /// missed is lost, and the live publications follow.
    Reset,
}

/// A kept publication: a `T`, boxed so that the topic's state is `Send` whatever `T` is.
type Kept = Box<dyn Any + Send>;

/// Below 2^53, for JavaScript's numbers; never 0, which no one can mistake for it.
fn new_epoch() -> u64 {
    (RandomState::new().build_hasher().finish() >> 11).max(1)
}

/// A topic's numbering and kept publications, under the topic's lock.
pub(super) struct Log<T> {
    epoch: u64,
    last: u64,
    kept: VecDeque<(u64, Instant, Kept)>,
    history: History<T>,
    /// For a topic the broker numbers: whether this log follows the broker's numbering yet
    /// (its epoch and last number are the broker's, and what it keeps is the stream's tail).
    #[cfg(feature = "redis")]
    following: bool,
}

/// Where a publication the broker numbered stands against what a log has.
#[cfg(feature = "redis")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// The one after the log's last: taken in order.
    Next,
    /// At or before the log's last: had already.
    Had,
    /// Further on, or of another epoch, or the log does not follow the broker yet: what
    /// comes between is to be read from the broker's history first.
    Behind,
}

impl<T> Log<T> {
    pub(super) fn new(history: History<T>) -> Self {
        Log {
            epoch: new_epoch(),
            last: 0,
            kept: VecDeque::new(),
            history,
            #[cfg(feature = "redis")]
            following: false,
        }
    }

    /// Where a publication numbered `at` by the broker stands.
    #[cfg(feature = "redis")]
    pub(super) fn step(&self, at: Position) -> Step {
        if !self.following || at.epoch != self.epoch || at.seq > self.last + 1 {
            Step::Behind
        } else if at.seq <= self.last {
            Step::Had
        } else {
            Step::Next
        }
    }

    /// Whether the log follows the broker's numbering yet.
    #[cfg(feature = "redis")]
    pub(super) fn is_following(&self) -> bool {
        self.following
    }

    /// Goes on from the broker's `last` in `epoch` (0: the topic was never published),
    /// keeping nothing from before: the numbering jumps there. The `reset` notice for
    /// numbered subscribers if the jump may skip what they would have had: the log followed
    /// the broker already, and either was in a real epoch (what came after its last is not
    /// known) or skips numbers of the new one. `None` the first time, and from a topic never
    /// published to the first numbers of its epoch.
    #[cfg(feature = "redis")]
    pub(super) fn jump(&mut self, epoch: u64, last: u64) -> Option<Resumed> {
        let skips = self.epoch != 0 || last > 0;
        self.epoch = epoch;
        self.last = last;
        self.kept.clear();
        let followed = std::mem::replace(&mut self.following, true);
        (followed && skips).then_some(Resumed {
            outcome: Outcome::Reset,
            count: 0,
            seq: last,
            epoch,
        })
    }

    /// Starts another epoch with nothing kept: what the numbering would have counted is not
    /// known (a bus that lost its subscription), so no position taken before may be resumed.
    /// The notice numbered subscribers get.
    #[cfg(any(feature = "nats", feature = "redis"))]
    pub(super) fn restart(&mut self) -> Resumed {
        self.epoch = new_epoch();
        self.last = 0;
        self.kept.clear();
        Resumed {
            outcome: Outcome::Reset,
            count: 0,
            seq: 0,
            epoch: self.epoch,
        }
    }

    /// Whether publications are kept at all: a topic that keeps some must hear every
    /// publication, subscribers or not, so that a subscriber coming back finds them.
    #[cfg(any(feature = "nats", feature = "redis"))]
    pub(super) fn keeps_history(&self) -> bool {
        self.history.keeps()
    }

    /// Whether nothing is kept, once what is too old is forgotten.
    pub(super) fn keeps_nothing(&mut self) -> bool {
        self.forget_old();
        self.kept.is_empty()
    }

    fn forget_old(&mut self) {
        if let Some(age) = self.history.max_age {
            let now = Instant::now();
            while self
                .kept
                .front()
                .is_some_and(|(_, at, _)| now.duration_since(*at) > age)
            {
                self.kept.pop_front();
            }
        }
    }

    /// The position the next publication will have.
    pub(super) fn next(&self) -> Position {
        Position {
            epoch: self.epoch,
            seq: self.last + 1,
        }
    }

    /// Numbers a publication, and keeps it if the history does.
    #[cfg(test)]
    fn record(&mut self, value: &T) {
        self.record_at(self.last + 1, Duration::ZERO, value);
    }

    /// Takes a publication numbered `seq` (after the last), published `age` ago.
    pub(super) fn record_at(&mut self, seq: u64, age: Duration, value: &T) {
        self.last = seq;
        if let Some(keep) = self.history.keep
            && self.history.count > 0
        {
            let now = Instant::now();
            let when = now.checked_sub(age).unwrap_or(now);
            if self.kept.len() == self.history.count {
                self.kept.pop_front();
            }
            self.kept.push_back((seq, when, keep(value)));
        }
    }

    /// What a subscriber coming back from `since` gets: the outcome, and the kept
    /// publications after it.
    pub(super) fn since(&mut self, since: Option<Position>) -> (Resumed, Vec<(u64, &T)>)
    where
        T: 'static,
    {
        self.forget_old();
        let resumed = |outcome, count| Resumed {
            outcome,
            count,
            seq: self.last,
            epoch: self.epoch,
        };
        let Some(since) = since else {
            return (resumed(Outcome::Live, 0), Vec::new());
        };
        let oldest = self.kept.front().map_or(self.last + 1, |(seq, _, _)| *seq);
        // Epoch 0 and number 0: before anything, in any epoch.
        let from_start = since.epoch == 0 && since.seq == 0;
        if (since.epoch != self.epoch && !from_start)
            || since.seq > self.last
            || since.seq + 1 < oldest
        {
            return (resumed(Outcome::Reset, 0), Vec::new());
        }
        let missed: Vec<(u64, &T)> = self
            .kept
            .iter()
            .filter(|(seq, _, _)| *seq > since.seq)
            .filter_map(|(seq, _, value)| Some((*seq, value.downcast_ref::<T>()?)))
            .collect();
        (resumed(Outcome::Recovered, missed.len() as u64), missed)
    }
}

#[cfg(test)]
mod tests;
