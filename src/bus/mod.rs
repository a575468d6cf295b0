//! Buses: topics that span nodes, over a broker you already run.
//!
//! A [`Bus`] connects this process to a NATS server (feature `nats`) or to Redis pub/sub
//! (feature `redis`). [`Topics::bus`](crate::topics::Topics::bus) puts a set of topics on it:
//! from then on a value published to one of those topics on any node reaches the topic's
//! subscribers on every node, exactly once, and in publish order per publisher.
//!
//! ```no_run
//! use typed_ws::bus::Bus;
//! use typed_ws::topics::Topics;
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Tick { symbol: String, price: f64 }
//!
//! # async fn run() -> Result<(), typed_ws::Error> {
//! let bus = Bus::connect("nats://127.0.0.1:4222").await?;
//! let ticks: Topics<Tick> = Topics::new().bus(&bus, "ticks")?;
//! // Subscribers of "EURUSD" on every node connected to that NATS server get it.
//! ticks.publish("EURUSD", &Tick { symbol: "EURUSD".into(), price: 1.08 })?;
//! # Ok(()) }
//! ```
//!
//! # How a publication travels
//!
//! The publishing node queues the value for its own subscribers at once, as without a bus,
//! and hands it, encoded once as MessagePack, to the bus's task, which sends it to the broker
//! on the subject (NATS) or channel (Redis) `typed-ws.{namespace}`. Every other node gets it
//! from the broker, decodes it once if it has a topic of that name with subscribers, and
//! queues it for them, encoded once per converter in use there. A node ignores its own
//! publications coming back, so each subscriber gets each publication once.
//!
//! # When the broker goes away
//!
//! The bus reconnects by itself, with the [`Backoff`] of its [`BusBuilder`], and
//! subscribes again. Delivery across nodes is *at most once* around an outage:
//! - subscribers on the publishing node get everything, whatever the broker does (except for
//!   topics whose history is [on the broker](crate::topics::History::on_broker): every node
//!   gets those as the broker numbered them, the publishing one too);
//! - what a node publishes while it cannot reach the broker waits in the bus's queue
//!   ([`BusBuilder::queue`], [`DEFAULT_QUEUE`] publications) and goes out once it is
//!   back; beyond the queue it is dropped and counted in [`BusStats::lost`], as is a batch
//!   a failing connection took without confirming it (never sent twice);
//! - a node receives nothing published while its own subscription is down: what other nodes
//!   sent in that time is lost to its subscribers, silently for them (the bus counts its
//!   [`BusStats::reconnects`]);
//! - nothing is duplicated or reordered: what a subscriber gets from one publisher is a
//!   subsequence of what was published, in order.
//!
//! Numbered topics ([`Topic::subscribe_since`](crate::topics::Topic::subscribe_since)) make
//! the loss visible: when a node's subscription is back, each of its topics starts another
//! epoch and its numbered subscribers get a `reset` notice (see
//! [the wire form](crate::topics::history)); a position from before cannot be resumed across
//! the hole. Topics whose history is [on the broker](crate::topics::History::on_broker)
//! (Redis) lose nothing the broker keeps: a node reads what it missed from the topic's stream
//! when its subscription is back ([history on the broker](crate::topics::history#on-the-broker)).

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::sync::{mpsc, watch};

use crate::error::Error;
use crate::reconnect::Backoff;

mod envelope;
#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "redis")]
mod redis;
mod relay;
mod route;
#[cfg(feature = "redis")]
mod streams;

pub(crate) use envelope::Envelope;
#[cfg(feature = "redis")]
pub(crate) use relay::CatchUp;
pub(crate) use relay::{Outgoing, Relay};
#[cfg(feature = "redis")]
pub(crate) use route::Heard;
pub(crate) use route::Route;
#[cfg(feature = "redis")]
pub(crate) use streams::{Backlog, Kept};

/// How many publications may wait for the broker unless [`BusBuilder::queue`] says
/// otherwise.
pub const DEFAULT_QUEUE: usize = 8192;

