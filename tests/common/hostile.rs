//! What the hostile-session tests share: well-behaved clients that check the server still
//! serves, and a served server whose sessions report what a hostile peer did to them.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use tokio::sync::mpsc;
use typed_ws::*;

use super::raw::{self, RawPeer, client_header};
use super::{ChatMessage, chat, echo, serve, within};

/// JSON, so that the well-behaved clients' echoes are typed.
pub fn config() -> Config<JsonConverter> {
    Config::new().converter(JsonConverter)
}

/// A typed client session on the echo route.
pub async fn good_client(addr: SocketAddr) -> Session<JsonConverter> {
    within(
        "a well-behaved client connects",
        Client::new(config()).web_socket_session(format!("ws://{addr}/echo")),
    )
    .await
    .expect("well-behaved client handshake")
}

/// One typed round trip: the echo gives back the same message.
pub async fn echo_round(session: &mut Session<JsonConverter>, id: u64) {
    within("a typed echo", async {
        session
            .send_serialized(&chat(id))
            .await
            .expect("send to echo");
        let back: ChatMessage = session.receive_deserialized().await.expect("receive echo");
        assert_eq!(back, chat(id));
    })
    .await;
}

/// A fresh client that does a few typed echoes and closes cleanly.
pub async fn fresh_client_echoes(addr: SocketAddr) {
    let mut session = good_client(addr).await;
    for id in 0..3 {
        echo_round(&mut session, id).await;
    }
    within(
        "close",
        session.close(CloseReason::new(CloseCode::Normal, "")),
    )
    .await
    .expect("clean close");
    assert_eq!(session.close_reason().unwrap().code, CloseCode::Normal);
}

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Serves `config` on loopback with [`Server::serve`]: `/echo` echoes, every other path goes
/// to `hostile`.
pub async fn serve_routes<F, Fut>(config: Config<JsonConverter>, hostile: F) -> SocketAddr
where
    F: Fn(Session<JsonConverter>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    serve(Server::new(config), move |session| -> BoxFuture {
        if session.path() == Some("/echo") {
            Box::pin(echo(session))
        } else {
            Box::pin(hostile(session))
        }
    })
    .await
}

/// What a server session saw of a hostile peer: the frames it received, the error that ended
/// receiving, what the receive after that gave, and the close reason then.
#[derive(Debug)]
pub struct Seen {
    path: String,
    pub frames: Vec<Frame>,
    pub error: Error,
    pub again: Result<Frame, Error>,
    pub close_reason: Option<CloseReason>,
}

/// A served server whose non-echo sessions receive until an error and report it.
pub struct Probed {
    pub addr: SocketAddr,
    seen: mpsc::UnboundedReceiver<Seen>,
    early: Vec<Seen>,
}

impl Probed {
    pub async fn start(config: Config<JsonConverter>) -> Probed {
        let (tx, seen) = mpsc::unbounded_channel();
        let addr = serve_routes(config, move |mut session| {
            let tx = tx.clone();
            async move {
                let mut frames = Vec::new();
                let error = loop {
                    match session.receive().await {
                        Ok(frame) => frames.push(frame),
                        Err(e) => break e,
                    }
                };
                let again = session.receive().await;
                let _ = tx.send(Seen {
                    path: session.path().unwrap_or_default().to_owned(),
                    frames,
                    error,
                    again,
                    close_reason: session.close_reason(),
                });
            }
        })
        .await;
        Probed {
            addr,
            seen,
            early: Vec::new(),
        }
    }

    /// What the server session on `path` saw, once its receiving ended.
    pub async fn seen(&mut self, path: &str) -> Seen {
        if let Some(at) = self.early.iter().position(|s| s.path == path) {
            return self.early.swap_remove(at);
        }
        within(&format!("the server session on {path} ends"), async {
            loop {
                let seen = self.seen.recv().await.expect("the server is running");
                if seen.path == path {
                    return seen;
                }
                self.early.push(seen);
            }
        })
        .await
    }
}

/// Reads the server's close frame and checks its code, then that the server ends the
/// connection with nothing after it, and with a FIN.
pub async fn expect_close_then_end(peer: &mut RawPeer, code: u16, what: &str) {
    let close = within(what, peer.expect_frame()).await;
    assert_eq!(close.opcode, raw::CLOSE, "{what}: {close:?}");
    assert!(!close.masked, "{what}: server frames are not masked");
    assert_eq!(close.close_code(), Some(code), "{what}: {close:?}");
    within(what, peer.expect_fin(what)).await;
}

/// A header claiming 1000 payload bytes and the first 10 of them.
pub fn half_a_frame() -> Vec<u8> {
    let mut bytes = client_header(0x80 | raw::BINARY, 1000);
    bytes.extend_from_slice(&[0x5a; 10]);
    bytes
}
