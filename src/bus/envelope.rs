//! The bytes a publication crosses the broker in: who sent it, to which topic, and the value.
//!
//! ```text
//! 0x01 | origin node: u64 big-endian | topic length: u16 big-endian | topic (UTF-8) | value
//! ```
//!
//! The value is MessagePack with named fields, whatever converters the nodes' sessions use.

use bytes::{BufMut, Bytes, BytesMut};

const VERSION: u8 = 1;
const HEAD: usize = 1 + 8 + 2;

/// A publication as it crosses the broker.
#[derive(Debug, PartialEq)]
pub(crate) struct Envelope<'a> {
    pub(crate) origin: u64,
    pub(crate) topic: &'a str,
    pub(crate) body: &'a [u8],
}

impl<'a> Envelope<'a> {
    /// The envelope in `bytes`, or `None` for anything else: another version, a topic name
    /// that is not UTF-8, a short message.
    pub(crate) fn parse(bytes: &'a [u8]) -> Option<Self> {
        let (&version, rest) = bytes.split_first()?;
        if version != VERSION || rest.len() < HEAD - 1 {
            return None;
        }
        let (origin, rest) = rest.split_at(8);
        let (len, rest) = rest.split_at(2);
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        if rest.len() < len {
            return None;
        }
        let (topic, body) = rest.split_at(len);
        Some(Envelope {
            origin: u64::from_be_bytes(origin.try_into().ok()?),
            topic: std::str::from_utf8(topic).ok()?,
            body,
        })
    }

    /// The envelope's bytes. Topic names over 65,535 bytes are cut at a character boundary
    /// below it: the topics a bus carries are named by applications, not peers.
    pub(crate) fn to_bytes(&self) -> Bytes {
        let mut cut = self.topic.len().min(usize::from(u16::MAX));
        while !self.topic.is_char_boundary(cut) {
            cut -= 1;
        }
        let topic = &self.topic.as_bytes()[..cut];
        let mut out = BytesMut::with_capacity(HEAD + topic.len() + self.body.len());
        out.put_u8(VERSION);
        out.put_u64(self.origin);
        out.put_u16(topic.len() as u16);
        out.put_slice(topic);
        out.put_slice(self.body);
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_reads_back_as_written() {
        let envelope = Envelope {
            origin: 0x0102_0304_0506_0708,
            topic: "prix-€",
            body: &[0x81, 0xa1, b'a', 1],
        };
        let bytes = envelope.to_bytes();
        assert_eq!(&bytes[..9], &[1, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(Envelope::parse(&bytes), Some(envelope));
    }

    #[test]
    fn anything_else_is_not_an_envelope() {
        let good = Envelope {
            origin: 7,
            topic: "t",
            body: b"x",
        }
        .to_bytes();
        assert!(Envelope::parse(&[]).is_none());
        assert!(Envelope::parse(&good[..10]).is_none(), "short head");
        let mut long_topic = good.to_vec();
        long_topic[10] = 9;
        assert!(Envelope::parse(&long_topic).is_none(), "topic past the end");
        let mut version = good.to_vec();
        version[0] = 2;
        assert!(Envelope::parse(&version).is_none(), "another version");
        let mut not_utf8 = good.to_vec();
        not_utf8[11] = 0xff;
        assert!(Envelope::parse(&not_utf8).is_none(), "topic not UTF-8");
    }
}
