//! The receiving side of permessage-deflate: a byte stream under tungstenite that inflates
//! compressed messages into plain frames (see the parent module's docs).

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, BytesMut};
use flate2::{Decompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::PerMessageDeflate;
use crate::budget::{Budget, Overdrawn, Share};
use crate::wire::header;

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
    /// The message inflated past what the budget for unfinished messages had left.
    Overdrawn(Overdrawn),
}

impl fmt::Display for InflateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InflateError::TooBig { size, limit } => write!(
                f,
                "a compressed message inflated to {size} bytes, over the limit of {limit} bytes"
            ),
            InflateError::Invalid(why) => write!(f, "invalid compressed data: {why}"),
            InflateError::Overdrawn(overdrawn) => overdrawn.fmt(f),
        }
    }
}

impl std::error::Error for InflateError {}

/// What bounds the inflated messages of a session.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// The largest frame handed to tungstenite: its own frame limit, which it would refuse
    /// a larger one with.
    pub(crate) frame: usize,
    /// The largest inflated message.
    pub(crate) message: usize,
    /// What unfinished messages take from.
    pub(crate) unfinished: Arc<Budget>,
}

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

    /// The stream underneath.
    pub(crate) fn get_ref(&self) -> &S {
        &self.io
    }

    /// Starts inflating, from the next byte read; `head` is what was read from the stream
    /// already, after the handshake. An inflated message over `limits.message` is refused,
    /// and no frame handed to tungstenite is larger than `limits.frame`.
    pub(crate) fn activate(&mut self, agreed: PerMessageDeflate, limits: Limits, head: &[u8]) {
        let max_message_size = limits.message;
        let chunk = CHUNK.min(limits.frame).min(max_message_size).max(1);
        self.reader = Some(Box::new(Reader {
            raw: BytesMut::from(head),
            step: Step::Header,
            message: None,
            failed: None,
            share: Share::new(limits.unfinished),
            output: Output {
                out: BytesMut::new(),
                inflater: None,
                agreed,
                limit: max_message_size,
                chunk,
            },
        }));
    }
}

/// The inflating state of one session.
struct Reader {
    /// Read from the socket, not yet looked at.
    raw: BytesMut,
    step: Step,
    /// The compressed message being inflated.
    message: Option<CompressedMessage>,
    /// What ended the stream, for every read after it.
    failed: Option<InflateError>,
    /// What the message being inflated holds of the budget for unfinished messages.
    share: Share,
    output: Output,
}

/// Where the reader is in the frame it is reading.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// At the start of a frame.
    Header,
    /// Copying a frame that is not compressed: `left` payload bytes to go.
    Pass { left: u64 },
    /// Inflating a compressed frame's payload.
    Inflate(CompressedFrame),
    /// The payload of a compressed message's final frame is in; its end is to be handed over.
    Finish,
}

#[derive(Debug, Clone, Copy)]
struct CompressedFrame {
    left: u64,
    fin: bool,
    mask: Option<[u8; 4]>,
    /// Payload bytes consumed so far, for the mask's phase.
    at: u64,
    /// Bytes at the start of `raw` already unmasked.
    unmasked: usize,
}

/// A compressed message on its way through.
struct CompressedMessage {
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
    let header = header::parse(bytes)?;
    Some((header.first, header.mask, header.payload_len, header.len))
}

/// Writes a frame header: FIN and opcode in `first`, then the length in its shortest form,
/// and an all-zero mask when `masked` (a server's tungstenite wants masked frames; a zero key
/// leaves the payload as it is).
fn put_header(out: &mut BytesMut, first: u8, masked: bool, len: usize) {
    header::write(out, first, masked.then_some([0; 4]), len as u64);
}

impl Reader {
    /// Takes what the message left unfinished has inflated to from the budget, or gives it
    /// back once it is complete: a message inflated whole in one go never touches it.
    fn hold(&mut self) -> Result<(), InflateError> {
        match &self.message {
            Some(message) => self
                .share
                .take(message.size.saturating_sub(self.share.held()))
                .map_err(InflateError::Overdrawn),
            None => {
                self.share.give_back();
                Ok(())
            }
        }
    }

