//! Numbered topics across nodes (NATS and Redis, started by the tests): a subscriber cut off
//! on a node that did not publish comes back there and gets exactly what it missed; a node
//! cut from the broker starts a new epoch when it is back and tells its numbered
//! subscribers, so that what the outage lost is never missing silently.
#![cfg(all(
    feature = "nats",
    feature = "redis",
    feature = "json",
    feature = "cbor",
    feature = "msgpack"
))]

use crate::common;

use std::time::Duration;

use common::brokers::{BOTH, Broker};
use common::topics::{Tick, tick};
use common::*;
use typed_ws::bus::{Bus, BusBuilder};
use typed_ws::topics::{
    History, Outbox, Outcome, Position, Resumed, Sequenced, Topic, TopicConfig, Topics,
};
use typed_ws::{AnyConverter, Converter, Session};

/// A node whose topics keep 2,000 publications.
async fn node(broker: &Broker) -> (Bus, Topics<Tick>) {
    node_on(Bus::builder(&broker.url()), broker, History::last(2_000)).await
}

/// A node on the bus `builder` makes, whose topics keep `history`.
pub(crate) async fn node_on(
    builder: BusBuilder,
    broker: &Broker,
    history: History<Tick>,
) -> (Bus, Topics<Tick>) {
    let bus = within("connect the bus", builder.connect())
        .await
        .unwrap_or_else(|e| panic!("{:?} bus: {}", broker.kind, e.report()));
    let config = TopicConfig::new().history(history);
    let topics = Topics::with_config(config)
        .bus(&bus, "resume")
        .expect("on the bus");
    (bus, topics)
}

/// A client session subscribed to `topic`'s numbered stream from `since`; the outcome it
/// was told first.
pub(crate) async fn numbered(
    topic: &Topic<Tick>,
    since: Option<Position>,
) -> (Session<AnyConverter>, Resumed) {
    let (mut client, server) = pair(negotiating("json"), negotiating("cbor,json")).await;
    let (tx, mut rx) = server.split();
    let outbox = Outbox::new(tx);
    within("subscribe", topic.subscribe_since(&outbox, since))
        .await
        .expect("subscribe");
    tokio::spawn(async move {
        let _outbox = outbox;
        while rx.receive().await.is_ok() {}
    });
    let resumed = within("the outcome", client.receive_deserialized::<Resumed>())
        .await
        .expect("an outcome first");
    (client, resumed)
}

/// Receives `n` numbered ticks.
pub(crate) async fn values(session: &mut Session<AnyConverter>, n: usize) -> Vec<Sequenced<Tick>> {
    let mut got = Vec::with_capacity(n);
    within("numbered ticks", async {
        while got.len() < n {
            got.push(
                session
                    .receive_deserialized::<Sequenced<Tick>>()
                    .await
                    .expect("a numbered tick"),
            );
        }
    })
    .await;
    got
}

