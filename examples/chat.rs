//! A chat room for browsers: an axum server with one HTML page at `/` and a typed WebSocket at
//! `/ws`. Every message a participant sends goes to everyone, encoded once per codec in use.
//!
//! ```text
//! cargo run --example chat --features axum -- --addr 127.0.0.1:8080 [--bus URL]
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
//! `{"type": "welcome", "name", "online"}` once, then the room's numbered stream
//! (`typed_ws::topics::history`): an outcome (`{"outcome": "live", "seq", "epoch"}`), then
//! `joined`, `left` and `message` (`id`, `author`, `text`) events, each as
//! `{"seq", "epoch", "data": EVENT}`, in the same order to everyone. A page that lost its
//! connection comes back with `&since=SEQ&epoch=EPOCH` of the last event it got, and is given
//! what it missed first (the room keeps its last 1,000 events, for 10 minutes), or the outcome
//! `reset` when they are no longer kept; the page shows them as they come.
//!
//! The room's events travel on a topic (`typed_ws::topics`), each participant's session
//! subscribed through its outbox; a participant too slow to take 256 waiting events is let go
//! with 1008. With `--bus nats://HOST:PORT` or `--bus redis://HOST:PORT` (features `nats`,
//! `redis`), chat servers on one broker are one room: messages and `joined` / `left` events
//! reach everyone on every node, in each node's order. Names are unique on each node, message
//! ids count per node, and a node's online list holds its own participants and those of the
//! others that joined while it was up (a node that stops without closing its sessions leaves
//! them listed elsewhere). Another node's `joined` or `left` is in a newcomer's welcome or
//! comes after it, never both or neither (`Topic::subscribe_since_with`).
//!
//! The room holds at most 1,000 participants at once on each node; the server closes the
//! session of one more with 1013 (try again later). Ctrl-C or SIGTERM closes every session with 1001 (going
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
use typed_ws::axum::WebSocketUpgrade;
use typed_ws::topics::{History, Outbox, Policy, Position, TopicConfig, Topics};
use typed_ws::{
    AnyConverter, CloseCode, CloseReason, Compression, Config, JsonConverter, MsgPackConverter,
    Negotiation, RecvHalf,
};

use common::{log, parse_flags, shutdown_signal, usage_error};
use room::Room;

const USAGE: &str = "usage: chat [--addr IP:PORT] [--bus URL]
  --addr   the address to listen on (default 127.0.0.1:8080; port 0 picks a free one)
  --bus    nats://HOST:PORT or redis://HOST:PORT: one room with every chat server on that
           broker (default: this process only)";

const PAGE: &str = include_str!("chat/index.html");
const MSGPACK_JS: &str = include_str!("chat/msgpack.min.js");

/// The longest chat message, in bytes of its encoding: the page allows 2,000 characters.
const MAX_MESSAGE: usize = 16 << 10;

/// Events a participant may have queued before it counts as too slow and is let go: one
/// stalled browser must not make the room buffer without bound.
const OUTBOX: usize = 256;

/// The events a page that lost its connection is given again when it comes back, at most,
/// and how old they may be.
const HISTORY: usize = 1_000;
const HISTORY_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// The most participants at once on one node. Every event costs one queue push per member,
/// a join also hands the newcomer the whole online list, and members dropped together (a
/// cascade of `left` events) cost members squared: at 1,000 a broadcast is some tens of
/// microseconds and a welcome some 30 KB, and a room of people reading one another has no use
/// for more.
const MAX_MEMBERS: usize = 1_000;

/// What a page sends.
#[derive(Deserialize)]
struct Say {
    text: String,
}

/// What the server sends, the same events in the same order to everyone on a node. They
/// cross the bus too, as they are.
#[derive(Clone, Serialize, Deserialize)]
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

/// The parameter `key` of a query string, percent-decoded as the page's `URLSearchParams`
/// encodes it (`+` for a space). By hand rather than through axum's `Query`: its `query` feature
/// is one more dependency of every example's build.
fn param(query: Option<&str>, key: &str) -> Option<String> {
    let value = query
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))?;
    let mut decoded = Vec::with_capacity(value.len());
    let mut rest = value.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        let digits = tail
            .get(..2)
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .filter(|digits| digits.bytes().all(|digit| digit.is_ascii_hexdigit()));
        match (byte, digits) {
            (b'%', Some(digits)) => {
                decoded.push(u8::from_str_radix(digits, 16).expect("two hex digits"));
                rest = &tail[2..];
            }
            (b'+', _) => decoded.push(b' '),
            _ => decoded.push(byte),
        }
    }
    Some(String::from_utf8_lossy(&decoded).into_owned())
}

