//! permessage-deflate (RFC 7692): data messages compressed with DEFLATE, negotiated through
//! `Sec-WebSocket-Extensions`.
//!
//! tungstenite is still the protocol engine; it knows nothing of the extension and refuses
//! every frame with RSV1 set. So compression sits on both sides of it:
//! - receiving, [`Inflating`] stands between the byte stream and tungstenite. Once a session
//!   has agreed on compression, it follows the frames the peer sends and rewrites each
//!   compressed message (RSV1 on its first frame) into the plain frames of the inflated
//!   message, which tungstenite then validates as usual (UTF-8, sizes, fragmentation rules).
//!   Everything else passes through untouched, RSV1 on a control frame or a continuation
//!   included, which tungstenite refuses with 1002 as it should. The inflated size is counted
//!   while inflating, so a message that inflates past
//!   [`Config::max_message_size`](crate::Config::max_message_size) ends the session with
//!   1009 before more than that limit (and one output chunk) is ever produced.
//! - sending, [`Deflater`] compresses a message's payload and the session hands tungstenite
//!   the frames, with RSV1 on the first, as raw frames.
//!
//! Memory: compression state is allocated when the first compressed message goes out or comes
//! in, not at the handshake. zlib-rs's compressor takes about 300 KiB at a 15-bit window and
//! still 150 KiB at 12 bits (its hash table is 128 KiB whatever the window and memory level),
//! so it is not kept while idle: without context takeover it is dropped after every message,
//! with it the watchdog drops it a second after the last one and the next message starts from
//! the last 4 KiB sent (see `compress.rs`). The decompressor takes 19 KiB, up to 47 KiB once
//! 32 KiB have come in (zlib-rs allocates the 32 KiB window whatever the window agreed); it is
//! kept between messages unless the peer takes no context over. An idle session that agreed on
//! compression holds 9 + 19 KiB after small messages, at most about 60 KiB after large ones
//! (`cargo bench --bench memory`).

use tokio_tungstenite::tungstenite::http::{HeaderMap, HeaderValue};

mod compress;
mod extension;
mod inflate;

pub(crate) use compress::{Alone, Deflater};
pub(crate) use extension::{accept, offer};
pub(crate) use inflate::{InflateError, Inflating, Limits};

/// A server's answer to the compression a request offers, when `compression` is on: the
/// `Sec-WebSocket-Extensions` value to answer with, and what it agrees to.
pub(crate) fn answer_request(
    compression: Option<&Compression>,
    headers: &HeaderMap,
) -> Option<(HeaderValue, PerMessageDeflate)> {
    let offers = headers
        .get_all("sec-websocket-extensions")
        .iter()
        .filter_map(|value| value.to_str().ok());
    let (answer, agreed) = extension::answer(compression?, offers)?;
    Some((HeaderValue::from_str(&answer).ok()?, agreed))
}

/// The smallest window RFC 7692 lets a peer ask for.
const MIN_WINDOW_BITS: u8 = 8;
/// The largest window, DEFLATE's 32 KiB.
const MAX_WINDOW_BITS: u8 = 15;
/// zlib-rs's level 7 is the first to search lazily for longer matches, as C zlib's 6 does:
/// on the chat stream of `benches/compression.rs` it sends what Python `websockets` sends
/// (0.361 of the uncompressed bytes, against 0.370 at level 6) for 17% more CPU.
const DEFAULT_LEVEL: u32 = 7;

/// permessage-deflate settings, installed with
/// [`Config::compression`](crate::Config::compression). A client offers the extension with
/// them; a server accepts a client's offer that fits them, and otherwise goes on without
/// compression.
///
/// "Own" settings are about what this end sends; "peer" settings ask the other end to limit
/// what it sends, which bounds what this end must keep to read it.
///
/// ```
/// use typed_ws::{Compression, Config};
///
/// // Compress everything from 64 bytes up, and keep no state between messages on either side.
/// let config = Config::new().compression(
///     Compression::new()
///         .threshold(64)
///         .no_context_takeover()
///         .peer_no_context_takeover(),
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    pub(crate) threshold: usize,
    pub(crate) level: u32,
    pub(crate) no_context_takeover: bool,
    pub(crate) peer_no_context_takeover: bool,
    pub(crate) max_window_bits: u8,
    pub(crate) peer_max_window_bits: u8,
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            threshold: 32,
            level: DEFAULT_LEVEL,
            no_context_takeover: false,
            peer_no_context_takeover: false,
            max_window_bits: MAX_WINDOW_BITS,
            peer_max_window_bits: MAX_WINDOW_BITS,
        }
    }
}

impl Compression {
    /// Compression with context takeover both ways, 15-bit windows, level 7, and messages
    /// under 32 bytes sent uncompressed. The compressor is released while the session is
    /// idle, so an idle session keeps only the decompressor (19 KiB after small messages)
    /// and the last 4 KiB it sent.
    pub fn new() -> Self {
        Self::default()
    }

    /// Messages shorter than this many bytes go out uncompressed (RFC 7692 lets every message
    /// choose): compressing a few bytes only adds to them. Default 32.
    pub fn threshold(mut self, bytes: usize) -> Self {
        self.threshold = bytes;
        self
    }

    /// The DEFLATE level, 0 (store) to 9 (smallest); higher values are taken as 9. Default 7,
    /// which with zlib-rs compresses as C zlib's default 6 does (browsers, Python
    /// `websockets`); 1 takes about a third of the CPU for 15% more bytes on chat messages.
    pub fn level(mut self, level: u32) -> Self {
        self.level = level.min(9);
        self
    }

