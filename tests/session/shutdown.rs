//! Graceful shutdown, through `Server::serve`, `typed_ws::axum::serve` and `typed-ws serve`: a
//! crowd of clients with messages in flight gets the close frame with its code and reason (not
//! 1006), every message a handler received is answered, and serve returns well within its
//! deadline; a client that ignores the close, and a handler that never receives, are dropped
//! at the deadline; with no wait, serve returns at once and the close still goes out.
#![cfg(feature = "json")]

use crate::common;

use std::collections::BTreeMap;
use std::future::{Future, pending};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use typed_ws::{
    Client, CloseCode, CloseReason, Config, Error, Frame, JsonConverter, Server, Session,
};

use common::raw::{CLOSE, RawPeer, TEXT};
use common::within;

const CLIENTS: u32 = 100;
/// Messages a client has sent and not yet seen answered, at most: some are always in flight.
const WINDOW: usize = 8;
/// Replies every client has before the shutdown begins.
const WARM: u32 = 5;
/// The deadline of the crowd tests; every client answers the close, so it is never reached.
const DEADLINE: Duration = Duration::from_secs(5);

/// What the clients send and the servers echo.
#[derive(Debug, Serialize, Deserialize)]
struct Numbered {
    client: u32,
    seq: u32,
}

fn going_away() -> CloseReason {
    CloseReason::new(CloseCode::GoingAway, "the server is shutting down")
}

fn config() -> Config<JsonConverter> {
    Config::new()
        .converter(JsonConverter)
        .shutdown_timeout(DEADLINE)
}

/// What the server's handlers saw: per client, how many messages they received; and how each
/// session's last receive ended.
#[derive(Default)]
struct Seen {
    received: BTreeMap<u32, u32>,
    ends: Vec<Error>,
}

type Log = Arc<Mutex<Seen>>;

/// Answers every message, counting it first, until a receive fails; records that failure.
/// Each message takes a millisecond of work, so that the shutdown finds handlers between a
/// receive and its reply.
async fn counting_echo(mut session: Session<JsonConverter>, log: Log) {
    let end = loop {
        match session.receive_deserialized::<Numbered>().await {
            Ok(message) => {
                *log.lock()
                    .unwrap()
                    .received
                    .entry(message.client)
                    .or_default() += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
                if let Err(e) = session.send_serialized(&message).await {
                    break e;
                }
            }
            Err(e) => break e,
        }
    };
    log.lock().unwrap().ends.push(end);
}

/// What a client saw: its replies, all in order, and the reason its session closed with.
#[derive(Debug)]
struct Outcome {
    client: u32,
    replies: u32,
    close: CloseReason,
}

/// Sends numbered messages, at most [`WINDOW`] unanswered, until the session closes; says
/// on `warm` when it has [`WARM`] replies.
async fn client(url: String, client: u32, warm: mpsc::Sender<()>) -> Outcome {
    let session = within("connect", Client::new(config()).web_socket_session(url))
        .await
        .expect("connect");
    let (mut tx, mut rx) = session.split();
    let window = Arc::new(Semaphore::new(WINDOW));
    let sending = tokio::spawn({
        let window = window.clone();
        async move {
            for seq in 0.. {
                let Ok(permit) = window.acquire().await else {
                    break;
                };
                permit.forget();
                if tx.send_serialized(&Numbered { client, seq }).await.is_err() {
                    break;
                }
            }
        }
    });
    let mut replies = 0;
    let close = loop {
        match within(
            "a reply or the close",
            rx.receive_deserialized::<Numbered>(),
        )
        .await
        {
            Ok(reply) => {
                assert_eq!((reply.client, reply.seq), (client, replies), "out of order");
                replies += 1;
                window.add_permits(1);
                if replies == WARM {
                    warm.send(()).await.expect("the test waits");
                }
            }
            Err(Error::Closed(reason)) => break reason,
            Err(e) => panic!("client {client}: {e}"),
        }
    };
    window.close();
    within("the sender stops", sending).await.expect("sender");
    Outcome {
        client,
        replies,
        close,
    }
}

