//! The queue as the `queue` commands see it: listing, showing, retrying, deleting, and the
//! dead-letter area. Works beside a running relay: SQLite's WAL lets it read while the relay
//! writes, and every change is one short transaction that leaves leased messages alone (a lease
//! that has run out holds nothing).

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension as _, params};

use super::{QueueError, sqlite};
use crate::clock::Timestamp;

/// What the queue and the dead-letter area both know of a message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Summary {
    /// Queue id.
    pub(crate) id: String,
    /// Account that delivers it.
    pub(crate) account: String,
    /// Envelope sender.
    pub(crate) sender: String,
    /// Recipients still to deliver to (in the dead-letter area: those that failed).
    pub(crate) recipients: Vec<String>,
    /// Bytes.
    pub(crate) size: i64,
    /// Message-ID header.
    pub(crate) message_id: Option<String>,
    /// Who handed it in.
    pub(crate) client: String,
    /// Accepted at.
    #[serde(rename = "received_ms")]
    pub(crate) received: Timestamp,
    /// Attempts made.
    pub(crate) attempts: i64,
    /// The Subject, decoded and cleaned (`message::subject`).
    pub(crate) subject: Option<String>,
}

/// A message in the queue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Entry {
    /// The message.
    #[serde(flatten)]
    pub(crate) message: Summary,
    /// Next attempt not before.
    #[serde(rename = "next_attempt_ms")]
    pub(crate) next_attempt: Timestamp,
    /// Being delivered now.
    pub(crate) leased: bool,
    /// The last reply or error.
    pub(crate) last_reply: Option<String>,
}

/// A message in the dead-letter area.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct DeadEntry {
    /// Its number in the dead-letter area (a message may have several, one per failed
    /// recipient group).
    pub(crate) seq: i64,
    /// The message.
    #[serde(flatten)]
    pub(crate) message: Summary,
    /// Given up at.
    #[serde(rename = "failed_ms")]
    pub(crate) failed: Timestamp,
    /// The reply, in full.
    pub(crate) reply: String,
    /// Cause and fix.
    pub(crate) diagnosis: String,
}

/// An account the relay has stopped delivering for, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Paused {
    /// The account.
    pub(crate) account: String,
    /// Since.
    #[serde(rename = "since_ms")]
    pub(crate) since: Timestamp,
    /// The next try.
    #[serde(rename = "until_ms")]
    pub(crate) until: Timestamp,
    /// Why: the reply, and the catalog's cause.
    pub(crate) reason: String,
}

/// Counts for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stats {
    /// Messages in the queue.
    pub(crate) queued: i64,
    /// When the oldest arrived.
    pub(crate) oldest: Option<Timestamp>,
    /// Dead letters.
    pub(crate) dead: i64,
}

/// An open queue for inspection.
#[derive(Debug)]
pub(crate) struct Inspector {
    conn: Connection,
}

/// `?1` in every query that reads it is now.
const ENTRY_COLUMNS: &str = "id, account, sender, recipients, size, message_id, client, received_ms, attempts, \
                             subject, next_attempt_ms, lease_until_ms > ?1, last_reply";
const DEAD_COLUMNS: &str = "seq, id, account, sender, recipients, size, message_id, client, received_ms, attempts, \
                            subject, failed_ms, reply, diagnosis";
/// Where `content` is when a query adds it after the columns above.
const ENTRY_CONTENT: usize = 13;
const DEAD_CONTENT: usize = 14;

/// The ten columns both tables share, from column `first` on.
fn summary(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Summary> {
    Ok(Summary {
        id: row.get(first)?,
        account: row.get(first + 1)?,
        sender: row.get(first + 2)?,
        recipients: serde_json::from_str(&row.get::<_, String>(first + 3)?).unwrap_or_default(),
        size: row.get(first + 4)?,
        message_id: row.get(first + 5)?,
        client: row.get(first + 6)?,
        received: row.get(first + 7)?,
        attempts: row.get(first + 8)?,
        subject: row.get(first + 9)?,
    })
}

fn entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        message: summary(row, 0)?,
        next_attempt: row.get(10)?,
        leased: row.get::<_, i64>(11)? != 0,
        last_reply: row.get(12)?,
    })
}

