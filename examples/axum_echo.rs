//! The typed echo server of `echo_server`, as a route of an axum router: every `ChatMessage`
//! it receives on `ws://ADDR/echo` goes back to the sender, encoded with the codec chosen on
//! the command line.
//!
//! ```text
//! cargo run --example axum_echo --features axum -- --addr 127.0.0.1:8080 --codec msgpack,cbor,json
//! ```
//!
//! `--compress` accepts permessage-deflate from clients that offer it. The other flags are
//! optional (defaults `127.0.0.1:8080` and `json`); `--addr 127.0.0.1:0` picks
//! a free port. `--codec` takes one codec or a list, negotiated in that order through the
//! subprotocol; a client that offers none gets the first. When it is ready it prints one line
//! on stdout, with the address it is bound to:
//!
//! ```text
//! listening on ws://127.0.0.1:8080/echo
//! ```
//!
//! What a client sees is what `echo_server` promises: its `ChatMessage` back; 1007 for a
//! message that does not decode, 1003 for the wrong kind of data frame, 1009 for a message
//! over 1 MiB; HTTP 404 for any path other than `/echo`. Stop it with Ctrl-C or SIGTERM, which
//! it answers as `echo_server` does: every session closed with 1001, then exit.

mod common;

use std::process::ExitCode;

use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::any;
use typed_ws::axum::WebSocketUpgrade;
use typed_ws::{AnyConverter, Config};

use common::{ECHO_PATH, EchoSetup, announce, echo_chat, echo_setup, log, shutdown_signal};

const USAGE: &str =
    "usage: axum_echo [--addr IP:PORT] [--codec json|cbor|msgpack[,...]] [--compress]
  --addr   the address to listen on (default 127.0.0.1:8080; port 0 picks a free one)
  --codec  how messages are encoded (default json); a list such as msgpack,cbor,json is
           negotiated in that order through the subprotocol, and clients that offer none
           get the first
  --compress  accept permessage-deflate compression from clients that offer it";

/// The echo route, for every method: a session that sends every `ChatMessage` back. A
/// request that is no upgrade (a POST, a plain GET) gets its HTTP error, logged.
async fn echo(
    State(config): State<Config<AnyConverter>>,
    method: Method,
    upgrade: Result<WebSocketUpgrade, Response>,
) -> Response {
    match upgrade {
        Ok(upgrade) => upgrade.on_upgrade(&config, echo_chat),
        Err(refusal) => {
            log(format!(
                "refused {method} {ECHO_PATH} with {}",
                refusal.status()
            ));
            refusal
        }
    }
}

/// Any other path: 404, logged as `echo_server` logs it.
async fn not_found(method: Method, uri: Uri) -> StatusCode {
    log(format!("refused {method} {} with 404", uri.path()));
    StatusCode::NOT_FOUND
}

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
    let app = Router::new()
        .route(ECHO_PATH, any(echo))
        .fallback(not_found)
        .with_state(config.clone());

    let stop = shutdown_signal();
    if let Err(code) = announce(bound) {
        return code;
    }

    // With the handshake deadline, connection limit and TCP_NODELAY of `echo_server`, which
    // plain `axum::serve` does not give.
    let served = typed_ws::axum::serve(listener, app, &config).with_graceful_shutdown(stop);
    if let Err(e) = served.await {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
