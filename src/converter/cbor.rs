use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::converter::{Converter, MAX_NESTING};
use crate::error::Error;
use crate::frame::Frame;

/// CBOR (RFC 8949, `ciborium`) in binary frames.
///
/// Structs are maps keyed by field name, as `cbor2` and `cbor-x` expect. Encodes into a
/// `Vec<u8>` that becomes the frame payload without a copy; decodes straight from the
/// received bytes. Bytes after the first CBOR item are an error, and so is nesting of 128
/// levels or more.
///
/// ```
/// use typed_ws::{CborConverter, Converter, Frame};
/// let frame = CborConverter.serialize(&[1u8, 2]).unwrap();
/// assert_eq!(frame, Frame::binary(vec![0x82, 0x01, 0x02]));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(docsrs, doc(cfg(feature = "cbor")))]
pub struct CborConverter;

/// Why a CBOR payload did not decode or a value did not encode, in words: ciborium's own
/// errors print as their `Debug` form.
#[derive(Debug, thiserror::Error)]
enum CborError {
    #[error("the CBOR item ends early, after {0} bytes")]
    Truncated(usize),
    #[error("invalid CBOR at byte {0}")]
    Syntax(usize),
    #[error("{0} (item at byte {1})")]
    Semantic(String, usize),
    #[error("{0}")]
    Value(String),
    #[error("nesting of {MAX_NESTING} levels or more")]
    TooDeep,
    #[error("{0} bytes after the end of the CBOR item")]
    TrailingBytes(usize),
    #[error(transparent)]
    Io(std::io::Error),
}

impl CborError {
    fn decoding(e: ciborium::de::Error<std::io::Error>, payload: &[u8]) -> Self {
        use ciborium::de::Error as De;
        match e {
            // Read from a slice, the only I/O error is running out of bytes.
            De::Io(_) => CborError::Truncated(payload.len()),
            De::Syntax(offset) => CborError::Syntax(offset),
            De::Semantic(Some(offset), message) => CborError::Semantic(message, offset),
            De::Semantic(None, message) => CborError::Value(message),
            De::RecursionLimitExceeded => CborError::TooDeep,
        }
    }

    fn encoding(e: ciborium::ser::Error<std::io::Error>) -> Self {
        match e {
            ciborium::ser::Error::Io(e) => CborError::Io(e),
            ciborium::ser::Error::Value(message) => CborError::Value(message),
        }
    }
}

impl Converter for CborConverter {
    fn name(&self) -> &'static str {
        "cbor"
    }

    #[inline]
    fn serialize<T: Serialize + ?Sized>(&self, value: &T) -> Result<Frame, Error> {
        let mut payload = Vec::new();
        ciborium::into_writer(value, &mut payload)
            .map_err(|e| Error::encode(self.name(), CborError::encoding(e)))?;
        Ok(Frame::binary(payload))
    }

    #[inline]
    fn deserialize<T: DeserializeOwned>(&self, frame: &Frame) -> Result<T, Error> {
        let mut rest = frame.payload();
        // ciborium's limit is how many levels it may enter, where serde_json and rmp-serde
        // refuse the level that reaches theirs: one less refuses the same bombs they do.
        let value = ciborium::de::from_reader_with_recursion_limit(&mut rest, MAX_NESTING - 1)
            .map_err(|e| {
                Error::decode(self.name(), frame, CborError::decoding(e, frame.payload()))
            })?;
        if !rest.is_empty() {
            return Err(Error::decode(
                self.name(),
                frame,
                CborError::TrailingBytes(rest.len()),
            ));
        }
        Ok(value)
    }

    fn is_applicable(&self, frame: &Frame) -> bool {
        matches!(frame, Frame::Binary(_))
    }
}
