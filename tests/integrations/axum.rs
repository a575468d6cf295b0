//! Sessions inside axum routers and plain hyper servers: the `WebSocketUpgrade` extractor and
//! `http_upgrade::upgrade` negotiate, apply the config's limits and keep-alive, refuse what is
//! no upgrade with an HTTP status, and leave the route's other extractors usable.
#![cfg(all(
    feature = "axum",
    feature = "json",
    feature = "cbor",
    feature = "msgpack"
))]

use crate::common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ::axum::Router;
use ::axum::extract::{Path, State};
use ::axum::response::Response;
use ::axum::routing::get;
use common::openings::read_until_gone;
use common::raw::{self, RawPeer};
use common::*;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use typed_ws::axum::WebSocketUpgrade;
use typed_ws::*;

/// Serves `app` on a free loopback port.
async fn serve_app(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { ::axum::serve(listener, app).await });
    addr
}

/// A router whose `/ws` route upgrades with `config` and hands every session to the test.
async fn handing_over<C: Converter>(
    config: Config<C>,
) -> (SocketAddr, mpsc::UnboundedReceiver<Session<C>>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let route = get(move |upgrade: WebSocketUpgrade| {
        let (config, tx) = (config.clone(), tx.clone());
        async move {
            upgrade.on_upgrade(&config, move |session| async move {
                let _ = tx.send(session);
            })
        }
    });
    (serve_app(Router::new().route("/ws", route)).await, rx)
}

/// A router whose `/ws` route runs the typed echo with `config`.
async fn typed_echo_app<C: Converter>(config: Config<C>) -> SocketAddr {
    let route = get(move |upgrade: WebSocketUpgrade| {
        let config = config.clone();
        async move { upgrade.on_upgrade(&config, typed_echo) }
    });
    serve_app(Router::new().route("/ws", route)).await
}

