//! Interoperability with independent implementations: our client against a Python
//! `websockets` server and a Node `ws` server, their clients against our server, in JSON,
//! CBOR (`cbor2`, `cbor-x`) and MessagePack (`msgpack`, `@msgpack/msgpack`).
//!
//! The peers, tests/peers/peer.py and tests/peers/peer.mjs, hold the same logical value as
//! [`canonical`], written natively. Over one connection we send ours and the peer answers
//! whether it decoded to its own (types included: bytes must arrive as bytes); the peer sends
//! its encodings (as is, with unknown fields, with the optional field left out, with a whole
//! float; whole and fragmented) and we decode them to ours; then the peer closes with 4001.
//! Over a second connection, with `fragment_size(16)`, we send ours in fragments and close
//! with 4002, and the peer prints the close frame it received. The value and this exchange
//! live in tests/common/interop.rs, which tests/interop/compression.rs runs as well.
//!
//! The peers come from `bash tests/peers/install.sh`. A test whose peer is not installed
//! fails and says so: a test that did not run never counts as passed.
#![cfg(all(feature = "json", feature = "cbor", feature = "msgpack"))]

use crate::common;

use std::collections::HashMap;

use common::interop::*;
use common::peers::{Lang, Peer, require};
use common::{accept_one, within};
use serde::{Deserialize, Serialize};
use typed_ws::*;

/// Our client against the peer's server.
async fn our_client(lang: Lang, codec: &str) {
    require(lang);
    let mut peer = Peer::start(lang, &["server", "--codec", codec]);
    let url = format!("{}/interop", peer.listening().await);

    let client = Client::new(config(codec));
    let session = within(
        "connect to the peer",
        client.web_socket_session(url.as_str()),
    )
    .await
    .unwrap();
    exchange(lang, codec, session).await;
    // Our reply to its close frame echoes the code and reason.
    assert_eq!(peer.closed().await, (4001, "bye ✓".to_owned()));

    let client = Client::new(config(codec).fragment_size(16));
    let session = within("connect again", client.web_socket_session(url.as_str()))
        .await
        .unwrap();
    fragments_and_our_close(&mut peer, session).await;
}

/// The peer's client against our server.
async fn our_server(lang: Lang, codec: &str) {
    require(lang);
    let (addr, accepted) = accept_one(config(codec)).await;
    let url = format!("ws://{addr}/interop");
    let mut peer = Peer::start(lang, &["client", "--url", &url, "--codec", codec]);
    let session = within("the peer connecting", accepted)
        .await
        .unwrap()
        .unwrap();
    exchange(lang, codec, session).await;
    assert_eq!(peer.closed().await, (4001, "bye ✓".to_owned()));

    let (addr, accepted) = accept_one(config(codec).fragment_size(16)).await;
    let url = format!("ws://{addr}/interop");
    let mut peer = Peer::start(lang, &["client", "--url", &url, "--codec", codec]);
    let session = within("the peer connecting again", accepted)
        .await
        .unwrap()
        .unwrap();
    fragments_and_our_close(&mut peer, session).await;
}

/// An axum router, served as `examples/axum_echo` serves its own: one route whose handler
/// takes the config from the route state and answers with the `WebSocketUpgrade` extractor,
/// handing the session to the test.
#[cfg(feature = "axum")]
async fn axum_accept_one(
    config: Config<AnyConverter>,
) -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<Session<AnyConverter>>,
) {
    use ::axum::extract::State;
    use ::axum::routing::get;
    use typed_ws::axum::WebSocketUpgrade;

    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let handler = move |State(config): State<Config<AnyConverter>>, upgrade: WebSocketUpgrade| {
        let tx = tx.clone();
        async move {
            upgrade.on_upgrade(&config, move |session| async move {
                let _ = tx.send(session);
            })
        }
    };
    let app = ::axum::Router::new()
        .route("/interop", get(handler))
        .with_state(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { ::axum::serve(listener, app).await });
    (addr, rx)
}

