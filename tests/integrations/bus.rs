//! Topics across nodes on real brokers (NATS and Redis, started by the tests): every
//! publication reaches every subscriber on every node once, in order per publisher; a node
//! decodes a remote publication at most once; the broker killed and restarted loses at most
//! what was published during the outage, never doubles or reorders, and the bus comes back.
#![cfg(all(
    feature = "nats",
    feature = "redis",
    feature = "json",
    feature = "cbor",
    feature = "msgpack"
))]

use crate::common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use common::brokers::{BOTH, Broker, Kind};
use common::topics::{Tick, tick};
use common::*;
use serde::{Deserialize, Deserializer, Serialize};
use typed_ws::bus::Bus;
use typed_ws::topics::{Outbox, Topics};
use typed_ws::{AnyConverter, Error, Session};

/// One node: a bus connection and the topics on it.
struct Node<T> {
    bus: Bus,
    topics: Topics<T>,
}

async fn node<T>(broker: &Broker) -> Node<T>
where
    T: Serialize + for<'de> Deserialize<'de> + Send + Sync + 'static,
{
    let bus = within("connect the bus", Bus::connect(&broker.url()))
        .await
        .unwrap_or_else(|e| panic!("{:?} bus: {}", broker.kind, e.report()));
    let topics = Topics::new().bus(&bus, "tests").expect("on the bus");
    Node { bus, topics }
}

/// A client session subscribed on `topics`' topic `name` through a server session with
/// `codec`; the client end is returned.
async fn subscriber<T>(topics: &Topics<T>, name: &str, codec: &str) -> Session<AnyConverter>
where
    T: Serialize + 'static,
{
    let (client, server) = pair(negotiating(codec), negotiating(codec)).await;
    let (tx, mut rx) = server.split();
    let outbox = Outbox::new(tx);
    topics.topic(name).subscribe(&outbox).expect("subscribe");
    tokio::spawn(async move {
        let _outbox = outbox;
        while rx.receive().await.is_ok() {}
    });
    client
}

/// Receives ticks until `done` says the list is complete.
async fn ticks_until(
    session: &mut Session<AnyConverter>,
    what: &str,
    mut done: impl FnMut(&[Tick]) -> bool,
) -> Vec<Tick> {
    let mut got = Vec::new();
    within(what, async {
        while !done(&got) {
            got.push(
                session
                    .receive_deserialized::<Tick>()
                    .await
                    .expect("a tick"),
            );
        }
    })
    .await;
    got
}

