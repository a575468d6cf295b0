//! A reconnecting client against real servers: the `echo_server` example killed with SIGKILL
//! and restarted on the same port, frozen with SIGSTOP and thawed, one refusing with 400, and
//! in-test servers closing with 1008 and 1013. The client reconnects where it should and never
//! where it should not, waits what its backoff says, and runs its hook on every connection.
//! The delays' exact values are checked on tokio's paused clock in `src/reconnect/tests.rs`;
//! here they are checked against the wall clock.
#![cfg(all(unix, feature = "json", feature = "cbor"))]

use crate::common;

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::Child;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::time::Instant;
use typed_ws::{
    Backoff, Client, CloseCode, CloseReason, Config, Error, JsonConverter, Negotiation, Reconnect,
    ReconnectState, Reconnecting, Server, Stop,
};

use common::{ChatMessage, chat, within};

const MS: Duration = Duration::from_millis(1);

/// The `echo_server` example in a child process, killed when dropped.
struct Echo {
    child: Child,
    /// `127.0.0.1:PORT`.
    addr: String,
    url: String,
}

impl Echo {
    async fn start(addr: &str, codec: &str) -> Echo {
        let mut child = tokio::process::Command::new(common::examples::build("echo_server"))
            .args(["--addr", addr, "--codec", codec])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the echo_server example");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let line = within("the listening line", lines.next_line())
            .await
            .expect("read stdout")
            .expect("echo_server exited before listening");
        let url = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        let addr = url["ws://".len()..].trim_end_matches("/echo").to_owned();
        Echo { child, addr, url }
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("a running child").to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {pid}: {status}");
    }

    /// SIGKILL, and waits until the process is gone, its port with it.
    async fn kill(mut self) {
        within("the kill", self.child.kill())
            .await
            .expect("kill -9");
    }
}

/// Every state the client goes through, in order, with the time it came; the channel ends
/// when the client's task does.
struct States(UnboundedReceiver<(Instant, ReconnectState)>);

impl States {
    /// The next state `wanted` accepts, after those it skips (returned with it).
    async fn until(
        &mut self,
        what: &str,
        wanted: impl Fn(&ReconnectState) -> bool,
    ) -> Vec<(Instant, ReconnectState)> {
        let mut seen = Vec::new();
        loop {
            let next = within(what, self.0.recv()).await;
            let (at, state) = next.unwrap_or_else(|| panic!("{what}: ended after {seen:?}"));
            let done = wanted(&state);
            seen.push((at, state));
            if done {
                return seen;
            }
        }
    }

    /// The rest of the states, up to the end of the client's task.
    async fn rest(&mut self) -> Vec<ReconnectState> {
        let mut rest = Vec::new();
        while let Some((_, state)) = within("the end of the client's task", self.0.recv()).await {
            rest.push(state);
        }
        rest
    }
}

/// Starts `reconnect` with a hook that sends the chat message 1000 + N on its Nth
/// connection; gives the client, its states and the count of hook runs.
fn start(
    reconnect: Reconnect<JsonConverter>,
) -> (Reconnecting<JsonConverter>, States, Arc<AtomicU32>) {
    let (tx, rx) = unbounded_channel();
    let hooks = Arc::new(AtomicU32::new(0));
    let counted = hooks.clone();
    let client = reconnect
        .on_connect(move |mut session| {
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                session.send_serialized(&chat(1000 + u64::from(n))).await?;
                Ok(session)
            }
        })
        .on_state(move |state| {
            let _ = tx.send((Instant::now(), state.clone()));
        })
        .start();
    (client, States(rx), hooks)
}

async fn receive(client: &Reconnecting<JsonConverter>) -> ChatMessage {
    within("a message", client.receive_deserialized())
        .await
        .expect("a chat message")
}

/// Each wait lasted at least its delay, which is within the backoff's window for its attempt
/// (plus `busy` after a 1012 or 1013); `states` holds each wait and the attempt after it.
fn assert_waits_in_bounds(states: &[(Instant, ReconnectState)], backoff: &Backoff, busy: Duration) {
    let mut waits = 0;
    for pair in states.windows(2) {
        if let [
            (at, ReconnectState::Waiting { attempt, delay }),
            (next, following),
        ] = pair
        {
            waits += 1;
            assert!(
                matches!(following, ReconnectState::Connecting { attempt: a } if a == attempt),
                "{following:?} after the wait for attempt {attempt}"
            );
            assert!(
                *delay <= busy + backoff.window(*attempt),
                "{attempt}: {delay:?}"
            );
            let waited = *next - *at;
            // The wall clock: at least the delay, and not much more on a busy machine.
            assert!(
                waited >= *delay && waited < *delay + Duration::from_secs(2),
                "{attempt}: waited {waited:?} for {delay:?}"
            );
        }
    }
    assert!(waits > 0, "no wait in {states:?}");
}

