//! permessage-deflate (RFC 7692): bytes on the wire and CPU per message, compressed against
//! the same typed-ws session without compression (`Config::new()`), which is what a user would
//! otherwise run; beside them, Python `websockets` with its own compression, measured the same
//! way.
//!
//! Workloads (deterministic, generated here and in `common`, no data files):
//! - **chat JSON**: a stream of 1,000 distinct `ChatMessage`s, `send_serialized` with
//!   `JsonConverter`: ids that rise by 1-3, eight authors of uneven activity, texts of 1 to 40
//!   words (most under 15) drawn from ~200 common words with a skew towards the frequent ones,
//!   with numbers, @mentions and random letter words (names, jargon, typos) mixed in, a channel
//!   tag and sometimes a second one, and a reply to one of the last ten messages in 30% of
//!   them; about 130 bytes each. Never the same message twice, which would flatter
//!   compression.
//! - **chat MessagePack**: the same stream with `MsgPackConverter::new()` (named fields).
//! - **4 KiB JSON**: 200 `ChatBatch`es (the `medium` shape of `common`: a channel and chat
//!   messages), each filled with the next messages of another such stream up to 4,096 bytes.
//! - **64 KiB JSON**: 50 `Logs` documents (the `logs` shape of `common`: HTTP access-log
//!   records), consecutive records filled up to 65,536 bytes each.
//!
//! Setups: `uncompressed` (`Config::new()` on both ends), `deflate` (`Compression::new()`:
//! context takeover both ways, level 7, 15-bit windows, threshold 32 bytes) and `deflate, no
//! context` (`Compression::new().no_context_takeover().peer_no_context_takeover()`), the same
//! settings on client and server. `-- --levels` adds levels 1, 6 and 9 with context takeover.
//!
//! Bytes: a typed-ws client sends the stream to a typed-ws echo server (`receive` then `send`
//! of the same frame) through a relay on loopback: tokio tasks copying each direction and
//! counting what they copy. The HTTP heads of the handshake (up to the first blank line in each
//! direction) are not counted, and the counters are read once the last echo has arrived, before
//! the close: what is left is the data frames, headers included (client frames carry a 4-byte
//! masking key, so client→server is about 4 bytes a message above server→client). Bytes do
//! not depend on timing, so one pass is measured.
//!
//! CPU: the same exchange without the relay (a direct loopback connection), client and server
//! tasks in one current-thread tokio runtime, so that the thread's CPU time
//! (`/proc/thread-self/schedstat`, nanoseconds) is all of both ends: the client's encode,
//! compression and send, the server's receive, inflate, compression and send back, the
//! client's receive, inflate and decode, and the syscalls of both. A figure is per echoed
//! message, so two transfers of it; at most 64 messages await their echo (the client's
//! sending and receiving run side by side, as in a chat client), which keeps wake-ups from
//! hiding the codec and the compressor. Each measurement sends the stream several times over
//! (chat 5, 4 KiB 2, 64 KiB 2), from after the handshake to the last echo; 5 rounds, setups in
//! an order that turns each round; the figure is the median, the ratio the median over the
//! rounds of compressed / uncompressed within a round, with the lowest and highest round.
//!
//! Python: `benches/compression_peer.py` (the venv of `tests/peers/install.sh`) sends the JSON
//! streams, the very bytes typed-ws sends, as text messages through the same relay to the
//! same typed-ws server (the one with `Compression::new()`), with `websockets`' default
//! compression and with `compression=None`; its ratio is against its own uncompressed run.
//! Its CPU column is Python against Python (a `websockets` client and echo server in one
//! thread, `time.thread_time_ns`), measured as above: absolute figures are the interpreter's,
//! its ratio is what compression costs there. Without the venv the Python table is skipped,
//! with a line saying so.
//!
//! Goal (the issue): JSON chat with context takeover at most 0.35x the uncompressed bytes
//! client→server; the bench exits 1 when it is missed. `-- --test` (CI) sends a few messages
//! of each workload once, skips Python and judges nothing.
//!
//! ```text
//! cargo bench -p benches --bench compression
//! cargo bench -p benches --bench compression -- --levels   # also levels 1, 6 and 9
//! cargo bench -p benches --bench compression -- --test     # quick smoke run
//! ```

