//! The socket under tungstenite, read through a buffer that stays small while messages are
//! small and grows for bulk transfers.
//!
//! tungstenite zero-fills its read buffer before every read (`FrameCodec::read_in`), and the
//! buffer's size is fixed when a session starts. Large, it costs every idle session its size in
//! memory (128 KiB by default) and every small read its zero-fill; small, a megabyte message
//! takes hundreds of reads. So typed-ws gives tungstenite a small buffer
//! ([`Config::read_buffer_size`](crate::Config::read_buffer_size)) and reads the socket
//! through [`Elastic`]: while reads come back short, each goes straight into tungstenite's
//! buffer; once one fills it (a bulk transfer), the socket is read [`BULK`] bytes at a time
//! into a buffer of its own, handed over in pieces, and freed as soon as the socket has nothing
//! more to read.
//!
//! The same reads count the WebSocket messages that arrive ([`Arrivals`]), so that a session
//! knows, without reading ahead through tungstenite, whether more input is already waiting,
//! and take the bytes of messages that have not arrived whole from the config's
//! [budget](crate::budget) for them.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use super::arrivals::{Arrivals, Scan};

/// How much a bulk read asks of the socket.
pub(crate) const BULK: usize = 64 << 10;

/// What a bulk hand-over leaves free in tungstenite's buffer: room for a small frame.
const HEADROOM: usize = 512;

/// A byte stream whose reads grow and shrink with the traffic; see the module docs. It also
/// puts back in front bytes that were read before the stream was handed over (a request head).
pub(crate) struct Elastic<S> {
    io: S,
    /// Read from the socket, not yet handed over. A `BytesMut` so that bulk reads go into
    /// its spare capacity: a zero-filled buffer would cost a 64 KiB memset per burst, and a
    /// peer sending small frames starts a burst every few kilobytes.
    buf: BytesMut,
    /// The last read filled what was asked: the peer is sending in bulk.
    bulk: bool,
    arrivals: Arc<Arrivals>,
    scan: Scan,
}

impl<S> Elastic<S> {
    pub(crate) fn new(io: S) -> Self {
        Elastic::with_head(io, Vec::new())
    }

    /// The stream with `head`, already read from it, put back in front.
    pub(crate) fn with_head(io: S, head: Vec<u8>) -> Self {
        Elastic {
            io,
            buf: BytesMut::from(&head[..]),
            bulk: false,
            arrivals: Arc::default(),
            scan: Scan::default(),
        }
    }

    /// The count of messages read from this stream, which starts when the session does.
    pub(crate) fn arrivals(&self) -> Arc<Arrivals> {
        self.arrivals.clone()
    }

    /// Hands over what is buffered; frees the buffer once it is empty, unless bulk reads go on.
    fn hand_over(&mut self, out: &mut ReadBuf<'_>) {
        // Leave tungstenite's buffer some room: it reserves room for every frame it parses,
        // and a full buffer moves its contents to the front for each one, which for a stream of
        // small frames copies the data several times over.
        let room = out.remaining();
        let room = if room > 2 * HEADROOM {
            room - HEADROOM
        } else {
            room
        };
        let n = self.buf.len().min(room);
        out.put_slice(&self.buf[..n]);
        self.buf.advance(n);
        if self.buf.is_empty() && !self.bulk {
            self.buf = BytesMut::new();
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Elastic<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.buf.is_empty() {
            this.hand_over(out);
            return Poll::Ready(Ok(()));
        }
        if !this.bulk {
            let asked = out.remaining();
            let before = out.filled().len();
            ready!(Pin::new(&mut this.io).poll_read(cx, out))?;
            this.bulk = asked > 0 && out.filled().len() - before == asked;
            return Poll::Ready(this.arrivals.note(&mut this.scan, &out.filled()[before..]));
        }
        this.buf.reserve(BULK);
        let before = this.buf.len();
        // `read_buf` reads into the spare capacity without initialising it; a future made for
        // one poll and dropped when pending reads nothing.
        let read = std::pin::pin!(this.io.read_buf(&mut this.buf));
        match read.poll(cx) {
            Poll::Pending => {
                // The burst is over: back to small reads, and to no buffer of our own.
                this.bulk = false;
                this.buf = BytesMut::new();
                return Poll::Pending;
            }
            // Bulk reads go on until the socket has nothing more (`Pending` above) or ends: a
            // short read in the middle of a transfer only means the peer's data came in
            // pieces, and going back to small reads there would cost a syscall per small read.
            Poll::Ready(read) => this.bulk = read? > 0,
        }
        this.arrivals.note(&mut this.scan, &this.buf[before..])?;
        this.hand_over(out);
        Poll::Ready(Ok(()))
    }
}

// Writes pass through unchanged; vectored writes are left to the default, since tungstenite
// writes its buffer with plain writes.
impl<S: AsyncWrite + Unpin> AsyncWrite for Elastic<S> {
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
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::wire::test_frame as frame;

