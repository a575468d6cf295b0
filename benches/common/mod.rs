//! What the benches share: payloads, a tiny deterministic PRNG, the three codecs seen both
//! through typed-ws's converters and as the direct calls a user would otherwise write, and a
//! short criterion configuration.
#![allow(dead_code)]

// One definition with the tests: the benches measure the message and the generator the tests
// check.
#[path = "../../examples/common/chat_message.rs"]
mod chat_message;
pub mod echo;
#[path = "../../tests/common/rng.rs"]
mod rng;
pub mod transfer;
// One place outside the library that writes frame headers, with the tests and the hostile tool.
#[path = "../../tests/common/wire.rs"]
pub mod wire;

use std::time::Duration;

pub use chat_message::ChatMessage;
use criterion::Criterion;
pub use rng::Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use typed_ws::tokio_tungstenite::tungstenite::Message;
use typed_ws::{CborConverter, Converter, JsonConverter, MsgPackConverter};

/// Criterion defaults kept short so that a full `cargo bench` stays in minutes on a shared
/// 2-core machine; command-line flags (`--measurement-time`, `--sample-size`...) override them.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

/// A current-thread tokio runtime: client, server and keep-alive tasks all share one thread,
/// so a figure is the CPU work of both ends plus the syscalls, with little scheduling noise.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

// ---- payloads ----

/// The small message of the issue, numbered `id`.
pub fn chat(id: u64) -> ChatMessage {
    ChatMessage {
        id,
        author: "ada".to_owned(),
        text: format!("message {id}: the engine weaves patterns"),
        tags: vec!["general".to_owned(), format!("t{}", id % 7)],
        reply_to: id.checked_sub(1),
    }
}

/// A batch of chat messages, the medium payload (about 4 KiB).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatBatch {
    pub channel: String,
    pub messages: Vec<ChatMessage>,
}

pub fn chat_batch(count: u64) -> ChatBatch {
    ChatBatch {
        channel: "#analytical-engine".to_owned(),
        messages: (1000..1000 + count).map(chat).collect(),
    }
}

/// One large text: the 1 MiB payload of the codec bench, and the 64 KiB / 1 MiB messages of
/// the session bench.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub id: u64,
    pub title: String,
    pub body: String,
}

pub fn document(body_len: usize) -> Document {
    Document {
        id: 42,
        title: "notes on the analytical engine".to_owned(),
        body: text(body_len, 0x5eed),
    }
}

/// The records of the `log` set of the rust_serialization_benchmark: an HTTP access log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub x0: u8,
    pub x1: u8,
    pub x2: u8,
    pub x3: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Log {
    pub address: Address,
    pub identity: String,
    pub userid: String,
    pub date: String,
    pub request: String,
    pub code: u16,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logs {
    pub logs: Vec<Log>,
}

/// `count` log records, the same for every run.
pub fn logs(count: usize) -> Logs {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
    const CODES: [u16; 8] = [200, 200, 200, 204, 301, 304, 404, 500];
    let mut rng = Rng::new(0x10_6a7e);
    let logs = (0..count)
        .map(|_| Log {
            address: Address {
                x0: rng.below(256) as u8,
                x1: rng.below(256) as u8,
                x2: rng.below(256) as u8,
                x3: rng.below(256) as u8,
            },
            identity: rng.word(1, 16),
            userid: rng.word(1, 16),
            date: format!(
                "{:02}/{}/{}:{:02}:{:02}:{:02} -0700",
                1 + rng.below(28),
                MONTHS[rng.below(12)],
                1995 + rng.below(30),
                rng.below(24),
                rng.below(60),
                rng.below(60),
            ),
            request: format!(
                "{} /{}/{}.html HTTP/1.1",
                METHODS[rng.below(4)],
                rng.word(3, 12),
                rng.word(3, 12),
            ),
            code: CODES[rng.below(8)],
            size: rng.below(100_000_000) as u64,
        })
        .collect();
    Logs { logs }
}

/// ASCII prose of exactly `len` bytes: words, spaces, some punctuation and quotes (which
/// JSON escapes) and a newline about every 80 characters.
pub fn text(len: usize, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let mut out = String::with_capacity(len + 16);
    let mut line = 0;
    while out.len() < len {
        let word = rng.word(1, 10);
        line += word.len() + 1;
        out.push_str(&word);
        out.push(match rng.below(40) {
            0 => '"',
            1 => ',',
            2 => '.',
            _ if line > 80 => {
                line = 0;
                '\n'
            }
            _ => ' ',
        });
    }
    out.truncate(len);
    out
}

// ---- codecs ----

/// A codec seen two ways: as typed-ws's converter, and as the direct calls a user would make
/// without typed-ws. Everything is static dispatch, as the converters are.
pub trait Codec: 'static {
    const NAME: &'static str;
    type Conv: Converter;

    fn converter() -> Self::Conv;

    /// The direct encode call (`serde_json::to_vec`, `ciborium::into_writer`,
    /// `rmp_serde::to_vec_named`).
    fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8>;

    /// The direct decode call (`serde_json::from_slice`, `ciborium::from_reader`,
    /// `rmp_serde::from_slice`).
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> T;

    /// The message a hand-written tokio-tungstenite client or server sends.
    fn to_message<T: Serialize + ?Sized>(value: &T) -> Message;

    /// Decodes a message a hand-written tokio-tungstenite client or server received; `None`
    /// for control messages.
    fn from_message<T: DeserializeOwned>(message: &Message) -> Option<T>;
}

