//! Strict decoding: a converter turns a payload into a value only when the payload is exactly
//! one value of its own codec. Every codec's encoding, alone, followed by garbage and followed
//! by a second copy, goes to every converter on the owned and the borrowing path; a payload
//! that is not exactly one value is `Error::Decode`, never a value made from its first bytes.
#![cfg(all(feature = "json", feature = "cbor", feature = "msgpack"))]

use crate::common;

use std::fmt::Debug;

use common::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use typed_ws::*;

/// An encoder, and the converter that is its own decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    Json,
    Cbor,
    MsgPackNamed,
    MsgPackCompact,
}

use Codec::*;

impl Codec {
    const ALL: [Codec; 4] = [Json, Cbor, MsgPackNamed, MsgPackCompact];

    fn converter(self) -> AnyConverter {
        match self {
            Json => JsonConverter.into(),
            Cbor => CborConverter.into(),
            MsgPackNamed => MsgPackConverter::new().into(),
            MsgPackCompact => MsgPackConverter::compact().into(),
        }
    }

    fn encode<T: Serialize>(self, value: &T) -> Vec<u8> {
        self.converter()
            .serialize(value)
            .expect("encodes")
            .payload()
            .to_vec()
    }

    /// The frame this converter reads: text for JSON, binary for the others. Bytes that are
    /// not UTF-8 cannot be a text frame (a session refuses them with `InvalidUtf8` before any
    /// converter sees them), so the JSON converter gets those in a binary frame, whose payload
    /// it decodes all the same.
    fn frame(self, payload: Vec<u8>) -> Frame {
        match (self, String::from_utf8(payload)) {
            (Json, Ok(text)) => Frame::text(text),
            (_, Ok(text)) => Frame::binary(text.into_bytes()),
            (_, Err(not_utf8)) => Frame::binary(not_utf8.into_bytes()),
        }
    }

    /// Decodes `frame` on every path this converter has: owned and borrowing, called directly
    /// and through `AnyConverter`.
    fn decode_every_way<T: DeserializeOwned>(
        self,
        frame: &Frame,
    ) -> Vec<(&'static str, Result<T, Error>)> {
        let any = self.converter();
        let mut results = vec![
            ("owned, AnyConverter", any.deserialize(frame)),
            ("borrowing, AnyConverter", any.deserialize_borrowed(frame)),
        ];
        match self {
            Json => {
                results.push(("owned", JsonConverter.deserialize(frame)));
                results.push(("borrowing", JsonConverter.deserialize_borrowed(frame)));
            }
            // ciborium cannot borrow, so CborConverter has no borrowing path of its own.
            Cbor => results.push(("owned", CborConverter.deserialize(frame))),
            MsgPackNamed | MsgPackCompact => {
                let direct = if self == MsgPackNamed {
                    MsgPackConverter::new()
                } else {
                    MsgPackConverter::compact()
                };
                results.push(("owned", direct.deserialize(frame)));
                results.push(("borrowing", direct.deserialize_borrowed(frame)));
            }
        }
        results
    }

    fn is_msgpack(self) -> bool {
        matches!(self, MsgPackNamed | MsgPackCompact)
    }
}

/// What follows an encoding in a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Suffix {
    Nothing,
    /// Whitespace, which JSON allows after a value.
    Whitespace,
    /// ASCII text, so that JSON payloads stay text frames.
    AsciiGarbage,
    /// Bytes that start no value: `0xc1` is reserved in MessagePack, a lone `0xff` is a break
    /// outside any indefinite-length item in CBOR, and neither is UTF-8.
    BinaryGarbage,
    /// The same encoding again: two messages in one frame.
    SecondCopy,
}

use Suffix::*;

impl Suffix {
    const ALL: [Suffix; 5] = [Nothing, Whitespace, AsciiGarbage, BinaryGarbage, SecondCopy];

