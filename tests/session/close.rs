//! The closing handshake: a close reaches the peer once and then the session reports itself
//! closed, close reasons (cut to 123 bytes, absent, 1006 for a dropped peer), a close that
//! gives up on a mute peer, and the close the scoped client session does for its block.

use crate::common;

use std::fmt;
use std::time::{Duration, Instant};

use common::raw;
use common::*;
use tokio::sync::mpsc;
use typed_ws::*;

#[tokio::test]
async fn client_close_reaches_server_once_then_closed() {
    let (mut client, mut server) = pair(Config::new(), Config::new()).await;
    assert_eq!(client.close_reason(), None);
    assert_eq!(server.close_reason(), None);

    let reason = CloseReason::new(CloseCode::Application(4001), "bye now");
    let started = Instant::now();
    // The server reads the close frame and the end, then keeps its (finished) session.
    let server_side = async {
        let first = server.receive().await;
        let second = server.receive().await;
        let third = server.receive().await;
        (first, second, third)
    };
    let (closed, (first, second, third)) = within("close handshake", async {
        tokio::join!(client.close(reason.clone()), server_side)
    })
    .await;
    closed.unwrap();
    let took = started.elapsed();

    assert_eq!(first.unwrap(), Frame::Close(Some(reason.clone())));
    assert_closed_with(second, &reason);
    assert_closed_with(third, &reason);
    assert_eq!(client.close_reason(), Some(reason.clone()));
    assert_eq!(server.close_reason(), Some(reason.clone()));

    // Closed for good on the client too; closing again does nothing.
    assert_closed_with(
        within("receive after close", client.receive()).await,
        &reason,
    );
    let err = within("send after close", client.send_text("late"))
        .await
        .unwrap_err();
    assert_eq!(err.close_reason(), Some(&reason), "{err:?}");
    within(
        "close again",
        client.close(CloseReason::new(CloseCode::GoingAway, "again")),
    )
    .await
    .unwrap();
    assert_eq!(client.close_reason(), Some(reason));

    // The server answered at once, so close has nothing to wait for: it must not sit out its
    // 5 s fallback just because the server application still holds its finished session.
    assert!(
        took < Duration::from_secs(3),
        "client close took {took:?} although the server answered at once"
    );
}

#[tokio::test]
async fn server_close_reaches_client_once_then_closed() {
    let (mut client, mut server) = pair(Config::new(), Config::new()).await;
    let reason = CloseReason::new(CloseCode::GoingAway, "restarting");

    // The server keeps its session (closed) while the client reads to the end.
    let client_side = async {
        let first = within("client receives the close frame", client.receive()).await;
        let second = within(
            "client receive after the close frame (the server keeps its closed session)",
            client.receive(),
        )
        .await;
        let third = within("client receive again", client.receive()).await;
        (first, second, third)
    };
    // Bounded by the inner `within`s; this outer bound only backs them up.
    let (closed, (first, second, third)) = tokio::time::timeout(LIMIT * 3, async {
        tokio::join!(server.close(reason.clone()), client_side)
    })
    .await
    .expect("close handshake");
    closed.unwrap();

    assert_eq!(first.unwrap(), Frame::Close(Some(reason.clone())));
    assert_closed_with(second, &reason);
    assert_closed_with(third, &reason);
    assert_eq!(server.close_reason(), Some(reason.clone()));
    assert_eq!(client.close_reason(), Some(reason));
}

/// The receive that hands out the peer's close frame also sends the answer (tungstenite
/// queues it): the peer's `close` completes even if this side does nothing more.
#[tokio::test]
async fn close_is_answered_by_the_receive_that_returns_the_close_frame() {
    let (mut client, mut server) = pair(Config::new(), Config::new()).await;
    let reason = CloseReason::new(CloseCode::Normal, "answer me");
    let started = Instant::now();
    let (closed, first) = within("close and one receive", async {
        tokio::join!(server.close(reason.clone()), client.receive())
    })
    .await;
    closed.unwrap();
    let took = started.elapsed();
    assert_eq!(first.unwrap(), Frame::Close(Some(reason)));
    assert!(
        took < Duration::from_secs(3),
        "server close took {took:?}: the client's answer only left with a later call"
    );
}

/// `close` gives up waiting for a peer that never answers (5 s without a timeout); the
/// session is closed all the same, and later calls say so instead of waiting forever.
#[tokio::test]
async fn session_is_closed_after_close_gives_up_on_a_mute_peer() {
    let (mut session, mut peer, _) = raw::client_to_raw(Config::new(), "/mute").await;
    let reason = CloseReason::new(CloseCode::Normal, "hello?");
    // The peer reads our close frame, then neither answers nor closes the connection.
    let (closed, frame) = within("close against a mute peer", async {
        tokio::join!(session.close(reason.clone()), peer.expect_frame())
    })
    .await;
    closed.unwrap();
    assert_eq!(frame.opcode, raw::CLOSE);
    assert_eq!(frame.close_code(), Some(1000));
    assert_eq!(session.close_reason(), Some(reason.clone()));
    assert_closed_with(
        within("receive after close gave up", session.receive()).await,
        &reason,
    );
    let err = within("send after close gave up", session.send_text("x"))
        .await
        .unwrap_err();
    assert_eq!(err.close_reason(), Some(&reason), "{err:?}");
}

