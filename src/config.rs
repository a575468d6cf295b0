//! Install-time configuration: limits, keep-alive, fragmentation and the converter.

use std::time::Duration;

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::converter::{Converter, NoConverter};
use crate::negotiation::Negotiation;
use crate::tls::TlsSettings;

/// The default [`Config::max_frame_size`]: 16 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16 << 20;
/// The default [`Config::max_message_size`]: 64 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 << 20;
/// The default [`Config::read_buffer_size`]: 128 KiB, tungstenite's own.
pub const DEFAULT_READ_BUFFER_SIZE: usize = 128 << 10;

/// Everything a client or server fixes once, when it is set up: what Ktor's
/// `install(WebSockets) { ... }` block holds.
///
/// Every setting has a safe default; incoming sizes are always bounded.
///
/// | setting | default |
/// |---|---|
/// | [`max_frame_size`](Config::max_frame_size) | 16 MiB |
/// | [`max_message_size`](Config::max_message_size) | 64 MiB |
/// | [`ping_interval`](Config::ping_interval) | off |
/// | [`timeout`](Config::timeout) | off |
/// | [`fragment_size`](Config::fragment_size) | off (every message in one frame) |
/// | [`read_buffer_size`](Config::read_buffer_size) | 128 KiB |
/// | [`subprotocols`](Config::subprotocols) | none |
/// | [`converter`](Config::converter) | none ([`NoConverter`]) |
/// | [`negotiate`](Config::negotiate) | off |
/// | `tls_client` (feature `tls`) | webpki-roots, certificates verified |
/// | `tls_server` (feature `tls`) | off |
///
/// ```
/// use std::time::Duration;
/// use typed_ws::{Config, JsonConverter};
///
/// let config = Config::new()
///     .converter(JsonConverter)
///     .ping_interval(Duration::from_secs(20))
///     .timeout(Duration::from_secs(60))
///     .max_message_size(1 << 20);
/// ```
#[derive(Debug, Clone)]
pub struct Config<C = NoConverter> {
    pub(crate) converter: C,
    pub(crate) max_frame_size: usize,
    pub(crate) max_message_size: usize,
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) fragment_size: Option<usize>,
    pub(crate) read_buffer_size: usize,
    pub(crate) subprotocols: Vec<String>,
    pub(crate) negotiation: Option<Negotiation<C>>,
    pub(crate) tls: TlsSettings,
}

impl Default for Config<NoConverter> {
    fn default() -> Self {
        Config {
            converter: NoConverter,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            ping_interval: None,
            timeout: None,
            fragment_size: None,
            read_buffer_size: DEFAULT_READ_BUFFER_SIZE,
            subprotocols: Vec::new(),
            negotiation: None,
            tls: TlsSettings::default(),
        }
    }
}

impl Config<NoConverter> {
    /// The defaults listed on [`Config`].
    pub fn new() -> Self {
        Self::default()
    }
}

impl<C> Config<C> {
    /// The converter that `send_serialized` and `receive_deserialized` use. Any
    /// [`Converter`](crate::Converter): a codec type chosen in code, or an
    /// [`AnyConverter`](crate::AnyConverter) chosen by name at run time. Replaces a
    /// [negotiation](Config::negotiate).
    pub fn converter<C2>(self, converter: C2) -> Config<C2> {
        Config {
            converter,
            max_frame_size: self.max_frame_size,
            max_message_size: self.max_message_size,
            ping_interval: self.ping_interval,
            timeout: self.timeout,
            fragment_size: self.fragment_size,
            read_buffer_size: self.read_buffer_size,
            subprotocols: self.subprotocols,
            negotiation: None,
            tls: self.tls,
        }
    }

    /// Chooses the converter per session, through the subprotocol handshake: see
    /// [`Negotiation`]. The negotiated subprotocols come before [`Config::subprotocols`].
    pub fn negotiate<N: Converter>(self, negotiation: Negotiation<N>) -> Config<N> {
        let mut config = self.converter(negotiation.first().clone());
        config.negotiation = Some(negotiation);
        config
    }

