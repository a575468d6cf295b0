//! Peers that vanish or reset the connection mid-frame or mid-message: the server session
//! ends with 1006 (or the reset's I/O error), and the server keeps serving every other session
//! meanwhile.
#![cfg(feature = "json")]

use crate::common;

use std::io;

use common::hostile::{
    Probed, Seen, config, echo_round, fresh_client_echoes, good_client, half_a_frame,
};
use common::raw::{self, RawPeer};
use common::*;
use typed_ws::*;

fn assert_abnormal(seen: &Seen, what: &str) {
    match &seen.error {
        Error::Closed(reason) => assert_eq!(reason.code, CloseCode::Abnormal, "{what}"),
        other => panic!("{what}: expected Closed(1006), got {other:?}"),
    }
    assert!(seen.frames.is_empty(), "{what}: {:?}", seen.frames);
    assert_eq!(
        seen.close_reason.as_ref().map(|r| r.code),
        Some(CloseCode::Abnormal),
        "{what}"
    );
    match &seen.again {
        Err(Error::Closed(reason)) => assert_eq!(reason.code, CloseCode::Abnormal, "{what}"),
        other => panic!("{what}: after the error, expected Closed(1006), got {other:?}"),
    }
}

#[tokio::test]
async fn a_peer_that_vanishes_mid_frame_gives_closed_1006() {
    let mut server = Probed::start(config()).await;
    let mut other = good_client(server.addr).await;

    let mut peer = within(
        "raw connect",
        RawPeer::connect(server.addr, "/probe/mid-frame"),
    )
    .await;
    within("half a frame", peer.write_raw(&half_a_frame()))
        .await
        .expect("write");
    peer.drop_connection();
    let seen = server.seen("/probe/mid-frame").await;
    assert_abnormal(&seen, "mid-frame");
    echo_round(&mut other, 1).await;
    fresh_client_echoes(server.addr).await;
}

#[tokio::test]
async fn a_peer_that_vanishes_mid_fragmented_message_gives_closed_1006() {
    let mut server = Probed::start(config()).await;
    let mut other = good_client(server.addr).await;

    let path = "/probe/mid-message";
    let mut peer = within("raw connect", RawPeer::connect(server.addr, path)).await;
    within("first fragment", async {
        peer.write_frame(false, raw::TEXT, b"the first of several fragments")
            .await
            .expect("write");
        // A ping between fragments is answered: the server has read the first fragment.
        peer.write_frame(true, raw::PING, b"here")
            .await
            .expect("write");
        let pong = peer.expect_frame().await;
        assert_eq!(
            (pong.opcode, pong.payload.as_slice()),
            (raw::PONG, &b"here"[..])
        );
    })
    .await;
    peer.drop_connection();
    let mut seen = server.seen(path).await;
    assert_eq!(seen.frames, [Frame::Ping(Bytes::from_static(b"here"))]);
    seen.frames.clear();
    assert_abnormal(&seen, "mid-message");
    echo_round(&mut other, 1).await;
    fresh_client_echoes(server.addr).await;
}

#[tokio::test]
async fn a_peer_that_resets_mid_frame_gives_an_io_error_and_1006() {
    let mut server = Probed::start(config()).await;
    let mut other = good_client(server.addr).await;

    let path = "/probe/reset";
    let mut peer = within("raw connect", RawPeer::connect(server.addr, path)).await;
    within("half a frame", peer.write_raw(&half_a_frame()))
        .await
        .expect("write");
    peer.reset_connection();
    let seen = server.seen(path).await;
    match &seen.error {
        Error::Io(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e:?}"),
        other => panic!("expected Io(ConnectionReset), got {other:?}"),
    }
    assert_eq!(
        seen.error.close_code(),
        None,
        "nobody to send a close frame to"
    );
    assert!(seen.frames.is_empty(), "{:?}", seen.frames);
    assert_eq!(
        seen.close_reason.as_ref().map(|r| r.code),
        Some(CloseCode::Abnormal)
    );
    match &seen.again {
        Err(Error::Closed(reason)) => assert_eq!(reason.code, CloseCode::Abnormal),
        other => panic!("after the error, expected Closed(1006), got {other:?}"),
    }
    echo_round(&mut other, 1).await;
    fresh_client_echoes(server.addr).await;
}
