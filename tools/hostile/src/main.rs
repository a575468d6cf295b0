//! Hostile peers against a server in a child process, measured from outside: what each
//! attack costs the server in memory, when (if ever) the server disconnects the attacker, how
//! a well-behaved bystander's round trips fare meanwhile, and how much the server logs.
//!
//! ```text
//! cargo build --release --example echo_server --example axum_echo --example chat --features axum
//! cargo run --release -p hostile -- --target typed-ws|axum|chat|raw|python [--attack NAME[,NAME...]] [--quick]
//! ```
//!
//! Targets, each started as a child process that prints `listening on ws://IP:PORT/echo`
//! (`http://IP:PORT/` for the chat):
//! - `typed-ws`: the `echo_server` example (`target/release/examples/echo_server`, beside
//!   this program's `target/release/hostile`), run with
//!   `--addr 127.0.0.1:0 --codec msgpack,cbor,json`;
//! - `axum`: the `axum_echo` example (built with `--features axum`), with the same flags;
//! - `chat`: the `chat` example (built with `--features axum`), `--addr 127.0.0.1:0`: its
//!   WebSocket is `/ws?name=...`, with the subprotocols `msgpack` and `json`;
//! - `raw`: this program's hidden `raw-server` subcommand, a bare tokio-tungstenite echo server
//!   (`accept_async`, default `WebSocketConfig`, no keep-alive, no timeouts): the baseline;
//! - `python`: `benches/hostile/echo_server.py`, Python `websockets` with its defaults (which
//!   include permessage-deflate) except a 1 MiB `max_size`, run with the venv of
//!   `bash tests/peers/install.sh` (under `CARGO_TARGET_DIR` when set, as install.sh does).
//!
//! Attacks (`--attack` takes a comma-separated subset; by default all that apply to the
//! target, in this order), each bounded in time and count, on loopback, from raw TCP with
//! hand-written masked frames. On the echo servers (not `chat`):
//! - `ping-flood`: one session sends 125-byte pings as fast as it can, never reading;
//! - `silent`: 500 connections that send nothing, 100 that send a header line every 2 s;
//! - `non-reading`: 40 sessions each send 200 ChatMessages of ~100 KiB, never reading;
//! - `vanish`: 20 sessions go quiet after the handshake, neither reading nor writing;
//! - `idle`: 5,000 sessions (1,000 with `--quick`) that answer pings and nothing else; the
//!   RSS growth divided by the sessions is the server's memory per idle session;
//! - `amplification`: 30 sessions each send one 1 MiB MessagePack ChatMessage whose `tags`
//!   holds as many empty strings as fit, never reading.
//!
//! On every target:
//! - `trickle`: 500 connections that send nothing and 500 that send an HTTP request 1 byte
//!   every 2 s, watched for 30 s (15 s with `--quick`) against a 10 s handshake deadline: how
//!   many of each the server closed, and when; the server's open descriptors
//!   (`/proc/PID/fd`) before, at most, and when the window ended.
//!
//! With permessage-deflate (`typed-ws`, `axum` and `python`; these attacks start
//! `echo_server` and `axum_echo` with `--compress`, and check in every handshake that the
//! server agreed):
//! - `compressed-idle`: 1,000 idle sessions, each having sent one compressed ~240 B
//!   ChatMessage and read its echo: memory per session with compression state;
//! - `bomb`: 4 sessions send ~1 KiB compressed ChatMessages that inflate to 1 MiB, as fast
//!   as the server reads them, and read the echoes meanwhile, for 15 s (8 s with `--quick`):
//!   what it does to the bystander;
//! - `parked`: 300 sessions each send the first, non-final frame of a compressed message
//!   (~1 KiB on the wire, 1 MiB inflated) and never the rest; the RSS growth, and how many
//!   the server closed with 1013 (try again later).
//!
//! And:
//! - `offer` (not `raw`, which ignores subprotocols): one upgrade offering 9,000
//!   subprotocol names (~63 KB) none of which the server speaks: the status and the size of
//!   the response body;
//! - `joins` (`chat` only): 5,000 members (1,000 with `--quick`) join one by one with the
//!   same name (`/ws?name=x`), each reading everything the room sends, then 100 with names
//!   of their own (5 minutes at most for the first, one more for the others); the time from
//!   connecting to the welcome, per join, for the first and last 100 of the crowd and for the
//!   others: at the same room size, the difference is what the taken name costs.
//!
//! Every attack gets a fresh server child, so that memory one attack leaves behind does not
//! hide the next one's. The server's RSS is sampled from `/proc/PID/status` every 100 ms
//! (peak growth is over the baseline just before the attack; VmHWM is reported too). An
//! attacking connection counts as disconnected when a write fails or a read ends, or when the
//! kernel's table (`/proc/net/tcp`) shows that the server released its socket or sent FIN or
//! RST: a server cannot tell a peer that never reads that it has dropped it. The bystander is
//! a separate client on its own thread that makes a round trip every 20 ms and waits (1 s at
//! most) for the answer: a MessagePack ChatMessage and its echo on the echo servers, `GET /`
//! and the page on the chat (whose own round trip, a message, would go to every member
//! `joins` added). The output ends with a Markdown table and one line of raw numbers per
//! attack. The program exits 0 after printing, 1 if a server child died (a crash is a
//! finding) or could not be started, 2 on a usage error.
//!
//! Re-running the attacks of the hardening issue (item 7; `benches/README.md` has the
//! figures), one command per target:
//!
//! ```text
//! cargo run --release -p hostile -- --target typed-ws --attack trickle,compressed-idle,bomb,parked,offer
//! cargo run --release -p hostile -- --target axum --attack trickle,compressed-idle,bomb,parked,offer
//! cargo run --release -p hostile -- --target chat
//! cargo run --release -p hostile -- --target python --attack trickle,compressed-idle,bomb,parked,offer
//! ```

