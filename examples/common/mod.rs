//! What the examples share: the message they exchange, the echo server, and flag parsing.
//!
//! It lives in `examples/common/mod.rs` rather than `examples/common.rs` so that cargo does
//! not take it for an example of its own.

// Each example uses only part of this module.
#![allow(dead_code)]

mod chat_message;

pub use chat_message::ChatMessage;

use std::process::ExitCode;
use std::sync::OnceLock;
use std::sync::mpsc::{SyncSender, sync_channel};

use tokio::net::TcpListener;
use typed_ws::http::{Request, StatusCode};
use typed_ws::{
    AnyConverter, CloseReason, Compression, Config, Converter, Error, Negotiation, Server, Session,
};

/// The only path the echo server accepts sessions on.
pub const ECHO_PATH: &str = "/echo";

/// The echo server's limit for a message and for a single frame: 1 MiB.
pub const ECHO_MAX_MESSAGE: usize = 1 << 20;

/// The configuration the echo server installs.
pub fn echo_config(codecs: Negotiation) -> Config<AnyConverter> {
    // The defaults (16 MiB frames, 64 MiB messages) suit bulk transfers; a chat echo has no
    // use for more than 1 MiB, and a lower bound limits what one client can make us buffer.
    Config::new()
        .negotiate(codecs)
        .max_message_size(ECHO_MAX_MESSAGE)
        .max_frame_size(ECHO_MAX_MESSAGE)
}

/// An echo server that speaks one codec, whatever the client offers or does not.
pub fn only(converter: AnyConverter) -> Negotiation {
    Negotiation::prefer(converter).fallback(converter)
}

/// Serves `ws://ADDR/echo` on `listener`, one task per connection, until `stop` completes;
/// then closes every session with 1001 and returns once they are closed. Other paths are
/// refused during the handshake, with a real HTTP status the client sees.
pub async fn serve_echo(
    listener: TcpListener,
    config: Config<AnyConverter>,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    let only_echo = |request: &Request<()>| {
        if request.uri().path() == ECHO_PATH {
            Ok(())
        } else {
            Err(StatusCode::NOT_FOUND)
        }
    };
    Server::new(config)
        .on_failure(|failure| log(failure.to_string()))
        .serve_with(listener, only_echo, echo_chat)
        .with_graceful_shutdown(stop)
        .await
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM, saying which on stderr. The handlers are in place
/// when this returns: call it before announcing the server, and a signal sent from then on
/// shuts it down rather than killing the process.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).expect("a SIGINT handler");
        let mut terminate = signal(SignalKind::terminate()).expect("a SIGTERM handler");
        async move {
            tokio::select! {
                _ = interrupt.recv() => "Ctrl-C",
                _ = terminate.recv() => "SIGTERM",
            }
        }
    };
    #[cfg(not(unix))]
    let signals = {
        let mut interrupt = tokio::signal::windows::ctrl_c().expect("a Ctrl-C handler");
        async move {
            interrupt.recv().await;
            "Ctrl-C"
        }
    };
    async move {
        let name = signals.await;
        // Straight to stderr: the process may end before `log`'s thread writes.
        eprintln!("{name}: closing every session with 1001 and shutting down");
    }
}

