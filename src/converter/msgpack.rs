use std::fmt;

use serde::de::{DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::converter::{BorrowingConverter, Converter, MAX_NESTING};
use crate::error::Error;
use crate::frame::Frame;

/// MessagePack (`rmp-serde`) in binary frames.
///
/// By default structs are maps keyed by field name, which is what Python, JavaScript and Go
/// peers expect; [`MsgPackConverter::compact`] writes them as arrays of field values
/// instead (smaller, but both sides must agree on field order). Decoding accepts both forms.
/// Encodes into a `Vec<u8>` that becomes the frame payload without a copy; decodes straight
/// from the received bytes. Bytes after the end of the value are an error (`rmp-serde` alone
/// would ignore them), and so is nesting of 128 levels or more.
///
/// ```
/// use serde::Serialize;
/// use typed_ws::{Converter, Error, Frame, MsgPackConverter};
///
/// #[derive(Serialize)]
/// struct Point { x: u8 }
///
/// let named = MsgPackConverter::new().serialize(&Point { x: 1 }).unwrap();
/// assert_eq!(named.payload(), [0x81, 0xa1, b'x', 0x01]); // {"x": 1}
/// let compact = MsgPackConverter::compact().serialize(&Point { x: 1 }).unwrap();
/// assert_eq!(compact.payload(), [0x91, 0x01]); // [1]
///
/// // A payload must be exactly one value: here a second one follows.
/// let two = Frame::binary(vec![0x91, 0x01, 0x91, 0x01]);
/// let err = MsgPackConverter::compact().deserialize::<Vec<u8>>(&two).unwrap_err();
/// assert!(matches!(err, Error::Decode { .. }), "{err}");
/// assert!(err.to_string().ends_with("2 bytes after the end of the MessagePack value"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(docsrs, doc(cfg(feature = "msgpack")))]
pub struct MsgPackConverter {
    named: bool,
}

impl MsgPackConverter {
    /// Structs as maps keyed by field name.
    pub const fn new() -> Self {
        MsgPackConverter { named: true }
    }

    /// Structs as arrays of field values.
    pub const fn compact() -> Self {
        MsgPackConverter { named: false }
    }
}

impl Default for MsgPackConverter {
    fn default() -> Self {
        Self::new()
    }
}

impl Converter for MsgPackConverter {
    fn name(&self) -> &'static str {
        "msgpack"
    }

    #[inline]
    fn serialize<T: Serialize + ?Sized>(&self, value: &T) -> Result<Frame, Error> {
        let mut payload = Vec::new();
        let written = if self.named {
            rmp_serde::encode::write_named(&mut payload, value)
        } else {
            rmp_serde::encode::write(&mut payload, value)
        };
        written.map_err(|e| Error::encode(self.name(), e))?;
        Ok(Frame::binary(payload))
    }

    #[inline]
    fn deserialize<T: DeserializeOwned>(&self, frame: &Frame) -> Result<T, Error> {
        self.deserialize_borrowed(frame)
    }

    fn is_applicable(&self, frame: &Frame) -> bool {
        matches!(frame, Frame::Binary(_))
    }
}

/// Borrows strings (`&str`) and binary data (`&[u8]`, or `serde_bytes`) from the frame.
impl BorrowingConverter for MsgPackConverter {
    #[inline]
    fn deserialize_borrowed<'de, T: Deserialize<'de>>(
        &self,
        frame: &'de Frame,
    ) -> Result<T, Error> {
        let payload = frame.payload();
        let mut decoder = rmp_serde::Deserializer::from_read_ref(payload);
        decoder.set_max_depth(MAX_NESTING);
        let value =
            T::deserialize(&mut decoder).map_err(|e| Error::decode(self.name(), frame, e))?;
        // A payload must be exactly one value: otherwise CBOR, JSON or two concatenated
        // messages would decode as whatever their first bytes happen to mean.
        if (&mut decoder).deserialize_option(AnythingLeft).is_ok() {
            return Err(Error::decode(
                self.name(),
                frame,
                MsgPackError::after(payload),
            ));
        }
        Ok(value)
    }
}

