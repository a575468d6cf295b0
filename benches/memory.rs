//! Peak resident memory of a session that receives and decodes one large MessagePack message
//! (64 MiB; 4 MiB with `--test`), beside the hand-written tokio-tungstenite receiver.
//!
//! Each case runs in a child process of its own (this binary again), so that each peak is its
//! own; the child reports its `VmHWM` (peak RSS) from `/proc/self/status`. The sender writes
//! the frame bytes straight to the socket, generated 64 KiB at a time, so the peak is the
//! receiver's: its read buffer, the reassembled message and the decoded value.
//!
//! ```text
//! cargo bench -p benches --bench memory              # the table
//! cargo bench -p benches --bench memory -- --test    # the same with 4 MiB, quick
//! # one case under /usr/bin/time (the binary's path is printed by `cargo bench -p benches --no-run`):
//! TYPED_WS_MEMORY_CASE=typed_ws /usr/bin/time -v target/release/deps/memory-<hash>
//! ```
//!
//! Cases: `typed_ws` (one frame, `receive_deserialized`), `typed_ws_frag64KiB` (the same
//! message in 64 KiB fragments, reassembled), `handwritten` (one frame, `ws.next()` then
//! `rmp_serde::from_slice`).
//!
//! Then the memory of an idle session: a typed-ws echo server (`Config::new()`, with or
//! without `Compression::new()`) in a child process, 1,000 typed-ws clients (100 with
//! `--test`) from this one, each sending one message and taking its echo, then idle. The
//! figure is the server's RSS growth (`VmRSS`, from before the first connection to 3 s after
//! the last echo, past the compressor's release) divided by the sessions. Messages: a 240 B
//! JSON chat message, or 64 KiB of text, which fills every window. Target: a compressed
//! session idle after a 240 B message at most 64 KiB (Python `websockets`: 57 KiB); judged
//! outside `--test`, where 100 sessions are too few to measure one. RSS counts what the
//! allocator keeps: glibc may keep what the 1,000 compressors released (about 300 KiB each,
//! alive at once for a second) for its next allocations instead of returning it, up to about
//! 30 KiB a session; `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072` has them mapped and
//! unmapped on their own, and shows what stays allocated.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use typed_ws::tokio_tungstenite::{
    self, tungstenite::Message, tungstenite::protocol::WebSocketConfig,
};
use typed_ws::{Client, Compression, Config, Frame, MsgPackConverter, Server};

const CASES: [&str; 3] = ["typed_ws", "typed_ws_frag64KiB", "handwritten"];
const CASE_VAR: &str = "TYPED_WS_MEMORY_CASE";
/// Set in the child that serves the idle sessions: `plain` or `deflate`.
const IDLE_VAR: &str = "TYPED_WS_MEMORY_IDLE";
/// The idle cases: name, compression, the message each session sends, and whether the target
/// applies.
const IDLE_CASES: [(&str, bool, usize, bool); 4] = [
    ("uncompressed, 240 B message", false, 240, false),
    ("permessage-deflate, 240 B message", true, 240, true),
    ("uncompressed, 64 KiB message", false, 64 << 10, false),
    ("permessage-deflate, 64 KiB message", true, 64 << 10, false),
];
const SIZE_VAR: &str = "TYPED_WS_MEMORY_SIZE";
/// The receiver's limits: the message plus room.
const LIMIT: usize = 80 << 20;
const CHUNK: usize = 64 << 10;

