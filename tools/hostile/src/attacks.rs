//! The attacks on the echo servers, and what every attack runs with: the context of
//! measurements and the outcome it hands back.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::{interval, sleep, timeout};

use crate::Target;
use crate::client::{BINARY, PING, RawWs, frame};
use crate::common::{ChatMessage, ECHO_PATH};
use crate::conn::{Conn, check_kernel, conns};
use crate::report::{disconnects, mib};
use crate::server::{Sampler, StderrCount, memory};

/// What an attack runs against, and the measurements taken while it runs.
pub struct Ctx {
    pub target: Target,
    pub addr: SocketAddr,
    pub pid: u32,
    pub quick: bool,
    pub baseline: u64,
    pub sampler: Sampler,
    pub stderr: Arc<StderrCount>,
    /// The server's stderr (bytes, lines) when the attack ended, before its connections
    /// were dropped: what comes after is the server logging ordinary disconnects.
    pub stderr_at_end: OnceLock<(u64, u64)>,
}

impl Ctx {
    /// Ends the attack: notes the server's stderr so far, then drops every connection.
    pub async fn end(&self, tasks: Vec<JoinHandle<()>>) {
        let _ = self.stderr_at_end.set(self.stderr.counts());
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// What an attack hands back for the report.
#[derive(Default)]
pub struct Outcome {
    pub conns: Vec<Arc<Conn>>,
    /// Appended to the peak RSS cell (memory per session or per message).
    pub per_unit: Option<String>,
    /// Raw numbers of the attack for its line under the table.
    pub notes: Vec<String>,
    /// The disconnect column does not apply (idle sessions are meant to stay).
    pub no_disconnect: bool,
}

/// Waits until every connection is done (then a second more, to see memory settle), the
/// server died, or `window` passed, checking the kernel's table every 100 ms; gives how long
/// it watched, that second aside.
pub async fn watch(ctx: &Ctx, conns: &[Arc<Conn>], window: Duration) -> Duration {
    watch_with(ctx, conns, window, || {}).await
}

/// [`watch`], calling `each_tick` every 100 ms too.
pub async fn watch_with(
    ctx: &Ctx,
    conns: &[Arc<Conn>],
    window: Duration,
    mut each_tick: impl FnMut(),
) -> Duration {
    let start = Instant::now();
    let mut tick = interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        check_kernel(conns, ctx.addr.port());
        each_tick();
        if ctx.sampler.dead() || start.elapsed() >= window {
            return start.elapsed();
        }
        if conns.iter().all(|c| c.done()) {
            let watched = start.elapsed();
            sleep(Duration::from_secs(1).min(window.saturating_sub(watched))).await;
            return watched;
        }
    }
}

pub fn window(ctx: &Ctx, full: u64, quick: u64) -> Duration {
    Duration::from_secs(if ctx.quick { quick } else { full })
}

/// Handshakes the connection to `/echo`, offering permessage-deflate when `deflate`; on
/// failure records why and returns `None`.
pub async fn open(addr: SocketAddr, deflate: bool, conn: &Conn) -> Option<RawWs> {
    let connect = RawWs::connect(addr, ECHO_PATH, deflate, Some(conn));
    match timeout(Duration::from_secs(15), connect).await {
        Ok(Ok(ws)) => Some(ws),
        Ok(Err(e)) => {
            conn.fail(e);
            None
        }
        Err(_) => {
            conn.fail("handshake timed out");
            None
        }
    }
}

/// Sends pre-built pings as fast as the socket takes them and never reads.
pub async fn ping_flood(ctx: &Ctx) -> Outcome {
    const FRAMES_PER_BATCH: usize = 500;
    let conns = conns(1);
    let written = Arc::new(AtomicU64::new(0));
    let one = frame(PING, &[0x5a; 125]);
    let frame_len = one.len() as u64;
    let batch: Vec<u8> = one.repeat(FRAMES_PER_BATCH);
    let task = {
        let (conn, written, addr) = (conns[0].clone(), written.clone(), ctx.addr);
        tokio::spawn(async move {
            let Some(mut ws) = open(addr, false, &conn).await else {
                return;
            };
            let mut at = 0;
            loop {
                match ws.stream.write(&batch[at..]).await {
                    Ok(0) | Err(_) => return conn.close("write failed"),
                    Ok(n) => {
                        written.fetch_add(n as u64, Relaxed);
                        at = (at + n) % batch.len();
                    }
                }
            }
        })
    };
    watch(ctx, &conns, window(ctx, 15, 5)).await;
    let pings = written.load(Relaxed) / frame_len;
    ctx.end(vec![task]).await;
    Outcome {
        conns,
        notes: vec![format!(
            "pings sent: {pings} ({:.1} MiB)",
            mib(pings * frame_len)
        )],
        ..Outcome::default()
    }
}

/// 500 connections that send nothing, 100 that send a header line every 2 s. The window
/// counts from the last connection, and each one's time from its own connect.
pub async fn silent(ctx: &Ctx) -> Outcome {
    let conns = conns(600);
    // One connection every 2 ms (600 in 1.2 s): a burst overflows small accept queues
    // (Python's backlog is 100), and a server then meets some connections seconds after the
    // client thinks them open. Every sixth is a slowloris.
    let mut pace = interval(Duration::from_millis(2));
    let mut tasks = Vec::new();
    for (i, conn) in conns.iter().enumerate() {
        pace.tick().await;
        let (conn, addr) = (conn.clone(), ctx.addr);
        let slow = i % 6 == 5;
        tasks.push(tokio::spawn(async move {
            let mut stream = match TcpStream::connect(addr).await {
                Ok(stream) => stream,
                Err(e) => return conn.fail(e),
            };
            conn.connected(stream.local_addr().map(|a| a.port()).unwrap_or(0));
            let mut headers = interval(Duration::from_secs(2));
            let mut sent = 0u32;
            let mut buf = [0u8; 1024];
            loop {
                tokio::select! {
                    read = stream.read(&mut buf) => match read {
                        Ok(0) => return conn.close("EOF"),
                        Err(_) => return conn.close("read failed"),
                        Ok(_) => {}
                    },
                    _ = headers.tick(), if slow => {
                        let line = if sent == 0 {
                            format!("GET {ECHO_PATH} HTTP/1.1\r\nHost: {addr}\r\n")
                        } else {
                            format!("X-Slow-{sent}: {sent}\r\n")
                        };
                        sent += 1;
                        if stream.write_all(line.as_bytes()).await.is_err() {
                            return conn.close("write failed");
                        }
                    }
                }
            }
        }));
    }
    watch(ctx, &conns, window(ctx, 20, 12)).await;
    ctx.end(tasks).await;
    let (slow, quiet): (Vec<_>, Vec<_>) = conns
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, _)| i % 6 == 5);
    let group = |g: Vec<(usize, Arc<Conn>)>| g.into_iter().map(|(_, c)| c).collect::<Vec<_>>();
    let notes = vec![
        format!("silent: {}", disconnects(&group(quiet)).summary()),
        format!("slowloris: {}", disconnects(&group(slow)).summary()),
    ];
    Outcome {
        conns,
        notes,
        ..Outcome::default()
    }
}

