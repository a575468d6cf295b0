//! A chat room for browsers: an axum server with one HTML page at `/` and a typed WebSocket at
//! `/ws`. Every message a participant sends goes to everyone, encoded once per codec in use.
//!
//! ```text
//! cargo run --example chat --features axum -- --addr 127.0.0.1:8080
//! ```
//!
//! Then open <http://127.0.0.1:8080/> in two browser windows (`?name=alice` picks a name).
//! `--addr` is optional (default `127.0.0.1:8080`; port 0 picks a free one). When the server is
//! ready it prints one line on stdout, with the address it is bound to:
//!
//! ```text
//! listening on http://127.0.0.1:8080/
//! ```
//!
//! The page uses the browser's own `WebSocket` and offers the subprotocols `msgpack` and
//! `json` (`?codec=json` offers only JSON); the server prefers MessagePack and treats a client
//! that offers neither as JSON. The page shows who is online and the messages, and reconnects
//! when the connection drops, so restarting the server only costs a moment. The server accepts
//! the permessage-deflate compression that browsers offer, and the page shows it beside the
//! subprotocol (`ws.extensions`).
//!
//! The wire protocol, in either codec: the page sends `{"text": "..."}`; the server sends
//! `{"type": "welcome", "name", "online"}` once, then `joined`, `left` and
//! `message` (`id`, `author`, `text`) events, in the same order to everyone.
//!
//! The room holds at most 1,000 participants at once; the server closes the session of one
//! more with 1013 (try again later). Ctrl-C or SIGTERM closes every session with 1001 (going
//! away), which the page answers by reconnecting, and stops the server.

mod common;
#[path = "chat/room.rs"]
mod room;

use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use typed_ws::axum::WebSocketUpgrade;
use typed_ws::{
    AnyConverter, CloseCode, CloseReason, Compression, Config, Frame, JsonConverter,
    MsgPackConverter, Negotiation, RecvHalf, SendHalf,
};

use common::{log, parse_flags, shutdown_signal, usage_error};
use room::Room;

const USAGE: &str = "usage: chat [--addr IP:PORT]
  --addr   the address to listen on (default 127.0.0.1:8080; port 0 picks a free one)";

const PAGE: &str = include_str!("chat/index.html");
const MSGPACK_JS: &str = include_str!("chat/msgpack.min.js");

/// The longest chat message, in bytes of its encoding: the page allows 2,000 characters.
const MAX_MESSAGE: usize = 16 << 10;

/// Events a participant may have queued before it counts as too slow and is let go: one
/// stalled browser must not make the room buffer without bound.
const OUTBOX: usize = 256;

/// The most participants at once. Every event goes to everyone under the room's lock, so
/// each message costs one queue push per member, a join also hands the newcomer the whole
/// online list, and members dropped together (a cascade of `left` events) cost members
/// squared: at 1,000 a broadcast is some tens of microseconds and a welcome some 30 KB, and a
/// room of people reading one another has no use for more.
const MAX_MEMBERS: usize = 1_000;

/// What a page sends.
#[derive(Deserialize)]
struct Say {
    text: String,
}

/// What the server sends, the same events in the same order to everyone.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    /// The first event of a session: the name the server gave, and who is online, in the
    /// order they came.
    Welcome {
        name: String,
        online: Vec<String>,
    },
    Joined {
        name: String,
    },
    Left {
        name: String,
    },
    Message {
        id: u64,
        author: String,
        text: String,
    },
}

#[derive(Clone)]
struct App {
    room: Arc<Room>,
    config: Config<AnyConverter>,
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn msgpack_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript")], MSGPACK_JS)
}

/// The `name` parameter of a query string, percent-decoded as the page's `URLSearchParams`
/// encodes it (`+` for a space); empty without one. By hand rather than through axum's `Query`:
/// its `query` feature is one more dependency of every example's build.
fn name_in(query: Option<&str>) -> String {
    let Some(value) = query
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("name="))
    else {
        return String::new();
    };
    let mut name = Vec::with_capacity(value.len());
    let mut rest = value.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        let digits = tail
            .get(..2)
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .filter(|digits| digits.bytes().all(|digit| digit.is_ascii_hexdigit()));
        match (byte, digits) {
            (b'%', Some(digits)) => {
                name.push(u8::from_str_radix(digits, 16).expect("two hex digits"));
                rest = &tail[2..];
            }
            (b'+', _) => name.push(b' '),
            _ => name.push(byte),
        }
    }
    String::from_utf8_lossy(&name).into_owned()
}

/// The WebSocket route. The name comes from the query string, read beside the upgrade.
async fn ws(
    upgrade: WebSocketUpgrade,
    RawQuery(query): RawQuery,
    State(app): State<App>,
) -> Response {
    let name = name_in(query.as_deref());
    upgrade.on_upgrade(&app.config, move |mut session| async move {
        let converter = *session.converter();
        let (outbox, mut queued) = mpsc::channel(OUTBOX);
        let Some(id) = app.room.join(&name, converter, outbox) else {
            log("refusing a session: the room is full".to_owned());
            let full = CloseReason::new(CloseCode::TryAgainLater, "the room is full");
            let _ = session.close(full).await;
            return;
        };
        let (mut sender, mut receiver) = session.split();
        let reason = tokio::select! {
            reason = read(&app.room, id, &mut receiver) => reason,
            reason = write(&mut sender, &mut queued) => reason,
        };
        app.room.leave(id);
        if let Some(reason) = reason {
            log(format!(
                "closing a session with {}: {}",
                reason.code, reason.reason
            ));
            let _ = sender.close(reason).await;
        }
    })
}

