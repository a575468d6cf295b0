//! A set of topics' way onto the bus: what they send, and how they ask for history.

use std::sync::Arc;

use bytes::Bytes;
#[cfg(feature = "redis")]
use tokio::sync::oneshot;

use super::{Bus, Counters, Envelope, PREFIX};
#[cfg(feature = "redis")]
use super::{Kept, envelope};
#[cfg(feature = "redis")]
use crate::error::Error;

/// A publication on its way to the broker: the namespace's subject and the envelope (or, for
/// a topic whose history the broker keeps, the value and what the broker needs to number
/// and keep it).
pub(crate) struct Outgoing {
    pub(crate) subject: Arc<str>,
    pub(crate) payload: Bytes,
    #[cfg(feature = "redis")]
    pub(crate) kept: Option<Kept>,
}

/// A request to read a topic's history from the broker, answered when it is taken.
#[cfg(feature = "redis")]
pub(crate) struct CatchUp {
    pub(crate) namespace: Arc<str>,
    pub(crate) topic: String,
    pub(crate) done: oneshot::Sender<()>,
}

/// How long a subscriber coming back waits for its topic's history from the broker.
#[cfg(feature = "redis")]
const CATCH_UP_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// How many requests for history may wait for the bus's task.
#[cfg(feature = "redis")]
pub(super) const CATCH_UPS: usize = 256;

/// A set of topics' way onto the bus: their subject, and the bus.
#[derive(Clone)]
pub(crate) struct Relay {
    bus: Bus,
    #[cfg(feature = "redis")]
    namespace: Arc<str>,
    subject: Arc<str>,
}

impl Relay {
    pub(super) fn new(bus: Bus, namespace: &str) -> Relay {
        Relay {
            bus,
            #[cfg(feature = "redis")]
            namespace: namespace.into(),
            subject: format!("{PREFIX}.{namespace}").into(),
        }
    }

    /// Queues a publication for the broker; never waits. A full queue drops it (counted).
    pub(crate) fn send(&self, topic: &str, body: &[u8]) {
        let shared = &self.bus.shared;
        let payload = Envelope {
            origin: shared.node,
            topic,
            at: None,
            body,
        }
        .to_bytes();
        self.queue(Outgoing {
            subject: self.subject.clone(),
            payload,
            #[cfg(feature = "redis")]
            kept: None,
        });
    }

    /// Queues a publication for the broker to number, keep within `count` and `age`, and
    /// publish; never waits. A full queue drops it (counted).
    #[cfg(feature = "redis")]
    pub(crate) fn send_numbered(
        &self,
        topic: &str,
        body: Vec<u8>,
        count: usize,
        age: Option<std::time::Duration>,
    ) {
        let kept = Kept {
            namespace: self.namespace.clone(),
            topic: topic.to_owned(),
            head: envelope::numbered_head(self.bus.shared.node, topic),
            count,
            age,
        };
        self.queue(Outgoing {
            subject: self.subject.clone(),
            payload: body.into(),
            kept: Some(kept),
        });
    }

    fn queue(&self, outgoing: Outgoing) {
        let shared = &self.bus.shared;
        if shared.outgoing.try_send(outgoing).is_err() {
            Counters::add(&shared.counters.lost, 1);
        }
    }

    #[cfg(feature = "redis")]
    /// Has the bus's task read the topic's history from the broker into it, in order with
    /// what arrives live; an error if that takes longer than a few seconds (the broker is
    /// away) or the bus is gone.
    pub(crate) async fn catch_up(&self, topic: &str) -> Result<(), Error> {
        let (done, taken) = oneshot::channel();
        let request = CatchUp {
            namespace: self.namespace.clone(),
            topic: topic.to_owned(),
            done,
        };
        let asked = async {
            self.bus.shared.catch_ups.send(request).await.ok()?;
            taken.await.ok()
        };
        match tokio::time::timeout(CATCH_UP_DEADLINE, asked).await {
            Ok(Some(())) => Ok(()),
            Ok(None) => Err(Error::bus(format!(
                "topic {topic:?}: the bus cannot read history"
            ))),
            Err(_) => Err(Error::bus(format!(
                "topic {topic:?}: its history could not be read from the broker within {CATCH_UP_DEADLINE:?}"
            ))),
        }
    }
}
