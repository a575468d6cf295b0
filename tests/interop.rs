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
//! with 4002, and the peer prints the close frame it received.
//!
//! The peers come from `bash tests/peers/install.sh`. A test whose peer is not installed
//! fails and says so: a test that did not run never counts as passed.
#![cfg(all(feature = "json", feature = "cbor", feature = "msgpack"))]

mod common;

use std::collections::HashMap;
use std::fmt;

use common::peers::{Lang, Peer, require};
use common::{accept_one, within};
use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use typed_ws::*;

/// The value both sides know. Its counterparts are `canonical` in peer.py and peer.mjs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Sample {
    max_u64: u64,
    min_i64: i64,
    small: i8,
    pi: f64,
    tiny: f64,
    text: String,
    empty_text: String,
    empty_list: Vec<u32>,
    nested: Option<Vec<HashMap<String, Option<Vec<i64>>>>>,
    absent: Option<String>,
    #[serde(default)]
    note: Option<String>,
    shapes: Vec<Shape>,
    #[serde(with = "serde_bytes")]
    blob: Vec<u8>,
    #[serde(with = "serde_bytes")]
    empty_blob: Vec<u8>,
    flag: bool,
}

/// Every kind of variant, in serde's default (externally tagged) representation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Empty,
    Circle(f64),
    Rect(u32, u32),
    Labeled { label: String, sides: u8 },
}

fn canonical() -> Sample {
    Sample {
        max_u64: u64::MAX,
        min_i64: i64::MIN,
        small: -7,
        pi: std::f64::consts::PI,
        tiny: -1.5e-300, // read exactly only with serde_json's float_roundtrip
        text: "héllo wörld ✓ 日本語 🦀 \"quoted\" \\ \n\t\0".to_owned(),
        empty_text: String::new(),
        empty_list: Vec::new(),
        nested: Some(vec![
            HashMap::from([
                ("primes".to_owned(), Some(vec![2, 3, 5, -7])),
                ("none".to_owned(), None),
                (String::new(), Some(Vec::new())),
                ("ключ ✓".to_owned(), Some(vec![i64::MAX])),
            ]),
            HashMap::new(),
        ]),
        absent: None,
        note: Some("present".to_owned()),
        shapes: vec![
            Shape::Empty,
            Shape::Circle(0.5),
            Shape::Rect(3, 4),
            Shape::Labeled {
                label: "tri".to_owned(),
                sides: 3,
            },
        ],
        blob: vec![0, 1, 2, 127, 128, 254, 255],
        empty_blob: Vec::new(),
        flag: true,
    }
}

/// What the peer sends for each variant it is asked for.
fn expected(variant: &str) -> Sample {
    let mut value = canonical();
    match variant {
        "canonical" | "extra" => {}
        "omitted" => value.note = None,
        "whole_float" => value.shapes[1] = Shape::Circle(2.0),
        other => panic!("no variant {other}"),
    }
    value
}

/// How a field was encoded, as the codec reports it to serde.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Wire {
    Bytes,
    Seq,
}

impl<'de> Deserialize<'de> for Wire {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Wire, D::Error> {
        struct Probe;
        impl<'de> Visitor<'de> for Probe {
            type Value = Wire;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("bytes or a sequence")
            }
            fn visit_bytes<E>(self, _: &[u8]) -> Result<Wire, E> {
                Ok(Wire::Bytes)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Wire, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Wire::Seq)
            }
        }
        deserializer.deserialize_any(Probe)
    }
}

/// The wire form of the byte fields of a [`Sample`].
#[derive(Debug, PartialEq, Deserialize)]
struct ByteFields {
    blob: Wire,
    empty_blob: Wire,
}

/// The peer's answer to a value we sent.
#[derive(Debug, Deserialize)]
struct Verdict {
    ok: bool,
    why: Option<String>,
}

fn config(codec: &str) -> Config<AnyConverter> {
    Config::new().converter(AnyConverter::from_name(codec).unwrap())
}

