use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::converter::{Converter, MAX_NESTING};
use crate::error::Error;
use crate::frame::Frame;

/// CBOR (RFC 8949, `ciborium`) in binary frames.
///
/// Structs are maps keyed by field name, as `cbor2` and `cbor-x` expect. Encodes into a
/// `Vec<u8>` that becomes the frame payload without a copy; decodes straight from the
/// received bytes. Bytes after the first CBOR item are an error, and so is nesting deeper than
/// 128 levels.
///
/// ```
/// use typed_ws::{CborConverter, Converter, Frame};
/// let frame = CborConverter.serialize(&[1u8, 2]).unwrap();
/// assert_eq!(frame, Frame::binary(vec![0x82, 0x01, 0x02]));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CborConverter;

/// The trailing-bytes error of [`CborConverter`].
#[derive(Debug, thiserror::Error)]
#[error("{0} bytes after the end of the CBOR item")]
struct TrailingBytes(usize);

impl Converter for CborConverter {
    fn name(&self) -> &'static str {
        "cbor"
    }

    #[inline]
    fn serialize<T: Serialize + ?Sized>(&self, value: &T) -> Result<Frame, Error> {
        let mut payload = Vec::new();
        ciborium::into_writer(value, &mut payload).map_err(|e| Error::encode(self.name(), e))?;
        Ok(Frame::binary(payload))
    }

    #[inline]
    fn deserialize<T: DeserializeOwned>(&self, frame: &Frame) -> Result<T, Error> {
        let mut rest = frame.payload();
        let value = ciborium::de::from_reader_with_recursion_limit(&mut rest, MAX_NESTING)
            .map_err(|e| Error::decode(self.name(), frame, e))?;
        if !rest.is_empty() {
            return Err(Error::decode(self.name(), frame, TrailingBytes(rest.len())));
        }
        Ok(value)
    }

    fn is_applicable(&self, frame: &Frame) -> bool {
        matches!(frame, Frame::Binary(_))
    }
}
