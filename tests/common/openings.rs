//! Garbage a client sends instead of a proper opening handshake, and what a server must
//! answer to each: shared by the handshake tests and the mixed crowd of hostile connections.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::rng::Rng;

/// What a client sends instead of a proper opening handshake.
#[derive(Debug, Clone, Copy)]
pub enum Opening {
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
    pub const ALL: [Opening; 11] = [
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

    /// The error `Server::accept` gives: `Some(text)` for `Error::Handshake` whose printed
    /// chain (message and sources) contains `text`; `None` for `Error::Io` with `ConnectionReset`.
    pub fn expected(self) -> Option<&'static str> {
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
    pub fn status(self) -> Option<u16> {
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
    /// checked by `a_well_formed_request_that_is_no_valid_upgrade_gets_an_http_error`
    /// (hostile_handshakes.rs) rather than here. The rest is no HTTP request to answer.
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
    pub fn check_answer(self, back: &[u8]) {
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
    pub async fn play(self, mut tcp: TcpStream) -> Option<TcpStream> {
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
pub async fn read_until_gone(tcp: &mut TcpStream) -> Vec<u8> {
    let mut back = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return back,
            Ok(n) => back.extend_from_slice(&chunk[..n]),
        }
    }
}
