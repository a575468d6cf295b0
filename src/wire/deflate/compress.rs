//! The sending side of permessage-deflate: compresses a message's payload.
//!
//! With context takeover, a message may refer back to the ones before it, which the peer keeps
//! in its window. The compressor that remembers them costs about 300 KiB with zlib-rs (its
//! hash table alone is 128 KiB whatever the window and memory level), too much to keep for a
//! session that sends nothing. So the session's watchdog [releases](Deflater::release_if_idle)
//! it once the session has compressed nothing for [`RELEASE_AFTER`], keeping only the last
//! [`HISTORY`] bytes compressed; the next message starts a compressor with them as its
//! dictionary. They are the end of what the peer's window holds, so what refers back to them
//! inflates as before; only matches further back are lost, for that one message.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use flate2::{Compress, FlushCompress};
use tokio::time::Instant;

use super::{Compression, MIN_WINDOW_BITS, PerMessageDeflate};

/// How long a compressor is kept after its last message. A busy session never pays to set
/// one up again; an idle one holds none a second later, and starting a compressor again
/// (about 20 µs with its dictionary) is nothing beside a pause of a second.
const RELEASE_AFTER: Duration = Duration::from_secs(1);

/// What a released compressor leaves behind: the last bytes compressed, Python `websockets`'
/// whole 12-bit window, so the first message after a pause compresses as well as it does there.
const HISTORY: usize = 4 << 10;

/// Compresses the data messages of one session.
pub(crate) struct Deflater {
    agreed: PerMessageDeflate,
    settings: Compression,
    /// Allocated with the first compressed message; dropped after each one without context
    /// takeover, and when idle with it.
    compress: Option<Compress>,
    /// With context takeover: the end of what was compressed, up to [`HISTORY`] bytes (and
    /// the window), the dictionary of the next compressor.
    history: VecDeque<u8>,
    /// When the kept compressor was last used.
    last_used: Instant,
}

impl Deflater {
    pub(crate) fn new(agreed: PerMessageDeflate, settings: Compression) -> Self {
        Deflater {
            agreed,
            settings,
            compress: None,
            history: VecDeque::new(),
            last_used: Instant::now(),
        }
    }

    /// The payload of `data` compressed, to go out with RSV1 set; `None` when the message goes
    /// out as it is: under the threshold, or when the window agreed is too small for zlib.
    pub(crate) fn compress(&mut self, data: &[u8]) -> Option<Bytes> {
        if data.len() < self.settings.threshold || self.agreed.send_window_bits == MIN_WINDOW_BITS {
            return None;
        }
        let (level, bits) = (self.settings.level, self.agreed.send_window_bits);
        let history = &mut self.history;
        let compress = self.compress.get_or_insert_with(|| {
            let mut compress = compressor(level, bits);
            if !history.is_empty() {
                // A fresh raw stream takes a dictionary of any length; it only fails on misuse.
                let _ = compress.set_dictionary(history.make_contiguous());
            }
            compress
        });
        let Some(out) = deflate_message(compress, data) else {
            // A fresh compressor refers to nothing the peer may lack: this message goes out as
            // it is and the next starts over.
            self.compress = None;
            return None;
        };
        if self.agreed.send_no_context_takeover {
            self.compress = None;
        } else {
            self.remember(data);
            self.last_used = Instant::now();
        }
        Some(out)
    }

    /// Keeps the end of a message compressed with context takeover, for the next compressor
    /// should this one be released.
    fn remember(&mut self, data: &[u8]) {
        let limit = HISTORY.min(1 << self.agreed.send_window_bits);
        let tail = &data[data.len().saturating_sub(limit)..];
        let excess = (self.history.len() + tail.len()).saturating_sub(limit);
        self.history.drain(..excess);
        // Exactly the limit, never the next power of two a growing deque would take.
        self.history.reserve_exact(limit - self.history.len());
        self.history.extend(tail);
    }

    /// Whether a compressor is allocated.
    pub(crate) fn is_live(&self) -> bool {
        self.compress.is_some()
    }

    /// Drops the compressor once it has been idle for [`RELEASE_AFTER`], keeping its history
    /// at its length; returns when to look again, `None` when there is nothing to release.
    pub(crate) fn release_if_idle(&mut self, now: Instant) -> Option<Instant> {
        self.compress.as_ref()?;
        let due = self.last_used + RELEASE_AFTER;
        if now < due {
            return Some(due);
        }
        self.compress = None;
        self.history.shrink_to_fit();
        None
    }
}

