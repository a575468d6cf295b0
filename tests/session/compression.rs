//! permessage-deflate (RFC 7692) between typed-ws ends, and against raw peers that compress
//! by hand: negotiation, every size and kind of message, fragments, context takeover on and
//! off, and what a hostile peer can send.

use crate::common;

use common::deflate::{deflate, fresh_compressor};
use common::raw::{CLOSE, CONTINUE, PING, RawPeer, TEXT, client_frame};
use common::{pair, serve, within};
use typed_ws::{CloseCode, Compression, Config, Error, Frame, JsonConverter, Server};

fn compressing(compression: Compression) -> Config<JsonConverter> {
    Config::new()
        .converter(JsonConverter)
        .compression(compression)
}

/// Text that compresses the way JSON does, and bytes that do not compress at all.
fn messages() -> Vec<Frame> {
    let json: String = (0..4000)
        .map(|i| format!(r#"{{"id":{i},"author":"ada","text":"hello"}}"#))
        .collect();
    let noise: Vec<u8> = common::rng::Rng::new(7).bytes(70_000);
    let mut frames = Vec::new();
    for len in [0, 1, 31, 32, 33, 100, 1000, 5000, json.len()] {
        frames.push(Frame::Text(json[..len].to_owned().into()));
    }
    for len in [0, 40, 3000, noise.len()] {
        frames.push(Frame::Binary(noise[..len].to_vec().into()));
    }
    frames
}

/// Sends every message from `from` and checks that `to` receives it unchanged.
async fn exchange<A, B>(from: &mut typed_ws::Session<A>, to: &mut typed_ws::Session<B>) {
    for frame in messages() {
        let what = format!(
            "a {}-byte {:?} message",
            frame.payload().len(),
            frame.kind()
        );
        eprintln!("{what}");
        within(&what, from.send(frame.clone())).await.expect("send");
        let got = within(&what, to.receive()).await.expect("receive");
        assert_eq!(got, frame, "{what} changed on the way");
    }
}

#[tokio::test]
async fn both_ends_compress_every_size_and_kind_whole_and_fragmented_with_and_without_context_takeover()
 {
    let settings = [
        Compression::new(),
        Compression::new()
            .no_context_takeover()
            .peer_no_context_takeover(),
        Compression::new()
            .max_window_bits(9)
            .peer_max_window_bits(10),
        Compression::new().threshold(0).level(1),
        Compression::new().max_window_bits(8),
    ];
    for compression in settings {
        for fragment_size in [0, 1000] {
            let config = compressing(compression).fragment_size(fragment_size);
            let (mut client, mut server) = pair(config.clone(), config).await;
            let (ours, theirs) = (client.compression(), server.compression());
            let ours = ours.expect("the client agreed on no compression");
            let theirs = theirs.expect("the server agreed on no compression");
            assert_eq!(ours.send_window_bits(), theirs.receive_window_bits());
            assert_eq!(ours.receive_window_bits(), theirs.send_window_bits());
            assert_eq!(
                ours.send_no_context_takeover(),
                theirs.receive_no_context_takeover()
            );
            assert_eq!(
                ours.receive_no_context_takeover(),
                theirs.send_no_context_takeover()
            );
            eprintln!("{compression:?} fragments of {fragment_size}");
            exchange(&mut client, &mut server).await;
            exchange(&mut server, &mut client).await;
        }
    }
}

#[tokio::test]
async fn without_compression_on_either_end_the_session_goes_uncompressed() {
    let plain = Config::new().converter(JsonConverter);
    let on = compressing(Compression::new());
    for (client, server) in [(on.clone(), plain.clone()), (plain, on)] {
        let (mut client, mut server) = pair(client, server).await;
        assert_eq!(client.compression(), None);
        assert_eq!(server.compression(), None);
        exchange(&mut client, &mut server).await;
    }
}

/// A raw client that offered `offer` to a compressing echo server, and the server's answer.
async fn raw_client(offer: &str, config: Config<JsonConverter>) -> (RawPeer, String) {
    let addr = serve(Server::new(config), common::echo).await;
    let header = format!("Sec-WebSocket-Extensions: {offer}\r\n");
    within("raw handshake", RawPeer::connect_with(addr, "/", &header)).await
}

fn inflate(payload: &[u8]) -> Vec<u8> {
    let mut inflater = flate2::Decompress::new(false);
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(1 << 20);
    inflater
        .decompress_vec(&input, &mut out, flate2::FlushDecompress::Sync)
        .expect("inflate");
    out
}

#[tokio::test]
async fn a_server_answers_the_offer_and_echoes_compressed_messages_with_rsv1_and_fewer_bytes() {
    let (mut peer, head) = raw_client(
        "x-webkit-deflate-frame, permessage-deflate; client_max_window_bits",
        compressing(Compression::new()),
    )
    .await;
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-extensions: permessage-deflate\r\n"),
        "no plain permessage-deflate answer in {head}"
    );
    let mut compress = fresh_compressor();
    let text = r#"{"id":1,"author":"ada","text":"hello, hello, hello, hello"}"#.repeat(20);
    for round in 0..3 {
        let payload = deflate(&mut compress, text.as_bytes());
        within("send", peer.write_raw(&client_frame(0xc1, &payload)))
            .await
            .unwrap();
        let echoed = within("echo", peer.expect_skipping_pings()).await;
        assert!(
            echoed.rsv1 && echoed.fin && echoed.opcode == TEXT,
            "round {round}: {echoed:?}"
        );
        assert!(
            echoed.payload.len() * 4 < text.len(),
            "round {round}: {} compressed bytes for {}",
            echoed.payload.len(),
            text.len()
        );
        if round == 0 {
            assert_eq!(inflate(&echoed.payload), text.as_bytes());
        }
    }
}

#[tokio::test]
async fn a_compressed_message_in_fragments_with_a_ping_between_them_is_read_whole() {
    let (mut peer, _) = raw_client(
        "permessage-deflate",
        compressing(Compression::new().threshold(1 << 20)),
    )
    .await;
    let text = "fragmented and compressed ".repeat(500);
    let payload = deflate(&mut fresh_compressor(), text.as_bytes());
    let (a, rest) = payload.split_at(10);
    let (b, c) = rest.split_at(rest.len() / 2);
    let mut bytes = client_frame(0x41, a);
    bytes.extend(client_frame(0x80 | PING, b"between"));
    bytes.extend(client_frame(CONTINUE, b));
    bytes.extend(client_frame(0x80 | CONTINUE, c));
    within("send", peer.write_raw(&bytes)).await.unwrap();
    let pong = within("pong", peer.expect_frame()).await;
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (0xA, &b"between"[..])
    );
    // Over the threshold of 1 MiB: the echo goes out uncompressed.
    let echoed = within("echo", peer.expect_skipping_pings()).await;
    assert!(!echoed.rsv1, "a message under the threshold was compressed");
    assert_eq!(echoed.payload, text.as_bytes());
}

