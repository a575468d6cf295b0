//! The load client: a process of its own (this bench binary, started again with the
//! `client` role), tokio-tungstenite alone, pinned to CPU 0 when the servers are on CPU 1.
//!
//! It opens the subscribers (`/topics/t{i}`, the codec offered as subprotocol), then after
//! 200 ms (the contract's 100 ms to go live, and some) the publishers (`/publish/t{i}`),
//! which send Ticks paced (`--rate` per publisher per second) or as fast as the slowest
//! subscriber of their topic takes them (`--rate 0`: at most `--window` publications ahead
//! of it). Every delivery is checked by publisher and `seq` (gaps are losses, repeats are
//! duplicates); deliveries received inside the measured window count towards the rate and
//! the latency (receipt time minus `sent_at_us`, one clock). The server's CPU time over the
//! window comes from /proc/PID/stat (utime + stime), its RSS from /proc/PID/status.
//!
//! `--slow N` more subscribers on the first topic connect with `SO_RCVBUF` = `--rcvbuf` and
//! never read; after the run each is drained (2 s at most) to see what reached it and
//! whether the server closed it. `--idle`: nothing is published while the server's RSS is
//! read with every subscriber connected; then each publisher sends one Tick, which must reach
//! every subscriber.
//!
//! `--sequenced true`: the subscribers ask for numbered Ticks (`?since=now`). `--resume N`:
//! instead of all the above, N Ticks are published while a subscriber is away, and it comes
//! back with the position it had (`?since=&epoch=`): how long until it has them all, and the
//! bytes they took, beside a plain subscriber that got the same N live.
//!
//! `--compress true`: the subscribers (not the slow ones nor the publishers) are typed-ws
//! clients offering permessage-deflate, which tokio-tungstenite does not speak; each frame
//! they take is inflated before it is decoded.
//!
//! It prints one line, `result key=value ...`, which the driver reads.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use typed_ws::tokio_tungstenite::tungstenite::Message;
use typed_ws::tokio_tungstenite::tungstenite::client::IntoClientRequest;
use typed_ws::tokio_tungstenite::tungstenite::http::HeaderValue;
use typed_ws::tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use typed_ws::tokio_tungstenite::{self, WebSocketStream};
use typed_ws::topics::{Outcome, Resumed, Sequenced};
use typed_ws::{AnyConverter, Client, Compression, Config, Negotiation, Session};

use super::tick::{Codec, Tick, TickView, now_us, publisher_of, symbol};

type Ws = WebSocketStream<TcpStream>;

/// What one run does; each field is a `--flag value` of the client's command line.
#[derive(Debug, Clone)]
pub struct Load {
    pub sub: SocketAddr,
    pub publ: SocketAddr,
    /// Where a returning subscriber comes back to (`--resume`): `sub`, or another node.
    pub back: SocketAddr,
    pub codec: Codec,
    pub topics: usize,
    pub subs: usize,
    pub pubs: usize,
    /// Publications per second per publisher; 0: as fast as the window allows.
    pub rate: u64,
    pub window: u64,
    /// Bytes the symbol is padded to (the message's size).
    pub pad: usize,
    pub slow: usize,
    pub rcvbuf: u32,
    pub warm_up: Duration,
    pub measure: Duration,
    pub idle: bool,
    /// Whether the subscribers agree permessage-deflate.
    pub compress: bool,
    /// Whether the subscribers ask for numbered Ticks.
    pub sequenced: bool,
    /// Ticks missed and recovered by a returning subscriber; 0: no resume run.
    pub resume: u64,
    /// The server processes (two for two nodes), for CPU time and RSS.
    pub pids: Vec<u32>,
}