pub struct Json;
pub struct Cbor;
pub struct MsgPack;

impl Codec for Json {
    const NAME: &'static str = "json";
    type Conv = JsonConverter;

    fn converter() -> JsonConverter {
        JsonConverter
    }

    #[inline]
    fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
        serde_json::to_vec(value).expect("json encode")
    }

    #[inline]
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> T {
        serde_json::from_slice(bytes).expect("json decode")
    }

    #[inline]
    fn to_message<T: Serialize + ?Sized>(value: &T) -> Message {
        Message::Text(serde_json::to_string(value).expect("json encode").into())
    }

    #[inline]
    fn from_message<T: DeserializeOwned>(message: &Message) -> Option<T> {
        match message {
            Message::Text(text) => Some(serde_json::from_str(text).expect("json decode")),
            _ => None,
        }
    }
}

impl Codec for Cbor {
    const NAME: &'static str = "cbor";
    type Conv = CborConverter;

    fn converter() -> CborConverter {
        CborConverter
    }

    #[inline]
    fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(value, &mut out).expect("cbor encode");
        out
    }

    #[inline]
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> T {
        ciborium::from_reader(bytes).expect("cbor decode")
    }

    #[inline]
    fn to_message<T: Serialize + ?Sized>(value: &T) -> Message {
        Message::Binary(Self::encode(value).into())
    }

    #[inline]
    fn from_message<T: DeserializeOwned>(message: &Message) -> Option<T> {
        match message {
            Message::Binary(bytes) => Some(Self::decode(bytes)),
            _ => None,
        }
    }
}

impl Codec for MsgPack {
    const NAME: &'static str = "msgpack";
    type Conv = MsgPackConverter;

    fn converter() -> MsgPackConverter {
        MsgPackConverter::new()
    }

    #[inline]
    fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
        rmp_serde::to_vec_named(value).expect("msgpack encode")
    }

    #[inline]
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> T {
        rmp_serde::from_slice(bytes).expect("msgpack decode")
    }

    #[inline]
    fn to_message<T: Serialize + ?Sized>(value: &T) -> Message {
        Message::Binary(Self::encode(value).into())
    }

    #[inline]
    fn from_message<T: DeserializeOwned>(message: &Message) -> Option<T> {
        match message {
            Message::Binary(bytes) => Some(Self::decode(bytes)),
            _ => None,
        }
    }
}

/// "1 MiB", "64 KiB", "256 B".
pub fn size_label(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{}MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{}KiB", bytes >> 10)
    } else {
        format!("{bytes}B")
    }
}
