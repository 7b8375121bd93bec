//! The only reader of the system clock, and the one representation of a moment.
//!
//! A moment on the wall clock is a [`Timestamp`] everywhere: token expiry, assertion lifetimes,
//! the queue's columns, leases, retries, pauses and credential expiry. A span of time is a
//! [`Duration`]. Only the edges convert: the queue's columns hold Unix milliseconds, JWT claims
//! and token responses Unix seconds, headers and listings a calendar date. How long a step took
//! is measured on the monotonic clock ([`instant`], [`since`]). `clippy.toml` forbids reading
//! either clock anywhere else.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A moment: milliseconds since the Unix epoch (UTC). Arithmetic saturates, so a hostile
/// `expires_in` or a column edited by hand cannot overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub(crate) struct Timestamp(i64);

impl Timestamp {
    /// The epoch itself.
    pub(crate) const EPOCH: Self = Self(0);
    /// Later than any moment that matters.
    pub(crate) const MAX: Self = Self(i64::MAX);

    /// The current time.
    #[allow(clippy::disallowed_methods)] // the one permitted read of the system clock
    pub(crate) fn now() -> Self {
        let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Self::EPOCH + since
    }

    /// From Unix milliseconds (the queue's columns).
    pub(crate) const fn from_unix_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// From Unix seconds (JWT claims, token responses).
    pub(crate) const fn from_unix_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    /// From a calendar time (a certificate's validity, a configured date).
    pub(crate) fn from_datetime(t: time::OffsetDateTime) -> Self {
        Self(i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
    }

    /// Unix milliseconds.
    pub(crate) const fn unix_millis(self) -> i64 {
        self.0
    }

    /// Unix seconds, rounded down.
    pub(crate) const fn unix_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// As a calendar time in UTC, for dates in headers and listings (the epoch when out of
    /// the calendar's range).
    pub(crate) fn to_datetime(self) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    }

    /// How long after `earlier` this is; zero when it is not later.
    pub(crate) fn since(self, earlier: Self) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0).max(0).unsigned_abs())
    }

    /// How long before `later` this is; zero when `later` has passed.
    pub(crate) fn until(self, later: Self) -> Duration {
        later.since(self)
    }

    /// The calendar date (UTC).
    pub(crate) fn date(self) -> time::Date {
        self.to_datetime().date()
    }

    /// Calendar days (UTC) from this to `later`, negative when `later` has passed: a secret
    /// "expires 2027-06-30" has 10 days left on 2027-06-20, whatever the hour.
    pub(crate) fn days_until(self, later: Self) -> i64 {
        (later.date() - self.date()).whole_days()
    }

    /// Seconds from this to `later`, negative when `later` has passed.
    pub(crate) fn secs_until(self, later: Self) -> i64 {
        later.unix_secs().saturating_sub(self.unix_secs())
    }
}

/// A span in whole milliseconds, saturating.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Add<Duration> for Timestamp {
    type Output = Self;
    fn add(self, d: Duration) -> Self {
        Self(self.0.saturating_add(millis(d)))
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Self;
    fn sub(self, d: Duration) -> Self {
        Self(self.0.saturating_sub(millis(d)))
    }
}

/// RFC 3339 in UTC, to the second (`2026-12-03T15:44:38Z`).
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.to_datetime();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }
}

/// Unix milliseconds, the unit of the queue's columns (`queue --json` shows them so).
impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.unix_millis())
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <i64 as serde::Deserialize>::deserialize(d).map(Self::from_unix_millis)
    }
}

/// As Unix seconds, for files that hold a moment in seconds (the token cache):
/// `#[serde(with = "crate::clock::unix_secs")]`.
pub(crate) mod unix_secs {
    use super::Timestamp;

    /// Writes `t` as Unix seconds.
    pub(crate) fn serialize<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(t.unix_secs())
    }

    /// Reads Unix seconds.
    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        <i64 as serde::Deserialize>::deserialize(d).map(Timestamp::from_unix_secs)
    }
}

impl rusqlite::ToSql for Timestamp {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.unix_millis().into())
    }
}

impl rusqlite::types::FromSql for Timestamp {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        i64::column_result(value).map(Self::from_unix_millis)
    }
}

/// The moment `ms` milliseconds after the epoch, for tests.
#[cfg(test)]
pub(crate) const fn ms(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(ms)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_and_spans_are_never_negative() {
        let t = Timestamp::from_unix_secs(1_000);
        assert_eq!((t + Duration::from_millis(1500)).unix_millis(), 1_001_500);
        assert_eq!(Timestamp::MAX + Duration::MAX, Timestamp::MAX);
        assert_eq!(
            Timestamp::from_unix_millis(i64::MIN) - Duration::MAX,
            Timestamp::from_unix_millis(i64::MIN)
        );
        assert_eq!(Timestamp::from_unix_secs(i64::MAX), Timestamp::MAX);
        assert_eq!(t.since(t + Duration::from_secs(5)), Duration::ZERO);
        assert_eq!(t.until(t + Duration::from_secs(5)), Duration::from_secs(5));
        assert_eq!(t.secs_until(t - Duration::from_secs(7)), -7);
        assert_eq!(Timestamp::from_unix_millis(-1).unix_secs(), -1);
    }

    #[test]
    fn converts_at_the_edges() {
        let t = Timestamp::from_unix_millis(1_796_312_678_123);
        assert_eq!(t.to_string(), "2026-12-03T15:44:38Z");
        assert_eq!(Timestamp::from_datetime(t.to_datetime()), t);
        assert_eq!(Timestamp::MAX.to_datetime(), time::OffsetDateTime::UNIX_EPOCH);
        assert!(Timestamp::now() > t - Duration::from_secs(86_400 * 365));
    }
}
