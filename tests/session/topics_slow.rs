//! Slow subscribers under each policy: a raw peer that completes the handshake and then reads
//! nothing, beside a client that reads everything. The slow one is disconnected with the
//! policy's close code, loses only its oldest frames, or gets the latest value per key; the
//! other gets every publication in order meanwhile.
#![cfg(all(feature = "json", feature = "cbor", feature = "msgpack"))]

use crate::common;

use common::raw::{self, RawPeer};
use common::topics::*;
use common::*;
use tokio::sync::mpsc;
use typed_ws::topics::{Policy, Topic, TopicConfig, TopicStats};
use typed_ws::{Client, CloseCode, CloseReason, Converter, Frame, JsonConverter, Server};

/// Publications of 16 KiB that may be needed before the unread socket and then the queue are
/// full; far more than it takes.
const MAX_ROUNDS: u64 = 20_000;

/// A topic with two subscribers: a raw peer (JSON) that reads nothing until the test says,
/// and a MessagePack client whose every tick, as (symbol, seq), comes out of `ticks`.
struct Scene {
    topic: Topic<Tick>,
    raw: RawPeer,
    ticks: mpsc::UnboundedReceiver<(String, u64)>,
    events: mpsc::UnboundedReceiver<Event>,
}

async fn scene(config: TopicConfig<Tick>) -> Scene {
    let topic = Topic::with_config("prices", config);
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let subscribers = topic.clone();
    let addr = serve(
        Server::new(negotiating("json,cbor,msgpack")),
        move |session| subscribe_until_gone(session, subscribers.clone(), events_tx.clone()),
    )
    .await;
    let json = "Sec-WebSocket-Protocol: json\r\n";
    let (raw, _) = within("raw connect", RawPeer::connect_with(addr, "/", json)).await;
    subscribed(&mut events, 1).await;
    let client = Client::new(negotiating("msgpack"));
    let mut session = within(
        "connect",
        client.web_socket_session(format!("ws://{addr}/")),
    )
    .await
    .expect("connect");
    subscribed(&mut events, 1).await;
    let (tx, ticks) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(tick) = session.receive_deserialized::<Tick>().await {
            if tx.send((tick.symbol, tick.seq)).is_err() {
                break;
            }
        }
    });
    Scene {
        topic,
        raw,
        ticks,
        events,
    }
}

/// Publishes rounds of big ticks, one per symbol, letting the sessions' tasks run between
/// rounds, until the topic's counters satisfy `enough`; returns the number of rounds.
async fn publish_until(
    topic: &Topic<Tick>,
    symbols: &[&str],
    enough: impl Fn(&TopicStats) -> bool,
) -> u64 {
    within("the slow subscriber to fall behind", async {
        let mut round = 0;
        while !enough(&topic.stats()) {
            assert!(round < MAX_ROUNDS, "{:?}", topic.stats());
            for symbol in symbols {
                topic.publish(&big_tick(symbol, round)).expect("publish");
            }
            round += 1;
            tokio::task::yield_now().await;
        }
        round
    })
    .await
}

/// The reading client's next `n` ticks, as (symbol, seq).
async fn next_ticks(scene: &mut Scene, n: u64) -> Vec<(String, u64)> {
    let mut ticks = Vec::new();
    for _ in 0..n {
        ticks.push(within("a tick", scene.ticks.recv()).await.expect("open"));
    }
    ticks
}

/// The raw peer's next frame other than pings: a tick, or the close frame.
async fn raw_next(raw: &mut RawPeer) -> Result<Tick, raw::RawFrame> {
    let frame = within("a frame", raw.expect_skipping_pings()).await;
    if frame.opcode != raw::TEXT {
        return Err(frame);
    }
    let text = String::from_utf8(frame.payload).expect("UTF-8");
    Ok(JsonConverter
        .deserialize(&Frame::text(text))
        .expect("a JSON tick"))
}

fn seqs(symbol: &str, count: u64) -> Vec<(String, u64)> {
    (0..count).map(|seq| (symbol.to_owned(), seq)).collect()
}

