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

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater")
            .field("agreed", &self.agreed)
            .field("allocated", &self.compress.is_some())
            .finish()
    }
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
