//! typed-ws in one command: an echo server and a client in one process, exchanging
//! `ChatMessage`s with each codec.
//!
//! ```text
//! cargo run --example demo
//! ```
//!
//! For each codec it starts the echo server of `echo_server` on a free loopback port, sends a
//! few different messages and checks that each comes back equal, then times 200 round trips
//! of one typical message. It prints a table like this one, followed by footnotes (the times
//! depend on the machine and the build; add `--release` for optimised code):
//!
//! ```text
//! codec            frame    bytes¹   median RTT²
//! json             text        127      181.7 µs
//! cbor             binary      105      172.4 µs
//! msgpack          binary      105      167.4 µs
//! msgpack compact  binary       76      155.4 µs
//! ```
//!
//! It exits with 1 if any echo differs from what was sent.

mod common;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use typed_ws::{AnyConverter, Client, Config, Converter, Error, FrameKind, MsgPackConverter};

use common::{ChatMessage, ECHO_PATH, echo_config, only, serve_echo};

/// Round trips timed per codec.
const ROUND_TRIPS: usize = 200;
/// Round trips run first and not timed, so that connection start-up and cold caches do not
/// count.
const WARM_UP: usize = 20;

/// What one codec did.
struct Row {
    codec: &'static str,
    frame: FrameKind,
    bytes: usize,
    median_rtt: Duration,
    mismatches: usize,
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut codecs: Vec<(&str, AnyConverter)> = ["json", "cbor", "msgpack"]
        .into_iter()
        .map(|name| {
            let converter = AnyConverter::from_name(name).expect("the demo needs every codec");
            (name, converter)
        })
        .collect();
    // Not nameable with from_name: structs as arrays rather than maps, to show what field
    // names cost on the wire.
    codecs.push(("msgpack compact", MsgPackConverter::compact().into()));

    let mut rows = Vec::new();
    for (codec, converter) in codecs {
        match run_codec(codec, converter).await {
            Ok(row) => rows.push(row),
            Err(e) => {
                eprintln!("{codec}: {}", e.report());
                return ExitCode::FAILURE;
            }
        }
    }

    println!(
        "{:<16} {:<8} {:>6}   {:>11}",
        "codec", "frame", "bytes¹", "median RTT²"
    );
    for row in &rows {
        println!(
            "{:<16} {:<8} {:>6}   {:>8.1} µs",
            row.codec,
            // FrameKind's Display ignores width, so pad a String instead.
            row.frame.to_string(),
            row.bytes,
            row.median_rtt.as_secs_f64() * 1e6,
        );
    }
    println!();
    println!("message: {:?}", typical());
    println!("¹ payload bytes of the message encoded; the WebSocket frame header adds 2-14 bytes");
    println!("  (the payload length and, from a client, the mask key).");
    println!(
        "² median of {ROUND_TRIPS} round trips (send_serialized, then receive_deserialized of"
    );
    println!("  the echo) over loopback, encoding and decoding included.");

    let mismatches: usize = rows.iter().map(|row| row.mismatches).sum();
    if mismatches > 0 {
        eprintln!("FAILED: {mismatches} echoes differed from what was sent");
        return ExitCode::FAILURE;
    }
    println!();
    println!("all echoes matched what was sent");
    ExitCode::SUCCESS
}

/// Starts an echo server with `converter`, then checks and times the round trips.
async fn run_codec(codec: &'static str, converter: AnyConverter) -> Result<Row, Error> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    // Never awaited: the server lives until the process exits.
    tokio::spawn(serve_echo(
        listener,
        echo_config(only(converter)),
        std::future::pending(),
    ));

    let encoded = converter.serialize(&typical())?;
    let (frame, bytes) = (encoded.kind(), encoded.payload().len());

    let client = Client::new(Config::new().converter(converter));
    let url = format!("ws://{addr}{ECHO_PATH}");
    // The scoped form closes the session with 1000 when the block returns Ok.
    client
        .web_socket(url, async |mut session| {
            let mut mismatches = 0;
            for sent in samples() {
                session.send_serialized(&sent).await?;
                let echoed: ChatMessage = session.receive_deserialized().await?;
                if echoed != sent {
                    eprintln!("{codec}: the echo of message #{} differs from it", sent.id);
                    mismatches += 1;
                }
            }

            let sent = typical();
            let mut rtts = Vec::with_capacity(ROUND_TRIPS);
            for i in 0..WARM_UP + ROUND_TRIPS {
                let start = Instant::now();
                session.send_serialized(&sent).await?;
                let echoed: ChatMessage = session.receive_deserialized().await?;
                let rtt = start.elapsed();
                if echoed != sent {
                    eprintln!("{codec}: the echo of round trip {i} differs from what was sent");
                    mismatches += 1;
                }
                if i >= WARM_UP {
                    rtts.push(rtt);
                }
            }
            rtts.sort_unstable();

            Ok(Row {
                codec,
                frame,
                bytes,
                median_rtt: rtts[rtts.len() / 2],
                mismatches,
            })
        })
        .await
}

/// The message whose size and round-trip time the table shows.
fn typical() -> ChatMessage {
    ChatMessage {
        id: 1042,
        author: "ada".to_owned(),
        text: "Shall we meet at the Analytical Engine at noon?".to_owned(),
        tags: vec!["meeting".to_owned(), "urgent".to_owned()],
        reply_to: Some(1041),
    }
}

/// Messages that exercise the edges of each codec: empty and non-ASCII strings, the largest
/// id, a missing `reply_to`, and one message large enough for a 64-bit frame length.
fn samples() -> Vec<ChatMessage> {
    vec![
        typical(),
        ChatMessage {
            id: 0,
            author: String::new(),
            text: String::new(),
            tags: Vec::new(),
            reply_to: None,
        },
        ChatMessage {
            id: u64::MAX,
            author: "Grace Hopper".to_owned(),
            text: "ünïcödé, emoji 🦀 and \"quotes\"\n\ttoo".to_owned(),
            tags: vec!["i18n".to_owned(), String::new()],
            reply_to: Some(0),
        },
        ChatMessage {
            id: 7,
            author: "ada".to_owned(),
            text: "x".repeat(100_000),
            tags: (0..1000).map(|i| format!("tag{i}")).collect(),
            reply_to: Some(u64::MAX),
        },
    ]
}
