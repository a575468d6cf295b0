//! Topics through real sessions: JSON, CBOR and MessagePack subscribers on one topic, each
//! value encoded once per codec; sessions from `Server::serve`, `Client` and axum; the end of
//! a subscription with its session; a burst written in fewer writes than messages.
#![cfg(all(feature = "json", feature = "cbor", feature = "msgpack"))]

use crate::common;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use common::topics::*;
use common::*;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::sync::mpsc;
use typed_ws::tokio_tungstenite::{accept_async, client_async};
use typed_ws::topics::{Outbox, Topic};
use typed_ws::{
    AnyConverter, Client, CloseCode, CloseReason, Config, Converter, Error, JsonConverter, Server,
    Session,
};

#[tokio::test]
async fn mixed_codecs_get_every_publication_in_order_encoded_once_per_codec() {
    let encodings = Arc::new(AtomicUsize::new(0));
    let server = Server::new(Config::new().negotiate(counting_codecs(&encodings)));
    let topic: Topic<Tick> = Topic::new("prices");
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let subscribers = topic.clone();
    let addr = serve(server, move |session| {
        subscribe_until_gone(session, subscribers.clone(), events_tx.clone())
    })
    .await;

    let mut clients = Vec::new();
    for codec in ["json", "cbor", "msgpack", "msgpack", "cbor", "json"] {
        let client = Client::new(negotiating(codec));
        let session = within(
            "connect",
            client.web_socket_session(format!("ws://{addr}/")),
        )
        .await
        .expect("connect");
        assert_eq!(session.converter().name(), codec);
        clients.push(session);
    }
    subscribed(&mut events, clients.len()).await;
    assert_eq!(topic.stats().subscribers, 6);

    let published: Vec<Tick> = (0..200).map(|seq| tick("ADA", seq)).collect();
    for value in &published {
        assert_eq!(topic.publish(value).expect("publish"), 6);
    }
    for client in &mut clients {
        assert_eq!(receive_ticks(client, published.len()).await, published);
    }

    // Three codecs in use: three encodings per publication, whatever the subscribers.
    assert_eq!(encodings.load(Ordering::Relaxed), 3 * published.len());
    let stats = stats_until(&topic, "every frame counted as delivered", |s| {
        s.delivered == 6 * 200
    })
    .await;
    assert_eq!(
        (
            stats.published,
            stats.encoded,
            stats.dropped,
            stats.conflated
        ),
        (200, 600, 0, 0)
    );

    // Nothing more than was published: the next frame is the server's close.
    for mut client in clients {
        within(
            "close",
            client.close(CloseReason::new(CloseCode::Normal, "")),
        )
        .await
        .expect("close");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_reach_every_subscriber_in_one_order() {
    let topic: Topic<Tick> = Topic::new("busy");
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let subscribers = topic.clone();
    let addr = serve(Server::new(negotiating("json,cbor")), move |session| {
        subscribe_until_gone(session, subscribers.clone(), events_tx.clone())
    })
    .await;
    let mut clients = Vec::new();
    for codec in ["json", "cbor", "json"] {
        let client = Client::new(negotiating(codec));
        let session = within(
            "connect",
            client.web_socket_session(format!("ws://{addr}/")),
        )
        .await
        .expect("connect");
        clients.push(session);
    }
    subscribed(&mut events, clients.len()).await;

    let publishers: Vec<_> = ["P", "Q", "R", "S"]
        .into_iter()
        .map(|symbol| {
            let topic = topic.clone();
            tokio::spawn(async move {
                for seq in 0..250 {
                    topic.publish(&tick(symbol, seq)).expect("publish");
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for publisher in publishers {
        within("publish", publisher).await.expect("publisher");
    }
    let first = receive_ticks(&mut clients[0], 1000).await;
    for symbol in ["P", "Q", "R", "S"] {
        let of: Vec<u64> = first
            .iter()
            .filter(|t| t.symbol == symbol)
            .map(|t| t.seq)
            .collect();
        assert_eq!(of, (0..250).collect::<Vec<_>>(), "{symbol}");
    }
    for client in &mut clients[1..] {
        assert_eq!(receive_ticks(client, 1000).await, first);
    }
}

#[tokio::test]
async fn subscriptions_end_with_their_sessions() {
    let topic: Topic<Tick> = Topic::new("rooms");
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let subscribers = topic.clone();
    let addr = serve(Server::new(negotiating("cbor")), move |session| {
        subscribe_until_gone(session, subscribers.clone(), events_tx.clone())
    })
    .await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        let client = Client::new(negotiating("cbor"));
        let session = within(
            "connect",
            client.web_socket_session(format!("ws://{addr}/")),
        )
        .await
        .expect("connect");
        clients.push(session);
    }
    subscribed(&mut events, 3).await;

    // One leaves cleanly, one drops its connection; the third stays subscribed.
    let mut leaving = clients.remove(0);
    within(
        "close",
        leaving.close(CloseReason::new(CloseCode::Normal, "")),
    )
    .await
    .expect("close");
    drop(clients.remove(0));
    stats_until(&topic, "two subscriptions gone", |s| s.subscribers == 1).await;
    assert_eq!(topic.publish(&tick("X", 1)).expect("publish"), 1);
    assert_eq!(receive_ticks(&mut clients[0], 1).await, [tick("X", 1)]);

    drop(clients);
    stats_until(&topic, "the last subscription gone", |s| s.subscribers == 0).await;
    assert_eq!(topic.publish(&tick("X", 2)).expect("publish"), 0);
}

#[tokio::test]
async fn a_client_session_subscribes_and_sends_its_own_messages_in_order() {
    let (tx, mut received) = mpsc::unbounded_channel();
    let addr = serve(Server::new(negotiating("msgpack")), move |mut session| {
        let tx = tx.clone();
        async move {
            loop {
                let message = session.receive_deserialized::<Tick>().await;
                let end = message.is_err();
                let _ = tx.send(message);
                if end {
                    break;
                }
            }
        }
    })
    .await;
    let client = Client::new(negotiating("msgpack"));
    let session = within(
        "connect",
        client.web_socket_session(format!("ws://{addr}/")),
    )
    .await
    .expect("connect");
    let (client_tx, _client_rx) = session.split();
    let outbox = Outbox::new(client_tx);
    let topic: Topic<Tick> = Topic::new("uploads");
    topic.subscribe(&outbox).expect("subscribe");

    let hello = tick("hello", 0);
    within("send", outbox.send_serialized(&hello))
        .await
        .expect("send");
    let published: Vec<Tick> = (1..=50).map(|seq| tick("UP", seq)).collect();
    for value in &published {
        topic.publish(value).expect("publish");
    }
    outbox.close(CloseReason::new(CloseCode::Normal, "done"));

    let mut expected = vec![hello];
    expected.extend(published);
    for want in expected {
        let got = within("a message", received.recv()).await.expect("open");
        assert_eq!(got.expect("a tick"), want);
    }
    let end = within("the end", received.recv()).await.expect("open");
    let reason = end.expect_err("closed").close_reason().cloned();
    assert_eq!(reason, Some(CloseReason::new(CloseCode::Normal, "done")));
    // Closing ended the subscription and refuses what comes after.
    assert_eq!(topic.stats().subscribers, 0);
    assert!(outbox.send_serialized(&tick("late", 0)).await.is_err());
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn sessions_from_the_axum_extractor_subscribe_like_any_other() {
    use ::axum::Router;
    use ::axum::routing::get;
    use typed_ws::axum::WebSocketUpgrade;

    let config = negotiating("json,cbor,msgpack");
    let topic: Topic<Tick> = Topic::new("axum");
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (route_config, subscribers) = (config.clone(), topic.clone());
    let route = get(move |upgrade: WebSocketUpgrade| {
        let (config, topic, events) =
            (route_config.clone(), subscribers.clone(), events_tx.clone());
        async move {
            upgrade.on_upgrade(&config, move |session| {
                subscribe_until_gone(session, topic, events)
            })
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new().route("/ws", route);
    tokio::spawn(async move { typed_ws::axum::serve(listener, app, &config).await });

    let mut clients = Vec::new();
    for codec in ["cbor", "json"] {
        let client = Client::new(negotiating(codec));
        let session = within(
            "connect",
            client.web_socket_session(format!("ws://{addr}/ws")),
        )
        .await
        .expect("connect");
        clients.push(session);
    }
    subscribed(&mut events, 2).await;
    let published: Vec<Tick> = (0..20).map(|seq| tick("AX", seq)).collect();
    for value in &published {
        assert_eq!(topic.publish(value).expect("publish"), 2);
    }
    for client in &mut clients {
        assert_eq!(receive_ticks(client, published.len()).await, published);
    }
    assert_eq!(topic.stats().encoded, 2 * 20);
}

/// A byte stream that counts the writes that reach it.
struct CountingWrites {
    inner: DuplexStream,
    writes: Arc<AtomicUsize>,
}

impl AsyncRead for CountingWrites {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountingWrites {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written
            && n > 0
        {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A server session over an in-memory pipe that counts its writes, and its client.
async fn in_memory<C: Converter>(
    config: &Config<C>,
    writes: &Arc<AtomicUsize>,
) -> (Session<C>, Session<C>) {
    let (near, far) = tokio::io::duplex(1 << 20);
    let counted = CountingWrites {
        inner: near,
        writes: writes.clone(),
    };
    let (accepted, connected) = within("handshake", async {
        tokio::join!(accept_async(counted), client_async("ws://test/", far))
    })
    .await;
    let server = Session::from_stream(accepted.expect("accept"), config);
    let client = Session::from_stream(connected.expect("connect").0, config);
    (server, client)
}

#[tokio::test]
async fn a_burst_of_publications_goes_out_in_fewer_writes_than_messages() {
    let writes = Arc::new(AtomicUsize::new(0));
    let (server, mut client) = in_memory(&Config::new().converter(JsonConverter), &writes).await;
    let (server_tx, _server_rx) = server.split();
    let outbox = Outbox::new(server_tx);
    let topic: Topic<Tick> = Topic::new("burst");
    topic.subscribe(&outbox).expect("subscribe");

    writes.store(0, Ordering::Relaxed);
    let published: Vec<Tick> = (0..100).map(|seq| tick("B", seq)).collect();
    for value in &published {
        topic.publish(value).expect("publish");
    }
    assert_eq!(receive_ticks(&mut client, published.len()).await, published);
    let writes = writes.load(Ordering::Relaxed);
    // Published with no await between them, all 100 wait when the outbox's task wakes.
    assert_eq!(writes, 1, "100 messages took {writes} writes");
}

#[tokio::test]
async fn a_value_one_codec_cannot_encode_is_published_to_nobody() {
    let writes = Arc::new(AtomicUsize::new(0));
    let topic: Topic<HashMap<(u8, u8), u8>> = Topic::new("pairs");
    let mut clients = Vec::new();
    let mut outboxes = Vec::new();
    for codec in ["cbor", "json"] {
        let config = Config::new().converter(AnyConverter::from_name(codec).expect("codec"));
        let (server, client) = in_memory(&config, &writes).await;
        let outbox = Outbox::new(server.split().0);
        topic.subscribe(&outbox).expect("subscribe");
        clients.push(client);
        outboxes.push(outbox);
    }
    // JSON keys are strings (numbers are written as strings), never pairs; CBOR takes any key.
    let error = topic
        .publish(&HashMap::from([((1, 2), 3)]))
        .expect_err("JSON refuses");
    assert!(
        matches!(
            error,
            Error::Encode {
                converter: "json",
                ..
            }
        ),
        "{error}"
    );
    let stats = topic.stats();
    assert_eq!((stats.published, stats.subscribers), (0, 2));

    // The next value reaches both, first: nothing of the refused one was queued.
    let string_keys: Topic<HashMap<String, u8>> = Topic::new("strings");
    for outbox in &outboxes {
        string_keys.subscribe(outbox).expect("subscribe");
    }
    string_keys
        .publish(&HashMap::from([("one".to_owned(), 1u8)]))
        .expect("publish");
    for client in &mut clients {
        let got = within(
            "a map",
            client.receive_deserialized::<HashMap<String, u8>>(),
        )
        .await;
        assert_eq!(got.expect("a map"), HashMap::from([("one".to_owned(), 1)]));
    }
}
