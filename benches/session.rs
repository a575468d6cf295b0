//! Typed echo round trips over loopback TCP: a typed-ws client and server beside the
//! hand-written tokio-tungstenite + serde loop a user would otherwise write, same codec.
//!
//! Groups are `session/<codec>/<size>/<one|pipelined64>`:
//! - `one`: one message in flight: send, then receive the echo;
//! - `pipelined64`: 64 in flight: the client sends 64 messages with one flush while it
//!   receives the 64 echoes (the send and the receive run concurrently on split halves, as
//!   they must: 64 MiB would not fit in the socket buffers).
//!
//! In each group:
//! - `handwritten`: `connect_async_with_config` / `accept_async`, `Message::Binary(
//!   rmp_serde::to_vec_named(..))` (or `Message::Text(serde_json::to_string(..))`), `ws.next()`,
//!   `from_slice`; `StreamExt::split` and `SinkExt::feed` + `flush` when pipelined;
//! - `typed_ws`: `Client::web_socket_session`, `Server::serve`, `send_serialized` /
//!   `receive_deserialized`; `Session::split` and `feed(converter.serialize(..))` + `flush`
//!   when pipelined (typed-ws has no typed `feed`);
//! - `typed_ws_ping`: the same with `Config::ping_interval(1 s)` on both ends.
//!
//! Both servers echo typed: receive, decode, encode, send (with a flush per message). Both
//! set `TCP_NODELAY` (typed-ws always does; the hand-written loop is given it too, or small
//! replies could wait on Nagle's algorithm). Codec: MessagePack (structs as maps) for every
//! size, plus JSON for the small message. Client and server share one current-thread
//! runtime, so a figure is the work of both ends.
//!
//! ```text
//! cargo bench -p benches --bench session
//! python3 benches/ratios.py
//! ```

mod common;

use std::hint::black_box;

use common::echo::*;
use common::*;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;

/// The `one` and `pipelined64` groups of one codec and payload.
fn session_groups<C: Codec, T: Payload>(c: &mut Criterion, rt: &Runtime, size: &str, value: &T) {
    let servers = rt.block_on(Servers::start::<C, T>());
    let encoded = C::encode(value).len() as u64;
    let large = encoded >= 512 << 10;

    // One in flight.
    let mut group = c.benchmark_group(format!("session/{}/{size}/one", C::NAME));
    group.throughput(Throughput::Bytes(encoded));
    if large {
        group.sample_size(10).sampling_mode(SamplingMode::Flat);
    }
    let mut ws = rt.block_on(handwritten_client(servers.handwritten));
    assert_eq!(&rt.block_on(handwritten_one::<C, T>(&mut ws, value)), value);
    group.bench_function("handwritten", |b| {
        b.iter_custom(|iters| {
            timed(rt, iters, async || {
                black_box(handwritten_one::<C, T>(&mut ws, value).await);
            })
        })
    });
    for (id, addr, ping) in [
        ("typed_ws", servers.typed, false),
        ("typed_ws_ping", servers.typed_ping, true),
    ] {
        let mut session = rt.block_on(typed_client::<C>(addr, ping));
        assert_eq!(&rt.block_on(typed_one::<C, T>(&mut session, value)), value);
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                timed(rt, iters, async || {
                    black_box(typed_one::<C, T>(&mut session, value).await);
                })
            })
        });
    }
    group.finish();

    // 64 in flight.
    let mut group = c.benchmark_group(format!("session/{}/{size}/pipelined{BURST}", C::NAME));
    group.throughput(Throughput::Bytes(encoded * BURST as u64));
    if encoded >= 32 << 10 {
        group.sample_size(10).sampling_mode(SamplingMode::Flat);
    }
    let mut ws = rt.block_on(handwritten_client(servers.handwritten));
    assert_eq!(
        &rt.block_on(handwritten_burst::<C, T>(&mut ws, value)),
        value
    );
    group.bench_function("handwritten", |b| {
        b.iter_custom(|iters| {
            timed(rt, iters, async || {
                black_box(handwritten_burst::<C, T>(&mut ws, value).await);
            })
        })
    });
    for (id, addr, ping) in [
        ("typed_ws", servers.typed, false),
        ("typed_ws_ping", servers.typed_ping, true),
    ] {
        let mut burst = TypedBurst::<C>::new(rt.block_on(typed_client::<C>(addr, ping)));
        assert_eq!(&rt.block_on(burst.burst(value)), value);
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                timed(rt, iters, async || {
                    black_box(burst.burst(value).await);
                })
            })
        });
    }
    group.finish();
}

fn session(c: &mut Criterion) {
    let rt = runtime();
    session_groups::<MsgPack, _>(c, &rt, "small", &chat(12_345));
    session_groups::<Json, _>(c, &rt, "small", &chat(12_345));
    session_groups::<MsgPack, _>(c, &rt, "64KiB", &document(64 << 10));
    session_groups::<MsgPack, _>(c, &rt, "1MiB", &document(1 << 20));
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = session
}
criterion_main!(benches);