fn compressor(level: u32, window_bits: u8) -> Compress {
    Compress::new_with_window_bits(flate2::Compression::new(level), false, window_bits)
}

/// One message compressed as RFC 7692 has it sent: a sync flush with its marker taken off.
/// `None` on a misuse of the stream, the only way compressing into memory fails.
fn deflate_message(compress: &mut Compress, data: &[u8]) -> Option<Bytes> {
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    let mut consumed = 0;
    loop {
        let before = compress.total_in();
        compress
            .compress_vec(&data[consumed..], &mut out, FlushCompress::Sync)
            .ok()?;
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
        // zlib flushes nothing for an empty message right after a flush; RFC 7692 (7.2.3.6)
        // has it sent as one 0x00 byte, an empty stored block once the marker is put back.
        out.push(0x00);
    }
    Some(out.into())
}

/// How the sessions that compress every message on their own (no context takeover on their
/// side) compress it: sessions alike in this get the same bytes for the same message, so a
/// message published to many of them is compressed once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Alone {
    window_bits: u8,
    level: u32,
    threshold: usize,
}

impl Alone {
    /// How a session compresses, when it compresses each message on its own.
    pub(crate) fn of(agreed: PerMessageDeflate, settings: Compression) -> Option<Alone> {
        (agreed.send_no_context_takeover && agreed.send_window_bits > MIN_WINDOW_BITS).then_some(
            Alone {
                window_bits: agreed.send_window_bits,
                level: settings.level,
                threshold: settings.threshold,
            },
        )
    }

