//! The Redis driver: a connection for PUBLISH and the history scripts (batched in pipelines)
//! and one for PSUBSCRIBE, made again with backoff when either fails. Reading a topic's
//! history happens on this task, between arrivals, so that what is read and what arrives
//! live reach the topic in the broker's order.

use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubStream};
use redis::{Client, RedisResult};

use super::streams::Scripts;
use super::{Counters, Driver, Heard, Outgoing, Route, Shared, pattern};
use crate::error::Error;

/// Publications sent in one pipeline: enough to amortise a round trip, few enough that a
/// failure loses little.
const BATCH: usize = 256;

/// A connection to Redis: the one that sends (with the scripts loaded on it), and the
/// subscription's messages.
struct Link {
    publishing: MultiplexedConnection,
    scripts: Scripts,
    arrivals: PubSubStream,
}

pub(super) async fn start(url: &str, driver: Driver) -> Result<(), Error> {
    let client =
        Client::open(url).map_err(|e| Error::bus_from("not a Redis URL the client takes", e))?;
    let link = connect(&client)
        .await
        .map_err(|e| Error::bus_from("cannot connect to the Redis server", e))?;
    tokio::spawn(run(client, driver, link));
    Ok(())
}

async fn connect(client: &Client) -> RedisResult<Link> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.psubscribe(pattern("*")).await?;
    let mut publishing = client.get_multiplexed_async_connection().await?;
    let scripts = Scripts::load(&mut publishing).await?;
    Ok(Link {
        publishing,
        scripts,
        arrivals: pubsub.into_on_message(),
    })
}

async fn run(client: Client, driver: Driver, mut link: Link) {
    let Driver {
        shared,
        mut outgoing,
        mut catch_ups,
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
                        match &next.kept {
                            Some(kept) => link.scripts.publish(&mut pipe, &next.subject, kept, &next.payload),
                            None => {
                                pipe.cmd("PUBLISH").arg(&*next.subject).arg(&next.payload[..]).ignore();
                            }
                        }
                    }
                    let sent = pipe.query_async::<()>(&mut link.publishing).await;
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
                request = catch_ups.recv() => {
                    let (Some(request), Some(shared)) = (request, shared.upgrade()) else { return };
                    if let Some(route) = shared.route(&request.namespace) {
                        let read = catch_up(&mut link, &*route, &request.namespace, &request.topic, None).await;
                        if read.is_err() {
                            break;
                        }
                    }
                    let _ = request.done.send(());
                }
                message = link.arrivals.next() => {
                    let (Some(message), Some(shared)) = (message, shared.upgrade()) else {
                        break;
                    };
                    let Some(behind) = shared.arrived(message.get_channel_name(), message.get_payload_bytes()) else {
                        continue;
                    };
                    let before = behind.at.seq - 1;
                    if catch_up(&mut link, &*behind.route, &behind.namespace, &behind.topic, Some(before)).await.is_err() {
                        break;
                    }
                    let heard = behind.route.deliver_at(&behind.topic, behind.at, &behind.body, true, behind.remote);
                    if heard == Heard::Undecodable {
                        Counters::add(&shared.counters.undecodable, 1);
                    }
                }
            }
        }
        let Some(up) = shared.upgrade() else { return };
        up.set_connected(false);
        drop(up);
        let mut failures = 0;
        link = loop {
            failures += 1;
            let delay = backoff
                .delay(failures, false, &mut rng)
                .max(Duration::from_millis(1));
            tokio::select! {
                _ = stop.changed() => return,
                () = tokio::time::sleep(delay) => {}
            }
            let Some(up) = shared.upgrade() else { return };
            if let Ok(link) = reconnect(&client, &up).await {
                break link;
            }
        };
        let Some(up) = shared.upgrade() else { return };
        up.set_connected(true);
    }
}

/// Connects again; then the topics that keep no history on the broker start another epoch,
/// and those that do read what they missed from it, before anything new arrives.
async fn reconnect(client: &Client, shared: &Shared) -> RedisResult<Link> {
    let mut link = connect(client).await?;
    shared.reconnected();
    for (namespace, route) in shared.routes() {
        for topic in route.following() {
            catch_up(&mut link, &*route, &namespace, &topic, None).await?;
        }
    }
    Ok(link)
}

/// Reads the topic's history from what it wants on (up to `to`), and hands it over.
async fn catch_up(
    link: &mut Link,
    route: &dyn Route,
    namespace: &str,
    topic: &str,
    to: Option<u64>,
) -> RedisResult<()> {
    let Some(wanted) = route.wanted(topic) else {
        return Ok(());
    };
    let Link {
        publishing,
        scripts,
        ..
    } = link;
    let Some(mut backlog) = scripts
        .read(publishing, namespace, topic, wanted.seq, to)
        .await?
    else {
        return Ok(());
    };
    if backlog.epoch != wanted.epoch && wanted.seq > 0 {
        // Another epoch: the broker's history was lost, and its new one is wanted whole.
        match scripts.read(publishing, namespace, topic, 0, to).await? {
            Some(whole) => backlog = whole,
            None => return Ok(()),
        }
    }
    route.caught_up(topic, backlog);
    Ok(())
}