/// Sends `request` on a fresh connection and reads the answer until the server closes.
async fn http_answer(addr: SocketAddr, request: &str) -> String {
    let mut tcp = within("connect", TcpStream::connect(addr)).await.unwrap();
    within("send the request", tcp.write_all(request.as_bytes()))
        .await
        .unwrap();
    let answer = within("the answer", read_until_gone(&mut tcp)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn the_extractor_negotiates_and_the_server_order_wins() {
    let (addr, mut sessions) = handing_over(negotiating("msgpack,cbor,json")).await;
    for (offer, chosen) in [("cbor", "cbor"), ("json,cbor", "cbor"), ("json", "json")] {
        let mut client = within(
            "connect",
            Client::new(negotiating(offer)).web_socket_session(format!("ws://{addr}/ws")),
        )
        .await
        .unwrap();
        let server = within("the session", sessions.recv()).await.unwrap();
        assert_eq!(client.subprotocol(), Some(chosen), "offering {offer}");
        assert_eq!(server.subprotocol(), Some(chosen), "offering {offer}");
        assert_eq!(server.converter().name(), chosen, "offering {offer}");
        assert_eq!(server.path(), Some("/ws"));

        tokio::spawn(typed_echo(server));
        within("send", client.send_serialized(&chat(7)))
            .await
            .unwrap();
        let back = within("receive", client.receive_deserialized::<ChatMessage>())
            .await
            .unwrap();
        assert_eq!(back, chat(7), "offering {offer}");
    }
}

#[tokio::test]
async fn a_message_over_max_message_size_gives_1009_to_the_client() {
    let addr = typed_echo_app(
        Config::new()
            .converter(JsonConverter)
            .max_message_size(1024),
    )
    .await;
    let mut client = within(
        "connect",
        Client::new(Config::new().converter(JsonConverter))
            .web_socket_session(format!("ws://{addr}/ws")),
    )
    .await
    .unwrap();
    within("send over the limit", client.send_text("x".repeat(2000)))
        .await
        .unwrap();
    match within("the server's close", client.receive()).await {
        Ok(Frame::Close(Some(reason))) => assert_eq!(reason.code, CloseCode::TooBig),
        other => panic!("expected a 1009 close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn no_common_converter_is_http_400_with_the_reason() {
    let addr = typed_echo_app(negotiating("cbor")).await;
    let err = within(
        "connect",
        Client::new(negotiating("json,msgpack")).web_socket_session(format!("ws://{addr}/ws")),
    )
    .await
    .unwrap_err();
    assert_refused_json_msgpack(&err);
}

#[derive(Clone)]
struct Lobby {
    config: Config<JsonConverter>,
    greeting: Arc<str>,
}

async fn room(
    State(lobby): State<Lobby>,
    Path(room): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade.on_upgrade(&lobby.config, move |mut session| async move {
        let path = session.path().unwrap_or_default().to_owned();
        let _ = session
            .send_text(format!("{} {room} at {path}", lobby.greeting))
            .await;
    })
}

#[tokio::test]
async fn route_state_and_a_path_parameter_work_beside_the_extractor() {
    let lobby = Lobby {
        config: Config::new().converter(JsonConverter),
        greeting: "welcome to".into(),
    };
    let app = Router::new()
        .route("/rooms/{room}", get(room))
        .with_state(lobby);
    let addr = serve_app(app).await;
    let mut client = within(
        "connect",
        Client::new(Config::new()).web_socket_session(format!("ws://{addr}/rooms/lobby")),
    )
    .await
    .unwrap();
    let frame = within("the greeting", client.receive()).await.unwrap();
    assert_eq!(frame, Frame::text("welcome to lobby at /rooms/lobby"));
}

#[tokio::test]
async fn keep_alive_and_timeout_apply_to_a_silent_client() {
    let timeout = Duration::from_millis(400);
    let config = Config::new()
        .ping_interval(Duration::from_millis(100))
        .timeout(timeout);
    let (addr, mut sessions) = handing_over(config).await;
    let mut peer = within("connect", RawPeer::connect(addr, "/ws")).await;
    let mut server = within("the session", sessions.recv()).await.unwrap();

    // The peer reads but never answers.
    let ping = within("a ping", peer.expect_frame()).await;
    assert_eq!(ping.opcode, raw::PING);
    let err = within("the timeout", server.receive()).await.unwrap_err();
    assert!(matches!(err, Error::Timeout(d) if d == timeout), "{err:?}");
    let close = within("the close frame", peer.expect_skipping_pings()).await;
    assert_eq!(close.opcode, raw::CLOSE);
    assert_eq!(close.close_code(), Some(1011));
}

#[tokio::test]
async fn requests_that_are_no_upgrade_get_an_http_error() {
    let addr = typed_echo_app(Config::new().converter(JsonConverter)).await;

    let plain = http_answer(
        addr,
        "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(plain.starts_with("HTTP/1.1 400"), "{plain}");
    assert!(plain.contains("not a WebSocket upgrade"), "{plain}");

    let old = http_answer(
        addr,
        "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade, close\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
    )
    .await;
    assert!(old.starts_with("HTTP/1.1 426"), "{old}");
    assert!(
        old.to_ascii_lowercase()
            .contains("sec-websocket-version: 13"),
        "{old}"
    );

    let no_key = http_answer(
        addr,
        "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade, close\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n",
    )
    .await;
    assert!(no_key.starts_with("HTTP/1.1 400"), "{no_key}");

    // The server is unharmed.
    let mut client = within(
        "connect after",
        Client::new(Config::new().converter(JsonConverter))
            .web_socket_session(format!("ws://{addr}/ws")),
    )
    .await
    .unwrap();
    within("send", client.send_serialized(&chat(1)))
        .await
        .unwrap();
    let back = within("receive", client.receive_deserialized::<ChatMessage>())
        .await
        .unwrap();
    assert_eq!(back, chat(1));
}

#[tokio::test]
async fn a_plain_hyper_server_upgrades_with_http_upgrade() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = negotiating("cbor,json");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let config = config.clone();
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let answer = match http_upgrade::upgrade(request, &config) {
                    Ok((response, upgrading)) => {
                        tokio::spawn(async move {
                            if let Ok(session) = upgrading.await {
                                typed_echo(session).await;
                            }
                        });
                        response
                    }
                    Err(refusal) => refusal.into_response(),
                };
                async move { Ok::<_, Infallible>(answer) }
            });
            tokio::spawn(
                http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades(),
            );
        }
    });

    let mut client = within(
        "connect",
        Client::new(negotiating("json")).web_socket_session(format!("ws://{addr}/hyper")),
    )
    .await
    .unwrap();
    assert_eq!(client.subprotocol(), Some("json"));
    within("send", client.send_serialized(&chat(3)))
        .await
        .unwrap();
    let back = within("receive", client.receive_deserialized::<ChatMessage>())
        .await
        .unwrap();
    assert_eq!(back, chat(3));

    let err = within(
        "connect with nothing in common",
        Client::new(negotiating("msgpack")).web_socket_session(format!("ws://{addr}/hyper")),
    )
    .await
    .unwrap_err();
    assert_eq!(err.status().map(u16::from), Some(400), "{err}");
    assert!(err.to_string().contains("no common converter"), "{err}");
}

#[test]
fn a_refusal_is_a_handshake_error_with_its_status() {
    let request = hyper::Request::post("/ws").body(()).unwrap();
    let refusal = http_upgrade::upgrade(request, &Config::new()).unwrap_err();
    assert_eq!(refusal.status().as_u16(), 405);
    let response = refusal.clone().into_response();
    assert_eq!(response.status().as_u16(), 405);
    assert!(response.body().contains(refusal.reason()), "{response:?}");
    let error = Error::from(refusal);
    assert_eq!(error.status().map(u16::from), Some(405), "{error}");
}

#[tokio::test]
async fn the_extractor_agrees_on_compression_and_inflates_and_compresses() {
    let compressing = Config::new()
        .converter(JsonConverter)
        .compression(Compression::new());
    let (addr, mut sessions) = handing_over(compressing.clone()).await;
    let client = Client::new(compressing);
    let mut client = within(
        "connect",
        client.web_socket_session(format!("ws://{addr}/ws")),
    )
    .await
    .unwrap();
    let mut server = within("the server session", sessions.recv())
        .await
        .expect("a session");
    assert!(client.compression().is_some() && server.compression().is_some());
    let long = ChatMessage {
        text: "through axum, compressed ".repeat(50),
        ..chat(1)
    };
    within("send", client.send_serialized(&long)).await.unwrap();
    let got: ChatMessage = within("receive", server.receive_deserialized())
        .await
        .unwrap();
    assert_eq!(got, long);
    within("send back", server.send_serialized(&got))
        .await
        .unwrap();
    let back: ChatMessage = within("receive back", client.receive_deserialized())
        .await
        .unwrap();
    assert_eq!(back, long);
}
