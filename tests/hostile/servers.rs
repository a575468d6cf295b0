//! A typed-ws client against hostile servers: garbage, an HTTP error, a wrong accept key, no
//! answer at all, an oversized frame. Each gives the documented error and close code.
#![cfg(feature = "json")]

use crate::common;

use std::future::Future;
use std::time::Duration;

use common::hostile::config;
use common::raw::{self, RawPeer};
use common::rng::Rng;
use common::*;
use typed_ws::tokio_tungstenite::tungstenite::error::ProtocolError;
use typed_ws::*;

/// Connects a typed-ws client with `config` to a raw server that reads the request and then
/// plays `respond`; gives the client's result.
async fn connect_to_hostile<F, Fut>(
    config: Config<JsonConverter>,
    respond: F,
) -> Result<Session<JsonConverter>, Error>
where
    F: FnOnce(RawPeer) -> Fut,
    Fut: Future<Output = Option<RawPeer>>,
{
    let (listener, addr) = raw::listen().await;
    let client = Client::new(config);
    let server = async {
        let (peer, head) = RawPeer::accept_request(&listener).await;
        assert!(head.starts_with("GET /hostile HTTP/1.1\r\n"), "{head}");
        respond(peer).await
    };
    let (result, _peer) = within("client against a hostile server", async {
        tokio::join!(
            client.web_socket_session(format!("ws://{addr}/hostile")),
            server
        )
    })
    .await;
    result
}

#[tokio::test]
async fn client_gets_handshake_error_when_the_server_answers_garbage() {
    let result = connect_to_hostile(config(), |mut peer| async move {
        let mut garbage = Rng::new(3).bytes(512);
        garbage[0] = 0x00;
        peer.write_raw(&garbage).await.expect("write");
        Some(peer)
    })
    .await;
    let error = result.expect_err("garbage is no upgrade");
    assert!(
        matches!(
            handshake_cause(&error),
            Some(ProtocolError::HttparseError(_))
        ),
        "{error:?}"
    );
}

/// The tungstenite error a handshake that got no status failed with, typed, from its source.
fn handshake_cause(error: &Error) -> Option<&ProtocolError> {
    let Error::Handshake { status: None, .. } = error else {
        return None;
    };
    std::error::Error::source(error)?.downcast_ref()
}

#[tokio::test]
async fn client_gets_handshake_error_with_the_status_when_the_server_answers_500() {
    let result = connect_to_hostile(config(), |mut peer| async move {
        peer.write_raw(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 11\r\n\r\nit broke :(",
        )
        .await
        .expect("write");
        Some(peer)
    })
    .await;
    let error = result.expect_err("a 500 is no upgrade");
    assert_eq!(error.status().map(u16::from), Some(500), "{error:?}");
    match error {
        Error::Handshake { message, .. } => {
            assert!(message.starts_with("the server answered 500"), "{message}");
        }
        other => panic!("expected Handshake, got {other:?}"),
    }
}

#[tokio::test]
async fn client_gets_handshake_error_when_the_accept_key_is_wrong() {
    let result = connect_to_hostile(config(), |mut peer| async move {
        peer.write_raw(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        )
        .await
        .expect("write");
        Some(peer)
    })
    .await;
    let error = result.expect_err("a wrong key is no upgrade");
    assert!(
        matches!(
            handshake_cause(&error),
            Some(ProtocolError::SecWebSocketAcceptKeyMismatch)
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn client_times_out_when_the_server_never_answers() {
    let limit = Duration::from_millis(300);
    let started = tokio::time::Instant::now();
    let result = connect_to_hostile(config().handshake_timeout(limit), |peer| async move {
        // Hold the connection, say nothing, until the client has given up.
        Some(peer)
    })
    .await;
    match result {
        Err(Error::HandshakeTimeout(after)) => assert_eq!(after, limit),
        other => panic!("expected HandshakeTimeout, got {other:?}"),
    }
    assert!(started.elapsed() >= limit);
}

#[tokio::test]
async fn client_gets_too_big_and_sends_1009_for_an_oversized_frame_from_the_server() {
    let (mut session, mut peer, _) =
        raw::client_to_raw(config().max_message_size(1024), "/hostile").await;
    within(
        "oversized frame",
        peer.write_frame(true, raw::BINARY, &[9; 2000]),
    )
    .await
    .expect("write");
    let error = within("client receive", session.receive())
        .await
        .expect_err("the frame is over the limit");
    match error {
        Error::TooBig { size, limit, .. } => assert_eq!((size, limit), (2000, 1024)),
        ref other => panic!("expected TooBig, got {other:?}"),
    }
    assert_eq!(session.close_reason().unwrap().code, CloseCode::TooBig);
    let close = within("raw server reads the close", peer.expect_frame()).await;
    assert_eq!(close.opcode, raw::CLOSE);
    assert!(close.masked, "client frames are masked");
    assert_eq!(close.close_code(), Some(1009));
}
