//! The client under test for the Autobahn|Testsuite (run by `kosoku -m fuzzingserver`): it
//! asks the fuzzing server how many cases there are, runs each one by echoing every data
//! message back through a typed-ws session, then asks the server to write its reports.
//!
//! ```text
//! target/peers/venv/bin/kosoku -m fuzzingserver 127.0.0.1:9001 -i '1.*' ...
//! cargo run --release --example autobahn_client -- --url ws://127.0.0.1:9001 [--fragment-size N] [--compress]
//! ```
//!
//! `--fragment-size N` sends every echo longer than N bytes as fragments of at most N bytes;
//! `--compress` offers permessage-deflate (cases 12 and 13 need it), saying that the client
//! keeps no context between its messages.
//! `tests/autobahn/run.sh` runs the whole conformance check.

mod autobahn;
mod common;

use std::process::ExitCode;

use typed_ws::{Client, CloseCode, CloseReason};

use autobahn::{autobahn_config, compress_all, echo_frames};
use common::{OFF, ON, parse_flags, usage_error};

const AGENT: &str = "typed-ws";

const USAGE: &str = "usage: autobahn_client [--url ws://HOST:PORT] [--fragment-size N] [--compress]
  --url            the fuzzing server (default ws://127.0.0.1:9001)
  --fragment-size  send echoes longer than N bytes in fragments of N bytes (default: whole)
  --compress       offer permessage-deflate";

#[tokio::main]
async fn main() -> ExitCode {
    let [url, fragment_size, compress] = match parse_flags(
        USAGE,
        [
            ("--url", "ws://127.0.0.1:9001"),
            ("--fragment-size", "0"),
            ("--compress", OFF),
        ],
    ) {
        Ok(values) => values,
        Err(code) => return code,
    };
    // The offer says the client keeps no context between the messages it sends:
    // Autobahn's server asks for that (cases 13.2, 13.5, 13.6) only of a client whose offer
    // says it would, where RFC 7692 lets a server ask any client.
    let compression = (compress == ON).then(|| compress_all().no_context_takeover());
    let config = match autobahn_config(&fragment_size, compression) {
        Ok(config) => config,
        Err(message) => return usage_error(USAGE, &message),
    };
    let url = url.trim_end_matches('/');
    let client = Client::new(config);

    let count = match case_count(&client, url).await {
        Ok(count) => count,
        Err(e) => {
            eprintln!("error: cannot get the case count from {url}: {e}");
            return ExitCode::FAILURE;
        }
    };
    for case in 1..=count {
        match client
            .web_socket_session(format!("{url}/runCase?case={case}&agent={AGENT}"))
            .await
        {
            Ok(session) => echo_frames(session).await,
            // A case may refuse or break the handshake on purpose; the report tells.
            Err(e) => eprintln!("case {case}: {}", e.report()),
        }
    }
    let report = client.web_socket(format!("{url}/updateReports?agent={AGENT}"), async |_| {
        Ok::<_, typed_ws::Error>(())
    });
    if let Err(e) = report.await {
        eprintln!("error: cannot update the reports: {}", e.report());
        return ExitCode::FAILURE;
    }
    println!("ran {count} cases");
    ExitCode::SUCCESS
}

async fn case_count(client: &Client, url: &str) -> Result<u32, String> {
    let mut session = client
        .web_socket_session(format!("{url}/getCaseCount"))
        .await
        .map_err(|e| e.report().to_string())?;
    let frame = session
        .receive()
        .await
        .map_err(|e| e.report().to_string())?;
    let _ = session.close(CloseReason::new(CloseCode::Normal, "")).await;
    frame
        .as_text()
        .and_then(|text| text.trim().parse().ok())
        .ok_or_else(|| format!("expected a number in a text frame, got {frame:?}"))
}
