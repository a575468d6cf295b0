//! Choosing the converter per session through `Sec-WebSocket-Protocol`, the way WAMP
//! (`wamp.2.json`, `wamp.2.msgpack`, `wamp.2.cbor`) and Centrifugo do it.

use crate::converter::{AnyConverter, Converter};
use crate::error::{Error, Truncated};

/// Converters to negotiate, in order of preference, installed with
/// [`Config::negotiate`](crate::Config::negotiate).
///
/// A client offers one subprotocol per converter, `{prefix}.{name}` (or the bare name without
/// a prefix), in this order; a server picks, by its own order, the first converter the client
/// offered. Both sessions then use it, and [`Session::converter`](crate::Session::converter)
/// and [`Session::subprotocol`](crate::Session::subprotocol) tell which it is. Without a
/// common converter the server refuses the handshake with HTTP 400 and says why; a client
/// that offers none gets the server's [fallback](Negotiation::fallback), or the same refusal.
/// A client with a fallback also accepts a server that agrees on none of its converters.
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

    /// What a session uses when the handshake agrees on none of the converters.
    ///
    /// A server uses it with a client that offers no subprotocol at all (browsers and most
    /// clients, unless told); without a fallback such clients are refused.
    ///
    /// A client uses it with a server that answers with no subprotocol (a server that does
    /// not negotiate, such as one with a single converter) or with one of the plain
    /// [`Config::subprotocols`](crate::Config::subprotocols); without a fallback such a server
    /// fails the connection with [`Error::Handshake`]. So a client that offers one converter
    /// and falls back to it talks to negotiating servers and to plain ones alike.
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
        if offered.is_empty()
            && let Some(fallback) = &self.fallback
        {
            return Ok((None, fallback.clone()));
        }
        Err(refusal("converter", offered, &self.subprotocols()))
    }
}

/// Why a server refuses a client: `what` is "converter" or "subprotocol".
fn refusal(what: &str, offered: &[&str], ours: &[String]) -> String {
    if offered.is_empty() {
        return format!(
            "the client offered no {what}; this server speaks {}",
            ours.join(", ")
        );
    }
    // The offer is the client's text, and this goes back in the answer's body and to logs.
    format!(
        "no common {what}: the client offered {}, this server speaks {}",
        Truncated(&offered.join(", ")),
        ours.join(", ")
    )
}

/// What a config's handshakes agree on: its [`Negotiation`], if it has one, else its one
/// converter, with its plain subprotocols beside either. Both sides' decisions live here.
pub(crate) struct Agreement<'a, C> {
    pub(crate) negotiation: Option<&'a Negotiation<C>>,
    pub(crate) converter: &'a C,
    pub(crate) subprotocols: &'a [String],
}

