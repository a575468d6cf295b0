//! The transfers of the fragmentation bench: one message from a server session to a client
//! session, whole or in fragments, over an in-memory duplex or loopback TCP; and the same with
//! bare tokio-tungstenite streams.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use typed_ws::tokio_tungstenite::tungstenite::Message;
use typed_ws::tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
use typed_ws::tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use typed_ws::tokio_tungstenite::{self, WebSocketStream};
use typed_ws::{Bytes, Client, Config, Frame, Server, Session};

/// The in-memory pipe's buffer, in each direction: about what a loopback socket holds.
pub const DUPLEX_BUFFER: usize = 256 << 10;

/// A sending and a receiving session over one connection.
pub struct Pair {
    pub tx: Session,
    pub rx: Session,
}

pub fn sender_config(fragment: Option<usize>) -> Config {
    Config::new().fragment_size(fragment.unwrap_or(0))
}

pub async fn duplex_pair(fragment: Option<usize>) -> Pair {
    let (server_io, client_io) = tokio::io::duplex(DUPLEX_BUFFER);
    let server = Server::new(sender_config(fragment));
    let (tx, ws) = tokio::join!(
        server.accept(server_io),
        tokio_tungstenite::client_async("ws://localhost/bench", client_io),
    );
    let (ws, _) = ws.expect("client handshake");
    Pair {
        tx: tx.expect("server handshake"),
        rx: Session::from_stream(ws, &Config::new()),
    }
}

pub async fn tcp_pair(fragment: Option<usize>) -> Pair {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let server = Server::new(sender_config(fragment));
    let accept = async {
        let (tcp, _) = listener.accept().await.expect("accept");
        tcp.set_nodelay(true).expect("nodelay");
        server.accept(tcp).await.expect("server handshake")
    };
    let client = Client::new(Config::new());
    let (tx, rx) = tokio::join!(
        accept,
        client.web_socket_session(format!("ws://{addr}/bench"))
    );
    Pair {
        tx,
        rx: rx.expect("client handshake"),
    }
}

/// The same with bare tokio-tungstenite streams: the server end sends, the client receives.
pub struct RawPair<S, C> {
    tx: WebSocketStream<S>,
    rx: WebSocketStream<C>,
    fragment: Option<usize>,
}

pub async fn raw_duplex_pair(
    fragment: Option<usize>,
) -> RawPair<tokio::io::DuplexStream, tokio::io::DuplexStream> {
    let (server_io, client_io) = tokio::io::duplex(DUPLEX_BUFFER);
    let (tx, rx) = tokio::join!(
        tokio_tungstenite::accept_async(server_io),
        tokio_tungstenite::client_async("ws://localhost/bench", client_io),
    );
    RawPair {
        tx: tx.expect("server handshake"),
        rx: rx.expect("client handshake").0,
        fragment,
    }
}

pub async fn raw_tcp_pair(
    fragment: Option<usize>,
) -> RawPair<tokio::net::TcpStream, tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let accept = async {
        let (tcp, _) = listener.accept().await.expect("accept");
        tcp.set_nodelay(true).expect("nodelay");
        tokio_tungstenite::accept_async(tcp)
            .await
            .expect("server handshake")
    };
    let connect =
        tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/bench"), None, true);
    let (tx, rx) = tokio::join!(accept, connect);
    RawPair {
        tx,
        rx: rx.expect("client handshake").0,
        fragment,
    }
}

impl<S, C> RawPair<S, C>
where
    S: AsyncRead + AsyncWrite + Unpin,
    C: AsyncRead + AsyncWrite + Unpin,
{
    async fn send(tx: &mut WebSocketStream<S>, fragment: Option<usize>, data: &Bytes) {
        match fragment {
            Some(size) if data.len() > size => {
                let mut opcode = OpCode::Data(Data::Binary);
                let mut start = 0;
                while start < data.len() {
                    let end = data.len().min(start + size);
                    let frame = WsFrame::message(data.slice(start..end), opcode, end == data.len());
                    tx.feed(Message::Frame(frame)).await.expect("feed");
                    opcode = OpCode::Data(Data::Continue);
                    start = end;
                }
                tx.flush().await.expect("flush");
            }
            _ => tx.send(Message::Binary(data.clone())).await.expect("send"),
        }
    }

    /// `iters` messages from `tx` to `rx`, one at a time.
    pub fn transfer(&mut self, rt: &Runtime, data: &Bytes, iters: u64) -> Duration {
        rt.block_on(async {
            let start = Instant::now();
            for _ in 0..iters {
                let ((), received) = tokio::join!(
                    Self::send(&mut self.tx, self.fragment, data),
                    self.rx.next()
                );
                let Message::Binary(bytes) = received.expect("open").expect("receive") else {
                    panic!("expected a binary message")
                };
                assert_eq!(bytes.len(), data.len());
            }
            start.elapsed()
        })
    }
}

/// `iters` messages from `pair.tx` to `pair.rx`, one at a time.
pub fn transfer(rt: &Runtime, pair: &mut Pair, data: &Bytes, iters: u64) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            let (sent, received) =
                tokio::join!(pair.tx.send(Frame::Binary(data.clone())), pair.rx.receive());
            sent.expect("send");
            let frame = received.expect("receive");
            assert_eq!(frame.payload().len(), data.len());
        }
        start.elapsed()
    })
}
