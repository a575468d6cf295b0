//! Cancel safety, as the table on `Session` states it: a typed receive dropped in the middle
//! of a message loses nothing and gives nothing twice; a typed send dropped while its frame is
//! being written still sends it, once and whole, and one dropped while it waits for room
//! sends nothing; a close dropped after queueing its frame finishes when called again.
//!
//! Every cancellation is made certain, not likely: the receive is dropped once the peer has
//! the pong to a ping sent after a fragment (so the session has read the fragment) and before
//! the peer sends the rest; a send is dropped by a timer that `biased` polls only after the
//! send, so it can win only while the socket is full.

use crate::common;

use std::time::Duration;

use common::raw::{CLOSE, CONTINUE, PING, PONG, RawFrame, RawPeer, TEXT};
use common::{ChatMessage, accept_one, chat, within};
use tokio::time::{Instant, sleep};
use typed_ws::{CloseCode, CloseReason, Config, Converter, Error, JsonConverter, Session};

/// How long a send must stay blocked before the test takes the socket for full.
const PAUSE: Duration = Duration::from_millis(100);

/// A server session with the JSON converter and a raw client that reads and writes frames.
async fn raw_pair() -> (Session<JsonConverter>, RawPeer) {
    let (addr, accepted) = accept_one(Config::new().converter(JsonConverter)).await;
    let peer = within("raw connect", RawPeer::connect(addr, "/")).await;
    let session = within("accept", accepted)
        .await
        .expect("accept task")
        .expect("handshake");
    (session, peer)
}

fn json(message: &ChatMessage) -> Vec<u8> {
    JsonConverter
        .serialize(message)
        .expect("encode")
        .payload()
        .to_vec()
}

#[tokio::test]
async fn a_typed_receive_cancelled_mid_message_loses_and_duplicates_nothing() {
    let (mut session, mut peer) = raw_pair().await;
    let messages: Vec<ChatMessage> = (0..4).map(chat).collect();

    within(
        "message 0",
        peer.write_frame(true, TEXT, &json(&messages[0])),
    )
    .await
    .expect("write");
    let first = within("receive 0", session.receive_deserialized::<ChatMessage>()).await;
    assert_eq!(first.expect("message 0"), messages[0]);

    // Message 1 in three fragments. After each of the first two, a ping: the session answers
    // it only once it has read the fragment before it, so the pong is the moment to drop the
    // receive, with the message begun and its end not yet sent.
    let whole = json(&messages[1]);
    let parts: Vec<&[u8]> = whole.chunks(whole.len().div_ceil(3)).collect();
    assert_eq!(parts.len(), 3);
    for (n, part) in parts.iter().enumerate() {
        let opcode = if n == 0 { TEXT } else { CONTINUE };
        let last = n == parts.len() - 1;
        within("a fragment", peer.write_frame(last, opcode, part))
            .await
            .expect("write");
        if last {
            break;
        }
        within("a ping", peer.write_frame(true, PING, &[n as u8]))
            .await
            .expect("write");
        let pong = within("the pong, mid-message", async {
            tokio::select! {
                received = session.receive_deserialized::<ChatMessage>() => {
                    panic!("message 1 is not whole yet: {received:?}")
                }
                pong = peer.expect_frame() => pong,
            }
        })
        .await;
        assert_eq!((pong.opcode, pong.payload), (PONG, vec![n as u8]));
    }

    for message in &messages[2..] {
        within(
            "a whole message",
            peer.write_frame(true, TEXT, &json(message)),
        )
        .await
        .expect("write");
    }
    for expected in &messages[1..] {
        let received = within("receive", session.receive_deserialized::<ChatMessage>()).await;
        assert_eq!(&received.expect("a message"), expected);
    }
    // Nothing is left to give twice: the close comes next.
    within("close", peer.write_close(1000, "done"))
        .await
        .expect("write");
    match within("the close", session.receive_deserialized::<ChatMessage>()).await {
        Err(Error::Closed(reason)) => assert_eq!(reason.code, CloseCode::Normal),
        other => panic!("expected the close, got {other:?}"),
    }
}

/// A message too big for tungstenite's 128 KiB write buffer, so that queueing it writes.
fn big(id: u64) -> ChatMessage {
    ChatMessage {
        text: format!("{id} {}", "x".repeat(256 << 10)),
        ..chat(id)
    }
}