/// The frame type a codec's messages travel in.
fn wire_kind(codec: &str) -> FrameKind {
    if codec == "json" {
        FrameKind::Text
    } else {
        FrameKind::Binary
    }
}

/// Waits for the peer's verdict on what we just sent.
async fn verdict(session: &mut Session<AnyConverter>, what: &str) {
    let frame = within(what, session.receive())
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let text = frame
        .as_text()
        .unwrap_or_else(|| panic!("{what}: a verdict was expected, not {frame:?}"));
    let verdict: Verdict = serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert!(verdict.ok, "{what}: {}", verdict.why.unwrap_or_default());
}

/// Asks the peer for one of its encodings and checks that it decodes to what it should.
async fn ask(session: &mut Session<AnyConverter>, codec: &str, variant: &str, fragmented: bool) {
    let what = format!("the peer's {variant} value (fragmented: {fragmented})");
    let command = serde_json::json!({"cmd": "send", "variant": variant, "fragmented": fragmented});
    within(&what, session.send_text(command.to_string()))
        .await
        .unwrap();
    let frame = within(&what, session.receive())
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(frame.kind(), wire_kind(codec), "{what}");
    let value: Sample = session
        .converter()
        .deserialize(&frame)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(value, expected(variant), "{what}");
    let form = if codec == "json" {
        Wire::Seq
    } else {
        Wire::Bytes
    };
    let bytes: ByteFields = session.converter().deserialize(&frame).unwrap();
    let want = ByteFields {
        blob: form,
        empty_blob: form,
    };
    assert_eq!(bytes, want, "{what}: the byte fields on the wire");
}

/// The first connection: values both ways, then the peer closes with 4001 and we check that
/// the close frame and the session's close reason carry its code and reason intact. Ends with
/// the session dropped, so that the peer sees the connection end.
async fn exchange(lang: Lang, codec: &str, mut session: Session<AnyConverter>) {
    within("send our value", session.send_serialized(&canonical()))
        .await
        .unwrap();
    verdict(&mut session, "the peer decoding our value").await;

    for variant in ["canonical", "extra", "omitted", "whole_float"] {
        // See node_cbor_whole_float.
        if variant == "whole_float" && lang == Lang::Node && codec == "cbor" {
            continue;
        }
        for fragmented in [false, true] {
            ask(&mut session, codec, variant, fragmented).await;
        }
    }

    let bye = CloseReason::new(CloseCode::Application(4001), "bye ✓");
    let command = serde_json::json!({"cmd": "close", "code": 4001, "reason": "bye ✓"});
    within(
        "ask the peer to close",
        session.send_text(command.to_string()),
    )
    .await
    .unwrap();
    let frame = within("the peer's close frame", session.receive())
        .await
        .unwrap();
    assert_eq!(frame, Frame::Close(Some(bye.clone())));
    assert_eq!(session.close_reason(), Some(bye.clone()));
    let end = within("the end of the session", session.receive()).await;
    assert!(
        matches!(&end, Err(Error::Closed(reason)) if *reason == bye),
        "{end:?}"
    );
}

/// The second connection, made with `fragment_size(16)`: the peer reassembles our value from
/// its fragments, then we close with 4002 and the peer reports that code and reason.
async fn fragments_and_our_close(peer: &mut Peer, mut session: Session<AnyConverter>) {
    let frame = session.converter().serialize(&canonical()).unwrap();
    let len = frame.payload().len();
    assert!(
        len > 10 * 16,
        "{len} bytes should make more than 10 fragments"
    );
    within("send our value in fragments", session.send(frame))
        .await
        .unwrap();
    verdict(&mut session, "the peer reassembling our value").await;

    let ours = CloseReason::new(CloseCode::Application(4002), "ours ✓");
    within("our closing handshake", session.close(ours.clone()))
        .await
        .unwrap();
    assert_eq!(session.close_reason(), Some(ours));
    drop(session);
    assert_eq!(peer.closed().await, (4002, "ours ✓".to_owned()));
}

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
    let certificate = common::tls::certificate_for(&["localhost"]);
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
    let certificate = common::tls::certificate_for(&["localhost"]);
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
