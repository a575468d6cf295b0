//! Choosing the converter per session through `Sec-WebSocket-Protocol`, the way WAMP
//! (`wamp.2.json`, `wamp.2.msgpack`, `wamp.2.cbor`) and Centrifugo do it.

use crate::converter::{AnyConverter, Converter};
use crate::error::Error;

/// Converters to negotiate, in order of preference, installed with
/// [`Config::negotiate`](crate::Config::negotiate).
///
/// A client offers one subprotocol per converter, `{prefix}.{name}` (or the bare name without
/// a prefix), in this order; a server picks, by its own order, the first converter the client
/// offered. Both sessions then use it, and [`Session::converter`](crate::Session::converter)
/// and [`Session::subprotocol`](crate::Session::subprotocol) tell which it is. Without a
/// common converter the server refuses the handshake with HTTP 400 and says why; a client
/// that offers none gets the server's [fallback](Negotiation::fallback), or the same refusal.
///
/// ```
/// use typed_ws::{AnyConverter, CborConverter, Config, JsonConverter, MsgPackConverter, Negotiation};
///
/// // Exactly WAMP's names: wamp.2.msgpack, wamp.2.cbor, wamp.2.json.
/// let wamp = Negotiation::prefer(AnyConverter::from(MsgPackConverter::new()))
///     .then(CborConverter.into())
///     .then(JsonConverter.into())
///     .prefix("wamp.2");
/// assert_eq!(wamp.subprotocols(), ["wamp.2.msgpack", "wamp.2.cbor", "wamp.2.json"]);
///
/// // From a command line or a config file.
/// let config = Config::new().negotiate(Negotiation::from_names("json,cbor")?);
/// # Ok::<(), typed_ws::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Negotiation<C = AnyConverter> {
    converters: Vec<C>,
    prefix: Option<String>,
    fallback: Option<C>,
}

impl<C: Converter> Negotiation<C> {
    /// Starts with the most preferred converter.
    pub fn prefer(converter: C) -> Self {
        Negotiation {
            converters: vec![converter],
            prefix: None,
            fallback: None,
        }
    }

    /// Adds the next converter in order of preference.
    pub fn then(mut self, converter: C) -> Self {
        self.converters.push(converter);
        self
    }

    /// Names subprotocols `{prefix}.{name}` instead of the bare converter names.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// What a server uses with a client that offers no subprotocol at all (browsers and most
    /// clients, unless told). Without a fallback such clients are refused.
    pub fn fallback(mut self, converter: C) -> Self {
        self.fallback = Some(converter);
        self
    }

    /// The subprotocol names, in order of preference.
    pub fn subprotocols(&self) -> Vec<String> {
        self.converters
            .iter()
            .map(|converter| self.subprotocol(converter))
            .collect()
    }

    pub(crate) fn first(&self) -> &C {
        &self.converters[0]
    }

    fn subprotocol(&self, converter: &C) -> String {
        match &self.prefix {
            Some(prefix) => format!("{prefix}.{}", converter.name()),
            None => converter.name().to_owned(),
        }
    }

    /// The converter a subprotocol names.
    pub(crate) fn find(&self, subprotocol: &str) -> Option<&C> {
        self.converters
            .iter()
            .find(|converter| self.subprotocol(converter) == subprotocol)
    }

    /// The server's choice among what a client offered: the subprotocol to answer with and
    /// the session's converter, or why the client is refused.
    pub(crate) fn choose(&self, offered: &[&str]) -> Result<(Option<String>, C), String> {
        for converter in &self.converters {
            let name = self.subprotocol(converter);
            if offered.contains(&name.as_str()) {
                return Ok((Some(name), converter.clone()));
            }
        }
        let ours = self.subprotocols();
        if offered.is_empty() {
            if let Some(fallback) = &self.fallback {
                return Ok((None, fallback.clone()));
            }
            return Err(format!(
                "the client offered no converter; this server speaks {}",
                ours.join(", ")
            ));
        }
        Err(format!(
            "no common converter: the client offered {}, this server speaks {}",
            offered.join(", "),
            ours.join(", ")
        ))
    }
}

impl Negotiation<AnyConverter> {
    /// Converters by name, in order of preference: `"msgpack,cbor,json"` (spaces ignored).
    /// An unknown or empty name is [`Error::UnknownConverter`].
    pub fn from_names(names: &str) -> Result<Self, Error> {
        // `split` yields at least one item, so an empty list is the unknown name "".
        let mut converters = names
            .split(',')
            .map(|name| AnyConverter::from_name(name.trim()));
        let mut negotiation =
            Negotiation::prefer(converters.next().unwrap_or(AnyConverter::from_name(""))?);
        for converter in converters {
            negotiation = negotiation.then(converter?);
        }
        Ok(negotiation)
    }
}
