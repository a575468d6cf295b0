//! Topics whose history Redis keeps (a stream per topic, Redis started by the tests): the
//! broker numbers every publication, so a subscriber comes back to any node, one started
//! after it left included; a position older than the stream keeps is reset on every node;
//! a node cut from Redis reads what it missed from the stream, and its subscribers miss
//! nothing.
#![cfg(all(
    feature = "nats",
    feature = "redis",
    feature = "json",
    feature = "cbor",
    feature = "msgpack"
))]

use crate::bus_resume::{assert_whole, cut_at_500, node_on, numbered, until, values};
use crate::common;

use std::time::Duration;

use common::brokers::{Broker, Kind, Partitionable};
use common::topics::{Tick, tick};
use common::{negotiating, pair, within};
use typed_ws::bus::Bus;
use typed_ws::topics::{
    History, Outcome, Position, Resumed, Sequenced, Topic, TopicConfig, Topics,
};
use typed_ws::{AnyConverter, Backoff, Session};

/// A node whose topics keep their last `count` publications on the broker.
async fn node(broker: &Broker, count: usize) -> (Bus, Topics<Tick>) {
    node_on(Bus::builder(&broker.url()), broker, kept(count)).await
}

fn kept(count: usize) -> History<Tick> {
    History::last(count).on_broker()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_are_the_brokers_so_a_subscriber_cut_at_500_resumes_on_any_node_and_gets_1_to_1000_once()
 {
    let broker = Broker::start(Kind::Redis);
    let (_bus_a, a) = node(&broker, 2_000).await;
    let (_bus_b, b) = node(&broker, 2_000).await;
    let (first, kept) = cut_at_500(&a, &b.topic("EUR")).await;

    // c was not there when the subscriber left, a published everything: both have the
    // broker's numbers, read from its stream.
    let (_bus_c, c) = node(&broker, 2_000).await;
    let mut comebacks = Vec::new();
    for (name, topics) in [("c, started after the cut", &c), ("a, the publisher", &a)] {
        let (mut session, resumed) = numbered(&topics.topic("EUR"), Some(kept)).await;
        assert_eq!(
            (resumed.outcome, resumed.count, resumed.seq, resumed.epoch),
            (Outcome::Recovered, 500, 1_000, kept.epoch),
            "{name}"
        );
        let missed = values(&mut session, 500).await;
        comebacks.push((name, session, missed));
    }
    a.publish("EUR", &tick("a", 1_000)).unwrap();
    for (name, mut session, missed) in comebacks {
        let live = values(&mut session, 1).await;
        let all: Vec<&Sequenced<Tick>> = first.iter().chain(&missed).chain(&live).collect();
        assert_whole(&all, 1_000, name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_older_than_the_stream_keeps_is_reset_and_one_it_keeps_is_recovered() {
    let broker = Broker::start(Kind::Redis);
    let (_bus_a, a) = node(&broker, 100).await;
    let (mut session, live) = numbered(&a.topic("EUR"), None).await;
    assert_eq!(
        (live.outcome, live.seq, live.epoch),
        (Outcome::Live, 0, 0),
        "a topic never published has no epoch yet"
    );
    assert_eq!(
        redis_cli(&broker, &["EXISTS", "typed-ws.position.resume.EUR"]),
        "0",
        "reading a topic makes nothing in Redis"
    );
    for seq in 0..300 {
        a.publish("EUR", &tick("a", seq)).unwrap();
    }
    let live = values(&mut session, 300).await[0].position();
    assert_eq!(
        redis_cli(&broker, &["XLEN", "typed-ws.history.resume.EUR"]),
        "100",
        "the stream is trimmed to the history's count"
    );

    let (_bus_b, b) = node(&broker, 100).await;
    let at = |seq| {
        Some(Position {
            epoch: live.epoch,
            seq,
        })
    };
    let on_b = b.topic("EUR");
    for (since, expected) in [
        (at(200), (Outcome::Recovered, 100)),
        (at(199), (Outcome::Reset, 0)),
        (at(50), (Outcome::Reset, 0)),
        (
            Some(Position {
                epoch: live.epoch + 1,
                seq: 250,
            }),
            (Outcome::Reset, 0),
        ),
    ] {
        let (mut session, resumed) = numbered(&on_b, since).await;
        assert_eq!(
            (resumed.outcome, resumed.count, resumed.seq, resumed.epoch),
            (expected.0, expected.1, 300, live.epoch),
            "since {since:?}"
        );
        if resumed.outcome == Outcome::Recovered {
            let missed = values(&mut session, 100).await;
            assert_eq!(
                missed
                    .iter()
                    .map(|v| (v.seq, v.data.seq))
                    .collect::<Vec<_>>(),
                (201..=300).map(|seq| (seq, seq - 1)).collect::<Vec<_>>()
            );
        }
    }
}

/// Two nodes whose topics keep `count` on Redis, b's bus through a link the test cuts: a
/// numbered subscriber on b has had a's first 100 ticks when b is cut, a publishes `during`
/// more, all of which reach Redis, and b is back.
struct Cut {
    _broker: Broker,
    _link: Partitionable,
    _buses: [Bus; 2],
    /// b's topics hear the broker while this lives.
    _b: Topics<Tick>,
    a: Topics<Tick>,
    on_b: Topic<Tick>,
    session: Session<AnyConverter>,
    before: Vec<Sequenced<Tick>>,
}

async fn cut_while_published(count: usize, during: u64) -> Cut {
    let broker = Broker::start(Kind::Redis);
    let link = Partitionable::to(broker.addr).await;
    let quick = Backoff::new()
        .initial(Duration::from_millis(10))
        .cap(Duration::from_millis(50));
    let (bus_a, a) = node(&broker, count).await;
    let through_link = Bus::builder(&format!("redis://{}", link.addr)).backoff(quick);
    let (bus_b, b) = node_on(through_link, &broker, kept(count)).await;
    let on_b = b.topic("EUR");
    let (mut session, _) = numbered(&on_b, None).await;
    for seq in 0..100 {
        a.publish("EUR", &tick("a", seq)).unwrap();
    }
    let before = values(&mut session, 100).await;

    link.cut();
    until("b sees the broker go", || !bus_b.is_connected()).await;
    for seq in 100..100 + during {
        a.publish("EUR", &tick("a", seq)).unwrap();
    }
    until("they reach the broker", || {
        bus_a.stats().sent == 100 + during
    })
    .await;
    link.heal();
    until("b is back", || {
        bus_b.stats().reconnects == 1 && bus_b.is_connected()
    })
    .await;
    Cut {
        _broker: broker,
        _link: link,
        _buses: [bus_a, bus_b],
        _b: b,
        a,
        on_b,
        session,
        before,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_from_redis_reads_what_it_missed_from_the_stream_and_its_subscribers_miss_nothing()
 {
    let mut cut = cut_while_published(2_000, 200).await;
    for seq in 300..400 {
        cut.a.publish("EUR", &tick("a", seq)).unwrap();
    }
    // A reset notice instead of a tick fails here.
    let after = values(&mut cut.session, 300).await;
    let all: Vec<&Sequenced<Tick>> = cut.before.iter().chain(&after).collect();
    assert_whole(&all, 399, "across the cut");
    let stats = cut.on_b.stats();
    assert_eq!(
        (stats.read_back, stats.received),
        (200, 200),
        "what b missed live came from the stream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_for_longer_than_the_stream_keeps_tells_its_subscribers_of_the_hole() {
    // The stream keeps 100: of the 300 published during the cut, numbers 301..400.
    let mut cut = cut_while_published(100, 300).await;
    let notice = within(
        "the reset notice",
        cut.session.receive_deserialized::<Resumed>(),
    )
    .await
    .expect("the hole told, before the ticks after it");
    let epoch = cut.before[0].epoch;
    assert_eq!(
        (notice.outcome, notice.seq, notice.epoch),
        (Outcome::Reset, 300, epoch)
    );
    cut.a.publish("EUR", &tick("a", 400)).unwrap();
    let after = values(&mut cut.session, 101).await;
    assert_eq!(
        after
            .iter()
            .map(|v| (v.seq, v.data.seq))
            .collect::<Vec<_>>(),
        (301..=401).map(|seq| (seq, seq - 1)).collect::<Vec<_>>(),
        "what the stream keeps, then live"
    );
    assert_eq!(cut.on_b.stats().read_back, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_on_the_broker_forgets_what_is_older_than_its_age() {
    let broker = Broker::start(Kind::Redis);
    let aged = || {
        History::last(100)
            .max_age(Duration::from_millis(500))
            .on_broker()
    };
    let (_bus_a, a) = node_on(Bus::builder(&broker.url()), &broker, aged()).await;
    let (mut session, _) = numbered(&a.topic("EUR"), None).await;
    for seq in 0..10 {
        a.publish("EUR", &tick("a", seq)).unwrap();
    }
    let epoch = values(&mut session, 10).await[0].epoch;
    let ttl: u64 = redis_cli(&broker, &["PTTL", "typed-ws.history.resume.EUR"])
        .parse()
        .expect("a number");
    assert!(
        ttl > 0 && ttl <= 500,
        "the stream expires with the age: {ttl} ms"
    );

    // A node that reads the stream while it is young recovers; one that reads it when it is
    // old, or gone, resets.
    let (_bus_b, b) = node_on(Bus::builder(&broker.url()), &broker, aged()).await;
    let since = Some(Position { epoch, seq: 5 });
    let (_, young) = numbered(&b.topic("EUR"), since).await;
    assert_eq!((young.outcome, young.count), (Outcome::Recovered, 5));
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, old) = numbered(&b.topic("EUR"), since).await;
    assert_eq!(
        old.outcome,
        Outcome::Reset,
        "forgotten on b, which read them"
    );
    let (_bus_c, c) = node_on(Bus::builder(&broker.url()), &broker, aged()).await;
    let (_, gone) = numbered(&c.topic("EUR"), since).await;
    assert_eq!(
        (gone.outcome, gone.seq, gone.epoch),
        (Outcome::Reset, 10, epoch),
        "the stream expired, the numbering stays"
    );
}

#[tokio::test]
async fn a_history_on_the_broker_is_refused_on_a_bus_that_keeps_none() {
    let broker = Broker::start(Kind::Nats);
    let bus = within("connect", Bus::connect(&broker.url()))
        .await
        .expect("the bus");
    assert!(!bus.keeps_history());
    let topics: Topics<Tick> = Topics::with_config(TopicConfig::new().history(kept(10)));
    let err = topics.bus(&bus, "refused").expect_err("refused");
    assert!(
        err.to_string()
            .contains("History::on_broker needs a Redis bus"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_without_its_data_starts_a_new_epoch_and_numbered_subscribers_are_told() {
    let mut broker = Broker::start(Kind::Redis);
    let quick = || {
        Bus::builder(&broker.url()).backoff(
            Backoff::new()
                .initial(Duration::from_millis(10))
                .cap(Duration::from_millis(100)),
        )
    };
    let (bus_a, a) = node_on(quick(), &broker, kept(2_000)).await;
    let (bus_b, b) = node_on(quick(), &broker, kept(2_000)).await;
    let (mut session, _) = numbered(&b.topic("EUR"), None).await;
    for seq in 0..10 {
        a.publish("EUR", &tick("a", seq)).unwrap();
    }
    let before = values(&mut session, 10).await;
    let kept_at = before.last().unwrap().position();

    broker.restart();
    for bus in [&bus_a, &bus_b] {
        until("the bus is back", || {
            bus.stats().reconnects == 1 && bus.is_connected()
        })
        .await;
    }
    // Redis lost the epoch with its data: the topic is one never published until the next
    // publication draws another epoch.
    let notice = within(
        "the reset notice",
        session.receive_deserialized::<Resumed>(),
    )
    .await
    .expect("a notice, not a tick");
    assert_eq!(
        (notice.outcome, notice.seq, notice.epoch),
        (Outcome::Reset, 0, 0)
    );

    for seq in 10..20 {
        a.publish("EUR", &tick("a", seq)).unwrap();
    }
    let after = values(&mut session, 10).await;
    let epoch = after[0].epoch;
    assert!(epoch != kept_at.epoch && epoch != 0, "{epoch}");
    assert_eq!(
        after
            .iter()
            .map(|v| (v.epoch, v.seq, v.data.seq))
            .collect::<Vec<_>>(),
        (1..=10)
            .map(|seq| (epoch, seq, seq + 9))
            .collect::<Vec<_>>(),
        "the new epoch, numbered from 1, with no other notice"
    );
    let (_bus_c, c) = node(&broker, 2_000).await;
    let (_, comeback) = numbered(&c.topic("EUR"), Some(kept_at)).await;
    assert_eq!(
        (comeback.outcome, comeback.seq, comeback.epoch),
        (Outcome::Reset, 10, epoch),
        "a position from before the loss cannot be resumed, on any node"
    );
    let before_anything = Some(Position { epoch: 0, seq: 0 });
    let (_, from_start) = numbered(&c.topic("EUR"), before_anything).await;
    assert_eq!(
        (from_start.outcome, from_start.count),
        (Outcome::Recovered, 10),
        "the position before anything recovers the new epoch whole"
    );
}

/// What `redis-cli` prints for a command to the test's Redis.
fn redis_cli(broker: &Broker, args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &broker.addr.port().to_string()])
        .args(args)
        .output()
        .expect("redis-cli (installed with redis-server by tests/peers/install.sh)");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_hears_a_topic_first_takes_its_past_from_the_stream_and_serves_a_resume_from_it()
 {
    let broker = Broker::start(Kind::Redis);
    let (_bus_a, a) = node(&broker, 2_000).await;
    let (mut session, _) = numbered(&a.topic("EUR"), None).await;
    for seq in 0..10 {
        a.publish("EUR", &tick("a", seq)).unwrap();
    }
    let live = values(&mut session, 10).await[0].position();

    // b's topic has a plain subscriber only: the first value it hears is ahead of it, and
    // the stream's past is read before it, without going to the plain subscriber.
    let (_bus_b, b) = node(&broker, 2_000).await;
    let on_b = b.topic("EUR");
    let (mut plain, server) = pair(negotiating("json"), negotiating("json")).await;
    let (tx, mut rx) = server.split();
    let outbox = typed_ws::topics::Outbox::new(tx);
    on_b.subscribe(&outbox).expect("subscribe");
    tokio::spawn(async move {
        let _outbox = outbox;
        while rx.receive().await.is_ok() {}
    });
    for seq in 10..20 {
        a.publish("EUR", &tick("a", seq)).unwrap();
    }
    let mut heard = Vec::new();
    within("the plain ticks", async {
        while heard.len() < 10 {
            let t: Tick = plain.receive_deserialized().await.expect("a tick");
            heard.push(t.seq);
        }
    })
    .await;
    assert_eq!(heard, (10..20).collect::<Vec<_>>(), "live ones only");
    assert_eq!((on_b.stats().received, on_b.stats().read_back), (10, 0));

    let since = Some(Position {
        epoch: live.epoch,
        seq: 5,
    });
    let (mut session, resumed) = numbered(&on_b, since).await;
    assert_eq!((resumed.outcome, resumed.count), (Outcome::Recovered, 15));
    let missed = values(&mut session, 15).await;
    assert_eq!(
        missed
            .iter()
            .map(|v| (v.seq, v.data.seq))
            .collect::<Vec<_>>(),
        (6..=20).map(|seq| (seq, seq - 1)).collect::<Vec<_>>()
    );
}
