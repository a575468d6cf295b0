//! Safe by default: a server built with `Config::new()` against peers that flood, stay silent,
//! never read, or vanish. The default deadlines are checked on tokio's paused clock over
//! in-memory pipes, so minutes of protocol time take milliseconds; the HTTP limits, the
//! connection limit and the failure reports over loopback TCP.

use crate::common;

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use typed_ws::{
    CloseCode, Compression, Config, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_SEND_TIMEOUT,
    DEFAULT_TIMEOUT, Error, Failure, Frame, Server, Session, Stage,
};

use common::raw::{PING, encode_frame};
use common::within;

/// The opening request of a client, with a fixed key.
fn upgrade_request(path: &str) -> String {
    upgrade_request_with(path, "")
}

/// The opening request of a client, with `headers` (each ending in CRLF) added.
fn upgrade_request_with(path: &str, headers: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n"
    )
}

/// What a client adds to its request to offer permessage-deflate.
const OFFER_DEFLATE: &str = "Sec-WebSocket-Extensions: permessage-deflate\r\n";

/// A server session with permessage-deflate agreed, on one end of an in-memory pipe whose
/// other end did the client's handshake by hand and is in the caller's hands.
async fn compressed_duplex_pair<C: typed_ws::Converter>(
    config: Config<C>,
    buffer: usize,
) -> (Session<C>, DuplexStream) {
    let (server_io, mut client) = tokio::io::duplex(buffer);
    let server = Server::new(config.compression(Compression::new()));
    let accept = tokio::spawn(async move { server.accept(server_io).await });
    within(
        "request",
        client.write_all(upgrade_request_with("/", OFFER_DEFLATE).as_bytes()),
    )
    .await
    .expect("request");
    let head = within("handshake response", read_head(&mut client)).await;
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-extensions: permessage-deflate"),
        "{head}"
    );
    let session = within("accept", accept)
        .await
        .expect("task")
        .expect("server handshake");
    assert!(session.compression().is_some());
    (session, client)
}

