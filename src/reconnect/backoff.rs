//! How long a reconnecting client waits between attempts: exponential backoff with full
//! jitter, and the attempt limit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The first delay's upper bound: [`Backoff::initial`]'s default.
pub const DEFAULT_INITIAL_DELAY: Duration = Duration::from_secs(1);

/// The longest backoff window: [`Backoff::cap`]'s default.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(30);

/// The least wait after a server's 1012 or 1013: [`Backoff::busy_delay`]'s default.
pub const DEFAULT_BUSY_DELAY: Duration = Duration::from_secs(5);

/// How long a connection must last to count as a success: [`Backoff::reset_after`]'s default.
pub const DEFAULT_RESET_AFTER: Duration = Duration::from_secs(5);

/// When and how often a [`Reconnecting`](crate::Reconnecting) client tries again.
///
/// After `n` failures in a row (a connection lost, or attempts that failed), the client waits
/// a delay drawn uniformly from `[0, min(cap, initial × 2^(n-1))]` ("full jitter"): the
/// window doubles with each failure up to the cap, and clients that a restart dropped all at
/// once come back spread over it rather than together.
///
/// | setting | default | |
/// |---|---|---|
/// | [`initial`](Backoff::initial) | 1 s | the first window, as Socket.IO's first delay |
/// | [`cap`](Backoff::cap) | 30 s | the largest window: a restarted server is found again within 30 s |
/// | [`max_attempts`](Backoff::max_attempts) | none: forever | attempts after a loss before giving up |
/// | [`busy_delay`](Backoff::busy_delay) | 5 s | added to the delay after a close with 1012 (restart) or 1013 (try again later) |
/// | [`reset_after`](Backoff::reset_after) | 5 s | a connection that lasts this long resets the count of failures |
///
/// The count of failures, which sets the window and meets the attempt limit, starts again
/// only after a connection has lasted `reset_after`: a server that accepts and drops every
/// connection at once is backed off from like one that refuses them.
///
/// ```
/// use std::time::Duration;
/// use typed_ws::Backoff;
///
/// let backoff = Backoff::new()
///     .initial(Duration::from_millis(100))
///     .cap(Duration::from_secs(2))
///     .max_attempts(10);
/// assert_eq!(backoff.window(1), Duration::from_millis(100));
/// assert_eq!(backoff.window(3), Duration::from_millis(400));
/// assert_eq!(backoff.window(9), Duration::from_secs(2));
/// ```
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    cap: Duration,
    max_attempts: Option<u32>,
    busy_delay: Duration,
    reset_after: Duration,
    seed: Option<u64>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

impl Backoff {
    /// The defaults of the table above.
    pub fn new() -> Self {
        Backoff {
            initial: DEFAULT_INITIAL_DELAY,
            cap: DEFAULT_MAX_DELAY,
            max_attempts: None,
            busy_delay: DEFAULT_BUSY_DELAY,
            reset_after: DEFAULT_RESET_AFTER,
            seed: None,
        }
    }

    /// The window of the first delay, which doubles with each further failure.
    pub fn initial(mut self, delay: Duration) -> Self {
        self.initial = delay;
        self
    }

    /// The largest window, however many failures there were.
    pub fn cap(mut self, delay: Duration) -> Self {
        self.cap = delay;
        self
    }

    /// Gives up after this many attempts in a row have failed; the first connection does not
    /// count, so `max_attempts(0)` never reconnects.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// What a server's 1012 (service restart) or 1013 (try again later) adds to the next
    /// delay: it asked for time, and gets at least this much.
    pub fn busy_delay(mut self, delay: Duration) -> Self {
        self.busy_delay = delay;
        self
    }

    /// How long a connection must last for the count of failures to start again.
    pub fn reset_after(mut self, uptime: Duration) -> Self {
        self.reset_after = uptime;
        self
    }

    /// Draws the delays from this seed, so that a run's delays repeat; by default each client
    /// has its own, from the clock.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The longest delay after `failures` failures in a row: `min(cap, initial × 2^(failures-1))`,
    /// zero for none.
    pub fn window(&self, failures: u32) -> Duration {
        let Some(doublings) = failures.checked_sub(1) else {
            return Duration::ZERO;
        };
        let factor = 2u32.saturating_pow(doublings);
        self.initial.saturating_mul(factor).min(self.cap)
    }

