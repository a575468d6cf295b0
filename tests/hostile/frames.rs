//! Hostile peers after the handshake: frames that break the protocol (reserved bits, unknown
//! opcodes, orphan continuations, fragmented or oversized control frames) give `Protocol` and
//! 1002, frame-length bombs give `TooBig` and 1009 from the header alone, and a failed session
//! closes its connection even while the application still holds it. The server keeps serving
//! every other session meanwhile. Oversize messages and invalid UTF-8 are in `limits.rs`.
#![cfg(feature = "json")]

use crate::common;

use std::time::Duration;

use common::hostile::{
    Probed, config, echo_round, expect_close_then_end, fresh_client_echoes, good_client,
};
use common::raw::{self, RawPeer, client_frame, client_header};
use common::*;
use typed_ws::*;

#[tokio::test]
async fn protocol_violations_after_the_handshake_give_protocol_and_1002() {
    let mut server = Probed::start(config()).await;
    let mut other = good_client(server.addr).await;
    echo_round(&mut other, 0).await;

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "rsv1-text",
            client_frame(0x80 | 0x40 | raw::TEXT, b"hello"),
            "Reserved bits are non-zero",
        ),
        (
            "rsv2-rsv3-binary",
            client_frame(0x80 | 0x30 | raw::BINARY, &[1, 2, 3]),
            "Reserved bits are non-zero",
        ),
        (
            "data-opcode-3",
            client_frame(0x80 | 0x3, b"what"),
            "Encountered invalid opcode: 3",
        ),
        (
            "control-opcode-b",
            client_frame(0x80 | 0xb, b""),
            "Encountered invalid opcode: 11",
        ),
        (
            "continuation-without-start",
            client_frame(0x80 | raw::CONTINUE, b"orphan"),
            "Continue frame but nothing to continue",
        ),
        (
            "fragmented-ping",
            client_frame(raw::PING, b"half"),
            "Fragmented control frame",
        ),
        (
            "fragmented-close",
            client_frame(raw::CLOSE, &1000u16.to_be_bytes()),
            "Fragmented control frame",
        ),
        (
            "ping-of-126-bytes",
            client_frame(0x80 | raw::PING, &[7; 126]),
            "Control frame too big",
        ),
        (
            "pong-of-1000-bytes",
            client_frame(0x80 | raw::PONG, &[7; 1000]),
            "Control frame too big",
        ),
        (
            "new-message-inside-a-fragmented-one",
            [
                client_frame(raw::BINARY, b"first half"),
                client_frame(0x80 | raw::TEXT, b"interloper"),
            ]
            .concat(),
            "While waiting for more fragments received",
        ),
        (
            "close-with-one-byte",
            client_frame(0x80 | raw::CLOSE, &[0x03]),
            "Invalid close sequence",
        ),
    ];
    for (name, bytes, text) in cases {
        let path = format!("/probe/{name}");
        let mut peer = within("raw connect", RawPeer::connect(server.addr, &path)).await;
        within("garbage", peer.write_raw(&bytes))
            .await
            .expect("write");
        let seen = server.seen(&path).await;
        match &seen.error {
            Error::Protocol(source) => {
                let cause = source.to_string();
                assert!(cause.contains(text), "{name}: {cause:?}");
            }
            other => panic!("{name}: expected Protocol, got {other:?}"),
        }
        assert!(seen.frames.is_empty(), "{name}: {:?}", seen.frames);
        assert_eq!(seen.error.close_code(), Some(CloseCode::ProtocolError));
        assert_eq!(
            seen.close_reason.as_ref().map(|r| r.code),
            Some(CloseCode::ProtocolError),
            "{name}"
        );
        match &seen.again {
            Err(Error::Closed(reason)) => assert_eq!(reason.code, CloseCode::ProtocolError),
            other => panic!("{name}: after the error, expected Closed(1002), got {other:?}"),
        }
        expect_close_then_end(&mut peer, 1002, name).await;
        echo_round(&mut other, 1).await;
    }
    fresh_client_echoes(server.addr).await;
}

