//! The emulator's only clock.
//!
//! Token lifetimes, assertion time ranges, secret expiry and Exchange's rate windows all read the
//! time here. The clock can be moved forward at run time ([`Clock::advance`]) so a test can let a
//! token or a secret expire without waiting, and rate windows can be compressed with the
//! `time_scale` knob (see `model::Settings`).

use std::sync::atomic::{AtomicI64, Ordering};
use time::OffsetDateTime;

/// Wall-clock time plus an adjustable offset.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    /// A clock that reads the system time.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current time as the emulator sees it.
    #[allow(clippy::disallowed_methods)] // the one permitted read of the system clock
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + time::Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Seconds since the Unix epoch, as JWT claims count them.
    pub fn unix(&self) -> i64 {
        self.now().unix_timestamp()
    }

    /// Moves the emulator's time forward (or back, with a negative duration).
    pub fn advance(&self, by: time::Duration) {
        let ms = i64::try_from(by.whole_milliseconds()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}