impl Load {
    pub fn to_args(&self) -> Vec<String> {
        let pids: Vec<String> = self.pids.iter().map(u32::to_string).collect();
        [
            ("--sub", self.sub.to_string()),
            ("--pub", self.publ.to_string()),
            ("--back", self.back.to_string()),
            ("--codec", self.codec.name().to_owned()),
            ("--topics", self.topics.to_string()),
            ("--subs", self.subs.to_string()),
            ("--pubs", self.pubs.to_string()),
            ("--rate", self.rate.to_string()),
            ("--window", self.window.to_string()),
            ("--pad", self.pad.to_string()),
            ("--slow", self.slow.to_string()),
            ("--rcvbuf", self.rcvbuf.to_string()),
            ("--warm-up-ms", self.warm_up.as_millis().to_string()),
            ("--measure-ms", self.measure.as_millis().to_string()),
            ("--idle", self.idle.to_string()),
            ("--compress", self.compress.to_string()),
            ("--sequenced", self.sequenced.to_string()),
            ("--resume", self.resume.to_string()),
            ("--pids", pids.join(",")),
        ]
        .into_iter()
        .flat_map(|(k, v)| [k.to_owned(), v])
        .collect()
    }

    pub fn from_args(args: &[String]) -> Load {
        let flag = |name: &str| -> String {
            let at = args
                .iter()
                .position(|a| a == name)
                .unwrap_or_else(|| panic!("the client needs {name}"));
            args[at + 1].clone()
        };
        let number = |name: &str| -> u64 { flag(name).parse().expect("a number") };
        Load {
            sub: flag("--sub").parse().expect("--sub"),
            publ: flag("--pub").parse().expect("--pub"),
            back: flag("--back").parse().expect("--back"),
            codec: Codec::from_name(&flag("--codec")),
            topics: number("--topics") as usize,
            subs: number("--subs") as usize,
            pubs: number("--pubs") as usize,
            rate: number("--rate"),
            window: number("--window"),
            pad: number("--pad") as usize,
            slow: number("--slow") as usize,
            rcvbuf: number("--rcvbuf") as u32,
            warm_up: Duration::from_millis(number("--warm-up-ms")),
            measure: Duration::from_millis(number("--measure-ms")),
            idle: flag("--idle") == "true",
            compress: flag("--compress") == "true",
            sequenced: flag("--sequenced") == "true",
            resume: number("--resume"),
            pids: flag("--pids")
                .split(',')
                .filter(|p| !p.is_empty())
                .map(|p| p.parse().expect("a pid"))
                .collect(),
        }
    }
}

/// Runs the client role: the load of the command line, then its `result` line.
pub fn run(args: &[String]) {
    let load = Load::from_args(args);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = if load.resume > 0 {
        runtime.block_on(resume(load))
    } else {
        runtime.block_on(drive(load))
    };
    println!("result {result}");
}

// ---- latency histogram ----

/// Microseconds, exact below 2,048, then 1,024 buckets per power of two (0.1% wide).
struct Histogram {
    buckets: Vec<AtomicU64>,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            buckets: (0..2048 + 40 * 1024).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn bucket(us: u64) -> usize {
        if us < 2048 {
            return us as usize;
        }
        let shift = 63 - us.leading_zeros() as usize - 10;
        (2048 + (shift - 1) * 1024 + ((us >> shift) as usize - 1024)).min(2048 + 40 * 1024 - 1)
    }

    fn value(bucket: usize) -> u64 {
        if bucket < 2048 {
            return bucket as u64;
        }
        let shift = (bucket - 2048) / 1024 + 1;
        (((bucket - 2048) % 1024 + 1024) as u64) << shift
    }

