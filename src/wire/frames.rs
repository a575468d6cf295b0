//! Data messages as raw frames, for the two cases tungstenite's own framing does not cover: a
//! message compressed with permessage-deflate (RSV1 on its first frame, and on no other) and
//! a message cut into fragments of the configured size.

use bytes::Bytes;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// The frames of one data message of `kind` carrying `data`: fragments of at most `fragment`
/// bytes (one frame when `None`), RSV1 on the first when `compressed`. A message always has
/// a frame, an empty one too.
pub(crate) fn message(
    kind: Data,
    data: Bytes,
    compressed: bool,
    fragment: Option<usize>,
) -> impl Iterator<Item = Frame> {
    let size = fragment.unwrap_or(usize::MAX).max(1);
    let mut start = Some(0usize);
    std::iter::from_fn(move || {
        let from = start?;
        let end = data.len().min(from.saturating_add(size));
        let opcode = if from == 0 {
            OpCode::Data(kind)
        } else {
            OpCode::Data(Data::Continue)
        };
        let mut frame = Frame::message(data.slice(from..end), opcode, end == data.len());
        frame.header_mut().rsv1 = compressed && from == 0;
        start = (end < data.len()).then_some(end);
        Some(frame)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opcode, FIN, RSV1 and payload length of each frame.
    fn shapes(frames: impl Iterator<Item = Frame>) -> Vec<(OpCode, bool, bool, usize)> {
        frames
            .map(|f| {
                let h = f.header();
                (h.opcode, h.is_final, h.rsv1, f.payload().len())
            })
            .collect()
    }

    #[test]
    fn fragments_carry_rsv1_on_the_first_only_and_fin_on_the_last() {
        let (text, more) = (OpCode::Data(Data::Text), OpCode::Data(Data::Continue));
        let data = Bytes::from(vec![7; 10]);
        assert_eq!(
            shapes(message(Data::Text, data.clone(), true, Some(4))),
            [
                (text, false, true, 4),
                (more, false, false, 4),
                (more, true, false, 2)
            ]
        );
        assert_eq!(
            shapes(message(Data::Text, data.clone(), false, None)),
            [(text, true, false, 10)]
        );
        assert_eq!(
            shapes(message(Data::Text, data, false, Some(10))),
            [(text, true, false, 10)]
        );
        let binary = OpCode::Data(Data::Binary);
        assert_eq!(
            shapes(message(Data::Binary, Bytes::new(), true, Some(4))),
            [(binary, true, true, 0)]
        );
    }
}