    /// Turns what `raw` holds into frames for tungstenite, until about a chunk of them waits
    /// or more input is needed.
    fn process(&mut self) -> Result<(), InflateError> {
        while self.output.out.len() < self.output.chunk {
            match self.step {
                Step::Header => {
                    let Some((first, mask, length, header_len)) = parse_header(&self.raw) else {
                        return Ok(());
                    };
                    let (opcode, rsv) = (first & 0x0f, first & 0x70);
                    let starts = rsv == 0x40 && matches!(opcode, 1 | 2) && self.message.is_none();
                    let continues = rsv == 0 && opcode == 0 && self.message.is_some();
                    if starts {
                        self.message = Some(CompressedMessage {
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
                        self.step = Step::Inflate(CompressedFrame {
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
                        self.output.out.put_slice(&self.raw[..header_len]);
                        self.raw.advance(header_len);
                        self.step = Step::Pass { left: length };
                    }
                }
                Step::Pass { left } => {
                    let n = left.min(self.raw.len() as u64) as usize;
                    self.output.out.put_slice(&self.raw[..n]);
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
                    let consumed = self.output.feed(message, &self.raw[..available])?;
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
                    if !self.output.finish(message)? {
                        continue;
                    }
                    self.step = Step::Header;
                    if self.output.agreed.receive_no_context_takeover || message.stream_ended {
                        self.output.inflater = None;
                    }
                    self.message = None;
                }
            }
        }
        Ok(())
    }
}

/// Where inflated output goes, and what bounds it.
struct Output {
    /// Frames ready for tungstenite.
    out: BytesMut,
    /// Allocated with the first compressed message; dropped after each one when the peer
    /// takes no context over.
    inflater: Option<Decompress>,
    agreed: PerMessageDeflate,
    /// The largest inflated message.
    limit: usize,
    /// The largest frame handed over.
    chunk: usize,
}

impl Output {
    /// Feeds `input` to the inflater until it is all consumed or a chunk of frames waits in
    /// `out`; returns how much was consumed.
    fn feed(
        &mut self,
        message: &mut CompressedMessage,
        input: &[u8],
    ) -> Result<usize, InflateError> {
        let window = self.agreed.receive_window_bits;
        // zlib takes windows of 9 to 15 bits; a 9-bit window reads what an 8-bit one wrote.
        let inflater = self
            .inflater
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, window.max(9)));
        let mut consumed = 0;
        loop {
            let len = message.pending.len();
            if len >= self.chunk {
                frame_out(&mut self.out, message, self.chunk, false);
                if self.out.len() >= self.chunk {
                    return Ok(consumed);
                }
            } else if len == message.pending.capacity() {
                // Grown as the output comes, up to a chunk: most messages are small.
                message
                    .pending
                    .reserve(len.max(1 << 10).min(self.chunk - len));
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
    fn finish(&mut self, message: &mut CompressedMessage) -> Result<bool, InflateError> {
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
        frame_out(&mut self.out, message, self.chunk, true);
        Ok(true)
    }
}

/// Hands over what a message has inflated, as frames of at most `chunk` bytes; the last is
/// final when `fin`. A final frame goes out even when empty; nothing else does.
fn frame_out(out: &mut BytesMut, message: &mut CompressedMessage, chunk: usize, fin: bool) {
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
            if !reader.output.out.is_empty() {
                let n = reader.output.out.len().min(buf.remaining());
                buf.put_slice(&reader.output.out[..n]);
                reader.output.out.advance(n);
                return Poll::Ready(Ok(()));
            }
            if let Some(failed) = &reader.failed {
                return Poll::Ready(Err(io::Error::other(failed.clone())));
            }
            // Inflating costs far more than the read that brought its input: each chunk of it
            // counts against the task's tokio budget, so that a frame of a kilobyte that
            // inflates to megabytes does not hold the worker for all of them at once.
            let coop = ready!(tokio::task::coop::poll_proceed(cx));
            let processed = reader.process().and_then(|()| reader.hold());
            coop.made_progress();
            if let Err(e) = processed {
                // What was framed before the failure is handed over first.
                reader.failed = Some(e);
                continue;
            }
            if !reader.output.out.is_empty() {
                continue;
            }
            reader.raw.reserve(READ);
            let read = std::pin::pin!(tokio::io::AsyncReadExt::read_buf(
                &mut this.io,
                &mut reader.raw
            ));
            let Poll::Ready(read) = read.poll(cx) else {
                // Nothing more for now: an idle session keeps no buffers.
                if reader.raw.is_empty() {
                    reader.raw = BytesMut::new();
                    reader.output.out = BytesMut::new();
                }
                return Poll::Pending;
            };
            if read? == 0 {
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

#[cfg(test)]
mod tests;