/// Writes `line` to stderr from a thread of its own, so that a slow or stalled stderr never
/// blocks a runtime thread; when 1,024 lines are already waiting, the line is dropped.
pub fn log(line: String) {
    static LINES: OnceLock<SyncSender<String>> = OnceLock::new();
    let lines = LINES.get_or_init(|| {
        let (tx, rx) = sync_channel::<String>(1024);
        std::thread::spawn(move || {
            use std::io::Write;
            for line in rx {
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        });
        tx
    });
    // A full queue means stderr is not keeping up: dropping the line beats stalling.
    let _ = lines.try_send(line);
}

/// Sends every `ChatMessage` back until the session ends. A message that is not one ends the
/// session with the close code that fits: 1007 if it does not decode, 1003 if it is the wrong
/// kind of data frame for the codec.
pub async fn echo_chat<C: Converter>(mut session: Session<C>) {
    let error = loop {
        match session.receive_deserialized::<ChatMessage>().await {
            Ok(message) => {
                if let Err(e) = session.send_serialized(&message).await {
                    break e;
                }
            }
            Err(e) => break e,
        }
    };
    close_for(session, &error).await;
}

/// Closes `session` with the close code that fits `error`, and says so on stderr. No code
/// means the session is already over (the client closed it or went away), which is how a
/// session normally ends. For limit and protocol violations the library has already sent the
/// close frame, and closing again does nothing.
pub async fn close_for<C: Converter>(mut session: Session<C>, error: &Error) {
    if let Some(code) = error.close_code() {
        log(format!("closing a session with {code}: {error}"));
        let _ = session
            .close(CloseReason::new(code, error.to_string()))
            .await;
    }
}

/// The codecs named on the command line (`json` or `msgpack,cbor,json`), negotiated in that
/// order; a client that offers none gets the first. A bad name is the usage error that lists
/// the known ones.
pub fn parse_codecs(names: &str, usage: &str) -> Result<Negotiation, ExitCode> {
    let first = names.split(',').next().unwrap_or_default().trim();
    let first = parse_converter(first, usage)?;
    let codecs = Negotiation::from_names(names).map_err(|e| usage_error(usage, &e.to_string()))?;
    Ok(codecs.fallback(first))
}

/// The converter named on the command line, or the usage error that lists the known ones.
pub fn parse_converter(name: &str, usage: &str) -> Result<AnyConverter, ExitCode> {
    AnyConverter::from_name(name).map_err(|e| usage_error(usage, &e.to_string()))
}

/// A flag default that makes the flag a switch: it takes no value, and reads [`ON`] when given.
pub const OFF: &str = "off";
/// What a switch reads when given.
pub const ON: &str = "on";

/// Parses `--name VALUE` and `--name=VALUE` flags, each given at most once, into their
/// values in the order of `flags`, using each flag's default when it is absent; a flag whose
/// default is [`OFF`] is a switch (`--name`). `-h` and `--help` print `usage` and exit 0;
/// anything else is a usage error (exit code 2).
pub fn parse_flags<const N: usize>(
    usage: &str,
    flags: [(&str, &str); N],
) -> Result<[String; N], ExitCode> {
    let mut values: [Option<String>; N] = std::array::from_fn(|_| None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            println!("{usage}");
            return Err(ExitCode::SUCCESS);
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let Some(slot) = flags.iter().position(|(flag, _)| *flag == name) else {
            return Err(usage_error(usage, &format!("unexpected argument {arg:?}")));
        };
        if values[slot].is_some() {
            return Err(usage_error(usage, &format!("{name} given twice")));
        }
        if flags[slot].1 == OFF {
            if inline.is_some() {
                return Err(usage_error(usage, &format!("{name} takes no value")));
            }
            values[slot] = Some(ON.to_owned());
            continue;
        }
        let value = match inline.or_else(|| args.next()) {
            Some(value) if !value.is_empty() => value,
            _ => return Err(usage_error(usage, &format!("{name} needs a value"))),
        };
        values[slot] = Some(value);
    }
    Ok(std::array::from_fn(|i| {
        values[i].take().unwrap_or_else(|| flags[i].1.to_owned())
    }))
}

/// Prints a usage error on stderr; gives the exit code for it, 2, as command-line tools do.
pub fn usage_error(usage: &str, message: &str) -> ExitCode {
    eprintln!("error: {message}\n{usage}");
    ExitCode::from(2)
}

/// What an echo server example starts from, read from its command line: the listener bound to
/// `--addr` (default 127.0.0.1:8080; port 0 picks a free one), the address it got, and the
/// codecs of `--codec` (default json).
pub struct EchoSetup {
    pub listener: TcpListener,
    pub bound: std::net::SocketAddr,
    /// [`echo_config`] for the codecs of `--codec`, with compression under `--compress`.
    pub config: Config<AnyConverter>,
}

/// Parses the flags (`--addr`, `--codec`, `--compress`) and binds the listener; on a usage or
/// bind error, says so on stderr and gives the exit code.
pub async fn echo_setup(usage: &str) -> Result<EchoSetup, ExitCode> {
    let [addr, codec, compress] = parse_flags(
        usage,
        [
            ("--addr", "127.0.0.1:8080"),
            ("--codec", "json"),
            ("--compress", OFF),
        ],
    )?;
    let addr: std::net::SocketAddr = addr
        .parse()
        .map_err(|_| usage_error(usage, &format!("--addr {addr:?} is not an IP:PORT address")))?;
    let codecs = parse_codecs(&codec, usage)?;
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        eprintln!("error: cannot listen on {addr}: {e}");
        ExitCode::FAILURE
    })?;
    // Port 0 means the system chose; whoever reads the listening line needs the real port.
    let bound = listener.local_addr().map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    })?;
    let config = echo_config(codecs);
    let config = if compress == ON {
        config.compression(Compression::new())
    } else {
        config
    };
    Ok(EchoSetup {
        listener,
        bound,
        config,
    })
}

/// Prints `listening on ws://ADDR/echo`, flushed: scripts wait for this line before they
/// connect, so it must not sit in a buffer.
pub fn announce(bound: std::net::SocketAddr) -> Result<(), ExitCode> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on ws://{bound}{ECHO_PATH}")
        .and_then(|()| stdout.flush())
        .map_err(|e| {
            eprintln!("error: cannot write to stdout: {e}");
            ExitCode::FAILURE
        })
}
