//! Limits and protocol enforcement: message size (whole and fragmented), invalid UTF-8,
//! protocol violations, and outgoing fragmentation as seen frame by frame on the wire.

use crate::common;

use common::raw::{self, RawFrame, RawPeer};
use common::*;
use typed_ws::*;

const LIMIT_BYTES: usize = 1024;

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn message_over_the_limit_gives_too_big_and_the_peer_sees_1009() {
    let (mut client, mut server) =
        pair(Config::new(), Config::new().max_message_size(LIMIT_BYTES)).await;

    // Exactly at the limit is fine.
    within("send at limit", client.send_binary(pattern(LIMIT_BYTES)))
        .await
        .unwrap();
    assert_eq!(
        within("receive at limit", server.receive()).await.unwrap(),
        Frame::binary(pattern(LIMIT_BYTES))
    );

    within("send over limit", client.send_binary(pattern(2000)))
        .await
        .unwrap();
    let err = within("receive over limit", server.receive())
        .await
        .unwrap_err();
    match err {
        Error::TooBig { size, limit, .. } => {
            assert_eq!(size, 2000);
            assert_eq!(limit, LIMIT_BYTES);
        }
        ref other => panic!("expected TooBig, got {other:?}"),
    }
    assert_eq!(err.close_code(), Some(CloseCode::TooBig));
    assert_eq!(server.close_reason().unwrap().code, CloseCode::TooBig);
    let after = within("receive after", server.receive()).await.unwrap_err();
    assert_eq!(
        after.close_reason().map(|r| r.code),
        Some(CloseCode::TooBig),
        "{after:?}"
    );

    match within("client sees the close", client.receive()).await {
        Ok(Frame::Close(Some(reason))) => assert_eq!(reason.code, CloseCode::TooBig),
        other => panic!("expected a 1009 close frame, got {other:?}"),
    }
    assert_eq!(client.close_reason().unwrap().code, CloseCode::TooBig);
}

#[tokio::test]
async fn fragmented_message_over_the_limit_gives_too_big_and_the_peer_sees_1009() {
    let (addr, accepted) = accept_one(Config::new().max_message_size(LIMIT_BYTES)).await;
    let mut peer = within("raw connect", RawPeer::connect(addr, "/limit")).await;
    let mut server = within("accept", accepted).await.unwrap().unwrap();

    // Every fragment is under the limit; together they are not.
    within(
        "first fragment",
        peer.write_frame(false, raw::BINARY, &[1; 600]),
    )
    .await
    .unwrap();
    within(
        "second fragment",
        peer.write_frame(false, raw::CONTINUE, &[2; 600]),
    )
    .await
    .unwrap();
    let err = within("receive", server.receive()).await.unwrap_err();
    match err {
        Error::TooBig { size, limit, .. } => {
            assert_eq!(size, 1200);
            assert_eq!(limit, LIMIT_BYTES);
        }
        ref other => panic!("expected TooBig, got {other:?}"),
    }
    let close = within("raw close", peer.expect_frame()).await;
    assert_eq!(close.opcode, raw::CLOSE);
    assert_eq!(close.close_code(), Some(1009));
    assert!(!close.masked, "server frames are not masked");
    drop(server);
}

#[tokio::test]
async fn fragmented_message_at_the_limit_is_reassembled() {
    let (addr, accepted) = accept_one(Config::new().max_message_size(LIMIT_BYTES)).await;
    let mut peer = within("raw connect", RawPeer::connect(addr, "/limit")).await;
    let mut server = within("accept", accepted).await.unwrap().unwrap();
    let message = pattern(LIMIT_BYTES);
    within("fragments", async {
        peer.write_frame(false, raw::BINARY, &message[..500])
            .await
            .unwrap();
        // A control frame may come between fragments.
        peer.write_frame(true, raw::PING, b"mid").await.unwrap();
        peer.write_frame(false, raw::CONTINUE, &message[500..1000])
            .await
            .unwrap();
        peer.write_frame(true, raw::CONTINUE, &message[1000..])
            .await
            .unwrap();
    })
    .await;
    assert_eq!(
        within("ping", server.receive()).await.unwrap(),
        Frame::Ping(Bytes::from_static(b"mid"))
    );
    assert_eq!(
        within("message", server.receive()).await.unwrap(),
        Frame::binary(message)
    );
    let pong = within("pong", peer.expect_frame()).await;
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (raw::PONG, &b"mid"[..])
    );
}

