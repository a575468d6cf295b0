//! Hostile peers against sessions: garbage instead of a handshake, garbage after it, peers
//! that vanish or reset mid-message, a peer that never reads, and hostile servers against the
//! client. Each gives the documented error and close code, and the server keeps serving every
//! other session meanwhile. Oversize messages and invalid UTF-8 are in `limits.rs`.
#![cfg(feature = "json")]

mod common;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::raw::{self, RawPeer};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use typed_ws::*;

fn config() -> Config<JsonConverter> {
    Config::new().converter(JsonConverter)
}

/// xorshift64*: deterministic, so a failure reproduces from the seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

// ---- well-behaved clients ----

/// A typed client session on the echo route.
async fn good_client(addr: SocketAddr) -> Session<JsonConverter> {
    within(
        "a well-behaved client connects",
        Client::new(config()).web_socket_session(format!("ws://{addr}/echo")),
    )
    .await
    .expect("well-behaved client handshake")
}

/// One typed round trip: the echo gives back the same message.
async fn echo_round(session: &mut Session<JsonConverter>, id: u64) {
    within("a typed echo", async {
        session
            .send_serialized(&chat(id))
            .await
            .expect("send to echo");
        let back: ChatMessage = session.receive_deserialized().await.expect("receive echo");
        assert_eq!(back, chat(id));
    })
    .await;
}

/// A fresh client that does a few typed echoes and closes cleanly.
async fn fresh_client_echoes(addr: SocketAddr) {
    let mut session = good_client(addr).await;
    for id in 0..3 {
        echo_round(&mut session, id).await;
    }
    within(
        "close",
        session.close(CloseReason::new(CloseCode::Normal, "")),
    )
    .await
    .expect("clean close");
    assert_eq!(session.close_reason().unwrap().code, CloseCode::Normal);
}

// ---- a served server that reports what hostile peers did to its sessions ----

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Serves `config` on loopback with [`Server::serve`]: `/echo` echoes, every other path goes
/// to `hostile`.
async fn serve_routes<F, Fut>(config: Config<JsonConverter>, hostile: F) -> SocketAddr
where
    F: Fn(Session<JsonConverter>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    serve(Server::new(config), move |session| -> BoxFuture {
        if session.path() == Some("/echo") {
            Box::pin(echo(session))
        } else {
            Box::pin(hostile(session))
        }
    })
    .await
}

/// What a server session saw of a hostile peer: the frames it received, the error that ended
/// receiving, what the receive after that gave, and the close reason then.
#[derive(Debug)]
struct Seen {
    path: String,
    frames: Vec<Frame>,
    error: Error,
    again: Result<Frame, Error>,
    close_reason: Option<CloseReason>,
}

/// A served server whose non-echo sessions receive until an error and report it.
struct Probed {
    addr: SocketAddr,
    seen: mpsc::UnboundedReceiver<Seen>,
    early: Vec<Seen>,
}

impl Probed {
    async fn start(config: Config<JsonConverter>) -> Probed {
        let (tx, seen) = mpsc::unbounded_channel();
        let addr = serve_routes(config, move |mut session| {
            let tx = tx.clone();
            async move {
                let mut frames = Vec::new();
                let error = loop {
                    match session.receive().await {
                        Ok(frame) => frames.push(frame),
                        Err(e) => break e,
                    }
                };
                let again = session.receive().await;
                let _ = tx.send(Seen {
                    path: session.path().unwrap_or_default().to_owned(),
                    frames,
                    error,
                    again,
                    close_reason: session.close_reason(),
                });
            }
        })
        .await;
        Probed {
            addr,
            seen,
            early: Vec::new(),
        }
    }

    /// What the server session on `path` saw, once its receiving ended.
    async fn seen(&mut self, path: &str) -> Seen {
        if let Some(at) = self.early.iter().position(|s| s.path == path) {
            return self.early.swap_remove(at);
        }
        within(&format!("the server session on {path} ends"), async {
            loop {
                let seen = self.seen.recv().await.expect("the server is running");
                if seen.path == path {
                    return seen;
                }
                self.early.push(seen);
            }
        })
        .await
    }
}