    fn after(self, encoding: &[u8]) -> Vec<u8> {
        let mut payload = encoding.to_vec();
        match self {
            Nothing => {}
            Whitespace => payload.extend_from_slice(b" \r\n\t"),
            AsciiGarbage => payload.extend_from_slice(b"garbage"),
            BinaryGarbage => payload.extend_from_slice(&[0xc1, 0xff]),
            SecondCopy => payload.extend_from_slice(encoding),
        }
        payload
    }
}

/// What a decode must give.
#[derive(Debug, Clone, PartialEq)]
enum Outcome<T> {
    Value(T),
    Decode,
}

/// A payload that, although not the converter's own encoding, is exactly one valid value of
/// the converter's codec: the converter cannot tell and must decode it.
struct Coincidence<T> {
    converters: &'static [Codec],
    encoding: Codec,
    suffix: Suffix,
    gives: T,
}

/// The outcome when no coincidence applies: the converter's own exact encoding (either
/// MessagePack form, for either MessagePack converter) gives the value, and so does JSON
/// followed by whitespace; everything else is `Decode`.
fn by_design<T: Clone>(value: &T, converter: Codec, encoding: Codec, suffix: Suffix) -> Outcome<T> {
    let own = converter == encoding || (converter.is_msgpack() && encoding.is_msgpack());
    let accepted = suffix == Nothing || (converter == Json && suffix == Whitespace);
    if own && accepted {
        Outcome::Value(value.clone())
    } else {
        Outcome::Decode
    }
}

/// Runs the whole matrix for `value`, collecting every cell that differs from what it must
/// give, so that one run shows them all.
fn matrix<T>(value: &T, coincidences: &[Coincidence<T>])
where
    T: Serialize + DeserializeOwned + Clone + PartialEq + Debug,
{
    let mut wrong = Vec::new();
    let mut cells = 0;
    let mut used = vec![false; coincidences.len()];
    for encoding in Codec::ALL {
        let encoded = encoding.encode(value);
        for suffix in Suffix::ALL {
            let payload = suffix.after(&encoded);
            for converter in Codec::ALL {
                let frame = converter.frame(payload.clone());
                let coincidence = coincidences.iter().position(|c| {
                    c.converters.contains(&converter)
                        && (c.encoding, c.suffix) == (encoding, suffix)
                });
                let expected = match coincidence {
                    Some(i) => {
                        used[i] = true;
                        Outcome::Value(coincidences[i].gives.clone())
                    }
                    None => by_design(value, converter, encoding, suffix),
                };
                for (path, result) in converter.decode_every_way::<T>(&frame) {
                    cells += 1;
                    // ciborium cannot borrow: AnyConverter holding CBOR refuses every
                    // borrowing decode, its own encoding included.
                    let expected = if converter == Cbor && path.starts_with("borrowing") {
                        Outcome::Decode
                    } else {
                        expected.clone()
                    };
                    let got = match result {
                        Ok(decoded) => Outcome::Value(decoded),
                        Err(Error::Decode {
                            converter: name,
                            frame: back,
                            ..
                        }) if name == converter.converter().name() && back == frame => {
                            Outcome::Decode
                        }
                        Err(other) => {
                            wrong.push(format!(
                                "{converter:?} ({path}) on {encoding:?} + {suffix:?}: \
                                 unexpected error {other:?}"
                            ));
                            continue;
                        }
                    };
                    if got != expected {
                        wrong.push(format!(
                            "{converter:?} ({path}) on {encoding:?} + {suffix:?} \
                             {payload:02x?}: expected {expected:?}, got {got:?}"
                        ));
                    }
                }
            }
        }
    }
    // 4 encodings x 5 suffixes, to JSON, CBOR and both MessagePack converters on 4, 3, 4
    // and 4 paths.
    assert_eq!(cells, 4 * 5 * (4 + 3 + 4 + 4));
    // A coincidence that matches no cell would excuse nothing and hide a typo.
    assert!(used.iter().all(|&u| u), "unused coincidences: {used:?}");
    assert!(
        wrong.is_empty(),
        "{} cells wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn chat_message_decodes_only_from_its_own_exact_encoding() {
    matrix(&chat(1), &[]);
}

const MSGPACK: &[Codec] = &[MsgPackNamed, MsgPackCompact];

/// Small numbers are where codecs' bytes overlap; every overlap is a payload that is exactly
/// one value of the reading codec, so each is decoded, and none of them survives a suffix.
#[test]
fn a_number_decodes_only_from_exactly_one_value() {
    matrix(
        &7u32,
        &[
            // CBOR and MessagePack both write 0..=23 as the one byte 0x07.
            Coincidence {
                converters: MSGPACK,
                encoding: Cbor,
                suffix: Nothing,
                gives: 7,
            },
            Coincidence {
                converters: &[Cbor],
                encoding: MsgPackNamed,
                suffix: Nothing,
                gives: 7,
            },
            Coincidence {
                converters: &[Cbor],
                encoding: MsgPackCompact,
                suffix: Nothing,
                gives: 7,
            },
            // JSON `7` is the byte 0x37, a MessagePack positive fixint: 55.
            Coincidence {
                converters: MSGPACK,
                encoding: Json,
                suffix: Nothing,
                gives: 55,
            },
            // Two JSON numbers back to back are one number: `77`.
            Coincidence {
                converters: &[Json],
                encoding: Json,
                suffix: SecondCopy,
                gives: 77,
            },
        ],
    );
}

#[test]
fn a_string_decodes_only_from_exactly_one_value() {
    matrix(&"hi".to_owned(), &[]);
}

#[test]
fn a_list_decodes_only_from_exactly_one_value() {
    matrix(&vec![-1i32, 300], &[]);
}

/// `ChatMessage` with its strings borrowed from the frame.
#[derive(Debug, Deserialize)]
struct ChatRef<'a> {
    id: u64,
    author: &'a str,
    text: &'a str,
    #[serde(borrow)]
    tags: Vec<&'a str>,
    reply_to: Option<u64>,
}

