//! Compress once: a publication to subscribers whose sessions compress each message on its
//! own (no context takeover on the server's side) is compressed once per way of compressing,
//! and every subscriber inflates it to the value published; sessions without compression, or
//! with other window bits, beside them.
#![cfg(all(feature = "json", feature = "cbor", feature = "msgpack"))]

use crate::common;

use common::topics::{Tick, receive_ticks, subscribe_until_gone, subscribed};
use common::*;
use tokio::sync::mpsc;
use typed_ws::topics::Topic;
use typed_ws::{AnyConverter, Client, Compression, Config, Server, Session};

fn tick(seq: u64) -> Tick {
    Tick {
        pad: format!("{seq} ").repeat(200),
        ..common::topics::tick("ADA-EUR", seq)
    }
}

async fn connect(
    addr: std::net::SocketAddr,
    config: Config<AnyConverter>,
) -> Session<AnyConverter> {
    within(
        "connect",
        Client::new(config).web_socket_session(format!("ws://{addr}/")),
    )
    .await
    .expect("connect")
}

#[tokio::test]
async fn a_publication_is_compressed_once_per_way_of_compressing_and_everyone_reads_it() {
    let server = Server::new(
        negotiating("json,msgpack").compression(Compression::new().no_context_takeover()),
    );
    let topic: Topic<Tick> = Topic::new("prices");
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let subscribers = topic.clone();
    let addr = serve(server, move |session| {
        subscribe_until_gone(session, subscribers.clone(), events_tx.clone())
    })
    .await;

    let compressing = || negotiating("json").compression(Compression::new());
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(connect(addr, compressing()).await);
    }
    // Another window: its own way of compressing, so its own compression.
    for _ in 0..5 {
        let narrow = Compression::new().peer_max_window_bits(10);
        clients.push(connect(addr, negotiating("json").compression(narrow)).await);
    }
    // No compression at all: the plain frame.
    for _ in 0..5 {
        clients.push(connect(addr, negotiating("json")).await);
    }
    subscribed(&mut events, clients.len()).await;
    assert!(
        clients[0]
            .compression()
            .is_some_and(|c| c.receive_no_context_takeover())
    );
    assert_eq!(
        clients[20].compression().map(|c| c.receive_window_bits()),
        Some(10)
    );
    assert!(clients[25].compression().is_none());

    let published: Vec<Tick> = (0..30).map(tick).collect();
    for value in &published {
        assert_eq!(topic.publish(value).unwrap(), clients.len());
    }
    for client in &mut clients {
        assert_eq!(receive_ticks(client, published.len()).await, published);
    }
    let stats = topic.stats();
    assert_eq!(
        stats.compressed,
        2 * 30,
        "once per publication for each window"
    );
    assert_eq!(stats.delivered, 30 * clients.len() as u64);
}
