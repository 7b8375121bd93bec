//! The one backoff formula (pure): `initial` after the first failure, doubling with each one
//! after, never more than `max`. The queue's retries, the token endpoint's, Graph's within one
//! `send`, throttling pauses and the wait before a failed client's next password check all use
//! it, each with its own `initial` and `max`.

use std::time::Duration;

/// The wait after the `failures`-th failure in a row (1 for the first).
pub(crate) fn doubling(initial: Duration, failures: u32, max: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(31);
    initial.saturating_mul(1u32 << doublings).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_the_first_failure_up_to_the_limit() {
        let s = Duration::from_secs;
        let waits: Vec<Duration> = (0..6).map(|n| doubling(s(5), n, s(60))).collect();
        assert_eq!(waits, [s(5), s(5), s(10), s(20), s(40), s(60)]);
        assert_eq!(doubling(s(1), u32::MAX, Duration::MAX), s(1 << 31));
        assert_eq!(doubling(Duration::MAX, 40, Duration::MAX), Duration::MAX);
    }
}
