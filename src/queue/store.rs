//! The storage seam: a store applies batches of operations, each batch in one transaction. The
//! SQLite store is the one there is; a PostgreSQL store for several relays would implement the
//! same trait (leasing with `FOR UPDATE SKIP LOCKED`).
//!
//! A lease is a time: a message leased until `t` is nobody else's to deliver before `t`. The
//! worker holding it renews it while it delivers; if the worker cannot record the outcome (a
//! full disk), or dies, the lease runs out and the message is due again without a restart.

use crate::clock::Timestamp;

use super::outbox::{OutboxOp, OutboxResult};
use super::{DeadLetter, Leased, NewMessage, QueueError, QueueId, Recovered};

/// One operation on the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// Store a new message.
    Enqueue(NewMessage),
    /// Lease due messages of an account, oldest first, until `until`.
    Lease {
        /// The account.
        account: String,
        /// Now.
        now: Timestamp,
        /// At most this many.
        limit: usize,
        /// The lease runs out then.
        until: Timestamp,
    },
    /// Extends the lease of a message being delivered.
    Renew {
        /// The message.
        id: QueueId,
        /// The lease runs out then.
        until: Timestamp,
    },
    /// When the next message of an account that nobody holds is due, seen at `now`.
    NextDue {
        /// The account.
        account: String,
        /// Now.
        now: Timestamp,
    },
    /// A delivery, recorded for the rolling-day recipient limit.
    Sent {
        /// The account that sent it.
        account: String,
        /// Recipients it was delivered to.
        recipients: u32,
        /// When.
        at: Timestamp,
    },
    /// Keep the message for a later attempt, for `recipients` only.
    Defer {
        /// The message.
        id: QueueId,
        /// Recipients still to deliver to.
        recipients: Vec<String>,
        /// When to try again.
        next_attempt: Timestamp,
        /// Whether this counts as an attempt (a throttled or never-tried message does not).
        attempted: bool,
        /// The delivery crashed (counted apart: a message that keeps crashing is given up on).
        crashed: bool,
        /// When the attempt was made.
        at: Timestamp,
        /// The reply or error, in full.
        reply: String,
    },
    /// Give up on some or all recipients: a copy goes to the dead-letter area.
    Dead(DeadLetter),
    /// Remove a message from the queue: delivered, or its last recipients went to the
    /// dead-letter area.
    Remove(QueueId),
    /// The account cannot deliver until `until`, and why (shown by `queue`).
    Pause {
        /// The account.
        account: String,
        /// Until then.
        until: Timestamp,
        /// Why, with the reply.
        reason: String,
        /// When it was paused.
        at: Timestamp,
    },
    /// The account delivers again.
    Resume(String),
    /// Recipient counts of deliveries since a time (the rolling-day limit after a restart).
    SentSince {
        /// The account.
        account: String,
        /// Since.
        since: Timestamp,
    },
    /// An operation on the alert outbox.
    Outbox(OutboxOp),
}

/// The result of one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OpResult {
    /// Applied.
    Done,
    /// Leased messages.
    Leased(Vec<Leased>),
    /// When the next message is due.
    NextDue(Option<Timestamp>),
    /// Deliveries: when, and to how many recipients.
    Sent(Vec<(Timestamp, u32)>),
    /// What an outbox operation returned.
    Outbox(OutboxResult),
}

/// A transactional queue store.
pub(crate) trait Store: Send + 'static {
    /// Puts back messages a previous run leased and did not finish; counts what is stored.
    fn recover(&mut self) -> Result<Recovered, QueueError>;

    /// Applies each request (a list of operations) atomically and all of them in one durable
    /// commit. A request that fails is rolled back alone and gets its error; `Err` means the
    /// commit itself failed and nothing was applied.
    fn apply(&mut self, requests: &[Vec<Op>]) -> Result<Vec<Result<Vec<OpResult>, QueueError>>, QueueError>;
}
