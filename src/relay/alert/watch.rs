//! The conditions looked at every `check_interval`: accounts paused too long, credentials near
//! expiry, the queue's age and depth. Each is raised once (the outbox remembers it, for every
//! relay on the queue) and, for the queue's, cleared once it no longer holds. An account's
//! recovery is cleared by the delivery that succeeds (`deliver/record.rs`).

use tokio::sync::watch;

use super::{AlertSettings, Alerts, Event, account_key, credential_key, credential_stage};
use crate::account::CredentialExpiry;
use crate::clock::Timestamp;
use crate::queue::{OutboxOp, OutboxResult, Paused, Queue, Stats};
use crate::relay::Accounts;

/// The condition keys of the queue's age and depth.
const QUEUE_AGE: &str = "queue-age";
const QUEUE_DEPTH: &str = "queue-depth";

/// What the conditions are computed from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Observed {
    /// Paused accounts, from the queue (every relay's pauses).
    pub(crate) paused: Vec<Paused>,
    /// The queue's counts.
    pub(crate) stats: Option<Stats>,
    /// Each configured account's expiring credential.
    pub(crate) credentials: Vec<(String, CredentialExpiry)>,
    /// The configured accounts.
    pub(crate) accounts: Vec<String>,
}

/// The raises and clears for what is observed at `now` (pure).
pub(crate) fn conditions(alerts: &Alerts, settings: &AlertSettings, seen: &Observed, now: Timestamp) -> Vec<OutboxOp> {
    let mut ops = Vec::new();
    for paused in &seen.paused {
        if seen.accounts.contains(&paused.account) && now.since(paused.since) >= settings.unavailable_after {
            ops.push(OutboxOp::Raise {
                key: account_key(&paused.account),
                since: paused.since,
                alerts: alerts.rows(&Event::account_unavailable(paused, now)),
            });
        }
    }
    for (account, expiry) in &seen.credentials {
        if let Some(stage) = credential_stage(expiry, now) {
            ops.push(OutboxOp::Raise {
                key: credential_key(account, expiry.at, stage),
                since: now,
                alerts: alerts.rows(&Event::credential(account, expiry, now)),
            });
        }
    }
    if let Some(stats) = seen.stats {
        let old = stats
            .oldest
            .filter(|oldest| now.since(*oldest) > settings.queue_age_over);
        ops.push(match old {
            Some(oldest) => OutboxOp::Raise {
                key: QUEUE_AGE.into(),
                since: now,
                alerts: alerts.rows(&Event::queue_old(oldest, stats.queued, settings.queue_age_over, now)),
            },
            None => OutboxOp::Clear {
                key: QUEUE_AGE.into(),
                alerts: alerts.rows(&Event::queue_old_resolved(stats.queued, settings.queue_age_over, now)),
            },
        });
        let depth = settings.queue_depth_over;
        ops.push(if stats.queued.unsigned_abs() > depth {
            OutboxOp::Raise {
                key: QUEUE_DEPTH.into(),
                since: now,
                alerts: alerts.rows(&Event::queue_deep(stats.queued, depth, now)),
            }
        } else {
            OutboxOp::Clear {
                key: QUEUE_DEPTH.into(),
                alerts: alerts.rows(&Event::queue_deep_resolved(stats.queued, depth, now)),
            }
        });
    }
    ops
}

/// Looks at the conditions until `shutdown`.
pub(crate) async fn run(alerts: Alerts, queue: Queue, accounts: Accounts, mut shutdown: watch::Receiver<bool>) {
    loop {
        let settings = alerts.settings();
        if alerts.on() {
            check(&alerts, &settings, &queue, &accounts).await;
        }
        tokio::select! {
            () = tokio::time::sleep(settings.check_every) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

async fn check(alerts: &Alerts, settings: &AlertSettings, queue: &Queue, accounts: &Accounts) {
    let mut seen = Observed::default();
    {
        let accounts = accounts.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (name, delivery) in accounts.iter() {
            seen.accounts.push(name.clone());
            if let Some(expiry) = delivery.account().credential_expiry() {
                seen.credentials.push((name.clone(), expiry));
            }
        }
    }
    match queue.paused().await {
        Ok(paused) => seen.paused = paused,
        Err(e) => tracing::warn!(error = %e, "alerts: cannot read the paused accounts"),
    }
    match queue.stats().await {
        Ok(stats) => seen.stats = Some(stats),
        Err(e) => tracing::warn!(error = %e, "alerts: cannot read the queue's counts"),
    }
    let mut stored = false;
    for op in conditions(alerts, settings, &seen, Timestamp::now()) {
        match queue.outbox(op).await {
            Ok(OutboxResult::Changed(true)) => stored = true,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "alerts: cannot record a condition; trying again"),
        }
    }
    if stored {
        alerts.stored();
    }
}
