//! Messages decoded into their codec's own value type, and the JSON they print as.
//!
//! Each codec decodes into its crate's value type, which holds all the codec can say, so that
//! the echo server sends back what it received. `serde_json::Value` cannot hold what the
//! binary codecs can, so [`Value::to_json`] maps each of those to JSON in one documented way:
//! the table in `connect --help` (`cli.rs`).

use std::borrow::Cow;

use data_encoding::BASE64;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use typed_ws::{AnyConverter, Converter, Error, Frame};

/// A message in the value type of the codec that decoded it; it serializes as that value, so
/// the same codec writes it back as it came: CBOR tags as tags, MessagePack float32s as
/// float32s and extensions as extensions.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Value {
    Json(serde_json::Value),
    Cbor(ciborium::Value),
    MsgPack(rmpv::Value),
}

impl Value {
    /// Decodes a message with the session's converter, so that its limits (nesting depth,
    /// trailing bytes) apply, into the value type of its codec.
    pub fn decode(converter: &AnyConverter, frame: &Frame) -> Result<Value, Error> {
        match converter {
            AnyConverter::Cbor(_) => converter.deserialize(frame).map(Value::Cbor),
            AnyConverter::MsgPack(_) => converter.deserialize(frame).map(Value::MsgPack),
            // JSON's own type; `AnyConverter` is non-exhaustive, and serde_json's value holds
            // most of what any self-describing format says.
            _ => converter.deserialize(frame).map(Value::Json),
        }
    }

    /// The one JSON line the value prints as; see the module's table.
    pub fn to_json(&self) -> String {
        match self {
            Value::Json(value) => print(value),
            Value::Cbor(value) => print(&Cbor(value)),
            Value::MsgPack(value) => print(&MsgPack(value)),
        }
    }
}

/// Writes JSON text. Only a map key that is not a string could fail it, and the views below
/// turn every key into one.
fn print(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| format!("\"<unprintable: {e}>\""))
}

/// `{"$bytes":"<base64>"}`.
fn bytes<S: Serializer>(data: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_map([("$bytes", BASE64.encode(data))])
}

/// The CBOR tags of bignums (RFC 8949, 3.4.3): ciborium decodes those that fit 64 bits as
/// integers and keeps larger ones as tags on their big-endian magnitude.
const POSITIVE_BIGNUM: u64 = 2;
const NEGATIVE_BIGNUM: u64 = 3;

/// A CBOR item as it prints.
struct Cbor<'a>(&'a ciborium::Value);

impl Serialize for Cbor<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use ciborium::Value as V;
        match self.0 {
            V::Bytes(data) => bytes(data, serializer),
            V::Array(items) => serializer.collect_seq(items.iter().map(Cbor)),
            V::Map(entries) => serializer.collect_map(
                entries
                    .iter()
                    .map(|(key, value)| (cbor_key(key), Cbor(value))),
            ),
            V::Tag(tag, item) => {
                let magnitude = match item.as_ref() {
                    V::Bytes(digits) if digits.len() <= 16 => Some(
                        digits
                            .iter()
                            .fold(0u128, |n, &digit| n << 8 | u128::from(digit)),
                    ),
                    _ => None,
                };
                match (*tag, magnitude) {
                    (POSITIVE_BIGNUM, Some(n)) => serializer.serialize_u128(n),
                    // -1 - n; ciborium refuses to decode the ones below i128::MIN.
                    (NEGATIVE_BIGNUM, Some(n)) if n <= i128::MAX as u128 => {
                        serializer.serialize_i128(-1 - n as i128)
                    }
                    _ => {
                        let mut map = serializer.serialize_map(Some(2))?;
                        map.serialize_entry("$tag", tag)?;
                        map.serialize_entry("$value", &Cbor(item))?;
                        map.end()
                    }
                }
            }
            // ciborium writes floats that a float32 holds exactly as float32s, whose shortest
            // digits may name another double.
            V::Float(float) => serializer.serialize_f64(*float),
            // Null, booleans, integers and text print as they are.
            other => other.serialize(serializer),
        }
    }
}

fn cbor_key(key: &ciborium::Value) -> Cow<'_, str> {
    match key {
        ciborium::Value::Text(text) => Cow::Borrowed(text),
        other => Cow::Owned(print(&Cbor(other))),
    }
}

/// A MessagePack value as it prints.
struct MsgPack<'a>(&'a rmpv::Value);

impl Serialize for MsgPack<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use rmpv::Value as V;
        match self.0 {
            V::Binary(data) => bytes(data, serializer),
            V::Ext(kind, data) => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("$ext", kind)?;
                map.serialize_entry("$bytes", &BASE64.encode(data))?;
                map.end()
            }
            V::Array(items) => serializer.collect_seq(items.iter().map(MsgPack)),
            V::Map(entries) => serializer.collect_map(
                entries
                    .iter()
                    .map(|(key, value)| (msgpack_key(key), MsgPack(value))),
            ),
            // Nil, booleans, integers, floats and strings print as they are.
            other => other.serialize(serializer),
        }
    }
}

fn msgpack_key(key: &rmpv::Value) -> Cow<'_, str> {
    key.as_str()
        .map_or_else(|| Cow::Owned(print(&MsgPack(key))), Cow::Borrowed)
}
