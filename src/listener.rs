//! Accepting TCP connections within a server's limits, shared by `Server::serve` and
//! `typed_ws::axum::serve`: at most `Config::max_connections` at once, `TCP_NODELAY` on each,
//! and accept errors that neither end the loop nor spin it.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// A listener that hands out connections with a [`Slot`] each.
pub(crate) struct Listener {
    tcp: TcpListener,
    slots: Option<Arc<Semaphore>>,
    /// Told whenever a slot is given back, so that a listener paused by an accept error
    /// (out of file descriptors, say) tries again as soon as one may be free.
    ended: Arc<Notify>,
}

/// A connection's place among the `max_connections`: given back when dropped.
pub(crate) struct Slot {
    _permit: Option<OwnedSemaphorePermit>,
    ended: Arc<Notify>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.ended.notify_one();
    }
}

impl Listener {
    pub(crate) fn new(tcp: TcpListener, max_connections: Option<usize>) -> Self {
        Listener {
            tcp,
            slots: max_connections.map(|n| Arc::new(Semaphore::new(n))),
            ended: Arc::new(Notify::new()),
        }
    }

    /// The next connection, with `TCP_NODELAY` set. Waits for a free slot before accepting,
    /// so that connections over the limit stay in the kernel's accept queue. An accept error
    /// that concerns one connection is skipped; any other pauses accepting until a
    /// connection ends or 100 ms pass.
    pub(crate) async fn accept(&self) -> (TcpStream, SocketAddr, Slot) {
        loop {
            let permit = match &self.slots {
                // The semaphore is never closed: it lives as long as this listener.
                Some(slots) => slots.clone().acquire_owned().await.ok(),
                None => None,
            };
            match self.tcp.accept().await {
                Ok((tcp, peer)) => {
                    // Latency matters more than packet count for messages; a failure here
                    // only costs that.
                    let _ = tcp.set_nodelay(true);
                    let slot = Slot {
                        _permit: permit,
                        ended: self.ended.clone(),
                    };
                    return (tcp, peer, slot);
                }
                Err(e) if is_per_connection(e.kind()) => {}
                Err(_) => {
                    // The permit goes back without telling `ended`: no connection ended, and
                    // a stored notification would end the pause below at once.
                    drop(permit);
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(100)) => {}
                        () = self.ended.notified() => {}
                    }
                }
            }
        }
    }
}

fn is_per_connection(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted
    )
}