#[tokio::test]
async fn invalid_utf8_text_gives_invalid_utf8_and_the_peer_sees_1007() {
    let (addr, accepted) = accept_one(Config::new()).await;
    let mut peer = within("raw connect", RawPeer::connect(addr, "/utf8")).await;
    let mut server = within("accept", accepted).await.unwrap().unwrap();

    within(
        "bad text",
        peer.write_frame(true, raw::TEXT, b"ok \xff\xfe"),
    )
    .await
    .unwrap();
    let err = within("receive", server.receive()).await.unwrap_err();
    assert!(matches!(err, Error::InvalidUtf8), "{err:?}");
    assert_eq!(err.close_code(), Some(CloseCode::InvalidPayload));
    assert_eq!(
        server.close_reason().unwrap().code,
        CloseCode::InvalidPayload
    );
    let close = within("raw close", peer.expect_frame()).await;
    assert_eq!(close.opcode, raw::CLOSE);
    assert_eq!(close.close_code(), Some(1007));
    drop(server);
}

#[tokio::test]
async fn invalid_utf8_in_a_fragmented_text_gives_invalid_utf8_and_1007() {
    let (addr, accepted) = accept_one(Config::new()).await;
    let mut peer = within("raw connect", RawPeer::connect(addr, "/utf8")).await;
    let mut server = within("accept", accepted).await.unwrap().unwrap();

    // "€" split across fragments is fine...
    let euro = "€".as_bytes();
    within("split char", async {
        peer.write_frame(false, raw::TEXT, &euro[..1])
            .await
            .unwrap();
        peer.write_frame(true, raw::CONTINUE, &euro[1..])
            .await
            .unwrap();
    })
    .await;
    assert_eq!(
        within("reassembled", server.receive()).await.unwrap(),
        Frame::text("€")
    );
    // ...a broken sequence is not.
    within("broken", async {
        peer.write_frame(false, raw::TEXT, b"abc").await.unwrap();
        peer.write_frame(true, raw::CONTINUE, &[0xe2, 0x28, 0xa1])
            .await
            .unwrap();
    })
    .await;
    let err = within("receive", server.receive()).await.unwrap_err();
    assert!(matches!(err, Error::InvalidUtf8), "{err:?}");
    let close = within("raw close", peer.expect_frame()).await;
    assert_eq!(close.close_code(), Some(1007));
    drop(server);
}

#[tokio::test]
async fn unmasked_client_frame_gives_protocol_error_and_the_peer_sees_1002() {
    let (addr, accepted) = accept_one(Config::new()).await;
    let mut peer = within("raw connect", RawPeer::connect(addr, "/mask")).await;
    let mut server = within("accept", accepted).await.unwrap().unwrap();

    within(
        "unmasked frame",
        peer.write_frame_masked(true, raw::TEXT, b"naked", false),
    )
    .await
    .unwrap();
    let err = within("receive", server.receive()).await.unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
    assert_eq!(err.close_code(), Some(CloseCode::ProtocolError));
    let close = within("raw close", peer.expect_frame()).await;
    assert_eq!(close.close_code(), Some(1002));
    drop(server);
}

/// What a raw server reads for one message sent by a typed-ws client.
async fn frames_of_one_message(peer: &mut RawPeer) -> Vec<RawFrame> {
    let mut frames = Vec::new();
    loop {
        let frame = peer.expect_frame().await;
        let fin = frame.fin;
        frames.push(frame);
        if fin {
            return frames;
        }
    }
}

