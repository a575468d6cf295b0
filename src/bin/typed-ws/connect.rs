//! `typed-ws connect`: JSON lines from stdin to the server, messages from the server to
//! stdout as JSON lines.

use std::io::{BufRead, Write};
use std::time::Duration;

use tokio::sync::mpsc;
use typed_ws::{AnyConverter, Client, CloseCode, CloseReason, Config, Error, RecvHalf};

use crate::cli::ConnectArgs;
use crate::value::Value;
use crate::{Failure, report};

/// How long to wait for the server to answer our close when no `--timeout` is set.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// One line of stdin, numbered from 1, or the error that ended reading.
pub type Line = std::io::Result<(u64, Vec<u8>)>;

pub async fn run(args: ConnectArgs) -> Result<(), Failure> {
    // Even one codec is offered: a negotiating server would otherwise pick its own first
    // codec, and the session would misread every message.
    let negotiation = args
        .codec
        .client_negotiation(args.subprotocol_prefix.as_deref());
    let config = args.session.apply(Config::new().negotiate(negotiation));
    let close_wait = args.session.timeout.unwrap_or(CLOSE_WAIT);

    let client = Client::new(config);
    let mut request = client.request(args.url.as_str());
    for header in args.headers {
        request = request.header(header.name, header.value);
    }
    for subprotocol in args.subprotocols {
        request = request.subprotocol(subprotocol);
    }

    // Lines typed or piped while the handshake runs wait in the channel.
    let mut lines = read_stdin();
    if args.reconnect {
        return crate::reconnect::run(request.reconnecting(), &args.url, lines).await;
    }
    let session = request
        .web_socket_session()
        .await
        .map_err(|e| Failure::io(format!("cannot connect to {}: {}", args.url, e.report())))?;
    let (mut tx, rx) = session.split();
    let mut receiver = tokio::spawn(print_messages(rx));

    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            ended = &mut receiver => return joined(ended),
            // Ctrl-C ends the session as cleanly as the end of stdin does.
            _ = &mut interrupted => {
                let _ = tx.close(CloseReason::new(CloseCode::GoingAway, "")).await;
                break;
            }
            line = lines.recv() => match line {
                Some(Ok((number, line))) => {
                    let Some(value) = parse_line(number, &line) else {
                        continue;
                    };
                    match tx.send_serialized(&value).await {
                        Ok(()) => {}
                        Err(e @ Error::Encode { .. }) => report(&format!("stdin line {number}: {}; skipped", e.report())),
                        // The session is over; the receiver tells how it ended.
                        Err(_) => break,
                    }
                }
                Some(Err(e)) => {
                    let _ = tx.close(CloseReason::new(CloseCode::GoingAway, "")).await;
                    return Err(Failure::io(format!("cannot read stdin: {e}")));
                }
                None => {
                    // A session that is already over has its reason in the receiver.
                    let _ = tx.close(CloseReason::new(CloseCode::Normal, "")).await;
                    break;
                }
            }
        }
    }
    match tokio::time::timeout(close_wait, receiver).await {
        Ok(ended) => joined(ended),
        Err(_) => Err(Failure::session(format!(
            "the server did not answer the close within {}s",
            close_wait.as_secs_f64()
        ))),
    }
}

/// Parses one stdin line; an empty line is skipped silently, one that is not JSON with a
/// message on stderr.
pub fn parse_line(number: u64, line: &[u8]) -> Option<serde_json::Value> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    match serde_json::from_slice(line) {
        Ok(value) => Some(value),
        Err(e) => {
            // The position within the line is the column; its line is always 1.
            let text = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            let what = text.strip_suffix(&suffix).unwrap_or(&text);
            report(&format!(
                "stdin line {number} is not JSON ({what} at column {}); skipped",
                e.column()
            ));
            None
        }
    }
}

/// Prints every message until the session ends; `Ok` for a clean close (1000, 1001, or a
/// close frame without a code).
async fn print_messages(mut rx: RecvHalf<AnyConverter>) -> Result<(), Failure> {
    loop {
        let decoded = rx
            .receive_message()
            .await
            .and_then(|frame| Value::decode(rx.converter(), &frame));
        match decoded {
            Ok(value) => print(&value)?,
            Err(e @ (Error::Decode { .. } | Error::UnexpectedFrame { .. })) => {
                report(&format!("{}; skipped", e.report()));
            }
            Err(Error::Closed(reason)) => {
                return match reason.code {
                    CloseCode::Normal | CloseCode::GoingAway | CloseCode::NoStatus => Ok(()),
                    CloseCode::Abnormal => Err(Failure::session(
                        "the connection dropped without a close frame",
                    )),
                    _ => Err(Failure::session(format!(
                        "the server closed the session with {reason}"
                    ))),
                };
            }
            Err(e) => return Err(Failure::session(e.report().to_string())),
        }
    }
}

/// Prints a received value as one JSON line, flushed.
pub fn print(value: &Value) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", value.to_json())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::io(format!("cannot write to stdout: {e}")))
}

pub fn joined(ended: Result<Result<(), Failure>, tokio::task::JoinError>) -> Result<(), Failure> {
    ended.unwrap_or_else(|e| Err(Failure::session(format!("the receiving task failed: {e}"))))
}

/// Reads stdin on a thread of its own (a blocking read has no place on the runtime), line by
/// line; the channel closes at the end of stdin.
fn read_stdin() -> mpsc::Receiver<Line> {
    let (lines, receiver) = mpsc::channel(64);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut number = 0;
        loop {
            let mut line = Vec::new();
            let item = match stdin.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {
                    number += 1;
                    Ok((number, line))
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            // The receiver is gone once the session is over: nothing left to read for.
            if lines.blocking_send(item).is_err() || failed {
                break;
            }
        }
    });
    receiver
}
