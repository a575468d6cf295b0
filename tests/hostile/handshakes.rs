//! Hostile peers against the opening handshake: garbage instead of a handshake (random
//! bytes, a TLS ClientHello, plain HTTP, a wrong method, HTTP version or WebSocket version,
//! truncated or endless heads). Each gives the documented error with no session to close,
//! well-formed requests get an HTTP error response, and the server keeps serving every other
//! session meanwhile.
#![cfg(feature = "json")]

use crate::common;

use std::io;

use common::hostile::{config, echo_round, fresh_client_echoes, good_client, serve_routes};
use common::openings::{Opening, read_until_gone};
use common::raw;
use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use typed_ws::*;

fn assert_refused(opening: Opening, result: Result<Session<JsonConverter>, Error>) {
    let error = result.expect_err(&format!("{opening:?} must not give a session"));
    match (opening.expected(), &error) {
        (Some(text), Error::Handshake { status, .. }) => {
            assert_eq!(
                status.map(u16::from),
                opening.status(),
                "{opening:?}: {error:?}"
            );
            let chain = error.report().to_string();
            assert!(chain.contains(text), "{opening:?}: {chain:?}");
        }
        (None, Error::Io(e)) => {
            assert_eq!(
                e.kind(),
                io::ErrorKind::ConnectionReset,
                "{opening:?}: {e:?}"
            );
        }
        (_, other) => panic!("{opening:?}: wrong error {other:?}"),
    }
    assert_eq!(error.close_code(), None, "{opening:?}: no session to close");
}

#[tokio::test]
async fn accept_refuses_garbage_instead_of_a_handshake_with_the_precise_error() {
    for opening in Opening::ALL {
        let (listener, addr) = raw::listen().await;
        let server = Server::new(config());
        let accept = async {
            let (tcp, _) = listener.accept().await.expect("accept");
            server.accept(tcp).await
        };
        let client = async {
            let tcp = TcpStream::connect(addr).await.expect("connect");
            opening.play(tcp).await
        };
        let (result, tcp) = within(&format!("{opening:?}"), async {
            tokio::join!(accept, client)
        })
        .await;
        assert_refused(opening, result);
        // The server let the connection go.
        if let Some(mut tcp) = tcp {
            let back = within(
                &format!("{opening:?}: connection ends"),
                read_until_gone(&mut tcp),
            )
            .await;
            opening.check_answer(&back);
        }
    }
}

#[tokio::test]
async fn serve_drops_garbage_handshakes_and_keeps_serving() {
    let addr = serve_routes(config(), echo).await;
    let mut before = good_client(addr).await;
    echo_round(&mut before, 1).await;

    for (round, opening) in Opening::ALL.into_iter().enumerate() {
        let tcp = within("connect", TcpStream::connect(addr))
            .await
            .expect("connect");
        if let Some(mut tcp) = opening.play(tcp).await {
            let back = within(
                &format!("{opening:?}: the server drops the connection"),
                read_until_gone(&mut tcp),
            )
            .await;
            opening.check_answer(&back);
        }
        // The session that was open all along still works.
        echo_round(&mut before, 100 + round as u64).await;
    }
    // And a slow client that is still sending its request does not hold up others.
    let mut slow = within("connect", TcpStream::connect(addr))
        .await
        .expect("connect");
    within(
        "half a request",
        slow.write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n"),
    )
    .await
    .expect("write");
    echo_round(&mut before, 200).await;
    fresh_client_echoes(addr).await;
    drop(slow);
}

/// RFC 6455 section 4.2.1: a server that finds the client's handshake does not match the
/// description "MUST stop processing the client's handshake and return an HTTP response with
/// an appropriate error code (such as 400 Bad Request)"; section 4.2.2: for a version it does
/// not speak, "an appropriate HTTP error code (such as 426 Upgrade Required) and a
/// |Sec-WebSocket-Version| header field indicating the version(s) the server is capable of
/// understanding".
#[tokio::test]
async fn a_well_formed_request_that_is_no_valid_upgrade_gets_an_http_error() {
    let addr = serve_routes(config(), echo).await;
    let mut failures = Vec::new();
    for opening in [
        Opening::PlainHttpGet,
        Opening::PostUpgrade,
        Opening::Http10Upgrade,
        Opening::WrongVersion,
    ] {
        let tcp = within("connect", TcpStream::connect(addr))
            .await
            .expect("connect");
        let mut tcp = opening.play(tcp).await.expect("not reset");
        let back = within("the answer", read_until_gone(&mut tcp)).await;
        let head = String::from_utf8_lossy(&back).to_ascii_lowercase();
        let status_4xx = head.starts_with("http/1.1 4") || head.starts_with("http/1.0 4");
        let version_named = head.contains("\r\nsec-websocket-version: 13");
        if !status_4xx || (matches!(opening, Opening::WrongVersion) && !version_named) {
            failures.push(format!("{opening:?}: answered {head:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "refused without the HTTP error response RFC 6455 4.2.1/4.2.2 require:\n{}",
        failures.join("\n")
    );
}