fn dead_entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<DeadEntry> {
    Ok(DeadEntry {
        seq: row.get(0)?,
        message: summary(row, 1)?,
        failed: row.get(11)?,
        reply: row.get(12)?,
        diagnosis: row.get(13)?,
    })
}

/// A change to one message by id made (`changed == 1`) or refused because a lease holds it.
pub(super) fn changed_unless_busy(changed: usize, id: &str) -> Result<(), Lookup> {
    if changed == 1 {
        Ok(())
    } else {
        Err(Lookup::Busy(id.to_owned()))
    }
}

/// What an id given on the command line matched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Lookup {
    /// Nothing.
    #[error("no message `{0}` in the queue")]
    NotFound(String),
    /// Several: a longer prefix is needed.
    #[error("`{0}` matches {1} messages: give more of the id")]
    Ambiguous(String, usize),
    /// Being delivered now: leave it to the relay.
    #[error("message {0} is being delivered now; try again in a moment")]
    Busy(String),
}

impl Inspector {
    /// Opens the queue in `dir`; it must exist (the relay creates it, and upgrades its format).
    pub(crate) fn open(dir: &Path) -> Result<Self, QueueError> {
        let path = dir.join(sqlite::FILE_NAME);
        if !path.is_file() {
            return Err(QueueError::Store(format!(
                "no queue at {} (the relay creates it when it first starts)",
                dir.display()
            )));
        }
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(|e| QueueError::Store(format!("{}: {e}", path.display())))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version != sqlite::SCHEMA_VERSION {
            return Err(QueueError::Store(format!(
                "{}: queue format {version}, this version of m365-mailer reads {}: start the relay of this version once to upgrade it",
                path.display(),
                sqlite::SCHEMA_VERSION
            )));
        }
        Ok(Self { conn })
    }