#[tokio::test]
async fn a_frame_claiming_a_huge_length_gives_too_big_and_1009_without_waiting_for_it() {
    let mut server = Probed::start(config()).await;
    let mut other = good_client(server.addr).await;

    // Only the header is sent: the server must judge the frame by it.
    let cases: [(&str, u8, u64); 5] = [
        ("binary-2^63-1", 0x80 | raw::BINARY, i64::MAX as u64),
        ("binary-msb-set", 0x80 | raw::BINARY, u64::MAX),
        (
            "text-just-over",
            0x80 | raw::TEXT,
            DEFAULT_MAX_FRAME_SIZE as u64 + 1,
        ),
        // The frame limit is checked before the control frame limit.
        ("ping-1GiB", 0x80 | raw::PING, 1 << 30),
        ("continuation-1GiB", raw::CONTINUE, 1 << 30),
    ];
    for (name, first, len) in cases {
        let path = format!("/probe/{name}");
        let mut peer = within("raw connect", RawPeer::connect(server.addr, &path)).await;
        within("header", peer.write_raw(&client_header(first, len)))
            .await
            .expect("write");
        let seen = server.seen(&path).await;
        match seen.error {
            Error::TooBig { size, limit, .. } => {
                assert_eq!(size as u64, len, "{name}");
                assert_eq!(limit, DEFAULT_MAX_FRAME_SIZE, "{name}");
            }
            ref other => panic!("{name}: expected TooBig, got {other:?}"),
        }
        assert_eq!(seen.error.close_code(), Some(CloseCode::TooBig));
        assert_eq!(
            seen.close_reason.map(|r| r.code),
            Some(CloseCode::TooBig),
            "{name}"
        );
        expect_close_then_end(&mut peer, 1009, name).await;
        echo_round(&mut other, 2).await;
    }
    fresh_client_echoes(server.addr).await;
}

/// RFC 6455 section 7.1.7: to _Fail the WebSocket Connection_ an endpoint sends a close frame
/// and then "MUST _Close the WebSocket Connection_" (close TCP, section 7.1.1), and "MUST NOT
/// continue to attempt to process data (including a responding Close frame)". The session
/// reports itself closed at once; the connection must go too, whether or not the application
/// still holds the session (a send half kept in a list of subscribers, say). With
/// `Server::accept`, so that the test holds the session; a silent peer timed out by the
/// keep-alive task (1011) is the same case.
#[tokio::test]
async fn a_failed_session_closes_its_connection_even_while_still_held() {
    let cases: [(&str, Vec<u8>, u16); 4] = [
        ("protocol", client_frame(0xc1, b"x"), 1002),
        ("too-big", client_header(0x82, u64::MAX >> 1), 1009),
        ("utf8", client_frame(0x81, b"\xff\xfe"), 1007),
        ("timeout", Vec::new(), 1011),
    ];
    // One at a time would take the full bound for each while the connections stay open.
    let outcomes = futures_util::future::join_all(cases.map(|(name, bytes, code)| async move {
        let config = match code {
            1011 => config().timeout(Duration::from_millis(300)),
            _ => config(),
        };
        let (addr, accepted) = accept_one(config).await;
        let mut peer = within("raw connect", RawPeer::connect(addr, "/held")).await;
        let mut server = within("accept", accepted)
            .await
            .unwrap()
            .expect("handshake");
        if !bytes.is_empty() {
            within("garbage", peer.write_raw(&bytes))
                .await
                .expect("write");
        }
        let error = within("receive", server.receive()).await.unwrap_err();
        assert_eq!(
            error.close_code().map(u16::from),
            Some(code),
            "{name}: {error:?}"
        );
        let close = within("close frame", peer.expect_frame()).await;
        assert_eq!(close.close_code(), Some(code), "{name}");
        // The session is still held: the connection must end all the same.
        let outcome = match tokio::time::timeout(LIMIT, peer.read_to_end()).await {
            Ok((rest, end)) => {
                assert!(rest.is_empty(), "{name}: {rest:?}");
                end.err()
                    .map(|e| format!("{name}: the connection ended with {e}, not a FIN"))
            }
            Err(_) => Some(format!(
                "{name}: {code} sent, connection still open {LIMIT:?} later while the \
                 session is held (close_reason {:?})",
                server.close_reason().map(|r| u16::from(r.code))
            )),
        };
        drop(server);
        outcome
    }))
    .await;
    let failures: Vec<String> = outcomes.into_iter().flatten().collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
