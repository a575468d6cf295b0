//! What the topic tests share: the value published, a converter that counts its encodings,
//! a server handler that subscribes each session, and waits for a topic's counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use typed_ws::topics::{Outbox, Topic, TopicStats};
use typed_ws::{AnyConverter, CloseReason, Converter, Error, Frame, Negotiation, Session};

use super::within;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tick {
    pub symbol: String,
    pub seq: u64,
    pub price: f64,
    /// Makes frames big enough to fill a socket that is not read in a few hundred of them.
    pub pad: String,
}

pub fn tick(symbol: &str, seq: u64) -> Tick {
    Tick {
        symbol: symbol.to_owned(),
        seq,
        price: 100.0 + seq as f64 / 8.0,
        pad: String::new(),
    }
}

/// A tick of about 16 KiB.
pub fn big_tick(symbol: &str, seq: u64) -> Tick {
    Tick {
        pad: "x".repeat(16 << 10),
        ..tick(symbol, seq)
    }
}

/// A codec that counts its encodings, equal to another when the codecs are.
#[derive(Clone)]
pub struct Counting {
    inner: AnyConverter,
    pub encodings: Arc<AtomicUsize>,
}

impl PartialEq for Counting {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
}

impl Converter for Counting {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn serialize<T: Serialize + ?Sized>(&self, value: &T) -> Result<Frame, Error> {
        self.encodings.fetch_add(1, Ordering::Relaxed);
        self.inner.serialize(value)
    }

    fn deserialize<T: DeserializeOwned>(&self, frame: &Frame) -> Result<T, Error> {
        self.inner.deserialize(frame)
    }

    fn is_applicable(&self, frame: &Frame) -> bool {
        self.inner.is_applicable(frame)
    }
}

/// JSON, CBOR and MessagePack, in that order, all counting into `encodings`.
pub fn counting_codecs(encodings: &Arc<AtomicUsize>) -> Negotiation<Counting> {
    let codec = |name: &str| Counting {
        inner: name.parse().unwrap(),
        encodings: encodings.clone(),
    };
    Negotiation::prefer(codec("json"))
        .then(codec("cbor"))
        .then(codec("msgpack"))
}

/// What a subscribing handler reports.
#[derive(Debug, PartialEq)]
pub enum Event {
    Subscribed,
    /// The session ended; the outbox's close reason then.
    Ended(Option<CloseReason>),
}

/// A server handler: subscribes the session to `topic` through an outbox, then receives until
/// the session ends.
pub async fn subscribe_until_gone<C: Converter + PartialEq>(
    session: Session<C>,
    topic: Topic<Tick>,
    events: mpsc::UnboundedSender<Event>,
) {
    let (tx, mut rx) = session.split();
    let outbox = Outbox::new(tx);
    topic.subscribe(&outbox).expect("subscribe");
    let _ = events.send(Event::Subscribed);
    while rx.receive().await.is_ok() {}
    let _ = events.send(Event::Ended(outbox.close_reason()));
}

pub async fn subscribed(events: &mut mpsc::UnboundedReceiver<Event>, n: usize) {
    for _ in 0..n {
        let event = within("a subscription", events.recv()).await;
        assert_eq!(event, Some(Event::Subscribed));
    }
}

/// Waits until the topic's counters satisfy `done`: they are updated by tasks of their own.
pub async fn stats_until(
    topic: &Topic<Tick>,
    what: &str,
    done: impl Fn(&TopicStats) -> bool,
) -> TopicStats {
    within(what, async {
        loop {
            let stats = topic.stats();
            if done(&stats) {
                return stats;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
}

/// Receives `n` ticks.
pub async fn receive_ticks<C: Converter>(session: &mut Session<C>, n: usize) -> Vec<Tick> {
    let mut ticks = Vec::with_capacity(n);
    for _ in 0..n {
        let tick = within("a tick", session.receive_deserialized::<Tick>()).await;
        ticks.push(tick.expect("a tick"));
    }
    ticks
}
