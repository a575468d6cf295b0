//! A scripted server on in-memory pipes: each connection gets the next answer of its
//! script, and nothing else (no pings, no deadlines) can end it.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::super::*;
use crate::config::Config;
use crate::converter::JsonConverter;
use crate::http::StatusCode;

/// Virtual time: a test that waits for nothing that will come fails when the clock, which
/// jumps ahead while every task waits, reaches this.
const LIMIT: Duration = Duration::from_secs(3600);

pub(super) async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing after {LIMIT:?}"))
}

/// What the scripted server does with a connection.
#[derive(Debug, Clone, Copy)]
pub(super) enum Answer {
    /// Refuses the TCP connection.
    Refuse,
    /// Answers the handshake with this HTTP status.
    Status(u16),
    /// Accepts, then closes with this code.
    Close(u16),
    /// Accepts, then drops the connection without a close frame.
    Drop,
    /// Accepts and echoes every message until the client closes.
    Echo,
    /// Accepts, echoes for this long, then closes with the code.
    Hold(Duration, u16),
}

/// A server that answers each connection with the next answer of its script, the last one
/// for good.
pub(super) struct Scripted {
    answers: StdMutex<VecDeque<Answer>>,
    connections: AtomicU32,
    /// Every text message it received, in order, JSON strings decoded.
    heard: StdMutex<Vec<String>>,
    closes: mpsc::UnboundedSender<CloseReason>,
}

impl Scripted {
    pub(super) fn new(answers: &[Answer]) -> (Arc<Scripted>, UnboundedReceiver<CloseReason>) {
        let (closes, closes_rx) = mpsc::unbounded_channel();
        let server = Scripted {
            answers: StdMutex::new(answers.iter().copied().collect()),
            connections: AtomicU32::new(0),
            heard: StdMutex::new(Vec::new()),
            closes,
        };
        (Arc::new(server), closes_rx)
    }

    pub(super) fn connections(&self) -> u32 {
        self.connections.load(Ordering::SeqCst)
    }

    pub(super) fn heard(&self) -> Vec<String> {
        self.heard.lock().unwrap().clone()
    }

    /// A client of this server, not started.
    pub(super) fn client(self: &Arc<Self>) -> Reconnect<JsonConverter> {
        let server = self.clone();
        Reconnect::new(
            JsonConverter,
            None,
            Box::new(move || Box::pin(server.clone().accept())),
        )
    }

    async fn accept(self: Arc<Self>) -> Result<Session<JsonConverter>, Error> {
        self.connections.fetch_add(1, Ordering::SeqCst);
        let answer = {
            let mut answers = self.answers.lock().unwrap();
            match answers.len() {
                1 => answers[0],
                _ => answers.pop_front().expect("a script"),
            }
        };
        match answer {
            Answer::Refuse => return Err(Error::Io(ErrorKind::ConnectionRefused.into())),
            Answer::Status(status) => {
                let status = StatusCode::from_u16(status).expect("a status");
                return Err(Error::handshake(Some(status), format!("answered {status}")));
            }
            _ => {}
        }
        let (ours, theirs) = tokio::io::duplex(64 << 10);
        let (ours, theirs) = tokio::join!(
            WebSocketStream::from_raw_socket(ours, Role::Client, None),
            WebSocketStream::from_raw_socket(theirs, Role::Server, None),
        );
        tokio::spawn(self.serve(Session::from_stream(theirs, &config()), answer));
        Ok(Session::from_stream(ours, &config()))
    }

    async fn serve(self: Arc<Self>, mut session: Session<JsonConverter>, answer: Answer) {
        let hold = match answer {
            Answer::Close(code) => {
                let _ = session.close(CloseReason::new(code.into(), "")).await;
                return;
            }
            Answer::Hold(time, code) => Some((Instant::now() + time, code)),
            Answer::Echo => None,
            _ => return,
        };
        loop {
            let received = match hold {
                Some((until, code)) => {
                    match tokio::time::timeout_at(until, session.receive()).await {
                        Ok(received) => received,
                        Err(_) => {
                            let _ = session.close(CloseReason::new(code.into(), "")).await;
                            return;
                        }
                    }
                }
                None => session.receive().await,
            };
            match received {
                Ok(Frame::Text(text)) => {
                    // JSON strings are heard as the strings they are.
                    let heard = serde_json::from_str(&text).unwrap_or_else(|_| text.to_string());
                    self.heard.lock().unwrap().push(heard);
                    let _ = session.send_text(text).await;
                }
                Ok(Frame::Close(reason)) => {
                    let _ = self.closes.send(reason.expect("a close code"));
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }
}

/// Sessions without pings or deadlines: the clock jumps, and nothing but the script may
/// end a connection.
fn config() -> Config<JsonConverter> {
    Config::new()
        .converter(JsonConverter)
        .ping_interval(Duration::ZERO)
        .timeout(Duration::ZERO)
        .send_timeout(Duration::ZERO)
}
