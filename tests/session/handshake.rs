//! What the server sees of the opening handshake, and what the client learns of it: routing
//! on the request path, refusals with an HTTP status, extra headers, and subprotocols.

use crate::common;

use common::*;
use futures_util::StreamExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use typed_ws::http::{HeaderMap, StatusCode};
use typed_ws::*;

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
                status: Some(http::StatusCode::NOT_FOUND),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.status().map(u16::from), Some(404));
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
    assert_eq!(err.status().map(u16::from), Some(400), "{err}");
    assert!(err.to_string().contains("no common subprotocol"), "{err}");
    let server_err = within("server side", server_side)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        server_err.status().map(u16::from),
        Some(400),
        "{server_err}"
    );
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
