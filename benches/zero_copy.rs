//! Typed receive that borrows from the frame against the owned path, for the codecs that can
//! borrow (JSON strings without escapes, MessagePack strings and binary).
//!
//! ```text
//! cargo bench -p benches --bench zero_copy
//! ```
//!
//! Each group decodes the same frame into an owned type (`String`, `Vec<u8>`) and into a
//! borrowing one (`&str`, `&[u8]`); the ratio borrowed/owned is what skipping the copies saves.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};
use typed_ws::{BorrowingConverter, JsonConverter, MsgPackConverter};

#[derive(Serialize, Deserialize)]
struct Owned {
    id: u64,
    kind: String,
    text: String,
    #[serde(with = "serde_bytes", default, skip_serializing_if = "Vec::is_empty")]
    body: Vec<u8>,
}

#[derive(Deserialize)]
struct Borrowed<'a> {
    id: u64,
    kind: &'a str,
    text: &'a str,
    #[serde(with = "serde_bytes", default)]
    body: &'a [u8],
}

/// JSON has no binary type: a byte field is an array of numbers, which nothing can borrow,
/// so the JSON payload leaves it out and carries its bulk in the text.
fn payload(len: usize, with_body: bool) -> Owned {
    let text: String = "the analytical engine weaves algebraic patterns "
        .chars()
        .cycle()
        .take(len)
        .collect();
    let body = if with_body {
        (0..len).map(|i| (i * 31) as u8).collect()
    } else {
        Vec::new()
    };
    Owned {
        id: 7,
        kind: "document".to_owned(),
        text,
        body,
    }
}

fn bench<C: BorrowingConverter>(c: &mut Criterion, name: &str, converter: C, value: &Owned) {
    let frame = converter.serialize(value).expect("encodes");
    let mut group = c.benchmark_group(format!("zero_copy/{name}"));
    group.throughput(Throughput::Bytes(frame.payload().len() as u64));
    group.bench_function("owned", |b| {
        b.iter(|| {
            let value: Owned = converter.deserialize(black_box(&frame)).expect("decodes");
            black_box((
                value.id,
                value.kind.len(),
                value.text.len(),
                value.body.len(),
            ))
        })
    });
    group.bench_function("borrowed", |b| {
        b.iter(|| {
            let value: Borrowed<'_> = converter
                .deserialize_borrowed(black_box(&frame))
                .expect("decodes");
            black_box((
                value.id,
                value.kind.len(),
                value.text.len(),
                value.body.len(),
            ))
        })
    });
    group.finish();
}

fn zero_copy(c: &mut Criterion) {
    for (label, len) in [("100B", 64), ("64KiB", 64 << 10), ("1MiB", 1 << 20)] {
        bench(
            c,
            &format!("json_{label}"),
            JsonConverter,
            &payload(len, false),
        );
        bench(
            c,
            &format!("msgpack_{label}"),
            MsgPackConverter::new(),
            &payload(len / 2, true),
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = zero_copy
}
criterion_main!(benches);
