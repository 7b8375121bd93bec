//! The durable queue: messages the relay accepted and has not yet delivered or given up on.
//!
//! A [`Queue`] is a handle to one writer thread that owns the [`Store`]. Requests from every
//! session and delivery worker are collected while the previous transaction commits and then
//! applied together in the next one, so concurrent sessions share fsyncs (group commit): the
//! relay answers `250` only after the transaction holding the message has committed.
//! `docs/queue-format.md` describes the tables and the crash-safety argument.

#[cfg(test)]
mod conformance;
mod inspect;
mod inspection;
mod migrate;
mod outbox;
mod postgres;
mod retry;
mod sqlite;
mod store;

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::clock::Timestamp;
use crate::secret::Secret;

pub(crate) use inspect::{DeadEntry, Entry, Inspector, Lookup, Paused, Stats, Summary};
pub(crate) use inspection::Inspection;
pub(crate) use migrate::migrate;
pub(crate) use outbox::{LastSent, NewAlert, OutboxOp, OutboxResult, PendingAlert};
pub(crate) use postgres::{PostgresStore, Seat, Slot, SlotLimits, SlotWait, Slots, Target};
pub(crate) use retry::{Backoff, Next};
pub(crate) use sqlite::SqliteStore;
pub(crate) use store::{Op, OpResult, Store};

/// A queue identifier: 32 hex digits, time-ordered (UUID v7).
pub(crate) type QueueId = String;

/// Deliveries older than this are forgotten (the rolling-day limit looks back one day).
const SENT_RETENTION: std::time::Duration = std::time::Duration::from_secs(2 * 24 * 3600);

/// Recipients as the stores keep them: a JSON list.
fn recipients_json(recipients: &[String]) -> String {
    serde_json::to_string(recipients).expect("a list of strings serialises")
}

/// The recipients column; a damaged one (written by hand, or by a disk that lies) is logged
/// with its text and read as no recipient, which delivery refuses to the dead-letter area
/// rather than treating as delivered.
fn parse_recipients(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_else(|e| {
        tracing::error!(recipients = %json.escape_debug(), error = %e, "a queued message's recipients cannot be read");
        Vec::new()
    })
}

/// A fresh queue identifier.
pub(crate) fn new_id() -> QueueId {
    uuid::Uuid::now_v7().simple().to_string()
}

/// A message to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewMessage {
    /// Its identifier (given in the `250` reply and the `Received` header).
    pub(crate) id: QueueId,
    /// The account that delivers it.
    pub(crate) account: String,
    /// Envelope sender.
    pub(crate) sender: String,
    /// Envelope recipients.
    pub(crate) recipients: Vec<String>,
    /// The message, CRLF line endings, not dot-stuffed.
    pub(crate) content: Vec<u8>,
    /// The `Message-ID` header, for logs.
    pub(crate) message_id: Option<String>,
    /// Who handed it in: address, and user when authenticated.
    pub(crate) client: String,
    /// When it was accepted.
    pub(crate) received: Timestamp,
}

/// A message leased for delivery: nobody else delivers it until it is finished, released, or
/// the lease runs out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Leased {
    /// The stored message.
    pub(crate) message: NewMessage,
    /// Attempts so far.
    pub(crate) attempts: u32,
    /// Deliveries of it that crashed so far.
    pub(crate) crashes: u32,
    /// Its previous lease ran out: whoever held it stopped without finishing (another relay
    /// on a shared queue that died, or could not reach the database).
    pub(crate) reclaimed: bool,
}

/// A message given up on, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeadLetter {
    /// The message; `recipients` are those that failed.
    pub(crate) message: NewMessage,
    /// Attempts made.
    pub(crate) attempts: u32,
    /// When it was given up on.
    pub(crate) failed: Timestamp,
    /// The last reply or error, in full.
    pub(crate) reply: String,
    /// The catalog's cause and fix.
    pub(crate) diagnosis: String,
}

/// What the queue holds after opening.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// Messages waiting for delivery.
    pub(crate) queued: u64,
    /// Of those, messages a previous run had leased and not finished: put back.
    pub(crate) released: u64,
    /// Messages in the dead-letter area.
    pub(crate) dead: u64,
}

/// A queue failure: the request was not applied.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum QueueError {
    /// The store failed (disk full, I/O error, corruption).
    #[error("queue store: {0}")]
    Store(String),
    /// Another process holds the queue.
    #[error("queue {path} is in use by another relay: {detail}")]
    Locked {
        /// The queue directory.
        path: PathBuf,
        /// The cause.
        detail: String,
    },
    /// The writer thread is gone (the relay is shutting down).
    #[error("the queue is closed")]
    Closed,
}

