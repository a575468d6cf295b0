//! Sequenced topics through real sessions: a subscriber whose connection is killed comes back
//! with its last position and gets exactly what it missed, then the live stream; a position
//! the history no longer reaches, or from another epoch, is told `reset`; JSON, CBOR and
//! MessagePack subscribers read the same numbered values; plain subscribers beside them get
//! plain values.
#![cfg(all(feature = "json", feature = "cbor", feature = "msgpack"))]

use crate::common;

use std::net::SocketAddr;
use std::time::Duration;

use common::topics::{Tick, tick};
use common::*;
use typed_ws::topics::{
    History, Outbox, Outcome, Position, Resumed, Sequenced, Topic, TopicConfig,
};
use typed_ws::{AnyConverter, Client, Server, Session};

/// A server whose sessions subscribe to `topic`: sequenced from the position in the path
/// (`/since/EPOCH/SEQ`, or `/live` for the live stream only), or plain (`/plain`).
async fn server(topic: Topic<Tick>) -> SocketAddr {
    let server = Server::new(negotiating("json,cbor,msgpack"));
    serve(server, move |session: Session<AnyConverter>| {
        let topic = topic.clone();
        async move {
            let path = session.path().unwrap_or_default().to_owned();
            let (tx, mut rx) = session.split();
            let outbox = Outbox::new(tx);
            let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            match parts.as_slice() {
                ["plain"] => topic.subscribe(&outbox).expect("subscribe"),
                ["live"] => {
                    topic
                        .subscribe_since(&outbox, None)
                        .await
                        .expect("subscribe");
                }
                ["since", epoch, seq] => {
                    let since = Position {
                        epoch: epoch.parse().unwrap(),
                        seq: seq.parse().unwrap(),
                    };
                    topic
                        .subscribe_since(&outbox, Some(since))
                        .await
                        .expect("subscribe");
                }
                other => panic!("unexpected path {other:?}"),
            }
            while rx.receive().await.is_ok() {}
        }
    })
    .await
}

async fn connect(addr: SocketAddr, path: &str, codec: &str) -> Session<AnyConverter> {
    within(
        "connect",
        Client::new(negotiating(codec)).web_socket_session(format!("ws://{addr}{path}")),
    )
    .await
    .expect("connect")
}

async fn resumed(session: &mut Session<AnyConverter>) -> Resumed {
    within("the outcome", session.receive_deserialized())
        .await
        .expect("the outcome frame")
}

async fn next(session: &mut Session<AnyConverter>) -> Sequenced<Tick> {
    within("a sequenced tick", session.receive_deserialized())
        .await
        .expect("a sequenced tick")
}

