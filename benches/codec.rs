//! Encode and decode through typed-ws's converters beside the direct codec calls a user would
//! otherwise write, per codec and payload.
//!
//! Groups are `codec/<payload>/<encode|decode>`; in each, `<codec>/typed_ws` is
//! `Converter::serialize` (value to `Frame`) or `Converter::deserialize` (`&Frame` to value)
//! and `<codec>/direct` is `serde_json::to_vec`/`from_slice`, `ciborium::into_writer`/
//! `from_reader` or `rmp_serde::to_vec_named`/`from_slice`. Encode groups also have
//! `<codec>/direct_message`: the direct call made into the tungstenite `Message` a hand-written
//! client sends (`Message::Binary(vec.into())`, `Message::Text(string.into())`), which, like a
//! `Frame`, moves the buffer into a `Bytes`; decode groups have `<codec>/direct_message`, the
//! decoding of a received `Message` a hand-written client does: the same call for CBOR and
//! MessagePack, `serde_json::from_str` on the already validated text for JSON. For the small
//! payload, `<codec>/any` is the same call through `AnyConverter` (run-time choice of codec).
//! Throughput is the encoded size; messages/s is the reciprocal of the time.
//!
//! ```text
//! cargo bench -p benches --bench codec
//! python3 benches/ratios.py
//! ```

mod common;

use std::hint::black_box;
use std::sync::Once;

use common::*;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use serde::Serialize;
use serde::de::DeserializeOwned;
use typed_ws::{AnyConverter, Converter};

/// The payloads: name and value.
struct Payloads {
    small: ChatMessage,
    medium: ChatBatch,
    large: Document,
    logs: Logs,
}

fn payloads() -> Payloads {
    Payloads {
        small: chat(12_345),
        medium: chat_batch(44),
        large: document(1 << 20),
        logs: logs(10_000),
    }
}

/// Prints, once, the bytes on the wire per codec and payload.
fn print_wire_sizes(p: &Payloads) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        fn row<T: Serialize>(name: &str, value: &T) {
            let sizes = [
                Json::encode(value).len(),
                Cbor::encode(value).len(),
                MsgPack::encode(value).len(),
            ];
            let cells: Vec<String> = sizes
                .iter()
                .map(|&n| format!("{n:>9} + {:>2}", wire::header_len(n as u64, false)))
                .collect();
            println!("| {name:<7} | {} |", cells.join(" | "));
        }
        println!();
        println!("Bytes on the wire: payload + frame header (a client adds 4 bytes of mask)");
        println!("| payload | json           | cbor           | msgpack        |");
        println!("|---------|----------------|----------------|----------------|");
        row("small", &p.small);
        row("medium", &p.medium);
        row("large", &p.large);
        row("logs", &p.logs);
        println!();
    });
}

/// The typed-ws converter beside the direct encode call of one codec, in an encode group.
fn encode_pair<C: Codec, T>(group: &mut BenchmarkGroup<'_, WallTime>, value: &T, any: bool)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let converter = C::converter();
    let frame = converter.serialize(value).expect("encode");
    let bytes = C::encode(value);
    assert_eq!(
        frame.payload(),
        &bytes[..],
        "converter and direct call agree"
    );
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function(format!("{}/typed_ws", C::NAME), |b| {
        b.iter(|| converter.serialize(black_box(value)).expect("encode"))
    });
    group.bench_function(format!("{}/direct", C::NAME), |b| {
        b.iter(|| C::encode(black_box(value)))
    });
    group.bench_function(format!("{}/direct_message", C::NAME), |b| {
        b.iter(|| C::to_message(black_box(value)))
    });
    if any {
        let any_converter = AnyConverter::from_name(C::NAME).expect("known codec");
        group.bench_function(format!("{}/any", C::NAME), |b| {
            b.iter(|| any_converter.serialize(black_box(value)).expect("encode"))
        });
    }
}

/// The typed-ws converter beside the direct decode call of one codec, in a decode group.
fn decode_pair<C: Codec, T>(group: &mut BenchmarkGroup<'_, WallTime>, value: &T, any: bool)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let converter = C::converter();
    let frame = converter.serialize(value).expect("encode");
    let bytes = C::encode(value);
    assert_eq!(&converter.deserialize::<T>(&frame).expect("decode"), value);
    assert_eq!(&C::decode::<T>(&bytes), value);
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function(format!("{}/typed_ws", C::NAME), |b| {
        b.iter(|| {
            converter
                .deserialize::<T>(black_box(&frame))
                .expect("decode")
        })
    });
    group.bench_function(format!("{}/direct", C::NAME), |b| {
        b.iter(|| C::decode::<T>(black_box(&bytes)))
    });
    let message = C::to_message(value);
    group.bench_function(format!("{}/direct_message", C::NAME), |b| {
        b.iter(|| C::from_message::<T>(black_box(&message)).expect("a data message"))
    });
    if any {
        let any_converter = AnyConverter::from_name(C::NAME).expect("known codec");
        group.bench_function(format!("{}/any", C::NAME), |b| {
            b.iter(|| {
                any_converter
                    .deserialize::<T>(black_box(&frame))
                    .expect("decode")
            })
        });
    }
}

/// The groups `codec/<payload>/encode` and `codec/<payload>/decode`, every codec in each.
fn all_codecs<T>(c: &mut Criterion, payload: &str, value: &T, any: bool)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let mut group = c.benchmark_group(format!("codec/{payload}/encode"));
    encode_pair::<Json, T>(&mut group, value, any);
    encode_pair::<Cbor, T>(&mut group, value, any);
    encode_pair::<MsgPack, T>(&mut group, value, any);
    group.finish();

    let mut group = c.benchmark_group(format!("codec/{payload}/decode"));
    decode_pair::<Json, T>(&mut group, value, any);
    decode_pair::<Cbor, T>(&mut group, value, any);
    decode_pair::<MsgPack, T>(&mut group, value, any);
    group.finish();
}

fn codec(c: &mut Criterion) {
    let p = payloads();
    print_wire_sizes(&p);
    all_codecs(c, "small", &p.small, true);
    all_codecs(c, "medium", &p.medium, false);
    all_codecs(c, "large", &p.large, false);
    all_codecs(c, "logs", &p.logs, false);
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = codec
}
criterion_main!(benches);
