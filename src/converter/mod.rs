//! Converters: how typed values become frames and frames become typed values.
//!
//! A [`Converter`] is chosen once, in [`Config::converter`](crate::Config::converter), and then
//! used by every `send_serialized` and `receive_deserialized` of the sessions made with that
//! config. Choose it in code as a type ([`JsonConverter`], [`CborConverter`],
//! [`MsgPackConverter`], or your own), which compiles to a direct call of the codec, or at run
//! time by name with [`AnyConverter`]. Both give the same session API.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::frame::Frame;

/// How deeply nested arrays and maps may be in a CBOR or MessagePack payload: 128 levels,
/// serde_json's fixed limit, so every codec refuses the same nesting bombs. Measured here,
/// a level of decoding costs up to 3.4 KiB of stack in a debug build (0.4 KiB in release), so
/// 128 levels stay far below a tokio worker's 2 MiB; rmp-serde's own default of 1024 levels
/// overflows that stack in a debug build.
#[cfg(any(feature = "cbor", feature = "msgpack"))]
const MAX_NESTING: usize = 128;

/// Turns values into frames and frames back into values.
///
/// Implement it to put your own codec under a session. `serialize` should build the frame
/// payload directly (encode into a `Vec<u8>` and hand it over without copying);
/// `deserialize` should decode straight from [`Frame::payload`].
///
/// ```
/// use serde::{Serialize, de::DeserializeOwned};
/// use typed_ws::{Converter, Error, Frame};
///
/// /// JSON in binary frames, for peers that want it that way.
/// #[derive(Clone)]
/// struct BinaryJson;
///
/// impl Converter for BinaryJson {
///     fn name(&self) -> &'static str {
///         "binary-json"
///     }
///     fn serialize<T: Serialize + ?Sized>(&self, value: &T) -> Result<Frame, Error> {
///         let bytes = serde_json::to_vec(value).map_err(|e| Error::encode(self.name(), e))?;
///         Ok(Frame::binary(bytes))
///     }
///     fn deserialize<T: DeserializeOwned>(&self, frame: &Frame) -> Result<T, Error> {
///         serde_json::from_slice(frame.payload()).map_err(|e| Error::decode(self.name(), frame, e))
///     }
///     fn is_applicable(&self, frame: &Frame) -> bool {
///         matches!(frame, Frame::Binary(_))
///     }
/// }
///
/// let frame = BinaryJson.serialize(&[1, 2, 3]).unwrap();
/// assert_eq!(BinaryJson.deserialize::<Vec<u8>>(&frame).unwrap(), [1, 2, 3]);
/// ```
pub trait Converter: Clone + Send + Sync + 'static {
    /// A short name for error messages and for choosing by name: `"json"`, `"cbor"`,
    /// `"msgpack"`.
    fn name(&self) -> &'static str;

    /// Encodes a value into a frame. Failures are [`Error::Encode`] (see [`Error::encode`]).
    fn serialize<T: Serialize + ?Sized>(&self, value: &T) -> Result<Frame, Error>;

    /// Decodes a frame the converter [is applicable to](Converter::is_applicable). Failures
    /// are [`Error::Decode`], carrying the frame (see [`Error::decode`]).
    fn deserialize<T: DeserializeOwned>(&self, frame: &Frame) -> Result<T, Error>;

    /// Whether the frame is of the kind this converter reads (text for JSON, binary for CBOR
    /// and MessagePack). A typed receive gives any other data frame back as
    /// [`Error::UnexpectedFrame`] without decoding it.
    fn is_applicable(&self, frame: &Frame) -> bool;
}

