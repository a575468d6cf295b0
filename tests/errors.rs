//! How errors print and what they keep: printed as a chain (`error: cause: cause`, as
//! `anyhow` prints `{:#}`), every cause appears once, and the error another library reported
//! is there to match on, typed, as the source.

mod common;

use std::error::Error as _;
use std::io;

use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use typed_ws::{Client, CloseCode, Config, Error, Frame, Server};

use common::raw::{RawPeer, client_frame};
use common::{error_chain, within};

#[tokio::test]
async fn an_io_error_names_its_cause_once() {
    // A port that was just free refuses the connection.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr");
    let error = within(
        "a refused connection",
        Client::new(Config::new()).web_socket_session(format!("ws://{addr}/")),
    )
    .await
    .expect_err("nothing listens there");
    let Error::Io(io_error) = &error else {
        panic!("expected Error::Io, got {error:?}");
    };
    assert_eq!(io_error.kind(), io::ErrorKind::ConnectionRefused);
    let cause = io_error.to_string();
    let chain = error_chain(&error);
    assert_eq!(chain, format!("I/O error on the connection: {cause}"));
    assert_eq!(chain.matches(&cause).count(), 1, "{chain}");
}

#[tokio::test]
async fn a_protocol_error_keeps_tungstenite_s_error_as_its_source() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accept = async {
        let (tcp, _) = listener.accept().await.expect("accept");
        Server::new(Config::new())
            .accept(tcp)
            .await
            .expect("handshake")
    };
    let (mut session, mut peer) = within("a session", async {
        tokio::join!(accept, RawPeer::connect(addr, "/"))
    })
    .await;
    // A text frame with a reserved bit set (RSV1, without an extension that defines it).
    peer.write_raw(&client_frame(0xC1, b"hi"))
        .await
        .expect("write");

    let error = within("the violation", session.receive())
        .await
        .expect_err("a protocol error");
    let source = error.source().expect("a source");
    assert!(
        matches!(
            source.downcast_ref::<ProtocolError>(),
            Some(ProtocolError::NonZeroReservedBits)
        ),
        "{error:?}"
    );
    assert_eq!(error.close_code(), Some(CloseCode::ProtocolError));
    let chain = error_chain(&error);
    assert_eq!(
        chain,
        format!("WebSocket protocol violation: {source}"),
        "{error:?}"
    );
    // The peer got the close frame that says what happened.
    let close = within("the close frame", peer.expect_frame()).await;
    assert_eq!(close.close_code(), Some(1002));
    assert!(matches!(session.receive().await, Err(Error::Closed(_))));
}

#[tokio::test]
async fn a_frame_refused_before_sending_says_why_in_its_source() {
    let (mut client, _server) = common::pair(Config::new(), Config::new()).await;
    let error = within(
        "a refused ping",
        client.send(Frame::Ping(vec![0; 126].into())),
    )
    .await
    .expect_err("126 bytes is over the control frame limit");
    assert!(matches!(error, Error::Protocol(_)), "{error:?}");
    assert_eq!(
        error_chain(&error),
        "WebSocket protocol violation: a control frame carries at most 125 bytes, not 126"
    );
}

#[tokio::test]
async fn an_invalid_url_names_the_url_and_keeps_what_is_wrong_as_its_source() {
    use tokio_tungstenite::tungstenite::{self, error::UrlError};
    let client = Client::new(Config::new());
    // Each URL with what its source says, in its `Debug` form: tungstenite's `UrlError`, or
    // the `http` crate's error when the text does not even parse as a URI.
    let cases = [
        ("http://127.0.0.1:1/", "UnsupportedUrlScheme"),
        ("ws:///chat", "InvalidUri"),
        ("ws://", "InvalidUri"),
        ("ws://:80/", "EmptyHostName"),
        ("not a url", "InvalidUri"),
    ];
    for (url, expected) in cases {
        // Refused before connecting: nothing listens on port 1 of loopback, and a connection
        // attempt would show as Error::Io.
        let error = within(url, client.web_socket_session(url))
            .await
            .expect_err(url);
        let Error::InvalidUrl { url: given, .. } = &error else {
            panic!("{url}: expected Error::InvalidUrl, got {error:?}");
        };
        assert_eq!(given, url);
        assert_eq!(error.close_code(), None, "{url}: no session to close");
        assert_eq!(error.status(), None, "{url}");
        let source = error.source().expect("what is wrong with the URL");
        let typed = match (
            source.downcast_ref::<UrlError>(),
            source.downcast_ref::<tungstenite::http::Error>(),
        ) {
            (Some(url_error), _) => format!("{url_error:?}"),
            (None, Some(http_error)) => format!("{http_error:?}"),
            (None, None) => panic!("{url}: the source is no URL error: {source:?}"),
        };
        assert!(typed.contains(expected), "{url}: {typed}");
        let cause = source.to_string();
        assert_eq!(
            error_chain(&error),
            format!("invalid WebSocket URL {url:?}: {cause}")
        );
    }
}
