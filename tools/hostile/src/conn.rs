//! Attacking connections and how they end, seen from this side and in the kernel's TCP table.

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// What is known of one attacking connection.
#[derive(Default)]
pub struct Conn {
    port: AtomicU16,
    start: OnceLock<Instant>,
    pub failed: OnceLock<String>,
    /// The server's socket has been seen owned by a process (not waiting in the accept queue).
    owned: AtomicBool,
    /// When, after `start`, the server disconnected, and how we noticed.
    pub closed: OnceLock<(Duration, &'static str)>,
    /// The code of the server's close frame, when it sent one.
    pub code: OnceLock<u16>,
    /// The kernel's table showed the connection over once, at that time: it counts when a
    /// second look agrees (the table is not read atomically, and a socket can be missed).
    suspect: Mutex<Option<Duration>>,
}

impl Conn {
    pub fn connected(&self, port: u16) {
        let _ = self.start.set(Instant::now());
        self.port.store(port, Relaxed);
    }

    pub fn fail(&self, error: impl ToString) {
        let _ = self.failed.set(error.to_string());
    }

    pub fn close(&self, how: &'static str) {
        if let Some(start) = self.start.get() {
            self.close_at(start.elapsed(), how);
        }
    }

    fn close_at(&self, after: Duration, how: &'static str) {
        if self.failed.get().is_none() {
            let _ = self.closed.set((after, how));
        }
    }

    pub fn done(&self) -> bool {
        self.failed.get().is_some() || self.closed.get().is_some()
    }
}

pub fn conns(n: usize) -> Vec<Arc<Conn>> {
    (0..n).map(|_| Arc::new(Conn::default())).collect()
}

const TCP_ESTABLISHED: u8 = 0x01;

/// The kernel's IPv4 TCP table, restricted to connections with `port` at one end: (local
/// port, remote port) → (state, inode). An inode of 0 is a socket no process holds (closed by
/// its owner and lingering, or still in the accept queue).
fn tcp_table(port: u16) -> HashMap<(u16, u16), (u8, u64)> {
    let mut table = HashMap::new();
    // In as few reads as possible: between two reads the kernel resumes its walk by position,
    // and sockets that came or went meanwhile shift it.
    let mut bytes = vec![0u8; 4 << 20];
    let mut len = 0;
    let Ok(mut file) = std::fs::File::open("/proc/net/tcp") else {
        return table;
    };
    loop {
        match file.read(&mut bytes[len..]) {
            Ok(0) => break,
            Ok(read) => len += read,
            Err(_) => return table,
        }
        if len == bytes.len() {
            bytes.resize(2 * len, 0);
        }
    }
    let text = String::from_utf8_lossy(&bytes[..len]);
    let port_of = |field: &str| {
        let (_, hex) = field.split_once(':')?;
        u16::from_str_radix(hex, 16).ok()
    };
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 10 {
            continue;
        }
        let (Some(local), Some(remote)) = (port_of(fields[1]), port_of(fields[2])) else {
            continue;
        };
        if local != port && remote != port {
            continue;
        }
        let state = u8::from_str_radix(fields[3], 16).unwrap_or(0);
        let inode = fields[9].parse().unwrap_or(0);
        table.insert((local, remote), (state, inode));
    }
    table
}

/// Marks the connections the kernel says the server is done with.
pub fn check_kernel(conns: &[Arc<Conn>], server_port: u16) {
    let table = tcp_table(server_port);
    for conn in conns {
        let port = conn.port.load(Relaxed);
        if port == 0 || conn.done() {
            continue;
        }
        let ours = table.get(&(port, server_port));
        let theirs = table.get(&(server_port, port));
        if theirs.is_some_and(|&(_, inode)| inode != 0) {
            conn.owned.store(true, Relaxed);
        }
        let over = if ours.is_none_or(|&(state, _)| state != TCP_ESTABLISHED) {
            Some("FIN/RST from the server")
        } else if conn.owned.load(Relaxed) && theirs.is_none_or(|&(_, inode)| inode == 0) {
            Some("server released its socket")
        } else {
            None
        };
        let mut suspect = conn.suspect.lock().unwrap_or_else(|e| e.into_inner());
        match (over, *suspect) {
            (Some(how), Some(first_seen)) => conn.close_at(first_seen, how),
            (Some(_), None) => *suspect = conn.start.get().map(Instant::elapsed),
            (None, _) => *suspect = None,
        }
    }
}