mod common;

use std::fmt::Debug;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{ChatBatch, ChatMessage, Log, Logs, Rng, logs};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use typed_ws::{
    Client, CloseCode, CloseReason, Compression, Config, Converter, Frame, JsonConverter,
    MsgPackConverter, Server,
};

const ROUNDS: usize = 5;
/// Messages awaiting their echo, at most.
const WINDOW: usize = 64;
/// The issue's goal for JSON chat with context takeover, client→server.
const GOAL: f64 = 0.35;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let test = args.iter().any(|a| a == "--test");
    let levels = args.iter().any(|a| a == "--levels");
    let started = Instant::now();
    let workloads = workloads(test);
    let setups = setups(levels);
    let rounds = if test { 1 } else { ROUNDS };
    let runtime = common::runtime();
    let results = runtime.block_on(measure(&workloads, &setups, rounds, test));
    let missed = report(&workloads, &setups, &results);
    println!();
    println!("Ran in {:.1} s.", started.elapsed().as_secs_f64());
    if missed && !test {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

// ---- the workloads ----

enum Items {
    Chat(Vec<ChatMessage>),
    Batches(Vec<ChatBatch>),
    Logs(Vec<Logs>),
}

struct Workload {
    name: &'static str,
    msgpack: bool,
    items: Items,
    /// How many times one CPU measurement sends the stream.
    passes: usize,
}

impl Workload {
    fn len(&self) -> usize {
        match &self.items {
            Items::Chat(items) => items.len(),
            Items::Batches(items) => items.len(),
            Items::Logs(items) => items.len(),
        }
    }

    /// Each message as the client's converter encodes it.
    fn encoded(&self) -> Vec<Vec<u8>> {
        fn each<T: Serialize>(items: &[T], msgpack: bool) -> Vec<Vec<u8>> {
            items
                .iter()
                .map(|item| {
                    if msgpack {
                        rmp_serde::to_vec_named(item).expect("msgpack")
                    } else {
                        serde_json::to_vec(item).expect("json")
                    }
                })
                .collect()
        }
        match &self.items {
            Items::Chat(items) => each(items, self.msgpack),
            Items::Batches(items) => each(items, self.msgpack),
            Items::Logs(items) => each(items, self.msgpack),
        }
    }
}

fn workloads(test: bool) -> Vec<Workload> {
    let (chats, batches, documents, passes) = if test {
        (50, 5, 2, [1, 1, 1])
    } else {
        (1000, 200, 50, [5, 2, 2])
    };
    let mut stream = ChatStream::new(0xc4a7);
    let chat: Vec<ChatMessage> = (0..chats).map(|_| stream.next()).collect();
    vec![
        Workload {
            name: "chat JSON",
            msgpack: false,
            items: Items::Chat(chat.clone()),
            passes: passes[0],
        },
        Workload {
            name: "chat MessagePack",
            msgpack: true,
            items: Items::Chat(chat),
            passes: passes[0],
        },
        Workload {
            name: "4 KiB JSON",
            msgpack: false,
            items: Items::Batches(chat_batches(batches, 4 << 10)),
            passes: passes[1],
        },
        Workload {
            name: "64 KiB JSON",
            msgpack: false,
            items: Items::Logs(log_documents(documents, 64 << 10)),
            passes: passes[2],
        },
    ]
}

const AUTHORS: [&str; 8] = [
    "grace", "ada", "linus", "barbara", "alan", "margaret", "ken", "edsger",
];
const CHANNELS: [&str; 5] = ["general", "dev", "random", "ops", "design"];
const LABELS: [&str; 6] = ["question", "bug", "release", "urgent", "thread", "idea"];
/// Common words, the most frequent first.
const WORDS: [&str; 200] = [
    "the",
    "i",
    "to",
    "a",
    "it",
    "is",
    "you",
    "and",
    "that",
    "of",
    "in",
    "we",
    "this",
    "for",
    "on",
    "not",
    "be",
    "ok",
    "so",
    "have",
    "but",
    "with",
    "just",
    "can",
    "do",
    "are",
    "yes",
    "was",
    "if",
    "think",
    "no",
    "what",
    "at",
    "now",
    "my",
    "will",
    "me",
    "there",
    "all",
    "about",
    "should",
    "one",
    "from",
    "like",
    "get",
    "or",
    "thanks",
    "it's",
    "out",
    "i'm",
    "know",
    "up",
    "an",
    "as",
    "they",
    "would",
    "see",
    "sure",
    "don't",
    "then",
    "build",
    "time",
    "need",
    "yeah",
    "how",
    "still",
    "test",
    "more",
    "some",
    "also",
    "works",
    "when",
    "going",
    "good",
    "because",
    "any",
    "look",
    "make",
    "fix",
    "why",
    "been",
    "here",
    "server",
    "could",
    "which",
    "release",
    "today",
    "did",
    "again",
    "try",
    "new",
    "only",
    "right",
    "by",
    "back",
    "tomorrow",
    "branch",
    "let",
    "has",
    "after",
    "had",
    "them",
    "other",
    "change",
    "into",
    "something",
    "error",
    "maybe",
    "check",
    "before",
    "work",
    "review",
    "merge",
    "want",
    "same",
    "way",
    "nice",
    "please",
    "issue",
    "config",
    "first",
    "lol",
    "deploy",
    "version",
    "help",
    "were",
    "problem",
    "code",
    "down",
    "people",
    "can't",
    "over",
    "anyone",
    "logs",
    "running",
    "update",
    "said",
    "next",
    "meeting",
    "where",
    "last",
    "than",
    "bit",
    "old",
    "week",
    "memory",
    "ci",
    "PR",
    "morning",
    "pushed",
    "seems",
    "wrong",
    "client",
    "looks",
    "might",
    "fine",
    "sorry",
    "idea",
    "pretty",
    "actually",
    "file",
    "who",
    "broken",
    "slow",
    "tests",
    "lunch",
    "done",
    "agree",
    "probably",
    "latency",
    "database",
    "message",
    "users",
    "crash",
    "patch",
    "minute",
    "around",
    "better",
    "said",
    "feature",
    "night",
    "great",
    "weird",
    "call",
    "flaky",
    "rollback",
    "staging",
    "cache",
    "dashboard",
    "ticket",
    "benchmark",
    "docs",
    "timeout",
    "endpoint",
    "migration",
    "alert",
    "queue",
    "script",
    "question",
    "coffee",
];

/// An index into a list of `n`, skewed towards the front: about `ln(n / i) / n` for `i`.
fn skewed(rng: &mut Rng, n: usize) -> usize {
    let k = rng.below(n);
    rng.below(k + 1)
}

/// A chat room's messages, one after another.
struct ChatStream {
    rng: Rng,
    id: u64,
    recent: Vec<u64>,
}

impl ChatStream {
    fn new(seed: u64) -> ChatStream {
        ChatStream {
            rng: Rng::new(seed),
            id: 48_213_907,
            recent: Vec::new(),
        }
    }

    fn next(&mut self) -> ChatMessage {
        let rng = &mut self.rng;
        self.id += 1 + rng.below(3) as u64;
        let author = AUTHORS[skewed(rng, AUTHORS.len())].to_owned();
        let mut tags = vec![CHANNELS[skewed(rng, CHANNELS.len())].to_owned()];
        if rng.below(4) == 0 {
            tags.push(LABELS[rng.below(LABELS.len())].to_owned());
        }
        let reply_to = (rng.below(10) < 3 && !self.recent.is_empty()).then(|| {
            let back = rng.below(self.recent.len().min(10));
            self.recent[self.recent.len() - 1 - back]
        });
        let text = self.text();
        self.recent.push(self.id);
        ChatMessage {
            id: self.id,
            author,
            text,
            tags,
            reply_to,
        }
    }

    fn text(&mut self) -> String {
        let rng = &mut self.rng;
        let words = match rng.below(10) {
            0..=3 => 1 + rng.below(5),
            4..=7 => 6 + rng.below(10),
            _ => 16 + rng.below(25),
        };
        let mut text = String::new();
        let mut capital = rng.below(10) < 7;
        for i in 0..words {
            if i > 0 {
                text.push(' ');
            }
            let word = match rng.below(100) {
                0..=84 => WORDS[skewed(rng, WORDS.len())].to_owned(),
                85..=89 => rng.below(10_000).to_string(),
                90..=91 => format!("@{}", AUTHORS[rng.below(AUTHORS.len())]),
                _ => rng.word(3, 11),
            };
            let mut chars = word.chars();
            if capital && let Some(first) = chars.next() {
                text.extend(first.to_uppercase());
                text.push_str(chars.as_str());
            } else {
                text.push_str(&word);
            }
            capital = false;
            if i + 1 < words && rng.below(12) == 0 {
                capital = rng.below(3) > 0;
                text.push(if capital { '.' } else { ',' });
            }
        }
        text.push_str(["", "", ".", "?", "!", " :)", "..."][rng.below(7)]);
        text
    }
}

/// `count` batches of consecutive chat messages, each as many as fit in `limit` bytes of JSON.
fn chat_batches(count: usize, limit: usize) -> Vec<ChatBatch> {
    let mut stream = ChatStream::new(0xba7c4);
    let mut next = stream.next();
    (0..count)
        .map(|i| {
            let mut batch = ChatBatch {
                channel: format!("#{}", CHANNELS[i % CHANNELS.len()]),
                messages: Vec::new(),
            };
            // `{"channel":"…","messages":[…]}`: the messages, a comma between each two.
            let mut size = serde_json::to_vec(&batch).expect("json").len() - 1;
            loop {
                let len = serde_json::to_vec(&next).expect("json").len() + 1;
                if size + len > limit {
                    break;
                }
                size += len;
                batch
                    .messages
                    .push(std::mem::replace(&mut next, stream.next()));
            }
            batch
        })
        .collect()
}

/// `count` documents of consecutive log records, each as many as fit in `limit` bytes of JSON.
fn log_documents(count: usize, limit: usize) -> Vec<Logs> {
    let per_document = limit / 150;
    let mut records = logs(count * per_document).logs.into_iter().peekable();
    let size = |log: &Log| serde_json::to_vec(log).expect("json").len() + 1;
    let documents: Vec<Logs> = (0..count)
        .map(|_| {
            let mut document = Logs { logs: Vec::new() };
            let mut total = serde_json::to_vec(&document).expect("json").len() - 1;
            while let Some(log) = records.next_if(|log| total + size(log) <= limit) {
                total += size(&log);
                document.logs.push(log);
            }
            document
        })
        .collect();
    assert!(
        records.peek().is_some(),
        "too few log records generated for full documents"
    );
    documents
}

// ---- the setups ----

struct Setup {
    name: &'static str,
    compression: Option<Compression>,
}

fn setups(levels: bool) -> Vec<Setup> {
    let mut setups = vec![
        Setup {
            name: "uncompressed",
            compression: None,
        },
        Setup {
            name: "deflate",
            compression: Some(Compression::new()),
        },
        Setup {
            name: "deflate, no context",
            compression: Some(
                Compression::new()
                    .no_context_takeover()
                    .peer_no_context_takeover(),
            ),
        },
    ];
    if levels {
        for (name, level) in [
            ("deflate, level 1", 1),
            ("deflate, level 6", 6),
            ("deflate, level 9", 9),
        ] {
            setups.push(Setup {
                name,
                compression: Some(Compression::new().level(level)),
            });
        }
    }
    setups
}

// ---- measuring ----

/// Bytes of data frames copied by the relay, each direction, the handshake's heads left out.
#[derive(Default)]
struct Counts {
    to_server: AtomicU64,
    to_client: AtomicU64,
}

#[derive(Clone, Copy, Default)]
struct Wire {
    to_server: u64,
    to_client: u64,
}

impl Counts {
    fn read(&self) -> Wire {
        Wire {
            to_server: self.to_server.load(Ordering::SeqCst),
            to_client: self.to_client.load(Ordering::SeqCst),
        }
    }
}

/// A relay for one connection to `target`: its address and its counters.
async fn relay(target: SocketAddr) -> (SocketAddr, Arc<Counts>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let counts = Arc::new(Counts::default());
    let counting = counts.clone();
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.expect("accept");
        let server = TcpStream::connect(target).await.expect("connect");
        client.set_nodelay(true).expect("nodelay");
        server.set_nodelay(true).expect("nodelay");
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        tokio::join!(
            pump(client_read, server_write, &counting.to_server),
            pump(server_read, client_write, &counting.to_client),
        );
    });
    (addr, counts)
}