#[tokio::test]
async fn a_server_killed_and_restarted_on_the_same_port_is_reconnected_and_hears_the_hook_again() {
    let server = Echo::start("127.0.0.1:0", "json").await;
    let backoff = Backoff::new().initial(50 * MS).cap(400 * MS);
    let client = Client::new(Config::new().converter(JsonConverter));
    let (client, mut states, hooks) = start(
        client
            .reconnecting(server.url.as_str())
            .backoff(backoff.clone()),
    );
    within("the connection", client.connected())
        .await
        .expect("connected");
    assert_eq!(receive(&client).await, chat(1001), "the hook's message");
    client.send_serialized(&chat(1)).await.expect("send");
    assert_eq!(receive(&client).await, chat(1));

    let addr = server.addr.clone();
    server.kill().await;
    let lost = states
        .until("the loss", |s| matches!(s, ReconnectState::Lost { .. }))
        .await;
    let ReconnectState::Lost { cause } = &lost.last().expect("a state").1 else {
        unreachable!()
    };
    assert!(
        matches!(&**cause, Error::Closed(r) if r.code == CloseCode::Abnormal)
            || matches!(&**cause, Error::Io(_)),
        "a killed server drops the connection: {cause:?}"
    );
    // Refused while it is down.
    let refused = states
        .until("a refused attempt", |s| {
            matches!(s, ReconnectState::Failed { .. })
        })
        .await;
    let ReconnectState::Failed { cause, .. } = &refused.last().expect("a state").1 else {
        unreachable!()
    };
    assert!(matches!(&**cause, Error::Io(_)), "{cause:?}");

    let _server = Echo::start(&addr, "json").await;
    let back = states
        .until("the reconnection", |s| {
            matches!(s, ReconnectState::Connected)
        })
        .await;
    assert_eq!(hooks.load(Ordering::SeqCst), 2, "the hook ran again");
    assert_eq!(receive(&client).await, chat(1002), "the hook's message");
    client.send_serialized(&chat(2)).await.expect("send");
    assert_eq!(receive(&client).await, chat(2));
    let mut all = lost;
    all.extend(refused);
    all.extend(back);
    assert_waits_in_bounds(&all, &backoff, Duration::ZERO);
}

#[tokio::test]
async fn a_frozen_server_times_out_and_is_reconnected_once_thawed() {
    let server = Echo::start("127.0.0.1:0", "json").await;
    let config = Config::new()
        .converter(JsonConverter)
        .ping_interval(100 * MS)
        .timeout(1000 * MS)
        .handshake_timeout(800 * MS);
    let backoff = Backoff::new().initial(50 * MS).cap(200 * MS);
    let (client, mut states, hooks) = start(
        Client::new(config)
            .reconnecting(server.url.as_str())
            .backoff(backoff.clone()),
    );
    within("the connection", client.connected())
        .await
        .expect("connected");
    assert_eq!(receive(&client).await, chat(1001));

    server.signal("-STOP");
    let lost = states
        .until("the timeout", |s| matches!(s, ReconnectState::Lost { .. }))
        .await;
    let ReconnectState::Lost { cause } = &lost.last().expect("a state").1 else {
        unreachable!()
    };
    assert!(matches!(&**cause, Error::Timeout(_)), "{cause:?}");
    // The kernel still takes connections for it; nothing answers them.
    let frozen = states
        .until("a handshake timeout", |s| {
            matches!(s, ReconnectState::Failed { cause, .. } if matches!(**cause, Error::HandshakeTimeout(_)))
        })
        .await;
    assert_eq!(hooks.load(Ordering::SeqCst), 1);

    server.signal("-CONT");
    let back = states
        .until("the reconnection", |s| {
            matches!(s, ReconnectState::Connected)
        })
        .await;
    assert_eq!(hooks.load(Ordering::SeqCst), 2, "the hook ran again");
    assert_eq!(receive(&client).await, chat(1002));
    client.send_serialized(&chat(3)).await.expect("send");
    assert_eq!(receive(&client).await, chat(3));
    let mut all = lost;
    all.extend(frozen);
    all.extend(back);
    assert_waits_in_bounds(&all, &backoff, Duration::ZERO);
}