/// A masked client frame with any first byte (FIN, reserved bits, opcode) and the length the
/// payload has.
fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = client_header(first, payload.len() as u64);
    let mask = [0x11, 0x22, 0x33, 0x44];
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// The header of a masked client frame claiming `len` payload bytes (mask 11 22 33 44).
fn client_header(first: u8, len: u64) -> Vec<u8> {
    let mut out = vec![first];
    match len {
        0..=125 => out.push(0x80 | len as u8),
        126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    out.extend_from_slice(&[0x11, 0x22, 0x33, 0x44]);
    out
}

/// Reads the server's close frame and checks its code, then that the server ends the
/// connection with nothing after it.
async fn expect_close_then_end(peer: &mut RawPeer, code: u16, what: &str) {
    let close = within(what, peer.expect_frame()).await;
    assert_eq!(close.opcode, raw::CLOSE, "{what}: {close:?}");
    assert!(!close.masked, "{what}: server frames are not masked");
    assert_eq!(close.close_code(), Some(code), "{what}: {close:?}");
    let (rest, _end) = within(what, peer.read_to_end()).await;
    assert!(
        rest.is_empty(),
        "{what}: bytes after the close frame: {rest:?}"
    );
}

// ---- 1. garbage instead of a handshake ----

/// What a client sends instead of a proper opening handshake.
#[derive(Debug, Clone, Copy)]
enum Opening {
    /// Seeded random bytes whose first byte cannot start an HTTP method.
    RandomBytes(u64),
    /// The start of a TLS ClientHello, as a TLS client talking to a plain port sends.
    TlsClientHello,
    /// A valid HTTP GET that is not an upgrade.
    PlainHttpGet,
    /// An upgrade request with every header right but the method.
    PostUpgrade,
    /// An upgrade request in HTTP/1.0.
    Http10Upgrade,
    /// An upgrade request for protocol version 8.
    WrongVersion,
    /// The first half of an upgrade request, then FIN.
    TruncatedThenEof,
    /// Nothing at all, then FIN.
    NothingThenEof,
    /// The first half of an upgrade request, then RST.
    TruncatedThenReset,
    /// A request head of 80 KiB that never ends (one header line).
    HugeHeaderSection,
    /// A complete head with 200 header lines, held open.
    TooManyHeaders,
}

const UPGRADE_HEADERS: &str = "Host: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

impl Opening {
    const ALL: [Opening; 11] = [
        Opening::RandomBytes(7),
        Opening::TlsClientHello,
        Opening::PlainHttpGet,
        Opening::PostUpgrade,
        Opening::Http10Upgrade,
        Opening::WrongVersion,
        Opening::TruncatedThenEof,
        Opening::NothingThenEof,
        Opening::TruncatedThenReset,
        Opening::HugeHeaderSection,
        Opening::TooManyHeaders,
    ];

    /// The error `Server::accept` gives: `Some(text)` for `Error::Handshake` with no status
    /// and a message containing `text`; `None` for `Error::Io` with `ConnectionReset`.
    fn expected(self) -> Option<&'static str> {
        Some(match self {
            Opening::RandomBytes(_) | Opening::TlsClientHello => "httparse error: invalid token",
            Opening::PlainHttpGet => "No \"Connection: upgrade\" header",
            Opening::PostUpgrade => "only GET is allowed",
            Opening::Http10Upgrade => "HTTP version must be 1.1 or higher",
            Opening::WrongVersion => "No \"Sec-WebSocket-Version: 13\" header",
            Opening::TruncatedThenEof | Opening::NothingThenEof => "Handshake not finished",
            Opening::TruncatedThenReset => return None,
            Opening::HugeHeaderSection => "the request head is over 65536 bytes",
            Opening::TooManyHeaders => "too many header fields",
        })
    }

    /// The HTTP status a server refuses the opening with: `Some` for a well-formed HTTP request
    /// that is no valid upgrade (RFC 6455 4.2.1 and 4.2.2), `None` where there is no request
    /// to answer.
    fn status(self) -> Option<u16> {
        match self {
            Opening::PlainHttpGet | Opening::Http10Upgrade => Some(400),
            Opening::PostUpgrade => Some(405),
            Opening::WrongVersion => Some(426),
            Opening::HugeHeaderSection | Opening::TooManyHeaders => Some(431),
            _ => None,
        }
    }

    /// A complete, well-formed HTTP request that is no valid upgrade: RFC 6455 section 4.2.1
    /// (4.2.2 for the version) wants an HTTP error response to it, so whether one comes is
    /// checked by [`a_well_formed_request_that_is_no_valid_upgrade_gets_an_http_error`]
    /// rather than here. The rest is no HTTP request to answer.
    fn is_refusable_request(self) -> bool {
        matches!(
            self,
            Opening::PlainHttpGet
                | Opening::PostUpgrade
                | Opening::Http10Upgrade
                | Opening::WrongVersion
                | Opening::HugeHeaderSection
                | Opening::TooManyHeaders
        )
    }

    /// Checks what came back on a connection the server refused: never a 101, and nothing
    /// at all where there was no request to answer.
    fn check_answer(self, back: &[u8]) {
        let text = String::from_utf8_lossy(back);
        assert!(
            !back.starts_with(b"HTTP/1.1 101"),
            "{self:?}: upgraded anyway: {text}"
        );
        if !self.is_refusable_request() {
            assert!(back.is_empty(), "{self:?}: the server answered {text:?}");
        }
    }

    /// Plays this opening on `tcp`; gives the stream back unless it was reset.
    async fn play(self, mut tcp: TcpStream) -> Option<TcpStream> {
        let truncated = format!("GET /chat HTTP/1.1\r\n{}", &UPGRADE_HEADERS[..40]);
        let bytes: Vec<u8> = match self {
            Opening::RandomBytes(seed) => {
                let mut bytes = Rng::new(seed).bytes(1024);
                // Bytes from 0x80 up are no token characters: httparse fails on the first.
                bytes[0] |= 0x80;
                bytes
            }
            Opening::TlsClientHello => {
                let mut hello = vec![0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1];
                hello.extend_from_slice(&[0x03, 0x03]);
                hello.extend(Rng::new(99).bytes(32));
                hello
            }
            Opening::PlainHttpGet => {
                b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n".to_vec()
            }
            Opening::PostUpgrade => format!("POST /chat HTTP/1.1\r\n{UPGRADE_HEADERS}\r\n").into(),
            Opening::Http10Upgrade => format!("GET /chat HTTP/1.0\r\n{UPGRADE_HEADERS}\r\n").into(),
            Opening::WrongVersion => format!(
                "GET /chat HTTP/1.1\r\n{}\r\n",
                UPGRADE_HEADERS.replace("Version: 13", "Version: 8")
            )
            .into(),
            Opening::TruncatedThenEof | Opening::TruncatedThenReset => truncated.into(),
            Opening::NothingThenEof => Vec::new(),
            Opening::HugeHeaderSection => {
                let mut head = b"GET /chat HTTP/1.1\r\nX-Padding: ".to_vec();
                head.resize(head.len() + 80 * 1024, b'a');
                head
            }
            Opening::TooManyHeaders => {
                let mut head = format!("GET /chat HTTP/1.1\r\n{UPGRADE_HEADERS}");
                for i in 0..200 {
                    head.push_str(&format!("X-Header-{i}: {i}\r\n"));
                }
                head.push_str("\r\n");
                head.into()
            }
        };
        // The server may refuse before it has read everything and close with RST; what the
        // write then says is no part of the test.
        let _ = tcp.write_all(&bytes).await;
        match self {
            Opening::TruncatedThenEof | Opening::NothingThenEof => {
                let _ = tcp.shutdown().await;
            }
            Opening::TruncatedThenReset => {
                tcp.set_zero_linger().expect("SO_LINGER 0");
                return None;
            }
            _ => {}
        }
        Some(tcp)
    }
}

/// Reads until the other end is gone (EOF or reset); gives every byte that came.
async fn read_until_gone(tcp: &mut TcpStream) -> Vec<u8> {
    let mut back = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return back,
            Ok(n) => back.extend_from_slice(&chunk[..n]),
        }
    }
}

fn assert_refused(opening: Opening, result: Result<Session<JsonConverter>, Error>) {
    let error = result.expect_err(&format!("{opening:?} must not give a session"));
    match (opening.expected(), &error) {
        (Some(text), Error::Handshake { status, message }) => {
            assert_eq!(*status, opening.status(), "{opening:?}: {error:?}");
            assert!(message.contains(text), "{opening:?}: {message:?}");
        }
        (None, Error::Io(e)) => {
            assert_eq!(
                e.kind(),
                io::ErrorKind::ConnectionReset,
                "{opening:?}: {e:?}"
            );
        }
        (_, other) => panic!("{opening:?}: wrong error {other:?}"),
    }
    assert_eq!(error.close_code(), None, "{opening:?}: no session to close");
}

