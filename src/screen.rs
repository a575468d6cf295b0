//! The server's first look at an opening request: one that is HTTP but not a WebSocket
//! upgrade gets an HTTP error answer, as RFC 6455 (4.2.1, 4.2.2) requires, instead of a
//! dropped connection. tungstenite checks the same request again during the handshake.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::handshake::machine::TryParse;
use tokio_tungstenite::tungstenite::handshake::server::{
    Request, Response, create_response_with_body,
};
use tokio_tungstenite::tungstenite::http::{self, StatusCode};

use crate::error::{Error, Truncated};
use crate::wire::Elastic;

/// The largest request head read, as in tungstenite; a longer one is answered with 431.
pub(crate) const MAX_HEAD: usize = 64 << 10;

/// The longest request line; a longer one is answered with 414, as nginx does past its 8 KiB
/// header buffers.
pub(crate) const MAX_REQUEST_LINE: usize = 8 << 10;

/// Reads the request head and checks that it asks for a WebSocket upgrade. A request that is
/// HTTP but does not gets an HTTP error answer (405 for another method, 426 with the version
/// we speak for another WebSocket version, 414 for a request line over 8 KiB, 431 for a head
/// over 64 KiB or with too many header fields, 400 otherwise) and is an error with that
/// status; anything else (garbage, an early end) is left for tungstenite to report. Gives back
/// the stream with what was read put back in front. How long a client may take is bounded by
/// the caller (the handshake deadline).
pub(crate) async fn screen<S>(mut io: S) -> Result<Elastic<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut head = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        let n = match io.read(&mut chunk).await {
            Ok(0) => break,
            Err(e) => return Err(Error::Io(e)),
            Ok(n) => n,
        };
        // Only the new bytes (and the three before them) can complete the head, so a client
        // trickling it byte by byte costs linear time, not a parse per byte.
        let seen = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..n]);
        let refused = match screen_head(&head, seen) {
            Screened::Incomplete => continue,
            Screened::Refused(status, why) => Some((status, why)),
            Screened::Complete => None,
        };
        if let Some((status, why)) = refused {
            return Err(refuse(&mut io, status, &why).await);
        }
        break;
    }
    Ok(Elastic::with_head(io, head))
}

/// What [`screen_head`] makes of the bytes read so far.
#[derive(Debug, PartialEq)]
enum Screened {
    /// More is needed.
    Incomplete,
    /// A complete head, or something tungstenite will refuse itself.
    Complete,
    /// An HTTP error answer is due.
    Refused(StatusCode, String),
}

/// Looks at the request head read so far; `seen` bytes of it were looked at before.
fn screen_head(head: &[u8], seen: usize) -> Screened {
    let line_ends = head.iter().position(|&b| b == b'\n');
    if line_ends.unwrap_or(head.len()) > MAX_REQUEST_LINE {
        let why = format!("the request line is over {MAX_REQUEST_LINE} bytes");
        return Screened::Refused(StatusCode::URI_TOO_LONG, why);
    }
    let new = &head[seen..];
    let ended = new.windows(4).any(|w| w == b"\r\n\r\n") || new.windows(2).any(|w| w == b"\n\n");
    // Parsed when complete, and once at the start so that garbage is told at once.
    let parsed = if ended || seen == 0 {
        Request::try_parse(head)
    } else {
        Ok(None)
    };
    match parsed {
        Ok(None) if head.len() < MAX_HEAD => Screened::Incomplete,
        Ok(None) => {
            let why = format!("the request head is over {MAX_HEAD} bytes");
            Screened::Refused(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, why)
        }
        Ok(Some((_, request))) => match check(&request) {
            Ok(_) => Screened::Complete,
            Err((status, why)) => Screened::Refused(status, why),
        },
        Err(WsError::Capacity(CapacityError::TooManyHeaders)) => {
            let why = "too many header fields".to_owned();
            Screened::Refused(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, why)
        }
        // Not HTTP at all: tungstenite says so precisely.
        Err(WsError::Protocol(ProtocolError::HttparseError(_))) => Screened::Complete,
        // HTTP, but no GET of HTTP/1.1.
        Err(e @ WsError::Protocol(_)) => {
            let (status, why) = refusal(&e);
            Screened::Refused(status, why)
        }
        _ => Screened::Complete,
    }
}

/// Checks a parsed request (by us, or by hyper) for a WebSocket upgrade: the 101 answer to
/// it, or the status and reason to refuse it with.
pub(crate) fn check<B>(request: &http::Request<B>) -> Result<Response, (StatusCode, String)> {
    create_response_with_body(request, || ()).map_err(|e| refusal(&e))
}