    fn record(&self, us: u64) {
        self.buckets[Self::bucket(us)].fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    fn percentile(&self, p: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let rank = ((total as f64 * p).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (at, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= rank {
                return Self::value(at);
            }
        }
        0
    }

    fn max(&self) -> u64 {
        self.buckets
            .iter()
            .rposition(|b| b.load(Ordering::Relaxed) > 0)
            .map_or(0, Self::value)
    }
}

// ---- the server's usage ----

/// (utime, stime) of every process, in clock ticks (100 per second on Linux).
fn cpu_ticks(pids: &[u32]) -> (u64, u64) {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| {
            // The fields after the command name, which may hold spaces, in parentheses.
            let rest = &stat[stat.rfind(')')? + 2..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
            Some((
                fields.get(11)?.parse::<u64>().ok()?,
                fields.get(12)?.parse::<u64>().ok()?,
            ))
        })
        .fold((0, 0), |(user, sys), (u, s)| (user + u, sys + s))
}

/// The ticks spent from `then` to `now`: user, system.
fn spent(then: (u64, u64), now: (u64, u64)) -> (u64, u64) {
    (now.0.saturating_sub(then.0), now.1.saturating_sub(then.1))
}

fn rss_kib(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .filter_map(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .sum()
}

// ---- connections ----

async fn connect(
    addr: SocketAddr,
    path: String,
    codec: Codec,
    rcvbuf: Option<u32>,
    read_buffer: usize,
) -> Option<Ws> {
    let socket = TcpSocket::new_v4().ok()?;
    if let Some(bytes) = rcvbuf {
        socket.set_recv_buffer_size(bytes).ok()?;
    }
    let tcp = socket.connect(addr).await.ok()?;
    tcp.set_nodelay(true).ok()?;
    let mut request = format!("ws://{addr}{path}").into_client_request().ok()?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static(codec.name()),
    );
    let config = WebSocketConfig::default().read_buffer_size(read_buffer);
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, tcp, Some(config))
        .await
        .ok()?;
    Some(ws)
}

/// A subscriber's connection: tokio-tungstenite's, or a typed-ws session that inflates.
enum Sub {
    Plain(Box<Ws>),
    Deflate(Session<AnyConverter>),
}

impl Sub {
    async fn plain(
        addr: SocketAddr,
        path: String,
        codec: Codec,
        read_buffer: usize,
    ) -> Option<Sub> {
        connect(addr, path, codec, None, read_buffer)
            .await
            .map(|ws| Sub::Plain(Box::new(ws)))
    }

    async fn deflate(addr: SocketAddr, path: String, codec: Codec) -> Option<Sub> {
        let config = Config::new()
            .negotiate(Negotiation::from_names(codec.name()).ok()?)
            .compression(Compression::new());
        let session = Client::new(config)
            .web_socket_session(format!("ws://{addr}{path}"))
            .await
            .ok()?;
        session.compression()?;
        Some(Sub::Deflate(session))
    }

    /// The next message; `None` once the connection has failed or ended.
    async fn next(&mut self) -> Option<Message> {
        match self {
            Sub::Plain(ws) => ws.next().await?.ok(),
            Sub::Deflate(session) => session.receive().await.ok().map(Message::from),
        }
    }
}

/// Opens `count` connections to the paths `path(i)` with `connect`, 64 handshakes at a time.
async fn connect_all<T, F>(
    count: usize,
    path: impl Fn(usize) -> String,
    connect: impl Fn(String) -> F,
) -> Vec<Option<T>>
where
    T: Send + 'static,
    F: Future<Output = Option<T>> + Send + 'static,
{
    let gate = Arc::new(Semaphore::new(64));
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let (gate, connecting) = (gate.clone(), connect(path(i)));
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.ok()?;
                // A server at its connection limit leaves the handshake waiting.
                tokio::time::timeout(Duration::from_secs(10), connecting)
                    .await
                    .ok()
                    .flatten()
            })
        })
        .collect();
    let mut connections = Vec::with_capacity(count);
    for task in tasks {
        connections.push(task.await.ok().flatten());
    }
    connections
}

// ---- subscribers ----

/// A subscriber as the publishers see it: how far it has got.
struct Progress {
    /// The next seq it expects from its topic's first publisher.
    next: AtomicU64,
    closed: AtomicBool,
}

/// What one subscriber saw.
#[derive(Default)]
struct Seen {
    in_window: u64,
    lost: u64,
    dup: u64,
    /// The next seq expected per publisher (global index), for the losses at the end.
    next: Vec<(usize, u64)>,
    closed: bool,
}

struct Shared {
    codec: Codec,
    sequenced: bool,
    histogram: Histogram,
    open: Instant,
    end: Instant,
}