    /// Compresses every message on its own, with no memory of the previous ones: worse ratios
    /// on small messages (0.87 of the uncompressed bytes on chat messages instead of 0.36),
    /// but no compressor state nor history kept between messages. (A client offers
    /// `client_no_context_takeover`; a server asks for it by answering
    /// `server_no_context_takeover`, which every client must accept.)
    pub fn no_context_takeover(mut self) -> Self {
        self.no_context_takeover = true;
        self
    }

    /// Asks the peer to compress every message on its own, so that no decompressor state is
    /// kept between messages. (A client offers `server_no_context_takeover`, which a server
    /// must accept or decline the offer; a server answers `client_no_context_takeover`.)
    pub fn peer_no_context_takeover(mut self) -> Self {
        self.peer_no_context_takeover = true;
        self
    }

    /// The largest window, in bits (8 to 15, clamped), this end compresses with: smaller
    /// windows compress less, and take less memory only while sending (the compressor is
    /// released while idle): about 300 KiB at 15 bits, 200 KiB at 12. The peer may ask for a
    /// smaller one. zlib cannot compress within a 256-byte window, so with 8 bits messages go
    /// out uncompressed. Default 15: chat messages shrink to 0.36 of their size, against
    /// 0.40 at 12 bits.
    pub fn max_window_bits(mut self, bits: u8) -> Self {
        self.max_window_bits = bits.clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
        self
    }

    /// The largest window, in bits (8 to 15, clamped), the peer may compress with, which is
    /// what this end keeps to decompress. A client offers `server_max_window_bits`; a server
    /// answers `client_max_window_bits` when the client's offer allows it. Default 15: the
    /// decompressor (zlib-rs) allocates a 32 KiB window whatever the bits, so asking for fewer
    /// saves nothing here and costs the peer's ratio.
    pub fn peer_max_window_bits(mut self, bits: u8) -> Self {
        self.peer_max_window_bits = bits.clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
        self
    }
}

/// The permessage-deflate parameters a session's handshake agreed on, from this end's point
/// of view: [`Session::compression`](crate::Session::compression).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerMessageDeflate {
    pub(crate) send_window_bits: u8,
    pub(crate) send_no_context_takeover: bool,
    pub(crate) receive_window_bits: u8,
    pub(crate) receive_no_context_takeover: bool,
}

impl PerMessageDeflate {
    /// The window this end may compress with, in bits (8 to 15).
    pub fn send_window_bits(&self) -> u8 {
        self.send_window_bits
    }

    /// Whether this end compresses every message on its own.
    pub fn send_no_context_takeover(&self) -> bool {
        self.send_no_context_takeover
    }

    /// The largest window the peer compresses with, in bits (8 to 15).
    pub fn receive_window_bits(&self) -> u8 {
        self.receive_window_bits
    }

    /// Whether the peer compresses every message on its own, so that no decompressor state
    /// is kept between messages.
    pub fn receive_no_context_takeover(&self) -> bool {
        self.receive_no_context_takeover
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builder_sets_each_setting_and_clamps_what_zlib_and_rfc_7692_cannot_take() {
        let default = Compression::new();
        assert_eq!(default, Compression::default());
        assert_eq!(
            (default.threshold, default.level, default.max_window_bits),
            (32, 7, 15)
        );
        assert!(!default.no_context_takeover && !default.peer_no_context_takeover);
        let set = Compression::new()
            .threshold(7)
            .level(3)
            .no_context_takeover()
            .peer_no_context_takeover()
            .max_window_bits(10)
            .peer_max_window_bits(11);
        assert_eq!(
            set,
            Compression {
                threshold: 7,
                level: 3,
                no_context_takeover: true,
                peer_no_context_takeover: true,
                max_window_bits: 10,
                peer_max_window_bits: 11,
            }
        );
        let clamped = Compression::new()
            .level(12)
            .max_window_bits(3)
            .peer_max_window_bits(20);
        assert_eq!(
            (
                clamped.level,
                clamped.max_window_bits,
                clamped.peer_max_window_bits
            ),
            (9, 8, 15)
        );
    }

    #[test]
    fn a_server_answers_only_with_compression_on_and_an_offer_it_can_take() {
        let mut headers = HeaderMap::new();
        headers.append(
            "sec-websocket-extensions",
            HeaderValue::from_static("x-other"),
        );
        headers.append(
            "sec-websocket-extensions",
            HeaderValue::from_static("permessage-deflate; client_max_window_bits"),
        );
        assert_eq!(answer_request(None, &headers), None);
        let on = Compression::new().peer_max_window_bits(12);
        let (answer, agreed) = answer_request(Some(&on), &headers).expect("accepted");
        assert_eq!(answer, "permessage-deflate; client_max_window_bits=12");
        assert_eq!(agreed.receive_window_bits(), 12);
        assert_eq!(agreed.send_window_bits(), 15);
        assert!(!agreed.send_no_context_takeover() && !agreed.receive_no_context_takeover());
        assert_eq!(answer_request(Some(&on), &HeaderMap::new()), None);

        let fresh = Compression::new().no_context_takeover();
        let mut offer = HeaderMap::new();
        offer.append(
            "sec-websocket-extensions",
            HeaderValue::from_static("permessage-deflate; client_no_context_takeover"),
        );
        let (answer, agreed) = answer_request(Some(&fresh), &offer).expect("accepted");
        assert_eq!(
            answer,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        assert!(agreed.send_no_context_takeover() && agreed.receive_no_context_takeover());
    }
}
