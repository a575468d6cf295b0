//! The bystander: one well-behaved client, a round trip every 20 ms, on its own thread.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::time::{MissedTickBehavior, interval, timeout};

use crate::client::{BINARY, CLOSE, PING, PONG, RawWs, TEXT, header, other};
use crate::common::{ChatMessage, ECHO_PATH};

#[derive(Default)]
pub struct BystanderReport {
    pub rtts: Vec<Duration>,
    pub timeouts: u64,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl BystanderReport {
    pub fn attempts(&self) -> u64 {
        self.rtts.len() as u64 + self.timeouts + self.errors
    }

    pub fn failures(&self) -> u64 {
        self.timeouts + self.errors
    }
}

pub struct Bystander {
    pub stop: Arc<AtomicBool>,
    /// Round trips are only recorded while this is set: during the attack.
    pub recording: Arc<AtomicBool>,
    pub thread: std::thread::JoinHandle<BystanderReport>,
}

/// What the bystander's round trip is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A MessagePack ChatMessage to `/echo` and its echo.
    Echo,
    /// `GET /` and the whole page, on one kept-alive HTTP/1.1 connection: the chat room's
    /// own round trip, a message, would go to every member an attack added.
    Page,
}

const ROUND_TRIP_TIMEOUT: Duration = Duration::from_secs(1);

pub fn start_bystander(addr: SocketAddr, probe: Probe) -> (Bystander, mpsc::Receiver<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let recording = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready) = mpsc::channel();
    let thread = {
        let (stop, recording) = (stop.clone(), recording.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime for the bystander");
            runtime.block_on(bystander(addr, probe, stop, recording, ready_tx))
        })
    };
    (
        Bystander {
            stop,
            recording,
            thread,
        },
        ready,
    )
}

async fn bystander(
    addr: SocketAddr,
    probe: Probe,
    stop: Arc<AtomicBool>,
    recording: Arc<AtomicBool>,
    ready: mpsc::Sender<()>,
) -> BystanderReport {
    let mut report = BystanderReport::default();
    let mut ws: Option<RawWs> = None;
    let mut tick = interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut ready = Some(ready);
    for id in 1u64.. {
        tick.tick().await;
        if stop.load(Relaxed) {
            break;
        }
        let message = ChatMessage {
            id,
            author: "bystander".into(),
            text: "still there?".into(),
            tags: vec!["latency".into()],
            reply_to: id.checked_sub(1),
        };
        let started = Instant::now();
        let outcome = timeout(ROUND_TRIP_TIMEOUT, async {
            if ws.is_none() {
                ws = Some(match probe {
                    Probe::Echo => RawWs::connect(addr, ECHO_PATH, false, None).await?,
                    Probe::Page => RawWs::tcp(addr, None).await?,
                });
            }
            let Some(session) = ws.as_mut() else {
                unreachable!("connected just above");
            };
            match probe {
                Probe::Echo => round_trip(session, &message).await,
                Probe::Page => page(session, addr).await,
            }
        })
        .await;
        // A connection that failed or timed out is in no known state: start a new one.
        let failed = match outcome {
            Ok(Ok(())) => {
                if recording.load(Relaxed) {
                    report.rtts.push(started.elapsed());
                }
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
                None
            }
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some("timed out".to_owned()),
        };
        if let Some(error) = failed {
            ws = None;
            if recording.load(Relaxed) {
                if error == "timed out" {
                    report.timeouts += 1;
                } else {
                    report.errors += 1;
                }
                report.first_error.get_or_insert(error);
            }
        }
    }
    report
}

async fn round_trip(ws: &mut RawWs, message: &ChatMessage) -> io::Result<()> {
    let bytes = rmp_serde::to_vec_named(message).map_err(|e| other(e.to_string()))?;
    ws.send(BINARY, &bytes).await?;
    loop {
        match ws.read_frame().await? {
            (PING, payload) => ws.send(PONG, &payload).await?,
            (BINARY | TEXT, payload) => {
                let echo: ChatMessage =
                    rmp_serde::from_slice(&payload).map_err(|e| other(format!("echo: {e}")))?;
                return if echo == *message {
                    Ok(())
                } else {
                    Err(other("the echo differs from the message"))
                };
            }
            (CLOSE, _) => return Err(other("the server closed the bystander's session")),
            _ => {}
        }
    }
}

async fn page(http: &mut RawWs, addr: SocketAddr) -> io::Result<()> {
    let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    http.stream.write_all(request.as_bytes()).await?;
    let head = http.head().await?;
    if !head.starts_with("HTTP/1.1 200") {
        let status = head.lines().next().unwrap_or_default();
        return Err(other(format!("the page: {status}")));
    }
    let len = header(&head, "content-length")
        .and_then(|len| len.parse().ok())
        .ok_or_else(|| other("the page has no Content-Length"))?;
    if http.body(len).await?.len() < len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}
