//! A WebSocket peer that works frame by frame, for checking what goes over the wire: the
//! HTTP upgrade is done by hand on a plain tokio `TcpStream`, then individual frames (opcode,
//! fin, payload) are read and written, masked when this peer is the client as RFC 6455 wants.
//!
//! It answers nothing by itself: no pongs, no close replies. Tests decide what it does.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use typed_ws::tokio_tungstenite::tungstenite::handshake::client::generate_key;
use typed_ws::tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use typed_ws::{Client, Config, Converter, Session};

use super::wire::{self, MASK};
use super::within;

/// Opcodes (RFC 6455 section 5.2).
pub const CONTINUE: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// One frame as it was on the wire (payload already unmasked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    pub fin: bool,
    /// RSV1: a compressed message's first frame under permessage-deflate.
    pub rsv1: bool,
    pub opcode: u8,
    pub masked: bool,
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// The status code of a close frame, if it carries one.
    pub fn close_code(&self) -> Option<u16> {
        assert_eq!(self.opcode, CLOSE, "not a close frame: {self:?}");
        (self.payload.len() >= 2).then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }

    /// The reason text of a close frame.
    pub fn close_text(&self) -> String {
        assert_eq!(self.opcode, CLOSE, "not a close frame: {self:?}");
        String::from_utf8(self.payload.get(2..).unwrap_or_default().to_vec())
            .expect("close reason is UTF-8")
    }
}

/// A listener for raw server peers.
pub async fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    (listener, addr)
}

/// One end of a WebSocket connection, read and written frame by frame.
pub struct RawPeer {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Clients mask what they send.
    client: bool,
}

impl RawPeer {
    /// Connects to a WebSocket server and does the client handshake; panics unless the server
    /// answers 101.
    pub async fn connect(addr: SocketAddr, path: &str) -> RawPeer {
        RawPeer::connect_with(addr, path, "").await.0
    }

    /// Like [`RawPeer::connect`], with `headers` (each line ending in CRLF) added to the
    /// request; also returns the response head.
    pub async fn connect_with(addr: SocketAddr, path: &str, headers: &str) -> (RawPeer, String) {
        let mut stream = TcpStream::connect(addr).await.expect("raw connect");
        stream.set_nodelay(true).expect("nodelay");
        let key = generate_key();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("write handshake request");
        let mut peer = RawPeer {
            stream,
            buf: Vec::new(),
            client: true,
        };
        let head = peer.read_head().await;
        assert!(
            head.starts_with("HTTP/1.1 101"),
            "server refused the upgrade: {head}"
        );
        let accept = derive_accept_key(key.as_bytes());
        assert!(
            head.to_ascii_lowercase().contains(&format!(
                "sec-websocket-accept: {}",
                accept.to_ascii_lowercase()
            )),
            "bad accept key in {head}"
        );
        (peer, head)
    }