#[tokio::test]
async fn fragment_size_splits_outgoing_messages_on_the_wire() {
    let (mut session, mut peer, _) =
        raw::client_to_raw(Config::new().fragment_size(1000), "/fragments").await;

    // Binary, 3500 bytes: 1000 + 1000 + 1000 + 500.
    let message = pattern(3500);
    within("send binary", session.send_binary(message.clone()))
        .await
        .unwrap();
    let frames = within("raw frames", frames_of_one_message(&mut peer)).await;
    let shape: Vec<(u8, bool, usize)> = frames
        .iter()
        .map(|f| (f.opcode, f.fin, f.payload.len()))
        .collect();
    assert_eq!(
        shape,
        [
            (raw::BINARY, false, 1000),
            (raw::CONTINUE, false, 1000),
            (raw::CONTINUE, false, 1000),
            (raw::CONTINUE, true, 500),
        ]
    );
    assert!(frames.iter().all(|f| f.masked), "client frames are masked");
    assert_eq!(frames.concat_payload(), message);

    // Text, 3500 bytes, cut inside characters: the same shape with a text first frame.
    let text = format!("{}ab", "€".repeat(1166));
    assert_eq!(text.len(), 3500);
    within("send text", session.send_text(text.clone()))
        .await
        .unwrap();
    let frames = within("raw frames", frames_of_one_message(&mut peer)).await;
    let shape: Vec<(u8, bool, usize)> = frames
        .iter()
        .map(|f| (f.opcode, f.fin, f.payload.len()))
        .collect();
    assert_eq!(
        shape,
        [
            (raw::TEXT, false, 1000),
            (raw::CONTINUE, false, 1000),
            (raw::CONTINUE, false, 1000),
            (raw::CONTINUE, true, 500),
        ]
    );
    assert_eq!(frames.concat_payload(), text.as_bytes());

    // At the fragment size: one frame; one byte more: two.
    within("send 1000", session.send_binary(pattern(1000)))
        .await
        .unwrap();
    let frames = within("raw frames", frames_of_one_message(&mut peer)).await;
    assert_eq!(frames.len(), 1);
    assert_eq!((frames[0].opcode, frames[0].fin), (raw::BINARY, true));
    within("send 1001", session.send_binary(pattern(1001)))
        .await
        .unwrap();
    let frames = within("raw frames", frames_of_one_message(&mut peer)).await;
    let shape: Vec<(u8, bool, usize)> = frames
        .iter()
        .map(|f| (f.opcode, f.fin, f.payload.len()))
        .collect();
    assert_eq!(
        shape,
        [(raw::BINARY, false, 1000), (raw::CONTINUE, true, 1)]
    );
    assert_eq!(frames.concat_payload(), pattern(1001));

    // Empty messages go out too, as one empty frame each.
    within("send empty text", session.send_text(""))
        .await
        .unwrap();
    within("send empty binary", session.send_binary(Vec::new()))
        .await
        .unwrap();
    for opcode in [raw::TEXT, raw::BINARY] {
        let frames = within("raw frames", frames_of_one_message(&mut peer)).await;
        let shape: Vec<(u8, bool, usize)> = frames
            .iter()
            .map(|f| (f.opcode, f.fin, f.payload.len()))
            .collect();
        assert_eq!(shape, [(opcode, true, 0)]);
    }
}

trait ConcatPayload {
    fn concat_payload(&self) -> Vec<u8>;
}

impl ConcatPayload for Vec<RawFrame> {
    fn concat_payload(&self) -> Vec<u8> {
        self.iter()
            .flat_map(|f| f.payload.iter().copied())
            .collect()
    }
}

