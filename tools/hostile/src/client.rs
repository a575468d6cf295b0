//! A minimal WebSocket client on raw TCP: masked frames out, frames parsed in (headers by
//! tungstenite's code, through the `wire` file shared with the tests), and compressed ones
//! built by hand, so that an attack can send what no library would.

use std::io;
use std::net::SocketAddr;

use flate2::{Compress, Compression, FlushCompress};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::conn::Conn;
use crate::wire::{self, FIN, MASK, RSV1};

pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// One whole (fin) masked frame.
pub fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    wire::frame(FIN | opcode, payload, Some(MASK))
}

/// The marker a sync flush ends with; RFC 7692 strips it from the end of a message.
const SYNC_MARKER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// `payload` as raw DEFLATE, sync-flushed so that it ends with [`SYNC_MARKER`]. A fresh
/// compressor for every message, so that the server may keep its context or not: nothing
/// refers back to an earlier message.
fn deflate(payload: &[u8]) -> Vec<u8> {
    let mut compress = Compress::new(Compression::best(), false);
    let mut out = Vec::new();
    loop {
        out.reserve(64 << 10);
        let done = compress.total_in() as usize;
        compress
            .compress_vec(&payload[done..], &mut out, FlushCompress::Sync)
            .expect("DEFLATE of a buffer in memory");
        // Room left over means the flush is complete; another call would add an empty block.
        if compress.total_in() as usize == payload.len() && out.len() < out.capacity() {
            return out;
        }
    }
}

/// `payload` as one whole compressed binary frame.
pub fn compressed_frame(payload: &[u8]) -> Vec<u8> {
    let mut deflated = deflate(payload);
    debug_assert!(deflated.ends_with(&SYNC_MARKER));
    deflated.truncate(deflated.len() - SYNC_MARKER.len());
    wire::frame(FIN | RSV1 | BINARY, &deflated, Some(MASK))
}

/// `payload` as the first, non-final frame of a compressed binary message; the marker stays,
/// as the message goes on.
pub fn compressed_fragment(payload: &[u8]) -> Vec<u8> {
    wire::frame(RSV1 | BINARY, &deflate(payload), Some(MASK))
}

/// One frame as parsed: its first byte (FIN, RSV bits, opcode) and unmasked payload.
pub struct Frame {
    pub first: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn opcode(&self) -> u8 {
        self.first & 0x0f
    }

    pub fn fin(&self) -> bool {
        self.first & FIN != 0
    }

    /// The code of a close frame, if it has one.
    pub fn close_code(&self) -> Option<u16> {
        Some(u16::from_be_bytes(self.payload.get(..2)?.try_into().ok()?))
    }
}

/// The first frame in `buf` and the bytes it took; `None` if it is not all there yet.
fn parse_frame(buf: &[u8]) -> Option<(Frame, usize)> {
    let header = wire::parse(buf)?;
    let end = header
        .len
        .checked_add(usize::try_from(header.payload_len).ok()?)?;
    let mut payload = buf.get(header.len..end)?.to_vec();
    if let Some(mask) = header.mask {
        wire::apply_mask(&mut payload, mask);
    }
    let first = header.first;
    Some((Frame { first, payload }, end))
}

pub fn other(message: impl Into<String>) -> io::Error {
    io::Error::other(message.into())
}

/// The value of `name` (lower case) in a response head, if it has that field.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (field, value) = line.split_once(':')?;
        field
            .trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

/// A TCP connection with what has been read of it and not yet used: an HTTP/1.1 client, and
/// after an upgrade a WebSocket one; or, split, its reading half.
pub struct RawWs<S = TcpStream> {
    pub stream: S,
    buf: Vec<u8>,
    /// How much of `buf` frames have taken: dropped before the next read rather than after
    /// every frame, which would move the rest of the buffer once per frame.
    used: usize,
}

impl RawWs {
    /// Connects without a request yet. `conn`, if given, learns the connection's local port
    /// as soon as TCP is up.
    pub async fn tcp(addr: SocketAddr, conn: Option<&Conn>) -> io::Result<RawWs> {
        let stream = TcpStream::connect(addr).await?;
        if let Some(conn) = conn {
            conn.connected(stream.local_addr()?.port());
        }
        Ok(RawWs {
            stream,
            buf: Vec::with_capacity(1024),
            used: 0,
        })
    }

