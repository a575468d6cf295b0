//! Topics: typed fan-out to many sessions, encoded once, without head-of-line blocking.
//!
//! A [`Topic`] carries values of one type to the sessions subscribed to it. Each session
//! subscribes through its [`Outbox`], made from its sending half: a bounded queue with a task
//! of its own that writes it. Publishing ([`Topic::publish`]) is synchronous and never waits:
//! the value is encoded once per converter in use among the subscribers (sessions of one
//! server may have negotiated JSON, CBOR and MessagePack), and the frame, shared, is queued
//! for each. Each outbox's task writes everything waiting with one flush, so bursts batch by
//! themselves. A subscriber whose socket does not keep up fills its own queue and nobody
//! else's; the topic's [`Policy`] then disconnects it (the default), drops its oldest frames,
//! or keeps only the latest value per key, and [`Topic::stats`] counts what happened.
//!
//! Subscriptions end with the outbox: when its session fails a write, when it is closed or
//! disconnected, or when the handler that made it drops it. [`Topics`] names topics of one
//! type, for subscriptions chosen at run time (rooms, symbols).
//!
//! A chat room, where what one session says reaches every session in the room:
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use tokio::net::TcpListener;
//! use typed_ws::topics::{Outbox, Topic};
//! use typed_ws::{Client, Config, JsonConverter, Server};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct Said { who: String, text: String }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), typed_ws::Error> {
//! let room: Topic<Said> = Topic::new("lobby");
//! let config = Config::new().converter(JsonConverter);
//! let listener = TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let server = Server::new(config.clone());
//! let lobby = room.clone();
//! tokio::spawn(async move {
//!     server
//!         .serve(listener, move |session| {
//!             let room = lobby.clone();
//!             async move {
//!                 let (tx, mut rx) = session.split();
//!                 let outbox = Outbox::new(tx);
//!                 if room.subscribe(&outbox).is_err() {
//!                     return;
//!                 }
//!                 while let Ok(said) = rx.receive_deserialized::<Said>().await {
//!                     let _ = room.publish(&said);
//!                 }
//!                 // The outbox drops here, and the session leaves the room.
//!             }
//!         })
//!         .await
//! });
//!
//! let heard: Said = Client::new(config)
//!     .web_socket(format!("ws://{addr}/chat"), async |mut session| {
//!         session.send_serialized(&Said { who: "ada".into(), text: "hi".into() }).await?;
//!         session.receive_deserialized().await
//!     })
//!     .await?;
//! assert_eq!(heard.text, "hi");
//! assert_eq!(room.stats().published, 1);
//! # Ok(()) }
//! ```
//!
//! # Bounds
//!
//! Each subscriber holds at most [`TopicConfig::queue`] frames of a topic waiting
//! ([`DEFAULT_QUEUE`] by default) plus the batch its task is writing, which is at most as
//! many again; the frames themselves are shared among subscribers. Under the default
//! [`Policy::disconnect`], a publication that finds the queue full disconnects the
//! subscriber with 1008 (policy violation). An idle subscriber costs its task, a few
//! small allocations and one entry in each topic.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

use crate::error::Error;

mod config;
pub mod history;
mod mailbox;
mod outbox;
#[cfg(any(feature = "nats", feature = "redis"))]
mod remote;
mod resume;
mod topic;

pub use config::{Policy, TopicConfig, TopicStats};
pub use history::{History, Outcome, Position, Resumed, Sequenced};
pub use outbox::Outbox;
pub use resume::{Resume, Resuming, Update};
use topic::Forwarding;
pub use topic::Topic;

/// How many of a topic's frames may wait for one subscriber unless the topic's
/// [`TopicConfig::queue`] says otherwise; also how many of the application's own frames may
/// wait in an [`Outbox`] before [`Outbox::send`] waits.
pub const DEFAULT_QUEUE: usize = 1024;

/// The set's size below which idle topics are not looked for.
const SWEEP_FROM: usize = 64;

/// Topics of one value type by name, all with one [`TopicConfig`], made on first use.
///
/// A topic that nobody holds a handle to, with no subscribers and nothing kept in its
/// history, is forgotten (its counters and position with it) as the set grows, so that
/// topics named by clients (rooms, symbols) stay bounded by those in use. Cheap to clone:
/// clones share the topics.
///
/// ```
/// use typed_ws::topics::{Policy, TopicConfig, Topics};
///
/// #[derive(serde::Serialize)]
/// struct Tick { symbol: String, price: f64 }
///
/// let feeds: Topics<Tick> = Topics::with_config(
///     TopicConfig::new().policy(Policy::conflate(|tick: &Tick| tick.symbol.clone())),
/// );
/// let eur = feeds.topic("EUR");
/// assert_eq!(feeds.publish("EUR", &Tick { symbol: "EURUSD".into(), price: 1.08 })?, 0);
/// assert_eq!(eur.stats().published, 1);
/// assert_eq!(feeds.publish("JPY", &Tick { symbol: "USDJPY".into(), price: 151.2 })?, 0);
/// assert!(feeds.get("JPY").is_none()); // publishing makes no topic
/// # Ok::<(), typed_ws::Error>(())
/// ```
pub struct Topics<T> {
    shared: Arc<Registry<T>>,
}