impl QueueError {
    /// What a client that handed in a message is told: the kind of failure, never the path
    /// or the database's address (the log has those).
    pub(crate) fn for_client(&self) -> &'static str {
        match self {
            QueueError::Store(_) | QueueError::Locked { .. } => "the relay's queue is unavailable",
            QueueError::Closed => "the relay is shutting down",
        }
    }
}

type Reply = tokio::sync::oneshot::Sender<Result<Vec<OpResult>, QueueError>>;

/// Where the queue is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// SQLite in this directory, for one relay alone (`queue_dir`).
    Directory(PathBuf),
    /// PostgreSQL, shared by every relay that names it (`queue`).
    Postgres {
        /// The database.
        target: Target,
        /// The password, when the URL has none.
        password: Option<Secret>,
    },
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Directory(dir) => write!(f, "{}", dir.display()),
            Location::Postgres { target, .. } => write!(f, "{target}"),
        }
    }
}

/// A handle to the queue; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Queue {
    backend: Backend,
    location: Location,
}

#[derive(Debug, Clone)]
enum Backend {
    /// SQLite: one writer thread, whose transactions take every request that is waiting.
    Sqlite {
        /// To the writer thread.
        requests: mpsc::Sender<(Vec<Op>, Reply)>,
        /// The queue directory, for reading beside the writer.
        dir: PathBuf,
    },
    /// PostgreSQL: each request a transaction on a pooled connection (the server groups the
    /// commits of concurrent ones).
    Postgres(std::sync::Arc<PostgresStore>),
}

/// Most requests applied in one transaction.
const MAX_BATCH: usize = 1024;

impl Queue {
    /// Opens the queue at `location`, creating it if needed.
    pub(crate) async fn open_at(location: &Location) -> Result<(Self, Recovered), QueueError> {
        match location {
            Location::Directory(dir) => Self::open(dir),
            Location::Postgres { target, password } => Self::connect(target, password.as_ref()).await,
        }
    }

    /// Opens (creating if needed) the queue in `dir` for this process alone, puts back what a
    /// previous run left leased, and starts the writer thread.
    pub(crate) fn open(dir: &Path) -> Result<(Self, Recovered), QueueError> {
        let lock = lock_dir(dir)?;
        let mut store = SqliteStore::open(&dir.join(sqlite::FILE_NAME))?;
        let recovered = store.recover()?;
        Ok((Self::start(Box::new(store), dir, lock), recovered))
    }

    /// Connects to the PostgreSQL queue at `target`, creating or upgrading its tables. What
    /// other relays lease stays theirs; what a relay that died held is due when its lease runs
    /// out.
    pub(crate) async fn connect(target: &Target, password: Option<&Secret>) -> Result<(Self, Recovered), QueueError> {
        let store = PostgresStore::connect(target, password).await?;
        let recovered = store.recover().await?;
        let location = Location::Postgres {
            target: target.clone(),
            password: password.cloned(),
        };
        Ok((
            Self {
                backend: Backend::Postgres(std::sync::Arc::new(store)),
                location,
            },
            recovered,
        ))
    }

    /// Starts the writer thread over `store`.
    fn start(mut store: Box<dyn Store>, dir: &Path, lock: std::fs::File) -> Self {
        let (tx, rx) = mpsc::channel::<(Vec<Op>, Reply)>();
        std::thread::Builder::new()
            .name("queue-writer".into())
            .spawn(move || {
                let _lock = lock;
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH
                        && let Ok(more) = rx.try_recv()
                    {
                        batch.push(more);
                    }
                    let (requests, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                    match store.apply(&requests) {
                        Ok(results) => {
                            for (reply, result) in replies.into_iter().zip(results) {
                                let _ = reply.send(result);
                            }
                        }
                        Err(e) => {
                            tracing::error!(error = %e, requests = replies.len(), "queue transaction failed");
                            for reply in replies {
                                let _ = reply.send(Err(e.clone()));
                            }
                        }
                    }
                }
            })
            .expect("spawn the queue writer thread");
        Self {
            backend: Backend::Sqlite {
                requests: tx,
                dir: dir.to_owned(),
            },
            location: Location::Directory(dir.to_owned()),
        }
    }

    /// The mailboxes' limits held jointly with the other relays on the same queue: only a
    /// PostgreSQL queue has others (one relay has a SQLite queue to itself).
    pub(crate) fn joint_slots(&self) -> Option<Slots> {
        match &self.backend {
            Backend::Sqlite { .. } => None,
            Backend::Postgres(store) => Some(Slots::new(std::sync::Arc::clone(store))),
        }
    }

    /// Where the queue is.
    pub(crate) fn location(&self) -> &Location {
        &self.location
    }

