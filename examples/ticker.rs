//! A price ticker: publishers send `Tick`s to a topic, and every subscriber of the topic gets
//! them, on this node and, with `--bus`, on every node connected to the same broker.
//!
//! ```text
//! cargo run --example ticker --all-features -- --listen 127.0.0.1:0 --codec msgpack,json \
//!     [--bus nats://127.0.0.1:4222 | --bus redis://127.0.0.1:6379] [--compress] \
//!     [--policy disconnect|drop-oldest|conflate] [--history N] [--history-age SECONDS] \
//!     [--max-connections N]
//! ```
//!
//! When it is ready it prints one line on stdout: `listening on ws://IP:PORT`. Then:
//! - `ws://IP:PORT/topics/{name}` is a subscriber: it gets every `Tick` published to `{name}`
//!   from its handshake on, and sends nothing (what it sends is ignored);
//! - `ws://IP:PORT/publish/{name}` is a publisher: every message it sends is one `Tick`,
//!   published to `{name}` on every node; nothing is sent back. A message that is not a
//!   `Tick` closes it with 1007, the wrong kind of frame with 1003;
//! - `ws://IP:PORT/topics/{name}?since={seq}&epoch={epoch}` is a subscriber that comes back:
//!   its first frame tells the outcome, `{"outcome": "recovered", "count": N, "seq": S,
//!   "epoch": E}` when the ticks after `since` are still kept (they follow, N of them, then the
//!   live ones) or `{"outcome": "reset", ...}` when they are not (the live ones follow); then
//!   each tick comes numbered, `{"seq": S, "epoch": E, "data": TICK}`, to come back with.
//!   `?since=now` (or a `since` without `epoch`) starts the numbered stream from now on, with
//!   the outcome `live`. Each topic keeps its last `--history` ticks (default 10,000) for at
//!   most `--history-age` seconds (default 300); the epoch changes when the process restarts.
//!   With `--bus redis://...`, Redis numbers and keeps the ticks (a stream per topic): the
//!   numbers are the same on every node, so a subscriber comes back to any of them, and the
//!   epoch changes only when Redis loses its data; if Redis cannot be reached to read what
//!   was missed, the subscriber is closed with 1013 (try again later). With `--bus nats://...`,
//!   numbers are each node's own: come back to the node you left;
//! - any other path is refused with HTTP 404.
//!
//! `Tick` has the named fields `seq` (u64), `sent_at_us` (u64, µs since the Unix epoch at
//! sending), `symbol` (string), `price` (f64) and `size` (u64): JSON in text frames, CBOR or
//! MessagePack (string-keyed maps) in binary frames, negotiated per session through the
//! subprotocol as `echo_server` does (`--codec` lists the codecs in order of preference; a
//! client that offers none gets the first). `--compress` accepts permessage-deflate, asking
//! for no context takeover on the server's side, so that a tick is compressed once for all
//! the subscribers that compress alike rather than once per subscriber.
//!
//! A subscriber whose socket does not keep up is treated by `--policy`: `disconnect` (the
//! default) closes it with 1008 once 1,024 ticks wait for it; `drop-oldest` drops the oldest
//! waiting tick for each new one; `conflate` keeps only the latest tick per symbol. Stop it
//! with Ctrl-C or SIGTERM: every session is closed with 1001. It serves at most
//! `--max-connections` sessions at once (default 10,000, `Config`'s default); a handshake past
//! them waits for a place, within the handshake deadline.

mod common;

use std::process::ExitCode;
use std::time::Duration;

use common::{OFF, ON, close_for, log, parse_codecs, parse_flags, shutdown_signal, usage_error};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use typed_ws::http::{Request, StatusCode};
use typed_ws::topics::{History, Outbox, Policy, Position, Topic, TopicConfig, Topics};
use typed_ws::{AnyConverter, CloseCode, CloseReason, Compression, Config, Server, Session};

