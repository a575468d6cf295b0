//! Keep-alive: pings at the configured interval whether or not anybody receives, the timeout
//! against a silent peer (1011), no timeout against a live one, and 1006 when the connection
//! drops without a close frame.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::raw::{self, RawPeer};
use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use typed_ws::tokio_tungstenite::tungstenite::Message;
use typed_ws::*;

const PING: Duration = Duration::from_millis(100);

/// Reads `n` pings from the raw peer (nothing else may arrive) and checks their timing. The
/// session sends ping `k` no earlier than `k` intervals after it started (which is after
/// `since`), and delivery can only delay it, so the lower bounds hold however loaded the
/// machine is: pings come neither early nor in a burst ahead of the schedule. The upper bounds,
/// which a slow machine could stretch, are wide.
async fn expect_pings_at_interval(peer: &mut RawPeer, since: Instant, n: usize) {
    let mut arrivals = Vec::with_capacity(n);
    while arrivals.len() < n {
        let frame = within("next ping", peer.expect_frame()).await;
        assert_eq!(
            frame.opcode,
            raw::PING,
            "only pings expected, got {frame:?}"
        );
        arrivals.push(Instant::now());
    }
    for (k, arrival) in (1u32..).zip(&arrivals) {
        let after = *arrival - since;
        assert!(
            after >= PING * k,
            "ping {k} after {after:?}, before {k} intervals of {PING:?}"
        );
    }
    for pair in arrivals.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap <= PING * 10,
            "gap of {gap:?} between pings, interval {PING:?}"
        );
    }
    let mean = (arrivals[n - 1] - arrivals[0]) / (n as u32 - 1);
    assert!(
        mean <= PING * 4,
        "mean gap {mean:?} between pings, interval {PING:?}"
    );
}

#[tokio::test]
async fn pings_at_the_interval_while_nobody_receives() {
    let since = Instant::now();
    let (session, mut peer, _) =
        raw::client_to_raw(Config::new().ping_interval(PING), "/idle").await;
    // The session is neither sending nor receiving.
    expect_pings_at_interval(&mut peer, since, 5).await;
    assert_eq!(session.close_reason(), None);
}

#[tokio::test]
async fn pings_at_the_interval_while_receiving() {
    let since = Instant::now();
    let (mut session, mut peer, _) =
        raw::client_to_raw(Config::new().ping_interval(PING), "/receiving").await;
    let receiver = tokio::spawn(async move {
        let frame = session.receive().await;
        (session, frame)
    });
    expect_pings_at_interval(&mut peer, since, 5).await;
    // The receiver was waiting all along, and gets what the peer sends now.
    within("raw send", peer.write_frame(true, raw::TEXT, b"wake up"))
        .await
        .unwrap();
    let (_session, frame) = within("receiver", receiver).await.unwrap();
    assert_eq!(frame.unwrap(), Frame::text("wake up"));
}

#[tokio::test]
async fn silent_peer_times_out_with_1011() {
    let timeout = Duration::from_millis(300);
    // Before the session exists, so that its silence cannot have begun earlier.
    let started = Instant::now();
    let (mut session, mut peer, _) =
        raw::client_to_raw(Config::new().timeout(timeout), "/silent").await;
    // The peer neither reads nor writes while the user waits.
    let err = within("receive until timeout", session.receive())
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(err.is_timeout(), "{err:?}");
    assert!(matches!(err, Error::Timeout(d) if d == timeout), "{err:?}");
    assert_eq!(err.close_code(), Some(CloseCode::InternalError));
    assert!(
        took >= timeout && took <= timeout * 10,
        "timed out after {took:?}, timeout {timeout:?}"
    );
    assert_eq!(
        session.close_reason().map(|r| r.code),
        Some(CloseCode::InternalError)
    );
    // It stays timed out, for sends too.
    assert!(
        within("receive again", session.receive())
            .await
            .unwrap_err()
            .is_timeout()
    );
    assert!(
        within("send after", session.send_text("late"))
            .await
            .unwrap_err()
            .is_timeout()
    );
    // When the peer reads at last, the 1011 close is there.
    let close = within("raw read", peer.expect_frame()).await;
    assert_eq!(close.opcode, raw::CLOSE);
    assert_eq!(close.close_code(), Some(1011));
}