#[cfg(feature = "json")]
#[tokio::test]
async fn fragmented_messages_are_reassembled_by_a_typed_ws_receiver() {
    let message = pattern(3500);
    let text = format!("{}ab", "€".repeat(1166));

    // Client fragments, server reassembles (with a limit that just fits).
    let (mut client, mut server) = pair(
        Config::new().fragment_size(1000),
        Config::new().max_message_size(3500),
    )
    .await;
    within("send binary", client.send_binary(message.clone()))
        .await
        .unwrap();
    within("send text", client.send_text(text.clone()))
        .await
        .unwrap();
    assert_eq!(
        within("receive binary", server.receive()).await.unwrap(),
        Frame::binary(message.clone())
    );
    assert_eq!(
        within("receive text", server.receive()).await.unwrap(),
        Frame::text(text.clone())
    );

    // Server fragments, client reassembles; typed values too.
    let (mut client, mut server) = pair(
        Config::new().converter(AnyConverter::from_name("json").unwrap()),
        Config::new()
            .converter(AnyConverter::from_name("json").unwrap())
            .fragment_size(64),
    )
    .await;
    within("server send binary", server.send_binary(message.clone()))
        .await
        .unwrap();
    assert_eq!(
        within("client receive binary", client.receive())
            .await
            .unwrap(),
        Frame::binary(message)
    );
    let big = ChatMessage {
        text: text.clone(),
        ..chat(42)
    };
    within("server send typed", server.send_serialized(&big))
        .await
        .unwrap();
    assert_eq!(
        within(
            "client receive typed",
            client.receive_deserialized::<ChatMessage>()
        )
        .await
        .unwrap(),
        big
    );
}

#[tokio::test]
async fn frame_limit_applies_per_frame_not_per_message() {
    let (addr, accepted) = accept_one(Config::new().max_frame_size(512)).await;
    let mut peer = within("raw connect", RawPeer::connect(addr, "/frames")).await;
    let mut server = within("accept", accepted).await.unwrap().unwrap();

    // Four 500-byte fragments: each under the frame limit, 2000 bytes in all.
    let message = pattern(2000);
    within("fragments", async {
        for (i, chunk) in message.chunks(500).enumerate() {
            let opcode = if i == 0 { raw::BINARY } else { raw::CONTINUE };
            peer.write_frame(i == 3, opcode, chunk).await.unwrap();
        }
    })
    .await;
    assert_eq!(
        within("reassembled", server.receive()).await.unwrap(),
        Frame::binary(message)
    );

    within("big frame", peer.write_frame(true, raw::BINARY, &[0; 600]))
        .await
        .unwrap();
    match within("receive", server.receive()).await {
        Err(Error::TooBig { size, limit, .. }) => assert_eq!((size, limit), (600, 512)),
        other => panic!("expected TooBig, got {other:?}"),
    }
    let close = within("raw close", peer.expect_frame()).await;
    assert_eq!(close.close_code(), Some(1009));
    drop(server);
}

/// The defaults the README promises for `Config::new()`: a 16 MiB frame limit and a 64 MiB
/// message limit.
const DEFAULT_FRAME: usize = 16 << 20;
const DEFAULT_MESSAGE: usize = 64 << 20;

