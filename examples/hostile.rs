//! Hostile peers against an echo server in a child process, measured from outside: what each
//! attack costs the server in memory, when (if ever) the server disconnects the attacker, how
//! a well-behaved bystander's round trips fare meanwhile, and how much the server logs.
//!
//! ```text
//! cargo build --release --example hostile --example echo_server
//! cargo run --release --example hostile -- --target typed-ws|raw|python [--attack NAME[,NAME...]] [--quick]
//! ```
//!
//! Targets, each started as a child process that prints `listening on ws://IP:PORT/echo`:
//! - `typed-ws`: the `echo_server` example (`target/release/examples/echo_server`, next to
//!   this program), run with `--addr 127.0.0.1:0 --codec msgpack,cbor,json`;
//! - `raw`: this program's hidden `raw-server` subcommand, a bare tokio-tungstenite echo server
//!   (`accept_async`, default `WebSocketConfig`, no keep-alive, no timeouts): the baseline;
//! - `python`: `benches/hostile/echo_server.py`, Python `websockets` with its defaults except a
//!   1 MiB `max_size`, run with the venv of `bash tests/peers/install.sh`.
//!
//! Attacks (`--attack` takes a comma-separated subset; all by default, in this order), each
//! bounded in time and count, on loopback, from raw TCP with hand-written masked frames:
//! - `ping-flood`: one session sends 125-byte pings as fast as it can, never reading;
//! - `silent`: 500 connections that send nothing, 100 that send a header line every 2 s;
//! - `non-reading`: 40 sessions each send 200 ChatMessages of ~100 KiB, never reading;
//! - `vanish`: 20 sessions go quiet after the handshake, neither reading nor writing;
//! - `idle`: 5,000 sessions (1,000 with `--quick`) that answer pings and nothing else; the
//!   RSS growth divided by the sessions is the server's memory per idle session;
//! - `amplification`: 30 sessions each send one 1 MiB MessagePack ChatMessage whose `tags`
//!   holds as many empty strings as fit, never reading.
//!
//! Every attack gets a fresh server child, so that memory one attack leaves behind does not
//! hide the next one's. The server's RSS is sampled from `/proc/PID/status` every 100 ms
//! (peak growth is over the baseline just before the attack; VmHWM is reported too). An
//! attacking connection counts as disconnected when a write fails or a read ends, or when the
//! kernel's table (`/proc/net/tcp`) shows that the server released its socket or sent FIN or
//! RST: a server cannot tell a peer that never reads that it has dropped it. The bystander is
//! a separate session on its own thread that sends a MessagePack ChatMessage every 20 ms and
//! waits (1 s at most) for the echo. The output ends with a Markdown table and one line of
//! raw numbers per attack. The program exits 0 after printing, 1 if a server child died (a
//! crash is a finding) or could not be started, 2 on a usage error.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::{MissedTickBehavior, interval, sleep, timeout};
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use common::{ChatMessage, ECHO_PATH};

const USAGE: &str =
    "usage: hostile --target typed-ws|raw|python [--attack NAME[,NAME...]] [--quick]
  --target  the echo server to attack, run as a child process
  --attack  ping-flood, silent, non-reading, vanish, idle, amplification (default: all)
  --quick   shorter windows and 1,000 idle sessions instead of 5,000";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    TypedWs,
    Raw,
    Python,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::TypedWs => "typed-ws",
            Target::Raw => "raw",
            Target::Python => "python",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attack {
    PingFlood,
    Silent,
    NonReading,
    Vanish,
    Idle,
    Amplification,
}

impl Attack {
    const ALL: [Attack; 6] = [
        Attack::PingFlood,
        Attack::Silent,
        Attack::NonReading,
        Attack::Vanish,
        Attack::Idle,
        Attack::Amplification,
    ];

    fn name(self) -> &'static str {
        match self {
            Attack::PingFlood => "ping-flood",
            Attack::Silent => "silent",
            Attack::NonReading => "non-reading",
            Attack::Vanish => "vanish",
            Attack::Idle => "idle",
            Attack::Amplification => "amplification",
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
    Ok(Args {
        target,
        attacks: attacks.unwrap_or_else(|| Attack::ALL.to_vec()),
        quick,
    })
}

// ---------------------------------------------------------------------------------------------
// The baseline target: tokio-tungstenite as `accept_async` leaves it.

fn raw_server() -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let listener = match TcpListener::bind("127.0.0.1:0").await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("error: cannot listen on loopback: {e}");
                return ExitCode::FAILURE;
            }
        };
        let Ok(bound) = listener.local_addr() else {
            return ExitCode::FAILURE;
        };
        let mut stdout = io::stdout().lock();
        if writeln!(stdout, "listening on ws://{bound}{ECHO_PATH}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            return ExitCode::FAILURE;
        }
        drop(stdout);
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                // Out of file descriptors, say: wait rather than spin.
                Err(_) => {
                    sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err()
                    {
                        break;
                    }
                }
            });
        }
    })
}

// ---------------------------------------------------------------------------------------------
// The server child and what is measured of it from outside.

struct ServerChild {
    child: Child,
    pid: u32,
    addr: SocketAddr,
    stderr: Arc<StderrCount>,
}

