//! Exchange's per-mailbox limits, held jointly by every relay on the database: Exchange counts
//! a mailbox's messages, recipients and connections whichever relay sends them.
//!
//! One table, `mailbox_slots`, has a row for each thing that counts against a mailbox:
//! - `message`: a message being sent (`held`; `at_ms` is when its hold runs out, renewed while
//!   its relay lives) or sent (`at_ms` is when Exchange's reply came). It counts against the
//!   messages window until `at_ms + window`, its recipients against the day until
//!   `at_ms + day`. A relay that dies leaves its message held until the hold runs out, and from
//!   then on counted as sent at that moment: never less than Exchange counted.
//! - `smtp` and `graph`: an open connection (an unfinished Graph request), until `at_ms`
//!   (renewed while it is open, and a moment longer after it closes, as Exchange notices a
//!   closed connection a little later).
//! - `pause`: Exchange throttled the mailbox; nothing starts before `at_ms`.
//!
//! Each decision is one transaction under an advisory lock of the mailbox, so two relays never
//! both take the last slot, and it is made on the database's clock, so relays whose machines'
//! clocks differ still agree on the windows.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::PostgresStore;
use crate::clock::Timestamp;
use crate::queue::QueueError;

/// How long a slot stays held without being renewed: the longest the slots of a relay that
/// died keep counting as in use.
const HOLD: Duration = Duration::from_secs(15);
/// How often a relay renews the slots it holds.
const RENEW: Duration = Duration::from_secs(3);
/// How long a closed connection still counts.
const GRACE: Duration = Duration::from_millis(500);
/// How soon to look again when every slot of the window is held by a message being sent: it
/// ends within a moment, but its end is not known in advance.
const SOON: Duration = Duration::from_millis(200);

/// The database's clock, in Unix milliseconds, at the moment the statement runs.
macro_rules! now_ms {
    () => {
        "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
    };
}

/// A mailbox's sending limits (the relay's `SendLimits`, which the queue's floor may not name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotLimits {
    /// Messages per window.
    pub(crate) messages: u32,
    /// The messages window.
    pub(crate) window: Duration,
    /// Messages per longer window (ACS: an hour); `u32::MAX` for none.
    pub(crate) hourly: u32,
    /// The longer window.
    pub(crate) hour: Duration,
    /// Recipients per day.
    pub(crate) recipients: u32,
    /// The recipients window.
    pub(crate) day: Duration,
}

/// What a slot is for besides a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seat {
    /// An SMTP connection.
    Smtp,
    /// A Graph request.
    Graph,
}

impl Seat {
    fn kind(self) -> &'static str {
        match self {
            Seat::Smtp => "smtp",
            Seat::Graph => "graph",
        }
    }
}

/// Why a message may not start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotWait {
    /// Try again after this long.
    For(Duration),
    /// Never: more recipients than a whole day allows.
    Never,
}

/// The slots one relay takes for its mailboxes, renewed in the background while they are held.
#[derive(Debug, Clone)]
pub(crate) struct Slots {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<PostgresStore>,
    /// The ids of the slots held now: renewed until given back or dropped.
    held: Mutex<HashSet<i64>>,
}

/// One slot held; give it back with [`Slots::sent`] or [`Slots::leave`]. Dropped without, it
/// is no longer renewed, and counts as used until its hold runs out.
#[derive(Debug)]
#[must_use = "a slot counts against the mailbox until it is given back"]
pub(crate) struct Slot {
    id: i64,
    inner: Weak<Inner>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.held().remove(&self.id);
        }
    }
}

/// A mailbox's usage, as the database has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Usage {
    now: Timestamp,
    /// Messages in the window, being sent or sent.
    messages: u32,
    /// When the oldest message sent within the window was sent.
    oldest: Option<Timestamp>,
    /// Messages in the longer window, and when its oldest was sent.
    hourly: u32,
    oldest_in_hour: Option<Timestamp>,
    /// Recipients within the day.
    recipients: u64,
    /// The end of the latest pause.
    paused_until: Option<Timestamp>,
}

/// What the usage allows a message to `recipients` recipients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Go,
    Wait(Duration),
    /// The day's recipients are used up: wait until this many of them leave the day.
    Recipients(u64),
    Never,
}

/// The rule, as the relay's own limiter applies it (`relay/limits.rs`).
fn decide(usage: &Usage, limits: &SlotLimits, recipients: u32) -> Verdict {
    if recipients > limits.recipients {
        return Verdict::Never;
    }
    if let Some(until) = usage.paused_until.filter(|until| *until > usage.now) {
        return Verdict::Wait(usage.now.until(until));
    }
    let full = |count: u32, limit: u32, oldest: Option<Timestamp>, window: Duration| {
        (limit != u32::MAX && count >= limit.max(1)).then(|| {
            Verdict::Wait(oldest.map_or(SOON, |oldest| {
                usage.now.until(oldest + window).max(Duration::from_millis(1))
            }))
        })
    };
    if let Some(wait) = full(usage.messages, limits.messages, usage.oldest, limits.window)
        .or_else(|| full(usage.hourly, limits.hourly, usage.oldest_in_hour, limits.hour))
    {
        return wait;
    }
    let wanted = usage.recipients + u64::from(recipients);
    if wanted > u64::from(limits.recipients) {
        return Verdict::Recipients(wanted - u64::from(limits.recipients));
    }
    Verdict::Go
}

