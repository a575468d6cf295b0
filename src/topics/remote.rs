//! Topics on a bus: what they send to other nodes, and what they do with what comes back.

use std::sync::{Arc, PoisonError};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Registry, Topics};
use crate::bus::{Bus, Route};
use crate::error::Error;

impl<T> Topics<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Puts these topics on `bus` under `namespace` (1 to 64 ASCII letters, digits, `-`,
    /// `_`): from then on a value published to one of them on any node whose topics are on
    /// the same broker under the same namespace reaches the topic's subscribers on every node
    /// once, in publish order per publisher. A value crosses the broker as MessagePack; a
    /// node decodes it once, and only if it has subscribers to the topic. See the
    /// [bus module](crate::bus) for what an outage of the broker loses.
    ///
    /// The topics hear the other nodes for as long as a clone of this `Topics` lives: keep one
    /// (a [`Topic`](super::Topic) alone still publishes to them, but hears nothing).
    ///
    /// An error if these topics are on a bus already, or if the namespace is malformed or
    /// already used on this bus by another live set of topics.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), typed_ws::Error> {
    /// use typed_ws::bus::Bus;
    /// use typed_ws::topics::Topics;
    ///
    /// let bus = Bus::connect("redis://127.0.0.1:6379").await?;
    /// let rooms: Topics<String> = Topics::new().bus(&bus, "rooms")?;
    /// rooms.publish("lobby", &"hello, every node".to_owned())?;
    /// # Ok(()) }
    /// ```
    pub fn bus(self, bus: &Bus, namespace: &str) -> Result<Self, Error> {
        if self.shared.forward.get().is_some() {
            return Err(Error::bus(format!(
                "these topics are on a bus already: {namespace:?} not added"
            )));
        }
        let registry: Arc<dyn Route> = self.shared.clone();
        let relay = bus.attach(namespace, Arc::downgrade(&registry))?;
        let forward = move |topic: &str, value: &T| {
            let body = rmp_serde::to_vec_named(value).map_err(|e| Error::Encode {
                converter: "msgpack",
                cause: e.into(),
            })?;
            relay.send(topic, &body);
            Ok(())
        };
        // Checked above, and `self` is not shared with another thread while it is being built.
        let _ = self.shared.forward.set(Box::new(forward));
        Ok(self)
    }

    /// Calls `hook` with every value published on another node that comes over the bus
    /// (with its topic's name), before it is queued for this node's subscribers, whether or
    /// not the topic has any here: for what a node keeps of the others' state, such as who
    /// is online. The hook runs on the bus's task: it should be quick and must not block.
    ///
    /// An error if these topics have a hook already.
    pub fn on_received(
        self,
        hook: impl Fn(&str, &T) + Send + Sync + 'static,
    ) -> Result<Self, Error> {
        self.shared
            .heard
            .set(Box::new(hook))
            .map_err(|_| Error::bus("these topics have an on_received hook already".to_owned()))?;
        Ok(self)
    }
}

impl<T> Route for Registry<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn deliver(&self, name: &str, body: &[u8]) -> bool {
        let topic = self
            .topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned();
        let topic = topic.filter(|t| t.hears_others());
        let heard = self.heard.get();
        if topic.is_none() && heard.is_none() {
            return true;
        }
        let Ok(value) = rmp_serde::from_slice::<T>(body) else {
            return false;
        };
        if let Some(heard) = heard {
            heard(name, &value);
        }
        if let Some(topic) = topic {
            // An encoding failure here is this node's converters refusing a value another
            // node published: nothing to send back, and the topic counts nothing.
            let _ = topic.publish_received(&value);
        }
        true
    }

    fn resync(&self) {
        let topics: Vec<_> = self
            .topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for topic in topics {
            topic.restart();
        }
    }
}
