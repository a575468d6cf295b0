//! Instruction counts, for a machine too busy for time ratios to mean much: each case runs
//! ours and its baseline a fixed number of times, each in a function of its own
//! (`measure_ours`, `measure_baseline`, `measure_reference`), under valgrind's callgrind.
//! `benches/instructions.py` runs every case and prints the ratios of their inclusive
//! instruction counts (user space only: syscalls and kernel time are not counted).
//!
//! ```text
//! cargo bench -p benches --bench instructions --no-run
//! python3 benches/instructions.py            # every case, a few minutes
//! python3 benches/instructions.py codec/small # the cases whose name contains this
//! ```
//!
//! Cases, with the same payloads and code as the timed benches:
//! - `codec/<payload>/<codec>/<encode|decode>`: ours `Converter::serialize`/`deserialize`;
//!   baseline the direct codec call; reference what a hand-written client does with a
//!   tungstenite `Message` (encode into one; decode one: `from_str` for JSON text);
//! - `session/<codec>/<size>/<one|pipelined64>`: ours the typed-ws client and server; baseline
//!   the hand-written tokio-tungstenite loop;
//! - `fragmentation/duplex/<size>/frag_<size>`: ours typed-ws fragmented; baseline typed-ws
//!   whole; reference bare tokio-tungstenite with the same fragments.
//!
//! Without arguments it lists the cases; `--test` runs each once, quickly.

mod common;

use std::hint::black_box;

use common::echo::*;
use common::transfer::*;
use common::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::runtime::Runtime;
use typed_ws::{Bytes, Converter};

fn main() {
    let test = std::env::args().any(|a| a == "--test");
    let names: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let cases = cases();
    if test {
        for case in &cases {
            run(case, 1);
        }
        println!("ran {} instruction-count cases once each", cases.len());
    } else if names.is_empty() {
        for case in &cases {
            println!("{case}");
        }
    } else {
        for name in names {
            assert!(cases.contains(&name), "unknown case {name}");
            run(&name, iterations(&name));
        }
    }
}

const CODECS: [&str; 3] = ["json", "cbor", "msgpack"];
const PAYLOADS: [&str; 4] = ["small", "medium", "large", "logs"];
const SESSIONS: [(&str, &str); 4] = [
    ("msgpack", "small"),
    ("json", "small"),
    ("msgpack", "64KiB"),
    ("msgpack", "1MiB"),
];
const MESSAGES: [usize; 3] = [64 << 10, 1 << 20, 4 << 20];
const FRAGMENTS: [usize; 3] = [256, 4 << 10, 64 << 10];

fn cases() -> Vec<String> {
    let mut cases = Vec::new();
    for payload in PAYLOADS {
        for codec in CODECS {
            for op in ["encode", "decode"] {
                cases.push(format!("codec/{payload}/{codec}/{op}"));
            }
        }
    }
    for (codec, size) in SESSIONS {
        for mode in ["one", "pipelined64"] {
            cases.push(format!("session/{codec}/{size}/{mode}"));
        }
    }
    for size in MESSAGES {
        for fragment in FRAGMENTS.into_iter().filter(|&f| f < size) {
            cases.push(format!(
                "fragmentation/duplex/{}/frag_{}",
                size_label(size),
                size_label(fragment)
            ));
        }
    }
    cases
}

/// Enough repetitions for the work to dwarf the setup, few enough for valgrind.
fn iterations(case: &str) -> u64 {
    let parts: Vec<&str> = case.split('/').collect();
    match (parts[0], parts[2], parts.get(3).copied()) {
        ("codec", "small", _) => 2000,
        ("codec", "medium", _) => 100,
        ("codec", _, _) => 2,
        ("session", "small", Some("one")) => 300,
        ("session", "small", _) => 5,
        ("session", "64KiB", Some("one")) => 30,
        ("session", "1MiB", Some("one")) => 3,
        ("session", _, _) => 1,
        ("fragmentation", "64KiB", _) => 30,
        ("fragmentation", "1MiB", _) => 3,
        _ => 1,
    }
}

fn run(case: &str, n: u64) {
    let parts: Vec<&str> = case.split('/').collect();
    match parts[0] {
        "codec" => codec_case(parts[1], parts[2], parts[3], n),
        "session" => session_case(parts[1], parts[2], parts[3], n),
        "fragmentation" => fragmentation_case(parts[2], parts[3], n),
        _ => unreachable!("{case}"),
    }
}

// ---- codec ----

fn codec_case(payload: &str, codec: &str, op: &str, n: u64) {
    match payload {
        "small" => codec_of(codec, op, &chat(12_345), n),
        "medium" => codec_of(codec, op, &chat_batch(44), n),
        "large" => codec_of(codec, op, &document(1 << 20), n),
        _ => codec_of(codec, op, &logs(10_000), n),
    }
}

fn codec_of<T: Serialize + DeserializeOwned>(codec: &str, op: &str, value: &T, n: u64) {
    match codec {
        "json" => codec_op::<Json, T>(op, value, n),
        "cbor" => codec_op::<Cbor, T>(op, value, n),
        _ => codec_op::<MsgPack, T>(op, value, n),
    }
}