/// Why a payload that `rmp-serde` decoded is refused all the same.
#[derive(Debug, thiserror::Error)]
enum MsgPackError {
    #[error("{0} bytes after the end of the MessagePack value")]
    TrailingBytes(usize),
    /// The payload is one whole value, but the type's `Deserialize` left part of it unread.
    #[error("the MessagePack value was not read to its end")]
    Unread,
}

impl MsgPackError {
    /// The error for a payload whose decoder had bytes left. rmp-serde keeps its reader (and
    /// with it the count of bytes consumed) private, so the count is the payload's length
    /// past its first value, measured here; this runs only for payloads already refused.
    #[cold]
    fn after(payload: &[u8]) -> Self {
        match value_len(payload) {
            Some(len) if len < payload.len() => MsgPackError::TrailingBytes(payload.len() - len),
            _ => MsgPackError::Unread,
        }
    }
}

/// Asks the decoder for one more optional value without reading it. rmp-serde gives no access
/// to its reader, so this is how to learn whether the slice is used up: reading the next
/// marker fails only at the end of the slice, and the visitor reads nothing past the marker.
/// A marker the type peeked at and never read is still pending, so it counts as left over.
struct AnythingLeft;

impl<'de> Visitor<'de> for AnythingLeft {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("nothing after the MessagePack value")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, _rest: D) -> Result<(), D::Error> {
        Ok(())
    }
}