/// The seqs of each symbol's ticks, in the order received.
fn by_symbol(ticks: &[Tick]) -> HashMap<String, Vec<u64>> {
    let mut seqs: HashMap<String, Vec<u64>> = HashMap::new();
    for t in ticks {
        seqs.entry(t.symbol.clone()).or_default().push(t.seq);
    }
    seqs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subscriber_on_every_node_gets_every_publication_once_in_order_per_publisher() {
    for kind in BOTH {
        let broker = Broker::start(kind);
        let a = node::<Tick>(&broker).await;
        let b = node::<Tick>(&broker).await;
        let mut sessions = [
            subscriber(&a.topics, "EUR", "json").await,
            subscriber(&a.topics, "EUR", "msgpack").await,
            subscriber(&b.topics, "EUR", "cbor").await,
            subscriber(&b.topics, "EUR", "msgpack").await,
        ];
        // A subscriber of another topic gets none of them.
        let mut elsewhere = subscriber(&b.topics, "JPY", "json").await;

        const EACH: u64 = 300;
        let (ta, tb) = (a.topics.clone(), b.topics.clone());
        let publish_a = tokio::spawn(async move {
            for seq in 0..EACH {
                ta.publish("EUR", &tick("from-a", seq))
                    .expect("publish on a");
                tokio::task::yield_now().await;
            }
        });
        let publish_b = tokio::spawn(async move {
            for seq in 0..EACH {
                tb.publish("EUR", &tick("from-b", seq))
                    .expect("publish on b");
                tokio::task::yield_now().await;
            }
        });
        publish_a.await.unwrap();
        publish_b.await.unwrap();
        b.topics.publish("JPY", &tick("yen", 0)).unwrap();

        for (i, session) in sessions.iter_mut().enumerate() {
            let got =
                ticks_until(session, "every tick", |got| got.len() == 2 * EACH as usize).await;
            let seqs = by_symbol(&got);
            let all: Vec<u64> = (0..EACH).collect();
            assert_eq!(seqs["from-a"], all, "{kind:?}, subscriber {i}: a's ticks");
            assert_eq!(seqs["from-b"], all, "{kind:?}, subscriber {i}: b's ticks");
        }
        let yen = ticks_until(&mut elsewhere, "the yen tick", |got| !got.is_empty()).await;
        assert_eq!(yen, vec![tick("yen", 0)], "{kind:?}: only its own topic");

        let (sa, sb) = (a.bus.stats(), b.bus.stats());
        assert_eq!((sa.sent, sa.lost), (EACH, 0), "{kind:?}: a sent each once");
        assert_eq!(
            (sb.sent, sb.lost),
            (EACH + 1, 0),
            "{kind:?}: b sent each once"
        );
        assert_eq!(sa.received, EACH + 1, "{kind:?}: a got b's, not its own");
        let eur = b.topics.get("EUR").unwrap().stats();
        assert_eq!((eur.published, eur.received), (EACH, EACH), "{kind:?}");
    }
}

/// How many times a [`Counted`] value was decoded, across the whole test binary: only the
/// one test below decodes it.
static DECODED: AtomicUsize = AtomicUsize::new(0);

/// A tick whose decodings are counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Counted(Tick);

impl<'de> Deserialize<'de> for Counted {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        DECODED.fetch_add(1, Ordering::Relaxed);
        Tick::deserialize(deserializer).map(Counted)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_decodes_a_remote_publication_once_and_encodes_it_once_per_codec() {
    let broker = Broker::start(Kind::Nats);
    let publisher = node::<Counted>(&broker).await;
    let subscribing = node::<Counted>(&broker).await;
    let idle = node::<Counted>(&broker).await;
    let idle_topic = idle.topics.topic("EUR"); // a topic, but nobody subscribed to it
    let mut sessions = Vec::new();
    for codec in ["json", "cbor", "msgpack", "json", "cbor", "msgpack"] {
        sessions.push(subscriber(&subscribing.topics, "EUR", codec).await);
    }

    const N: u64 = 50;
    for seq in 0..N {
        publisher
            .topics
            .publish("EUR", &Counted(tick("x", seq)))
            .unwrap();
    }
    for session in &mut sessions {
        let got = ticks_until(session, "every tick", |got| got.len() == N as usize).await;
        assert_eq!(
            got.iter().map(|t| t.seq).collect::<Vec<_>>(),
            (0..N).collect::<Vec<_>>()
        );
    }
    within("the idle node receives them too", async {
        while idle.bus.stats().received < N {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert_eq!(
        DECODED.load(Ordering::Relaxed),
        N as usize,
        "once per publication on the subscribing node, never on the idle one"
    );
    let stats = subscribing.topics.get("EUR").unwrap().stats();
    assert_eq!(stats.received, N);
    assert_eq!(stats.encoded, 3 * N, "once per codec in use");
    assert_eq!(stats.delivered, 6 * N);
    assert_eq!(idle_topic.stats().received, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restarted_mid_run_loses_at_most_the_outage_and_never_doubles_or_reorders() {
    for kind in BOTH {
        let mut broker = Broker::start(kind);
        let a = node::<Tick>(&broker).await;
        let b = node::<Tick>(&broker).await;
        let mut local = subscriber(&a.topics, "EUR", "msgpack").await;
        let mut remote = subscriber(&b.topics, "EUR", "json").await;

        let mut seq = 0;
        let publish = |seq: &mut u64, n: u64| {
            for _ in 0..n {
                a.topics.publish("EUR", &tick("a", *seq)).unwrap();
                *seq += 1;
            }
        };
        publish(&mut seq, 100);
        let before = ticks_until(&mut remote, "ticks before the outage", |g| g.len() == 100).await;
        assert_eq!(before.last().unwrap().seq, 99);

        broker.kill();
        within("both buses see the broker go", async {
            while a.bus.is_connected() || b.bus.is_connected() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        publish(&mut seq, 100); // during the outage: local subscribers only, remote at most once
        broker.restart();
        within("a reconnects", a.bus.connected()).await;
        within("b reconnects", b.bus.connected()).await;

        // Publish until b's subscription is back and a tick comes through; from that tick on,
        // everything arrives.
        let mut after = Vec::new();
        within("a tick crosses the restarted broker", async {
            'probing: loop {
                let first = seq;
                publish(&mut seq, 1);
                while let Ok(received) = tokio::time::timeout(
                    Duration::from_millis(50),
                    remote.receive_deserialized::<Tick>(),
                )
                .await
                {
                    let t = received.expect("a tick");
                    let through = t.seq >= first;
                    after.push(t);
                    if through {
                        break 'probing;
                    }
                }
            }
        })
        .await;
        let resumed = after.last().unwrap().seq;
        publish(&mut seq, 100);
        let last = seq - 1;
        after.extend(
            ticks_until(&mut remote, "ticks after the restart", |g| {
                g.last().is_some_and(|t| t.seq == last)
            })
            .await,
        );

        let remote_seqs: Vec<u64> = before.iter().chain(&after).map(|t| t.seq).collect();
        assert!(
            remote_seqs.windows(2).all(|w| w[0] < w[1]),
            "{kind:?}: in order, none twice: {remote_seqs:?}"
        );
        assert!(
            (resumed..=last).all(|s| remote_seqs.contains(&s)),
            "{kind:?}: everything from the first tick after the restart on"
        );
        let local_seqs: Vec<u64> = ticks_until(&mut local, "every local tick", |g| {
            g.last().is_some_and(|t| t.seq == last)
        })
        .await
        .iter()
        .map(|t| t.seq)
        .collect();
        assert_eq!(
            local_seqs,
            (0..=last).collect::<Vec<_>>(),
            "{kind:?}: the publishing node's own subscribers lose nothing"
        );
        assert!(
            a.bus.stats().reconnects >= 1 && b.bus.stats().reconnects >= 1,
            "{kind:?}"
        );
    }
}

#[tokio::test]
async fn a_bus_that_cannot_be_set_up_says_why() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    for url in [
        format!("nats://127.0.0.1:{port}"),
        format!("redis://127.0.0.1:{port}"),
    ] {
        let err = within("refused", Bus::connect(&url)).await.unwrap_err();
        assert!(matches!(err, Error::Bus { .. }), "{url}: {err:?}");
        assert!(err.to_string().starts_with("bus: cannot connect"), "{err}");
    }

    let broker = Broker::start(Kind::Redis);
    let bus = Bus::connect(&broker.url()).await.unwrap();
    let first: Topics<Tick> = Topics::new().bus(&bus, "prices").unwrap();
    let err = Topics::<Tick>::new().bus(&bus, "prices").unwrap_err();
    assert!(err.to_string().contains("already in use"), "{err}");
    let err = first.clone().bus(&bus, "other").unwrap_err();
    assert!(err.to_string().contains("on a bus already"), "{err}");
    for bad in ["", "a.b", "spaces here", &"x".repeat(65)] {
        let err = Topics::<Tick>::new().bus(&bus, bad).unwrap_err();
        assert!(
            err.to_string().contains("must be 1 to 64"),
            "{bad:?}: {err}"
        );
    }
    drop(first);
    Topics::<Tick>::new()
        .bus(&bus, "prices")
        .expect("a namespace is free again once its topics are dropped");
}

/// A node keeps what its `on_received` hook heard last (the values another node publishes,
/// counting up) and subscribes newcomers with it as their first frame while the other node
/// publishes: each newcomer's first value is the one after what its first frame says, never
/// one the frame already covered, never one past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_frame_and_the_values_after_it_agree_with_the_on_received_hook() {
    for broker in BOTH.map(Broker::start) {
        let kind = broker.kind;
        let publisher = node::<u64>(&broker).await;
        let bus = within("connect the bus", Bus::connect(&broker.url()))
            .await
            .expect("bus");
        let next = Arc::new(AtomicU64::new(0));
        let topics = Topics::new()
            .bus(&bus, "tests")
            .expect("on the bus")
            .on_received({
                let next = next.clone();
                // Slow on both sides of the store, so that a subscription that could come
                // between the hook and the queueing of its value, on either side, would.
                move |_, value: &u64| {
                    spin(Duration::from_micros(50));
                    next.store(value + 1, Ordering::SeqCst);
                    spin(Duration::from_micros(50));
                }
            })
            .expect("a hook");
        let topic = topics.topic("counting");
        let stop = Arc::new(AtomicBool::new(false));
        let publishing = tokio::spawn({
            let (stop, topic) = (stop.clone(), publisher.topics.topic("counting"));
            async move {
                let mut value = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    topic.publish(&value).expect("publish");
                    value += 1;
                    if value.is_multiple_of(4) {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
        });
        // From the first value heard on, this node hears every one, in order.
        within("the first value heard", async {
            while next.load(Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
        for newcomer in 0..100 {
            let (mut client, server) = pair(negotiating("json"), negotiating("json")).await;
            let (tx, mut rx) = server.split();
            let outbox = Outbox::new(tx);
            within(
                "subscribe",
                topic.subscribe_since_with(&outbox, None, || next.load(Ordering::SeqCst)),
            )
            .await
            .expect("subscribe");
            tokio::spawn(async move {
                let _outbox = outbox;
                while rx.receive().await.is_ok() {}
            });
            let first: u64 = within("the first frame", client.receive_deserialized())
                .await
                .expect("the first frame, before the outcome");
            let outcome: serde_json::Value = within("the outcome", client.receive_deserialized())
                .await
                .expect("the outcome");
            assert_eq!(outcome["outcome"], "live", "{kind:?}");
            let value: serde_json::Value = within("a value", client.receive_deserialized())
                .await
                .expect("a value");
            assert_eq!(
                value["data"], first,
                "{kind:?}: newcomer {newcomer}'s first value after its first frame"
            );
        }
        stop.store(true, Ordering::SeqCst);
        within("the publisher", publishing)
            .await
            .expect("publisher");
    }
}

/// Keeps the thread busy for `time`, as a hook doing real work would.
fn spin(time: Duration) {
    let start = std::time::Instant::now();
    while start.elapsed() < time {
        std::hint::spin_loop();
    }
}