impl<C: Converter> Agreement<'_, C> {
    /// What a client offers: the negotiated converters, then the plain subprotocols.
    pub(crate) fn offers(&self) -> Vec<String> {
        let negotiated = self
            .negotiation
            .into_iter()
            .flat_map(Negotiation::subprotocols);
        negotiated
            .chain(self.subprotocols.iter().cloned())
            .collect()
    }

    /// Whether a client accepts a server that agrees on none of its converters.
    pub(crate) fn has_fallback(&self) -> bool {
        self.negotiation.is_some_and(|n| n.fallback.is_some())
    }

    /// The server's answer to what a client offered: the subprotocol to agree on and the
    /// session's converter, or why the client is refused.
    pub(crate) fn answer(&self, offered: &[&str]) -> Result<(Option<String>, C), String> {
        if let Some(negotiation) = self.negotiation {
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
            None => Err(refusal("subprotocol", offered, self.subprotocols)),
        }
    }

    /// The client's converter for the subprotocol the server agreed on: the converter it
    /// names, else the fallback, else why the session cannot start.
    pub(crate) fn converter_for(&self, agreed: Option<&str>) -> Result<C, String> {
        let Some(negotiation) = self.negotiation else {
            return Ok(self.converter.clone());
        };
        agreed
            .and_then(|name| negotiation.find(name))
            .or(negotiation.fallback.as_ref())
            .cloned()
            .ok_or_else(|| {
                format!(
                    "the server agreed on {agreed:?}, none of the offered converters ({})",
                    negotiation.subprotocols().join(", ")
                )
            })
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

#[cfg(all(test, feature = "json", feature = "cbor", feature = "msgpack"))]
mod tests {
    use super::*;
    use crate::converter::{CborConverter, JsonConverter, MsgPackConverter};

    /// WAMP's three subprotocols, MessagePack preferred.
    fn wamp() -> Negotiation {
        Negotiation::prefer(AnyConverter::from(MsgPackConverter::new()))
            .then(CborConverter.into())
            .then(JsonConverter.into())
            .prefix("wamp.2")
    }

    /// The subprotocol answered and the chosen converter's name, or the refusal.
    fn choice(
        negotiation: &Negotiation,
        offered: &[&str],
    ) -> Result<(Option<String>, &'static str), String> {
        negotiation
            .choose(offered)
            .map(|(subprotocol, converter)| (subprotocol, converter.name()))
    }

    fn agreed(
        subprotocol: &str,
        converter: &'static str,
    ) -> Result<(Option<String>, &'static str), String> {
        Ok((Some(subprotocol.to_owned()), converter))
    }

    #[test]
    fn the_server_s_order_of_preference_wins_over_the_client_s() {
        assert_eq!(
            choice(&wamp(), &["wamp.2.json", "wamp.2.cbor"]),
            agreed("wamp.2.cbor", "cbor")
        );
        assert_eq!(
            choice(&wamp(), &["wamp.2.json", "wamp.2.cbor", "wamp.2.msgpack"]),
            agreed("wamp.2.msgpack", "msgpack")
        );
        // Names the server does not know are passed over.
        assert_eq!(
            choice(&wamp(), &["graphql-ws", "wamp.2.json"]),
            agreed("wamp.2.json", "json")
        );
    }

    #[test]
    fn the_prefix_is_part_of_every_name_and_matched_whole() {
        assert_eq!(
            wamp().subprotocols(),
            ["wamp.2.msgpack", "wamp.2.cbor", "wamp.2.json"]
        );
        for offered in ["json", "wamp.2json", "wamp.2.json.v2", "wamp.1.json"] {
            assert!(
                choice(&wamp(), &[offered]).is_err(),
                "{offered} must not match wamp.2.json"
            );
        }
        let bare =
            Negotiation::prefer(AnyConverter::from(JsonConverter)).then(CborConverter.into());
        assert_eq!(bare.subprotocols(), ["json", "cbor"]);
        assert_eq!(choice(&bare, &["cbor"]), agreed("cbor", "cbor"));
        assert!(choice(&bare, &["wamp.2.json"]).is_err());
    }

    #[test]
    fn a_client_that_offers_nothing_gets_the_fallback_and_no_subprotocol() {
        let negotiation = wamp().fallback(JsonConverter.into());
        assert_eq!(choice(&negotiation, &[]), Ok((None, "json")));
    }

    #[test]
    fn without_a_fallback_a_client_that_offers_nothing_is_refused() {
        assert_eq!(
            choice(&wamp(), &[]),
            Err(
                "the client offered no converter; this server speaks wamp.2.msgpack, \
                 wamp.2.cbor, wamp.2.json"
                    .to_owned()
            )
        );
    }

    /// The fallback is for clients that do not negotiate; one that asked for converters the
    /// server lacks would misread whatever the fallback sends.
    #[test]
    fn nothing_in_common_is_refused_fallback_or_not_naming_both_sides() {
        let refusal = Err(
            "no common converter: the client offered chat.v1, wamp.1.json, \
                           this server speaks wamp.2.msgpack, wamp.2.cbor, wamp.2.json"
                .to_owned(),
        );
        let offered = ["chat.v1", "wamp.1.json"];
        assert_eq!(choice(&wamp(), &offered), refusal);
        assert_eq!(
            choice(&wamp().fallback(JsonConverter.into()), &offered),
            refusal
        );
    }

    /// The refusal goes back to the client in a 400's body and into the server's logs: a
    /// client that offers thousands of names must not get them all echoed.
    #[test]
    fn a_refusal_quotes_at_most_200_bytes_of_the_offer() {
        let names: Vec<String> = (0..9_000).map(|i| format!("name{i}")).collect();
        let offered: Vec<&str> = names.iter().map(String::as_str).collect();
        let Err(refusal) = choice(&wamp(), &offered) else {
            panic!("nothing in common was agreed on")
        };
        assert!(refusal.len() < 400, "{} bytes: {refusal}", refusal.len());
        assert!(
            refusal.starts_with("no common converter: the client offered name0, name1"),
            "{refusal}"
        );
        assert!(
            refusal.ends_with("this server speaks wamp.2.msgpack, wamp.2.cbor, wamp.2.json"),
            "{refusal}"
        );
    }
}
