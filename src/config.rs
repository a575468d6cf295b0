//! Install-time configuration: limits, deadlines, keep-alive, fragmentation and the converter.

use std::sync::Arc;
use std::time::Duration;

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::budget::Budget;
use crate::converter::{Converter, NoConverter};
use crate::subprotocol::{Agreement, Negotiation};
use crate::tls::TlsSettings;
#[cfg(feature = "compression")]
use crate::wire::deflate::Compression;

/// The default [`Config::max_frame_size`]: 16 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16 << 20;
/// The default [`Config::max_message_size`]: 64 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 << 20;
/// The default [`Config::read_buffer_size`]: 4 KiB.
pub const DEFAULT_READ_BUFFER_SIZE: usize = 4 << 10;
/// The default [`Config::ping_interval`]: 20 s, as Python `websockets`.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(20);
/// The default [`Config::timeout`]: 40 s, two ping intervals, so that a peer that vanished
/// is released within a minute.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(40);
/// The default [`Config::handshake_timeout`]: 10 s, as Python `websockets`.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The default [`Config::send_timeout`]: 30 s.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// The default [`Config::shutdown_timeout`]: 10 s, within the 30 s that service managers
/// (systemd, Kubernetes) give before they kill.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// The default [`Config::max_connections`]: 10,000.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// The default [`Config::max_unfinished_bytes`]: 64 MiB, one message of the default
/// [`Config::max_message_size`].
pub const DEFAULT_MAX_UNFINISHED_BYTES: usize = 64 << 20;

/// Everything a client or server fixes once, when it is set up: what Ktor's
/// `install(WebSockets) { ... }` block holds.
///
/// Every setting has a safe default: incoming sizes are bounded, every wait has a deadline,
/// and a peer that vanished is released, so a server built with `Config::new()` can face the
/// open internet. Each limit can be changed, and the durations turned off with
/// `Duration::ZERO`.
///
/// | setting | default |
/// |---|---|
/// | [`max_frame_size`](Config::max_frame_size) | 16 MiB |
/// | [`max_message_size`](Config::max_message_size) | 64 MiB |
/// | [`ping_interval`](Config::ping_interval) | 20 s |
/// | [`timeout`](Config::timeout) | 40 s without a frame from the peer |
/// | [`handshake_timeout`](Config::handshake_timeout) | 10 s for the opening handshake |
/// | [`send_timeout`](Config::send_timeout) | 30 s for a write the peer does not take |
/// | [`shutdown_timeout`](Config::shutdown_timeout) | 10 s for the close handshakes of a graceful shutdown |
/// | [`max_connections`](Config::max_connections) | 10,000 sessions and handshakes at once, per `Server::serve` or `axum::serve` |
/// | [`max_unfinished_bytes`](Config::max_unfinished_bytes) | 64 MiB held in unfinished messages, all sessions together |
/// | [`fragment_size`](Config::fragment_size) | off (every message in one frame) |
/// | [`read_buffer_size`](Config::read_buffer_size) | 4 KiB, growing to 64 KiB reads for bulk transfers |
/// | [`subprotocols`](Config::subprotocols) | none |
/// | [`converter`](Config::converter) | none ([`NoConverter`]) |
/// | [`negotiate`](Config::negotiate) | off |
/// | `compression` (feature `compression`) | off (permessage-deflate neither offered nor accepted) |
/// | `tls_client` (feature `tls`) | webpki-roots, certificates verified |
/// | `tls_server` (feature `tls`) | off |
///
/// ```
/// use std::time::Duration;
/// use typed_ws::{Config, JsonConverter};
///
/// let config = Config::new()
///     .converter(JsonConverter)
///     .ping_interval(Duration::from_secs(10))
///     .timeout(Duration::from_secs(25))
///     .max_message_size(1 << 20);
/// ```
#[derive(Debug, Clone)]
pub struct Config<C = NoConverter> {
    pub(crate) converter: C,
    pub(crate) negotiation: Option<Negotiation<C>>,
    pub(crate) settings: Arc<Settings>,
}

