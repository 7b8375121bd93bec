//! Exchange Online's per-mailbox sending limits (fact sheet §5.1): concurrent connections,
//! messages per minute (delayed, not refused) and recipients per rolling day. The usage HVE
//! (per tenant) and ACS (per resource) count lives here too, in their modules' types.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use time::OffsetDateTime;

use crate::model::ExchangeSettings;

/// Usage of every mailbox, HVE tenant and ACS resource.
#[derive(Debug, Default)]
pub(crate) struct Limits {
    mailboxes: Mutex<HashMap<String, Usage>>,
    /// High Volume Email recipients per tenant.
    pub(super) hve: super::hve::TenantQuota,
    /// Communication Services messages per resource.
    pub(super) acs: super::acs::ResourceQuota,
}

#[derive(Debug, Default)]
struct Usage {
    /// Authenticated connections, oldest first.
    connections: Vec<u64>,
    /// When each recent message was (or will be, after its delay) submitted.
    submitted: VecDeque<OffsetDateTime>,
    /// Recipients of recent messages.
    recipients: VecDeque<(OffsetDateTime, u32)>,
}

/// The rolling-day recipient quota would be exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QuotaExceeded;

impl Limits {
    /// Records an authenticated connection; returns how many the mailbox has now.
    pub(crate) fn connect(&self, mailbox: &str, connection: u64) -> usize {
        let mut map = self.lock();
        let usage = map.entry(mailbox.to_ascii_lowercase()).or_default();
        usage.connections.push(connection);
        usage.connections.len()
    }

    /// Forgets a connection.
    pub(crate) fn disconnect(&self, mailbox: &str, connection: u64) {
        if let Some(usage) = self.lock().get_mut(&mailbox.to_ascii_lowercase()) {
            usage.connections.retain(|c| *c != connection);
        }
    }

    /// Whether `connection` is among the first `max_connections_per_mailbox` of the mailbox;
    /// Exchange refuses submissions on the others with `432 4.3.2`.
    pub(crate) fn within_connection_limit(&self, settings: &ExchangeSettings, mailbox: &str, connection: u64) -> bool {
        let map = self.lock();
        let position = map
            .get(&mailbox.to_ascii_lowercase())
            .and_then(|usage| usage.connections.iter().position(|c| *c == connection));
        position.is_some_and(|p| p < settings.max_connections_per_mailbox as usize)
    }

    /// Admits a message with `recipients` recipients at `now`, after the returned delay (zero
    /// unless the per-minute rate is exhausted), or refuses it when the rolling-day recipient
    /// quota would be exceeded.
    pub(crate) fn admit(
        &self,
        settings: &ExchangeSettings,
        mailbox: &str,
        recipients: u32,
        now: OffsetDateTime,
    ) -> Result<Duration, QuotaExceeded> {
        let mut map = self.lock();
        let usage = map.entry(mailbox.to_ascii_lowercase()).or_default();
        let day = settings.day();
        while usage.recipients.front().is_some_and(|(t, _)| elapsed(*t, now) >= day) {
            usage.recipients.pop_front();
        }
        let used: u64 = usage.recipients.iter().map(|(_, n)| u64::from(*n)).sum();
        if used + u64::from(recipients) > u64::from(settings.recipients_per_day) {
            return Err(QuotaExceeded);
        }

        let minute = settings.minute();
        while usage.submitted.front().is_some_and(|t| elapsed(*t, now) >= minute) {
            usage.submitted.pop_front();
        }
        let limit = settings.messages_per_minute.max(1) as usize;
        let at = if usage.submitted.len() >= limit {
            // Exchange carries the excess into the following minutes: this message goes when the
            // one `limit` places before it leaves the window.
            let anchor = usage.submitted[usage.submitted.len() - limit];
            (anchor + minute).max(now)
        } else {
            now
        };
        usage.submitted.push_back(at);
        usage.recipients.push_back((at, recipients));
        Ok(elapsed(now, at))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Usage>> {
        self.mailboxes.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

pub(super) fn elapsed(from: OffsetDateTime, to: OffsetDateTime) -> Duration {
    (to - from).try_into().unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ExchangeSettings {
        ExchangeSettings {
            messages_per_minute: 3,
            recipients_per_day: 10,
            ..ExchangeSettings::default()
        }
    }

    #[test]
    fn fourth_connection_is_refused_until_one_leaves() {
        let limits = Limits::default();
        let s = settings();
        for c in 1..=4 {
            limits.connect("a@contoso.com", c);
        }
        assert!(limits.within_connection_limit(&s, "a@contoso.com", 3));
        assert!(!limits.within_connection_limit(&s, "A@contoso.com", 4));
        limits.disconnect("a@contoso.com", 1);
        assert!(limits.within_connection_limit(&s, "a@contoso.com", 4));
        assert!(!limits.within_connection_limit(&s, "a@contoso.com", 1));
    }

    #[test]
    fn rate_delays_carry_over_and_quota_refuses() {
        let limits = Limits::default();
        let s = settings();
        let t = OffsetDateTime::UNIX_EPOCH;
        let delays: Vec<u64> = (0..7)
            .map(|_| limits.admit(&s, "a@contoso.com", 1, t).unwrap().as_secs())
            .collect();
        assert_eq!(delays, [0, 0, 0, 60, 60, 60, 120]);
        assert_eq!(limits.admit(&s, "a@contoso.com", 4, t), Err(QuotaExceeded));
        let next_day = t + time::Duration::days(1) + time::Duration::minutes(3);
        assert!(limits.admit(&s, "a@contoso.com", 10, next_day).is_ok());
    }
}
