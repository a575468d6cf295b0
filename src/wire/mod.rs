//! Everything typed-ws knows of the WebSocket wire, below the session. tokio-tungstenite is
//! the protocol engine; these layers stand around it, and this module is where they are put
//! together, bottom to top:
//!
//! 1. the byte stream (TCP, or TLS over it: TLS always sits below everything here, so that
//!    the layers above see frames, not records);
//! 2. [`Elastic`]: reads that grow and shrink with the traffic, and, through
//!    [`Arrivals`], the count of messages that have arrived whole, which lets a send put off
//!    its flush while more requests wait;
//! 3. [`Inflating`](deflate::Inflating): compressed messages inflated into plain frames
//!    (permessage-deflate), so that tungstenite validates what it reads as it always does;
//! 4. tungstenite's `WebSocketStream`, reading and writing frames;
//! 5. the [`Session`](crate::Session), whose sends hand tungstenite raw frames
//!    ([`frames`]) when a message goes out compressed or in fragments.
//!
//! [`header`] reads and writes frame headers with tungstenite's own code, for every layer
//! that looks at them; [`start`] builds the stack, once, for the client, the server and hyper.

pub(crate) mod arrivals;
#[cfg(feature = "compression")]
pub(crate) mod deflate;
mod elastic;
pub(crate) mod frames;
pub(crate) mod header;

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;

pub(crate) use arrivals::Arrivals;
#[cfg(feature = "compression")]
pub(crate) use deflate::Alone;
pub(crate) use elastic::Elastic;

use crate::config::Settings;
use crate::handshake::Handshake;
use crate::session::Session;
use crate::shutdown::Watch;

/// The layers under tungstenite: [`Elastic`], then, with the `compression` feature,
/// [`Inflating`](deflate::Inflating).
#[cfg(feature = "compression")]
pub(crate) type Stack<S> = deflate::Inflating<Elastic<S>>;
/// The layers under tungstenite: [`Elastic`] alone without the `compression` feature.
#[cfg(not(feature = "compression"))]
pub(crate) type Stack<S> = Elastic<S>;

/// How sessions that compress each message on their own compress it; without the
/// `compression` feature no session compresses, so there is none: topics, which compress a
/// publication once for such sessions, need no feature of their own.
#[cfg(not(feature = "compression"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Alone {}

#[cfg(not(feature = "compression"))]
impl Alone {
    /// Never called: there is no `Alone` to call it on.
    pub(crate) fn compress(&self, _data: &[u8]) -> Option<bytes::Bytes> {
        match *self {}
    }
}

/// The layers under tungstenite on `io`, inflating nothing until a session is started.
pub(crate) fn stack<S>(io: Elastic<S>) -> Stack<S> {
    #[cfg(feature = "compression")]
    let io = deflate::Inflating::new(io);
    io
}

/// What bounds inflated messages: tungstenite's own limits, so that what it is handed it
/// takes.
#[cfg(feature = "compression")]
fn limits(settings: &Settings) -> deflate::Limits {
    let limits = deflate::Limits {
        frame: settings.frame_limit(),
        message: settings.max_message_size,
        unfinished: settings.unfinished.clone(),
    };
    let tungstenite = settings.websocket_config();
    debug_assert_eq!(tungstenite.max_frame_size, Some(limits.frame));
    debug_assert_eq!(tungstenite.max_message_size, Some(limits.message));
    limits
}

/// The [`Elastic`] at the bottom of a stack.
fn elastic<S>(stack: &Stack<S>) -> &Elastic<S> {
    #[cfg(feature = "compression")]
    let stack = stack.get_ref();
    stack
}

/// A connection whose opening handshake is done, as [`start`] takes it.
pub(crate) enum Opened<S> {
    /// The handshake went over the bare stream (typed-ws's client, hyper): `tail` is what
    /// was read past it, the peer's first frames.
    Raw {
        io: Elastic<S>,
        tail: Vec<u8>,
        role: Role,
    },
    /// tungstenite's server handshake, which read through the stack, inflating nothing yet.
    Accepted(Box<WebSocketStream<Stack<S>>>),
}

/// Builds the stack under a session on a connection whose handshake is done, and starts the
/// session: the one place where the layers are put together, for every way a session starts
/// but [`Session::from_stream`]. The session follows `shutdown`, that of the server that
/// accepted it, if any.
pub(crate) async fn start<S, C>(
    opened: Opened<S>,
    settings: Arc<Settings>,
    handshake: Handshake,
    converter: C,
    shutdown: Watch,
) -> Session<C>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    C: Clone,
{
    let (ws, role) = match opened {
        Opened::Raw { io, tail, role } => {
            #[cfg_attr(not(feature = "compression"), expect(unused_mut))]
            let mut io = stack(io);
            // Compressed, the frames read with the handshake must be inflated too: they go
            // through the inflater, not straight to tungstenite.
            #[cfg(feature = "compression")]
            let tail = match handshake.compression {
                Some(agreed) => {
                    io.activate(agreed, limits(&settings), &tail);
                    Vec::new()
                }
                None => tail,
            };
            let config = Some(settings.websocket_config());
            let ws = WebSocketStream::from_partially_read(io, tail, role, config).await;
            (ws, role)
        }
        #[cfg_attr(not(feature = "compression"), expect(unused_mut))]
        Opened::Accepted(mut ws) => {
            #[cfg(feature = "compression")]
            if let Some(agreed) = handshake.compression {
                ws.get_mut().activate(agreed, limits(&settings), &[]);
            }
            (*ws, Role::Server)
        }
    };
    let arrivals = elastic(ws.get_ref()).arrivals();
    // A server's stream is at a frame boundary once the request head is read (a client
    // sends nothing before the 101), so what follows can be followed frame by frame for the
    // budget of unfinished messages. A client's may hold frames read with the 101.
    if role == Role::Server {
        arrivals.hold_within(settings.unfinished.clone());
    }
    Session::start_watched(
        Box::new(ws),
        Some(arrivals),
        settings,
        handshake,
        converter,
        shutdown,
    )
}

/// A frame's bytes for the tests below the session: `first` byte (FIN, RSV1-3, opcode), the
/// length in its shortest form, a mask when `masked`, and `payload_len` bytes of payload.
#[cfg(test)]
pub(crate) fn test_frame(first: u8, payload_len: usize, masked: bool) -> Vec<u8> {
    let mut bytes = bytes::BytesMut::new();
    header::write(
        &mut bytes,
        first,
        masked.then_some([1, 2, 3, 4]),
        payload_len as u64,
    );
    bytes.extend(std::iter::repeat_n(0x5a, payload_len));
    bytes.to_vec()
}