/// What a bus's subjects (NATS) or channels (Redis) start with.
const PREFIX: &str = "typed-ws";

/// A connection to a broker that carries topics' publications between nodes.
///
/// Cheap to clone: clones share the connection, which lasts until the last clone and the last
/// [`Topics`](crate::topics::Topics) on it are dropped. See the [module docs](self).
#[derive(Clone)]
pub struct Bus {
    shared: Arc<Shared>,
}

/// A bus's counters, from [`Bus::stats`], each since it connected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BusStats {
    /// Publications handed to the broker.
    pub sent: u64,
    /// Publications from other nodes.
    pub received: u64,
    /// Publications of this node that never reached the broker: the queue was full, or the
    /// connection failed under them.
    pub lost: u64,
    /// Messages from the broker that were not a publication of typed-ws, or whose value did
    /// not decode as the topic's type.
    pub undecodable: u64,
    /// Connections made again after the broker went away.
    pub reconnects: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) sent: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) lost: AtomicU64,
    pub(crate) undecodable: AtomicU64,
    pub(crate) reconnects: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

pub(crate) struct Shared {
    url: String,
    node: u64,
    outgoing: mpsc::Sender<Outgoing>,
    #[cfg(feature = "redis")]
    catch_ups: mpsc::Sender<CatchUp>,
    routes: Mutex<HashMap<String, Weak<dyn Route>>>,
    pub(crate) counters: Counters,
    connected: watch::Sender<bool>,
    /// Dropped with the last handle, which ends the bus's tasks.
    _stop: watch::Sender<()>,
}

impl Shared {
    /// Counts a reconnection and tells every namespace's topics of the hole before it.
    pub(crate) fn reconnected(&self) {
        Counters::add(&self.counters.reconnects, 1);
        let routes: Vec<_> = self
            .routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        for route in routes {
            route.resync();
        }
    }

    pub(crate) fn set_connected(&self, up: bool) {
        self.connected.send_if_modified(|state| {
            let changed = *state != up;
            *state = up;
            changed
        });
    }
}

/// What a broker driver gets: the shared state, the queue to drain and the stop signal.
pub(crate) struct Driver {
    pub(crate) shared: Weak<Shared>,
    pub(crate) outgoing: mpsc::Receiver<Outgoing>,
    #[cfg(feature = "redis")]
    pub(crate) catch_ups: mpsc::Receiver<CatchUp>,
    pub(crate) stop: watch::Receiver<()>,
    pub(crate) backoff: Backoff,
}

/// The subject or channel pattern that every namespace's publications match.
pub(crate) fn pattern(wildcard: &str) -> String {
    format!("{PREFIX}.{wildcard}")
}

/// How to connect a [`Bus`]: the broker's URL, the reconnect backoff and the queue bound.
///
/// ```no_run
/// use std::time::Duration;
/// use typed_ws::Backoff;
/// use typed_ws::bus::Bus;
///
/// # async fn run() -> Result<(), typed_ws::Error> {
/// let bus = Bus::builder("redis://127.0.0.1:6379")
///     .backoff(Backoff::new().initial(Duration::from_millis(100)).cap(Duration::from_secs(5)))
///     .queue(50_000)
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct BusBuilder {
    url: String,
    backoff: Backoff,
    queue: usize,
}

impl BusBuilder {
    /// The delays between attempts to reach the broker again; its `max_attempts` is not
    /// used: a bus tries for as long as it lives.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// How many publications of this node may wait for the broker (at least 1); beyond it
    /// they are counted in [`BusStats::lost`].
    pub fn queue(mut self, publications: usize) -> Self {
        self.queue = publications.max(1);
        self
    }

