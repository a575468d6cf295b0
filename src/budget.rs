//! The budget for bytes held in unfinished messages, shared by every session of a config:
//! fragments waiting for the rest of their message, and what compressed ones inflated to.
//!
//! A peer can park a message's first fragment and never send the rest; one such session costs
//! at most `max_message_size`, but a few hundred cost the server gigabytes, and a compressed
//! fragment of a kilobyte can inflate to a megabyte. Each session takes its [`Share`] of the
//! budget as such bytes arrive and gives it back when the message is complete (or the session
//! ends); a session whose next bytes would overdraw the budget is closed with 1013 (try again
//! later), and the sessions that hold the budget carry on.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How many bytes the sessions of one config may hold in unfinished messages together.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    held: AtomicUsize,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Budget {
            limit,
            held: AtomicUsize::new(0),
        })
    }
    /// Bytes held now, by every session together.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

/// One session's part of a [`Budget`], given back when dropped.
#[derive(Debug)]
pub(crate) struct Share {
    budget: Arc<Budget>,
    held: usize,
}

/// Taking more would overdraw the budget: the session must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overdrawn {
    pub(crate) limit: usize,
}

impl fmt::Display for Overdrawn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unfinished messages would hold more than the server's {} bytes",
            self.limit
        )
    }
}

impl std::error::Error for Overdrawn {}

impl Share {
    pub(crate) fn new(budget: Arc<Budget>) -> Self {
        Share { budget, held: 0 }
    }

    /// Takes `bytes` more for the message in progress. Refused, it gives back what it held
    /// too: the session ends, and the sessions still at work need that room now, not when
    /// the closing handshake is over.
    pub(crate) fn take(&mut self, bytes: usize) -> Result<(), Overdrawn> {
        if bytes == 0 {
            return Ok(());
        }
        let limit = self.budget.limit;
        let before = self.budget.held.fetch_add(bytes, Ordering::Relaxed);
        if before.saturating_add(bytes) > limit {
            self.budget.held.fetch_sub(bytes, Ordering::Relaxed);
            self.give_back();
            return Err(Overdrawn { limit });
        }
        self.held += bytes;
        Ok(())
    }

    /// What this share holds now.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// Gives back everything taken: the message is complete.
    pub(crate) fn give_back(&mut self) {
        if self.held > 0 {
            self.budget.held.fetch_sub(self.held, Ordering::Relaxed);
            self.held = 0;
        }
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        self.give_back();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_take_from_one_budget_and_give_back_when_done_or_dropped() {
        let budget = Budget::new(100);
        let mut a = Share::new(budget.clone());
        let mut b = Share::new(budget.clone());
        assert_eq!(a.take(60), Ok(()));
        assert_eq!(b.take(40), Ok(()));
        assert_eq!(budget.held(), 100);
        assert_eq!(b.take(1), Err(Overdrawn { limit: 100 }));
        // A refused take gives back what its share held.
        assert_eq!((budget.held(), b.held()), (60, 0));
        assert_eq!(b.take(40), Ok(()));
        a.give_back();
        assert_eq!(budget.held(), 40);
        assert_eq!(b.take(60), Ok(()));
        drop(b);
        assert_eq!(budget.held(), 0);
        assert_eq!(a.take(0), Ok(()));
        assert_eq!(
            Overdrawn { limit: 100 }.to_string(),
            "unfinished messages would hold more than the server's 100 bytes"
        );
    }
}