    /// Accepts one connection and does the server handshake. Returns the peer and the
    /// request head the client sent.
    pub async fn accept(listener: &TcpListener) -> (RawPeer, String) {
        let (mut peer, head) = RawPeer::accept_request(listener).await;
        let key = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("sec-websocket-key")
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no Sec-WebSocket-Key in {head}"));
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            derive_accept_key(key.as_bytes())
        );
        peer.stream
            .write_all(response.as_bytes())
            .await
            .expect("write handshake response");
        (peer, head)
    }

    /// Accepts one connection and reads the client's request head, without answering it: the
    /// test writes whatever response it likes with [`RawPeer::write_raw`], or none at all.
    pub async fn accept_request(listener: &TcpListener) -> (RawPeer, String) {
        let (stream, _) = listener.accept().await.expect("raw accept");
        stream.set_nodelay(true).expect("nodelay");
        let mut peer = RawPeer {
            stream,
            buf: Vec::new(),
            client: false,
        };
        let head = peer.read_head().await;
        (peer, head)
    }

    /// Reads an HTTP head up to the empty line; what follows stays buffered.
    async fn read_head(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..end + 4).collect();
                return String::from_utf8(head).expect("HTTP head is UTF-8");
            }
            let read = self.fill_some().await.expect("read HTTP head");
            assert!(read > 0, "connection closed during the handshake");
        }
    }

    async fn fill_some(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let read = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..read]);
        Ok(read)
    }

    /// Makes sure `n` bytes are buffered. `Ok(false)` when the connection ended cleanly
    /// before the first of them, an `UnexpectedEof` error when it ended in the middle.
    async fn fill(&mut self, n: usize) -> io::Result<bool> {
        while self.buf.len() < n {
            if self.fill_some().await? == 0 {
                if self.buf.is_empty() {
                    return Ok(false);
                }
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(true)
    }

    /// Reads the next frame; `Ok(None)` when the connection ended (EOF) between frames.
    pub async fn read_frame(&mut self) -> io::Result<Option<RawFrame>> {
        if !self.fill(2).await? {
            return Ok(None);
        }
        // Bytes are buffered, so `fill` fails if the connection ends before the frame does.
        let header = loop {
            if let Some(header) = wire::parse(&self.buf) {
                break header;
            }
            self.fill(self.buf.len() + 1).await?;
        };
        let len = usize::try_from(header.payload_len).expect("frame length fits usize");
        let at = header.len;
        self.fill(at + len).await?;
        let mut payload: Vec<u8> = self.buf.drain(..at + len).skip(at).collect();
        if let Some(mask) = header.mask {
            wire::apply_mask(&mut payload, mask);
        }
        let first = header.first;
        Ok(Some(RawFrame {
            fin: first & wire::FIN != 0,
            rsv1: first & wire::RSV1 != 0,
            opcode: first & 0x0f,
            masked: header.mask.is_some(),
            payload,
        }))
    }

    /// Reads the next frame, panicking on EOF or an I/O error.
    pub async fn expect_frame(&mut self) -> RawFrame {
        match self.read_frame().await {
            Ok(Some(frame)) => frame,
            Ok(None) => panic!("connection ended while a frame was expected"),
            Err(e) => panic!("reading a frame failed: {e}"),
        }
    }

    /// Reads frames until one that is not a ping or pong, and returns it.
    pub async fn expect_skipping_pings(&mut self) -> RawFrame {
        loop {
            let frame = self.expect_frame().await;
            if frame.opcode != PING && frame.opcode != PONG {
                return frame;
            }
        }
    }

    /// Writes one frame, masked when this peer is the client.
    pub async fn write_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) -> io::Result<()> {
        self.write_frame_masked(fin, opcode, payload, self.client)
            .await
    }

    /// Writes one frame, masked or not whatever this peer's role (to break the protocol).
    pub async fn write_frame_masked(
        &mut self,
        fin: bool,
        opcode: u8,
        payload: &[u8],
        mask: bool,
    ) -> io::Result<()> {
        let out = encode_frame(fin, opcode, payload, mask);
        self.stream.write_all(&out).await?;
        self.stream.flush().await
    }

    /// Sends a close frame with a status code and reason.
    pub async fn write_close(&mut self, code: u16, reason: &str) -> io::Result<()> {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        self.write_frame(true, CLOSE, &payload).await
    }

    /// Writes bytes as they are, not framed: a handshake response, half a frame, garbage.
    pub async fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Reads until the connection ends and returns everything that arrived after the last
    /// frame read, with how it ended: `Ok` for EOF, the error for a reset.
    pub async fn read_to_end(&mut self) -> (Vec<u8>, io::Result<()>) {
        let end = loop {
            match self.fill_some().await {
                Ok(0) => break Ok(()),
                Ok(_) => {}
                Err(e) => break Err(e),
            }
        };
        (std::mem::take(&mut self.buf), end)
    }

    /// Reads until the connection ends and checks that nothing came after the last frame read
    /// and that the other end closed with a FIN (a read gives 0 bytes), not a reset, which
    /// could have swallowed what it sent last.
    pub async fn expect_fin(&mut self, what: &str) {
        let (rest, end) = self.read_to_end().await;
        assert!(
            rest.is_empty(),
            "{what}: bytes after the last frame: {rest:?}"
        );
        if let Err(e) = end {
            panic!(
                "{what}: the connection ended with {e} ({:?}), not a FIN",
                e.kind()
            );
        }
    }

    /// How many bytes this peer has read from the connection but not yet handed out.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// This end's address, to find the connection in the kernel's tables.
    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().expect("local addr")
    }

    /// Resets the TCP connection: `SO_LINGER` 0, then close, so that the other end gets RST
    /// (a read fails with `ConnectionReset`) rather than FIN.
    pub fn reset_connection(self) {
        self.stream.set_zero_linger().expect("SO_LINGER 0");
        drop(self.stream);
    }

    /// Closes the TCP connection without a close frame.
    pub fn drop_connection(self) {
        drop(self.stream);
    }

    /// Ends the sending direction of the TCP connection (FIN) without a close frame, but
    /// keeps reading, so that frames still arriving cannot turn the FIN into a reset.
    pub async fn shutdown_write(&mut self) {
        self.stream.shutdown().await.expect("shutdown");
    }
}

/// One frame as bytes on the wire, masked (as a client's) or not.
pub fn encode_frame(fin: bool, opcode: u8, payload: &[u8], mask: bool) -> Vec<u8> {
    let first = if fin { wire::FIN } else { 0 } | (opcode & 0x0f);
    wire::frame(first, payload, mask.then_some(MASK))
}

/// A masked client frame with any first byte: reserved bits and opcodes beyond 0xf that
/// [`encode_frame`] keeps out, for frames that break the protocol.
pub fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    wire::frame(first, payload, Some(MASK))
}

/// The header of a masked client frame claiming `len` payload bytes, none of which need
/// follow: a length bomb is judged by its header.
pub fn client_header(first: u8, len: u64) -> Vec<u8> {
    wire::header(first, len, Some(MASK))
}

/// A typed-ws client connected to a raw server peer on a fresh loopback listener, with the
/// request head the peer read.
pub async fn client_to_raw<C: Converter>(
    config: Config<C>,
    path: &str,
) -> (Session<C>, RawPeer, String) {
    let (listener, addr) = listen().await;
    let client = Client::new(config);
    let (session, (peer, head)) = within("connect to a raw peer", async {
        tokio::join!(
            client.web_socket_session(format!("ws://{addr}{path}")),
            RawPeer::accept(&listener)
        )
    })
    .await;
    (session.expect("client handshake"), peer, head)
}
