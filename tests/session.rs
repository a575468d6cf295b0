//! Sessions: raw frames, the closing handshake, split halves, the Stream/Sink impls, the
//! scoped client session, and what the server sees of the opening handshake.

mod common;

use std::fmt;
use std::time::{Duration, Instant};

use common::raw::{self, RawPeer};
use common::*;
use futures_util::{SinkExt, StreamExt, stream};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use typed_ws::http::{HeaderMap, StatusCode};
use typed_ws::*;

/// A server handler that reports every frame and the final error of each session, and
/// echoes data frames back.
fn recording_echo(
    tx: mpsc::UnboundedSender<Result<Frame, Error>>,
) -> impl Fn(Session) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync + 'static
{
    move |mut session: Session| {
        let tx = tx.clone();
        Box::pin(async move {
            loop {
                match session.receive().await {
                    Ok(frame) => {
                        let _ = tx.send(Ok(frame.clone()));
                        if frame.is_data() && session.send(frame).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
                }
            }
        })
    }
}

fn assert_closed_with(result: Result<Frame, Error>, expected: &CloseReason) {
    match result {
        Err(Error::Closed(reason)) => assert_eq!(&reason, expected),
        other => panic!("expected Error::Closed({expected}), got {other:?}"),
    }
}

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

    let err = within(
        "oversized ping",
        client.send(Frame::Ping(vec![0u8; 126].into())),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");

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
        assert!(matches!(err, Error::Protocol(_)), "{code}: {err:?}");
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

#[tokio::test]
async fn accept_with_refusal_gives_the_client_the_status() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(Config::new());
    let server_side = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        server
            .accept_with(tcp, |request| match request.uri().path() {
                "/allowed" => Ok(()),
                _ => Err(StatusCode::NOT_FOUND),
            })
            .await
            .map(|_| ())
    });
    let err = within(
        "refused connect",
        Client::new(Config::new()).web_socket_session(format!("ws://{addr}/missing")),
    )
    .await
    .expect_err("the connection must be refused");
    assert!(
        matches!(
            err,
            Error::Handshake {
                status: Some(404),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.status(), Some(404));
    let server_result = within("server side", server_side).await.unwrap();
    assert!(server_result.is_err(), "the server's accept must fail too");
}

#[tokio::test]
async fn server_routes_on_the_request_path() {
    let server = Server::new(Config::new());
    let addr = serve(server, |mut session| async move {
        let route = session.path().map(str::to_owned);
        match route.as_deref() {
            Some("/upper") | Some("/lower") => {
                while let Ok(frame) = session.receive().await {
                    let Some(text) = frame.as_text() else {
                        continue;
                    };
                    let reply = if route.as_deref() == Some("/upper") {
                        text.to_uppercase()
                    } else {
                        text.to_lowercase()
                    };
                    if session.send_text(reply).await.is_err() {
                        break;
                    }
                }
            }
            other => {
                let why = format!("no route {other:?}");
                let _ = session
                    .close(CloseReason::new(CloseCode::PolicyViolation, why))
                    .await;
            }
        }
    })
    .await;
    let client = Client::new(Config::new());
    for (path, expected) in [("/upper?x=1", "MIXED"), ("/lower", "mixed")] {
        let mut session = within(
            "connect",
            client.web_socket_session(format!("ws://{addr}{path}")),
        )
        .await
        .unwrap();
        assert_eq!(session.path(), Some(path.split('?').next().unwrap()));
        within("send", session.send_text("MiXeD")).await.unwrap();
        assert_eq!(
            within("reply", session.receive()).await.unwrap(),
            Frame::text(expected)
        );
        within(
            "close",
            session.close(CloseReason::new(CloseCode::Normal, "")),
        )
        .await
        .unwrap();
    }
    let mut session = within(
        "connect",
        client.web_socket_session(format!("ws://{addr}/nowhere")),
    )
    .await
    .unwrap();
    assert_eq!(
        within("refusal", session.receive()).await.unwrap(),
        Frame::close(CloseCode::PolicyViolation, "no route Some(\"/nowhere\")")
    );
}

#[tokio::test]
async fn connects_by_host_port_and_path() {
    let addr = serve(Server::new(Config::new()), |mut session| async move {
        let path = session.path().unwrap_or("<none>").to_owned();
        let _ = session.send_text(path).await;
        while session.receive().await.is_ok() {}
    })
    .await;
    let client = Client::new(Config::new());
    for (path, expected) in [("/tuple/path", "/tuple/path"), ("no-slash", "/no-slash")] {
        let mut session = within(
            "connect",
            client.web_socket_session(("127.0.0.1", addr.port(), path)),
        )
        .await
        .unwrap();
        assert_eq!(session.path(), Some(expected));
        assert_eq!(
            within("server's path", session.receive()).await.unwrap(),
            Frame::text(expected)
        );
        within(
            "close",
            session.close(CloseReason::new(CloseCode::Normal, "")),
        )
        .await
        .unwrap();
    }
}

/// Accepts one connection with `accept_with`, handing the request headers out; the result of
/// the server handshake comes from the join handle.
fn accept_one_recording_headers(
    listener: TcpListener,
    config: Config,
) -> (
    oneshot::Receiver<HeaderMap>,
    tokio::task::JoinHandle<Result<Session, Error>>,
) {
    let (seen_tx, seen_rx) = oneshot::channel();
    let handle = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        Server::new(config)
            .accept_with(tcp, move |request| {
                let _ = seen_tx.send(request.headers().clone());
                Ok(())
            })
            .await
    });
    (seen_rx, handle)
}

