//! `typed-ws connect --reconnect`: the same JSON lines in and out, over connections made
//! again whenever one is lost to something that may pass.

use tokio::sync::mpsc;
use typed_ws::{
    AnyConverter, CloseCode, CloseReason, Error, Reconnect, ReconnectState, Reconnecting, Stop,
};

use crate::connect::{Line, joined, parse_line, print};
use crate::value::Value;
use crate::{Failure, report};

pub async fn run(
    reconnect: Reconnect<AnyConverter>,
    url: &str,
    mut lines: mpsc::Receiver<Line>,
) -> Result<(), Failure> {
    let client = reconnect.on_state(announce()).start();
    let mut printer = tokio::spawn(print_messages(client.clone(), url.to_owned()));

    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let reason = loop {
        tokio::select! {
            ended = &mut printer => return joined(ended),
            _ = &mut interrupted => break CloseReason::new(CloseCode::GoingAway, ""),
            line = lines.recv() => match line {
                Some(Ok((number, line))) => {
                    let Some(value) = parse_line(number, &line) else {
                        continue;
                    };
                    // Ctrl-C must still work while a line waits for the connection.
                    let sent = tokio::select! {
                        sent = send(&client, &value) => sent,
                        _ = &mut interrupted => break CloseReason::new(CloseCode::GoingAway, ""),
                    };
                    match sent {
                        Ok(()) => {}
                        Err(e @ Error::Encode { .. }) => report(&format!("stdin line {number}: {}; skipped", e.report())),
                        // The client has stopped; the printer tells why.
                        Err(_) => break CloseReason::new(CloseCode::Normal, ""),
                    }
                }
                Some(Err(e)) => {
                    client.close(CloseReason::new(CloseCode::GoingAway, "")).await;
                    return Err(Failure::io(format!("cannot read stdin: {e}")));
                }
                None => {
                    // Like the lines before it, the end of stdin waits for a connection to
                    // close: a run is never over before it has connected, or failed to.
                    let code = tokio::select! {
                        _ = client.connected() => CloseCode::Normal,
                        _ = &mut interrupted => CloseCode::GoingAway,
                    };
                    break CloseReason::new(code, "");
                }
            }
        }
    };
    // Closing a client that has stopped does nothing: the printer has its reason.
    client.close(reason).await;
    joined(printer.await)
}

/// Prints every state change that the user should see, one line each: connections, and
/// each wait with what caused it. A stop is left to the final report.
fn announce() -> impl FnMut(&ReconnectState) + Send + 'static {
    let mut cause = String::new();
    move |state| match state {
        ReconnectState::Connected => report("connected"),
        ReconnectState::Lost { .. } | ReconnectState::Failed { .. } => cause = state.to_string(),
        ReconnectState::Waiting { attempt, delay } => report(&format!(
            "{cause}; reconnecting in {:.3}s (attempt {attempt})",
            delay.as_secs_f64()
        )),
        _ => {}
    }
}

/// Sends once connected, and again after a reconnection when the connection dropped under
/// the send: lines wait, in order, while the client is disconnected.
async fn send(client: &Reconnecting<AnyConverter>, value: &serde_json::Value) -> Result<(), Error> {
    loop {
        match client.send_serialized(value).await {
            Err(
                Error::NotConnected { .. } | Error::Closed(_) | Error::Io(_) | Error::Timeout(_),
            ) => {
                // The client sees a loss after the send that met it; wait for it to, then for
                // the next connection (or the stop, whose error this gives).
                let mut state = client.state();
                let _ = state
                    .wait_for(|state| !matches!(state, ReconnectState::Connected))
                    .await;
                client.connected().await?;
            }
            sent => return sent,
        }
    }
}

/// Prints every message until the client stops; then reports the stop as `connect` without
/// `--reconnect` reports the end of its session, exit codes included.
async fn print_messages(client: Reconnecting<AnyConverter>, url: String) -> Result<(), Failure> {
    loop {
        let decoded = client
            .receive_message()
            .await
            .and_then(|(frame, converter)| Value::decode(&converter, &frame));
        match decoded {
            Ok(value) => print(&value)?,
            Err(e @ (Error::Decode { .. } | Error::UnexpectedFrame { .. })) => {
                report(&format!("{}; skipped", e.report()));
            }
            Err(_) => break,
        }
    }
    let state = client.state();
    let ReconnectState::Stopped(stop) = &*state.borrow() else {
        return Err(Failure::session(
            "the reconnecting client ended without stopping",
        ));
    };
    match stop {
        // Ours: the end of stdin or Ctrl-C.
        Stop::Closed(_) => Ok(()),
        Stop::Permanent(error) => match &**error {
            Error::Closed(reason)
                if matches!(reason.code, CloseCode::Normal | CloseCode::NoStatus) =>
            {
                Ok(())
            }
            error => Err(failure(error, &url, "")),
        },
        Stop::GaveUp { attempts, last } => Err(failure(
            last,
            &url,
            &format!(" (gave up after {attempts} attempts)"),
        )),
        _ => Err(Failure::session("the reconnecting client stopped")),
    }
}

/// The report and exit code of what stopped the client: 1 for a connection that could not
/// be made, 3 for a session that ended abnormally, as without `--reconnect`.
fn failure(error: &Error, url: &str, suffix: &str) -> Failure {
    match error {
        Error::Io(_)
        | Error::Handshake { .. }
        | Error::HandshakeTimeout(_)
        | Error::InvalidUrl { .. } => Failure::io(format!(
            "cannot connect to {url}: {}{suffix}",
            error.report()
        )),
        Error::Closed(reason) if reason.code == CloseCode::Abnormal => Failure::session(format!(
            "the connection dropped without a close frame{suffix}"
        )),
        Error::Closed(reason) => Failure::session(format!(
            "the server closed the session with {reason}{suffix}"
        )),
        error => Failure::session(format!("{}{suffix}", error.report())),
    }
}
