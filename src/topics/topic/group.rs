//! A topic's subscribers that share a converter and a form, and what encodes for them.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::converter::Converter;
use crate::error::Error;
use crate::frame::Frame;
#[cfg(any(feature = "nats", feature = "redis"))]
use crate::topics::history::Resumed;
use crate::topics::history::{Position, Sequenced};
use crate::topics::mailbox::{Delivery, Mailbox};
use crate::wire::Alone;

/// Encodes a topic's values with one converter: the converter of a group of subscribers.
pub(super) trait Encoding<T>: Send + Sync {
    fn encode(&self, value: &T) -> Result<Frame, Error>;
    /// The value as a [`Sequenced`] publication at `at`.
    fn encode_at(&self, at: Position, value: &T) -> Result<Frame, Error>;
    /// The notice of a numbered stream that starts again.
    #[cfg(any(feature = "nats", feature = "redis"))]
    fn encode_notice(&self, resumed: &Resumed) -> Result<Frame, Error>;
    /// Whether `converter` is this one (same type, equal), so its session joins the group.
    fn is(&self, converter: &dyn Any) -> bool;
}

pub(super) struct With<C>(pub(super) C);

impl<T: Serialize, C: Converter + PartialEq> Encoding<T> for With<C> {
    fn encode(&self, value: &T) -> Result<Frame, Error> {
        self.0.serialize(value)
    }

    fn encode_at(&self, at: Position, value: &T) -> Result<Frame, Error> {
        self.0.serialize(&Sequenced {
            seq: at.seq,
            epoch: at.epoch,
            data: value,
        })
    }

    #[cfg(any(feature = "nats", feature = "redis"))]
    fn encode_notice(&self, resumed: &Resumed) -> Result<Frame, Error> {
        self.0.serialize(resumed)
    }

    fn is(&self, converter: &dyn Any) -> bool {
        converter.downcast_ref::<C>() == Some(&self.0)
    }
}

/// The subscribers that share a converter, a form (plain or sequenced) and, for those that
/// compress each message on its own, how they compress: so each publication's frame, and its
/// compressed payload.
pub(super) struct Group<T> {
    pub(super) encoding: Box<dyn Encoding<T>>,
    pub(super) sequenced: bool,
    pub(super) alone: Option<Alone>,
    pub(super) members: HashMap<u64, Arc<Mailbox>>,
}

impl<T> Group<T> {
    pub(super) fn encode(&self, at: Position, value: &T) -> Result<Frame, Error> {
        if self.sequenced {
            self.encoding.encode_at(at, value)
        } else {
            self.encoding.encode(value)
        }
    }

    /// The group's frame for a value, compressed once for all its members if they compress.
    pub(super) fn deliver(&self, frame: Frame) -> (Delivery, bool) {
        let compressed = self.alone.and_then(|alone| alone.compress(frame.payload()));
        let once = compressed.is_some();
        (Delivery { frame, compressed }, once)
    }
}
