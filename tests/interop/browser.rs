//! `examples/chat` in a real browser: headless Chromium (Debian's `chromium`, installed by
//! `tests/peers/install.sh`), driven over the DevTools protocol by `tests/peers/chromium.py`.
//! Two pages join, one speaking MessagePack and one JSON, exchange messages, see them in one
//! order, one sees the other leave, and after a server restart the page reconnects on its own.
//! Every connection runs with permessage-deflate, which Chromium offers and the chat accepts.
//! Screenshots go to `target/browser/` (under `CARGO_TARGET_DIR` when set).
#![cfg(all(feature = "axum", feature = "json", feature = "msgpack"))]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;

use crate::common;

/// What a page showed, as `chromium.py` read it from the DOM.
#[derive(Debug, Deserialize)]
struct Shown {
    me: String,
    status: String,
    protocol: String,
    extensions: String,
    online: Vec<String>,
    log: Vec<String>,
    messages: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Sent {
    alice: Vec<String>,
    bob: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Report {
    alice_joined: Shown,
    bob_joined: Shown,
    alice_sees_bob: Shown,
    sent: Sent,
    alice_after_messages: Shown,
    bob_after_messages: Shown,
    alice_cut: Shown,
    missed: Vec<String>,
    alice_back: Shown,
    alice_after_bob_left: Shown,
    alice_server_gone: Shown,
    alice_after_restart: Shown,
}

fn chromium() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("chromium"))
            .find(|path| path.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "chromium is not installed: `bash tests/peers/install.sh` installs Debian's chromium \
             package; this test does not pass without a browser"
        )
    })
}

/// Runs the driver, killing it if it outlives `limit`; gives its report.
fn drive(limit: Duration) -> Report {
    let screenshots = common::peers::target_dir().join("browser");
    let mut child = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/peers/chromium.py"
        ))
        .arg("--chat")
        .arg(common::examples::build("chat"))
        .arg("--screenshots")
        .arg(&screenshots)
        .arg("--chromium")
        .arg(chromium())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start python3 tests/peers/chromium.py");
    // Read on a thread of its own, so that a report larger than the pipe cannot stall it.
    let mut out = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut stdout = String::new();
        std::io::Read::read_to_string(&mut out, &mut stdout).map(|_| stdout)
    });
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium.py") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("chromium.py took longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = reader
        .join()
        .expect("the reading thread")
        .expect("read chromium.py's report");
    assert!(
        status.success(),
        "chromium.py failed ({status}); its stderr says why"
    );
    for png in [
        "chat-alice.png",
        "chat-bob.png",
        "chat-alice-after-restart.png",
    ] {
        let bytes = std::fs::read(screenshots.join(png)).expect("a screenshot");
        assert!(bytes.starts_with(b"\x89PNG"), "{png} is not a PNG");
    }
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("chromium.py printed {stdout:?}: {e}"))
}

/// The messages of one author, in the order a page shows them.
fn by(author: &str, messages: &[String]) -> Vec<String> {
    let prefix = format!("{author}: ");
    messages
        .iter()
        .filter_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
        .collect()
}

#[test]
fn two_browser_pages_chat_in_msgpack_and_json_and_see_each_other_leave_and_reconnect() {
    let report = drive(Duration::from_secs(120));

    // Each page got the codec it asked for, by subprotocol.
    assert_eq!(report.alice_joined.me, "alice");
    assert_eq!(report.alice_joined.protocol, "(msgpack)");
    // Chromium offers permessage-deflate on every connection and the server took it: the
    // messages below went through it both ways.
    assert_eq!(report.alice_joined.extensions, "permessage-deflate");
    assert_eq!(report.bob_joined.extensions, "permessage-deflate");
    assert_eq!(report.alice_joined.online, ["alice"]);
    assert_eq!(report.bob_joined.me, "bob");
    assert_eq!(report.bob_joined.protocol, "(json)");
    assert_eq!(report.bob_joined.online, ["alice", "bob"]);
    assert_eq!(report.alice_sees_bob.online, ["alice", "bob"]);
    assert_eq!(report.alice_sees_bob.log, ["bob joined"]);

    // Both pages show every message, in one order, each author's in the order sent, text
    // intact through both codecs.
    let alice = &report.alice_after_messages.messages;
    let bob = &report.bob_after_messages.messages;
    assert_eq!(alice, bob, "both pages show one history");
    assert_eq!(by("alice", alice), report.sent.alice);
    assert_eq!(by("bob", alice), report.sent.bob);
    assert_eq!(alice.len(), report.sent.alice.len() + report.sent.bob.len());

    // Alice's network dropped while bob spoke: her page came back on its own and shows what
    // she missed, after what she had, as bob's page does.
    assert_eq!(report.alice_cut.status, "reconnecting");
    let back = &report.alice_back;
    assert_eq!(
        back.messages[..alice.len()],
        alice[..],
        "what she had stays"
    );
    let missed: Vec<String> = report.missed.iter().map(|t| format!("bob: {t}")).collect();
    assert_eq!(
        back.messages[alice.len()..],
        missed[..],
        "then what she missed, once"
    );
    assert_eq!(back.online, ["bob", "alice"], "she came back after bob");
    let alice = &back.messages;

    // Bob's page closed: alice sees him leave.
    let left = &report.alice_after_bob_left;
    assert_eq!(left.log.last().map(String::as_str), Some("bob left"));
    assert_eq!(left.online, ["alice"]);
    assert_eq!(left.status, "connected");

    // The server restarted: the page noticed, came back, and was heard, keeping its history.
    assert_eq!(report.alice_server_gone.status, "reconnecting");
    let back = &report.alice_after_restart;
    assert_eq!(back.status, "connected");
    assert_eq!(back.protocol, "(msgpack)");
    assert_eq!(back.extensions, "permessage-deflate");
    assert_eq!(back.online, ["alice"]);
    assert_eq!(back.messages[..alice.len()], alice[..]);
    assert_eq!(
        back.messages[alice.len()..],
        ["alice: back after the restart"]
    );
}