    /// Connects and upgrades to `path` offering the `msgpack` subprotocol, and
    /// permessage-deflate when `deflate`, which the server must then have agreed to.
    pub async fn connect(
        addr: SocketAddr,
        path: &str,
        deflate: bool,
        conn: Option<&Conn>,
    ) -> io::Result<RawWs> {
        let mut ws = RawWs::tcp(addr, conn).await?;
        let key = generate_key();
        let extensions = if deflate {
            "Sec-WebSocket-Extensions: permessage-deflate\r\n"
        } else {
            ""
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: msgpack\r\n{extensions}\r\n"
        );
        ws.stream.write_all(request.as_bytes()).await?;
        let head = ws.head().await?;
        if !head.starts_with("HTTP/1.1 101") {
            let status = head.lines().next().unwrap_or_default();
            return Err(other(format!("upgrade refused: {status}")));
        }
        if header(&head, "sec-websocket-accept") != Some(&derive_accept_key(key.as_bytes())) {
            return Err(other("wrong Sec-WebSocket-Accept"));
        }
        let agreed = header(&head, "sec-websocket-extensions")
            .is_some_and(|value| value.starts_with("permessage-deflate"));
        if deflate && !agreed {
            return Err(other("the server did not agree to permessage-deflate"));
        }
        Ok(ws)
    }

    /// The reading half, with what was read already, and the writing half, so that one task
    /// can read while another writes.
    pub fn into_split(self) -> (RawWs<OwnedReadHalf>, OwnedWriteHalf) {
        let (read, write) = self.stream.into_split();
        let reader = RawWs {
            stream: read,
            buf: self.buf,
            used: self.used,
        };
        (reader, write)
    }
}

impl<S: AsyncRead + Unpin> RawWs<S> {
    /// The next HTTP response head, up to its blank line.
    pub async fn head(&mut self) -> io::Result<String> {
        self.compact();
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..end + 4).collect();
                return Ok(String::from_utf8_lossy(&head).into_owned());
            }
            if self.buf.len() > 16 * 1024 {
                return Err(other("handshake response head over 16 KiB"));
            }
            if self.fill().await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// The next `len` bytes (an HTTP body), or fewer if the connection ends first.
    pub async fn body(&mut self, len: usize) -> io::Result<Vec<u8>> {
        self.compact();
        while self.buf.len() < len && self.fill().await? > 0 {}
        let len = len.min(self.buf.len());
        Ok(self.buf.drain(..len).collect())
    }

    fn compact(&mut self) {
        self.buf.drain(..self.used);
        self.used = 0;
    }

    async fn fill(&mut self) -> io::Result<usize> {
        self.compact();
        let mut chunk = [0u8; 4096];
        let read = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..read]);
        Ok(read)
    }

    /// The next frame; EOF is an error.
    pub async fn next_frame(&mut self) -> io::Result<Frame> {
        loop {
            if let Some((frame, used)) = parse_frame(&self.buf[self.used..]) {
                self.used += used;
                return Ok(frame);
            }
            if self.fill().await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// The next frame's opcode and payload; EOF is an error.
    pub async fn read_frame(&mut self) -> io::Result<(u8, Vec<u8>)> {
        let frame = self.next_frame().await?;
        Ok((frame.opcode(), frame.payload))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> RawWs<S> {
    /// Answers pings and ignores everything else until the session ends, noting on `conn`
    /// how, and the close frame's code if there was one.
    pub async fn hold(&mut self, conn: &Conn) {
        loop {
            match self.next_frame().await {
                Ok(frame) if frame.opcode() == PING => {
                    if self.send(PONG, &frame.payload).await.is_err() {
                        return conn.close("write failed");
                    }
                }
                Ok(frame) if frame.opcode() == CLOSE => {
                    if let Some(code) = frame.close_code() {
                        let _ = conn.code.set(code);
                    }
                    return conn.close("close frame");
                }
                Ok(_) => {}
                Err(_) => return conn.close("EOF"),
            }
        }
    }

    pub async fn send(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        self.stream.write_all(&frame(opcode, payload)).await
    }

    /// Reads until the last frame of a data message, answering pings on the way; a close
    /// frame is an error.
    pub async fn skip_message(&mut self) -> io::Result<()> {
        loop {
            let frame = self.next_frame().await?;
            match frame.opcode() {
                PING => self.send(PONG, &frame.payload).await?,
                CLOSE => {
                    let code = frame
                        .close_code()
                        .map_or("no code".into(), |c| c.to_string());
                    return Err(other(format!("closed by the server ({code})")));
                }
                TEXT | BINARY | CONTINUATION if frame.fin() => return Ok(()),
                _ => {}
            }
        }
    }
}