#[tokio::test]
async fn close_reason_longer_than_123_bytes_is_cut_at_a_char_boundary() {
    let (tx, mut seen) = mpsc::unbounded_channel();
    let addr = serve(Server::new(Config::new()), recording_echo(tx)).await;
    let mut client = within(
        "connect",
        Client::new(Config::new()).web_socket_session(format!("ws://{addr}/long")),
    )
    .await
    .unwrap();
    let long = "é".repeat(100); // 200 bytes; 123 falls inside a character
    within(
        "close",
        client.close(CloseReason::new(CloseCode::PolicyViolation, long)),
    )
    .await
    .unwrap();
    let cut = CloseReason::new(CloseCode::PolicyViolation, "é".repeat(61));
    assert_eq!(
        within("server sees close", seen.recv())
            .await
            .unwrap()
            .unwrap(),
        Frame::Close(Some(cut.clone()))
    );
    assert_eq!(client.close_reason(), Some(cut));
}

#[tokio::test]
async fn close_without_status_code_is_delivered_as_none_then_1005() {
    let (mut session, mut peer, _) = raw::client_to_raw(Config::new(), "/nostatus").await;

    within("raw close", peer.write_frame(true, raw::CLOSE, b""))
        .await
        .unwrap();
    assert_eq!(
        within("receive close", session.receive()).await.unwrap(),
        Frame::Close(None)
    );
    // The next receive sends the reply; the raw peer then ends the connection.
    let client_side = session.receive();
    let peer_side = async {
        let reply = peer.expect_frame().await;
        peer.drop_connection();
        reply
    };
    let (after, reply) = within("finish close", async {
        tokio::join!(client_side, peer_side)
    })
    .await;
    assert_eq!(reply.opcode, raw::CLOSE);
    assert_eq!(
        reply.close_code(),
        None,
        "the reply mirrors a close without code"
    );
    let expected = CloseReason::new(CloseCode::NoStatus, "");
    assert_closed_with(after, &expected);
    assert_eq!(session.close_reason(), Some(expected));
}

#[tokio::test]
async fn dropped_session_gives_the_peer_1006() {
    let (client, mut server) = pair(Config::new(), Config::new()).await;
    drop(client);
    let err = within("server receive", server.receive())
        .await
        .unwrap_err();
    match &err {
        Error::Closed(reason) => assert_eq!(reason.code, CloseCode::Abnormal),
        other => panic!("expected Error::Closed(1006), got {other:?}"),
    }
    assert_eq!(err.close_code(), None);
    assert_eq!(server.close_reason().unwrap().code, CloseCode::Abnormal);
    // It stays that way.
    let again = within("receive again", server.receive()).await.unwrap_err();
    assert_eq!(again.close_reason().unwrap().code, CloseCode::Abnormal);
}

/// An application error for the scoped session's block.
#[derive(Debug)]
enum AppError {
    Ws(Error),
    Refused(String),
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Ws(e)
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::Ws(e) => write!(f, "websocket: {e}"),
            AppError::Refused(why) => write!(f, "refused: {why}"),
        }
    }
}

#[tokio::test]
async fn scoped_session_closes_with_1000_when_the_block_succeeds() {
    let (tx, mut seen) = mpsc::unbounded_channel();
    let addr = serve(Server::new(Config::new()), recording_echo(tx)).await;
    let client = Client::new(Config::new());
    let out: Result<u32, AppError> = within(
        "scoped session",
        client.web_socket(format!("ws://{addr}/scoped"), async |mut session| {
            session.send_text("inside").await?;
            match session.receive().await? {
                Frame::Text(t) if t.as_str() == "inside" => Ok(7),
                other => Err(AppError::Refused(format!("{other:?}"))),
            }
        }),
    )
    .await;
    assert_eq!(out.unwrap(), 7);

    assert_eq!(
        within("server frame", seen.recv()).await.unwrap().unwrap(),
        Frame::text("inside")
    );
    let normal = CloseReason::new(CloseCode::Normal, "");
    assert_eq!(
        within("server close frame", seen.recv())
            .await
            .unwrap()
            .unwrap(),
        Frame::Close(Some(normal.clone()))
    );
    assert_closed_with(within("server end", seen.recv()).await.unwrap(), &normal);
}

#[tokio::test]
async fn scoped_session_closes_with_1011_and_the_error_text_when_the_block_fails() {
    let (tx, mut seen) = mpsc::unbounded_channel();
    let addr = serve(Server::new(Config::new()), recording_echo(tx)).await;
    let client = Client::new(Config::new());
    let out: Result<(), AppError> = within(
        "scoped session",
        client.web_socket(format!("ws://{addr}/scoped"), async |_session| {
            Err(AppError::Refused("no luck".to_owned()))
        }),
    )
    .await;
    match out {
        Err(AppError::Refused(why)) => assert_eq!(why, "no luck"),
        other => panic!("the block's error must come back, got {other:?}"),
    }
    let expected = CloseReason::new(CloseCode::InternalError, "refused: no luck");
    assert_eq!(
        within("server close frame", seen.recv())
            .await
            .unwrap()
            .unwrap(),
        Frame::Close(Some(expected.clone()))
    );
    assert_closed_with(within("server end", seen.recv()).await.unwrap(), &expected);
}
