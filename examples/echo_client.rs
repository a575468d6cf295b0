//! The client from Ktor's "WebSockets in Ktor Client" page, with typed messages: every line
//! typed becomes a `ChatMessage`, and every echo the server sends back is printed.
//!
//! Start the echo server, then the client, with the same codec:
//!
//! ```text
//! cargo run --example echo_server -- --codec cbor
//! cargo run --example echo_client -- --url ws://127.0.0.1:8080/echo --codec cbor
//! ```
//!
//! Both flags are optional (defaults `ws://127.0.0.1:8080/echo` and `json`). Type lines; each
//! comes back as `echo #1 from ada: hello`, the author being `$USER`. End the input
//! (Ctrl-D, or the end of a piped file) to close the session with 1000 and exit; echoes still
//! on their way are printed first:
//!
//! ```text
//! printf 'hello\nworld\n' | cargo run --example echo_client
//! ```
//!
//! The program exits with 1 if it cannot connect or the server ends the session first, and
//! with 2 on a bad flag.

mod common;

use std::process::ExitCode;
use std::time::Duration;

use tokio::sync::mpsc;
use typed_ws::{Client, Config, Converter, Error, SendHalf};

use common::{ChatMessage, parse_converter, parse_flags};

const USAGE: &str = "usage: echo_client [--url ws://HOST:PORT/PATH] [--codec json|cbor|msgpack]
  --url    the echo server (default ws://127.0.0.1:8080/echo)
  --codec  how messages are encoded; must match the server's (default json)";

/// How long to wait, once the input has ended, for the echoes still on their way.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> ExitCode {
    let [url, codec] = match parse_flags(
        USAGE,
        [("--url", "ws://127.0.0.1:8080/echo"), ("--codec", "json")],
    ) {
        Ok(values) => values,
        Err(code) => return code,
    };
    let converter = match parse_converter(&codec, USAGE) {
        Ok(converter) => converter,
        Err(code) => return code,
    };
    let author = std::env::var("USER")
        .ok()
        .filter(|user| !user.is_empty())
        .unwrap_or_else(|| "anonymous".to_owned());
    let lines = stdin_lines();

    // Ktor: HttpClient { install(WebSockets) { pingInterval = 20.seconds; contentConverter = ... } }
    let client = Client::new(
        Config::new()
            .converter(converter)
            .ping_interval(Duration::from_secs(20)),
    );

    // Ktor: client.webSocket(...) { launch { outputMessages() }; launch { inputMessages() } }
    let outcome = client
        .web_socket(url.as_str(), async move |session| -> Result<(), Error> {
            // Split so that printing echoes never waits for the next line of input.
            let (mut tx, mut rx) = session.split();
            let input = input_messages(&mut tx, lines, &author);
            tokio::pin!(input);
            let mut echoed = 0;
            // When the input wins, the unfinished receive is dropped; that loses nothing, as
            // frames wait in the session until a receive takes them.
            let sent = loop {
                tokio::select! {
                    sent = &mut input => break sent?,
                    echo = rx.receive_deserialized() => {
                        output_message(echo)?;
                        echoed += 1;
                    }
                }
            };
            // Some servers answer a close frame at once and drop the echoes they still owe,
            // so collect every echo before returning, which closes the session.
            let rest = async {
                while echoed < sent {
                    output_message(rx.receive_deserialized().await)?;
                    echoed += 1;
                }
                Ok(())
            };
            tokio::time::timeout(CLOSE_WAIT, rest)
                .await
                .unwrap_or_else(|_| {
                    eprintln!("gave up waiting for {} echoes", sent - echoed);
                    Ok(())
                })
        })
        .await;

    match outcome {
        Ok(()) => {
            eprintln!("Connection closed. Goodbye!");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", e.report());
            ExitCode::FAILURE
        }
    }
}

/// Prints an echo. Something that is not a `ChatMessage` is reported and skipped, as Ktor's
/// client does with frames it does not expect; any other error ends the session.
fn output_message(echo: Result<ChatMessage, Error>) -> Result<(), Error> {
    match echo {
        Ok(message) => println!(
            "echo #{} from {}: {}",
            message.id, message.author, message.text
        ),
        Err(e @ (Error::Decode { .. } | Error::UnexpectedFrame { .. })) => {
            eprintln!("Error while receiving: {e}");
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Sends each line as a `ChatMessage` until the input ends; gives how many went out.
async fn input_messages<C: Converter>(
    tx: &mut SendHalf<C>,
    mut lines: mpsc::Receiver<String>,
    author: &str,
) -> Result<u64, Error> {
    let mut id = 0;
    while let Some(text) = lines.recv().await {
        id += 1;
        let message = ChatMessage {
            id,
            author: author.to_owned(),
            text,
            tags: Vec::new(),
            reply_to: None,
        };
        tx.send_serialized(&message).await?;
    }
    Ok(id)
}

/// The lines of stdin, read on a thread of their own: a read of tokio's stdin cannot be
/// cancelled, so if the server ended the session while we waited for input, the program
/// could not exit until Enter was pressed. A thread left reading does not hold up the exit.
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let line = match line {
                Ok(line) => line,
                Err(e) => {
                    eprintln!("cannot read stdin: {e}");
                    break;
                }
            };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}
