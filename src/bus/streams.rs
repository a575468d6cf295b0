//! Topic history kept by Redis, in a stream per topic: the broker numbers each publication,
//! so positions are the same on every node, and any node reads back what a subscriber
//! missed.
//!
//! Per topic, two keys: a hash `typed-ws.position.{namespace}.{topic}` with the epoch and
//! the last number, and a stream `typed-ws.history.{namespace}.{topic}` whose entries have
//! ids `0-{seq}`, the value (`v`) and the broker's clock in milliseconds (`t`). One script
//! numbers, keeps (trimmed to the history's count, and expiring with its age) and publishes
//! each publication, atomically; another reads a topic's tail. A position hash that is gone
//! (a Redis restarted without persistence, say) is made again with a new epoch, from the
//! broker's clock in microseconds (below 2⁵³ until the year 2255), and the stream with it.

use std::time::Duration;

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::{RedisResult, Value};

use super::PREFIX;

/// Lua: the topic's epoch, made (with an empty stream) if there is none.
macro_rules! ensure {
    () => {
        "local function ensure()
            local epoch = redis.call('HGET', KEYS[1], 'epoch')
            if not epoch then
                local t = redis.call('TIME')
                epoch = t[1] .. string.sub('00000' .. t[2], -6)
                redis.call('DEL', KEYS[2])
                redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
            end
            return epoch
        end
        "
    };
}

/// KEYS: position, stream. ARGV: channel, envelope head, value, count, age in ms (0: none).
const PUBLISH: &str = concat!(
    ensure!(),
    "local epoch = ensure()
    local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
    local t = redis.call('TIME')
    local ms = t[1] .. string.sub('00' .. math.floor(t[2] / 1000), -3)
    redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], '0-' .. seq, 'v', ARGV[3], 't', ms)
    if ARGV[5] ~= '0' then
        redis.call('PEXPIRE', KEYS[2], ARGV[5])
    end
    redis.call('PUBLISH', ARGV[1], ARGV[2] .. epoch .. ':' .. seq .. ':' .. ARGV[3])
    return seq"
);

/// KEYS: position, stream. ARGV: first and last id to read. Returns the epoch and the last
/// number (nil for a topic never published: reading makes nothing, so that subscribers
/// cannot fill Redis with the names they ask for), the broker's clock (seconds,
/// microseconds) and the entries.
const READ: &str = "local position = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
    local t = redis.call('TIME')
    return {position[1], position[2], t[1], t[2], redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[2])}";

/// The scripts as loaded on a connection: their SHA-1s, for EVALSHA.
#[derive(Clone)]
pub(super) struct Scripts {
    publish: String,
    read: String,
}

impl Scripts {
    /// Loads both scripts: once per connection, so a Redis restarted (which forgets them)
    /// has them again when the bus reconnects.
    pub(super) async fn load(connection: &mut MultiplexedConnection) -> RedisResult<Scripts> {
        let load = |script: &str| {
            let mut cmd = redis::cmd("SCRIPT");
            cmd.arg("LOAD").arg(script);
            cmd
        };
        Ok(Scripts {
            publish: load(PUBLISH).query_async(connection).await?,
            read: load(READ).query_async(connection).await?,
        })
    }

    /// Adds to `pipe` the numbering, keeping and publishing of one publication.
    pub(super) fn publish(
        &self,
        pipe: &mut redis::Pipeline,
        channel: &str,
        kept: &Kept,
        value: &[u8],
    ) {
        let (position, stream) = keys(&kept.namespace, &kept.topic);
        let age = kept.age.map_or(0, |age| {
            u64::try_from(age.as_millis()).unwrap_or(u64::MAX).max(1)
        });
        pipe.cmd("EVALSHA")
            .arg(&self.publish)
            .arg(2)
            .arg(position)
            .arg(stream)
            .arg(channel)
            .arg(&kept.head[..])
            .arg(value)
            .arg(kept.count)
            .arg(age)
            .ignore();
    }

    /// The topic's history after `from` (0: all of it), up to `to` if given.
    pub(super) async fn read(
        &self,
        connection: &mut MultiplexedConnection,
        namespace: &str,
        topic: &str,
        from: u64,
        to: Option<u64>,
    ) -> RedisResult<Option<Backlog>> {
        let (position, stream) = keys(namespace, topic);
        let first = if from == 0 {
            "-".to_owned()
        } else {
            format!("0-{from}")
        };
        let last = to.map_or_else(|| "+".to_owned(), |to| format!("0-{to}"));
        let reply: Value = redis::cmd("EVALSHA")
            .arg(&self.read)
            .arg(2)
            .arg(position)
            .arg(stream)
            .arg(first)
            .arg(last)
            .query_async(connection)
            .await?;
        Ok(Backlog::from_reply(&reply, to))
    }
}

/// What a numbered publication needs on its way: its topic's keys' parts, the envelope's
/// head, and the history's bounds.
pub(crate) struct Kept {
    pub(crate) namespace: std::sync::Arc<str>,
    pub(crate) topic: String,
    pub(crate) head: Bytes,
    pub(crate) count: usize,
    pub(crate) age: Option<Duration>,
}

