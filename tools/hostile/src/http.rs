//! The attacks on the HTTP side of a server: connections that never finish their request,
//! an offer of subprotocols that no server speaks, and a crowd joining the chat room.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{interval, sleep, timeout};
use tokio_tungstenite::tungstenite::handshake::client::generate_key;

use crate::attacks::{Ctx, Outcome, watch_with, window};
use crate::client::{CLOSE, RawWs, header, other};
use crate::conn::{Conn, conns};
use crate::report::{disconnects, ms, percentile};
use crate::server::descriptors;

/// Half send nothing, half trickle their request.
pub const TRICKLE_CONNECTIONS: usize = 1_000;

/// 500 connections that send nothing and 500 that send their upgrade request a byte every 2 s,
/// watched past the 10 s handshake deadline, with the server's open descriptors.
pub async fn trickle(ctx: &Ctx) -> Outcome {
    let conns = conns(TRICKLE_CONNECTIONS);
    let (addr, path) = (ctx.addr, ctx.target.ws_path());
    let request: Arc<[u8]> = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        generate_key()
    )
    .into_bytes()
    .into();
    let before = descriptors(ctx.pid).unwrap_or(0);
    let started = Instant::now();
    // One connection every 2 ms, as `silent` does, so that small accept queues keep up.
    let mut pace = interval(Duration::from_millis(2));
    let mut tasks = Vec::new();
    for (i, conn) in conns.iter().enumerate() {
        pace.tick().await;
        let (conn, request) = (conn.clone(), request.clone());
        let trickling = i % 2 == 1;
        tasks.push(tokio::spawn(async move {
            let mut stream = match TcpStream::connect(addr).await {
                Ok(stream) => stream,
                Err(e) => return conn.fail(e),
            };
            conn.connected(stream.local_addr().map(|a| a.port()).unwrap_or(0));
            let mut bytes = interval(Duration::from_secs(2));
            let mut sent = 0;
            let mut buf = [0u8; 1024];
            loop {
                tokio::select! {
                    read = stream.read(&mut buf) => match read {
                        Ok(0) => return conn.close("EOF"),
                        Err(_) => return conn.close("read failed"),
                        Ok(_) => {}
                    },
                    _ = bytes.tick(), if trickling && sent < request.len() => {
                        if stream.write_all(&request[sent..=sent]).await.is_err() {
                            return conn.close("write failed");
                        }
                        sent += 1;
                    }
                }
            }
        }));
    }
    let mut most = before;
    let each_tick = || most = most.max(descriptors(ctx.pid).unwrap_or(0));
    watch_with(ctx, &conns, window(ctx, 30, 15), each_tick).await;
    let watched = started.elapsed();
    let at_end = descriptors(ctx.pid).unwrap_or(0);
    ctx.end(tasks).await;
    let (trickling, silent): (Vec<_>, Vec<_>) = conns
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, _)| i % 2 == 1);
    let group = |g: Vec<(usize, Arc<Conn>)>| g.into_iter().map(|(_, c)| c).collect::<Vec<_>>();
    let notes = vec![
        format!("silent: {}", closed_of(&group(silent), watched)),
        format!("trickling: {}", closed_of(&group(trickling), watched)),
        format!(
            "server descriptors: {before} before, {most} at most, {at_end} when the window ended"
        ),
    ];
    Outcome {
        conns,
        notes,
        ..Outcome::default()
    }
}

/// "closed N of M after T s": T is when the last closed if all did, else how long they were
/// watched; then the group's summary.
fn closed_of(group: &[Arc<Conn>], watched: Duration) -> String {
    let d = disconnects(group);
    let after = match d.closed.last() {
        Some(last) if d.closed.len() == group.len() => *last,
        _ => watched,
    };
    format!(
        "closed {} of {} after {:.1} s ({})",
        d.closed.len(),
        group.len(),
        after.as_secs_f64(),
        d.summary()
    )
}

/// One upgrade request that offers 9,000 subprotocols, none of them the server's: what comes
/// back, and how much of the offer it repeats.
pub async fn offer(ctx: &Ctx) -> Outcome {
    const NAMES: usize = 9_000;
    let names: Vec<String> = (0..NAMES).map(|i| format!("p{i:04}")).collect();
    let offer = names.join(", ");
    let (addr, path) = (ctx.addr, ctx.target.ws_path());
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: {offer}\r\n\r\n",
        generate_key()
    );
    let answer = timeout(Duration::from_secs(15), async {
        let mut http = RawWs::tcp(addr, None).await?;
        http.stream.write_all(request.as_bytes()).await?;
        let head = http.head().await?;
        let body = match header(&head, "content-length").map(str::parse::<usize>) {
            Some(Ok(len)) => http.body(len).await?,
            _ if head.starts_with("HTTP/1.1 101") => Vec::new(),
            // A body without a length ends with the connection.
            _ => timeout(Duration::from_secs(2), http.body(1 << 20))
                .await
                .map_err(|_| other("a body without Content-Length that did not end"))??,
        };
        Ok::<_, io::Error>((head, body))
    })
    .await
    .unwrap_or_else(|_| Err(other("no answer within 15 s")));
    let (cell, note) = match answer {
        Ok((head, body)) => {
            let status = head.lines().next().unwrap_or_default().to_owned();
            let code = status.split_whitespace().nth(1).unwrap_or("?").to_owned();
            let quoted = String::from_utf8_lossy(&body)
                .split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|word| {
                    names
                        .binary_search_by(|name| name.as_str().cmp(word))
                        .is_ok()
                })
                .count();
            (
                format!("{code}, body {} B", body.len()),
                format!(
                    "an offer of {NAMES} names ({} B): {status:?}, head {} B, body {} B quoting \
                     {quoted} of the names",
                    offer.len(),
                    head.len(),
                    body.len()
                ),
            )
        }
        Err(e) => (
            "no answer".to_owned(),
            format!("an offer of {NAMES} names ({} B): {e}", offer.len()),
        ),
    };
    Outcome {
        per_unit: Some(cell),
        notes: vec![note],
        no_disconnect: true,
        ..Outcome::default()
    }
}

