//! The bytes a publication crosses the broker in: who sent it, to which topic, and the value.
//!
//! ```text
//! 0x01 | origin node: u64 big-endian | topic length: u16 big-endian | topic (UTF-8) | value
//! 0x02 | origin node | topic length | topic | "{epoch}:{seq}:" (ASCII digits) | value
//! ```
//!
//! The second form is a publication numbered by the broker: the broker writes the position
//! (see `streams`), in decimal because a Redis script builds it. The value is MessagePack
//! with named fields, whatever converters the nodes' sessions use.

use bytes::{BufMut, Bytes, BytesMut};

use crate::topics::Position;

const PLAIN: u8 = 1;
#[cfg(feature = "redis")]
const NUMBERED: u8 = 2;
const HEAD: usize = 1 + 8 + 2;

/// A publication as it crosses the broker.
#[derive(Debug, PartialEq)]
pub(crate) struct Envelope<'a> {
    pub(crate) origin: u64,
    pub(crate) topic: &'a str,
    /// Where the broker numbered it, for a topic whose history the broker keeps.
    pub(crate) at: Option<Position>,
    pub(crate) body: &'a [u8],
}

impl<'a> Envelope<'a> {
    /// The envelope in `bytes`, or `None` for anything else: another version, a topic name
    /// that is not UTF-8, a malformed position, a short message.
    pub(crate) fn parse(bytes: &'a [u8]) -> Option<Self> {
        let (&version, rest) = bytes.split_first()?;
        if rest.len() < HEAD - 1 {
            return None;
        }
        let (origin, rest) = rest.split_at(8);
        let (len, rest) = rest.split_at(2);
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        if rest.len() < len {
            return None;
        }
        let (topic, body) = rest.split_at(len);
        let (at, body) = match version {
            PLAIN => (None, body),
            #[cfg(feature = "redis")]
            NUMBERED => {
                let (epoch, body) = number(body)?;
                // The broker numbers from 1.
                let (seq, body) = number(body).filter(|(seq, _)| *seq > 0)?;
                (Some(Position { epoch, seq }), body)
            }
            _ => return None,
        };
        Some(Envelope {
            origin: u64::from_be_bytes(origin.try_into().ok()?),
            topic: std::str::from_utf8(topic).ok()?,
            at,
            body,
        })
    }

    /// The envelope's bytes. Topic names over 65,535 bytes are cut at a character boundary
    /// below it: the topics a bus carries are named by applications, not peers.
    pub(crate) fn to_bytes(&self) -> Bytes {
        let mut out = head(PLAIN, self.origin, self.topic, self.body.len());
        out.put_slice(self.body);
        out.freeze()
    }
}

/// What comes before the position of a numbered envelope, which the broker completes.
#[cfg(feature = "redis")]
pub(crate) fn numbered_head(origin: u64, topic: &str) -> Bytes {
    head(NUMBERED, origin, topic, 0).freeze()
}

fn head(version: u8, origin: u64, topic: &str, more: usize) -> BytesMut {
    let mut cut = topic.len().min(usize::from(u16::MAX));
    while !topic.is_char_boundary(cut) {
        cut -= 1;
    }
    let topic = &topic.as_bytes()[..cut];
    let mut out = BytesMut::with_capacity(HEAD + topic.len() + more);
    out.put_u8(version);
    out.put_u64(origin);
    out.put_u16(topic.len() as u16);
    out.put_slice(topic);
    out
}

/// A decimal number ended by `:`, and what follows.
#[cfg(feature = "redis")]
fn number(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let end = bytes.iter().take(21).position(|&b| b == b':')?;
    let digits = std::str::from_utf8(&bytes[..end]).ok()?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, &bytes[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_reads_back_as_written() {
        let envelope = Envelope {
            origin: 0x0102_0304_0506_0708,
            topic: "prix-€",
            at: None,
            body: &[0x81, 0xa1, b'a', 1],
        };
        let bytes = envelope.to_bytes();
        assert_eq!(&bytes[..9], &[1, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(Envelope::parse(&bytes), Some(envelope));
    }

    #[cfg(feature = "redis")]
    #[test]
    fn a_numbered_envelope_reads_the_position_the_broker_wrote() {
        let mut bytes = numbered_head(9, "EUR").to_vec();
        bytes.extend_from_slice(b"1796000000123456:42:");
        bytes.extend_from_slice(&[0x81, 0xa1, b'a', 1]);
        let envelope = Envelope::parse(&bytes).expect("an envelope");
        assert_eq!(
            envelope,
            Envelope {
                origin: 9,
                topic: "EUR",
                at: Some(Position {
                    epoch: 1_796_000_000_123_456,
                    seq: 42
                }),
                body: &[0x81, 0xa1, b'a', 1],
            }
        );
        let head = numbered_head(9, "EUR");
        for bad in [
            &b"12:"[..],
            b"12:x:",
            b":3:",
            b"1 2:3:",
            b"7:0:",
            b"99999999999999999999999:1:",
        ] {
            let mut bytes = head.to_vec();
            bytes.extend_from_slice(bad);
            assert!(Envelope::parse(&bytes).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn anything_else_is_not_an_envelope() {
        let good = Envelope {
            origin: 7,
            topic: "t",
            at: None,
            body: b"x",
        }
        .to_bytes();
        assert!(Envelope::parse(&[]).is_none());
        assert!(Envelope::parse(&good[..10]).is_none(), "short head");
        let mut long_topic = good.to_vec();
        long_topic[10] = 9;
        assert!(Envelope::parse(&long_topic).is_none(), "topic past the end");
        let mut version = good.to_vec();
        version[0] = 3;
        assert!(Envelope::parse(&version).is_none(), "another version");
        let mut not_utf8 = good.to_vec();
        not_utf8[11] = 0xff;
        assert!(Envelope::parse(&not_utf8).is_none(), "topic not UTF-8");
    }
}
