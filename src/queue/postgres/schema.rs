//! The PostgreSQL queue's tables, versioned: created on first start, upgraded by the first relay
//! of a newer version that starts, refused by an older one. Relays starting together take turns
//! through a transaction-level advisory lock, so the upgrade runs once.
//!
//! The columns are SQLite's (`docs/queue-format.md`), times in Unix milliseconds, so
//! `queue migrate` copies rows as they are.

/// The version of the tables this program writes.
pub(crate) const VERSION: i32 = 4;

/// The advisory lock key that serialises upgrades ("m365mail" in ASCII).
const UPGRADE_LOCK: i64 = 0x6d33_3635_6d61_696c;

/// Version 1: the tables of SQLite's format 2.
const VERSION_1: &str = "
CREATE TABLE queue (
    id              TEXT PRIMARY KEY,
    account         TEXT NOT NULL,
    sender          TEXT NOT NULL,
    recipients      TEXT NOT NULL,
    content         BYTEA NOT NULL,
    size            BIGINT NOT NULL,
    message_id      TEXT,
    client          TEXT NOT NULL,
    received_ms     BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    lease_until_ms  BIGINT NOT NULL DEFAULT 0,
    last_attempt_ms BIGINT,
    last_reply      TEXT,
    crashes         BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX queue_next ON queue (account, next_attempt_ms);
CREATE TABLE dead (
    seq             BIGSERIAL PRIMARY KEY,
    id              TEXT NOT NULL,
    account         TEXT NOT NULL,
    sender          TEXT NOT NULL,
    recipients      TEXT NOT NULL,
    content         BYTEA NOT NULL,
    size            BIGINT NOT NULL,
    message_id      TEXT,
    client          TEXT NOT NULL,
    received_ms     BIGINT NOT NULL,
    attempts        BIGINT NOT NULL,
    failed_ms       BIGINT NOT NULL,
    reply           TEXT NOT NULL,
    diagnosis       TEXT NOT NULL
);
CREATE INDEX dead_id ON dead (id);
CREATE TABLE sent (
    account         TEXT NOT NULL,
    at_ms           BIGINT NOT NULL,
    recipients      BIGINT NOT NULL
);
CREATE INDEX sent_at ON sent (account, at_ms);
CREATE TABLE paused (
    account         TEXT PRIMARY KEY,
    until_ms        BIGINT NOT NULL,
    since_ms        BIGINT NOT NULL,
    reason          TEXT NOT NULL
);
";

/// Version 2: what counts against each mailbox's limits, for every relay at once
/// (`slots.rs`).
const VERSION_2: &str = "
CREATE TABLE mailbox_slots (
    id              BIGSERIAL PRIMARY KEY,
    mailbox         TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('message', 'smtp', 'graph', 'pause')),
    at_ms           BIGINT NOT NULL,
    recipients      BIGINT NOT NULL DEFAULT 0,
    held            BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX mailbox_slots_at ON mailbox_slots (mailbox, at_ms);
";

/// Version 4: each message's subject, for the status page and its search.
const VERSION_4: &str = "
ALTER TABLE queue ADD COLUMN subject TEXT;
ALTER TABLE dead ADD COLUMN subject TEXT;
";

/// Version 3: the alert outbox (`outbox.rs`).
///
/// Each version's statements, in order: `UPGRADES[n]` takes the tables from version `n` to
/// `n + 1`.
const UPGRADES: &[&str] = &[VERSION_1, VERSION_2, super::outbox::SCHEMA, VERSION_4];

/// Why the tables could not be made ready.
#[derive(Debug)]
pub(crate) enum UpgradeError {
    /// The database holds a newer version than this program knows.
    Newer(i32),
    /// The database refused.
    Database(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for UpgradeError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Database(e)
    }
}

/// Creates the tables, or brings them to [`VERSION`], in one transaction.
pub(crate) async fn upgrade(client: &mut deadpool_postgres::Client) -> Result<(), UpgradeError> {
    let tx = client.transaction().await?;
    // "relation already exists, skipping" is not news for the log.
    tx.batch_execute("SET LOCAL client_min_messages = warning").await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&UPGRADE_LOCK]).await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS m365_mailer_schema (version INTEGER NOT NULL)")
        .await?;
    let found: Option<i32> = tx
        .query_opt("SELECT version FROM m365_mailer_schema", &[])
        .await?
        .map(|row| row.get(0));
    let found = found.unwrap_or(0);
    if found > VERSION {
        return Err(UpgradeError::Newer(found));
    }
    for statements in UPGRADES.iter().skip(usize::try_from(found).unwrap_or(0)) {
        tx.batch_execute(statements).await?;
    }
    if found == 0 {
        tx.execute("INSERT INTO m365_mailer_schema (version) VALUES ($1)", &[&VERSION])
            .await?;
    } else if found < VERSION {
        tx.execute("UPDATE m365_mailer_schema SET version = $1", &[&VERSION])
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
