//! Fan-out (issue 24, item 7): `examples/ticker`, typed-ws's topics behind the fan-out
//! contract, against the same contract written by hand and in other stacks, each server a
//! process of its own driven by an external load client process, in one run.
//!
//! The contract (see benches/README.md): `--listen IP:PORT --codec C [--policy P] [--bus URL]`,
//! first stdout line `listening on ws://IP:PORT`; `ws://.../topics/{name}` subscribes,
//! `ws://.../publish/{name}` publishes, every message a `Tick { seq, sent_at_us, symbol,
//! price, size }` (MessagePack maps in binary frames, or JSON in text frames).
//!
//! Servers (the anchors are in benches/fanout/):
//! - `ticker`: `examples/ticker`, built here with `cargo build --release --example ticker`
//!   (or the program `FANOUT_TICKER` names); with `FANOUT_COMPARE=PATH`, another build of it
//!   runs beside it (`compare`), for a library change's before and after in one run;
//! - `hand` (a): tokio-tungstenite by hand, `tokio::sync::broadcast` of encoded frames, a task
//!   per subscriber that `send`s each frame: one write per message;
//! - `hand_batch` (b): the same, changed only to `feed` all the channel holds, then `flush`;
//! - `python` (c): `websockets` and its `broadcast()`;
//! - `node` (d): `ws`, a loop of `client.send(frame)`.
//!
//! The load client (benches/fanout/client.rs) is this binary again, with the `client` role,
//! pinned to CPU 0 and the servers to CPU 1 (with `taskset`, on two cores or more). Scenarios
//! (issue 24): max-rate fan-out to 1,000 subscribers; 100 rooms of 10 at 100 msg/s; 20 msg/s
//! to 1,000 paced; the same with 4 KiB messages and 5 subscribers that never read; 10,000
//! idle subscribers; two ticker nodes over NATS and over Redis. Each prints a table, then the
//! targets with PASS or MISS; a miss exits 1 (not with `--test`).
//!
//! ```text
//! cargo bench -p benches --bench fanout                  # everything, ~15 minutes
//! cargo bench -p benches --bench fanout -- paced         # one scenario, by its first word
//! cargo bench -p benches --bench fanout -- --codec json  # JSON instead of MessagePack
//! cargo bench -p benches --bench fanout -- --rounds 5     # max-rate and paced rounds (3)
//! cargo bench -p benches --bench fanout -- slow --slow-secs 90  # how long slow runs last (60)
//! cargo bench -p benches --bench fanout -- --test        # a tiny run, seconds
//! ```

mod fanout {
    pub mod client;
    pub mod hand;
    pub mod tick;
}

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fanout::client::Load;
use fanout::tick::Codec;

const ROLE: &str = "TYPED_WS_FANOUT_ROLE";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match std::env::var(ROLE).as_deref() {
        Ok("client") => {
            fanout::client::run(&args);
            return ExitCode::SUCCESS;
        }
        Ok("hand") => {
            fanout::hand::serve(false, &args);
            return ExitCode::SUCCESS;
        }
        Ok("hand_batch") => {
            fanout::hand::serve(true, &args);
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let options = Options::parse(&args);
    let mut bench = Bench::new(options);
    bench.run();
    bench.report()
}

// ---- options ----

struct Options {
    test: bool,
    codec: Codec,
    rounds: usize,
    /// How long the slow scenario measures.
    slow_secs: u64,
    filter: String,
    /// Whether client and servers go to CPUs 0 and 1.
    pinned: bool,
}

impl Options {
    fn parse(args: &[String]) -> Options {
        let value = |name: &str| {
            args.iter()
                .position(|a| a == name)
                .and_then(|at| args.get(at + 1).cloned())
        };
        let test = args.iter().any(|a| a == "--test");
        let skip: Vec<usize> = ["--codec", "--rounds", "--slow-secs"]
            .iter()
            .filter_map(|flag| args.iter().position(|a| a == flag).map(|at| at + 1))
            .collect();
        let filter = args
            .iter()
            .enumerate()
            .find(|(at, a)| !a.starts_with("--") && !skip.contains(at))
            .map(|(_, a)| a.clone())
            .unwrap_or_default();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pinned = cores >= 2
            && Command::new("taskset")
                .arg("-V")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        Options {
            test,
            codec: Codec::from_name(value("--codec").as_deref().unwrap_or("msgpack")),
            rounds: if test {
                1
            } else {
                value("--rounds").map_or(3, |r| r.parse().expect("--rounds N"))
            },
            slow_secs: value("--slow-secs").map_or(60, |s| s.parse().expect("--slow-secs N")),
            filter,
            pinned,
        }
    }
}

// ---- servers ----

/// A server of the contract, and how it is started.
#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Ticker,
    /// Another build of the ticker, named by `FANOUT_COMPARE`: before and after a library
    /// change, side by side in one run.
    Compare,
    Hand,
    HandBatch,
    Python,
    Node,
}

impl Kind {
    fn name(&self) -> &'static str {
        match self {
            Kind::Ticker => "ticker",
            Kind::Compare => "compare",
            Kind::Hand => "hand",
            Kind::HandBatch => "hand_batch",
            Kind::Python => "python",
            Kind::Node => "node",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Kind::Ticker => "typed-ws ticker",
            Kind::Compare => "ticker of FANOUT_COMPARE",
            Kind::Hand => "(a) hand-written, send per message",
            Kind::HandBatch => "(b) hand-written, feed + flush",
            Kind::Python => "(c) Python websockets broadcast()",
            Kind::Node => "(d) Node ws",
        }
    }
}

/// A started server process; killed when dropped.
struct Running {
    child: Child,
    addr: SocketAddr,
}

