//! Sessions, frame by frame: raw frames travel both ways unchanged, pings are answered
//! whatever the user is doing, invalid outgoing frames are refused, and client frames are
//! masked while server frames are not.

use crate::common;

use std::time::Duration;

use common::raw::{self, RawPeer};
use common::*;
use tokio::sync::mpsc;
use typed_ws::*;

#[tokio::test]
async fn raw_frames_travel_both_directions_unchanged() {
    let (mut client, mut server) = pair(Config::new(), Config::new()).await;

    let to_server = [
        Frame::text("héllo wörld"),
        Frame::binary(vec![0u8, 1, 2, 254, 255]),
        Frame::binary(Bytes::new()),
        Frame::text(""),
        Frame::Pong(Bytes::from_static(b"unsolicited pong")),
    ];
    for frame in &to_server {
        within("client send", client.send(frame.clone()))
            .await
            .unwrap();
    }
    for frame in &to_server {
        let got = within("server receive", server.receive()).await.unwrap();
        assert_eq!(&got, frame);
    }

    within("server send_text", server.send_text("from the server"))
        .await
        .unwrap();
    within("server send_binary", server.send_binary(vec![9u8; 300]))
        .await
        .unwrap();
    assert_eq!(
        within("client receive", client.receive()).await.unwrap(),
        Frame::text("from the server")
    );
    assert_eq!(
        within("client receive", client.receive()).await.unwrap(),
        Frame::binary(vec![9u8; 300])
    );
    assert_eq!(client.close_reason(), None);
    assert_eq!(server.close_reason(), None);
}

#[tokio::test]
async fn ping_is_answered_while_the_peer_keeps_receiving() {
    let (tx, mut seen) = mpsc::unbounded_channel();
    let addr = serve(Server::new(Config::new()), recording_echo(tx)).await;
    let mut client = within(
        "connect",
        Client::new(Config::new()).web_socket_session(format!("ws://{addr}/ping")),
    )
    .await
    .unwrap();

    within(
        "send ping",
        client.send(Frame::Ping(Bytes::from_static(b"are you there"))),
    )
    .await
    .unwrap();
    assert_eq!(
        within("pong", client.receive()).await.unwrap(),
        Frame::Pong(Bytes::from_static(b"are you there"))
    );
    assert_eq!(
        within("server saw the ping", seen.recv())
            .await
            .unwrap()
            .unwrap(),
        Frame::Ping(Bytes::from_static(b"are you there"))
    );
}

/// `receive` hands out a ping "already answered": the pong must be on its way even if the
/// receiver does not touch the session again.
#[tokio::test]
async fn ping_is_answered_by_the_receive_that_returns_it() {
    let (mut client, mut server) = pair(Config::new(), Config::new()).await;
    within(
        "send ping",
        client.send(Frame::Ping(Bytes::from_static(b"p1"))),
    )
    .await
    .unwrap();
    assert_eq!(
        within("server receives the ping", server.receive())
            .await
            .unwrap(),
        Frame::Ping(Bytes::from_static(b"p1"))
    );
    // The server side is now left alone (but kept open).
    assert_eq!(
        within("pong reaches the client", client.receive())
            .await
            .unwrap(),
        Frame::Pong(Bytes::from_static(b"p1"))
    );
    drop(server);
}

/// "It answers pings by itself [...] whether or not you are receiving": a server whose user
/// only sends still answers the peer's ping.
async fn ping_answered_while_the_user_only_sends(config: Config) {
    let (addr, accepted) = accept_one(config).await;
    let mut peer = within("raw connect", RawPeer::connect(addr, "/sender")).await;
    let mut server = within("accept", accepted).await.unwrap().unwrap();
    let sender = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_millis(50));
        for i in 0u32.. {
            ticks.tick().await;
            if server.send_text(format!("tick {i}")).await.is_err() {
                break;
            }
        }
    });
    within("raw ping", peer.write_frame(true, raw::PING, b"hello?"))
        .await
        .unwrap();
    let pong = within("pong while the server only sends", async {
        loop {
            let frame = peer.expect_frame().await;
            match frame.opcode {
                raw::TEXT => continue,
                _ => break frame,
            }
        }
    })
    .await;
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (raw::PONG, &b"hello?"[..])
    );
    sender.abort();
}

#[tokio::test]
async fn ping_is_answered_while_the_user_only_sends_with_keepalive_on() {
    // The keep-alive task reads what arrives at each of its ticks, answering pings then.
    ping_answered_while_the_user_only_sends(
        Config::new().ping_interval(Duration::from_millis(200)),
    )
    .await;
}

#[tokio::test]
async fn invalid_outgoing_frames_are_refused_and_the_session_stays_usable() {
    let (mut client, server) = pair(Config::new(), Config::new()).await;
    let echo_task = tokio::spawn(echo(server));

    // 125 bytes is the most a control frame carries; the server answers the ping in kind.
    within(
        "a 125-byte ping",
        client.send(Frame::Ping(vec![7u8; 125].into())),
    )
    .await
    .unwrap();
    assert_eq!(
        within("the pong", client.receive()).await.unwrap(),
        Frame::Pong(vec![7u8; 125].into())
    );
    within(
        "a 125-byte pong",
        client.send(Frame::Pong(vec![7u8; 125].into())),
    )
    .await
    .unwrap();
    for frame in [
        Frame::Ping(vec![0u8; 126].into()),
        Frame::Pong(vec![0u8; 126].into()),
    ] {
        let err = within("an oversized control frame", client.send(frame))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unsendable(_)), "{err:?}");
        assert!(!err.is_fatal(), "{err:?}");
    }

    for code in [
        CloseCode::Abnormal,
        CloseCode::NoStatus,
        CloseCode::Other(999),
    ] {
        let err = within(
            "unsendable close code",
            client.close(CloseReason::new(code, "nope")),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Unsendable(_)), "{code}: {err:?}");
        assert_eq!(client.close_reason(), None, "{code} must not close");
    }

    within("send after refusals", client.send_text("still here"))
        .await
        .unwrap();
    assert_eq!(
        within("echo", client.receive()).await.unwrap(),
        Frame::text("still here")
    );
    within(
        "close",
        client.close(CloseReason::new(CloseCode::Normal, "")),
    )
    .await
    .unwrap();
    within("echo task ends", echo_task).await.unwrap();
}

#[tokio::test]
async fn client_frames_are_masked_server_frames_are_not() {
    // typed-ws client -> raw server
    let (mut session, mut peer, head) = raw::client_to_raw(Config::new(), "/masked").await;
    assert!(head.starts_with("GET /masked HTTP/1.1\r\n"), "{head}");
    within("send", session.send_text("masked please"))
        .await
        .unwrap();
    let frame = within("raw read", peer.expect_frame()).await;
    assert_eq!(
        (frame.opcode, frame.fin, frame.masked),
        (raw::TEXT, true, true)
    );
    assert_eq!(frame.payload, b"masked please");

    // raw client -> typed-ws server
    let addr = serve(Server::new(Config::new()), echo).await;
    let mut peer = within("raw connect", RawPeer::connect(addr, "/echo")).await;
    within("raw send", peer.write_frame(true, raw::BINARY, b"abc"))
        .await
        .unwrap();
    let frame = within("raw read echo", peer.expect_frame()).await;
    assert_eq!(
        (frame.opcode, frame.fin, frame.masked),
        (raw::BINARY, true, false)
    );
    assert_eq!(frame.payload, b"abc");
}
