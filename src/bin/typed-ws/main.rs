//! `typed-ws`: typed WebSocket sessions from the shell.
//!
//! `typed-ws connect URL --codec cbor` sends each JSON line of stdin encoded with the codec
//! and prints every message it receives as a JSON line; `typed-ws serve` runs an echo server.
//! `typed-ws --help` tells the options and exit codes.

mod cli;
mod connect;
mod reconnect;
mod serve;
mod value;

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use cli::{Cli, Command};

/// Why the program stops before its end, with the exit code that says so.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// Exit code 1: could not connect or listen, or stdin/stdout failed.
    pub fn io(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
        }
    }

    /// Exit code 3: the session ended other than with a clean close.
    pub fn session(message: impl Into<String>) -> Self {
        Failure {
            code: 3,
            message: message.into(),
        }
    }
}

/// Prints a message on stderr as the one line `typed-ws: MESSAGE`.
pub fn report(message: &str) {
    let line = message.split_whitespace().collect::<Vec<_>>().join(" ");
    eprintln!("typed-ws: {line}");
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            report(&format!("cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let outcome = match cli.command {
        Command::Connect(args) => runtime.block_on(connect::run(args)),
        Command::Serve(args) => runtime.block_on(serve::run(args)),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            report(&failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// Help and version go to stdout with exit code 0, as clap does; a usage error is one line on
/// stderr (clap's first paragraph) and exit code 2.
fn usage_error(e: clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        _ => {
            let text = e.to_string();
            let first_paragraph = text.split("\n\n").next().unwrap_or_default();
            let message = first_paragraph.trim().trim_start_matches("error: ");
            report(&format!("{message} (see --help)"));
            ExitCode::from(2)
        }
    }
}