/// Waits until `check` holds, polling: what the nodes do between the broker's hops.
pub(crate) async fn until(what: &str, check: impl Fn() -> bool) {
    within(what, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

/// A subscriber of `on_b` (live, numbered) gets `a`'s first 500 ticks and is cut; `a`
/// publishes 500 more, which `on_b`'s node hears, and a second passes. What the subscriber
/// got, and its position.
pub(crate) async fn cut_at_500(
    a: &Topics<Tick>,
    on_b: &Topic<Tick>,
) -> (Vec<Sequenced<Tick>>, Position) {
    let (mut session, live) = numbered(on_b, None).await;
    assert_eq!((live.outcome, live.seq), (Outcome::Live, 0));
    for seq in 0..500 {
        a.publish("EUR", &tick("a", seq)).unwrap();
    }
    let first = values(&mut session, 500).await;
    let kept = first.last().unwrap().position();
    drop(session);
    until("the cut subscription ends", || {
        on_b.stats().subscribers == 0
    })
    .await;
    for seq in 500..1_000 {
        a.publish("EUR", &tick("a", seq)).unwrap();
    }
    until(
        "the node hears the other 500, no one subscribed there",
        || on_b.stats().received == 1_000,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    (first, kept)
}

/// Asserts that `all` are the ticks 0..=last, in order, numbered from 1 in one epoch.
pub(crate) fn assert_whole(all: &[&Sequenced<Tick>], last: u64, what: &str) {
    assert_eq!(
        all.iter().map(|v| v.data.seq).collect::<Vec<_>>(),
        (0..=last).collect::<Vec<_>>(),
        "{what}: every tick once, in order, across the cut and the seam"
    );
    assert!(
        all.iter()
            .zip(1..)
            .all(|(v, seq)| v.seq == seq && v.epoch == all[0].epoch),
        "{what}: one numbered stream, from 1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_cut_at_500_resumes_on_a_node_that_did_not_publish_and_gets_1_to_1000_once() {
    for kind in BOTH {
        let broker = Broker::start(kind);
        let (_bus_a, a) = node(&broker).await;
        let (_bus_b, b) = node(&broker).await;
        let here = b.topic("EUR");
        let (first, kept) = cut_at_500(&a, &here).await;

        let (mut session, resumed) = numbered(&here, Some(kept)).await;
        assert_eq!(
            (resumed.outcome, resumed.count),
            (Outcome::Recovered, 500),
            "{kind:?}: {resumed:?}"
        );
        let missed = values(&mut session, 500).await;
        a.publish("EUR", &tick("a", 1_000)).unwrap();
        let live = values(&mut session, 1).await;

        let all: Vec<&Sequenced<Tick>> = first.iter().chain(&missed).chain(&live).collect();
        assert_whole(&all, 1_000, &format!("{kind:?}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_from_the_broker_starts_a_new_epoch_and_says_so_to_its_numbered_subscribers() {
    for kind in BOTH {
        let mut broker = Broker::start(kind);
        let (bus_a, a) = node(&broker).await;
        let (bus_b, b) = node(&broker).await;
        let here = b.topic("EUR");
        let (mut session, _) = numbered(&here, None).await;

        for seq in 0..10 {
            a.publish("EUR", &tick("a", seq)).unwrap();
        }
        let before = values(&mut session, 10).await;
        let kept = before.last().unwrap().position();

        broker.kill();
        until("both buses see the broker go", || {
            !bus_a.is_connected() && !bus_b.is_connected()
        })
        .await;
        for seq in 10..20 {
            a.publish("EUR", &tick("a", seq)).unwrap();
        }
        broker.restart();
        within("a reconnects", bus_a.connected()).await;
        within("b reconnects", bus_b.connected()).await;

        // What the outage did not take may come before the notice, in the old epoch.
        let notice = within("the reset notice", async {
            loop {
                let frame = session.receive_message().await.expect("a frame");
                let converter = session.converter();
                match converter.deserialize::<Sequenced<Tick>>(&frame) {
                    Ok(value) => assert_eq!(value.epoch, kept.epoch, "{kind:?}"),
                    Err(_) => break converter.deserialize::<Resumed>(&frame).expect("a notice"),
                }
            }
        })
        .await;
        // Then the new epoch, from 1: what a's queue sends late, and ticks until one is
        // through (b's subscription may still be coming back), then ten more.
        let mut after: Vec<Sequenced<Tick>> = Vec::new();
        let mut next = 20;
        within("a tick through after the restart", async {
            'probing: loop {
                let first = next;
                a.publish("EUR", &tick("a", next)).unwrap();
                next += 1;
                while let Ok(value) = tokio::time::timeout(
                    Duration::from_millis(50),
                    session.receive_deserialized::<Sequenced<Tick>>(),
                )
                .await
                {
                    let value = value.expect("a numbered tick");
                    let through = value.data.seq >= first;
                    after.push(value);
                    if through {
                        break 'probing;
                    }
                }
            }
        })
        .await;
        let through = after.last().unwrap().data.seq;
        for seq in next..next + 10 {
            a.publish("EUR", &tick("a", seq)).unwrap();
        }
        after.extend(values(&mut session, 10).await);
        assert_eq!(
            after
                .iter()
                .map(|v| v.data.seq)
                .skip_while(|&s| s < through)
                .collect::<Vec<_>>(),
            (through..next + 10).collect::<Vec<_>>(),
            "{kind:?}: everything from the first tick through on"
        );
        assert_eq!(notice.outcome, Outcome::Reset, "{kind:?}");
        assert_ne!(notice.epoch, kept.epoch, "{kind:?}");
        assert_eq!(after[0].seq, 1, "{kind:?}");
        assert!(
            after
                .windows(2)
                .all(|w| w[1].seq == w[0].seq + 1 && w[1].data.seq > w[0].data.seq),
            "{kind:?}: the new epoch's numbers, in order"
        );
        assert!(after.iter().all(|v| v.epoch == notice.epoch), "{kind:?}");

        let (_, comeback) = numbered(&here, Some(kept)).await;
        assert_eq!(
            (comeback.outcome, comeback.epoch),
            (Outcome::Reset, notice.epoch),
            "{kind:?}: a position from before the hole cannot be resumed across it"
        );
    }
}
