//! The echo round trips of the session bench: a typed-ws client and server, and the
//! hand-written tokio-tungstenite + serde loop a user would otherwise write.

use std::fmt::Debug;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use typed_ws::tokio_tungstenite::{self, MaybeTlsStream, WebSocketStream};
use typed_ws::{Client, Config, Server, Session};

use super::Codec;

/// Messages in flight in the pipelined groups.
pub const BURST: usize = 64;
pub const PING: Duration = Duration::from_secs(1);

/// What the echo servers carry.
pub trait Payload:
    Serialize + DeserializeOwned + PartialEq + Debug + Send + Sync + 'static
{
}
impl<T: Serialize + DeserializeOwned + PartialEq + Debug + Send + Sync + 'static> Payload for T {}

pub type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// The three echo servers of one codec and payload type.
pub struct Servers {
    pub handwritten: SocketAddr,
    pub typed: SocketAddr,
    pub typed_ping: SocketAddr,
}

impl Servers {
    pub async fn start<C: Codec, T: Payload>() -> Servers {
        Servers {
            handwritten: handwritten_server::<C, T>().await,
            typed: typed_server::<C, T>(config::<C>(false)).await,
            typed_ping: typed_server::<C, T>(config::<C>(true)).await,
        }
    }
}

pub fn config<C: Codec>(ping: bool) -> Config<C::Conv> {
    let config = Config::new().converter(C::converter());
    if ping {
        config.ping_interval(PING)
    } else {
        config
    }
}

/// The echo server a user writes with tokio-tungstenite alone.
pub async fn handwritten_server<C: Codec, T: Payload>() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(handwritten_echo::<C, T>(listener, true));
    addr
}

/// The loop of tokio-tungstenite's README, with serde: every connection accepted, with
/// `TCP_NODELAY` set or the socket as accepted, echoes what it decodes.
pub async fn handwritten_echo<C: Codec, T: Payload>(listener: TcpListener, nodelay: bool) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        if nodelay {
            tcp.set_nodelay(true).expect("nodelay");
        }
        tokio::spawn(async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                return;
            };
            while let Some(Ok(message)) = ws.next().await {
                if let Some(value) = C::from_message::<T>(&message) {
                    if ws.send(C::to_message(&value)).await.is_err() {
                        break;
                    }
                } else if message.is_close() {
                    break;
                }
            }
        });
    }
}

/// The same echo server with typed-ws.
pub async fn typed_server<C: Codec, T: Payload>(config: Config<C::Conv>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let server = Server::new(config);
    tokio::spawn(async move {
        server
            .serve(listener, |mut session| async move {
                while let Ok(value) = session.receive_deserialized::<T>().await {
                    if session.send_serialized(&value).await.is_err() {
                        break;
                    }
                }
            })
            .await
    });
    addr
}

pub async fn handwritten_client(addr: SocketAddr) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/"), None, true)
        .await
        .expect("connect");
    ws
}

pub async fn typed_client<C: Codec>(addr: SocketAddr, ping: bool) -> Session<C::Conv> {
    Client::new(config::<C>(ping))
        .web_socket_session(format!("ws://{addr}/"))
        .await
        .expect("connect")
}

// ---- one in flight ----

pub async fn handwritten_one<C: Codec, T: Payload>(ws: &mut Ws, value: &T) -> T {
    ws.send(C::to_message(value)).await.expect("send");
    loop {
        let message = ws.next().await.expect("open").expect("receive");
        if let Some(reply) = C::from_message::<T>(&message) {
            return reply;
        }
    }
}

pub async fn typed_one<C: Codec, T: Payload>(session: &mut Session<C::Conv>, value: &T) -> T {
    session.send_serialized(value).await.expect("send");
    session.receive_deserialized().await.expect("receive")
}

// ---- pipelined ----

pub async fn handwritten_burst<C: Codec, T: Payload>(ws: &mut Ws, value: &T) -> T {
    let (mut sink, mut stream) = ws.split();
    let send = async {
        for _ in 0..BURST {
            sink.feed(C::to_message(value)).await.expect("feed");
        }
        sink.flush().await.expect("flush");
    };
    let receive = async {
        let mut last = None;
        while last_count(&last) < BURST {
            let message = stream.next().await.expect("open").expect("receive");
            if let Some(reply) = C::from_message::<T>(&message) {
                last = Some((last_count(&last) + 1, reply));
            }
        }
        last.map(|(_, reply)| reply).expect("a reply")
    };
    tokio::join!(send, receive).1
}

pub fn last_count<T>(last: &Option<(usize, T)>) -> usize {
    last.as_ref().map_or(0, |(n, _)| *n)
}

/// A session split for bursts: one half queues the burst and flushes it once, the other
/// receives the echoes at the same time.
pub struct TypedBurst<C: Codec> {
    tx: typed_ws::SendHalf<C::Conv>,
    rx: typed_ws::RecvHalf<C::Conv>,
}

impl<C: Codec> TypedBurst<C> {
    pub fn new(session: Session<C::Conv>) -> Self {
        let (tx, rx) = session.split();
        TypedBurst { tx, rx }
    }

    pub async fn burst<T: Payload>(&mut self, value: &T) -> T {
        let (tx, rx) = (&mut self.tx, &mut self.rx);
        let send = async {
            for _ in 0..BURST {
                tx.feed_serialized(value).await.expect("feed");
            }
            tx.flush().await.expect("flush");
        };
        let receive = async {
            let mut reply = None;
            for _ in 0..BURST {
                reply = Some(rx.receive_deserialized::<T>().await.expect("receive"));
            }
            reply.expect("a reply")
        };
        tokio::join!(send, receive).1
    }
}

/// Times `iters` runs of `round` on the runtime.
pub fn timed<F: AsyncFnMut()>(rt: &Runtime, iters: u64, mut round: F) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            round().await;
        }
        start.elapsed()
    })
}
