//! The queue in one SQLite file: WAL journal, `synchronous=FULL`, so a commit is on disk before
//! it returns. Schema and crash-safety argument: `docs/queue-format.md`.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension as _, params};

use super::store::{Op, OpResult, Store};
use super::{DeadLetter, Leased, NewMessage, QueueError, Recovered};

/// The database file inside the queue directory.
pub(crate) const FILE_NAME: &str = "queue.sqlite3";

pub(crate) const SCHEMA_VERSION: i64 = 2;

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

/// Deliveries older than this are forgotten (the rolling-day limit looks back one day).
const SENT_RETENTION_MS: i64 = 2 * 24 * 3600 * 1000;

/// The SQLite queue store.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
}

impl From<rusqlite::Error> for QueueError {
    fn from(e: rusqlite::Error) -> Self {
        QueueError::Store(e.to_string())
    }
}

impl SqliteStore {
    /// Opens or creates the database at `path` and checks its schema version.
    pub fn open(path: &Path) -> Result<Self, QueueError> {
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
            tx.prepare_cached(
                "INSERT INTO queue (id, account, sender, recipients, content, size, message_id, client,
                                    received_ms, next_attempt_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
            )?
            .execute(params![
                m.id,
                m.account,
                m.sender,
                recipients_json(&m.recipients),
                m.content,
                m.content.len() as i64,
                m.message_id,
                m.client,
                m.received_ms,
            ])?;
            Ok(OpResult::Done)
        }
        Op::Lease {
            account,
            now_ms,
            limit,
            until_ms,
        } => {
            let leased = tx
                .prepare_cached(
                    "UPDATE queue SET lease_until_ms = ?4
                     WHERE id IN (SELECT id FROM queue
                                  WHERE account = ?1 AND next_attempt_ms <= ?2 AND lease_until_ms <= ?2
                                  ORDER BY next_attempt_ms, id LIMIT ?3)
                     RETURNING id, account, sender, recipients, content, message_id, client, received_ms, attempts,
                               crashes",
                )?
                .query_map(params![account, now_ms, *limit as i64, until_ms], |row| {
                    Ok(Leased {
                        message: NewMessage {
                            id: row.get(0)?,
                            account: row.get(1)?,
                            sender: row.get(2)?,
                            recipients: parse_recipients(&row.get::<_, String>(3)?),
                            content: row.get(4)?,
                            message_id: row.get(5)?,
                            client: row.get(6)?,
                            received_ms: row.get(7)?,
                        },
                        attempts: row.get(8)?,
                        crashes: row.get(9)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(OpResult::Leased(leased))
        }
        Op::Renew { id, until_ms } => {
            tx.prepare_cached("UPDATE queue SET lease_until_ms = ?2 WHERE id = ?1")?
                .execute(params![id, until_ms])?;
            Ok(OpResult::Done)
        }
        Op::NextDue { account, now_ms } => {
            // A message held by a lease is available when the lease runs out.
            let due = tx
                .prepare_cached(
                    "SELECT min(max(next_attempt_ms, CASE WHEN lease_until_ms > ?2 THEN lease_until_ms ELSE 0 END))
                     FROM queue WHERE account = ?1",
                )?
                .query_row(params![account, now_ms], |row| row.get::<_, Option<i64>>(0))
                .optional()?
                .flatten();
            Ok(OpResult::NextDue(due))
        }
        Op::Sent {
            account,
            recipients,
            at_ms,
        } => {
            tx.prepare_cached("INSERT INTO sent (account, at_ms, recipients) VALUES (?1, ?2, ?3)")?
                .execute(params![account, at_ms, recipients])?;
            tx.prepare_cached("DELETE FROM sent WHERE at_ms < ?1")?
                .execute(params![at_ms - SENT_RETENTION_MS])?;
            Ok(OpResult::Done)
        }
        Op::Defer {
            id,
            recipients,
            next_attempt_ms,
            attempted,
            crashed,
            at_ms,
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
                next_attempt_ms,
                reply,
                i64::from(*attempted),
                at_ms,
                i64::from(*crashed),
            ])?;
            Ok(OpResult::Done)
        }
        Op::Pause {
            account,
            until_ms,
            reason,
            at_ms,
        } => {
            tx.prepare_cached(
                "INSERT INTO paused (account, until_ms, since_ms, reason) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (account) DO UPDATE SET until_ms = ?2, reason = ?4",
            )?
            .execute(params![account, until_ms, at_ms, reason])?;
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
        Op::SentSince { account, since_ms } => {
            let sent = tx
                .prepare_cached("SELECT at_ms, recipients FROM sent WHERE account = ?1 AND at_ms >= ?2 ORDER BY at_ms")?
                .query_map(params![account, since_ms], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(OpResult::Sent(sent))
        }
    }
}

fn insert_dead(tx: &Connection, dead: &DeadLetter) -> Result<(), rusqlite::Error> {
    let m = &dead.message;
    tx.prepare_cached(
        "INSERT INTO dead (id, account, sender, recipients, content, size, message_id, client, received_ms,
                           attempts, failed_ms, reply, diagnosis)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        m.id,
        m.account,
        m.sender,
        recipients_json(&m.recipients),
        m.content,
        m.content.len() as i64,
        m.message_id,
        m.client,
        m.received_ms,
        dead.attempts,
        dead.failed_ms,
        dead.reply,
        dead.diagnosis,
    ])?;
    Ok(())
}

fn recipients_json(recipients: &[String]) -> String {
    serde_json::to_string(recipients).expect("a list of strings serialises")
}

fn parse_recipients(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str, account: &str, received_ms: i64) -> NewMessage {
        NewMessage {
            id: id.into(),
            account: account.into(),
            sender: "scanner@contoso.com".into(),
            recipients: vec!["a@fabrikam.com".into(), "b@fabrikam.com".into()],
            content: b"Subject: scan\r\n\r\nbody\r\n".to_vec(),
            message_id: Some("<1@scanner>".into()),
            client: "192.0.2.7".into(),
            received_ms,
        }
    }