impl Running {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process started with the file-descriptor limit raised to its hard limit (10,000
/// subscribers are 10,000 sockets on each side), pinned to `cpu` when pinning.
fn command(pinned: bool, cpu: u32, program: &Path) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(r#"ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@""#)
        .arg("sh");
    if pinned {
        command.args(["taskset", "-c", &cpu.to_string()]);
    }
    command.arg(program);
    command
}

/// Starts `command` and reads its address from the first stdout line,
/// `listening on ws://IP:PORT[/...]`; `None` (with the reason on stderr) if it exits or
/// says nothing within 20 s.
fn start(mut command: Command, what: &str, log: &Path) -> Option<Running> {
    let stderr = std::fs::File::create(log).ok()?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| eprintln!("cannot start {what}: {e}"))
        .ok()?;
    let stdout = child.stdout.take()?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok);
        let _ = tx.send(first);
        // Keep reading, so that the server never blocks on a full pipe.
        for _ in lines {}
    });
    let line = rx.recv_timeout(Duration::from_secs(20)).ok().flatten();
    let addr = line.as_deref().and_then(|line| {
        let rest = line.strip_prefix("listening on ws://")?;
        rest.split('/').next()?.parse().ok()
    });
    match addr {
        Some(addr) => Some(Running { child, addr }),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let said = std::fs::read_to_string(log).unwrap_or_default();
            eprintln!(
                "{what} did not start (first line {line:?}); its stderr:\n{}",
                said.trim()
            );
            None
        }
    }
}

/// The workspace's root, above this package.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benches/ is in the workspace")
}

/// The workspace's target directory, where the peers and the ticker are.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), |d| root().join(d))
}

/// Builds `examples/ticker` with the buses and this bench's profile, as
/// tests/common/examples.rs does; `FANOUT_TICKER` names another program instead.
fn build_ticker() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("FANOUT_TICKER") {
        return Some(PathBuf::from(path));
    }
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?.to_path_buf();
    let mut build = Command::new(env!("CARGO"));
    build
        .args([
            "build",
            "--quiet",
            "--example",
            "ticker",
            "--no-default-features",
        ])
        .args(["--features", "json,cbor,msgpack,compression,nats,redis"])
        .arg("--manifest-path")
        .arg(root().join("Cargo.toml"));
    // As in tests/common/examples.rs: cargo's variables for this target would make ring's
    // build script run again.
    for (name, _) in std::env::vars_os() {
        if let Some(name) = name.to_str()
            && [
                "CARGO_PKG_",
                "CARGO_MANIFEST_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
            ]
            .iter()
            .any(|prefix| name.starts_with(prefix))
        {
            build.env_remove(name);
        }
    }
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    let built = build.status().is_ok_and(|s| s.success());
    let path = profile_dir.join("examples").join("ticker");
    (built && path.is_file()).then_some(path)
}

/// What a server needs besides the codec: the ticker's policy and bus.
#[derive(Clone, Default)]
struct Extra {
    policy: Option<&'static str>,
    bus: Option<String>,
    /// `--compress`, and subscribers that offer permessage-deflate.
    compress: bool,
    /// `--max-connections`, for more sessions than `Config`'s default 10,000.
    max_connections: Option<usize>,
}

// ---- the bench ----

/// One client run's `result` line.
type Outcome = HashMap<String, String>;

