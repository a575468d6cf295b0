//! permessage-deflate payloads made by hand, for raw peers that compress.

use flate2::{Compress, FlushCompress};

/// `data` as a permessage-deflate payload: raw DEFLATE, sync-flushed, the marker taken off.
pub fn deflate(compress: &mut Compress, data: &[u8]) -> Vec<u8> {
    let start = compress.total_in();
    let mut out = Vec::with_capacity(data.len() + 64);
    loop {
        let consumed = (compress.total_in() - start) as usize;
        compress
            .compress_vec(&data[consumed..], &mut out, FlushCompress::Sync)
            .expect("deflate");
        if (compress.total_in() - start) as usize == data.len() && out.len() < out.capacity() {
            break;
        }
        out.reserve(out.capacity().max(64));
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]), "no sync marker");
    out.truncate(out.len() - 4);
    out
}

pub fn fresh_compressor() -> Compress {
    Compress::new(flate2::Compression::default(), false)
}
