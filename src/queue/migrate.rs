//! `queue migrate`: moves a SQLite queue into PostgreSQL — waiting messages with their attempts
//! and schedule, dead letters, paused accounts and the rolling-day counts — in one PostgreSQL
//! transaction, then sets the SQLite file aside so no relay delivers its messages again.
//!
//! No relay may hold the directory meanwhile (its lock is taken). Copying skips what the
//! database already has (a message by its id, a dead letter by its id and time), so running it
//! again after an interruption neither loses nor duplicates a message.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::postgres::PostgresStore;
use super::{QueueError, Target, sqlite};
use crate::secret::Secret;

/// What was moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Migrated {
    /// Waiting messages copied.
    pub(crate) queued: u64,
    /// Dead letters copied.
    pub(crate) dead: u64,
    /// Rows the database already had (an earlier, interrupted run).
    pub(crate) already_there: u64,
    /// Where the SQLite file now is.
    pub(crate) set_aside: Option<PathBuf>,
}

/// One table's rows, every column as SQLite holds it.
pub(super) type Rows = Vec<Vec<rusqlite::types::Value>>;

/// The SQLite queue's rows, table by table (the columns are the same in both stores).
pub(super) struct Tables {
    pub(super) queue: Rows,
    pub(super) dead: Rows,
    pub(super) paused: Rows,
    pub(super) sent: Rows,
}

/// The columns copied, in order, for each table.
pub(super) const QUEUE_COLUMNS: &str = "id, account, sender, recipients, content, size, message_id, client, received_ms, \
                                        attempts, next_attempt_ms, last_attempt_ms, last_reply, crashes, subject";
pub(super) const DEAD_COLUMNS: &str = "id, account, sender, recipients, content, size, message_id, client, received_ms, \
                                       attempts, failed_ms, reply, diagnosis, subject";
pub(super) const PAUSED_COLUMNS: &str = "account, until_ms, since_ms, reason";
pub(super) const SENT_COLUMNS: &str = "account, at_ms, recipients";

/// Moves the queue in `dir` to `target`.
pub(crate) async fn migrate(dir: &Path, target: &Target, password: Option<&Secret>) -> Result<Migrated, QueueError> {
    let file = dir.join(sqlite::FILE_NAME);
    if !file.exists() {
        return Err(QueueError::Store(format!(
            "{}: no queue here (already migrated, or another directory: --queue-dir)",
            file.display()
        )));
    }
    let _lock = super::lock_dir(dir)?;
    // Opening upgrades an old format and puts back what a crashed relay left leased.
    let mut store = sqlite::SqliteStore::open(&file)?;
    super::Store::recover(&mut store)?;
    drop(store);
    let tables = read(&file)?;
    let postgres = PostgresStore::connect(target, password).await?;
    let mut migrated = postgres.import(&tables).await?;
    migrated.set_aside = Some(set_aside(&file)?);
    Ok(migrated)
}

fn read(file: &Path) -> Result<Tables, QueueError> {
    let conn = Connection::open(file)?;
    let all = |table: &str, columns: &str| -> Result<Rows, rusqlite::Error> {
        let count = columns.split(',').count();
        let mut statement = conn.prepare(&format!("SELECT {columns} FROM {table}"))?;
        let rows = statement
            .query_map([], |row| (0..count).map(|i| row.get(i)).collect::<Result<Vec<_>, _>>())?
            .collect::<Result<Rows, _>>()?;
        Ok(rows)
    };
    let tables = Tables {
        queue: all("queue", QUEUE_COLUMNS)?,
        dead: all("dead", DEAD_COLUMNS)?,
        paused: all("paused", PAUSED_COLUMNS)?,
        sent: all("sent", SENT_COLUMNS)?,
    };
    // Closing the last connection checkpoints the write-ahead log into the file.
    conn.close().map_err(|(_, e)| QueueError::from(e))?;
    Ok(tables)
}