#[path = "../../../examples/common/mod.rs"]
mod common;

mod attacks;
mod bystander;
mod client;
mod compressed;
mod conn;
mod http;
mod report;
mod server;
// Frame headers written and parsed as the tests and the benches do, by tungstenite's own code:
// one file for all three. This tool uses part of it.
#[allow(dead_code)]
#[path = "../../../tests/common/wire.rs"]
mod wire;

use std::process::ExitCode;
use std::sync::OnceLock;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use tokio::time::sleep;

use attacks::{
    Ctx, Outcome, amplification, idle, idle_sessions, non_reading, ping_flood, silent, vanish,
};
use bystander::{Probe, start_bystander};
use report::{Row, print_report};
use server::{Sampler, memory, raw_server, spawn_server};

const USAGE: &str =
    "usage: hostile --target typed-ws|axum|chat|raw|python [--attack NAME[,NAME...]] [--quick]
  --target  the server to attack, run as a child process
  --attack  ping-flood, silent, non-reading, vanish, idle, amplification (not chat),
            trickle, compressed-idle, bomb, parked (typed-ws, axum, python), offer (not raw),
            joins (chat) (default: all that apply to the target)
  --quick   shorter windows, 1,000 idle sessions instead of 5,000, 1,000 joins instead of 5,000";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    TypedWs,
    Axum,
    Chat,
    Raw,
    Python,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::TypedWs => "typed-ws",
            Target::Axum => "axum",
            Target::Chat => "chat",
            Target::Raw => "raw",
            Target::Python => "python",
        }
    }

    /// Where an attacker asks for a WebSocket session.
    pub fn ws_path(self) -> &'static str {
        match self {
            Target::Chat => "/ws?name=mallory",
            _ => common::ECHO_PATH,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    PingFlood,
    Silent,
    NonReading,
    Vanish,
    Idle,
    Amplification,
    Trickle,
    CompressedIdle,
    Bomb,
    Parked,
    Offer,
    Joins,
}

