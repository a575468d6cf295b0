//! The server's first look at an opening request: one that is HTTP but not a WebSocket
//! upgrade gets an HTTP error answer, as RFC 6455 (4.2.1, 4.2.2) requires, instead of a
//! dropped connection. tungstenite checks the same request again during the handshake.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::handshake::machine::TryParse;
use tokio_tungstenite::tungstenite::handshake::server::{Request, create_response};
use tokio_tungstenite::tungstenite::http::StatusCode;

use crate::error::Error;

/// The largest request head read, as in tungstenite.
const MAX_HEAD: usize = 64 << 10;

/// Reads of the request head; a client trickling it in smaller pieces is left to tungstenite,
/// which refuses it as an attack.
const MAX_READS: usize = 64;

/// Reads the request head and checks that it asks for a WebSocket upgrade. A request that is
/// HTTP but does not gets an HTTP error answer (405 for another method, 426 with the version
/// we speak for another WebSocket version, 400 otherwise) and is an error with that status; anything else (garbage, an early end) is left for
/// tungstenite to report. Gives back the stream with what was read put back in front.
pub(crate) async fn screen<S>(mut io: S) -> Result<Rewind<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut head = Vec::new();
    let mut chunk = [0; 4096];
    for _ in 0..MAX_READS {
        let n = match io.read(&mut chunk).await {
            Ok(0) => break,
            Err(e) => return Err(Error::Io(e)),
            Ok(n) => n,
        };
        head.extend_from_slice(&chunk[..n]);
        let refused = match Request::try_parse(&head) {
            Ok(None) if head.len() < MAX_HEAD => continue,
            Ok(Some((_, request))) => create_response(&request).err(),
            // Not HTTP at all: tungstenite says so precisely.
            Err(WsError::Protocol(ProtocolError::HttparseError(_))) => None,
            // HTTP, but no GET of HTTP/1.1.
            Err(e @ WsError::Protocol(_)) => Some(e),
            // Too big: tungstenite says so too.
            _ => None,
        };
        if let Some(e) = refused {
            return Err(refuse(&mut io, &e).await);
        }
        break;
    }
    Ok(Rewind { head, read: 0, io })
}

/// Answers a request that is no valid upgrade with an HTTP error, and closes.
async fn refuse<S: AsyncWrite + Unpin>(io: &mut S, e: &WsError) -> Error {
    let status = match e {
        WsError::Protocol(ProtocolError::WrongHttpMethod) => StatusCode::METHOD_NOT_ALLOWED,
        WsError::Protocol(ProtocolError::MissingSecWebSocketVersionHeader) => {
            StatusCode::UPGRADE_REQUIRED
        }
        _ => StatusCode::BAD_REQUEST,
    };
    let message = match e {
        WsError::Protocol(p) => format!("not a WebSocket upgrade: {p}"),
        other => format!("not a WebSocket upgrade: {other}"),
    };
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
    Error::Handshake {
        status: Some(status.as_u16()),
        message: format!("refused the client with {status}: {message}"),
    }
}

/// A stream whose first bytes were already read, put back in front of the rest.
pub(crate) struct Rewind<S> {
    head: Vec<u8>,
    read: usize,
    io: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let rest = &this.head[this.read..];
        if rest.is_empty() {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        let n = rest.len().min(buf.remaining());
        buf.put_slice(&rest[..n]);
        this.read += n;
        if this.read == this.head.len() {
            // The head is only needed once; free it for the session's lifetime.
            this.head = Vec::new();
            this.read = 0;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
