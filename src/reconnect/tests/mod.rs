//! The reconnect loop on tokio's paused clock: connections are in-memory pipes to a scripted
//! server, so the delays it sleeps can be checked to the millisecond.

mod scripted;

use std::io::ErrorKind;
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::time::Instant;

use super::*;
use crate::converter::JsonConverter;
use scripted::{Answer, Scripted, within};

const MS: Duration = Duration::from_millis(1);

type Record = Arc<StdMutex<Vec<(Instant, ReconnectState)>>>;

/// Starts `client`, recording every state with the time it came.
fn start(client: Reconnect<JsonConverter>) -> (Reconnecting<JsonConverter>, Record) {
    let record = Record::default();
    let states = record.clone();
    let client = client
        .on_state(move |state| states.lock().unwrap().push((Instant::now(), state.clone())))
        .start();
    (client, record)
}

/// A hook that sends `hello N` on the Nth connection, and counts them.
fn hello(client: Reconnect<JsonConverter>) -> (Reconnect<JsonConverter>, Arc<AtomicU32>) {
    let count = Arc::new(AtomicU32::new(0));
    let counted = count.clone();
    let client = client.on_connect(move |mut session| {
        let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            session.send_serialized(&format!("hello {n}")).await?;
            Ok(session)
        }
    });
    (client, count)
}

async fn stopped(client: &Reconnecting<JsonConverter>) -> Stop {
    let mut state = client.state();
    let stopped = within(
        "the stop",
        state.wait_for(|s| matches!(s, ReconnectState::Stopped(_))),
    )
    .await
    .expect("the client's state");
    match &*stopped {
        ReconnectState::Stopped(stop) => stop.clone(),
        _ => unreachable!(),
    }
}

/// The states as short names: `C0 F0 W1 C1 Connected Lost S`.
fn names(record: &Record) -> Vec<String> {
    let states = record.lock().unwrap();
    states
        .iter()
        .map(|(_, state)| match state {
            ReconnectState::Connecting { attempt } => format!("C{attempt}"),
            ReconnectState::Connected => "Connected".to_owned(),
            ReconnectState::Lost { .. } => "Lost".to_owned(),
            ReconnectState::Failed { attempt, .. } => format!("F{attempt}"),
            ReconnectState::Waiting { attempt, .. } => format!("W{attempt}"),
            ReconnectState::Stopped(_) => "S".to_owned(),
        })
        .collect()
}

/// Each wait: its attempt, its delay, and how long passed until that attempt started.
fn waits(record: &Record) -> Vec<(u32, Duration, Duration)> {
    let states = record.lock().unwrap();
    states
        .windows(2)
        .filter_map(|pair| match pair {
            [
                (at, ReconnectState::Waiting { attempt, delay }),
                (next, following),
            ] => {
                assert!(
                    matches!(following, ReconnectState::Connecting { attempt: a } if a == attempt),
                    "a wait is followed by its attempt: {following:?}"
                );
                Some((*attempt, *delay, *next - *at))
            }
            _ => None,
        })
        .collect()
}

