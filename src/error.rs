//! The one error type of the crate, and the close code that fits each error.

use std::time::Duration;

use crate::frame::{CloseCode, CloseReason, Frame};
use crate::http::StatusCode;
use tokio_tungstenite::tungstenite::Error as WsError;

mod report;
#[cfg(test)]
mod tests;

pub use report::Report;
pub(crate) use report::{Chain, Truncated};

/// A boxed error from a codec or from user code, as carried by [`Error::Encode`] and
/// [`Error::Decode`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in a typed-ws session.
///
/// Variants are distinct so callers branch on meaning, not on messages. [`Error::is_fatal`]
/// tells the errors after which the session goes on from those that ended it. Errors that a
/// peer caused and that leave the session usable ([`UnexpectedFrame`](Error::UnexpectedFrame),
/// [`Decode`](Error::Decode)) give the frame back, so nothing received is lost; whether to
/// close the session is the caller's choice, and [`Error::close_code`] says which code fits.
///
/// | variant | session afterwards | close code that fits |
/// |---|---|---|
/// | `NoConverter` | usable | — |
/// | `UnknownConverter` | (no session) | — |
/// | `UnexpectedFrame` | usable | 1003 `Unsupported` |
/// | `Decode` | usable | 1007 `InvalidPayload` |
/// | `Encode` | usable | 1011 `InternalError` |
/// | `Unsendable` | usable | 1011 `InternalError` |
/// | `NotConnected` | usable: the reconnecting client goes on, nothing was sent | — |
/// | `TooBig` | closed, 1009 sent | 1009 `TooBig` |
/// | `InvalidUtf8` | closed, 1007 sent | 1007 `InvalidPayload` |
/// | `InvalidCompressed` | closed, 1007 sent | 1007 `InvalidPayload` |
/// | `Overloaded` | closed, 1013 sent | 1013 `TryAgainLater` |
/// | `Protocol` | closed, 1002 sent | 1002 `ProtocolError` |
/// | `Timeout` | closed, 1011 sent | 1011 `InternalError` |
/// | `HandshakeTimeout` | (no session) | — |
/// | `Closed` | closed | — |
/// | `Io` | connection lost (1006) | — |
/// | `Handshake`, `InvalidUrl` | (no session) | — |
/// | `Bus` | (no session) | — |
///
/// Each cause prints once. Errors that wrap another library's error (I/O, tungstenite,
/// rustls, a URL parser) keep it as their [`source`](std::error::Error::source), typed, and do
/// not repeat its text: print [`Error::report`] to see the whole chain on one line.
/// [`Decode`](Error::Decode) and [`Encode`](Error::Encode) instead quote the codec's message
/// in their own text, cut to 200 bytes because a peer chooses it, and keep the codec's error
/// in their `cause` field.
///
/// ```
/// use std::error::Error as _;
/// use typed_ws::Error;
///
/// let error = Error::from(std::io::Error::other("boom"));
/// assert_eq!(error.to_string(), "I/O error on the connection");
/// assert_eq!(error.source().unwrap().to_string(), "boom");
/// assert_eq!(error.report().to_string(), "I/O error on the connection: boom");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A typed send or receive on a session set up without a converter. A typed receive
    /// gives back the frame it took.
    #[error("no converter installed: set one with Config::converter")]
    #[non_exhaustive]
    NoConverter {
        /// The frame a typed receive took, untouched; `None` for a send.
        frame: Option<Frame>,
    },

    /// A converter name that is not known (or whose cargo feature is off).
    #[error("unknown converter {name:?}: the known converters are {}", .known.join(", "))]
    #[non_exhaustive]
    UnknownConverter {
        /// The name asked for.
        name: String,
        /// The names that would have worked.
        known: Vec<&'static str>,
    },

    /// A data frame the converter does not read: a binary frame for a text converter, a
    /// text frame for a binary one, or a control frame where a message was expected.
    #[error("the {converter} converter does not read {} frames", .frame.kind())]
    #[non_exhaustive]
    UnexpectedFrame {
        /// The converter's name.
        converter: &'static str,
        /// The frame, untouched.
        frame: Frame,
    },

    /// A frame of the right type whose payload does not decode into the requested type.
    #[error(
        "could not decode a {}-byte {} frame with the {converter} converter: {}",
        .frame.payload().len(),
        .frame.kind(),
        Truncated(.cause)
    )]
    #[non_exhaustive]
    Decode {
        /// The converter's name.
        converter: &'static str,
        /// The frame, untouched.
        frame: Frame,
        /// The codec's error (`serde_json::Error`, ...), whose text the message quotes.
        cause: BoxError,
    },

    /// A value the converter could not encode (a map with non-string keys in JSON, a
    /// `Serialize` impl that fails, ...). Nothing was sent.
    #[error(
        "could not encode the value with the {converter} converter: {}",
        Truncated(.cause)
    )]
    #[non_exhaustive]
    Encode {
        /// The converter's name.
        converter: &'static str,
        /// The codec's error, whose text the message quotes.
        cause: BoxError,
    },

    /// A frame we were asked to send that the protocol forbids: a control frame over 125
    /// bytes, a close code that may not be sent (1005, 1006, ...). Nothing was sent.
    #[error("the frame cannot be sent: {0}")]
    Unsendable(String),

    /// A typed send on a [reconnecting client](crate::Reconnecting) while it is between
    /// connections, with its send queue full (or no queue): nothing was sent, and the client
    /// is still reconnecting, so the same send may succeed later.
    #[error(
        "not connected: the client is reconnecting and its send queue is full ({queued} messages)"
    )]
    #[non_exhaustive]
    NotConnected {
        /// The messages waiting in the queue.
        queued: usize,
    },

    /// The peer sent a frame or message larger than the configured limit.
    #[error("message too big: {size} bytes exceeds the limit of {limit} bytes")]
    #[non_exhaustive]
    TooBig {
        /// The size the peer announced or reached.
        size: usize,
        /// The configured limit.
        limit: usize,
    },

    /// The peer sent a text message that is not valid UTF-8.
    #[error("the peer sent a text message that is not valid UTF-8")]
    InvalidUtf8,

    /// The peer sent a compressed message (permessage-deflate) whose payload is not DEFLATE
    /// data; the text says what the decompressor found. Never returned without the `compression`
    /// feature, which nothing is inflated without.
    #[error("the peer sent a compressed message that does not inflate: {0}")]
    InvalidCompressed(String),

    /// The peer's message in progress would have taken the config's budget for unfinished
    /// messages past its limit ([`Config::max_unfinished_bytes`](crate::Config::max_unfinished_bytes)),
    /// which all sessions share: too many of them hold messages that have not arrived whole.
    #[error("the server is overloaded: unfinished messages would hold more than {limit} bytes")]
    #[non_exhaustive]
    Overloaded {
        /// The budget's limit.
        limit: usize,
    },

    /// The peer broke the WebSocket protocol (RFC 6455). The source says how: tungstenite's
    /// most precise error (a [`ProtocolError`](tokio_tungstenite::tungstenite::error::ProtocolError)
    /// in most cases).
    #[error("WebSocket protocol violation")]
    Protocol(#[source] BoxError),

    /// The session's watchdog ended it: nothing arrived from the peer for the configured
    /// [`timeout`](crate::Config::timeout), or the peer did not take what we wrote for the
    /// [`send_timeout`](crate::Config::send_timeout). The close reason
    /// ([`Session::close_reason`](crate::Session::close_reason)) says which.
    #[error("the session timed out after {0:?}: the peer went silent or stopped reading")]
    Timeout(Duration),

    /// The opening handshake did not complete within the configured
    /// [`handshake_timeout`](crate::Config::handshake_timeout).
    #[error("the opening handshake did not complete within {0:?}")]
    HandshakeTimeout(Duration),

    /// The session is closed; the reason is the Close frame that ended it, or 1006 when the
    /// connection dropped without one.
    #[error("the session is closed: {0}")]
    Closed(CloseReason),

    /// An I/O error on the connection, its source. The connection is gone (close reason
    /// 1006).
    #[error("I/O error on the connection")]
    Io(#[from] std::io::Error),

    /// The opening handshake failed: refused with an HTTP status, or broken off. A TLS
    /// failure keeps rustls's error as the source (an unknown issuer, a name mismatch), a
    /// malformed exchange tungstenite's.
    #[error("WebSocket handshake failed: {message}")]
    #[non_exhaustive]
    Handshake {
        /// The HTTP status of the refusal, if there was one.
        status: Option<StatusCode>,
        /// What happened, in words; the source's text is not repeated here.
        message: String,
        /// The underlying error, if another library reported it.
        #[source]
        source: Option<BoxError>,
    },

    /// A [bus](crate::bus) could not be set up: its broker could not be reached, its URL or a
    /// namespace is not one it takes. Publications lost later, while running, are counted in
    /// [`BusStats`](crate::bus::BusStats) instead.
    #[error("bus: {message}")]
    #[non_exhaustive]
    Bus {
        /// What happened, in words; the source's text is not repeated here.
        message: String,
        /// The broker client's error, if there was one.
        #[source]
        source: Option<BoxError>,
    },

    /// A URL that is not a `ws://` or `wss://` URL with a host; the source says what is wrong.
    #[error("invalid WebSocket URL {url:?}")]
    #[non_exhaustive]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// The close code that fits this error when closing the session because of it.
    ///
    /// `None` for errors that are local (no converter, bad URL) or that already ended the
    /// connection without a close handshake.
    ///
    /// ```
    /// use typed_ws::{CloseCode, Error};
    /// assert_eq!(Error::InvalidUtf8.close_code(), Some(CloseCode::InvalidPayload));
    /// ```
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            Error::UnexpectedFrame { .. } => Some(CloseCode::Unsupported),
            Error::Decode { .. } | Error::InvalidUtf8 | Error::InvalidCompressed(_) => {
                Some(CloseCode::InvalidPayload)
            }
            Error::Encode { .. } | Error::Unsendable(_) | Error::Timeout(_) => {
                Some(CloseCode::InternalError)
            }
            Error::TooBig { .. } => Some(CloseCode::TooBig),
            Error::Overloaded { .. } => Some(CloseCode::TryAgainLater),
            Error::Protocol(_) => Some(CloseCode::ProtocolError),
            Error::NoConverter { .. }
            | Error::NotConnected { .. }
            | Error::UnknownConverter { .. }
            | Error::Closed(_)
            | Error::Io(_)
            | Error::HandshakeTimeout(_)
            | Error::Handshake { .. }
            | Error::Bus { .. }
            | Error::InvalidUrl { .. } => None,
        }
    }

    /// Whether the session is over: `false` for the errors after which it goes on
    /// ([`NoConverter`](Error::NoConverter), [`UnexpectedFrame`](Error::UnexpectedFrame),
    /// [`Decode`](Error::Decode), [`Encode`](Error::Encode),
    /// [`Unsendable`](Error::Unsendable), and a reconnecting client's
    /// [`NotConnected`](Error::NotConnected)), `true` for those that ended it and for those of a
    /// connection or handshake that never made one. The table on [`Error`] says the same.
    ///
    /// ```no_run
    /// # async fn run(mut session: typed_ws::Session<typed_ws::JsonConverter>) -> Result<(), typed_ws::Error> {
    /// loop {
    ///     match session.receive_deserialized::<String>().await {
    ///         Ok(text) => println!("{text}"),
    ///         // A message that does not decode, or of the wrong frame type: skip it.
    ///         Err(e) if !e.is_fatal() => eprintln!("skipped: {}", e.report()),
    ///         Err(e) => return Err(e),
    ///     }
    /// }
    /// # }
    /// ```
    pub fn is_fatal(&self) -> bool {
        match self {
            Error::NoConverter { .. }
            | Error::UnexpectedFrame { .. }
            | Error::Decode { .. }
            | Error::Encode { .. }
            | Error::Unsendable(_)
            | Error::NotConnected { .. } => false,
            Error::UnknownConverter { .. }
            | Error::TooBig { .. }
            | Error::InvalidUtf8
            | Error::InvalidCompressed(_)
            | Error::Overloaded { .. }
            | Error::Protocol(_)
            | Error::Timeout(_)
            | Error::HandshakeTimeout(_)
            | Error::Closed(_)
            | Error::Io(_)
            | Error::Handshake { .. }
            | Error::Bus { .. }
            | Error::InvalidUrl { .. } => true,
        }
    }

    /// The error and each of its causes on one line, `error: cause: cause`; see [`Report`].
    ///
    /// ```
    /// use typed_ws::Error;
    ///
    /// let error = Error::from(std::io::Error::other("Connection refused"));
    /// assert_eq!(error.to_string(), "I/O error on the connection");
    /// assert_eq!(error.report().to_string(), "I/O error on the connection: Connection refused");
    /// ```
    pub fn report(&self) -> Report<'_> {
        Report::new(self)
    }

    #[cfg(any(feature = "nats", feature = "redis"))]
    pub(crate) fn bus(message: String) -> Error {
        Error::Bus {
            message,
            source: None,
        }
    }

    #[cfg(any(feature = "nats", feature = "redis"))]
    pub(crate) fn bus_from(message: &str, source: impl Into<BoxError>) -> Error {
        Error::Bus {
            message: message.to_owned(),
            source: Some(source.into()),
        }
    }

    /// The frame that caused the error, for [`UnexpectedFrame`](Error::UnexpectedFrame),
    /// [`Decode`](Error::Decode) and a typed receive's [`NoConverter`](Error::NoConverter).
    pub fn frame(&self) -> Option<&Frame> {
        match self {
            Error::UnexpectedFrame { frame, .. } | Error::Decode { frame, .. } => Some(frame),
            Error::NoConverter { frame } => frame.as_ref(),
            _ => None,
        }
    }

    /// Takes the frame out of the error; see [`Error::frame`].
    pub fn into_frame(self) -> Option<Frame> {
        match self {
            Error::UnexpectedFrame { frame, .. } | Error::Decode { frame, .. } => Some(frame),
            Error::NoConverter { frame } => frame,
            _ => None,
        }
    }

    /// The HTTP status of a refused handshake.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Handshake { status, .. } => *status,
            _ => None,
        }
    }

    /// True for [`Error::Timeout`] and [`Error::HandshakeTimeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout(_) | Error::HandshakeTimeout(_))
    }

    /// The close reason of a closed session.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        match self {
            Error::Closed(reason) => Some(reason),
            _ => None,
        }
    }

    /// Builds [`Error::Encode`]; for [`Converter`](crate::Converter) implementations.
    pub fn encode(converter: &'static str, cause: impl Into<BoxError>) -> Self {
        Error::Encode {
            converter,
            cause: cause.into(),
        }
    }

    /// Builds [`Error::Decode`]; for [`Converter`](crate::Converter) implementations. The
    /// frame is a cheap handle clone: the payload is shared, not copied.
    pub fn decode(converter: &'static str, frame: &Frame, cause: impl Into<BoxError>) -> Self {
        Error::Decode {
            converter,
            frame: frame.clone(),
            cause: cause.into(),
        }
    }

    /// Builds [`Error::Handshake`] without an underlying error.
    pub(crate) fn handshake(status: Option<StatusCode>, message: impl Into<String>) -> Self {
        Error::Handshake {
            status,
            message: message.into(),
            source: None,
        }
    }

    /// Builds [`Error::Protocol`] for what tungstenite refused.
    pub(crate) fn protocol(e: WsError) -> Self {
        Error::Protocol(tungstenite_cause(e))
    }
}

/// The error inside a tungstenite error, when it wraps one: tungstenite prints the inner
/// error's text in its own and also gives it as the source, so the chain would say it twice.
pub(crate) fn tungstenite_cause(e: WsError) -> BoxError {
    match e {
        WsError::Io(e) => e.into(),
        WsError::Tls(e) => e.into(),
        WsError::Capacity(e) => e.into(),
        WsError::Protocol(e) => e.into(),
        WsError::Url(e) => e.into(),
        WsError::HttpFormat(e) => e.into(),
        other => other.into(),
    }
}
