use flate2::{Compress, FlushCompress};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

const AGREED: PerMessageDeflate = PerMessageDeflate {
    send_window_bits: 15,
    send_no_context_takeover: false,
    receive_window_bits: 15,
    receive_no_context_takeover: false,
};

fn settings(frame: usize, message: usize) -> Limits {
    Limits {
        frame,
        message,
        unfinished: Budget::new(crate::DEFAULT_MAX_UNFINISHED_BYTES),
    }
}

/// The limits of a default config.
fn defaults() -> Limits {
    settings(
        crate::DEFAULT_MAX_FRAME_SIZE,
        crate::DEFAULT_MAX_MESSAGE_SIZE,
    )
}

/// `data` compressed as a permessage-deflate payload, by `compress`.
fn deflate(compress: &mut Compress, data: &[u8]) -> Vec<u8> {
    let start = compress.total_in();
    let mut out = Vec::with_capacity(data.len() + 64);
    loop {
        let done = (compress.total_in() - start) as usize;
        compress
            .compress_vec(&data[done..], &mut out, FlushCompress::Sync)
            .unwrap();
        if (compress.total_in() - start) as usize == data.len() && out.len() < out.capacity() {
            break;
        }
        out.reserve(out.capacity());
    }
    out.truncate(out.len() - 4);
    out
}

/// A frame as a peer writes it, masked with `mask` when given.
fn frame(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = BytesMut::new();
    put_header(&mut out, first, false, payload.len());
    let mut bytes = out.to_vec();
    if let Some(key) = mask {
        bytes[1] |= 0x80;
        bytes.extend(key);
        bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        bytes.extend(payload);
    }
    bytes
}

/// The frames in `bytes`: first byte, payload (unmasked), and whether it was masked.
fn frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>, bool)> {
    let mut found = Vec::new();
    while let Some((first, mask, length, header_len)) = parse_header(bytes) {
        let end = header_len + length as usize;
        let mut payload = bytes[header_len..end].to_vec();
        if let Some(key) = mask {
            payload
                .iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b ^= key[i % 4]);
        }
        found.push((first, payload, mask.is_some()));
        bytes = &bytes[end..];
    }
    assert!(bytes.is_empty(), "{} bytes of a cut-off frame", bytes.len());
    found
}

/// Everything `stream` comes out as, fed to a reader `step` bytes at a time.
fn through(reader: &mut Reader, stream: &[u8], step: usize) -> Result<Vec<u8>, InflateError> {
    let mut out = Vec::new();
    for piece in stream.chunks(step) {
        reader.raw.extend_from_slice(piece);
        loop {
            reader.process()?;
            if reader.output.out.is_empty() {
                break;
            }
            assert!(
                reader.output.out.len() <= 2 * reader.output.chunk + 14,
                "{} bytes waiting",
                reader.output.out.len()
            );
            out.extend_from_slice(&reader.output.out);
            reader.output.out.clear();
        }
    }
    Ok(out)
}

fn reader(agreed: PerMessageDeflate, limits: Limits) -> Reader {
    let mut inflating = Inflating::new(());
    inflating.activate(agreed, limits, &[]);
    *inflating.reader.unwrap()
}

