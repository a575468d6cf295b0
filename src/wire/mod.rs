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
pub(crate) mod deflate;
mod elastic;
pub(crate) mod frames;
pub(crate) mod header;

pub(crate) use arrivals::Arrivals;
pub(crate) use elastic::Elastic;

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
