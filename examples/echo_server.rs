//! A typed echo server: every `ChatMessage` it receives on `ws://ADDR/echo` goes back to the
//! sender, encoded with the codec chosen on the command line.
//!
//! ```text
//! cargo run --example echo_server -- --addr 127.0.0.1:8080 --codec json|cbor|msgpack [--compress]
//! ```
//!
//! `--compress` accepts permessage-deflate (RFC 7692) from clients that offer it, as browsers,
//! Python `websockets` and `typed-ws connect --compress` do. The other flags are optional (defaults `127.0.0.1:8080` and `json`); `--addr 127.0.0.1:0` picks
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
//! it with `cargo run --example echo_client`. Stop it with Ctrl-C or SIGTERM: it closes every
//! session with 1001 (going away), once the messages it has received are answered, and exits
//! when the clients have answered the close (10 s at most).

mod common;

use std::process::ExitCode;

use common::{EchoSetup, announce, echo_setup, serve_echo, shutdown_signal};

const USAGE: &str =
    "usage: echo_server [--addr IP:PORT] [--codec json|cbor|msgpack[,...]] [--compress]
  --addr   the address to listen on (default 127.0.0.1:8080; port 0 picks a free one)
  --codec  how messages are encoded (default json); a list such as msgpack,cbor,json is
           negotiated in that order through the subprotocol, and clients that offer none
           get the first
  --compress  accept permessage-deflate compression from clients that offer it";

#[tokio::main]
async fn main() -> ExitCode {
    let EchoSetup {
        listener,
        bound,
        config,
    } = match echo_setup(USAGE).await {
        Ok(setup) => setup,
        Err(code) => return code,
    };
    let stop = shutdown_signal();
    if let Err(code) = announce(bound) {
        return code;
    }

    serve_echo(listener, config, stop).await;
    ExitCode::SUCCESS
}
