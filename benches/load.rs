//! Echo and push servers under an external load client: typed-ws against the same server
//! written by hand with tokio-tungstenite, each server in a process of its own, all driven
//! by one load client (this process) in one run.
//!
//! Servers, one process each (this binary, started again with `TYPED_WS_LOAD_ROLE` set):
//! - `typed`: a typed-ws [`Server`] whose handler is the plain loop of the echo example,
//!   `receive_deserialized` then `send_serialized`, with `Config::new()`;
//! - `accepted`: the hand-written loop of tokio-tungstenite's README, `accept_async` on the
//!   socket as accepted (Nagle's algorithm on) and `ws.send` per reply: what a user gets by
//!   default;
//! - `nodelay`: the same with `TCP_NODELAY` set, as typed-ws sets it.
//!
//! For server push (send only, no receives) the typed-ws server calls `send_serialized` in a
//! loop, the hand-written one `feed` and `flush` per message, on a socket with `TCP_NODELAY`.
//!
//! The load client is tokio-tungstenite alone: `conns` connections, each keeping `window`
//! messages in flight (it writes as many as the window allows, then flushes once), timing
//! each message from its write to its echo. Pipelined: 4 connections x 64 in flight, with
//! the ~100-byte `ChatMessage` and a 4 KiB batch of them; one in flight: 1 connection x 1.
//! Push: the messages received per second, and paced (one every millisecond) the delay from
//! the server's `send` call to the client's receipt, clock read on both sides
//! (`SystemTime`, one machine).
//!
//! Every configuration runs once per round, the servers of one case back to back, in an
//! order that turns from round to round, rounds interleaved ([`ROUNDS`]); a figure is the median over the rounds of the ratio within a
//! round, its spread the lowest and highest round. Targets (issue 13) are checked at the end
//! and a miss beyond the spread exits 1. `-- --test` runs everything once, briefly, checking
//! only that it works.
//!
//! ```text
//! cargo bench -p benches --bench load
//! ```

mod common;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::echo::{Payload, handwritten_echo};
use common::{Cbor, ChatBatch, ChatMessage, Codec, Json, MsgPack, chat, chat_batch};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use typed_ws::tokio_tungstenite::tungstenite::Message;
use typed_ws::tokio_tungstenite::{self, WebSocketStream};
use typed_ws::{Config, Frame, Server};

const ROUNDS: usize = 5;
const ROLE: &str = "TYPED_WS_LOAD_ROLE";
const PINNED: &str = "TYPED_WS_LOAD_PINNED";

/// The servers of a case, typed-ws first.
const ECHO_SERVERS: [&str; 3] = ["typed", "accepted", "nodelay"];
const PUSH_SERVERS: [&str; 2] = ["typed_push", "feed_flush"];

