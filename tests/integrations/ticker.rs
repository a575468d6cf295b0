//! `examples/ticker` from outside, by its contract: the listening line, the two paths and 404
//! for others, ticks in the negotiated codec, 1007 for a publisher's garbage; two ticker
//! processes on one NATS or Redis bus, subscribers and publishers on both, every subscriber
//! getting every tick once in order per publisher; the broker restarted mid-run.
#![cfg(all(
    feature = "nats",
    feature = "redis",
    feature = "json",
    feature = "cbor",
    feature = "msgpack"
))]

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use common::brokers::{BOTH, Broker, Kind};
use common::examples::Running;
use common::*;
use serde::{Deserialize, Serialize};
use typed_ws::{AnyConverter, Client, CloseCode, Converter, Error, Frame, Session};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Tick {
    seq: u64,
    sent_at_us: u64,
    symbol: String,
    price: f64,
    size: u64,
}

fn tick(symbol: &str, seq: u64) -> Tick {
    Tick {
        seq,
        sent_at_us: 1_765_000_000_000_000 + seq,
        symbol: symbol.to_owned(),
        price: 1.0 + seq as f64 / 1024.0,
        size: seq % 7,
    }
}

/// Symbols that mark probe ticks, which tell that a subscriber is live; not counted.
const PROBE: &str = "probe";

async fn ticker(args: &[&str]) -> Running {
    let mut all = vec!["--listen", "127.0.0.1:0", "--codec", "msgpack,cbor,json"];
    all.extend_from_slice(args);
    Running::start("ticker", &all).await
}

async fn connect(server: &Running, path: &str, codec: &str) -> Session<AnyConverter> {
    within(
        "connect",
        Client::new(negotiating(codec)).web_socket_session(format!("{}{path}", server.url)),
    )
    .await
    .unwrap_or_else(|e| panic!("{path}: {}", e.report()))
}

/// Publishes probes through `publisher` until every subscriber has received one, so that the
/// test's own ticks start once everyone is live; the probes received are dropped.
async fn until_live(
    publisher: &mut Session<AnyConverter>,
    subscribers: &mut [Session<AnyConverter>],
) {
    let mut seq = 0;
    for subscriber in subscribers.iter_mut() {
        within("the subscriber is live", async {
            loop {
                publisher
                    .send_serialized(&tick(PROBE, seq))
                    .await
                    .expect("probe");
                seq += 1;
                if let Ok(got) = tokio::time::timeout(
                    Duration::from_millis(50),
                    subscriber.receive_deserialized::<Tick>(),
                )
                .await
                {
                    assert_eq!(got.expect("a probe").symbol, PROBE);
                    break;
                }
            }
        })
        .await;
    }
}

/// Receives until `n` ticks that are not probes have come; returns each symbol's seqs.
async fn receive(subscriber: &mut Session<AnyConverter>, n: usize) -> HashMap<String, Vec<u64>> {
    let mut seqs: HashMap<String, Vec<u64>> = HashMap::new();
    let mut count = 0;
    within("every tick", async {
        while count < n {
            let t: Tick = subscriber.receive_deserialized().await.expect("a tick");
            if t.symbol != PROBE {
                seqs.entry(t.symbol).or_default().push(t.seq);
                count += 1;
            }
        }
    })
    .await;
    seqs
}