/// Copies one direction, counting what follows the HTTP head (its first blank line). Bytes
/// are counted when read, before they are passed on, so that once a message has arrived its
/// bytes are in the count.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, count: &AtomicU64) {
    let mut buffer = vec![0; 64 << 10];
    let mut head = Some(Vec::new());
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        let mut data = read;
        if let Some(seen) = &mut head {
            seen.extend_from_slice(&buffer[..read]);
            match seen.windows(4).position(|w| w == b"\r\n\r\n") {
                Some(end) => {
                    data = seen.len() - (end + 4);
                    head = None;
                }
                None => data = 0,
            }
        }
        count.fetch_add(data as u64, Ordering::SeqCst);
        if to.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// This thread's CPU time in nanoseconds; `None` where Linux's schedstat is missing. Linux
/// adds a running thread's time to the figure when the thread leaves the CPU, not when the
/// file is read (a read in the middle of busy work can return the same figure as a read
/// milliseconds before), so the thread sleeps for a moment first.
fn thread_cpu_ns() -> Option<u64> {
    std::thread::sleep(Duration::from_micros(10));
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A typed-ws echo server: every data message received is sent back as it came.
async fn echo_server(compression: Option<Compression>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let config = match compression {
        Some(compression) => Config::new().compression(compression),
        None => Config::new(),
    };
    tokio::spawn(async move {
        Server::new(config)
            .serve(listener, |mut session| async move {
                loop {
                    match session.receive().await {
                        Ok(frame @ (Frame::Text(_) | Frame::Binary(_))) => {
                            if session.send(frame).await.is_err() {
                                break;
                            }
                        }
                        Ok(Frame::Close(_)) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            })
            .await
    });
    addr
}

/// What one exchange measured.
struct Exchange {
    /// CPU time of both ends, nanoseconds, from after the handshake to the last echo.
    cpu_ns: Option<u64>,
    /// The relay's counts at the last echo.
    wire: Wire,
}

/// The workload's stream from a typed-ws client with `compression` to `addr`, `passes`
/// times; `counts`, the relay's if there is one, are read at the last echo.
async fn exchange(
    workload: &Workload,
    addr: SocketAddr,
    compression: Option<Compression>,
    passes: usize,
    counts: Option<&Counts>,
) -> Exchange {
    fn config<C>(converter: C, compression: Option<Compression>) -> Config<C> {
        let config = Config::new().converter(converter);
        match compression {
            Some(compression) => config.compression(compression),
            None => config,
        }
    }
    let check = counts.is_some();
    let compressing = compression.is_some();
    match (&workload.items, workload.msgpack) {
        (Items::Chat(items), false) => {
            let config = config(JsonConverter, compression);
            echo(config, compressing, addr, items, passes, check, counts).await
        }
        (Items::Chat(items), true) => {
            let config = config(MsgPackConverter::new(), compression);
            echo(config, compressing, addr, items, passes, check, counts).await
        }
        (Items::Batches(items), _) => {
            let config = config(JsonConverter, compression);
            echo(config, compressing, addr, items, passes, check, counts).await
        }
        (Items::Logs(items), _) => {
            let config = config(JsonConverter, compression);
            echo(config, compressing, addr, items, passes, check, counts).await
        }
    }
}

async fn echo<C, T>(
    config: Config<C>,
    compression: bool,
    addr: SocketAddr,
    items: &[T],
    passes: usize,
    check: bool,
    counts: Option<&Counts>,
) -> Exchange
where
    C: Converter + Send + Sync + 'static,
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let compressing = compression;
    let session = Client::new(config)
        .web_socket_session(format!("ws://{addr}/"))
        .await
        .expect("connect");
    assert_eq!(
        session.compression().is_some(),
        compressing,
        "compression was not agreed as configured"
    );
    let (mut tx, mut rx) = session.split();
    let window = Semaphore::new(WINDOW);
    let before = thread_cpu_ns();
    let send = async {
        for _ in 0..passes {
            for item in items {
                window.acquire().await.expect("window").forget();
                tx.send_serialized(item).await.expect("send");
            }
        }
    };
    let receive = async {
        for _ in 0..passes {
            for item in items {
                let echoed: T = rx.receive_deserialized().await.expect("echo");
                if check {
                    assert_eq!(&echoed, item, "the echo differs");
                }
                window.add_permits(1);
            }
        }
    };
    tokio::join!(send, receive);
    let cpu_ns = thread_cpu_ns()
        .zip(before)
        .map(|(after, before)| after - before);
    let wire = counts.map(Counts::read).unwrap_or_default();
    let _ = tx.close(CloseReason::new(CloseCode::Normal, "")).await;
    while rx.receive().await.is_ok() {}
    Exchange { cpu_ns, wire }
}

/// Everything measured, per workload and setup.
struct Results {
    wire: Vec<Vec<Wire>>,
    /// CPU nanoseconds per echoed message, one per round; empty without schedstat.
    cpu: Vec<Vec<Vec<f64>>>,
    python: Python,
}

enum Python {
    Skipped(String),
    Ran(Vec<PythonRun>),
}

struct PythonRun {
    workload: usize,
    extensions: String,
    plain: Wire,
    compressed: Wire,
    /// Nanoseconds per echoed message, Python against Python: (off, on) per round.
    cpu: Vec<(f64, f64)>,
    cpu_extensions: String,
}

async fn measure(workloads: &[Workload], setups: &[Setup], rounds: usize, test: bool) -> Results {
    let mut servers = Vec::new();
    for setup in setups {
        servers.push(echo_server(setup.compression).await);
    }
    let mut wire = Vec::new();
    for workload in workloads {
        let mut row = Vec::new();
        for (setup, &server) in setups.iter().zip(&servers) {
            let (addr, counts) = relay(server).await;
            let run = exchange(workload, addr, setup.compression, 1, Some(&counts)).await;
            row.push(run.wire);
        }
        wire.push(row);
    }
    let mut cpu = vec![vec![Vec::new(); setups.len()]; workloads.len()];
    for round in 0..rounds {
        eprintln!("round {}/{rounds}", round + 1);
        for (w, workload) in workloads.iter().enumerate() {
            for s in (0..setups.len()).cycle().skip(round).take(setups.len()) {
                let setup = &setups[s];
                let run = exchange(
                    workload,
                    servers[s],
                    setup.compression,
                    workload.passes,
                    None,
                );
                if let Some(ns) = run.await.cpu_ns {
                    cpu[w][s].push(ns as f64 / (workload.passes * workload.len()) as f64);
                }
            }
        }
    }
    let python = if test {
        Python::Skipped("skipped under --test".to_owned())
    } else {
        python(workloads, servers[1], rounds).await
    };
    Results { wire, cpu, python }
}

// ---- Python ----

/// The repository, one up from this package.
fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn peers_dir() -> PathBuf {
    let root = root();
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), |dir| root.join(dir))
        .join("peers")
}

