//! The only reader of the system clock. Token expiry, assertion lifetimes, cache freshness and
//! backoff take their time from here (`clippy.toml` forbids reading it elsewhere).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
#[allow(clippy::disallowed_methods)] // the one permitted read of the system clock
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The current time.
#[allow(clippy::disallowed_methods)] // the one permitted read of the system clock
pub(crate) fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// A monotonic instant, for measuring how long a step took.
#[allow(clippy::disallowed_methods)] // the one permitted read of the monotonic clock
pub(crate) fn instant() -> tokio::time::Instant {
    tokio::time::Instant::now()
}

/// Time since `start`.
pub(crate) fn since(start: tokio::time::Instant) -> Duration {
    instant().saturating_duration_since(start)
}

/// Milliseconds since the Unix epoch.
#[allow(clippy::disallowed_methods)] // the one permitted read of the system clock
pub(crate) fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