const USAGE: &str = "usage: ticker [--listen IP:PORT] [--codec json|cbor|msgpack[,...]] [--bus URL]
              [--compress] [--policy disconnect|drop-oldest|conflate]
  --listen    the address to listen on (default 127.0.0.1:8080; port 0 picks a free one)
  --codec     how ticks are encoded (default json); a list is negotiated in that order
              through the subprotocol, and clients that offer none get the first
  --bus       nats://HOST:PORT or redis://HOST:PORT: ticks reach subscribers on every
              node connected to that broker (default: this process only)
  --compress  accept permessage-deflate compression from clients that offer it
  --policy    what happens to a subscriber that does not keep up (default disconnect)
  --history   how many ticks each topic keeps for subscribers that come back (default 10000)
  --history-age  how long, in seconds, a tick is kept for them at most (default 300)
  --max-connections  how many sessions are served at once (default 10000)";

/// One price update.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Tick {
    seq: u64,
    sent_at_us: u64,
    symbol: String,
    price: f64,
    size: u64,
}

/// The largest tick a publisher may send: a tick is a few dozen bytes, and a small limit
/// bounds what one publisher can make the server hold.
const MAX_MESSAGE: usize = 64 << 10;

/// Where the bus's publications of this example go on the broker.
const NAMESPACE: &str = "ticker";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

async fn run() -> Result<(), ExitCode> {
    let [
        listen,
        codec,
        bus,
        compress,
        policy,
        history,
        history_age,
        max_connections,
    ] = parse_flags(
        USAGE,
        [
            ("--listen", "127.0.0.1:8080"),
            ("--codec", "json"),
            ("--bus", ""),
            ("--compress", OFF),
            ("--policy", "disconnect"),
            ("--history", "10000"),
            ("--history-age", "300"),
            ("--max-connections", "10000"),
        ],
    )?;
    let addr: std::net::SocketAddr = listen.parse().map_err(|_| {
        usage_error(
            USAGE,
            &format!("--listen {listen:?} is not an IP:PORT address"),
        )
    })?;
    let policy = match policy.as_str() {
        "disconnect" => Policy::disconnect(),
        "drop-oldest" => Policy::drop_oldest(),
        "conflate" => Policy::conflate(|tick: &Tick| tick.symbol.clone()),
        other => return Err(usage_error(USAGE, &format!("unknown --policy {other:?}"))),
    };
    let mut config = Config::new()
        .negotiate(parse_codecs(&codec, USAGE)?)
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE);
    if compress == ON {
        // Each tick compressed on its own (no context takeover on our side): the same bytes
        // for every subscriber, so a tick is compressed once, not once per subscriber.
        config = config.compression(Compression::new().no_context_takeover());
    }
    let number = |flag: &str, value: &str| {
        value
            .parse::<u64>()
            .map_err(|_| usage_error(USAGE, &format!("{flag} {value:?} is not a number")))
    };
    config = config.max_connections(number("--max-connections", &max_connections)? as usize);
    let mut history = History::last(number("--history", &history)? as usize)
        .max_age(Duration::from_secs(number("--history-age", &history_age)?));
    if bus.starts_with("redis://") {
        // Redis keeps the ticks: a subscriber comes back to any node.
        history = history.on_broker();
    }
    let topics = TopicConfig::new().policy(policy).history(history);
    let topics = on_bus(Topics::with_config(topics), &bus).await?;

    let listener = TcpListener::bind(addr).await.map_err(|e| {
        eprintln!("error: cannot listen on {addr}: {e}");
        ExitCode::FAILURE
    })?;
    let bound = listener.local_addr().map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    })?;
    let stop = shutdown_signal();
    announce(bound)?;

    Server::new(config)
        .on_failure(|failure| log(failure.to_string()))
        .serve_with(listener, known_path, move |session| {
            serve(session, topics.clone())
        })
        .with_graceful_shutdown(stop)
        .await;
    Ok(())
}