#[test]
fn compressed_messages_come_out_as_plain_frames_however_the_input_is_split() {
    let text = "a compressed text message, ".repeat(40);
    let binary: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut compress = Compress::new(flate2::Compression::default(), false);
    let first = deflate(&mut compress, text.as_bytes());
    let second = deflate(&mut compress, &binary);
    let empty = vec![0x00];
    let key = Some([1, 2, 3, 4]);
    let mut stream = frame(0x41, &first[..5], key);
    stream.extend(frame(0x89, b"ping", key));
    stream.extend(frame(0x00, &first[5..9], key));
    stream.extend(frame(0x80, &first[9..], key));
    stream.extend(frame(0x82, b"plain", key));
    stream.extend(frame(0xc2, &second, key));
    stream.extend(frame(0xc1, &empty, key));
    for step in [1, 2, 3, 5, 64, 4096, stream.len()] {
        let out = through(&mut reader(AGREED, defaults()), &stream, step).unwrap();
        let (mut messages, mut controls, mut current) = (Vec::new(), Vec::new(), Vec::new());
        for (first, payload, masked) in frames(&out) {
            assert!(masked, "a frame from a client lost its mask");
            assert_eq!(first & 0x70, 0, "reserved bits left on");
            if first & 0x08 != 0 {
                controls.push((first, payload));
                continue;
            }
            if first & 0x0f != 0 {
                assert!(current.is_empty(), "a new message inside another");
                current.push(first & 0x0f);
            }
            current.extend(payload);
            if first & 0x80 != 0 {
                messages.push(std::mem::take(&mut current));
            }
        }
        let tagged = |opcode: u8, data: &[u8]| [&[opcode][..], data].concat();
        assert_eq!(
            messages,
            [
                tagged(1, text.as_bytes()),
                tagged(2, b"plain"),
                tagged(2, &binary),
                tagged(1, b""),
            ],
            "reads of {step}"
        );
        assert_eq!(controls, [(0x89, b"ping".to_vec())], "reads of {step}");
    }
}

#[test]
fn frames_handed_over_keep_to_the_frame_limit_and_the_mask_bit_of_their_sender() {
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 13) as u8).collect();
    let payload = deflate(
        &mut Compress::new(flate2::Compression::fast(), false),
        &data,
    );
    // Masked, the input a full chunk leaves for later is unmasked already: its phase
    // must carry over.
    for mask in [None, Some([9, 8, 7, 6])] {
        let stream = frame(0xc2, &payload, mask);
        let mut reader = reader(AGREED, settings(1000, 1 << 20));
        let out = through(&mut reader, &stream, 100).unwrap();
        let found = frames(&out);
        assert!(
            found
                .iter()
                .all(|(_, p, masked)| p.len() <= 1000 && *masked == mask.is_some())
        );
        let last = found.len() - 1;
        assert!(found.len() >= 10, "{} frames", found.len());
        assert_eq!(found[0].0, 0x02);
        assert!(found[1..last].iter().all(|f| f.0 == 0x00));
        assert_eq!(found[last].0, 0x80);
        assert_eq!(found.concat_payloads(), data, "mask {mask:?}");
    }
}

trait Concat {
    fn concat_payloads(&self) -> Vec<u8>;
}

impl Concat for Vec<(u8, Vec<u8>, bool)> {
    fn concat_payloads(&self) -> Vec<u8> {
        self.iter().flat_map(|f| f.1.clone()).collect()
    }
}

#[test]
fn a_message_that_inflates_past_the_limit_fails_within_one_chunk_of_it() {
    let payload = deflate(
        &mut Compress::new(flate2::Compression::best(), false),
        &vec![0; 1 << 20],
    );
    let stream = frame(0xc2, &payload, None);
    let limit = 10_000;
    let mut reader = reader(AGREED, settings(limit, limit));
    match through(&mut reader, &stream, 64) {
        Err(InflateError::TooBig { size, limit: said }) => {
            assert_eq!(said, limit);
            assert!(
                size > limit && size <= limit + reader.output.chunk,
                "stopped at {size}"
            );
        }
        other => panic!("expected TooBig, got {other:?}"),
    }
    let exact = frame(
        0xc2,
        &deflate(
            &mut Compress::new(flate2::Compression::best(), false),
            &vec![0; limit],
        ),
        None,
    );
    let out = through(
        &mut self::reader(AGREED, settings(limit, limit)),
        &exact,
        64,
    )
    .unwrap();
    assert_eq!(
        frames(&out).concat_payloads().len(),
        limit,
        "a message of exactly the limit"
    );
}

