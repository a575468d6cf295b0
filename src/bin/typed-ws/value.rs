//! A value of any shape that JSON, CBOR or MessagePack can carry, and the JSON it prints as.
//!
//! `serde_json::Value` cannot hold what the binary codecs can: byte strings, map keys that
//! are not strings, CBOR tags, MessagePack extensions, integers beyond 64 bits. [`Value`]
//! holds all of them, so that the echo server sends back what it received, and [`to_json`]
//! maps each to JSON in one documented way:
//!
//! | received | printed |
//! |---|---|
//! | byte string | `{"$bytes":"<base64>"}` (standard alphabet, padded) |
//! | map key that is not a string | its JSON text as the key: `1` → `"1"`, `[1,2]` → `"[1,2]"` |
//! | CBOR tag (other than bignums) | `{"$tag":N,"$value":V}` |
//! | MessagePack extension | `{"$ext":TYPE,"$bytes":"<base64>"}` |
//! | NaN, infinity | `null` (JSON has no such numbers) |
//! | integer beyond 64 bits | the integer, digits as they are |

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// Any value the codecs decode. Maps keep their order and may have keys of any kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Every integer that fits an `i128`: all of JSON's and MessagePack's, CBOR's down to
    /// -2^64, and CBOR bignums that fit.
    Int(i128),
    /// An unsigned CBOR bignum above `i128::MAX`.
    BigUint(u128),
    /// A MessagePack float32, kept as one so that the echo sends it back as one.
    F32(f32),
    F64(f64),
    String(String),
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
    /// A CBOR tag and the item it tags.
    Tag(u64, Box<Value>),
    /// A MessagePack extension: its type and its data.
    Ext(i8, Vec<u8>),
}

/// The one JSON line a received value prints as; see the module's table.
pub fn to_json(value: &Value) -> String {
    // Serializing to a string cannot fail: every map key this view writes is a string.
    serde_json::to_string(&Json(value)).unwrap_or_else(|e| format!("\"<unprintable: {e}>\""))
}

/// At most this many elements are reserved up front, whatever length a payload announces.
const MAX_PREALLOCATED: usize = 4096;

// ---- decoding ----

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> de::Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }

    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(i128::try_from(v).map_or(Value::BigUint(v), Value::Int))
    }

    fn visit_f32<E>(self, v: f32) -> Result<Value, E> {
        Ok(Value::F32(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::F64(v))
    }

    fn visit_char<E>(self, v: char) -> Result<Value, E> {
        Ok(Value::String(v.into()))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }

    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    /// rmp-serde hands a MessagePack extension over as a newtype holding `(type, data)`.
    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Value, D::Error> {
        let inner = Value::deserialize(deserializer)?;
        if let Value::Array(items) = &inner
            && let [Value::Int(kind), Value::Bytes(data)] = items.as_slice()
            && let Ok(kind) = i8::try_from(*kind)
        {
            return Ok(Value::Ext(kind, data.clone()));
        }
        Ok(inner)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_PREALLOCATED));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(MAX_PREALLOCATED));
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Value::Map(entries))
    }

    /// ciborium hands a CBOR tag over as the variant `@@TAGGED@@` holding `(tag, item)`.
    /// Any other enum (no codec here makes one) becomes `{variant: value}`.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (variant, access): (String, _) = data.variant()?;
        if variant == CBOR_TAGGED {
            return access.tuple_variant(2, TagVisitor);
        }
        let value = access.newtype_variant()?;
        Ok(Value::Map(vec![(Value::String(variant), value)]))
    }
}

/// How ciborium names a tagged item in the serde data model (`ciborium::tag::Captured`).
const CBOR_TAGGED: &str = "@@TAGGED@@";

struct TagVisitor;

impl<'de> de::Visitor<'de> for TagVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CBOR tag and its item")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let tag: u64 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let item: Value = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        Ok(Value::Tag(tag, Box::new(item)))
    }
}

// ---- encoding, for the codecs ----

/// Writes the value back as the codec read it: byte strings as byte strings, tags as CBOR
/// tags, extensions as MessagePack extensions.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(v) => serializer.serialize_bool(*v),
            Value::Int(v) => serialize_int(*v, serializer),
            Value::BigUint(v) => serializer.serialize_u128(*v),
            Value::F32(v) => serializer.serialize_f32(*v),
            Value::F64(v) => serializer.serialize_f64(*v),
            Value::String(v) => serializer.serialize_str(v),
            Value::Bytes(v) => serializer.serialize_bytes(v),
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
            Value::Tag(tag, item) => {
                ciborium::tag::Captured(Some(*tag), item.as_ref()).serialize(serializer)
            }
            Value::Ext(kind, data) => serializer.serialize_newtype_struct(
                rmp_serde::MSGPACK_EXT_STRUCT_NAME,
                &(*kind, RawBytes(data)),
            ),
        }
    }
}

/// The smallest serde integer type that holds the value, so that every codec can write it.
fn serialize_int<S: Serializer>(v: i128, serializer: S) -> Result<S::Ok, S::Error> {
    if let Ok(v) = i64::try_from(v) {
        serializer.serialize_i64(v)
    } else if let Ok(v) = u64::try_from(v) {
        serializer.serialize_u64(v)
    } else {
        serializer.serialize_i128(v)
    }
}

/// Bytes that serialize as a byte string.
struct RawBytes<'a>(&'a [u8]);

impl Serialize for RawBytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

// ---- the JSON view, for printing ----

/// A value as it prints; see the module's table.
struct Json<'a>(&'a Value);

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Bytes(data) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("$bytes", &base64(data))?;
                map.end()
            }
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Json(item))?;
                }
                seq.end()
            }
            Value::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    match key {
                        Value::String(key) => map.serialize_entry(key, &Json(value))?,
                        key => map.serialize_entry(&to_json(key), &Json(value))?,
                    }
                }
                map.end()
            }
            Value::Tag(tag, item) => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("$tag", tag)?;
                map.serialize_entry("$value", &Json(item))?;
                map.end()
            }
            Value::Ext(kind, data) => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("$ext", kind)?;
                map.serialize_entry("$bytes", &base64(data))?;
                map.end()
            }
            // The rest prints as it is (serde_json writes non-finite floats as null).
            other => other.serialize(serializer),
        }
    }
}

/// Standard base64 (RFC 4648 section 4) with padding.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let bits = chunk.iter().enumerate().fold(0u32, |bits, (i, &byte)| {
            bits | u32::from(byte) << (16 - 8 * i)
        });
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(bits >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_test_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0xfd]), "//79");
    }
}