/// The status and reason for a request that is HTTP but no valid upgrade.
fn refusal(e: &WsError) -> (StatusCode, String) {
    let status = match e {
        WsError::Protocol(ProtocolError::WrongHttpMethod) => StatusCode::METHOD_NOT_ALLOWED,
        WsError::Protocol(ProtocolError::MissingSecWebSocketVersionHeader) => {
            StatusCode::UPGRADE_REQUIRED
        }
        _ => StatusCode::BAD_REQUEST,
    };
    // tungstenite's text may quote the request.
    let why = match e {
        WsError::Protocol(p) => format!("not a WebSocket upgrade: {}", Truncated(&p)),
        other => format!("not a WebSocket upgrade: {}", Truncated(&other)),
    };
    (status, why)
}

/// Answers a request with an HTTP error, and closes.
async fn refuse<S: AsyncWrite + Unpin>(io: &mut S, status: StatusCode, message: &str) -> Error {
    let version = if status == StatusCode::UPGRADE_REQUIRED {
        "Sec-WebSocket-Version: 13\r\n"
    } else {
        ""
    };
    let answer = format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\n{version}\r\n{message}\n",
        message.len() + 1,
    );
    // The client may be gone already; the refusal is the result either way.
    let _ = io.write_all(answer.as_bytes()).await;
    let _ = io.shutdown().await;
    Error::handshake(
        Some(status),
        format!("refused the client with {status}: {message}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPGRADE: &str = "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    fn status(screened: Screened) -> Option<u16> {
        match screened {
            Screened::Refused(status, _) => Some(status.as_u16()),
            _ => None,
        }
    }

    #[test]
    fn a_complete_upgrade_passes_and_a_partial_one_waits() {
        assert_eq!(screen_head(UPGRADE.as_bytes(), 0), Screened::Complete);
        let half = &UPGRADE.as_bytes()[..40];
        assert_eq!(screen_head(half, 0), Screened::Incomplete);
        // Later reads without the blank line are not parsed again.
        assert_eq!(screen_head(half, 37), Screened::Incomplete);
    }

    #[test]
    fn a_head_is_parsed_once_a_later_read_ends_it_and_not_before() {
        // Ended by a blank line, CRLF or bare LF, in a read after the first.
        assert_eq!(screen_head(UPGRADE.as_bytes(), 40), Screened::Complete);
        let bare = UPGRADE.replace("\r\n", "\n");
        assert_eq!(screen_head(bare.as_bytes(), 40), Screened::Complete);
        // Until then it is not parsed again: too many header fields are told only at the end.
        let many: String = (0..200).map(|i| format!("X-{i}: a\r\n")).collect();
        let crowded = format!("GET /chat HTTP/1.1\r\n{many}");
        assert_eq!(screen_head(crowded.as_bytes(), 20), Screened::Incomplete);
        let ended = format!("{crowded}\r\n");
        assert_eq!(status(screen_head(ended.as_bytes(), 20)), Some(431));
    }

    #[test]
    fn the_request_line_limit_is_8_kib() {
        let line = |len: usize| format!("GET /{} HTTP/1.1", "a".repeat(len - 14)).into_bytes();
        assert_eq!(line(MAX_REQUEST_LINE).len(), MAX_REQUEST_LINE);
        assert_eq!(
            screen_head(&line(MAX_REQUEST_LINE), 1),
            Screened::Incomplete
        );
        assert_eq!(
            status(screen_head(&line(MAX_REQUEST_LINE + 1), 1)),
            Some(414)
        );
    }

    #[test]
    fn the_head_limit_is_64_kib() {
        let head = |len: usize| {
            let mut head = b"GET / HTTP/1.1\r\nX: ".to_vec();
            head.resize(len, b'x');
            head
        };
        assert_eq!(screen_head(&head(MAX_HEAD - 1), 10), Screened::Incomplete);
        assert_eq!(status(screen_head(&head(MAX_HEAD), 10)), Some(431));
    }

    #[test]
    fn requests_that_are_no_upgrade_get_their_status_and_garbage_is_left_to_tungstenite() {
        let post = UPGRADE.replacen("GET", "POST", 1);
        assert_eq!(status(screen_head(post.as_bytes(), 0)), Some(405));
        let old = UPGRADE.replace("Version: 13", "Version: 8");
        assert_eq!(status(screen_head(old.as_bytes(), 0)), Some(426));
        let many: String = (0..200).map(|i| format!("X-{i}: a\r\n")).collect();
        let crowded = UPGRADE.replacen("\r\n", &format!("\r\n{many}"), 1);
        assert_eq!(status(screen_head(crowded.as_bytes(), 0)), Some(431));
        assert_eq!(
            screen_head(&[0x16, 0x03, 0x01, 0x00], 0),
            Screened::Complete
        );
    }
}
