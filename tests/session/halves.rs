//! Split halves and the Stream/Sink impls: the halves work from two tasks at once, and a
//! session and its halves are a stream and a sink of frames.

use crate::common;

use std::ops::RangeInclusive;

use common::*;
use futures_util::{SinkExt, StreamExt, stream};
use typed_ws::*;

#[tokio::test]
async fn split_halves_work_from_two_tasks() {
    const N: usize = 200;
    let (client, server) = pair(Config::new(), Config::new()).await;
    let echo_task = tokio::spawn(echo(server));
    let (mut tx, mut rx) = client.split();

    // The receiver waits first, then the sender starts; both run at once.
    let receiver = tokio::spawn(async move {
        let mut got = Vec::with_capacity(N);
        while got.len() < N {
            match rx.receive().await {
                Ok(Frame::Text(text)) => got.push(text.to_string()),
                other => panic!("unexpected {other:?}"),
            }
        }
        (rx, got)
    });
    let sender = tokio::spawn(async move {
        for i in 0..N {
            tx.send(Frame::text(format!("message {i}"))).await.unwrap();
        }
        tx
    });
    let mut tx = within("sender task", sender).await.unwrap();
    let (mut rx, got) = within("receiver task", receiver).await.unwrap();
    let expected: Vec<String> = (0..N).map(|i| format!("message {i}")).collect();
    assert_eq!(got, expected);

    // Closing from the sending half: the receiving half gets the peer's answer, then the end.
    let reason = CloseReason::new(CloseCode::Normal, "halves done");
    let closer = tokio::spawn(async move {
        tx.close(reason).await.unwrap();
        tx
    });
    let answer = within("peer's close", rx.receive()).await.unwrap();
    assert_eq!(
        answer,
        Frame::Close(Some(CloseReason::new(CloseCode::Normal, "halves done")))
    );
    let end = within("end", rx.receive()).await;
    assert_closed_with(end, &CloseReason::new(CloseCode::Normal, "halves done"));
    let tx = within("closer task", closer).await.unwrap();
    assert_eq!(tx.close_reason().unwrap().reason.as_str(), "halves done");
    assert_eq!(rx.close_reason(), tx.close_reason());
    within("echo task ends", echo_task).await.unwrap();
}

#[tokio::test]
async fn session_is_a_stream_and_a_sink_of_frames() {
    let (mut client, server) = pair(Config::new(), Config::new()).await;
    let echo_task = tokio::spawn(echo(server));

    within("sink send", SinkExt::send(&mut client, Frame::text("one")))
        .await
        .unwrap();
    within("sink feed", client.feed(Frame::binary(vec![2u8])))
        .await
        .unwrap();
    within("sink feed", client.feed(Frame::text("three")))
        .await
        .unwrap();
    within("sink flush", SinkExt::flush(&mut client))
        .await
        .unwrap();
    for expected in [
        Frame::text("one"),
        Frame::binary(vec![2u8]),
        Frame::text("three"),
    ] {
        let got = within("stream next", client.next()).await;
        assert_eq!(got.unwrap().unwrap(), expected);
    }

    // Sink::close sends a 1000 close; the stream then yields the answer and ends.
    within("sink close", SinkExt::close(&mut client))
        .await
        .unwrap();
    assert_eq!(
        within("stream close frame", client.next())
            .await
            .unwrap()
            .unwrap(),
        Frame::close(CloseCode::Normal, "")
    );
    assert!(within("stream end", client.next()).await.is_none());
    assert!(within("stream stays ended", client.next()).await.is_none());
    assert_eq!(client.close_reason().unwrap().code, CloseCode::Normal);
    within("echo task ends", echo_task).await.unwrap();
}

#[tokio::test]
async fn halves_are_a_stream_and_a_sink_of_frames() {
    let (client, server) = pair(Config::new(), Config::new()).await;
    let echo_task = tokio::spawn(echo(server));
    let (mut tx, rx) = client.split();

    let frames = vec![
        Frame::text("a"),
        Frame::binary(vec![1u8, 2]),
        Frame::text("c"),
    ];
    let mut outgoing = stream::iter(frames.clone().into_iter().map(Ok));
    within("send_all", tx.send_all(&mut outgoing))
        .await
        .unwrap();
    within("sink close", SinkExt::close(&mut tx)).await.unwrap();

    let received: Vec<Frame> = within("collect", rx.map(Result::unwrap).collect()).await;
    let mut expected = frames;
    expected.push(Frame::close(CloseCode::Normal, ""));
    assert_eq!(received, expected);
    within("echo task ends", echo_task).await.unwrap();
}

#[tokio::test]
async fn a_session_and_its_halves_show_their_state_in_debug_output() {
    let (client, mut server) = pair(Config::new(), Config::new()).await;
    assert_eq!(
        format!("{client:?}"),
        r#"Session { path: Some("/pair"), subprotocol: None, compression: None, close_reason: None, .. }"#
    );

    let (mut tx, rx) = client.split();
    assert_eq!(format!("{tx:?}"), "SendHalf { close_reason: None, .. }");
    assert_eq!(format!("{rx:?}"), "RecvHalf { close_reason: None, .. }");
    let reason = CloseReason::new(CloseCode::Normal, "bye");
    let (closed, _) = within("close", async {
        tokio::join!(tx.close(reason.clone()), server.receive())
    })
    .await;
    closed.expect("close");
    for shown in [format!("{tx:?}"), format!("{rx:?}")] {
        assert!(
            shown.contains(&format!("close_reason: Some({reason:?})")),
            "{shown}"
        );
    }
}

#[tokio::test]
async fn fed_messages_go_out_with_flush_from_a_session_and_from_its_sending_half() {
    /// Receives the chat messages numbered `ids`, in order.
    async fn expect_chats(session: &mut Session<JsonConverter>, ids: RangeInclusive<u64>) {
        for id in ids {
            let got: ChatMessage = within("the fed message", session.receive_deserialized())
                .await
                .expect("receive");
            assert_eq!(got, chat(id));
        }
    }

    let json = || Config::new().converter(JsonConverter);
    let (mut client, mut server) = pair(json(), json()).await;
    for id in 1..=3 {
        within("feed", client.feed_serialized(&chat(id)))
            .await
            .expect("feed");
    }
    within("flush", client.flush()).await.expect("flush");
    expect_chats(&mut server, 1..=3).await;

    let (mut tx, _rx) = client.split();
    for id in 4..=5 {
        within("feed", tx.feed_serialized(&chat(id)))
            .await
            .expect("feed");
    }
    within("flush", tx.flush()).await.expect("flush");
    expect_chats(&mut server, 4..=5).await;
}
