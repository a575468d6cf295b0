//! WebSocket frames as the session hands them out: text, binary, close, ping and pong.
//!
//! Payloads are [`Bytes`] and [`Utf8Bytes`], the types tungstenite reads into, so converting
//! between a [`Frame`] and a tungstenite [`Message`] moves a reference-counted handle and never
//! copies the payload.

use std::fmt;

use bytes::Bytes;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;

pub use tokio_tungstenite::tungstenite::Utf8Bytes;

/// One WebSocket message or control frame.
///
/// Fragmented data messages are delivered reassembled, as one `Text` or `Binary` frame.
///
/// ```
/// use typed_ws::{Frame, FrameKind};
/// let frame = Frame::text("hello");
/// assert_eq!(frame.kind(), FrameKind::Text);
/// assert_eq!(frame.as_text(), Some("hello"));
/// assert_eq!(frame.payload(), b"hello");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum Frame {
    /// A UTF-8 text message.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A close frame; `None` when the peer closed without a status code.
    Close(Option<CloseReason>),
    /// A ping; the session answers it with a pong by itself.
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
}

/// Shows at most the first 64 bytes of a payload, so that errors carrying a large frame stay
/// readable in logs.
impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 64;
        let (kind, data) = match self {
            Frame::Close(reason) => return f.debug_tuple("Close").field(reason).finish(),
            Frame::Text(text) if text.len() <= SHOWN => {
                return f.debug_tuple("Text").field(&text.as_str()).finish();
            }
            Frame::Text(text) => {
                let mut end = SHOWN;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                return write!(f, "Text({:?}… {} bytes)", &text[..end], text.len());
            }
            Frame::Binary(data) => ("Binary", data),
            Frame::Ping(data) => ("Ping", data),
            Frame::Pong(data) => ("Pong", data),
        };
        if data.len() <= SHOWN {
            write!(f, "{kind}({:?})", &data[..])
        } else {
            write!(f, "{kind}({:?}… {} bytes)", &data[..SHOWN], data.len())
        }
    }
}

/// The type of a [`Frame`], without its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// [`Frame::Text`]
    Text,
    /// [`Frame::Binary`]
    Binary,
    /// [`Frame::Close`]
    Close,
    /// [`Frame::Ping`]
    Ping,
    /// [`Frame::Pong`]
    Pong,
}

impl fmt::Display for FrameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            FrameKind::Text => "text",
            FrameKind::Binary => "binary",
            FrameKind::Close => "close",
            FrameKind::Ping => "ping",
            FrameKind::Pong => "pong",
        })
    }
}

impl Frame {
    /// A text frame.
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Frame::Text(text.into())
    }

    /// A binary frame.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Frame::Binary(data.into())
    }

    /// A close frame with a status code and a reason.
    pub fn close(code: CloseCode, reason: impl Into<Utf8Bytes>) -> Self {
        Frame::Close(Some(CloseReason::new(code, reason)))
    }

    /// The frame's type.
    pub fn kind(&self) -> FrameKind {
        match self {
            Frame::Text(_) => FrameKind::Text,
            Frame::Binary(_) => FrameKind::Binary,
            Frame::Close(_) => FrameKind::Close,
            Frame::Ping(_) => FrameKind::Ping,
            Frame::Pong(_) => FrameKind::Pong,
        }
    }

    /// True for text and binary frames.
    pub fn is_data(&self) -> bool {
        matches!(self, Frame::Text(_) | Frame::Binary(_))
    }

    /// The text of a text frame.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Frame::Text(text) => Some(text),
            _ => None,
        }
    }

    /// The payload bytes: the data of a text, binary, ping or pong frame, the reason text of
    /// a close frame.
    pub fn payload(&self) -> &[u8] {
        match self {
            Frame::Text(text) => text.as_bytes(),
            Frame::Binary(data) | Frame::Ping(data) | Frame::Pong(data) => data,
            Frame::Close(Some(reason)) => reason.reason.as_bytes(),
            Frame::Close(None) => &[],
        }
    }

    /// Takes the payload out without copying it; see [`Frame::payload`].
    pub fn into_payload(self) -> Bytes {
        match self {
            Frame::Text(text) => text.into(),
            Frame::Binary(data) | Frame::Ping(data) | Frame::Pong(data) => data,
            Frame::Close(Some(reason)) => reason.reason.into(),
            Frame::Close(None) => Bytes::new(),
        }
    }
}