#[tokio::test]
async fn dead_peer_gets_pings_then_close_1011_while_nobody_receives() {
    // Server role this time: a raw client that reads but never answers.
    // Six intervals, so that the two pings asserted below still fit if ticks run late.
    let timeout = Duration::from_millis(600);
    let (addr, accepted) = accept_one(Config::new().ping_interval(PING).timeout(timeout)).await;
    let since = Instant::now();
    let mut peer = within("raw connect", RawPeer::connect(addr, "/dead")).await;
    let mut server = within("accept", accepted).await.unwrap().unwrap();

    let mut pings = 0;
    let close = loop {
        let frame = within("raw read", peer.expect_frame()).await;
        match frame.opcode {
            raw::PING => pings += 1,
            raw::CLOSE => break frame,
            _ => panic!("unexpected {frame:?}"),
        }
    };
    let took = since.elapsed();
    assert_eq!(close.close_code(), Some(1011), "{close:?}");
    assert!(pings >= 2, "only {pings} pings before the timeout");
    assert!(
        took >= timeout && took <= timeout * 10,
        "closed after {took:?}, timeout {timeout:?}"
    );
    // The user, who was not receiving, learns of it on the next call.
    let err = within("receive", server.receive()).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(
        server.close_reason().map(|r| r.code),
        Some(CloseCode::InternalError)
    );
}