/// The peer's client against our server inside an axum router.
#[cfg(feature = "axum")]
async fn axum_server(lang: Lang, codec: &str) {
    require(lang);
    let (addr, mut sessions) = axum_accept_one(config(codec)).await;
    let url = format!("ws://{addr}/interop");
    let mut peer = Peer::start(lang, &["client", "--url", &url, "--codec", codec]);
    let session = within("the peer connecting", sessions.recv())
        .await
        .expect("a session");
    exchange(lang, codec, session).await;
    assert_eq!(peer.closed().await, (4001, "bye ✓".to_owned()));

    let (addr, mut sessions) = axum_accept_one(config(codec).fragment_size(16)).await;
    let url = format!("ws://{addr}/interop");
    let mut peer = Peer::start(lang, &["client", "--url", &url, "--codec", codec]);
    let session = within("the peer connecting again", sessions.recv())
        .await
        .expect("a session");
    fragments_and_our_close(&mut peer, session).await;
}

/// Our client, trusting a certificate made for the test, against a Python `websockets` server
/// over TLS.
#[cfg(feature = "tls")]
#[tokio::test]
async fn our_client_python_tls_server() {
    require(Lang::Python);
    let certificate = common::tls::certificate("localhost");
    let (cert_file, key_file) = certificate.pem_files();
    let (cert_file, key_file) = (cert_file.to_string_lossy(), key_file.to_string_lossy());
    let args = [
        "server", "--codec", "cbor", "--cert", &cert_file, "--key", &key_file,
    ];
    let mut peer = Peer::start(Lang::Python, &args);
    let url = format!("{}/interop", peer.listening().await);
    assert!(url.starts_with("wss://localhost:"), "{url}");
    let client = Client::new(config("cbor").tls_client(common::tls::trusting(certificate.der)));
    let session = within("connect over TLS", client.web_socket_session(url))
        .await
        .unwrap();
    exchange(Lang::Python, "cbor", session).await;
    assert_eq!(peer.closed().await, (4001, "bye ✓".to_owned()));
}

/// A Python `websockets` client, trusting a certificate made for the test, against our server
/// over TLS.
#[cfg(feature = "tls")]
#[tokio::test]
async fn python_tls_client_our_server() {
    require(Lang::Python);
    let certificate = common::tls::certificate("localhost");
    let (cert_file, _) = certificate.pem_files();
    let server_tls = certificate.server;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = Server::new(config("msgpack"));
    let accepted = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = tokio_rustls::TlsAcceptor::from(server_tls)
            .accept(tcp)
            .await
            .unwrap();
        server.accept(tls).await
    });
    let url = format!("wss://localhost:{port}/interop");
    let ca = cert_file.to_string_lossy();
    let _peer = Peer::start(
        Lang::Python,
        &["client", "--url", &url, "--codec", "msgpack", "--ca", &ca],
    );
    let session = within("the peer connecting over TLS", accepted)
        .await
        .unwrap()
        .unwrap();
    exchange(Lang::Python, "msgpack", session).await;
}

