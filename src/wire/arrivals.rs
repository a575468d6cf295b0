//! Counting the WebSocket messages that arrive, from the bytes [`Elastic`](super::Elastic)
//! reads: a session then knows, without reading ahead through tungstenite, whether more input
//! is already waiting (to put off a flush, see `session::link`), and the bytes of messages
//! that have not arrived whole are taken from the config's [budget](crate::budget) for them.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::budget::{Budget, Overdrawn, Share};
use crate::wire::header::{self, MAX_LEN};

/// How many complete WebSocket messages (control frames included) have been read from the
/// socket since the session started: shared by the stream, which counts, and the session,
/// which compares the count with the messages tungstenite has handed out. Both only touch it
/// under the session's lock; atomics make that sharing safe, not fast.
#[derive(Debug, Default)]
pub(crate) struct Arrivals {
    counting: AtomicBool,
    count: AtomicU64,
    /// The budget that unfinished messages take from, from the session's start.
    budget: OnceLock<Arc<Budget>>,
}

impl Arrivals {
    /// Starts counting, from the next byte read: the first byte of the first frame once the
    /// opening handshake is done. Bytes read before, the handshake and anything that came with
    /// it, are never counted.
    pub(crate) fn start(&self) {
        self.counting.store(true, Ordering::Relaxed);
    }