impl Slots {
    /// Slots on `store`'s database; the renewal runs while any clone of it lives.
    pub(crate) fn new(store: Arc<PostgresStore>) -> Self {
        let inner = Arc::new(Inner {
            store,
            held: Mutex::new(HashSet::new()),
        });
        tokio::spawn(renew(Arc::downgrade(&inner)));
        Self { inner }
    }

    /// A slot for a message to `recipients` recipients from `mailbox`, or how long to wait.
    pub(crate) async fn message(
        &self,
        mailbox: &str,
        limits: &SlotLimits,
        recipients: u32,
    ) -> Result<Result<Slot, SlotWait>, QueueError> {
        let store = &self.inner.store;
        store
            .timed(async {
                let mut client = store.client().await?;
                let tx = client.transaction().await?;
                lock(&tx, mailbox).await?;
                let usage = usage(&tx, mailbox, limits).await?;
                let wait = match decide(&usage, limits, recipients) {
                    Verdict::Go => {
                        let id = self.insert(&tx, mailbox, "message", recipients).await?;
                        let forgotten = usage.now - limits.day.max(limits.window).max(limits.hour);
                        tx.execute(
                            "DELETE FROM mailbox_slots WHERE mailbox = $1 AND at_ms <= $2",
                            &[&mailbox, &forgotten.unix_millis()],
                        )
                        .await?;
                        tx.commit().await?;
                        return Ok(Ok(self.held(id)));
                    }
                    Verdict::Wait(wait) => SlotWait::For(wait),
                    Verdict::Recipients(excess) => SlotWait::For(freed(&tx, mailbox, &usage, limits, excess).await?),
                    Verdict::Never => SlotWait::Never,
                };
                tx.commit().await?;
                Ok(Err(wait))
            })
            .await
    }

    /// One of the mailbox's `limit` connections (or Graph requests), or `None` when all are
    /// taken.
    pub(crate) async fn seat(&self, mailbox: &str, seat: Seat, limit: u32) -> Result<Option<Slot>, QueueError> {
        let store = &self.inner.store;
        store
            .timed(async {
                let mut client = store.client().await?;
                let tx = client.transaction().await?;
                lock(&tx, mailbox).await?;
                let sql = concat!(
                    "SELECT count(*) FROM mailbox_slots WHERE mailbox = $1 AND kind = $2 AND at_ms > ",
                    now_ms!()
                );
                let taken: i64 = tx.query_one(sql, &[&mailbox, &seat.kind()]).await?.get(0);
                if taken >= i64::from(limit.max(1)) {
                    return Ok(None);
                }
                let id = self.insert(&tx, mailbox, seat.kind(), 0).await?;
                tx.commit().await?;
                Ok(Some(self.held(id)))
            })
            .await
    }

    /// The message of `slot` ended: `submitted`, Exchange received it (it counts from now);
    /// otherwise its slot is free again.
    pub(crate) async fn sent(&self, slot: Slot, submitted: bool) -> Result<(), QueueError> {
        let sql = if submitted {
            concat!(
                "UPDATE mailbox_slots SET held = false, at_ms = ",
                now_ms!(),
                " WHERE id = $1"
            )
        } else {
            "DELETE FROM mailbox_slots WHERE id = $1"
        };
        self.run(sql, &[&slot.id]).await
    }

    /// The connection (Graph request) of `slot` ended.
    pub(crate) async fn leave(&self, slot: Slot) -> Result<(), QueueError> {
        let sql = concat!(
            "UPDATE mailbox_slots SET held = false, at_ms = ",
            now_ms!(),
            " + $2 WHERE id = $1"
        );
        self.run(sql, &[&slot.id, &millis(GRACE)]).await
    }

    /// Exchange throttled `mailbox`: no relay starts a message for `pause`.
    pub(crate) async fn pause(&self, mailbox: &str, pause: Duration) -> Result<(), QueueError> {
        let sql = concat!(
            "INSERT INTO mailbox_slots (mailbox, kind, at_ms) VALUES ($1, 'pause', ",
            now_ms!(),
            " + $2)"
        );
        self.run(sql, &[&mailbox, &millis(pause)]).await
    }

