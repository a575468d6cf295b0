//! Broadcast: one message to 1,000 sessions, encoded once and sent as clones of one frame,
//! against encoding it again for every session (what `send_serialized` in a loop does).
//!
//! ```text
//! cargo bench -p benches --bench broadcast
//! ```
//!
//! The sessions run over in-memory pipes, each drained by a task on the same runtime, so a
//! figure is the whole cost of getting the message to every session.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::future::join_all;
use serde::Serialize;
use typed_ws::tokio_tungstenite::client_async;
use typed_ws::{CborConverter, Config, Converter, Server, Session};

const SESSIONS: usize = 1000;

#[derive(Serialize)]
struct Update {
    seq: u64,
    symbol: String,
    prices: Vec<f64>,
    note: String,
}

fn update(prices: usize) -> Update {
    Update {
        seq: 42,
        symbol: "ADA-EUR".to_owned(),
        prices: (0..prices).map(|i| 100.0 + i as f64 / 8.0).collect(),
        note: "end of day figures, subject to revision".to_owned(),
    }
}

/// `SESSIONS` server sessions, each with a client on the other end of an in-memory pipe that
/// reads and drops everything.
async fn sessions() -> Vec<Session<CborConverter>> {
    let server = Server::new(Config::new().converter(CborConverter));
    let pairs = (0..SESSIONS).map(|_| {
        let server = server.clone();
        async move {
            let (near, far) = tokio::io::duplex(64 << 10);
            let (accepted, connected) =
                tokio::join!(server.accept(near), client_async("ws://bench/feed", far));
            let (ws, _) = connected.expect("client handshake");
            let mut reader = Session::from_stream(ws, &Config::new());
            tokio::spawn(async move { while reader.receive().await.is_ok() {} });
            accepted.expect("server handshake")
        }
    });
    join_all(pairs).await
}

fn broadcast(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut sessions = runtime.block_on(sessions());
    for (label, prices) in [("100B", 4), ("4KiB", 500)] {
        let value = update(prices);
        let size = CborConverter
            .serialize(&value)
            .expect("encodes")
            .payload()
            .len();
        let mut group = c.benchmark_group(format!("broadcast/cbor_{label}_to_{SESSIONS}"));
        group.throughput(Throughput::Bytes((size * SESSIONS) as u64));
        group.bench_function("encode_per_session", |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        for session in &mut sessions {
                            session
                                .send_serialized(black_box(&value))
                                .await
                                .expect("send");
                        }
                    }
                    start.elapsed()
                })
            })
        });
        group.bench_function("encode_once", |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let frame = CborConverter.serialize(black_box(&value)).expect("encodes");
                        for session in &mut sessions {
                            session.send(frame.clone()).await.expect("send");
                        }
                    }
                    start.elapsed()
                })
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(20);
    targets = broadcast
}
criterion_main!(benches);