#[tokio::test]
async fn accept_refuses_garbage_instead_of_a_handshake_with_the_precise_error() {
    for opening in Opening::ALL {
        let (listener, addr) = raw::listen().await;
        let server = Server::new(config());
        let accept = async {
            let (tcp, _) = listener.accept().await.expect("accept");
            server.accept(tcp).await
        };
        let client = async {
            let tcp = TcpStream::connect(addr).await.expect("connect");
            opening.play(tcp).await
        };
        let (result, tcp) = within(&format!("{opening:?}"), async {
            tokio::join!(accept, client)
        })
        .await;
        assert_refused(opening, result);
        // The server let the connection go.
        if let Some(mut tcp) = tcp {
            let back = within(
                &format!("{opening:?}: connection ends"),
                read_until_gone(&mut tcp),
            )
            .await;
            opening.check_answer(&back);
        }
    }
}

#[tokio::test]
async fn serve_drops_garbage_handshakes_and_keeps_serving() {
    let addr = serve_routes(config(), echo).await;
    let mut before = good_client(addr).await;
    echo_round(&mut before, 1).await;

    for (round, opening) in Opening::ALL.into_iter().enumerate() {
        let tcp = within("connect", TcpStream::connect(addr))
            .await
            .expect("connect");
        if let Some(mut tcp) = opening.play(tcp).await {
            let back = within(
                &format!("{opening:?}: the server drops the connection"),
                read_until_gone(&mut tcp),
            )
            .await;
            opening.check_answer(&back);
        }
        // The session that was open all along still works.
        echo_round(&mut before, 100 + round as u64).await;
    }
    // And a slow client that is still sending its request does not hold up others.
    let mut slow = within("connect", TcpStream::connect(addr))
        .await
        .expect("connect");
    within(
        "half a request",
        slow.write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n"),
    )
    .await
    .expect("write");
    echo_round(&mut before, 200).await;
    fresh_client_echoes(addr).await;
    drop(slow);
}

