//! `typed-ws connect --reconnect`: through a `typed-ws serve` killed and restarted on the
//! same port, and against the refusals and closes it must not retry.
#![cfg(all(unix, feature = "cli"))]

use std::future::Future;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpListener;
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use typed_ws::{CloseCode, CloseReason, Config, JsonConverter, Server};

const BIN: &str = env!("CARGO_BIN_EXE_typed-ws");

/// Every await on a process or the network is bounded by this.
const LIMIT: Duration = Duration::from_secs(10);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(LIMIT, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {LIMIT:?}: {what}"),
    }
}

/// A running `typed-ws serve`, killed when dropped.
struct Serve {
    child: Child,
    /// `127.0.0.1:PORT`.
    addr: String,
}

impl Serve {
    async fn start(addr: &str, args: &[&str]) -> Serve {
        let mut child = Command::new(BIN)
            .args(["serve", "--addr", addr])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start typed-ws serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let line = within(
            "the listening line",
            BufReader::new(stdout).lines().next_line(),
        )
        .await
        .expect("read serve's stdout")
        .expect("serve ended before it was ready");
        let url = line
            .strip_prefix("listening on ws://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        let addr = url.split('/').next().expect("an address").to_owned();
        Serve { child, addr }
    }

    async fn kill(mut self) {
        within("kill -9", self.child.kill()).await.expect("kill");
    }
}

/// A running `typed-ws connect --reconnect`, fed and read line by line.
struct Connect {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Lines<BufReader<ChildStderr>>,
}

impl Connect {
    fn start(url: &str) -> Connect {
        let mut child = Command::new(BIN)
            .args(["connect", url, "--reconnect"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start typed-ws connect");
        Connect {
            stdin: child.stdin.take(),
            stdout: BufReader::new(child.stdout.take().expect("stdout")).lines(),
            stderr: BufReader::new(child.stderr.take().expect("stderr")).lines(),
            child,
        }
    }

    async fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        within(
            "writing stdin",
            stdin.write_all(format!("{line}\n").as_bytes()),
        )
        .await
        .expect("write stdin");
    }

    async fn stdout_line(&mut self) -> String {
        within("a stdout line", self.stdout.next_line())
            .await
            .expect("read stdout")
            .expect("stdout ended")
    }

    async fn stderr_line(&mut self) -> String {
        within("a stderr line", self.stderr.next_line())
            .await
            .expect("read stderr")
            .expect("stderr ended")
    }

    /// Ends stdin and gives the exit code and the rest of stderr.
    async fn finish(mut self) -> (Option<i32>, Vec<String>) {
        drop(self.stdin.take());
        let mut rest = Vec::new();
        while let Some(line) = within("stderr's end", self.stderr.next_line())
            .await
            .expect("read stderr")
        {
            rest.push(line);
        }
        let status = within("the exit", self.child.wait()).await.expect("wait");
        (status.code(), rest)
    }
}

#[tokio::test]
async fn connect_reconnect_rides_out_a_server_restart_and_says_so_on_stderr() {
    let server = Serve::start("127.0.0.1:0", &[]).await;
    let addr = server.addr.clone();
    let mut connect = Connect::start(&format!("ws://{addr}/"));
    assert_eq!(connect.stderr_line().await, "typed-ws: connected");
    connect.send(r#"{"n":1}"#).await;
    assert_eq!(connect.stdout_line().await, r#"{"n":1}"#);

    server.kill().await;
    let lost = connect.stderr_line().await;
    assert!(
        lost.starts_with("typed-ws: connection lost: ")
            && lost.contains("; reconnecting in ")
            && lost.ends_with("s (attempt 1)"),
        "{lost}"
    );
    let _server = Serve::start(&addr, &[]).await;
    // Sent once the client is connected again.
    connect.send(r#"{"n":2}"#).await;
    loop {
        let line = connect.stderr_line().await;
        if line == "typed-ws: connected" {
            break;
        }
        assert!(
            line.starts_with("typed-ws: attempt ") && line.contains("; reconnecting in "),
            "{line}"
        );
    }
    assert_eq!(connect.stdout_line().await, r#"{"n":2}"#);
    let (code, rest) = connect.finish().await;
    assert_eq!((code, rest), (Some(0), Vec::<String>::new()));
}

#[tokio::test]
async fn connect_reconnect_does_not_retry_a_404() {
    let server = Serve::start("127.0.0.1:0", &["--path", "/a"]).await;
    let connect = Connect::start(&format!("ws://{}/b", server.addr));
    let (code, stderr) = connect.finish().await;
    assert_eq!(code, Some(1), "{stderr:?}");
    assert!(
        matches!(stderr.as_slice(), [line] if line.starts_with("typed-ws: cannot connect") && line.contains("404")),
        "{stderr:?}"
    );
}

#[tokio::test]
async fn connect_reconnect_does_not_retry_a_1008_close() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("addr"));
    let server = Server::new(Config::new().converter(JsonConverter));
    tokio::spawn(async move {
        server
            .serve(listener, |mut session| async move {
                let why = CloseReason::new(CloseCode::PolicyViolation, "go away");
                let _ = session.close(why).await;
            })
            .await
    });
    let mut connect = Connect::start(&url);
    assert_eq!(connect.stderr_line().await, "typed-ws: connected");
    let last = connect.stderr_line().await;
    assert!(
        last.contains("the server closed the session with 1008") && last.contains("go away"),
        "{last}"
    );
    let (code, rest) = connect.finish().await;
    assert_eq!((code, rest), (Some(3), Vec::<String>::new()));
}