/// Puts the topics on the broker at `url`, when one is given.
async fn on_bus(topics: Topics<Tick>, url: &str) -> Result<Topics<Tick>, ExitCode> {
    if url.is_empty() {
        return Ok(topics);
    }
    #[cfg(any(feature = "nats", feature = "redis"))]
    {
        let fail = |e: typed_ws::Error| {
            eprintln!("error: --bus {url}: {}", e.report());
            ExitCode::FAILURE
        };
        let bus = typed_ws::bus::Bus::connect(url).await.map_err(fail)?;
        topics.bus(&bus, NAMESPACE).map_err(fail)
    }
    #[cfg(not(any(feature = "nats", feature = "redis")))]
    {
        let _ = (topics, NAMESPACE);
        Err(usage_error(
            USAGE,
            "--bus needs the example built with `--features nats` or `--features redis`",
        ))
    }
}

/// What a request asks for: to subscribe to a topic or to publish to one.
enum Role<'a> {
    Subscribe(&'a str),
    Publish(&'a str),
}

fn role(path: &str) -> Option<Role<'_>> {
    // Each name subscribed to makes a topic that stays: a short name bounds what a client can
    // make the server keep.
    let named = |name: &'_ str| !name.is_empty() && name.len() <= 64 && !name.contains('/');
    if let Some(name) = path.strip_prefix("/topics/").filter(|n| named(n)) {
        return Some(Role::Subscribe(name));
    }
    path.strip_prefix("/publish/")
        .filter(|n| named(n))
        .map(Role::Publish)
}

fn known_path(request: &Request<()>) -> Result<(), StatusCode> {
    role(request.uri().path())
        .map(|_| ())
        .ok_or(StatusCode::NOT_FOUND)
}

async fn serve(session: Session<AnyConverter>, topics: Topics<Tick>) {
    let path = session.path().unwrap_or_default().to_owned();
    let since = session.query().and_then(resume_from);
    match role(&path) {
        Some(Role::Subscribe(name)) => subscribe(session, topics.topic(name), since).await,
        Some(Role::Publish(name)) => publish(session, &topics, name).await,
        None => {}
    }
}

/// What a subscriber's query asks for: `None` for plain ticks, `Some(None)` for the numbered
/// stream from now on, `Some(Some(position))` to come back after `position`.
fn resume_from(query: &str) -> Option<Option<Position>> {
    let mut since = None;
    let mut epoch = None;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("since", value)) => since = Some(value),
            Some(("epoch", value)) => epoch = Some(value),
            _ => {}
        }
    }
    let since = since?;
    let position = match (since.parse(), epoch.map(str::parse)) {
        (Ok(seq), Some(Ok(epoch))) => Some(Position { epoch, seq }),
        _ => None,
    };
    Some(position)
}

/// Subscribes the session until it ends; what it sends is read (so that pings, pongs and its
/// close are answered) and dropped.
async fn subscribe(
    session: Session<AnyConverter>,
    topic: Topic<Tick>,
    since: Option<Option<Position>>,
) {
    let (tx, mut rx) = session.split();
    let outbox = Outbox::new(tx);
    let subscribed = match since {
        None => topic.subscribe(&outbox),
        Some(since) => topic.subscribe_since(&outbox, since).await.map(|_| ()),
    };
    if let Err(e) = subscribed {
        // The history on the broker cannot be read now: the client comes back later with
        // the same position, and loses nothing.
        outbox.close(CloseReason::new(CloseCode::TryAgainLater, e.to_string()));
        while rx.receive().await.is_ok() {}
        return;
    }
    while rx.receive().await.is_ok() {}
}

/// Publishes every tick the session sends, until it ends or sends something else.
async fn publish(mut session: Session<AnyConverter>, topics: &Topics<Tick>, name: &str) {
    let error = loop {
        match session.receive_deserialized::<Tick>().await {
            Ok(tick) => {
                if let Err(e) = topics.publish(name, &tick) {
                    break e;
                }
            }
            Err(e) => break e,
        }
    };
    close_for(session, &error).await;
}

/// Prints `listening on ws://ADDR`, flushed: scripts wait for this line before they connect.
fn announce(bound: std::net::SocketAddr) -> Result<(), ExitCode> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on ws://{bound}")
        .and_then(|()| stdout.flush())
        .map_err(|e| {
            eprintln!("error: cannot write to stdout: {e}");
            ExitCode::FAILURE
        })
}