/// RFC 6455 section 4.2.1: a server that finds the client's handshake does not match the
/// description "MUST stop processing the client's handshake and return an HTTP response with
/// an appropriate error code (such as 400 Bad Request)"; section 4.2.2: for a version it does
/// not speak, "an appropriate HTTP error code (such as 426 Upgrade Required) and a
/// |Sec-WebSocket-Version| header field indicating the version(s) the server is capable of
/// understanding".
#[tokio::test]
async fn a_well_formed_request_that_is_no_valid_upgrade_gets_an_http_error() {
    let addr = serve_routes(config(), echo).await;
    let mut failures = Vec::new();
    for opening in [
        Opening::PlainHttpGet,
        Opening::PostUpgrade,
        Opening::Http10Upgrade,
        Opening::WrongVersion,
    ] {
        let tcp = within("connect", TcpStream::connect(addr))
            .await
            .expect("connect");
        let mut tcp = opening.play(tcp).await.expect("not reset");
        let back = within("the answer", read_until_gone(&mut tcp)).await;
        let head = String::from_utf8_lossy(&back).to_ascii_lowercase();
        let status_4xx = head.starts_with("http/1.1 4") || head.starts_with("http/1.0 4");
        let version_named = head.contains("\r\nsec-websocket-version: 13");
        if !status_4xx || (matches!(opening, Opening::WrongVersion) && !version_named) {
            failures.push(format!("{opening:?}: answered {head:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "refused without the HTTP error response RFC 6455 4.2.1/4.2.2 require:\n{}",
        failures.join("\n")
    );
}

// ---- 2. garbage after the handshake ----

#[tokio::test]
async fn protocol_violations_after_the_handshake_give_protocol_and_1002() {
    let mut server = Probed::start(config()).await;
    let mut other = good_client(server.addr).await;
    echo_round(&mut other, 0).await;

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "rsv1-text",
            client_frame(0x80 | 0x40 | raw::TEXT, b"hello"),
            "Reserved bits are non-zero",
        ),
        (
            "rsv2-rsv3-binary",
            client_frame(0x80 | 0x30 | raw::BINARY, &[1, 2, 3]),
            "Reserved bits are non-zero",
        ),
        (
            "data-opcode-3",
            client_frame(0x80 | 0x3, b"what"),
            "Encountered invalid opcode: 3",
        ),
        (
            "control-opcode-b",
            client_frame(0x80 | 0xb, b""),
            "Encountered invalid opcode: 11",
        ),
        (
            "continuation-without-start",
            client_frame(0x80 | raw::CONTINUE, b"orphan"),
            "Continue frame but nothing to continue",
        ),
        (
            "fragmented-ping",
            client_frame(raw::PING, b"half"),
            "Fragmented control frame",
        ),
        (
            "fragmented-close",
            client_frame(raw::CLOSE, &1000u16.to_be_bytes()),
            "Fragmented control frame",
        ),
        (
            "ping-of-126-bytes",
            client_frame(0x80 | raw::PING, &[7; 126]),
            "Control frame too big",
        ),
        (
            "pong-of-1000-bytes",
            client_frame(0x80 | raw::PONG, &[7; 1000]),
            "Control frame too big",
        ),
        (
            "new-message-inside-a-fragmented-one",
            [
                client_frame(raw::BINARY, b"first half"),
                client_frame(0x80 | raw::TEXT, b"interloper"),
            ]
            .concat(),
            "While waiting for more fragments received",
        ),
        (
            "close-with-one-byte",
            client_frame(0x80 | raw::CLOSE, &[0x03]),
            "Invalid close sequence",
        ),
    ];
    for (name, bytes, text) in cases {
        let path = format!("/probe/{name}");
        let mut peer = within("raw connect", RawPeer::connect(server.addr, &path)).await;
        within("garbage", peer.write_raw(&bytes))
            .await
            .expect("write");
        let seen = server.seen(&path).await;
        match &seen.error {
            Error::Protocol(message) => assert!(message.contains(text), "{name}: {message:?}"),
            other => panic!("{name}: expected Protocol, got {other:?}"),
        }
        assert!(seen.frames.is_empty(), "{name}: {:?}", seen.frames);
        assert_eq!(seen.error.close_code(), Some(CloseCode::ProtocolError));
        assert_eq!(
            seen.close_reason.as_ref().map(|r| r.code),
            Some(CloseCode::ProtocolError),
            "{name}"
        );
        match &seen.again {
            Err(Error::Closed(reason)) => assert_eq!(reason.code, CloseCode::ProtocolError),
            other => panic!("{name}: after the error, expected Closed(1002), got {other:?}"),
        }
        expect_close_then_end(&mut peer, 1002, name).await;
        echo_round(&mut other, 1).await;
    }
    fresh_client_echoes(server.addr).await;
}

#[tokio::test]
async fn a_frame_claiming_a_huge_length_gives_too_big_and_1009_without_waiting_for_it() {
    let mut server = Probed::start(config()).await;
    let mut other = good_client(server.addr).await;

    // Only the header is sent: the server must judge the frame by it.
    let cases: [(&str, u8, u64); 5] = [
        ("binary-2^63-1", 0x80 | raw::BINARY, i64::MAX as u64),
        ("binary-msb-set", 0x80 | raw::BINARY, u64::MAX),
        (
            "text-just-over",
            0x80 | raw::TEXT,
            DEFAULT_MAX_FRAME_SIZE as u64 + 1,
        ),
        // The frame limit is checked before the control frame limit.
        ("ping-1GiB", 0x80 | raw::PING, 1 << 30),
        ("continuation-1GiB", raw::CONTINUE, 1 << 30),
    ];
    for (name, first, len) in cases {
        let path = format!("/probe/{name}");
        let mut peer = within("raw connect", RawPeer::connect(server.addr, &path)).await;
        within("header", peer.write_raw(&client_header(first, len)))
            .await
            .expect("write");
        let seen = server.seen(&path).await;
        match seen.error {
            Error::TooBig { size, limit } => {
                assert_eq!(size as u64, len, "{name}");
                assert_eq!(limit, DEFAULT_MAX_FRAME_SIZE, "{name}");
            }
            ref other => panic!("{name}: expected TooBig, got {other:?}"),
        }
        assert_eq!(seen.error.close_code(), Some(CloseCode::TooBig));
        assert_eq!(
            seen.close_reason.map(|r| r.code),
            Some(CloseCode::TooBig),
            "{name}"
        );
        expect_close_then_end(&mut peer, 1009, name).await;
        echo_round(&mut other, 2).await;
    }
    fresh_client_echoes(server.addr).await;
}

/// RFC 6455 section 7.1.7: to _Fail the WebSocket Connection_ an endpoint sends a close frame
/// and then "MUST _Close the WebSocket Connection_" (close TCP, section 7.1.1), and "MUST NOT
/// continue to attempt to process data (including a responding Close frame)". The session
/// reports itself closed at once; the connection must go too, whether or not the application
/// still holds the session (a send half kept in a list of subscribers, say). With
/// `Server::accept`, so that the test holds the session; a silent peer timed out by the
/// keep-alive task (1011) is the same case.
#[tokio::test]
async fn a_failed_session_closes_its_connection_even_while_still_held() {
    let cases: [(&str, Vec<u8>, u16); 4] = [
        ("protocol", client_frame(0xc1, b"x"), 1002),
        ("too-big", client_header(0x82, u64::MAX >> 1), 1009),
        ("utf8", client_frame(0x81, b"\xff\xfe"), 1007),
        ("timeout", Vec::new(), 1011),
    ];
    // One at a time would take the full bound for each while the connections stay open.
    let outcomes = futures_util::future::join_all(cases.map(|(name, bytes, code)| async move {
        let config = match code {
            1011 => config().timeout(Duration::from_millis(300)),
            _ => config(),
        };
        let (addr, accepted) = accept_one(config).await;
        let mut peer = within("raw connect", RawPeer::connect(addr, "/held")).await;
        let mut server = within("accept", accepted)
            .await
            .unwrap()
            .expect("handshake");
        if !bytes.is_empty() {
            within("garbage", peer.write_raw(&bytes))
                .await
                .expect("write");
        }
        let error = within("receive", server.receive()).await.unwrap_err();
        assert_eq!(
            error.close_code().map(u16::from),
            Some(code),
            "{name}: {error:?}"
        );
        let close = within("close frame", peer.expect_frame()).await;
        assert_eq!(close.close_code(), Some(code), "{name}");
        // The session is still held: the connection must end all the same.
        let outcome = match tokio::time::timeout(LIMIT, peer.read_to_end()).await {
            Ok((rest, _)) => {
                assert!(rest.is_empty(), "{name}: {rest:?}");
                None
            }
            Err(_) => Some(format!(
                "{name}: {code} sent, connection still open {LIMIT:?} later while the \
                 session is held (close_reason {:?})",
                server.close_reason().map(|r| u16::from(r.code))
            )),
        };
        drop(server);
        outcome
    }))
    .await;
    let failures: Vec<String> = outcomes.into_iter().flatten().collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What random bytes sent after the handshake imply, judged from the first frame header
/// they make, in the order tungstenite checks it; `None` when they happen to make a
/// well-formed frame, whose meaning depends on what follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Implied {
    /// A protocol violation: 1002.
    Protocol,
    /// A frame over the limit: 1009, with the size the header claims.
    TooBig(u64),
    /// An incomplete frame, then the peer's FIN: 1006, no close frame.
    Dropped,
}

fn implied_by(garbage: &[u8], max_frame: u64) -> Option<Implied> {
    let (b0, b1) = (garbage[0], garbage[1]);
    let opcode = b0 & 0x0f;
    let masked = b1 & 0x80 != 0;
    let (len, mut at) = match b1 & 0x7f {
        126 => (u64::from(u16::from_be_bytes([garbage[2], garbage[3]])), 4),
        127 => (u64::from_be_bytes(garbage[2..10].try_into().unwrap()), 10),
        short => (u64::from(short), 2),
    };
    if masked {
        at += 4;
    }
    if at > garbage.len() {
        return Some(Implied::Dropped);
    }
    if matches!(opcode, 0x3..=0x7 | 0xb..=0xf) {
        return Some(Implied::Protocol);
    }
    if len > max_frame {
        return Some(Implied::TooBig(len));
    }
    if at as u64 + len > garbage.len() as u64 {
        return Some(Implied::Dropped);
    }
    let fin = b0 & 0x80 != 0;
    let rsv = b0 & 0x70 != 0;
    let control = opcode >= 0x8;
    if !masked || rsv || (control && (!fin || len > 125)) || opcode == 0x0 {
        return Some(Implied::Protocol);
    }
    None
}

#[tokio::test]
async fn random_bytes_after_the_handshake_give_what_their_first_header_implies() {
    const MAX_FRAME: usize = 1024;
    let mut server = Probed::start(config().max_frame_size(MAX_FRAME)).await;
    let mut other = good_client(server.addr).await;

    // The first seeds whose bytes decide the outcome, at least two of each kind.
    let mut cases = Vec::new();
    let mut counts = [0usize; 3];
    for seed in 1..10_000u64 {
        let mut rng = Rng::new(seed);
        let len = 16 + (rng.next() % 2048) as usize;
        let garbage = rng.bytes(len);
        let Some(implied) = implied_by(&garbage, MAX_FRAME as u64) else {
            continue;
        };
        let kind = match implied {
            Implied::Protocol => 0,
            Implied::TooBig(_) => 1,
            Implied::Dropped => 2,
        };
        if counts[kind] < 2 {
            counts[kind] += 1;
            cases.push((seed, garbage, implied));
        }
        if counts.iter().all(|&n| n == 2) {
            break;
        }
    }
    assert_eq!(counts, [2, 2, 2], "seeds of every kind");

    for (seed, garbage, implied) in cases {
        let path = format!("/probe/random-{seed}");
        let mut peer = within("raw connect", RawPeer::connect(server.addr, &path)).await;
        within("garbage", async {
            peer.write_raw(&garbage).await.expect("write");
            // Whatever the bytes left unfinished stays so.
            peer.shutdown_write().await;
        })
        .await;
        let seen = server.seen(&path).await;
        assert!(seen.frames.is_empty(), "seed {seed}: {:?}", seen.frames);
        let code = match (implied, &seen.error) {
            (Implied::Protocol, Error::Protocol(_)) => 1002,
            (Implied::TooBig(len), Error::TooBig { size, limit }) => {
                assert_eq!((*size as u64, *limit), (len, MAX_FRAME), "seed {seed}");
                1009
            }
            (Implied::Dropped, Error::Closed(reason)) => {
                assert_eq!(reason.code, CloseCode::Abnormal, "seed {seed}");
                1006
            }
            (implied, error) => panic!("seed {seed}: {implied:?} expected, got {error:?}"),
        };
        assert_eq!(
            seen.close_reason.map(|r| u16::from(r.code)),
            Some(code),
            "seed {seed}"
        );
        if code == 1006 {
            // No close frame: the connection just ends.
            let (rest, _end) = within("end", peer.read_to_end()).await;
            assert!(rest.is_empty(), "seed {seed}: {rest:?}");
        } else {
            expect_close_then_end(&mut peer, code, &format!("seed {seed}")).await;
        }
        echo_round(&mut other, seed).await;
    }
    fresh_client_echoes(server.addr).await;
}

// ---- 3. a peer that vanishes mid-message ----

fn assert_abnormal(seen: &Seen, what: &str) {
    match &seen.error {
        Error::Closed(reason) => assert_eq!(reason.code, CloseCode::Abnormal, "{what}"),
        other => panic!("{what}: expected Closed(1006), got {other:?}"),
    }
    assert!(seen.frames.is_empty(), "{what}: {:?}", seen.frames);
    assert_eq!(
        seen.close_reason.as_ref().map(|r| r.code),
        Some(CloseCode::Abnormal),
        "{what}"
    );
    match &seen.again {
        Err(Error::Closed(reason)) => assert_eq!(reason.code, CloseCode::Abnormal, "{what}"),
        other => panic!("{what}: after the error, expected Closed(1006), got {other:?}"),
    }
}

/// A header claiming 1000 payload bytes and the first 10 of them.
fn half_a_frame() -> Vec<u8> {
    let mut bytes = client_header(0x80 | raw::BINARY, 1000);
    bytes.extend_from_slice(&[0x5a; 10]);
    bytes
}

#[tokio::test]
async fn a_peer_that_vanishes_mid_frame_gives_closed_1006() {
    let mut server = Probed::start(config()).await;
    let mut other = good_client(server.addr).await;

    let mut peer = within(
        "raw connect",
        RawPeer::connect(server.addr, "/probe/mid-frame"),
    )
    .await;
    within("half a frame", peer.write_raw(&half_a_frame()))
        .await
        .expect("write");
    peer.drop_connection();
    let seen = server.seen("/probe/mid-frame").await;
    assert_abnormal(&seen, "mid-frame");
    echo_round(&mut other, 1).await;
    fresh_client_echoes(server.addr).await;
}

#[tokio::test]
async fn a_peer_that_vanishes_mid_fragmented_message_gives_closed_1006() {
    let mut server = Probed::start(config()).await;
    let mut other = good_client(server.addr).await;

    let path = "/probe/mid-message";
    let mut peer = within("raw connect", RawPeer::connect(server.addr, path)).await;
    within("first fragment", async {
        peer.write_frame(false, raw::TEXT, b"the first of several fragments")
            .await
            .expect("write");
        // A ping between fragments is answered: the server has read the first fragment.
        peer.write_frame(true, raw::PING, b"here")
            .await
            .expect("write");
        let pong = peer.expect_frame().await;
        assert_eq!(
            (pong.opcode, pong.payload.as_slice()),
            (raw::PONG, &b"here"[..])
        );
    })
    .await;
    peer.drop_connection();
    let mut seen = server.seen(path).await;
    assert_eq!(seen.frames, [Frame::Ping(Bytes::from_static(b"here"))]);
    seen.frames.clear();
    assert_abnormal(&seen, "mid-message");
    echo_round(&mut other, 1).await;
    fresh_client_echoes(server.addr).await;
}

#[tokio::test]
async fn a_peer_that_resets_mid_frame_gives_an_io_error_and_1006() {
    let mut server = Probed::start(config()).await;
    let mut other = good_client(server.addr).await;

    let path = "/probe/reset";
    let mut peer = within("raw connect", RawPeer::connect(server.addr, path)).await;
    within("half a frame", peer.write_raw(&half_a_frame()))
        .await
        .expect("write");
    peer.reset_connection();
    let seen = server.seen(path).await;
    match &seen.error {
        Error::Io(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e:?}"),
        other => panic!("expected Io(ConnectionReset), got {other:?}"),
    }
    assert_eq!(
        seen.error.close_code(),
        None,
        "nobody to send a close frame to"
    );
    assert!(seen.frames.is_empty(), "{:?}", seen.frames);
    assert_eq!(
        seen.close_reason.as_ref().map(|r| r.code),
        Some(CloseCode::Abnormal)
    );
    match &seen.again {
        Err(Error::Closed(reason)) => assert_eq!(reason.code, CloseCode::Abnormal),
        other => panic!("after the error, expected Closed(1006), got {other:?}"),
    }
    echo_round(&mut other, 1).await;
    fresh_client_echoes(server.addr).await;
}

// ---- 4. a peer that never reads ----

/// The size of each message the server sends to a peer that never reads.
const FLOOD_MESSAGE: usize = 256 * 1024;
/// How long one send may take before it counts as blocked.
const SEND_WAIT: Duration = Duration::from_secs(2);
/// Sends stop being accepted well before this.
const FLOOD_BOUND: usize = 64 << 20;

#[derive(Debug)]
enum Flood {
    /// Sends stopped completing: how many bytes of messages completed first, and whether the
    /// send after the one that timed out timed out too.
    Blocked {
        accepted: usize,
        messages: usize,
        still_blocked: bool,
    },
    /// Sends kept completing up to the bound.
    Unbounded {
        #[allow(dead_code, reason = "shown by Debug when the test fails")]
        accepted: usize,
    },
    /// A send failed while the peer was still there.
    Failed(#[allow(dead_code, reason = "shown by Debug when the test fails")] Error),
    /// After the peer went away: the next send, the next receive, the close reason.
    After {
        send: Result<(), Error>,
        receive: Result<Frame, Error>,
        close_reason: Option<CloseReason>,
    },
}

/// The kernel's byte counts for a loopback TCP connection, from `/proc/net/tcp`: the
/// send queue of the end on `local` (written, not yet acknowledged) and the receive queue of
/// the end on `remote` (received, not yet read). `None` where there is no such table.
fn kernel_queues(local: u16, remote: u16) -> Option<(u64, u64)> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let port = |field: &str| u16::from_str_radix(field.rsplit(':').next()?, 16).ok();
    let queues = |field: &str| {
        let (tx, rx) = field.split_once(':')?;
        Some((
            u64::from_str_radix(tx, 16).ok()?,
            u64::from_str_radix(rx, 16).ok()?,
        ))
    };
    let mut send = None;
    let mut receive = None;
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(l), Some(r)) = (port(fields[1]), port(fields[2])) else {
            continue;
        };
        if (l, r) == (local, remote) {
            send = queues(fields[4]).map(|(tx, _)| tx);
        } else if (l, r) == (remote, local) {
            receive = queues(fields[4]).map(|(_, rx)| rx);
        }
    }
    Some((send?, receive?))
}

