//! Fuzzed frames: seeded random bytes sent after the handshake give what the first frame
//! header they make implies (1002, 1009, or 1006 for a frame left unfinished), and the server
//! keeps serving every other session meanwhile.
#![cfg(feature = "json")]

use crate::common;

use common::hostile::{
    Probed, config, echo_round, expect_close_then_end, fresh_client_echoes, good_client,
};
use common::raw::RawPeer;
use common::rng::Rng;
use common::*;
use typed_ws::*;

/// What random bytes sent after the handshake imply, judged from the first frame header
/// they make, in the order tungstenite checks it; `None` when they happen to make a
/// well-formed frame, whose meaning depends on what follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Implied {
    /// A protocol violation: 1002.
    Protocol,
    /// A frame over the limit: 1009, with the size the header claims.
    TooBig(u64),
    /// An incomplete frame, then the peer's FIN: 1006, no close frame.
    Dropped,
}

fn implied_by(garbage: &[u8], max_frame: u64) -> Option<Implied> {
    let Some(header) = wire::parse(garbage) else {
        return Some(Implied::Dropped);
    };
    let (b0, len, at) = (header.first, header.payload_len, header.len);
    let opcode = b0 & 0x0f;
    let masked = header.mask.is_some();
    if matches!(opcode, 0x3..=0x7 | 0xb..=0xf) {
        return Some(Implied::Protocol);
    }
    if len > max_frame {
        return Some(Implied::TooBig(len));
    }
    if at as u64 + len > garbage.len() as u64 {
        return Some(Implied::Dropped);
    }
    let fin = b0 & 0x80 != 0;
    let rsv = b0 & 0x70 != 0;
    let control = opcode >= 0x8;
    if !masked || rsv || (control && (!fin || len > 125)) || opcode == 0x0 {
        return Some(Implied::Protocol);
    }
    None
}

#[tokio::test]
async fn random_bytes_after_the_handshake_give_what_their_first_header_implies() {
    const MAX_FRAME: usize = 1024;
    let mut server = Probed::start(config().max_frame_size(MAX_FRAME)).await;
    let mut other = good_client(server.addr).await;

    // The first seeds whose bytes decide the outcome, at least two of each kind.
    let mut cases = Vec::new();
    let mut counts = [0usize; 3];
    for seed in 1..10_000u64 {
        let mut rng = Rng::new(seed);
        let len = 16 + (rng.next() % 2048) as usize;
        let garbage = rng.bytes(len);
        let Some(implied) = implied_by(&garbage, MAX_FRAME as u64) else {
            continue;
        };
        let kind = match implied {
            Implied::Protocol => 0,
            Implied::TooBig(_) => 1,
            Implied::Dropped => 2,
        };
        if counts[kind] < 2 {
            counts[kind] += 1;
            cases.push((seed, garbage, implied));
        }
        if counts.iter().all(|&n| n == 2) {
            break;
        }
    }
    assert_eq!(counts, [2, 2, 2], "seeds of every kind");

    for (seed, garbage, implied) in cases {
        let path = format!("/probe/random-{seed}");
        let mut peer = within("raw connect", RawPeer::connect(server.addr, &path)).await;
        within("garbage", async {
            peer.write_raw(&garbage).await.expect("write");
            // Whatever the bytes left unfinished stays so.
            peer.shutdown_write().await;
        })
        .await;
        let seen = server.seen(&path).await;
        assert!(seen.frames.is_empty(), "seed {seed}: {:?}", seen.frames);
        let code = match (implied, &seen.error) {
            (Implied::Protocol, Error::Protocol(_)) => 1002,
            (Implied::TooBig(len), Error::TooBig { size, limit, .. }) => {
                assert_eq!((*size as u64, *limit), (len, MAX_FRAME), "seed {seed}");
                1009
            }
            (Implied::Dropped, Error::Closed(reason)) => {
                assert_eq!(reason.code, CloseCode::Abnormal, "seed {seed}");
                1006
            }
            (implied, error) => panic!("seed {seed}: {implied:?} expected, got {error:?}"),
        };
        assert_eq!(
            seen.close_reason.map(|r| u16::from(r.code)),
            Some(code),
            "seed {seed}"
        );
        if code == 1006 {
            // No close frame: the connection just ends, with a FIN.
            let what = format!("seed {seed}");
            within("end", peer.expect_fin(&what)).await;
        } else {
            expect_close_then_end(&mut peer, code, &format!("seed {seed}")).await;
        }
        echo_round(&mut other, seed).await;
    }
    fresh_client_echoes(server.addr).await;
}
