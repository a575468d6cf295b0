//! Real brokers for the bus tests: Debian's `nats-server` and `redis-server` (installed by
//! tests/peers/install.sh), each started on a free loopback port and killed when dropped.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Nats,
    Redis,
}

pub const BOTH: [Kind; 2] = [Kind::Nats, Kind::Redis];

/// A broker running in a child process.
pub struct Broker {
    pub kind: Kind,
    pub addr: SocketAddr,
    child: Option<Child>,
}

impl Broker {
    /// Starts a broker of `kind` on a free loopback port, and waits until it accepts
    /// connections. A missing binary fails the test: it is a peer the test needs.
    pub fn start(kind: Kind) -> Broker {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut broker = Broker {
            kind,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child: None,
        };
        broker.restart();
        broker
    }

    /// `nats://127.0.0.1:PORT` or `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        match self.kind {
            Kind::Nats => format!("nats://{}", self.addr),
            Kind::Redis => format!("redis://{}", self.addr),
        }
    }

    /// Kills the broker with SIGKILL: its clients see their connections reset.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker (again) on its port, and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.kill();
        let port = self.addr.port().to_string();
        let (program, args): (&str, Vec<&str>) = match self.kind {
            Kind::Nats => ("nats-server", vec!["-a", "127.0.0.1", "-p", &port]),
            Kind::Redis => (
                "redis-server",
                vec![
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    &port,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
            ),
        };
        let child = Command::new(program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("start {program}: {e} (bash tests/peers/install.sh installs it)")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(self.addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "{program} does not accept connections on {} after 10 s",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP link to a broker that a test can cut, as a network partition would: every
/// connection through it is dropped, and new ones are refused, until it heals.
pub struct Partitionable {
    pub addr: SocketAddr,
    open: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
}

impl Partitionable {
    /// A link to `target` on a free loopback port, open.
    pub async fn to(target: SocketAddr) -> Partitionable {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let addr = listener.local_addr().expect("its address");
        let open = std::sync::Arc::new(tokio::sync::watch::channel(true).0);
        let state = open.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !*state.borrow() {
                    continue;
                }
                let mut closed = state.subscribe();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut from_client, mut to_client) = client.into_split();
                    let (mut from_server, mut to_server) = server.into_split();
                    tokio::select! {
                        _ = tokio::io::copy(&mut from_client, &mut to_server) => {}
                        _ = tokio::io::copy(&mut from_server, &mut to_client) => {}
                        _ = closed.wait_for(|open| !*open) => {}
                    }
                });
            }
        });
        Partitionable { addr, open }
    }

    /// Drops every connection through the link, and refuses new ones.
    pub fn cut(&self) {
        self.open.send_replace(false);
    }

    /// Lets connections through again.
    pub fn heal(&self) {
        self.open.send_replace(true);
    }
}