/// The wait lasted its delay: tokio's timer rounds up to the next millisecond.
fn slept(delay: Duration, waited: Duration) {
    assert!(
        waited >= delay && waited <= delay + MS,
        "{waited:?} for {delay:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn refused_attempts_back_off_within_the_window_until_the_attempt_limit() {
    let (server, _) = Scripted::new(&[Answer::Refuse]);
    let backoff = Backoff::new()
        .initial(100 * MS)
        .cap(1000 * MS)
        .max_attempts(5)
        .seed(9);
    let (client, record) = start(server.client().backoff(backoff.clone()));
    match stopped(&client).await {
        Stop::GaveUp { attempts: 5, last } => {
            assert!(matches!(&*last, Error::Io(e) if e.kind() == ErrorKind::ConnectionRefused))
        }
        other => panic!("expected GaveUp after 5 attempts, got {other:?}"),
    }
    assert_eq!(
        server.connections(),
        6,
        "the first connection and 5 attempts"
    );
    let expected: Vec<String> = ["C0", "F0"]
        .into_iter()
        .map(str::to_owned)
        .chain((1..=5).flat_map(|k| [format!("W{k}"), format!("C{k}"), format!("F{k}")]))
        .chain(["S".to_owned()])
        .collect();
    assert_eq!(names(&record), expected);
    // The seed's draws, each within its window (100, 200, 400, 800, 1000 ms), slept exactly.
    let mut rng = backoff.rng();
    for (k, (attempt, delay, waited)) in (1..).zip(waits(&record)) {
        assert_eq!(attempt, k);
        assert_eq!(delay, backoff.delay(k, false, &mut rng));
        assert!(delay <= backoff.window(k), "{k}: {delay:?}");
        slept(delay, waited);
    }
    // Every call after the stop tells why.
    let error = client.send_serialized("late").await.expect_err("stopped");
    assert!(matches!(error, Error::Io(e) if e.kind() == ErrorKind::ConnectionRefused));
}

#[tokio::test(start_paused = true)]
async fn transient_closes_are_reconnected_the_hook_runs_each_time_and_1012_1013_wait_longer() {
    let (server, _) = Scripted::new(&[
        Answer::Close(1001),
        Answer::Drop,
        Answer::Close(1011),
        Answer::Close(1012),
        Answer::Close(1013),
        Answer::Echo,
    ]);
    let backoff = Backoff::new().initial(100 * MS).busy_delay(5000 * MS);
    let (client, hooks) = hello(server.client().backoff(backoff.clone()));
    let (client, record) = start(client);
    within("the sixth connection", client.connected())
        .await
        .expect("connected");
    assert_eq!(
        hooks.load(Ordering::SeqCst),
        6,
        "the hook ran on every connection"
    );
    assert_eq!(server.connections(), 6);
    let losses: Vec<CloseCode> = record
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(_, state)| match state {
            ReconnectState::Lost { cause } => Some(cause.close_reason().expect("a close").code),
            _ => None,
        })
        .collect();
    assert_eq!(
        losses,
        [1001, 1006, 1011, 1012, 1013].map(CloseCode::from),
        "{:?}",
        names(&record)
    );
    // None of the connections lasted: the windows double; 1012 and 1013 add 5 s.
    let waits = waits(&record);
    assert_eq!(waits.len(), 5);
    for (k, (attempt, delay, waited)) in (1..).zip(waits) {
        assert_eq!(attempt, k);
        let least = if k >= 4 { 5000 * MS } else { Duration::ZERO };
        assert!(
            delay >= least && delay <= least + backoff.window(k),
            "{k}: {delay:?}"
        );
        slept(delay, waited);
    }
    // Messages flow on the new connection, after the hook's.
    client.send_serialized("after").await.expect("send");
    for expected in ["hello 6", "after"] {
        let echo: String = within("an echo", client.receive_deserialized())
            .await
            .expect("echo");
        assert_eq!(echo, expected);
    }
    assert_eq!(server.heard(), ["hello 6", "after"]);
}