/// The settings that do not depend on the converter: one struct, shared by every session of
/// a client or server.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) max_frame_size: usize,
    pub(crate) max_message_size: usize,
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) handshake_timeout: Option<Duration>,
    pub(crate) send_timeout: Option<Duration>,
    pub(crate) shutdown_timeout: Option<Duration>,
    pub(crate) max_connections: Option<usize>,
    /// Shared by every session of this config and of the configs cloned from it.
    pub(crate) unfinished: Arc<Budget>,
    pub(crate) fragment_size: Option<usize>,
    pub(crate) read_buffer_size: usize,
    pub(crate) subprotocols: Vec<String>,
    #[cfg(feature = "compression")]
    pub(crate) compression: Option<Compression>,
    // Empty and unread without the `tls` feature; kept so that the settings have one shape.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(crate) tls: TlsSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            ping_interval: Some(DEFAULT_PING_INTERVAL),
            timeout: Some(DEFAULT_TIMEOUT),
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
            send_timeout: Some(DEFAULT_SEND_TIMEOUT),
            shutdown_timeout: Some(DEFAULT_SHUTDOWN_TIMEOUT),
            max_connections: Some(DEFAULT_MAX_CONNECTIONS),
            unfinished: Budget::new(DEFAULT_MAX_UNFINISHED_BYTES),
            fragment_size: None,
            read_buffer_size: DEFAULT_READ_BUFFER_SIZE,
            subprotocols: Vec::new(),
            #[cfg(feature = "compression")]
            compression: None,
            tls: TlsSettings::default(),
        }
    }
}

impl Settings {
    pub(crate) fn websocket_config(&self) -> WebSocketConfig {
        // A frame over the message limit can never be accepted; capping the frame limit too
        // refuses it from its header instead of after reading its payload.
        WebSocketConfig::default()
            .max_frame_size(Some(self.frame_limit()))
            .max_message_size(Some(self.max_message_size))
            .read_buffer_size(self.read_buffer_size)
    }

    /// The largest frame tungstenite takes: never over the message limit.
    pub(crate) fn frame_limit(&self) -> usize {
        self.max_frame_size.min(self.max_message_size)
    }

    /// Whether a session needs its watchdog task: for pings or for one of its deadlines.
    pub(crate) fn needs_watchdog(&self) -> bool {
        self.ping_interval.is_some() || self.timeout.is_some() || self.send_timeout.is_some()
    }
}

impl Default for Config<NoConverter> {
    fn default() -> Self {
        Config {
            converter: NoConverter,
            negotiation: None,
            settings: Arc::default(),
        }
    }
}

impl Config<NoConverter> {
    /// The defaults listed on [`Config`].
    pub fn new() -> Self {
        Self::default()
    }
}

/// A duration setting: zero turns it off.
fn nonzero(duration: Duration) -> Option<Duration> {
    (!duration.is_zero()).then_some(duration)
}

impl<C> Config<C> {
    /// The converter that `send_serialized` and `receive_deserialized` use. Any
    /// [`Converter`](crate::Converter): a codec type chosen in code, or an
    /// [`AnyConverter`](crate::AnyConverter) chosen by name at run time. Replaces a
    /// [negotiation](Config::negotiate).
    pub fn converter<C2>(self, converter: C2) -> Config<C2> {
        Config {
            converter,
            negotiation: None,
            settings: self.settings,
        }
    }

    /// Chooses the converter per session, through the subprotocol handshake: see
    /// [`Negotiation`]. The negotiated subprotocols come before [`Config::subprotocols`].
    pub fn negotiate<N: Converter>(self, negotiation: Negotiation<N>) -> Config<N> {
        let mut config = self.converter(negotiation.first().clone());
        config.negotiation = Some(negotiation);
        config
    }

    fn set(mut self, change: impl FnOnce(&mut Settings)) -> Self {
        change(Arc::make_mut(&mut self.settings));
        self
    }

