//! The echo servers' command-line contract, checked from outside on the built programs, as the
//! scripts that run them see it: `examples/echo_server` and `examples/axum_echo` take the same
//! flags, print the same `listening on ws://ADDR/echo` line, negotiate the codec of
//! `--codec msgpack,cbor,json`, echo the `ChatMessage` to our client and to independent ones
//! (Python `websockets` with `cbor2`, Node `ws` with `@msgpack/msgpack`), close with
//! 1007/1003/1009, and answer other paths with 404. `examples/chat` gives a crowd that asks for
//! one name as many names.
#![cfg(all(
    feature = "axum",
    feature = "json",
    feature = "cbor",
    feature = "msgpack"
))]

use crate::common;

use std::collections::BTreeSet;

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use typed_ws::prelude::*;
use typed_ws::{AnyConverter, Client, CloseCode, Compression, Config, Error, Frame};

use common::examples::Running;
use common::peers::{Lang, peers_dir, require};
use common::{chat, negotiating, within};

/// What a client offering `offer` gets from the echo server at `url`: the subprotocol and
/// the message sent back.
async fn echo_with(url: &str, config: Config<AnyConverter>) -> (Option<String>, AnyConverter) {
    let mut session = within(
        "connecting to the example",
        Client::new(config).web_socket_session(url),
    )
    .await
    .expect("connect");
    let message = chat(7);
    within("the echo", session.send_serialized(&message))
        .await
        .unwrap();
    let back: common::ChatMessage = within("the echo", session.receive_deserialized())
        .await
        .unwrap();
    assert_eq!(back, message);
    (
        session.subprotocol().map(str::to_owned),
        *session.converter(),
    )
}

/// Sends `frame` on a new MessagePack session and gives the close code the server answered
/// with.
async fn closed_by(url: &str, frame: Frame) -> CloseCode {
    let mut session = within(
        "connecting to the example",
        Client::new(negotiating("msgpack")).web_socket_session(url),
    )
    .await
    .expect("connect");
    within("sending", session.send(frame)).await.unwrap();
    match within("the server's close", session.receive()).await {
        Ok(Frame::Close(Some(reason))) | Err(Error::Closed(reason)) => reason.code,
        other => panic!("expected the server to close, got {other:?}"),
    }
}

/// The status line a plain HTTP upgrade request to `path` gets.
async fn status_line(url: &str, path: &str) -> String {
    let host = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.strip_suffix("/echo"))
        .expect("ws://ADDR/echo");
    let mut tcp = within("connecting", TcpStream::connect(host))
        .await
        .unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    within("the request", tcp.write_all(request.as_bytes()))
        .await
        .unwrap();
    let mut head = vec![0; 1024];
    let n = within("the answer", tcp.read(&mut head)).await.unwrap();
    let head = String::from_utf8_lossy(&head[..n]).into_owned();
    head.lines().next().unwrap_or_default().to_owned()
}