/// A tokio-tungstenite server that reads all the time (answering pings as it goes), counts
/// text messages and pings, and sends `late` once `send_after` has passed.
async fn live_peer(
    listener: TcpListener,
    send_after: Option<Duration>,
) -> (usize, usize, Option<Message>) {
    let (tcp, _) = listener.accept().await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let mut ws = typed_ws::tokio_tungstenite::accept_async(tcp)
        .await
        .unwrap();
    let (mut texts, mut pings) = (0, 0);
    let send_at = tokio::time::sleep(send_after.unwrap_or(Duration::MAX / 4));
    tokio::pin!(send_at);
    let mut sent = send_after.is_none();
    loop {
        tokio::select! {
            () = &mut send_at, if !sent => {
                ws.send(Message::text(r#""late""#)).await.unwrap();
                sent = true;
            }
            message = ws.next() => match message {
                Some(Ok(Message::Text(_))) => texts += 1,
                Some(Ok(Message::Ping(_))) => pings += 1,
                Some(Ok(close @ Message::Close(_))) => {
                    // Drive the close reply out, then report.
                    while let Some(Ok(_)) = ws.next().await {}
                    return (texts, pings, Some(close));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return (texts, pings, None),
            }
        }
    }
}

#[tokio::test]
async fn live_peer_does_not_time_out_while_the_user_only_sends() {
    let timeout = Duration::from_millis(500);
    let span = timeout * 4;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(live_peer(listener, None));
    let client = Client::new(Config::new().ping_interval(PING).timeout(timeout));
    let mut session = within(
        "connect",
        client.web_socket_session(format!("ws://{addr}/send")),
    )
    .await
    .unwrap();

    let started = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_millis(50));
    let mut sent = 0;
    while started.elapsed() < span {
        ticks.tick().await;
        within("send", session.send_text(format!("n{sent}")))
            .await
            .unwrap_or_else(|e| panic!("send {sent} after {:?}: {e:?}", started.elapsed()));
        sent += 1;
    }
    assert_eq!(session.close_reason(), None);
    within(
        "close",
        session.close(CloseReason::new(CloseCode::Normal, "")),
    )
    .await
    .unwrap();
    let (texts, pings, close) = within("peer", peer).await.unwrap();
    assert_eq!(texts, sent, "the peer got every message");
    assert!(pings >= 5, "only {pings} pings in {span:?}");
    assert!(
        matches!(close, Some(Message::Close(Some(ref f))) if u16::from(f.code) == 1000),
        "{close:?}"
    );
    assert_eq!(session.close_reason().unwrap().code, CloseCode::Normal);
}

#[cfg(feature = "json")]
#[tokio::test]
async fn live_peer_does_not_time_out_while_the_user_only_receives() {
    let timeout = Duration::from_millis(500);
    let span = timeout * 4;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(live_peer(listener, Some(span)));
    let client = Client::new(
        Config::new()
            .converter(AnyConverter::from_name("json").unwrap())
            .ping_interval(PING)
            .timeout(timeout),
    );
    // Before connecting: the peer starts its delay after accepting, which is later.
    let started = Instant::now();
    let mut session = within(
        "connect",
        client.web_socket_session(format!("ws://{addr}/recv")),
    )
    .await
    .unwrap();

    // Nothing but pongs arrives for four timeout periods, then a message.
    let late: String = within("receive", session.receive_deserialized())
        .await
        .unwrap_or_else(|e| panic!("receive failed after {:?}: {e:?}", started.elapsed()));
    assert_eq!(late, "late");
    assert!(
        started.elapsed() >= span,
        "the message came early: {:?}",
        started.elapsed()
    );
    assert_eq!(session.close_reason(), None);
    within(
        "close",
        session.close(CloseReason::new(CloseCode::Normal, "")),
    )
    .await
    .unwrap();
    let (_, pings, _) = within("peer", peer).await.unwrap();
    assert!(pings >= 5, "only {pings} pings in {span:?}");
}

#[tokio::test]
async fn idle_timeout_without_pings() {
    // Without a ping interval the timeout is an idle timeout: a live but quiet peer ends it.
    let timeout = Duration::from_millis(300);
    let (mut session, mut peer, _) = raw::client_to_raw(
        Config::new().ping_interval(Duration::ZERO).timeout(timeout),
        "/idle",
    )
    .await;
    within("raw send", peer.write_frame(true, raw::TEXT, b"one"))
        .await
        .unwrap();
    assert_eq!(
        within("receive", session.receive()).await.unwrap(),
        Frame::text("one")
    );
    let err = within("receive until idle", session.receive())
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    let close = within("raw read", peer.expect_frame()).await;
    assert_eq!(close.close_code(), Some(1011));
}

/// A session received from one task, then waiting in another: the timeout must wake the
/// task that waits now, not the one that received before.
#[tokio::test]
async fn the_timeout_wakes_a_receive_that_moved_to_another_task() {
    let timeout = Duration::from_millis(300);
    let (session, mut peer, _) = raw::client_to_raw(
        Config::new().ping_interval(Duration::ZERO).timeout(timeout),
        "/moved",
    )
    .await;
    let first = tokio::spawn(async move {
        let mut session = session;
        let frame = session.receive().await;
        (session, frame)
    });
    within("raw send", peer.write_frame(true, raw::TEXT, b"one"))
        .await
        .unwrap();
    let (mut session, frame) = within("the first task's receive", first).await.unwrap();
    assert_eq!(frame.unwrap(), Frame::text("one"));
    let second = tokio::spawn(async move { session.receive().await });
    let err = within("the second task's receive until idle", second)
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
}

#[tokio::test]
async fn opening_handshake_is_bounded_by_the_handshake_timeout() {
    let timeout = Duration::from_millis(300);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = Client::new(Config::new().handshake_timeout(timeout));
    // The server accepts the TCP connection and never answers the upgrade.
    let (result, accepted) = within("connect to a mute server", async {
        tokio::join!(
            client.web_socket_session(format!("ws://{addr}/mute")),
            listener.accept()
        )
    })
    .await;
    let _tcp = accepted.unwrap();
    match result {
        Err(err) => assert!(
            matches!(err, Error::HandshakeTimeout(d) if d == timeout),
            "{err:?}"
        ),
        Ok(_) => panic!("the handshake cannot have succeeded"),
    }
}

#[tokio::test]
async fn connection_dropped_without_close_gives_1006() {
    let (mut session, peer, _) = raw::client_to_raw(Config::new(), "/drop").await;
    let (result, ()) = within("receive while the server drops", async {
        tokio::join!(session.receive(), async { peer.drop_connection() })
    })
    .await;
    let err = result.unwrap_err();
    match &err {
        Error::Closed(reason) => assert_eq!(reason.code, CloseCode::Abnormal),
        other => panic!("expected Error::Closed(1006), got {other:?}"),
    }
    assert_eq!(err.close_code(), None);
    assert_eq!(
        session.close_reason().map(|r| r.code),
        Some(CloseCode::Abnormal)
    );
    // Sending fails the same way.
    let err = within("send after", session.send_text("anyone?"))
        .await
        .unwrap_err();
    assert_eq!(
        err.close_reason().map(|r| r.code),
        Some(CloseCode::Abnormal),
        "{err:?}"
    );
}

#[tokio::test]
async fn connection_dropped_while_nobody_receives_gives_1006_with_keepalive_on() {
    let (mut session, mut peer, _) =
        raw::client_to_raw(Config::new().ping_interval(PING), "/drop-idle").await;
    // Wait until the keep-alive task is demonstrably running, then end the connection
    // (FIN, no close frame; the raw peer keeps its socket so later pings cannot reset it).
    let ping = within("first ping", peer.expect_frame()).await;
    assert_eq!(ping.opcode, raw::PING);
    within("shutdown", peer.shutdown_write()).await;
    let err = within("receive", session.receive()).await.unwrap_err();
    match &err {
        Error::Closed(reason) => assert_eq!(reason.code, CloseCode::Abnormal),
        other => panic!("expected Error::Closed(1006), got {other:?}"),
    }
    assert_eq!(
        session.close_reason().map(|r| r.code),
        Some(CloseCode::Abnormal)
    );
}

/// The watchdog's read-ahead: the README bounds what it keeps for a user who is not receiving
/// to one maximum-size message or this many frames.
const MAX_PENDING_FRAMES: usize = 1024;

/// A short interval, so that the watchdog reads ahead often while the user waits.
const TICK: Duration = Duration::from_millis(20);

/// The payload of the peer's ping that follows its data: the session answers it with a pong
/// when it reads that far, which tells the peer what the session has read.
const MARKER: &[u8] = b"marker";
/// A ping among the frames that a bounded read-ahead does keep.
const INSIDE: &[u8] = b"inside";

/// Frames as a raw server writes them (unmasked), all in one write.
fn frames_on_the_wire(frames: &[(u8, bool, Vec<u8>)]) -> Vec<u8> {
    frames
        .iter()
        .flat_map(|(opcode, fin, payload)| raw::encode_frame(*fin, *opcode, payload, false))
        .collect()
}

/// Reads the session's frames until `ticks` more of its (empty) pings have arrived, each sent
/// after a read-ahead on the same tick; anything else is what `what` forbids.
async fn wait_ticks(peer: &mut RawPeer, ticks: usize, what: &str) {
    let mut seen = 0;
    while seen < ticks {
        let frame = within("the session's next ping", peer.expect_frame()).await;
        assert!(
            frame.opcode == raw::PING && frame.payload.is_empty(),
            "{what}: got {frame:?} after {seen} pings"
        );
        seen += 1;
    }
}

/// Reads the session's frames, skipping its pings and other pongs, until the pong to
/// [`MARKER`].
async fn wait_marker_pong(peer: &mut RawPeer) {
    loop {
        let frame = within("the pong to the marker", peer.expect_frame()).await;
        match frame.opcode {
            raw::PING => {}
            raw::PONG if frame.payload == MARKER => return,
            raw::PONG => {}
            _ => panic!("unexpected {frame:?}"),
        }
    }
}

#[tokio::test]
async fn data_read_ahead_while_nobody_receives_comes_out_of_later_receives_in_order() {
    let (mut session, mut peer, _) =
        raw::client_to_raw(Config::new().ping_interval(TICK), "/read-ahead").await;
    let big: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let wire = [
        (raw::TEXT, true, b"first".to_vec()),
        (raw::BINARY, true, big.clone()),
        // A fragmented message, a control frame between its fragments.
        (raw::TEXT, false, b"frag".to_vec()),
        (raw::PING, true, b"between".to_vec()),
        (raw::CONTINUE, false, b"men".to_vec()),
        (raw::CONTINUE, true, b"ted".to_vec()),
        (raw::BINARY, true, Vec::new()),
        (raw::TEXT, true, "ünïcödé".as_bytes().to_vec()),
        (raw::PING, true, MARKER.to_vec()),
    ];
    within(
        "the peer's data",
        peer.write_raw(&frames_on_the_wire(&wire)),
    )
    .await
    .unwrap();
    // The user is not receiving, so only the watchdog can have read the marker, and with it
    // everything before it; a few more ticks must not disturb what it keeps.
    within("the watchdog reads it all", wait_marker_pong(&mut peer)).await;
    wait_ticks(&mut peer, 3, "only pings while the user waits").await;

    let expected = [
        Frame::text("first"),
        Frame::binary(big),
        Frame::Ping(Bytes::from_static(b"between")),
        Frame::text("fragmented"),
        Frame::binary(Vec::new()),
        Frame::text("ünïcödé"),
        Frame::Ping(Bytes::from_static(MARKER)),
    ];
    for (i, want) in expected.into_iter().enumerate() {
        let got = within("receive what was read ahead", session.receive())
            .await
            .unwrap_or_else(|e| panic!("receive {i}: {e:?}"));
        assert_eq!(got, want, "receive {i}");
    }
    assert_eq!(session.close_reason(), None);
}

/// The peer writes `count` binary frames of `len` bytes (each numbered), with a ping
/// [`INSIDE`] among the first half of what the session may keep, and then the marker ping,
/// while the user does not receive. The pong to `INSIDE` shows that the keep-alive task has
/// read that far, whatever the machine's load; a few ticks later it must still not have read
/// the marker. Then the user receives everything, in order, and the session may read the
/// marker, and answer it, only once it has handed the user all but `most_pending` of the
/// frames before it: what it keeps is bounded.
async fn read_ahead_keeps_at_most(config: Config, count: usize, len: usize, most_pending: usize) {
    let (mut session, mut peer, _) = raw::client_to_raw(config, "/flood").await;
    let payload = move |i: usize| -> Vec<u8> {
        let mut bytes = vec![0x5a; len];
        bytes[..4].copy_from_slice(&(i as u32).to_be_bytes());
        bytes
    };
    let inside_at = most_pending / 2;
    let mut wire: Vec<_> = (0..count)
        .map(|i| (raw::BINARY, true, payload(i)))
        .collect();
    wire.insert(inside_at, (raw::PING, true, INSIDE.to_vec()));
    wire.push((raw::PING, true, MARKER.to_vec()));
    within("the flood", peer.write_raw(&frames_on_the_wire(&wire)))
        .await
        .unwrap();
    loop {
        let frame = within("the pong to the ping inside the bound", peer.expect_frame()).await;
        match frame.opcode {
            raw::PING => {}
            raw::PONG if frame.payload == INSIDE => break,
            _ => panic!(
                "the session read past its bound while the user was not receiving: {frame:?}"
            ),
        }
    }
    wait_ticks(
        &mut peer,
        3,
        "the session read past its bound while the user was not receiving",
    )
    .await;

    let received = Arc::new(AtomicUsize::new(0));
    let user = tokio::spawn({
        let received = Arc::clone(&received);
        async move {
            for i in 0..count {
                if i == inside_at {
                    let inside = within("receive the inside ping", session.receive()).await;
                    assert_eq!(inside.unwrap(), Frame::Ping(Bytes::from_static(INSIDE)));
                }
                let frame = within("receive", session.receive()).await.unwrap();
                assert_eq!(frame, Frame::binary(payload(i)), "frame {i}");
                received.fetch_add(1, Ordering::SeqCst);
            }
            let marker = within("receive the marker", session.receive()).await;
            assert_eq!(marker.unwrap(), Frame::Ping(Bytes::from_static(MARKER)));
        }
    });
    wait_marker_pong(&mut peer).await;
    // One frame may be out of the buffer but not yet counted.
    let handed_over = received.load(Ordering::SeqCst) + 1;
    assert!(
        handed_over + most_pending >= count,
        "the marker was read with only {handed_over} of {count} frames handed to the user"
    );
    within("the user", user).await.unwrap();
}

#[tokio::test]
async fn read_ahead_keeps_at_most_1024_frames() {
    let config = Config::new().ping_interval(TICK);
    read_ahead_keeps_at_most(config, 3 * MAX_PENDING_FRAMES, 4, MAX_PENDING_FRAMES).await;
}

#[tokio::test]
async fn read_ahead_keeps_at_most_one_maximum_size_message() {
    let limit = 16 << 10;
    let len = 1 << 10;
    let config = Config::new().ping_interval(TICK).max_message_size(limit);
    read_ahead_keeps_at_most(config, 64, len, limit / len).await;
}

#[tokio::test]
async fn a_full_read_ahead_buffer_keeps_a_silent_peer_alive() {
    let timeout = Duration::from_millis(200);
    let (mut session, mut peer, _) =
        raw::client_to_raw(Config::new().ping_interval(TICK).timeout(timeout), "/full").await;
    let count = 2 * MAX_PENDING_FRAMES;
    let wire: Vec<_> = (0..count)
        .map(|i| (raw::BINARY, true, (i as u32).to_be_bytes().to_vec()))
        .collect();
    within("the flood", peer.write_raw(&frames_on_the_wire(&wire)))
        .await
        .unwrap();
    // Then the peer is silent, answering no ping, for at least three timeouts (ping k goes
    // out no earlier than k intervals after the session started).
    let ticks = 3 * (timeout.as_millis() / TICK.as_millis()) as usize;
    wait_ticks(
        &mut peer,
        ticks,
        "the session timed out while its buffer was full",
    )
    .await;
    assert_eq!(session.close_reason(), None);
    for i in 0..count {
        let frame = within("receive", session.receive()).await.unwrap();
        assert_eq!(
            frame,
            Frame::binary((i as u32).to_be_bytes().to_vec()),
            "frame {i}"
        );
    }
    // With the buffer empty, the silence counts again.
    let err = within("receive until the timeout", session.receive())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(d) if d == timeout), "{err:?}");
}