    /// The largest incoming frame payload accepted; a larger one closes the session with
    /// 1009 and gives the caller [`Error::TooBig`](crate::Error::TooBig). Default 16 MiB.
    pub fn max_frame_size(self, bytes: usize) -> Self {
        self.set(|s| s.max_frame_size = bytes)
    }

    /// The largest incoming message accepted, after reassembling its fragments; a larger one
    /// closes the session with 1009 and gives the caller
    /// [`Error::TooBig`](crate::Error::TooBig). Default 64 MiB.
    pub fn max_message_size(self, bytes: usize) -> Self {
        self.set(|s| s.max_message_size = bytes)
    }

    /// Send a ping this often, whether or not the caller is receiving. Default 20 s;
    /// `Duration::ZERO` turns it off.
    pub fn ping_interval(self, interval: Duration) -> Self {
        self.set(|s| s.ping_interval = nonzero(interval))
    }

    /// Close the session with 1011 when no frame at all (data, ping, pong or close) has
    /// arrived from the peer for this long; the caller then gets
    /// [`Error::Timeout`](crate::Error::Timeout). With a ping interval set, a live peer
    /// always answers within it, so this detects a dead peer; without one it is an idle
    /// timeout. Default 40 s (with the 20 s ping interval, a vanished peer is released within
    /// 40 s); `Duration::ZERO` turns it off.
    pub fn timeout(self, timeout: Duration) -> Self {
        self.set(|s| s.timeout = nonzero(timeout))
    }

    /// The deadline for the opening handshake, TLS included: a client that has not completed
    /// it by then is dropped (the server's side), a server that has not answered fails the
    /// connect with [`Error::HandshakeTimeout`](crate::Error::HandshakeTimeout) (the client's
    /// side). Default 10 s; `Duration::ZERO` turns it off.
    pub fn handshake_timeout(self, timeout: Duration) -> Self {
        self.set(|s| s.handshake_timeout = nonzero(timeout))
    }

    /// The deadline for writing to a peer that does not read: a send, feed or flush (or an
    /// automatic pong) that cannot write for this long ends the session with
    /// [`Error::Timeout`](crate::Error::Timeout); a 1011 close frame is attempted and the
    /// connection dropped, releasing what the session held. Default 30 s; `Duration::ZERO`
    /// turns it off.
    pub fn send_timeout(self, timeout: Duration) -> Self {
        self.set(|s| s.send_timeout = nonzero(timeout))
    }

    /// How long a graceful shutdown of [`Server::serve`](crate::Server::serve) or
    /// `typed_ws::axum::serve` (see [`Serve::with_graceful_shutdown`](crate::Serve)) waits
    /// for its sessions' close handshakes and handlers, and for the HTTP requests under way,
    /// before it drops what is left and returns. Default 10 s; `Duration::ZERO` turns the
    /// wait off: sessions are sent their close frame and dropped at once.
    pub fn shutdown_timeout(self, timeout: Duration) -> Self {
        self.set(|s| s.shutdown_timeout = nonzero(timeout))
    }

    /// The most connections [`Server::serve`](crate::Server::serve),
    /// [`Server::serve_with`](crate::Server::serve_with) and `typed_ws::axum::serve` handle at
    /// once, handshakes included.
    /// Further connections wait in the kernel's accept queue until one ends. Default 10,000;
    /// `0` means no limit.
    pub fn max_connections(self, connections: usize) -> Self {
        self.set(|s| s.max_connections = (connections != 0).then_some(connections))
    }