/// A valid ChatMessage whose `text` makes it about `size` bytes of MessagePack.
pub fn big_message(id: u64, size: usize) -> Vec<u8> {
    let message = ChatMessage {
        id,
        author: "mallory".into(),
        text: "x".repeat(size - 64),
        tags: vec!["big".into()],
        reply_to: None,
    };
    rmp_serde::to_vec_named(&message).expect("a ChatMessage encodes")
}

/// 40 sessions each send 200 messages of ~100 KiB and never read the echoes.
pub async fn non_reading(ctx: &Ctx) -> Outcome {
    const SESSIONS: usize = 40;
    const MESSAGES: u64 = 200;
    let message = big_message(1, 100 * 1024);
    let framed = Arc::new(frame(BINARY, &message));
    let conns = conns(SESSIONS);
    let sent = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = conns
        .iter()
        .map(|conn| {
            let (conn, framed, sent, addr) = (conn.clone(), framed.clone(), sent.clone(), ctx.addr);
            tokio::spawn(async move {
                let Some(mut ws) = open(addr, false, &conn).await else {
                    return;
                };
                for _ in 0..MESSAGES {
                    if ws.stream.write_all(&framed).await.is_err() {
                        return conn.close("write failed");
                    }
                    sent.fetch_add(1, Relaxed);
                }
                // Everything is sent: hold the session and read nothing.
                std::future::pending::<()>().await;
            })
        })
        .collect();
    watch(ctx, &conns, window(ctx, 45, 40)).await;
    let sent = sent.load(Relaxed);
    ctx.end(tasks).await;
    Outcome {
        conns,
        notes: vec![format!(
            "messages of {} B written: {sent} of {} ({:.0} MiB)",
            message.len(),
            SESSIONS as u64 * MESSAGES,
            mib(sent * framed.len() as u64)
        )],
        ..Outcome::default()
    }
}

/// 20 sessions go quiet after the handshake: no reads, no writes, no FIN.
pub async fn vanish(ctx: &Ctx) -> Outcome {
    let conns = conns(20);
    let tasks: Vec<_> = conns
        .iter()
        .map(|conn| {
            let (conn, addr) = (conn.clone(), ctx.addr);
            tokio::spawn(async move {
                let Some(ws) = open(addr, false, &conn).await else {
                    return;
                };
                let _held = ws;
                std::future::pending::<()>().await;
            })
        })
        .collect();
    watch(ctx, &conns, window(ctx, 70, 50)).await;
    ctx.end(tasks).await;
    Outcome {
        conns,
        ..Outcome::default()
    }
}

pub fn idle_sessions(quick: bool) -> usize {
    if quick { 1_000 } else { 5_000 }
}

/// Sessions that stay open doing nothing but answering pings; memory per session.
pub async fn idle(ctx: &Ctx) -> Outcome {
    hold_idle(ctx, idle_sessions(ctx.quick), None).await
}

