use serde::Deserialize;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::converter::{BorrowingConverter, Converter};
use crate::error::Error;
use crate::frame::Frame;

/// JSON (`serde_json`) in text frames.
///
/// Encodes into a `String` that becomes the frame payload without a copy; decodes straight
/// from the received bytes. Trailing characters other than whitespace are an error.
///
/// ```
/// use typed_ws::{Converter, Frame, JsonConverter};
/// let frame = JsonConverter.serialize(&vec!["a", "b"]).unwrap();
/// assert_eq!(frame, Frame::text(r#"["a","b"]"#));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
pub struct JsonConverter;

impl Converter for JsonConverter {
    fn name(&self) -> &'static str {
        "json"
    }

    #[inline]
    fn serialize<T: Serialize + ?Sized>(&self, value: &T) -> Result<Frame, Error> {
        serde_json::to_string(value)
            .map(Frame::text)
            .map_err(|e| Error::encode(self.name(), e))
    }

    #[inline]
    fn deserialize<T: DeserializeOwned>(&self, frame: &Frame) -> Result<T, Error> {
        self.deserialize_borrowed(frame)
    }

    fn is_applicable(&self, frame: &Frame) -> bool {
        matches!(frame, Frame::Text(_))
    }
}

/// Borrows strings that have no escapes; a borrowed `&str` field whose string has an escape is
/// an error, so prefer `Cow<'de, str>` with `#[serde(borrow)]`, which borrows when it can.
impl BorrowingConverter for JsonConverter {
    #[inline]
    fn deserialize_borrowed<'de, T: Deserialize<'de>>(
        &self,
        frame: &'de Frame,
    ) -> Result<T, Error> {
        // tungstenite has checked a text frame's UTF-8 already; from_slice would check it again.
        let decoded = match frame {
            Frame::Text(text) => serde_json::from_str(text.as_str()),
            other => serde_json::from_slice(other.payload()),
        };
        decoded.map_err(|e| Error::decode(self.name(), frame, e))
    }
}