    /// The payload of `data` as such a session sends it: `None` under the threshold (it goes
    /// out as it is), else compressed by a compressor of its own, as the session's would.
    pub(crate) fn compress(&self, data: &[u8]) -> Option<Bytes> {
        if data.len() < self.threshold {
            return None;
        }
        deflate_message(&mut compressor(self.level, self.window_bits), data)
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

    /// A text whose messages all differ but share most of their words, as chat does.
    fn chat(i: usize) -> Vec<u8> {
        format!(r#"{{"id":{i},"author":"ada","text":"the build on staging is green again","tags":["dev"]}}"#)
            .into_bytes()
    }

    #[test]
    fn an_idle_compressor_is_released_and_the_next_one_refers_back_to_the_history() {
        let mut deflater = Deflater::new(AGREED, Compression::new());
        let mut peer = Decompress::new(false);
        let first = deflater.compress(&chat(1)).expect("compressed");
        assert_eq!(inflate(&mut peer, &first), chat(1));
        let kept = deflater.compress(&chat(2)).expect("compressed");
        assert_eq!(inflate(&mut peer, &kept), chat(2));

        let due = deflater
            .release_if_idle(deflater.last_used)
            .expect("a compressor to release");
        assert_eq!(due, deflater.last_used + RELEASE_AFTER);
        assert!(deflater.is_live(), "released before it was idle");
        assert_eq!(deflater.release_if_idle(due), None);
        assert!(!deflater.is_live(), "the idle compressor was kept");
        assert_eq!(
            deflater.release_if_idle(due),
            None,
            "nothing left to release"
        );
        assert_eq!(deflater.history.capacity(), deflater.history.len());

        // The peer kept its context; the new compressor's dictionary is the end of it.
        let restored = deflater.compress(&chat(3)).expect("compressed");
        assert_eq!(inflate(&mut peer, &restored), chat(3));
        assert!(deflater.is_live());
        assert!(
            restored.len() <= kept.len() + 2 && restored.len() < first.len() / 2,
            "the message after a release did not refer back: {} against {} kept, {} first",
            restored.len(),
            kept.len(),
            first.len()
        );
    }

    #[test]
    fn the_history_keeps_the_end_of_what_was_compressed_up_to_its_limit_or_the_window() {
        let big: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for (bits, limit) in [(15, HISTORY), (10, 1 << 10)] {
            let agreed = PerMessageDeflate {
                send_window_bits: bits,
                ..AGREED
            };
            let mut deflater = Deflater::new(agreed, Compression::new().threshold(0));
            deflater.compress(&big[..100]).expect("compressed");
            assert_eq!(deflater.history, &big[..100]);
            deflater.compress(&big).expect("compressed");
            assert_eq!(deflater.history, &big[big.len() - limit..], "{bits} bits");
            deflater.compress(&big[..10]).expect("compressed");
            let expected = [&big[big.len() - limit + 10..], &big[..10]].concat();
            assert_eq!(deflater.history, expected, "{bits} bits");
            assert_eq!(deflater.history.capacity(), limit, "{bits} bits");
        }
        // Without context takeover there is nothing to refer back to, and nothing kept.
        let fresh = PerMessageDeflate {
            send_no_context_takeover: true,
            ..AGREED
        };
        let mut deflater = Deflater::new(fresh, Compression::new());
        deflater.compress(&big).expect("compressed");
        assert!(deflater.history.is_empty() && !deflater.is_live());
        assert_eq!(deflater.release_if_idle(Instant::now()), None);
    }

    /// A server session that agreed on `extensions` with a client written by hand over an
    /// in-memory stream, and that client's end.
    async fn raw_pair(
        compression: Compression,
        extensions: &str,
    ) -> (crate::Session, tokio::io::DuplexStream) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, io) = tokio::io::duplex(1 << 16);
        let server = crate::Server::new(crate::Config::new().compression(compression));
        let request = format!(
            "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Extensions: {extensions}\r\n\r\n"
        );
        let handshake = async {
            client.write_all(request.as_bytes()).await.unwrap();
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                head.push(client.read_u8().await.unwrap());
            }
            String::from_utf8(head).unwrap()
        };
        let (session, head) = within(async { tokio::join!(server.accept(io), handshake) }).await;
        assert!(head.contains("permessage-deflate"), "not agreed: {head}");
        (session.expect("accepted"), client)
    }

    /// One unmasked server frame under 64 KiB: its first byte and payload.
    async fn read_frame(client: &mut tokio::io::DuplexStream) -> (u8, Vec<u8>) {
        use tokio::io::AsyncReadExt;
        within(async {
            let first = client.read_u8().await.unwrap();
            let len = match client.read_u8().await.unwrap() {
                126 => usize::from(client.read_u16().await.unwrap()),
                short => usize::from(short),
            };
            let mut payload = vec![0; len];
            client.read_exact(&mut payload).await.unwrap();
            (first, payload)
        })
        .await
    }

    async fn within<T>(future: impl Future<Output = T>) -> T {
        tokio::time::timeout(std::time::Duration::from_secs(5), future)
            .await
            .expect("timed out")
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_session_releases_its_compressor_and_keeps_its_context() {
        let (mut session, mut client) = raw_pair(
            Compression::new(),
            "permessage-deflate; client_max_window_bits",
        )
        .await;
        let mut peer = Decompress::new(false);
        let mut sizes = Vec::new();
        for i in 0..3 {
            let text = String::from_utf8(chat(i)).unwrap();
            within(session.send(crate::Frame::Text(text.into())))
                .await
                .unwrap();
            assert!(session.holds_compressor(), "message {i}");
            let (first, payload) = read_frame(&mut client).await;
            assert_eq!(first, 0xc1, "a compressed final text frame");
            assert_eq!(inflate(&mut peer, &payload), chat(i));
            sizes.push(payload.len());
            if i == 1 {
                tokio::time::sleep(RELEASE_AFTER / 2).await;
                assert!(session.holds_compressor(), "released while still in use");
            }
            // The watchdog's release, a second after the last message.
            tokio::time::sleep(RELEASE_AFTER + std::time::Duration::from_millis(10)).await;
            assert!(
                !session.holds_compressor(),
                "kept while idle after message {i}"
            );
        }
        assert!(sizes[2] < sizes[0] / 2, "context lost: {sizes:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn without_context_takeover_no_compressor_outlives_its_message() {
        // Asked by the server itself: `no_context_takeover` answers server_no_context_takeover.
        let (mut session, mut client) = raw_pair(
            Compression::new().no_context_takeover(),
            "permessage-deflate",
        )
        .await;
        assert!(session.compression().unwrap().send_no_context_takeover());
        for i in 0..2 {
            let text = String::from_utf8(chat(i)).unwrap();
            within(session.send(crate::Frame::Text(text.into())))
                .await
                .unwrap();
            assert!(!session.holds_compressor(), "message {i}");
            let (_, payload) = read_frame(&mut client).await;
            assert_eq!(inflate(&mut Decompress::new(false), &payload), chat(i));
        }
    }
}
