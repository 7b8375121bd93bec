//! When to try a deferred message again, and when to give up (pure).
//!
//! The defaults are Postfix's: the first retry after 5 minutes, the wait doubling up to about
//! 67 minutes (`maximal_backoff_time = 4000s`), and a message given up on 5 days after it was
//! accepted (`maximal_queue_lifetime`).

use std::time::Duration;

use crate::clock::Timestamp;

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
    /// Try again at this time.
    RetryAt(Timestamp),
    /// The message is too old: give up.
    GiveUp,
}

impl Backoff {
    /// The wait after the `failures`-th failed attempt (1 for the first).
    pub(crate) fn delay(&self, failures: u32) -> Duration {
        crate::backoff::doubling(self.initial, failures, self.max)
    }

    /// After the `failures`-th failure at `now` of a message accepted at `received`.
    pub(crate) fn next(&self, failures: u32, received: Timestamp, now: Timestamp) -> Next {
        if now.since(received) >= self.lifetime {
            return Next::GiveUp;
        }
        Next::RetryAt(now + self.delay(failures))
    }
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
        let t = Timestamp::from_unix_millis;
        let day = 24 * 3600 * 1000;
        assert_eq!(b.next(1, t(0), t(1000)), Next::RetryAt(t(1000 + 300_000)));
        assert_eq!(
            b.next(40, t(0), t(5 * day - 1)),
            Next::RetryAt(t(5 * day - 1 + 4_000_000))
        );
        assert_eq!(b.next(41, t(0), t(5 * day)), Next::GiveUp);
        // A clock that went backwards does not give up.
        assert_eq!(b.next(1, t(10_000), t(0)), Next::RetryAt(t(300_000)));
    }
}
