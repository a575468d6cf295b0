//! Helpers shared by the integration tests: a loopback server, server handlers, time bounds
//! and the chat message; in submodules, frame headers (shared with the benches and the
//! hostile tool), raw frames, hand-made compressed payloads, hostile peers and openings, TLS,
//! a seeded RNG, and the interop peers and exchange.
// Each test binary uses only part of it.
#![allow(dead_code)]

pub mod brokers;
#[path = "../../examples/common/chat_message.rs"]
mod chat_message;
pub mod deflate;
pub mod examples;
#[cfg(feature = "json")]
pub mod hostile;
#[cfg(all(feature = "json", feature = "cbor", feature = "msgpack"))]
pub mod interop;
pub mod openings;
#[cfg(feature = "json")]
pub mod peers;
pub mod raw;
pub mod rng;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(all(feature = "json", feature = "cbor", feature = "msgpack"))]
pub mod topics;
pub mod wire;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use typed_ws::{
    AnyConverter, Client, CloseReason, Config, Converter, Error, Frame, Negotiation, Server,
    Session,
};

pub use chat_message::ChatMessage;

/// Every network await in a test is bounded by this, so a hang fails fast.
pub const LIMIT: Duration = Duration::from_secs(10);

/// Awaits `future` for at most [`LIMIT`], failing the test with `what` if it takes longer.
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(LIMIT, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {LIMIT:?}: {what}"),
    }
}

pub fn chat(id: u64) -> ChatMessage {
    ChatMessage {
        id,
        author: "ada".to_owned(),
        text: format!("message number {id} — ünïcödé"),
        tags: vec!["test".to_owned(), id.to_string()],
        reply_to: id.checked_sub(1),
    }
}

/// Starts `server` on a free loopback port, running `handler` for each session.
pub async fn serve<C, F, Fut>(server: Server<C>, handler: F) -> SocketAddr
where
    C: Converter,
    F: Fn(Session<C>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { server.serve(listener, handler).await });
    addr
}

/// A server handler that decodes every message as a [`ChatMessage`] and sends it back.
pub async fn typed_echo<C: Converter>(mut session: Session<C>) {
    while let Ok(message) = session.receive_deserialized::<ChatMessage>().await {
        if session.send_serialized(&message).await.is_err() {
            break;
        }
    }
}

/// A server handler that echoes every data frame until the session ends.
pub async fn echo<C: Converter>(mut session: Session<C>) {
    while let Ok(frame) = session.receive().await {
        if frame.is_data() && session.send(frame).await.is_err() {
            break;
        }
    }
}

/// A server handler that reports every frame and the final error of each session, and
/// echoes data frames back.
pub fn recording_echo(
    tx: mpsc::UnboundedSender<Result<Frame, Error>>,
) -> impl Fn(Session) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync + 'static {
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

pub fn assert_closed_with(result: Result<Frame, Error>, expected: &CloseReason) {
    match result {
        Err(Error::Closed(reason)) => assert_eq!(&reason, expected),
        other => panic!("expected Error::Closed({expected}), got {other:?}"),
    }
}

/// A connected client and server session, both in the caller's hands, so that a test can
/// drive either end. The client asks for `/pair`.
pub async fn pair<A: Converter, B: Converter>(
    client: Config<A>,
    server: Config<B>,
) -> (Session<A>, Session<B>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let server = Server::new(server);
    let accept = async {
        let (tcp, _) = listener.accept().await.expect("accept");
        tcp.set_nodelay(true).expect("nodelay");
        server.accept(tcp).await.expect("server handshake")
    };
    let connect = async {
        Client::new(client)
            .web_socket_session(format!("ws://{addr}/pair"))
            .await
            .expect("client handshake")
    };
    within("connect a session pair", async {
        tokio::join!(connect, accept)
    })
    .await
}

/// Accepts one connection on a free loopback port with `config`; the server session (or the
/// handshake error) comes from the join handle, so the test holds it and decides when it
/// ends.
pub async fn accept_one<C: Converter>(
    config: Config<C>,
) -> (
    SocketAddr,
    tokio::task::JoinHandle<Result<Session<C>, typed_ws::Error>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let server = Server::new(config);
    let handle = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        tcp.set_nodelay(true).expect("nodelay");
        server.accept(tcp).await
    });
    (addr, handle)
}

/// A config that negotiates the converters `names` names (`"msgpack,json"`), in that order.
pub fn negotiating(names: &str) -> Config<AnyConverter> {
    Config::new().negotiate(Negotiation::from_names(names).unwrap())
}

/// Asserts that a client offering `json` and `msgpack` was refused with 400 for want of a
/// common converter, and that the refusal names what it offered.
pub fn assert_refused_json_msgpack(err: &Error) {
    assert_eq!(err.status().map(u16::from), Some(400), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("no common converter") && text.contains("json, msgpack"),
        "{text}"
    );
}
