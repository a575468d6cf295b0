//! Independent peers (Python and Node), installed by `tests/peers/install.sh`: whether they
//! are there, and running one as a child process.

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

impl Lang {
    /// What the peer needs that is not there.
    pub fn missing(self) -> Vec<String> {
        let files: &[&str] = match self {
            Lang::Python => &["target/peers/venv/bin/python"],
            Lang::Node => &[
                "target/peers/node/node_modules/ws",
                "target/peers/node/node_modules/cbor-x",
                "target/peers/node/node_modules/@msgpack/msgpack",
            ],
        };
        let mut missing: Vec<String> = files
            .iter()
            .filter(|file| !root().join(file).exists())
            .map(|file| file.to_string())
            .collect();
        if self == Lang::Node && !on_path("node") {
            missing.push("node on the PATH".to_owned());
        }
        missing
    }

    pub fn command(self) -> Command {
        let (program, script): (PathBuf, _) = match self {
            Lang::Python => (root().join("target/peers/venv/bin/python"), "peer.py"),
            Lang::Node => ("node".into(), "peer.mjs"),
        };
        let mut command = Command::new(program);
        if self == Lang::Python {
            command.arg("-u");
        }
        command.arg(root().join("tests/peers").join(script));
        command
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Whether `lang`'s peer is installed. When it is not, this fails the test under
/// `TYPED_WS_REQUIRE_PEERS=1`, and otherwise says on stderr that the test is skipped.
pub fn installed(lang: Lang) -> bool {
    let missing = lang.missing();
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "the {lang:?} peer is not installed (missing: {}); run `bash tests/peers/install.sh`",
        missing.join(", ")
    );
    if std::env::var("TYPED_WS_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!("{why}");
    }
    eprintln!("skipped: {why}");
    false
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