    /// Applies `ops` atomically and waits for the commit.
    pub(crate) async fn apply(&self, ops: Vec<Op>) -> Result<Vec<OpResult>, QueueError> {
        match &self.backend {
            Backend::Sqlite { requests, .. } => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                requests.send((ops, tx)).map_err(|_| QueueError::Closed)?;
                rx.await.map_err(|_| QueueError::Closed)?
            }
            Backend::Postgres(store) => store.apply(&ops).await,
        }
    }

    /// Whether the queue can take messages now, and why not (`/readyz`).
    pub(crate) async fn check(&self) -> Result<(), QueueError> {
        match &self.backend {
            // A full disk shows in the replies to clients and in the log.
            Backend::Sqlite { .. } => Ok(()),
            Backend::Postgres(store) => store.check().await,
        }
    }

    /// Sends the account of each message stored by another relay sharing the queue to `to`
    /// (PostgreSQL), until `to` closes; returns at once for a queue of one relay's own.
    pub(crate) async fn forward_wake_ups(&self, to: tokio::sync::mpsc::UnboundedSender<String>) {
        if let Backend::Postgres(store) = &self.backend {
            std::sync::Arc::clone(store).forward_wake_ups(to).await;
        }
    }

    /// How many messages wait, since when, and how many are dead (for the metrics).
    pub(crate) async fn stats(&self) -> Result<Stats, QueueError> {
        match &self.backend {
            Backend::Sqlite { dir, .. } => {
                // A reader beside the writer (WAL): the writer's transactions do not wait.
                let dir = dir.clone();
                tokio::task::spawn_blocking(move || Inspector::open(&dir)?.stats())
                    .await
                    .map_err(|_| QueueError::Closed)?
            }
            Backend::Postgres(store) => store.stats().await,
        }
    }

    /// The paused accounts, and why.
    pub(crate) async fn paused(&self) -> Result<Vec<Paused>, QueueError> {
        match &self.backend {
            Backend::Sqlite { dir, .. } => {
                let dir = dir.clone();
                tokio::task::spawn_blocking(move || Inspector::open(&dir)?.paused())
                    .await
                    .map_err(|_| QueueError::Closed)?
            }
            Backend::Postgres(store) => store.paused().await,
        }
    }

    /// Applies one operation on the alert outbox.
    pub(crate) async fn outbox(&self, op: OutboxOp) -> Result<OutboxResult, QueueError> {
        let results = self.apply(vec![Op::Outbox(op)]).await?;
        Ok(match results.into_iter().next() {
            Some(OpResult::Outbox(result)) => result,
            _ => OutboxResult::Done,
        })
    }

    /// Stores a message durably.
    pub(crate) async fn enqueue(&self, message: NewMessage) -> Result<(), QueueError> {
        self.apply(vec![Op::Enqueue(message)]).await.map(drop)
    }

    /// Leases up to `limit` messages of `account` due at `now`, oldest first, until `until`.
    pub(crate) async fn lease(
        &self,
        account: &str,
        now: Timestamp,
        limit: usize,
        until: Timestamp,
    ) -> Result<Vec<Leased>, QueueError> {
        let results = self
            .apply(vec![Op::Lease {
                account: account.to_owned(),
                now,
                limit,
                until,
            }])
            .await?;
        Ok(match results.into_iter().next() {
            Some(OpResult::Leased(leased)) => leased,
            _ => Vec::new(),
        })
    }

    /// When the next message of `account` that nobody holds is due.
    pub(crate) async fn next_due(&self, account: &str, now: Timestamp) -> Result<Option<Timestamp>, QueueError> {
        let results = self
            .apply(vec![Op::NextDue {
                account: account.to_owned(),
                now,
            }])
            .await?;
        Ok(match results.into_iter().next() {
            Some(OpResult::NextDue(due)) => due,
            _ => None,
        })
    }

    /// Recipients `account` was sent to since `since` (for the rolling-day limit).
    pub(crate) async fn recipients_since(
        &self,
        account: &str,
        since: Timestamp,
    ) -> Result<Vec<(Timestamp, u32)>, QueueError> {
        let results = self
            .apply(vec![Op::SentSince {
                account: account.to_owned(),
                since,
            }])
            .await?;
        Ok(match results.into_iter().next() {
            Some(OpResult::Sent(sent)) => sent,
            _ => Vec::new(),
        })
    }
}

/// Creates `dir` (0700; an existing one must be this user's, and is made private) and takes its
/// lock file, so two relays never share a queue.
fn lock_dir(dir: &Path) -> Result<std::fs::File, QueueError> {
    let io = |e: std::io::Error| QueueError::Store(format!("{}: {e}", dir.display()));
    crate::private::create_dir(dir).map_err(io)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(e) => Err(QueueError::Locked {
            path: dir.to_owned(),
            detail: e.to_string(),
        }),
    }
}

#[cfg(all(test, unix))]
mod tests {
    #[test]
    fn a_queue_directory_another_user_could_have_planted_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("queue");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let error = super::Queue::open(&link).unwrap_err().to_string();
        assert!(error.contains("symbolic link"), "{error}");
    }
}