#[tokio::test]
async fn a_typed_send_cancelled_mid_write_loses_and_duplicates_nothing() {
    let (mut session, mut peer) = raw_pair().await;

    // The peer reads nothing until the socket is full. `biased` polls the send before the
    // timer, so the timer wins only over a send that has waited for the socket since.
    let mut sent = 0;
    let cut = loop {
        assert!(sent < 1000, "the socket never filled up");
        let message = big(sent);
        tokio::select! {
            biased;
            result = session.send_serialized(&message) => {
                result.expect("send");
                sent += 1;
            }
            () = sleep(PAUSE) => break sent,
        }
    };
    // Message `cut` was queued whole and is part written. The next one waits for room, by
    // send or by feed, and is dropped unqueued.
    let next = big(cut + 1);
    tokio::select! {
        biased;
        result = session.send_serialized(&next) => panic!("the socket is full: {result:?}"),
        () = sleep(PAUSE) => {}
    }
    tokio::select! {
        biased;
        result = session.feed_serialized(&next) => panic!("the socket is full: {result:?}"),
        () = sleep(PAUSE) => {}
    }

    // Now the peer reads. The flush writes the rest of message `cut`; the next message is
    // sent again, as a caller does when its send did not return.
    let marker = chat(u64::MAX);
    let last = json(&marker);
    let (frames, ()) = within("the rest", async {
        tokio::join!(read_until(&mut peer, &last), async {
            session.flush().await.expect("flush");
            session.send_serialized(&next).await.expect("send");
            session.send_serialized(&marker).await.expect("send");
        })
    })
    .await;
    let expected: Vec<Vec<u8>> = (0..=cut + 1)
        .map(big)
        .chain([marker])
        .map(|message| json(&message))
        .collect();
    assert_eq!(frames.len(), expected.len(), "each message once");
    for (n, (frame, expected)) in frames.iter().zip(&expected).enumerate() {
        assert!(frame.fin && frame.opcode == TEXT, "message {n}: {frame:?}");
        assert!(frame.payload == *expected, "message {n} differs");
    }
}

/// Reads data frames until one with `last` as its payload, skipping pings.
async fn read_until(peer: &mut RawPeer, last: &[u8]) -> Vec<RawFrame> {
    let mut frames = Vec::new();
    loop {
        let frame = peer.expect_skipping_pings().await;
        let done = frame.payload == last;
        frames.push(frame);
        if done {
            return frames;
        }
    }
}

#[tokio::test]
async fn a_close_cancelled_after_queueing_its_frame_finishes_when_called_again() {
    let (mut session, mut peer) = raw_pair().await;

    // The peer reads nothing until the socket is full of small messages: with no frame over
    // tungstenite's 128 KiB buffer left unwritten, the close frame is queued at once rather
    // than waiting for room.
    let small = |id| ChatMessage {
        text: "y".repeat(16 << 10),
        ..chat(id)
    };
    let mut sent = 0;
    loop {
        assert!(sent < 10_000, "the socket never filled up");
        let message = small(sent);
        tokio::select! {
            biased;
            result = session.send_serialized(&message) => {
                result.expect("send");
                sent += 1;
            }
            () = sleep(PAUSE) => break,
        }
    }
    let reason = CloseReason::new(CloseCode::Normal, "bye");
    tokio::select! {
        biased;
        result = session.close(reason.clone()) => panic!("the socket is full: {result:?}"),
        () = sleep(PAUSE) => {}
    }
    assert_eq!(session.close_reason(), Some(reason.clone()), "queued");

    // The peer reads up to our close frame and answers it; the second close writes the frame
    // out and ends with the answer, long before it would give up waiting for one (5 s).
    let started = Instant::now();
    let ((close, data), closed) = within("the close handshake", async {
        tokio::join!(
            async {
                let mut data = 0;
                let close = loop {
                    let frame = peer.expect_skipping_pings().await;
                    if frame.opcode == CLOSE {
                        break frame;
                    }
                    data += 1;
                };
                peer.write_close(1000, "").await.expect("answer");
                (close, data)
            },
            session.close(reason.clone())
        )
    })
    .await;
    closed.expect("close");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // The send that was cut went out too, before the close.
    assert_eq!(data, sent + 1, "each message once");
    assert_eq!(close.close_code(), Some(1000));
    within("the end", peer.expect_fin("after the close")).await;
}