    /// The most bytes that the sessions of this config may hold, all together, in messages
    /// that have not arrived whole: fragments waiting for the rest of their message, and
    /// what compressed ones inflated to. A peer can park a message's first fragment and never
    /// send the rest; this bounds what a crowd of them costs. A session whose next bytes
    /// would go past it is closed with 1013 (try again later) and its caller gets
    /// [`Error::Overloaded`](crate::Error::Overloaded); the sessions holding the budget
    /// carry on, and it is given back as their messages complete or they end.
    ///
    /// The budget is shared by every session of this config, every server and client set up
    /// with it or with a config cloned from it (after this call). A client's sessions count
    /// only what compressed messages inflated to: the frames a server sends right behind its
    /// `101` are read with it, before fragments could be followed. Default 64 MiB, one message
    /// of the default [`Config::max_message_size`]; `0` means no limit.
    pub fn max_unfinished_bytes(self, bytes: usize) -> Self {
        let limit = if bytes == 0 { usize::MAX } else { bytes };
        self.set(|s| s.unfinished = Budget::new(limit))
    }

    /// Send data messages longer than this many bytes as a first frame and continuation
    /// frames of at most this size. Default off (one frame per message); `0` turns it off.
    pub fn fragment_size(self, bytes: usize) -> Self {
        self.set(|s| s.fragment_size = (bytes != 0).then_some(bytes))
    }

    /// The size of tungstenite's read buffer, which it zero-fills before every read: most of
    /// an idle session's memory, and most of the cost of receiving a small message when it is
    /// large. Sessions that typed-ws connects or accepts read the socket straight into it while
    /// messages are small, and up to 64 KiB at a time, through a buffer that is freed once the
    /// burst is over, while the peer sends in bulk; so a small one costs large messages little.
    /// Default 4 KiB; values below 1 KiB are raised to 1 KiB.
    pub fn read_buffer_size(self, bytes: usize) -> Self {
        self.set(|s| s.read_buffer_size = bytes.max(1 << 10))
    }

    /// Subprotocols (`Sec-WebSocket-Protocol`), in order of preference. A client offers them
    /// (before any that [`ClientRequest::subprotocol`](crate::ClientRequest::subprotocol)
    /// adds); a server picks the first of them that the client offered, and refuses with HTTP
    /// 400 a client that offered only others. A server without any ignores offers, as RFC 6455
    /// allows. Default none.
    pub fn subprotocols<I, S>(self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names = names.into_iter().map(Into::into).collect();
        self.set(|s| s.subprotocols = names)
    }

    /// Compresses data messages with permessage-deflate (RFC 7692) when the peer agrees: a
    /// client offers it, a server accepts a client's offer. [`Session::compression`] tells
    /// whether a session uses it. The size limits apply to messages as inflated, checked
    /// while inflating. Costs memory per session while messages flow (see [`Compression`]).
    /// Default off.
    ///
    /// [`Session::compression`]: crate::Session::compression
    #[cfg(feature = "compression")]
    #[cfg_attr(docsrs, doc(cfg(feature = "compression")))]
    pub fn compression(self, compression: Compression) -> Self {
        self.set(|s| s.compression = Some(compression))
    }

    /// The TLS client settings for `wss://` URLs: trusted roots, client certificates. Without
    /// this, `wss://` trusts the Mozilla roots of `webpki-roots`; certificates are always
    /// verified.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_client(self, config: Arc<rustls::ClientConfig>) -> Self {
        self.set(|s| s.tls.client = Some(config))
    }

    /// Makes [`Server::serve`](crate::Server::serve) and
    /// [`Server::serve_with`](crate::Server::serve_with) run a TLS handshake with this
    /// configuration before the WebSocket one. (For [`Server::accept`](crate::Server::accept),
    /// pass it a `tokio_rustls` stream.)
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_server(self, config: Arc<rustls::ServerConfig>) -> Self {
        self.set(|s| s.tls.server = Some(config))
    }

    /// The installed converter.
    pub fn converter_ref(&self) -> &C {
        &self.converter
    }
}

impl<C: Converter> Config<C> {
    /// What this config's handshakes agree on; see [`Agreement`].
    pub(crate) fn agreement(&self) -> Agreement<'_, C> {
        Agreement {
            negotiation: self.negotiation.as_ref(),
            converter: &self.converter,
            subprotocols: &self.settings.subprotocols,
        }
    }
}
