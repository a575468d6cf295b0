//! Load: many concurrent sessions through the echo server, each sending many typed messages
//! while it receives the echoes, checking that none is lost or reordered.
//!
//! ```text
//! cargo run --release --example load -- [--sessions 1000] [--messages 1000] [--codec msgpack]
//! ```
//!
//! It runs the echo server of `echo_server` in the same process, opens every session at once,
//! and prints the messages echoed per second, the latency from a message's send to its echo
//! (p50 and p99; every session sends as fast as it can, so this is mostly queueing) and the
//! peak resident memory of the process (server and clients together). Each session needs two
//! file descriptors here (`ulimit -n`). `cargo bench --bench load` measures the same echo
//! server beside hand-written ones, from another process.

mod common;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use typed_ws::{AnyConverter, BoxError, Client, CloseCode, CloseReason, Config, Error, Report};

use common::{
    ChatMessage, ECHO_PATH, echo_config, only, parse_converter, parse_flags, serve_echo,
    usage_error,
};

const USAGE: &str = "usage: load [--sessions N] [--messages N] [--codec json|cbor|msgpack]
  --sessions  concurrent sessions (default 1000)
  --messages  messages each session sends (default 1000)
  --codec     how messages are encoded (default msgpack)";

#[tokio::main]
async fn main() -> ExitCode {
    let [sessions, messages, codec] = match parse_flags(
        USAGE,
        [
            ("--sessions", "1000"),
            ("--messages", "1000"),
            ("--codec", "msgpack"),
        ],
    ) {
        Ok(values) => values,
        Err(code) => return code,
    };
    let (Ok(sessions), Ok(messages)) = (sessions.parse::<u64>(), messages.parse::<u64>()) else {
        return usage_error(USAGE, "--sessions and --messages take whole numbers");
    };
    let converter = match parse_converter(&codec, USAGE) {
        Ok(converter) => converter,
        Err(code) => return code,
    };

    let listener = match TcpListener::bind("127.0.0.1:0")
        .await
        .and_then(|l| Ok((l.local_addr()?, l)))
    {
        Ok((addr, listener)) => {
            tokio::spawn(serve_echo(
                listener,
                echo_config(only(converter)),
                std::future::pending(),
            ));
            addr
        }
        Err(e) => {
            eprintln!("error: cannot listen on loopback: {e}");
            return ExitCode::FAILURE;
        }
    };
    let url = format!("ws://{listener}{ECHO_PATH}");
    let client = Client::new(Config::new().converter(converter));

    let start = Instant::now();
    let tasks: Vec<_> = (0..sessions)
        .map(|n| tokio::spawn(run_session(client.clone(), url.clone(), n, messages)))
        .collect();
    let mut failures = 0;
    for task in tasks {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                failures += 1;
                eprintln!("session failed: {}", Report::new(e.as_ref()));
            }
            Err(e) => {
                failures += 1;
                eprintln!("session panicked: {e}");
            }
        }
    }
    let elapsed = start.elapsed();
    let echoed = (sessions - failures) * messages;
    println!("codec            {codec}");
    println!("sessions         {sessions} ({failures} failed)");
    println!("messages each    {messages}");
    println!("echoes checked   {echoed} (none lost or reordered)");
    println!("elapsed          {:.2} s", elapsed.as_secs_f64());
    println!(
        "messages/s       {:.0}",
        echoed as f64 / elapsed.as_secs_f64()
    );
    println!("latency p50      {}", micros(LATENCY.percentile(0.50)));
    println!("latency p99      {}", micros(LATENCY.percentile(0.99)));
    println!(
        "peak RSS         {}",
        peak_rss().unwrap_or_else(|| "unknown".into())
    );
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One session: a task sends every message while this one receives and checks the echoes.
async fn run_session(
    client: Client<AnyConverter>,
    url: String,
    n: u64,
    messages: u64,
) -> Result<(), BoxError> {
    let (mut tx, mut rx) = client.web_socket_session(url).await?.split();
    let message = move |id: u64| ChatMessage {
        id: n * messages + id,
        author: format!("session-{n}"),
        text: "the quick brown fox jumps over the lazy dog".into(),
        tags: vec!["load".into()],
        reply_to: id.checked_sub(1),
    };
    let (sent_at, mut echoed_at) = tokio::sync::mpsc::unbounded_channel();
    let sender = tokio::spawn(async move {
        for id in 0..messages {
            let _ = sent_at.send(Instant::now());
            tx.send_serialized(&message(id)).await?;
        }
        Ok::<_, Error>(tx)
    });
    for id in 0..messages {
        let echo: ChatMessage = rx.receive_deserialized().await?;
        if echo != message(id) {
            return Err(format!("session {n}: echo {id} lost or out of order: {echo:?}").into());
        }
        if let Ok(sent) = echoed_at.try_recv() {
            LATENCY.record(sent.elapsed());
        }
    }
    let mut tx = sender.await??;
    Ok(tx.close(CloseReason::new(CloseCode::Normal, "")).await?)
}

/// Every echo's latency, in buckets of an eighth of a power of two of microseconds: a fixed
/// 4 KiB, whatever the number of messages, so that it does not show in the peak RSS.
static LATENCY: Histogram = Histogram([const { AtomicU64::new(0) }; 512]);

struct Histogram([AtomicU64; 512]);

impl Histogram {
    fn bucket(micros: u64) -> usize {
        if micros < 8 {
            return micros as usize;
        }
        let power = 63 - micros.leading_zeros() as usize;
        let eighth = (micros >> (power - 3)) as usize & 7;
        ((power - 2) * 8 + eighth).min(511)
    }

    /// The smallest latency that falls in `bucket`.
    fn floor(bucket: usize) -> u64 {
        if bucket < 8 {
            return bucket as u64;
        }
        let (power, eighth) = (bucket / 8 + 2, bucket as u64 % 8);
        (8 + eighth) << (power - 3)
    }

    fn record(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.0[Self::bucket(micros)].fetch_add(1, Ordering::Relaxed);
    }

    /// The latency below which a fraction `p` of the echoes came, to within an eighth.
    fn percentile(&self, p: f64) -> Duration {
        let counts: Vec<u64> = self.0.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let wanted = (counts.iter().sum::<u64>() as f64 * p).ceil() as u64;
        let mut seen = 0;
        for (bucket, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= wanted.max(1) {
                return Duration::from_micros(Self::floor(bucket));
            }
        }
        Duration::ZERO
    }
}

fn micros(latency: Duration) -> String {
    format!("{} µs", latency.as_micros())
}

/// The process's peak resident set size, from Linux's /proc.
fn peak_rss() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(format!("{:.1} MiB", kib / 1024.0))
}