fn get(outcome: &Outcome, key: &str) -> f64 {
    outcome
        .get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

struct Bench {
    options: Options,
    ticker: Option<PathBuf>,
    compare: Option<PathBuf>,
    python: Option<PathBuf>,
    node: Option<PathBuf>,
    anchors_dir: PathBuf,
    logs: PathBuf,
    servers: Vec<Kind>,
    /// Every run: (scenario, row, round) → outcome.
    runs: Vec<(String, String, usize, Outcome)>,
    /// Why scenarios or servers were skipped.
    notes: Vec<String>,
    /// Runs whose deliveries did not arrive (checked in every mode).
    failures: Vec<String>,
}

impl Bench {
    fn new(options: Options) -> Bench {
        let target = target_dir();
        let logs = target.join("fanout-logs");
        let _ = std::fs::create_dir_all(&logs);
        let mut notes = Vec::new();
        let ticker = build_ticker();
        if ticker.is_none() {
            notes.push(
                "ticker: `cargo build --release --example ticker` failed or there is no \
                 examples/ticker yet; its rows are missing"
                    .to_owned(),
            );
        }
        let peers = target.join("peers");
        let python = Some(peers.join("venv/bin/python")).filter(|python| {
            Command::new(python)
                .args(["-c", "import websockets, msgpack"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        if python.is_none() {
            notes.push(format!(
                "python: no venv with websockets and msgpack under {} (bash tests/peers/install.sh)",
                peers.display()
            ));
        }
        let node_modules = peers.join("node/node_modules");
        let node = Some(node_modules.clone()).filter(|modules| {
            modules.join("ws").is_dir()
                && modules.join("@msgpack/msgpack").is_dir()
                && Command::new("node")
                    .arg("--version")
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
        });
        if node.is_none() {
            notes.push(format!(
                "node: no node on the PATH or no ws and @msgpack/msgpack under {} (bash tests/peers/install.sh)",
                node_modules.display()
            ));
        }
        let compare = std::env::var_os("FANOUT_COMPARE").map(PathBuf::from);
        let mut servers = Vec::new();
        if ticker.is_some() {
            servers.push(Kind::Ticker);
        }
        if compare.is_some() {
            servers.push(Kind::Compare);
        }
        servers.extend([Kind::Hand, Kind::HandBatch]);
        if python.is_some() {
            servers.push(Kind::Python);
        }
        if node.is_some() {
            servers.push(Kind::Node);
        }
        Bench {
            options,
            ticker,
            compare,
            python,
            node,
            anchors_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("fanout"),
            logs,
            servers,
            runs: Vec::new(),
            notes,
            failures: Vec::new(),
        }
    }

    fn start(&self, kind: &Kind, extra: &Extra, tag: &str) -> Option<Running> {
        let pinned = self.options.pinned;
        let codec = self.options.codec.name();
        let mut command = match kind {
            Kind::Ticker => command(pinned, 1, self.ticker.as_ref()?),
            Kind::Compare => command(pinned, 1, self.compare.as_ref()?),
            Kind::Hand | Kind::HandBatch => {
                let mut c = command(pinned, 1, &std::env::current_exe().ok()?);
                c.env(ROLE, kind.name());
                c
            }
            Kind::Python => {
                let mut c = command(pinned, 1, self.python.as_ref()?);
                c.arg(self.anchors_dir.join("anchor.py"));
                c
            }
            Kind::Node => {
                let mut c = command(pinned, 1, Path::new("node"));
                c.env("NODE_PATH", self.node.as_ref()?);
                c.arg(self.anchors_dir.join("anchor.cjs"));
                c
            }
        };
        command.args(["--listen", "127.0.0.1:0", "--codec", codec]);
        if matches!(kind, Kind::Ticker | Kind::Compare) {
            if let Some(policy) = extra.policy {
                command.args(["--policy", policy]);
            }
            if let Some(bus) = &extra.bus {
                command.args(["--bus", bus]);
            }
            if extra.compress {
                command.arg("--compress");
            }
            if let Some(connections) = extra.max_connections {
                command.args(["--max-connections", &connections.to_string()]);
            }
        }
        let log = self.logs.join(format!("{}-{tag}.log", kind.name()));
        start(command, kind.name(), &log)
    }

    /// Runs the load client once and reads its result.
    fn client(&self, load: &Load) -> Option<Outcome> {
        let exe = std::env::current_exe().ok()?;
        let output = command(self.options.pinned, 0, &exe)
            .env(ROLE, "client")
            .args(load.to_args())
            .stderr(Stdio::inherit())
            .output()
            .ok()?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout.lines().find_map(|l| l.strip_prefix("result "))?;
        Some(
            line.split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }

    /// Whether the filter picks the scenario, by its first word (`max-rate`, `compressed`,
    /// `sequenced`, `resume`, `rooms`, `paced`, `slow`, `idle`, `two`).
    fn chosen(&self, scenario: &str) -> bool {
        let word = scenario.split([' ', ':']).next().unwrap_or_default();
        word.contains(&self.options.filter)
    }

    /// One run: starts the server(s), drives them with `load` (addresses and pids filled in),
    /// records the outcome under (scenario, row, round).
    fn run_one(
        &mut self,
        scenario: &str,
        row: &str,
        round: usize,
        kind: &Kind,
        extra: &Extra,
        load: Load,
    ) {
        let Some(server) = self.start(kind, extra, scenario.split(' ').next().unwrap_or("run"))
        else {
            self.failures
                .push(format!("{scenario}: {row} did not start"));
            return;
        };
        let load = Load {
            sub: server.addr,
            publ: server.addr,
            back: server.addr,
            pids: vec![server.pid()],
            ..load
        };
        self.drive(scenario, row, round, load);
        drop(server);
    }

    fn drive(&mut self, scenario: &str, row: &str, round: usize, load: Load) {
        eprintln!("  {scenario}: {row}");
        let (idle, resume) = (load.idle, load.resume > 0);
        match self.client(&load) {
            Some(outcome) => {
                let arrived = if resume {
                    outcome.get("recovered_ok").is_some_and(|ok| ok == "true")
                        && get(&outcome, "lost") == 0.0
                } else if idle {
                    get(&outcome, "published") > 0.0
                        && get(&outcome, "lost") == 0.0
                        && get(&outcome, "subscribers") > 0.0
                } else {
                    get(&outcome, "deliveries") > 0.0
                };
                if !arrived {
                    self.failures.push(format!(
                        "{scenario}: {row}: deliveries did not arrive ({})",
                        show(&outcome)
                    ));
                }
                self.runs
                    .push((scenario.to_owned(), row.to_owned(), round, outcome));
            }
            None => self
                .failures
                .push(format!("{scenario}: {row}: the load client gave no result")),
        }
    }

    fn outcomes(&self, scenario: &str, row: &str) -> Vec<&Outcome> {
        self.runs
            .iter()
            .filter(|(s, r, _, _)| s == scenario && r == row)
            .map(|(_, _, _, o)| o)
            .collect()
    }

    fn outcome(&self, scenario: &str, row: &str, round: usize) -> Option<&Outcome> {
        self.runs
            .iter()
            .find(|(s, r, n, _)| s == scenario && r == row && *n == round)
            .map(|(_, _, _, o)| o)
    }

    /// The load of a scenario, full size or tiny under `--test`.
    fn load(&self, full: Load, tiny: impl FnOnce(Load) -> Load) -> Load {
        if self.options.test { tiny(full) } else { full }
    }

    fn base(&self) -> Load {
        let nowhere: SocketAddr = "127.0.0.1:9".parse().expect("an address");
        Load {
            sub: nowhere,
            publ: nowhere,
            back: nowhere,
            codec: self.options.codec,
            topics: 1,
            subs: 1000,
            pubs: 1,
            rate: 0,
            window: 128,
            pad: 0,
            slow: 0,
            rcvbuf: 4096,
            warm_up: Duration::from_secs(1),
            measure: Duration::from_secs(3),
            idle: false,
            compress: false,
            sequenced: false,
            resume: 0,
            pids: Vec::new(),
        }
    }

    fn run(&mut self) {
        let started = Instant::now();
        let servers = self.servers.clone();
        // --test starts every server once (max-rate), then only typed-ws and (a).
        let few: Vec<Kind> = if self.options.test {
            servers
                .iter()
                .filter(|k| matches!(k, Kind::Ticker | Kind::Compare | Kind::Hand))
                .cloned()
                .collect()
        } else {
            servers.clone()
        };
        let rounds = self.options.rounds;
        let plain = Extra::default();

        if self.chosen(MAX_RATE) {
            eprintln!("{MAX_RATE}");
            let load = self.load(self.base(), |l| Load {
                subs: 20,
                warm_up: Duration::from_millis(100),
                measure: Duration::from_millis(300),
                ..l
            });
            for round in 0..rounds {
                // Each round starts with another server, so that none always runs first.
                for kind in servers.iter().cycle().skip(round).take(servers.len()) {
                    self.run_one(MAX_RATE, kind.name(), round, kind, &plain, load.clone());
                }
            }
        }
        if self.chosen(COMPRESSED) && self.ticker.is_some() {
            eprintln!("{COMPRESSED}");
            // Paced, so that both runs write as often: at the most a server can take, the
            // client's inflating would set the rate, and with it how much each write batches.
            let load = self.load(
                Load {
                    rate: 100,
                    warm_up: Duration::from_secs(1),
                    measure: Duration::from_secs(5),
                    ..self.base()
                },
                |l| Load {
                    subs: 20,
                    warm_up: Duration::from_millis(100),
                    measure: Duration::from_millis(500),
                    ..l
                },
            );
            let compressing = Extra {
                compress: true,
                ..Extra::default()
            };
            let rows = [
                ("ticker", &plain, load.clone()),
                (
                    "ticker --compress",
                    &compressing,
                    Load {
                        compress: true,
                        ..load
                    },
                ),
            ];
            for round in 0..rounds {
                for (row, extra, load) in rows.iter().cycle().skip(round).take(rows.len()) {
                    self.run_one(COMPRESSED, row, round, &Kind::Ticker, extra, load.clone());
                }
            }
        }
        if self.chosen(SEQUENCED) && self.ticker.is_some() {
            eprintln!("{SEQUENCED}");
            let load = self.load(self.base(), |l| Load {
                subs: 20,
                warm_up: Duration::from_millis(100),
                measure: Duration::from_millis(300),
                ..l
            });
            let rows = [
                ("ticker", load.clone()),
                (
                    "ticker, numbered",
                    Load {
                        sequenced: true,
                        ..load
                    },
                ),
            ];
            for round in 0..rounds {
                for (row, load) in rows.iter().cycle().skip(round).take(rows.len()) {
                    self.run_one(SEQUENCED, row, round, &Kind::Ticker, &plain, load.clone());
                }
            }
        }
        if self.chosen(RESUME) && self.ticker.is_some() {
            eprintln!("{RESUME}");
            // The publisher as fast as it can: one node takes the burst.
            let load = Load {
                resume: if self.options.test { 100 } else { 10_000 },
                window: 0,
                ..self.base()
            };
            for round in 0..rounds {
                self.run_one(RESUME, "ticker", round, &Kind::Ticker, &plain, load.clone());
            }
            self.resume_on_redis(&load);
        }
        if self.chosen(ROOMS) {
            eprintln!("{ROOMS}");
            let load = self.load(
                Load {
                    topics: 100,
                    subs: 10,
                    rate: 100,
                    warm_up: Duration::from_millis(500),
                    measure: Duration::from_secs(5),
                    ..self.base()
                },
                |l| Load {
                    topics: 3,
                    subs: 3,
                    warm_up: Duration::from_millis(100),
                    measure: Duration::from_millis(300),
                    ..l
                },
            );
            for kind in &few {
                self.run_one(ROOMS, kind.name(), 0, kind, &plain, load.clone());
            }
        }
        let paced = self.load(
            Load {
                rate: 20,
                warm_up: Duration::from_secs(1),
                measure: Duration::from_secs(10),
                ..self.base()
            },
            |l| Load {
                subs: 20,
                warm_up: Duration::from_millis(100),
                measure: Duration::from_millis(500),
                ..l
            },
        );
        if self.chosen(PACED) {
            eprintln!("{PACED}");
            for round in 0..rounds {
                for kind in few.iter().cycle().skip(round).take(few.len()) {
                    self.run_one(PACED, kind.name(), round, kind, &plain, paced.clone());
                }
            }
        }
        if self.chosen(SLOW) {
            eprintln!("{SLOW}");
            let big = Load {
                pad: 4096,
                measure: if self.options.test {
                    paced.measure
                } else {
                    Duration::from_secs(self.options.slow_secs)
                },
                ..paced.clone()
            };
            let slow = Load {
                slow: if self.options.test { 2 } else { 5 },
                ..big.clone()
            };
            let mut rows: Vec<(String, Kind, Extra, Load)> = Vec::new();
            if self.ticker.is_some() {
                rows.push(("ticker".into(), Kind::Ticker, plain.clone(), big.clone()));
                for policy in ["disconnect", "drop-oldest", "conflate"] {
                    let extra = Extra {
                        policy: Some(policy),
                        ..Extra::default()
                    };
                    rows.push((
                        format!("ticker --policy {policy} + slow"),
                        Kind::Ticker,
                        extra,
                        slow.clone(),
                    ));
                }
            }
            // One round: each run lasts until the kernel's buffers and the queue are full.
            for round in 0..1 {
                for (row, kind, extra, load) in rows.iter().cycle().skip(round).take(rows.len()) {
                    self.run_one(SLOW, row, round, kind, extra, load.clone());
                }
            }
            self.run_one(SLOW, "hand", 0, &Kind::Hand, &plain, big);
            self.run_one(SLOW, "hand + slow", 0, &Kind::Hand, &plain, slow);
        }
        if self.chosen(IDLE) {
            eprintln!("{IDLE}");
            let load = self.load(
                Load {
                    subs: 10_000,
                    idle: true,
                    ..self.base()
                },
                |l| Load { subs: 50, ..l },
            );
            // The subscribers and the publisher: one more than `Config`'s default limit.
            let crowd = Extra {
                max_connections: Some(load.subs + 100),
                ..Extra::default()
            };
            for kind in &few {
                let extra = if *kind == Kind::Ticker {
                    &crowd
                } else {
                    &plain
                };
                self.run_one(IDLE, kind.name(), 0, kind, extra, load.clone());
            }
        }
        if self.chosen(TWO_NODES) {
            eprintln!("{TWO_NODES}");
            // Few subscribers, so that the broker's hop is not lost in a fan-out's time;
            // four publishers, so that order and duplicates are checked per publisher.
            let load = Load {
                subs: 100,
                pubs: 4,
                rate: 50,
                warm_up: Duration::from_millis(500),
                measure: Duration::from_secs(5),
                ..paced.clone()
            };
            self.two_nodes(&load);
        }
        eprintln!("ran in {:.0} s", started.elapsed().as_secs_f64());
    }

    /// The resume scenario on two tickers whose history is on Redis: the subscriber leaves one
    /// and comes back to the other.
    fn resume_on_redis(&mut self, load: &Load) {
        if self.options.test {
            return;
        }
        let Some(redis) = Broker::start("redis", "redis-server", self.options.pinned) else {
            self.notes
                .push(format!("{RESUME_ON_REDIS}: no redis-server on the PATH"));
            return;
        };
        for round in 0..self.options.rounds {
            let extra = Extra {
                bus: Some(redis.url.clone()),
                ..Extra::default()
            };
            let (Some(a), Some(b)) = (
                self.start(&Kind::Ticker, &extra, "resume-a"),
                self.start(&Kind::Ticker, &extra, "resume-b"),
            ) else {
                self.failures
                    .push(format!("{RESUME_ON_REDIS}: a ticker did not start"));
                return;
            };
            // At most 4,096 ahead of the live subscriber: a burst of 10,000 would overflow
            // the bus's queue (8,192), which drops what does not fit, here as everywhere.
            let load = Load {
                sub: a.addr,
                publ: a.addr,
                back: b.addr,
                window: 4_096,
                pids: vec![a.pid(), b.pid()],
                ..load.clone()
            };
            self.drive(RESUME, RESUME_ON_REDIS, round, load);
        }
    }

    /// Two ticker nodes sharing a broker: publishers on one, subscribers on the other; the
    /// baseline is one node with the same load, run just before.
    fn two_nodes(&mut self, load: &Load) {
        if self.options.test {
            self.notes
                .push("two nodes: not run with --test (brokers take seconds to start)".into());
            return;
        }
        if self.ticker.is_none() {
            self.notes.push("two nodes: no ticker".into());
            return;
        }
        let mut brokers = Vec::new();
        for (broker, program) in [("nats", "nats-server"), ("redis", "redis-server")] {
            match Broker::start(broker, program, self.options.pinned) {
                Some(process) => brokers.push((broker, process)),
                None => self.notes.push(format!(
                    "two nodes over {broker}: no {program} on the PATH (bash tests/peers/install.sh)"
                )),
            }
        }
        // Rounds of one node, then each broker, in an order that turns.
        let mut rows = vec![None];
        rows.extend((0..brokers.len()).map(Some));
        let mut refused = vec![false; brokers.len()];
        for round in 0..self.options.rounds {
            for row in rows.iter().cycle().skip(round).take(rows.len()) {
                let Some(at) = *row else {
                    let plain = Extra::default();
                    self.run_one(
                        TWO_NODES,
                        "one node",
                        round,
                        &Kind::Ticker,
                        &plain,
                        load.clone(),
                    );
                    continue;
                };
                let (broker, process) = &brokers[at];
                if refused[at] {
                    continue;
                }
                let extra = Extra {
                    bus: Some(process.url.clone()),
                    ..Extra::default()
                };
                let (Some(a), Some(b)) = (
                    self.start(&Kind::Ticker, &extra, &format!("{broker}-a")),
                    self.start(&Kind::Ticker, &extra, &format!("{broker}-b")),
                ) else {
                    self.notes.push(format!(
                        "two nodes over {broker}: skipped, the ticker did not start with --bus {} (no --bus support yet?)",
                        process.url
                    ));
                    refused[at] = true;
                    continue;
                };
                let load = Load {
                    sub: b.addr,
                    publ: a.addr,
                    back: b.addr,
                    pids: vec![a.pid(), b.pid()],
                    ..load.clone()
                };
                self.drive(TWO_NODES, &format!("over {broker}"), round, load);
            }
        }
    }
}

const MAX_RATE: &str =
    "max-rate: 1 topic x 1,000 subscribers, 1 publisher as fast as the slowest takes (128 ahead)";
const COMPRESSED: &str =
    "compressed: 1 topic x 1,000 subscribers, 100 msg/s, permessage-deflate, no context takeover";
const SEQUENCED: &str = "sequenced: max-rate, the subscribers numbered (`?since=now`) or plain";
const RESUME: &str = "resume: 10,000 Ticks missed, then recovered with `?since=&epoch=`";
const RESUME_ON_REDIS: &str = "ticker --bus redis, back on another node";
const ROOMS: &str = "rooms: 100 topics x 10 subscribers, 100 msg/s each";
const PACED: &str = "paced: 1 topic x 1,000 subscribers, 20 msg/s";
const SLOW: &str =
    "slow: paced with 4 KiB messages, and 5 subscribers that never read (SO_RCVBUF 4 KiB)";
const IDLE: &str = "idle: 10,000 subscribers";
const TWO_NODES: &str =
    "two nodes: 4 publishers x 50 msg/s on one ticker, 100 subscribers on another";

/// A broker on a free port, killed when dropped.
struct Broker {
    child: Child,
    url: String,
}

impl Broker {
    fn start(name: &str, program: &str, pinned: bool) -> Option<Broker> {
        let found = std::env::var_os("PATH")
            .and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join(program))
                    .find(|p| p.is_file())
            })
            .or_else(|| Some(PathBuf::from(format!("/usr/sbin/{program}"))).filter(|p| p.is_file()))
            .or_else(|| {
                Some(PathBuf::from(format!("/usr/bin/{program}"))).filter(|p| p.is_file())
            })?;
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let mut command = command(pinned, 1, &found);
        match name {
            "nats" => command.args(["-a", "127.0.0.1", "-p", &port.to_string()]),
            _ => command.args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ]),
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let broker = Broker {
            child,
            url: format!("{name}://127.0.0.1:{port}"),
        };
        let by = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > by {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(broker)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- the report ----

fn show(outcome: &Outcome) -> String {
    let mut keys: Vec<_> = outcome.iter().collect();
    keys.sort();
    keys.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| !v.is_nan());
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn ms(us: f64) -> String {
    if us.is_nan() {
        "-".to_owned()
    } else {
        format!("{:.2} ms", us / 1e3)
    }
}

/// A target's line: what, the figure, the bound, PASS or MISS.
struct Verdict {
    target: String,
    figure: String,
    pass: Option<bool>,
}

impl Bench {
    /// The median over rounds of a per-round figure of (scenario, row).
    fn med(&self, scenario: &str, row: &str, key: &str) -> f64 {
        median(
            self.outcomes(scenario, row)
                .iter()
                .map(|o| get(o, key))
                .collect(),
        )
    }

    /// The per-round ratio of two rows' figures: median, lowest, highest.
    fn ratio(&self, scenario: &str, top: &str, bottom: &str, key: &str) -> (f64, f64, f64) {
        let values: Vec<f64> = (0..self.options.rounds)
            .filter_map(|round| {
                let top = get(self.outcome(scenario, top, round)?, key);
                let bottom = get(self.outcome(scenario, bottom, round)?, key);
                Some(top / bottom)
            })
            .filter(|v| v.is_finite())
            .collect();
        let low = values.iter().copied().fold(f64::INFINITY, f64::min);
        let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (median(values), low, high)
    }

    fn report(&self) -> ExitCode {
        let codec = self.options.codec.name();
        let rounds = self.options.rounds;
        let mut verdicts: Vec<Verdict> = Vec::new();
        println!(
            "\n# Fan-out ({codec}{})\n",
            if self.options.test {
                ", --test: tiny loads, not judged"
            } else {
                ""
            }
        );

        if !self.outcomes(MAX_RATE, "hand").is_empty() {
            println!("## {MAX_RATE}\n");
            println!(
                "Medians of {rounds} round(s); ratios per round, then the median (lowest-highest).\n"
            );
            println!(
                "| server | deliveries/s | / (a) | server CPU per delivery | p50 | p99 | lost |"
            );
            println!("|---|---|---|---|---|---|---|");
            for kind in &self.servers {
                if self.outcomes(MAX_RATE, kind.name()).is_empty() {
                    continue;
                }
                let (r, lo, hi) = self.ratio(MAX_RATE, kind.name(), "hand", "rate");
                println!(
                    "| {} | {:.0} | {r:.2} ({lo:.2}-{hi:.2}) | {:.3} µs | {} | {} | {:.0} |",
                    kind.title(),
                    self.med(MAX_RATE, kind.name(), "rate"),
                    self.med(MAX_RATE, kind.name(), "cpu_per_delivery_us"),
                    ms(self.med(MAX_RATE, kind.name(), "p50_us")),
                    ms(self.med(MAX_RATE, kind.name(), "p99_us")),
                    self.med(MAX_RATE, kind.name(), "lost"),
                );
            }
            if self.ticker.is_some() {
                let (r, lo, hi) = self.ratio(MAX_RATE, "ticker", "hand", "rate");
                verdicts.push(Verdict {
                    target: "max-rate: ticker deliveries/s / (a) >= 4.0".into(),
                    figure: format!("{r:.2} ({lo:.2}-{hi:.2})"),
                    pass: Some(r >= 4.0),
                });
                let cpu = self.med(MAX_RATE, "ticker", "cpu_per_delivery_us");
                verdicts.push(Verdict {
                    target: "max-rate: ticker server CPU per delivery <= 1.0 µs".into(),
                    figure: format!("{cpu:.3} µs"),
                    pass: Some(cpu <= 1.0),
                });
            }
            println!();
        }

        if !self.outcomes(COMPRESSED, "ticker --compress").is_empty() {
            println!("## {COMPRESSED}\n");
            println!(
                "The ticker alone, its subscribers plain, then offering permessage-deflate; medians of {rounds} round(s).\n"
            );
            println!(
                "| run | deliveries/s | server CPU per delivery | / plain | p50 | p99 | lost |"
            );
            println!("|---|---|---|---|---|---|---|");
            for row in ["ticker", "ticker --compress"] {
                let (r, lo, hi) = self.ratio(COMPRESSED, row, "ticker", "cpu_per_delivery_us");
                println!(
                    "| {row} | {:.0} | {:.3} µs | {r:.2} ({lo:.2}-{hi:.2}) | {} | {} | {:.0} |",
                    self.med(COMPRESSED, row, "rate"),
                    self.med(COMPRESSED, row, "cpu_per_delivery_us"),
                    ms(self.med(COMPRESSED, row, "p50_us")),
                    ms(self.med(COMPRESSED, row, "p99_us")),
                    self.med(COMPRESSED, row, "lost"),
                );
            }
            let (r, lo, hi) = self.ratio(
                COMPRESSED,
                "ticker --compress",
                "ticker",
                "cpu_per_delivery_us",
            );
            verdicts.push(Verdict {
                target: "compressed: server CPU per delivery / uncompressed <= 2.0".into(),
                figure: format!("{r:.2} ({lo:.2}-{hi:.2})"),
                pass: Some(r <= 2.0),
            });
            println!();
        }

        if !self.outcomes(SEQUENCED, "ticker, numbered").is_empty() {
            println!("## {SEQUENCED}\n");
            println!("Medians of {rounds} round(s); the ratio per round, then the median.\n");
            println!(
                "The load client's busy share is its CPU time over the window; the server's CPU per delivery is what sequencing costs the server, while deliveries/s also pay for the larger frames (the seq and epoch of each) on the wire and in the client.\n"
            );
            println!(
                "| run | deliveries/s | / plain | server CPU per delivery | / plain | load client busy | p99 | lost |"
            );
            println!("|---|---|---|---|---|---|---|---|");
            for row in ["ticker", "ticker, numbered"] {
                let (r, lo, hi) = self.ratio(SEQUENCED, row, "ticker", "rate");
                let (c, clo, chi) = self.ratio(SEQUENCED, row, "ticker", "cpu_per_delivery_us");
                println!(
                    "| {row} | {:.0} | {r:.2} ({lo:.2}-{hi:.2}) | {:.3} µs | {c:.2} ({clo:.2}-{chi:.2}) | {:.2} | {} | {:.0} |",
                    self.med(SEQUENCED, row, "rate"),
                    self.med(SEQUENCED, row, "cpu_per_delivery_us"),
                    self.med(SEQUENCED, row, "client_busy"),
                    ms(self.med(SEQUENCED, row, "p99_us")),
                    self.med(SEQUENCED, row, "lost"),
                );
            }
            let (r, lo, hi) = self.ratio(SEQUENCED, "ticker, numbered", "ticker", "rate");
            verdicts.push(Verdict {
                target: "sequenced: numbered deliveries/s / plain >= 0.95".into(),
                figure: format!("{r:.2} ({lo:.2}-{hi:.2})"),
                pass: Some(r >= 0.95),
            });
            let (c, lo, hi) = self.ratio(
                SEQUENCED,
                "ticker, numbered",
                "ticker",
                "cpu_per_delivery_us",
            );
            verdicts.push(Verdict {
                target: "sequenced: numbered server CPU per delivery / plain <= 1.05".into(),
                figure: format!("{c:.2} ({lo:.2}-{hi:.2})"),
                pass: Some(c <= 1.05),
            });
            println!();
        }

        if !self.outcomes(RESUME, "ticker").is_empty() {
            println!("## {RESUME}\n");
            println!(
                "A subscriber away while N Ticks are published comes back with its position: the time from its connecting to its having all N, and their bytes (payloads), beside a plain subscriber that got the same N live, from the first publication to the last receipt. Medians of {rounds} round(s).\n"
            );
            println!(
                "| run | missed | outcome | recovered | lost | resume time | resume bytes | live time | live bytes | time / live | bytes / live |"
            );
            println!("|---|---|---|---|---|---|---|---|---|---|---|");
            for row in ["ticker", RESUME_ON_REDIS] {
                let outcomes = self.outcomes(RESUME, row);
                let Some(first) = outcomes.first() else {
                    continue;
                };
                let (time, bytes) = (
                    self.med(RESUME, row, "resume_us"),
                    self.med(RESUME, row, "resume_bytes"),
                );
                let (live_time, live_bytes) = (
                    self.med(RESUME, row, "live_us"),
                    self.med(RESUME, row, "live_bytes"),
                );
                println!(
                    "| {row} | {:.0} | {} | {:.0} | {:.0} | {} | {bytes:.0} | {} | {live_bytes:.0} | {:.2} | {:.2} |",
                    self.med(RESUME, row, "missed"),
                    first.get("outcome").map_or("-", String::as_str),
                    self.med(RESUME, row, "recovered"),
                    self.med(RESUME, row, "lost"),
                    ms(time),
                    ms(live_time),
                    time / live_time,
                    bytes / live_bytes,
                );
            }
            println!();
        }

        if !self.outcomes(ROOMS, "hand").is_empty() {
            println!("## {ROOMS}\n");
            println!(
                "| server | deliveries/s | lost | duplicated | p50 | p99 | server CPU per delivery |"
            );
            println!("|---|---|---|---|---|---|---|");
            for kind in &self.servers {
                if self.outcomes(ROOMS, kind.name()).is_empty() {
                    continue;
                }
                let name = kind.name();
                println!(
                    "| {} | {:.0} | {:.0} | {:.0} | {} | {} | {:.3} µs |",
                    kind.title(),
                    self.med(ROOMS, name, "rate"),
                    self.med(ROOMS, name, "lost"),
                    self.med(ROOMS, name, "dup"),
                    ms(self.med(ROOMS, name, "p50_us")),
                    ms(self.med(ROOMS, name, "p99_us")),
                    self.med(ROOMS, name, "cpu_per_delivery_us"),
                );
            }
            if self.ticker.is_some() {
                let lost = self.med(ROOMS, "ticker", "lost") + self.med(ROOMS, "ticker", "dup");
                verdicts.push(Verdict {
                    target: "rooms: ticker loses (or repeats) nothing".into(),
                    figure: format!("{lost:.0} lost or repeated"),
                    pass: Some(lost == 0.0),
                });
            }
            println!();
        }

        if !self.outcomes(PACED, "hand").is_empty() {
            println!("## {PACED}\n");
            println!(
                "Latency from `sent_at_us` to receipt over every delivery; medians of {rounds} round(s).\n"
            );
            println!(
                "| server | p50 | p99 | max | p99 / ticker's | lost | server CPU per delivery | in the kernel |"
            );
            println!("|---|---|---|---|---|---|---|---|");
            for kind in &self.servers {
                if self.outcomes(PACED, kind.name()).is_empty() {
                    continue;
                }
                let name = kind.name();
                let (r, lo, hi) = self.ratio(PACED, name, "ticker", "p99_us");
                println!(
                    "| {} | {} | {} | {} | {} | {:.0} | {:.3} µs | {:.0}% |",
                    kind.title(),
                    ms(self.med(PACED, name, "p50_us")),
                    ms(self.med(PACED, name, "p99_us")),
                    ms(self.med(PACED, name, "max_us")),
                    if r.is_nan() {
                        "-".to_owned()
                    } else {
                        format!("{r:.2} ({lo:.2}-{hi:.2})")
                    },
                    self.med(PACED, name, "lost"),
                    self.med(PACED, name, "cpu_per_delivery_us"),
                    100.0 * self.med(PACED, name, "sys_share"),
                );
            }
            if self.ticker.is_some() {
                // The best of the anchors other than the batching ceiling, per round.
                let best: Vec<f64> = (0..rounds)
                    .filter_map(|round| {
                        let ticker = get(self.outcome(PACED, "ticker", round)?, "p99_us");
                        let best = [Kind::Hand, Kind::Python, Kind::Node]
                            .iter()
                            .filter_map(|k| self.outcome(PACED, k.name(), round))
                            .map(|o| get(o, "p99_us"))
                            .fold(f64::INFINITY, f64::min);
                        Some(best / ticker)
                    })
                    .collect();
                let r = median(best.clone());
                verdicts.push(Verdict {
                    target: "paced: best p99 of (a), (c), (d) / ticker's p99 >= 1.0".into(),
                    figure: format!(
                        "{r:.2} ({:.2}-{:.2})",
                        best.iter().copied().fold(f64::INFINITY, f64::min),
                        best.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                    ),
                    pass: Some(r >= 1.0),
                });
            }
            println!();
        }

        let slow_rows: Vec<&str> = {
            let mut rows: Vec<&str> = Vec::new();
            for (s, r, _, _) in &self.runs {
                if s == SLOW && !rows.contains(&r.as_str()) {
                    rows.push(r);
                }
            }
            rows
        };
        if !slow_rows.is_empty() {
            println!("## {SLOW}\n");
            println!(
                "The others' latency with and without the slow five (medians of {rounds} round(s); the ratio per round, then its median); what reached the slow ones (drained after the run) and how they ended. Under conflate the others' \"lost\" are Ticks conflated while they lagged.\n"
            );
            println!(
                "| run | others' p50 | others' p99 | p99 / without | others lost | slow: Ticks read after | slow: closed by server (code) |"
            );
            println!("|---|---|---|---|---|---|---|");
            for row in &slow_rows {
                let without = if row.starts_with("ticker") {
                    "ticker"
                } else {
                    "hand"
                };
                let (r, lo, hi) = self.ratio(SLOW, row, without, "p99_us");
                let slow = row.ends_with("slow");
                let outcome = self.outcomes(SLOW, row);
                let codes = outcome
                    .first()
                    .and_then(|o| o.get("slow_codes").cloned())
                    .unwrap_or_default();
                println!(
                    "| {row} | {} | {} | {r:.2} ({lo:.2}-{hi:.2}) | {:.0} | {} | {} |",
                    ms(self.med(SLOW, row, "p50_us")),
                    ms(self.med(SLOW, row, "p99_us")),
                    self.med(SLOW, row, "lost"),
                    if slow {
                        format!("{:.0}", self.med(SLOW, row, "slow_frames"))
                    } else {
                        "-".into()
                    },
                    if slow {
                        format!("{:.0} ({codes})", self.med(SLOW, row, "slow_closed"))
                    } else {
                        "-".into()
                    },
                );
                if slow && row.starts_with("ticker") {
                    verdicts.push(Verdict {
                        target: format!("slow: {row}: others' p99 / without slow <= 1.10"),
                        figure: format!("{r:.2} ({lo:.2}-{hi:.2})"),
                        pass: Some(r <= 1.10),
                    });
                    // Held forever would be every Tick waiting for them: the policy (or the
                    // send deadline) must have closed them, or dropped or conflated Ticks.
                    let slow_ones = outcome.first().map_or(f64::NAN, |o| get(o, "slow"));
                    let closed = self.med(SLOW, row, "slow_closed");
                    let read = self.med(SLOW, row, "slow_frames");
                    let published = self.med(SLOW, row, "published");
                    let (figure, pass) = if row.contains("disconnect") {
                        (
                            format!("{closed:.0} of {slow_ones:.0} closed ({codes})"),
                            closed == slow_ones,
                        )
                    } else {
                        (
                            format!(
                                "{closed:.0} of {slow_ones:.0} closed, {read:.0} of {:.0} Ticks read",
                                published * slow_ones
                            ),
                            closed == slow_ones || read < published * slow_ones,
                        )
                    };
                    verdicts.push(Verdict {
                        target: format!("slow: {row}: the slow ones are not held forever"),
                        figure,
                        pass: Some(pass),
                    });
                }
            }
            println!();
        }

        if !self.outcomes(IDLE, "hand").is_empty() {
            println!("## {IDLE}\n");
            println!(
                "RSS of the server process with every subscriber connected, less its RSS before the first; then one Tick, which each must receive.\n"
            );
            println!(
                "| server | subscribers | RSS before | RSS connected | per subscriber | Ticks published | deliveries lost |"
            );
            println!("|---|---|---|---|---|---|---|");
            for kind in &self.servers {
                if self.outcomes(IDLE, kind.name()).is_empty() {
                    continue;
                }
                let name = kind.name();
                let subs = self.med(IDLE, name, "subscribers");
                let before = self.med(IDLE, name, "rss_before_kib");
                let connected = self.med(IDLE, name, "rss_connected_kib");
                println!(
                    "| {} | {subs:.0} | {:.1} MiB | {:.1} MiB | {:.1} KiB | {:.0} | {:.0} |",
                    kind.title(),
                    before / 1024.0,
                    connected / 1024.0,
                    (connected - before) / subs,
                    self.med(IDLE, name, "published"),
                    self.med(IDLE, name, "lost"),
                );
            }
            if self.ticker.is_some() {
                let per = (self.med(IDLE, "ticker", "rss_connected_kib")
                    - self.med(IDLE, "ticker", "rss_before_kib"))
                    / self.med(IDLE, "ticker", "subscribers");
                verdicts.push(Verdict {
                    target: "idle: ticker RSS per subscriber <= 12 KiB".into(),
                    figure: format!("{per:.1} KiB"),
                    pass: Some(per <= 12.0),
                });
            }
            println!();
        }

        if !self.outcomes(TWO_NODES, "one node").is_empty() {
            println!("## {TWO_NODES}\n");
            println!(
                "Medians of {rounds} round(s); the p50 added per round (lowest-highest); lost and duplicated over all rounds.\n"
            );
            println!("| run | p50 | p99 | p50 added | lost | duplicated |");
            println!("|---|---|---|---|---|---|");
            for row in ["one node", "over nats", "over redis"] {
                if self.outcomes(TWO_NODES, row).is_empty() {
                    continue;
                }
                // The p50 added, per round: this row's less one node's.
                let added: Vec<f64> = (0..rounds)
                    .filter_map(|round| {
                        let p50 = get(self.outcome(TWO_NODES, row, round)?, "p50_us");
                        let base = get(self.outcome(TWO_NODES, "one node", round)?, "p50_us");
                        Some(p50 - base)
                    })
                    .collect();
                let lowest = added.iter().copied().fold(f64::INFINITY, f64::min);
                let highest = added.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let added = median(added);
                let lost: f64 = self
                    .outcomes(TWO_NODES, row)
                    .iter()
                    .map(|o| get(o, "lost"))
                    .sum();
                let dup: f64 = self
                    .outcomes(TWO_NODES, row)
                    .iter()
                    .map(|o| get(o, "dup"))
                    .sum();
                println!(
                    "| {row} | {} | {} | {} ({}-{}) | {lost:.0} | {dup:.0} |",
                    ms(self.med(TWO_NODES, row, "p50_us")),
                    ms(self.med(TWO_NODES, row, "p99_us")),
                    ms(added),
                    ms(lowest),
                    ms(highest),
                );
                if row != "one node" {
                    verdicts.push(Verdict {
                        target: format!("two nodes {row}: nothing lost or duplicated"),
                        figure: format!("{lost:.0} lost, {dup:.0} duplicated (all rounds)"),
                        pass: Some(lost == 0.0 && dup == 0.0),
                    });
                    verdicts.push(Verdict {
                        target: format!("two nodes {row}: p50 added <= 2 ms"),
                        figure: ms(added),
                        pass: Some(added <= 2000.0),
                    });
                }
            }
            println!();
        }

        for note in &self.notes {
            println!("note: {note}");
        }
        if !self.notes.is_empty() {
            println!();
        }
        println!("## Targets\n");
        println!("| target | figure | verdict |");
        println!("|---|---|---|");
        let mut missed = false;
        for v in &verdicts {
            let word = match (self.options.test, v.pass) {
                (true, _) => "(not judged with --test)",
                (false, Some(true)) => "PASS",
                (false, Some(false)) => {
                    missed = true;
                    "MISS"
                }
                (false, None) => "-",
            };
            println!("| {} | {} | {word} |", v.target, v.figure);
        }
        for failure in &self.failures {
            println!("FAILED: {failure}");
        }
        if !self.failures.is_empty() || missed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    }
}