fn codec_op<C: Codec, T: Serialize + DeserializeOwned>(op: &str, value: &T, n: u64) {
    let converter = C::converter();
    if op == "encode" {
        let ours = || black_box(converter.serialize(black_box(value)).expect("encode"));
        let baseline = || black_box(C::encode(black_box(value)));
        let reference = || black_box(C::to_message(black_box(value)));
        measured(n, ours, baseline, reference);
    } else {
        let frame = converter.serialize(value).expect("encode");
        let bytes = C::encode(value);
        let ours = || {
            black_box(
                converter
                    .deserialize::<T>(black_box(&frame))
                    .expect("decode"),
            )
        };
        let message = C::to_message(value);
        let baseline = || black_box(C::decode::<T>(black_box(&bytes)));
        let reference = || black_box(C::from_message::<T>(black_box(&message)));
        measured(n, ours, baseline, reference);
    }
}

/// Warms up each routine once, then runs it `n` times in its own measured function.
fn measured<A, B, C>(
    n: u64,
    mut ours: impl FnMut() -> A,
    mut baseline: impl FnMut() -> B,
    mut reference: impl FnMut() -> C,
) {
    ours();
    baseline();
    reference();
    measure_ours(n, &mut ours);
    measure_baseline(n, &mut baseline);
    measure_reference(n, &mut reference);
}

#[inline(never)]
fn measure_ours<R>(n: u64, f: &mut impl FnMut() -> R) {
    // A body of its own, so that the linker never folds two measured functions into one.
    black_box(1u8);
    for _ in 0..n {
        black_box(f());
    }
}

#[inline(never)]
fn measure_baseline<R>(n: u64, f: &mut impl FnMut() -> R) {
    // A body of its own, so that the linker never folds two measured functions into one.
    black_box(2u8);
    for _ in 0..n {
        black_box(f());
    }
}

#[inline(never)]
fn measure_reference<R>(n: u64, f: &mut impl FnMut() -> R) {
    // A body of its own, so that the linker never folds two measured functions into one.
    black_box(3u8);
    for _ in 0..n {
        black_box(f());
    }
}

// ---- session ----

fn session_case(codec: &str, size: &str, mode: &str, n: u64) {
    let burst = mode != "one";
    match (codec, size) {
        ("json", _) => session_of::<Json, _>(&chat(12_345), burst, n),
        (_, "small") => session_of::<MsgPack, _>(&chat(12_345), burst, n),
        (_, "64KiB") => session_of::<MsgPack, _>(&document(64 << 10), burst, n),
        _ => session_of::<MsgPack, _>(&document(1 << 20), burst, n),
    }
}

fn session_of<C: Codec, T: Payload>(value: &T, burst: bool, n: u64) {
    let rt = runtime();
    let servers = rt.block_on(Servers::start::<C, T>());
    let mut ws = rt.block_on(handwritten_client(servers.handwritten));
    let session = rt.block_on(typed_client::<C>(servers.typed, false));
    if burst {
        let mut typed = TypedBurst::<C>::new(session);
        let mut ours = || rt.block_on(typed.burst(value));
        let mut baseline = || rt.block_on(handwritten_burst::<C, T>(&mut ws, value));
        ours();
        baseline();
        measure_ours(n, &mut ours);
        measure_baseline(n, &mut baseline);
    } else {
        let mut session = session;
        let mut ours = || rt.block_on(typed_one::<C, T>(&mut session, value));
        let mut baseline = || rt.block_on(handwritten_one::<C, T>(&mut ws, value));
        ours();
        baseline();
        measure_ours(n, &mut ours);
        measure_baseline(n, &mut baseline);
    }
}

// ---- fragmentation ----

fn fragmentation_case(size: &str, fragment: &str, n: u64) {
    let size = MESSAGES
        .into_iter()
        .find(|&s| size_label(s) == size)
        .expect("a message size");
    let fragment = FRAGMENTS
        .into_iter()
        .find(|&f| format!("frag_{}", size_label(f)) == fragment)
        .expect("a fragment size");
    let rt = runtime();
    let data = Bytes::from(text(size, size as u64).into_bytes());
    let mut fragmented = rt.block_on(duplex_pair(Some(fragment)));
    let mut whole = rt.block_on(duplex_pair(None));
    let mut raw = rt.block_on(raw_duplex_pair(Some(fragment)));
    measured_transfers(&rt, n, &mut fragmented, &mut whole, &mut raw, &data);
}

fn measured_transfers(
    rt: &Runtime,
    n: u64,
    fragmented: &mut Pair,
    whole: &mut Pair,
    raw: &mut RawPair<tokio::io::DuplexStream, tokio::io::DuplexStream>,
    data: &Bytes,
) {
    measured(
        n,
        || transfer(rt, fragmented, data, 1),
        || transfer(rt, whole, data, 1),
        || raw.transfer(rt, data, 1),
    );
}
