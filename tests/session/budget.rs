//! The budget for unfinished messages, shared by a server's sessions: parked fragments, plain
//! or compressed (counted as inflated), hold it until their message completes; the session
//! whose bytes would go past it is closed with 1013 and its handler gets `Error::Overloaded`,
//! while the sessions that hold it carry on and give it back.

use crate::common;

use common::deflate::{deflate, fresh_compressor};
use common::raw::{BINARY, CLOSE, PONG, RawPeer, client_frame};
use common::{serve, within};
use tokio::sync::mpsc;
use typed_ws::{Compression, Config, Error, Server};

const KIB: usize = 1 << 10;

/// An echo server with `config`, reporting the error that ends each session.
async fn echo_reporting(config: Config) -> (std::net::SocketAddr, mpsc::UnboundedReceiver<Error>) {
    let (errors, seen) = mpsc::unbounded_channel();
    let addr = serve(Server::new(config), move |mut session| {
        let errors = errors.clone();
        async move {
            loop {
                match session.receive().await {
                    Ok(frame) if frame.is_data() => {
                        if session.send(frame).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = errors.send(e);
                        return;
                    }
                }
            }
        }
    })
    .await;
    (addr, seen)
}

/// Returns once the server has read everything `peer` sent before: it answers a ping only
/// after reading what came first.
async fn read_so_far(peer: &mut RawPeer) {
    within("ping", peer.write_raw(&client_frame(0x89, b"sync")))
        .await
        .expect("ping");
    let pong = within("pong", peer.expect_frame()).await;
    assert_eq!(pong.opcode, PONG, "{pong:?}");
}

/// What a session whose bytes would overdraw the budget sees, and its handler.
async fn refused_with_1013(peer: &mut RawPeer, errors: &mut mpsc::UnboundedReceiver<Error>) {
    let close = within("the close", peer.expect_skipping_pings()).await;
    assert_eq!(close.opcode, CLOSE, "{close:?}");
    assert_eq!(close.close_code(), Some(1013), "{}", close.close_text());
    let error = within("the handler's error", errors.recv())
        .await
        .expect("an error");
    assert!(matches!(error, Error::Overloaded { .. }), "{error:?}");
    assert_eq!(u16::from(error.close_code().expect("a code")), 1013);
}

#[tokio::test]
async fn parked_fragments_hold_the_budget_and_the_session_past_it_gets_1013() {
    let config = Config::new().max_unfinished_bytes(256 * KIB);
    let (addr, mut errors) = echo_reporting(config).await;

    // A parks 200 KiB: a first fragment, no final one yet.
    let mut a = within("a", RawPeer::connect(addr, "/")).await;
    within(
        "a's fragment",
        a.write_raw(&client_frame(0x02, &[1; 200 * KIB])),
    )
    .await
    .unwrap();
    read_so_far(&mut a).await;

    // B's fragment of 100 KiB would make 300.
    let mut b = within("b", RawPeer::connect(addr, "/")).await;
    let _ = within(
        "b's fragment",
        b.write_raw(&client_frame(0x02, &[2; 100 * KIB])),
    )
    .await;
    refused_with_1013(&mut b, &mut errors).await;

    // A carries on: its message completes and comes back whole.
    within(
        "a's last fragment",
        a.write_raw(&client_frame(0x80, &[3; KIB])),
    )
    .await
    .unwrap();
    let echo = within("a's echo", a.expect_skipping_pings()).await;
    assert_eq!(echo.opcode, BINARY);
    assert_eq!(echo.payload.len(), 201 * KIB);

    // Completed, A gave its share back: C can hold 250 KiB in fragments.
    let mut c = within("c", RawPeer::connect(addr, "/")).await;
    for fragment in [
        client_frame(0x02, &[4; 125 * KIB]),
        client_frame(0x00, &[5; 125 * KIB]),
        client_frame(0x80, &[]),
    ] {
        within("c's fragment", c.write_raw(&fragment))
            .await
            .unwrap();
    }
    let echo = within("c's echo", c.expect_skipping_pings()).await;
    assert_eq!(echo.payload.len(), 250 * KIB);
}

#[tokio::test]
async fn a_compressed_fragment_holds_what_it_inflates_to() {
    let config = Config::new()
        .compression(Compression::new())
        .max_unfinished_bytes(KIB * KIB);
    let (addr, mut errors) = echo_reporting(config).await;
    let offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n";

    // A parks a fragment of about a kilobyte on the wire that inflates to 768 KiB.
    let (mut a, _) = within("a", RawPeer::connect_with(addr, "/", offer)).await;
    let mut a_compress = fresh_compressor();
    // Within a message the sync marker stays: only the message's end drops it.
    let mut parked = deflate(&mut a_compress, &vec![0; 768 * KIB]);
    parked.extend_from_slice(&[0, 0, 0xff, 0xff]);
    assert!(parked.len() < 2 * KIB, "{} bytes", parked.len());
    within("a's fragment", a.write_raw(&client_frame(0x42, &parked)))
        .await
        .unwrap();
    read_so_far(&mut a).await;

    // B's compressed fragment inflating to 512 KiB would go past the mebibyte.
    let (mut b, _) = within("b", RawPeer::connect_with(addr, "/", offer)).await;
    let bomb = deflate(&mut fresh_compressor(), &vec![0; 512 * KIB]);
    let _ = within("b's fragment", b.write_raw(&client_frame(0x42, &bomb))).await;
    refused_with_1013(&mut b, &mut errors).await;

    // A's message completes and comes back whole (compressed by the server).
    let last = deflate(&mut a_compress, b"end");
    within("a's last fragment", a.write_raw(&client_frame(0x80, &last)))
        .await
        .unwrap();
    let echo = within("a's echo", a.expect_skipping_pings()).await;
    assert_eq!(echo.opcode, BINARY);
    assert!(echo.rsv1, "the echo is compressed");
}

/// Messages that complete give their share back, whatever their frames: a long stream of
/// compressed messages in small fragments, each well under the budget, never overdraws it.
#[tokio::test]
async fn a_stream_of_fragmented_compressed_messages_gives_the_budget_back_as_each_completes() {
    let budget = 1 << 20;
    let receiving = Config::new()
        .compression(Compression::new())
        .max_unfinished_bytes(budget);
    let sending = Config::new()
        .compression(Compression::new().threshold(0).level(1))
        .fragment_size(1024);
    let (mut client, mut server) = common::pair(receiving, sending).await;
    let text: String = (0..128 * KIB)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let messages = 4 * budget / text.len() + 8;
    let send = async {
        for _ in 0..messages {
            server.send_text(text.clone()).await.expect("send");
        }
    };
    let receive = async {
        for i in 0..messages {
            let frame = client
                .receive()
                .await
                .unwrap_or_else(|e| panic!("message {i}: {e}"));
            assert_eq!(frame.payload().len(), text.len());
        }
    };
    within("the stream", async { tokio::join!(send, receive) }).await;
}
