//! What the `queue` commands read and change, on either store: the SQLite [`Inspector`] beside
//! a running relay, or the PostgreSQL queue every relay shares.

use super::{DeadEntry, Entry, Inspector, Location, Lookup, Paused, PostgresStore, QueueError};
use crate::clock::Timestamp;

/// The queue as the `queue` commands see it.
#[derive(Debug)]
pub(crate) enum Inspection {
    /// A relay's SQLite queue.
    Sqlite(Inspector),
    /// The PostgreSQL queue.
    Postgres(Box<PostgresStore>),
}

/// The same call on either store.
macro_rules! each {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Inspection::Sqlite($store) => $call,
            Inspection::Postgres($store) => $call.await,
        }
    };
}

impl Inspection {
    /// Opens the queue at `location` (it must exist: the relay creates it).
    pub(crate) async fn open(location: &Location) -> Result<Self, QueueError> {
        Ok(match location {
            Location::Directory(dir) => Self::Sqlite(Inspector::open(dir)?),
            Location::Postgres { target, password } => {
                Self::Postgres(Box::new(PostgresStore::connect(target, password.as_ref()).await?))
            }
        })
    }

    /// Every queued message, oldest first, as at `now`.
    pub(crate) async fn list(&self, now: Timestamp) -> Result<Vec<Entry>, QueueError> {
        each!(self, q => q.list(now))
    }

    /// The paused accounts, and why.
    pub(crate) async fn paused(&self) -> Result<Vec<Paused>, QueueError> {
        each!(self, q => q.paused())
    }

    /// The full id for `prefix`.
    pub(crate) async fn resolve(&self, prefix: &str) -> Result<Result<String, Lookup>, QueueError> {
        each!(self, q => q.resolve(prefix))
    }

    /// One message and its content, as at `now`.
    pub(crate) async fn show(&self, id: &str, now: Timestamp) -> Result<Option<(Entry, Vec<u8>)>, QueueError> {
        each!(self, q => q.show(id, now))
    }

    /// Makes a message due now. `Err(Busy)` when it is being delivered.
    pub(crate) async fn retry(&self, id: &str, now: Timestamp) -> Result<Result<(), Lookup>, QueueError> {
        each!(self, q => q.retry(id, now))
    }

    /// Makes every waiting message due now; returns how many.
    pub(crate) async fn retry_all(&self, now: Timestamp) -> Result<usize, QueueError> {
        each!(self, q => q.retry_all(now))
    }

    /// Removes a message without delivering it. `Err(Busy)` when it is being delivered.
    pub(crate) async fn delete(&self, id: &str, now: Timestamp) -> Result<Result<(), Lookup>, QueueError> {
        each!(self, q => q.delete(id, now))
    }

    /// The dead-letter area, oldest first.
    pub(crate) async fn dead(&self) -> Result<Vec<DeadEntry>, QueueError> {
        each!(self, q => q.dead())
    }

    /// Dead letters whose queue id starts with `prefix`, with their content.
    pub(crate) async fn dead_show(&self, prefix: &str) -> Result<Vec<(DeadEntry, Vec<u8>)>, QueueError> {
        each!(self, q => q.dead_show(prefix))
    }

    /// Puts dead letters back in the queue, due now; returns how many.
    pub(crate) async fn dead_retry(&mut self, prefix: Option<&str>, now: Timestamp) -> Result<usize, QueueError> {
        each!(self, q => q.dead_retry(prefix, now))
    }

    /// Removes one dead letter, by its number.
    pub(crate) async fn dead_delete(&self, seq: i64) -> Result<usize, QueueError> {
        each!(self, q => q.dead_delete(seq))
    }

    /// Empties the dead-letter area, or removes what was given up on before `before`.
    pub(crate) async fn dead_purge(&self, before: Option<Timestamp>) -> Result<usize, QueueError> {
        each!(self, q => q.dead_purge(before))
    }
}
