//! What the relay did lately, for the status page's charts and its list of deliveries:
//! messages accepted, delivered, deferred and dead-lettered per minute over the last hour and
//! per hour over the last day, and the last deliveries with their latency. In memory: it starts
//! empty when the relay does (the queue, not this, is what survives a restart).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use crate::clock::Timestamp;

/// What happened to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// A client handed it in.
    Accepted,
    /// Microsoft took it (for at least one recipient).
    Delivered,
    /// It waits for another attempt.
    Deferred,
    /// It was given up on.
    DeadLettered,
}

/// Events in one minute or one hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Accepted from clients.
    pub(crate) accepted: u32,
    /// Delivered.
    pub(crate) delivered: u32,
    /// Deferred.
    pub(crate) deferred: u32,
    /// Dead-lettered.
    pub(crate) dead: u32,
}

impl Counts {
    fn add(&mut self, event: Event) {
        let n = match event {
            Event::Accepted => &mut self.accepted,
            Event::Delivered => &mut self.delivered,
            Event::Deferred => &mut self.deferred,
            Event::DeadLettered => &mut self.dead,
        };
        *n = n.saturating_add(1);
    }
}

/// One delivery, as the page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Delivery {
    /// When Microsoft answered.
    pub(crate) at: Timestamp,
    /// Queue id.
    pub(crate) queue_id: String,
    /// The account.
    pub(crate) account: String,
    /// Recipients delivered to.
    pub(crate) recipients: usize,
    /// From acceptance to Microsoft's answer.
    pub(crate) latency: Duration,
    /// Microsoft's answer.
    pub(crate) reply: String,
}

/// Deliveries the page lists.
const RECENT: usize = 20;
const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;

/// The recorder.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    inner: Mutex<Inner>,
    inbound: Mutex<InboundState>,
}

/// Clients as the page shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Inbound {
    /// Sessions open now.
    pub(crate) open: u64,
    /// Sessions since the relay started.
    pub(crate) sessions: u64,
    /// Connections refused, by reason, most first.
    pub(crate) refused: Vec<(String, u64)>,
    /// Failed AUTH by client address (most first, at most 20), with the last one's time.
    pub(crate) auth_failures: Vec<(String, u64, Timestamp)>,
}

#[derive(Debug, Default)]
struct InboundState {
    open: u64,
    sessions: u64,
    refused: std::collections::HashMap<&'static str, u64>,
    auth_failures: std::collections::HashMap<std::net::IpAddr, (u64, Timestamp)>,
}

/// Addresses whose failures are kept (the busiest stay): a scan cannot fill memory.
const AUTH_ADDRESSES: usize = 1_000;

#[derive(Debug, Default)]
struct Inner {
    /// (minute number, counts), oldest first; the last 60 minutes.
    minutes: VecDeque<(i64, Counts)>,
    /// (hour number, counts), oldest first; the last 24 hours.
    hours: VecDeque<(i64, Counts)>,
    recent: VecDeque<Delivery>,
}

impl Activity {
    /// Counts `event` at `now`.
    pub(crate) fn record(&self, event: Event, now: Timestamp) {
        let mut inner = self.lock();
        let at = now.unix_millis();
        bump(&mut inner.minutes, at.div_euclid(MINUTE), 60, event);
        bump(&mut inner.hours, at.div_euclid(HOUR), 24, event);
    }

    /// Counts a delivery and keeps it for the list.
    pub(crate) fn delivered(&self, delivery: Delivery) {
        self.record(Event::Delivered, delivery.at);
        let mut inner = self.lock();
        if inner.recent.len() == RECENT {
            inner.recent.pop_front();
        }
        inner.recent.push_back(delivery);
    }

    /// The counts of each of the last 60 minutes and of the last 24 hours up to `now`
    /// (oldest first, zeros where nothing happened), and the last deliveries, latest first.
    pub(crate) fn snapshot(&self, now: Timestamp) -> (Vec<Counts>, Vec<Counts>, Vec<Delivery>) {
        let inner = self.lock();
        let at = now.unix_millis();
        let minutes = series(&inner.minutes, at.div_euclid(MINUTE), 60);
        let hours = series(&inner.hours, at.div_euclid(HOUR), 24);
        (minutes, hours, inner.recent.iter().rev().cloned().collect())
    }

    /// A client session began.
    pub(crate) fn session_opened(&self) {
        let mut inbound = self.inbound();
        inbound.open += 1;
        inbound.sessions += 1;
    }

