//! Typed receive without copying (values borrowing from the frame) and broadcast (one
//! encoding sent to many sessions).
#![cfg(all(feature = "json", feature = "cbor", feature = "msgpack"))]

use crate::common;

use std::borrow::Cow;

use common::*;
use serde::{Deserialize, Serialize};
use typed_ws::*;

#[derive(Debug, Serialize, Deserialize)]
struct Owned {
    kind: String,
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
}

#[derive(Debug, Deserialize)]
struct Borrowed<'a> {
    kind: &'a str,
    #[serde(with = "serde_bytes")]
    body: &'a [u8],
}

#[derive(Debug, Deserialize)]
struct Text<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
}

fn points_into(frame: &Frame, field: &[u8]) -> bool {
    frame.payload().as_ptr_range().contains(&field.as_ptr())
}

/// A client and a server session with `converter`; the server has sent `value`.
async fn received<C: Converter>(converter: C, value: &impl Serialize) -> Session<C> {
    let (client, mut server) = pair(
        Config::new().converter(converter.clone()),
        Config::new().converter(converter),
    )
    .await;
    within("send", server.send_serialized(value)).await.unwrap();
    // The peer's ping comes first: a typed receive skips it.
    within("ping", server.send(Frame::Ping(vec![1u8].into())))
        .await
        .unwrap();
    within("send", server.send_serialized(value)).await.unwrap();
    let mut client = client;
    within("first", client.receive_message()).await.unwrap();
    client
}

#[tokio::test]
async fn msgpack_strings_and_bytes_borrow_from_the_frame() {
    let value = Owned {
        kind: "quote".into(),
        body: vec![7; 4096],
    };
    let mut client = received(MsgPackConverter::new(), &value).await;
    let frame = within("message", client.receive_message()).await.unwrap();
    let borrowed: Borrowed<'_> = client.converter().deserialize_borrowed(&frame).unwrap();
    assert_eq!((borrowed.kind, borrowed.body), ("quote", &value.body[..]));
    assert!(
        points_into(&frame, borrowed.kind.as_bytes()),
        "the string was copied"
    );
    assert!(points_into(&frame, borrowed.body), "the bytes were copied");
}

#[tokio::test]
async fn json_strings_without_escapes_borrow_and_cow_copies_only_escaped_ones() {
    let mut client = received(JsonConverter, &serde_json::json!({"kind": "plain"})).await;
    let frame = within("message", client.receive_message()).await.unwrap();
    let text: Text<'_> = client.converter().deserialize_borrowed(&frame).unwrap();
    assert!(
        matches!(text.kind, Cow::Borrowed("plain")),
        "{:?}",
        text.kind
    );
    assert!(points_into(&frame, text.kind.as_bytes()));

    let escaped = Frame::text(r#"{"kind": "tab\there"}"#);
    let text: Text<'_> = JsonConverter.deserialize_borrowed(&escaped).unwrap();
    assert!(
        matches!(text.kind, Cow::Owned(ref s) if s == "tab\there"),
        "{:?}",
        text.kind
    );
    // A plain &str cannot hold an unescaped copy: that is an error, not a silent copy.
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Strict<'a> {
        kind: &'a str,
    }
    let err = JsonConverter
        .deserialize_borrowed::<Strict<'_>>(&escaped)
        .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err}");
}

#[tokio::test]
async fn cbor_says_it_cannot_borrow() {
    let cbor = AnyConverter::from_name("cbor").unwrap();
    let frame = cbor
        .serialize(&Owned {
            kind: "k".into(),
            body: vec![1],
        })
        .unwrap();
    let err = cbor
        .deserialize_borrowed::<Borrowed<'_>>(&frame)
        .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err}");
    assert!(
        err.to_string().contains("cannot decode values that borrow"),
        "{err}"
    );
    // The owned path works for the same frame.
    assert_eq!(cbor.deserialize::<Owned>(&frame).unwrap().kind, "k");
}

#[tokio::test]
async fn receive_message_gives_back_frames_of_the_wrong_type() {
    let (mut client, mut server) = pair(
        Config::new().converter(MsgPackConverter::new()),
        Config::new().converter(MsgPackConverter::new()),
    )
    .await;
    within("send", server.send_text("not msgpack"))
        .await
        .unwrap();
    let err = within("message", client.receive_message())
        .await
        .unwrap_err();
    assert_eq!(err.into_frame(), Some(Frame::text("not msgpack")));
}

#[tokio::test]
async fn one_encoding_is_sent_to_many_sessions() {
    const SESSIONS: usize = 100;
    let mut servers = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..SESSIONS {
        let config = Config::new().converter(CborConverter);
        let (client, server) = pair(config.clone(), config).await;
        clients.push(client);
        servers.push(server);
    }
    let message = chat(42);
    let frame = CborConverter.serialize(&message).unwrap();
    for server in &mut servers {
        let copy = frame.clone();
        // A clone shares the encoded payload; nothing is encoded or copied per session.
        assert_eq!(copy.payload().as_ptr(), frame.payload().as_ptr());
        within("broadcast", server.send(copy)).await.unwrap();
    }
    for client in &mut clients {
        assert_eq!(
            within("receive", client.receive_deserialized::<ChatMessage>())
                .await
                .unwrap(),
            message
        );
    }
}