#[tokio::test]
async fn sends_to_a_peer_that_never_reads_block_after_a_bounded_amount() {
    let (reports, mut report) = mpsc::unbounded_channel();
    let (gone_tx, gone) = oneshot::channel::<()>();
    let gone = Arc::new(Mutex::new(Some(gone)));
    let addr = serve_routes(config(), move |mut session| {
        let reports = reports.clone();
        let gone = gone.lock().unwrap().take();
        async move {
            let message = Bytes::from(vec![0x5a; FLOOD_MESSAGE]);
            let mut accepted = 0;
            let mut messages = 0;
            loop {
                if accepted >= FLOOD_BOUND {
                    let _ = reports.send(Flood::Unbounded { accepted });
                    return;
                }
                match tokio::time::timeout(SEND_WAIT, session.send_binary(message.clone())).await {
                    Ok(Ok(())) => {
                        accepted += message.len();
                        messages += 1;
                    }
                    Ok(Err(e)) => {
                        let _ = reports.send(Flood::Failed(e));
                        return;
                    }
                    Err(_) => break,
                }
            }
            let still_blocked =
                tokio::time::timeout(SEND_WAIT, session.send_binary(message.clone()))
                    .await
                    .is_err();
            let _ = reports.send(Flood::Blocked {
                accepted,
                messages,
                still_blocked,
            });
            let Some(gone) = gone else { return };
            let _ = gone.await;
            // Bounded in the test by `within` on the report.
            let send = session.send_binary(message.clone()).await;
            let receive = session.receive().await;
            let _ = reports.send(Flood::After {
                send,
                receive,
                close_reason: session.close_reason(),
            });
        }
    })
    .await;
    let mut other = good_client(addr).await;
    echo_round(&mut other, 0).await;

    let peer = within("raw connect", RawPeer::connect(addr, "/flood")).await;
    // Echoes go on while the flood fills the buffers.
    echo_round(&mut other, 1).await;
    let blocked = within("the flood blocks", report.recv())
        .await
        .expect("report");
    let Flood::Blocked {
        accepted,
        messages,
        still_blocked,
    } = blocked
    else {
        panic!("expected the sends to block, got {blocked:?}");
    };
    assert!(still_blocked, "a send completed after one had blocked");
    assert!(accepted < FLOOD_BOUND, "{accepted} bytes accepted");
    assert!(messages >= 1, "not even one message went out");
    // What the kernel holds: the server's send queue and the peer's receive queue. On the
    // wire, every completed message is a 10-byte header and its payload; of the message
    // whose send timed out, part may have been written too, the rest waits in the session.
    // The peer may have read the first bytes of the flood with the handshake response.
    let on_wire = messages * (FLOOD_MESSAGE + 10);
    let kernel = kernel_queues(addr.port(), peer.local_addr().port());
    if let Some((send_queue, receive_queue)) = kernel {
        let total = (send_queue + receive_queue) as usize + peer.buffered();
        assert!(
            (on_wire..=on_wire + FLOOD_MESSAGE + 10).contains(&total),
            "kernel holds {total} bytes, {on_wire} went out in whole messages"
        );
    }
    println!(
        "never-reading peer: {messages} sends of {} KiB completed = {accepted} bytes \
         ({:.2} MiB) before a send blocked for {SEND_WAIT:?}; kernel queues (server send, \
         peer receive) = {kernel:?}; at most one more message ({FLOOD_MESSAGE} bytes) waits \
         in the session's write buffer",
        FLOOD_MESSAGE / 1024,
        accepted as f64 / (1 << 20) as f64,
    );
    // Echoes go on while the flood is blocked.
    echo_round(&mut other, 2).await;

    // The peer goes with unread data, which resets the connection; the blocked session
    // learns it on its next call instead of hanging.
    peer.drop_connection();
    gone_tx.send(()).expect("the flood handler waits");
    let after = within("the flooded session fails", report.recv())
        .await
        .expect("report");
    let Flood::After {
        send,
        receive,
        close_reason,
    } = after
    else {
        panic!("expected the result after the peer left, got {after:?}");
    };
    match &send {
        Err(Error::Io(_)) => {}
        Err(Error::Closed(reason)) => assert_eq!(reason.code, CloseCode::Abnormal),
        other => panic!("send after the peer left: {other:?}"),
    }
    match &receive {
        Err(Error::Io(_)) => {}
        Err(Error::Closed(reason)) => assert_eq!(reason.code, CloseCode::Abnormal),
        other => panic!("receive after the peer left: {other:?}"),
    }
    println!("after the never-reading peer left: send {send:?}, receive {receive:?}");
    assert_eq!(close_reason.map(|r| r.code), Some(CloseCode::Abnormal));
    echo_round(&mut other, 3).await;
    fresh_client_echoes(addr).await;
}