/// A converter that can also decode values borrowing from the frame: `&str` and `&[u8]`
/// fields point into the received payload instead of being copied out of it.
///
/// JSON borrows strings without escapes and MessagePack borrows strings and binary data;
/// ciborium always copies, so [`CborConverter`] does not implement this trait (and
/// [`AnyConverter`] holding CBOR answers [`Error::Decode`]). Use it with
/// [`Session::receive_message`](crate::Session::receive_message), which hands over the frame
/// to decode:
///
/// ```
/// use serde::Deserialize;
/// use typed_ws::{BorrowingConverter, Frame, MsgPackConverter};
///
/// #[derive(Deserialize)]
/// struct Event<'a> {
///     kind: &'a str,
///     #[serde(with = "serde_bytes")]
///     body: &'a [u8],
/// }
///
/// let frame = Frame::binary(vec![0x82, 0xa4, b'k', b'i', b'n', b'd', 0xa1, b'x', 0xa4, b'b', b'o', b'd', b'y', 0xc4, 0x01, 0x07]);
/// let event: Event<'_> = MsgPackConverter::new().deserialize_borrowed(&frame).unwrap();
/// assert_eq!((event.kind, event.body), ("x", &[7u8][..]));
/// // The fields point into the frame's payload: nothing was copied.
/// assert!(frame.payload().as_ptr_range().contains(&event.body.as_ptr()));
/// ```
pub trait BorrowingConverter: Converter {
    /// Decodes a frame into a value that may borrow from it.
    fn deserialize_borrowed<'de, T: Deserialize<'de>>(&self, frame: &'de Frame)
    -> Result<T, Error>;
}

/// The converter of a [`Config`](crate::Config) that has none: raw frames work, typed sends
/// and receives give [`Error::NoConverter`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoConverter;

impl Converter for NoConverter {
    fn name(&self) -> &'static str {
        "none"
    }

    fn serialize<T: Serialize + ?Sized>(&self, _value: &T) -> Result<Frame, Error> {
        Err(Error::NoConverter { frame: None })
    }

    fn deserialize<T: DeserializeOwned>(&self, frame: &Frame) -> Result<T, Error> {
        Err(Error::NoConverter {
            frame: Some(frame.clone()),
        })
    }

    fn is_applicable(&self, _frame: &Frame) -> bool {
        true
    }
}

