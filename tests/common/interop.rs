//! The interop exchange of tests/interop/exchange.rs and tests/interop/compression.rs with
//! the peers tests/peers/peer.py and peer.mjs: the value both sides know, in Rust, and the
//! messages that carry it both ways over a session. See tests/interop/exchange.rs for the protocol.

use std::collections::HashMap;
use std::fmt;

use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use typed_ws::*;

use super::peers::{Lang, Peer};
use super::within;

/// The value both sides know. Its counterparts are `canonical` in peer.py and peer.mjs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub max_u64: u64,
    pub min_i64: i64,
    pub small: i8,
    pub pi: f64,
    pub tiny: f64,
    pub text: String,
    pub empty_text: String,
    pub empty_list: Vec<u32>,
    pub nested: Option<Vec<HashMap<String, Option<Vec<i64>>>>>,
    pub absent: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    pub shapes: Vec<Shape>,
    #[serde(with = "serde_bytes")]
    pub blob: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub empty_blob: Vec<u8>,
    pub flag: bool,
}

/// Every kind of variant, in serde's default (externally tagged) representation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Shape {
    Empty,
    Circle(f64),
    Rect(u32, u32),
    Labeled { label: String, sides: u8 },
}

pub fn canonical() -> Sample {
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
pub fn expected(variant: &str) -> Sample {
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
pub enum Wire {
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
pub struct ByteFields {
    blob: Wire,
    empty_blob: Wire,
}

/// The peer's answer to a value we sent.
#[derive(Debug, Deserialize)]
pub struct Verdict {
    ok: bool,
    why: Option<String>,
}

pub fn config(codec: &str) -> Config<AnyConverter> {
    Config::new().converter(AnyConverter::from_name(codec).unwrap())
}

/// The frame type a codec's messages travel in.
pub fn wire_kind(codec: &str) -> FrameKind {
    if codec == "json" {
        FrameKind::Text
    } else {
        FrameKind::Binary
    }
}

/// Waits for the peer's verdict on what we just sent.
pub async fn verdict(session: &mut Session<AnyConverter>, what: &str) {
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
pub async fn ask(
    session: &mut Session<AnyConverter>,
    codec: &str,
    variant: &str,
    fragmented: bool,
) {
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
pub async fn exchange(lang: Lang, codec: &str, mut session: Session<AnyConverter>) {
    values(lang, codec, &mut session).await;
    peer_closes(session).await;
}

/// Our value to the peer, then each of the peer's encodings to us, whole and fragmented.
pub async fn values(lang: Lang, codec: &str, session: &mut Session<AnyConverter>) {
    within("send our value", session.send_serialized(&canonical()))
        .await
        .unwrap();
    verdict(session, "the peer decoding our value").await;

    for variant in ["canonical", "extra", "omitted", "whole_float"] {
        // See node_cbor_whole_float in tests/interop/exchange.rs.
        if variant == "whole_float" && lang == Lang::Node && codec == "cbor" {
            continue;
        }
        for fragmented in [false, true] {
            ask(session, codec, variant, fragmented).await;
        }
    }
}

/// The peer closes with 4001; the close frame and the session's close reason carry its code
/// and reason intact.
pub async fn peer_closes(mut session: Session<AnyConverter>) {
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
pub async fn fragments_and_our_close(peer: &mut Peer, mut session: Session<AnyConverter>) {
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