#[derive(Default)]
struct StderrCount {
    bytes: AtomicU64,
    lines: AtomicU64,
    /// Lines from this one on (counting from 0) go to `sample`.
    capture_from: AtomicU64,
    /// The first few lines from `capture_from` on, numbered: what the server says.
    sample: Mutex<Vec<(u64, String)>>,
}

impl StderrCount {
    fn counts(&self) -> (u64, u64) {
        (self.bytes.load(Relaxed), self.lines.load(Relaxed))
    }
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn server_command(target: Target) -> Result<Command, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    match target {
        Target::Raw => {
            let mut command = Command::new(exe);
            command.arg("raw-server");
            Ok(command)
        }
        Target::TypedWs => {
            let server = exe.with_file_name(format!("echo_server{}", std::env::consts::EXE_SUFFIX));
            if !server.is_file() {
                return Err(format!(
                    "{} is missing: run `cargo build --release --examples` first",
                    server.display()
                ));
            }
            let mut command = Command::new(server);
            command.args(["--addr", "127.0.0.1:0", "--codec", "msgpack,cbor,json"]);
            Ok(command)
        }
        Target::Python => {
            let python = manifest_dir().join("target/peers/venv/bin/python");
            if !python.is_file() {
                return Err(format!(
                    "{} is missing: run `bash tests/peers/install.sh` first",
                    python.display()
                ));
            }
            let mut command = Command::new(python);
            command
                .arg(manifest_dir().join("benches/hostile/echo_server.py"))
                .args(["--port", "0"]);
            Ok(command)
        }
    }
}

fn spawn_server(target: Target) -> Result<ServerChild, String> {
    let mut child = server_command(target)?
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the {} server: {e}", target.name()))?;
    let pid = child.id();

    // Both pipes are drained for the child's whole life, so that it never blocks on them.
    let stderr = Arc::new(StderrCount::default());
    if let Some(pipe) = child.stderr.take() {
        let count = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut line = Vec::new();
            while let Ok(read @ 1..) = reader.read_until(b'\n', &mut line) {
                count.bytes.fetch_add(read as u64, Relaxed);
                let number = count.lines.fetch_add(1, Relaxed);
                let mut sample = count.sample.lock().unwrap_or_else(|e| e.into_inner());
                if number >= count.capture_from.load(Relaxed) && sample.len() < 3 {
                    let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                    sample.push((number, text));
                }
                drop(sample);
                line.clear();
            }
        });
    }
    let (first_line, announced) = mpsc::channel();
    if let Some(pipe) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut lines = BufReader::new(pipe).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = first_line.send(line);
            }
            for _ in lines {}
        });
    }
    let line = match announced.recv_timeout(Duration::from_secs(15)) {
        Ok(line) => line,
        Err(_) => {
            let _ = child.kill();
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            std::thread::sleep(Duration::from_millis(100));
            let said = stderr
                .sample
                .lock()
                .map(|s| {
                    let lines: Vec<&str> = s.iter().map(|(_, line)| line.as_str()).collect();
                    lines.join(" | ")
                })
                .unwrap_or_default();
            return Err(format!(
                "the {} server did not announce its address ({status}); stderr: {said}",
                target.name()
            ));
        }
    };
    let addr = line
        .strip_prefix("listening on ws://")
        .and_then(|rest| rest.split('/').next())
        .and_then(|addr| addr.parse::<SocketAddr>().ok());
    let Some(addr) = addr else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("unexpected first line from the server: {line:?}"));
    };
    Ok(ServerChild {
        child,
        pid,
        addr,
        stderr,
    })
}

/// VmRSS and VmHWM of a process, in bytes; `None` once it has exited (a zombie has neither).
fn memory(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Samples the server's RSS every 100 ms on its own thread.
struct Sampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    dead: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let dead = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stop, peak, dead) = (stop.clone(), peak.clone(), dead.clone());
            std::thread::spawn(move || {
                while !stop.load(Relaxed) {
                    match memory(pid) {
                        Some((rss, _)) => {
                            peak.fetch_max(rss, Relaxed);
                        }
                        None => {
                            dead.store(true, Relaxed);
                            return;
                        }
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        Sampler {
            stop,
            peak,
            dead,
            thread: Some(thread),
        }
    }

    fn peak(&self) -> u64 {
        self.peak.load(Relaxed)
    }

    fn dead(&self) -> bool {
        self.dead.load(Relaxed)
    }

    fn stop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A minimal WebSocket client on raw TCP: masked frames out, frames parsed by hand in.

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// The mask every frame from these clients carries.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// One whole (fin) masked frame.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x80 | opcode);
    match payload.len() {
        len @ 0..=125 => out.push(0x80 | len as u8),
        len @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

/// The first frame in `buf`: opcode, unmasked payload and the bytes it took; `None` if it is
/// not all there yet.
fn parse_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    let (len, mut at) = match b1 & 0x7f {
        126 => (
            usize::from(u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?)),
            4,
        ),
        127 => (
            usize::try_from(u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?)).ok()?,
            10,
        ),
        short => (usize::from(short), 2),
    };
    let mut mask = None;
    if b1 & 0x80 != 0 {
        mask = Some(<[u8; 4]>::try_from(buf.get(at..at + 4)?).ok()?);
        at += 4;
    }
    let end = at.checked_add(len)?;
    let mut payload = buf.get(at..end)?.to_vec();
    if let Some(mask) = mask {
        payload
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b ^= mask[i % 4]);
    }
    Some((b0 & 0x0f, payload, end))
}

