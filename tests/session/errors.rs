//! How errors print and what they keep: printed as a chain by `Error::report` (`error: cause:
//! cause`, as `anyhow` prints `{:#}`), every cause appears once, and the error another library
//! reported is there to match on, typed, as the source. `Error::is_fatal` for each variant is
//! a unit test (`src/error/tests.rs`): most variants cannot be built outside the crate.

use crate::common;

use std::error::Error as _;
use std::io;

use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use typed_ws::{Client, CloseCode, Config, Error, Frame, JsonConverter, Report, Server};

use common::raw::{RawPeer, client_frame};
use common::within;

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
    let chain = error.report().to_string();
    assert_eq!(chain, format!("I/O error on the connection: {cause}"));
    assert_eq!(chain.matches(&cause).count(), 1, "{chain}");
    #[cfg(unix)]
    assert!(chain.contains("Connection refused"), "{chain}");
    assert!(error.is_fatal());
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
    assert!(error.is_fatal());
    let chain = error.report().to_string();
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
async fn a_frame_refused_before_sending_says_why() {
    let (mut client, _server) = common::pair(Config::new(), Config::new()).await;
    let error = within(
        "a refused ping",
        client.send(Frame::Ping(vec![0; 126].into())),
    )
    .await
    .expect_err("126 bytes is over the control frame limit");
    assert!(matches!(error, Error::Unsendable(_)), "{error:?}");
    assert!(!error.is_fatal());
    assert_eq!(
        error.report().to_string(),
        "the frame cannot be sent: a control frame carries at most 125 bytes, not 126"
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
            error.report().to_string(),
            format!("invalid WebSocket URL {url:?}: {cause}")
        );
        assert!(error.is_fatal(), "{url}: no session to go on with");
    }
}

#[tokio::test]
async fn a_decode_error_leaves_the_session_usable() {
    let (mut client, mut server) =
        common::pair(Config::new(), Config::new().converter(JsonConverter)).await;
    within("two messages", async {
        client.send_text("{not json").await.expect("send");
        client.send_text("\"fine\"").await.expect("send");
    })
    .await;
    let error = within("the bad one", server.receive_deserialized::<String>())
        .await
        .expect_err("not JSON");
    assert!(matches!(error, Error::Decode { .. }), "{error:?}");
    assert!(!error.is_fatal());
    assert_eq!(
        error.report().to_string(),
        error.to_string(),
        "no source to add"
    );
    let next = within("the good one", server.receive_deserialized::<String>()).await;
    assert_eq!(next.expect("decodes"), "fine");
}

/// An error that quotes its source in its own text, as many libraries' errors do.
#[derive(Debug)]
struct Quoting(io::Error);

impl std::fmt::Display for Quoting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "request failed: {}", self.0)
    }
}

impl std::error::Error for Quoting {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[test]
fn a_report_names_a_quoted_cause_once_and_cuts_long_parts() {
    let quoting = Quoting(io::Error::other("Connection refused"));
    assert_eq!(
        Report::new(&quoting).to_string(),
        "request failed: Connection refused"
    );

    // A peer chooses some error texts: each part of a report stops at 200 bytes.
    let long = "é".repeat(300);
    let quoting = Quoting(io::Error::other(long.clone()));
    let report = Report::new(&quoting).to_string();
    let cut: String = format!("request failed: {long}")
        .chars()
        .take(108)
        .collect();
    assert_eq!(report, format!("{cut}... (616 bytes in all)"));
}
