//! The contract's message, and the two codecs the bench speaks: MessagePack (a string-keyed
//! map, in a binary frame) and JSON (in a text frame).

use std::time::{SystemTime, UNIX_EPOCH};

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use typed_ws::tokio_tungstenite::tungstenite::Message;

/// What publishers send and subscribers receive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tick {
    pub seq: u64,
    pub sent_at_us: u64,
    pub symbol: String,
    pub price: f64,
    pub size: u64,
}

/// What a subscriber reads of a Tick: the price and size are skipped, the symbol borrowed,
/// so that the load client, the busier process at the highest rates, does no more than it
/// must.
#[derive(Debug, Deserialize)]
pub struct TickView<'a> {
    pub seq: u64,
    pub sent_at_us: u64,
    #[serde(borrow)]
    pub symbol: Cow<'a, str>,
}

/// The codec of a run, by its subprotocol name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    MsgPack,
    Json,
}

impl Codec {
    pub fn from_name(name: &str) -> Codec {
        match name {
            "json" => Codec::Json,
            "msgpack" => Codec::MsgPack,
            other => panic!("the fan-out bench speaks msgpack and json, not {other:?}"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::MsgPack => "msgpack",
            Codec::Json => "json",
        }
    }

    pub fn encode(self, tick: &Tick) -> Message {
        match self {
            Codec::MsgPack => {
                Message::binary(rmp_serde::to_vec_named(tick).expect("a Tick encodes"))
            }
            Codec::Json => Message::text(serde_json::to_string(tick).expect("a Tick encodes")),
        }
    }

    pub fn decode(self, message: &Message) -> Option<Tick> {
        self.decode_as(message)
    }

    /// Any value of the run's codec: a Tick's view, a numbered Tick (`?since=`), an outcome.
    pub fn decode_as<'a, T: Deserialize<'a>>(self, message: &'a Message) -> Option<T> {
        match (self, message) {
            (Codec::MsgPack, Message::Binary(data)) => rmp_serde::from_slice(data).ok(),
            (Codec::Json, Message::Text(text)) => serde_json::from_str(text).ok(),
            _ => None,
        }
    }
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros() as u64
}

/// Publisher `publisher`'s symbol: `S{publisher}`, padded with dots to `pad` bytes (the 4 KiB
/// messages carry their size in the symbol, the one field of free length: a server decodes
/// each Tick and encodes it again, which would drop any extra field).
pub fn symbol(publisher: usize, pad: usize) -> String {
    let mut symbol = format!("S{publisher}");
    if symbol.len() < pad {
        symbol.extend(std::iter::repeat_n('.', pad - symbol.len()));
    }
    symbol
}

/// The publisher a symbol names.
pub fn publisher_of(symbol: &str) -> Option<usize> {
    let digits = symbol.strip_prefix('S')?;
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}
