//! The attacks that need permessage-deflate: memory that compression state adds to idle
//! sessions, bombs that inflate a thousandfold, and compressed fragments parked unfinished.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use crate::attacks::{Ctx, Outcome, big_message, hold_idle, open, watch, window};
use crate::client::{CLOSE, PING, compressed_fragment, compressed_frame};
use crate::common::ECHO_MAX_MESSAGE;
use crate::conn::{Conn, conns};
use crate::report::mib;
use crate::server::memory;

pub const IDLE_SESSIONS: usize = 1_000;

/// Idle sessions that each agreed on permessage-deflate and exchanged one small compressed
/// message: what compression state costs a session that then does nothing.
pub async fn idle(ctx: &Ctx) -> Outcome {
    // `big_message` sizes its text, not the whole: 257 makes the message 240 B of MessagePack.
    let message = big_message(1, 257);
    let framed = compressed_frame(&message);
    let wire = framed.len();
    let mut outcome = hold_idle(ctx, IDLE_SESSIONS, Some(Arc::new(framed))).await;
    outcome.notes.push(format!(
        "one message of {} B each, {wire} B compressed on the wire",
        message.len()
    ));
    outcome
}

/// 4 sessions send compressed messages that inflate to 1 MiB as fast as the server reads
/// them, and read the echoes meanwhile: the server inflates, decodes, encodes and deflates a
/// megabyte for every kilobyte it reads, and always has the next bomb waiting.
pub async fn bomb(ctx: &Ctx) -> Outcome {
    const SESSIONS: usize = 4;
    // Just under the echo server's message limit, so that every bomb is echoed.
    let message = big_message(1, ECHO_MAX_MESSAGE);
    let framed = Arc::new(compressed_frame(&message));
    let conns = conns(SESSIONS);
    let (sent, echoed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let tasks: Vec<_> = conns
        .iter()
        .map(|conn| {
            let (conn, framed, addr) = (conn.clone(), framed.clone(), ctx.addr);
            let (sent, echoed) = (sent.clone(), echoed.clone());
            tokio::spawn(async move {
                let Some(ws) = open(addr, true, &conn).await else {
                    return;
                };
                let (mut reader, mut writer) = ws.into_split();
                let send = async {
                    while writer.write_all(&framed).await.is_ok() {
                        sent.fetch_add(1, Relaxed);
                    }
                };
                let read = async {
                    loop {
                        match reader.next_frame().await {
                            Ok(frame) if frame.opcode() == CLOSE => {
                                if let Some(code) = frame.close_code() {
                                    let _ = conn.code.set(code);
                                }
                                return;
                            }
                            Ok(frame) if frame.opcode() != PING && frame.fin() => {
                                echoed.fetch_add(1, Relaxed);
                            }
                            Ok(_) => {}
                            Err(_) => return,
                        }
                    }
                };
                tokio::select! {
                    () = send => conn.close("write failed"),
                    () = read => conn.close("read ended"),
                }
            })
        })
        .collect();
    let watched = watch(ctx, &conns, window(ctx, 15, 8)).await;
    let (sent, echoed) = (sent.load(Relaxed), echoed.load(Relaxed));
    ctx.end(tasks).await;
    let mut notes = vec![format!(
        "messages of {} B compressed to {} B on the wire: {sent} sent, {echoed} echoed \
         ({:.1}/s, {:.0} MiB inflated)",
        message.len(),
        framed.len(),
        echoed as f64 / watched.as_secs_f64(),
        mib(echoed * message.len() as u64)
    )];
    notes.extend(close_codes(&conns));
    Outcome {
        conns,
        per_unit: Some(format!("{echoed} echoed")),
        notes,
        ..Outcome::default()
    }
}

/// 300 sessions each send the first frame of a compressed message, 1 MiB once inflated, and
/// never the rest, reading whatever the server says.
pub async fn parked(ctx: &Ctx) -> Outcome {
    const SESSIONS: usize = 300;
    let inflated = ECHO_MAX_MESSAGE;
    // Zeros: what DEFLATE shrinks the most; the message is never finished, so never decoded.
    let fragment = Arc::new(compressed_fragment(&vec![0; inflated]));
    let conns = conns(SESSIONS);
    let sent = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(Semaphore::new(64));
    let tasks: Vec<_> = conns
        .iter()
        .map(|conn| {
            let (conn, fragment, sent, gate, addr) = (
                conn.clone(),
                fragment.clone(),
                sent.clone(),
                gate.clone(),
                ctx.addr,
            );
            tokio::spawn(async move {
                let permit = gate.acquire_owned().await;
                let ws = open(addr, true, &conn).await;
                drop(permit);
                let Some(mut ws) = ws else {
                    return;
                };
                if ws.stream.write_all(&fragment).await.is_err() {
                    return conn.close("write failed");
                }
                sent.fetch_add(1, Relaxed);
                ws.hold(&conn).await;
            })
        })
        .collect();
    let watched = watch(ctx, &conns, window(ctx, 20, 10)).await;
    let sent = sent.load(Relaxed);
    ctx.end(tasks).await;
    // The peak can fall between two samples; VmHWM cannot miss it (a fresh child per attack).
    let hwm = memory(ctx.pid).map_or(0, |(_, hwm)| hwm);
    let growth = ctx.sampler.peak().max(hwm).saturating_sub(ctx.baseline);
    let overloaded = conns.iter().filter(|c| c.code.get() == Some(&1013)).count();
    let mut notes = vec![format!(
        "first frames of {} B on the wire, {inflated} B inflated: {sent} sent; max(peak, HWM) \
         growth {:.1} MiB; {overloaded} closed with 1013 within {:.1} s",
        fragment.len(),
        mib(growth),
        watched.as_secs_f64()
    )];
    notes.extend(close_codes(&conns));
    Outcome {
        conns,
        per_unit: Some(format!("{overloaded} closed 1013")),
        notes,
        ..Outcome::default()
    }
}

/// The close codes the server sent, with how many of each, if it sent any.
fn close_codes(conns: &[Arc<Conn>]) -> Option<String> {
    let mut codes = BTreeMap::new();
    for code in conns.iter().filter_map(|c| c.code.get()) {
        *codes.entry(*code).or_insert(0) += 1;
    }
    let codes: Vec<String> = codes
        .iter()
        .map(|(code, n)| format!("{n} × {code}"))
        .collect();
    (!codes.is_empty()).then(|| format!("close codes: {}", codes.join(", ")))
}