/// The WebSocket route. The name comes from the query string, read beside the upgrade.
async fn ws(
    upgrade: WebSocketUpgrade,
    RawQuery(query): RawQuery,
    State(app): State<App>,
) -> Response {
    let name = param(query.as_deref(), "name").unwrap_or_default();
    // The last event a page got, when it comes back after losing its connection.
    let number = |key: &str| param(query.as_deref(), key)?.parse::<u64>().ok();
    let since = number("since")
        .zip(number("epoch"))
        .map(|(seq, epoch)| Position { epoch, seq });
    upgrade.on_upgrade(&app.config, move |session| async move {
        let (sender, mut receiver) = session.split();
        let outbox = Outbox::new(sender);
        let Some(id) = app.room.join(&name, &outbox, since).await else {
            log("refusing a session: the room is full".to_owned());
            outbox.close(CloseReason::new(
                CloseCode::TryAgainLater,
                "the room is full",
            ));
            // Its answer to the close, or the end of the connection.
            while receiver.receive().await.is_ok() {}
            return;
        };
        let reason = read(&app.room, id, &mut receiver).await;
        app.room.leave(id);
        if let Some(reason) = reason {
            log(format!(
                "closing a session with {}: {}",
                reason.code, reason.reason
            ));
            outbox.close(reason);
            while receiver.receive().await.is_ok() {}
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

/// The room's topic, on the bus at `url` when one is given.
async fn room_topics(url: &str) -> Result<Topics<Event>, String> {
    let too_slow = CloseReason::new(
        CloseCode::PolicyViolation,
        "too slow to keep up with the room",
    );
    let topics = Topics::with_config(
        TopicConfig::new()
            .queue(OUTBOX)
            .policy(Policy::disconnect_with(too_slow))
            .history(History::last(HISTORY).max_age(HISTORY_AGE)),
    );
    if url.is_empty() {
        return Ok(topics);
    }
    #[cfg(any(feature = "nats", feature = "redis"))]
    {
        let bus = typed_ws::bus::Bus::connect(url)
            .await
            .map_err(|e| e.report().to_string())?;
        topics.bus(&bus, "chat").map_err(|e| e.to_string())
    }
    #[cfg(not(any(feature = "nats", feature = "redis")))]
    {
        let _ = topics;
        Err("--bus needs the example built with `--features nats` or `--features redis`".into())
    }
}

/// The room, with what the other nodes say of who is online.
fn room(topics: Topics<Event>) -> Result<Arc<Room>, String> {
    let room = Arc::new(Room::new(MAX_MEMBERS, topics.clone(), ROOM));
    #[cfg(any(feature = "nats", feature = "redis"))]
    {
        let heard = Arc::downgrade(&room);
        topics
            .on_received(move |_, event| {
                if let Some(room) = heard.upgrade() {
                    room.heard(event);
                }
            })
            .map_err(|e| e.to_string())?;
    }
    Ok(room)
}

/// The name of the room's topic.
const ROOM: &str = "room";

#[tokio::main]
async fn main() -> ExitCode {
    let [addr, bus] = match parse_flags(USAGE, [("--addr", "127.0.0.1:8080"), ("--bus", "")]) {
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
    let room = match room_topics(&bus).await.and_then(room) {
        Ok(room) => room,
        Err(e) => {
            eprintln!("error: --bus {bus}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let app = App {
        room,
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
    use typed_ws::{Client, Error, Frame, Session};

    use super::*;

    #[test]
    fn query_parameters_are_percent_decoded() {
        let query = Some("codec=json&name=Ad%C3%A1+L%2B&since=7");
        assert_eq!(param(query, "name").as_deref(), Some("Adá L+"));
        assert_eq!(param(query, "since").as_deref(), Some("7"));
        assert_eq!(param(Some("name=100%"), "name").as_deref(), Some("100%"));
        assert_eq!(param(Some("codec=json"), "name"), None);
        assert_eq!(param(Some("nickname=x"), "name"), None);
        assert_eq!(param(None, "name"), None);
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
            room: Arc::new(Room::new(1, Topics::new(), ROOM)),
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
        let heard = next(&mut ada).await;
        assert_eq!(
            heard,
            json!({"type": "message", "id": 0, "author": "ada", "text": "anyone?"})
        );
    }

    /// A room served on a free port; its `/ws` URL, without the query.
    async fn serve_room(room: Room) -> String {
        let app = App {
            room: Arc::new(room),
            config: Config::new().converter(AnyConverter::from(JsonConverter)),
        };
        let router = Router::new().route("/ws", get(ws)).with_state(app);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("ws://{}/ws", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        url
    }

    async fn next(session: &mut Session<AnyConverter>) -> Value {
        // The welcome, then the room's numbered stream: its outcome, skipped here, then events.
        loop {
            let frame: Value = within("an event", session.receive_deserialized())
                .await
                .expect("an event");
            if frame.get("outcome").is_some() {
                continue;
            }
            return match frame.get("data") {
                Some(event) => event.clone(),
                None => frame,
            };
        }
    }

    #[tokio::test]
    async fn everyone_sees_one_history_welcome_first() {
        let url = serve_room(Room::new(10, Topics::new(), ROOM)).await;
        let mut alice = connect(&format!("{url}?name=alice")).await;
        assert_eq!(
            next(&mut alice).await,
            json!({"type": "welcome", "name": "alice", "online": ["alice"]})
        );
        let mut bob = connect(&format!("{url}?name=alice")).await;
        assert_eq!(
            next(&mut bob).await,
            json!({"type": "welcome", "name": "alice (2)", "online": ["alice", "alice (2)"]})
        );
        assert_eq!(
            next(&mut alice).await,
            json!({"type": "joined", "name": "alice (2)"})
        );
        let message = |id: u64, author: &str, text: &str| json!({"type": "message", "id": id, "author": author, "text": text});
        within("say", alice.send_serialized(&json!({"text": "one"})))
            .await
            .unwrap();
        assert_eq!(next(&mut alice).await, message(0, "alice", "one"));
        within("say", bob.send_serialized(&json!({"text": "two"})))
            .await
            .unwrap();
        assert_eq!(next(&mut bob).await, message(0, "alice", "one"));
        assert_eq!(next(&mut bob).await, message(1, "alice (2)", "two"));
        assert_eq!(next(&mut alice).await, message(1, "alice (2)", "two"));
        drop(bob);
        assert_eq!(
            next(&mut alice).await,
            json!({"type": "left", "name": "alice (2)"})
        );
    }

    #[tokio::test]
    async fn a_page_that_lost_its_connection_is_given_what_it_missed() {
        let url = serve_room(Room::new(
            10,
            Topics::with_config(TopicConfig::new().history(History::last(100))),
            ROOM,
        ))
        .await;
        let mut alice = connect(&format!("{url}?name=alice")).await;
        let mut bob = connect(&format!("{url}?name=bob")).await;
        // Alice's frames as they come: welcome, outcome, `joined bob`, numbered.
        let mut frames = Vec::new();
        while frames.len() < 3 {
            let frame: Value = within("a frame", alice.receive_deserialized())
                .await
                .unwrap();
            frames.push(frame);
        }
        assert_eq!(frames[1]["outcome"], "live");
        assert_eq!(frames[2]["data"], json!({"type": "joined", "name": "bob"}));
        let (seq, epoch) = (frames[2]["seq"].as_u64().unwrap(), &frames[2]["epoch"]);
        drop(alice);
        for text in ["are you there?", "guess not"] {
            within("say", bob.send_serialized(&json!({ "text": text })))
                .await
                .unwrap();
        }
        let mut back = connect(&format!("{url}?name=alice&since={seq}&epoch={epoch}")).await;
        let welcome = next(&mut back).await;
        assert_eq!(welcome["type"], "welcome");
        let outcome: Value = within("the outcome", back.receive_deserialized())
            .await
            .unwrap();
        assert_eq!(outcome["outcome"], "recovered", "{outcome}");
        let mut missed = Vec::new();
        for _ in 0..outcome["count"].as_u64().unwrap() {
            missed.push(next(&mut back).await);
        }
        let texts: Vec<&Value> = missed.iter().filter_map(|e| e.get("text")).collect();
        assert_eq!(
            texts,
            [&json!("are you there?"), &json!("guess not")],
            "{missed:?}"
        );
        assert!(missed.contains(&json!({"type": "left", "name": "alice"})));
        assert!(missed.contains(&json!({"type": "joined", "name": "alice"})));
    }
}