#[test]
fn borrowed_fields_come_only_from_a_payload_that_is_exactly_one_value() {
    let value = chat(1);
    for codec in [Json, MsgPackNamed, MsgPackCompact] {
        let encoded = codec.encode(&value);
        let frame = codec.frame(encoded.clone());
        let got: ChatRef<'_> = codec.converter().deserialize_borrowed(&frame).unwrap();
        assert_eq!(
            (got.id, got.author, got.text, &got.tags[..], got.reply_to),
            (1, "ada", value.text.as_str(), &["test", "1"][..], Some(0)),
            "{codec:?}"
        );
        let payload = frame.payload().as_ptr_range();
        assert!(payload.contains(&got.text.as_ptr()), "{codec:?} copied");

        for suffix in [AsciiGarbage, BinaryGarbage, SecondCopy] {
            let frame = codec.frame(suffix.after(&encoded));
            let result = codec
                .converter()
                .deserialize_borrowed::<ChatRef<'_>>(&frame);
            assert!(
                matches!(result, Err(Error::Decode { .. })),
                "{codec:?} + {suffix:?}: {result:?}"
            );
        }
    }
}

/// A data frame of the other type is `UnexpectedFrame` before anything is decoded, whatever
/// it holds: an exact encoding, or one followed by more bytes. The session goes on.
#[tokio::test]
async fn a_data_frame_of_the_other_type_is_unexpected_frame_whatever_it_holds() {
    for converter in Codec::ALL {
        let (mut typed, mut raw) = pair(
            Config::new().converter(converter.converter()),
            Config::new(),
        )
        .await;
        let mut sent = 0;
        for encoding in Codec::ALL {
            let encoded = encoding.encode(&7u32);
            for suffix in Suffix::ALL {
                let payload = suffix.after(&encoded);
                let wrong = match (converter, String::from_utf8(payload)) {
                    (Json, Ok(text)) => Frame::binary(text.into_bytes()),
                    (Json, Err(bytes)) => Frame::binary(bytes.into_bytes()),
                    (_, Ok(text)) => Frame::text(text),
                    // Not UTF-8, so it cannot travel in a text frame.
                    (_, Err(_)) => continue,
                };
                assert!(!typed.converter().is_applicable(&wrong));
                within("raw send", raw.send(wrong.clone())).await.unwrap();
                let err = within("typed receive", typed.receive_deserialized::<u32>())
                    .await
                    .unwrap_err();
                match err {
                    Error::UnexpectedFrame {
                        converter: name,
                        frame,
                        ..
                    } => {
                        assert_eq!(name, typed.converter().name());
                        assert_eq!(frame, wrong);
                    }
                    other => panic!("{converter:?} on {wrong:?}: got {other:?}"),
                }
                sent += 1;
            }
        }
        // JSON takes all 20 payloads as binary frames; the binary converters take the 16 that
        // are UTF-8 (all but the ones with binary garbage: 7 is the byte 0x07 in CBOR and in
        // MessagePack) as text frames.
        assert_eq!(
            sent,
            if converter == Json { 20 } else { 16 },
            "{converter:?}"
        );
        let good = converter.frame(converter.encode(&8u32));
        within("raw send good", raw.send(good)).await.unwrap();
        let after = within("typed receive after", typed.receive_deserialized::<u32>()).await;
        assert_eq!(after.unwrap(), 8, "{converter:?}");
        assert_eq!(typed.close_reason(), None);
    }
}