async fn subscriber(
    mut sub: Sub,
    shared: Arc<Shared>,
    progress: Arc<Progress>,
    mut stop: watch::Receiver<bool>,
) -> Seen {
    let mut seen = Seen::default();
    loop {
        let message = tokio::select! {
            biased;
            message = sub.next() => message,
            _ = stop.changed() => break,
        };
        let Some(message) = message else {
            seen.closed = true;
            break;
        };
        if message.is_close() {
            seen.closed = true;
            break;
        }
        let tick = if shared.sequenced {
            shared
                .codec
                .decode_as::<Sequenced<TickView>>(&message)
                .map(|numbered| numbered.data)
        } else {
            shared.codec.decode_as::<TickView>(&message)
        };
        let Some(tick) = tick else {
            continue;
        };
        let now = Instant::now();
        if shared.open <= now && now < shared.end {
            seen.in_window += 1;
            shared
                .histogram
                .record(now_us().saturating_sub(tick.sent_at_us));
        }
        let Some(publisher) = publisher_of(&tick.symbol) else {
            continue;
        };
        let at = match seen.next.iter().position(|(p, _)| *p == publisher) {
            Some(at) => at,
            None => {
                seen.next.push((publisher, 0));
                seen.next.len() - 1
            }
        };
        let next = &mut seen.next[at].1;
        if tick.seq >= *next {
            seen.lost += tick.seq - *next;
            *next = tick.seq + 1;
        } else {
            seen.dup += 1;
        }
        if at == 0 {
            progress.next.store(*next, Ordering::Release);
        }
    }
    progress.closed.store(true, Ordering::Release);
    seen
}

// ---- publishers ----

fn tick(publisher: usize, seq: u64, pad: usize) -> Tick {
    Tick {
        seq,
        sent_at_us: now_us(),
        symbol: symbol(publisher, pad),
        price: 100.125 + (seq % 400) as f64 * 0.25,
        size: 100 + seq % 900,
    }
}

/// Publishes until `end`; gives how many it published.
async fn publisher(
    mut ws: Ws,
    index: usize,
    load: Load,
    end: Instant,
    watching: Vec<Arc<Progress>>,
) -> u64 {
    let mut seq = 0;
    if load.idle {
        // One Tick, which every subscriber must get.
        if ws
            .send(load.codec.encode(&tick(index, 0, load.pad)))
            .await
            .is_ok()
        {
            seq = 1;
        }
    } else if load.rate == 0 {
        while Instant::now() < end {
            // The slowest live subscriber of the topic.
            let slowest = watching
                .iter()
                .filter(|p| !p.closed.load(Ordering::Acquire))
                .map(|p| p.next.load(Ordering::Acquire))
                .min()
                .unwrap_or(seq);
            let limit = slowest + load.window;
            if seq >= limit {
                tokio::time::sleep(Duration::from_micros(200)).await;
                continue;
            }
            while seq < limit {
                if ws
                    .feed(load.codec.encode(&tick(index, seq, load.pad)))
                    .await
                    .is_err()
                {
                    return seq;
                }
                seq += 1;
            }
            if ws.flush().await.is_err() {
                return seq;
            }
        }
    } else {
        let mut every = tokio::time::interval(Duration::from_secs_f64(1.0 / load.rate as f64));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        loop {
            every.tick().await;
            if Instant::now() >= end {
                break;
            }
            if ws
                .send(load.codec.encode(&tick(index, seq, load.pad)))
                .await
                .is_err()
            {
                return seq;
            }
            seq += 1;
        }
    }
    // Stays open until the subscribers have drained: a close could race the last Ticks.
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(ws);
    });
    seq
}

// ---- the run ----

