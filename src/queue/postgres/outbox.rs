//! The alert outbox in PostgreSQL: SQLite's statements (`queue/outbox.rs`) with PostgreSQL's
//! types. Relays sharing the queue agree through the rows: a condition is raised by one insert
//! that only one relay wins, and a destination's window by one conditional upsert.

use super::{Transaction, execute};
use crate::clock::Timestamp;
use crate::queue::outbox::{LastSent, NewAlert, OutboxOp, OutboxResult, PendingAlert};

/// Version 3 of the tables: the alert outbox.
pub(super) const SCHEMA: &str = "
CREATE TABLE alert_outbox (
    seq             BIGSERIAL PRIMARY KEY,
    destination     TEXT NOT NULL,
    kind            TEXT NOT NULL,
    event           TEXT NOT NULL,
    created_ms      BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    lease_until_ms  BIGINT NOT NULL DEFAULT 0,
    attempts        BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_ms);
CREATE TABLE alert_state (
    key             TEXT PRIMARY KEY,
    since_ms        BIGINT NOT NULL
);
CREATE TABLE alert_sent (
    destination     TEXT NOT NULL,
    kind            TEXT NOT NULL,
    at_ms           BIGINT NOT NULL,
    PRIMARY KEY (destination, kind)
);
";

async fn add(tx: &Transaction<'_>, alerts: &[NewAlert]) -> Result<(), tokio_postgres::Error> {
    for a in alerts {
        execute(
            tx,
            "INSERT INTO alert_outbox (destination, kind, event, created_ms, next_attempt_ms)
             VALUES ($1, $2, $3, $4, $4)",
            &[&a.destination, &a.kind, &a.event, &a.at.unix_millis()],
        )
        .await?;
    }
    Ok(())
}

/// Applies `op` in transaction `tx`.
pub(super) async fn apply(tx: &Transaction<'_>, op: &OutboxOp) -> Result<OutboxResult, tokio_postgres::Error> {
    Ok(match op {
        OutboxOp::Add(alerts) => {
            add(tx, alerts).await?;
            OutboxResult::Done
        }
        OutboxOp::Raise { key, since, alerts } => {
            let new = execute(
                tx,
                "INSERT INTO alert_state (key, since_ms) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[key, &since.unix_millis()],
            )
            .await?
                == 1;
            if new {
                add(tx, alerts).await?;
            }
            OutboxResult::Changed(new)
        }
        OutboxOp::Clear { key, alerts } => {
            let cleared = execute(tx, "DELETE FROM alert_state WHERE key = $1", &[key]).await? == 1;
            if cleared {
                add(tx, alerts).await?;
            }
            OutboxResult::Changed(cleared)
        }
        OutboxOp::Due { now, limit } => {
            let statement = tx
                .prepare_cached(
                    "SELECT seq, destination, kind, event, created_ms, attempts FROM alert_outbox
                     WHERE next_attempt_ms <= $1 AND lease_until_ms <= $1 ORDER BY seq LIMIT $2",
                )
                .await?;
            let limit = i64::try_from(*limit).unwrap_or(i64::MAX);
            let pending = tx
                .query(&statement, &[&now.unix_millis(), &limit])
                .await?
                .iter()
                .map(|row| PendingAlert {
                    seq: row.get(0),
                    destination: row.get(1),
                    kind: row.get(2),
                    event: row.get(3),
                    created: Timestamp::from_unix_millis(row.get(4)),
                    attempts: u32::try_from(row.get::<_, i64>(5)).unwrap_or(u32::MAX),
                })
                .collect();
            let statement = tx
                .prepare_cached("SELECT destination, kind, at_ms FROM alert_sent")
                .await?;
            let sent = tx
                .query(&statement, &[])
                .await?
                .iter()
                .map(|row| LastSent {
                    destination: row.get(0),
                    kind: row.get(1),
                    at: Timestamp::from_unix_millis(row.get(2)),
                })
                .collect();
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
            let open = execute(
                tx,
                "INSERT INTO alert_sent (destination, kind, at_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (destination, kind) DO UPDATE SET at_ms = EXCLUDED.at_ms
                 WHERE alert_sent.at_ms <= $4",
                &[destination, kind, &now.unix_millis(), &not_since.unix_millis()],
            )
            .await?
                == 1;
            if !open {
                return Ok(OutboxResult::Claimed(Vec::new()));
            }
            let statement = tx
                .prepare_cached(
                    "UPDATE alert_outbox SET lease_until_ms = $3
                     WHERE seq = ANY($1) AND lease_until_ms <= $2
                     RETURNING seq",
                )
                .await?;
            let mut claimed: Vec<i64> = tx
                .query(&statement, &[seqs, &now.unix_millis(), &until.unix_millis()])
                .await?
                .iter()
                .map(|row| row.get(0))
                .collect();
            // RETURNING keeps no order.
            claimed.sort_unstable();
            OutboxResult::Claimed(claimed)
        }
        OutboxOp::Sent(seqs) => {
            execute(tx, "DELETE FROM alert_outbox WHERE seq = ANY($1)", &[seqs]).await?;
            OutboxResult::Done
        }
        OutboxOp::Failed {
            destination,
            kind,
            seqs,
            next_attempt,
            error,
        } => {
            execute(
                tx,
                "DELETE FROM alert_sent WHERE destination = $1 AND kind = $2",
                &[destination, kind],
            )
            .await?;
            execute(
                tx,
                "UPDATE alert_outbox SET lease_until_ms = 0, attempts = attempts + 1, next_attempt_ms = $2,
                                         last_error = $3
                 WHERE seq = ANY($1)",
                &[seqs, &next_attempt.unix_millis(), error],
            )
            .await?;
            OutboxResult::Done
        }
    })
}
