//! The `queue` commands on a PostgreSQL queue: the same listings and changes as on SQLite
//! (`queue/inspect.rs`), each change one short transaction that leaves leased messages alone.
//! Retrying notifies the relays, so the message goes at once.

use tokio_postgres::Row;

use super::{PostgresStore, notify};
use crate::clock::Timestamp;
use crate::queue::{DeadEntry, Entry, Lookup, Paused, QueueError, Summary};

/// `$1` in every query that reads it is now.
const ENTRY_COLUMNS: &str = "id, account, sender, recipients, size, message_id, client, received_ms, attempts, \
                             subject, next_attempt_ms, lease_until_ms > $1, last_reply";
const DEAD_COLUMNS: &str = "seq, id, account, sender, recipients, size, message_id, client, received_ms, attempts, \
                            subject, failed_ms, reply, diagnosis";
/// Where `content` is when a query adds it after the columns above.
const ENTRY_CONTENT: usize = 13;
const DEAD_CONTENT: usize = 14;

fn summary(row: &Row, first: usize) -> Summary {
    Summary {
        id: row.get(first),
        account: row.get(first + 1),
        sender: row.get(first + 2),
        recipients: crate::queue::parse_recipients(row.get(first + 3)),
        size: row.get(first + 4),
        message_id: row.get(first + 5),
        client: row.get(first + 6),
        received: Timestamp::from_unix_millis(row.get(first + 7)),
        attempts: row.get(first + 8),
        subject: row.get(first + 9),
    }
}

fn entry(row: &Row) -> Entry {
    Entry {
        message: summary(row, 0),
        next_attempt: Timestamp::from_unix_millis(row.get(10)),
        leased: row.get(11),
        last_reply: row.get(12),
    }
}

fn dead_entry(row: &Row) -> DeadEntry {
    DeadEntry {
        seq: row.get(0),
        message: summary(row, 1),
        failed: Timestamp::from_unix_millis(row.get(11)),
        reply: row.get(12),
        diagnosis: row.get(13),
    }
}

/// `prefix` as a LIKE pattern that matches only itself at the start.
fn starting(prefix: &str) -> String {
    format!("{}%", prefix.replace(['%', '_', '\\'], ""))
}

impl PostgresStore {
    /// Every queued message, oldest first, as at `now`.
    pub(crate) async fn list(&self, now: Timestamp) -> Result<Vec<Entry>, QueueError> {
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM queue ORDER BY received_ms, id");
        let rows = self.client().await?.query(&sql, &[&now.unix_millis()]).await?;
        Ok(rows.iter().map(entry).collect())
    }