fn other(message: impl Into<String>) -> io::Error {
    io::Error::other(message.into())
}

struct RawWs {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RawWs {
    /// Connects and upgrades to `/echo` offering the `msgpack` subprotocol. `conn`, if given,
    /// learns the connection's local port as soon as TCP is up.
    async fn connect(addr: SocketAddr, conn: Option<&Conn>) -> io::Result<RawWs> {
        let stream = TcpStream::connect(addr).await?;
        if let Some(conn) = conn {
            conn.connected(stream.local_addr()?.port());
        }
        let key = generate_key();
        let request = format!(
            "GET {ECHO_PATH} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: msgpack\r\n\r\n"
        );
        let mut ws = RawWs {
            stream,
            buf: Vec::with_capacity(1024),
        };
        ws.stream.write_all(request.as_bytes()).await?;
        let head = loop {
            if let Some(end) = ws.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = ws.buf.drain(..end + 4).collect();
                break String::from_utf8_lossy(&head).into_owned();
            }
            if ws.buf.len() > 16 * 1024 {
                return Err(other("handshake response head over 16 KiB"));
            }
            if ws.fill().await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        };
        if !head.starts_with("HTTP/1.1 101") {
            let status = head.lines().next().unwrap_or_default();
            return Err(other(format!("upgrade refused: {status}")));
        }
        let accept = derive_accept_key(key.as_bytes()).to_ascii_lowercase();
        if !head
            .to_ascii_lowercase()
            .contains(&format!("sec-websocket-accept: {accept}"))
        {
            return Err(other("wrong Sec-WebSocket-Accept"));
        }
        Ok(ws)
    }