/// `sessions` sessions that answer pings and nothing else; memory per session. With `first`,
/// a compressed message, each offers permessage-deflate, sends it and reads its echo first.
pub async fn hold_idle(ctx: &Ctx, sessions: usize, first: Option<Arc<Vec<u8>>>) -> Outcome {
    let conns = conns(sessions);
    let opened = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(64));
    let started = Instant::now();
    let tasks: Vec<_> = conns
        .iter()
        .map(|conn| {
            let (conn, opened, gate, addr) = (conn.clone(), opened.clone(), gate.clone(), ctx.addr);
            let first = first.clone();
            tokio::spawn(async move {
                let permit = gate.acquire_owned().await;
                let mut ws = open(addr, first.is_some(), &conn).await;
                if let (Some(session), Some(first)) = (ws.as_mut(), first) {
                    let echoed = async {
                        session.stream.write_all(&first).await?;
                        session.skip_message().await
                    };
                    let error = match timeout(Duration::from_secs(15), echoed).await {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(e.to_string()),
                        Err(_) => Some("timed out".to_owned()),
                    };
                    if let Some(error) = error {
                        conn.fail(format!("no echo of the first message: {error}"));
                        ws = None;
                    }
                }
                opened.fetch_add(1, Relaxed);
                drop(permit);
                if let Some(mut ws) = ws {
                    ws.hold(&conn).await;
                }
            })
        })
        .collect();
    // All handshakes done (2 minutes at most), then a settling pause well inside any
    // keep-alive period.
    let mut tick = interval(Duration::from_millis(100));
    while opened.load(Relaxed) < sessions
        && started.elapsed() < Duration::from_secs(120)
        && !ctx.sampler.dead()
    {
        tick.tick().await;
    }
    let setup = started.elapsed();
    sleep(Duration::from_secs(3)).await;
    let after = memory(ctx.pid).map_or(0, |(rss, _)| rss);
    let established = conns.iter().filter(|c| c.failed.get().is_none()).count();
    ctx.end(tasks).await;
    let growth = after.saturating_sub(ctx.baseline);
    let per_session = growth / established.max(1) as u64;
    Outcome {
        per_unit: Some(format!("{:.1} KiB/session", per_session as f64 / 1024.0)),
        notes: vec![format!(
            "{established} of {sessions} sessions open in {:.1} s; RSS 3 s later {:.1} MiB, \
             +{:.1} MiB = {per_session} B per idle session",
            setup.as_secs_f64(),
            mib(after),
            mib(growth)
        )],
        conns,
        no_disconnect: true,
    }
}

/// One MessagePack ChatMessage of exactly `size` bytes whose `tags` is an array32 of empty
/// strings, as many as fit.
fn amplifying_message(size: usize) -> (Vec<u8>, usize) {
    let mut head = vec![0x85]; // a map of 5 entries
    let str8 = |out: &mut Vec<u8>, s: &str| {
        out.push(0xa0 | s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    };
    str8(&mut head, "id");
    head.push(0x01);
    str8(&mut head, "author");
    str8(&mut head, "mallory");
    str8(&mut head, "text");
    str8(&mut head, "");
    str8(&mut head, "tags");
    let tail = {
        let mut tail = Vec::new();
        str8(&mut tail, "reply_to");
        tail.push(0xc0); // nil
        tail
    };
    let count = size - head.len() - 5 - tail.len();
    head.push(0xdd); // array32
    head.extend_from_slice(&(count as u32).to_be_bytes());
    head.resize(head.len() + count, 0xa0); // empty strings
    head.extend_from_slice(&tail);
    (head, count)
}

/// 30 sessions each send one 1 MiB message that decodes to a vector of empty strings.
pub async fn amplification(ctx: &Ctx) -> Outcome {
    const SESSIONS: usize = 30;
    let (message, count) = amplifying_message(1 << 20);
    let framed = Arc::new(frame(BINARY, &message));
    let conns = conns(SESSIONS);
    let sent = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = conns
        .iter()
        .map(|conn| {
            let (conn, framed, sent, addr) = (conn.clone(), framed.clone(), sent.clone(), ctx.addr);
            tokio::spawn(async move {
                let Some(mut ws) = open(addr, false, &conn).await else {
                    return;
                };
                if ws.stream.write_all(&framed).await.is_err() {
                    return conn.close("write failed");
                }
                sent.fetch_add(1, Relaxed);
                std::future::pending::<()>().await;
            })
        })
        .collect();
    watch(ctx, &conns, window(ctx, 20, 10)).await;
    let sent = sent.load(Relaxed);
    ctx.end(tasks).await;
    // The peak can fall between two samples; VmHWM cannot miss it (a fresh child per attack).
    let hwm = memory(ctx.pid).map_or(0, |(_, hwm)| hwm);
    let growth = ctx.sampler.peak().max(hwm).saturating_sub(ctx.baseline);
    let per_message = growth / sent.max(1);
    Outcome {
        conns,
        per_unit: Some(format!("{:.1} MiB/msg", mib(per_message))),
        notes: vec![format!(
            "messages of {} B with {count} empty strings sent: {sent}; max(peak, HWM) growth \
             {:.1} MiB = {per_message} B per message",
            message.len(),
            mib(growth)
        )],
        ..Outcome::default()
    }
}