impl From<Frame> for Message {
    fn from(frame: Frame) -> Self {
        match frame {
            Frame::Text(text) => Message::Text(text),
            Frame::Binary(data) => Message::Binary(data),
            Frame::Ping(data) => Message::Ping(data),
            Frame::Pong(data) => Message::Pong(data),
            Frame::Close(reason) => Message::Close(reason.map(CloseFrame::from)),
        }
    }
}

/// A close status code (RFC 6455 section 7.4).
///
/// ```
/// use typed_ws::CloseCode;
/// assert_eq!(CloseCode::from(1009), CloseCode::TooBig);
/// assert_eq!(u16::from(CloseCode::Application(4000)), 4000);
/// assert!(!CloseCode::Abnormal.is_sendable());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: the purpose of the connection has been fulfilled.
    Normal,
    /// 1001: the endpoint is going away (server shutdown, page left).
    GoingAway,
    /// 1002: the peer broke the protocol.
    ProtocolError,
    /// 1003: a data type the endpoint cannot accept (text where binary is expected, ...).
    Unsupported,
    /// 1005: a close frame without a status code. Never sent.
    NoStatus,
    /// 1006: the connection dropped without a close frame. Never sent.
    Abnormal,
    /// 1007: a payload inconsistent with the message type (bad UTF-8, undecodable data).
    InvalidPayload,
    /// 1008: the message violates the endpoint's policy.
    PolicyViolation,
    /// 1009: a message too big to process.
    TooBig,
    /// 1010: the client expected an extension the server did not negotiate.
    MandatoryExtension,
    /// 1011: the server hit an unexpected condition.
    InternalError,
    /// 1012: the service is restarting.
    ServiceRestart,
    /// 1013: try again later (temporary overload).
    TryAgainLater,
    /// 3000-4999: codes for libraries, frameworks and applications.
    Application(u16),
    /// Any other code (reserved or invalid); received codes keep their number.
    Other(u16),
}

impl CloseCode {
    /// Whether the code may be sent in a close frame. 1005, 1006, reserved codes and codes
    /// outside 1000-4999 may not.
    pub fn is_sendable(self) -> bool {
        match self {
            CloseCode::NoStatus | CloseCode::Abnormal | CloseCode::Other(_) => false,
            CloseCode::Application(code) => (3000..=4999).contains(&code),
            _ => true,
        }
    }

    fn name(self) -> &'static str {
        match self {
            CloseCode::Normal => "normal",
            CloseCode::GoingAway => "going away",
            CloseCode::ProtocolError => "protocol error",
            CloseCode::Unsupported => "unsupported data",
            CloseCode::NoStatus => "no status",
            CloseCode::Abnormal => "abnormal closure",
            CloseCode::InvalidPayload => "invalid payload",
            CloseCode::PolicyViolation => "policy violation",
            CloseCode::TooBig => "message too big",
            CloseCode::MandatoryExtension => "mandatory extension",
            CloseCode::InternalError => "internal error",
            CloseCode::ServiceRestart => "service restart",
            CloseCode::TryAgainLater => "try again later",
            CloseCode::Application(_) => "application",
            CloseCode::Other(_) => "other",
        }
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        match code {
            1000 => CloseCode::Normal,
            1001 => CloseCode::GoingAway,
            1002 => CloseCode::ProtocolError,
            1003 => CloseCode::Unsupported,
            1005 => CloseCode::NoStatus,
            1006 => CloseCode::Abnormal,
            1007 => CloseCode::InvalidPayload,
            1008 => CloseCode::PolicyViolation,
            1009 => CloseCode::TooBig,
            1010 => CloseCode::MandatoryExtension,
            1011 => CloseCode::InternalError,
            1012 => CloseCode::ServiceRestart,
            1013 => CloseCode::TryAgainLater,
            3000..=4999 => CloseCode::Application(code),
            _ => CloseCode::Other(code),
        }
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> u16 {
        match code {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::ProtocolError => 1002,
            CloseCode::Unsupported => 1003,
            CloseCode::NoStatus => 1005,
            CloseCode::Abnormal => 1006,
            CloseCode::InvalidPayload => 1007,
            CloseCode::PolicyViolation => 1008,
            CloseCode::TooBig => 1009,
            CloseCode::MandatoryExtension => 1010,
            CloseCode::InternalError => 1011,
            CloseCode::ServiceRestart => 1012,
            CloseCode::TryAgainLater => 1013,
            CloseCode::Application(code) | CloseCode::Other(code) => code,
        }
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!("{} ({})", u16::from(*self), self.name()))
    }
}