/// The position hash's and the stream's keys of a topic.
fn keys(namespace: &str, topic: &str) -> (String, String) {
    (
        format!("{PREFIX}.position.{namespace}.{topic}"),
        format!("{PREFIX}.history.{namespace}.{topic}"),
    )
}

/// A topic's history as Redis keeps it: its epoch, its last number (no later than what was
/// asked for), and the entries read; epoch 0 and number 0 for a topic never published.
#[derive(Debug, PartialEq)]
pub(crate) struct Backlog {
    pub(crate) epoch: u64,
    pub(crate) seq: u64,
    pub(crate) entries: Vec<Entry>,
}

/// One kept publication: its number, how long ago the broker took it, and its value.
#[derive(Debug, PartialEq)]
pub(crate) struct Entry {
    pub(crate) seq: u64,
    pub(crate) age: Duration,
    pub(crate) body: Vec<u8>,
}

impl Backlog {
    /// The read script's reply, or `None` if it is not one (keys written by someone else).
    fn from_reply(reply: &Value, to: Option<u64>) -> Option<Backlog> {
        let Value::Array(parts) = reply else {
            return None;
        };
        let [epoch, seq, secs, micros, Value::Array(entries)] = &parts[..] else {
            return None;
        };
        let now = number(secs)? * 1000 + number(micros)? / 1000;
        let seq = number_or_none(seq)?;
        let entries = entries
            .iter()
            .map(|entry| {
                let Value::Array(entry) = entry else {
                    return None;
                };
                let [id, Value::Array(fields)] = &entry[..] else {
                    return None;
                };
                let id = bytes(id)?;
                let seq: u64 = std::str::from_utf8(id.strip_prefix(b"0-")?)
                    .ok()?
                    .parse()
                    .ok()
                    .filter(|seq| *seq > 0)?;
                let mut body = None;
                let mut at = None;
                for pair in fields.chunks_exact(2) {
                    match bytes(&pair[0])? {
                        b"v" => body = Some(bytes(&pair[1])?.to_vec()),
                        b"t" => at = Some(number(&pair[1])?),
                        _ => {}
                    }
                }
                Some(Entry {
                    seq,
                    age: Duration::from_millis(now.saturating_sub(at?)),
                    body: body?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Backlog {
            epoch: number_or_none(epoch)?,
            seq: to.map_or(seq, |to| seq.min(to)),
            entries,
        })
    }
}

fn bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// A number, or 0 for none (a field not there).
fn number_or_none(value: &Value) -> Option<u64> {
    match value {
        Value::Nil => Some(0),
        other => number(other),
    }
}

fn number(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        other => std::str::from_utf8(bytes(other)?).ok()?.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn a_read_reply_gives_the_epoch_the_last_number_and_each_entry_with_its_age() {
        let entry = |seq: &str, t: &str, v: &str| {
            Value::Array(vec![
                bulk(seq),
                Value::Array(vec![bulk("v"), bulk(v), bulk("t"), bulk(t)]),
            ])
        };
        let reply = Value::Array(vec![
            bulk("1796000000123456"),
            bulk("7"),
            bulk("1796000100"),
            bulk("250000"),
            Value::Array(vec![
                entry("0-6", "1796000099250", "six"),
                entry("0-7", "1796000100250", "seven"),
            ]),
        ]);
        let backlog = Backlog::from_reply(&reply, None).expect("a backlog");
        assert_eq!(backlog.epoch, 1_796_000_000_123_456);
        assert_eq!(backlog.seq, 7);
        assert_eq!(
            backlog.entries,
            [
                Entry {
                    seq: 6,
                    age: Duration::from_secs(1),
                    body: b"six".to_vec()
                },
                Entry {
                    seq: 7,
                    age: Duration::ZERO,
                    body: b"seven".to_vec()
                },
            ]
        );
        assert_eq!(Backlog::from_reply(&reply, Some(5)).unwrap().seq, 5);
    }

    #[test]
    fn a_topic_never_published_reads_as_epoch_0_and_number_0() {
        let reply = Value::Array(vec![
            Value::Nil,
            Value::Nil,
            bulk("1796000100"),
            bulk("0"),
            Value::Array(vec![]),
        ]);
        assert_eq!(
            Backlog::from_reply(&reply, None),
            Some(Backlog {
                epoch: 0,
                seq: 0,
                entries: vec![]
            })
        );
    }

    #[test]
    fn anything_else_is_no_backlog() {
        let entry = Value::Array(vec![
            bulk("1-6"),
            Value::Array(vec![bulk("v"), bulk("x"), bulk("t"), bulk("1")]),
        ]);
        for reply in [
            Value::Nil,
            Value::Array(vec![bulk("1"), bulk("2")]),
            Value::Array(vec![
                bulk("e"),
                bulk("2"),
                bulk("3"),
                bulk("4"),
                Value::Array(vec![]),
            ]),
            Value::Array(vec![
                bulk("1"),
                bulk("2"),
                bulk("3"),
                bulk("4"),
                Value::Array(vec![entry]),
            ]),
        ] {
            assert_eq!(Backlog::from_reply(&reply, None), None, "{reply:?}");
        }
    }
}
