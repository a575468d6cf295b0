//! The receiving side of permessage-deflate: a byte stream under tungstenite that inflates
//! compressed messages into plain frames (see the parent module's docs).

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, BytesMut};
use flate2::{Decompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::PerMessageDeflate;
use crate::config::Settings;

/// The most inflated bytes put in one frame for tungstenite, and about the most waiting for it
/// at a time.
const CHUNK: usize = 64 << 10;

/// How much one read from the socket asks for.
const READ: usize = 16 << 10;

/// What every compressed message ends with once its sender's flush marker is put back
/// (RFC 7692 7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Why a compressed message could not be read; carried to the session inside an I/O error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InflateError {
    /// The message inflated past the limit: `size` bytes so far.
    TooBig { size: usize, limit: usize },
    /// The payload is not DEFLATE data.
    Invalid(String),
}

impl fmt::Display for InflateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InflateError::TooBig { size, limit } => write!(
                f,
                "a compressed message inflated to {size} bytes, over the limit of {limit} bytes"
            ),
            InflateError::Invalid(why) => write!(f, "invalid compressed data: {why}"),
        }
    }
}

impl std::error::Error for InflateError {}

/// A byte stream that, once [activated](Inflating::activate), inflates the compressed
/// messages read through it; until then, and for sessions without compression, reads pass
/// straight through.
pub(crate) struct Inflating<S> {
    io: S,
    reader: Option<Box<Reader>>,
}

impl<S> Inflating<S> {
    pub(crate) fn new(io: S) -> Self {
        Inflating { io, reader: None }
    }

    /// Starts inflating, from the next byte read; `head` is what was read from the stream
    /// already, after the handshake. An inflated message over the session's
    /// `max_message_size` is refused, and no frame handed to tungstenite is larger than its
    /// frame limit.
    pub(crate) fn activate(&mut self, agreed: PerMessageDeflate, settings: &Settings, head: &[u8]) {
        let max_frame_size = settings.max_frame_size.min(settings.max_message_size);
        let max_message_size = settings.max_message_size;
        let chunk = CHUNK.min(max_frame_size).min(max_message_size).max(1);
        self.reader = Some(Box::new(Reader {
            agreed,
            limit: max_message_size,
            chunk,
            raw: BytesMut::from(head),
            out: BytesMut::new(),
            step: Step::Header,
            message: None,
            inflater: None,
            failed: None,
        }));
    }
}

/// The inflating state of one session.
struct Reader {
    agreed: PerMessageDeflate,
    /// The largest inflated message.
    limit: usize,
    /// The largest frame handed over.
    chunk: usize,
    /// Read from the socket, not yet looked at.
    raw: BytesMut,
    /// Frames ready for tungstenite.
    out: BytesMut,
    step: Step,
    /// The compressed message being inflated.
    message: Option<Message>,
    /// Allocated with the first compressed message; dropped after each one when the peer
    /// takes no context over.
    inflater: Option<Decompress>,
    /// What ended the stream, for every read after it.
    failed: Option<InflateError>,
}

/// Where the reader is in the frame it is reading.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// At the start of a frame.
    Header,
    /// Copying a frame that is not compressed: `left` payload bytes to go.
    Pass { left: u64 },
    /// Inflating a compressed frame's payload.
    Inflate(Compressed),
    /// The payload of a compressed message's final frame is in; its end is to be handed over.
    Finish,
}

#[derive(Debug, Clone, Copy)]
struct Compressed {
    left: u64,
    fin: bool,
    mask: Option<[u8; 4]>,
    /// Payload bytes consumed so far, for the mask's phase.
    at: u64,
    /// Bytes at the start of `raw` already unmasked.
    unmasked: usize,
}

/// A compressed message on its way through.
struct Message {
    opcode: u8,
    /// Its first frame has been handed over: the rest go as continuations.
    started: bool,
    /// Whether its frames come masked (from a client): the inflated ones must be too.
    masked: bool,
    /// Inflated bytes so far.
    size: usize,
    /// Inflated, not yet framed.
    pending: Vec<u8>,
    /// The sender ended its DEFLATE stream (a block with BFINAL set) inside the message.
    stream_ended: bool,
    /// How much of [`TAIL`] the inflater has taken.
    tail_fed: usize,
}

/// A frame header at the start of `bytes`, when all of it is there: the first byte, the mask
/// key, the payload length and the header's length.
fn parse_header(bytes: &[u8]) -> Option<(u8, Option<[u8; 4]>, u64, usize)> {
    let [first, second, ref rest @ ..] = *bytes else {
        return None;
    };
    let (length, after) = match second & 0x7f {
        126 => (
            u64::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?)),
            2,
        ),
        127 => (u64::from_be_bytes(rest.get(..8)?.try_into().ok()?), 8),
        short => (u64::from(short), 0),
    };
    let mask = if second & 0x80 != 0 {
        Some(rest.get(after..after + 4)?.try_into().ok()?)
    } else {
        None
    };
    let header_len = 2 + after + if mask.is_some() { 4 } else { 0 };
    Some((first, mask, length, header_len))
}