#[tokio::test]
async fn a_send_blocked_by_a_peer_that_never_reads_ends_at_the_configured_timeout() {
    let timeout = Duration::from_secs(1);
    let (reports, mut report) = mpsc::unbounded_channel();
    let addr = serve_routes(config().timeout(timeout), move |mut session| {
        let reports = reports.clone();
        async move {
            let message = Bytes::from(vec![0x5a; FLOOD_MESSAGE]);
            let mut accepted = 0;
            let mut last_completed = tokio::time::Instant::now();
            // No timeout of its own around the send: the session's has to end it.
            let error = loop {
                if accepted >= FLOOD_BOUND {
                    break None;
                }
                match session.send_binary(message.clone()).await {
                    Ok(()) => {
                        accepted += message.len();
                        last_completed = tokio::time::Instant::now();
                    }
                    Err(e) => break Some(e),
                }
            };
            let _ = reports.send((
                accepted,
                last_completed.elapsed(),
                error,
                session.close_reason(),
            ));
        }
    })
    .await;
    // The well-behaved client pings, so the server's timeout never ends its session.
    let mut other = within(
        "a well-behaved client connects",
        Client::new(config().ping_interval(Duration::from_millis(200)))
            .web_socket_session(format!("ws://{addr}/echo")),
    )
    .await
    .expect("handshake");
    echo_round(&mut other, 0).await;

    let peer = within("raw connect", RawPeer::connect(addr, "/flood")).await;
    let (accepted, blocked_for, error, close_reason) =
        within("the blocked send ends", report.recv())
            .await
            .expect("report");
    assert!(accepted < FLOOD_BOUND, "{accepted} bytes accepted");
    match error {
        Some(Error::Timeout(after)) => assert_eq!(after, timeout),
        other => panic!("expected the blocked send to end with Timeout, got {other:?}"),
    }
    // Nothing came from the peer since the handshake, so the timeout counts from then: the
    // send ends about `timeout` after the session started, not some time later.
    assert!(blocked_for < timeout * 2, "blocked for {blocked_for:?}");
    assert_eq!(close_reason.map(|r| r.code), Some(CloseCode::InternalError));
    println!(
        "never-reading peer with a {timeout:?} timeout: {accepted} bytes accepted, the \
         blocked send ended with Timeout after {blocked_for:?}"
    );
    echo_round(&mut other, 1).await;
    drop(peer);
    fresh_client_echoes(addr).await;
}