fn main() -> ExitCode {
    if let Ok(role) = std::env::var(ROLE) {
        serve_role(&role);
        return ExitCode::SUCCESS;
    }
    if std::env::var_os(PINNED).is_none()
        && let Some(code) = pinned()
    {
        return code;
    }
    let test = std::env::args().any(|a| a == "--test");
    // Like criterion's filter: run only the cases whose "codec case" contains it.
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .unwrap_or_default();
    let chosen = |codec: &str, case: &str| format!("{codec} {case}").contains(&filter);
    let (warm_up, measure, rounds) = if test {
        (Duration::from_millis(50), Duration::from_millis(100), 1)
    } else {
        (Duration::from_millis(300), Duration::from_secs(1), ROUNDS)
    };
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let mut results = Results::default();
    let mut servers = Servers::default();
    for round in 0..rounds {
        eprintln!("round {}/{rounds}", round + 1);
        for codec in ["json", "cbor", "msgpack"] {
            for case in ECHO_CASES.into_iter().filter(|c| chosen(codec, c.name)) {
                // Each round starts with another server, so that none always runs first.
                for server in ECHO_SERVERS.iter().cycle().skip(round).take(3).copied() {
                    let role = format!("{server}:{codec}:{}", case.payload);
                    let server_process = servers.get(&role);
                    let run =
                        runtime.block_on(run_echo(codec, case, server_process, warm_up, measure));
                    results.add(codec, case.name, server, run);
                }
            }
            let push = PUSH_SERVERS.iter().cycle().skip(round).take(2).copied();
            for server in push.filter(|_| chosen(codec, "push")) {
                let server_process = servers.get(&format!("{server}:{codec}:small"));
                let fast =
                    runtime.block_on(run_push(codec, server_process, false, warm_up, measure));
                results.add(codec, "push", server, fast);
                let paced =
                    runtime.block_on(run_push(codec, server_process, true, warm_up, measure));
                results.add(codec, "push paced", server, paced);
            }
        }
    }
    drop(servers);
    let missed = results.report(!test);
    if missed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs this bench again as the load client on CPU 0, the servers going to CPU 1: on a
/// 2-core machine, client and server threads that wander between the cores make one run
/// twice as fast as the next. `None` with fewer than two cores or no `taskset`: the bench
/// runs unpinned.
fn pinned() -> Option<ExitCode> {
    if std::thread::available_parallelism().ok()?.get() < 2 {
        return None;
    }
    let status = Command::new("taskset")
        .args(["-c", "0"])
        .arg(std::env::current_exe().ok()?)
        .args(std::env::args_os().skip(1))
        .env(PINNED, "1")
        .status()
        .ok()?;
    Some(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

// ---- the cases ----

#[derive(Clone, Copy)]
struct EchoCase {
    name: &'static str,
    payload: &'static str,
    conns: usize,
    window: usize,
}

const ECHO_CASES: [EchoCase; 3] = [
    EchoCase {
        name: "pipelined 100 B",
        payload: "small",
        conns: 4,
        window: 64,
    },
    EchoCase {
        name: "pipelined 4 KiB",
        payload: "batch",
        conns: 4,
        window: 64,
    },
    EchoCase {
        name: "one in flight",
        payload: "small",
        conns: 1,
        window: 1,
    },
];

/// The 4 KiB payload: 44 chat messages.
fn batch() -> ChatBatch {
    chat_batch(44)
}

/// What one run measured: messages per second, the latencies in nanoseconds, and what the
/// server process spent while the run measured.
#[derive(Clone, Default)]
struct Run {
    rate: f64,
    latencies: Vec<u64>,
    server: Usage,
}

impl Run {
    fn new(latencies: Vec<u64>, measure: Duration, server: Usage) -> Run {
        Run {
            rate: latencies.len() as f64 / measure.as_secs_f64(),
            latencies,
            server,
        }
    }

    /// The server's CPU time per message, in microseconds.
    fn cpu_per_message(&self) -> f64 {
        self.server.cpu_ns as f64 / 1e3 / self.latencies.len().max(1) as f64
    }
}

/// CPU time of a process, every thread's, in nanoseconds, from Linux's /proc; zero where it
/// cannot be read.
#[derive(Clone, Copy, Default)]
struct Usage {
    cpu_ns: u64,
}

impl Usage {
    fn of(pid: u32) -> Usage {
        let proc = format!("/proc/{pid}");
        let cpu_ns = std::fs::read_dir(format!("{proc}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
            .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
            .sum();
        Usage { cpu_ns }
    }

    fn since(self, before: Usage) -> Usage {
        Usage {
            cpu_ns: self.cpu_ns.saturating_sub(before.cpu_ns),
        }
    }
}

/// Samples a server process's usage over a run's measured window.
async fn usage_over(pid: u32, window: Window) -> Usage {
    tokio::time::sleep_until(window.open).await;
    let before = Usage::of(pid);
    tokio::time::sleep_until(window.end).await;
    Usage::of(pid).since(before)
}

impl Run {
    fn percentile(&self, p: f64) -> u64 {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        sorted
            .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    }
}

// ---- the load client ----

async fn run_echo(
    codec: &str,
    case: EchoCase,
    (addr, pid): (SocketAddr, u32),
    warm_up: Duration,
    measure: Duration,
) -> Run {
    match (codec, case.payload) {
        ("json", "small") => echo_load::<Json, _>(addr, pid, case, chat(1), warm_up, measure).await,
        ("json", _) => echo_load::<Json, _>(addr, pid, case, batch(), warm_up, measure).await,
        ("cbor", "small") => echo_load::<Cbor, _>(addr, pid, case, chat(1), warm_up, measure).await,
        ("cbor", _) => echo_load::<Cbor, _>(addr, pid, case, batch(), warm_up, measure).await,
        ("msgpack", "small") => {
            echo_load::<MsgPack, _>(addr, pid, case, chat(1), warm_up, measure).await
        }
        _ => echo_load::<MsgPack, _>(addr, pid, case, batch(), warm_up, measure).await,
    }
}

/// When a run measures: from the end of the warm-up to its end.
#[derive(Clone, Copy)]
struct Window {
    open: tokio::time::Instant,
    end: tokio::time::Instant,
}

impl Window {
    fn new(warm_up: Duration, measure: Duration) -> Window {
        let open = tokio::time::Instant::now() + warm_up;
        Window {
            open,
            end: open + measure,
        }
    }

    fn counts(&self) -> bool {
        let now = tokio::time::Instant::now();
        self.open <= now && now < self.end
    }
}

async fn connect(addr: SocketAddr) -> WebSocketStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let url = format!("ws://{addr}/");
    tokio_tungstenite::client_async(url, tcp)
        .await
        .expect("client handshake")
        .0
}

async fn echo_load<C: Codec, T: Payload>(
    addr: SocketAddr,
    pid: u32,
    case: EchoCase,
    value: T,
    warm_up: Duration,
    measure: Duration,
) -> Run {
    let message = C::to_message(&value);
    let mut connections = Vec::new();
    for _ in 0..case.conns {
        connections.push(connect(addr).await);
    }
    let window = Window::new(warm_up, measure);
    let server = tokio::spawn(usage_over(pid, window));
    let mut readers = Vec::new();
    for ws in connections {
        let (mut sink, mut stream) = ws.split();
        let in_flight = Arc::new(Semaphore::new(case.window));
        let sent_at = Arc::new(Mutex::new(VecDeque::<Instant>::new()));
        let writer = {
            let (in_flight, sent_at, message) =
                (in_flight.clone(), sent_at.clone(), message.clone());
            tokio::spawn(async move {
                loop {
                    let Ok(permit) = in_flight.acquire_many(1).await else {
                        return;
                    };
                    permit.forget();
                    let mut burst = 1;
                    while let Ok(permit) = in_flight.try_acquire() {
                        permit.forget();
                        burst += 1;
                    }
                    for _ in 0..burst {
                        sent_at.lock().unwrap().push_back(Instant::now());
                        if sink.feed(message.clone()).await.is_err() {
                            return;
                        }
                    }
                    if sink.flush().await.is_err() {
                        return;
                    }
                }
            })
        };
        readers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut end = std::pin::pin!(tokio::time::sleep_until(window.end));
            loop {
                let message = tokio::select! {
                    () = &mut end => break,
                    message = stream.next() => message,
                };
                let Some(Ok(message)) = message else { break };
                if !matches!(message, Message::Text(_) | Message::Binary(_)) {
                    continue;
                }
                let Some(sent) = sent_at.lock().unwrap().pop_front() else {
                    break;
                };
                if window.counts() {
                    latencies.push(sent.elapsed().as_nanos() as u64);
                }
                in_flight.add_permits(1);
            }
            writer.abort();
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for reader in readers {
        latencies.extend(reader.await.expect("reader task"));
    }
    Run::new(latencies, measure, server.await.expect("usage task"))
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64
}

/// Asks a push server for messages, as fast as it sends them or one per millisecond, and
/// counts them; a message's `id` is when the server sent it.
async fn run_push(
    codec: &str,
    (addr, pid): (SocketAddr, u32),
    paced: bool,
    warm_up: Duration,
    measure: Duration,
) -> Run {
    match codec {
        "json" => push_load::<Json>(addr, pid, paced, warm_up, measure).await,
        "cbor" => push_load::<Cbor>(addr, pid, paced, warm_up, measure).await,
        _ => push_load::<MsgPack>(addr, pid, paced, warm_up, measure).await,
    }
}

async fn push_load<C: Codec>(
    addr: SocketAddr,
    pid: u32,
    paced: bool,
    warm_up: Duration,
    measure: Duration,
) -> Run {
    let mut ws = connect(addr).await;
    let ask = if paced { "paced" } else { "fast" };
    ws.send(Message::text(ask)).await.expect("ask for a push");
    let window = Window::new(warm_up, measure);
    let server = tokio::spawn(usage_over(pid, window));
    let mut latencies = Vec::new();
    let mut end = std::pin::pin!(tokio::time::sleep_until(window.end));
    loop {
        let message = tokio::select! {
            () = &mut end => break,
            message = ws.next() => message,
        };
        let Some(Ok(message)) = message else { break };
        let Some(pushed) = C::from_message::<ChatMessage>(&message) else {
            continue;
        };
        if window.counts() {
            latencies.push(now_nanos().saturating_sub(pushed.id));
        }
    }
    Run::new(latencies, measure, server.await.expect("usage task"))
}

// ---- the servers ----

/// The server processes, started on first use, ended when dropped (their stdin closes).
#[derive(Default)]
struct Servers(Vec<(String, SocketAddr, Child)>);

impl Servers {
    /// The address and process id of the server for `role`.
    fn get(&mut self, role: &str) -> (SocketAddr, u32) {
        if let Some((_, addr, child)) = self.0.iter().find(|(r, _, _)| r == role) {
            return (*addr, child.id());
        }
        let exe = std::env::current_exe().expect("this binary");
        // On CPU 1 when this client is pinned to CPU 0 (see `pinned`).
        let mut command = match std::env::var_os(PINNED) {
            Some(_) => {
                let mut taskset = Command::new("taskset");
                taskset.arg("-c").arg("1").arg(exe);
                taskset
            }
            None => Command::new(exe),
        };
        let mut child = command
            .env(ROLE, role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start a server process");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the server's address");
        let addr = line.trim().parse().expect("an address");
        let pid = child.id();
        self.0.push((role.to_owned(), addr, child));
        (addr, pid)
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for (_, _, child) in &mut self.0 {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

/// Runs one server until this process's stdin closes.
fn serve_role(role: &str) {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind loopback");
    let addr = listener.local_addr().expect("address");
    println!("{addr}");
    std::io::stdout().flush().expect("stdout");
    let mut parts = role.split(':');
    let (server, codec, payload) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let (server, small) = (server.to_owned(), payload == "small");
    match codec {
        "json" => runtime.spawn(serve::<Json>(listener, server, small)),
        "cbor" => runtime.spawn(serve::<Cbor>(listener, server, small)),
        _ => runtime.spawn(serve::<MsgPack>(listener, server, small)),
    };
    // The bench ends this server by closing its stdin.
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
}

async fn serve<C: Codec>(listener: TcpListener, server: String, small: bool) {
    match (server.as_str(), small) {
        ("typed", true) => typed_echo::<C, ChatMessage>(listener).await,
        ("typed", false) => typed_echo::<C, ChatBatch>(listener).await,
        ("accepted" | "nodelay", true) => {
            handwritten_echo::<C, ChatMessage>(listener, server == "nodelay").await;
        }
        ("accepted" | "nodelay", false) => {
            handwritten_echo::<C, ChatBatch>(listener, server == "nodelay").await;
        }
        ("typed_push", _) => typed_push::<C>(listener).await,
        _ => feed_flush_push::<C>(listener).await,
    }
}

/// The echo example's loop.
async fn typed_echo<C: Codec, T: Payload>(listener: TcpListener) {
    let server = Server::new(Config::new().converter(C::converter()));
    server
        .serve(listener, async |mut session| {
            while let Ok(value) = session.receive_deserialized::<T>().await {
                if session.send_serialized(&value).await.is_err() {
                    break;
                }
            }
        })
        .await;
}

/// Waits between paced pushes.
const PACE: Duration = Duration::from_millis(1);

async fn typed_push<C: Codec>(listener: TcpListener) {
    let server = Server::new(Config::new().converter(C::converter()));
    server
        .serve(listener, async |mut session| {
            let paced = matches!(session.receive().await, Ok(Frame::Text(t)) if t == "paced");
            let mut next = tokio::time::Instant::now();
            loop {
                if paced {
                    next += PACE;
                    tokio::time::sleep_until(next).await;
                }
                if session.send_serialized(&chat(now_nanos())).await.is_err() {
                    break;
                }
            }
        })
        .await;
}

async fn feed_flush_push<C: Codec>(listener: TcpListener) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        tcp.set_nodelay(true).expect("nodelay");
        tokio::spawn(async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                return;
            };
            let paced = matches!(ws.next().await, Some(Ok(Message::Text(t))) if t == "paced");
            let mut next = tokio::time::Instant::now();
            loop {
                if paced {
                    next += PACE;
                    tokio::time::sleep_until(next).await;
                }
                if ws.feed(C::to_message(&chat(now_nanos()))).await.is_err()
                    || ws.flush().await.is_err()
                {
                    break;
                }
            }
        });
    }
}

// ---- the report ----

/// Every run, by codec, case and server, in round order.
#[derive(Default)]
struct Results(Vec<(String, &'static str, &'static str, Vec<Run>)>);

impl Results {
    fn add(&mut self, codec: &str, case: &'static str, server: &'static str, run: Run) {
        match self
            .0
            .iter_mut()
            .find(|(c, k, s, _)| c == codec && *k == case && *s == server)
        {
            Some((_, _, _, runs)) => runs.push(run),
            None => self.0.push((codec.to_owned(), case, server, vec![run])),
        }
    }

    fn runs(&self, codec: &str, case: &str, server: &str) -> &[Run] {
        self.0
            .iter()
            .find(|(c, k, s, _)| c == codec && *k == case && *s == server)
            .map(|(_, _, _, runs)| runs.as_slice())
            .unwrap_or_default()
    }

    /// Prints the tables and the targets' verdicts; returns whether a target was missed
    /// beyond its spread (only when `judge`).
    fn report(&self, judge: bool) -> bool {
        let mut missed = false;
        println!("## Echo: messages per second, latency p50 / p99 (medians of {ROUNDS} rounds)\n");
        println!(
            "| codec | case | typed-ws | accept_async | accept_async + TCP_NODELAY | typed-ws / better hand-written | typed-ws / NODELAY |"
        );
        println!("|---|---|---|---|---|---|---|");
        for codec in ["json", "cbor", "msgpack"] {
            for case in ECHO_CASES {
                let [typed, accepted, nodelay] =
                    ECHO_SERVERS.map(|server| self.runs(codec, case.name, server));
                if typed.is_empty() {
                    continue;
                }
                let best = ratio(typed, |i| {
                    typed[i].rate / accepted[i].rate.max(nodelay[i].rate)
                });
                let vs_nodelay = ratio(typed, |i| typed[i].rate / nodelay[i].rate);
                println!(
                    "| {codec} | {} | {} | {} | {} | {} | {} |",
                    case.name,
                    cell(typed),
                    cell(accepted),
                    cell(nodelay),
                    best.show(),
                    vs_nodelay.show()
                );
            }
        }
        println!(
            "\n## Server CPU time per echoed message (all threads, medians), and the codec's alone\n"
        );
        println!(
            "| codec | case | typed-ws | accept_async | accept_async + TCP_NODELAY | decode + encode alone |"
        );
        println!("|---|---|---|---|---|---|");
        for codec in ["json", "cbor", "msgpack"] {
            for case in ECHO_CASES {
                if self.runs(codec, case.name, "typed").is_empty() {
                    continue;
                }
                let [typed, accepted, nodelay] =
                    ECHO_SERVERS.map(|server| cost(self.runs(codec, case.name, server)));
                let alone = codec_alone(codec, case.payload);
                println!(
                    "| {codec} | {} | {typed} | {accepted} | {nodelay} | {alone:.2} µs |",
                    case.name
                );
            }
        }
        println!(
            "\n## Push: messages per second; paced, delay from send to receipt p50 / p99 / max\n"
        );
        println!(
            "| codec | typed-ws | feed + flush | typed-ws / feed + flush | paced typed-ws | paced feed + flush |"
        );
        println!("|---|---|---|---|---|---|");
        for codec in ["json", "cbor", "msgpack"] {
            let [typed, hand] = PUSH_SERVERS.map(|server| self.runs(codec, "push", server));
            if typed.is_empty() {
                continue;
            }
            let [typed_paced, hand_paced] =
                PUSH_SERVERS.map(|server| self.runs(codec, "push paced", server));
            println!(
                "| {codec} | {:.0} | {:.0} | {} | {} | {} |",
                median(typed.iter().map(|r| r.rate)),
                median(hand.iter().map(|r| r.rate)),
                ratio(typed, |i| typed[i].rate / hand[i].rate).show(),
                delays(typed_paced),
                delays(hand_paced),
            );
        }
        println!("\n## Targets (issue 13)\n");
        println!("| target | codec | figure | spread | verdict |");
        println!("|---|---|---|---|---|");
        let mut verdict = |what: &str, codec: &str, figure: Ratio, at_least: f64| {
            let known = KNOWN_MISSES.iter().any(|known| what.starts_with(known));
            let word = if figure.median >= at_least {
                "met"
            } else if figure.high >= at_least {
                "within noise"
            } else if known {
                "missed (known, see benches/README.md)"
            } else {
                missed = true;
                "MISSED"
            };
            println!(
                "| {what} | {codec} | {:.3} | {:.3}-{:.3} | {} |",
                figure.median,
                figure.low,
                figure.high,
                if judge {
                    word
                } else {
                    "(not judged with --test)"
                }
            );
        };
        for codec in ["json", "cbor", "msgpack"] {
            for case in &ECHO_CASES[..2] {
                let [typed, accepted, nodelay] =
                    ECHO_SERVERS.map(|server| self.runs(codec, case.name, server));
                if typed.is_empty() {
                    continue;
                }
                let figure = ratio(typed, |i| {
                    typed[i].rate / accepted[i].rate.max(nodelay[i].rate)
                });
                verdict(
                    &format!("{}: typed-ws / better hand-written >= 1.4", case.name),
                    codec,
                    figure,
                    1.4,
                );
            }
            let [typed, _, nodelay] =
                ECHO_SERVERS.map(|server| self.runs(codec, "one in flight", server));
            if !typed.is_empty() {
                let rate = ratio(typed, |i| typed[i].rate / nodelay[i].rate);
                verdict(
                    "one in flight: typed-ws / NODELAY msg/s >= 1.0",
                    codec,
                    rate,
                    1.0,
                );
                // Latency is better lower: the figure is NODELAY's p99 over typed-ws's.
                let p99 = ratio(typed, |i| {
                    nodelay[i].percentile(0.99) as f64 / typed[i].percentile(0.99) as f64
                });
                verdict(
                    "one in flight: NODELAY p99 / typed-ws p99 >= 1.0",
                    codec,
                    p99,
                    1.0,
                );
            }
            let [typed, hand] = PUSH_SERVERS.map(|server| self.runs(codec, "push", server));
            if !typed.is_empty() {
                let push = ratio(typed, |i| typed[i].rate / hand[i].rate);
                verdict("push: typed-ws / feed + flush >= 1.0", codec, push, 1.0);
                let paced = self.runs(codec, "push paced", "typed_push");
                // 1 ms over the paced p99: >= 1.0 means 99% of the messages arrived within
                // 1 ms of their send (the slowest, in the table, carries the scheduler's noise,
                // the hand-written server's too).
                let within = ratio(paced, |i| 1e6 / paced[i].percentile(0.99).max(1) as f64);
                verdict("push paced: 1 ms / p99 delay >= 1.0", codec, within, 1.0);
            }
        }
        judge && missed
    }
}

/// Targets missed for a reason on record in benches/README.md, that do not fail the bench:
/// with 4 KiB messages serde's own decode and encode is most of an echo's cost, the same in
/// every server, which leaves too little for writing less often to make 1.4x.
const KNOWN_MISSES: [&str; 1] = ["pipelined 4 KiB"];

/// The median over rounds of a per-round ratio, with the lowest and highest round.
#[derive(Clone, Copy)]
struct Ratio {
    median: f64,
    low: f64,
    high: f64,
}

impl Ratio {
    fn show(&self) -> String {
        format!("{:.2} ({:.2}-{:.2})", self.median, self.low, self.high)
    }
}

fn ratio(runs: &[Run], of_round: impl Fn(usize) -> f64) -> Ratio {
    let values: Vec<f64> = (0..runs.len()).map(of_round).collect();
    Ratio {
        median: median(values.iter().copied()),
        low: values.iter().copied().fold(f64::INFINITY, f64::min),
        high: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    }
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn micros(nanos: f64) -> String {
    format!("{:.0} µs", nanos / 1e3)
}

/// Messages per second and latency p50 / p99, medians over the rounds.
fn cell(runs: &[Run]) -> String {
    format!(
        "{:.0}k/s, {} / {}",
        median(runs.iter().map(|r| r.rate)) / 1e3,
        micros(median(runs.iter().map(|r| r.percentile(0.5) as f64))),
        micros(median(runs.iter().map(|r| r.percentile(0.99) as f64))),
    )
}

/// Server CPU time per message, median over the rounds.
fn cost(runs: &[Run]) -> String {
    format!("{:.2} µs", median(runs.iter().map(Run::cpu_per_message)))
}

/// What decoding and encoding one message costs by itself, in microseconds: the part of an
/// echo that no server can save.
fn codec_alone(codec: &str, payload: &str) -> f64 {
    fn time<C: Codec, T: Payload>(value: T) -> f64 {
        let message = C::to_message(&value);
        let start = Instant::now();
        let mut rounds = 0;
        while start.elapsed() < Duration::from_millis(200) {
            for _ in 0..100 {
                let decoded: T = C::from_message(std::hint::black_box(&message)).expect("data");
                std::hint::black_box(C::to_message(&decoded));
            }
            rounds += 100;
        }
        start.elapsed().as_secs_f64() * 1e6 / rounds as f64
    }
    match (codec, payload) {
        ("json", "small") => time::<Json, _>(chat(1)),
        ("json", _) => time::<Json, _>(batch()),
        ("cbor", "small") => time::<Cbor, _>(chat(1)),
        ("cbor", _) => time::<Cbor, _>(batch()),
        ("msgpack", "small") => time::<MsgPack, _>(chat(1)),
        _ => time::<MsgPack, _>(batch()),
    }
}

/// Paced push delays p50 / p99 / max, medians over the rounds.
fn delays(runs: &[Run]) -> String {
    let max = |r: &Run| r.latencies.iter().copied().max().unwrap_or(0) as f64;
    format!(
        "{} / {} / {}",
        micros(median(runs.iter().map(|r| r.percentile(0.5) as f64))),
        micros(median(runs.iter().map(|r| r.percentile(0.99) as f64))),
        micros(median(runs.iter().map(max))),
    )
}
