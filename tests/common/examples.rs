//! The example programs, built and run as their users run them: from outside, by their
//! command-line contract.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

use super::within;

/// Builds the example `name` with this test's features and profile, and gives its path.
/// `cargo test --test X` does not build examples, and a stale one would be tested in its
/// place; when `cargo test` has already built it, this only checks that it is fresh.
pub fn build(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from <target>/<profile>/deps");
    let features: Vec<&str> = [
        ("json", cfg!(feature = "json")),
        ("cbor", cfg!(feature = "cbor")),
        ("msgpack", cfg!(feature = "msgpack")),
        ("cli", cfg!(feature = "cli")),
        ("tls", cfg!(feature = "tls")),
        ("tracing", cfg!(feature = "tracing")),
        ("axum", cfg!(feature = "axum")),
        ("nats", cfg!(feature = "nats")),
        ("redis", cfg!(feature = "redis")),
    ]
    .into_iter()
    .filter_map(|(feature, on)| on.then_some(feature))
    .collect();
    let mut build = Command::new(env!("CARGO"));
    build
        .args([
            "build",
            "--quiet",
            "--example",
            name,
            "--no-default-features",
        ])
        .args(["--features", &features.join(",")])
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
    // cargo test gives the test its package's CARGO_PKG_*, CARGO_MANIFEST_DIR and the like,
    // and ring's build script reruns when any of them changes: inherited, they would rebuild
    // ring and everything above it here, and again in the next cargo test.
    let set_for_the_test = [
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_CRATE_",
        "CARGO_BIN_",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
    ];
    for (name, _) in std::env::vars_os() {
        if let Some(name) = name.to_str()
            && set_for_the_test
                .iter()
                .any(|prefix| name.starts_with(prefix))
        {
            build.env_remove(name);
        }
    }
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build --example");
    assert!(
        status.success(),
        "cargo build --example {name} failed: {status}"
    );
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.is_file(),
        "{} is missing after the build",
        path.display()
    );
    path
}

/// A server (an example, or `typed-ws serve`) running in a child process, killed when
/// dropped.
pub struct Running {
    /// What it printed first: `listening on URL`, without the prefix.
    pub url: String,
    child: Child,
}

impl Running {
    /// Builds and starts the example `name` with `args`, and waits for its `listening on`
    /// line.
    pub async fn start(name: &str, args: &[&str]) -> Running {
        Running::spawn(&build(name), args).await
    }

    /// Starts `program` with `args`, and waits for its `listening on` line.
    pub async fn spawn(program: &Path, args: &[&str]) -> Running {
        let name = program.display();
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let line = within("the listening line", lines.next_line())
            .await
            .expect("read the server's stdout")
            .unwrap_or_else(|| panic!("{name} exited before saying where it listens"));
        let url = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{name} printed {line:?} instead of `listening on URL`"));
        Running {
            url: url.to_owned(),
            child,
        }
    }

    /// The process id, for [`signal`].
    pub fn pid(&self) -> u32 {
        self.child.id().expect("still running")
    }

    /// Waits for the process to exit by itself.
    pub async fn exited(&mut self) -> ExitStatus {
        within("the server exits", self.child.wait())
            .await
            .expect("wait for the server")
    }
}

/// Sends the signal `name` (`INT`, `TERM`) to the process `pid`, with kill(1).
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args(["-s", name, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -s {name} {pid}: {status}");
}
