//! The alert outbox: alerts waiting to be posted to their webhooks, kept in the queue database
//! so an alert is stored in the same transaction as what it is about (a dead letter) and
//! survives a restart; the conditions that are raised now (an account unavailable, a queue too
//! old), so each is announced once however many relays share the queue; and when each
//! destination last got an alert of each kind, the window that turns a flood into a summary.
//! `relay/alert` decides what to send; here only what is stored. SQLite's statements are here,
//! PostgreSQL's in `postgres/outbox.rs`.

use rusqlite::{Connection, params};

use crate::clock::Timestamp;

/// The outbox's tables (SQLite; PostgreSQL's are the same with its types).
pub(super) const SQLITE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alert_outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    destination     TEXT NOT NULL,
    kind            TEXT NOT NULL,
    event           TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    lease_until_ms  INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT
);
CREATE INDEX IF NOT EXISTS alert_outbox_due ON alert_outbox (next_attempt_ms);
CREATE TABLE IF NOT EXISTS alert_state (
    key             TEXT PRIMARY KEY,
    since_ms        INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_sent (
    destination     TEXT NOT NULL,
    kind            TEXT NOT NULL,
    at_ms           INTEGER NOT NULL,
    PRIMARY KEY (destination, kind)
);
";

/// An alert to store: one destination's copy of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewAlert {
    /// The destination's name (`[[relay.alerts]] name`).
    pub(crate) destination: String,
    /// The event's kind (`dead-lettered`, …).
    pub(crate) kind: String,
    /// The event, as JSON.
    pub(crate) event: String,
    /// When it happened.
    pub(crate) at: Timestamp,
}

/// A stored alert not yet posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingAlert {
    /// Its number.
    pub(crate) seq: i64,
    /// The destination's name.
    pub(crate) destination: String,
    /// The event's kind.
    pub(crate) kind: String,
    /// The event, as JSON.
    pub(crate) event: String,
    /// When it was stored.
    pub(crate) created: Timestamp,
    /// Posts of it that failed so far.
    pub(crate) attempts: u32,
}

/// When a destination last got an alert of a kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LastSent {
    /// The destination's name.
    pub(crate) destination: String,
    /// The kind.
    pub(crate) kind: String,
    /// When.
    pub(crate) at: Timestamp,
}

/// One operation on the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OutboxOp {
    /// Store alerts.
    Add(Vec<NewAlert>),
    /// A condition begins: remember `key` and store `alerts`, unless `key` is remembered
    /// already (then nothing: it was announced).
    Raise {
        /// The condition (`account:office`, `queue-age`, …).
        key: String,
        /// Since when it holds.
        since: Timestamp,
        /// Its alerts.
        alerts: Vec<NewAlert>,
    },
    /// A condition ends: forget `key` and store `alerts`, if `key` was remembered.
    Clear {
        /// The condition.
        key: String,
        /// The alerts that say it ended.
        alerts: Vec<NewAlert>,
    },
    /// Alerts due at `now` (not held by a sender), oldest first, and when each destination
    /// last got each kind.
    Due {
        /// Now.
        now: Timestamp,
        /// At most this many.
        limit: usize,
    },
    /// Takes `seqs` for posting until `until`, if `destination` got no alert of `kind` since
    /// `not_since` (so that relays sharing the queue keep one window); records `now` as its
    /// last.
    Claim {
        /// The destination.
        destination: String,
        /// The kind.
        kind: String,
        /// The alerts.
        seqs: Vec<i64>,
        /// Now.
        now: Timestamp,
        /// The window's start.
        not_since: Timestamp,
        /// Held until then.
        until: Timestamp,
    },
    /// Posted (or given up on): removed.
    Sent(Vec<i64>),
    /// The post failed: due again at `next_attempt`, and the destination's window for `kind`
    /// is open again (nothing reached it).
    Failed {
        /// The destination.
        destination: String,
        /// The kind.
        kind: String,
        /// The alerts.
        seqs: Vec<i64>,
        /// Due again then.
        next_attempt: Timestamp,
        /// What went wrong.
        error: String,
    },
}

/// What an outbox operation returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OutboxResult {
    /// Applied.
    Done,
    /// Whether a raise or a clear changed the condition (and stored its alerts).
    Changed(bool),
    /// Due alerts, and the destinations' last alerts.
    Due(Vec<PendingAlert>, Vec<LastSent>),
    /// The alerts claimed (none when the window is not over, or another relay took them).
    Claimed(Vec<i64>),
}

