//! Which ends a reconnecting client tries again after: only those that a later attempt can
//! fix.

use std::error::Error as _;

use tokio_tungstenite::tungstenite::error::ProtocolError;

use crate::error::{BoxError, Chain, Error};
use crate::frame::CloseCode;

/// What to do after a connection ended or an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Retry {
    /// Stop: trying again would meet the same answer.
    Never,
    /// Try again after the backoff delay.
    Later,
    /// The server asked for time (1012, 1013): try again after a longer delay.
    MuchLater,
}

/// Classifies what ended a connection or an attempt.
///
/// | what | retry |
/// |---|---|
/// | I/O error (refused, reset, unreachable, DNS) | yes |
/// | `HandshakeTimeout`, `Timeout` (a frozen server) | yes |
/// | close 1001, 1006 (dropped), 1011, 1014 | yes |
/// | close 1012, 1013; our own `Overloaded` (1013) | yes, after the busy delay |
/// | HTTP 5xx | yes |
/// | a handshake the server broke off before answering | yes |
/// | HTTP 4xx, 3xx, 2xx; any other handshake failure (TLS, no common converter) | no |
/// | close 1000, 1005 (no code): the server ended the session on purpose | no |
/// | close 1002, 1003, 1007, 1008, 1009, 1010, others, 3000-4999 | no |
/// | `Protocol`, `TooBig`, `InvalidUtf8`, `InvalidCompressed` (we closed with 1002, 1009, 1007) | no |
/// | `InvalidUrl`, `UnknownConverter`, and the hook's own `Encode`, `Decode`, `UnexpectedFrame`, `NoConverter` | no |
pub(super) fn classify(error: &Error) -> Retry {
    match error {
        Error::Io(_) | Error::Timeout(_) | Error::HandshakeTimeout(_) => Retry::Later,
        Error::Overloaded { .. } => Retry::MuchLater,
        Error::Closed(reason) => match reason.code {
            CloseCode::GoingAway
            | CloseCode::Abnormal
            | CloseCode::InternalError
            | CloseCode::Other(1014) => Retry::Later,
            CloseCode::ServiceRestart | CloseCode::TryAgainLater => Retry::MuchLater,
            _ => Retry::Never,
        },
        Error::Handshake {
            status: Some(status),
            ..
        } if status.is_server_error() => Retry::Later,
        Error::Handshake {
            status: None,
            source: Some(source),
            ..
        } if broken_off(source) => Retry::Later,
        Error::Handshake { .. }
        | Error::InvalidUrl { .. }
        | Error::Bus { .. }
        | Error::Protocol(_)
        | Error::TooBig { .. }
        | Error::InvalidUtf8
        | Error::InvalidCompressed(_)
        | Error::UnknownConverter { .. }
        | Error::NoConverter { .. }
        | Error::UnexpectedFrame { .. }
        | Error::Decode { .. }
        | Error::Encode { .. }
        | Error::Unsendable(_)
        | Error::NotConnected { .. } => Retry::Never,
    }
}

/// Whether a handshake failed because the server closed the connection before answering: a
/// server starting or overloaded may take connections and drop them.
fn broken_off(source: &BoxError) -> bool {
    matches!(
        source.downcast_ref::<ProtocolError>(),
        Some(ProtocolError::HandshakeIncomplete)
    )
}

