//! A peer that never reads: the server's sends block after a bounded amount (or end at the
//! configured timeout), fail once the peer is gone, and never hold up the other sessions.
#![cfg(feature = "json")]

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::hostile::{config, echo_round, fresh_client_echoes, good_client, serve_routes};
use common::raw::RawPeer;
use common::*;
use tokio::sync::{mpsc, oneshot};
use typed_ws::*;

/// The size of each message the server sends to a peer that never reads.
const FLOOD_MESSAGE: usize = 256 * 1024;
/// How long one send may take before it counts as blocked.
const SEND_WAIT: Duration = Duration::from_secs(2);
/// Sends stop being accepted well before this.
const FLOOD_BOUND: usize = 64 << 20;

#[derive(Debug)]
enum Flood {
    /// Sends stopped completing: how many bytes of messages completed first, and whether the
    /// send after the one that timed out timed out too.
    Blocked {
        accepted: usize,
        messages: usize,
        still_blocked: bool,
    },
    /// Sends kept completing up to the bound.
    Unbounded {
        #[allow(dead_code, reason = "shown by Debug when the test fails")]
        accepted: usize,
    },
    /// A send failed while the peer was still there.
    Failed(#[allow(dead_code, reason = "shown by Debug when the test fails")] Error),
    /// After the peer went away: the next send, the next receive, the close reason.
    After {
        send: Result<(), Error>,
        receive: Result<Frame, Error>,
        close_reason: Option<CloseReason>,
    },
}

/// The kernel's byte counts for a loopback TCP connection, from `/proc/net/tcp`: the
/// send queue of the end on `local` (written, not yet acknowledged) and the receive queue of
/// the end on `remote` (received, not yet read). `None` where there is no such table.
fn kernel_queues(local: u16, remote: u16) -> Option<(u64, u64)> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let port = |field: &str| u16::from_str_radix(field.rsplit(':').next()?, 16).ok();
    let queues = |field: &str| {
        let (tx, rx) = field.split_once(':')?;
        Some((
            u64::from_str_radix(tx, 16).ok()?,
            u64::from_str_radix(rx, 16).ok()?,
        ))
    };
    let mut send = None;
    let mut receive = None;
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(l), Some(r)) = (port(fields[1]), port(fields[2])) else {
            continue;
        };
        if (l, r) == (local, remote) {
            send = queues(fields[4]).map(|(tx, _)| tx);
        } else if (l, r) == (remote, local) {
            receive = queues(fields[4]).map(|(_, rx)| rx);
        }
    }
    Some((send?, receive?))
}

#[tokio::test]
async fn sends_to_a_peer_that_never_reads_block_after_a_bounded_amount() {
    let (reports, mut report) = mpsc::unbounded_channel();
    let (gone_tx, gone) = oneshot::channel::<()>();
    let gone = Arc::new(Mutex::new(Some(gone)));
    let addr = serve_routes(config(), move |mut session| {
        let reports = reports.clone();
        let gone = gone.lock().unwrap().take();
        async move {
            let message = Bytes::from(vec![0x5a; FLOOD_MESSAGE]);
            let mut accepted = 0;
            let mut messages = 0;
            loop {
                if accepted >= FLOOD_BOUND {
                    let _ = reports.send(Flood::Unbounded { accepted });
                    return;
                }
                match tokio::time::timeout(SEND_WAIT, session.send_binary(message.clone())).await {
                    Ok(Ok(())) => {
                        accepted += message.len();
                        messages += 1;
                    }
                    Ok(Err(e)) => {
                        let _ = reports.send(Flood::Failed(e));
                        return;
                    }
                    Err(_) => break,
                }
            }
            let still_blocked =
                tokio::time::timeout(SEND_WAIT, session.send_binary(message.clone()))
                    .await
                    .is_err();
            let _ = reports.send(Flood::Blocked {
                accepted,
                messages,
                still_blocked,
            });
            let Some(gone) = gone else { return };
            let _ = gone.await;
            // Bounded in the test by `within` on the report.
            let send = session.send_binary(message.clone()).await;
            let receive = session.receive().await;
            let _ = reports.send(Flood::After {
                send,
                receive,
                close_reason: session.close_reason(),
            });
        }
    })
    .await;
    let mut other = good_client(addr).await;
    echo_round(&mut other, 0).await;

    let peer = within("raw connect", RawPeer::connect(addr, "/flood")).await;
    // Echoes go on while the flood fills the buffers.
    echo_round(&mut other, 1).await;
    let blocked = within("the flood blocks", report.recv())
        .await
        .expect("report");
    let Flood::Blocked {
        accepted,
        messages,
        still_blocked,
    } = blocked
    else {
        panic!("expected the sends to block, got {blocked:?}");
    };
    assert!(still_blocked, "a send completed after one had blocked");
    assert!(accepted < FLOOD_BOUND, "{accepted} bytes accepted");
    assert!(messages >= 1, "not even one message went out");
    // What the kernel holds: the server's send queue and the peer's receive queue. On the
    // wire, every completed message is a 10-byte header and its payload; of the message
    // whose send timed out, part may have been written too, the rest waits in the session.
    // The peer may have read the first bytes of the flood with the handshake response.
    let on_wire = messages * (FLOOD_MESSAGE + 10);
    let kernel = kernel_queues(addr.port(), peer.local_addr().port());
    if let Some((send_queue, receive_queue)) = kernel {
        let total = (send_queue + receive_queue) as usize + peer.buffered();
        assert!(
            (on_wire..=on_wire + FLOOD_MESSAGE + 10).contains(&total),
            "kernel holds {total} bytes, {on_wire} went out in whole messages"
        );
    }
    println!(
        "never-reading peer: {messages} sends of {} KiB completed = {accepted} bytes \
         ({:.2} MiB) before a send blocked for {SEND_WAIT:?}; kernel queues (server send, \
         peer receive) = {kernel:?}; at most one more message ({FLOOD_MESSAGE} bytes) waits \
         in the session's write buffer",
        FLOOD_MESSAGE / 1024,
        accepted as f64 / (1 << 20) as f64,
    );
    // Echoes go on while the flood is blocked.
    echo_round(&mut other, 2).await;

    // The peer goes with unread data, which resets the connection; the blocked session
    // learns it on its next call instead of hanging.
    peer.drop_connection();
    gone_tx.send(()).expect("the flood handler waits");
    let after = within("the flooded session fails", report.recv())
        .await
        .expect("report");
    let Flood::After {
        send,
        receive,
        close_reason,
    } = after
    else {
        panic!("expected the result after the peer left, got {after:?}");
    };
    match &send {
        Err(Error::Io(_)) => {}
        Err(Error::Closed(reason)) => assert_eq!(reason.code, CloseCode::Abnormal),
        other => panic!("send after the peer left: {other:?}"),
    }
    match &receive {
        Err(Error::Io(_)) => {}
        Err(Error::Closed(reason)) => assert_eq!(reason.code, CloseCode::Abnormal),
        other => panic!("receive after the peer left: {other:?}"),
    }
    println!("after the never-reading peer left: send {send:?}, receive {receive:?}");
    assert_eq!(close_reason.map(|r| r.code), Some(CloseCode::Abnormal));
    echo_round(&mut other, 3).await;
    fresh_client_echoes(addr).await;
}