/// Runs `script` with the peers' Python or with node, the echo URL as its argument; gives what
/// it printed.
async fn independent_client(lang: Lang, script: &str, url: &str) -> String {
    require(lang);
    let mut command = match lang {
        Lang::Python => {
            let mut command = tokio::process::Command::new(peers_dir().join("venv/bin/python"));
            command.arg("-c");
            command
        }
        Lang::Node => {
            let mut command = tokio::process::Command::new("node");
            command
                .env("NODE_PATH", peers_dir().join("node/node_modules"))
                .arg("-e");
            command
        }
    };
    let output = within(
        "the independent client",
        command.arg(script).arg(url).kill_on_drop(true).output(),
    )
    .await
    .expect("run the independent client");
    assert!(
        output.status.success(),
        "{lang:?} client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned()
}

const PYTHON_CBOR: &str = r#"
import asyncio, sys, cbor2, websockets
async def main(url):
    async with websockets.connect(url, subprotocols=["cbor"]) as ws:
        message = {"id": 7, "author": "py", "text": "ünïcödé ✓", "tags": ["a"], "reply_to": None}
        await ws.send(cbor2.dumps(message))
        back = await ws.recv()
        print(ws.subprotocol, type(back).__name__, cbor2.loads(back) == message)
asyncio.run(main(sys.argv[1]))
"#;

const NODE_MSGPACK: &str = r#"
const WebSocket = require("ws");
const { encode, decode } = require("@msgpack/msgpack");
const message = { id: 7, author: "js", text: "ünïcödé ✓", tags: ["a"], reply_to: null };
const ws = new WebSocket(process.argv[1], ["msgpack"]);
ws.on("open", () => ws.send(encode(message)));
ws.on("message", (data, binary) => {
  const same = JSON.stringify(decode(data)) === JSON.stringify(message);
  console.log(ws.protocol, binary ? "binary" : "text", same);
  ws.close();
});
"#;

async fn keeps_the_echo_contract(example: &str) {
    let server = Running::start(
        example,
        &["--addr", "127.0.0.1:0", "--codec", "msgpack,cbor,json"],
    )
    .await;
    let url = &server.url;
    assert!(
        url.starts_with("ws://127.0.0.1:") && url.ends_with("/echo"),
        "{example} listens on {url}"
    );

    // Each codec by subprotocol; no subprotocol gets the first of the list.
    for codec in ["json", "cbor", "msgpack"] {
        let (subprotocol, converter) = echo_with(url, negotiating(codec)).await;
        assert_eq!(subprotocol.as_deref(), Some(codec));
        assert_eq!(converter.name(), codec);
    }
    let msgpack = Config::new().converter(AnyConverter::from_name("msgpack").unwrap());
    assert_eq!(echo_with(url, msgpack).await.0, None);

    assert_eq!(
        independent_client(Lang::Python, PYTHON_CBOR, url).await,
        "cbor bytes True"
    );
    assert_eq!(
        independent_client(Lang::Node, NODE_MSGPACK, url).await,
        "msgpack binary true"
    );

    assert_eq!(
        closed_by(url, Frame::binary(&b"\xc1 is never MessagePack"[..])).await,
        CloseCode::InvalidPayload,
        "1007 for a message that does not decode"
    );
    assert_eq!(
        closed_by(url, Frame::text("a text frame")).await,
        CloseCode::Unsupported,
        "1003 for the wrong kind of data frame"
    );
    assert_eq!(
        closed_by(url, Frame::binary(vec![0; (1 << 20) + 1])).await,
        CloseCode::TooBig,
        "1009 for a message over 1 MiB"
    );

    assert_eq!(status_line(url, "/other").await, "HTTP/1.1 404 Not Found");
}

#[tokio::test]
async fn echo_server_keeps_its_command_line_contract() {
    keeps_the_echo_contract("echo_server").await;
}

#[tokio::test]
async fn axum_echo_keeps_the_same_contract() {
    keeps_the_echo_contract("axum_echo").await;
}

/// Whether the echo server `example`, started with `flags`, agrees on permessage-deflate with
/// a client that offers it; the echo must come back either way.
async fn compresses(example: &str, flags: &[&str]) -> bool {
    let args = [&["--addr", "127.0.0.1:0", "--codec", "json"], flags].concat();
    let server = Running::start(example, &args).await;
    let config = Config::new()
        .converter(AnyConverter::from_name("json").unwrap())
        .compression(Compression::new());
    let mut session = within(
        "connecting to the example",
        Client::new(config).web_socket_session(server.url.as_str()),
    )
    .await
    .expect("connect");
    let message = common::ChatMessage {
        text: "compressible ".repeat(100),
        ..chat(3)
    };
    within("the echo", session.send_serialized(&message))
        .await
        .unwrap();
    let back: common::ChatMessage = within("the echo", session.receive_deserialized())
        .await
        .unwrap();
    assert_eq!(back, message);
    session.compression().is_some()
}

#[tokio::test]
async fn the_echo_servers_accept_compression_with_compress_and_only_then() {
    for example in ["echo_server", "axum_echo"] {
        assert!(
            compresses(example, &["--compress"]).await,
            "{example} --compress"
        );
        assert!(!compresses(example, &[]).await, "{example}");
    }
}

/// The chat's first event; its `type` is `welcome`.
#[derive(Deserialize)]
struct Welcome {
    name: String,
    online: Vec<String>,
}

#[tokio::test]
async fn the_chat_gives_a_crowd_that_asks_for_one_name_distinct_names() {
    const CROWD: usize = 300;
    let server = Running::start("chat", &["--addr", "127.0.0.1:0"]).await;
    let url = server
        .url
        .strip_prefix("http://")
        .map(|addr| format!("ws://{addr}ws?name=bob"))
        .unwrap_or_else(|| panic!("the chat listens on {}", server.url));

    // All at once, half in each codec, so that the joins race for the room's lock.
    let mut joining = JoinSet::new();
    for i in 0..CROWD {
        let url = url.clone();
        joining.spawn(async move {
            let codec = if i % 2 == 0 { "msgpack" } else { "json" };
            let mut session = within(
                "connecting to the chat",
                Client::new(negotiating(codec)).web_socket_session(url.as_str()),
            )
            .await
            .expect("connect");
            let welcome: Welcome = within("the welcome", session.receive_deserialized())
                .await
                .expect("a welcome");
            // Kept open until every welcome is in, so that no name is given twice by turns.
            (session, welcome)
        });
    }
    let mut crowd = Vec::new();
    while let Some(joined) = within("the crowd's joins", joining.join_next()).await {
        crowd.push(joined.expect("a client's task"));
    }

    let names: BTreeSet<&str> = crowd.iter().map(|(_, w)| w.name.as_str()).collect();
    assert_eq!(names.len(), CROWD, "{} distinct names", names.len());
    let expected: BTreeSet<String> = ["bob".to_owned()]
        .into_iter()
        .chain((2..=CROWD).map(|n| format!("bob ({n})")))
        .collect();
    assert!(
        names
            .iter()
            .copied()
            .eq(expected.iter().map(String::as_str))
    );
    // The last to join saw everyone online, under the names they were given.
    let last = crowd
        .iter()
        .map(|(_, w)| &w.online)
        .max_by_key(|online| online.len());
    let online: BTreeSet<&str> = last.into_iter().flatten().map(String::as_str).collect();
    assert_eq!(online, names);
}

/// Ctrl-C or SIGTERM closes the sessions of `echo_server`, `axum_echo` and `chat` with 1001,
/// and the server exits with 0.
#[tokio::test]
async fn the_servers_close_their_sessions_with_1001_on_ctrl_c_and_sigterm() {
    for (example, signal) in [
        ("echo_server", "INT"),
        ("axum_echo", "TERM"),
        ("chat", "TERM"),
    ] {
        let mut server = Running::start(example, &["--addr", "127.0.0.1:0"]).await;
        let url = match server.url.strip_prefix("http://") {
            Some(addr) => format!("ws://{addr}ws?name=ada"),
            None => server.url.clone(),
        };
        let mut session = within(
            "connecting to the example",
            Client::new(negotiating("json")).web_socket_session(url.as_str()),
        )
        .await
        .expect("connect");
        if example == "chat" {
            let _: Welcome = within("the welcome", session.receive_deserialized())
                .await
                .expect("a welcome");
        } else {
            echo_with(&url, negotiating("json")).await;
        }

        common::examples::signal(server.pid(), signal);
        // The chat may still be sending what follows the welcome (its resume outcome).
        loop {
            match within("the close", session.receive()).await {
                Ok(Frame::Close(Some(reason))) => {
                    assert_eq!(reason.code, CloseCode::GoingAway, "{example}");
                    break;
                }
                Ok(Frame::Text(text)) if example == "chat" => {
                    assert!(text.contains("\"outcome\""), "chat sent {text}")
                }
                other => panic!("{example}: expected the close frame, got {other:?}"),
            }
        }
        let status = server.exited().await;
        assert!(status.success(), "{example} after SIG{signal}: {status}");
    }
}
