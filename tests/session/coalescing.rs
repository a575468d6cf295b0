//! Write coalescing: replies to a pipelined burst go out together, complete and in order; a
//! send with nothing else waiting is written before it returns; a flush put off is done by
//! the watchdog when the receiver does not come back; a close in a burst lets the owed
//! replies out first.
//!
//! The server side runs on a socket that counts its writes, so what is asserted is what
//! reached the kernel, not only what the peer got in the end.

use crate::common;

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::raw::{BINARY, CLOSE, RawPeer, TEXT, encode_frame, listen};
use common::within;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use typed_ws::{CloseCode, CloseReason, Config, Frame, Server, Session};

/// The writes and bytes that reached a socket.
#[derive(Default)]
struct Written {
    writes: AtomicUsize,
    bytes: AtomicUsize,
}

impl Written {
    fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    fn bytes(&self) -> usize {
        self.bytes.load(Ordering::SeqCst)
    }
}

/// A TCP stream that counts what is written to it.
struct Counting {
    tcp: TcpStream,
    written: Arc<Written>,
}

impl AsyncRead for Counting {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counting {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.tcp).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            this.written.writes.fetch_add(1, Ordering::SeqCst);
            this.written.bytes.fetch_add(n, Ordering::SeqCst);
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// A server session on a counting socket, with a raw client connected to it. The counts
/// start after the handshake.
async fn connected() -> (Session, RawPeer, Arc<Written>) {
    let (listener, addr) = listen().await;
    let client = tokio::spawn(async move { RawPeer::connect(addr, "/").await });
    let (tcp, _) = within("accept", listener.accept()).await.expect("accept");
    let written = Arc::new(Written::default());
    let io = Counting {
        tcp,
        written: written.clone(),
    };
    let session = within("handshake", Server::new(Config::new()).accept(io))
        .await
        .expect("handshake");
    let peer = within("client handshake", client).await.expect("client");
    written.writes.store(0, Ordering::SeqCst);
    written.bytes.store(0, Ordering::SeqCst);
    (session, peer, written)
}

/// `count` masked text frames `m0`, `m1`, ... as one write's worth of bytes.
fn burst(count: usize) -> Vec<u8> {
    (0..count)
        .flat_map(|i| encode_frame(true, TEXT, format!("m{i}").as_bytes(), true))
        .collect()
}

/// Echoes text frames until the peer closes or the session fails.
async fn echo_texts(session: &mut Session) {
    while let Ok(frame) = session.receive().await {
        if let Frame::Text(text) = frame {
            session.send(Frame::Text(text)).await.expect("echo");
        }
    }
}

async fn expect_texts(peer: &mut RawPeer, count: usize) {
    for i in 0..count {
        let frame = within("an echo", peer.expect_frame()).await;
        assert_eq!(frame.opcode, TEXT, "echo {i}: {frame:?}");
        assert_eq!(
            frame.payload,
            format!("m{i}").as_bytes(),
            "echo {i} lost or out of order"
        );
    }
}

#[tokio::test]
async fn replies_to_a_pipelined_burst_go_out_together_complete_and_in_order() {
    let (mut session, mut peer, written) = connected().await;
    let server = tokio::spawn(async move { echo_texts(&mut session).await });
    within("burst", peer.write_raw(&burst(64)))
        .await
        .expect("write burst");
    expect_texts(&mut peer, 64).await;
    // One segment of 64 requests: one write would do; a few allow for the segment to be split.
    let writes = written.writes();
    assert!(writes <= 8, "64 pipelined replies took {writes} writes");
    within("close", peer.write_close(1000, ""))
        .await
        .expect("close");
    within("server", server).await.expect("server task");
}

#[tokio::test]
async fn a_reply_with_nothing_else_waiting_is_written_before_send_returns() {
    let (mut session, mut peer, written) = connected().await;
    let client = tokio::spawn(async move {
        for i in 0..10 {
            let request = encode_frame(true, TEXT, format!("m{i}").as_bytes(), true);
            within("request", peer.write_raw(&request))
                .await
                .expect("write");
            let echo = within("echo", peer.expect_frame()).await;
            assert_eq!(echo.payload, format!("m{i}").as_bytes());
        }
    });
    for i in 0..10 {
        let frame = within("request", session.receive()).await.expect("request");
        let before = written.bytes();
        within("send", session.send(frame)).await.expect("echo");
        assert!(
            written.bytes() > before,
            "reply {i} was left unflushed with nothing else waiting"
        );
    }
    within("client", client).await.expect("client task");
}

#[tokio::test]
async fn the_receive_that_would_wait_flushes_the_replies_put_off_in_one_write() {
    let (mut session, mut peer, written) = connected().await;
    let mut requests = burst(2);
    requests.extend(encode_frame(true, BINARY, b"no reply", true));
    within("burst", peer.write_raw(&requests))
        .await
        .expect("write burst");
    for _ in 0..2 {
        let request = within("request", session.receive()).await.expect("request");
        within("send", session.send(request)).await.expect("reply");
    }
    let binary = within("binary", session.receive()).await.expect("binary");
    assert_eq!(binary, Frame::binary(&b"no reply"[..]));
    assert_eq!(
        written.bytes(),
        0,
        "a reply was flushed with more input waiting"
    );
    // One poll of the next receive, which finds nothing: the watchdog (on this same thread)
    // has had no chance to run, so the flush is the receive's.
    let mut next = std::pin::pin!(session.receive());
    let waiting = std::future::poll_fn(|cx| Poll::Ready(next.as_mut().poll(cx).is_pending())).await;
    assert!(waiting, "a receive with nothing sent completed");
    assert_eq!(
        written.writes(),
        1,
        "the two replies were not written together"
    );
    expect_texts(&mut peer, 2).await;
}

#[tokio::test]
async fn a_flush_put_off_is_done_by_the_watchdog_when_the_receiver_does_not_come_back() {
    let (mut session, mut peer, written) = connected().await;
    within("burst", peer.write_raw(&burst(2)))
        .await
        .expect("write burst");
    let first = within("m0", session.receive()).await.expect("m0");
    within("send", session.send(first)).await.expect("reply");
    // m1 waits, so the reply was left for the next receive to flush; none comes.
    assert_eq!(
        written.bytes(),
        0,
        "the reply was flushed with more input waiting"
    );
    let sent = tokio::time::Instant::now();
    let echo = within("the reply put off", peer.expect_frame()).await;
    assert_eq!(echo.payload, b"m0");
    let waited = sent.elapsed();
    assert!(
        waited < Duration::from_millis(250),
        "the reply put off took {waited:?} to go out (flush delay 1 ms)"
    );
    assert!(written.bytes() > 0);
    drop(session);
}

/// Lets every other task on this (current-thread) runtime run, the watchdog among them.
async fn let_others_run() {
    for _ in 0..16 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn the_watchdog_flushes_a_reply_put_off_at_the_flush_delay_and_not_before() {
    let (mut session, mut peer, written) = connected().await;
    within("burst", peer.write_raw(&burst(2)))
        .await
        .expect("write burst");
    let first = within("m0", session.receive()).await.expect("m0");
    // From here the clock moves only when told to, so the delay is measured exactly however
    // loaded the machine is; nothing below waits on the network.
    tokio::time::pause();
    within("send", session.send(first)).await.expect("reply");
    let_others_run().await;
    assert_eq!(
        written.bytes(),
        0,
        "the watchdog flushed the reply put off at once"
    );
    tokio::time::advance(Duration::from_micros(999)).await;
    let_others_run().await;
    assert_eq!(
        written.bytes(),
        0,
        "the watchdog flushed the reply put off before the flush delay"
    );
    // tokio's timers fire on whole milliseconds: the flush comes at the first one past the delay.
    tokio::time::advance(Duration::from_micros(1001)).await;
    let_others_run().await;
    assert!(
        written.bytes() > 0,
        "the reply put off was not flushed 2 ms after its send (flush delay 1 ms, timer ticks 1 ms)"
    );
    tokio::time::resume();
    let echo = within("the reply put off", peer.expect_frame()).await;
    assert_eq!(echo.payload, b"m0");
}

#[tokio::test]
async fn a_close_in_a_pipelined_burst_still_lets_the_owed_replies_out() {
    let (mut session, mut peer, _written) = connected().await;
    let server = tokio::spawn(async move {
        echo_texts(&mut session).await;
        session.close_reason()
    });
    let mut requests = burst(20);
    requests.extend(encode_frame(true, CLOSE, &1000u16.to_be_bytes(), true));
    within("burst", peer.write_raw(&requests))
        .await
        .expect("write burst");
    expect_texts(&mut peer, 20).await;
    let close = within("the close reply", peer.expect_frame()).await;
    assert_eq!(close.close_code(), Some(1000), "{close:?}");
    let reason = within("server", server).await.expect("server task");
    assert_eq!(reason, Some(CloseReason::new(CloseCode::Normal, "")));
}

#[tokio::test]
async fn a_task_that_only_sends_is_never_held_back() {
    let (mut session, mut peer, written) = connected().await;
    for i in 0..20 {
        let before = written.bytes();
        let text = format!("m{i}");
        within("push", session.send(Frame::text(text)))
            .await
            .expect("push");
        assert!(written.bytes() > before, "push {i} was left unflushed");
    }
    expect_texts(&mut peer, 20).await;
}

#[tokio::test]
async fn a_session_working_through_a_long_burst_lets_other_sessions_in() {
    const BURST: usize = 10_000;
    // Replies sent to the first session so far, and how many there were when the second
    // session's reply went out.
    let long_replies = Arc::new(AtomicUsize::new(0));
    let seen_by_short = Arc::new(AtomicUsize::new(usize::MAX));
    let (long, seen) = (long_replies.clone(), seen_by_short.clone());
    let addr = common::serve(Server::new(Config::new()), move |mut session: Session| {
        let (long, seen) = (long.clone(), seen.clone());
        async move {
            let is_long = session.path() == Some("/long");
            while let Ok(frame) = session.receive().await {
                if session.send(frame).await.is_err() {
                    return;
                }
                if is_long {
                    long.fetch_add(1, Ordering::SeqCst);
                } else {
                    seen.store(long.load(Ordering::SeqCst), Ordering::SeqCst);
                }
            }
        }
    })
    .await;
    let mut long_peer = RawPeer::connect(addr, "/long").await;
    let mut short_peer = RawPeer::connect(addr, "/short").await;
    // Both sessions wait in `receive`. This test's runtime has one thread, so neither runs
    // before both requests are in the kernel, the long burst first.
    within("burst", long_peer.write_raw(&burst(BURST)))
        .await
        .expect("write burst");
    let request = encode_frame(true, TEXT, b"short", true);
    within("request", short_peer.write_raw(&request))
        .await
        .expect("write request");
    let echo = within("the short echo", short_peer.expect_frame()).await;
    assert_eq!(echo.payload, b"short");
    let before = seen_by_short.load(Ordering::SeqCst);
    assert!(
        before < BURST / 2,
        "the short session was answered only after {before} of the {BURST} long replies"
    );
    expect_texts(&mut long_peer, BURST).await;
    assert_eq!(long_replies.load(Ordering::SeqCst), BURST);
}

/// A TCP stream whose writes can be held back, as a full socket holds them: while closed, a
/// write waits and keeps the waker of the last one who tried, as a socket does.
struct Gated {
    tcp: TcpStream,
    gate: Arc<Gate>,
}

#[derive(Default)]
struct Gate {
    closed: AtomicBool,
    /// Writes that found the gate closed.
    held: AtomicUsize,
    waker: Mutex<Option<Waker>>,
}

impl Gate {
    fn open(&self) {
        self.closed.store(false, Ordering::SeqCst);
        if let Some(waker) = self.waker.lock().unwrap().take() {
            waker.wake();
        }
    }
}

impl AsyncRead for Gated {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Gated {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.gate.closed.load(Ordering::SeqCst) {
            *this.gate.waker.lock().unwrap() = Some(cx.waker().clone());
            this.gate.held.fetch_add(1, Ordering::SeqCst);
            return Poll::Pending;
        }
        Pin::new(&mut this.tcp).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// Waits, a millisecond at a time, until `done` holds.
async fn until(what: &str, done: impl Fn() -> bool) {
    within(what, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn replies_held_by_a_full_socket_go_out_when_it_drains_though_the_receiver_has_stopped() {
    let (listener, addr) = listen().await;
    let client = tokio::spawn(async move { RawPeer::connect(addr, "/").await });
    let (tcp, _) = within("accept", listener.accept()).await.expect("accept");
    let gate = Arc::new(Gate::default());
    let io = Gated {
        tcp,
        gate: gate.clone(),
    };
    let mut session = within("handshake", Server::new(Config::new()).accept(io))
        .await
        .expect("handshake");
    let mut peer = within("client handshake", client).await.expect("client");
    gate.closed.store(true, Ordering::SeqCst);
    let (stopped_tx, stopped) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(async move {
        // Echo texts; take binary frames silently; stop receiving at "stop".
        loop {
            match session.receive().await {
                Ok(Frame::Text(text)) if text == "stop" => break,
                Ok(Frame::Text(text)) => session.send(Frame::Text(text)).await.expect("echo"),
                Ok(_) => {}
                Err(e) => panic!("session failed: {e}"),
            }
        }
        let _ = stopped_tx.send(());
        // Held, not receiving, until the test ends.
        std::future::pending::<()>().await;
    });
    // Two replies are put off while the binary frame waits; the receive after it finds the
    // socket full (the gate), and so does the watchdog's flush a millisecond later.
    let mut requests = burst(2);
    requests.extend(encode_frame(true, BINARY, b"x", true));
    within("burst", peer.write_raw(&requests))
        .await
        .expect("write");
    until("the watchdog's flush to be held too", || {
        gate.held.load(Ordering::SeqCst) >= 2
    })
    .await;
    // The receiver is woken by more input and tries again, then stops receiving. (Which of
    // it and the watchdog the socket wakes when it drains depends on the order they ran in:
    // tokio-tungstenite wakes the last writer on reads too; either must lead to the flush.)
    let held = gate.held.load(Ordering::SeqCst);
    let y = encode_frame(true, BINARY, b"y", true);
    within("y", peer.write_raw(&y)).await.expect("write");
    until("the receiver's flush to be held", || {
        gate.held.load(Ordering::SeqCst) > held
    })
    .await;
    let stop = encode_frame(true, TEXT, b"stop", true);
    within("stop", peer.write_raw(&stop)).await.expect("write");
    within("the receiver to stop", stopped)
        .await
        .expect("stopped");
    // The socket drains: the replies go out, within the flush delay, not at the next ping.
    gate.open();
    let started = tokio::time::Instant::now();
    expect_texts(&mut peer, 2).await;
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_millis(250),
        "the replies took {waited:?} once the socket drained"
    );
    server.abort();
}
