//! The keep-alive task: pings at the configured interval and closes a session whose peer has
//! been silent for the timeout, whether or not anybody is sending or receiving.

use std::sync::Weak;

use tokio::time::{Instant, sleep_until};

use crate::session::link::Link;

/// Runs until the session ends or is dropped. It holds only a weak reference between ticks,
/// so it never keeps a dropped session's connection open.
pub(crate) async fn run(link: Weak<Link>) {
    let Some((ping, timeout)) = link
        .upgrade()
        .map(|l| (l.options.ping_interval, l.options.timeout))
    else {
        return;
    };
    let start = Instant::now();
    let mut next_ping = ping.map(|interval| start + interval);
    let mut timeout_at = timeout.map(|after| start + after);
    loop {
        let wake_at = match (next_ping, timeout_at) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => return,
        };
        sleep_until(wake_at).await;
        let Some(link) = link.upgrade() else { return };
        if link.has_ended() {
            return;
        }
        // Read what arrived while nobody was receiving, so that pongs count as signs of life.
        link.read_ahead();
        if let Some(after) = timeout {
            match link.check_timeout(after) {
                Some(deadline) => timeout_at = Some(deadline),
                None => return,
            }
        }
        if let (Some(interval), Some(due)) = (ping, next_ping) {
            let now = Instant::now();
            if now >= due {
                link.send_ping();
                next_ping = Some(now + interval);
            }
        }
    }
}