/// The length of the MessagePack value at the start of `bytes`, or `None` if it is cut short
/// or starts with the reserved marker `0xc1`. It counts the items still owed instead of
/// recursing, so nesting costs no stack, and every item takes at least one byte, so a forged
/// length ends the loop at the end of the slice.
fn value_len(bytes: &[u8]) -> Option<usize> {
    let mut at = 0usize;
    let mut owed = 1u64;
    while owed > 0 {
        owed -= 1;
        let marker = *bytes.get(at)?;
        at += 1;
        let mut len = |width| read_len(bytes, &mut at, width);
        // (bytes to skip, items that follow)
        let (skip, items): (u64, u64) = match marker {
            0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff => (0, 0),
            0x80..=0x8f => (0, 2 * u64::from(marker & 0x0f)),
            0x90..=0x9f => (0, u64::from(marker & 0x0f)),
            0xa0..=0xbf => (u64::from(marker & 0x1f), 0),
            0xc1 => return None,
            0xc4 | 0xd9 => (len(1)?, 0),
            0xc5 | 0xda => (len(2)?, 0),
            0xc6 | 0xdb => (len(4)?, 0),
            // Extension: the data length, then a type byte.
            0xc7 => (len(1)? + 1, 0),
            0xc8 => (len(2)? + 1, 0),
            0xc9 => (len(4)? + 1, 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xca | 0xce | 0xd2 => (4, 0),
            0xcb | 0xcf | 0xd3 => (8, 0),
            // Fixed-size extensions: a type byte, then 1, 2, 4, 8 or 16 bytes.
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            0xdc => (0, len(2)?),
            0xdd => (0, len(4)?),
            0xde => (0, 2 * len(2)?),
            0xdf => (0, 2 * len(4)?),
        };
        at = usize::try_from(skip)
            .ok()
            .and_then(|skip| at.checked_add(skip))
            .filter(|&end| end <= bytes.len())?;
        owed = owed.checked_add(items)?;
    }
    Some(at)
}

/// Reads a big-endian length of `width` (at most 4) bytes at `*at` and moves past it.
fn read_len(bytes: &[u8], at: &mut usize, width: usize) -> Option<u64> {
    let field = bytes.get(*at..at.checked_add(width)?)?;
    *at += width;
    Some(
        field
            .iter()
            .fold(0u64, |len, &byte| (len << 8) | u64::from(byte)),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Cursor;

    use serde::de::IgnoredAny;
    use serde_bytes::ByteBuf;

    use super::*;

    /// One value in every MessagePack format family, at the edges between widths.
    fn encodings() -> Vec<Vec<u8>> {
        let mut all = Vec::new();
        let mut add = |bytes: Vec<u8>| all.push(bytes);
        add(rmp_serde::to_vec(&()).unwrap());
        add(rmp_serde::to_vec(&true).unwrap());
        add(rmp_serde::to_vec(&false).unwrap());
        for n in [0u64, 127, 128, 255, 256, 65_535, 65_536, 1 << 32, u64::MAX] {
            add(rmp_serde::to_vec(&n).unwrap());
        }
        for n in [-1i64, -32, -33, -128, -129, -32_768, -32_769, i64::MIN] {
            add(rmp_serde::to_vec(&n).unwrap());
        }
        add(rmp_serde::to_vec(&1.5f32).unwrap());
        add(rmp_serde::to_vec(&-1.5e300f64).unwrap());
        for len in [0usize, 31, 32, 255, 256, 65_536] {
            add(rmp_serde::to_vec(&"s".repeat(len)).unwrap());
            add(rmp_serde::to_vec(&ByteBuf::from(vec![7u8; len])).unwrap());
            add(rmp_serde::to_vec(&vec![1u8; len]).unwrap());
            let map: BTreeMap<u32, u8> = (0..len as u32).map(|k| (k, 2)).collect();
            add(rmp_serde::to_vec(&map).unwrap());
        }
        // Extensions (rmp-serde writes them only through its private newtype name): the five
        // fixed sizes, then ext 8, 16 and 32.
        for len in [1usize, 2, 4, 8, 16, 3, 255, 256, 65_536] {
            let mut ext = match len {
                1 => vec![0xd4],
                2 => vec![0xd5],
                4 => vec![0xd6],
                8 => vec![0xd7],
                16 => vec![0xd8],
                0..=255 => vec![0xc7, len as u8],
                256..=65_535 => vec![0xc8, (len >> 8) as u8, len as u8],
                _ => {
                    let mut header = vec![0xc9];
                    header.extend_from_slice(&(len as u32).to_be_bytes());
                    header
                }
            };
            ext.push(0x05); // the type
            ext.extend(std::iter::repeat_n(0xc1, len));
            add(ext);
        }
        // Nested: a map of arrays of maps.
        let nested: BTreeMap<&str, Vec<BTreeMap<&str, Option<i8>>>> = BTreeMap::from([
            ("a", vec![BTreeMap::from([("x", Some(-5)), ("y", None)])]),
            ("b", vec![]),
        ]);
        add(rmp_serde::to_vec_named(&nested).unwrap());
        all
    }

    /// How many bytes rmp-serde itself reads for one value: its `Cursor` reader has a
    /// position, unlike the borrowing one.
    fn consumed_by_rmp_serde(bytes: &[u8]) -> usize {
        let mut decoder = rmp_serde::Deserializer::new(Cursor::new(bytes));
        IgnoredAny::deserialize(&mut decoder).expect("a valid value");
        usize::try_from(decoder.position()).unwrap()
    }

    #[test]
    fn value_len_agrees_with_rmp_serde_for_every_format() {
        for bytes in encodings() {
            let len = bytes.len();
            assert_eq!(consumed_by_rmp_serde(&bytes), len, "{:02x?}", &bytes[..1]);
            assert_eq!(value_len(&bytes), Some(len), "{:02x?}", &bytes[..1]);
            let mut followed = bytes.clone();
            followed.extend_from_slice(&[0xc1, 0x00, 0x91]);
            assert_eq!(value_len(&followed), Some(len), "{:02x?}", &bytes[..1]);
        }
    }

    #[test]
    fn value_len_of_a_cut_or_reserved_value_is_none() {
        for bytes in encodings() {
            for cut in (0..bytes.len().min(40)).chain([bytes.len() - 1]) {
                assert_eq!(value_len(&bytes[..cut]), None, "{:02x?}", &bytes[..cut]);
            }
        }
        assert_eq!(value_len(&[0xc1]), None);
        assert_eq!(value_len(&[0x92, 0x01, 0xc1]), None);
        // Lengths that claim far more than the payload holds.
        assert_eq!(value_len(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]), None);
        assert_eq!(value_len(&[0xdf, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(value_len(&[0xdb, 0xff, 0xff, 0xff, 0xff, b'a']), None);
        assert_eq!(value_len(&[0xc9, 0xff, 0xff, 0xff, 0xff, 0x01]), None);
    }

    fn decode_error(converter: MsgPackConverter, payload: Vec<u8>) -> (String, String) {
        let frame = Frame::binary(payload);
        let owned = converter
            .deserialize::<Vec<u8>>(&frame)
            .expect_err("owned path");
        let borrowed = converter
            .deserialize_borrowed::<&[u8]>(&frame)
            .expect_err("borrowing path");
        for err in [&owned, &borrowed] {
            assert!(
                matches!(
                    err,
                    Error::Decode {
                        converter: "msgpack",
                        ..
                    }
                ),
                "{err:?}"
            );
            assert_eq!(err.frame(), Some(&frame));
        }
        (owned.to_string(), borrowed.to_string())
    }

    #[test]
    fn bytes_after_the_value_are_counted_in_the_error() {
        // bin [1, 2], then one byte of garbage; then a whole second value.
        for (payload, count) in [
            (vec![0xc4, 0x02, 0x01, 0x02, 0xc1], 1),
            (vec![0xc4, 0x02, 0x01, 0x02, 0xc4, 0x02, 0x01, 0x02], 4),
        ] {
            let expected = format!("{count} bytes after the end of the MessagePack value");
            for converter in [MsgPackConverter::new(), MsgPackConverter::compact()] {
                let (owned, borrowed) = decode_error(converter, payload.clone());
                assert!(owned.ends_with(&expected), "{owned}");
                assert!(borrowed.ends_with(&expected), "{borrowed}");
            }
        }
        let exact = Frame::binary(vec![0xc4, 0x02, 0x01, 0x02]);
        let converter = MsgPackConverter::new();
        assert_eq!(converter.deserialize::<Vec<u8>>(&exact).unwrap(), [1, 2]);
        let borrowed: &[u8] = converter.deserialize_borrowed(&exact).unwrap();
        assert_eq!(borrowed, [1, 2]);
    }

    /// A type whose `Deserialize` takes an optional value's marker and never reads the value.
    struct SkipsTheValue;

    impl<'de> Deserialize<'de> for SkipsTheValue {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Skip;
            impl<'de> Visitor<'de> for Skip {
                type Value = SkipsTheValue;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("anything")
                }
                fn visit_none<E: serde::de::Error>(self) -> Result<SkipsTheValue, E> {
                    Ok(SkipsTheValue)
                }
                fn visit_some<D: Deserializer<'de>>(self, _: D) -> Result<SkipsTheValue, D::Error> {
                    Ok(SkipsTheValue)
                }
            }
            deserializer.deserialize_option(Skip)
        }
    }

    #[test]
    fn a_value_its_type_left_unread_is_refused_too() {
        let frame = Frame::binary(vec![0x92, 0x01, 0x02]);
        let err = MsgPackConverter::new()
            .deserialize::<SkipsTheValue>(&frame)
            .err()
            .expect("part of the value was not read");
        assert!(matches!(err, Error::Decode { .. }), "{err:?}");
        assert!(
            err.to_string()
                .ends_with("the MessagePack value was not read to its end"),
            "{err}"
        );
        // nil is the whole value when the type sees None.
        let nil = Frame::binary(vec![0xc0]);
        assert!(
            MsgPackConverter::new()
                .deserialize::<SkipsTheValue>(&nil)
                .is_ok()
        );
    }
}
