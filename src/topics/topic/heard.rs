//! What a topic does with what comes over the bus: values other nodes published, the
//! broker's numbering and history (Redis), and the outages of its subscription.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;

use super::Topic;
#[cfg(feature = "redis")]
use crate::bus::Relay;
#[cfg(feature = "redis")]
use crate::error::Error;
#[cfg(feature = "redis")]
use crate::topics::history::{Position, Step};

/// A publication read back from the broker's history: its number, how long ago the broker
/// took it, and the value.
#[cfg(feature = "redis")]
pub(in crate::topics) type Kept<T> = (u64, Duration, T);

/// The `on_received` hook, if any.
pub(in crate::topics) type Hook<'a, T> = Option<&'a (dyn Fn(&str, &T) + Send + Sync)>;

impl<T: Serialize + 'static> Topic<T> {
    /// Calls the hook with a value from another node and queues the value for this node's
    /// subscribers, if it matters here (see [`Topic::hears_others`]), under one hold of the
    /// topic's lock: a subscription's first frame sees the hook's effect or the subscriber
    /// gets the value, never both, never neither.
    pub(in crate::topics) fn publish_received(&self, value: &T, hook: Hook<'_, T>) {
        let state = self.shared.lock();
        if let Some(hook) = hook {
            hook(&self.shared.name, value);
        }
        if state.groups.is_empty() && !state.log.keeps_history() {
            return;
        }
        let at = state.log.next();
        // An encoding failure here is this node's converters refusing a value another node
        // published: nothing to send back, and the topic counts nothing.
        let Ok(frames) = Self::encode_all(&state, at, value) else {
            return;
        };
        self.shared
            .counters
            .received
            .fetch_add(1, Ordering::Relaxed);
        self.queue(state, at, Duration::ZERO, value, frames);
    }

    /// Whether a value from another node matters here, and is decoded: someone on this node
    /// is subscribed, or the topic keeps history for those who will come back.
    pub(in crate::topics) fn hears_others(&self) -> bool {
        let state = self.shared.lock();
        !state.groups.is_empty() || state.log.keeps_history()
    }

    /// The bus lost its subscription and has it again: what other nodes published meanwhile
    /// never came here. The numbered stream starts another epoch, so that no position taken
    /// before the hole resumes across it, and numbered subscribers are sent the `reset`
    /// notice: nothing goes missing without their knowing. A topic the broker numbers reads
    /// what it missed from the broker instead.
    pub(in crate::topics) fn restart(&self) {
        #[cfg(feature = "redis")]
        if self.numbering().is_some() {
            return;
        }
        let mut state = self.shared.lock();
        let notice = state.log.restart();
        self.notify(state, &notice);
    }
}

#[cfg(feature = "redis")]
impl<T: Serialize + 'static> Topic<T> {
    /// The bus, if its broker numbers this topic's publications.
    pub(in crate::topics) fn numbering(&self) -> Option<&Relay> {
        self.shared.forward.get()?.numbering.as_ref()
    }

    /// Has the topic follow the broker's numbering (reading its history) if it does not yet.
    pub(super) async fn follow_broker(&self) -> Result<(), Error> {
        let Some(relay) = self.numbering() else {
            return Ok(());
        };
        let following = self.shared.lock().log.is_following();
        if following {
            return Ok(());
        }
        relay.catch_up(&self.shared.name).await
    }

    /// Where a publication the broker numbered `at` stands here.
    pub(in crate::topics) fn step(&self, at: Position) -> Step {
        self.shared.lock().log.step(at)
    }

    /// What the topic wants from the broker's history: see `Route::wanted`.
    pub(in crate::topics) fn wanted(&self) -> Position {
        let log = &self.shared.lock().log;
        let next = log.next();
        if log.is_following() {
            next
        } else {
            Position {
                epoch: next.epoch,
                seq: 0,
            }
        }
    }

    /// Whether the topic follows the broker's numbering.
    pub(in crate::topics) fn is_following(&self) -> bool {
        self.shared.lock().log.is_following()
    }

    /// Takes a publication the broker numbered `at`, `age` ago, published on another node
    /// if `remote`: queues it if it is the next, ignores it if it was had already; with
    /// `caught_up` (the history before it was just read), what still lies between is lost,
    /// and numbered subscribers are told (`reset`) before it.
    pub(in crate::topics) fn take_at(
        &self,
        at: Position,
        age: Duration,
        value: &T,
        caught_up: bool,
        remote: bool,
        hook: Hook<'_, T>,
    ) -> Step {
        let mut state = self.shared.lock();
        let step = state.log.step(at);
        match step {
            Step::Behind if !caught_up => return step,
            Step::Had => {
                if let Some(hook) = hook {
                    hook(&self.shared.name, value);
                }
                return step;
            }
            Step::Behind => {
                if let Some(notice) = state.log.jump(at.epoch, at.seq - 1) {
                    self.notify(state, &notice);
                    state = self.shared.lock();
                }
            }
            Step::Next => {}
        }
        // Under the lock that queues the value, as for a value the broker does not number
        // (`publish_received`).
        if let Some(hook) = hook {
            hook(&self.shared.name, value);
        }
        // An encoding failure here is this node's converters refusing a value published
        // elsewhere: it is numbered all the same, so that the stream goes on.
        let frames = Self::encode_all(&state, at, value).unwrap_or_default();
        if remote {
            self.shared
                .counters
                .received
                .fetch_add(1, Ordering::Relaxed);
        }
        self.queue(state, at, age, value, frames);
        Step::Next
    }

    /// Takes what the broker's history holds from what the topic wanted on: the broker's
    /// `epoch`, its last number `seq` and the kept publications. A topic that did not follow
    /// the broker yet keeps them as its past; one that did queues them for its subscribers
    /// as the publications it missed, and tells its numbered subscribers of any hole.
    pub(in crate::topics) fn caught_up(&self, epoch: u64, seq: u64, kept: Vec<Kept<T>>) {
        let mut state = self.shared.lock();
        if !state.log.is_following() {
            let before = kept
                .first()
                .map_or(seq, |(first, _, _)| first.saturating_sub(1));
            state.log.jump(epoch, before);
            for (seq, age, value) in &kept {
                state.log.record_at(*seq, *age, value);
            }
            return;
        }
        drop(state);
        for (at, age, value) in &kept {
            let step = self.take_at(Position { epoch, seq: *at }, *age, value, true, false, None);
            if step != Step::Had {
                self.shared
                    .counters
                    .read_back
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        let mut state = self.shared.lock();
        let next = state.log.next();
        if (next.epoch != epoch || next.seq <= seq)
            && let Some(notice) = state.log.jump(epoch, seq)
        {
            self.notify(state, &notice);
        }
    }
}
