//! `typed_ws::axum::serve` gives an axum router what `Server::serve` has: silent and trickling
//! connections dropped at the handshake deadline (on the first request and between
//! requests), the connection limit across upgrades, 414 and 431 for oversized heads, and
//! refusals that quote at most 200 bytes of the client's offer.
#![cfg(all(feature = "axum", feature = "json", feature = "msgpack"))]

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ::axum::Router;
use ::axum::routing::get;
use common::openings::read_until_gone;
use common::raw::RawPeer;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use typed_ws::axum::WebSocketUpgrade;
use typed_ws::*;

/// Serves, through `typed_ws::axum::serve` with `config`, a router with a typed echo at `/ws`
/// and a plain page at `/`.
async fn serve(config: Config<AnyConverter>) -> SocketAddr {
    let route = config.clone();
    let app = Router::new()
        .route(
            "/ws",
            get(move |upgrade: WebSocketUpgrade| {
                let config = route.clone();
                async move { upgrade.on_upgrade(&config, typed_echo) }
            }),
        )
        .route("/", get(|| async { "a page" }));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { typed_ws::axum::serve(listener, app, &config).await });
    addr
}

/// JSON or MessagePack by subprotocol; JSON for clients that offer none.
fn json() -> Config<AnyConverter> {
    let negotiation = Negotiation::from_names("json,msgpack").expect("known names");
    Config::new().negotiate(negotiation.fallback(JsonConverter.into()))
}

fn upgrade_request(path: &str, headers: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n"
    )
}

/// Reads until the server ends the connection; returns how long that took.
async fn until_dropped(tcp: &mut TcpStream) -> Duration {
    let start = Instant::now();
    within("the server drops the connection", read_until_gone(tcp)).await;
    start.elapsed()
}

/// A server whose idle connections close within a second, for tests that read an answer
/// until the server closes.
fn brief() -> Config<AnyConverter> {
    json().handshake_timeout(Duration::from_secs(1))
}

/// Sends `request` and returns the whole answer, read until the server closes.
async fn answer(addr: SocketAddr, request: &[u8]) -> String {
    let mut tcp = within("connect", TcpStream::connect(addr)).await.unwrap();
    // The server may answer before it has read everything; the answer is what counts.
    let _ = within("send the request", tcp.write_all(request)).await;
    let answer = within("the answer", read_until_gone(&mut tcp)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_silent_connection_is_dropped_at_the_handshake_deadline() {
    let deadline = Duration::from_millis(300);
    let addr = serve(json().handshake_timeout(deadline)).await;
    let mut silent = within("connect", TcpStream::connect(addr)).await.unwrap();
    let took = until_dropped(&mut silent).await;
    assert!(
        took >= deadline - Duration::from_millis(50),
        "dropped after {took:?}"
    );
}

#[tokio::test]
async fn a_client_trickling_its_request_is_dropped_at_the_handshake_deadline() {
    let deadline = Duration::from_millis(400);
    let addr = serve(json().handshake_timeout(deadline)).await;
    let mut slow = within("connect", TcpStream::connect(addr)).await.unwrap();
    slow.write_all(b"GET /ws HTTP/1.1\r\n")
        .await
        .expect("write");
    let start = Instant::now();
    let trickle = async {
        for i in 0.. {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if slow
                .write_all(format!("X-{i}: a\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
            // A dropped connection shows as an end of stream before a write fails.
            let mut byte = [0; 1];
            if let Ok(read) = tokio::time::timeout(Duration::ZERO, slow.read(&mut byte)).await {
                assert!(
                    !matches!(read, Ok(n) if n > 0),
                    "the server answered a trickle"
                );
                return;
            }
        }
    };
    within("the trickling client is dropped", trickle).await;
    assert!(start.elapsed() >= deadline - Duration::from_millis(100));
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_dropped_at_the_deadline_too() {
    let deadline = Duration::from_millis(300);
    let addr = serve(json().handshake_timeout(deadline)).await;
    let mut tcp = within("connect", TcpStream::connect(addr)).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .expect("request");
    let mut page = vec![0; 1024];
    let n = within("the page", tcp.read(&mut page)).await.unwrap();
    let page = String::from_utf8_lossy(&page[..n]);
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.ends_with("a page"), "{page}");
    let took = until_dropped(&mut tcp).await;
    assert!(
        took >= deadline - Duration::from_millis(50),
        "dropped after {took:?}"
    );
}

#[tokio::test]
async fn an_oversized_request_line_gets_414() {
    let addr = serve(brief()).await;
    let request = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(9000));
    let answer = answer(addr, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 414"), "{answer}");
}

#[tokio::test]
async fn an_oversized_request_head_gets_431() {
    let addr = serve(brief()).await;
    let big = format!("X-Big: {}\r\n", "b".repeat(70 << 10));
    let answer = answer(addr, upgrade_request("/ws", &big).as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
}

#[tokio::test]
async fn too_many_header_fields_get_431() {
    let addr = serve(brief()).await;
    let many: String = (0..200).map(|i| format!("X-{i}: a\r\n")).collect();
    let answer = answer(addr, upgrade_request("/ws", &many).as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
}

#[tokio::test]
async fn max_connections_counts_upgraded_sessions_and_holds_the_next_client() {
    let addr = serve(json().max_connections(2)).await;
    let mut first = within("first", RawPeer::connect(addr, "/ws")).await;
    let _second = within("second", RawPeer::connect(addr, "/ws")).await;

    let mut third = within("connect", TcpStream::connect(addr)).await.unwrap();
    third
        .write_all(upgrade_request("/ws", "").as_bytes())
        .await
        .expect("request");
    let mut byte = [0; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), third.read(&mut byte)).await;
    assert!(early.is_err(), "a third connection was served: {early:?}");

    first.write_close(1000, "").await.expect("close");
    let mut head = Vec::new();
    within("the third handshake once a session ends", async {
        while !head.ends_with(b"\r\n\r\n") {
            let n = third.read(&mut byte).await.expect("read");
            assert_eq!(n, 1, "the server closed instead of answering");
            head.push(byte[0]);
        }
    })
    .await;
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
}

#[tokio::test]
async fn a_refusal_quotes_at_most_200_bytes_of_a_huge_offer() {
    let addr = serve(brief()).await;
    let names: Vec<String> = (0..9_000).map(|i| format!("p{i}")).collect();
    let offer = format!("Sec-WebSocket-Protocol: {}\r\n", names.join(", "));
    // A head of about 60 KiB: under the 64 KiB limit, so it is read and refused.
    let request = upgrade_request("/ws", &offer);
    assert!(request.len() < 64 << 10, "{}", request.len());
    let answer = answer(addr, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert!(body.contains("no common converter"), "{body}");
    assert!(body.len() < 400, "a body of {} bytes: {body}", body.len());
}

#[tokio::test]
async fn sessions_served_this_way_echo_typed_messages() {
    let addr = serve(json()).await;
    let config = Config::new().negotiate(Negotiation::from_names("msgpack").expect("msgpack"));
    let mut client = within(
        "connect",
        Client::new(config).web_socket_session(format!("ws://{addr}/ws")),
    )
    .await
    .unwrap();
    assert_eq!(client.subprotocol(), Some("msgpack"));
    within("send", client.send_serialized(&chat(4)))
        .await
        .unwrap();
    let back = within("receive", client.receive_deserialized::<ChatMessage>())
        .await
        .unwrap();
    assert_eq!(back, chat(4));
}
