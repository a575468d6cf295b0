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

mod common;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use typed_ws::axum::WebSocketUpgrade;
use typed_ws::prelude::*;
use typed_ws::{
    AnyConverter, CloseCode, CloseReason, Compression, Config, Frame, JsonConverter,
    MsgPackConverter, Negotiation, RecvHalf, SendHalf,
};

use common::{log, parse_flags, usage_error};

const USAGE: &str = "usage: chat [--addr IP:PORT]
  --addr   the address to listen on (default 127.0.0.1:8080; port 0 picks a free one)";

const PAGE: &str = include_str!("chat/index.html");
const MSGPACK_JS: &str = include_str!("chat/msgpack.min.js");

/// The longest chat message, in bytes of its encoding: the page allows 2,000 characters.
const MAX_MESSAGE: usize = 16 << 10;

/// Events a participant may have queued before it counts as too slow and is let go: one
/// stalled browser must not make the room buffer without bound.
const OUTBOX: usize = 256;

/// The longest name, in characters.
const MAX_NAME: usize = 24;

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

#[derive(Deserialize)]
struct Join {
    #[serde(default)]
    name: String,
}

struct Member {
    name: String,
    converter: AnyConverter,
    outbox: mpsc::Sender<Frame>,
}

/// Everyone in the room. One lock orders every event, so all participants see one history.
#[derive(Default)]
struct Room {
    state: Mutex<RoomState>,
}

#[derive(Default)]
struct RoomState {
    next_member: u64,
    next_message: u64,
    /// Ordered by arrival, which is the order of the online list.
    members: BTreeMap<u64, Member>,
}

impl Room {
    fn lock(&self) -> std::sync::MutexGuard<'_, RoomState> {
        // A panic elsewhere cannot leave the map half-updated: every change is one call.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a participant under a name no one else in the room has, welcomes it and tells the
    /// others. Gives its id.
    fn join(&self, wanted: &str, converter: AnyConverter, outbox: mpsc::Sender<Frame>) -> u64 {
        let mut state = self.lock();
        let name = state.unique_name(wanted);
        let id = state.next_member;
        state.next_member += 1;
        state.broadcast(&Event::Joined { name: name.clone() });
        let online = state
            .members
            .values()
            .map(|m| m.name.clone())
            .chain([name.clone()]);
        let welcome = Event::Welcome {
            name: name.clone(),
            online: online.collect(),
        };
        let member = Member {
            name,
            converter,
            outbox,
        };
        if let Some(frame) = encode(converter, &welcome) {
            // A fresh outbox has room for one event.
            let _ = member.outbox.try_send(frame);
        }
        state.members.insert(id, member);
        id
    }

    fn say(&self, id: u64, text: &str) {
        let text = text.trim();
        let mut state = self.lock();
        let Some(author) = state.members.get(&id).map(|m| m.name.clone()) else {
            return;
        };
        if text.is_empty() {
            return;
        }
        let message_id = state.next_message;
        state.next_message += 1;
        state.broadcast(&Event::Message {
            id: message_id,
            author,
            text: text.to_owned(),
        });
    }

    fn leave(&self, id: u64) {
        self.lock().remove(id);
    }
}

impl RoomState {
    fn unique_name(&self, wanted: &str) -> String {
        let wanted: String = wanted.trim().chars().take(MAX_NAME).collect();
        let wanted = if wanted.is_empty() {
            "guest".to_owned()
        } else {
            wanted
        };
        let taken = |name: &str| self.members.values().any(|m| m.name == name);
        let mut name = wanted.clone();
        let mut n = 2;
        while taken(&name) {
            name = format!("{wanted} ({n})");
            n += 1;
        }
        name
    }

    /// Queues `event` for every member, encoding it once per codec in use. A member whose
    /// outbox is full (or whose writer has ended) leaves the room, and the others hear it.
    fn broadcast(&mut self, event: &Event) {
        let mut encoded: Vec<(AnyConverter, Frame)> = Vec::new();
        let mut gone = Vec::new();
        for (&id, member) in &self.members {
            let frame = match encoded.iter().find(|(c, _)| *c == member.converter) {
                Some((_, frame)) => frame.clone(),
                None => {
                    let Some(frame) = encode(member.converter, event) else {
                        continue;
                    };
                    encoded.push((member.converter, frame.clone()));
                    frame
                }
            };
            if member.outbox.try_send(frame).is_err() {
                gone.push(id);
            }
        }
        for id in gone {
            self.remove(id);
        }
    }

    fn remove(&mut self, id: u64) {
        if let Some(member) = self.members.remove(&id) {
            self.broadcast(&Event::Left { name: member.name });
        }
    }
}

fn encode(converter: AnyConverter, event: &Event) -> Option<Frame> {
    converter
        .serialize(event)
        .inspect_err(|e| log(format!("cannot encode an event: {e}")))
        .ok()
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

/// The WebSocket route. The name comes from the query string, read by axum's own extractor
/// beside the upgrade.
async fn ws(
    upgrade: WebSocketUpgrade,
    Query(join): Query<Join>,
    State(app): State<App>,
) -> Response {
    upgrade.on_upgrade(&app.config, move |session| async move {
        let converter = *session.converter();
        let (mut sender, mut receiver) = session.split();
        let (outbox, mut queued) = mpsc::channel(OUTBOX);
        let id = app.room.join(&join.name, converter, outbox);
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
    // Chat messages are small and one at a time: latency matters more than packet count.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });

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
        room: Arc::default(),
        config,
    };
    let router = Router::new()
        .route("/", get(page))
        .route("/msgpack.min.js", get(msgpack_js))
        .route("/ws", get(ws))
        .with_state(app);

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
    if let Err(e) = axum::serve(listener, router).await {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