    /// The largest incoming frame payload accepted; a larger one closes the session with
    /// 1009 and gives the caller [`Error::TooBig`](crate::Error::TooBig). Default 16 MiB.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// The largest incoming message accepted, after reassembling its fragments; a larger one
    /// closes the session with 1009 and gives the caller
    /// [`Error::TooBig`](crate::Error::TooBig). Default 64 MiB.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Send a ping this often, whether or not the caller is receiving. Default off;
    /// `Duration::ZERO` turns it off.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = (!interval.is_zero()).then_some(interval);
        self
    }

    /// Close the session with 1011 when no frame at all (data, ping, pong or close) has
    /// arrived from the peer for this long; the caller then gets
    /// [`Error::Timeout`](crate::Error::Timeout). With a ping interval set, a live peer
    /// always answers within it, so this detects a dead peer; without one it is an idle
    /// timeout. Also bounds the opening handshake. Default off; `Duration::ZERO` turns it
    /// off.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = (!timeout.is_zero()).then_some(timeout);
        self
    }

    /// Send data messages longer than this many bytes as a first frame and continuation
    /// frames of at most this size. Default off (one frame per message); `0` turns it off.
    pub fn fragment_size(mut self, bytes: usize) -> Self {
        self.fragment_size = (bytes != 0).then_some(bytes);
        self
    }

    /// How much a session asks the socket for per read. tungstenite zero-fills this much before
    /// every read, so for small messages a smaller buffer is faster and lighter (measured on a
    /// 100-byte round trip: 4 KiB takes a tenth of the instructions of 128 KiB); for messages of
    /// a megabyte and more a larger one is faster (1 MiB messages: 7% slower at 16 KiB, 1.8x
    /// slower at 4 KiB). It is also most of a session's idle memory. Default 128 KiB; values
    /// below 1 KiB are raised to 1 KiB.
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.read_buffer_size = bytes.max(1 << 10);
        self
    }

    /// Subprotocols (`Sec-WebSocket-Protocol`), in order of preference. A client offers them
    /// (before any that [`ClientRequest::subprotocol`](crate::ClientRequest::subprotocol)
    /// adds); a server picks the first of them that the client offered, and refuses with HTTP
    /// 400 a client that offered only others. A server without any ignores offers, as RFC 6455
    /// allows. Default none.
    pub fn subprotocols<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.subprotocols = names.into_iter().map(Into::into).collect();
        self
    }

    /// The TLS client settings for `wss://` URLs: trusted roots, client certificates. Without
    /// this, `wss://` trusts the Mozilla roots of `webpki-roots`; certificates are always
    /// verified.
    #[cfg(feature = "tls")]
    pub fn tls_client(mut self, config: std::sync::Arc<rustls::ClientConfig>) -> Self {
        self.tls.client = Some(config);
        self
    }

    /// Makes [`Server::serve`](crate::Server::serve) and
    /// [`Server::serve_with`](crate::Server::serve_with) run a TLS handshake with this
    /// configuration before the WebSocket one. (For [`Server::accept`](crate::Server::accept),
    /// pass it a `tokio_rustls` stream.)
    #[cfg(feature = "tls")]
    pub fn tls_server(mut self, config: std::sync::Arc<rustls::ServerConfig>) -> Self {
        self.tls.server = Some(config);
        self
    }

    /// The installed converter.
    pub fn converter_ref(&self) -> &C {
        &self.converter
    }

    pub(crate) fn websocket_config(&self) -> WebSocketConfig {
        // A frame over the message limit can never be accepted; capping the frame limit too
        // refuses it from its header instead of after reading its payload.
        WebSocketConfig::default()
            .max_frame_size(Some(self.max_frame_size.min(self.max_message_size)))
            .max_message_size(Some(self.max_message_size))
            .read_buffer_size(self.read_buffer_size)
    }
}

impl<C: Converter> Config<C> {
    /// What a client offers: the negotiated converters, then the plain subprotocols.
    pub(crate) fn offered_subprotocols(&self) -> Vec<String> {
        let negotiated = self.negotiation.iter().flat_map(Negotiation::subprotocols);
        negotiated
            .chain(self.subprotocols.iter().cloned())
            .collect()
    }

    /// The server's answer to what a client offered: the subprotocol to agree on and the
    /// session's converter, or why the client is refused.
    pub(crate) fn accept_offer(&self, offered: &[&str]) -> Result<(Option<String>, C), String> {
        if let Some(negotiation) = &self.negotiation {
            return negotiation.choose(offered);
        }
        if self.subprotocols.is_empty() || offered.is_empty() {
            // RFC 6455 lets a server ignore subprotocols it was not told about.
            return Ok((None, self.converter.clone()));
        }
        match self
            .subprotocols
            .iter()
            .find(|name| offered.contains(&name.as_str()))
        {
            Some(chosen) => Ok((Some(chosen.clone()), self.converter.clone())),
            None => Err(format!(
                "no common subprotocol: the client offered {}, this server speaks {}",
                offered.join(", "),
                self.subprotocols.join(", ")
            )),
        }
    }

    /// The client's converter for the subprotocol the server agreed on.
    pub(crate) fn converter_for(&self, agreed: Option<&str>) -> Result<C, String> {
        match &self.negotiation {
            None => Ok(self.converter.clone()),
            Some(negotiation) => agreed
                .and_then(|name| negotiation.find(name))
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "the server agreed on {agreed:?}, none of the offered converters ({})",
                        negotiation.subprotocols().join(", ")
                    )
                }),
        }
    }
}
