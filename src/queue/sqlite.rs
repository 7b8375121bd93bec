//! The queue in one SQLite file: WAL journal, `synchronous=FULL`, so a commit is on disk before
//! it returns. Schema and crash-safety argument: `docs/queue-format.md`.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension as _, ToSql, params};

use super::store::{Op, OpResult, Store};
use super::{DeadLetter, Leased, NewMessage, QueueError, Recovered, SENT_RETENTION, parse_recipients, recipients_json};
use crate::clock::Timestamp;

/// The database file inside the queue directory.
pub(crate) const FILE_NAME: &str = "queue.sqlite3";

pub(crate) const SCHEMA_VERSION: i64 = 4;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS queue (
    id              TEXT PRIMARY KEY,
    account         TEXT NOT NULL,
    sender          TEXT NOT NULL,
    recipients      TEXT NOT NULL,
    content         BLOB NOT NULL,
    size            INTEGER NOT NULL,
    message_id      TEXT,
    client          TEXT NOT NULL,
    received_ms     INTEGER NOT NULL,
    subject         TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    lease_until_ms  INTEGER NOT NULL DEFAULT 0,
    last_attempt_ms INTEGER,
    last_reply      TEXT,
    crashes         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS queue_next ON queue (account, next_attempt_ms);
CREATE TABLE IF NOT EXISTS dead (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL,
    account         TEXT NOT NULL,
    sender          TEXT NOT NULL,
    recipients      TEXT NOT NULL,
    content         BLOB NOT NULL,
    size            INTEGER NOT NULL,
    message_id      TEXT,
    client          TEXT NOT NULL,
    received_ms     INTEGER NOT NULL,
    subject         TEXT,
    attempts        INTEGER NOT NULL,
    failed_ms       INTEGER NOT NULL,
    reply           TEXT NOT NULL,
    diagnosis       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_id ON dead (id);
CREATE TABLE IF NOT EXISTS sent (
    account         TEXT NOT NULL,
    at_ms           INTEGER NOT NULL,
    recipients      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sent_at ON sent (account, at_ms);
CREATE TABLE IF NOT EXISTS paused (
    account         TEXT PRIMARY KEY,
    until_ms        INTEGER NOT NULL,
    since_ms        INTEGER NOT NULL,
    reason          TEXT NOT NULL
);
";

/// Format 1 had `leased` as a flag; format 2 makes it a time (`lease_until_ms`: an old `1` is
/// a lease that ran out in 1970), counts crashes, and keeps paused accounts.
const UPGRADE_FROM_1: &str = "
ALTER TABLE queue RENAME COLUMN leased TO lease_until_ms;
ALTER TABLE queue ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;
DROP INDEX IF EXISTS queue_due;
";

/// The SQLite queue store.
#[derive(Debug)]
pub(crate) struct SqliteStore {
    conn: Connection,
}

impl From<rusqlite::Error> for QueueError {
    fn from(e: rusqlite::Error) -> Self {
        QueueError::Store(e.to_string())
    }
}

impl SqliteStore {
    /// Opens or creates the database at `path` and checks its schema version.
    pub(crate) fn open(path: &Path) -> Result<Self, QueueError> {
        let conn = Connection::open(path).map_err(|e| QueueError::Store(format!("{}: {e}", path.display())))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(QueueError::Store(format!(
                "{}: the file system does not support SQLite's WAL journal (got `{mode}`)",
                path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(QueueError::Store(format!(
                "{}: queue format {version} is newer than this version of m365-mailer understands ({SCHEMA_VERSION})",
                path.display()
            )));
        }
        let tx = conn.unchecked_transaction()?;
        if version == 1 {
            tx.execute_batch(UPGRADE_FROM_1)?;
        }
        tx.execute_batch(SCHEMA)?;
        // Format 4 keeps each message's subject, for the status page and its search; tables
        // made before it get the column.
        for table in ["queue", "dead"] {
            let has: bool = tx.query_row(
                "SELECT count(*) FROM pragma_table_info(?1) WHERE name = 'subject'",
                [table],
                |row| row.get::<_, i64>(0).map(|n| n > 0),
            )?;
            if !has {
                tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN subject TEXT"))?;
            }
        }
        // Format 3 adds the alert outbox: new tables only.
        tx.execute_batch(super::outbox::SQLITE_SCHEMA)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        Ok(Self { conn })
    }
}

impl Store for SqliteStore {
    fn recover(&mut self) -> Result<Recovered, QueueError> {
        let tx = self.conn.transaction()?;
        // This process holds the directory's lock: whatever is leased was leased by a run that
        // has ended.
        let released = tx.execute("UPDATE queue SET lease_until_ms = 0 WHERE lease_until_ms != 0", [])?;
        let queued: i64 = tx.query_row("SELECT count(*) FROM queue", [], |row| row.get(0))?;
        let dead: i64 = tx.query_row("SELECT count(*) FROM dead", [], |row| row.get(0))?;
        tx.commit()?;
        Ok(Recovered {
            queued: queued.unsigned_abs(),
            released: released as u64,
            dead: dead.unsigned_abs(),
        })
    }

    fn apply(&mut self, requests: &[Vec<Op>]) -> Result<Vec<Result<Vec<OpResult>, QueueError>>, QueueError> {
        let mut tx = self.conn.transaction()?;
        let mut results = Vec::with_capacity(requests.len());
        for ops in requests {
            let savepoint = tx.savepoint()?;
            let applied: Result<Vec<OpResult>, rusqlite::Error> =
                ops.iter().map(|op| apply_one(&savepoint, op)).collect();
            match applied {
                Ok(done) => {
                    savepoint.commit()?;
                    results.push(Ok(done));
                }
                Err(e) => {
                    drop(savepoint); // rolls back this request alone
                    if tx.is_autocommit() {
                        // Some errors (a full disk, an I/O error) make SQLite roll back the
                        // whole transaction, not just the statement: the requests before this
                        // one are gone too, and a savepoint opened now would commit on its own.
                        // Nothing of the batch is applied, and every request is told so.
                        return Err(QueueError::Store(format!("the transaction was rolled back: {e}")));
                    }
                    results.push(Err(e.into()));
                }
            }
        }
        tx.commit()?;
        Ok(results)
    }
}

fn apply_one(tx: &Connection, op: &Op) -> Result<OpResult, rusqlite::Error> {
    match op {
        Op::Enqueue(m) => {
            insert_message(tx, m)?;
            Ok(OpResult::Done)
        }
        Op::Lease {
            account,
            now,
            limit,
            until,
        } => Ok(OpResult::Leased(lease(tx, account, *now, *limit, *until)?)),
        Op::Renew { id, until } => {
            tx.prepare_cached("UPDATE queue SET lease_until_ms = ?2 WHERE id = ?1")?
                .execute(params![id, until])?;
            Ok(OpResult::Done)
        }
        Op::NextDue { account, now } => Ok(OpResult::NextDue(next_due(tx, account, *now)?)),
        Op::Sent {
            account,
            recipients,
            at,
        } => {
            tx.prepare_cached("INSERT INTO sent (account, at_ms, recipients) VALUES (?1, ?2, ?3)")?
                .execute(params![account, at, recipients])?;
            tx.prepare_cached("DELETE FROM sent WHERE at_ms < ?1")?
                .execute(params![*at - SENT_RETENTION])?;
            Ok(OpResult::Done)
        }
        Op::Defer {
            id,
            recipients,
            next_attempt,
            attempted,
            crashed,
            at,
            reply,
        } => {
            tx.prepare_cached(
                "UPDATE queue SET lease_until_ms = 0, recipients = ?2, next_attempt_ms = ?3, last_reply = ?4,
                                  attempts = attempts + ?5, crashes = crashes + ?7,
                                  last_attempt_ms = CASE WHEN ?5 = 1 THEN ?6 ELSE last_attempt_ms END
                 WHERE id = ?1",
            )?
            .execute(params![
                id,
                recipients_json(recipients),
                next_attempt,
                reply,
                i64::from(*attempted),
                at,
                i64::from(*crashed),
            ])?;
            Ok(OpResult::Done)
        }
        Op::Pause {
            account,
            until,
            reason,
            at,
        } => {
            tx.prepare_cached(
                "INSERT INTO paused (account, until_ms, since_ms, reason) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (account) DO UPDATE SET until_ms = ?2, reason = ?4",
            )?
            .execute(params![account, until, at, reason])?;
            Ok(OpResult::Done)
        }
        Op::Resume(account) => {
            tx.prepare_cached("DELETE FROM paused WHERE account = ?1")?
                .execute(params![account])?;
            Ok(OpResult::Done)
        }
        Op::Dead(dead) => {
            insert_dead(tx, dead)?;
            Ok(OpResult::Done)
        }
        Op::Remove(id) => {
            tx.prepare_cached("DELETE FROM queue WHERE id = ?1")?
                .execute(params![id])?;
            Ok(OpResult::Done)
        }
        Op::SentSince { account, since } => {
            let sent = tx
                .prepare_cached("SELECT at_ms, recipients FROM sent WHERE account = ?1 AND at_ms >= ?2 ORDER BY at_ms")?
                .query_map(params![account, since], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(OpResult::Sent(sent))
        }
        Op::Outbox(op) => super::outbox::apply_sqlite(tx, op).map(OpResult::Outbox),
    }
}

fn insert_message(tx: &Connection, m: &NewMessage) -> Result<(), rusqlite::Error> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO queue (id, account, sender, recipients, content, size, message_id, client,
                            received_ms, subject, next_attempt_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?9)",
    )?;
    with_message_values(m, &[], |values| insert.execute(values))?;
    Ok(())
}

/// Runs `run` with a message's ten columns (id to received, then the subject read from its
/// head, as both tables name them) followed by `extra`; the content is borrowed, not copied.
fn with_message_values<T>(m: &NewMessage, extra: &[&dyn ToSql], run: impl FnOnce(&[&dyn ToSql]) -> T) -> T {
    let recipients = recipients_json(&m.recipients);
    let size = m.content.len() as i64;
    let subject = crate::message::subject(&m.content);
    let mut values: Vec<&dyn ToSql> = vec![
        &m.id,
        &m.account,
        &m.sender,
        &recipients,
        &m.content,
        &size,
        &m.message_id,
        &m.client,
        &m.received,
        &subject,
    ];
    values.extend_from_slice(extra);
    run(&values)
}

/// Up to `limit` of the account's due messages, leased until `until`, oldest first.
fn lease(
    tx: &Connection,
    account: &str,
    now: Timestamp,
    limit: usize,
    until: Timestamp,
) -> Result<Vec<Leased>, rusqlite::Error> {
    tx.prepare_cached(
        "UPDATE queue SET lease_until_ms = ?4
         WHERE id IN (SELECT id FROM queue
                      WHERE account = ?1 AND next_attempt_ms <= ?2 AND lease_until_ms <= ?2
                      ORDER BY next_attempt_ms, id LIMIT ?3)
         RETURNING id, account, sender, recipients, content, message_id, client, received_ms, attempts,
                   crashes",
    )?
    .query_map(params![account, now, limit as i64, until], |row| {
        Ok(Leased {
            message: NewMessage {
                id: row.get(0)?,
                account: row.get(1)?,
                sender: row.get(2)?,
                recipients: parse_recipients(&row.get::<_, String>(3)?),
                content: row.get(4)?,
                message_id: row.get(5)?,
                client: row.get(6)?,
                received: row.get(7)?,
            },
            attempts: row.get(8)?,
            crashes: row.get(9)?,
            // One relay holds a SQLite queue: what a previous run held, `recover` counted.
            reclaimed: false,
        })
    })?
    .collect()
}

/// When the account's next message is due. A message held by a lease is available when the
/// lease runs out.
fn next_due(tx: &Connection, account: &str, now: Timestamp) -> Result<Option<Timestamp>, rusqlite::Error> {
    Ok(tx
        .prepare_cached(
            "SELECT min(max(next_attempt_ms, CASE WHEN lease_until_ms > ?2 THEN lease_until_ms ELSE 0 END))
             FROM queue WHERE account = ?1",
        )?
        .query_row(params![account, now], |row| row.get::<_, Option<Timestamp>>(0))
        .optional()?
        .flatten())
}

fn insert_dead(tx: &Connection, dead: &DeadLetter) -> Result<(), rusqlite::Error> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO dead (id, account, sender, recipients, content, size, message_id, client, received_ms,
                           subject, attempts, failed_ms, reply, diagnosis)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?;
    let extra: [&dyn ToSql; 4] = [&dead.attempts, &dead.failed, &dead.reply, &dead.diagnosis];
    with_message_values(&dead.message, &extra, |values| insert.execute(values))?;
    Ok(())
}

#[cfg(test)]
#[path = "sqlite_tests.rs"]
mod tests;
