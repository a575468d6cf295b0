//! The server child and what is measured of it from outside, and the baseline target.

use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::time::sleep;

use crate::Target;
use crate::common::ECHO_PATH;

/// The baseline target: tokio-tungstenite as `accept_async` leaves it.
pub fn raw_server() -> ExitCode {
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

pub struct ServerChild {
    pub child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    pub stderr: Arc<StderrCount>,
}

#[derive(Default)]
pub struct StderrCount {
    pub bytes: AtomicU64,
    lines: AtomicU64,
    /// Lines from this one on (counting from 0) go to `sample`.
    pub capture_from: AtomicU64,
    /// The first few lines from `capture_from` on, numbered: what the server says.
    pub sample: Mutex<Vec<(u64, String)>>,
}

impl StderrCount {
    pub fn counts(&self) -> (u64, u64) {
        (self.bytes.load(Relaxed), self.lines.load(Relaxed))
    }
}

/// The repository, two up from this package.
fn repository() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Where `tests/peers/install.sh` puts the Python venv: under `CARGO_TARGET_DIR` (a relative
/// one taken from the repository root, as install.sh does), else `target/`.
fn python() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repository().join("target"), |dir| repository().join(dir))
        .join("peers/venv/bin/python")
}

/// An example of the same build as this program (`target/release/examples/` beside
/// `target/release/hostile`); `features` is what its build needs beyond the defaults, for the
/// message when it is missing.
fn example(name: &str, features: &str) -> Result<Command, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let path = exe
        .with_file_name("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.is_file() {
        return Err(format!(
            "{} is missing: run `cargo build --release --examples{features}` first",
            path.display()
        ));
    }
    Ok(Command::new(path))
}

/// The command of `target`'s server; `compress` turns permessage-deflate on where it is a
/// flag (Python's server has it on by default, the raw one cannot).
fn server_command(target: Target, compress: bool) -> Result<Command, String> {
    let echo_flags = ["--addr", "127.0.0.1:0", "--codec", "msgpack,cbor,json"];
    let compress_flag = compress.then_some("--compress");
    match target {
        Target::Raw => {
            let exe =
                std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
            let mut command = Command::new(exe);
            command.arg("raw-server");
            Ok(command)
        }
        Target::TypedWs => {
            let mut command = example("echo_server", "")?;
            command.args(echo_flags).args(compress_flag);
            Ok(command)
        }
        Target::Axum => {
            let mut command = example("axum_echo", " --features axum")?;
            command.args(echo_flags).args(compress_flag);
            Ok(command)
        }
        Target::Chat => {
            let mut command = example("chat", " --features axum")?;
            command.args(["--addr", "127.0.0.1:0"]);
            Ok(command)
        }
        Target::Python => {
            let python = python();
            if !python.is_file() {
                return Err(format!(
                    "{} is missing: run `bash tests/peers/install.sh` first",
                    python.display()
                ));
            }
            let mut command = Command::new(python);
            command
                .arg(repository().join("benches/hostile/echo_server.py"))
                .args(["--port", "0"]);
            Ok(command)
        }
    }
}

pub fn spawn_server(target: Target, compress: bool) -> Result<ServerChild, String> {
    let mut child = server_command(target, compress)?
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
                // A panic's report starts with a blank line; what it says comes next.
                if number >= count.capture_from.load(Relaxed)
                    && sample.len() < 3
                    && !line.trim_ascii().is_empty()
                {
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
    // `ws://IP:PORT/echo` from the echo servers, `http://IP:PORT/` from the chat.
    let addr = line
        .strip_prefix("listening on ws://")
        .or_else(|| line.strip_prefix("listening on http://"))
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
pub fn memory(pid: u32) -> Option<(u64, u64)> {
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
pub struct Sampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    dead: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    pub fn start(pid: u32) -> Sampler {
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

    pub fn peak(&self) -> u64 {
        self.peak.load(Relaxed)
    }

    pub fn dead(&self) -> bool {
        self.dead.load(Relaxed)
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How many file descriptors a process has open; `None` once it has exited.
pub fn descriptors(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}
