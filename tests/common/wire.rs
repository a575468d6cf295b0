//! Frame headers (RFC 6455 5.2) outside the library, written and parsed by tungstenite's own
//! [`FrameHeader::format`] and [`FrameHeader::parse`], as `src/wire/header.rs` does inside it:
//! the one place where the tests, the benches and the hostile tool put frames on the wire by
//! hand. The tests reach it as `common::wire`; the `benches` and `hostile` packages include
//! this same file with `#[path]`.
//!
//! Hostile peers need what no library sends, so nothing here judges a frame: any first byte
//! (reserved bits, reserved opcodes), a header claiming a length that no payload follows,
//! masked or unmasked whatever the sender's role.

use std::io::Cursor;

use typed_ws::tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use typed_ws::tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode;

/// Bit of the first byte: the frame ends its message.
pub const FIN: u8 = 0x80;
/// Bit of the first byte: RSV1, a compressed message's first frame under permessage-deflate.
pub const RSV1: u8 = 0x40;

/// The mask the hand-made clients put on their frames.
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The longest header: 2 bytes, a 64-bit length and a mask.
const MAX_LEN: usize = 14;

/// A frame header as read from the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The first byte as sent: FIN, RSV1-3 and the opcode.
    pub first: u8,
    /// The payload length the header claims.
    pub payload_len: u64,
    /// The header's own length, mask included.
    pub len: usize,
    pub mask: Option<[u8; 4]>,
}

/// tungstenite's header for a first byte, any opcode included.
fn frame_header(first: u8, mask: Option<[u8; 4]>) -> FrameHeader {
    FrameHeader {
        is_final: first & FIN != 0,
        rsv1: first & RSV1 != 0,
        rsv2: first & 0x20 != 0,
        rsv3: first & 0x10 != 0,
        opcode: OpCode::from(first & 0x0f),
        mask,
    }
}

fn write_header(out: &mut Vec<u8>, first: u8, payload_len: u64, mask: Option<[u8; 4]>) {
    frame_header(first, mask)
        .format(payload_len, out)
        .expect("writing to a Vec");
}

/// The header of a frame with first byte `first` (FIN, RSV1-3, opcode) claiming `payload_len`
/// bytes, in the shortest length form, then `mask` when given. No payload need follow: a
/// length bomb is judged by its header.
pub fn header(first: u8, payload_len: u64, mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAX_LEN);
    write_header(&mut out, first, payload_len, mask);
    out
}

/// One frame as bytes on the wire: [`header`] and `payload`, masked with `mask` when given.
pub fn frame(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAX_LEN + payload.len());
    write_header(&mut out, first, payload.len() as u64, mask);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(mask) = mask {
        apply_mask(&mut out[start..], mask);
    }
    out
}

/// The length of the header of a frame of `payload_len` bytes, with a mask or without.
pub fn header_len(payload_len: u64, masked: bool) -> usize {
    frame_header(0, masked.then_some([0; 4])).len(payload_len)
}

/// The header at the start of `bytes`, once all of it is there; whatever its opcode.
pub fn parse(bytes: &[u8]) -> Option<Header> {
    let mut head = [0; MAX_LEN];
    let have = bytes.len().min(MAX_LEN);
    head[..have].copy_from_slice(&bytes[..have]);
    // tungstenite refuses reserved opcodes; opcode 0 (a continuation) parses whatever the real
    // one is, and the real one is kept.
    head[0] &= 0xf0;
    let mut cursor = Cursor::new(&head[..have]);
    let (header, payload_len) =
        FrameHeader::parse(&mut cursor).expect("opcode 0 is valid and a slice reads")?;
    Some(Header {
        first: bytes[0],
        payload_len,
        len: cursor.position() as usize,
        mask: header.mask,
    })
}

/// Masks or unmasks `payload` (RFC 6455 5.3).
pub fn apply_mask(payload: &mut [u8], mask: [u8; 4]) {
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
}
