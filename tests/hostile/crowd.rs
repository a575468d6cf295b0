//! Everything at once: twenty hostile connections of every kind (garbage openings, held
//! half-requests, protocol violations, length bombs, vanishing peers, a peer that never reads)
//! while five good clients echo; each hostile kind ends as it implies and the good clients
//! never notice.
#![cfg(feature = "json")]

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::hostile::{
    Probed, config, echo_round, expect_close_then_end, good_client, half_a_frame,
};
use common::openings::{Opening, read_until_gone};
use common::raw::{self, RawPeer, client_frame, client_header};
use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use typed_ws::*;

/// Holders tell how many of them hold their connection; the test tells them when to let go.
#[derive(Clone)]
struct Hold {
    holding: Arc<tokio::sync::watch::Sender<usize>>,
    release: tokio::sync::watch::Receiver<bool>,
}

impl Hold {
    async fn hold(mut self) {
        self.holding.send_modify(|n| *n += 1);
        let _ = self.release.wait_for(|go| *go).await;
    }
}

/// The kinds of [`hostile_connection`] that hold their connection open.
const HOLDERS_PER_TEN: usize = 2;

/// One hostile connection of the kind `round % 10`; returns once it has checked what the
/// server did to it. Two kinds hold their connection until released.
async fn hostile_connection(addr: SocketAddr, round: usize, hold: Hold) {
    let what = format!("hostile connection {round}");
    match round % 10 {
        kind @ 0..=4 => {
            let opening = [
                Opening::RandomBytes(round as u64),
                Opening::PlainHttpGet,
                Opening::TruncatedThenEof,
                Opening::HugeHeaderSection,
                Opening::TruncatedThenReset,
            ][kind];
            let tcp = TcpStream::connect(addr).await.expect("connect");
            if let Some(mut tcp) = opening.play(tcp).await {
                let back = read_until_gone(&mut tcp).await;
                opening.check_answer(&back);
            }
        }
        5 => {
            // A request that never finishes, held open.
            let mut tcp = TcpStream::connect(addr).await.expect("connect");
            tcp.write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n")
                .await
                .expect("write");
            hold.hold().await;
            drop(tcp);
        }
        6 => {
            let mut peer = RawPeer::connect(addr, &format!("/probe/mixed-{round}")).await;
            peer.write_raw(&client_frame(0xc1, b"x"))
                .await
                .expect("write");
            expect_close_then_end(&mut peer, 1002, &what).await;
        }
        7 => {
            let mut peer = RawPeer::connect(addr, &format!("/probe/mixed-{round}")).await;
            peer.write_raw(&client_header(0x82, u64::MAX >> 1))
                .await
                .expect("write");
            expect_close_then_end(&mut peer, 1009, &what).await;
        }
        8 => {
            let mut peer = RawPeer::connect(addr, &format!("/probe/mixed-{round}")).await;
            peer.write_raw(&half_a_frame()).await.expect("write");
            if round < 10 {
                peer.drop_connection();
            } else {
                peer.reset_connection();
            }
        }
        _ => {
            // Sends a 1 MiB message to the echo and never reads the echo: that session's
            // send may block, no other.
            let mut peer = RawPeer::connect(addr, "/echo").await;
            peer.write_frame(true, raw::BINARY, &vec![1; 1 << 20])
                .await
                .expect("write");
            hold.hold().await;
            drop(peer);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_hostile_connections_do_not_disturb_five_good_clients() {
    const HOSTILE: usize = 20;
    const HOLDERS: usize = HOSTILE / 10 * HOLDERS_PER_TEN;
    let mut server = Probed::start(config()).await;
    let addr = server.addr;
    let (holding, holders) = tokio::sync::watch::channel(0);
    let (release, released) = tokio::sync::watch::channel(false);
    let hold = Hold {
        holding: Arc::new(holding),
        release: released,
    };

    let hostile: Vec<_> = (0..HOSTILE)
        .map(|round| tokio::spawn(hostile_connection(addr, round, hold.clone())))
        .collect();
    let good: Vec<_> = (0..5u64)
        .map(|client| {
            let mut holders = holders.clone();
            tokio::spawn(async move {
                let mut session = good_client(addr).await;
                echo_round(&mut session, client * 1000).await;
                // The rest happens while the holders hold their connections.
                within(
                    "the holders are in place",
                    holders.wait_for(|&n| n == HOLDERS),
                )
                .await
                .expect("holders");
                for i in 1..20 {
                    echo_round(&mut session, client * 1000 + i).await;
                }
                within(
                    "close",
                    session.close(CloseReason::new(CloseCode::Normal, "")),
                )
                .await
                .expect("clean close");
                20
            })
        })
        .collect();

    let mut echoed = 0;
    for client in good {
        echoed += within("a good client finishes", client)
            .await
            .expect("good client task");
    }
    assert_eq!(echoed, 100);
    release.send(true).expect("holders listen");
    for (round, task) in hostile.into_iter().enumerate() {
        within(&format!("hostile connection {round} is done"), task)
            .await
            .expect("hostile connection checks");
    }
    // The server sessions of the hostile peers ended as each kind implies.
    for round in (0..HOSTILE).filter(|r| (6..=8).contains(&(r % 10))) {
        let seen = server.seen(&format!("/probe/mixed-{round}")).await;
        let code = seen.close_reason.map(|r| u16::from(r.code));
        let expected = match round % 10 {
            6 => 1002,
            7 => 1009,
            _ => 1006,
        };
        assert_eq!(code, Some(expected), "round {round}: {:?}", seen.error);
    }
}
