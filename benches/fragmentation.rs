//! A message sent whole or in fragments, received and reassembled by a typed-ws session.
//!
//! Groups are `fragmentation/<duplex|tcp>/<message size>`; in each, `whole` (one frame, the
//! baseline) and `frag_<fragment size>` (the sender's `Config::fragment_size`). The sender is
//! a server session (its frames go out unmasked), the receiver a client session, so the
//! figures isolate framing and reassembly rather than masking. For the 1 MiB message the
//! groups also have `raw_whole` and `raw_frag_<size>`: the same transfer with bare
//! tokio-tungstenite streams (fragments sent as `Message::Frame`s with `feed`, then one
//! `flush`), to tell typed-ws's cost from tungstenite's. `duplex` is an in-memory
//! `tokio::io::duplex` pipe (no kernel), `tcp` loopback TCP with `TCP_NODELAY`. Both ends run
//! on one current-thread runtime; a figure is the work of both ends for one message.
//!
//! ```text
//! cargo bench -p benches --bench fragmentation
//! python3 benches/ratios.py   # ratios to `whole` and the per-frame overhead
//! ```

mod common;

use common::transfer::*;
use common::*;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use typed_ws::Bytes;

const MESSAGE_SIZES: [usize; 3] = [64 << 10, 1 << 20, 4 << 20];
const FRAGMENT_SIZES: [usize; 3] = [256, 4 << 10, 64 << 10];
/// The message size whose groups also measure bare tokio-tungstenite.
const RAW_REFERENCE_SIZE: usize = 1 << 20;
fn fragmentation(c: &mut Criterion) {
    let rt = runtime();
    for transport in ["duplex", "tcp"] {
        for size in MESSAGE_SIZES {
            let data = Bytes::from(text(size, size as u64).into_bytes());
            let mut group =
                c.benchmark_group(format!("fragmentation/{transport}/{}", size_label(size)));
            group.throughput(Throughput::Bytes(size as u64));
            if size >= 1 << 20 {
                group.sample_size(10).sampling_mode(SamplingMode::Flat);
            }
            let fragments = std::iter::once(None)
                .chain(FRAGMENT_SIZES.into_iter().map(Some))
                .filter(|f| f.is_none_or(|f| f < size));
            for fragment in fragments {
                let mut pair = rt.block_on(async {
                    match transport {
                        "duplex" => duplex_pair(fragment).await,
                        _ => tcp_pair(fragment).await,
                    }
                });
                let id = match fragment {
                    None => "whole".to_owned(),
                    Some(f) => format!("frag_{}", size_label(f)),
                };
                group.bench_function(&id, |b| {
                    b.iter_custom(|iters| transfer(&rt, &mut pair, &data, iters))
                });
                if size == RAW_REFERENCE_SIZE {
                    let id = format!("raw_{id}");
                    if transport == "duplex" {
                        let mut raw = rt.block_on(raw_duplex_pair(fragment));
                        group.bench_function(id, |b| {
                            b.iter_custom(|iters| raw.transfer(&rt, &data, iters))
                        });
                    } else {
                        let mut raw = rt.block_on(raw_tcp_pair(fragment));
                        group.bench_function(id, |b| {
                            b.iter_custom(|iters| raw.transfer(&rt, &data, iters))
                        });
                    }
                }
            }
            group.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = fragmentation
}
criterion_main!(benches);
