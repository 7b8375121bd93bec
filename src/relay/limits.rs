//! Exchange Online's per-mailbox sending limits, enforced locally so Exchange never has to
//! throttle the relay (pure; time is passed in).
//!
//! Exchange counts a message against the messages-per-minute limit when it receives it. The
//! relay cannot see that moment, only when it started sending and when the reply came. A slot is
//! therefore held from the start of a transaction until one window after its reply: however the
//! network delays a message, Exchange never sees more than the limit within a window.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// The limits of one mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SendLimits {
    /// Messages per window (Exchange: 30 per minute).
    pub(crate) messages: u32,
    /// The messages window (one minute).
    pub(crate) window: Duration,
    /// Messages per longer window (ACS: 100 an hour); `u32::MAX` when there is none.
    pub(crate) hourly: u32,
    /// The longer window (one hour).
    pub(crate) hour: Duration,
    /// Recipients per day (Exchange: 10,000 per rolling 24 hours).
    pub(crate) recipients: u32,
    /// The recipients window (24 hours).
    pub(crate) day: Duration,
}

impl Default for SendLimits {
    fn default() -> Self {
        Self {
            messages: 30,
            window: Duration::from_secs(60),
            hourly: u32::MAX,
            hour: Duration::from_secs(3600),
            recipients: 10_000,
            day: Duration::from_secs(24 * 3600),
        }
    }
}

/// Permission to send one message; give it back with [`Limiter::finish`].
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a ticket holds a slot until it is finished"]
pub(crate) struct Ticket {
    id: u64,
    recipients: u32,
}

/// Why a message may not start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Not before this instant.
    Until(Instant),
    /// Until a message in flight finishes.
    InFlight,
    /// Never: more recipients than a whole day allows.
    Never,
}

/// What a mailbox has used of its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Messages in the current minute window.
    pub(crate) minute: usize,
    /// Messages in the hour window, when there is an hourly limit.
    pub(crate) hour: Option<usize>,
    /// Recipients in the day window.
    pub(crate) recipients: u64,
    /// Throttled: nothing is sent before this.
    pub(crate) paused_until: Option<Instant>,
}

/// The usage of one mailbox.
#[derive(Debug)]
pub(crate) struct Limiter {
    limits: SendLimits,
    /// Messages in flight: ticket id and recipients.
    in_flight: Vec<(u64, u32)>,
    /// When each recent message finished (oldest first).
    finished: VecDeque<Instant>,
    /// Recipients of recent messages.
    recipients: VecDeque<(Instant, u32)>,
    paused_until: Option<Instant>,
    pauses: u32,
    next_id: u64,
}

/// Longest pause after repeated throttling.
const MAX_PAUSE: Duration = Duration::from_secs(15 * 60);

impl Limiter {
    /// A limiter with nothing sent yet.
    pub(crate) fn new(limits: SendLimits) -> Self {
        Self {
            limits,
            in_flight: Vec::new(),
            finished: VecDeque::new(),
            recipients: VecDeque::new(),
            paused_until: None,
            pauses: 0,
            next_id: 0,
        }
    }

    /// Counts a message sent before (loaded from the queue after a restart).
    pub(crate) fn record(&mut self, at: Instant, recipients: u32) {
        self.finished.push_back(at);
        self.recipients.push_back((at, recipients));
    }

    /// Starts a message to `recipients` recipients at `now`, or says how long to wait.
    pub(crate) fn try_start(&mut self, recipients: u32, now: Instant) -> Result<Ticket, Wait> {
        self.check(recipients, now)?;
        self.next_id += 1;
        self.in_flight.push((self.next_id, recipients));
        Ok(Ticket {
            id: self.next_id,
            recipients,
        })
    }