/// The codecs: one line each. A row names the cargo feature (also the codec's
/// [`name`](Converter::name) and its file in this directory), the [`AnyConverter`] variant
/// with its converter type, how [`AnyConverter::from_name`] makes one, and whether it
/// `borrows` (implements [`BorrowingConverter`]) or `copies`, with the reason a borrowing
/// decode fails. A new serde codec is its file plus a row, and a feature in Cargo.toml.
macro_rules! codecs {
    (@borrowed $c:ident, $frame:ident, borrows) => {
        $c.deserialize_borrowed($frame)
    };
    (@borrowed $c:ident, $frame:ident, copies $why:literal) => {
        Err(Error::decode($c.name(), $frame, $why))
    };
    ($(
        $(#[doc = $doc:literal])*
        $feature:literal $module:ident: $variant:ident($converter:ident) = $make:expr, $borrow:ident $($why:literal)?;
    )*) => {
        $(
            #[cfg(feature = $feature)]
            mod $module;
            #[cfg(feature = $feature)]
            #[cfg_attr(docsrs, doc(cfg(feature = $feature)))]
            pub use $module::$converter;

            #[cfg(feature = $feature)]
            #[cfg_attr(docsrs, doc(cfg(feature = $feature)))]
            impl From<$converter> for AnyConverter {
                fn from(converter: $converter) -> Self {
                    AnyConverter::$variant(converter)
                }
            }
        )*

        /// A converter chosen at run time, by name: `"json"`, `"cbor"` or `"msgpack"` (those
        /// whose cargo feature is on). It dispatches with one `match` per call.
        ///
        /// ```
        /// use typed_ws::{AnyConverter, Converter};
        ///
        /// let converter: AnyConverter = "cbor".parse().unwrap();
        /// assert_eq!(converter.name(), "cbor");
        ///
        /// let err = AnyConverter::from_name("yaml").unwrap_err();
        /// assert_eq!(err.to_string(), r#"unknown converter "yaml": the known converters are json, cbor, msgpack"#);
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum AnyConverter {
            $(
                $(#[doc = $doc])*
                #[cfg(feature = $feature)]
                #[cfg_attr(docsrs, doc(cfg(feature = $feature)))]
                $variant($converter),
            )*
        }

        impl AnyConverter {
            /// The names [`AnyConverter::from_name`] knows, in the order JSON, CBOR,
            /// MessagePack.
            pub fn known_names() -> Vec<&'static str> {
                [$(
                    #[cfg(feature = $feature)]
                    $feature,
                )*]
                .to_vec()
            }

            /// The converter with this name (ASCII case ignored); [`Error::UnknownConverter`],
            /// listing the known names, otherwise. `"msgpack"` writes structs as maps keyed by
            /// field name.
            pub fn from_name(name: &str) -> Result<Self, Error> {
                $(
                    #[cfg(feature = $feature)]
                    if name.eq_ignore_ascii_case($feature) {
                        return Ok(AnyConverter::$variant($make));
                    }
                )*
                Err(Error::UnknownConverter {
                    name: name.to_owned(),
                    known: Self::known_names(),
                })
            }
        }

        /// Calls the same method on whichever converter is inside. `match *self` (not
        /// `self`) keeps the match valid when every codec feature is off and the enum has no
        /// variant.
        macro_rules! dispatch {
            ($self:ident, $c:ident => $call:expr) => {
                match *$self {
                    $(
                        #[cfg(feature = $feature)]
                        AnyConverter::$variant(ref $c) => $call,
                    )*
                }
            };
        }

        // With every codec feature off the enum is empty and the arguments go unused.
        #[cfg_attr(not(any($(feature = $feature),*)), allow(unused_variables))]
        impl Converter for AnyConverter {
            fn name(&self) -> &'static str {
                dispatch!(self, c => c.name())
            }

            fn serialize<T: Serialize + ?Sized>(&self, value: &T) -> Result<Frame, Error> {
                dispatch!(self, c => c.serialize(value))
            }

            fn deserialize<T: DeserializeOwned>(&self, frame: &Frame) -> Result<T, Error> {
                dispatch!(self, c => c.deserialize(frame))
            }

            fn is_applicable(&self, frame: &Frame) -> bool {
                dispatch!(self, c => c.is_applicable(frame))
            }
        }

        /// Decodes borrowing where the codec can, and fails with its reason where it cannot.
        #[cfg_attr(not(any($(feature = $feature),*)), allow(unused_variables))]
        impl BorrowingConverter for AnyConverter {
            fn deserialize_borrowed<'de, T: Deserialize<'de>>(
                &self,
                frame: &'de Frame,
            ) -> Result<T, Error> {
                match *self {
                    $(
                        #[cfg(feature = $feature)]
                        AnyConverter::$variant(ref c) => codecs!(@borrowed c, frame, $borrow $($why)?),
                    )*
                }
            }
        }
    };
}

codecs! {
    /// JSON in text frames.
    "json" json: Json(JsonConverter) = JsonConverter, borrows;
    /// CBOR in binary frames.
    "cbor" cbor: Cbor(CborConverter) = CborConverter,
        copies "ciborium cannot decode values that borrow from the frame; use an owned type";
    /// MessagePack in binary frames.
    "msgpack" msgpack: MsgPack(MsgPackConverter) = MsgPackConverter::new(), borrows;
}

impl std::str::FromStr for AnyConverter {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Error> {
        AnyConverter::from_name(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row's feature name is the name its converter answers to.
    #[test]
    fn every_known_name_makes_the_converter_of_that_name() {
        for name in AnyConverter::known_names() {
            assert_eq!(AnyConverter::from_name(name).unwrap().name(), name);
        }
    }
}
