//! When to try a deferred message again, and when to give up (pure).
//!
//! The defaults are Postfix's: the first retry after 5 minutes, the wait doubling up to about
//! 67 minutes (`maximal_backoff_time = 4000s`), and a message given up on 5 days after it was
//! accepted (`maximal_queue_lifetime`).

use std::time::Duration;

/// The retry schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    /// Wait after the first failure.
    pub(crate) initial: Duration,
    /// Longest wait between attempts.
    pub(crate) max: Duration,
    /// How long after acceptance a message is given up on.
    pub(crate) lifetime: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(300),
            max: Duration::from_secs(4000),
            lifetime: Duration::from_secs(5 * 24 * 3600),
        }
    }
}

/// What to do after a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Try again at this time (Unix milliseconds).
    RetryAt(i64),
    /// The message is too old: give up.
    GiveUp,
}

impl Backoff {
    /// The wait after the `failures`-th failed attempt (1 for the first).
    pub(crate) fn delay(&self, failures: u32) -> Duration {
        crate::backoff::doubling(self.initial, failures, self.max)
    }

    /// After the `failures`-th failure at `now_ms` of a message accepted at `received_ms`.
    pub(crate) fn next(&self, failures: u32, received_ms: i64, now_ms: i64) -> Next {
        let age = Duration::from_millis(now_ms.saturating_sub(received_ms).max(0).unsigned_abs());
        if age >= self.lifetime {
            return Next::GiveUp;
        }
        Next::RetryAt(now_ms.saturating_add(millis(self.delay(failures))))
    }
}

/// A duration in milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postfix_schedule() {
        let b = Backoff::default();
        let waits: Vec<u64> = (1..=7).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(waits, [300, 600, 1200, 2400, 4000, 4000, 4000]);
        assert_eq!(b.delay(0).as_secs(), 300);
        assert_eq!(b.delay(u32::MAX).as_secs(), 4000);
    }

    #[test]
    fn gives_up_after_the_lifetime() {
        let b = Backoff::default();
        let day = 24 * 3600 * 1000;
        assert_eq!(b.next(1, 0, 1000), Next::RetryAt(1000 + 300_000));
        assert_eq!(b.next(40, 0, 5 * day - 1), Next::RetryAt(5 * day - 1 + 4_000_000));
        assert_eq!(b.next(41, 0, 5 * day), Next::GiveUp);
        // A clock that went backwards does not give up.
        assert_eq!(b.next(1, 10_000, 0), Next::RetryAt(300_000));
    }
}
