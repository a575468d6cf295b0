//! The watchdog task: pings at the configured interval, and ends a session whose peer has
//! been silent for the timeout or has not read what we write for the send timeout, whether
//! or not anybody is sending or receiving. It also flushes what a send left unflushed when
//! nobody else does (see [`super::link`]), releases the compressor of a session that has
//! been idle, and passes on the shutdown of the server that started the session.

use std::future::pending;
use std::pin::pin;
use std::sync::{Arc, Weak};

use tokio::sync::Notify;
use tokio::time::{Instant, sleep_until};

use crate::session::link::Link;
use crate::shutdown::{Phase, Watch};

/// Runs until the session ends or is dropped. It holds only a weak reference between ticks,
/// so it never keeps a dropped session's connection open.
pub(crate) async fn run(link: Weak<Link>, wake: Arc<Notify>, shutdown: Watch) {
    let Some((ping, timeout)) = link
        .upgrade()
        .map(|l| (l.settings.ping_interval, l.settings.timeout))
    else {
        return;
    };
    let start = Instant::now();
    let mut next_ping = ping.map(|interval| start + interval);
    let mut timeout_at = timeout.map(|after| start + after);
    let mut shutdown = pin!(shutdown.next());
    loop {
        let (flush_at, send_deadline, release_at) = match link.upgrade() {
            Some(link) if !link.has_ended() => (
                link.flush_owed(),
                link.send_deadline(),
                link.release_idle_compressor(),
            ),
            _ => return,
        };
        let tick_at = [next_ping, timeout_at, send_deadline]
            .into_iter()
            .flatten()
            .min();
        let wake_at = tick_at.into_iter().chain(flush_at).chain(release_at).min();
        tokio::select! {
            () = sleep_until_some(wake_at) => {}
            () = wake.notified() => continue,
            (phase, watch) = shutdown.as_mut() => {
                shutdown.set(watch.next());
                let Some(link) = link.upgrade() else { return };
                match phase {
                    Phase::Closing(reason) => link.begin_shutdown(reason),
                    Phase::Dropping(reason) => {
                        link.end_for_shutdown(reason);
                        return;
                    }
                    // `next` waits past it.
                    Phase::Serving => {}
                }
                continue;
            }
        }
        // Woken for a flush put off or a compressor to release (done at the top of the loop),
        // not for a tick.
        if tick_at.is_none_or(|at| Instant::now() < at) {
            continue;
        }
        let Some(link) = link.upgrade() else { return };
        // Read what arrived while nobody was receiving, so that pongs count as signs of life.
        link.read_ahead();
        if link.check_send_deadline() {
            return;
        }
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

/// Sleeps until `at`, or forever.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => pending().await,
    }
}