    /// A client session ended.
    pub(crate) fn session_closed(&self) {
        let mut inbound = self.inbound();
        inbound.open = inbound.open.saturating_sub(1);
    }

    /// A connection was refused for `reason`.
    pub(crate) fn refused(&self, reason: &'static str) {
        *self.inbound().refused.entry(reason).or_default() += 1;
    }

    /// A client at `ip` failed AUTH at `now`.
    pub(crate) fn auth_failed(&self, ip: std::net::IpAddr, now: Timestamp) {
        let mut inbound = self.inbound();
        if inbound.auth_failures.len() >= AUTH_ADDRESSES && !inbound.auth_failures.contains_key(&ip) {
            let least = inbound
                .auth_failures
                .iter()
                .min_by_key(|(_, (n, at))| (*n, *at))
                .map(|(ip, _)| *ip);
            if let Some(least) = least {
                inbound.auth_failures.remove(&least);
            }
        }
        let entry = inbound.auth_failures.entry(ip).or_insert((0, now));
        entry.0 += 1;
        entry.1 = now;
    }

    /// The clients' side now.
    pub(crate) fn inbound_view(&self) -> Inbound {
        let inbound = self.inbound();
        let mut refused: Vec<(String, u64)> = inbound.refused.iter().map(|(r, n)| ((*r).to_owned(), *n)).collect();
        refused.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let mut failures: Vec<(String, u64, Timestamp)> = inbound
            .auth_failures
            .iter()
            .map(|(ip, (n, at))| (ip.to_string(), *n, *at))
            .collect();
        failures.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.2.cmp(&a.2)));
        failures.truncate(20);
        Inbound {
            open: inbound.open,
            sessions: inbound.sessions,
            refused,
            auth_failures: failures,
        }
    }

    fn inbound(&self) -> std::sync::MutexGuard<'_, InboundState> {
        self.inbound.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Adds `event` to bucket `n`, keeping `keep` buckets at most.
fn bump(buckets: &mut VecDeque<(i64, Counts)>, n: i64, keep: usize, event: Event) {
    match buckets.iter_mut().rev().find(|(b, _)| *b == n) {
        Some((_, counts)) => counts.add(event),
        None => {
            let mut counts = Counts::default();
            counts.add(event);
            // Buckets arrive in order but for a clock step back: keep them sorted.
            let at = buckets.partition_point(|(b, _)| *b < n);
            buckets.insert(at, (n, counts));
        }
    }
    while buckets.len() > keep {
        buckets.pop_front();
    }
}

/// The `len` buckets ending with `last`, zeros where there is none.
fn series(buckets: &VecDeque<(i64, Counts)>, last: i64, len: usize) -> Vec<Counts> {
    let first = last - len as i64 + 1;
    (first..=last)
        .map(|n| {
            buckets
                .iter()
                .find(|(b, _)| *b == n)
                .map(|(_, c)| *c)
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_and_hours_with_gaps_and_the_last_deliveries() {
        let activity = Activity::default();
        let t0 = Timestamp::from_unix_secs(1_800_000_000 / 3600 * 3600);
        activity.record(Event::Accepted, t0);
        activity.record(Event::Accepted, t0 + Duration::from_secs(30));
        activity.record(Event::Deferred, t0 + Duration::from_secs(61));
        for i in 0..25 {
            activity.delivered(Delivery {
                at: t0 + Duration::from_secs(125),
                queue_id: format!("q{i}"),
                account: "main".into(),
                recipients: 1,
                latency: Duration::from_millis(40),
                reply: "250 2.0.0 OK".into(),
            });
        }
        let (minutes, hours, recent) = activity.snapshot(t0 + Duration::from_secs(150));
        assert_eq!(minutes.len(), 60);
        assert_eq!(minutes[57].accepted, 2, "two minutes ago");
        assert_eq!(minutes[58].deferred, 1);
        assert_eq!(minutes[59].delivered, 25);
        assert_eq!(hours.len(), 24);
        assert_eq!(
            hours[23],
            Counts {
                accepted: 2,
                delivered: 25,
                deferred: 1,
                dead: 0
            }
        );
        assert_eq!(recent.len(), RECENT);
        assert_eq!(recent[0].queue_id, "q24", "latest first");

        // An hour on, the minutes are empty; the hours still hold it.
        let (minutes, hours, _) = activity.snapshot(t0 + Duration::from_secs(3600 + 150));
        assert!(minutes.iter().all(|c| *c == Counts::default()));
        assert_eq!(hours[22].delivered, 25);
    }
}