/// The status code and reason of a close frame.
///
/// ```
/// use typed_ws::{CloseCode, CloseReason};
/// let reason = CloseReason::new(CloseCode::Normal, "bye");
/// assert_eq!(reason.to_string(), "1000 (normal): bye");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    /// The status code.
    pub code: CloseCode,
    /// The reason text, at most 123 bytes on the wire (longer reasons are cut when sent).
    pub reason: Utf8Bytes,
}

impl CloseReason {
    /// A close reason.
    pub fn new(code: CloseCode, reason: impl Into<Utf8Bytes>) -> Self {
        CloseReason {
            code,
            reason: reason.into(),
        }
    }

    /// The reason cut to the 123 bytes a close frame can carry, at a character boundary.
    pub(crate) fn truncated(self) -> Self {
        const MAX_REASON: usize = 123;
        if self.reason.len() <= MAX_REASON {
            return self;
        }
        let mut end = MAX_REASON;
        while !self.reason.is_char_boundary(end) {
            end -= 1;
        }
        CloseReason {
            code: self.code,
            reason: Utf8Bytes::from(&self.reason[..end]),
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if !self.reason.is_empty() {
            write!(f, ": {}", self.reason.as_str())?;
        }
        Ok(())
    }
}

impl From<CloseFrame> for CloseReason {
    fn from(frame: CloseFrame) -> Self {
        CloseReason {
            code: CloseCode::from(u16::from(frame.code)),
            reason: frame.reason,
        }
    }
}

impl From<CloseReason> for CloseFrame {
    fn from(reason: CloseReason) -> Self {
        CloseFrame {
            code: WsCloseCode::from(u16::from(reason.code)),
            reason: reason.reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A close frame's payload is at most 125 bytes (a control frame), 2 of them the code.
    const MAX_REASON: usize = 123;

    fn cut(reason: &str) -> String {
        CloseReason::new(CloseCode::GoingAway, reason.to_owned())
            .truncated()
            .reason
            .as_str()
            .to_owned()
    }

    #[test]
    fn a_reason_of_at_most_123_bytes_is_kept_whole() {
        for reason in [String::new(), "bye".to_owned(), "a".repeat(MAX_REASON)] {
            assert_eq!(cut(&reason), reason);
        }
    }

    #[test]
    fn a_reason_of_124_bytes_is_cut_to_123_and_keeps_its_code() {
        let reason = "a".repeat(MAX_REASON + 1);
        let cut = CloseReason::new(CloseCode::Application(4000), reason.clone()).truncated();
        assert_eq!(cut.reason.as_str(), &reason[..MAX_REASON]);
        assert_eq!(cut.code, CloseCode::Application(4000));
    }

    #[test]
    fn a_character_across_byte_123_is_dropped_whole() {
        let a = |n: usize| "a".repeat(n);
        // Ends exactly at the limit: kept.
        assert_eq!(cut(&format!("{}é", a(121))), format!("{}é", a(121)));
        // Two, three and four bytes with the last one, two or three past the limit.
        assert_eq!(cut(&format!("{}é", a(122))), a(122));
        assert_eq!(cut(&format!("{}€", a(121))), a(121));
        assert_eq!(cut(&format!("{}🦀", a(120))), a(120));
        // Nothing but two-byte characters: 61 of them (122 bytes) fit.
        assert_eq!(cut(&"é".repeat(100)), "é".repeat(61));
    }
}