async fn python(workloads: &[Workload], server: SocketAddr, rounds: usize) -> Python {
    let interpreter = peers_dir().join("venv/bin/python");
    if !interpreter.exists() {
        return Python::Skipped(format!(
            "skipped: no {} (run `bash tests/peers/install.sh`)",
            interpreter.display()
        ));
    }
    let script = root().join("benches/compression_peer.py");
    let mut runs = Vec::new();
    for (w, workload) in workloads.iter().enumerate() {
        if workload.msgpack {
            continue;
        }
        let file = std::env::temp_dir().join(format!(
            "typed-ws-compression-{}-{w}.jsonl",
            std::process::id()
        ));
        let mut lines = Vec::new();
        for message in workload.encoded() {
            lines.extend_from_slice(&message);
            lines.push(b'\n');
        }
        std::fs::write(&file, lines).expect("write the messages");
        let (plain, _) = python_wire(&interpreter, &script, &file, server, "off").await;
        let (compressed, extensions) =
            python_wire(&interpreter, &script, &file, server, "on").await;
        let output = tokio::process::Command::new(&interpreter)
            .arg(&script)
            .arg("cpu")
            .arg("--messages")
            .arg(&file)
            .args(["--rounds", &rounds.to_string()])
            .args(["--passes", &workload.passes.to_string()])
            .stderr(Stdio::inherit())
            .output()
            .await
            .expect("run the Python peer");
        assert!(output.status.success(), "the Python peer failed (cpu)");
        let report: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("the Python peer's report");
        let list = |key: &str| -> Vec<f64> {
            report[key]
                .as_array()
                .expect("a list")
                .iter()
                .map(|v| v.as_f64().expect("a number"))
                .collect()
        };
        let cpu = list("off").into_iter().zip(list("on")).collect();
        let _ = std::fs::remove_file(&file);
        runs.push(PythonRun {
            workload: w,
            extensions,
            plain,
            compressed,
            cpu,
            cpu_extensions: report["extensions"].as_str().unwrap_or("").to_owned(),
        });
    }
    Python::Ran(runs)
}

