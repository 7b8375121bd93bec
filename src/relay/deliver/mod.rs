//! Delivery to Exchange Online: per account, a few workers that each keep one authenticated
//! connection, take due messages from the queue, respect the mailbox's limits and record the
//! outcome. The token is refreshed in the background, so no message waits for it.
//!
//! A worker survives what goes wrong inside one delivery: a crash (a panic) is caught, the
//! message deferred with what happened and given up on after a few crashes, and the worker goes
//! on with the next message. A message is held by a lease that the worker renews while it
//! delivers; if the outcome cannot be recorded, the lease runs out and the message is due again.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt as _;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::alert::{self, Alerts};
use super::dsn;
use super::limits::{Limiter, Ticket, Wait};
use super::metrics::{AccountLabel, Metrics, ReplyLabel};
use super::outcome::{self, Resume, Stage};
use super::settings::DeliverySettings as Settings;
use crate::account::{Account, Expiry, Transport};
use crate::clock::{self, Timestamp};
use crate::queue::{Leased, Op, Queue, QueueError, Slot};
use crate::smtp::{Connection, Envelope};
use crate::submit::{SubmitError, Submitter};
use attempt::stale;

mod attempt;
mod joint;
mod record;
mod view;

/// An idle worker looks at the queue at least this often, so `queue retry` and `queue dead
/// retry` from another process take effect within seconds.
const RECHECK: Duration = Duration::from_secs(5);
/// A queue error is retried after this.
const QUEUE_RETRY: Duration = Duration::from_secs(1);
/// A limiter wait longer than this puts the message back instead of holding it.
const HOLD_AT_MOST: Duration = Duration::from_secs(5);

/// Delivery for one account.
#[derive(Debug)]
pub(crate) struct AccountDelivery {
    submitter: Submitter,
    queue: Queue,
    settings: Settings,
    limiter: Mutex<Limiter>,
    /// A slot of the limiter was freed.
    freed: Notify,
    /// A message was stored for this account.
    work: Notify,
    /// Exchange unreachable or refusing the account: no attempts before this.
    unavailable_until: Mutex<Option<Instant>>,
    metrics: Arc<Metrics>,
    label: AccountLabel,
    /// Why the account could not reach Exchange on its last attempt (cleared by a success).
    unavailable: Mutex<Option<String>>,
    /// The relay's name, for delivery status notifications.
    hostname: String,
    shutdown: watch::Receiver<bool>,
    /// The urgency of the credential expiry warning last logged ([`Expiry::urgency`]).
    expiry_warned: std::sync::atomic::AtomicU8,
    /// Refusals of the account in a row: each doubles the pause.
    blocked: AtomicU32,
    /// The mailbox's limits held with the other relays on the queue, if it is shared.
    joint: Option<joint::Joint>,
    /// The last answer of Microsoft's (or error), with the catalog's cause and fix, for the
    /// status page.
    last_reply: Mutex<Option<crate::relay::status::LastReply>>,
    /// Where events go (dead letters, the account's recovery, deliveries taken over).
    alerts: Alerts,
    /// An unavailability announced before this start has been cleared by a success.
    announced_clear: std::sync::atomic::AtomicBool,
}

/// An authenticated connection and when its token expires.
struct Upstream {
    connection: Connection,
    token_expires_at: Option<Timestamp>,
    idle_since: Instant,
}