/// Runs [`CLIENTS`] clients against `url`, calls `stop` once each has its first replies, and
/// waits for `served`; gives what the clients saw and how long `served` took after `stop`.
async fn crowd(
    url: &str,
    stop: impl FnOnce(),
    served: impl Future<Output = ()>,
) -> (Vec<Outcome>, Duration) {
    let (warm, mut warmed) = mpsc::channel(CLIENTS as usize);
    let clients: Vec<JoinHandle<Outcome>> = (0..CLIENTS)
        .map(|id| tokio::spawn(client(url.to_owned(), id, warm.clone())))
        .collect();
    for _ in 0..CLIENTS {
        within("every client's first replies", warmed.recv()).await;
    }
    let began = Instant::now();
    stop();
    within("serve returns", served).await;
    let took = began.elapsed();
    let mut outcomes = Vec::new();
    for handle in clients {
        outcomes.push(within("a client ends", handle).await.expect("client"));
    }
    for outcome in &outcomes {
        assert_eq!(outcome.close, going_away(), "{outcome:?}");
    }
    assert!(took < DEADLINE, "serve took {took:?} to return");
    (outcomes, took)
}

/// Every message a handler received was answered, and every handler's receive ended with
/// the shutdown's close.
fn assert_answered(outcomes: &[Outcome], log: &Log) {
    let seen = log.lock().unwrap();
    for outcome in outcomes {
        let received = seen.received.get(&outcome.client).copied();
        assert_eq!(Some(outcome.replies), received, "{outcome:?}");
    }
    assert_eq!(seen.ends.len(), CLIENTS as usize);
    for end in &seen.ends {
        assert!(
            matches!(end, Error::Closed(reason) if *reason == going_away()),
            "{end:?}"
        );
    }
}

/// A loopback listener and its `ws://` URL with `path`.
async fn listen(path: &str) -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}{path}", listener.local_addr().expect("addr"));
    (listener, url)
}

/// Awaits a serve future spawned by the test.
async fn joined<T>(task: JoinHandle<T>) {
    task.await.expect("serve panicked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_closes_a_busy_crowd_with_1001_after_answering_what_it_received() {
    let log = Log::default();
    let (listener, url) = listen("/").await;
    let (stop, stopped) = oneshot::channel::<()>();
    let handled = log.clone();
    let served = tokio::spawn(
        Server::new(config())
            .serve(listener, move |session| {
                counting_echo(session, handled.clone())
            })
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .into_future(),
    );
    let (outcomes, _) = crowd(&url, || stop.send(()).unwrap(), joined(served)).await;
    assert_answered(&outcomes, &log);
}

#[cfg(feature = "axum")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_serve_does_the_same_and_closes_idle_http_connections() {
    use ::axum::Router;
    use ::axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use typed_ws::axum::WebSocketUpgrade;

    let log = Log::default();
    let handled = log.clone();
    let app = Router::new()
        .route(
            "/ws",
            get(move |upgrade: WebSocketUpgrade| {
                let log = handled.clone();
                async move { upgrade.on_upgrade(&config(), move |s| counting_echo(s, log)) }
            }),
        )
        .route("/", get(|| async { "a page" }));
    let (listener, url) = listen("/ws").await;
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(
        typed_ws::axum::serve(listener, app, &config())
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .into_future(),
    );

    // A keep-alive connection, idle after its one request: hyper's graceful shutdown closes it.
    let mut idle = within("connect", tokio::net::TcpStream::connect(addr))
        .await
        .unwrap();
    within(
        "a request",
        idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    while !answer.ends_with(b"a page") {
        let mut chunk = [0; 1024];
        let n = within("the answer", idle.read(&mut chunk)).await.unwrap();
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&chunk[..n]);
    }

    let served = async { served.await.expect("serve panicked").expect("serve") };
    let (outcomes, _) = crowd(&url, || stop.send(()).unwrap(), served).await;
    assert_answered(&outcomes, &log);
    let mut rest = Vec::new();
    within("the idle connection closes", idle.read_to_end(&mut rest))
        .await
        .expect("a FIN");
}

/// `typed-ws serve` shuts down the same way on SIGTERM, and exits with 0.
#[cfg(feature = "cli")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_ws_serve_closes_a_busy_crowd_with_1001_on_sigterm() {
    use common::examples::{Running, signal};

    let program = env!("CARGO_BIN_EXE_typed-ws").as_ref();
    let mut running = Running::spawn(program, &["serve", "--addr", "127.0.0.1:0"]).await;
    let pid = running.pid();
    let url = running.url.clone();
    let exited = async {
        let status = running.exited().await;
        assert!(status.success(), "{status}");
    };
    // Its deadline is the default, 10 s; the crowd's is shorter, so it holds for both.
    crowd(&url, || signal(pid, "TERM"), exited).await;
}

/// Serves `handler` on a new listener with `config` until `stop` fires, the server spawned.
fn serve_until<F, Fut>(
    listener: TcpListener,
    server: Server<JsonConverter>,
    handler: F,
    reason: CloseReason,
) -> (oneshot::Sender<()>, JoinHandle<()>)
where
    F: Fn(Session<JsonConverter>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(
        server
            .serve(listener, handler)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .close_with(reason)
            .into_future(),
    );
    (stop, served)
}

