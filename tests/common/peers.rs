//! Independent peers (Python and Node), installed by `tests/peers/install.sh` under
//! `$CARGO_TARGET_DIR/peers` (`target/peers` without the variable): whether they are there,
//! and running one as a child process.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use super::within;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lang {
    Python,
    Node,
}

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `CARGO_TARGET_DIR` (a relative one taken from the repository root, where install.sh
/// resolves it too), else `target/`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root().join("target"), |dir| root().join(dir))
}

/// Where install.sh put the peers.
pub fn peers_dir() -> PathBuf {
    target_dir().join("peers")
}

impl Lang {
    /// What the peer needs that is not there.
    pub fn missing(self) -> Vec<String> {
        let files: &[&str] = match self {
            Lang::Python => &["venv/bin/python"],
            Lang::Node => &[
                "node/node_modules/ws",
                "node/node_modules/cbor-x",
                "node/node_modules/@msgpack/msgpack",
            ],
        };
        let peers = peers_dir();
        let mut missing: Vec<String> = files
            .iter()
            .map(|file| peers.join(file))
            .filter(|path| !path.exists())
            .map(|path| path.display().to_string())
            .collect();
        if self == Lang::Node && !on_path("node") {
            missing.push("node on the PATH".to_owned());
        }
        missing
    }

    pub fn command(self) -> Command {
        let (program, script): (PathBuf, _) = match self {
            Lang::Python => (peers_dir().join("venv/bin/python"), "peer.py"),
            Lang::Node => ("node".into(), "peer.mjs"),
        };
        let mut command = Command::new(program);
        match self {
            Lang::Python => {
                command.arg("-u");
            }
            // peer.mjs looks for its packages under target/peers; NODE_PATH is where node
            // looks next, which finds them under CARGO_TARGET_DIR too.
            Lang::Node => {
                command.env("NODE_PATH", peers_dir().join("node/node_modules"));
            }
        }
        command.arg(root().join("tests/peers").join(script));
        command
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Fails the test, saying how to install it, when `lang`'s peer is not installed: a test that
/// did not run must not count as passed.
pub fn require(lang: Lang) {
    let missing = lang.missing();
    assert!(
        missing.is_empty(),
        "the {lang:?} peer is not installed (missing: {}); install the peers with \
         `bash tests/peers/install.sh` (with the same CARGO_TARGET_DIR as the tests, if set)",
        missing.join(", ")
    );
}

/// A running peer process, killed when dropped.
pub struct Peer {
    name: String,
    stdout: Lines<BufReader<ChildStdout>>,
    _child: Child,
}

impl Peer {
    pub fn start(lang: Lang, args: &[&str]) -> Peer {
        let name = format!("{lang:?} {}", args.join(" "));
        let mut child = lang
            .command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start the {name} peer: {e}"));
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        Peer {
            name,
            stdout,
            _child: child,
        }
    }

    pub async fn line(&mut self, what: &str) -> String {
        within(what, self.stdout.next_line())
            .await
            .expect("read the peer's stdout")
            .unwrap_or_else(|| panic!("the {} peer exited before {what}", self.name))
    }

    /// The URL a peer server listens on.
    pub async fn listening(&mut self) -> String {
        let line = self.line("the peer server listening").await;
        match line.strip_prefix("listening on ") {
            Some(url) => url.to_owned(),
            None => panic!("the {} peer said {line:?}", self.name),
        }
    }

    /// The close frame the peer received on a connection that ended, as it reports it.
    pub async fn closed(&mut self) -> (u16, String) {
        #[derive(Deserialize)]
        struct Closed {
            event: String,
            code: u16,
            reason: String,
        }
        let line = self.line("the peer reporting a closed connection").await;
        let closed: Closed = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the {} peer said {line:?}: {e}", self.name));
        assert_eq!(closed.event, "closed", "{line}");
        (closed.code, closed.reason)
    }
}