/// A Python client offers `wamp.2.msgpack, wamp.2.json`; our server, which prefers CBOR
/// then JSON, agrees on `wamp.2.json`, and the exchange runs in JSON on both sides.
#[tokio::test]
async fn python_client_negotiates_the_converter_by_subprotocol() {
    require(Lang::Python);
    let negotiation = Negotiation::from_names("cbor,json")
        .unwrap()
        .prefix("wamp.2");
    let (addr, accepted) = accept_one(Config::new().negotiate(negotiation)).await;
    let url = format!("ws://{addr}/wamp");
    let offer = "wamp.2.msgpack,wamp.2.json";
    let mut peer = Peer::start(
        Lang::Python,
        &["client", "--url", &url, "--subprotocols", offer],
    );
    let session = within("the peer connecting", accepted)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(session.subprotocol(), Some("wamp.2.json"));
    assert_eq!(session.converter().name(), "json");
    let chosen = peer.line("the peer reporting the subprotocol").await;
    assert_eq!(chosen, r#"{"event": "subprotocol", "name": "wamp.2.json"}"#);
    exchange(Lang::Python, "json", session).await;
    assert_eq!(peer.closed().await, (4001, "bye ✓".to_owned()));
}

#[tokio::test]
async fn our_client_python_server_json() {
    our_client(Lang::Python, "json").await;
}

#[tokio::test]
async fn our_client_python_server_cbor() {
    our_client(Lang::Python, "cbor").await;
}

#[tokio::test]
async fn our_client_python_server_msgpack() {
    our_client(Lang::Python, "msgpack").await;
}

#[tokio::test]
async fn python_client_our_server_json() {
    our_server(Lang::Python, "json").await;
}

#[tokio::test]
async fn python_client_our_server_cbor() {
    our_server(Lang::Python, "cbor").await;
}

#[tokio::test]
async fn python_client_our_server_msgpack() {
    our_server(Lang::Python, "msgpack").await;
}

#[tokio::test]
async fn our_client_node_server_json() {
    our_client(Lang::Node, "json").await;
}

#[tokio::test]
async fn our_client_node_server_cbor() {
    our_client(Lang::Node, "cbor").await;
}

#[tokio::test]
async fn our_client_node_server_msgpack() {
    our_client(Lang::Node, "msgpack").await;
}

#[tokio::test]
async fn node_client_our_server_json() {
    our_server(Lang::Node, "json").await;
}

#[tokio::test]
async fn node_client_our_server_cbor() {
    our_server(Lang::Node, "cbor").await;
}

#[tokio::test]
async fn node_client_our_server_msgpack() {
    our_server(Lang::Node, "msgpack").await;
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn python_client_axum_server_json() {
    axum_server(Lang::Python, "json").await;
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn python_client_axum_server_cbor() {
    axum_server(Lang::Python, "cbor").await;
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn python_client_axum_server_msgpack() {
    axum_server(Lang::Python, "msgpack").await;
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn node_client_axum_server_json() {
    axum_server(Lang::Node, "json").await;
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn node_client_axum_server_cbor() {
    axum_server(Lang::Node, "cbor").await;
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn node_client_axum_server_msgpack() {
    axum_server(Lang::Node, "msgpack").await;
}

/// JavaScript has one number type, so cbor-x writes the float 2.0 as the CBOR integer 2, and
/// ciborium refuses an integer where an `f64` is expected (serde_json and rmp-serde take it):
/// the README's known incompatibility, pinned as it is today, so that a change on either side
/// shows.
#[tokio::test]
async fn node_cbor_whole_float() {
    require(Lang::Node);
    let mut peer = Peer::start(Lang::Node, &["server", "--codec", "cbor"]);
    let url = peer.listening().await;
    let client = Client::new(config("cbor"));
    let mut session = within(
        "connect to the peer",
        client.web_socket_session(url.as_str()),
    )
    .await
    .unwrap();
    let command = serde_json::json!({"cmd": "send", "variant": "whole_float", "fragmented": false});
    within("ask for the value", session.send_text(command.to_string()))
        .await
        .unwrap();
    let frame = within("the peer's value", session.receive()).await.unwrap();
    #[derive(Deserialize)]
    struct Shapes {
        shapes: Vec<serde_json::Value>,
    }
    let Shapes { shapes } = session.converter().deserialize(&frame).unwrap();
    let circle = &shapes[1]["Circle"];
    assert!(circle.as_u64() == Some(2), "the peer's shapes: {shapes:?}");
    match session.converter().deserialize::<Sample>(&frame) {
        Err(error @ Error::Decode { .. }) => {
            let text = error.to_string();
            assert!(
                text.contains("invalid type: integer `2`, expected float"),
                "{text}"
            );
        }
        other => panic!("expected Error::Decode, got {other:?}"),
    }
}

fn hex(frame: Frame) -> String {
    frame
        .payload()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A value as JSON text, CBOR hex and MessagePack hex.
fn forms<T: Serialize>(value: &T) -> [String; 3] {
    let json = JsonConverter.serialize(value).unwrap();
    [
        json.as_text().unwrap().to_owned(),
        hex(CborConverter.serialize(value).unwrap()),
        hex(MsgPackConverter::new().serialize(value).unwrap()),
    ]
}

/// The wire forms the peers rely on, byte for byte (no peer needed).
#[test]
fn wire_forms() {
    #[derive(Serialize)]
    struct Blob {
        #[serde(with = "serde_bytes")]
        b: Vec<u8>,
    }
    #[derive(Serialize)]
    struct Maybe {
        x: Option<u8>,
    }

    // Enums are externally tagged in all three: a unit variant is its name as a string, the
    // others a one-entry map from the name to the content.
    assert_eq!(
        forms(&Shape::Empty),
        [r#""Empty""#, "65456d707479", "a5456d707479"]
    );
    assert_eq!(
        forms(&Shape::Circle(0.5)),
        [
            r#"{"Circle":0.5}"#,
            "a166436972636c65f93800", // 0.5 as a half float
            "81a6436972636c65cb3fe0000000000000",
        ]
    );
    assert_eq!(
        forms(&Shape::Rect(3, 4)),
        [
            r#"{"Rect":[3,4]}"#,
            "a16452656374820304",
            "81a452656374920304"
        ]
    );
    assert_eq!(
        forms(&Shape::Labeled {
            label: "tri".to_owned(),
            sides: 3
        }),
        [
            r#"{"Labeled":{"label":"tri","sides":3}}"#,
            "a1674c6162656c6564a2656c6162656c6374726965736964657303",
            "81a74c6162656c656482a56c6162656ca3747269a5736964657303",
        ]
    );
    // serde_bytes: an array of numbers in JSON, a byte string in CBOR, a bin in MessagePack.
    assert_eq!(
        forms(&Blob { b: vec![1, 2] }),
        [r#"{"b":[1,2]}"#, "a16162420102", "81a162c4020102"]
    );
    // None is null / nil, and the field is written, not left out.
    assert_eq!(
        forms(&Maybe { x: None }),
        [r#"{"x":null}"#, "a16178f6", "81a178c0"]
    );
    assert_eq!(
        forms(&HashMap::from([("k", 1)])),
        [r#"{"k":1}"#, "a1616b01", "81a16b01"]
    );
    // Integers take the fewest bytes that hold them.
    assert_eq!(forms(&300u64), ["300", "19012c", "cd012c"]);
    assert_eq!(forms(&-7i64), ["-7", "26", "f9"]);
    assert_eq!(
        forms(&u64::MAX),
        [
            "18446744073709551615",
            "1bffffffffffffffff",
            "cfffffffffffffffff"
        ]
    );
    assert_eq!(
        forms(&i64::MIN),
        [
            "-9223372036854775808",
            "3b7fffffffffffffff",
            "d38000000000000000"
        ]
    );
    // CBOR floats take the shortest form that is exact; MessagePack f64 stays 8 bytes.
    assert_eq!(
        forms(&100000.0f64),
        ["100000.0", "fa47c35000", "cb40f86a0000000000"]
    );
    assert_eq!(
        forms(&std::f64::consts::PI),
        [
            "3.141592653589793",
            "fb400921fb54442d18",
            "cb400921fb54442d18"
        ]
    );
    // Without serde_bytes a Vec<u8> is an array of integers everywhere.
    assert_eq!(forms(&vec![1u8, 2]), ["[1,2]", "820102", "920102"]);
    assert_eq!(
        forms(&(String::new(), Vec::<u8>::new())),
        [r#"["",[]]"#, "826080", "92a090"]
    );
}

/// Without serde_json's `float_roundtrip` feature, which typed-ws turns on, serde_json reads
/// the `-1.5e-300` that it, Python and JavaScript all write as -1.4999999999999998e-300.
#[test]
fn json_reads_floats_exactly() {
    for x in [
        -1.5e-300,
        -1.25e-300,
        -2.5e-308,
        5e-324,
        f64::MAX,
        f64::MIN_POSITIVE,
    ] {
        let frame = Frame::text(format!("{x:?}"));
        let read: f64 = JsonConverter.deserialize(&frame).unwrap();
        assert_eq!(read, x, "{}", frame.as_text().unwrap());
    }
}