#[tokio::test(start_paused = true)]
async fn a_client_that_ignores_the_close_is_dropped_at_the_deadline() {
    let deadline = Duration::from_secs(3);
    let (listener, url) = listen("/").await;
    let addr = url.trim_start_matches("ws://").trim_end_matches('/');
    let server = Server::new(config().shutdown_timeout(deadline));
    let (stop, served) = serve_until(listener, server, common::echo, going_away());
    let mut peer = RawPeer::connect(addr.parse().unwrap(), "/").await;
    within("a message", peer.write_frame(true, TEXT, b"hi"))
        .await
        .unwrap();
    assert_eq!(within("its echo", peer.expect_frame()).await.payload, b"hi");

    let began = Instant::now();
    stop.send(()).unwrap();
    let close = within("the close", peer.expect_skipping_pings()).await;
    assert_eq!(close.opcode, CLOSE);
    assert_eq!(close.close_code(), Some(1001));
    assert_eq!(close.close_text(), "the server is shutting down");
    // Not answered: serve waits for the deadline, then lets the connection go.
    within("serve returns", served).await.unwrap();
    let took = began.elapsed();
    assert!(
        deadline <= took && took < deadline + Duration::from_millis(100),
        "{took:?}"
    );
    let (rest, _) = within("the connection ends", peer.read_to_end()).await;
    assert!(rest.is_empty(), "{rest:?}");
}

#[tokio::test(start_paused = true)]
async fn with_no_wait_serve_returns_at_once_and_the_close_still_goes_out() {
    let (listener, url) = listen("/").await;
    let server = Server::new(config().shutdown_timeout(Duration::ZERO));
    let (stop, served) = serve_until(listener, server, common::echo, going_away());
    let mut session = within("connect", Client::new(config()).web_socket_session(url))
        .await
        .unwrap();
    within("a message", session.send_text("hi")).await.unwrap();
    assert!(
        within("its echo", session.receive())
            .await
            .unwrap()
            .is_data()
    );

    let began = Instant::now();
    stop.send(()).unwrap();
    within("serve returns", served).await.unwrap();
    assert_eq!(began.elapsed(), Duration::ZERO);
    match within("the close", session.receive()).await {
        Ok(Frame::Close(Some(reason))) => assert_eq!(reason, going_away()),
        other => panic!("expected the close frame, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn close_with_1012_reaches_every_session_and_a_handler_that_never_receives_at_the_deadline() {
    let deadline = Duration::from_secs(3);
    let restarting = CloseReason::new(CloseCode::ServiceRestart, "restarting");
    let failures = Arc::new(Mutex::new(Vec::new()));
    let reported = failures.clone();
    let server = Server::new(config().shutdown_timeout(deadline))
        .on_failure(move |failure| reported.lock().unwrap().push(failure.to_string()));
    let handler = |mut session: Session<JsonConverter>| async move {
        if session.path() == Some("/quiet") {
            // Only ever sends: no receive for the close to come with.
            let _ = session.send_text("hello").await;
            pending::<()>().await;
        }
        common::echo(session).await;
    };
    let (listener, url) = listen("/").await;
    let (stop, served) = serve_until(listener, server, handler, restarting.clone());
    let connect = |path: &'static str| {
        let url = format!("{url}{path}");
        async move {
            within("connect", Client::new(config()).web_socket_session(url))
                .await
                .unwrap()
        }
    };
    let mut echoed = connect("echo").await;
    let mut quiet = connect("quiet").await;
    within("a message", echoed.send_text("hi")).await.unwrap();
    assert!(
        within("its echo", echoed.receive())
            .await
            .unwrap()
            .is_data()
    );
    assert!(within("hello", quiet.receive()).await.unwrap().is_data());

    let began = Instant::now();
    stop.send(()).unwrap();
    let closed = within("the close", echoed.receive()).await;
    assert!(
        matches!(&closed, Ok(Frame::Close(Some(r))) if *r == restarting),
        "{closed:?}"
    );
    assert!(began.elapsed() < deadline);
    let closed = within("the quiet one's close", quiet.receive()).await;
    assert!(
        matches!(&closed, Ok(Frame::Close(Some(r))) if *r == restarting),
        "{closed:?}"
    );
    assert_eq!(began.elapsed(), deadline);
    within("serve returns", served).await.unwrap();
    // Closed by the shutdown, 1012 or not, no session failed.
    assert!(failures.lock().unwrap().is_empty(), "{failures:?}");
}