/// `seqs` as the JSON list SQLite's `json_each` reads.
fn seq_list(seqs: &[i64]) -> String {
    serde_json::to_string(seqs).expect("numbers serialise")
}

/// Applies `op` in SQLite transaction `tx`.
pub(super) fn apply_sqlite(tx: &Connection, op: &OutboxOp) -> Result<OutboxResult, rusqlite::Error> {
    let add = |alerts: &[NewAlert]| -> Result<(), rusqlite::Error> {
        let mut insert = tx.prepare_cached(
            "INSERT INTO alert_outbox (destination, kind, event, created_ms, next_attempt_ms)
             VALUES (?1, ?2, ?3, ?4, ?4)",
        )?;
        for a in alerts {
            insert.execute(params![a.destination, a.kind, a.event, a.at])?;
        }
        Ok(())
    };
    Ok(match op {
        OutboxOp::Add(alerts) => {
            add(alerts)?;
            OutboxResult::Done
        }
        OutboxOp::Raise { key, since, alerts } => {
            let new = tx
                .prepare_cached("INSERT INTO alert_state (key, since_ms) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING")?
                .execute(params![key, since])?
                == 1;
            if new {
                add(alerts)?;
            }
            OutboxResult::Changed(new)
        }
        OutboxOp::Clear { key, alerts } => {
            let cleared = tx
                .prepare_cached("DELETE FROM alert_state WHERE key = ?1")?
                .execute(params![key])?
                == 1;
            if cleared {
                add(alerts)?;
            }
            OutboxResult::Changed(cleared)
        }
        OutboxOp::Due { now, limit } => {
            let pending = tx
                .prepare_cached(
                    "SELECT seq, destination, kind, event, created_ms, attempts FROM alert_outbox
                     WHERE next_attempt_ms <= ?1 AND lease_until_ms <= ?1 ORDER BY seq LIMIT ?2",
                )?
                .query_map(params![now, *limit as i64], |row| {
                    Ok(PendingAlert {
                        seq: row.get(0)?,
                        destination: row.get(1)?,
                        kind: row.get(2)?,
                        event: row.get(3)?,
                        created: row.get(4)?,
                        attempts: row.get(5)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let sent = tx
                .prepare_cached("SELECT destination, kind, at_ms FROM alert_sent")?
                .query_map([], |row| {
                    Ok(LastSent {
                        destination: row.get(0)?,
                        kind: row.get(1)?,
                        at: row.get(2)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            OutboxResult::Due(pending, sent)
        }
        OutboxOp::Claim {
            destination,
            kind,
            seqs,
            now,
            not_since,
            until,
        } => {
            let open = tx
                .prepare_cached(
                    "INSERT INTO alert_sent (destination, kind, at_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (destination, kind) DO UPDATE SET at_ms = excluded.at_ms
                     WHERE alert_sent.at_ms <= ?4",
                )?
                .execute(params![destination, kind, now, not_since])?
                == 1;
            if !open {
                return Ok(OutboxResult::Claimed(Vec::new()));
            }
            let claimed = tx
                .prepare_cached(
                    "UPDATE alert_outbox SET lease_until_ms = ?3
                     WHERE seq IN (SELECT value FROM json_each(?1)) AND lease_until_ms <= ?2
                     RETURNING seq",
                )?
                .query_map(params![seq_list(seqs), now, until], |row| row.get(0))?
                .collect::<Result<Vec<i64>, _>>()?;
            OutboxResult::Claimed(claimed)
        }
        OutboxOp::Sent(seqs) => {
            tx.prepare_cached("DELETE FROM alert_outbox WHERE seq IN (SELECT value FROM json_each(?1))")?
                .execute(params![seq_list(seqs)])?;
            OutboxResult::Done
        }
        OutboxOp::Failed {
            destination,
            kind,
            seqs,
            next_attempt,
            error,
        } => {
            tx.prepare_cached("DELETE FROM alert_sent WHERE destination = ?1 AND kind = ?2")?
                .execute(params![destination, kind])?;
            tx.prepare_cached(
                "UPDATE alert_outbox SET lease_until_ms = 0, attempts = attempts + 1, next_attempt_ms = ?2,
                                         last_error = ?3
                 WHERE seq IN (SELECT value FROM json_each(?1))",
            )?
            .execute(params![seq_list(seqs), next_attempt, error])?;
            OutboxResult::Done
        }
    })
}