/// Publishes until the topic has `n` subscribers.
async fn subscribed(topic: &Topic<Tick>, n: usize) {
    within("the subscriptions", async {
        while topic.stats().subscribers < n {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_subscriber_cut_at_500_and_back_a_second_later_gets_1_to_1000_once_in_order() {
    let topic: Topic<Tick> =
        Topic::with_config("prices", TopicConfig::new().history(History::last(2_000)));
    let addr = server(topic.clone()).await;
    let mut first = connect(addr, "/live", "msgpack").await;
    let live = resumed(&mut first).await;
    assert_eq!((live.outcome, live.count, live.seq), (Outcome::Live, 0, 0));
    subscribed(&topic, 1).await;

    let publisher = {
        let topic = topic.clone();
        tokio::spawn(async move {
            for seq in 1..=1_000 {
                topic.publish(&tick("ADA", seq)).expect("publish");
                if seq % 50 == 0 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        })
    };
    let mut got = Vec::new();
    while got.len() < 500 {
        got.push(next(&mut first).await);
    }
    let last = got.last().unwrap().position();
    // Cut: the connection goes without a close handshake, as when a network drops.
    drop(first);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let path = format!("/since/{}/{}", last.epoch, last.seq);
    let mut back = connect(addr, &path, "json").await;
    let outcome = resumed(&mut back).await;
    assert_eq!(outcome.outcome, Outcome::Recovered);
    assert_eq!(outcome.epoch, last.epoch);
    assert_eq!(
        outcome.count,
        outcome.seq - 500,
        "what was published while it was away"
    );
    within("the publisher", publisher).await.unwrap();
    while got.len() < 1_000 {
        got.push(next(&mut back).await);
    }
    assert_eq!(
        got.iter().map(|s| s.seq).collect::<Vec<_>>(),
        (1..=1_000).collect::<Vec<_>>(),
        "each once, in order, across the seam"
    );
    assert!(
        got.iter()
            .all(|s| s.data.seq == s.seq && s.epoch == last.epoch)
    );
    let nothing = tokio::time::timeout(Duration::from_millis(100), back.receive()).await;
    assert!(nothing.is_err(), "nothing more: {nothing:?}");
    assert_eq!(topic.stats().replayed, outcome.count);
}

#[tokio::test]
async fn a_position_history_no_longer_reaches_or_of_another_epoch_is_reset_then_live() {
    let topic: Topic<Tick> =
        Topic::with_config("prices", TopicConfig::new().history(History::last(10)));
    let addr = server(topic.clone()).await;
    for seq in 1..=30 {
        topic.publish(&tick("ADA", seq)).unwrap();
    }
    let epoch = topic.position().epoch;
    assert_eq!(topic.position().seq, 30);
    for path in [
        format!("/since/{epoch}/19"),
        format!("/since/{}/29", epoch ^ 1),
        format!("/since/{epoch}/1000"),
    ] {
        let now = topic.position().seq;
        let mut session = connect(addr, &path, "cbor").await;
        let outcome = resumed(&mut session).await;
        assert_eq!(
            (outcome.outcome, outcome.count, outcome.seq, outcome.epoch),
            (Outcome::Reset, 0, now, epoch),
            "{path}"
        );
        subscribed(&topic, 1).await;
        topic.publish(&tick("ADA", now + 1)).unwrap();
        let live = next(&mut session).await;
        assert_eq!(
            (live.seq, live.data.seq),
            (now + 1, now + 1),
            "{path}: then live"
        );
        drop(session);
        within("the subscriber leaves", async {
            while topic.stats().subscribers > 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await;
    }

    // The oldest kept position still recovers everything after it.
    let oldest = topic.position().seq - 10;
    let mut session = connect(addr, &format!("/since/{epoch}/{oldest}"), "json").await;
    let outcome = resumed(&mut session).await;
    assert_eq!((outcome.outcome, outcome.count), (Outcome::Recovered, 10));
    for seq in oldest + 1..=oldest + 10 {
        assert_eq!(next(&mut session).await.seq, seq);
    }
}

#[tokio::test]
async fn sequenced_and_plain_subscribers_in_every_codec_share_one_stream() {
    let topic: Topic<Tick> =
        Topic::with_config("prices", TopicConfig::new().history(History::last(100)));
    let addr = server(topic.clone()).await;
    let mut sequenced = Vec::new();
    for codec in ["json", "cbor", "msgpack"] {
        let mut session = connect(addr, "/live", codec).await;
        assert_eq!(resumed(&mut session).await.outcome, Outcome::Live);
        sequenced.push(session);
    }
    let mut plain = connect(addr, "/plain", "msgpack").await;
    subscribed(&topic, 4).await;
    let ticks: Vec<Tick> = (1..=20).map(|seq| tick("ADA", seq)).collect();
    for t in &ticks {
        topic.publish(t).unwrap();
    }
    let epoch = topic.position().epoch;
    for session in &mut sequenced {
        for (i, t) in ticks.iter().enumerate() {
            let got = next(session).await;
            assert_eq!(
                got,
                Sequenced {
                    seq: i as u64 + 1,
                    epoch,
                    data: t.clone()
                }
            );
        }
    }
    assert_eq!(common::topics::receive_ticks(&mut plain, 20).await, ticks);
    let stats = topic.stats();
    assert_eq!(
        stats.encoded,
        4 * 20,
        "plain and sequenced msgpack are two encodings"
    );
}

#[tokio::test]
async fn a_resuming_client_gets_every_value_once_across_connections_the_server_drops() {
    use std::sync::{Arc, Mutex};
    use typed_ws::topics::Update;
    use typed_ws::{Backoff, CloseCode, CloseReason};

    let topic: Topic<Tick> =
        Topic::with_config("prices", TopicConfig::new().history(History::last(5_000)));
    let outboxes: Arc<Mutex<Vec<Outbox<AnyConverter>>>> = Arc::default();
    let (subscribers, kept) = (topic.clone(), outboxes.clone());
    let addr = serve(
        Server::new(negotiating("json,msgpack")),
        move |session: Session<AnyConverter>| {
            let (topic, kept) = (subscribers.clone(), kept.clone());
            async move {
                let query = session.query().unwrap_or_default().to_owned();
                let param = |name: &str| {
                    query
                        .split('&')
                        .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
                        .and_then(|v| v.parse::<u64>().ok())
                };
                let since = param("since")
                    .zip(param("epoch"))
                    .map(|(seq, epoch)| Position { epoch, seq });
                let (tx, mut rx) = session.split();
                let outbox = Outbox::new(tx);
                topic
                    .subscribe_since(&outbox, since)
                    .await
                    .expect("subscribe");
                kept.lock().unwrap().push(outbox);
                while rx.receive().await.is_ok() {}
            }
        },
    )
    .await;

    let backoff = Backoff::new()
        .initial(Duration::from_millis(10))
        .cap(Duration::from_millis(50));
    let feed = Client::new(negotiating("msgpack"))
        .request(format!("ws://{addr}/resume"))
        .resuming()
        .backoff(backoff)
        .start::<Tick>();
    let first = within("the first connection", feed.next()).await.unwrap();
    assert!(
        matches!(first, Update::Resumed(r) if r.outcome == Outcome::Live),
        "{first:?}"
    );

    let mut values = Vec::new();
    let mut outcomes = Vec::new();
    for round in 0..5u64 {
        for seq in round * 200 + 1..=(round + 1) * 200 {
            topic.publish(&tick("ADA", seq)).unwrap();
        }
        // Take half of this round, then the server drops every connection (1001, which the
        // client comes back from) while the rest is in flight.
        while values.len() < (round * 200 + 100) as usize {
            match within("an update", feed.next()).await.unwrap() {
                Update::Value(v) => values.push(v.seq),
                Update::Resumed(r) => outcomes.push(r.outcome),
            }
        }
        for outbox in outboxes.lock().unwrap().drain(..) {
            outbox.close(CloseReason::new(CloseCode::GoingAway, "restarting"));
        }
    }
    while values.len() < 1_000 {
        match within("an update", feed.next()).await.unwrap() {
            Update::Value(v) => values.push(v.seq),
            Update::Resumed(r) => outcomes.push(r.outcome),
        }
    }
    assert_eq!(
        values,
        (1..=1_000).collect::<Vec<_>>(),
        "each once, in order"
    );
    assert!(!outcomes.is_empty(), "it came back at least once");
    assert!(
        outcomes.iter().all(|o| *o == Outcome::Recovered),
        "{outcomes:?}"
    );
    assert_eq!(feed.position().map(|p| p.seq), Some(1_000));
}
