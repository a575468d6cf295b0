//! Converters: typed round trips per codec, choosing by name, a converter written here, the
//! MessagePack forms, and every typed error with the session still usable after it.
#![cfg(all(feature = "json", feature = "cbor", feature = "msgpack"))]

use crate::common;

use std::collections::BTreeMap;

use common::*;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};
use typed_ws::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Point {
    x: u8,
    y: u8,
}

/// A value every codec refuses to encode.
struct Unencodable;

impl Serialize for Unencodable {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(
            "this value refuses to be encoded",
        ))
    }
}

/// Typed messages both ways between a client and a server with (possibly different but
/// compatible) converters, and the frame type the client's converter puts on the wire.
async fn round_trip<A: Converter, B: Converter>(client: A, server: B, wire: FrameKind) {
    let name = client.name();
    let (mut c, mut s) = pair(
        Config::new().converter(client),
        Config::new().converter(server),
    )
    .await;
    for id in 0..3 {
        within("client send", c.send_serialized(&chat(id)))
            .await
            .unwrap();
        let got: ChatMessage = within("server receive", s.receive_deserialized())
            .await
            .unwrap();
        assert_eq!(got, chat(id), "{name}");
        let reply = ChatMessage {
            text: got.text.to_uppercase(),
            ..got
        };
        within("server send", s.send_serialized(&reply))
            .await
            .unwrap();
        let back: ChatMessage = within("client receive", c.receive_deserialized())
            .await
            .unwrap();
        assert_eq!(back, reply, "{name}");
    }
    within("client send", c.send_serialized(&chat(9)))
        .await
        .unwrap();
    let frame = within("server raw receive", s.receive()).await.unwrap();
    assert_eq!(frame.kind(), wire, "{name} puts {wire} frames on the wire");
    let decoded: ChatMessage = c.converter().deserialize(&frame).unwrap();
    assert_eq!(decoded, chat(9));
}

#[tokio::test]
async fn typed_round_trip_json() {
    round_trip(JsonConverter, JsonConverter, FrameKind::Text).await;
}

#[tokio::test]
async fn typed_round_trip_cbor() {
    round_trip(CborConverter, CborConverter, FrameKind::Binary).await;
}

#[tokio::test]
async fn typed_round_trip_msgpack_named_and_compact() {
    round_trip(
        MsgPackConverter::new(),
        MsgPackConverter::new(),
        FrameKind::Binary,
    )
    .await;
    round_trip(
        MsgPackConverter::compact(),
        MsgPackConverter::compact(),
        FrameKind::Binary,
    )
    .await;
}

#[tokio::test]
async fn any_converter_chosen_by_name_matches_the_typed_codecs() {
    for (name, canonical, wire) in [
        ("json", "json", FrameKind::Text),
        ("CBOR", "cbor", FrameKind::Binary),
        ("MsgPack", "msgpack", FrameKind::Binary),
    ] {
        let any: AnyConverter = name.parse().unwrap();
        assert_eq!(any.name(), canonical);
        assert_eq!(AnyConverter::from_name(name).unwrap(), any);
        // Chosen by name on one side, by type on the other: the same wire format.
        match canonical {
            "json" => round_trip(any, JsonConverter, wire).await,
            "cbor" => round_trip(any, CborConverter, wire).await,
            _ => round_trip(any, MsgPackConverter::new(), wire).await,
        }
    }
    assert_eq!(
        AnyConverter::from(CborConverter),
        AnyConverter::from_name("cbor").unwrap()
    );
}

#[test]
fn unknown_converter_name_lists_the_known_ones() {
    let err = AnyConverter::from_name("yaml").unwrap_err();
    match &err {
        Error::UnknownConverter { name, known, .. } => {
            assert_eq!(name, "yaml");
            assert_eq!(known, &["json", "cbor", "msgpack"]);
        }
        other => panic!("expected UnknownConverter, got {other:?}"),
    }
    let text = err.to_string();
    for name in ["yaml", "json", "cbor", "msgpack"] {
        assert!(text.contains(name), "{text:?} should mention {name}");
    }
    assert_eq!(err.close_code(), None);
    assert_eq!(AnyConverter::known_names(), ["json", "cbor", "msgpack"]);
    assert!(matches!(
        "".parse::<AnyConverter>(),
        Err(Error::UnknownConverter { .. })
    ));
    assert!(matches!(
        "msgpack-compact".parse::<AnyConverter>(),
        Err(Error::UnknownConverter { .. })
    ));
}

