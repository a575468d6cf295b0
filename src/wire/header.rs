//! Frame headers (RFC 6455 5.2), written by tungstenite's own `FrameHeader::format` and
//! read as its `FrameHeader::parse` reads them (checked against it on every header in debug
//! builds): the layers under tungstenite cannot disagree with it on where a frame ends.

#[cfg(any(debug_assertions, test, feature = "compression"))]
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;

/// The longest header: 2 bytes, a 64-bit length and a mask.
pub(crate) const MAX_LEN: usize = 14;

/// A frame header as the layers under tungstenite need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// The first byte as sent: FIN, RSV1-3 and the opcode.
    pub(crate) first: u8,
    pub(crate) mask: Option<[u8; 4]>,
    pub(crate) payload_len: u64,
    /// The header's own length.
    pub(crate) len: usize,
}

/// Bit of the first byte: the frame ends its message.
pub(crate) const FIN: u8 = 0x80;
/// Bit of the first byte: RSV1, a compressed message's first frame under permessage-deflate.
#[cfg(any(test, feature = "compression"))]
pub(crate) const RSV1: u8 = 0x40;

impl Header {
    pub(crate) fn is_control(&self) -> bool {
        self.first & 0x08 != 0
    }

    /// A final data frame or a control frame: either completes a message.
    pub(crate) fn ends_message(&self) -> bool {
        self.first & FIN != 0 || self.is_control()
    }
}

/// The header at the start of `bytes`, once all of it is there. Any opcode is read, reserved
/// ones included: judging frames is tungstenite's part, and a frame it refuses must still be
/// followed to its end.
///
/// Read straight from the bytes: this runs for every frame that arrives, and tungstenite's
/// parser, behind `io::Read`, costs several times as much (4% of the instructions of a
/// pipelined small echo). Debug builds, and so every test, check each header read against
/// tungstenite's [`FrameHeader::parse`].
pub(crate) fn parse(bytes: &[u8]) -> Option<Header> {
    let header = read(bytes);
    #[cfg(debug_assertions)]
    assert_eq!(header, by_tungstenite(bytes), "the header of {bytes:02x?}");
    header
}

fn read(bytes: &[u8]) -> Option<Header> {
    let [first, second, rest @ ..] = bytes else {
        return None;
    };
    let (payload_len, rest) = match second & 0x7f {
        126 => {
            let (length, rest) = rest.split_first_chunk::<2>()?;
            (u64::from(u16::from_be_bytes(*length)), rest)
        }
        127 => {
            let (length, rest) = rest.split_first_chunk::<8>()?;
            (u64::from_be_bytes(*length), rest)
        }
        short => (u64::from(short), rest),
    };
    let mask = match second & 0x80 {
        0 => None,
        _ => Some(*rest.first_chunk::<4>()?),
    };
    Some(Header {
        first: *first,
        mask,
        payload_len,
        len: bytes.len() - rest.len() + mask.map_or(0, |m| m.len()),
    })
}

/// The same header as tungstenite reads it.
#[cfg(debug_assertions)]
fn by_tungstenite(bytes: &[u8]) -> Option<Header> {
    if bytes.is_empty() {
        return None;
    }
    let mut head = [0; MAX_LEN];
    let have = bytes.len().min(MAX_LEN);
    head[..have].copy_from_slice(&bytes[..have]);
    // tungstenite refuses reserved opcodes: with opcode 0 (a continuation) it reads the rest.
    head[0] &= 0xf0;
    let mut cursor = std::io::Cursor::new(&head[..have]);
    // A slice never fails to read, and opcode 0 is valid: the only error cannot happen.
    let (header, payload_len) = FrameHeader::parse(&mut cursor).ok()??;
    Some(Header {
        first: bytes[0],
        mask: header.mask,
        payload_len,
        len: cursor.position() as usize,
    })
}

/// Writes a header: `first` (FIN, RSV1-3, opcode), then the length in its shortest form, then
/// `mask` when given: the frames an inflated message is handed to tungstenite in.
#[cfg(any(test, feature = "compression"))]
pub(crate) fn write(out: &mut bytes::BytesMut, first: u8, mask: Option<[u8; 4]>, payload_len: u64) {
    use bytes::BufMut;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode;

    let header = FrameHeader {
        is_final: first & FIN != 0,
        rsv1: first & RSV1 != 0,
        rsv2: first & 0x20 != 0,
        rsv3: first & 0x10 != 0,
        opcode: OpCode::from(first & 0x0f),
        mask,
    };
    // Writing to memory cannot fail.
    let _ = header.format(payload_len, &mut out.writer());
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;

    fn written(first: u8, mask: Option<[u8; 4]>, len: u64) -> Vec<u8> {
        let mut out = BytesMut::new();
        write(&mut out, first, mask, len);
        out.to_vec()
    }

    #[test]
    fn headers_take_the_shortest_length_form() {
        assert_eq!(written(0x81, None, 125), [0x81, 125]);
        assert_eq!(
            written(0x02, Some([0; 4]), 125),
            [0x02, 0x80 | 125, 0, 0, 0, 0]
        );
        assert_eq!(written(0x80, None, 126), [0x80, 126, 0, 126]);
        assert_eq!(
            written(0x80, Some([0; 4]), 0xffff),
            [0x80, 0xfe, 0xff, 0xff, 0, 0, 0, 0]
        );
        assert_eq!(
            written(0x82, Some([1, 2, 3, 4]), 0x10000),
            [0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4]
        );
        assert_eq!(written(0xc1, None, 0x10000)[..2], [0xc1, 127]);
    }

    /// Every first and second byte, with every length and mask that can follow, whole and
    /// cut short: read as tungstenite reads it.
    #[cfg(debug_assertions)]
    #[test]
    fn every_header_reads_as_tungstenite_reads_it() {
        for first in 0..=u8::MAX {
            for second in 0..=u8::MAX {
                let mut bytes = vec![first, second];
                bytes.extend(3..15);
                for cut in 0..=bytes.len() {
                    assert_eq!(read(&bytes[..cut]), by_tungstenite(&bytes[..cut]));
                }
            }
        }
    }

    #[test]
    fn what_is_written_parses_back_whole_and_not_before() {
        for (first, mask, len) in [
            (0x81, None, 0),
            (0xc2, Some([9, 8, 7, 6]), 125),
            (0x00, None, 126),
            (0x89, Some([1, 1, 1, 1]), 0xffff),
            // A reserved opcode is followed all the same.
            (0x83, Some([5, 6, 7, 8]), 1 << 40),
        ] {
            let bytes = written(first, mask, len);
            let header = parse(&bytes).expect("a whole header");
            assert_eq!(
                header,
                Header {
                    first,
                    mask,
                    payload_len: len,
                    len: bytes.len(),
                }
            );
            for cut in 0..bytes.len() {
                assert_eq!(parse(&bytes[..cut]), None, "{cut} bytes of {bytes:?}");
            }
        }
    }
}