    #[tokio::test]
    async fn arrivals_are_counted_from_the_start_and_in_bulk_reads_too() {
        let (mut tx, rx) = tokio::io::duplex(1 << 20);
        tx.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut elastic = Elastic::new(rx);
        let arrivals = elastic.arrivals();
        let mut chunk = [0; 4096];
        let n = elastic.read(&mut chunk).await.unwrap();
        assert_eq!(n, 18);
        arrivals.start();
        // Small frames, read straight into the caller's buffer.
        tx.write_all(&[frame(0x81, 5, true), frame(0x89, 0, true)].concat())
            .await
            .unwrap();
        assert_eq!(elastic.read(&mut chunk).await.unwrap(), 17);
        assert_eq!(
            arrivals.count(),
            2,
            "the handshake counted, or frames missed"
        );
        // A bulk transfer: 40 frames of 4 KiB, read into the stream's own buffer.
        let bulk: Vec<u8> = (0..40).flat_map(|_| frame(0x82, 4096, true)).collect();
        tx.write_all(&bulk).await.unwrap();
        let (mut read, mut bulk_seen) = (0, false);
        while read < bulk.len() {
            read += elastic.read(&mut chunk).await.unwrap();
            bulk_seen |= elastic.bulk;
        }
        assert!(bulk_seen, "160 KiB never switched to bulk reads");
        assert_eq!(arrivals.count(), 42);
    }