// ---- 5. a typed-ws client against hostile servers ----

/// Connects a typed-ws client with `config` to a raw server that reads the request and then
/// plays `respond`; gives the client's result.
async fn connect_to_hostile<F, Fut>(
    config: Config<JsonConverter>,
    respond: F,
) -> Result<Session<JsonConverter>, Error>
where
    F: FnOnce(RawPeer) -> Fut,
    Fut: Future<Output = Option<RawPeer>>,
{
    let (listener, addr) = raw::listen().await;
    let client = Client::new(config);
    let server = async {
        let (peer, head) = RawPeer::accept_request(&listener).await;
        assert!(head.starts_with("GET /hostile HTTP/1.1\r\n"), "{head}");
        respond(peer).await
    };
    let (result, _peer) = within("client against a hostile server", async {
        tokio::join!(
            client.web_socket_session(format!("ws://{addr}/hostile")),
            server
        )
    })
    .await;
    result
}

#[tokio::test]
async fn client_gets_handshake_error_when_the_server_answers_garbage() {
    let result = connect_to_hostile(config(), |mut peer| async move {
        let mut garbage = Rng::new(3).bytes(512);
        garbage[0] = 0x00;
        peer.write_raw(&garbage).await.expect("write");
        Some(peer)
    })
    .await;
    match result {
        Err(Error::Handshake { status, message }) => {
            assert_eq!(status, None);
            assert!(message.contains("httparse error"), "{message}");
        }
        other => panic!("expected Handshake, got {other:?}"),
    }
}