/// JSON behind a version prefix, in text frames: a converter written outside the crate.
#[derive(Clone)]
struct PrefixedJson;

impl Converter for PrefixedJson {
    fn name(&self) -> &'static str {
        "prefixed-json"
    }

    fn serialize<T: Serialize + ?Sized>(&self, value: &T) -> Result<Frame, Error> {
        let json = serde_json::to_string(value).map_err(|e| Error::encode(self.name(), e))?;
        Ok(Frame::text(format!("v1:{json}")))
    }

    fn deserialize<T: DeserializeOwned>(&self, frame: &Frame) -> Result<T, Error> {
        let text = frame.as_text().unwrap_or_default();
        let json = text
            .strip_prefix("v1:")
            .ok_or_else(|| Error::decode(self.name(), frame, "missing the v1: prefix"))?;
        serde_json::from_str(json).map_err(|e| Error::decode(self.name(), frame, e))
    }

    fn is_applicable(&self, frame: &Frame) -> bool {
        matches!(frame, Frame::Text(_))
    }
}

#[tokio::test]
async fn custom_converter_end_to_end() {
    // Both sides typed with the custom converter, through a served handler.
    let server = Server::new(Config::new().converter(PrefixedJson));
    let addr = serve(server, |mut session| async move {
        while let Ok(mut message) = session.receive_deserialized::<ChatMessage>().await {
            message.id += 100;
            if session.send_serialized(&message).await.is_err() {
                break;
            }
        }
    })
    .await;
    let client = Client::new(Config::new().converter(PrefixedJson));
    let reply: ChatMessage = within(
        "scoped session",
        client.web_socket(format!("ws://{addr}/custom"), async |mut session| {
            assert_eq!(session.converter().name(), "prefixed-json");
            session.send_serialized(&chat(1)).await?;
            session.receive_deserialized().await
        }),
    )
    .await
    .unwrap();
    assert_eq!(reply, ChatMessage { id: 101, ..chat(1) });

    // On the wire, and its own errors.
    let (mut c, mut raw) = pair(Config::new().converter(PrefixedJson), Config::new()).await;
    within("send", c.send_serialized(&Point { x: 1, y: 2 }))
        .await
        .unwrap();
    assert_eq!(
        within("raw receive", raw.receive()).await.unwrap(),
        Frame::text(r#"v1:{"x":1,"y":2}"#)
    );
    within("raw send", raw.send_text(r#"{"x":1,"y":2}"#))
        .await
        .unwrap();
    let err = within("decode error", c.receive_deserialized::<Point>())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Decode {
                converter: "prefixed-json",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.frame(), Some(&Frame::text(r#"{"x":1,"y":2}"#)));
    within("raw send", raw.send_binary(vec![1u8]))
        .await
        .unwrap();
    let err = within("unexpected frame", c.receive_deserialized::<Point>())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::UnexpectedFrame {
                converter: "prefixed-json",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn msgpack_named_and_compact_forms_on_the_wire_and_across() {
    const NAMED: &[u8] = &[0x82, 0xa1, b'x', 0x01, 0xa1, b'y', 0x02]; // {"x": 1, "y": 2}
    const COMPACT: &[u8] = &[0x92, 0x01, 0x02]; // [1, 2]
    let point = Point { x: 1, y: 2 };

    for (converter, expected) in [
        (MsgPackConverter::new(), NAMED),
        (MsgPackConverter::default(), NAMED),
        (MsgPackConverter::compact(), COMPACT),
    ] {
        let (mut c, mut raw) = pair(Config::new().converter(converter), Config::new()).await;
        within("send", c.send_serialized(&point)).await.unwrap();
        assert_eq!(
            within("raw receive", raw.receive()).await.unwrap(),
            Frame::binary(expected)
        );
    }
    // By name, "msgpack" is the named form.
    let (mut c, mut raw) = pair(
        Config::new().converter(AnyConverter::from_name("msgpack").unwrap()),
        Config::new(),
    )
    .await;
    within("send", c.send_serialized(&point)).await.unwrap();
    assert_eq!(
        within("raw receive", raw.receive()).await.unwrap(),
        Frame::binary(NAMED)
    );

    // Each form decodes the other.
    let (mut named, mut compact) = pair(
        Config::new().converter(MsgPackConverter::new()),
        Config::new().converter(MsgPackConverter::compact()),
    )
    .await;
    within("named send", named.send_serialized(&point))
        .await
        .unwrap();
    assert_eq!(
        within("compact receive", compact.receive_deserialized::<Point>())
            .await
            .unwrap(),
        point
    );
    within("compact send", compact.send_serialized(&point))
        .await
        .unwrap();
    assert_eq!(
        within("named receive", named.receive_deserialized::<Point>())
            .await
            .unwrap(),
        point
    );
}

/// A frame of the wrong type comes back whole in `UnexpectedFrame`; pings and pongs are
/// skipped; the session goes on.
async fn wrong_frame_type<C: Converter>(converter: C, wrong: Frame) {
    let name = converter.name();
    let (mut c, mut raw) = pair(Config::new().converter(converter.clone()), Config::new()).await;
    within("raw send", raw.send(wrong.clone())).await.unwrap();
    let err = within("typed receive", c.receive_deserialized::<Point>())
        .await
        .unwrap_err();
    match &err {
        Error::UnexpectedFrame {
            converter, frame, ..
        } => {
            assert_eq!(*converter, name);
            assert_eq!(frame, &wrong);
        }
        other => panic!("{name}: expected UnexpectedFrame, got {other:?}"),
    }
    assert_eq!(err.close_code(), Some(CloseCode::Unsupported));
    assert_eq!(err.frame(), Some(&wrong));
    assert_eq!(err.into_frame(), Some(wrong));

    // Still usable both ways; control frames are skipped by a typed receive.
    within(
        "raw pong",
        raw.send(Frame::Pong(Bytes::from_static(b"skip me"))),
    )
    .await
    .unwrap();
    let good = converter.serialize(&Point { x: 3, y: 4 }).unwrap();
    within("raw send good", raw.send(good)).await.unwrap();
    assert_eq!(
        within("typed receive after", c.receive_deserialized::<Point>())
            .await
            .unwrap(),
        Point { x: 3, y: 4 }
    );
    within("typed send after", c.send_serialized(&Point { x: 5, y: 6 }))
        .await
        .unwrap();
    let frame = within("raw receive", raw.receive()).await.unwrap();
    assert_eq!(
        converter.deserialize::<Point>(&frame).unwrap(),
        Point { x: 5, y: 6 }
    );
    assert_eq!(c.close_reason(), None);
}

#[tokio::test]
async fn wrong_frame_type_gives_unexpected_frame_and_the_session_goes_on() {
    wrong_frame_type(JsonConverter, Frame::binary(vec![1u8, 2, 3])).await;
    wrong_frame_type(CborConverter, Frame::text(r#"{"x":1,"y":2}"#)).await;
    wrong_frame_type(MsgPackConverter::new(), Frame::text("hello")).await;
    wrong_frame_type(
        AnyConverter::from_name("json").unwrap(),
        Frame::binary(vec![0u8]),
    )
    .await;
}

/// A payload that does not decode comes back whole in `Decode`; the session goes on.
async fn undecodable<C: Converter>(converter: C, bad: Frame) {
    let name = converter.name();
    let (mut c, mut raw) = pair(Config::new().converter(converter.clone()), Config::new()).await;
    within("raw send", raw.send(bad.clone())).await.unwrap();
    let err = within("typed receive", c.receive_deserialized::<Point>())
        .await
        .unwrap_err();
    match &err {
        Error::Decode {
            converter, frame, ..
        } => {
            assert_eq!(*converter, name);
            assert_eq!(frame, &bad);
        }
        other => panic!("{name}: expected Decode for {bad:?}, got {other:?}"),
    }
    assert_eq!(err.close_code(), Some(CloseCode::InvalidPayload));
    assert_eq!(err.frame(), Some(&bad));
    // The codec's error is kept, and quoted once: in the message, not again as a source.
    let Error::Decode { cause, .. } = &err else {
        unreachable!()
    };
    assert!(
        err.to_string().ends_with(&cause.to_string()),
        "{name}: {err}"
    );
    assert!(std::error::Error::source(&err).is_none(), "{name}: {err:?}");

    let good = converter.serialize(&Point { x: 7, y: 8 }).unwrap();
    within("raw send good", raw.send(good)).await.unwrap();
    assert_eq!(
        within("typed receive after", c.receive_deserialized::<Point>())
            .await
            .unwrap(),
        Point { x: 7, y: 8 }
    );
    within("typed send after", c.send_serialized(&Point { x: 9, y: 9 }))
        .await
        .unwrap();
    within("raw receive", raw.receive()).await.unwrap();
    assert_eq!(c.close_reason(), None);
}

#[tokio::test]
async fn undecodable_payload_gives_decode_and_the_session_goes_on() {
    undecodable(JsonConverter, Frame::text("{not json")).await;
    undecodable(JsonConverter, Frame::text(r#"{"x":1}"#)).await; // missing field
    undecodable(JsonConverter, Frame::text(r#"{"x":1,"y":2} trailing"#)).await;
    undecodable(CborConverter, Frame::binary(vec![0xffu8])).await;
    // A valid item followed by more bytes.
    let mut trailing = CborConverter
        .serialize(&Point { x: 1, y: 2 })
        .unwrap()
        .into_payload()
        .to_vec();
    trailing.push(0x00);
    undecodable(CborConverter, Frame::binary(trailing)).await;
    undecodable(MsgPackConverter::new(), Frame::binary(vec![0xc1u8])).await;
    undecodable(
        MsgPackConverter::compact(),
        Frame::binary(vec![0x91u8, 0x01]),
    )
    .await;
    undecodable(
        AnyConverter::from_name("cbor").unwrap(),
        Frame::binary(vec![0xffu8]),
    )
    .await;
}

#[tokio::test]
async fn no_converter_gives_no_converter_with_the_frame_back() {
    let (mut c, mut raw) = pair(Config::new(), Config::new()).await;

    let err = within("typed send", c.send_serialized(&Point { x: 1, y: 1 }))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::NoConverter { frame: None, .. }),
        "{err:?}"
    );
    assert_eq!(err.close_code(), None);

    within("raw send", raw.send_text("raw text")).await.unwrap();
    let err = within("typed receive", c.receive_deserialized::<Point>())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::NoConverter { frame: Some(f), .. } if *f == Frame::text("raw text")),
        "{err:?}"
    );
    assert_eq!(err.into_frame(), Some(Frame::text("raw text")));

    // The failed send sent nothing: the first thing the peer gets is this.
    within("marker", c.send_text("marker")).await.unwrap();
    assert_eq!(
        within("raw receive", raw.receive()).await.unwrap(),
        Frame::text("marker")
    );
    assert_eq!(c.close_reason(), None);
}

/// An encode failure gives `Encode`, sends nothing, and leaves the session usable.
async fn encode_failure<C: Converter, T: Serialize>(converter: C, value: &T) {
    let name = converter.name();
    let (mut c, mut raw) = pair(Config::new().converter(converter), Config::new()).await;
    let err = within("typed send", c.send_serialized(value))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Encode { converter, .. } if *converter == name),
        "{name}: expected Encode, got {err:?}"
    );
    assert_eq!(err.close_code(), Some(CloseCode::InternalError));
    within("marker", c.send_text("marker")).await.unwrap();
    assert_eq!(
        within("raw receive", raw.receive()).await.unwrap(),
        Frame::text("marker"),
        "{name}: nothing may be sent before the marker"
    );
    within("typed send after", c.send_serialized(&Point { x: 1, y: 2 }))
        .await
        .unwrap();
    within("raw receive", raw.receive()).await.unwrap();
}

#[tokio::test]
async fn encode_failure_gives_encode_and_sends_nothing() {
    let non_string_keys: BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into_iter().collect();
    encode_failure(JsonConverter, &non_string_keys).await;
    encode_failure(JsonConverter, &Unencodable).await;
    encode_failure(CborConverter, &Unencodable).await;
    encode_failure(MsgPackConverter::new(), &Unencodable).await;
    encode_failure(AnyConverter::from_name("json").unwrap(), &non_string_keys).await;
}

#[tokio::test]
async fn typed_stream_yields_errors_as_items_and_ends_after_a_clean_close() {
    let (mut c, mut raw) = pair(Config::new().converter(JsonConverter), Config::new()).await;
    let peer = tokio::spawn(async move {
        for frame in [
            Frame::text(r#"{"x":1,"y":1}"#),
            Frame::text("oops"),
            Frame::binary(vec![1u8]),
            Frame::Ping(Bytes::from_static(b"skipped")),
            Frame::text(r#"{"x":2,"y":2}"#),
        ] {
            raw.send(frame).await.unwrap();
        }
        raw.close(CloseReason::new(CloseCode::Normal, "done"))
            .await
            .unwrap();
        // The session is dropped here, which ends the connection.
    });
    let items: Vec<Result<Point, Error>> = within(
        "collect the stream",
        c.incoming_deserialized::<Point>().collect(),
    )
    .await;
    assert_eq!(items.len(), 4, "{items:?}");
    assert_eq!(items[0].as_ref().unwrap(), &Point { x: 1, y: 1 });
    assert!(
        matches!(
            &items[1],
            Err(Error::Decode {
                converter: "json",
                ..
            })
        ),
        "{:?}",
        items[1]
    );
    assert!(
        matches!(
            &items[2],
            Err(Error::UnexpectedFrame {
                converter: "json",
                ..
            })
        ),
        "{:?}",
        items[2]
    );
    assert_eq!(items[3].as_ref().unwrap(), &Point { x: 2, y: 2 });
    within("peer task", peer).await.unwrap();
    assert_eq!(
        c.close_reason(),
        Some(CloseReason::new(CloseCode::Normal, "done"))
    );
    // Ended for good.
    assert!(
        within(
            "stream after end",
            c.incoming_deserialized::<Point>().next()
        )
        .await
        .is_none()
    );
}

#[tokio::test]
async fn typed_stream_yields_the_error_once_when_the_connection_drops() {
    let (mut c, mut raw) = pair(Config::new().converter(CborConverter), Config::new()).await;
    within(
        "raw send",
        raw.send(CborConverter.serialize(&Point { x: 1, y: 2 }).unwrap()),
    )
    .await
    .unwrap();
    drop(raw);
    let mut stream = c.incoming_deserialized::<Point>();
    assert_eq!(
        within("first item", stream.next()).await.unwrap().unwrap(),
        Point { x: 1, y: 2 }
    );
    match within("second item", stream.next()).await {
        Some(Err(Error::Closed(reason))) => assert_eq!(reason.code, CloseCode::Abnormal),
        other => panic!("expected the 1006 error, got {other:?}"),
    }
    assert!(within("end", stream.next()).await.is_none());
}

#[test]
fn cbor_decode_errors_say_what_happened_in_words() {
    let mut trailing = CborConverter
        .serialize(&chat(1))
        .unwrap()
        .payload()
        .to_vec();
    trailing.push(0x00);
    let cases: [(Vec<u8>, &str); 4] = [
        (
            vec![0xa5, 0x62, b'i', b'd'],
            "the CBOR item ends early, after 4 bytes",
        ),
        (vec![0x1c], "invalid CBOR at byte 0"),
        (trailing, "1 bytes after the end of the CBOR item"),
        (
            vec![0x63, b'a', b'b', b'c'],
            "invalid type: string, expected map",
        ),
    ];
    for (payload, expected) in cases {
        let err = CborConverter
            .deserialize::<ChatMessage>(&Frame::binary(payload.clone()))
            .unwrap_err();
        assert!(err.to_string().contains(expected), "{payload:02x?}: {err}");
    }
}