async fn drive(load: Load) -> String {
    let codec = load.codec;
    let rss_before = rss_kib(&load.pids);
    // Big reads when messages come fast; small buffers for the crowd of idle ones.
    let read_buffer = if load.idle { 4 << 10 } else { 64 << 10 };
    let total = load.topics * load.subs;
    let subs = load.subs;
    let sub = load.sub;
    let since = if load.sequenced { "?since=now" } else { "" };
    let topic = move |i: usize| format!("/topics/t{}{since}", i / subs);
    let connections = if load.compress {
        connect_all(total, topic, |path| Sub::deflate(sub, path, codec)).await
    } else {
        connect_all(total, topic, |path| {
            Sub::plain(sub, path, codec, read_buffer)
        })
        .await
    };
    let slow = connect_all(
        load.slow,
        |_| "/topics/t0".to_owned(),
        |path| connect(sub, path, codec, Some(load.rcvbuf), 4 << 10),
    )
    .await;
    let connect_failed = connections.iter().filter(|c| c.is_none()).count()
        + slow.iter().filter(|c| c.is_none()).count();
    // Every subscriber is live within 100 ms of its handshake.
    tokio::time::sleep(Duration::from_millis(if load.idle { 1000 } else { 200 })).await;
    let rss_connected = rss_kib(&load.pids);

    let start = Instant::now();
    let open = start + load.warm_up;
    let end = open + load.measure;
    let shared = Arc::new(Shared {
        codec,
        sequenced: load.sequenced,
        histogram: Histogram::new(),
        open: if load.idle { start } else { open },
        end: if load.idle {
            start + Duration::from_secs(3600)
        } else {
            end
        },
    });
    let (stop_tx, stop) = watch::channel(false);
    let mut progress: Vec<Vec<Arc<Progress>>> = vec![Vec::new(); load.topics];
    let mut readers = Vec::new();
    for (i, sub) in connections.into_iter().enumerate() {
        let Some(sub) = sub else { continue };
        let p = Arc::new(Progress {
            next: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        });
        progress[i / subs].push(p.clone());
        let reader = tokio::spawn(subscriber(sub, shared.clone(), p, stop.clone()));
        readers.push((i / subs, reader));
    }

    let pubs = load.pubs;
    let publ = load.publ;
    let publishers = connect_all(
        load.topics * pubs,
        |i| format!("/publish/t{}", i / pubs),
        |path| connect(publ, path, codec, None, 4 << 10),
    )
    .await;
    // The servers' CPU time over the window, and this client's: at the highest rates the
    // client is the busier process, and sets the rate.
    let cpu = {
        let (pids, me) = (load.pids.clone(), [std::process::id()]);
        tokio::spawn(async move {
            tokio::time::sleep_until(open).await;
            let at_open = (cpu_ticks(&pids), cpu_ticks(&me));
            tokio::time::sleep_until(end).await;
            (
                spent(at_open.0, cpu_ticks(&pids)),
                spent(at_open.1, cpu_ticks(&me)),
            )
        })
    };
    let mut sending = Vec::new();
    let mut publisher_failed = 0;
    for (i, ws) in publishers.into_iter().enumerate() {
        let Some(ws) = ws else {
            publisher_failed += 1;
            sending.push(None);
            continue;
        };
        let watching = progress[i / pubs].clone();
        sending.push(Some(tokio::spawn(publisher(
            ws,
            i,
            load.clone(),
            end,
            watching,
        ))));
    }
    let mut published = Vec::new();
    for task in sending {
        published.push(match task {
            Some(task) => task.await.unwrap_or(0),
            None => 0,
        });
    }
    let ((user, sys), client_cpu) = if load.idle {
        ((0, 0), (0, 0))
    } else {
        cpu.await.unwrap_or_default()
    };
    let cpu = user + sys;
    let client_cpu = client_cpu.0 + client_cpu.1;
    // Drains: until every live subscriber has had every publication, 5 s at most.
    let drained_by = Instant::now() + Duration::from_secs(5);
    while Instant::now() < drained_by {
        let behind = progress.iter().enumerate().any(|(topic, subs)| {
            let first = published[topic * pubs];
            subs.iter().any(|p| {
                !p.closed.load(Ordering::Acquire) && p.next.load(Ordering::Acquire) < first
            })
        });
        if !behind {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A moment more for the other publishers' last Ticks.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let rss_end = rss_kib(&load.pids);
    let _ = stop_tx.send(true);
    let (mut in_window, mut lost, mut dup, mut closed) = (0, 0, 0, 0);
    for (topic, reader) in readers {
        let seen = reader.await.unwrap_or_default();
        in_window += seen.in_window;
        lost += seen.lost;
        dup += seen.dup;
        closed += u64::from(seen.closed);
        // Publications after the last one received, by the topic's publishers.
        let first = topic * pubs;
        for (p, published) in published.iter().enumerate().skip(first).take(pubs) {
            let next = seen
                .next
                .iter()
                .find(|(q, _)| *q == p)
                .map_or(0, |(_, n)| *n);
            lost += published.saturating_sub(next);
        }
    }
    // What reached the slow subscribers, and whether the server closed them.
    let drains: Vec<_> = slow
        .into_iter()
        .flatten()
        .map(|ws| tokio::spawn(drain(ws, codec)))
        .collect();
    let (mut slow_frames, mut slow_closed, mut slow_codes) = (0u64, 0u64, Vec::new());
    for drained in drains {
        let (frames, close) = drained.await.unwrap_or((0, None));
        slow_frames += frames;
        if let Some(code) = close {
            slow_closed += 1;
            slow_codes.push(code);
        }
    }
    slow_codes.sort();
    slow_codes.dedup();

    let secs = load.measure.as_secs_f64();
    let h = &shared.histogram;
    let cpu_us = cpu as f64 * 1e6 / 100.0;
    let fields: Vec<(&str, String)> = vec![
        (
            "subscribers",
            (total - connect_failed.min(total)).to_string(),
        ),
        (
            "connect_failed",
            (connect_failed + publisher_failed).to_string(),
        ),
        ("published", published.iter().sum::<u64>().to_string()),
        ("slow", load.slow.to_string()),
        ("deliveries", in_window.to_string()),
        ("rate", format!("{:.0}", in_window as f64 / secs)),
        ("p50_us", h.percentile(0.5).to_string()),
        ("p99_us", h.percentile(0.99).to_string()),
        ("max_us", h.max().to_string()),
        ("lost", lost.to_string()),
        ("dup", dup.to_string()),
        ("closed", closed.to_string()),
        ("cpu_us", format!("{cpu_us:.0}")),
        // In the kernel: for one write per delivery, the share nobody's code can save.
        (
            "sys_share",
            format!("{:.2}", sys as f64 / cpu.max(1) as f64),
        ),
        (
            "client_busy",
            format!("{:.2}", client_cpu as f64 / 100.0 / secs),
        ),
        (
            "cpu_per_delivery_us",
            format!("{:.3}", cpu_us / in_window.max(1) as f64),
        ),
        ("rss_before_kib", rss_before.to_string()),
        ("rss_connected_kib", rss_connected.to_string()),
        ("rss_end_kib", rss_end.to_string()),
        ("slow_frames", slow_frames.to_string()),
        ("slow_closed", slow_closed.to_string()),
        (
            "slow_codes",
            if slow_codes.is_empty() {
                "-".to_owned()
            } else {
                slow_codes.join("/")
            },
        ),
    ];
    fields
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads what waits for a subscriber that never read, until nothing more comes for 300 ms
/// (3 s at most): the Ticks, and the close code if the server closed it ("eof" for a
/// connection ended without a close frame).
async fn drain(mut ws: Ws, codec: Codec) -> (u64, Option<String>) {
    let by = Instant::now() + Duration::from_secs(3);
    let mut frames = 0;
    loop {
        let quiet = (Instant::now() + Duration::from_millis(300)).min(by);
        match tokio::time::timeout_at(quiet, ws.next()).await {
            Err(_) => return (frames, None),
            Ok(Some(Ok(Message::Close(frame)))) => {
                let code = frame.map_or("none".to_owned(), |f| u16::from(f.code).to_string());
                return (frames, Some(code));
            }
            Ok(Some(Ok(message))) => frames += u64::from(codec.decode(&message).is_some()),
            Ok(_) => return (frames, Some("eof".to_owned())),
        }
    }
}

// ---- resume ----

/// `--resume N`: a subscriber numbered from now (the one away), a plain one (the baseline), a
/// publisher of N Ticks (at most `--window` ahead of the plain one, 0: no bound); then the
/// first comes back (to `--back`) with its position and takes the N again.
async fn resume(load: Load) -> String {
    let (codec, missed) = (load.codec, load.resume);
    let connecting = |path: &str| connect(load.sub, path.to_owned(), codec, None, 64 << 10);
    let (Some(mut away), Some(mut plain), Some(mut publisher)) = (
        connecting("/topics/t0?since=now").await,
        connecting("/topics/t0").await,
        connect(load.publ, "/publish/t0".to_owned(), codec, None, 4 << 10).await,
    ) else {
        return "connect_failed=1".to_owned();
    };
    let Some(start) = outcome(&mut away, codec).await else {
        return "failed=no_outcome".to_owned();
    };
    drop(away);
    // Every subscriber is live within 100 ms of its handshake.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let began = Instant::now();
    let taken = Arc::new(AtomicU64::new(0));
    let counted = taken.clone();
    let live = tokio::spawn(async move {
        let mut bytes = 0;
        for _ in 0..missed {
            match plain.next().await {
                Some(Ok(message)) if codec.decode(&message).is_some() => bytes += message.len(),
                _ => return None,
            }
            counted.fetch_add(1, Ordering::Relaxed);
        }
        Some((began.elapsed(), bytes))
    });
    for seq in 0..missed {
        if load.window > 0 && seq >= load.window + taken.load(Ordering::Relaxed) {
            if publisher.flush().await.is_err() {
                return "failed=publish".to_owned();
            }
            while seq >= load.window + taken.load(Ordering::Relaxed) {
                if live.is_finished() {
                    return "failed=live".to_owned();
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        }
        if publisher
            .feed(codec.encode(&tick(0, seq, 0)))
            .await
            .is_err()
        {
            return "failed=publish".to_owned();
        }
    }
    if publisher.flush().await.is_err() {
        return "failed=publish".to_owned();
    }
    let Ok(Some((live_time, live_bytes))) = live.await else {
        return "failed=live".to_owned();
    };

    let came_back = Instant::now();
    let path = format!("/topics/t0?since={}&epoch={}", start.seq, start.epoch);
    let Some(mut back) = connect(load.back, path, codec, None, 64 << 10).await else {
        return "connect_failed=1".to_owned();
    };
    let Some(told) = outcome(&mut back, codec).await else {
        return "failed=no_outcome".to_owned();
    };
    let (mut bytes, mut next, mut lost) = (0, start.seq + 1, 0);
    for _ in 0..told.count {
        let Some(Ok(message)) = back.next().await else {
            return "failed=resume".to_owned();
        };
        bytes += message.len();
        let Some(numbered) = codec.decode_as::<Sequenced<Tick>>(&message) else {
            return "failed=resume_decode".to_owned();
        };
        lost += numbered.seq.saturating_sub(next);
        next = numbered.seq + 1;
    }
    let resume_time = came_back.elapsed();
    drop(publisher);
    [
        ("missed", missed.to_string()),
        ("outcome", format!("{:?}", told.outcome).to_lowercase()),
        ("recovered", told.count.to_string()),
        (
            "lost",
            (lost + missed.saturating_sub(told.count)).to_string(),
        ),
        ("resume_us", resume_time.as_micros().to_string()),
        ("resume_bytes", bytes.to_string()),
        ("live_us", live_time.as_micros().to_string()),
        ("live_bytes", live_bytes.to_string()),
        (
            "recovered_ok",
            (told.outcome == Outcome::Recovered).to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| format!("{k}={v}"))
    .collect::<Vec<_>>()
    .join(" ")
}

/// The first frame of a sequenced subscription, within 10 s.
async fn outcome(ws: &mut Ws, codec: Codec) -> Option<Resumed> {
    let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .ok()??
        .ok()?;
    codec.decode_as(&message)
}