    fn one(store: &mut SqliteStore, ops: Vec<Op>) -> Vec<OpResult> {
        store.apply(&[ops]).unwrap().pop().unwrap().unwrap()
    }

    fn lease(store: &mut SqliteStore, account: &str, now_ms: i64) -> Vec<Leased> {
        match one(
            store,
            vec![Op::Lease {
                account: account.into(),
                now_ms,
                limit: 10,
                until_ms: now_ms + 60_000,
            }],
        )
        .pop()
        {
            Some(OpResult::Leased(l)) => l,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn lease_defer_recover_and_finish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut store = SqliteStore::open(&path).unwrap();
        one(
            &mut store,
            vec![
                Op::Enqueue(message("m1", "main", 1000)),
                Op::Enqueue(message("m2", "main", 2000)),
                Op::Enqueue(message("m3", "other", 1500)),
            ],
        );
        assert!(
            lease(&mut store, "main", 999).is_empty(),
            "nothing is due before it was received"
        );
        let leased = lease(&mut store, "main", 5000);
        assert_eq!(
            leased.iter().map(|l| l.message.id.as_str()).collect::<Vec<_>>(),
            ["m1", "m2"]
        );
        assert_eq!(leased[0].message, message("m1", "main", 1000));
        assert!(
            lease(&mut store, "main", 5000).is_empty(),
            "leased messages are not leased twice"
        );

        // m1: one recipient delivered, the other deferred.
        one(
            &mut store,
            vec![
                Op::Sent {
                    account: "main".into(),
                    recipients: 1,
                    at_ms: 5000,
                },
                Op::Defer {
                    id: "m1".into(),
                    recipients: vec!["b@fabrikam.com".into()],
                    next_attempt_ms: 9000,
                    attempted: true,
                    crashed: false,
                    at_ms: 5000,
                    reply: "451 4.7.500 Server busy".into(),
                },
            ],
        );
        assert_eq!(
            one(
                &mut store,
                vec![Op::NextDue {
                    account: "main".into(),
                    now_ms: 5000
                }]
            ),
            [OpResult::NextDue(Some(9000))]
        );

        // A crash now: m2 is still leased. Reopening puts it back.
        drop(store);
        let mut store = SqliteStore::open(&path).unwrap();
        assert_eq!(
            store.recover().unwrap(),
            Recovered {
                queued: 3,
                released: 1,
                dead: 0
            }
        );
        let leased = lease(&mut store, "main", 9000);
        assert_eq!(leased.len(), 2);
        let m1 = leased.iter().find(|l| l.message.id == "m1").unwrap();
        assert_eq!(m1.attempts, 1);
        assert_eq!(m1.message.recipients, ["b@fabrikam.com"]);

        let dead = DeadLetter {
            message: m1.message.clone(),
            attempts: 2,
            failed_ms: 9500,
            reply: "550 5.1.10 RESOLVER.ADR.RecipientNotFound".into(),
            diagnosis: "the recipient does not exist".into(),
        };
        one(
            &mut store,
            vec![Op::Dead(dead), Op::Remove("m1".into()), Op::Remove("m2".into())],
        );
        assert_eq!(
            one(
                &mut store,
                vec![Op::SentSince {
                    account: "main".into(),
                    since_ms: 0
                }]
            ),
            [OpResult::Sent(vec![(5000, 1)])]
        );
        assert_eq!(
            store.recover().unwrap(),
            Recovered {
                queued: 1,
                released: 0,
                dead: 1
            }
        );
    }

    #[test]
    fn a_failing_request_is_rolled_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join(FILE_NAME)).unwrap();
        let results = store
            .apply(&[
                vec![Op::Enqueue(message("a", "main", 1))],
                // The second enqueue of `a` fails; its first operation is rolled back with it.
                vec![
                    Op::Enqueue(message("b", "main", 1)),
                    Op::Enqueue(message("a", "main", 1)),
                ],
                vec![Op::Enqueue(message("c", "main", 1))],
            ])
            .unwrap();
        assert!(results[0].is_ok() && results[1].is_err() && results[2].is_ok());
        let ids: Vec<String> = lease(&mut store, "main", 10)
            .into_iter()
            .map(|l| l.message.id)
            .collect();
        assert_eq!(ids, ["a", "c"]);
    }

    #[test]
    fn a_lease_runs_out_without_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join(FILE_NAME)).unwrap();
        one(&mut store, vec![Op::Enqueue(message("m1", "main", 1000))]);
        assert_eq!(lease(&mut store, "main", 2000).len(), 1);
        // Its worker could not record the outcome (a full disk): nobody else may take it while
        // the lease holds, and anyone may once it has run out.
        assert!(lease(&mut store, "main", 2000 + 59_999).is_empty());
        assert_eq!(
            one(
                &mut store,
                vec![Op::NextDue {
                    account: "main".into(),
                    now_ms: 3000
                }]
            ),
            [OpResult::NextDue(Some(62_000))]
        );
        let again = lease(&mut store, "main", 62_000);
        assert_eq!(again.len(), 1, "taken again without a restart");
        one(
            &mut store,
            vec![Op::Renew {
                id: "m1".into(),
                until_ms: 200_000,
            }],
        );
        assert!(lease(&mut store, "main", 150_000).is_empty(), "a renewed lease holds");
    }

    #[test]
    fn a_transaction_rolled_back_whole_applies_nothing_of_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join(FILE_NAME)).unwrap();
        // What a full disk or an I/O error does inside a batch: SQLite rolls back the whole
        // transaction, not only the failing statement.
        store
            .conn
            .execute_batch(
                "CREATE TEMP TRIGGER full_disk BEFORE INSERT ON queue WHEN NEW.id = 'boom'
                 BEGIN SELECT RAISE(ROLLBACK, 'database or disk is full'); END;",
            )
            .unwrap();
        let outcome = store.apply(&[
            vec![Op::Enqueue(message("a", "main", 1))],
            vec![Op::Enqueue(message("boom", "main", 1))],
            vec![Op::Enqueue(message("c", "main", 1))],
        ]);
        assert!(outcome.is_err(), "every request is told it failed: {outcome:?}");
        // …and none of them is stored: a client told 451 that retries makes no duplicate.
        assert!(lease(&mut store, "main", 10).is_empty());
        // The store goes on working.
        one(&mut store, vec![Op::Enqueue(message("d", "main", 1))]);
        assert_eq!(lease(&mut store, "main", 10).len(), 1);
    }

    #[test]
    fn format_1_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let v1 = Connection::open(&path).unwrap();
        v1.execute_batch(
            "CREATE TABLE queue (id TEXT PRIMARY KEY, account TEXT NOT NULL, sender TEXT NOT NULL,
                 recipients TEXT NOT NULL, content BLOB NOT NULL, size INTEGER NOT NULL, message_id TEXT,
                 client TEXT NOT NULL, received_ms INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
                 next_attempt_ms INTEGER NOT NULL, leased INTEGER NOT NULL DEFAULT 0, last_attempt_ms INTEGER,
                 last_reply TEXT);
             CREATE INDEX queue_due ON queue (account, leased, next_attempt_ms);
             INSERT INTO queue (id, account, sender, recipients, content, size, client, received_ms,
                                next_attempt_ms, leased)
                 VALUES ('old', 'main', 's@contoso.com', '[\"a@fabrikam.com\"]', x'00', 1, '127.0.0.1', 1, 1, 1);
             PRAGMA user_version = 1;",
        )
        .unwrap();
        drop(v1);
        let mut store = SqliteStore::open(&path).unwrap();
        let leased = lease(&mut store, "main", 10);
        assert_eq!(leased.len(), 1, "the old lease flag is a lease that has run out");
        assert_eq!((leased[0].message.id.as_str(), leased[0].crashes), ("old", 0));
    }

    #[test]
    fn a_newer_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = SqliteStore::open(&path).unwrap_err().to_string();
        assert!(err.contains("queue format 99 is newer"), "{err}");
    }
}