    /// Whether a message to `recipients` recipients could start at `now`, reserving nothing.
    pub(crate) fn check(&mut self, recipients: u32, now: Instant) -> Result<(), Wait> {
        if recipients > self.limits.recipients {
            return Err(Wait::Never);
        }
        if let Some(until) = self.paused_until {
            if now < until {
                return Err(Wait::Until(until));
            }
            self.paused_until = None;
        }
        self.expire(now);
        self.window_wait(self.limits.messages, self.limits.window, now)?;
        if self.limits.hourly != u32::MAX {
            self.window_wait(self.limits.hourly, self.limits.hour, now)?;
        }
        let used: u64 = self.recipients.iter().map(|(_, n)| u64::from(*n)).sum::<u64>()
            + self.in_flight.iter().map(|(_, n)| u64::from(*n)).sum::<u64>();
        if used + u64::from(recipients) > u64::from(self.limits.recipients) {
            // Wait until enough of the day's recipients have left the window.
            let mut freed = 0u64;
            let excess = used + u64::from(recipients) - u64::from(self.limits.recipients);
            for (at, n) in &self.recipients {
                freed += u64::from(*n);
                if freed >= excess {
                    return Err(Wait::Until(*at + self.limits.day));
                }
            }
            return Err(Wait::InFlight);
        }
        Ok(())
    }

    /// What is used of the limits at `now`: messages in the minute and in the hour (finished or
    /// in flight), recipients in the day.
    pub(crate) fn usage(&mut self, now: Instant) -> Usage {
        self.expire(now);
        let within = |window: Duration| {
            self.finished.len() - self.finished.partition_point(|t| now >= *t + window) + self.in_flight.len()
        };
        Usage {
            minute: within(self.limits.window),
            hour: (self.limits.hourly != u32::MAX).then(|| within(self.limits.hour)),
            recipients: self.recipients.iter().map(|(_, n)| u64::from(*n)).sum::<u64>()
                + self.in_flight.iter().map(|(_, n)| u64::from(*n)).sum::<u64>(),
            paused_until: self.paused_until.filter(|until| *until > now),
        }
    }

    /// The limits.
    pub(crate) fn limits(&self) -> SendLimits {
        self.limits
    }

    /// Ends a message started with `ticket`. `submitted`: Exchange received the content (it
    /// counts against the limits whatever it answered); otherwise the slot is given back.
    #[allow(clippy::needless_pass_by_value)] // taking the ticket is what ends it
    pub(crate) fn finish(&mut self, ticket: Ticket, submitted: bool, now: Instant) {
        self.in_flight.retain(|(held, _)| *held != ticket.id);
        if submitted {
            self.record(now, ticket.recipients);
        }
    }

    /// How long the next throttling pauses the mailbox: longer each time in a row.
    pub(crate) fn throttle_pause(&self) -> Duration {
        crate::backoff::doubling(self.limits.window, self.pauses + 1, MAX_PAUSE.max(self.limits.window))
    }

    /// Exchange throttled the mailbox: nothing is sent before `until`.
    pub(crate) fn throttled_until(&mut self, until: Instant) {
        self.pauses += 1;
        self.paused_until = Some(until);
    }

    /// A message went through: throttling pauses start short again.
    pub(crate) fn succeeded(&mut self) {
        self.pauses = 0;
    }

    /// Whether `limit` messages are already in `window` (finished in it, or in flight): then
    /// the wait until the oldest leaves it. If every slot is in flight, one has to finish
    /// before the wait is known.
    fn window_wait(&self, limit: u32, window: Duration, now: Instant) -> Result<(), Wait> {
        let first = self.finished.partition_point(|t| now >= *t + window);
        let busy = self.finished.len() - first + self.in_flight.len();
        if busy < limit.max(1) as usize {
            return Ok(());
        }
        Err(self
            .finished
            .get(first)
            .map_or(Wait::InFlight, |t| Wait::Until(*t + window)))
    }

    /// The longest window a finished message counts in.
    fn longest_window(&self) -> Duration {
        if self.limits.hourly == u32::MAX {
            self.limits.window
        } else {
            self.limits.window.max(self.limits.hour)
        }
    }