    /// Counts for metrics.
    pub(crate) fn stats(&self) -> Result<Stats, QueueError> {
        let (queued, oldest) = self
            .conn
            .query_row("SELECT count(*), min(received_ms) FROM queue", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?;
        let dead = self.conn.query_row("SELECT count(*) FROM dead", [], |row| row.get(0))?;
        Ok(Stats { queued, oldest, dead })
    }

    /// Every queued message, oldest first, as at `now`.
    pub(crate) fn list(&self, now: Timestamp) -> Result<Vec<Entry>, QueueError> {
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM queue ORDER BY received_ms, id");
        Ok(self
            .conn
            .prepare(&sql)?
            .query_map(params![now], entry)?
            .collect::<Result<_, _>>()?)
    }

    /// The accounts the relay has paused, and why.
    pub(crate) fn paused(&self) -> Result<Vec<Paused>, QueueError> {
        Ok(self
            .conn
            .prepare("SELECT account, since_ms, until_ms, reason FROM paused ORDER BY account")?
            .query_map([], |row| {
                Ok(Paused {
                    account: row.get(0)?,
                    since: row.get(1)?,
                    until: row.get(2)?,
                    reason: row.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?)
    }

    /// The full id for `prefix`.
    pub(crate) fn resolve(&self, prefix: &str) -> Result<Result<String, Lookup>, QueueError> {
        let pattern = format!("{}%", prefix.replace(['%', '_'], ""));
        let ids: Vec<String> = self
            .conn
            .prepare("SELECT id FROM queue WHERE id LIKE ?1 LIMIT 2")?
            .query_map(params![pattern], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(match ids.as_slice() {
            [] => Err(Lookup::NotFound(prefix.to_owned())),
            [one] => Ok(one.clone()),
            _ => Err(Lookup::Ambiguous(prefix.to_owned(), ids.len())),
        })
    }

    /// One message and its content, as at `now`.
    pub(crate) fn show(&self, id: &str, now: Timestamp) -> Result<Option<(Entry, Vec<u8>)>, QueueError> {
        let sql = format!("SELECT {ENTRY_COLUMNS}, content FROM queue WHERE id = ?2");
        Ok(self
            .conn
            .query_row(&sql, params![now, id], |row| {
                Ok((entry(row)?, row.get::<_, Vec<u8>>(ENTRY_CONTENT)?))
            })
            .optional()?)
    }

    /// Makes a message due now. `Err(Busy)` when it is being delivered.
    pub(crate) fn retry(&self, id: &str, now: Timestamp) -> Result<Result<(), Lookup>, QueueError> {
        let changed = self.conn.execute(
            "UPDATE queue SET next_attempt_ms = ?2 WHERE id = ?1 AND lease_until_ms <= ?2",
            params![id, now],
        )?;
        Ok(changed_unless_busy(changed, id))
    }

    /// Makes every waiting message due now; returns how many.
    pub(crate) fn retry_all(&self, now: Timestamp) -> Result<usize, QueueError> {
        Ok(self.conn.execute(
            "UPDATE queue SET next_attempt_ms = ?1 WHERE lease_until_ms <= ?1 AND next_attempt_ms > ?1",
            params![now],
        )?)
    }

    /// Removes a message without delivering it. `Err(Busy)` when it is being delivered.
    pub(crate) fn delete(&self, id: &str, now: Timestamp) -> Result<Result<(), Lookup>, QueueError> {
        let changed = self.conn.execute(
            "DELETE FROM queue WHERE id = ?1 AND lease_until_ms <= ?2",
            params![id, now],
        )?;
        Ok(changed_unless_busy(changed, id))
    }

    /// The dead-letter area, oldest first.
    pub(crate) fn dead(&self) -> Result<Vec<DeadEntry>, QueueError> {
        let sql = format!("SELECT {DEAD_COLUMNS} FROM dead ORDER BY seq");
        Ok(self
            .conn
            .prepare(&sql)?
            .query_map([], dead_entry)?
            .collect::<Result<_, _>>()?)
    }

    /// Dead letters whose queue id starts with `prefix`, with their content.
    pub(crate) fn dead_show(&self, prefix: &str) -> Result<Vec<(DeadEntry, Vec<u8>)>, QueueError> {
        let sql = format!("SELECT {DEAD_COLUMNS}, content FROM dead WHERE id LIKE ?1 ORDER BY seq");
        let pattern = format!("{}%", prefix.replace(['%', '_'], ""));
        Ok(self
            .conn
            .prepare(&sql)?
            .query_map(params![pattern], |row| {
                Ok((dead_entry(row)?, row.get::<_, Vec<u8>>(DEAD_CONTENT)?))
            })?
            .collect::<Result<_, _>>()?)
    }

    /// Puts dead letters (those whose id starts with `prefix`, or all) back in the queue, due
    /// now with no attempts; returns how many.
    pub(crate) fn dead_retry(&mut self, prefix: Option<&str>, now: Timestamp) -> Result<usize, QueueError> {
        let pattern = format!("{}%", prefix.unwrap_or_default().replace(['%', '_'], ""));
        let tx = self.conn.transaction()?;
        let rows: Vec<(i64, String)> = tx
            .prepare("SELECT seq, id FROM dead WHERE id LIKE ?1")?
            .query_map(params![pattern], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (seq, id) in &rows {
            // The queue id stays the same unless that id is still queued (a message whose
            // other recipients are still waiting): then the copy gets a suffix.
            let taken: bool = tx.query_row("SELECT count(*) FROM queue WHERE id = ?1", params![id], |r| {
                r.get::<_, i64>(0).map(|n| n > 0)
            })?;
            let new_id = if taken { format!("{id}-{seq}") } else { id.clone() };
            tx.execute(
                "INSERT INTO queue (id, account, sender, recipients, content, size, message_id, client, received_ms,
                                    subject, next_attempt_ms)
                 SELECT ?2, account, sender, recipients, content, size, message_id, client, ?3, subject, ?3
                 FROM dead WHERE seq = ?1",
                params![seq, new_id, now],
            )?;
            tx.execute("DELETE FROM dead WHERE seq = ?1", params![seq])?;
        }
        tx.commit()?;
        Ok(rows.len())
    }

    /// Removes one dead letter (its `seq`); returns how many (0 when it is gone already).
    pub(crate) fn dead_delete(&self, seq: i64) -> Result<usize, QueueError> {
        Ok(self.conn.execute("DELETE FROM dead WHERE seq = ?1", params![seq])?)
    }

    /// Empties the dead-letter area, or removes what was given up on before `before`;
    /// returns how many.
    pub(crate) fn dead_purge(&self, before: Option<Timestamp>) -> Result<usize, QueueError> {
        Ok(self.conn.execute(
            "DELETE FROM dead WHERE failed_ms < ?1",
            params![before.unwrap_or(Timestamp::MAX)],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ms;
    use crate::queue::store::{Op, Store as _};
    use crate::queue::{DeadLetter, NewMessage, SqliteStore};

    fn message(id: &str) -> NewMessage {
        NewMessage {
            id: id.into(),
            account: "main".into(),
            sender: "relay@contoso.com".into(),
            recipients: vec!["a@fabrikam.com".into()],
            content: b"Subject: s\r\n\r\nb\r\n".to_vec(),
            message_id: Some(format!("<{id}@x>")),
            client: "127.0.0.1".into(),
            received: ms(1000),
        }
    }

    #[test]
    fn commands_beside_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join(sqlite::FILE_NAME)).unwrap();
        let dead = DeadLetter {
            message: message("dd01"),
            attempts: 3,
            failed: ms(5000),
            reply: "550 5.1.10 RESOLVER.ADR.RecipientNotFound".into(),
            diagnosis: "the recipient does not exist".into(),
        };
        let ops = vec![
            Op::Enqueue(message("aa01")),
            Op::Enqueue(message("aa02")),
            Op::Enqueue(message("bb01")),
            Op::Dead(dead),
        ];
        store.apply(&[ops]).unwrap();
        // bb01 is being delivered.
        store
            .apply(&[vec![Op::Lease {
                account: "main".into(),
                now: ms(2000),
                limit: 3,
                until: ms(600_000),
            }]])
            .unwrap();
        let busy = |id: &str| Op::Defer {
            id: id.into(),
            recipients: vec!["a@fabrikam.com".into()],
            next_attempt: ms(90_000),
            attempted: true,
            crashed: false,
            at: ms(2000),
            reply: "451 4.7.500 busy".into(),
        };
        store.apply(&[vec![busy("aa01")], vec![busy("aa02")]]).unwrap();

        let mut q = Inspector::open(dir.path()).unwrap();
        let list = q.list(ms(3000)).unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].last_reply.as_deref(), Some("451 4.7.500 busy"));
        assert!(list.iter().find(|e| e.message.id == "bb01").unwrap().leased);
        assert_eq!(q.resolve("bb").unwrap(), Ok("bb01".to_owned()));
        assert_eq!(q.resolve("aa").unwrap(), Err(Lookup::Ambiguous("aa".into(), 2)));
        assert_eq!(q.resolve("zz").unwrap(), Err(Lookup::NotFound("zz".into())));
        let (entry, content) = q.show("aa01", ms(3000)).unwrap().unwrap();
        assert_eq!((entry.message.attempts, content.len()), (1, 17));

        assert_eq!(q.retry("aa01", ms(3000)).unwrap(), Ok(()));
        assert_eq!(q.retry("bb01", ms(3000)).unwrap(), Err(Lookup::Busy("bb01".into())));
        assert_eq!(
            q.retry_all(ms(3000)).unwrap(),
            1,
            "aa02 only: aa01 is due already, bb01 is busy"
        );
        assert_eq!(q.delete("bb01", ms(3000)).unwrap(), Err(Lookup::Busy("bb01".into())));
        assert_eq!(q.delete("aa02", ms(3000)).unwrap(), Ok(()));
        // Once its lease has run out, nobody is delivering it.
        assert!(
            !q.list(ms(600_000))
                .unwrap()
                .iter()
                .find(|e| e.message.id == "bb01")
                .unwrap()
                .leased
        );
        assert_eq!(q.retry("bb01", ms(600_000)).unwrap(), Ok(()));

        assert_eq!(q.dead().unwrap()[0].reply, "550 5.1.10 RESOLVER.ADR.RecipientNotFound");
        assert_eq!(q.dead_show("dd").unwrap().len(), 1);
        assert_eq!(q.dead_retry(Some("dd01"), ms(4000)).unwrap(), 1);
        assert!(q.dead().unwrap().is_empty());
        let back = q
            .list(ms(4000))
            .unwrap()
            .into_iter()
            .find(|e| e.message.id == "dd01")
            .unwrap();
        assert_eq!((back.message.attempts, back.next_attempt), (0, ms(4000)));
        assert_eq!(q.dead_purge(None).unwrap(), 0);
        assert!(Inspector::open(&dir.path().join("nope")).is_err());
    }
}