/// Renames the database (and any write-ahead log left) so that a relay started on the
/// directory finds an empty queue; the copy stays for inspection.
fn set_aside(file: &Path) -> Result<PathBuf, QueueError> {
    let stamp = crate::clock::Timestamp::now().unix_secs();
    let aside = file.with_extension(format!("sqlite3.migrated-{stamp}"));
    let io = |e: std::io::Error| QueueError::Store(format!("{}: {e}", file.display()));
    std::fs::rename(file, &aside).map_err(io)?;
    for suffix in ["-wal", "-shm"] {
        let mut extra = file.as_os_str().to_owned();
        extra.push(suffix);
        let extra = PathBuf::from(extra);
        if extra.exists() {
            let mut moved = aside.as_os_str().to_owned();
            moved.push(suffix);
            std::fs::rename(&extra, PathBuf::from(moved)).map_err(io)?;
        }
    }
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::ms;
    use crate::queue::postgres::testing::TestDatabase;
    use crate::queue::{DeadLetter, NewMessage, Op, Queue};

    fn message(id: &str, account: &str) -> NewMessage {
        NewMessage {
            id: id.into(),
            account: account.into(),
            sender: "scanner@contoso.com".into(),
            recipients: vec!["a@fabrikam.com".into()],
            content: b"Subject: scan\r\n\r\nbody\r\n".to_vec(),
            message_id: None,
            client: "192.0.2.7".into(),
            received: ms(1000),
        }
    }

    /// A SQLite queue with a deferred message, a dead letter, a paused account, a day's
    /// count and a message a crashed relay left leased.
    async fn sqlite_queue(dir: &Path) -> Queue {
        let (queue, _) = Queue::open(dir).unwrap();
        for m in [message("m1", "main"), message("m2", "main"), message("m3", "other")] {
            queue.enqueue(m).await.unwrap();
        }
        let leased = queue.lease("main", ms(2000), 10, ms(3000)).await.unwrap();
        queue
            .apply(vec![
                Op::Defer {
                    id: "m1".into(),
                    recipients: vec!["a@fabrikam.com".into()],
                    next_attempt: ms(9000),
                    attempted: true,
                    crashed: false,
                    at: ms(2000),
                    reply: "451 4.7.500 Server busy".into(),
                },
                Op::Dead(DeadLetter {
                    message: leased[1].message.clone(),
                    attempts: 1,
                    failed: ms(2000),
                    reply: "550 5.1.10".into(),
                    diagnosis: "no such recipient".into(),
                }),
                Op::Remove("m2".into()),
                Op::Sent {
                    account: "main".into(),
                    recipients: 1,
                    at: ms(2000),
                },
                Op::Pause {
                    account: "other".into(),
                    until: ms(600_000),
                    reason: "535 5.7.139".into(),
                    at: ms(2000),
                },
            ])
            .await
            .unwrap();
        queue.lease("other", ms(2000), 10, ms(1_000_000)).await.unwrap();
        queue
    }

    #[tokio::test]
    async fn a_sqlite_queue_moves_whole_once_and_a_second_run_duplicates_nothing() {
        let Some(db) = TestDatabase::create("a_sqlite_queue_moves_whole_once").await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let queue_dir = dir.path().join("queue");
        let queue = sqlite_queue(&queue_dir).await;
        let busy = migrate(&queue_dir, &db.target, None).await.unwrap_err().to_string();
        assert!(busy.contains("in use by another relay"), "{busy}");
        drop(queue);
        // The writer thread lets go of the directory when its last handle is gone.
        let moved = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match migrate(&queue_dir, &db.target, None).await {
                    Err(QueueError::Locked { .. }) => tokio::time::sleep(Duration::from_millis(50)).await,
                    other => return other.unwrap(),
                }
            }
        })
        .await
        .unwrap();
        assert_eq!((moved.queued, moved.dead, moved.already_there), (2, 1, 0));
        let aside = moved.set_aside.unwrap();
        assert!(aside.exists() && !queue_dir.join(sqlite::FILE_NAME).exists());

        let (pg, recovered) = Queue::connect(&db.target, None).await.unwrap();
        assert_eq!((recovered.queued, recovered.dead), (2, 1));
        let m1 = pg.lease("main", ms(10_000), 10, ms(20_000)).await.unwrap();
        assert_eq!((m1.len(), m1[0].attempts, m1[0].message.id.as_str()), (1, 1, "m1"));
        let m3 = pg.lease("other", ms(10_000), 10, ms(20_000)).await.unwrap();
        assert_eq!(m3.len(), 1, "what a crashed relay held is due");
        assert_eq!(pg.recipients_since("main", ms(0)).await.unwrap(), [(ms(2000), 1)]);

        // Interrupted before the file was set aside: the next run copies nothing twice.
        std::fs::rename(&aside, queue_dir.join(sqlite::FILE_NAME)).unwrap();
        let again = migrate(&queue_dir, &db.target, None).await.unwrap();
        assert_eq!((again.queued, again.dead, again.already_there), (0, 0, 3));
        assert_eq!(pg.stats().await.unwrap().dead, 1);
        assert_eq!(pg.recipients_since("main", ms(0)).await.unwrap().len(), 1);
    }
}
