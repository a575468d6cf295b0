//! Where what arrives from the broker goes: each namespace's topics, as a [`Route`].

use std::sync::{Arc, PoisonError, Weak};

#[cfg(feature = "redis")]
use super::Backlog;
use super::{Counters, Envelope, PREFIX, Shared};
#[cfg(feature = "redis")]
use crate::topics::Position;

/// Where remote publications of one namespace go: a [`Topics`](crate::topics::Topics).
pub(crate) trait Route: Send + Sync {
    /// Delivers a publication from another node to the named topic's local subscribers;
    /// `false` if the value does not decode.
    fn deliver(&self, topic: &str, body: &[u8]) -> bool;

    /// The bus is subscribed again after losing its subscription: what was published in
    /// between is unknown here.
    fn resync(&self);

    /// Delivers a publication the broker numbered `at` (published on another node if
    /// `remote`), if it is the next the topic here wants; with `caught_up`, the history
    /// before it has just been read, and whatever still lies between is lost (the topic
    /// says so to its numbered subscribers).
    #[cfg(feature = "redis")]
    fn deliver_at(
        &self,
        topic: &str,
        at: Position,
        body: &[u8],
        caught_up: bool,
        remote: bool,
    ) -> Heard;

    /// The epoch the topic here follows and the first number it wants from the broker's
    /// history (0: all of it, as it follows the broker not yet); `None` for no such topic.
    #[cfg(feature = "redis")]
    fn wanted(&self, topic: &str) -> Option<Position>;

    /// Takes what the broker's history holds for the topic from what it wanted on.
    #[cfg(feature = "redis")]
    fn caught_up(&self, topic: &str, backlog: Backlog);

    /// The topics here that follow the broker's numbering, to catch up after an outage.
    #[cfg(feature = "redis")]
    fn following(&self) -> Vec<String>;
}

/// What became of a numbered publication handed to a [`Route`].
#[cfg(feature = "redis")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Heard {
    /// Delivered, or not wanted here (had already, or no topic of that name).
    Taken,
    /// The value does not decode as the topic's type.
    Undecodable,
    /// The topic wants what comes before it from the broker's history first.
    Behind,
}

/// Without Redis nothing is numbered by the broker, so nothing arrives ahead of its topic.
#[cfg(not(feature = "redis"))]
pub(crate) type Behind = std::convert::Infallible;

/// A numbered publication that arrived ahead of its topic here, kept while the history
/// before it is read.
#[cfg(feature = "redis")]
pub(crate) struct Behind {
    pub(crate) route: Arc<dyn Route>,
    pub(crate) namespace: String,
    pub(crate) topic: String,
    pub(crate) at: Position,
    pub(crate) body: Vec<u8>,
    pub(crate) remote: bool,
}

impl Shared {
    /// Hands a message from the broker to its namespace's topics. This node's own plain
    /// publications are dropped (its topics queued them when they were published); its own
    /// numbered ones are taken as any other, since they are queued only once numbered. A
    /// numbered publication that arrives ahead of its topic here comes back, for the driver
    /// to read the history before it.
    pub(crate) fn arrived(&self, subject: &str, payload: &[u8]) -> Option<Box<Behind>> {
        let Some(envelope) = Envelope::parse(payload) else {
            Counters::add(&self.counters.undecodable, 1);
            return None;
        };
        let own = envelope.origin == self.node;
        if own && envelope.at.is_none() {
            return None;
        }
        if !own {
            Counters::add(&self.counters.received, 1);
        }
        let namespace = subject
            .strip_prefix(PREFIX)
            .and_then(|s| s.strip_prefix('.'))
            .unwrap_or_default();
        let route = self.route(namespace)?;
        #[cfg(feature = "redis")]
        if let Some(at) = envelope.at {
            return match route.deliver_at(envelope.topic, at, envelope.body, false, !own) {
                Heard::Taken => None,
                Heard::Undecodable => {
                    Counters::add(&self.counters.undecodable, 1);
                    None
                }
                Heard::Behind => Some(Box::new(Behind {
                    route,
                    namespace: namespace.to_owned(),
                    topic: envelope.topic.to_owned(),
                    at,
                    body: envelope.body.to_vec(),
                    remote: !own,
                })),
            };
        }
        if !route.deliver(envelope.topic, envelope.body) {
            Counters::add(&self.counters.undecodable, 1);
        }
        None
    }

    /// The live topics of a namespace.
    pub(crate) fn route(&self, namespace: &str) -> Option<Arc<dyn Route>> {
        self.routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(namespace)
            .and_then(Weak::upgrade)
    }

    /// Every namespace's live topics.
    #[cfg(feature = "redis")]
    pub(crate) fn routes(&self) -> Vec<(String, Arc<dyn Route>)> {
        self.routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(|(namespace, route)| Some((namespace.clone(), route.upgrade()?)))
            .collect()
    }
}