/// A copy of `error`, for each call made after the client stopped: errors are not `Clone`,
/// and every call after the stop reports it. The sources, which need not be `Clone` either,
/// are copied as their text.
pub(super) fn duplicate(error: &Error) -> Error {
    let text = |source: &BoxError| -> BoxError { Chain(source.as_ref()).to_string().into() };
    match error {
        Error::Closed(reason) => Error::Closed(reason.clone()),
        Error::Timeout(after) => Error::Timeout(*after),
        Error::HandshakeTimeout(after) => Error::HandshakeTimeout(*after),
        Error::Io(e) => {
            let cause = e.source().map(|c| format!(": {}", Chain(c)));
            let text = format!("{e}{}", cause.unwrap_or_default());
            Error::Io(std::io::Error::new(e.kind(), text))
        }
        Error::Handshake {
            status,
            message,
            source,
        } => Error::Handshake {
            status: *status,
            message: message.clone(),
            source: source.as_ref().map(text),
        },
        Error::InvalidUrl { url, source } => Error::InvalidUrl {
            url: url.clone(),
            source: text(source),
        },
        Error::Bus { message, source } => Error::Bus {
            message: message.clone(),
            source: source.as_ref().map(text),
        },
        Error::Protocol(source) => Error::Protocol(text(source)),
        Error::TooBig { size, limit } => Error::TooBig {
            size: *size,
            limit: *limit,
        },
        Error::InvalidUtf8 => Error::InvalidUtf8,
        Error::InvalidCompressed(why) => Error::InvalidCompressed(why.clone()),
        Error::Unsendable(why) => Error::Unsendable(why.clone()),
        Error::NotConnected { queued } => Error::NotConnected { queued: *queued },
        Error::Overloaded { limit } => Error::Overloaded { limit: *limit },
        Error::UnknownConverter { name, known } => Error::UnknownConverter {
            name: name.clone(),
            known: known.clone(),
        },
        Error::NoConverter { frame } => Error::NoConverter {
            frame: frame.clone(),
        },
        Error::UnexpectedFrame { converter, frame } => Error::UnexpectedFrame {
            converter,
            frame: frame.clone(),
        },
        Error::Decode {
            converter,
            frame,
            cause,
        } => Error::Decode {
            converter,
            frame: frame.clone(),
            cause: text(cause),
        },
        Error::Encode { converter, cause } => Error::Encode {
            converter,
            cause: text(cause),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;
    use std::time::Duration;

    use super::*;
    use crate::frame::{CloseReason, Frame};
    use crate::http::StatusCode;

    fn closed(code: u16) -> Error {
        Error::Closed(CloseReason::new(CloseCode::from(code), ""))
    }

    fn answered(status: u16) -> Error {
        let status = StatusCode::from_u16(status).expect("a status");
        Error::handshake(Some(status), format!("the server answered {status}"))
    }

    #[test]
    fn the_issue_s_transient_ends_are_retried_and_the_others_are_not() {
        for kind in [
            ErrorKind::ConnectionRefused,
            ErrorKind::ConnectionReset,
            ErrorKind::TimedOut,
            ErrorKind::Other,
        ] {
            assert_eq!(classify(&Error::Io(kind.into())), Retry::Later, "{kind:?}");
        }
        let second = Duration::from_secs(1);
        assert_eq!(classify(&Error::Timeout(second)), Retry::Later);
        assert_eq!(classify(&Error::HandshakeTimeout(second)), Retry::Later);
        for code in [1001, 1006, 1011, 1014] {
            assert_eq!(classify(&closed(code)), Retry::Later, "{code}");
        }
        for code in [1012, 1013] {
            assert_eq!(classify(&closed(code)), Retry::MuchLater, "{code}");
        }
        assert_eq!(classify(&Error::Overloaded { limit: 1 }), Retry::MuchLater);
        for code in [
            1000, 1002, 1003, 1005, 1007, 1008, 1009, 1010, 3000, 4000, 4999,
        ] {
            assert_eq!(classify(&closed(code)), Retry::Never, "{code}");
        }
        for status in [500, 502, 503, 504] {
            assert_eq!(classify(&answered(status)), Retry::Later, "{status}");
        }
        for status in [200, 301, 400, 401, 403, 404, 426, 429] {
            assert_eq!(classify(&answered(status)), Retry::Never, "{status}");
        }
        let no_converter = "the server agreed on \"xml\", none of the offered converters (json)";
        assert_eq!(
            classify(&Error::handshake(None, no_converter)),
            Retry::Never
        );
        let frame = Frame::Text("x".into());
        let decode = Error::decode("json", &frame, "expected a struct");
        assert_eq!(classify(&decode), Retry::Never);
        assert_eq!(classify(&Error::InvalidUtf8), Retry::Never);
    }

    #[test]
    fn a_handshake_broken_off_before_the_answer_is_retried() {
        let broken_off = Error::Handshake {
            status: None,
            message: "the handshake did not complete".to_owned(),
            source: Some(ProtocolError::HandshakeIncomplete.into()),
        };
        assert_eq!(classify(&broken_off), Retry::Later);
        let mismatch = Error::Handshake {
            status: None,
            message: "the handshake did not complete".to_owned(),
            source: Some(ProtocolError::SecWebSocketAcceptKeyMismatch.into()),
        };
        assert_eq!(classify(&mismatch), Retry::Never);
    }

    #[test]
    fn a_duplicate_keeps_the_variant_its_fields_and_the_text_of_its_chain() {
        let io = Error::Io(std::io::Error::new(ErrorKind::ConnectionRefused, "refused"));
        let refused = answered(400);
        let close = closed(1008);
        for error in [io, refused, close, Error::Timeout(Duration::from_secs(2))] {
            let copy = duplicate(&error);
            assert_eq!(Chain(&copy).to_string(), Chain(&error).to_string());
            assert_eq!(copy.status(), error.status());
            assert_eq!(copy.close_reason(), error.close_reason());
            assert_eq!(classify(&copy), classify(&error));
        }
        match duplicate(&Error::Io(ErrorKind::ConnectionRefused.into())) {
            Error::Io(e) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused),
            other => panic!("expected Io, got {other:?}"),
        }
    }
}