impl AccountDelivery {
    /// Prepares delivery for `account`; recent deliveries recorded in the queue count against
    /// the mailbox's limits.
    pub(crate) async fn new(
        account: Account,
        queue: Queue,
        settings: Settings,
        hostname: String,
        metrics: Arc<Metrics>,
        alerts: Alerts,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<Self>, SubmitError> {
        let joint = joint::Joint::new(&queue, &account, &settings);
        let submitter = Submitter::new(account, &crate::submit::Options::default())?;
        // A start or a reload is a new try: a pause recorded before is no longer true.
        if let Err(e) = queue.apply(vec![Op::Resume(submitter.account().name.clone())]).await {
            tracing::warn!(account = %submitter.account().name, error = %e, "cannot clear the account's pause");
        }
        let mut limiter = Limiter::new(settings.limits);
        let (now, instant) = (Timestamp::now(), clock::instant());
        let since = now - settings.limits.day;
        if let Ok(sent) = queue.recipients_since(&submitter.account().name, since).await {
            for (at, recipients) in sent {
                let ago = now.since(at);
                limiter.record(instant.checked_sub(ago).unwrap_or(instant), recipients);
            }
        }
        Ok(Arc::new(Self {
            label: Metrics::account(&submitter.account().name),
            submitter,
            queue,
            settings,
            limiter: Mutex::new(limiter),
            freed: Notify::new(),
            work: Notify::new(),
            unavailable_until: Mutex::new(None),
            metrics,
            unavailable: Mutex::new(None),
            hostname,
            shutdown,
            expiry_warned: std::sync::atomic::AtomicU8::new(0),
            blocked: AtomicU32::new(0),
            joint,
            last_reply: Mutex::new(None),
            alerts,
            announced_clear: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// Logs once when the credential comes within 30 days, within 7 days, and when it has
    /// expired (checked at start and then with every look at the queue).
    fn check_expiry(&self) {
        use std::sync::atomic::Ordering;
        let Some(expiry) = self.submitter.account().credential_expiry() else {
            return;
        };
        let now = Timestamp::now();
        let urgency = expiry.at(now);
        if urgency.urgency() <= self.expiry_warned.fetch_max(urgency.urgency(), Ordering::Relaxed) {
            return;
        }
        let (account, credential, date) = (self.name(), expiry.credential.to_string(), expiry.at.date());
        let warning = expiry.warning(now).unwrap_or_default();
        if urgency == Expiry::Expired {
            tracing::error!(account, credential, expired = %date, "{warning} (SIGHUP reloads it)");
        } else {
            tracing::warn!(account, credential, expires = %date, "{warning}");
        }
    }

    /// The account.
    pub(crate) fn account(&self) -> &Account {
        self.submitter.account()
    }

    /// The account's name.
    pub(crate) fn name(&self) -> &str {
        &self.submitter.account().name
    }

    /// New work for this account.
    pub(crate) fn notify(&self) {
        self.work.notify_waiters();
    }

    /// Starts the workers; returns them and the background token refresher.
    pub(crate) fn start(self: &Arc<Self>) -> (Vec<tokio::task::JoinHandle<()>>, Option<tokio::task::JoinHandle<()>>) {
        let refresher = self.submitter.provider().map(|p| p.spawn_refresher());
        let workers = (0..self.settings.connections_per_account.max(1))
            .map(|_| tokio::spawn(Arc::clone(self).supervised()))
            .collect();
        (workers, refresher)
    }

    /// A worker, started again if it dies outside a delivery (a delivery's own crash is caught
    /// where it happens, with its message): an account never loses its workers.
    async fn supervised(self: Arc<Self>) {
        while !self.stopping() {
            match AssertUnwindSafe(Arc::clone(&self).worker()).catch_unwind().await {
                Ok(()) => return,
                Err(_) => {
                    tracing::error!(account = %self.name(), "a delivery worker crashed; starting it again");
                    tokio::time::sleep(QUEUE_RETRY).await;
                }
            }
        }
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    async fn worker(self: Arc<Self>) {
        let mut upstream: Option<Upstream> = None;
        // One of the mailbox's connections, when the relays share it (see `joint.rs`).
        let mut seat: Option<Slot> = None;
        while !self.stopping() {
            #[cfg(test)]
            tests::worker_hook(&self.hostname);
            let Some(leased) = self.next_message(&mut upstream, &mut seat).await else {
                break;
            };
            let mut recorded = false;
            let delivery = AssertUnwindSafe(self.deliver(&leased, &mut upstream, &mut recorded));
            if let Err(panic) = delivery.catch_unwind().await {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_owned());
                self.crashed(&leased, &mut upstream, recorded, &what).await;
            }
        }
        if let Some(up) = upstream.take() {
            self.close(up).await;
        }
        self.unseat(&mut seat).await;
    }

    /// A delivery panicked: nothing of its state is trusted (its connection is dropped, its
    /// limiter slot was given back by [`TicketGuard`]), and the message is deferred or, after a
    /// few crashes, given up on, unless its outcome was recorded before the crash.
    async fn crashed(&self, leased: &Leased, upstream: &mut Option<Upstream>, recorded: bool, what: &str) {
        tracing::error!(queue_id = %leased.message.id, account = %self.name(), crashes = leased.crashes + 1, "the delivery crashed: {what}");
        if upstream.take().is_some() {
            self.metrics.upstream_connections.get_or_create(&self.label).dec();
        }
        self.freed.notify_waiters();
        if recorded {
            return;
        }
        let plan = outcome::crashed(leased, what, &self.settings.backoff, Timestamp::now());
        let ops = plan.ops.clone();
        self.record(leased, &plan, ops, Duration::ZERO).await;
    }

    /// Waits for a due message and leases it; `None` at shutdown. Closes the connection when it
    /// has been idle too long, and gives back the seat of a worker without a connection that
    /// has nothing to do.
    async fn next_message(&self, upstream: &mut Option<Upstream>, seat: &mut Option<Slot>) -> Option<Leased> {
        let mut shutdown = self.shutdown.clone();
        loop {
            if self.stopping() {
                return None;
            }
            let notified = self.work.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            // Nothing is leased while the account is paused or the mailbox's limits are used
            // up: the messages stay in the queue, untouched, until one can go.
            let now = clock::instant();
            let limited = match self
                .limiter
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .check(1, now)
            {
                Ok(()) => None,
                Err(Wait::Until(at)) => Some(at),
                Err(Wait::InFlight | Wait::Never) => Some(now + Duration::from_secs(3600)),
            };
            let pause = self.unavailable_until().into_iter().chain(limited).max();
            self.check_expiry();
            let mut wait = RECHECK;
            let mut seats_taken = false;
            if pause.is_none() {
                let now = Timestamp::now();
                match self.seated(seat, now).await {
                    Ok(()) => match self.queue.lease(self.name(), now, 1, now + self.settings.lease).await {
                        Ok(mut leased) if !leased.is_empty() => {
                            let leased = leased.remove(0);
                            if leased.reclaimed {
                                self.taken_over(&leased).await;
                            }
                            return Some(leased);
                        }
                        Ok(_) => {
                            if upstream.is_none() {
                                self.unseat(seat).await;
                            }
                            if let Ok(Some(due)) = self.queue.next_due(self.name(), now).await {
                                wait = wait.min(Timestamp::now().until(due));
                            }
                        }
                        Err(e) => {
                            tracing::error!(account = %self.name(), error = %e, "cannot read the queue");
                            wait = QUEUE_RETRY;
                        }
                    },
                    Err(joint::Unseated::Idle(idle)) => wait = wait.min(idle),
                    Err(joint::Unseated::Full(poll)) => {
                        wait = wait.min(poll);
                        seats_taken = true;
                    }
                }
            }
            if let Some(until) = pause {
                wait = wait.min(until.saturating_duration_since(clock::instant()));
            }
            if let Some(up) = upstream.as_ref() {
                let idle_left = self
                    .settings
                    .connection_idle
                    .saturating_sub(clock::since(up.idle_since));
                if idle_left.is_zero() {
                    self.close(upstream.take().expect("checked")).await;
                    self.unseat(seat).await;
                    continue;
                }
                wait = wait.min(idle_left);
            }
            tokio::select! {
                () = &mut notified, if !seats_taken => {}
                () = &mut freed, if limited.is_some() => {}
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    fn unavailable_until(&self) -> Option<Instant> {
        let mut until = self
            .unavailable_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if until.is_some_and(|t| t <= clock::instant()) {
            *until = None;
        }
        *until
    }

    /// Waits for the mailbox's limits to allow `leased`; `None` when it was put back (or given
    /// up on) instead.
    async fn ticket(&self, leased: &Leased) -> Option<TicketGuard<'_>> {
        let recipients = u32::try_from(leased.message.recipients.len()).unwrap_or(u32::MAX);
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let now = clock::instant();
            let attempt = self.limiter().try_start(recipients, now);
            let wait = match attempt {
                Ok(ticket) => {
                    let mut guard = TicketGuard {
                        delivery: self,
                        ticket: Some(ticket),
                        slot: None,
                    };
                    match self.joint_slot(recipients).await {
                        Ok(slot) => {
                            guard.slot = slot;
                            return Some(guard);
                        }
                        Err(wait) => {
                            guard.finish(false, false, now);
                            wait
                        }
                    }
                }
                Err(wait) => wait,
            };
            match wait {
                Wait::Until(at) if at.saturating_duration_since(now) > HOLD_AT_MOST => {
                    let later = Timestamp::now() + at.saturating_duration_since(now);
                    self.put_back(leased, later, "waiting for the mailbox's sending limits")
                        .await;
                    return None;
                }
                Wait::Until(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = &mut freed => {}
                    }
                }
                Wait::InFlight => freed.await,
                Wait::Never => {
                    // It would wait for ever: say so, where the operator looks.
                    let limit = self.settings.limits.recipients;
                    let plan = outcome::refused_here(
                        leased,
                        format!(
                            "the message has {recipients} recipients; the mailbox may send to at most {limit} in 24 hours (relay.delivery.recipients_per_day)"
                        ),
                        "Exchange Online counts every recipient against the mailbox's daily limit, so this message \
                         can never be sent whole. Send it again to fewer recipients at a time (the relay's \
                         max_recipients makes clients split their messages).",
                        Timestamp::now(),
                    );
                    let ops = plan.ops.clone();
                    self.record(leased, &plan, ops, Duration::ZERO).await;
                    return None;
                }
            }
        }
    }

    fn limiter(&self) -> std::sync::MutexGuard<'_, Limiter> {
        self.limiter.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn deliver(&self, leased: &Leased, upstream: &mut Option<Upstream>, recorded: &mut bool) {
        if leased.message.recipients.is_empty() {
            // Never "delivered to nobody": only a damaged row has no recipient left.
            let plan = outcome::refused_here(
                leased,
                "the queue holds no readable recipient for this message (its row is damaged; the log has its text)"
                    .to_owned(),
                "Nothing was sent. The message's content is kept here: `m365-mailer queue dead show ID --content` \
                 shows it; send it again to its recipients.",
                Timestamp::now(),
            );
            let ops = plan.ops.clone();
            *recorded = self.record(leased, &plan, ops, Duration::ZERO).await;
            return;
        }
        let Some(mut ticket) = self.ticket(leased).await else {
            *recorded = true;
            return;
        };
        let started = clock::instant();
        #[cfg(test)]
        tests::crash_hook(leased);
        let graph = self.submitter.account().transport == Transport::Graph;
        let (stage, result) = self.submit(leased, upstream, started).await;
        let submitted = stage == Stage::Transaction
            && match &result {
                Ok(_) => true,
                Err(SubmitError::Smtp(e)) => e.reply().is_some(),
                Err(_) => false,
            };
        let instant = clock::instant();
        ticket.finish(submitted, result.is_ok(), instant);
        self.joint_sent(ticket.slot.take(), submitted).await;
        let now = Timestamp::now();
        let blocked_pause = self.settings.backoff.delay(self.blocked.load(Ordering::Relaxed) + 1);
        let resume = Resume {
            throttled: now + self.limiter().throttle_pause(),
            blocked: now + blocked_pause,
        };
        let plan = outcome::plan(
            leased,
            stage,
            &result,
            self.submitter.account(),
            &self.settings.backoff,
            now,
            resume,
        );
        if let Some(until) = plan.throttled {
            self.limiter().throttled_until(instant + now.until(until));
            self.joint_pause(now.until(until)).await;
        }
        self.freed.notify_waiters();
        self.count_reply(&result, graph);
        let mut ops = plan.ops.clone();
        ops.extend(self.account_state(&plan, now, blocked_pause));
        if !plan.keep_connection
            && let Some(up) = upstream.take()
        {
            self.metrics.upstream_connections.get_or_create(&self.label).dec();
            drop(up);
        } else if let Some(up) = upstream.as_mut() {
            up.idle_since = clock::instant();
        }
        *recorded = self.record(leased, &plan, ops, clock::since(started)).await;
    }

    /// One attempt at the message over SMTP (on the pooled connection when it is still good)
    /// or Graph, renewing the lease while it runs.
    async fn submit(
        &self,
        leased: &Leased,
        upstream: &mut Option<Upstream>,
        started: Instant,
    ) -> (Stage, Result<crate::smtp::Delivery, SubmitError>) {
        if self.submitter.account().transport == Transport::Graph {
            return self.renewing(leased, self.attempt_graph(leased)).await;
        }
        // A connection is re-authenticated (replaced) once the background refresher has a
        // newer token, or when its token is about to expire: Exchange checks the token at AUTH
        // only, but a long-lived session should not outlive it.
        if upstream.as_ref().is_some_and(|up| self.token_outdated(up)) {
            let old = upstream.take().expect("checked");
            self.close(old).await;
        }
        let reused = upstream.is_some();
        let (stage, result) = self.renewing(leased, self.attempt(leased, upstream, started)).await;
        if reused && stage == Stage::Transaction && stale(&result) {
            // The server closed the pooled connection while it was idle, before it took
            // anything of this message: not the message's fault, nor Exchange being down.
            // Once more on a fresh connection.
            tracing::debug!(account = %self.name(), "pooled connection was closed; reconnecting");
            if upstream.take().is_some() {
                self.metrics.upstream_connections.get_or_create(&self.label).dec();
            }
            return self.renewing(leased, self.attempt(leased, upstream, started)).await;
        }
        (stage, result)
    }

    /// Counts Exchange's (or Graph's) answer for the metrics.
    fn count_reply(&self, result: &Result<crate::smtp::Delivery, SubmitError>, graph: bool) {
        let code = match result {
            Ok(_) if graph => "202".to_owned(),
            Err(SubmitError::Graph(e)) => e.graph().map_or_else(|| "none".to_owned(), |g| g.status.to_string()),
            Ok(delivery) => delivery.reply.code().to_string(),
            Err(SubmitError::Smtp(e)) => e.reply().map_or_else(|| "none".to_owned(), |r| r.code().to_string()),
            Err(_) => "none".to_owned(),
        };
        self.metrics
            .upstream_replies
            .get_or_create(&ReplyLabel {
                account: self.label.account.clone(),
                code,
            })
            .inc();
    }

    async fn close(&self, upstream: Upstream) {
        self.metrics.upstream_connections.get_or_create(&self.label).dec();
        upstream.connection.quit().await;
    }
}

/// A limiter slot held for one delivery. [`TicketGuard::finish`] gives it back with what
/// happened; if the delivery crashes first, dropping the guard gives it back as used (Exchange
/// may have counted the message), so a crash never leaks a slot.
struct TicketGuard<'a> {
    delivery: &'a AccountDelivery,
    ticket: Option<Ticket>,
    /// The slot in the mailbox's joint limits, given back after the local one; dropped in a
    /// crash, it runs out by itself.
    slot: Option<Slot>,
}

impl TicketGuard<'_> {
    fn finish(&mut self, submitted: bool, succeeded: bool, now: Instant) {
        if let Some(ticket) = self.ticket.take() {
            let mut limiter = self.delivery.limiter();
            limiter.finish(ticket, submitted, now);
            if succeeded {
                limiter.succeeded();
            }
        }
    }
}

impl Drop for TicketGuard<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.delivery.limiter().finish(ticket, true, clock::instant());
            self.delivery.freed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests;
