//! Anchors (a) and (b): the fan-out contract written by hand with tokio-tungstenite, as a user
//! writes it. One `tokio::sync::broadcast` channel per topic carries each publication,
//! decoded and encoded once into a `Message`; every subscriber has a task that receives from
//! the channel and writes to its socket, `TCP_NODELAY` on.
//!
//! - `hand` (a): `ws.send(message)` per message, so one write (and one flush) per message;
//! - `hand_batch` (b): the same server changed only to `feed` everything the channel holds,
//!   then `flush` once: the ceiling of batching with this design.
//!
//! A subscriber that falls 1,024 messages behind (the channel's capacity, `DEFAULT_QUEUE` in
//! typed-ws) skips what it missed (`RecvError::Lagged`), as the channel makes it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use typed_ws::tokio_tungstenite::tungstenite::Message;
use typed_ws::tokio_tungstenite::tungstenite::handshake::server::{
    ErrorResponse, Request, Response,
};
use typed_ws::tokio_tungstenite::tungstenite::http::HeaderValue;
use typed_ws::tokio_tungstenite::{self, WebSocketStream};

use super::tick::Codec;

/// Each topic's channel holds this many messages for its slowest subscriber.
const CAPACITY: usize = 1024;

type Channels = Arc<Mutex<HashMap<String, broadcast::Sender<Message>>>>;

/// Runs anchor (a), or (b) when `batch`, with the contract's flags (`--listen`, `--codec`),
/// until the process is killed.
pub fn serve(batch: bool, args: &[String]) {
    let flag = |name: &str, default: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|at| args.get(at + 1).cloned())
            .unwrap_or_else(|| default.to_owned())
    };
    let addr: SocketAddr = flag("--listen", "127.0.0.1:0").parse().expect("--listen");
    let codec = Codec::from_name(&flag("--codec", "msgpack"));
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async move {
        let listener = TcpListener::bind(addr).await.expect("bind");
        println!(
            "listening on ws://{}",
            listener.local_addr().expect("address")
        );
        let channels = Channels::default();
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let channels = channels.clone();
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                if let Some((path, ws)) = accept(tcp, codec).await {
                    session(path, ws, codec, channels, batch).await;
                }
            });
        }
    });
}

/// The handshake, answering the codec's subprotocol when the client offers it; gives the path.
// The callback's error type is tungstenite's.
#[allow(clippy::result_large_err)]
async fn accept(tcp: TcpStream, codec: Codec) -> Option<(String, WebSocketStream<TcpStream>)> {
    let mut path = String::new();
    let callback = |request: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
        path = request.uri().path().to_owned();
        let offered = request
            .headers()
            .get_all("sec-websocket-protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim() == codec.name());
        if offered {
            response.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_static(codec.name()),
            );
        }
        Ok(response)
    };
    let ws = tokio_tungstenite::accept_hdr_async(tcp, callback)
        .await
        .ok()?;
    Some((path, ws))
}

async fn session(
    path: String,
    mut ws: WebSocketStream<TcpStream>,
    codec: Codec,
    channels: Channels,
    batch: bool,
) {
    let channel = |name: &str| {
        channels
            .lock()
            .unwrap()
            .entry(name.to_owned())
            .or_insert_with(|| broadcast::channel(CAPACITY).0)
            .clone()
    };
    if let Some(name) = path.strip_prefix("/topics/") {
        let mut rx = channel(name).subscribe();
        loop {
            tokio::select! {
                received = rx.recv() => match received {
                    Ok(message) if batch => {
                        if feed_all(&mut ws, &mut rx, message).await.is_err() {
                            return;
                        }
                    }
                    Ok(message) => {
                        if ws.send(message).await.is_err() {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                },
                // Subscribers send nothing; this sees the close (and answers pings).
                incoming = ws.next() => match incoming {
                    Some(Ok(message)) if !message.is_close() => {}
                    _ => return,
                },
            }
        }
    } else if let Some(name) = path.strip_prefix("/publish/") {
        let tx = channel(name);
        while let Some(Ok(message)) = ws.next().await {
            if let Some(tick) = codec.decode(&message) {
                // No receivers is not an error for a publisher.
                let _ = tx.send(codec.encode(&tick));
            } else if message.is_close() {
                return;
            }
        }
    }
}

/// Anchor (b): the message received, then everything else the channel holds, unflushed;
/// then one flush.
async fn feed_all(
    ws: &mut WebSocketStream<TcpStream>,
    rx: &mut broadcast::Receiver<Message>,
    first: Message,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    ws.feed(first).await?;
    loop {
        match rx.try_recv() {
            Ok(message) => ws.feed(message).await?,
            Err(TryRecvError::Lagged(_)) => {}
            Err(_) => break,
        }
    }
    ws.flush().await
}