/// One Python client through a relay to `server`: the relay's counts once the last echo has
/// arrived, and the extensions the server agreed to.
async fn python_wire(
    interpreter: &Path,
    script: &Path,
    file: &Path,
    server: SocketAddr,
    compress: &str,
) -> (Wire, String) {
    let (addr, counts) = relay(server).await;
    let mut child = tokio::process::Command::new(interpreter)
        .arg(script)
        .arg("wire")
        .arg("--url")
        .arg(format!("ws://{addr}/"))
        .arg("--messages")
        .arg(file)
        .args(["--compress", compress])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the Python peer");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut extensions = String::new();
    let mut wire = None;
    while let Some(line) = lines.next_line().await.expect("the Python peer's output") {
        let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
        match event["event"].as_str() {
            Some("open") => extensions = event["extensions"].as_str().unwrap_or("").to_owned(),
            Some("done") => {
                wire = Some(counts.read());
                stdin
                    .write_all(b"\n")
                    .await
                    .expect("tell the peer to close");
                stdin.flush().await.expect("flush");
            }
            _ => {}
        }
    }
    let status = child.wait().await.expect("the Python peer");
    assert!(status.success(), "the Python peer failed ({compress})");
    (wire.expect("the Python peer never finished"), extensions)
}

// ---- the report ----

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The median of per-round ratios, with the lowest and highest.
fn ratio_cell(pairs: impl Iterator<Item = (f64, f64)>) -> String {
    let ratios: Vec<f64> = pairs.map(|(base, ours)| ours / base).collect();
    if ratios.is_empty() {
        return "n/a".to_owned();
    }
    let low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let high = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if ratios.len() == 1 {
        format!("{:.2}", ratios[0])
    } else {
        format!("{:.2} ({low:.2}-{high:.2})", median(ratios.into_iter()))
    }
}