/// How many members join as "x".
fn crowd(quick: bool) -> usize {
    if quick { 1_000 } else { 5_000 }
}

/// How many members join in all: the crowd, then the joins with names of their own.
pub fn members(quick: bool) -> usize {
    crowd(quick) + JOINS_PER_FIGURE
}

/// How many joins each figure of `joins` averages over, and how many join with names of their
/// own after the crowd: what a join costs the room at that size when the name is free, so
/// that what a taken name adds shows, and what every join costs (each member hears of it).
const JOINS_PER_FIGURE: usize = 100;

/// Members join the chat room one after the other, all asking for the same name, and read
/// everything the room sends them; then a few with names of their own. The time each join
/// took, from connecting to the welcome.
pub async fn joins(ctx: &Ctx) -> Outcome {
    let crowd = crowd(ctx.quick);
    let conns = conns(members(ctx.quick));
    let started = Instant::now();
    // The crowd's joins cost the server more and more: past the limit, the rest of it is left
    // out, and the joins with names of their own get a minute more.
    let limit = window(ctx, 300, 60);
    let (mut as_x, mut own) = (Vec::new(), Vec::new());
    let mut tasks = Vec::new();
    let (mut attempted, mut refused) = (0, 0);
    for (i, conn) in conns.iter().enumerate() {
        let (path, times, limit) = if i < crowd {
            ("/ws?name=x".to_owned(), &mut as_x, limit)
        } else {
            (
                format!("/ws?name=y{i}"),
                &mut own,
                limit + Duration::from_secs(60),
            )
        };
        if started.elapsed() >= limit || ctx.sampler.dead() {
            continue;
        }
        attempted = i + 1;
        let begun = Instant::now();
        let joined = timeout(Duration::from_secs(15), async {
            let mut ws = RawWs::connect(ctx.addr, &path, false, Some(conn)).await?;
            // The welcome is the first thing a member hears, or the close of a full room.
            let first = ws.next_frame().await?;
            Ok::<_, io::Error>((ws, first))
        })
        .await;
        let mut ws = match joined {
            Ok(Ok((_, first))) if first.opcode() == CLOSE => {
                if let Some(code) = first.close_code() {
                    let _ = conn.code.set(code);
                }
                conn.close("refused");
                refused += 1;
                continue;
            }
            Ok(Ok((ws, _))) => ws,
            Ok(Err(e)) => {
                conn.fail(e);
                continue;
            }
            Err(_) => {
                conn.fail("no welcome within 15 s");
                continue;
            }
        };
        times.push(begun.elapsed());
        let conn = conn.clone();
        // Everyone hears every join, and answers the server's pings: a member that stopped
        // reading would be let go as slow, one that never answers as gone.
        tasks.push(tokio::spawn(async move { ws.hold(&conn).await }));
    }
    let took = started.elapsed();
    // A moment for the last joins' news to reach everyone, and for any slow member to go.
    sleep(Duration::from_secs(1)).await;
    ctx.end(tasks).await;
    let first = &as_x[..as_x.len().min(JOINS_PER_FIGURE)];
    let last = &as_x[as_x.len().saturating_sub(JOINS_PER_FIGURE)..];
    let note = format!(
        "{} of {crowd} joined as \"x\", then {} of {JOINS_PER_FIGURE} with names of their own, \
         in {:.1} s; {refused} refused with a close frame (a full room); joins 1–{} as x: {}; \
         joins {}–{} as x: {}; with names of their own: {}",
        as_x.len(),
        own.len(),
        took.as_secs_f64(),
        first.len(),
        per_join(first),
        as_x.len() - last.len() + 1,
        as_x.len(),
        per_join(last),
        per_join(&own)
    );
    Outcome {
        per_unit: Some(format!(
            "last {} as x: {} ms/join, own names: {}",
            last.len(),
            ms(mean(last)),
            ms(mean(&own))
        )),
        notes: vec![note],
        conns: conns[..attempted].to_vec(),
        ..Outcome::default()
    }
}

fn mean(times: &[Duration]) -> Duration {
    times.iter().sum::<Duration>() / times.len().max(1) as u32
}

/// "M ms per join (median, max)" of `times`.
fn per_join(times: &[Duration]) -> String {
    let mut sorted = times.to_vec();
    sorted.sort();
    let median = percentile(&sorted, 50.0).map_or("–".into(), ms);
    let max = sorted.last().map_or("–".into(), |d| ms(*d));
    format!(
        "{} ms per join (median {median} ms, max {max} ms)",
        ms(mean(times))
    )
}