    fn expire(&mut self, now: Instant) {
        let longest = self.longest_window();
        while self.finished.front().is_some_and(|t| now >= *t + longest) {
            self.finished.pop_front();
        }
        while self
            .recipients
            .front()
            .is_some_and(|(t, _)| now >= *t + self.limits.day)
        {
            self.recipients.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(messages: u32, recipients: u32) -> SendLimits {
        SendLimits {
            messages,
            recipients,
            ..SendLimits::default()
        }
    }

    #[test]
    fn an_hourly_window_beside_the_minute_one() {
        // ACS's default quota: 30 a minute, 100 an hour.
        let t0 = crate::clock::instant();
        let minute = Duration::from_secs(60);
        let mut l = Limiter::new(SendLimits {
            hourly: 100,
            ..limits(30, 10_000)
        });
        let mut now = t0;
        let mut sent = 0;
        while sent < 100 {
            match l.try_start(1, now) {
                Ok(ticket) => {
                    l.finish(ticket, true, now);
                    sent += 1;
                }
                Err(Wait::Until(until)) => {
                    assert!(until - now <= minute, "only the minute window holds before 100");
                    now = until;
                }
                Err(other) => panic!("{other:?}"),
            }
        }
        assert!(now - t0 >= 3 * minute, "30 a minute: the 100th is in the fourth minute");
        // The 101st waits for the first of the hour to leave it, not for a minute.
        assert_eq!(
            l.try_start(1, now + minute),
            Err(Wait::Until(t0 + Duration::from_secs(3600)))
        );
        assert!(l.try_start(1, t0 + Duration::from_secs(3600)).is_ok());
    }

    #[test]
    fn a_slot_is_held_from_start_until_a_window_after_the_reply() {
        let t0 = crate::clock::instant();
        let mut l = Limiter::new(limits(2, 100));
        let a = l.try_start(1, t0).unwrap();
        let b = l.try_start(1, t0).unwrap();
        assert_eq!(l.try_start(1, t0), Err(Wait::InFlight));
        l.finish(a, true, t0 + Duration::from_secs(1));
        assert_eq!(
            l.try_start(1, t0 + Duration::from_secs(2)),
            Err(Wait::Until(t0 + Duration::from_secs(61)))
        );
        // A message that never reached Exchange gives its slot back at once.
        l.finish(b, false, t0 + Duration::from_secs(2));
        let c = l.try_start(1, t0 + Duration::from_secs(2)).unwrap();
        l.finish(c, true, t0 + Duration::from_secs(3));
        assert_eq!(
            l.try_start(1, t0 + Duration::from_secs(60)),
            Err(Wait::Until(t0 + Duration::from_secs(61)))
        );
        assert!(l.try_start(1, t0 + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn recipients_per_day() {
        let t0 = crate::clock::instant();
        let mut l = Limiter::new(limits(1000, 10));
        l.record(t0, 6);
        assert_eq!(l.try_start(11, t0), Err(Wait::Never));
        let a = l.try_start(4, t0).unwrap();
        assert_eq!(
            l.try_start(1, t0),
            Err(Wait::Until(t0 + Duration::from_secs(86_400))),
            "the day's quota is taken by sent and in-flight"
        );
        l.finish(a, true, t0 + Duration::from_secs(5));
        assert_eq!(
            l.try_start(3, t0 + Duration::from_secs(10)),
            Err(Wait::Until(t0 + Duration::from_secs(86_400)))
        );
        assert!(l.try_start(3, t0 + Duration::from_secs(86_400)).is_ok());
    }

    /// Throttled at `t0` for the pause the limiter proposes, as the delivery does.
    fn throttle(l: &mut Limiter, t0: Instant) -> Instant {
        let until = t0 + l.throttle_pause();
        l.throttled_until(until);
        until
    }

    #[test]
    fn throttling_pauses_longer_each_time_and_resets_after_success() {
        let t0 = crate::clock::instant();
        let mut l = Limiter::new(limits(30, 100));
        assert_eq!(throttle(&mut l, t0), t0 + Duration::from_secs(60));
        assert_eq!(l.try_start(1, t0), Err(Wait::Until(t0 + Duration::from_secs(60))));
        assert_eq!(throttle(&mut l, t0), t0 + Duration::from_secs(120));
        assert_eq!(throttle(&mut l, t0), t0 + Duration::from_secs(240));
        for _ in 0..10 {
            throttle(&mut l, t0);
        }
        assert_eq!(throttle(&mut l, t0), t0 + MAX_PAUSE);
        l.succeeded();
        assert_eq!(throttle(&mut l, t0), t0 + Duration::from_secs(60));
    }
}