    pub(super) fn max_attempts_value(&self) -> Option<u32> {
        self.max_attempts
    }

    pub(super) fn reset_after_value(&self) -> Duration {
        self.reset_after
    }

    /// The delay after `failures` failures in a row, the last of them a 1012 or 1013 when
    /// `busy`.
    pub(crate) fn delay(&self, failures: u32, busy: bool, rng: &mut Rng) -> Duration {
        let jittered = self.window(failures).mul_f64(rng.unit());
        if busy {
            self.busy_delay.saturating_add(jittered)
        } else {
            jittered
        }
    }

    /// The generator of this client's delays.
    pub(crate) fn rng(&self) -> Rng {
        Rng::new(self.seed.unwrap_or_else(clock_seed))
    }
}

/// A seed that differs between clients: the clock, a count of the seeds taken (clients made
/// in the same nanosecond) and where the stack is (processes started at once).
fn clock_seed() -> u64 {
    static TAKEN: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64);
    let here = 0u8;
    let stack = std::ptr::addr_of!(here) as usize as u64;
    nanos ^ stack.rotate_left(32) ^ TAKEN.fetch_add(1, Ordering::Relaxed)
}

/// xorshift64*: jitter needs spread, not secrecy, and this needs no dependency.
#[derive(Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    /// The multiply spreads nearby seeds apart; `| 1` keeps the state off zero, where xorshift
    /// would stay.
    pub(super) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `[0, 1)`, from the top 53 bits: all an `f64` holds.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_window_doubles_from_the_initial_delay_up_to_the_cap() {
        let backoff = Backoff::new().initial(100 * MS).cap(1000 * MS);
        let windows: Vec<_> = (0..7).map(|n| backoff.window(n)).collect();
        assert_eq!(
            windows,
            [0, 100, 200, 400, 800, 1000, 1000].map(|ms| ms * MS)
        );
        // No overflow however long it fails.
        assert_eq!(backoff.window(u32::MAX), 1000 * MS);
        assert_eq!(Backoff::new().window(64), DEFAULT_MAX_DELAY);
    }

    #[test]
    fn delays_stay_within_the_window_and_spread_over_it() {
        let backoff = Backoff::new().initial(100 * MS).cap(1000 * MS);
        let mut rng = Rng::new(7);
        for failures in 1..8 {
            let window = backoff.window(failures);
            let delays: Vec<_> = (0..2000)
                .map(|_| backoff.delay(failures, false, &mut rng))
                .collect();
            assert!(
                delays.iter().all(|d| *d <= window),
                "{failures}: {window:?}"
            );
            // Full jitter: the draws reach both ends of the window, and average its middle.
            let low = delays.iter().filter(|d| **d < window / 10).count();
            let high = delays.iter().filter(|d| **d > window * 9 / 10).count();
            assert!(
                low > 100 && high > 100,
                "{failures}: {low} low, {high} high"
            );
            let mean = delays.iter().sum::<Duration>() / 2000;
            assert!(
                mean > window * 45 / 100 && mean < window * 55 / 100,
                "{failures}: mean {mean:?} of {window:?}"
            );
        }
    }

    #[test]
    fn a_busy_server_adds_the_busy_delay_to_the_jittered_one() {
        let backoff = Backoff::new()
            .initial(100 * MS)
            .busy_delay(5000 * MS)
            .seed(3);
        let mut rng = backoff.rng();
        for _ in 0..1000 {
            let delay = backoff.delay(1, true, &mut rng);
            assert!(delay >= 5000 * MS && delay <= 5100 * MS, "{delay:?}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_delays_and_clients_differ_without_one() {
        let backoff = Backoff::new().seed(42);
        let draw = |mut rng: Rng| -> Vec<Duration> {
            (1..10).map(|n| backoff.delay(n, false, &mut rng)).collect()
        };
        assert_eq!(draw(backoff.rng()), draw(backoff.rng()));
        let unseeded = Backoff::new();
        assert_ne!(draw(unseeded.rng()), draw(unseeded.rng()));
    }
}