#[tokio::test]
async fn one_ticker_keeps_its_contract() {
    let server = ticker(&[]).await;
    assert!(server.url.starts_with("ws://127.0.0.1:"), "{}", server.url);
    assert!(
        !server.url.trim_start_matches("ws://").contains('/'),
        "no path: {}",
        server.url
    );

    for path in ["/", "/echo", "/topics/", "/publish/", "/topics/a/b"] {
        let err = Client::new(negotiating("json"))
            .web_socket_session(format!("{}{path}", server.url))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Handshake { status: Some(s), .. } if s.as_u16() == 404),
            "{path}: {err:?}"
        );
    }

    let mut publisher = connect(&server, "/publish/EURUSD", "json").await;
    let mut subscribers = vec![
        connect(&server, "/topics/EURUSD", "json").await,
        connect(&server, "/topics/EURUSD", "cbor").await,
        connect(&server, "/topics/EURUSD", "msgpack").await,
    ];
    let mut other = connect(&server, "/topics/USDJPY", "json").await;
    until_live(&mut publisher, &mut subscribers).await;
    let sent: Vec<Tick> = (0..100).map(|seq| tick("EURUSD", seq)).collect();
    for t in &sent {
        publisher.send_serialized(t).await.expect("publish");
    }
    for subscriber in &mut subscribers {
        let mut got = Vec::new();
        within("every tick", async {
            while got.len() < sent.len() {
                let frame = subscriber.receive().await.expect("a frame");
                let t: Tick = subscriber.converter().deserialize(&frame).expect("a tick");
                let text = subscriber.converter().name() == "json";
                assert_eq!(frame.as_text().is_some(), text, "the codec's kind of frame");
                if t.symbol != PROBE {
                    got.push(t);
                }
            }
        })
        .await;
        assert_eq!(got, sent, "{}", subscriber.converter().name());
    }
    // Nothing came to the other topic's subscriber, nor back to the publisher: a tick on its
    // own topic is the next thing each gets.
    let mut yen = connect(&server, "/publish/USDJPY", "msgpack").await;
    until_live(&mut yen, std::slice::from_mut(&mut other)).await;
    let mut garbage = connect(&server, "/publish/EURUSD", "json").await;
    garbage
        .send(Frame::text("{\"seq\": \"not a number\"}"))
        .await
        .unwrap();
    let closed = within("the publisher is closed", garbage.receive()).await;
    assert!(
        matches!(&closed, Ok(Frame::Close(Some(r))) if r.code == CloseCode::InvalidPayload),
        "{closed:?}"
    );
    publisher
        .send_serialized(&tick("EURUSD", 100))
        .await
        .unwrap();
    let next = receive(&mut subscribers[0], 1).await;
    assert_eq!(next["EURUSD"], vec![100]);
    let nothing = tokio::time::timeout(Duration::from_millis(100), publisher.receive()).await;
    assert!(nothing.is_err(), "a publisher is sent nothing: {nothing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tickers_on_one_bus_deliver_every_tick_once_in_order_per_publisher() {
    for broker in BOTH.map(Broker::start) {
        let url = broker.url();
        let nodes = [
            ticker(&["--bus", &url]).await,
            ticker(&["--bus", &url, "--policy", "drop-oldest"]).await,
        ];
        let mut subscribers = Vec::new();
        for (node, codec) in [(0, "json"), (0, "msgpack"), (1, "cbor"), (1, "json")] {
            subscribers.push(connect(&nodes[node], "/topics/BTC", codec).await);
        }
        let mut publishers = vec![
            connect(&nodes[0], "/publish/BTC", "msgpack").await,
            connect(&nodes[1], "/publish/BTC", "json").await,
        ];
        // Each node's subscribers are live for each publisher, the other node's through the
        // broker.
        for publisher in &mut publishers {
            until_live(publisher, &mut subscribers).await;
        }
        const EACH: u64 = 500;
        let symbols = ["from-0", "from-1"];
        let sending = publishers.into_iter().zip(symbols).map(|(mut p, symbol)| {
            tokio::spawn(async move {
                for seq in 0..EACH {
                    p.send_serialized(&tick(symbol, seq))
                        .await
                        .expect("publish");
                }
                p
            })
        });
        let _publishers: Vec<_> = futures_util::future::join_all(sending).await;
        for (i, subscriber) in subscribers.iter_mut().enumerate() {
            let seqs = receive(subscriber, 2 * EACH as usize).await;
            for symbol in symbols {
                assert_eq!(
                    seqs[symbol],
                    (0..EACH).collect::<Vec<_>>(),
                    "{:?}: subscriber {i}, {symbol}",
                    broker.kind
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tickers_outlive_a_broker_restart_losing_at_most_the_outage() {
    for mut broker in BOTH.map(Broker::start) {
        let url = broker.url();
        let nodes = [
            ticker(&["--bus", &url]).await,
            ticker(&["--bus", &url]).await,
        ];
        let mut local = connect(&nodes[0], "/topics/ETH", "msgpack").await;
        let mut remote = connect(&nodes[1], "/topics/ETH", "json").await;
        let mut publisher = connect(&nodes[0], "/publish/ETH", "msgpack").await;
        until_live(&mut publisher, std::slice::from_mut(&mut remote)).await;
        until_live(&mut publisher, std::slice::from_mut(&mut local)).await;

        let mut seq = 0;
        let mut send = async |publisher: &mut Session<AnyConverter>, n: u64| {
            for _ in 0..n {
                publisher
                    .send_serialized(&tick("eth", seq))
                    .await
                    .expect("publish");
                seq += 1;
            }
            seq
        };
        send(&mut publisher, 100).await;
        let mut remote_seqs = receive(&mut remote, 100).await.remove("eth").unwrap();
        broker.kill();
        let during = send(&mut publisher, 100).await;
        broker.restart();
        // From outside, the way back is seen by ticks coming through again: publish until one
        // sent after the restart reaches the other node, then 100 more.
        within("a tick crosses the restarted broker", async {
            'probing: loop {
                let first = send(&mut publisher, 1).await - 1;
                while let Ok(got) = tokio::time::timeout(
                    Duration::from_millis(50),
                    remote.receive_deserialized::<Tick>(),
                )
                .await
                {
                    let t = got.expect("a tick");
                    if t.symbol == PROBE {
                        continue;
                    }
                    remote_seqs.push(t.seq);
                    if t.seq >= first {
                        break 'probing;
                    }
                }
            }
        })
        .await;
        let resumed = *remote_seqs.last().unwrap();
        let last = send(&mut publisher, 100).await - 1;
        within("the rest", async {
            while remote_seqs.last() != Some(&last) {
                let t: Tick = remote.receive_deserialized().await.expect("a tick");
                if t.symbol != PROBE {
                    remote_seqs.push(t.seq);
                }
            }
        })
        .await;
        let kind = broker.kind;
        assert!(
            remote_seqs.windows(2).all(|w| w[0] < w[1]),
            "{kind:?}: in order, none twice: {remote_seqs:?}"
        );
        assert!(
            remote_seqs.starts_with(&(0..100).collect::<Vec<_>>()),
            "{kind:?}: before"
        );
        assert!(
            (resumed..=last).all(|s| remote_seqs.contains(&s)),
            "{kind:?}: everything from the first tick through the restarted broker on"
        );
        assert!(during <= resumed + 100, "{kind:?}");
        if kind == Kind::Nats {
            let local_seqs = receive(&mut local, (last + 1) as usize).await;
            assert_eq!(
                local_seqs["eth"],
                (0..=last).collect::<Vec<_>>(),
                "{kind:?}: the publishing node's own subscribers lose nothing"
            );
        } else {
            // On Redis the ticker keeps the history on the broker, and every node, the
            // publishing one too, delivers the ticks as Redis numbered them: what the
            // restarted Redis lost with its data (and had not reached this node yet), or a
            // dying connection took unconfirmed, is lost here as well, nothing else.
            let mut local_seqs = Vec::new();
            within("the publishing node's ticks", async {
                while local_seqs.last() != Some(&last) {
                    let t: Tick = local.receive_deserialized().await.expect("a tick");
                    if t.symbol != PROBE {
                        local_seqs.push(t.seq);
                    }
                }
            })
            .await;
            assert!(
                local_seqs.windows(2).all(|w| w[0] < w[1]),
                "{kind:?}: {local_seqs:?}"
            );
            assert!(
                (resumed..=last).all(|s| local_seqs.contains(&s)),
                "{kind:?}: everything from the first tick through the restarted broker on: {local_seqs:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_subscriber_comes_back_with_since_and_epoch_and_misses_nothing() {
    use typed_ws::topics::{Outcome, Resumed, Sequenced};
    let server = ticker(&["--history", "50"]).await;
    let mut publisher = connect(&server, "/publish/SOL", "msgpack").await;
    // The outcome frame is sent as the subscription is made: once it is here, so is the
    // subscription.
    let mut first = connect(&server, "/topics/SOL?since=now", "json").await;
    let live: Resumed = within("the outcome", first.receive_deserialized())
        .await
        .unwrap();
    assert_eq!((live.outcome, live.seq), (Outcome::Live, 0));

    for seq in 1..=20 {
        publisher.send_serialized(&tick("sol", seq)).await.unwrap();
    }
    let mut got: Vec<Sequenced<Tick>> = Vec::new();
    while got.len() < 20 {
        got.push(
            within("a tick", first.receive_deserialized())
                .await
                .unwrap(),
        );
    }
    let last = got.last().unwrap().position();
    drop(first);
    for seq in 21..=40 {
        publisher.send_serialized(&tick("sol", seq)).await.unwrap();
    }
    let path = format!("/topics/SOL?since={}&epoch={}", last.seq, last.epoch);
    let mut back = connect(&server, &path, "cbor").await;
    let outcome: Resumed = within("the outcome", back.receive_deserialized())
        .await
        .unwrap();
    assert_eq!(outcome.outcome, Outcome::Recovered, "{outcome:?}");
    assert_eq!(outcome.seq - last.seq, outcome.count);
    while got.len() < 40 {
        got.push(within("a tick", back.receive_deserialized()).await.unwrap());
    }
    assert_eq!(
        got.iter().map(|s| s.seq).collect::<Vec<_>>(),
        (1..=40).collect::<Vec<_>>()
    );
    assert!(
        got.iter()
            .all(|s| s.data.seq == s.seq && s.epoch == last.epoch)
    );

    // 60 more, and history keeps 50: the position of tick 20 is too old now.
    for seq in 41..=100 {
        publisher.send_serialized(&tick("sol", seq)).await.unwrap();
    }
    let mut latest = None;
    while latest != Some(100) {
        let s: Sequenced<Tick> = within("a tick", back.receive_deserialized()).await.unwrap();
        latest = Some(s.seq);
    }
    let mut late = connect(&server, &path, "msgpack").await;
    let reset: Resumed = within("the outcome", late.receive_deserialized())
        .await
        .unwrap();
    assert_eq!(
        (reset.outcome, reset.count, reset.seq),
        (Outcome::Reset, 0, 100)
    );
    publisher.send_serialized(&tick("sol", 101)).await.unwrap();
    let s: Sequenced<Tick> = within("live", late.receive_deserialized()).await.unwrap();
    assert_eq!(s.seq, 101, "then live");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_a_subscriber_comes_back_to_another_ticker_with_since_and_epoch() {
    use typed_ws::topics::{Outcome, Resumed, Sequenced};
    let broker = Broker::start(Kind::Redis);
    let url = broker.url();
    let first_node = ticker(&["--bus", &url]).await;
    let mut publisher = connect(&first_node, "/publish/ADA", "msgpack").await;
    let mut subscriber = connect(&first_node, "/topics/ADA?since=now", "json").await;
    let live: Resumed = within("the outcome", subscriber.receive_deserialized())
        .await
        .unwrap();
    assert_eq!(live.outcome, Outcome::Live);
    for seq in 1..=500 {
        publisher.send_serialized(&tick("ada", seq)).await.unwrap();
    }
    let mut got: Vec<Sequenced<Tick>> = Vec::new();
    while got.len() < 500 {
        got.push(
            within("a tick", subscriber.receive_deserialized())
                .await
                .unwrap(),
        );
    }
    let last = got.last().unwrap().position();
    drop(subscriber);
    for seq in 501..=1_000 {
        publisher.send_serialized(&tick("ada", seq)).await.unwrap();
    }
    // The node it comes back to was not running when it left.
    let second_node = ticker(&["--bus", &url]).await;
    let path = format!("/topics/ADA?since={}&epoch={}", last.seq, last.epoch);
    let mut back = connect(&second_node, &path, "cbor").await;
    let outcome: Resumed = within("the outcome", back.receive_deserialized())
        .await
        .unwrap();
    // The publisher's last ticks may still be on their way to Redis: what is not kept yet
    // comes live.
    assert_eq!(
        (outcome.outcome, outcome.epoch, outcome.seq - last.seq),
        (Outcome::Recovered, last.epoch, outcome.count),
        "{outcome:?}"
    );
    while got.len() < 1_000 {
        got.push(within("a tick", back.receive_deserialized()).await.unwrap());
    }
    assert_eq!(
        got.iter().map(|s| (s.seq, s.data.seq)).collect::<Vec<_>>(),
        (1..=1_000).map(|seq| (seq, seq)).collect::<Vec<_>>(),
        "every tick once, in order, numbered by Redis across both nodes"
    );
    assert!(got.iter().all(|s| s.epoch == last.epoch));
}