/// Writes `message` as fragments of at most [`DEFAULT_FRAME`] bytes, the last one final.
async fn write_in_default_frames(peer: &mut RawPeer, message: &[u8]) {
    let chunks = message.chunks(DEFAULT_FRAME).count();
    for (i, chunk) in message.chunks(DEFAULT_FRAME).enumerate() {
        let opcode = if i == 0 { raw::BINARY } else { raw::CONTINUE };
        peer.write_frame(i + 1 == chunks, opcode, chunk)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn default_message_limit_takes_64_mib_and_refuses_one_byte_more_with_1009() {
    let (mut session, mut peer, _) = raw::client_to_raw(Config::new(), "/default-message").await;
    // Fragments of exactly the default frame limit, so the frame limit is met too.
    let message = pattern(DEFAULT_MESSAGE);
    let (received, ()) = within("a message of exactly the default limit", async {
        tokio::join!(
            session.receive(),
            write_in_default_frames(&mut peer, &message)
        )
    })
    .await;
    assert!(
        received.as_ref().unwrap() == &Frame::binary(message.clone()),
        "the 64 MiB message did not come back intact: {:?}",
        received.map(|f| f.payload().len())
    );

    let over = pattern(DEFAULT_MESSAGE + 1);
    let (received, ()) = within("a message one byte over", async {
        tokio::join!(session.receive(), write_in_default_frames(&mut peer, &over))
    })
    .await;
    match received {
        Err(Error::TooBig { size, limit, .. }) => {
            assert_eq!((size, limit), (DEFAULT_MESSAGE + 1, DEFAULT_MESSAGE));
        }
        other => panic!(
            "expected TooBig, got {:?}",
            other.map(|f| f.payload().len())
        ),
    }
    let close = within("the 1009", peer.expect_skipping_pings()).await;
    assert_eq!(close.close_code(), Some(1009), "{close:?}");
}

#[tokio::test]
async fn default_frame_limit_takes_16_mib_and_refuses_one_byte_more_with_1009() {
    let (mut session, mut peer, _) = raw::client_to_raw(Config::new(), "/default-frame").await;
    let frame = pattern(DEFAULT_FRAME);
    let (received, written) = within("a frame of exactly the default limit", async {
        tokio::join!(
            session.receive(),
            peer.write_frame(true, raw::BINARY, &frame)
        )
    })
    .await;
    written.unwrap();
    assert!(
        received.as_ref().unwrap() == &Frame::binary(frame),
        "the 16 MiB frame did not come back intact: {:?}",
        received.map(|f| f.payload().len())
    );

    // The header alone: a frame over the limit is refused before its payload is read.
    let header = wire::header(0x80 | raw::BINARY, DEFAULT_FRAME as u64 + 1, None);
    within(
        "the header of a frame one byte over",
        peer.write_raw(&header),
    )
    .await
    .unwrap();
    match within("receive", session.receive()).await {
        Err(Error::TooBig { size, limit, .. }) => {
            assert_eq!((size, limit), (DEFAULT_FRAME + 1, DEFAULT_FRAME));
        }
        other => panic!(
            "expected TooBig, got {:?}",
            other.map(|f| f.payload().len())
        ),
    }
    let close = within("the 1009", peer.expect_skipping_pings()).await;
    assert_eq!(close.close_code(), Some(1009), "{close:?}");
}

/// The README's promise for a failed session: its close frame, then a FIN, even when the
/// peer is still sending what the session refused. Dropping the socket with that payload
/// unread would reset the connection instead, and the reset could swallow the close frame.
#[tokio::test]
async fn a_peer_still_sending_an_oversized_frame_gets_1009_and_a_fin() {
    let (addr, accepted) = accept_one(Config::new().max_frame_size(LIMIT_BYTES)).await;
    let mut peer = within("raw connect", RawPeer::connect(addr, "/oversized")).await;
    let mut server = within("accept", accepted).await.unwrap().unwrap();
    // Far more than one read of the session's: most of it is still in the kernel when the
    // header is refused.
    let len = 1 << 20;
    let mut bytes = raw::client_header(0x80 | raw::BINARY, len as u64);
    bytes.resize(bytes.len() + len, 0x5a);
    let (written, received) = within("the oversized frame", async {
        tokio::join!(peer.write_raw(&bytes), server.receive())
    })
    .await;
    written.expect("the session reads out what it refused");
    match received {
        Err(Error::TooBig { size, limit, .. }) => assert_eq!((size, limit), (len, LIMIT_BYTES)),
        other => panic!("expected TooBig, got {other:?}"),
    }
    let close = within("the 1009", peer.expect_frame()).await;
    assert_eq!(close.close_code(), Some(1009), "{close:?}");
    within("the end", peer.expect_fin("after the 1009")).await;
}
