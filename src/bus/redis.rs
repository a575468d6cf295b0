//! The Redis driver: a connection for PUBLISH (batched in pipelines) and one for PSUBSCRIBE,
//! made again with backoff when either fails.

use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubStream};
use redis::{Client, RedisResult};

use super::{Counters, Driver, Outgoing, pattern};
use crate::error::Error;

/// Publications sent in one pipeline: enough to amortise a round trip, few enough that a
/// failure loses little.
const BATCH: usize = 256;

pub(super) async fn start(url: &str, driver: Driver) -> Result<(), Error> {
    let client =
        Client::open(url).map_err(|e| Error::bus_from("not a Redis URL the client takes", e))?;
    let connection = connect(&client)
        .await
        .map_err(|e| Error::bus_from("cannot connect to the Redis server", e))?;
    tokio::spawn(run(client, driver, connection));
    Ok(())
}

async fn connect(client: &Client) -> RedisResult<(MultiplexedConnection, PubSubStream)> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.psubscribe(pattern("*")).await?;
    let publishing = client.get_multiplexed_async_connection().await?;
    Ok((publishing, pubsub.into_on_message()))
}

async fn run(
    client: Client,
    driver: Driver,
    (mut publishing, mut arrivals): (MultiplexedConnection, PubSubStream),
) {
    let Driver {
        shared,
        mut outgoing,
        mut stop,
        backoff,
    } = driver;
    let mut rng = backoff.rng();
    let mut batch: Vec<Outgoing> = Vec::with_capacity(BATCH);
    loop {
        // Connected: send and receive until either connection fails.
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                n = outgoing.recv_many(&mut batch, BATCH) => {
                    if n == 0 {
                        return;
                    }
                    let mut pipe = redis::pipe();
                    for next in batch.drain(..) {
                        pipe.cmd("PUBLISH").arg(&*next.subject).arg(&next.payload[..]).ignore();
                    }
                    let sent = pipe.query_async::<()>(&mut publishing).await;
                    let Some(shared) = shared.upgrade() else { return };
                    match sent {
                        Ok(()) => Counters::add(&shared.counters.sent, n),
                        Err(_) => {
                            // Some of the batch may have gone out: sending it again could
                            // duplicate, so it counts as lost.
                            Counters::add(&shared.counters.lost, n);
                            break;
                        }
                    }
                }
                message = arrivals.next() => {
                    let (Some(message), Some(shared)) = (message, shared.upgrade()) else {
                        break;
                    };
                    shared.arrived(message.get_channel_name(), message.get_payload_bytes());
                }
            }
        }
        let Some(up) = shared.upgrade() else { return };
        up.set_connected(false);
        drop(up);
        let mut failures = 0;
        (publishing, arrivals) = loop {
            failures += 1;
            let delay = backoff
                .delay(failures, false, &mut rng)
                .max(Duration::from_millis(1));
            tokio::select! {
                _ = stop.changed() => return,
                () = tokio::time::sleep(delay) => {}
            }
            if let Ok(connection) = connect(&client).await {
                break connection;
            }
        };
        let Some(up) = shared.upgrade() else { return };
        up.reconnected();
        up.set_connected(true);
    }
}