/// Reads an HTTP response head (up to the blank line).
async fn read_head(io: &mut (impl AsyncRead + Unpin)) -> String {
    let mut head = Vec::new();
    let mut byte = [0; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match io.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A server session on one end of an in-memory pipe, and the client's tokio-tungstenite
/// stream on the other; the client is polled only when the test polls it.
async fn duplex_pair<C: typed_ws::Converter>(
    config: Config<C>,
    buffer: usize,
) -> (Session<C>, tokio_tungstenite::WebSocketStream<DuplexStream>) {
    let (server_io, client_io) = tokio::io::duplex(buffer);
    let server = Server::new(config);
    let (session, client) = tokio::join!(
        server.accept(server_io),
        tokio_tungstenite::client_async("ws://localhost/hardening", client_io),
    );
    (
        session.expect("server handshake"),
        client.expect("client handshake").0,
    )
}

// ---- the default deadlines, on the paused clock ----

#[tokio::test(start_paused = true)]
async fn by_default_a_vanished_peer_is_released_within_a_minute() {
    let (session, _client_never_polled) = duplex_pair(Config::new(), 64 << 10).await;
    released_at_the_timeout(session).await;
}

#[tokio::test(start_paused = true)]
async fn a_vanished_peer_of_a_compressing_session_is_released_within_a_minute() {
    let (session, _client_never_polled) = compressed_duplex_pair(Config::new(), 64 << 10).await;
    released_at_the_timeout(session).await;
}

async fn released_at_the_timeout(mut session: Session) {
    let start = Instant::now();
    let error = session.receive().await.expect_err("the peer never answers");
    let took = start.elapsed();
    assert!(
        matches!(error, Error::Timeout(after) if after == DEFAULT_TIMEOUT),
        "{error:?}"
    );
    assert!(
        took >= DEFAULT_TIMEOUT && took < Duration::from_secs(60),
        "released after {took:?}"
    );
    let reason = session.close_reason().expect("closed");
    assert_eq!(reason.code, CloseCode::InternalError);
    assert!(reason.reason.contains("no frame from the peer"), "{reason}");
}

#[tokio::test(start_paused = true)]
async fn by_default_a_live_peer_that_only_answers_pings_stays_connected() {
    let (mut session, mut client) = duplex_pair(Config::new(), 64 << 10).await;
    // tungstenite answers the server's pings as it reads them.
    let client = tokio::spawn(async move { while let Some(Ok(_)) = client.next().await {} });
    let mut pongs = 0;
    let idle = tokio::time::timeout(Duration::from_secs(300), async {
        loop {
            match session.receive().await {
                Ok(Frame::Pong(_)) => pongs += 1,
                other => return other,
            }
        }
    })
    .await;
    assert!(idle.is_err(), "an idle but live peer was dropped: {idle:?}");
    assert!(pongs >= 10, "only {pongs} pongs in 300 s");
    assert_eq!(session.close_reason(), None);
    client.abort();
}

#[tokio::test(start_paused = true)]
async fn by_default_a_silent_client_is_dropped_at_the_handshake_deadline() {
    let (server_io, _silent_client) = tokio::io::duplex(4096);
    let start = Instant::now();
    let error = Server::new(Config::new())
        .accept(server_io)
        .await
        .expect_err("no request ever came");
    assert!(
        matches!(error, Error::HandshakeTimeout(after) if after == DEFAULT_HANDSHAKE_TIMEOUT),
        "{error:?}"
    );
    assert!(error.is_timeout());
    assert_eq!(start.elapsed(), DEFAULT_HANDSHAKE_TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn by_default_a_peer_that_does_not_read_is_dropped_at_the_send_deadline() {
    let config = Config::new().converter(typed_ws::JsonConverter);
    let (session, _client_never_polled) = duplex_pair(config, 64 << 10).await;
    dropped_at_the_send_deadline(session, "x".repeat(32 << 10)).await;
}

#[tokio::test(start_paused = true)]
async fn a_compressing_session_whose_peer_does_not_read_is_dropped_at_the_send_deadline() {
    let config = Config::new().converter(typed_ws::JsonConverter);
    let (session, _client_never_polled) = compressed_duplex_pair(config, 64 << 10).await;
    // Text that does not compress, so that the pipe fills.
    let noise = common::rng::Rng::new(3).word(32 << 10, 32 << 10);
    dropped_at_the_send_deadline(session, noise).await;
}

/// Sends messages of `text` until the send deadline ends the session.
async fn dropped_at_the_send_deadline(mut session: Session<typed_ws::JsonConverter>, text: String) {
    let big = common::ChatMessage {
        text,
        ..common::chat(1)
    };
    let start = Instant::now();
    let error = loop {
        if let Err(e) = session.send_serialized(&big).await {
            break e;
        }
    };
    let took = start.elapsed();
    assert!(
        matches!(error, Error::Timeout(after) if after == DEFAULT_SEND_TIMEOUT),
        "{error:?}"
    );
    // Before the silence timeout could have ended it.
    assert!(
        took >= DEFAULT_SEND_TIMEOUT && took < DEFAULT_TIMEOUT,
        "dropped after {took:?}"
    );
    let reason = session.close_reason().expect("closed");
    assert_eq!(reason.code, CloseCode::InternalError);
    assert!(reason.reason.contains("did not read"), "{reason}");
}

// ---- ping floods ----

/// The server's end of a pipe, counting the bytes the server read.
struct Counting {
    io: DuplexStream,
    read: Arc<AtomicUsize>,
}

impl AsyncRead for Counting {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.io).poll_read(cx, buf);
        self.read
            .fetch_add(buf.filled().len() - before, Ordering::Relaxed);
        poll
    }
}

impl AsyncWrite for Counting {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A peer sends up to a million 125-byte pings and never reads a pong. The server stops
/// reading once its pongs back up, so the flooder stalls after a bounded number of bytes, and
/// the send deadline then ends the session. `receiving`: whether the application is receiving
/// (otherwise only the watchdog reads).
async fn ping_flood(receiving: bool, compressed: bool) {
    let (server_io, mut attacker) = tokio::io::duplex(64 << 10);
    let read = Arc::new(AtomicUsize::new(0));
    let config = Config::new()
        .send_timeout(Duration::from_secs(1))
        .ping_interval(Duration::from_millis(50));
    let (config, offer) = if compressed {
        (config.compression(Compression::new()), OFFER_DEFLATE)
    } else {
        (config, "")
    };
    let server = Server::new(config);
    let io = Counting {
        io: server_io,
        read: read.clone(),
    };
    let accept = tokio::spawn(async move { server.accept(io).await });
    attacker
        .write_all(upgrade_request_with("/", offer).as_bytes())
        .await
        .expect("request");
    let head = within("handshake response", read_head(&mut attacker)).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(head.contains("permessage-deflate"), compressed, "{head}");
    let mut session = within("accept", accept)
        .await
        .expect("task")
        .expect("handshake");
    let ended = tokio::spawn(async move {
        if !receiving {
            // Only the watchdog reads until it ends the session.
            while session.close_reason().is_none() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // What it read ahead comes first, then how the session ended.
        loop {
            if let Err(e) = session.receive().await {
                return e;
            }
        }
    });

    let batch = encode_frame(true, PING, &[0x55; 125], true).repeat(512);
    let mut sent = 0;
    while sent < 1_000_000 {
        match tokio::time::timeout(Duration::from_millis(500), attacker.write_all(&batch)).await {
            Ok(Ok(())) => sent += 512,
            // Stalled (the server stopped reading) or gone (the send deadline).
            Ok(Err(_)) | Err(_) => break,
        }
    }
    let taken = read.load(Ordering::Relaxed);
    assert!(
        sent < 1_000_000,
        "the server read all {sent} pings without its pongs being read"
    );
    assert!(
        taken < 1 << 20,
        "the server read {taken} bytes of pings while none of its pongs were read"
    );
    let error = within("the send deadline", ended).await.expect("task");
    assert!(matches!(error, Error::Timeout(_)), "{error:?}");
}

#[tokio::test]
async fn a_ping_flood_against_a_receiving_session_stays_bounded() {
    ping_flood(true, false).await;
}

#[tokio::test]
async fn a_ping_flood_against_a_compressing_session_stays_bounded() {
    ping_flood(true, true).await;
}

#[tokio::test]
async fn a_ping_flood_against_an_idle_session_stays_bounded() {
    ping_flood(false, false).await;
}

// ---- the opening handshake over TCP ----

/// Serves `config` on a free loopback port with an echo handler, reporting failures on the
/// returned channel.
async fn serve_reporting(
    config: Config,
) -> (std::net::SocketAddr, mpsc::UnboundedReceiver<Failure>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let server = Server::new(config).on_failure(move |failure| {
        let _ = tx.send(failure);
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { server.serve(listener, common::echo).await });
    (addr, rx)
}

/// Reads until the server ends the connection; returns how long that took.
async fn until_dropped(tcp: &mut TcpStream) -> Duration {
    let start = Instant::now();
    let mut buf = [0; 1024];
    within("the server drops the connection", async {
        while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
    start.elapsed()
}

#[tokio::test]
async fn a_silent_connection_is_dropped_at_the_handshake_deadline_and_reported() {
    let deadline = Duration::from_millis(300);
    let (addr, mut failures) = serve_reporting(Config::new().handshake_timeout(deadline)).await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let tasks = metrics.num_alive_tasks();

    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let took = until_dropped(&mut silent).await;
    assert!(
        took >= deadline - Duration::from_millis(50),
        "dropped after {took:?}"
    );

    let failure = within("the failure report", failures.recv())
        .await
        .expect("reported");
    assert_eq!(failure.stage, Stage::Handshake);
    assert_eq!(failure.peer, silent.local_addr().expect("addr"));
    assert!(matches!(failure.error, Error::HandshakeTimeout(d) if d == deadline));
    // The connection's task is gone with it.
    within("the connection task ends", async {
        while metrics.num_alive_tasks() > tasks {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_client_trickling_its_request_is_dropped_at_the_handshake_deadline() {
    let deadline = Duration::from_millis(400);
    let (addr, _failures) = serve_reporting(Config::new().handshake_timeout(deadline)).await;
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\n").await.expect("write");
    let trickle = async {
        for i in 0.. {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if slow
                .write_all(format!("X-{i}: a\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    };
    let start = Instant::now();
    within("the trickling client is dropped", trickle).await;
    assert!(start.elapsed() >= deadline - Duration::from_millis(100));
}

/// Sends `request` and returns the status line of the answer.
async fn status_of(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    // The server may answer before it has read everything; the answer is what counts.
    let _ = within("send the request", tcp.write_all(request)).await;
    let head = within("the answer", read_head(&mut tcp)).await;
    head.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn an_oversized_request_line_gets_414() {
    let (addr, mut failures) = serve_reporting(Config::new()).await;
    let request = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(9000));
    let status = status_of(addr, request.as_bytes()).await;
    assert!(status.starts_with("HTTP/1.1 414"), "{status}");
    let failure = within("report", failures.recv()).await.expect("reported");
    assert_eq!(failure.error.status().map(u16::from), Some(414));
}

#[tokio::test]
async fn an_oversized_request_head_gets_431() {
    let (addr, _failures) = serve_reporting(Config::new()).await;
    let mut request = upgrade_request("/").replace("\r\n\r\n", "\r\n");
    request.push_str(&format!("X-Big: {}\r\n", "b".repeat(70 << 10)));
    let status = status_of(addr, request.as_bytes()).await;
    assert!(status.starts_with("HTTP/1.1 431"), "{status}");
}

#[tokio::test]
async fn too_many_header_fields_get_431() {
    let (addr, _failures) = serve_reporting(Config::new()).await;
    let mut request = upgrade_request("/").replace("\r\n\r\n", "\r\n");
    for i in 0..200 {
        request.push_str(&format!("X-{i}: a\r\n"));
    }
    request.push_str("\r\n");
    let status = status_of(addr, request.as_bytes()).await;
    assert!(status.starts_with("HTTP/1.1 431"), "{status}");
}

// ---- the connection limit ----

#[tokio::test]
async fn max_connections_holds_further_clients_in_the_accept_queue() {
    let (addr, _failures) = serve_reporting(Config::new().max_connections(2)).await;
    let mut first = common::raw::RawPeer::connect(addr, "/").await;
    let _second = common::raw::RawPeer::connect(addr, "/").await;

    let mut third = TcpStream::connect(addr)
        .await
        .expect("the kernel accepts it");
    third
        .write_all(upgrade_request("/").as_bytes())
        .await
        .expect("request");
    let mut byte = [0; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), third.read(&mut byte)).await;
    assert!(early.is_err(), "a third connection was served: {early:?}");

    first.write_close(1000, "").await.expect("close");
    let head = within(
        "the third handshake once a slot is free",
        read_head(&mut third),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
}

// ---- failure reports ----

#[tokio::test]
async fn a_failed_session_is_reported_with_the_peer_and_a_short_reason() {
    let (tx, mut failures) = mpsc::unbounded_channel();
    let (ended_tx, mut ended) = mpsc::unbounded_channel();
    let server =
        Server::new(Config::new().converter(typed_ws::JsonConverter)).on_failure(move |failure| {
            let _ = tx.send(failure);
        });
    assert_eq!(format!("{server:?}"), "Server { on_failure: true, .. }");
    assert_eq!(
        format!("{:?}", Server::new(Config::new())),
        "Server { on_failure: false, .. }"
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        server
            .serve(listener, move |mut session| {
                let ended = ended_tx.clone();
                async move {
                    let received = session.receive_deserialized::<common::ChatMessage>().await;
                    if let Err(e) = &received
                        && let Some(code) = e.close_code()
                    {
                        let _ = session
                            .close(typed_ws::CloseReason::new(code, e.to_string()))
                            .await;
                    }
                    let _ = ended.send(received.err());
                }
            })
            .await
    });
    // A client that leaves without a close frame is not a failure. Its report, had there been
    // one, would be made as its handler returns: before the next client has even connected.
    let leaving = common::raw::RawPeer::connect(addr, "/").await;
    leaving.reset_connection();
    let gone = within("the session of the client that left", ended.recv()).await;
    assert!(
        matches!(gone, Some(Some(ref e)) if e.close_code().is_none()),
        "{gone:?}"
    );
    let mut peer = common::raw::RawPeer::connect(addr, "/").await;
    // serde_json quotes the string it could not take: 60 KiB of the peer's choosing.
    let payload = format!(r#"{{"id":"{}"}}"#, "z".repeat(60 << 10));
    peer.write_frame(true, common::raw::TEXT, payload.as_bytes())
        .await
        .expect("send");
    let close = within("close", peer.expect_frame()).await;
    assert_eq!(close.close_code(), Some(1007));
    peer.write_close(1007, "").await.expect("answer the close");

    let failure = within("report", failures.recv()).await.expect("reported");
    assert_eq!(failure.stage, Stage::Session);
    assert_eq!(failure.peer, peer.local_addr());
    assert!(
        matches!(&failure.error, Error::Closed(reason) if reason.code == CloseCode::InvalidPayload)
    );
    let text = failure.to_string();
    assert!(text.len() < 400, "{} bytes: {text}", text.len());
    assert!(
        text.starts_with(&format!("{}: session failed: ", peer.local_addr()))
            && text.contains("1007"),
        "{text}"
    );
}

#[test]
fn a_decode_error_quotes_at_most_200_bytes_of_the_payload() {
    use typed_ws::Converter;
    let payload = format!(r#"{{"id":"{}"}}"#, "z".repeat(1 << 20));
    let frame = Frame::Text(payload.into());
    let error = typed_ws::JsonConverter
        .deserialize::<common::ChatMessage>(&frame)
        .expect_err("id is no string");
    let text = error.to_string();
    assert!(text.len() < 400, "{} bytes: {text}", text.len());
    assert!(text.contains("bytes in all"), "{text}");
}

// ---- running out of file descriptors ----

/// Clock ticks of CPU time (user + system) a process has used so far.
#[cfg(all(feature = "cli", target_os = "linux"))]
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    // The command name in parentheses may hold spaces; the fields after it do not.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("comm") + 2..]
        .split(' ')
        .collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

#[cfg(all(feature = "cli", target_os = "linux"))]
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// A `typed-ws serve` limited to 32 file descriptors, flooded with more silent connections
/// than it can accept: while `accept` fails with EMFILE the loop must neither spin nor stop,
/// and once connections end a well-behaved client is served.
#[cfg(all(feature = "cli", target_os = "linux"))]
#[tokio::test]
async fn running_out_of_file_descriptors_neither_spins_nor_stalls_the_accept_loop() {
    use tokio::io::AsyncBufReadExt;
    const FD_LIMIT: usize = 32;

    let mut child = tokio::process::Command::new("sh")
        .args(["-c", &format!("ulimit -n {FD_LIMIT} && exec \"$0\" \"$@\"")])
        .arg(env!("CARGO_BIN_EXE_typed-ws"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start typed-ws serve");
    let pid = child.id().expect("pid");
    let stdout = child.stdout.take().expect("piped stdout");
    let line = within(
        "the listening line",
        tokio::io::BufReader::new(stdout).lines().next_line(),
    )
    .await
    .expect("read stdout")
    .expect("serve ended before it was ready");
    let url = line.strip_prefix("listening on ").expect("listening line");
    let addr: std::net::SocketAddr = url["ws://".len()..].trim_end_matches('/').parse().unwrap();

    let mut silent = Vec::new();
    for _ in 0..2 * FD_LIMIT {
        silent.push(within("connect", TcpStream::connect(addr)).await.unwrap());
    }
    within("the server to run out of descriptors", async {
        while open_fds(pid) < FD_LIMIT {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    let before = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used = cpu_ticks(pid) - before;
    // A loop that retries `accept` at once would use the whole second (100 ticks).
    assert!(used < 30, "{used} ticks of CPU in one second at EMFILE");
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the server exited"
    );

    drop(silent);
    let (mut ws, _) = within(
        "a handshake once descriptors are free",
        tokio_tungstenite::connect_async(url),
    )
    .await
    .expect("handshake");
    use futures_util::SinkExt;
    within(
        "send",
        ws.send(tokio_tungstenite::tungstenite::Message::text("{\"n\":1}")),
    )
    .await
    .expect("send");
    let echo = within("the echo", ws.next())
        .await
        .expect("a message")
        .expect("ok");
    assert_eq!(echo.into_text().expect("text").as_str(), "{\"n\":1}");
}