    #[tokio::test]
    async fn small_reads_go_straight_through_and_bulk_reads_are_handed_over_in_order() {
        let (mut tx, rx) = tokio::io::duplex(1 << 20);
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        tx.write_all(&data).await.unwrap();
        drop(tx);
        let mut elastic = Elastic::with_head(rx, b"head".to_vec());
        let mut got = Vec::new();
        let mut chunk = [0; 4096];
        let mut bulk_seen = false;
        loop {
            let n = elastic.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            bulk_seen |= elastic.bulk;
            got.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(&got[..4], b"head");
        assert_eq!(&got[4..], &data[..]);
        assert!(bulk_seen, "a 300 KB burst never switched to bulk reads");
        assert_eq!(
            elastic.buf.capacity(),
            0,
            "the bulk buffer outlived the burst"
        );
    }

    #[tokio::test]
    async fn bulk_reads_go_on_through_short_reads_until_the_socket_has_nothing_more() {
        let (mut tx, rx) = tokio::io::duplex(1 << 20);
        tx.write_all(&[7; 4096]).await.unwrap();
        let mut elastic = Elastic::new(rx);
        let mut chunk = [0; 4096];
        assert_eq!(elastic.read(&mut chunk).await.unwrap(), 4096);
        assert!(elastic.bulk, "a full read means bulk");
        tx.write_all(&[8; 100]).await.unwrap();
        assert_eq!(elastic.read(&mut chunk).await.unwrap(), 100);
        assert!(elastic.bulk, "a short read in a burst keeps bulk reads");
        assert_eq!(chunk[..100], [8; 100]);
        // A bulk hand-over leaves room in a large read, fills a small one.
        tx.write_all(&[9; 8192]).await.unwrap();
        assert_eq!(elastic.read(&mut chunk).await.unwrap(), 4096 - HEADROOM);
        assert_eq!(elastic.read(&mut chunk[..600]).await.unwrap(), 600);
        assert_eq!(elastic.read(&mut chunk).await.unwrap(), 4096 - HEADROOM);
        let rest = 8192 - 2 * (4096 - HEADROOM) - 600;
        assert_eq!(elastic.read(&mut chunk).await.unwrap(), rest);

        // Nothing to read: the read waits, and the burst is over.
        let mut buf = ReadBuf::new(&mut chunk);
        let waiting = std::future::poll_fn(|cx| {
            Poll::Ready(Pin::new(&mut elastic).poll_read(cx, &mut buf).is_pending())
        })
        .await;
        assert!(waiting, "a read with nothing sent completed");
        assert!(!elastic.bulk);
        assert_eq!(
            elastic.buf.capacity(),
            0,
            "the bulk buffer outlived the burst"
        );
    }

    /// One poll of `poll_read` into `buf`, which must complete.
    fn read_once(elastic: &mut Elastic<tokio::io::DuplexStream>, buf: &mut ReadBuf<'_>) {
        let waker = std::task::Waker::noop();
        let polled = Pin::new(elastic).poll_read(&mut Context::from_waker(waker), buf);
        assert!(matches!(polled, Poll::Ready(Ok(()))), "{polled:?}");
    }

    #[tokio::test]
    async fn only_a_read_that_fills_what_the_caller_asked_for_starts_bulk_reads() {
        let (mut tx, rx) = tokio::io::duplex(1 << 20);
        tx.write_all(&[1; 300]).await.unwrap();
        let mut elastic = Elastic::new(rx);
        let mut chunk = [0; 4096];
        // Nothing asked, nothing learned about a burst.
        read_once(&mut elastic, &mut ReadBuf::new(&mut []));
        assert!(!elastic.bulk, "an empty read started bulk reads");
        // A short read: the socket had less than the caller's room.
        let mut buf = ReadBuf::new(&mut chunk);
        read_once(&mut elastic, &mut buf);
        assert_eq!(buf.filled().len(), 300);
        assert!(!elastic.bulk, "a short read started bulk reads");
        // A full read into a buffer the caller had partly filled already.
        tx.write_all(&[2; 90]).await.unwrap();
        let mut buf = ReadBuf::new(&mut chunk[..100]);
        buf.put_slice(&[0; 10]);
        read_once(&mut elastic, &mut buf);
        assert_eq!(buf.filled()[10..], [2; 90]);
        assert!(
            elastic.bulk,
            "a read that filled the rest of the buffer is a burst"
        );
    }

    #[tokio::test]
    async fn a_head_larger_than_a_read_is_handed_over_whole_leaving_headroom_in_large_reads() {
        let (mut tx, rx) = tokio::io::duplex(1 << 20);
        let head: Vec<u8> = (0..20_000u32).map(|i| (i % 253) as u8).collect();
        tx.write_all(b"after").await.unwrap();
        let mut elastic = Elastic::with_head(rx, head.clone());
        let mut chunk = vec![0; 4 * HEADROOM];
        let mut got = Vec::new();
        // Up to twice the headroom, a read takes all it can; past that, it leaves the headroom.
        for (room, expected) in [
            (2 * HEADROOM, 2 * HEADROOM),
            (2 * HEADROOM + 1, HEADROOM + 1),
            (100, 100),
        ] {
            let mut buf = ReadBuf::new(&mut chunk[..room]);
            read_once(&mut elastic, &mut buf);
            assert_eq!(buf.filled().len(), expected, "a read with room for {room}");
            got.extend_from_slice(buf.filled());
        }
        while got.len() < head.len() {
            let mut buf = ReadBuf::new(&mut chunk[..1000]);
            read_once(&mut elastic, &mut buf);
            assert!(!buf.filled().is_empty(), "the stream ended inside the head");
            got.extend_from_slice(buf.filled());
        }
        assert_eq!(got, head);
        let mut buf = ReadBuf::new(&mut chunk);
        read_once(&mut elastic, &mut buf);
        assert_eq!(buf.filled(), b"after");
    }

    #[tokio::test]
    async fn flush_and_shutdown_reach_the_stream_underneath() {
        let (a, mut b) = tokio::io::duplex(1 << 10);
        let mut elastic = Elastic::new(tokio::io::BufWriter::new(a));
        elastic.write_all(b"frame").await.unwrap();
        let mut got = [0; 16];
        assert!(
            futures_util::FutureExt::now_or_never(b.read(&mut got)).is_none(),
            "the write went out before the flush"
        );
        elastic.flush().await.unwrap();
        let n = futures_util::FutureExt::now_or_never(b.read(&mut got));
        assert!(matches!(n, Some(Ok(5))), "the flush did not write: {n:?}");
        assert_eq!(&got[..5], b"frame");
        elastic.shutdown().await.unwrap();
        let end = futures_util::FutureExt::now_or_never(b.read(&mut got));
        assert!(matches!(end, Some(Ok(0))), "no end of stream: {end:?}");
    }
}
