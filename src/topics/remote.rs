//! Topics on a bus: what they send to other nodes, and what they do with what comes back.

use std::sync::{Arc, PoisonError};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::topic::Remote;
use super::{Registry, Topics};
#[cfg(feature = "redis")]
use crate::bus::{Backlog, Heard};
use crate::bus::{Bus, Route};
use crate::error::Error;
#[cfg(feature = "redis")]
use crate::topics::history::{Position, Step};

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
        let history = &self.shared.config.history;
        if history.is_on_broker() && !bus.keeps_history() {
            return Err(Error::bus(format!(
                "{bus:?} keeps no history: History::on_broker needs a Redis bus (namespace {namespace:?} not added)"
            )));
        }
        let registry: Arc<dyn Route> = self.shared.clone();
        let relay = bus.attach(namespace, Arc::downgrade(&registry))?;
        #[cfg(feature = "redis")]
        let numbering = (history.is_on_broker() && history.keeps()).then(|| relay.clone());
        #[cfg(feature = "redis")]
        let (count, age) = history.bounds();
        #[cfg(feature = "redis")]
        let numbered = numbering.is_some();
        let sending = relay;
        let forward = move |topic: &str, value: &T| {
            let body = rmp_serde::to_vec_named(value).map_err(|e| Error::Encode {
                converter: "msgpack",
                cause: e.into(),
            })?;
            #[cfg(feature = "redis")]
            if numbered {
                sending.send_numbered(topic, body, count, age);
                return Ok(());
            }
            sending.send(topic, &body);
            Ok(())
        };
        let remote = Remote {
            forward: Box::new(forward),
            #[cfg(feature = "redis")]
            numbering,
        };
        // Checked above, and `self` is not shared with another thread while it is being built.
        let _ = self.shared.forward.set(remote);
        Ok(self)
    }

    /// Calls `hook` with every value published on another node that comes over the bus
    /// (with its topic's name), before it is queued for this node's subscribers, whether or
    /// not the topic has any here: for what a node keeps of the others' state, such as who
    /// is online. The hook runs on the bus's task: it should be quick and must not block.
    ///
    /// Where the topic exists on this node, the hook runs under its lock, together with the
    /// queueing: a subscription's first frame ([`subscribe_since_with`]) sees what the hook
    /// kept of a value, or the subscriber is sent the value, never both and never neither.
    /// So the hook must not publish on, or subscribe to, that topic.
    ///
    /// An error if these topics have a hook already.
    ///
    /// [`subscribe_since_with`]: super::Topic::subscribe_since_with
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
        let heard = self.heard.get().map(|hook| &**hook);
        if heard.is_none() && !topic.as_ref().is_some_and(|t| t.hears_others()) {
            return true;
        }
        let Ok(value) = rmp_serde::from_slice::<T>(body) else {
            return false;
        };
        match (topic, heard) {
            (Some(topic), heard) => topic.publish_received(&value, heard),
            (None, Some(heard)) => heard(name, &value),
            (None, None) => {}
        }
        true
    }

    #[cfg(feature = "redis")]
    fn deliver_at(
        &self,
        name: &str,
        at: Position,
        body: &[u8],
        caught_up: bool,
        remote: bool,
    ) -> Heard {
        let topic = self.numbered(name);
        let step = topic.as_ref().map(|topic| topic.step(at));
        if step == Some(Step::Behind) && !caught_up {
            return Heard::Behind;
        }
        // Once per arrival from another node, as for a publication the broker does not
        // number: whether or not the topic here had it (from the broker's history).
        let heard = self.heard.get().filter(|_| remote).map(|hook| &**hook);
        if heard.is_none() && matches!(step, None | Some(Step::Had)) {
            return Heard::Taken;
        }
        let Ok(value) = rmp_serde::from_slice::<T>(body) else {
            return Heard::Undecodable;
        };
        match (topic, heard) {
            (Some(topic), heard) => {
                topic.take_at(
                    at,
                    std::time::Duration::ZERO,
                    &value,
                    caught_up,
                    remote,
                    heard,
                );
            }
            (None, Some(heard)) => heard(name, &value),
            (None, None) => {}
        }
        Heard::Taken
    }

    #[cfg(feature = "redis")]
    fn wanted(&self, name: &str) -> Option<Position> {
        Some(self.numbered(name)?.wanted())
    }

    #[cfg(feature = "redis")]
    fn caught_up(&self, name: &str, backlog: Backlog) {
        let Some(topic) = self.numbered(name) else {
            return;
        };
        // A value that does not decode leaves a hole, which the topic's numbered
        // subscribers are told of.
        let kept = backlog
            .entries
            .into_iter()
            .filter_map(|entry| {
                Some((
                    entry.seq,
                    entry.age,
                    rmp_serde::from_slice(&entry.body).ok()?,
                ))
            })
            .collect();
        topic.caught_up(backlog.epoch, backlog.seq, kept);
    }

    #[cfg(feature = "redis")]
    fn following(&self) -> Vec<String> {
        self.topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, topic)| topic.numbering().is_some() && topic.is_following())
            .map(|(name, _)| name.clone())
            .collect()
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

#[cfg(feature = "redis")]
impl<T> Registry<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// The topic of that name here, if the broker numbers it.
    fn numbered(&self, name: &str) -> Option<super::Topic<T>> {
        let topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        topics
            .get(name)
            .filter(|t| t.numbering().is_some())
            .cloned()
    }
}