/// Writes a frame header: FIN and opcode in `first`, then the length in its shortest form,
/// and an all-zero mask when `masked` (a server's tungstenite wants masked frames; a zero key
/// leaves the payload as it is).
fn put_header(out: &mut BytesMut, first: u8, masked: bool, len: usize) {
    let mask_bit = if masked { 0x80 } else { 0 };
    out.put_u8(first);
    match len {
        0..=125 => out.put_u8(mask_bit | len as u8),
        126..=0xffff => {
            out.put_u8(mask_bit | 126);
            out.put_u16(len as u16);
        }
        _ => {
            out.put_u8(mask_bit | 127);
            out.put_u64(len as u64);
        }
    }
    if masked {
        out.put_u32(0);
    }
}

impl Reader {
    /// Turns what `raw` holds into frames for tungstenite, until about a chunk of them waits
    /// or more input is needed.
    fn process(&mut self) -> Result<(), InflateError> {
        while self.out.len() < self.chunk {
            match self.step {
                Step::Header => {
                    let Some((first, mask, length, header_len)) = parse_header(&self.raw) else {
                        return Ok(());
                    };
                    let (opcode, rsv) = (first & 0x0f, first & 0x70);
                    let starts = rsv == 0x40 && matches!(opcode, 1 | 2) && self.message.is_none();
                    let continues = rsv == 0 && opcode == 0 && self.message.is_some();
                    if starts {
                        self.message = Some(Message {
                            opcode,
                            started: false,
                            masked: mask.is_some(),
                            size: 0,
                            pending: Vec::new(),
                            stream_ended: false,
                            tail_fed: 0,
                        });
                    }
                    if starts || continues {
                        self.raw.advance(header_len);
                        self.step = Step::Inflate(Compressed {
                            left: length,
                            fin: first & 0x80 != 0,
                            mask,
                            at: 0,
                            unmasked: 0,
                        });
                    } else {
                        // Anything else goes to tungstenite as it came, to be checked there:
                        // RSV1 on a control frame or a continuation, a new data frame in the
                        // middle of a compressed message, a frame over the size limit.
                        self.out.put_slice(&self.raw[..header_len]);
                        self.raw.advance(header_len);
                        self.step = Step::Pass { left: length };
                    }
                }
                Step::Pass { left } => {
                    let n = left.min(self.raw.len() as u64) as usize;
                    self.out.put_slice(&self.raw[..n]);
                    self.raw.advance(n);
                    if n as u64 == left {
                        self.step = Step::Header;
                    } else {
                        self.step = Step::Pass {
                            left: left - n as u64,
                        };
                        return Ok(());
                    }
                }
                Step::Inflate(mut frame) => {
                    let available = frame.left.min(self.raw.len() as u64) as usize;
                    if let Some(key) = frame.mask {
                        let phase = frame.at as usize + frame.unmasked;
                        let fresh = &mut self.raw[frame.unmasked..available];
                        for (i, byte) in fresh.iter_mut().enumerate() {
                            *byte ^= key[(phase + i) % 4];
                        }
                        frame.unmasked = available;
                    }
                    let Some(message) = self.message.as_mut() else {
                        unreachable!("a compressed frame belongs to a message")
                    };
                    let mut sink = Sink {
                        out: &mut self.out,
                        inflater: &mut self.inflater,
                        agreed: &self.agreed,
                        limit: self.limit,
                        chunk: self.chunk,
                    };
                    let consumed = sink.feed(message, &self.raw[..available])?;
                    self.raw.advance(consumed);
                    frame.unmasked = frame.unmasked.saturating_sub(consumed);
                    frame.at += consumed as u64;
                    frame.left -= consumed as u64;
                    self.step = if frame.left > 0 {
                        Step::Inflate(frame)
                    } else if frame.fin {
                        Step::Finish
                    } else {
                        Step::Header
                    };
                    if frame.left > 0 && consumed == available {
                        return Ok(());
                    }
                }
                Step::Finish => {
                    let Some(message) = self.message.as_mut() else {
                        unreachable!("a message is finished once")
                    };
                    let mut sink = Sink {
                        out: &mut self.out,
                        inflater: &mut self.inflater,
                        agreed: &self.agreed,
                        limit: self.limit,
                        chunk: self.chunk,
                    };
                    if !sink.finish(message)? {
                        continue;
                    }
                    self.step = Step::Header;
                    if self.agreed.receive_no_context_takeover || message.stream_ended {
                        self.inflater = None;
                    }
                    self.message = None;
                }
            }
        }
        Ok(())
    }
}

