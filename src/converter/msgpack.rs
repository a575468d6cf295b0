use serde::Deserialize;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::converter::{BorrowingConverter, Converter, MAX_NESTING};
use crate::error::Error;
use crate::frame::Frame;

/// MessagePack (`rmp-serde`) in binary frames.
///
/// By default structs are maps keyed by field name, which is what Python, JavaScript and Go
/// peers expect; [`MsgPackConverter::compact`] writes them as arrays of field values
/// instead (smaller, but both sides must agree on field order). Decoding accepts both forms.
/// Encodes into a `Vec<u8>` that becomes the frame payload without a copy; decodes straight
/// from the received bytes. Bytes after the first value are ignored, as `rmp-serde` does;
/// nesting deeper than 128 levels is an error.
///
/// ```
/// use serde::Serialize;
/// use typed_ws::{Converter, MsgPackConverter};
///
/// #[derive(Serialize)]
/// struct Point { x: u8 }
///
/// let named = MsgPackConverter::new().serialize(&Point { x: 1 }).unwrap();
/// assert_eq!(named.payload(), [0x81, 0xa1, b'x', 0x01]); // {"x": 1}
/// let compact = MsgPackConverter::compact().serialize(&Point { x: 1 }).unwrap();
/// assert_eq!(compact.payload(), [0x91, 0x01]); // [1]
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
        let mut decoder = rmp_serde::Deserializer::from_read_ref(frame.payload());
        decoder.set_max_depth(MAX_NESTING);
        T::deserialize(&mut decoder).map_err(|e| Error::decode(self.name(), frame, e))
    }
}