impl Attack {
    const ALL: [Attack; 12] = [
        Attack::PingFlood,
        Attack::Silent,
        Attack::NonReading,
        Attack::Vanish,
        Attack::Idle,
        Attack::Amplification,
        Attack::Trickle,
        Attack::CompressedIdle,
        Attack::Bomb,
        Attack::Parked,
        Attack::Offer,
        Attack::Joins,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Attack::PingFlood => "ping-flood",
            Attack::Silent => "silent",
            Attack::NonReading => "non-reading",
            Attack::Vanish => "vanish",
            Attack::Idle => "idle",
            Attack::Amplification => "amplification",
            Attack::Trickle => "trickle",
            Attack::CompressedIdle => "compressed-idle",
            Attack::Bomb => "bomb",
            Attack::Parked => "parked",
            Attack::Offer => "offer",
            Attack::Joins => "joins",
        }
    }

    fn applies_to(self, target: Target) -> bool {
        match self {
            Attack::Trickle => true,
            Attack::Offer => target != Target::Raw,
            Attack::Joins => target == Target::Chat,
            Attack::CompressedIdle | Attack::Bomb | Attack::Parked => {
                matches!(target, Target::TypedWs | Target::Axum | Target::Python)
            }
            _ => target != Target::Chat,
        }
    }

    /// Whether the server must accept permessage-deflate.
    fn compressed(self) -> bool {
        matches!(self, Attack::CompressedIdle | Attack::Bomb | Attack::Parked)
    }

    /// How many connections the attack holds at once, when that is enough to meet the limit
    /// on open files.
    fn connections(self, quick: bool) -> Option<usize> {
        match self {
            Attack::Idle => Some(idle_sessions(quick)),
            Attack::Trickle => Some(http::TRICKLE_CONNECTIONS),
            Attack::CompressedIdle => Some(compressed::IDLE_SESSIONS),
            Attack::Joins => Some(http::members(quick)),
            _ => None,
        }
    }
}

struct Args {
    target: Target,
    attacks: Vec<Attack>,
    quick: bool,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("raw-server") {
        return raw_server();
    }
    let args = match parse_args(&args) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

fn parse_args(args: &[String]) -> Result<Args, ExitCode> {
    let usage = |message: &str| {
        eprintln!("error: {message}\n{USAGE}");
        ExitCode::from(2)
    };
    let (mut target, mut attacks, mut quick) = (None, None, false);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (arg.as_str(), None),
        };
        match name {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Err(ExitCode::SUCCESS);
            }
            "--quick" if inline.is_none() => quick = true,
            "--target" | "--attack" => {
                let Some(value) = inline.or_else(|| args.next().map(String::as_str)) else {
                    return Err(usage(&format!("{name} needs a value")));
                };
                if name == "--target" {
                    target = Some(match value {
                        "typed-ws" => Target::TypedWs,
                        "axum" => Target::Axum,
                        "chat" => Target::Chat,
                        "raw" => Target::Raw,
                        "python" => Target::Python,
                        other => return Err(usage(&format!("unknown target {other:?}"))),
                    });
                } else {
                    let mut chosen = Vec::new();
                    for wanted in value.split(',').map(str::trim) {
                        match Attack::ALL.iter().find(|a| a.name() == wanted) {
                            Some(attack) if !chosen.contains(attack) => chosen.push(*attack),
                            Some(_) => {}
                            None => return Err(usage(&format!("unknown attack {wanted:?}"))),
                        }
                    }
                    attacks = Some(chosen);
                }
            }
            _ => return Err(usage(&format!("unexpected argument {arg:?}"))),
        }
    }
    let Some(target) = target else {
        return Err(usage("--target is required"));
    };
    let attacks = attacks.unwrap_or_else(|| {
        let all = Attack::ALL.into_iter();
        all.filter(|attack| attack.applies_to(target)).collect()
    });
    if let Some(attack) = attacks.iter().find(|a| !a.applies_to(target)) {
        return Err(usage(&format!(
            "{} does not apply to the {} target",
            attack.name(),
            target.name()
        )));
    }
    Ok(Args {
        target,
        attacks,
        quick,
    })
}

