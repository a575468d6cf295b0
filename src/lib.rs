//! Typed messages over WebSocket sessions.
//!
//! typed-ws puts a typed-message layer on [tokio-tungstenite] sessions: you exchange plain
//! Rust structs with [`Session::send_serialized`] and [`Session::receive_deserialized`], and
//! the wire codec — JSON in text frames, CBOR or MessagePack in binary frames — is a
//! [`Converter`] chosen once, in the [`Config`] a [`Client`] or [`Server`] is set up with. The
//! raw frames stay at hand ([`Session::send`], [`Session::receive`]), sessions split into
//! halves for different tasks, and every failure is an [`Error`] you can match on, with the
//! close code that fits it.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use tokio::net::TcpListener;
//! use typed_ws::{Client, Config, CborConverter, Server};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct Move { x: u8, y: u8 }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), typed_ws::Error> {
//! let config = Config::new().converter(CborConverter);
//!
//! // A server that answers every move with the mirrored one.
//! let listener = TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let server = Server::new(config.clone());
//! tokio::spawn(async move {
//!     server
//!         .serve(listener, |mut session| async move {
//!             while let Ok(m) = session.receive_deserialized::<Move>().await {
//!                 let _ = session.send_serialized(&Move { x: m.y, y: m.x }).await;
//!             }
//!         })
//!         .await
//! });
//!
//! let client = Client::new(config);
//! let reply: Move = client
//!     .web_socket(format!("ws://{addr}/game"), async |mut session| {
//!         session.send_serialized(&Move { x: 1, y: 2 }).await?;
//!         session.receive_deserialized().await
//!     })
//!     .await?;
//! assert_eq!(reply, Move { x: 2, y: 1 });
//! # Ok(()) }
//! ```
//!
//! The [`guide`] covers the wire format, limits and defaults, errors and close codes,
//! compression, reconnecting, shutdown and the rest, chapter by chapter.
//!
//! [tokio-tungstenite]: https://docs.rs/tokio-tungstenite
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod budget;
mod client;
mod config;
mod converter;
mod error;
mod frame;
mod handshake;
mod listener;
mod reconnect;
mod screen;
mod serve;
mod server;
mod session;
mod shutdown;
mod subprotocol;
mod tls;
mod trace;
mod wire;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
#[cfg(any(feature = "nats", feature = "redis"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "nats", feature = "redis"))))]
pub mod bus;
pub mod guide;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod http_upgrade;
pub mod topics;

pub use bytes::Bytes;
pub use client::{Client, ClientRequest, Endpoint};
pub use config::{
    Config, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_UNFINISHED_BYTES, DEFAULT_PING_INTERVAL,
    DEFAULT_READ_BUFFER_SIZE, DEFAULT_SEND_TIMEOUT, DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_TIMEOUT,
};
// Whole, so that the codecs the `codecs!` table in converter/ declares come out with it.
pub use converter::*;
pub use error::{BoxError, Error, Report};
pub use frame::{CloseCode, CloseReason, Frame, FrameKind, Utf8Bytes};
pub use reconnect::{
    Backoff, DEFAULT_BUSY_DELAY, DEFAULT_INITIAL_DELAY, DEFAULT_MAX_DELAY, DEFAULT_RESET_AFTER,
    Reconnect, ReconnectState, Reconnecting, Stop,
};
/// The rustls crate behind the `tls` feature, for `Config::tls_client` and
/// `Config::tls_server`.
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use rustls;
pub use serve::Serve;
pub use server::{Failure, Server, Stage};
pub use session::{Deserialized, RecvHalf, SendHalf, Session};
pub use subprotocol::Negotiation;
/// tokio-rustls, for TLS on streams given to [`Server::accept`].
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use tokio_rustls;
/// The tokio-tungstenite crate this library builds on, for [`Session::from_stream`].
pub use tokio_tungstenite;
/// The `http` crate, as tungstenite uses it: requests seen by [`Server::accept_with`] and
/// the statuses it refuses with.
pub use tokio_tungstenite::tungstenite::http;
#[cfg(feature = "compression")]
#[cfg_attr(docsrs, doc(cfg(feature = "compression")))]
pub use wire::deflate::{Compression, PerMessageDeflate};

/// What typed-ws code needs in scope besides the types it names: the [`Converter`] and
/// [`BorrowingConverter`] traits, to call a converter's own methods (encode once, send to
/// many; decode borrowing from a frame), and futures' [`StreamExt`](prelude::StreamExt) and
/// [`SinkExt`](prelude::SinkExt), for [`Session::incoming_deserialized`] and for sessions and
/// their halves as a `Stream` and a `Sink` of frames.
///
/// ```
/// use typed_ws::prelude::*;
///
/// # async fn first(
/// #     session: &mut typed_ws::Session<typed_ws::AnyConverter>,
/// # ) -> Option<Result<String, typed_ws::Error>> {
/// session.incoming_deserialized::<String>().next().await
/// # }
/// ```
pub mod prelude {
    pub use crate::converter::{BorrowingConverter, Converter};
    pub use futures_util::{SinkExt, StreamExt};
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