#[tokio::test]
async fn client_gets_handshake_error_with_the_status_when_the_server_answers_500() {
    let result = connect_to_hostile(config(), |mut peer| async move {
        peer.write_raw(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 11\r\n\r\nit broke :(",
        )
        .await
        .expect("write");
        Some(peer)
    })
    .await;
    let error = result.expect_err("a 500 is no upgrade");
    assert_eq!(error.status(), Some(500), "{error:?}");
    match error {
        Error::Handshake { message, .. } => {
            assert!(message.starts_with("the server answered 500"), "{message}");
        }
        other => panic!("expected Handshake, got {other:?}"),
    }
}

#[tokio::test]
async fn client_gets_handshake_error_when_the_accept_key_is_wrong() {
    let result = connect_to_hostile(config(), |mut peer| async move {
        peer.write_raw(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        )
        .await
        .expect("write");
        Some(peer)
    })
    .await;
    match result {
        Err(Error::Handshake { status, message }) => {
            assert_eq!(status, None);
            assert!(message.contains("Sec-WebSocket-Accept"), "{message}");
        }
        other => panic!("expected Handshake, got {other:?}"),
    }
}

#[tokio::test]
async fn client_times_out_when_the_server_never_answers() {
    let limit = Duration::from_millis(300);
    let started = tokio::time::Instant::now();
    let result = connect_to_hostile(config().handshake_timeout(limit), |peer| async move {
        // Hold the connection, say nothing, until the client has given up.
        Some(peer)
    })
    .await;
    match result {
        Err(Error::HandshakeTimeout(after)) => assert_eq!(after, limit),
        other => panic!("expected HandshakeTimeout, got {other:?}"),
    }
    assert!(started.elapsed() >= limit);
}

#[tokio::test]
async fn client_gets_too_big_and_sends_1009_for_an_oversized_frame_from_the_server() {
    let (mut session, mut peer, _) =
        raw::client_to_raw(config().max_message_size(1024), "/hostile").await;
    within(
        "oversized frame",
        peer.write_frame(true, raw::BINARY, &[9; 2000]),
    )
    .await
    .expect("write");
    let error = within("client receive", session.receive())
        .await
        .expect_err("the frame is over the limit");
    match error {
        Error::TooBig { size, limit } => assert_eq!((size, limit), (2000, 1024)),
        ref other => panic!("expected TooBig, got {other:?}"),
    }
    assert_eq!(session.close_reason().unwrap().code, CloseCode::TooBig);
    let close = within("raw server reads the close", peer.expect_frame()).await;
    assert_eq!(close.opcode, raw::CLOSE);
    assert!(close.masked, "client frames are masked");
    assert_eq!(close.close_code(), Some(1009));
}

// ---- everything at once ----

/// Holders tell how many of them hold their connection; the test tells them when to let go.
#[derive(Clone)]
struct Hold {
    holding: Arc<tokio::sync::watch::Sender<usize>>,
    release: tokio::sync::watch::Receiver<bool>,
}

impl Hold {
    async fn hold(mut self) {
        self.holding.send_modify(|n| *n += 1);
        let _ = self.release.wait_for(|go| *go).await;
    }
}

/// The kinds of [`hostile_connection`] that hold their connection open.
const HOLDERS_PER_TEN: usize = 2;

/// One hostile connection of the kind `round % 10`; returns once it has checked what the
/// server did to it. Two kinds hold their connection until released.
async fn hostile_connection(addr: SocketAddr, round: usize, hold: Hold) {
    let what = format!("hostile connection {round}");
    match round % 10 {
        kind @ 0..=4 => {
            let opening = [
                Opening::RandomBytes(round as u64),
                Opening::PlainHttpGet,
                Opening::TruncatedThenEof,
                Opening::HugeHeaderSection,
                Opening::TruncatedThenReset,
            ][kind];
            let tcp = TcpStream::connect(addr).await.expect("connect");
            if let Some(mut tcp) = opening.play(tcp).await {
                let back = read_until_gone(&mut tcp).await;
                opening.check_answer(&back);
            }
        }
        5 => {
            // A request that never finishes, held open.
            let mut tcp = TcpStream::connect(addr).await.expect("connect");
            tcp.write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n")
                .await
                .expect("write");
            hold.hold().await;
            drop(tcp);
        }
        6 => {
            let mut peer = RawPeer::connect(addr, &format!("/probe/mixed-{round}")).await;
            peer.write_raw(&client_frame(0xc1, b"x"))
                .await
                .expect("write");
            expect_close_then_end(&mut peer, 1002, &what).await;
        }
        7 => {
            let mut peer = RawPeer::connect(addr, &format!("/probe/mixed-{round}")).await;
            peer.write_raw(&client_header(0x82, u64::MAX >> 1))
                .await
                .expect("write");
            expect_close_then_end(&mut peer, 1009, &what).await;
        }
        8 => {
            let mut peer = RawPeer::connect(addr, &format!("/probe/mixed-{round}")).await;
            peer.write_raw(&half_a_frame()).await.expect("write");
            if round < 10 {
                peer.drop_connection();
            } else {
                peer.reset_connection();
            }
        }
        _ => {
            // Sends a 1 MiB message to the echo and never reads the echo: that session's
            // send may block, no other.
            let mut peer = RawPeer::connect(addr, "/echo").await;
            peer.write_frame(true, raw::BINARY, &vec![1; 1 << 20])
                .await
                .expect("write");
            hold.hold().await;
            drop(peer);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_hostile_connections_do_not_disturb_five_good_clients() {
    const HOSTILE: usize = 20;
    const HOLDERS: usize = HOSTILE / 10 * HOLDERS_PER_TEN;
    let mut server = Probed::start(config()).await;
    let addr = server.addr;
    let (holding, holders) = tokio::sync::watch::channel(0);
    let (release, released) = tokio::sync::watch::channel(false);
    let hold = Hold {
        holding: Arc::new(holding),
        release: released,
    };

    let hostile: Vec<_> = (0..HOSTILE)
        .map(|round| tokio::spawn(hostile_connection(addr, round, hold.clone())))
        .collect();
    let good: Vec<_> = (0..5u64)
        .map(|client| {
            let mut holders = holders.clone();
            tokio::spawn(async move {
                let mut session = good_client(addr).await;
                echo_round(&mut session, client * 1000).await;
                // The rest happens while the holders hold their connections.
                within(
                    "the holders are in place",
                    holders.wait_for(|&n| n == HOLDERS),
                )
                .await
                .expect("holders");
                for i in 1..20 {
                    echo_round(&mut session, client * 1000 + i).await;
                }
                within(
                    "close",
                    session.close(CloseReason::new(CloseCode::Normal, "")),
                )
                .await
                .expect("clean close");
                20
            })
        })
        .collect();

    let mut echoed = 0;
    for client in good {
        echoed += within("a good client finishes", client)
            .await
            .expect("good client task");
    }
    assert_eq!(echoed, 100);
    release.send(true).expect("holders listen");
    for (round, task) in hostile.into_iter().enumerate() {
        within(&format!("hostile connection {round} is done"), task)
            .await
            .expect("hostile connection checks");
    }
    // The server sessions of the hostile peers ended as each kind implies.
    for round in (0..HOSTILE).filter(|r| (6..=8).contains(&(r % 10))) {
        let seen = server.seen(&format!("/probe/mixed-{round}")).await;
        let code = seen.close_reason.map(|r| u16::from(r.code));
        let expected = match round % 10 {
            6 => 1002,
            7 => 1009,
            _ => 1006,
        };
        assert_eq!(code, Some(expected), "round {round}: {:?}", seen.error);
    }
}