#[tokio::test]
async fn extra_header_is_visible_to_the_server() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen, server_side) = accept_one_recording_headers(listener, Config::new());
    let session = within(
        "connect",
        Client::new(Config::new())
            .request(format!("ws://{addr}/headers"))
            .header("X-Api-Key", "s3cret")
            .web_socket_session(),
    )
    .await
    .unwrap();
    let headers = within("request headers", seen).await.unwrap();
    assert_eq!(headers.get("x-api-key").unwrap(), "s3cret");
    let server_session = within("server side", server_side).await.unwrap().unwrap();
    assert_eq!(server_session.path(), Some("/headers"));
    assert_eq!(session.subprotocol(), None);
}

#[tokio::test]
async fn the_server_picks_the_subprotocol_it_prefers_among_those_offered() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server_config = Config::new().subprotocols(["chat.v1", "chat.v2"]);
    let (seen, server_side) = accept_one_recording_headers(listener, server_config);
    let session = within(
        "connect",
        Client::new(Config::new().subprotocols(["chat.v2"]))
            .request(format!("ws://{addr}/proto"))
            .subprotocol("chat.v1")
            .web_socket_session(),
    )
    .await
    .expect("a common subprotocol");
    let headers = within("request headers", seen).await.unwrap();
    assert_eq!(
        headers.get("sec-websocket-protocol").unwrap(),
        "chat.v2, chat.v1"
    );
    let server_session = within("server side", server_side).await.unwrap().unwrap();
    assert_eq!(server_session.subprotocol(), Some("chat.v1"));
    assert_eq!(session.subprotocol(), Some("chat.v1"));
}

#[tokio::test]
async fn no_common_subprotocol_refuses_the_handshake_with_400() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_seen, server_side) =
        accept_one_recording_headers(listener, Config::new().subprotocols(["graphql-ws"]));
    let err = within(
        "connect",
        Client::new(Config::new().subprotocols(["chat.v2", "chat.v1"]))
            .web_socket_session(format!("ws://{addr}/proto")),
    )
    .await
    .unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");
    assert!(err.to_string().contains("no common subprotocol"), "{err}");
    let server_err = within("server side", server_side)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(server_err.status(), Some(400), "{server_err}");
}

#[tokio::test]
async fn a_server_without_subprotocols_leaves_an_offering_client_with_a_clear_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_seen, _server_side) = accept_one_recording_headers(listener, Config::new());
    let err = within(
        "connect",
        Client::new(Config::new())
            .request(format!("ws://{addr}/proto"))
            .subprotocol("chat.v2")
            .web_socket_session(),
    )
    .await
    .unwrap_err();
    // RFC 6455 lets a server choose none; tungstenite's client then refuses the connection.
    assert!(
        matches!(err, Error::Handshake { status: None, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("offered: chat.v2"), "{err}");
}

#[tokio::test]
async fn subprotocol_chosen_by_the_server_is_reported() {
    use typed_ws::tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server_side = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        #[allow(clippy::result_large_err)]
        let choose = |request: &Request, mut response: Response| {
            let offered = request
                .headers()
                .get("sec-websocket-protocol")
                .cloned()
                .expect("subprotocols offered");
            assert_eq!(offered, "chat.v2, chat.v1");
            response
                .headers_mut()
                .insert("sec-websocket-protocol", "chat.v1".parse().unwrap());
            Ok(response)
        };
        let mut ws = tokio_tungstenite::accept_hdr_async(tcp, choose)
            .await
            .unwrap();
        while let Some(Ok(_)) = ws.next().await {}
    });
    let mut session = within(
        "connect",
        Client::new(Config::new())
            .request(format!("ws://{addr}/proto"))
            .subprotocol("chat.v2")
            .subprotocol("chat.v1")
            .web_socket_session(),
    )
    .await
    .unwrap();
    assert_eq!(session.subprotocol(), Some("chat.v1"));
    within(
        "close",
        session.close(CloseReason::new(CloseCode::Normal, "")),
    )
    .await
    .unwrap();
    within("server ends", server_side).await.unwrap();
}