#[tokio::test]
async fn disconnect_closes_the_slow_subscriber_and_the_others_get_everything() {
    let mut scene = scene(TopicConfig::new().queue(32)).await;
    let rounds = publish_until(&scene.topic, &["A"], |s| s.disconnected == 1).await;
    // The others go on as before.
    for seq in rounds..rounds + 10 {
        assert_eq!(
            scene.topic.publish(&big_tick("A", seq)).expect("publish"),
            1
        );
    }
    let total = rounds + 10;
    assert_eq!(next_ticks(&mut scene, total).await, seqs("A", total));
    let stats = scene.topic.stats();
    assert_eq!(
        (stats.subscribers, stats.disconnected, stats.dropped),
        (1, 1, 0)
    );

    // Reading again, the slow peer finds the frames its session had taken, in order from the
    // first, then the close frame with the policy's code and reason.
    let mut next = 0;
    let close = loop {
        match raw_next(&mut scene.raw).await {
            Ok(tick) => {
                assert_eq!(tick.seq, next);
                next += 1;
            }
            Err(frame) => break frame,
        }
    };
    assert!(next < rounds, "all {rounds} reached the slow peer");
    assert_eq!(close.opcode, raw::CLOSE);
    assert_eq!(close.close_code(), Some(1008));
    assert_eq!(close.close_text(), "too slow for topic prices");
    within("answer the close", scene.raw.write_close(1008, ""))
        .await
        .expect("write close");
    let reason = CloseReason::new(CloseCode::PolicyViolation, "too slow for topic prices");
    let ended = within("the slow session's end", scene.events.recv()).await;
    assert_eq!(ended, Some(Event::Ended(Some(reason))));
}

#[tokio::test]
async fn drop_oldest_keeps_the_slow_subscriber_with_the_newest_frames() {
    let config = TopicConfig::new().queue(32).policy(Policy::drop_oldest());
    let mut scene = scene(config).await;
    let rounds = publish_until(&scene.topic, &["A"], |s| s.dropped >= 100).await;
    let last = rounds;
    assert_eq!(
        scene.topic.publish(&big_tick("A", last)).expect("publish"),
        2
    );
    let total = last + 1;
    assert_eq!(next_ticks(&mut scene, total).await, seqs("A", total));

    // The slow peer gets a gap where its oldest frames were dropped, nothing twice, and the
    // last publication.
    let mut received = 0;
    let mut previous = None;
    loop {
        let tick = raw_next(&mut scene.raw).await.expect("a tick");
        assert!(previous < Some(tick.seq), "{previous:?} then {}", tick.seq);
        previous = Some(tick.seq);
        received += 1;
        if tick.seq == last {
            break;
        }
    }
    assert!(received < total, "nothing was dropped");
    let stats = stats_until(&scene.topic, "every frame written", |s| {
        s.delivered + s.dropped == 2 * total
    })
    .await;
    // Every frame the slow peer did not get was counted as dropped, and nothing else.
    assert_eq!(stats.dropped, total - received);
    assert_eq!((stats.subscribers, stats.disconnected), (2, 0));
}

#[tokio::test]
async fn conflation_gives_the_slow_subscriber_the_latest_value_of_every_key() {
    let config = TopicConfig::new()
        .queue(32)
        .policy(Policy::conflate(|tick: &Tick| tick.symbol.clone()));
    let mut scene = scene(config).await;
    let symbols = ["A", "B", "C"];
    let rounds = publish_until(&scene.topic, &symbols, |s| s.conflated >= 3000).await;
    let last = rounds;
    for symbol in symbols {
        scene
            .topic
            .publish(&big_tick(symbol, last))
            .expect("publish");
    }
    let total = 3 * (last + 1);

    // Per symbol, values only ever move forward, and each ends at its last value.
    let mut slow_latest = [None; 3];
    let mut received = 0;
    while slow_latest.iter().any(|&seq| seq != Some(last)) {
        let tick = raw_next(&mut scene.raw).await.expect("a tick");
        let at = symbols
            .iter()
            .position(|&s| s == tick.symbol)
            .expect("known");
        assert!(
            slow_latest[at] < Some(tick.seq),
            "{tick:?} after {slow_latest:?}"
        );
        slow_latest[at] = Some(tick.seq);
        received += 1;
    }
    assert!(received < total / 2, "{received} of {total}: a backlog");
    let mut fast_latest = [None; 3];
    while fast_latest.iter().any(|&seq| seq != Some(last)) {
        let (symbol, seq) = within("a tick", scene.ticks.recv()).await.expect("open");
        let at = symbols.iter().position(|&s| s == symbol).expect("known");
        assert!(fast_latest[at] < Some(seq));
        fast_latest[at] = Some(seq);
    }

    let stats = stats_until(&scene.topic, "every value written or conflated", |s| {
        s.delivered + s.conflated == 2 * total
    })
    .await;
    assert_eq!(
        (stats.dropped, stats.disconnected, stats.subscribers),
        (0, 0, 2)
    );
}