/// Prints the tables; true when the goal is missed.
fn report(workloads: &[Workload], setups: &[Setup], results: &Results) -> bool {
    println!();
    println!("## permessage-deflate: bytes on the wire and CPU per message");
    println!();
    for workload in workloads {
        let sizes: Vec<usize> = workload.encoded().iter().map(Vec::len).collect();
        println!(
            "- {}: {} messages, {:.0} B each on average ({}-{} B), CPU measured over {} pass(es)",
            workload.name,
            sizes.len(),
            sizes.iter().sum::<usize>() as f64 / sizes.len() as f64,
            sizes.iter().min().unwrap_or(&0),
            sizes.iter().max().unwrap_or(&0),
            workload.passes,
        );
    }
    println!();
    println!(
        "| workload | setup | bytes/msg client→server | ratio | bytes/msg server→client | CPU µs/msg | CPU ratio |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut goal = None;
    for (w, workload) in workloads.iter().enumerate() {
        let n = workload.len() as f64;
        let base = results.wire[w][0];
        for (s, setup) in setups.iter().enumerate() {
            let wire = results.wire[w][s];
            let to_server = wire.to_server as f64 / base.to_server as f64;
            let to_client = wire.to_client as f64 / base.to_client as f64;
            if workload.name == "chat JSON" && setup.name == "deflate" {
                goal = Some(to_server);
            }
            let cpu = &results.cpu[w][s];
            let cpu_cell = if cpu.is_empty() {
                "n/a".to_owned()
            } else {
                format!("{:.2}", median(cpu.iter().copied()) / 1e3)
            };
            let pairs = results.cpu[w][0].iter().copied().zip(cpu.iter().copied());
            println!(
                "| {} | {} | {:.1} | {:.3} | {:.1} ({:.3}) | {} | {} |",
                if s == 0 { workload.name } else { "" },
                setup.name,
                wire.to_server as f64 / n,
                to_server,
                wire.to_client as f64 / n,
                to_client,
                cpu_cell,
                ratio_cell(pairs),
            );
        }
    }
    println!();
    println!(
        "Bytes: data frames with their headers (client frames carry a 4-byte mask), the \
         handshake left out; ratio = setup / uncompressed (server→client's in brackets). CPU: \
         client and server together, per echoed message (client encode and send, server \
         receive and send back, client receive and decode), {WINDOW} in flight; median of \
         the rounds, ratio the median of per-round ratios (lowest-highest)."
    );
    println!();
    match &results.python {
        Python::Skipped(why) => println!("Python websockets: {why}."),
        Python::Ran(runs) => {
            println!(
                "Python websockets client (default compression against compression=None), \
                 same relay, same typed-ws server (Compression::new()):"
            );
            println!();
            println!(
                "| workload | bytes/msg client→server | ratio | typed-ws client's ratio | bytes/msg server→client | ratio | Python↔Python CPU µs/msg | CPU ratio |"
            );
            println!("|---|---|---|---|---|---|---|---|");
            for run in runs {
                let n = workloads[run.workload].len() as f64;
                let ours = &results.wire[run.workload];
                println!(
                    "| {} | {:.1} (off: {:.1}) | {:.3} | {:.3} | {:.1} (off: {:.1}) | {:.3} | {:.1} (off: {:.1}) | {} |",
                    workloads[run.workload].name,
                    run.compressed.to_server as f64 / n,
                    run.plain.to_server as f64 / n,
                    run.compressed.to_server as f64 / run.plain.to_server as f64,
                    ours[1].to_server as f64 / ours[0].to_server as f64,
                    run.compressed.to_client as f64 / n,
                    run.plain.to_client as f64 / n,
                    run.compressed.to_client as f64 / run.plain.to_client as f64,
                    median(run.cpu.iter().map(|c| c.1)) / 1e3,
                    median(run.cpu.iter().map(|c| c.0)) / 1e3,
                    ratio_cell(run.cpu.iter().copied()),
                );
            }
            if let Some(run) = runs.first() {
                println!();
                println!(
                    "Agreed with the typed-ws server: `{}`; Python↔Python: `{}`.",
                    run.extensions, run.cpu_extensions
                );
            }
        }
    }
    println!();
    match goal {
        Some(ratio) => {
            let verdict = if ratio <= GOAL { "met" } else { "MISSED" };
            println!(
                "Goal: chat JSON with deflate (context takeover), client→server <= {GOAL}x \
                 uncompressed: {ratio:.3}, {verdict}."
            );
            ratio > GOAL
        }
        None => false,
    }
}