#[tokio::test(start_paused = true)]
async fn refusals_and_final_closes_stop_the_client_without_a_retry() {
    for answer in [
        Answer::Status(400),
        Answer::Status(404),
        Answer::Status(429),
        Answer::Close(1000),
        Answer::Close(1002),
        Answer::Close(1003),
        Answer::Close(1007),
        Answer::Close(1008),
        Answer::Close(1009),
        Answer::Close(4000),
    ] {
        let (server, _) = Scripted::new(&[answer, Answer::Echo]);
        let (client, hooks) = hello(server.client());
        let (client, record) = start(client);
        let Stop::Permanent(cause) = stopped(&client).await else {
            panic!(
                "{answer:?}: expected a permanent stop, got {:?}",
                names(&record)
            );
        };
        assert_eq!(server.connections(), 1, "{answer:?}: no retry");
        let error = client
            .receive_deserialized::<String>()
            .await
            .expect_err("stopped");
        match answer {
            Answer::Status(status) => {
                assert_eq!(names(&record), ["C0", "F0", "S"], "{answer:?}");
                assert_eq!(cause.status().map(|s| s.as_u16()), Some(status));
                assert_eq!(error.status(), cause.status());
                assert_eq!(hooks.load(Ordering::SeqCst), 0);
            }
            Answer::Close(code) => {
                let names = names(&record);
                assert_eq!(names, ["C0", "Connected", "Lost", "S"], "{answer:?}");
                assert_eq!(cause.close_reason().map(|r| r.code), Some(code.into()));
                assert_eq!(error.close_reason(), cause.close_reason());
                assert_eq!(hooks.load(Ordering::SeqCst), 1);
            }
            _ => unreachable!(),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_5xx_answer_is_retried_and_a_failing_hook_fails_its_attempt() {
    let (server, _) = Scripted::new(&[Answer::Status(503), Answer::Echo]);
    let (client, record) = start(server.client());
    within("the retry", client.connected())
        .await
        .expect("connected");
    assert_eq!(names(&record), ["C0", "F0", "W1", "C1", "Connected"]);

    // A hook whose server answers with something it cannot read: not retried, and the
    // session is closed with 1011.
    let (server, mut closes) = Scripted::new(&[Answer::Echo]);
    let client = server.client().on_connect(|mut session| async move {
        session.send_serialized("not a number").await?;
        let _: u32 = session.receive_deserialized().await?;
        Ok(session)
    });
    let (client, record) = start(client);
    let Stop::Permanent(cause) = stopped(&client).await else {
        panic!("expected a permanent stop: {:?}", names(&record));
    };
    assert!(matches!(&*cause, Error::Decode { .. }), "{cause:?}");
    assert_eq!(names(&record), ["C0", "F0", "S"]);
    let close = within("the hook's close", closes.recv())
        .await
        .expect("a close");
    assert_eq!(close.code, CloseCode::InternalError);
}

#[tokio::test(start_paused = true)]
async fn the_count_of_failures_starts_again_only_after_a_connection_that_lasted() {
    // Accepted and dropped at once, every time: backed off and given up on like refusals.
    let (server, _) = Scripted::new(&[Answer::Close(1011)]);
    let backoff = Backoff::new().initial(100 * MS).max_attempts(3);
    let (client, record) = start(server.client().backoff(backoff.clone()));
    assert!(matches!(
        stopped(&client).await,
        Stop::GaveUp { attempts: 3, .. }
    ));
    assert_eq!(server.connections(), 4);
    let attempts: Vec<u32> = waits(&record).iter().map(|w| w.0).collect();
    assert_eq!(attempts, [1, 2, 3]);

    // Connections that last past reset_after (5 s) start the count again each time.
    let held = Answer::Hold(6000 * MS, 1011);
    let (server, _) = Scripted::new(&[held, held, held, Answer::Close(1008)]);
    let (client, record) = start(server.client().backoff(backoff));
    assert!(matches!(stopped(&client).await, Stop::Permanent(_)));
    assert_eq!(server.connections(), 4);
    for (attempt, delay, _) in waits(&record) {
        assert_eq!(attempt, 1);
        assert!(delay <= 100 * MS, "{delay:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn without_a_queue_a_send_while_disconnected_fails_at_once() {
    let (server, _) = Scripted::new(&[Answer::Refuse]);
    let backoff = Backoff::new().initial(Duration::from_secs(600)).seed(1);
    let (client, _) = start(server.client().backoff(backoff));
    let mut state = client.state();
    within(
        "the first wait",
        state.wait_for(|s| matches!(s, ReconnectState::Waiting { .. })),
    )
    .await
    .expect("state");
    let error = client
        .send_serialized("now")
        .await
        .expect_err("disconnected");
    assert_not_connected(&error);

    // A close while waiting stops the client at once; calls then give the close's reason.
    let bye = CloseReason::new(CloseCode::Normal, "bye");
    within("the close", client.close(bye.clone())).await;
    assert!(matches!(stopped(&client).await, Stop::Closed(reason) if reason == bye));
    let error = client.send_serialized("late").await.expect_err("closed");
    assert_eq!(error.close_reason(), Some(&bye));
    assert_eq!(server.connections(), 1);
}

/// The error of a send while disconnected with no room in the queue.
fn assert_not_connected(error: &Error) {
    assert!(
        matches!(error, Error::NotConnected { .. }),
        "expected a send refused while disconnected, got {error:?}"
    );
    assert!(!error.is_fatal());
    assert!(error.to_string().starts_with("not connected"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn queued_sends_wait_for_the_next_connection_and_go_out_after_the_hook() {
    let (server, _) = Scripted::new(&[Answer::Refuse, Answer::Echo]);
    let backoff = Backoff::new().initial(1000 * MS).seed(5);
    let (client, _) = hello(server.client().backoff(backoff).queue(2));
    let (client, _) = start(client);
    let mut state = client.state();
    within(
        "the first wait",
        state.wait_for(|s| matches!(s, ReconnectState::Waiting { .. })),
    )
    .await
    .expect("state");
    client.send_serialized("a").await.expect("queued");
    client.send_serialized("b").await.expect("queued");
    let full = client
        .send_serialized("c")
        .await
        .expect_err("the queue is full");
    assert_not_connected(&full);

    within("the connection", client.connected())
        .await
        .expect("connected");
    client.send_serialized("d").await.expect("sent");
    for expected in ["hello 1", "a", "b", "d"] {
        let echo: String = within("an echo", client.receive_deserialized())
            .await
            .expect("echo");
        assert_eq!(echo, expected);
    }
    assert_eq!(server.heard(), ["hello 1", "a", "b", "d"]);
}

#[tokio::test(start_paused = true)]
async fn close_while_connected_tells_the_server_and_stops_for_good() {
    let (server, mut closes) = Scripted::new(&[Answer::Echo]);
    let (client, record) = start(server.client());
    within("the connection", client.connected())
        .await
        .expect("connected");
    // A message that does not decode is skipped; the next one is there.
    client.send_serialized("seven").await.expect("send");
    client.send_serialized(&7).await.expect("send");
    let error = within("the echo", client.receive_deserialized::<u32>())
        .await
        .expect_err("a string");
    assert!(matches!(error, Error::Decode { .. }), "{error:?}");
    let seven: u32 = within("the echo", client.receive_deserialized())
        .await
        .expect("a number");
    assert_eq!(seven, 7);

    let bye = CloseReason::new(CloseCode::Normal, "bye");
    within("the close", client.close(bye.clone())).await;
    assert_eq!(within("the server", closes.recv()).await, Some(bye.clone()));
    assert!(matches!(stopped(&client).await, Stop::Closed(reason) if reason == bye));
    let error = client
        .receive_deserialized::<u32>()
        .await
        .expect_err("closed");
    assert_eq!(error.close_reason(), Some(&bye));
    assert_eq!(server.connections(), 1);
    assert_eq!(names(&record), ["C0", "Connected", "S"]);

    // Dropping every handle closes with 1001.
    let (server, mut closes) = Scripted::new(&[Answer::Echo]);
    let (client, _) = start(server.client());
    let other = client.clone();
    within("the connection", client.connected())
        .await
        .expect("connected");
    drop(client);
    drop(other);
    let close = within("the server", closes.recv()).await.expect("a close");
    assert_eq!(close.code, CloseCode::GoingAway);
}
