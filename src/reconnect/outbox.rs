//! The sending side of a reconnecting client: the current connection's sending half, or
//! the bounded queue of what waits for the next connection.

use std::collections::VecDeque;

use serde::Serialize;

use super::Stop;
use crate::converter::Converter;
use crate::error::Error;
use crate::frame::Frame;
use crate::session::SendHalf;

pub(super) struct Outbox<C> {
    /// The current connection's sending half; `None` while disconnected.
    tx: Option<SendHalf<C>>,
    /// Encoded messages waiting for the next connection, with the name of the converter that
    /// encoded each.
    queue: VecDeque<(&'static str, Frame)>,
    capacity: usize,
    /// The current or last session's converter, which encodes sends.
    converter: C,
    stopped: Option<Stop>,
}

impl<C: Converter> Outbox<C> {
    pub(super) fn new(converter: C, capacity: usize) -> Self {
        Outbox {
            tx: None,
            queue: VecDeque::new(),
            capacity,
            converter,
            stopped: None,
        }
    }

    /// A typed send: see [`Reconnecting::send_serialized`](super::Reconnecting::send_serialized).
    pub(super) async fn send<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        if let Some(stop) = &self.stopped {
            return Err(stop.error());
        }
        let frame = self.converter.serialize(value)?;
        if let Some(tx) = &mut self.tx {
            // Frames share their payload: the copy kept for the queue costs no bytes.
            match tx.send(frame.clone()).await {
                Ok(()) => return Ok(()),
                // A frame refused before sending leaves the session usable.
                Err(e) if tx.close_reason().is_none() => return Err(e),
                Err(e) => {
                    self.tx = None;
                    if self.queue.len() >= self.capacity {
                        return Err(e);
                    }
                }
            }
        }
        if self.queue.len() >= self.capacity {
            return Err(not_connected(self.capacity));
        }
        self.queue.push_back((self.converter.name(), frame));
        Ok(())
    }

    /// Sends what is queued on a new connection, in order, then takes the connection for
    /// the sends to come. Frames encoded with another converter than the session's are
    /// dropped. On an error the frames not yet sent stay queued.
    pub(super) async fn connect(&mut self, mut tx: SendHalf<C>) -> Result<(), Error> {
        self.converter = tx.converter().clone();
        let name = self.converter.name();
        self.queue.retain(|(encoded_with, _)| *encoded_with == name);
        if !self.queue.is_empty() {
            while let Some((_, frame)) = self.queue.front() {
                tx.feed(frame.clone()).await?;
                self.queue.pop_front();
            }
            tx.flush().await?;
        }
        self.tx = Some(tx);
        Ok(())
    }

    /// The connection is lost: sends queue or fail until the next one.
    pub(super) fn disconnect(&mut self) {
        self.tx = None;
    }

    /// Stops for good: gives back the sending half, to close the session with; drops what
    /// is queued.
    pub(super) fn stop(&mut self, stop: Stop) -> Option<SendHalf<C>> {
        self.stopped = Some(stop);
        self.queue.clear();
        self.tx.take()
    }
}

/// The error of a send made while disconnected with the queue full (or no queue).
fn not_connected(queued: usize) -> Error {
    Error::NotConnected { queued }
}