/// Where inflated output goes, and what bounds it.
struct Sink<'a> {
    out: &'a mut BytesMut,
    inflater: &'a mut Option<Decompress>,
    agreed: &'a PerMessageDeflate,
    limit: usize,
    chunk: usize,
}

impl Sink<'_> {
    /// Feeds `input` to the inflater until it is all consumed or a chunk of frames waits in
    /// `out`; returns how much was consumed.
    fn feed(&mut self, message: &mut Message, input: &[u8]) -> Result<usize, InflateError> {
        let window = self.agreed.receive_window_bits;
        // zlib takes windows of 9 to 15 bits; a 9-bit window reads what an 8-bit one wrote.
        let inflater = self
            .inflater
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, window.max(9)));
        if message.pending.capacity() == 0 {
            message.pending = Vec::with_capacity(self.chunk);
        }
        let mut consumed = 0;
        loop {
            let full = message.pending.len() == message.pending.capacity();
            if full || message.pending.len() >= self.chunk {
                frame_out(self.out, message, self.chunk, false);
                if self.out.len() >= self.chunk {
                    return Ok(consumed);
                }
            }
            if message.stream_ended {
                if consumed < input.len() {
                    return Err(InflateError::Invalid(
                        "data after the final DEFLATE block".to_owned(),
                    ));
                }
                return Ok(consumed);
            }
            let (before_in, before_out) = (inflater.total_in(), message.pending.len());
            let status = inflater
                .decompress_vec(
                    &input[consumed..],
                    &mut message.pending,
                    FlushDecompress::Sync,
                )
                .map_err(|e| InflateError::Invalid(e.to_string()))?;
            let read = (inflater.total_in() - before_in) as usize;
            let wrote = message.pending.len() - before_out;
            consumed += read;
            message.size += wrote;
            if message.size > self.limit {
                return Err(InflateError::TooBig {
                    size: message.size,
                    limit: self.limit,
                });
            }
            message.stream_ended |= status == Status::StreamEnd;
            let room_left = message.pending.len() < message.pending.capacity();
            if read == 0 && wrote == 0 || consumed == input.len() && room_left {
                return Ok(consumed);
            }
        }
    }

    /// Ends a compressed message: puts back the flush marker its sender took off, inflates
    /// what is left and hands over the last frame. `false` when frames wait in `out` first.
    fn finish(&mut self, message: &mut Message) -> Result<bool, InflateError> {
        while !message.stream_ended && message.tail_fed < TAIL.len() {
            let consumed = self.feed(message, &TAIL[message.tail_fed..])?;
            if consumed == 0 {
                if self.out.len() >= self.chunk {
                    return Ok(false);
                }
                break;
            }
            message.tail_fed += consumed;
        }
        // What is left in the inflater once all input is in.
        loop {
            let size = message.size;
            self.feed(message, &[])?;
            if self.out.len() >= self.chunk {
                return Ok(false);
            }
            if message.size == size {
                break;
            }
        }
        frame_out(self.out, message, self.chunk, true);
        Ok(true)
    }
}

/// Hands over what a message has inflated, as frames of at most `chunk` bytes; the last is
/// final when `fin`. A final frame goes out even when empty; nothing else does.
fn frame_out(out: &mut BytesMut, message: &mut Message, chunk: usize, fin: bool) {
    let len = message.pending.len();
    let count = len.div_ceil(chunk).max(usize::from(fin));
    for i in 0..count {
        let piece = &message.pending[(i * chunk).min(len)..((i + 1) * chunk).min(len)];
        let opcode = if message.started { 0 } else { message.opcode };
        let last = fin && i + 1 == count;
        put_header(
            out,
            if last { 0x80 } else { 0 } | opcode,
            message.masked,
            piece.len(),
        );
        out.put_slice(piece);
        message.started = true;
    }
    message.pending.clear();
}

impl<S: AsyncRead + Unpin> AsyncRead for Inflating<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(reader) = this.reader.as_deref_mut() else {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        };
        loop {
            if !reader.out.is_empty() {
                let n = reader.out.len().min(buf.remaining());
                buf.put_slice(&reader.out[..n]);
                reader.out.advance(n);
                return Poll::Ready(Ok(()));
            }
            if let Some(failed) = &reader.failed {
                return Poll::Ready(Err(io::Error::other(failed.clone())));
            }
            if let Err(e) = reader.process() {
                // What was framed before the failure is handed over first.
                reader.failed = Some(e);
                continue;
            }
            if !reader.out.is_empty() {
                continue;
            }
            reader.raw.reserve(READ);
            let read = std::pin::pin!(tokio::io::AsyncReadExt::read_buf(
                &mut this.io,
                &mut reader.raw
            ));
            if ready!(read.poll(cx))? == 0 {
                // The end of the stream; tungstenite tells a cut-off frame from a clean end.
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Inflating<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
