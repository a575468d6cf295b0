//! What the two Autobahn examples share: the configuration under test and the echo loop.

use typed_ws::{Compression, Config, Session};

/// Autobahn's largest messages are 16 MiB (cases 9.x); the limits leave room above them.
const LIMIT: usize = 64 << 20;

/// The configuration under test, with `--fragment-size` applied (0 sends every echo whole)
/// and `compression`, if any.
pub fn autobahn_config(
    fragment_size: &str,
    compression: Option<Compression>,
) -> Result<Config, String> {
    let fragment_size: usize = fragment_size
        .parse()
        .map_err(|_| format!("--fragment-size takes a number of bytes, not {fragment_size:?}"))?;
    let config = Config::new()
        .max_message_size(LIMIT)
        .max_frame_size(LIMIT)
        .fragment_size(fragment_size);
    Ok(match compression {
        Some(compression) => config.compression(compression),
        None => config,
    })
}

/// permessage-deflate for every message, whatever its size, so that cases 12 and 13 see it; at
/// level 1, since the cases check the wire, not the ratio, and give each case 20 seconds.
pub fn compress_all() -> Compression {
    Compression::new().threshold(0).level(1)
}

/// Sends every data message back as it came, until the session ends. Pings are answered and
/// close frames returned by the session itself.
pub async fn echo_frames<C>(mut session: Session<C>) {
    while let Ok(frame) = session.receive().await {
        if frame.is_data() && session.send(frame).await.is_err() {
            break;
        }
    }
}
