//! `typed-ws serve`: an echo server that decodes every message and sends it back re-encoded.

use std::io::Write;

use tokio::net::TcpListener;
use typed_ws::http::StatusCode;
use typed_ws::{AnyConverter, CloseReason, Config, Server, Session};

use crate::cli::ServeArgs;
use crate::value::Value;
use crate::{Failure, report};

pub async fn run(args: ServeArgs) -> Result<(), Failure> {
    // Clients that offer no subprotocol at all (most of them) get the first codec.
    let negotiation = args
        .codec
        .negotiation(args.subprotocol_prefix.as_deref())
        .fallback(args.codec.first());
    let config = args.session.apply(Config::new().negotiate(negotiation));

    let listener = TcpListener::bind(args.addr)
        .await
        .map_err(|e| Failure::io(format!("cannot listen on {}: {e}", args.addr)))?;
    // With port 0 the system chose; whoever reads this line needs the real port.
    let bound = listener
        .local_addr()
        .map_err(|e| Failure::io(format!("cannot listen on {}: {e}", args.addr)))?;
    let path = args.path;
    // Before the line below: whoever reads it may signal at once.
    let stop = stop_signal()
        .map_err(|e| Failure::io(format!("cannot listen for Ctrl-C and SIGTERM: {e}")))?;
    // Scripts wait for this line before connecting, so it must not sit in a buffer.
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "listening on ws://{bound}{}",
        path.as_deref().unwrap_or_default()
    )
    .and_then(|()| stdout.flush())
    .map_err(|e| Failure::io(format!("cannot write to stdout: {e}")))?;
    drop(stdout);

    let check = move |request: &typed_ws::http::Request<()>| match &path {
        Some(path) if request.uri().path() != path => Err(StatusCode::NOT_FOUND),
        _ => Ok(()),
    };
    Server::new(config)
        .serve_with(listener, check, echo)
        .with_graceful_shutdown(stop)
        .await;
    Ok(())
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM. The handlers are in place when this returns, so
/// neither signal kills the process from then on.
#[cfg(unix)]
fn stop_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Completes on Ctrl-C, the one signal there is.
#[cfg(not(unix))]
fn stop_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    let mut interrupt = tokio::signal::windows::ctrl_c()?;
    Ok(async move {
        interrupt.recv().await;
    })
}

/// Sends every message back, decoded into its codec's value type and re-encoded, until the
/// session ends. One that does not decode closes the session with 1007, one of the wrong frame
/// type with 1003 ([`typed_ws::Error::close_code`]).
async fn echo(mut session: Session<AnyConverter>) {
    let error = loop {
        let decoded = session
            .receive_message()
            .await
            .and_then(|frame| Value::decode(session.converter(), &frame));
        match decoded {
            Ok(value) => {
                if let Err(e) = session.send_serialized(&value).await {
                    break e;
                }
            }
            Err(e) => break e,
        }
    };
    // No code: the session is already over (the client closed it or went away). Limit and
    // protocol violations have already been answered with a close, and closing again does
    // nothing.
    if let Some(code) = error.close_code() {
        report(&format!(
            "closing a session with {code}: {}",
            error.report()
        ));
        let _ = session
            .close(CloseReason::new(code, error.to_string()))
            .await;
    }
}
