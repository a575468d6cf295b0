//! Spans and events for the `tracing` feature, behind helpers that compile to nothing without
//! it, so that call sites stay one line and free of `#[cfg]`.
//!
//! Levels: handshake outcomes, session ends, timeouts and session failures are `debug` (a
//! server on the internet sees many of each); per-message events are `trace`. Anything a peer
//! sent is quoted through [`Chain`](crate::error::Chain), cut to
//! [`MAX_QUOTED`](crate::error::MAX_QUOTED) bytes per part.

use std::future::Future;
use std::net::SocketAddr;

use crate::error::Error;

/// Whether events are recorded at all, for conditions that only events need.
pub(crate) const ENABLED: bool = cfg!(feature = "tracing");

/// The span a session's events are recorded in.
#[cfg(feature = "tracing")]
pub(crate) type Span = tracing::Span;

/// Stands in for a span without the `tracing` feature: zero-sized, never looked at.
#[cfg(not(feature = "tracing"))]
#[derive(Clone, Debug)]
pub(crate) struct Span;

/// An event at `$level` (`trace` or `debug`) in `$span`, with `name = value` fields; wrap
/// values that print with `Display` in [`display`], with `Debug` in [`debug`]. Without the
/// feature the arguments are still type-checked, in code that never runs.
#[cfg(feature = "tracing")]
macro_rules! event {
    ($level:ident, $span:expr, $message:literal $(, $field:ident = $value:expr)* $(,)?) => {
        tracing::$level!(parent: $span, $($field = $value,)* $message)
    };
}

#[cfg(not(feature = "tracing"))]
macro_rules! event {
    ($level:ident, $span:expr, $message:literal $(, $field:ident = $value:expr)* $(,)?) => {
        if false {
            let _ = ($span, $(&$value,)*);
        }
    };
}

pub(crate) use event;

/// A field value that prints with `Display`.
#[cfg(feature = "tracing")]
pub(crate) fn display<T: std::fmt::Display>(value: T) -> tracing::field::DisplayValue<T> {
    tracing::field::display(value)
}

#[cfg(not(feature = "tracing"))]
pub(crate) fn display<T: std::fmt::Display>(value: T) -> T {
    value
}

/// A field value that prints with `Debug`.
#[cfg(feature = "tracing")]
pub(crate) fn debug<T: std::fmt::Debug>(value: T) -> tracing::field::DebugValue<T> {
    tracing::field::debug(value)
}

#[cfg(not(feature = "tracing"))]
pub(crate) fn debug<T: std::fmt::Debug>(value: T) -> T {
    value
}

/// The span of a server handshake; `peer` when the server knows it (`serve`, not `accept`).
/// The request path is recorded once it is read (see [`record_path`]).
#[cfg(feature = "tracing")]
pub(crate) fn server_handshake(peer: Option<SocketAddr>) -> Span {
    tracing::debug_span!(
        "handshake",
        side = "server",
        peer = peer.map(tracing::field::display),
        path = tracing::field::Empty,
    )
}

#[cfg(not(feature = "tracing"))]
pub(crate) fn server_handshake(_peer: Option<SocketAddr>) -> Span {
    Span
}

/// The span of a client handshake to `url`: its host and path, never its query, which may
/// carry tokens.
#[cfg(feature = "tracing")]
pub(crate) fn client_handshake(url: &str) -> Span {
    let uri = url.parse::<crate::http::Uri>().ok();
    tracing::debug_span!(
        "handshake",
        side = "client",
        host = uri.as_ref().and_then(|uri| uri.host()),
        path = uri.as_ref().map(|uri| uri.path()),
    )
}

#[cfg(not(feature = "tracing"))]
pub(crate) fn client_handshake(_url: &str) -> Span {
    Span
}

/// Records the request path on the current (server handshake) span.
#[cfg(feature = "tracing")]
pub(crate) fn record_path(path: &str) {
    tracing::Span::current().record("path", path);
}

#[cfg(not(feature = "tracing"))]
pub(crate) fn record_path(_path: &str) {}

/// The span of one session, a child of the span current when it starts (the handshake's,
/// which has the peer), with an id that tells sessions apart. The converter is recorded by
/// [`handshake`] once known.
#[cfg(feature = "tracing")]
pub(crate) fn session(path: Option<&str>, subprotocol: Option<&str>) -> Span {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    tracing::debug_span!(
        "session",
        id = NEXT_ID.fetch_add(1, Ordering::Relaxed),
        path,
        subprotocol,
        converter = tracing::field::Empty,
    )
}

#[cfg(not(feature = "tracing"))]
pub(crate) fn session(_path: Option<&str>, _subprotocol: Option<&str>) -> Span {
    Span
}

/// Runs `future` in `span`.
#[cfg(feature = "tracing")]
pub(crate) fn instrument<F: Future>(future: F, span: Span) -> impl Future<Output = F::Output> {
    tracing::Instrument::instrument(future, span)
}

#[cfg(not(feature = "tracing"))]
pub(crate) fn instrument<F: Future>(future: F, _span: Span) -> F {
    future
}

/// What a handshake's span records of the session it opened.
#[cfg(feature = "tracing")]
pub(crate) trait Opened {
    /// The subprotocol agreed on.
    fn subprotocol(&self) -> Option<&str>;
    /// The name of the session's converter.
    fn converter_name(&self) -> &'static str;
    /// The session's own span.
    fn span(&self) -> &Span;
}

/// Runs a handshake in `span` and records how it went: the subprotocol and converter, or the
/// error's chain.
#[cfg(feature = "tracing")]
pub(crate) async fn handshake<T, F>(span: Span, future: F) -> Result<T, Error>
where
    T: Opened,
    F: Future<Output = Result<T, Error>>,
{
    let outcome = instrument(future, span.clone()).await;
    match &outcome {
        Ok(session) => {
            let converter = session.converter_name();
            session.span().record("converter", converter);
            tracing::debug!(
                parent: &span,
                subprotocol = session.subprotocol(),
                converter,
                "handshake succeeded"
            );
        }
        Err(error) => tracing::debug!(
            parent: &span,
            error = %crate::error::Chain(error),
            "handshake failed"
        ),
    }
    outcome
}

#[cfg(not(feature = "tracing"))]
pub(crate) fn handshake<T, F>(_span: Span, future: F) -> F
where
    F: Future<Output = Result<T, Error>>,
{
    future
}