#[test]
fn context_is_kept_between_messages_unless_the_peer_takes_none_over() {
    let mut compress = Compress::new(flate2::Compression::default(), false);
    let text = b"the same words again and again and again";
    let first = deflate(&mut compress, text);
    let second = deflate(&mut compress, text);
    assert!(
        second.len() < first.len() / 2,
        "the second message does not refer back"
    );
    let stream = [frame(0xc1, &first, None), frame(0xc1, &second, None)].concat();
    let mut keeping = reader(AGREED, defaults());
    let out = through(&mut keeping, &stream, 7).unwrap();
    assert_eq!(frames(&out).concat_payloads(), text.repeat(2));
    assert!(keeping.output.inflater.is_some(), "the context was dropped");

    let fresh = PerMessageDeflate {
        receive_no_context_takeover: true,
        ..AGREED
    };
    let mut dropping = reader(fresh, defaults());
    let one = frame(0xc1, &first, None);
    let out = through(&mut dropping, &one, 7).unwrap();
    assert_eq!(frames(&out).concat_payloads(), text);
    assert!(
        dropping.output.inflater.is_none(),
        "the inflater outlived its message"
    );
    // Without its context, a message that refers back cannot be read.
    let broken = through(&mut dropping, &frame(0xc1, &second, None), 7);
    assert!(
        matches!(broken, Err(InflateError::Invalid(_))),
        "{broken:?}"
    );
}

#[test]
fn errors_say_what_happened() {
    let too_big = InflateError::TooBig {
        size: 70_000,
        limit: 65_536,
    };
    assert_eq!(
        too_big.to_string(),
        "a compressed message inflated to 70000 bytes, over the limit of 65536 bytes"
    );
    let invalid = InflateError::Invalid("invalid block type".to_owned());
    assert_eq!(
        invalid.to_string(),
        "invalid compressed data: invalid block type"
    );
}

#[test]
fn garbage_and_data_after_the_final_block_are_invalid() {
    let garbage = frame(0xc1, &[0xff; 12], None);
    let result = through(&mut reader(AGREED, defaults()), &garbage, 5);
    assert!(
        matches!(result, Err(InflateError::Invalid(_))),
        "{result:?}"
    );

    let mut compress = Compress::new(flate2::Compression::default(), false);
    let mut finished = Vec::with_capacity(64);
    compress
        .compress_vec(b"done", &mut finished, FlushCompress::Finish)
        .unwrap();
    let ok = through(
        &mut reader(AGREED, defaults()),
        &frame(0xc1, &finished, None),
        3,
    );
    assert_eq!(frames(&ok.unwrap()).concat_payloads(), b"done");
    finished.extend([0x01, 0x02]);
    let result = through(
        &mut reader(AGREED, defaults()),
        &frame(0xc1, &finished, None),
        3,
    );
    assert!(
        matches!(result, Err(InflateError::Invalid(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn reads_pass_through_until_activated_and_an_idle_reader_keeps_no_buffers() {
    let (mut tx, rx) = tokio::io::duplex(1 << 16);
    let mut inflating = Inflating::new(rx);
    tx.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut buf = [0; 64];
    assert_eq!(inflating.read(&mut buf).await.unwrap(), 18);
    let payload = deflate(
        &mut Compress::new(flate2::Compression::default(), false),
        b"hi there, hi there",
    );
    let whole = frame(0xc1, &payload, None);
    inflating.activate(AGREED, defaults(), &whole[..5]);
    tx.write_all(&whole[5..]).await.unwrap();
    let mut got = Vec::new();
    while frames_complete(&got).is_none() {
        let n = inflating.read(&mut buf).await.unwrap();
        assert!(n > 0, "the stream ended");
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(frames(&got).concat_payloads(), b"hi there, hi there");
    let waiting = std::future::poll_fn(|cx| {
        let mut read = ReadBuf::new(&mut buf);
        Poll::Ready(
            Pin::new(&mut inflating)
                .poll_read(cx, &mut read)
                .is_pending(),
        )
    })
    .await;
    assert!(waiting, "a read with nothing sent completed");
    let reader = inflating.reader.as_ref().unwrap();
    assert_eq!(
        (reader.raw.capacity(), reader.output.out.capacity()),
        (0, 0)
    );
}

/// `Some` once `bytes` hold whole frames only.
fn frames_complete(bytes: &[u8]) -> Option<()> {
    let (_, _, length, header_len) = parse_header(bytes)?;
    (bytes.len() == header_len + length as usize).then_some(())
}