struct Registry<T> {
    config: TopicConfig<T>,
    topics: Mutex<HashMap<String, Topic<T>>>,
    /// How many topics there were after the last sweep of idle ones.
    swept: AtomicUsize,
    forward: Forwarding<T>,
    /// Called with each value from another node, by [`Topics::on_received`].
    #[cfg_attr(not(any(feature = "nats", feature = "redis")), allow(dead_code))]
    heard: std::sync::OnceLock<Heard<T>>,
}

/// What [`Topics::on_received`] calls: the topic's name and the value.
type Heard<T> = Box<dyn Fn(&str, &T) + Send + Sync>;

impl<T: Serialize + 'static> Topics<T> {
    /// Topics with the default [`TopicConfig`].
    pub fn new() -> Self {
        Self::with_config(TopicConfig::new())
    }

    /// Topics that each get `config`.
    pub fn with_config(config: TopicConfig<T>) -> Self {
        Topics {
            shared: Arc::new(Registry {
                config,
                topics: Mutex::new(HashMap::new()),
                swept: AtomicUsize::new(0),
                forward: Arc::default(),
                heard: std::sync::OnceLock::new(),
            }),
        }
    }

    /// The topic of that name, made now if there is none.
    pub fn topic(&self, name: &str) -> Topic<T> {
        let mut topics = self.lock();
        if let Some(topic) = topics.get(name) {
            return topic.clone();
        }
        // Topics named by clients come and go: the idle ones are forgotten whenever the set
        // has doubled since the last sweep, which keeps it within twice those in use, at an
        // amortized constant cost per topic made.
        let swept = self.shared.swept.load(Ordering::Relaxed);
        if topics.len() >= (2 * swept).max(SWEEP_FROM) {
            topics.retain(|_, topic| !topic.is_idle());
            self.shared.swept.store(topics.len(), Ordering::Relaxed);
        }
        let topic = Topic::forwarded(
            name.to_owned(),
            self.shared.config.clone(),
            self.shared.forward.clone(),
        );
        topics.insert(name.to_owned(), topic.clone());
        topic
    }

    /// The topic of that name, if there is one.
    pub fn get(&self, name: &str) -> Option<Topic<T>> {
        self.lock().get(name).cloned()
    }

    /// Publishes to the topic of that name (see [`Topic::publish`]); `Ok(0)` when there is
    /// none here, which is not made. On a [bus](crate::bus), the value goes to the topic's
    /// subscribers on every other node either way.
    pub fn publish(&self, name: &str, value: &T) -> Result<usize, Error> {
        match self.get(name) {
            Some(topic) => topic.publish(value),
            None => {
                if let Some(remote) = self.shared.forward.get() {
                    (remote.forward)(name, value)?;
                }
                Ok(0)
            }
        }
    }

    /// Forgets the topic of that name, and returns it. Its subscribers stay subscribed to
    /// it; a topic made later under the name is a new one.
    pub fn remove(&self, name: &str) -> Option<Topic<T>> {
        self.lock().remove(name)
    }

    /// The names of the topics there are now.
    pub fn names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Topic<T>>> {
        // A panic elsewhere cannot leave the map half-changed.
        self.shared
            .topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: Serialize + 'static> Default for Topics<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for Topics<T> {
    fn clone(&self) -> Self {
        Topics {
            shared: self.shared.clone(),
        }
    }
}

impl<T> fmt::Debug for Topics<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topics")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_named_and_let_go_are_forgotten_but_held_and_kept_ones_stay() {
        let topics: Topics<String> =
            Topics::with_config(TopicConfig::new().history(History::last(8)));
        let held = topics.topic("held");
        topics
            .topic("kept")
            .publish(&"remember me".to_owned())
            .unwrap();
        for n in 0..10_000 {
            topics.topic(&format!("client-{n}"));
        }
        let names = topics.names();
        assert!(names.len() <= 2 * SWEEP_FROM, "{} topics kept", names.len());
        assert!(topics.get("held").is_some() && topics.get("kept").is_some());
        assert_eq!(topics.topic("kept").position().seq, 1, "the same topic");
        drop(held);
    }
}
