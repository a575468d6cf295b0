//! Subscribing an outbox to a topic, plain or numbered, and ending a subscription.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::Serialize;

use super::group::{Encoding, Group, With};
use super::{Outbox, Topic};
use crate::converter::Converter;
use crate::error::Error;
use crate::frame::Frame;
use crate::topics::history::{Position, Resumed};
use crate::topics::mailbox::{Membership, Subscription};

impl<T: Serialize + 'static> Topic<T> {
    /// Subscribes the outbox's session. Subscribing twice does nothing more; the subscription
    /// lasts until [`Topic::unsubscribe`] or the end of the outbox (its session ended, it was
    /// closed or disconnected, or every handle to it was dropped). An outbox that has ended
    /// gives [`Error::Closed`] with its reason.
    ///
    /// Sessions whose converters are equal (same type, `==`) share each publication's frame.
    pub fn subscribe<C: Converter + PartialEq>(&self, outbox: &Outbox<C>) -> Result<(), Error> {
        self.join(outbox, None, |_| Ok(None)).map(|_| ())
    }

    /// Subscribes the outbox's session to the topic's numbered stream, from `since` (the last
    /// [`Position`] it got, or `None` for the live stream only): its session is sent a
    /// [`Resumed`] frame that says what follows, then the publications after `since` that the
    /// topic's [`History`] still keeps, then the live ones, each as a [`Sequenced`] value;
    /// nothing is missed or repeated between the kept and the live ones. A position the
    /// history no longer reaches, or from another epoch, gives [`Outcome::Reset`]. See [the
    /// wire form](crate::topics::history).
    ///
    /// The missed publications are queued at once, beside the subscriber's queue bound: a
    /// subscriber coming back holds at most the history more. Subscribing an outbox already
    /// subscribed does nothing more, and sends nothing.
    ///
    /// A topic whose history is [on the broker][on_broker] reads it from the broker
    /// first, the first time on this node: an error if the broker cannot be reached within a
    /// few seconds.
    ///
    /// [`History`]: crate::topics::History
    /// [`Sequenced`]: crate::topics::Sequenced
    /// [`Outcome::Reset`]: crate::topics::Outcome::Reset
    /// [on_broker]: crate::topics::History::on_broker
    pub async fn subscribe_since<C: Converter + PartialEq>(
        &self,
        outbox: &Outbox<C>,
        since: Option<Position>,
    ) -> Result<Resumed, Error> {
        #[cfg(feature = "redis")]
        self.follow_broker().await?;
        self.join(outbox, Some(since), |_| Ok(None))
    }

    /// As [`Topic::subscribe_since`], sending first a value of the application's: the one
    /// `first` gives, made at the moment of subscribing, before the [`Resumed`] frame.
    /// Nothing published here or heard from another node falls between the two: a value from another node has reached the [`on_received`] hook before
    /// `first` runs and is not sent to this subscriber, or reaches the hook after and is.
    /// For a first frame that sums up what the subscriber will not be sent, such as who is
    /// online.
    ///
    /// `first` runs under the topic's lock: it must not publish on, or subscribe to, this
    /// topic. It is not called for an outbox already subscribed.
    ///
    /// [`on_received`]: crate::topics::Topics::on_received
    ///
    /// ```
    /// # async fn welcome(
    /// #     topic: &typed_ws::topics::Topic<String>,
    /// #     outbox: &typed_ws::topics::Outbox<typed_ws::JsonConverter>,
    /// #     online: &std::sync::Mutex<Vec<String>>,
    /// # ) -> Result<(), typed_ws::Error> {
    /// topic
    ///     .subscribe_since_with(outbox, None, || online.lock().unwrap().clone())
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn subscribe_since_with<C, S>(
        &self,
        outbox: &Outbox<C>,
        since: Option<Position>,
        first: impl FnOnce() -> S,
    ) -> Result<Resumed, Error>
    where
        C: Converter + PartialEq,
        S: Serialize,
    {
        #[cfg(feature = "redis")]
        self.follow_broker().await?;
        self.join(outbox, Some(since), |converter: &C| {
            converter.serialize(&first()).map(Some)
        })
    }

    /// Subscribes plain, or sequenced from a position when `since` is given, after the
    /// application's frame that `first` makes, if any.
    fn join<C: Converter + PartialEq>(
        &self,
        outbox: &Outbox<C>,
        since: Option<Option<Position>>,
        first: impl FnOnce(&C) -> Result<Option<Frame>, Error>,
    ) -> Result<Resumed, Error> {
        let mailbox = outbox.mailbox();
        let mut state = self.shared.lock();
        let sequenced = since.is_some();
        if state
            .groups
            .iter()
            .any(|g| g.members.contains_key(&mailbox.id))
        {
            return Ok(state.log.since(None).0);
        }
        let first = first(outbox.converter())?;
        let (resumed, missed) = state.log.since(since.flatten());
        let encoding = With(outbox.converter().clone());
        let mut lead = Vec::new();
        if sequenced {
            lead.reserve(1 + missed.len());
            lead.push(outbox.converter().serialize(&resumed)?);
            for (seq, value) in missed {
                let at = Position {
                    epoch: resumed.epoch,
                    seq,
                };
                lead.push(Encoding::<T>::encode_at(&encoding, at, value)?);
            }
        }
        let membership: Arc<dyn Membership> = self.shared.clone();
        mailbox
            .join(Subscription {
                topic: self.shared.rule.topic,
                membership: Arc::downgrade(&membership),
                counters: self.shared.counters.clone(),
            })
            .map_err(Error::Closed)?;
        if first.is_some() || !lead.is_empty() {
            self.shared
                .counters
                .replayed
                .fetch_add(resumed.count, Ordering::Relaxed);
            mailbox.lead(first, self.shared.rule.topic, lead);
        }
        let converter: &dyn Any = outbox.converter();
        let alone = outbox.compresses_alone();
        let at =
            match state.groups.iter().position(|g| {
                g.sequenced == sequenced && g.alone == alone && g.encoding.is(converter)
            }) {
                Some(at) => at,
                None => {
                    state.groups.push(Group {
                        encoding: Box::new(encoding),
                        sequenced,
                        alone,
                        members: HashMap::new(),
                    });
                    state.groups.len() - 1
                }
            };
        state.groups[at].members.insert(mailbox.id, mailbox.clone());
        Ok(resumed)
    }

    /// Ends the outbox's subscription; frames already queued for it are still written.
    /// Returns whether it was subscribed.
    pub fn unsubscribe<C>(&self, outbox: &Outbox<C>) -> bool {
        let mailbox = outbox.mailbox();
        let mut state = self.shared.lock();
        let mut was = false;
        for group in &mut state.groups {
            was |= group.members.remove(&mailbox.id).is_some();
        }
        state.groups.retain(|g| !g.members.is_empty());
        // Under the topic's lock, so that a subscription made again meanwhile is not forgotten.
        mailbox.part(self.shared.rule.topic);
        was
    }
}
