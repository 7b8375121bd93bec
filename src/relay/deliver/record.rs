//! Recording an outcome: the log, the metrics, notifications for what was given up on, the
//! account's pause, and the queue operations, retried while the disk refuses.

use super::*;
use crate::relay::status::{Delivery, Event, LastReply};

impl AccountDelivery {
    /// Returns a leased message to the queue untried.
    pub(super) async fn put_back(&self, leased: &Leased, at: Timestamp, why: &str) {
        let op = Op::Defer {
            id: leased.message.id.clone(),
            recipients: leased.message.recipients.clone(),
            next_attempt: at,
            attempted: false,
            crashed: false,
            at: Timestamp::now(),
            reply: why.to_owned(),
        };
        if let Err(e) = self.queue.apply(vec![op]).await {
            tracing::error!(queue_id = %leased.message.id, error = %e, "cannot put a message back; it is due again when its lease runs out");
        }
    }

    /// A message another relay had leased and never finished: logged, and announced.
    pub(super) async fn taken_over(&self, leased: &Leased) {
        tracing::warn!(queue_id = %leased.message.id, account = %self.name(), "a delivery another relay began and never finished is taken over");
        let rows = self
            .alerts
            .rows(&alert::Event::taken_over(self.name(), 1, Timestamp::now()));
        if rows.is_empty() {
            return;
        }
        match self.queue.outbox(crate::queue::OutboxOp::Add(rows)).await {
            Ok(_) => self.alerts.stored(),
            Err(e) => tracing::warn!(error = %e, "cannot store an alert"),
        }
    }

    /// Pauses the account after a failure that is its own (the readiness, the log and the
    /// queue say why), or lifts the pause after a success; the queue operations that record
    /// it, and that announce a recovery (once after each pause, and once after start: the
    /// pause may have been announced by an earlier run, or by another relay).
    pub(super) fn account_state(&self, plan: &outcome::Plan, now: Timestamp, blocked_pause: Duration) -> Vec<Op> {
        let was_paused = std::mem::replace(
            &mut *self
                .unavailable
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            plan.unavailable.then(|| plan.reply.clone()),
        )
        .is_some();
        if !plan.unavailable {
            let mut ops = Vec::new();
            if was_paused {
                self.blocked.store(0, Ordering::Relaxed);
                ops.push(Op::Resume(self.name().to_owned()));
            }
            let first = !self.announced_clear.swap(true, Ordering::Relaxed);
            if (was_paused || first) && self.alerts.on() {
                ops.push(Op::Outbox(crate::queue::OutboxOp::Clear {
                    key: alert::account_key(self.name()),
                    alerts: self
                        .alerts
                        .rows(&alert::Event::account_recovered(self.name(), now, &plan.reply)),
                }));
            }
            return ops;
        }
        let pause = if plan.blocked {
            self.blocked.fetch_add(1, Ordering::Relaxed);
            tracing::error!(account = %self.name(), pause_s = blocked_pause.as_secs(), reply = %plan.reply, "Exchange refuses this account: its messages wait until it is fixed");
            blocked_pause
        } else {
            self.settings.backoff.initial
        };
        *self
            .unavailable_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(clock::instant() + pause);
        let cause = plan.diagnosis.lines().next().unwrap_or_default();
        vec![Op::Pause {
            account: self.name().to_owned(),
            until: now + pause,
            reason: if cause.is_empty() {
                plan.reply.clone()
            } else {
                format!("{} ({cause})", plan.reply)
            },
            at: now,
        }]
    }

    /// Logs the outcome and applies `ops` (the plan's, and the account's state), with delivery
    /// status notifications for what was given up on. Returns whether it was recorded.
    pub(super) async fn record(&self, leased: &Leased, plan: &outcome::Plan, mut ops: Vec<Op>, took: Duration) -> bool {
        let message = &leased.message;
        let m = &self.metrics;
        let message_id = message.message_id.as_deref().unwrap_or("");
        let now = Timestamp::now();
        *self
            .last_reply
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(LastReply {
            at: now,
            reply: plan.reply.clone(),
            diagnosis: plan.diagnosis.clone(),
        });
        if plan.delivered > 0 {
            m.delivered.get_or_create(&self.label).inc();
            let latency = now.since(message.received);
            m.delivery_latency.observe(latency.as_secs_f64());
            m.activity.delivered(Delivery {
                at: now,
                queue_id: message.id.clone(),
                account: self.name().to_owned(),
                recipients: plan.delivered,
                latency,
                reply: plan.reply.clone(),
            });
            tracing::info!(queue_id = %message.id, message_id, account = %self.name(), recipients = plan.delivered, ms = took.as_millis() as u64, reply = %plan.reply, "delivered");
        }
        if plan.deferred > 0 {
            m.deferred.get_or_create(&self.label).inc();
            m.activity.record(Event::Deferred, now);
            tracing::warn!(queue_id = %message.id, message_id, account = %self.name(), recipients = plan.deferred, attempts = leased.attempts + 1, reply = %plan.reply, "deferred");
            if !plan.diagnosis.is_empty() && leased.attempts == 0 {
                tracing::warn!(account = %self.name(), "{}", plan.diagnosis);
            }
        }
        for op in &plan.ops {
            if let Op::Dead(dead) = op {
                let rows = self.alerts.rows(&alert::Event::dead_lettered(dead));
                if !rows.is_empty() {
                    ops.push(Op::Outbox(crate::queue::OutboxOp::Add(rows)));
                }
            }
        }
        if plan.dead > 0 {
            m.dead_lettered.get_or_create(&self.label).inc();
            m.activity.record(Event::DeadLettered, now);
            tracing::error!(queue_id = %message.id, message_id, account = %self.name(), recipients = plan.dead, reply = %plan.reply, "dead-lettered");
        }
        if let Some(to) = &self.settings.dsn_to {
            let mailbox = &self.submitter.account().mailbox.value;
            for op in &plan.ops {
                if let Op::Dead(dead) = op
                    && dsn::wanted(dead)
                {
                    let id = crate::queue::new_id();
                    ops.push(Op::Enqueue(dsn::notification(
                        dead,
                        &id,
                        mailbox,
                        to,
                        &self.hostname,
                        Timestamp::now(),
                    )));
                    tracing::info!(queue_id = %id, about = %dead.message.id, to = %to, "delivery status notification queued");
                }
            }
        }
        let alerting = ops.iter().any(|op| matches!(op, Op::Outbox(_)));
        let recorded = self.apply_outcome(&message.id, ops).await;
        if recorded && alerting {
            self.alerts.stored();
        }
        recorded
    }

    /// Applies an outcome, trying again for a while (a disk that is full now may not be in a
    /// minute). When it cannot, the message stays leased until its lease runs out and is then
    /// delivered again: a duplicate rather than a loss.
    pub(super) async fn apply_outcome(&self, id: &str, ops: Vec<Op>) -> bool {
        let give_up_at = clock::instant() + self.settings.lease / 2;
        let mut wait = QUEUE_RETRY;
        loop {
            let error: QueueError = match self.queue.apply(ops.clone()).await {
                Ok(_) => return true,
                Err(e) => e,
            };
            if self.stopping() || clock::instant() + wait > give_up_at {
                tracing::error!(queue_id = %id, error = %error, lease_s = self.settings.lease.as_secs(), "cannot record the outcome; the message is due again when its lease runs out");
                return false;
            }
            tracing::warn!(queue_id = %id, error = %error, retry_ms = wait.as_millis() as u64, "cannot record the outcome; trying again");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(30));
        }
    }
}
