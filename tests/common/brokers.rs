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