fn main() {
    let test = std::env::args().any(|a| a == "--test");
    let size = std::env::var(SIZE_VAR)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if test { 4 << 20 } else { 64 << 20 });
    if let Ok(case) = std::env::var(CASE_VAR) {
        let (before, peak) = run_case(&case, size);
        println!("{case} {size} {before} {peak}");
        return;
    }
    if let Ok(kind) = std::env::var(IDLE_VAR) {
        idle_server(kind == "deflate");
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    println!();
    println!(
        "Peak RSS receiving and decoding one {} MessagePack message",
        size_label(size)
    );
    println!(
        "| case | RSS before (MiB) | peak RSS (MiB) | peak / message | (peak - before) / message |"
    );
    println!("|---|---|---|---|---|");
    let mut growth = Vec::new();
    for case in CASES {
        let output = Command::new(&exe)
            .env(CASE_VAR, case)
            .env(SIZE_VAR, size.to_string())
            .output()
            .expect("run a case");
        assert!(
            output.status.success(),
            "case {case} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let line = String::from_utf8_lossy(&output.stdout);
        let fields: Vec<u64> = line
            .split_whitespace()
            .skip(2)
            .map(|f| f.parse().expect("a number"))
            .collect();
        let (before, peak) = (fields[0], fields[1]);
        let mib = |kib: u64| kib as f64 / 1024.0;
        let per_message = |kib: u64| (kib * 1024) as f64 / size as f64;
        println!(
            "| {case} | {:.1} | {:.1} | {:.2}x | {:.2}x |",
            mib(before),
            mib(peak),
            per_message(peak),
            per_message(peak - before)
        );
        growth.push((case, per_message(peak - before)));
    }
    println!();
    let missed = !check(&growth);
    let sessions = if test { 100 } else { 1_000 };
    if !idle_sessions(sessions, test) || missed {
        std::process::exit(1);
    }
}

/// Prints the idle table; false when the target is missed.
fn idle_sessions(sessions: usize, test: bool) -> bool {
    const TARGET_KIB: f64 = 64.0;
    println!();
    println!("Server memory per idle session, {sessions} sessions that sent one message each");
    println!("| case | per session (KiB) | / uncompressed |");
    println!("|---|---|---|");
    let rt = runtime();
    let mut plain = None;
    let mut met = true;
    for (name, compressed, size, judged) in IDLE_CASES {
        let bytes = rt.block_on(idle_case(compressed, size, sessions));
        let kib = bytes as f64 / 1024.0;
        if !compressed {
            plain = Some(kib);
        }
        let base = plain.unwrap_or(kib);
        println!("| {name} | {kib:.1} | {:.2}x |", kib / base);
        if judged && !test {
            met &= kib <= TARGET_KIB;
        }
    }
    println!();
    if !test {
        let verdict = if met { "met" } else { "MISSED" };
        println!(
            "target: a compressed idle session after a 240 B message <= {TARGET_KIB} KiB: \
             {verdict}"
        );
    }
    met
}

/// The server's RSS growth per session, in bytes, over `sessions` idle sessions that each
/// sent one message of `size` bytes and took its echo.
async fn idle_case(compressed: bool, size: usize, sessions: usize) -> u64 {
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .env(IDLE_VAR, if compressed { "deflate" } else { "plain" })
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server");
    let mut to_child = child.stdin.take().expect("stdin");
    let mut from_child = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut ask = |question: &str| -> String {
        writeln!(to_child, "{question}").expect("ask the server");
        from_child
            .next()
            .expect("an answer")
            .expect("read the server")
    };
    let addr = ask("addr");
    let before: u64 = ask("rss").parse().expect("kB");
    let config = if compressed {
        Config::new().compression(Compression::new())
    } else {
        Config::new()
    };
    let client = Client::new(config);
    let message = idle_message(size);
    let mut open = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        let session = tokio::time::timeout(Duration::from_secs(10), async {
            let mut session = client
                .web_socket_session(format!("ws://{addr}/"))
                .await
                .expect("connect");
            assert_eq!(session.compression().is_some(), compressed);
            session
                .send(Frame::Text(message.clone().into()))
                .await
                .expect("send");
            session.receive().await.expect("echo");
            session
        })
        .await
        .expect("a session within 10 s");
        // Never read again: its watchdog answers the server's pings.
        open.push(session);
    }
    // Past the compressor's release (1 s after the last message) and the watchdogs' settling.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after: u64 = ask("rss").parse().expect("kB");
    drop(open);
    drop(to_child);
    child.wait().expect("the server exits");
    (after.saturating_sub(before) * 1024) / sessions as u64
}

/// A JSON text of about `size` bytes, the shape of a chat message.
fn idle_message(size: usize) -> String {
    let head = r#"{"id":48213911,"author":"grace","tags":["general"],"text":""#;
    let body = text(size.saturating_sub(head.len() + 2), 11).replace(['"', '\\', '\n'], " ");
    format!("{head}{body}\"}}")
}

/// The child's side of [`idle_case`]: an echo server that answers `addr` and `rss` (its
/// `VmRSS` in kB) on stdin, until stdin closes.
fn idle_server(compressed: bool) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let config = if compressed {
        Config::new().compression(Compression::new())
    } else {
        Config::new()
    };
    rt.spawn(async move {
        Server::new(config)
            .serve(listener, |mut session| async move {
                while let Ok(frame) = session.receive().await {
                    if matches!(frame, Frame::Text(_) | Frame::Binary(_))
                        && session.send(frame).await.is_err()
                    {
                        break;
                    }
                }
            })
            .await
    });
    for line in std::io::stdin().lines() {
        match line.expect("stdin").as_str() {
            "addr" => println!("{addr}"),
            "rss" => println!("{}", status_kib("VmRSS:")),
            other => panic!("unknown question {other:?}"),
        }
    }
}

/// The target: what receiving one message adds to the process is at most 3x the message,
/// for every typed-ws case; false when it is missed (the bench then exits 1, in `--test` runs
/// too).
fn check(growth: &[(&str, f64)]) -> bool {
    const TARGET: f64 = 3.0;
    let mut missed = false;
    for &(case, ratio) in growth {
        let verdict = if ratio <= TARGET { "met" } else { "MISSED" };
        println!("target: {case} (peak - before) / message {ratio:.2} <= {TARGET}: {verdict}");
        missed |= case != "handwritten" && ratio > TARGET;
    }
    !missed
}