#[tokio::test]
async fn a_400_refusal_stops_the_client_without_a_retry() {
    // It speaks CBOR only; the client offers JSON only: 400, no common converter.
    let server = Echo::start("127.0.0.1:0", "cbor").await;
    let config = Config::new().negotiate(Negotiation::prefer(JsonConverter));
    let (client, mut states, hooks) = start(Client::new(config).reconnecting(server.url.as_str()));
    let error = within("the stop", client.connected())
        .await
        .expect_err("refused");
    assert_eq!(error.status().map(u16::from), Some(400), "{error}");
    // The task has ended: the states stop there.
    let states = states.rest().await;
    assert!(
        matches!(
            states.as_slice(),
            [
                ReconnectState::Connecting { attempt: 0 },
                ReconnectState::Failed { attempt: 0, .. },
                ReconnectState::Stopped(Stop::Permanent(_)),
            ]
        ),
        "{states:?}"
    );
    assert_eq!(hooks.load(Ordering::SeqCst), 0);
    let error = client.send_serialized(&chat(1)).await.expect_err("stopped");
    assert_eq!(error.status().map(u16::from), Some(400));
}

/// A server on a free port whose sessions each run `handler` with their number, from 1.
async fn numbered<F, Fut>(handler: F) -> (String, Arc<AtomicU32>)
where
    F: Fn(u32, typed_ws::Session<JsonConverter>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("addr"));
    let sessions = Arc::new(AtomicU32::new(0));
    let counted = sessions.clone();
    let server = Server::new(Config::new().converter(JsonConverter));
    tokio::spawn(async move {
        server
            .serve(listener, move |session| {
                handler(counted.fetch_add(1, Ordering::SeqCst) + 1, session)
            })
            .await
    });
    (url, sessions)
}

#[tokio::test]
async fn a_1008_close_stops_the_client_without_a_retry() {
    let (url, sessions) = numbered(|_, mut session| async move {
        let why = CloseReason::new(CloseCode::PolicyViolation, "not you");
        let _ = session.close(why).await;
    })
    .await;
    let client = Client::new(Config::new().converter(JsonConverter));
    let (client, mut states, hooks) = start(client.reconnecting(url.as_str()));
    let error = within("the stop", client.receive_deserialized::<ChatMessage>())
        .await
        .expect_err("closed");
    assert_eq!(
        error.close_reason(),
        Some(&CloseReason::new(CloseCode::PolicyViolation, "not you"))
    );
    let states = states.rest().await;
    assert!(
        matches!(
            states.as_slice(),
            [
                ReconnectState::Connecting { attempt: 0 },
                ReconnectState::Connected,
                ReconnectState::Lost { .. },
                ReconnectState::Stopped(Stop::Permanent(_)),
            ]
        ),
        "{states:?}"
    );
    assert_eq!(sessions.load(Ordering::SeqCst), 1, "no retry");
    assert_eq!(hooks.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_1013_close_is_retried_after_the_longer_delay() {
    let (url, sessions) = numbered(|n, mut session| async move {
        if n == 1 {
            let busy = CloseReason::new(CloseCode::TryAgainLater, "busy");
            let _ = session.close(busy).await;
        } else {
            common::typed_echo(session).await;
        }
    })
    .await;
    let backoff = Backoff::new().initial(50 * MS).busy_delay(300 * MS);
    let client = Client::new(Config::new().converter(JsonConverter));
    let (client, mut states, hooks) =
        start(client.reconnecting(url.as_str()).backoff(backoff.clone()));
    let seen = states
        .until("the reconnection", |s| {
            matches!(s, ReconnectState::Connected) && hooks.load(Ordering::SeqCst) == 2
        })
        .await;
    let delays: Vec<Duration> = seen
        .iter()
        .filter_map(|(_, state)| match state {
            ReconnectState::Waiting { delay, .. } => Some(*delay),
            _ => None,
        })
        .collect();
    assert!(
        matches!(delays.as_slice(), [delay] if *delay >= 300 * MS),
        "{delays:?}"
    );
    assert_waits_in_bounds(&seen, &backoff, 300 * MS);
    assert_eq!(sessions.load(Ordering::SeqCst), 2);
    // The first session closed without an echo; the second one echoes.
    assert_eq!(receive(&client).await, chat(1002));
}
