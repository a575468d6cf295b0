//! The NATS driver: async-nats keeps the connection (and reconnects it, with our backoff);
//! one task sends the queue, another hands what arrives to the topics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_nats::{ConnectOptions, Event, Subject};
use futures_util::StreamExt;

use super::{Counters, Driver, pattern};
use crate::error::Error;

pub(super) async fn start(url: &str, driver: Driver) -> Result<(), Error> {
    let Driver {
        shared,
        mut outgoing,
        stop,
        backoff,
        // NATS keeps no history here: nothing asks to read it.
        #[cfg(feature = "redis")]
            catch_ups: _,
    } = driver;
    let rng = Mutex::new(backoff.rng());
    let events = shared.clone();
    let was_up = Arc::new(AtomicBool::new(false));
    let options = ConnectOptions::new()
        .name("typed-ws bus")
        // Our own publications would come back only to be dropped.
        .no_echo()
        .max_reconnects(None)
        .reconnect_delay_callback(move |attempts| {
            let failures = u32::try_from(attempts).unwrap_or(u32::MAX);
            let mut rng = rng.lock().unwrap_or_else(PoisonError::into_inner);
            backoff.delay(failures, false, &mut rng)
        })
        .event_callback(move |event| {
            let shared = events.upgrade();
            let was_up = was_up.clone();
            async move {
                let Some(shared) = shared else { return };
                match event {
                    Event::Connected => {
                        if was_up.swap(true, Ordering::Relaxed) {
                            shared.reconnected();
                        }
                        shared.set_connected(true);
                    }
                    Event::Disconnected => shared.set_connected(false),
                    _ => {}
                }
            }
        });
    let client = options
        .connect(url)
        .await
        .map_err(|e| Error::bus_from("cannot connect to the NATS server", e))?;
    let mut subscriber = client
        .subscribe(pattern(">"))
        .await
        .map_err(|e| Error::bus_from("cannot subscribe on the NATS server", e))?;
    // A round trip: the server has the subscription when `connect` returns.
    client
        .flush()
        .await
        .map_err(|e| Error::bus_from("cannot subscribe on the NATS server", e))?;

    let mut stopped = stop.clone();
    let receiving = shared.clone();
    tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                _ = stopped.changed() => return,
                message = subscriber.next() => message,
            };
            let (Some(message), Some(shared)) = (message, receiving.upgrade()) else {
                return;
            };
            // Only Redis numbers publications: nothing arrives ahead of its topic here.
            let _ = shared.arrived(message.subject.as_str(), &message.payload);
        }
    });

    let mut stopped = stop;
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                _ = stopped.changed() => return,
                next = outgoing.recv() => next,
            };
            let Some(next) = next else { return };
            // While the server is away, async-nats holds what it was given until its own
            // buffer is full; then this waits, and our queue fills and drops instead.
            let sent = tokio::select! {
                _ = stopped.changed() => return,
                sent = client.publish(Subject::from(&*next.subject), next.payload) => sent,
            };
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let counter = match sent {
                Ok(()) => &shared.counters.sent,
                Err(_) => &shared.counters.lost,
            };
            Counters::add(counter, 1);
        }
    });
    Ok(())
}