/// A session's keep-alive task ends with the session, not only when the session is dropped: a
/// server that keeps its ended sessions (in a map, say) holds no task for them.
#[tokio::test]
async fn the_keepalive_task_ends_with_its_session_while_the_session_is_held() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    // No ping and no timeout: nothing but the session's end can wake the task.
    let quiet = || {
        Config::new()
            .ping_interval(Duration::ZERO)
            .timeout(Duration::ZERO)
    };
    let (mut client, mut server) = pair(quiet(), quiet()).await;
    assert_eq!(
        metrics.num_alive_tasks(),
        before + 2,
        "one keep-alive task per session"
    );
    let (closed, (received, after)) = within("the closing handshake", async {
        tokio::join!(
            client.close(CloseReason::new(CloseCode::Normal, "bye")),
            async { (server.receive().await, server.receive().await) }
        )
    })
    .await;
    closed.unwrap();
    assert!(matches!(received, Ok(Frame::Close(_))), "{received:?}");
    assert!(matches!(after, Err(Error::Closed(_))), "{after:?}");
    within("both keep-alive tasks ending", async {
        while metrics.num_alive_tasks() > before {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    // Held until here, so that only the sessions' end can have ended the tasks.
    drop((client, server));
}

/// Dropping a session ends its keep-alive task at once, not at its next tick: the task holds
/// nothing of the session between ticks, and must not outlive it by a ping interval.
#[tokio::test]
async fn dropping_a_session_ends_its_keepalive_task_at_once() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    // The defaults: the next tick is 20 s away, longer than the test may wait.
    let (client, server) = pair(Config::new(), Config::new()).await;
    assert_eq!(metrics.num_alive_tasks(), before + 2);
    drop((client, server));
    within("both keep-alive tasks ending", async {
        while metrics.num_alive_tasks() > before {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
}

/// The peer writes `frames` numbered binary frames of 1 KiB, then the marker ping, to a
/// session with a 16 KiB message limit and short ticks; gives the session and the peer.
async fn flood_of_kib(config: Config, frames: usize, path: &str) -> (Session, RawPeer) {
    let config = config.ping_interval(TICK).max_message_size(16 << 10);
    let (session, mut peer, _) = raw::client_to_raw(config, path).await;
    let mut wire: Vec<_> = (0..frames)
        .map(|i| (raw::BINARY, true, vec![i as u8; 1 << 10]))
        .collect();
    wire.push((raw::PING, true, MARKER.to_vec()));
    within("the flood", peer.write_raw(&frames_on_the_wire(&wire)))
        .await
        .unwrap();
    (session, peer)
}

async fn receive_kib(session: &mut Session, numbers: std::ops::Range<usize>) {
    for i in numbers {
        let frame = within("receive", session.receive()).await.unwrap();
        assert_eq!(frame, Frame::binary(vec![i as u8; 1 << 10]), "frame {i}");
    }
}

/// After the user takes some of a full read-ahead buffer, the keep-alive task reads only as
/// much again as the user took: here 4 frames, and not the marker behind them.
#[tokio::test]
async fn read_ahead_refills_only_what_the_user_took() {
    let (mut session, mut peer) = flood_of_kib(Config::new(), 20, "/refill").await;
    wait_ticks(&mut peer, 3, "the session read past its 16 KiB").await;
    receive_kib(&mut session, 0..4).await;
    wait_ticks(
        &mut peer,
        3,
        "the session read more than the 4 KiB the user took",
    )
    .await;
    receive_kib(&mut session, 4..20).await;
    let marker = within("receive the marker", session.receive()).await;
    assert_eq!(marker.unwrap(), Frame::Ping(Bytes::from_static(MARKER)));
    wait_marker_pong(&mut peer).await;
}

/// A full read-ahead buffer counts as a sign of life only while it is full: once the user
/// has taken everything, a peer that says nothing more times out like any silent peer.
#[tokio::test]
async fn a_drained_read_ahead_buffer_no_longer_keeps_a_silent_peer_alive() {
    let timeout = Duration::from_millis(200);
    let config = Config::new().timeout(timeout);
    // 16 frames fill the buffer; the marker stays unread until the user receives.
    let (mut session, mut peer) = flood_of_kib(config, 16, "/drained").await;
    wait_ticks(&mut peer, 3, "the session read past its 16 KiB").await;
    receive_kib(&mut session, 0..16).await;
    let marker = within("receive the marker", session.receive()).await;
    assert_eq!(marker.unwrap(), Frame::Ping(Bytes::from_static(MARKER)));
    let end = within("the timeout", session.receive()).await;
    assert!(
        matches!(end, Err(Error::Timeout(t)) if t == timeout),
        "{end:?}"
    );
}

/// Every setting off: no ping, no timeout, no send deadline. Then the session has nothing to
/// watch and runs no keep-alive task at all.
#[tokio::test]
async fn a_session_with_nothing_to_watch_runs_no_keepalive_task() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let off = || {
        Config::new()
            .ping_interval(Duration::ZERO)
            .timeout(Duration::ZERO)
            .send_timeout(Duration::ZERO)
    };
    let (client, server) = pair(off(), off()).await;
    assert_eq!(metrics.num_alive_tasks(), before);
    drop((client, server));
}

/// A ping interval alone, without a timeout or a send deadline, still gets its pings.
#[tokio::test]
async fn pings_alone_are_sent() {
    let config = Config::new()
        .ping_interval(PING)
        .timeout(Duration::ZERO)
        .send_timeout(Duration::ZERO);
    let since = Instant::now();
    let (_session, mut peer, _) = raw::client_to_raw(config, "/pings-alone").await;
    expect_pings_at_interval(&mut peer, since, 2).await;
}