    /// Takes the bytes of unfinished messages from `budget`, from the next byte read on, as
    /// [`Arrivals::start`] counts.
    pub(crate) fn hold_within(&self, budget: Arc<Budget>) {
        let _ = self.budget.set(budget);
    }

    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Counts the messages that `data`, just read, completes, once counting has started, and
    /// takes what it adds to an unfinished message from the budget.
    pub(super) fn note(&self, scan: &mut Scan, data: &[u8]) -> io::Result<()> {
        if scan.share.is_none()
            && let Some(budget) = self.budget.get()
        {
            scan.share = Some(Share::new(budget.clone()));
        }
        let counting = self.counting.load(Ordering::Relaxed);
        if !counting && scan.share.is_none() {
            return Ok(());
        }
        let messages = scan.feed(data).map_err(io::Error::other)?;
        if counting && messages > 0 {
            // One writer, under the session's lock: no read-modify-write needed.
            let count = self.count.load(Ordering::Relaxed);
            self.count.store(count + messages, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Follows frame boundaries through the bytes read, across reads, without validating
/// anything: tungstenite does that, and a malformed frame ends the session anyway.
#[derive(Debug, Default)]
pub(super) struct Scan {
    header: [u8; MAX_LEN],
    /// Header bytes seen of the frame that starts next.
    have: usize,
    /// Payload bytes of the current frame still to come.
    payload_left: u64,
    /// The current frame completes a message: a final data frame or a control frame.
    ends_message: bool,
    /// The current frame is a control frame, which is never part of a data message.
    control: bool,
    /// Payload bytes seen of the data message in progress.
    unfinished: u64,
    /// What the message in progress holds of the budget, when there is one.
    share: Option<Share>,
}

impl Scan {
    /// Walks `data` and returns how many messages it completed. The data message it leaves
    /// unfinished takes what it holds from the budget: a message that starts and ends within
    /// one read never touches it.
    fn feed(&mut self, data: &[u8]) -> Result<u64, Overdrawn> {
        let done = self.walk(data);
        if let Some(share) = &mut self.share {
            // Payload bytes, not counting tungstenite's spare capacity: close enough for a
            // bound, and what a peer controls.
            let held = usize::try_from(self.unfinished).unwrap_or(usize::MAX);
            share.take(held.saturating_sub(share.held()))?;
        }
        Ok(done)
    }

    fn walk(&mut self, mut data: &[u8]) -> u64 {
        let mut done = 0;
        loop {
            if self.payload_left > 0 {
                let take = self.payload_left.min(data.len() as u64);
                self.payload_left -= take;
                data = &data[take as usize..];
                if !self.control {
                    self.unfinished += take;
                }
                if self.payload_left > 0 {
                    return done;
                }
                self.frame_done();
                done += u64::from(self.ends_message);
            }
            // Usually a frame's header is whole in one read; when a read splits it, its bytes
            // are gathered first.
            let whole = if self.have == 0 { parse(data) } else { None };
            let (ends_message, control, length) = match whole {
                Some((ends_message, control, length, header_len)) => {
                    data = &data[header_len..];
                    (ends_message, control, length)
                }
                None => {
                    let Some((&byte, rest)) = data.split_first() else {
                        return done;
                    };
                    data = rest;
                    self.header[self.have] = byte;
                    self.have += 1;
                    let Some((ends_message, control, length, _)) = parse(&self.header[..self.have])
                    else {
                        continue;
                    };
                    self.have = 0;
                    (ends_message, control, length)
                }
            };
            self.ends_message = ends_message;
            self.control = control;
            self.payload_left = length;
            if length == 0 {
                self.frame_done();
                done += u64::from(ends_message);
            }
        }
    }

    /// The current frame is all read: a final data frame completes its message, which gives
    /// back what it held.
    fn frame_done(&mut self) {
        if self.ends_message && !self.control {
            self.unfinished = 0;
            if let Some(share) = &mut self.share {
                share.give_back();
            }
        }
    }
}

/// The header at the start of `bytes`, if it is all there: whether the frame ends a message,
/// whether it is a control frame, its payload length, and the header's.
fn parse(bytes: &[u8]) -> Option<(bool, bool, u64, usize)> {
    let header = header::parse(bytes)?;
    Some((
        header.ends_message(),
        header.is_control(),
        header.payload_len,
        header.len,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_frame as frame;

    #[test]
    fn scan_counts_messages_of_every_length_form_masked_or_not_however_the_reads_split() {
        let mut stream = Vec::new();
        stream.extend(frame(0x81, 0, true)); // empty text: 1
        stream.extend(frame(0x82, 125, false)); // 2
        stream.extend(frame(0x81, 126, true)); // 16-bit length: 3
        stream.extend(frame(0x82, 70_000, true)); // 64-bit length: 4
        stream.extend(frame(0x01, 10, true)); // first fragment: no message yet
        stream.extend(frame(0x89, 4, true)); // a ping between fragments: 5
        stream.extend(frame(0x00, 0, true)); // empty continuation: none yet
        stream.extend(frame(0x80, 7, true)); // final fragment: 6
        stream.extend(frame(0x88, 2, false)); // close: 7
        let partial = frame(0x81, 300, true);
        stream.extend(&partial[..partial.len() - 1]); // one byte short
        for chunk in [1, 2, 3, 7, 64, 4096, stream.len()] {
            let mut scan = Scan::default();
            let counted: u64 = stream.chunks(chunk).map(|c| scan.walk(c)).sum();
            assert_eq!(counted, 7, "reads of {chunk} bytes");
            assert_eq!(scan.walk(&partial[partial.len() - 1..]), 1, "the last byte");
        }
    }

    #[test]
    fn an_unfinished_message_holds_its_payload_from_the_budget_until_its_final_frame() {
        let budget = Budget::new(1000);
        let mut scan = Scan {
            share: Some(Share::new(budget.clone())),
            ..Scan::default()
        };
        // A message that arrives whole in one read takes nothing.
        assert_eq!(scan.feed(&frame(0x82, 300, true)), Ok(1));
        assert_eq!(budget.held(), 0);
        // A first fragment is held; a ping between fragments is not.
        assert_eq!(scan.feed(&frame(0x02, 400, true)), Ok(0));
        assert_eq!(budget.held(), 400);
        assert_eq!(scan.feed(&frame(0x89, 100, true)), Ok(1));
        assert_eq!(budget.held(), 400);
        // Part of a continuation counts as it arrives.
        let continuation = frame(0x00, 400, true);
        let header = continuation.len() - 400;
        assert_eq!(scan.feed(&continuation[..header + 100]), Ok(0));
        assert_eq!(budget.held(), 500);
        assert_eq!(scan.feed(&continuation[header + 100..]), Ok(0));
        assert_eq!(budget.held(), 800);
        // The final fragment completes the message, which gives everything back.
        assert_eq!(scan.feed(&frame(0x80, 150, true)), Ok(1));
        assert_eq!(budget.held(), 0);

        // Another session holds 700; this one's fragment would go past the limit.
        let mut other = Share::new(budget.clone());
        other.take(700).expect("within the budget");
        assert_eq!(
            scan.feed(&frame(0x01, 400, true)),
            Err(Overdrawn { limit: 1000 })
        );
        assert_eq!(budget.held(), 700);
        drop(other);
        drop(scan);
        assert_eq!(budget.held(), 0);
    }
}