    /// Connects to the broker, and returns once connected and subscribed. A broker that
    /// cannot be reached now is an error; one lost later is reconnected to in the background.
    pub async fn connect(self) -> Result<Bus, Error> {
        let (tx, rx) = mpsc::channel(self.queue);
        #[cfg(feature = "redis")]
        let (catch_ups, catch_ups_rx) = mpsc::channel(relay::CATCH_UPS);
        let (stop, stop_rx) = watch::channel(());
        let (connected, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            url: self.url.clone(),
            node: RandomState::new().build_hasher().finish(),
            outgoing: tx,
            #[cfg(feature = "redis")]
            catch_ups,
            routes: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            connected,
            _stop: stop,
        });
        let driver = Driver {
            shared: Arc::downgrade(&shared),
            outgoing: rx,
            #[cfg(feature = "redis")]
            catch_ups: catch_ups_rx,
            stop: stop_rx,
            backoff: self.backoff,
        };
        let scheme = self.url.split_once("://").map(|(scheme, _)| scheme);
        match scheme {
            #[cfg(feature = "nats")]
            Some("nats") => nats::start(&self.url, driver).await?,
            #[cfg(feature = "redis")]
            Some("redis") => redis::start(&self.url, driver).await?,
            _ => {
                drop(driver);
                return Err(Error::bus(format!(
                    "no bus for {:?}: {} (enable the crate's `nats` or `redis` feature)",
                    redact(&self.url),
                    "expected a nats:// or redis:// URL"
                )));
            }
        }
        shared.set_connected(true);
        Ok(Bus { shared })
    }
}

impl Bus {
    /// Connects to the broker at `url` (`nats://HOST:PORT` or `redis://HOST:PORT`) with the
    /// default backoff and queue; see [`BusBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Bus, Error> {
        Bus::builder(url).connect().await
    }

    /// A bus to connect to the broker at `url`, with options.
    pub fn builder(url: &str) -> BusBuilder {
        BusBuilder {
            url: url.to_owned(),
            backoff: Backoff::new(),
            queue: DEFAULT_QUEUE,
        }
    }

    /// Whether the broker keeps topics' history (Redis, in streams), for topics whose
    /// history is [on the broker](crate::topics::History::on_broker): their positions then
    /// hold on every node.
    pub fn keeps_history(&self) -> bool {
        cfg!(feature = "redis") && self.shared.url.starts_with("redis://")
    }

    /// Whether the bus is connected to its broker now.
    pub fn is_connected(&self) -> bool {
        *self.shared.connected.borrow()
    }

    /// Waits until the bus is connected to its broker (at once if it is).
    pub async fn connected(&self) {
        let mut state = self.shared.connected.subscribe();
        // The sender lives in `shared`, which `self` keeps: waiting cannot fail.
        let _ = state.wait_for(|up| *up).await;
    }

    /// The bus's counters.
    pub fn stats(&self) -> BusStats {
        let c = &self.shared.counters;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        BusStats {
            sent: get(&c.sent),
            received: get(&c.received),
            lost: get(&c.lost),
            undecodable: get(&c.undecodable),
            reconnects: get(&c.reconnects),
        }
    }

    /// Routes the namespace's remote publications to `route`; an error if another live set
    /// of topics has the namespace.
    pub(crate) fn attach(&self, namespace: &str, route: Weak<dyn Route>) -> Result<Relay, Error> {
        let valid = !namespace.is_empty()
            && namespace.len() <= 64
            && namespace
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(Error::bus(format!(
                "namespace {namespace:?} must be 1 to 64 ASCII letters, digits, '-' or '_'"
            )));
        }
        let mut routes = self
            .shared
            .routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if routes.get(namespace).is_some_and(|r| r.strong_count() > 0) {
            return Err(Error::bus(format!(
                "namespace {namespace:?} is already in use on this bus"
            )));
        }
        routes.insert(namespace.to_owned(), route);
        Ok(Relay::new(self.clone(), namespace))
    }
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bus")
            .field("url", &redact(&self.shared.url))
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(redact("redis://:hunter2@db:6379"), "redis://***@db:6379");
        assert_eq!(redact("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }

    #[tokio::test]
    async fn an_unknown_scheme_is_refused_before_any_connection() {
        let err = Bus::connect("amqp://127.0.0.1:5672").await.unwrap_err();
        assert!(err.to_string().contains("nats:// or redis://"), "{err}");
    }
}