/// One attack against a fresh server child.
async fn run_attack(target: Target, attack: Attack, quick: bool) -> Result<Row, String> {
    let mut server = spawn_server(target, attack.compressed())?;
    let (probe, answer) = match target {
        Target::Chat => (Probe::Page, "page"),
        _ => (Probe::Echo, "echo"),
    };
    let (bystander, ready) = start_bystander(server.addr, probe);
    if ready.recv_timeout(Duration::from_secs(5)).is_err() {
        eprintln!("  warning: the bystander had no {answer} within 5 s of the server starting");
    }
    // Let the server settle with its one session before the baseline.
    sleep(Duration::from_millis(500)).await;
    let baseline = memory(server.pid).map_or(0, |(rss, _)| rss);
    let stderr_before = server.stderr.counts();
    server.stderr.capture_from.store(stderr_before.1, Relaxed);
    if let Ok(mut sample) = server.stderr.sample.lock() {
        sample.retain(|(number, _)| *number >= stderr_before.1);
    }
    let mut ctx = Ctx {
        target,
        addr: server.addr,
        pid: server.pid,
        quick,
        baseline,
        sampler: Sampler::start(server.pid),
        stderr: server.stderr.clone(),
        stderr_at_end: OnceLock::new(),
    };
    bystander.recording.store(true, Relaxed);
    let started = Instant::now();
    let outcome = match attack {
        Attack::PingFlood => ping_flood(&ctx).await,
        Attack::Silent => silent(&ctx).await,
        Attack::NonReading => non_reading(&ctx).await,
        Attack::Vanish => vanish(&ctx).await,
        Attack::Idle => idle(&ctx).await,
        Attack::Amplification => amplification(&ctx).await,
        Attack::Trickle => http::trickle(&ctx).await,
        Attack::CompressedIdle => compressed::idle(&ctx).await,
        Attack::Bomb => compressed::bomb(&ctx).await,
        Attack::Parked => compressed::parked(&ctx).await,
        Attack::Offer => http::offer(&ctx).await,
        Attack::Joins => http::joins(&ctx).await,
    };
    let duration = started.elapsed();
    bystander.stop.store(true, Relaxed);
    let bystander = tokio::task::spawn_blocking(move || bystander.thread.join())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    // The attackers are gone; a second for the server to notice, then what it kept.
    sleep(Duration::from_secs(1)).await;
    ctx.sampler.stop();
    let (end, hwm) = memory(server.pid).unwrap_or((0, 0));
    let died = match server.child.try_wait() {
        Ok(Some(status)) => Some(status.to_string()),
        Ok(None) => None,
        Err(e) => Some(format!("cannot tell: {e}")),
    };
    let _ = server.child.kill();
    let _ = server.child.wait();
    let at_end = ctx
        .stderr_at_end
        .get()
        .copied()
        .unwrap_or_else(|| server.stderr.counts());
    let stderr_sample = server
        .stderr
        .sample
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();
    Ok(Row {
        attack,
        target,
        baseline,
        peak: ctx.sampler.peak().max(baseline),
        hwm,
        end,
        outcome,
        bystander,
        stderr_bytes: at_end.0 - stderr_before.0,
        stderr_lines: at_end.1 - stderr_before.1,
        stderr_teardown: server.stderr.bytes.load(Relaxed) - at_end.0,
        stderr_sample,
        stderr_end_line: at_end.1,
        died,
        duration,
    })
}

/// The soft limit on open files of this process.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

async fn run(args: Args) -> ExitCode {
    for &attack in &args.attacks {
        let Some(connections) = attack.connections(args.quick) else {
            continue;
        };
        let needed = 2 * connections as u64 + 100;
        match open_files_limit() {
            Some(limit) if limit < needed => {
                let name = attack.name();
                eprintln!(
                    "error: the {name} attack needs at least {needed} open files (ulimit -n), \
                     this process may have {limit}: raise it (`ulimit -n {needed}`) or leave \
                     {name} out with --attack"
                );
                return ExitCode::FAILURE;
            }
            _ => {}
        }
    }
    let mut rows = Vec::new();
    for &attack in &args.attacks {
        eprintln!("{} against {} ...", attack.name(), args.target.name());
        match run_attack(args.target, attack, args.quick).await {
            Ok(row) => {
                eprintln!("{}", row.raw_line());
                rows.push(row);
            }
            Err(e) => {
                eprintln!("error: {e}");
                print_report(&rows);
                return ExitCode::FAILURE;
            }
        }
    }
    print_report(&rows);
    if rows.iter().any(|row| row.died.is_some()) {
        eprintln!("error: the server died during an attack (see the table)");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