    async fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 4096];
        let read = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..read]);
        Ok(read)
    }

    /// The next frame; EOF is an error.
    async fn read_frame(&mut self) -> io::Result<(u8, Vec<u8>)> {
        loop {
            if let Some((opcode, payload, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                return Ok((opcode, payload));
            }
            if self.fill().await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    async fn send(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        self.stream.write_all(&frame(opcode, payload)).await
    }
}

// ---------------------------------------------------------------------------------------------
// Attacking connections and how they end.

/// What is known of one attacking connection.
#[derive(Default)]
struct Conn {
    port: AtomicU16,
    start: OnceLock<Instant>,
    failed: OnceLock<String>,
    /// The server's socket has been seen owned by a process (not waiting in the accept queue).
    owned: AtomicBool,
    /// When, after `start`, the server disconnected, and how we noticed.
    closed: OnceLock<(Duration, &'static str)>,
    /// The kernel's table showed the connection over once, at that time: it counts when a
    /// second look agrees (the table is not read atomically, and a socket can be missed).
    suspect: Mutex<Option<Duration>>,
}

impl Conn {
    fn connected(&self, port: u16) {
        let _ = self.start.set(Instant::now());
        self.port.store(port, Relaxed);
    }

    fn fail(&self, error: impl ToString) {
        let _ = self.failed.set(error.to_string());
    }

    fn close(&self, how: &'static str) {
        if let Some(start) = self.start.get() {
            self.close_at(start.elapsed(), how);
        }
    }

    fn close_at(&self, after: Duration, how: &'static str) {
        if self.failed.get().is_none() {
            let _ = self.closed.set((after, how));
        }
    }

    fn done(&self) -> bool {
        self.failed.get().is_some() || self.closed.get().is_some()
    }
}

fn conns(n: usize) -> Vec<Arc<Conn>> {
    (0..n).map(|_| Arc::new(Conn::default())).collect()
}

const TCP_ESTABLISHED: u8 = 0x01;

/// The kernel's IPv4 TCP table, restricted to connections with `port` at one end: (local
/// port, remote port) → (state, inode). An inode of 0 is a socket no process holds (closed by
/// its owner and lingering, or still in the accept queue).
fn tcp_table(port: u16) -> HashMap<(u16, u16), (u8, u64)> {
    let mut table = HashMap::new();
    // In as few reads as possible: between two reads the kernel resumes its walk by position,
    // and sockets that came or went meanwhile shift it.
    let mut bytes = vec![0u8; 4 << 20];
    let mut len = 0;
    let Ok(mut file) = std::fs::File::open("/proc/net/tcp") else {
        return table;
    };
    loop {
        match file.read(&mut bytes[len..]) {
            Ok(0) => break,
            Ok(read) => len += read,
            Err(_) => return table,
        }
        if len == bytes.len() {
            bytes.resize(2 * len, 0);
        }
    }
    let text = String::from_utf8_lossy(&bytes[..len]);
    let port_of = |field: &str| {
        let (_, hex) = field.split_once(':')?;
        u16::from_str_radix(hex, 16).ok()
    };
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 10 {
            continue;
        }
        let (Some(local), Some(remote)) = (port_of(fields[1]), port_of(fields[2])) else {
            continue;
        };
        if local != port && remote != port {
            continue;
        }
        let state = u8::from_str_radix(fields[3], 16).unwrap_or(0);
        let inode = fields[9].parse().unwrap_or(0);
        table.insert((local, remote), (state, inode));
    }
    table
}

/// Marks the connections the kernel says the server is done with.
fn check_kernel(conns: &[Arc<Conn>], server_port: u16) {
    let table = tcp_table(server_port);
    for conn in conns {
        let port = conn.port.load(Relaxed);
        if port == 0 || conn.done() {
            continue;
        }
        let ours = table.get(&(port, server_port));
        let theirs = table.get(&(server_port, port));
        if theirs.is_some_and(|&(_, inode)| inode != 0) {
            conn.owned.store(true, Relaxed);
        }
        let over = if ours.is_none_or(|&(state, _)| state != TCP_ESTABLISHED) {
            Some("FIN/RST from the server")
        } else if conn.owned.load(Relaxed) && theirs.is_none_or(|&(_, inode)| inode == 0) {
            Some("server released its socket")
        } else {
            None
        };
        let mut suspect = conn.suspect.lock().unwrap_or_else(|e| e.into_inner());
        match (over, *suspect) {
            (Some(how), Some(first_seen)) => conn.close_at(first_seen, how),
            (Some(_), None) => *suspect = conn.start.get().map(Instant::elapsed),
            (None, _) => *suspect = None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The bystander: one well-behaved session, a round trip every 20 ms, on its own thread.

#[derive(Default)]
struct BystanderReport {
    rtts: Vec<Duration>,
    timeouts: u64,
    errors: u64,
    first_error: Option<String>,
}

impl BystanderReport {
    fn attempts(&self) -> u64 {
        self.rtts.len() as u64 + self.timeouts + self.errors
    }

    fn failures(&self) -> u64 {
        self.timeouts + self.errors
    }
}

struct Bystander {
    stop: Arc<AtomicBool>,
    /// Round trips are only recorded while this is set: during the attack.
    recording: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<BystanderReport>,
}

const ROUND_TRIP_TIMEOUT: Duration = Duration::from_secs(1);

fn start_bystander(addr: SocketAddr) -> (Bystander, mpsc::Receiver<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let recording = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready) = mpsc::channel();
    let thread = {
        let (stop, recording) = (stop.clone(), recording.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime for the bystander");
            runtime.block_on(bystander(addr, stop, recording, ready_tx))
        })
    };
    (
        Bystander {
            stop,
            recording,
            thread,
        },
        ready,
    )
}

async fn bystander(
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    recording: Arc<AtomicBool>,
    ready: mpsc::Sender<()>,
) -> BystanderReport {
    let mut report = BystanderReport::default();
    let mut ws: Option<RawWs> = None;
    let mut tick = interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut ready = Some(ready);
    for id in 1u64.. {
        tick.tick().await;
        if stop.load(Relaxed) {
            break;
        }
        let message = ChatMessage {
            id,
            author: "bystander".into(),
            text: "still there?".into(),
            tags: vec!["latency".into()],
            reply_to: id.checked_sub(1),
        };
        let started = Instant::now();
        let outcome = timeout(ROUND_TRIP_TIMEOUT, async {
            if ws.is_none() {
                ws = Some(RawWs::connect(addr, None).await?);
            }
            let Some(session) = ws.as_mut() else {
                unreachable!("connected just above");
            };
            round_trip(session, &message).await
        })
        .await;
        // A connection that failed or timed out is in no known state: start a new one.
        let failed = match outcome {
            Ok(Ok(())) => {
                if recording.load(Relaxed) {
                    report.rtts.push(started.elapsed());
                }
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
                None
            }
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some("timed out".to_owned()),
        };
        if let Some(error) = failed {
            ws = None;
            if recording.load(Relaxed) {
                if error == "timed out" {
                    report.timeouts += 1;
                } else {
                    report.errors += 1;
                }
                report.first_error.get_or_insert(error);
            }
        }
    }
    report
}

async fn round_trip(ws: &mut RawWs, message: &ChatMessage) -> io::Result<()> {
    let bytes = rmp_serde::to_vec_named(message).map_err(|e| other(e.to_string()))?;
    ws.send(BINARY, &bytes).await?;
    loop {
        match ws.read_frame().await? {
            (PING, payload) => ws.send(PONG, &payload).await?,
            (BINARY | TEXT, payload) => {
                let echo: ChatMessage =
                    rmp_serde::from_slice(&payload).map_err(|e| other(format!("echo: {e}")))?;
                return if echo == *message {
                    Ok(())
                } else {
                    Err(other("the echo differs from the message"))
                };
            }
            (CLOSE, _) => return Err(other("the server closed the bystander's session")),
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running one attack.

/// What an attack runs against, and the measurements taken while it runs.
struct Ctx {
    addr: SocketAddr,
    pid: u32,
    quick: bool,
    baseline: u64,
    sampler: Sampler,
    stderr: Arc<StderrCount>,
    /// The server's stderr (bytes, lines) when the attack ended, before its connections
    /// were dropped: what comes after is the server logging ordinary disconnects.
    stderr_at_end: OnceLock<(u64, u64)>,
}

impl Ctx {
    /// Ends the attack: notes the server's stderr so far, then drops every connection.
    async fn end(&self, tasks: Vec<JoinHandle<()>>) {
        let _ = self.stderr_at_end.set(self.stderr.counts());
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// What an attack hands back for the report.
#[derive(Default)]
struct Outcome {
    conns: Vec<Arc<Conn>>,
    /// Appended to the peak RSS cell (memory per session or per message).
    per_unit: Option<String>,
    /// Raw numbers of the attack for its line under the table.
    notes: Vec<String>,
    /// The disconnect column does not apply (idle sessions are meant to stay).
    no_disconnect: bool,
}

/// Waits until every connection is done (then a second more, to see memory settle), the
/// server died, or `window` passed, checking the kernel's table every 100 ms.
async fn watch(ctx: &Ctx, conns: &[Arc<Conn>], window: Duration) {
    let start = Instant::now();
    let mut tick = interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        check_kernel(conns, ctx.addr.port());
        if ctx.sampler.dead() || start.elapsed() >= window {
            return;
        }
        if conns.iter().all(|c| c.done()) {
            sleep(Duration::from_secs(1).min(window.saturating_sub(start.elapsed()))).await;
            return;
        }
    }
}

fn window(ctx: &Ctx, full: u64, quick: u64) -> Duration {
    Duration::from_secs(if ctx.quick { quick } else { full })
}

/// Handshakes the connection; on failure records why and returns `None`.
async fn open(addr: SocketAddr, conn: &Conn) -> Option<RawWs> {
    match timeout(Duration::from_secs(15), RawWs::connect(addr, Some(conn))).await {
        Ok(Ok(ws)) => Some(ws),
        Ok(Err(e)) => {
            conn.fail(e);
            None
        }
        Err(_) => {
            conn.fail("handshake timed out");
            None
        }
    }
}

/// Sends pre-built pings as fast as the socket takes them and never reads.
async fn ping_flood(ctx: &Ctx) -> Outcome {
    const FRAMES_PER_BATCH: usize = 500;
    let conns = conns(1);
    let written = Arc::new(AtomicU64::new(0));
    let one = frame(PING, &[0x5a; 125]);
    let frame_len = one.len() as u64;
    let batch: Vec<u8> = one.repeat(FRAMES_PER_BATCH);
    let task = {
        let (conn, written, addr) = (conns[0].clone(), written.clone(), ctx.addr);
        tokio::spawn(async move {
            let Some(mut ws) = open(addr, &conn).await else {
                return;
            };
            let mut at = 0;
            loop {
                match ws.stream.write(&batch[at..]).await {
                    Ok(0) | Err(_) => return conn.close("write failed"),
                    Ok(n) => {
                        written.fetch_add(n as u64, Relaxed);
                        at = (at + n) % batch.len();
                    }
                }
            }
        })
    };
    watch(ctx, &conns, window(ctx, 15, 5)).await;
    let pings = written.load(Relaxed) / frame_len;
    ctx.end(vec![task]).await;
    Outcome {
        conns,
        notes: vec![format!(
            "pings sent: {pings} ({:.1} MiB)",
            mib(pings * frame_len)
        )],
        ..Outcome::default()
    }
}

/// 500 connections that send nothing, 100 that send a header line every 2 s. The window
/// counts from the last connection, and each one's time from its own connect.
async fn silent(ctx: &Ctx) -> Outcome {
    let conns = conns(600);
    // One connection every 2 ms (600 in 1.2 s): a burst overflows small accept queues
    // (Python's backlog is 100), and a server then meets some connections seconds after the
    // client thinks them open. Every sixth is a slowloris.
    let mut pace = interval(Duration::from_millis(2));
    let mut tasks = Vec::new();
    for (i, conn) in conns.iter().enumerate() {
        pace.tick().await;
        let (conn, addr) = (conn.clone(), ctx.addr);
        let slow = i % 6 == 5;
        tasks.push(tokio::spawn(async move {
            let mut stream = match TcpStream::connect(addr).await {
                Ok(stream) => stream,
                Err(e) => return conn.fail(e),
            };
            conn.connected(stream.local_addr().map(|a| a.port()).unwrap_or(0));
            let mut headers = interval(Duration::from_secs(2));
            let mut sent = 0u32;
            let mut buf = [0u8; 1024];
            loop {
                tokio::select! {
                    read = stream.read(&mut buf) => match read {
                        Ok(0) => return conn.close("EOF"),
                        Err(_) => return conn.close("read failed"),
                        Ok(_) => {}
                    },
                    _ = headers.tick(), if slow => {
                        let line = if sent == 0 {
                            format!("GET {ECHO_PATH} HTTP/1.1\r\nHost: {addr}\r\n")
                        } else {
                            format!("X-Slow-{sent}: {sent}\r\n")
                        };
                        sent += 1;
                        if stream.write_all(line.as_bytes()).await.is_err() {
                            return conn.close("write failed");
                        }
                    }
                }
            }
        }));
    }
    watch(ctx, &conns, window(ctx, 20, 12)).await;
    ctx.end(tasks).await;
    let (slow, quiet): (Vec<_>, Vec<_>) = conns
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, _)| i % 6 == 5);
    let group = |g: Vec<(usize, Arc<Conn>)>| g.into_iter().map(|(_, c)| c).collect::<Vec<_>>();
    let notes = vec![
        format!("silent: {}", disconnects(&group(quiet)).summary()),
        format!("slowloris: {}", disconnects(&group(slow)).summary()),
    ];
    Outcome {
        conns,
        notes,
        ..Outcome::default()
    }
}

/// A valid ChatMessage whose `text` makes it about `size` bytes of MessagePack.
fn big_message(id: u64, size: usize) -> Vec<u8> {
    let message = ChatMessage {
        id,
        author: "mallory".into(),
        text: "x".repeat(size - 64),
        tags: vec!["big".into()],
        reply_to: None,
    };
    rmp_serde::to_vec_named(&message).expect("a ChatMessage encodes")
}

/// 40 sessions each send 200 messages of ~100 KiB and never read the echoes.
async fn non_reading(ctx: &Ctx) -> Outcome {
    const SESSIONS: usize = 40;
    const MESSAGES: u64 = 200;
    let message = big_message(1, 100 * 1024);
    let framed = Arc::new(frame(BINARY, &message));
    let conns = conns(SESSIONS);
    let sent = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = conns
        .iter()
        .map(|conn| {
            let (conn, framed, sent, addr) = (conn.clone(), framed.clone(), sent.clone(), ctx.addr);
            tokio::spawn(async move {
                let Some(mut ws) = open(addr, &conn).await else {
                    return;
                };
                for _ in 0..MESSAGES {
                    if ws.stream.write_all(&framed).await.is_err() {
                        return conn.close("write failed");
                    }
                    sent.fetch_add(1, Relaxed);
                }
                // Everything is sent: hold the session and read nothing.
                std::future::pending::<()>().await;
            })
        })
        .collect();
    watch(ctx, &conns, window(ctx, 45, 40)).await;
    let sent = sent.load(Relaxed);
    ctx.end(tasks).await;
    Outcome {
        conns,
        notes: vec![format!(
            "messages of {} B written: {sent} of {} ({:.0} MiB)",
            message.len(),
            SESSIONS as u64 * MESSAGES,
            mib(sent * framed.len() as u64)
        )],
        ..Outcome::default()
    }
}

/// 20 sessions go quiet after the handshake: no reads, no writes, no FIN.
async fn vanish(ctx: &Ctx) -> Outcome {
    let conns = conns(20);
    let tasks: Vec<_> = conns
        .iter()
        .map(|conn| {
            let (conn, addr) = (conn.clone(), ctx.addr);
            tokio::spawn(async move {
                let Some(ws) = open(addr, &conn).await else {
                    return;
                };
                let _held = ws;
                std::future::pending::<()>().await;
            })
        })
        .collect();
    watch(ctx, &conns, window(ctx, 70, 50)).await;
    ctx.end(tasks).await;
    Outcome {
        conns,
        ..Outcome::default()
    }
}

/// The soft limit on open files of this process.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn idle_sessions(quick: bool) -> usize {
    if quick { 1_000 } else { 5_000 }
}

/// Sessions that stay open doing nothing but answering pings; memory per session.
async fn idle(ctx: &Ctx) -> Outcome {
    let sessions = idle_sessions(ctx.quick);
    let conns = conns(sessions);
    let opened = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(64));
    let started = Instant::now();
    let tasks: Vec<_> = conns
        .iter()
        .map(|conn| {
            let (conn, opened, gate, addr) = (conn.clone(), opened.clone(), gate.clone(), ctx.addr);
            tokio::spawn(async move {
                let permit = gate.acquire_owned().await;
                let ws = open(addr, &conn).await;
                opened.fetch_add(1, Relaxed);
                drop(permit);
                let Some(mut ws) = ws else {
                    return;
                };
                loop {
                    match ws.read_frame().await {
                        Ok((PING, payload)) => {
                            if ws.send(PONG, &payload).await.is_err() {
                                return conn.close("write failed");
                            }
                        }
                        Ok((CLOSE, _)) => return conn.close("close frame"),
                        Ok(_) => {}
                        Err(_) => return conn.close("EOF"),
                    }
                }
            })
        })
        .collect();
    // All handshakes done (2 minutes at most), then a settling pause well inside any
    // keep-alive period.
    let mut tick = interval(Duration::from_millis(100));
    while opened.load(Relaxed) < sessions
        && started.elapsed() < Duration::from_secs(120)
        && !ctx.sampler.dead()
    {
        tick.tick().await;
    }
    let setup = started.elapsed();
    sleep(Duration::from_secs(3)).await;
    let after = memory(ctx.pid).map_or(0, |(rss, _)| rss);
    let established = conns.iter().filter(|c| c.failed.get().is_none()).count();
    ctx.end(tasks).await;
    let growth = after.saturating_sub(ctx.baseline);
    let per_session = growth / established.max(1) as u64;
    Outcome {
        per_unit: Some(format!("{:.1} KiB/session", per_session as f64 / 1024.0)),
        notes: vec![format!(
            "{established} of {sessions} sessions open in {:.1} s; RSS 3 s later {:.1} MiB, \
             +{:.1} MiB = {per_session} B per idle session",
            setup.as_secs_f64(),
            mib(after),
            mib(growth)
        )],
        conns,
        no_disconnect: true,
    }
}

/// One MessagePack ChatMessage of exactly `size` bytes whose `tags` is an array32 of empty
/// strings, as many as fit.
fn amplifying_message(size: usize) -> (Vec<u8>, usize) {
    let mut head = vec![0x85]; // a map of 5 entries
    let str8 = |out: &mut Vec<u8>, s: &str| {
        out.push(0xa0 | s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    };
    str8(&mut head, "id");
    head.push(0x01);
    str8(&mut head, "author");
    str8(&mut head, "mallory");
    str8(&mut head, "text");
    str8(&mut head, "");
    str8(&mut head, "tags");
    let tail = {
        let mut tail = Vec::new();
        str8(&mut tail, "reply_to");
        tail.push(0xc0); // nil
        tail
    };
    let count = size - head.len() - 5 - tail.len();
    head.push(0xdd); // array32
    head.extend_from_slice(&(count as u32).to_be_bytes());
    head.resize(head.len() + count, 0xa0); // empty strings
    head.extend_from_slice(&tail);
    (head, count)
}

/// 30 sessions each send one 1 MiB message that decodes to a vector of empty strings.
async fn amplification(ctx: &Ctx) -> Outcome {
    const SESSIONS: usize = 30;
    let (message, count) = amplifying_message(1 << 20);
    let framed = Arc::new(frame(BINARY, &message));
    let conns = conns(SESSIONS);
    let sent = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = conns
        .iter()
        .map(|conn| {
            let (conn, framed, sent, addr) = (conn.clone(), framed.clone(), sent.clone(), ctx.addr);
            tokio::spawn(async move {
                let Some(mut ws) = open(addr, &conn).await else {
                    return;
                };
                if ws.stream.write_all(&framed).await.is_err() {
                    return conn.close("write failed");
                }
                sent.fetch_add(1, Relaxed);
                std::future::pending::<()>().await;
            })
        })
        .collect();
    watch(ctx, &conns, window(ctx, 20, 10)).await;
    let sent = sent.load(Relaxed);
    ctx.end(tasks).await;
    // The peak can fall between two samples; VmHWM cannot miss it (a fresh child per attack).
    let hwm = memory(ctx.pid).map_or(0, |(_, hwm)| hwm);
    let growth = ctx.sampler.peak().max(hwm).saturating_sub(ctx.baseline);
    let per_message = growth / sent.max(1);
    Outcome {
        conns,
        per_unit: Some(format!("{:.1} MiB/msg", mib(per_message))),
        notes: vec![format!(
            "messages of {} B with {count} empty strings sent: {sent}; max(peak, HWM) growth \
             {:.1} MiB = {per_message} B per message",
            message.len(),
            mib(growth)
        )],
        ..Outcome::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Reporting.

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// The value at percentile `p` of sorted `values` (nearest rank).
fn percentile<T: Copy>(values: &[T], p: f64) -> Option<T> {
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values.get(rank.clamp(1, values.len().max(1)) - 1).copied()
}

struct Disconnects {
    established: usize,
    failed: usize,
    first_failure: Option<String>,
    closed: Vec<Duration>,
    how: BTreeMap<&'static str, usize>,
}

fn disconnects(conns: &[Arc<Conn>]) -> Disconnects {
    let mut closed: Vec<Duration> = conns
        .iter()
        .filter_map(|c| c.closed.get())
        .map(|c| c.0)
        .collect();
    closed.sort();
    let mut how = BTreeMap::new();
    for (_, reason) in conns.iter().filter_map(|c| c.closed.get()) {
        *how.entry(*reason).or_insert(0) += 1;
    }
    let failed = conns.iter().filter(|c| c.failed.get().is_some()).count();
    Disconnects {
        established: conns.len() - failed,
        failed,
        first_failure: conns.iter().find_map(|c| c.failed.get().cloned()),
        closed,
        how,
    }
}

impl Disconnects {
    fn cell(&self) -> String {
        let (Some(median), Some(max)) = (percentile(&self.closed, 50.0), self.closed.last()) else {
            return format!("held (0/{})", self.established);
        };
        let held = if self.closed.len() < self.established {
            "; rest held"
        } else {
            ""
        };
        format!(
            "{:.1} s / {:.1} s ({}/{}{held})",
            median.as_secs_f64(),
            max.as_secs_f64(),
            self.closed.len(),
            self.established
        )
    }

    fn summary(&self) -> String {
        let mut out = format!("{} established", self.established);
        if self.failed > 0 {
            let why = self.first_failure.as_deref().unwrap_or_default();
            out += &format!(", {} failed to open (first: {why})", self.failed);
        }
        out += &format!(", disconnected {}", self.cell());
        if !self.how.is_empty() {
            let how: Vec<String> = self
                .how
                .iter()
                .map(|(how, n)| format!("{n} {how}"))
                .collect();
            out += &format!(" [{}]", how.join(", "));
        }
        out
    }
}

struct Row {
    attack: Attack,
    target: Target,
    baseline: u64,
    peak: u64,
    hwm: u64,
    end: u64,
    outcome: Outcome,
    bystander: BystanderReport,
    stderr_bytes: u64,
    stderr_lines: u64,
    /// Written while the attack's connections were dropped and in the second after.
    stderr_teardown: u64,
    stderr_sample: Vec<(u64, String)>,
    /// The number of the first stderr line written after the attack ended.
    stderr_end_line: u64,
    died: Option<String>,
    duration: Duration,
}

impl Row {
    fn table_line(&self) -> String {
        let mut target = self.target.name().to_owned();
        if let Some(status) = &self.died {
            target += &format!(" **DIED** ({status})");
        }
        let mut peak = format!("+{:.1} MiB", mib(self.peak.saturating_sub(self.baseline)));
        if let Some(per) = &self.outcome.per_unit {
            peak += &format!(" ({per})");
        }
        let d = disconnects(&self.outcome.conns);
        let disconnect = if self.outcome.no_disconnect {
            format!("n/a ({} closed)", d.closed.len())
        } else {
            d.cell()
        };
        let mut rtts = self.bystander.rtts.clone();
        rtts.sort();
        let latency = match (percentile(&rtts, 50.0), percentile(&rtts, 99.0)) {
            (Some(p50), Some(p99)) => format!("{} / {} ms", ms(p50), ms(p99)),
            _ => "–".to_owned(),
        };
        let b = &self.bystander;
        let mut failures = format!("{} of {}", b.failures(), b.attempts());
        if b.timeouts > 0 {
            failures += &format!(" ({} timed out)", b.timeouts);
        }
        format!(
            "| {} | {target} | {peak} | {disconnect} | {latency} | {failures} | {} |",
            self.attack.name(),
            self.stderr_bytes
        )
    }

    fn raw_line(&self) -> String {
        let mut rtts = self.bystander.rtts.clone();
        rtts.sort();
        let b = &self.bystander;
        let mut out = format!(
            "- {} vs {} ({:.1} s): RSS baseline {:.1} MiB, sampled peak {:.1} MiB, HWM {:.1} MiB, \
             1 s after the attackers left {:.1} MiB",
            self.attack.name(),
            self.target.name(),
            self.duration.as_secs_f64(),
            mib(self.baseline),
            mib(self.peak),
            mib(self.hwm),
            mib(self.end)
        );
        for note in &self.outcome.notes {
            out += &format!("; {note}");
        }
        if !self.outcome.no_disconnect && self.attack != Attack::Silent {
            out += &format!("; {}", disconnects(&self.outcome.conns).summary());
        }
        out += &format!(
            "; bystander {} ok, p50 {} ms, p99 {} ms, max {} ms, {} timed out, {} errors",
            rtts.len(),
            percentile(&rtts, 50.0).map_or("–".into(), ms),
            percentile(&rtts, 99.0).map_or("–".into(), ms),
            rtts.last().map_or("–".into(), |d| ms(*d)),
            b.timeouts,
            b.errors
        );
        if let Some(error) = &b.first_error {
            out += &format!(" (first: {error})");
        }
        out += &format!(
            "; stderr during the attack {} B in {} lines, at teardown {} B more",
            self.stderr_bytes, self.stderr_lines, self.stderr_teardown
        );
        if let Some((number, first)) = self.stderr_sample.first() {
            let when = if *number < self.stderr_end_line {
                "during the attack"
            } else {
                "at teardown"
            };
            let first: String = first.chars().take(160).collect();
            out += &format!(" (first line {when}: {first:?})");
        }
        if let Some(status) = &self.died {
            out += &format!("; SERVER DIED: {status}");
        }
        out
    }
}

/// One attack against a fresh server child.
async fn run_attack(target: Target, attack: Attack, quick: bool) -> Result<Row, String> {
    let mut server = spawn_server(target)?;
    let (bystander, ready) = start_bystander(server.addr);
    if ready.recv_timeout(Duration::from_secs(5)).is_err() {
        eprintln!("  warning: the bystander had no echo within 5 s of the server starting");
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

async fn run(args: Args) -> ExitCode {
    if args.attacks.contains(&Attack::Idle) {
        let needed = 2 * idle_sessions(args.quick) as u64 + 100;
        match open_files_limit() {
            Some(limit) if limit < needed => {
                eprintln!(
                    "error: the idle attack needs at least {needed} open files (ulimit -n), \
                     this process may have {limit}: raise it (`ulimit -n {needed}`) or leave \
                     idle out with --attack"
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

fn print_report(rows: &[Row]) {
    if rows.is_empty() {
        return;
    }
    println!();
    println!(
        "| attack | target | peak RSS growth | disconnect (median/max) | bystander p50 / p99 | \
         bystander failures | server stderr bytes |"
    );
    println!("|---|---|---|---|---|---|---|");
    for row in rows {
        println!("{}", row.table_line());
    }
    println!();
    for row in rows {
        println!("{}", row.raw_line());
    }
}
