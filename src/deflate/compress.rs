//! The sending side of permessage-deflate: compresses a message's payload.

use bytes::Bytes;
use flate2::{Compress, FlushCompress};

use super::{Compression, MIN_WINDOW_BITS, PerMessageDeflate};

/// Compresses the data messages of one session.
pub(crate) struct Deflater {
    agreed: PerMessageDeflate,
    settings: Compression,
    /// Allocated with the first compressed message; dropped after each one without context
    /// takeover.
    compress: Option<Compress>,
}

impl Deflater {
    pub(crate) fn new(agreed: PerMessageDeflate, settings: Compression) -> Self {
        Deflater {
            agreed,
            settings,
            compress: None,
        }
    }

    /// The payload of `data` compressed, to go out with RSV1 set; `None` when the message goes
    /// out as it is: under the threshold, or when the window agreed is too small for zlib.
    pub(crate) fn compress(&mut self, data: &[u8]) -> Option<Bytes> {
        if data.len() < self.settings.threshold || self.agreed.send_window_bits == MIN_WINDOW_BITS {
            return None;
        }
        let (level, bits) = (self.settings.level, self.agreed.send_window_bits);
        let compress = self.compress.get_or_insert_with(|| {
            Compress::new_with_window_bits(flate2::Compression::new(level), false, bits)
        });
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let mut consumed = 0;
        loop {
            let before = compress.total_in();
            if compress
                .compress_vec(&data[consumed..], &mut out, FlushCompress::Sync)
                .is_err()
            {
                // Compressing into memory fails only on a misuse of the stream; a fresh
                // compressor refers to nothing the peer may lack, so this message goes out as
                // it is and the next starts over.
                self.compress = None;
                return None;
            }
            consumed += (compress.total_in() - before) as usize;
            if consumed == data.len() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity().max(64));
        }
        // A sync flush ends with an empty stored block, 00 00 ff ff, which RFC 7692 has the
        // sender take off and the receiver put back.
        if out.ends_with(&[0x00, 0x00, 0xff, 0xff]) {
            out.truncate(out.len() - 4);
        } else if out.is_empty() {
            // zlib flushes nothing for an empty message right after a flush; RFC 7692
            // (7.2.3.6) has it sent as one 0x00 byte, an empty stored block once the marker is
            // put back.
            out.push(0x00);
        }
        if self.agreed.send_no_context_takeover {
            self.compress = None;
        }
        Some(out.into())
    }
}

#[cfg(test)]
mod tests {
    use flate2::{Decompress, FlushDecompress};

    use super::*;

    const AGREED: PerMessageDeflate = PerMessageDeflate {
        send_window_bits: 15,
        send_no_context_takeover: false,
        receive_window_bits: 15,
        receive_no_context_takeover: false,
    };

    /// Inflates a message as a peer does: the marker put back.
    fn inflate(inflater: &mut Decompress, payload: &[u8]) -> Vec<u8> {
        let input = [payload, &[0, 0, 0xff, 0xff]].concat();
        let mut out = Vec::with_capacity(1 << 20);
        inflater
            .decompress_vec(&input, &mut out, FlushDecompress::Sync)
            .unwrap();
        out
    }

    #[test]
    fn messages_under_the_threshold_or_a_window_of_8_bits_go_out_as_they_are() {
        let mut deflater = Deflater::new(AGREED, Compression::new().threshold(10));
        assert_eq!(deflater.compress(b"123456789"), None);
        assert!(deflater.compress(b"1234567890").is_some());
        let narrow = PerMessageDeflate {
            send_window_bits: 8,
            ..AGREED
        };
        let mut deflater = Deflater::new(narrow, Compression::new());
        assert_eq!(deflater.compress(&[b'a'; 1000]), None);
        assert!(deflater.compress.is_none(), "state allocated for nothing");
    }

    #[test]
    fn messages_inflate_back_in_order_with_the_context_kept_or_dropped_after_each() {
        let text = b"the quick brown fox jumps over the lazy dog, again and again";
        for fresh in [false, true] {
            let agreed = PerMessageDeflate {
                send_no_context_takeover: fresh,
                ..AGREED
            };
            let mut deflater = Deflater::new(agreed, Compression::new().threshold(0));
            let mut peer = Decompress::new(false);
            let big: Vec<u8> = text.iter().copied().cycle().take(300_000).collect();
            let mut sizes = Vec::new();
            for message in [&text[..], &text[..], b"", &big] {
                let payload = deflater.compress(message).expect("compressed");
                assert!(
                    !payload.ends_with(&[0, 0, 0xff, 0xff]),
                    "the marker was left on"
                );
                sizes.push(payload.len());
                assert_eq!(inflate(&mut peer, &payload), message);
                if fresh {
                    peer = Decompress::new(false);
                }
                assert_eq!(deflater.compress.is_none(), fresh, "state after a message");
            }
            assert_eq!(sizes[2], 1, "an empty message is one 0x00 byte");
            // With the context kept, the repeat refers back to the first message.
            assert_eq!(sizes[1] < sizes[0] / 2, !fresh, "sizes {sizes:?}");
            assert!(sizes[3] < big.len() / 50, "sizes {sizes:?}");
        }
    }

    #[test]
    fn incompressible_messages_come_out_whole_however_the_output_buffer_fills() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let noise: Vec<u8> = (0..100_000)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 32) as u8
            })
            .collect();
        let mut deflater = Deflater::new(AGREED, Compression::new().threshold(0));
        let mut peer = Decompress::new(false);
        for len in [1, 100, 1000, 40_000, 100_000] {
            let payload = deflater.compress(&noise[..len]).expect("compressed");
            assert_eq!(inflate(&mut peer, &payload), &noise[..len], "{len} bytes");
        }
    }
}