    /// The accounts the relays have paused, and why.
    pub(crate) async fn paused(&self) -> Result<Vec<Paused>, QueueError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT account, since_ms, until_ms, reason FROM paused ORDER BY account",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| Paused {
                account: row.get(0),
                since: Timestamp::from_unix_millis(row.get(1)),
                until: Timestamp::from_unix_millis(row.get(2)),
                reason: row.get(3),
            })
            .collect())
    }

    /// The full id for `prefix`.
    pub(crate) async fn resolve(&self, prefix: &str) -> Result<Result<String, Lookup>, QueueError> {
        let rows = self
            .client()
            .await?
            .query("SELECT id FROM queue WHERE id LIKE $1 LIMIT 2", &[&starting(prefix)])
            .await?;
        let ids: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
        Ok(match ids.as_slice() {
            [] => Err(Lookup::NotFound(prefix.to_owned())),
            [one] => Ok(one.clone()),
            _ => Err(Lookup::Ambiguous(prefix.to_owned(), ids.len())),
        })
    }

    /// One message and its content, as at `now`.
    pub(crate) async fn show(&self, id: &str, now: Timestamp) -> Result<Option<(Entry, Vec<u8>)>, QueueError> {
        let sql = format!("SELECT {ENTRY_COLUMNS}, content FROM queue WHERE id = $2");
        let row = self.client().await?.query_opt(&sql, &[&now.unix_millis(), &id]).await?;
        Ok(row.map(|row| (entry(&row), row.get(ENTRY_CONTENT))))
    }

    /// Makes a message due now. `Err(Busy)` when it is being delivered.
    pub(crate) async fn retry(&self, id: &str, now: Timestamp) -> Result<Result<(), Lookup>, QueueError> {
        let changed = self
            .changing(
                "UPDATE queue SET next_attempt_ms = $2 WHERE id = $1 AND lease_until_ms <= $2 RETURNING account",
                &[&id, &now.unix_millis()],
            )
            .await?;
        Ok(crate::queue::inspect::changed_unless_busy(changed, id))
    }

    /// Makes every waiting message due now; returns how many.
    pub(crate) async fn retry_all(&self, now: Timestamp) -> Result<usize, QueueError> {
        self.changing(
            "UPDATE queue SET next_attempt_ms = $1 WHERE lease_until_ms <= $1 AND next_attempt_ms > $1 RETURNING account",
            &[&now.unix_millis()],
        )
        .await
    }

    /// Removes a message without delivering it. `Err(Busy)` when it is being delivered.
    pub(crate) async fn delete(&self, id: &str, now: Timestamp) -> Result<Result<(), Lookup>, QueueError> {
        let changed = self
            .client()
            .await?
            .execute(
                "DELETE FROM queue WHERE id = $1 AND lease_until_ms <= $2",
                &[&id, &now.unix_millis()],
            )
            .await?;
        Ok(crate::queue::inspect::changed_unless_busy(
            usize::try_from(changed).unwrap_or(usize::MAX),
            id,
        ))
    }

    /// The dead-letter area, oldest first.
    pub(crate) async fn dead(&self) -> Result<Vec<DeadEntry>, QueueError> {
        let sql = format!("SELECT {DEAD_COLUMNS} FROM dead ORDER BY seq");
        let rows = self.client().await?.query(&sql, &[]).await?;
        Ok(rows.iter().map(dead_entry).collect())
    }

    /// Dead letters whose queue id starts with `prefix`, with their content.
    pub(crate) async fn dead_show(&self, prefix: &str) -> Result<Vec<(DeadEntry, Vec<u8>)>, QueueError> {
        let sql = format!("SELECT {DEAD_COLUMNS}, content FROM dead WHERE id LIKE $1 ORDER BY seq");
        let rows = self.client().await?.query(&sql, &[&starting(prefix)]).await?;
        Ok(rows
            .iter()
            .map(|row| (dead_entry(row), row.get(DEAD_CONTENT)))
            .collect())
    }

    /// Puts dead letters (those whose id starts with `prefix`, or all) back in the queue, due
    /// now with no attempts; returns how many.
    pub(crate) async fn dead_retry(&self, prefix: Option<&str>, now: Timestamp) -> Result<usize, QueueError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The queue id stays the same unless it is still queued (a message whose other
        // recipients are still waiting), or another dead letter of it comes back first: then
        // the copy gets a suffix.
        let rows = tx
            .query(
                "WITH back AS (DELETE FROM dead WHERE id LIKE $1 RETURNING *)
                 INSERT INTO queue (id, account, sender, recipients, content, size, message_id, client, received_ms,
                                    subject, next_attempt_ms)
                 SELECT CASE WHEN EXISTS (SELECT 1 FROM queue q WHERE q.id = back.id)
                               OR EXISTS (SELECT 1 FROM back b WHERE b.id = back.id AND b.seq < back.seq)
                             THEN back.id || '-' || back.seq
                             ELSE back.id END,
                        account, sender, recipients, content, size, message_id, client, $2, subject, $2
                 FROM back
                 RETURNING account",
                &[&starting(prefix.unwrap_or_default()), &now.unix_millis()],
            )
            .await?;
        notify_accounts(&tx, &rows).await?;
        tx.commit().await?;
        Ok(rows.len())
    }

    /// Removes one dead letter (its `seq`); returns how many (0 when it is gone already).
    pub(crate) async fn dead_delete(&self, seq: i64) -> Result<usize, QueueError> {
        let deleted = self
            .client()
            .await?
            .execute("DELETE FROM dead WHERE seq = $1", &[&seq])
            .await?;
        Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
    }

    /// Empties the dead-letter area, or removes what was given up on before `before`;
    /// returns how many.
    pub(crate) async fn dead_purge(&self, before: Option<Timestamp>) -> Result<usize, QueueError> {
        let before = before.unwrap_or(Timestamp::MAX).unix_millis();
        let deleted = self
            .client()
            .await?
            .execute("DELETE FROM dead WHERE failed_ms < $1", &[&before])
            .await?;
        Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
    }

    /// Runs `sql` (which returns the account of each row it changed) and notifies those
    /// accounts; how many rows changed.
    async fn changing(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<usize, QueueError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let rows = tx.query(sql, params).await?;
        notify_accounts(&tx, &rows).await?;
        tx.commit().await?;
        Ok(rows.len())
    }
}

/// Wakes the relays for the accounts in `rows` (first column) when the transaction commits.
async fn notify_accounts(tx: &deadpool_postgres::Transaction<'_>, rows: &[Row]) -> Result<(), tokio_postgres::Error> {
    let accounts: std::collections::BTreeSet<String> = rows.iter().map(|row| row.get(0)).collect();
    for account in &accounts {
        tx.execute("SELECT pg_notify($1, $2)", &[&notify::CHANNEL, account])
            .await?;
    }
    Ok(())
}