/// Passes every message of one participant to the room until the session ends. Gives the
/// close reason when the session should be closed from here: 1007 for a message that does not
/// decode, 1003 for the wrong kind of data frame.
async fn read(room: &Room, id: u64, receiver: &mut RecvHalf<AnyConverter>) -> Option<CloseReason> {
    loop {
        match receiver.receive_deserialized::<Say>().await {
            Ok(say) => room.say(id, &say.text),
            Err(e) => {
                return e
                    .close_code()
                    .map(|code| CloseReason::new(code, e.to_string()));
            }
        }
    }
}

/// Sends what the room queued for one participant, in order, until the room lets it go (its
/// outbox was full: 1008) or the connection fails.
async fn write(
    sender: &mut SendHalf<AnyConverter>,
    queued: &mut mpsc::Receiver<Frame>,
) -> Option<CloseReason> {
    while let Some(frame) = queued.recv().await {
        sender.send(frame).await.ok()?;
    }
    Some(CloseReason::new(
        CloseCode::PolicyViolation,
        "too slow to keep up with the room",
    ))
}

#[tokio::main]
async fn main() -> ExitCode {
    let [addr] = match parse_flags(USAGE, [("--addr", "127.0.0.1:8080")]) {
        Ok(flags) => flags,
        Err(code) => return code,
    };
    let Ok(addr) = addr.parse::<std::net::SocketAddr>() else {
        return usage_error(USAGE, &format!("--addr {addr:?} is not an IP:PORT address"));
    };
    let listener = match TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let bound = match listener.local_addr() {
        Ok(bound) => bound,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = AnyConverter::from(JsonConverter);
    let codecs = Negotiation::prefer(AnyConverter::from(MsgPackConverter::new()))
        .then(json)
        .fallback(json);
    // Every browser offers permessage-deflate, and chat events, with the same field names in
    // each, are what it shrinks best.
    let config = Config::new()
        .negotiate(codecs)
        .compression(Compression::new())
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE);
    let app = App {
        room: Arc::new(Room::new(MAX_MEMBERS)),
        config: config.clone(),
    };
    let router = Router::new()
        .route("/", get(page))
        .route("/msgpack.min.js", get(msgpack_js))
        .route("/ws", get(ws))
        .with_state(app);

    let stop = shutdown_signal();
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        if writeln!(stdout, "listening on http://{bound}/")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            return ExitCode::FAILURE;
        }
    }
    // Not axum::serve: this one drops connections that send no request within the handshake
    // deadline, caps how many are open, and sets TCP_NODELAY.
    let served = typed_ws::axum::serve(listener, router, &config).with_graceful_shutdown(stop);
    if let Err(e) = served.await {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};
    use typed_ws::{Client, Error, Session};

    use super::*;

    #[test]
    fn the_name_in_the_query_string_is_percent_decoded() {
        assert_eq!(name_in(Some("codec=json&name=Ad%C3%A1+L%2B")), "Adá L+");
        assert_eq!(name_in(Some("name=100%")), "100%");
        assert_eq!(name_in(Some("codec=json")), "");
        assert_eq!(name_in(None), "");
    }

    /// Awaits `future` for at most 10 seconds, so that a hang fails fast.
    async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), future)
            .await
            .unwrap_or_else(|_| panic!("timed out: {what}"))
    }

    async fn connect(url: &str) -> Session<AnyConverter> {
        let config = Config::new().converter(AnyConverter::from(JsonConverter));
        within("connecting", Client::new(config).web_socket_session(url))
            .await
            .expect("connect")
    }

    #[tokio::test]
    async fn a_join_past_the_cap_is_closed_with_1013_and_the_room_carries_on() {
        let app = App {
            room: Arc::new(Room::new(1)),
            config: Config::new().converter(AnyConverter::from(JsonConverter)),
        };
        let router = Router::new().route("/ws", get(ws)).with_state(app);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("ws://{}/ws?name=ada", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });

        let mut ada = connect(&url).await;
        let welcome: Value = within("the welcome", ada.receive_deserialized())
            .await
            .unwrap();
        assert_eq!(welcome["name"], "ada");

        let mut late = connect(&url).await;
        match within("the refusal", late.receive()).await {
            Ok(Frame::Close(Some(reason))) | Err(Error::Closed(reason)) => {
                assert_eq!(reason.code, CloseCode::TryAgainLater);
                assert_eq!(reason.reason.as_str(), "the room is full");
            }
            other => panic!("expected a close frame, got {other:?}"),
        }

        within(
            "a message",
            ada.send_serialized(&json!({"text": "anyone?"})),
        )
        .await
        .unwrap();
        let heard: Value = within("the message", ada.receive_deserialized())
            .await
            .unwrap();
        assert_eq!(
            heard,
            json!({"type": "message", "id": 0, "author": "ada", "text": "anyone?"})
        );
    }
}
