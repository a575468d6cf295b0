//! A typed echo server: every `ChatMessage` it receives on `ws://ADDR/echo` goes back to the
//! sender, encoded with the codec chosen on the command line.
//!
//! ```text
//! cargo run --example echo_server -- --addr 127.0.0.1:8080 --codec json|cbor|msgpack
//! ```
//!
//! Both flags are optional (defaults `127.0.0.1:8080` and `json`); `--addr 127.0.0.1:0` picks
//! a free port. `--codec` also takes a list, `--codec msgpack,cbor,json`: a client that offers
//! the codecs as subprotocols (`Sec-WebSocket-Protocol: json, cbor`) gets the first of the
//! list that it offered, and a client that offers none gets the first of the list. When it is ready it prints one line on stdout, with the address it is bound
//! to:
//!
//! ```text
//! listening on ws://127.0.0.1:8080/echo
//! ```
//!
//! What a client sees:
//! - a `ChatMessage` comes back, in a text frame for json, a binary frame for cbor and msgpack;
//! - a message that does not decode as a `ChatMessage` closes the session with 1007;
//! - the wrong kind of data frame (binary for json, text for cbor and msgpack) closes it with
//!   1003;
//! - a message over 1 MiB closes it with 1009;
//! - any path other than `/echo` is refused with HTTP 404.
//!
//! Each connection has its own task, so one session ending never affects the others. Talk to
//! it with `cargo run --example echo_client`. Stop it with Ctrl-C.

mod common;

use std::io::Write;
use std::process::ExitCode;

use tokio::net::TcpListener;

use common::{ECHO_PATH, parse_codecs, parse_flags, serve_echo, usage_error};

const USAGE: &str = "usage: echo_server [--addr IP:PORT] [--codec json|cbor|msgpack[,...]]
  --addr   the address to listen on (default 127.0.0.1:8080; port 0 picks a free one)
  --codec  how messages are encoded (default json); a list such as msgpack,cbor,json is
           negotiated in that order through the subprotocol, and clients that offer none
           get the first";

#[tokio::main]
async fn main() -> ExitCode {
    let [addr, codec] =
        match parse_flags(USAGE, [("--addr", "127.0.0.1:8080"), ("--codec", "json")]) {
            Ok(values) => values,
            Err(code) => return code,
        };
    let addr: std::net::SocketAddr = match addr.parse() {
        Ok(addr) => addr,
        Err(_) => return usage_error(USAGE, &format!("--addr {addr:?} is not an IP:PORT address")),
    };
    let codecs = match parse_codecs(&codec, USAGE) {
        Ok(codecs) => codecs,
        Err(code) => return code,
    };

    let listener = match TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Port 0 means the system chose; whoever reads this line needs the real port.
    let bound = match listener.local_addr() {
        Ok(bound) => bound,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Scripts wait for this line before connecting, so it must not sit in a buffer.
    let mut stdout = std::io::stdout().lock();
    let announced =
        writeln!(stdout, "listening on ws://{bound}{ECHO_PATH}").and_then(|()| stdout.flush());
    drop(stdout);
    if let Err(e) = announced {
        eprintln!("error: cannot write to stdout: {e}");
        return ExitCode::FAILURE;
    }

    // Serves until the process is stopped (Ctrl-C).
    serve_echo(listener, codecs).await;
    ExitCode::SUCCESS
}