/// What a compressing server with a 64 KiB message limit does with `bytes` from a raw client:
/// the close code it sends and the error its session ends with.
async fn hostile(offer: &str, bytes: Vec<u8>) -> (u16, String, Error) {
    let (errors, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let config = compressing(Compression::new()).max_message_size(64 << 10);
    let addr = serve(Server::new(config), move |mut session| {
        let errors = errors.clone();
        async move {
            loop {
                match session.receive().await {
                    Ok(_) => continue,
                    Err(e) => {
                        let _ = errors.send(e);
                        return;
                    }
                }
            }
        }
    })
    .await;
    let header = if offer.is_empty() {
        String::new()
    } else {
        format!("Sec-WebSocket-Extensions: {offer}\r\n")
    };
    let (mut peer, _) = within("raw handshake", RawPeer::connect_with(addr, "/", &header)).await;
    within("send", peer.write_raw(&bytes)).await.unwrap();
    let close = within("close", peer.expect_skipping_pings()).await;
    assert_eq!(close.opcode, CLOSE, "{close:?}");
    let error = within("server error", seen.recv()).await.expect("an error");
    (
        close.close_code().expect("a code"),
        close.close_text(),
        error,
    )
}

#[tokio::test]
async fn an_inflation_bomb_is_refused_with_1009_while_inflating() {
    let bomb = deflate(&mut fresh_compressor(), &vec![0; 10 << 20]);
    assert!(bomb.len() < 12 << 10, "the bomb is {} bytes", bomb.len());
    let (code, text, error) = hostile("permessage-deflate", client_frame(0xc2, &bomb)).await;
    assert_eq!(code, 1009, "{text}");
    // Stopped while inflating, by the layer that inflates, not later by tungstenite.
    assert_eq!(
        text,
        "compressed message inflates past the limit of 65536 bytes"
    );
    match error {
        Error::TooBig { size, limit, .. } => {
            assert_eq!(limit, 64 << 10);
            assert!(
                size > limit && size <= 2 * limit,
                "inflated to {size} before stopping"
            );
        }
        other => panic!("expected TooBig, got {other:?}"),
    }
}

/// Kilobyte frames that inflate to a megabyte each, already waiting in the socket, are not
/// read one after another in one go: each costs the receiving task its tokio budget, so the
/// task yields to the others of its worker between two of them.
#[tokio::test]
async fn messages_that_inflate_to_megabytes_are_read_one_per_turn_of_the_task() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    const BOMBS: usize = 6;
    // The turn of the handler's task in which each message arrived.
    let turns_of_bombs = Arc::new(Mutex::new(Vec::new()));
    let log = turns_of_bombs.clone();
    let addr = serve(
        Server::new(compressing(Compression::new())),
        move |mut session| {
            let log = log.clone();
            let turn = Arc::new(AtomicUsize::new(0));
            let counted = turn.clone();
            let receiving = async move {
                for _ in 0..BOMBS {
                    match session.receive().await {
                        Ok(frame) => {
                            assert_eq!(frame.payload().len(), 1 << 20);
                            log.lock().unwrap().push(turn.load(Ordering::Relaxed));
                        }
                        Err(_) => return,
                    }
                }
            };
            let mut receiving = Box::pin(receiving);
            std::future::poll_fn(move |cx| {
                counted.fetch_add(1, Ordering::Relaxed);
                receiving.as_mut().poll(cx)
            })
        },
    )
    .await;
    let (mut peer, _) = within(
        "raw handshake",
        RawPeer::connect_with(
            addr,
            "/",
            "Sec-WebSocket-Extensions: permessage-deflate\r\n",
        ),
    )
    .await;
    let bomb = client_frame(0xc2, &deflate(&mut fresh_compressor(), &vec![0; 1 << 20]));
    // All of them at once: without a bound, one turn would read them all.
    within("the bombs", peer.write_raw(&bomb.repeat(BOMBS)))
        .await
        .unwrap();
    within("the bombs are read", async {
        while turns_of_bombs.lock().unwrap().len() < BOMBS {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let turns = turns_of_bombs.lock().unwrap().clone();
    for pair in turns.windows(2) {
        assert!(
            pair[1] > pair[0],
            "two megabyte messages in one turn: {turns:?}"
        );
    }
}

#[tokio::test]
async fn invalid_deflate_data_is_refused_with_1007() {
    let (code, text, error) = hostile("permessage-deflate", client_frame(0xc1, &[0xff; 16])).await;
    assert_eq!(code, 1007, "{text}");
    assert!(text.contains("invalid compressed data"), "{text}");
    assert!(matches!(error, Error::InvalidCompressed(_)), "{error:?}");
    assert_eq!(error.close_code(), Some(CloseCode::InvalidPayload));
}

#[tokio::test]
async fn rsv1_on_a_control_frame_a_continuation_or_without_the_extension_is_refused_with_1002() {
    let payload = deflate(
        &mut fresh_compressor(),
        b"hello hello hello hello hello hello",
    );
    let mut continuation = client_frame(0x41, &payload[..4]);
    continuation.extend(client_frame(0xc0, &payload[4..]));
    let cases = [
        ("permessage-deflate", client_frame(0xc9, b"ping")),
        ("permessage-deflate", continuation),
        ("", client_frame(0xc1, &payload)),
        ("permessage-deflate", client_frame(0xe1, &payload)),
    ];
    for (offer, bytes) in cases {
        let (code, text, error) = hostile(offer, bytes).await;
        assert_eq!(code, 1002, "{text}");
        assert!(matches!(error, Error::Protocol(_)), "{error:?}");
    }
}