#[tokio::test]
async fn a_send_blocked_by_a_peer_that_never_reads_ends_at_the_configured_timeout() {
    let timeout = Duration::from_secs(1);
    let (reports, mut report) = mpsc::unbounded_channel();
    let addr = serve_routes(config().timeout(timeout), move |mut session| {
        let reports = reports.clone();
        async move {
            let message = Bytes::from(vec![0x5a; FLOOD_MESSAGE]);
            let mut accepted = 0;
            let mut last_completed = tokio::time::Instant::now();
            // No timeout of its own around the send: the session's has to end it.
            let error = loop {
                if accepted >= FLOOD_BOUND {
                    break None;
                }
                match session.send_binary(message.clone()).await {
                    Ok(()) => {
                        accepted += message.len();
                        last_completed = tokio::time::Instant::now();
                    }
                    Err(e) => break Some(e),
                }
            };
            let _ = reports.send((
                accepted,
                last_completed.elapsed(),
                error,
                session.close_reason(),
            ));
        }
    })
    .await;
    // The well-behaved client pings, so the server's timeout never ends its session.
    let mut other = within(
        "a well-behaved client connects",
        Client::new(config().ping_interval(Duration::from_millis(200)))
            .web_socket_session(format!("ws://{addr}/echo")),
    )
    .await
    .expect("handshake");
    echo_round(&mut other, 0).await;

    let peer = within("raw connect", RawPeer::connect(addr, "/flood")).await;
    let (accepted, blocked_for, error, close_reason) =
        within("the blocked send ends", report.recv())
            .await
            .expect("report");
    assert!(accepted < FLOOD_BOUND, "{accepted} bytes accepted");
    match error {
        Some(Error::Timeout(after)) => assert_eq!(after, timeout),
        other => panic!("expected the blocked send to end with Timeout, got {other:?}"),
    }
    // Nothing came from the peer since the handshake, so the timeout counts from then: the
    // send ends about `timeout` after the session started, not some time later.
    assert!(blocked_for < timeout * 2, "blocked for {blocked_for:?}");
    assert_eq!(close_reason.map(|r| r.code), Some(CloseCode::InternalError));
    println!(
        "never-reading peer with a {timeout:?} timeout: {accepted} bytes accepted, the \
         blocked send ended with Timeout after {blocked_for:?}"
    );
    echo_round(&mut other, 1).await;
    drop(peer);
    fresh_client_echoes(addr).await;
}

/// The same flood through the session's `futures::Sink` (`SinkExt::feed`, which callers of
/// `send_all` and `forward` get): it must wait for room like `send`, not fail once
/// tungstenite's write buffer is full.
#[tokio::test]
async fn feeding_the_session_as_a_sink_to_a_peer_that_never_reads_waits_after_a_bounded_amount() {
    use futures_util::SinkExt;

    let (reports, mut report) = mpsc::unbounded_channel();
    let addr = serve_routes(config(), move |mut session| {
        let reports = reports.clone();
        async move {
            let message = Bytes::from(vec![0x5a; FLOOD_MESSAGE]);
            let mut accepted = 0;
            let outcome = loop {
                if accepted >= FLOOD_BOUND {
                    break Err(format!("{accepted} bytes accepted"));
                }
                let feed = SinkExt::feed(&mut session, Frame::Binary(message.clone()));
                match tokio::time::timeout(SEND_WAIT, feed).await {
                    Ok(Ok(())) => accepted += message.len(),
                    Ok(Err(e)) => break Err(format!("feed failed: {e}")),
                    Err(_) => break Ok(accepted),
                }
            };
            let _ = reports.send(outcome);
        }
    })
    .await;
    let _peer = within("raw connect", RawPeer::connect(addr, "/flood")).await;
    let accepted = within("the flood blocks", report.recv())
        .await
        .expect("report")
        .expect("the feeds wait for room");
    assert!(accepted < FLOOD_BOUND, "{accepted} bytes accepted");
}