/// The bug this file exists for: CBOR sent to a MessagePack server. A typed server refuses the
/// frame, and so does a schemaless one (it used to read the CBOR map's first bytes as a
/// MessagePack string); closing with the error's code tells the peer 1007.
#[tokio::test]
async fn msgpack_server_refuses_a_cbor_frame_and_the_peer_sees_1007() {
    let (mut client, mut server) = pair(
        Config::new().converter(CborConverter),
        Config::new().converter(MsgPackConverter::new()),
    )
    .await;
    let cbor = CborConverter.serialize(&chat(1)).unwrap();
    for _ in 0..2 {
        within("cbor send", client.send_serialized(&chat(1)))
            .await
            .unwrap();
    }

    let typed = within(
        "typed receive",
        server.receive_deserialized::<ChatMessage>(),
    )
    .await
    .unwrap_err();
    let schemaless = within(
        "schemaless receive",
        server.receive_deserialized::<serde_json::Value>(),
    )
    .await
    .unwrap_err();
    for err in [&typed, &schemaless] {
        match err {
            Error::Decode {
                converter, frame, ..
            } => {
                assert_eq!(*converter, "msgpack");
                assert_eq!(frame, &cbor);
            }
            other => panic!("expected Decode, got {other:?}"),
        }
    }
    // 0xa5 is a 5-byte MessagePack string: the rest of the frame is what gives it away.
    let trailing = cbor.payload().len() - 6;
    assert!(
        schemaless.to_string().ends_with(&format!(
            "{trailing} bytes after the end of the MessagePack value"
        )),
        "{schemaless}"
    );

    let code = typed.close_code().expect("Decode has a close code");
    assert_eq!(code, CloseCode::InvalidPayload);
    let (closed, seen) = within("closing handshake", async {
        tokio::join!(
            server.close(CloseReason::new(code, typed.to_string())),
            client.receive()
        )
    })
    .await;
    closed.unwrap();
    match seen.unwrap() {
        Frame::Close(Some(reason)) => assert_eq!(u16::from(reason.code), 1007),
        other => panic!("expected the close frame, got {other:?}"),
    }
    assert_eq!(
        client.close_reason().map(|reason| reason.code),
        Some(CloseCode::InvalidPayload)
    );
}
