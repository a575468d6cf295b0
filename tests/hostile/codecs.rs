//! Hostile payloads against every converter: generated garbage and mutations of valid
//! encodings, nesting bombs and length-prefix bombs. Each gives a value or an error, never a
//! panic, a stack overflow or a large allocation.
#![cfg(all(feature = "json", feature = "cbor", feature = "msgpack"))]

use crate::common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::ChatMessage;
use common::rng::Rng;
use serde::{Deserialize, Serialize};
use typed_ws::{AnyConverter, Converter, Error, Frame};

/// Records the largest single allocation made by a thread that asked for it, so
/// length-prefix bombs can be shown not to allocate what they claim while other tests run.
struct LargestAllocation;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static TRACKED: Cell<bool> = const { Cell::new(false) };
}

fn note(size: usize) {
    if TRACKED.with(Cell::get) {
        LARGEST.fetch_max(size, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: LargestAllocation = LargestAllocation;

const CODECS: [&str; 3] = ["json", "cbor", "msgpack"];

/// Inputs per converter: three converters make the 1,000,000 per run the project promises.
const INPUTS_PER_CODEC: usize = 340_000;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Shape {
    Empty,
    Point(i64, i64),
    Named { name: String, weight: f64 },
    Nested(Vec<Shape>),
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Record {
    shapes: Vec<Shape>,
    meta: HashMap<String, Option<Vec<u8>>>,
    flag: bool,
}

fn seeds() -> Vec<Record> {
    let chat = ChatMessage {
        id: u64::MAX,
        author: "ada".into(),
        text: "héllo wörld".into(),
        tags: vec!["a".into(), String::new()],
        reply_to: Some(7),
    };
    let chat_text = serde_json::to_string(&chat).expect("encodes");
    vec![
        Record {
            shapes: vec![],
            meta: HashMap::new(),
            flag: false,
        },
        Record {
            shapes: vec![
                Shape::Empty,
                Shape::Point(i64::MIN, 3),
                Shape::Named {
                    name: chat_text,
                    weight: -0.5,
                },
                Shape::Nested(vec![Shape::Nested(vec![Shape::Point(1, 2)])]),
            ],
            meta: HashMap::from([("k".into(), Some(vec![0, 255])), ("none".into(), None)]),
            flag: true,
        },
    ]
}

/// Decodes `payload` as several types; the point is only that nothing panics. Returns how many
/// decodes succeeded.
fn decode_all(converter: &AnyConverter, frame: &Frame) -> usize {
    let mut ok = 0;
    ok += usize::from(converter.deserialize::<Record>(frame).is_ok());
    ok += usize::from(converter.deserialize::<ChatMessage>(frame).is_ok());
    ok += usize::from(converter.deserialize::<serde_json::Value>(frame).is_ok());
    ok += usize::from(converter.deserialize::<Vec<Option<String>>>(frame).is_ok());
    ok
}

/// A frame of the converter's kind. A session only hands valid UTF-8 to the JSON converter, so
/// JSON payloads are made valid the same way.
fn frame_for(converter: &AnyConverter, payload: Vec<u8>) -> Frame {
    if converter.name() == "json" {
        Frame::text(String::from_utf8_lossy(&payload).into_owned())
    } else {
        Frame::binary(payload)
    }
}

fn mutate(rng: &mut Rng, mut bytes: Vec<u8>) -> Vec<u8> {
    for _ in 0..1 + rng.below(4) {
        let len = bytes.len();
        match rng.below(6) {
            0 if len > 0 => {
                let i = rng.below(len);
                bytes[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                bytes[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(len + 1);
                bytes.insert(i, rng.next() as u8);
            }
            3 if len > 0 => {
                bytes.remove(rng.below(len));
            }
            4 => bytes.truncate(rng.below(len + 1)),
            // Interesting bytes: length headers and markers that claim a lot.
            _ => {
                let i = rng.below(len + 1);
                let special = [
                    0xff, 0x9b, 0x7b, 0xbf, 0xdd, 0xdf, 0xdb, 0xc6, b'[', b'{', b'"', b'\\',
                ];
                bytes.insert(i, special[rng.below(special.len())]);
            }
        }
    }
    bytes
}

#[test]
fn generated_inputs_give_values_or_errors_never_panics() {
    for (n, name) in CODECS.iter().enumerate() {
        let converter = AnyConverter::from_name(name).expect("known codec");
        let valid: Vec<Vec<u8>> = seeds()
            .iter()
            .map(|seed| {
                converter
                    .serialize(seed)
                    .expect("seed encodes")
                    .into_payload()
                    .to_vec()
            })
            .collect();
        for seed in &seeds() {
            let frame = converter.serialize(seed).expect("encodes");
            assert_eq!(
                &converter.deserialize::<Record>(&frame).expect("round trip"),
                seed
            );
        }
        let mut rng = Rng(0x5eed_0000 + n as u64);
        let (mut decoded, mut refused) = (0usize, 0usize);
        for i in 0..INPUTS_PER_CODEC {
            let payload = if i % 4 == 0 {
                (0..rng.below(64)).map(|_| rng.next() as u8).collect()
            } else {
                let seed = valid[rng.below(valid.len())].clone();
                mutate(&mut rng, seed)
            };
            let frame = frame_for(&converter, payload);
            if decode_all(&converter, &frame) > 0 {
                decoded += 1;
            } else {
                refused += 1;
            }
        }
        // Both outcomes must occur, or the generator is not exercising the decoder.
        assert!(decoded > 1000, "{name}: only {decoded} inputs decoded");
        assert!(refused > 1000, "{name}: only {refused} inputs refused");
    }
}

fn nesting_bomb(codec: &str, depth: usize) -> Frame {
    match codec {
        "json" => Frame::text(format!("{}{}", "[".repeat(depth), "]".repeat(depth))),
        "cbor" => Frame::binary([vec![0x81; depth], vec![0x00]].concat()),
        "msgpack" => Frame::binary([vec![0x91; depth], vec![0x00]].concat()),
        _ => unreachable!("the three codecs"),
    }
}

/// The same bomb hidden in a field the target type does not have, where decoders skip values
/// instead of building them.
fn nesting_bomb_in_unknown_field(codec: &str, depth: usize) -> Frame {
    match codec {
        "json" => Frame::text(format!(
            r#"{{"flag":true,"junk":{}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )),
        "cbor" => Frame::binary([&[0xa1, 0x64][..], b"junk", &vec![0x81; depth], &[0x00]].concat()),
        "msgpack" => {
            Frame::binary([&[0x81, 0xa4][..], b"junk", &vec![0x91; depth], &[0x00]].concat())
        }
        _ => unreachable!("the three codecs"),
    }
}

#[derive(Debug, Deserialize)]
struct OnlyFlag {
    #[serde(default)]
    #[allow(dead_code)]
    flag: bool,
}

fn assert_nesting_refused(codec: &str) {
    let converter = AnyConverter::from_name(codec).expect("known codec");
    let bomb = nesting_bomb(codec, 100_000);
    let err = converter
        .deserialize::<serde_json::Value>(&bomb)
        .expect_err("a 100,000-deep bomb");
    assert!(matches!(err, Error::Decode { .. }), "{codec}: {err}");
    let err = converter
        .deserialize::<Shape>(&bomb)
        .expect_err("a 100,000-deep bomb");
    assert!(matches!(err, Error::Decode { .. }), "{codec}: {err}");
    // Skipping an unknown field may either refuse the bomb or walk past it without recursion
    // (serde_json skips iteratively); both are fine, overflowing the stack is not.
    let _ = converter.deserialize::<OnlyFlag>(&nesting_bomb_in_unknown_field(codec, 100_000));
    // Nesting within the limit still decodes.
    let shallow = converter.deserialize::<serde_json::Value>(&nesting_bomb(codec, 100));
    assert!(
        shallow.is_ok(),
        "{codec}: 100 levels refused: {:?}",
        shallow.err()
    );
}

#[test]
fn nesting_bombs_are_refused_on_the_test_thread() {
    for codec in CODECS {
        assert_nesting_refused(codec);
    }
}

#[test]
fn nesting_bombs_are_refused_on_a_tokio_worker_thread() {
    // A multi-thread runtime's workers have tokio's default 2 MiB stack, which is where a
    // session decodes.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        for codec in CODECS {
            let task = tokio::spawn(async move { assert_nesting_refused(codec) });
            common::within("decode on a worker", task)
                .await
                .expect("no panic, no overflow");
        }
    });
}

/// What the nesting limit costs: decoding a payload nested just under the limit, the deepest
/// that decodes, needs less than 1 MiB of stack, half a tokio worker's, even in a debug build.
#[test]
fn nesting_at_the_limit_fits_in_half_a_worker_stack() {
    for codec in CODECS {
        let decoded = std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(move || {
                let converter = AnyConverter::from_name(codec).expect("known codec");
                converter
                    .deserialize::<serde_json::Value>(&nesting_bomb(codec, 127))
                    .is_ok()
            })
            .expect("thread")
            .join()
            .expect("no panic");
        assert!(decoded, "{codec}: 127 levels refused");
    }
}

#[test]
fn length_prefix_bombs_are_refused_without_a_large_allocation() {
    let claim = 1u64 << 32;
    let mut bombs = Vec::new();
    for header in [0x7b_u8, 0x5b, 0x9b, 0xbb] {
        // CBOR text, bytes, array and map with a 64-bit length of 2^32 and no body.
        bombs.push(("cbor", [&[header][..], &claim.to_be_bytes()].concat()));
    }
    for marker in [0xdb_u8, 0xc6, 0xdd, 0xdf] {
        // MessagePack str32, bin32, array32 and map32 claiming 2^32 - 1 and no body.
        bombs.push(("msgpack", [&[marker][..], &u32::MAX.to_be_bytes()].concat()));
    }
    bombs.push(("json", format!(r#"["{}"#, "a".repeat(16)).into_bytes()));
    for (codec, payload) in bombs {
        let converter = AnyConverter::from_name(codec).expect("known codec");
        let frame = frame_for(&converter, payload.clone());
        LARGEST.store(0, Ordering::Relaxed);
        TRACKED.with(|tracked| tracked.set(true));
        let decoded = decode_all(&converter, &frame);
        TRACKED.with(|tracked| tracked.set(false));
        assert_eq!(decoded, 0, "{codec} {payload:02x?} decoded");
        let largest = LARGEST.load(Ordering::Relaxed);
        assert!(
            largest < 1 << 20,
            "{codec} {payload:02x?}: allocated {largest} bytes"
        );
    }
}

/// The deepest nesting each codec decodes: the same in all three (serde_json's fixed limit
/// sets it), so that a bomb one codec refuses is refused by every codec.
const DEEPEST: usize = 127;

/// What each codec's decoder says when it refuses nesting, as the `Decode` error quotes it.
fn too_deep_text(codec: &str) -> &'static str {
    match codec {
        "json" => "recursion limit exceeded",
        "cbor" => "nesting of 128 levels or more",
        "msgpack" => "depth limit exceeded",
        _ => unreachable!("the three codecs"),
    }
}

#[test]
fn the_deepest_nesting_decodes_and_one_level_more_is_refused_in_every_codec() {
    for codec in CODECS {
        let converter = AnyConverter::from_name(codec).expect("known codec");
        let deepest = converter.deserialize::<serde_json::Value>(&nesting_bomb(codec, DEEPEST));
        let mut value = deepest.unwrap_or_else(|e| panic!("{codec}: {DEEPEST} levels: {e}"));
        // The value is all of it, not a prefix: DEEPEST arrays of one element each.
        for level in 1..DEEPEST {
            value = match value {
                serde_json::Value::Array(mut items) if items.len() == 1 => items.remove(0),
                other => panic!("{codec}: level {level} is {other}"),
            };
        }
        assert!(value.is_array(), "{codec}: innermost {value}");
        let bomb = nesting_bomb(codec, DEEPEST + 1);
        for err in [
            converter
                .deserialize::<serde_json::Value>(&bomb)
                .unwrap_err(),
            converter
                .deserialize::<Vec<serde_json::Value>>(&bomb)
                .unwrap_err(),
        ] {
            assert!(
                matches!(err, Error::Decode { .. })
                    && err.to_string().contains(too_deep_text(codec)),
                "{codec}: {} levels: {err}",
                DEEPEST + 1
            );
        }
    }
}
