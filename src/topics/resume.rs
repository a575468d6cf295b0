//! The client's side of a sequenced topic: a reconnecting subscriber that comes back where it
//! left off.

use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};

use serde::de::DeserializeOwned;

use super::history::{Outcome, Position, Resumed, Sequenced};
use crate::client::ClientRequest;
use crate::converter::Converter;
use crate::error::Error;
use crate::frame::CloseReason;
use crate::reconnect::{Backoff, Reconnect, Reconnecting};

/// Where the subscriber is: the last value handed to the application.
type Shared = Arc<Mutex<Option<Position>>>;

impl<C: Converter> ClientRequest<C> {
    /// A reconnecting subscriber to a sequenced topic served at this URL, that comes back
    /// where it left off: each connection asks for `since={seq}&epoch={epoch}` of the last
    /// value received (`since=now` on the first), the query that `examples/ticker` takes and
    /// that a server passes to [`Topic::subscribe_since`](super::Topic::subscribe_since).
    /// What each connection starts with, the values it missed and then the live ones, comes
    /// out of [`Resuming::next`] in order, each value once.
    ///
    /// ```no_run
    /// use typed_ws::topics::Update;
    /// use typed_ws::{Client, Config, JsonConverter};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Tick { symbol: String, price: f64 }
    ///
    /// # async fn run() -> Result<(), typed_ws::Error> {
    /// let feed = Client::new(Config::new().converter(JsonConverter))
    ///     .request("ws://127.0.0.1:8080/topics/EURUSD")
    ///     .resuming()
    ///     .start::<Tick>();
    /// loop {
    ///     match feed.next().await? {
    ///         Update::Value(tick) => println!("{} {}", tick.data.symbol, tick.data.price),
    ///         Update::Resumed(resumed) if resumed.outcome == typed_ws::topics::Outcome::Reset => {
    ///             println!("missed some ticks: fetch the current state again");
    ///         }
    ///         Update::Resumed(_) => {}
    ///     }
    /// }
    /// # }
    /// ```
    pub fn resuming(self) -> Resume<C> {
        let position = Shared::default();
        let at = position.clone();
        let reconnect = self.reconnecting_to(move |url| {
            let position = *at.lock().unwrap_or_else(PoisonError::into_inner);
            since(url, position)
        });
        Resume {
            reconnect,
            position,
        }
    }
}

/// `url` with the query that asks for what follows `position`, after any query of its own.
fn since(url: &str, position: Option<Position>) -> String {
    let join = if url.contains('?') { '&' } else { '?' };
    match position {
        Some(Position { epoch, seq }) => format!("{url}{join}since={seq}&epoch={epoch}"),
        None => format!("{url}{join}since=now"),
    }
}

/// A resuming subscriber being set up, from [`ClientRequest::resuming`].
pub struct Resume<C> {
    reconnect: Reconnect<C>,
    position: Shared,
}

impl<C> fmt::Debug for Resume<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resume")
            .field("reconnect", &self.reconnect)
            .finish_non_exhaustive()
    }
}

impl<C: Converter> Resume<C> {
    /// The delays between attempts; see [`Reconnect::backoff`].
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.reconnect = self.reconnect.backoff(backoff);
        self
    }

    /// Starts connecting, on a task of its own, and returns at once. Needs a tokio runtime.
    pub fn start<T: DeserializeOwned>(self) -> Resuming<T, C> {
        Resuming {
            client: self.reconnect.start(),
            position: self.position,
            _values: PhantomData,
        }
    }
}

/// What a resuming subscriber receives: each connection's outcome, and the values.
#[derive(Debug, Clone, PartialEq)]
pub enum Update<T> {
    /// A connection was made: what it brings ([`Outcome::Reset`] when values were lost).
    Resumed(Resumed),
    /// The next value.
    Value(Sequenced<T>),
}

/// A reconnecting subscriber to a sequenced topic, from [`Resume::start`].
pub struct Resuming<T, C> {
    client: Reconnecting<C>,
    position: Shared,
    _values: PhantomData<fn() -> T>,
}

impl<T, C> fmt::Debug for Resuming<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resuming")
            .field("client", &self.client)
            .field("position", &self.position())
            .finish()
    }
}

impl<T: DeserializeOwned, C: Converter> Resuming<T, C> {
    /// The next outcome or value, waiting across reconnections. Values come in order, each
    /// once: those a lost connection had already delivered but the application had not yet
    /// taken come first, and the new connection's copies of them are skipped. Gives the
    /// error that stopped the client once it has stopped; a message that is neither a value
    /// nor an outcome gives [`Error::Decode`], and the subscriber goes on.
    pub async fn next(&self) -> Result<Update<T>, Error> {
        loop {
            let (frame, converter) = self.client.receive_message().await?;
            let update = match converter.deserialize::<Sequenced<T>>(&frame) {
                Ok(value) => Update::Value(value),
                Err(not_a_value) => match converter.deserialize::<Resumed>(&frame) {
                    Ok(resumed) => Update::Resumed(resumed),
                    Err(_) => return Err(not_a_value),
                },
            };
            let mut position = self.position.lock().unwrap_or_else(PoisonError::into_inner);
            match &update {
                Update::Value(value) => {
                    let at = value.position();
                    if position.is_some_and(|p| p.epoch == at.epoch && p.seq >= at.seq) {
                        continue;
                    }
                    *position = Some(at);
                }
                Update::Resumed(resumed) => {
                    // After a reset the values lost are gone: come back from the new stream.
                    let fresh = position.is_none_or(|p| p.epoch != resumed.epoch);
                    if resumed.outcome == Outcome::Reset || fresh {
                        *position = Some(Position {
                            epoch: resumed.epoch,
                            seq: resumed.seq,
                        });
                    }
                }
            }
            return Ok(update);
        }
    }
}

impl<T, C> Resuming<T, C> {
    /// The position of the last value taken, to come back from.
    pub fn position(&self) -> Option<Position> {
        *self.position.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The reconnecting client underneath: its [state](Reconnecting::state), sends.
    pub fn client(&self) -> &Reconnecting<C> {
        &self.client
    }

    /// Closes the connection for good; see [`Reconnecting::close`].
    pub async fn close(&self, reason: CloseReason) {
        self.client.close(reason).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_asks_for_what_follows_the_last_value() {
        let at = Some(Position { epoch: 7, seq: 41 });
        assert_eq!(since("ws://h/topics/a", None), "ws://h/topics/a?since=now");
        assert_eq!(
            since("ws://h/topics/a", at),
            "ws://h/topics/a?since=41&epoch=7"
        );
        assert_eq!(since("ws://h/t?x=1", at), "ws://h/t?x=1&since=41&epoch=7");
    }
}