/// Receives one message of `size` bytes in this process; returns the peak RSS in KiB before
/// the message and after decoding it.
fn run_case(case: &str, size: usize) -> (u64, u64) {
    let rt = runtime();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (tcp, client) = tokio::join!(
            async { listener.accept().await.expect("accept").0 },
            TcpStream::connect(addr)
        );
        let message = RawMessage::new(size);
        let fragment = (case == "typed_ws_frag64KiB").then_some(CHUNK);
        let ws_config = WebSocketConfig::default()
            .max_message_size(Some(LIMIT))
            .max_frame_size(Some(LIMIT));
        let before;
        let body_len = match case {
            "typed_ws" | "typed_ws_frag64KiB" => {
                let config = Config::new()
                    .converter(MsgPackConverter::new())
                    .max_message_size(LIMIT)
                    .max_frame_size(LIMIT);
                let server = Server::new(config);
                let (session, sender) = tokio::join!(
                    server.accept(tcp),
                    tokio_tungstenite::client_async("ws://localhost/", client.expect("connect"))
                );
                let (mut session, mut sender) =
                    (session.expect("accept"), sender.expect("handshake").0);
                before = peak_rss_kib();
                let (document, ()) = tokio::join!(
                    session.receive_deserialized::<Document>(),
                    message.write(sender.get_mut(), fragment)
                );
                document.expect("receive").body.len()
            }
            "handwritten" => {
                let (ws, sender) = tokio::join!(
                    tokio_tungstenite::accept_async_with_config(tcp, Some(ws_config)),
                    tokio_tungstenite::client_async("ws://localhost/", client.expect("connect"))
                );
                let (mut ws, mut sender) = (ws.expect("accept"), sender.expect("handshake").0);
                before = peak_rss_kib();
                let (received, ()) =
                    tokio::join!(ws.next(), message.write(sender.get_mut(), fragment));
                let Message::Binary(bytes) = received.expect("open").expect("receive") else {
                    panic!("expected a binary message");
                };
                let document: Document = rmp_serde::from_slice(&bytes).expect("decode");
                document.body.len()
            }
            other => panic!("unknown case {other:?}; the cases are {CASES:?}"),
        };
        assert_eq!(body_len, message.body_len);
        (before, peak_rss_kib())
    })
}

/// A MessagePack `Document { id: 42, title, body }` of exactly `size` bytes, generated as it
/// is written so that the sender holds 64 KiB at a time.
struct RawMessage {
    prefix: Vec<u8>,
    body_len: usize,
    pattern: Vec<u8>,
}

impl RawMessage {
    fn new(size: usize) -> Self {
        let mut prefix = vec![0x83]; // a map of 3 entries
        prefix.extend([0xa2, b'i', b'd', 42]);
        let title = b"large";
        prefix.extend([0xa5]);
        prefix.extend(b"title");
        prefix.push(0xa0 | title.len() as u8);
        prefix.extend(title);
        prefix.extend([0xa4]);
        prefix.extend(b"body");
        let body_len = size - prefix.len() - 5;
        prefix.push(0xdb); // str 32
        prefix.extend((body_len as u32).to_be_bytes());
        RawMessage {
            prefix,
            body_len,
            pattern: text(CHUNK, 7).into_bytes(),
        }
    }

    fn len(&self) -> usize {
        self.prefix.len() + self.body_len
    }

    /// The message bytes `start..end`.
    fn bytes(&self, start: usize, end: usize) -> Vec<u8> {
        (start..end)
            .map(|i| match i.checked_sub(self.prefix.len()) {
                None => self.prefix[i],
                Some(j) => self.pattern[j % CHUNK],
            })
            .collect()
    }

    /// Writes the message as client frames (masked with a zero key, so the payload goes as
    /// is): one binary frame, or fragments of `fragment` bytes.
    async fn write(&self, tcp: &mut TcpStream, fragment: Option<usize>) {
        let total = self.len();
        let fragment = fragment.unwrap_or(total);
        let mut start = 0;
        while start < total {
            let end = total.min(start + fragment);
            let opcode = if start == 0 { 0x2 } else { 0x0 };
            let fin = if end == total { wire::FIN } else { 0 };
            let header = wire::header(fin | opcode, (end - start) as u64, Some([0; 4]));
            tcp.write_all(&header).await.expect("write");
            let mut at = start;
            while at < end {
                let next = end.min(at + CHUNK);
                tcp.write_all(&self.bytes(at, next)).await.expect("write");
                at = next;
            }
            start = end;
        }
        tcp.flush().await.expect("flush");
    }
}

/// This process's peak resident set (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    status_kib("VmHWM:")
}

/// A figure in KiB from this process's `/proc/self/status`, by its label.
fn status_kib(label: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(label))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{label} in /proc/self/status"))
}
