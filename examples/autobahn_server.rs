//! The server under test for the Autobahn|Testsuite (run by `kosoku -m fuzzingclient`): it
//! echoes every data message back through a typed-ws session.
//!
//! ```text
//! cargo run --release --example autobahn_server -- --addr 127.0.0.1:9002 [--fragment-size N] [--compress]
//! target/peers/venv/bin/kosoku -m fuzzingclient 127.0.0.1:9002 -i '1.*' -i '2.*' ...
//! ```
//!
//! `--fragment-size N` sends every echo longer than N bytes as fragments of at most N bytes;
//! `--compress` accepts permessage-deflate (cases 12 and 13 need it).
//! `tests/autobahn/run.sh` runs the whole conformance check. It prints
//! `listening on ws://ADDR` when ready.

mod autobahn;
mod common;

use std::io::Write;
use std::process::ExitCode;

use tokio::net::TcpListener;
use typed_ws::Server;

use autobahn::{autobahn_config, compress_all, echo_frames};
use common::{OFF, ON, parse_flags, usage_error};

const USAGE: &str = "usage: autobahn_server [--addr HOST:PORT] [--fragment-size N] [--compress]
  --addr           the address to listen on (default 127.0.0.1:9002)
  --fragment-size  send echoes longer than N bytes in fragments of N bytes (default: whole)
  --compress       accept permessage-deflate";

#[tokio::main]
async fn main() -> ExitCode {
    let [addr, fragment_size, compress] = match parse_flags(
        USAGE,
        [
            ("--addr", "127.0.0.1:9002"),
            ("--fragment-size", "0"),
            ("--compress", OFF),
        ],
    ) {
        Ok(values) => values,
        Err(code) => return code,
    };
    let config = match autobahn_config(&fragment_size, (compress == ON).then(compress_all)) {
        Ok(config) => config,
        Err(message) => return usage_error(USAGE, &message),
    };
    let listener = match TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().map_or(addr, |a| a.to_string());
    println!("listening on ws://{addr}");
    let _ = std::io::stdout().flush();
    Server::new(config).serve(listener, echo_frames).await;
    ExitCode::SUCCESS
}