    async fn run(&self, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> Result<(), QueueError> {
        let store = &self.inner.store;
        store
            .timed(async {
                store.client().await?.execute(sql, params).await?;
                Ok(())
            })
            .await
    }

    async fn insert(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        mailbox: &str,
        kind: &str,
        recipients: u32,
    ) -> Result<i64, tokio_postgres::Error> {
        let sql = concat!(
            "INSERT INTO mailbox_slots (mailbox, kind, at_ms, recipients, held) VALUES ($1, $2, ",
            now_ms!(),
            " + $3, $4, true) RETURNING id"
        );
        let row = tx
            .query_one(sql, &[&mailbox, &kind, &millis(HOLD), &i64::from(recipients)])
            .await?;
        Ok(row.get(0))
    }

    fn held(&self, id: i64) -> Slot {
        self.inner.held().insert(id);
        Slot {
            id,
            inner: Arc::downgrade(&self.inner),
        }
    }
}

impl Inner {
    fn held(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Keeps the slots held, until the last handle is gone. A renewal that fails (the database is
/// away) is tried again at the next tick; slots not renewed within [`HOLD`] count as used up,
/// never as free.
async fn renew(inner: Weak<Inner>) {
    let mut tick = tokio::time::interval(RENEW);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let ids: Vec<i64> = inner.held().iter().copied().collect();
        if ids.is_empty() {
            continue;
        }
        let sql = concat!(
            "UPDATE mailbox_slots SET at_ms = ",
            now_ms!(),
            " + $2 WHERE id = ANY($1) AND held"
        );
        let store = &inner.store;
        let renewed = store
            .timed(async {
                store.client().await?.execute(sql, &[&ids, &millis(HOLD)]).await?;
                Ok(())
            })
            .await;
        if let Err(e) = renewed {
            tracing::warn!(error = %e, slots = ids.len(), "cannot renew the mailboxes' slots");
        }
    }
}

/// Serialises the decisions about `mailbox` until the transaction ends.
async fn lock(tx: &deadpool_postgres::Transaction<'_>, mailbox: &str) -> Result<(), tokio_postgres::Error> {
    let key = format!("m365_mailer_mailbox:{mailbox}");
    tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &[&key])
        .await
        .map(drop)
}

async fn usage(
    tx: &deadpool_postgres::Transaction<'_>,
    mailbox: &str,
    limits: &SlotLimits,
) -> Result<Usage, tokio_postgres::Error> {
    let sql = concat!(
        "WITH clock AS (SELECT ",
        now_ms!(),
        " AS now)
         SELECT clock.now,
                count(s.id) FILTER (WHERE s.kind = 'message' AND s.at_ms > clock.now - $2),
                min(s.at_ms) FILTER (WHERE s.kind = 'message' AND s.at_ms > clock.now - $2 AND s.at_ms <= clock.now),
                coalesce(sum(s.recipients) FILTER (WHERE s.kind = 'message'), 0)::bigint,
                max(s.at_ms) FILTER (WHERE s.kind = 'pause'),
                count(s.id) FILTER (WHERE s.kind = 'message' AND s.at_ms > clock.now - $4::bigint),
                min(s.at_ms) FILTER (WHERE s.kind = 'message' AND s.at_ms > clock.now - $4::bigint AND s.at_ms <= clock.now)
         FROM clock LEFT JOIN mailbox_slots s ON s.mailbox = $1 AND s.at_ms > clock.now - greatest($3::bigint, $4::bigint)
         GROUP BY clock.now"
    );
    let statement = tx.prepare_cached(sql).await?;
    let row = tx
        .query_one(
            &statement,
            &[
                &mailbox,
                &millis(limits.window),
                &millis(limits.day),
                &millis(limits.hour),
            ],
        )
        .await?;
    let at = |i: usize| row.get::<_, Option<i64>>(i).map(Timestamp::from_unix_millis);
    Ok(Usage {
        now: Timestamp::from_unix_millis(row.get(0)),
        messages: u32::try_from(row.get::<_, i64>(1)).unwrap_or(u32::MAX),
        oldest: at(2),
        recipients: row.get::<_, i64>(3).unsigned_abs(),
        paused_until: at(4),
        hourly: u32::try_from(row.get::<_, i64>(5)).unwrap_or(u32::MAX),
        oldest_in_hour: at(6),
    })
}

/// How long until `excess` of the day's recipients have left it; a moment when they are held
/// by messages still being sent.
async fn freed(
    tx: &deadpool_postgres::Transaction<'_>,
    mailbox: &str,
    usage: &Usage,
    limits: &SlotLimits,
    excess: u64,
) -> Result<Duration, tokio_postgres::Error> {
    let sql = "SELECT at_ms FROM (
                   SELECT at_ms, sum(recipients) OVER (ORDER BY at_ms, id) AS freed FROM mailbox_slots
                   WHERE mailbox = $1 AND kind = 'message' AND at_ms > $2::bigint - $3::bigint AND at_ms <= $2) sent
               WHERE freed >= $4::bigint ORDER BY at_ms LIMIT 1";
    let now = usage.now.unix_millis();
    let excess = i64::try_from(excess).unwrap_or(i64::MAX);
    let row = tx
        .query_opt(sql, &[&mailbox, &now, &millis(limits.day), &excess])
        .await?;
    Ok(row.map_or(SOON, |row| {
        usage
            .now
            .until(Timestamp::from_unix_millis(row.get(0)) + limits.day)
            .max(Duration::from_millis(1))
    }))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[path = "slots_tests.rs"]
mod tests;
