//! Converter negotiation through `Sec-WebSocket-Protocol`, client and server both typed-ws.
#![cfg(all(feature = "json", feature = "cbor", feature = "msgpack"))]

use crate::common;

use common::*;
use typed_ws::*;

#[tokio::test]
async fn the_server_picks_by_its_own_preference_among_the_offered_converters() {
    let (addr, accepted) = accept_one(negotiating("cbor,json")).await;
    let mut client = within(
        "connect",
        Client::new(negotiating("msgpack,json,cbor")).web_socket_session(format!("ws://{addr}/n")),
    )
    .await
    .unwrap();
    let server = within("accept", accepted).await.unwrap().unwrap();
    assert_eq!(server.converter().name(), "cbor");
    assert_eq!(server.subprotocol(), Some("cbor"));
    assert_eq!(client.converter().name(), "cbor");
    assert_eq!(client.subprotocol(), Some("cbor"));

    tokio::spawn(typed_echo(server));
    within("send", client.send_serialized(&chat(1)))
        .await
        .unwrap();
    let frame = within("receive", client.receive()).await.unwrap();
    assert!(
        matches!(frame, Frame::Binary(_)),
        "CBOR travels in binary frames: {frame:?}"
    );
    assert_eq!(
        CborConverter.deserialize::<ChatMessage>(&frame).unwrap(),
        chat(1)
    );
}

#[tokio::test]
async fn a_prefix_gives_wamp_style_names() {
    let wamp =
        |names| Config::new().negotiate(Negotiation::from_names(names).unwrap().prefix("wamp.2"));
    let (addr, accepted) = accept_one(wamp("msgpack,json")).await;
    let mut client = within(
        "connect",
        Client::new(wamp("json,msgpack")).web_socket_session(format!("ws://{addr}/n")),
    )
    .await
    .unwrap();
    let server = within("accept", accepted).await.unwrap().unwrap();
    assert_eq!(client.subprotocol(), Some("wamp.2.msgpack"));
    assert_eq!(server.converter().name(), "msgpack");
    tokio::spawn(typed_echo(server));
    within("send", client.send_serialized(&chat(2)))
        .await
        .unwrap();
    assert_eq!(
        within("receive", client.receive_deserialized::<ChatMessage>())
            .await
            .unwrap(),
        chat(2)
    );
}

#[tokio::test]
async fn no_common_converter_is_refused_on_both_sides() {
    let (addr, accepted) = accept_one(negotiating("cbor")).await;
    let err = within(
        "connect",
        Client::new(negotiating("json,msgpack")).web_socket_session(format!("ws://{addr}/n")),
    )
    .await
    .unwrap_err();
    assert_refused_json_msgpack(&err);
    let server_err = within("accept", accepted).await.unwrap().unwrap_err();
    assert_eq!(
        server_err.status().map(u16::from),
        Some(400),
        "{server_err}"
    );
}

#[tokio::test]
async fn a_client_offering_nothing_gets_the_fallback_or_is_refused() {
    let with_fallback = Config::new().negotiate(
        Negotiation::from_names("cbor")
            .unwrap()
            .fallback(JsonConverter.into()),
    );
    let (addr, accepted) = accept_one(with_fallback).await;
    let plain = Client::new(Config::new().converter(JsonConverter));
    let mut client = within(
        "connect",
        plain.web_socket_session(format!("ws://{addr}/n")),
    )
    .await
    .unwrap();
    let server = within("accept", accepted).await.unwrap().unwrap();
    assert_eq!(server.converter().name(), "json");
    assert_eq!(server.subprotocol(), None);
    tokio::spawn(typed_echo(server));
    within("send", client.send_serialized(&chat(3)))
        .await
        .unwrap();
    assert_eq!(
        within("receive", client.receive_deserialized::<ChatMessage>())
            .await
            .unwrap(),
        chat(3)
    );

    let (addr, accepted) = accept_one(negotiating("cbor")).await;
    let err = within(
        "connect",
        plain.web_socket_session(format!("ws://{addr}/n")),
    )
    .await
    .unwrap_err();
    assert_eq!(err.status().map(u16::from), Some(400), "{err}");
    assert!(err.to_string().contains("offered no converter"), "{err}");
    assert!(within("accept", accepted).await.unwrap().is_err());
}

#[test]
fn names_are_checked_when_the_negotiation_is_built() {
    let err = Negotiation::from_names("json,yaml").unwrap_err();
    assert!(
        matches!(err, Error::UnknownConverter { ref name, .. } if name == "yaml"),
        "{err}"
    );
    assert!(Negotiation::from_names("").is_err());
    let spaced = Negotiation::from_names(" msgpack , json ")
        .unwrap()
        .prefix("app");
    assert_eq!(spaced.subprotocols(), ["app.msgpack", "app.json"]);
}
