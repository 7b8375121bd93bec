//! The queue in PostgreSQL, shared by several relays: the same operations as SQLite's, each
//! request one transaction, committed with `synchronous_commit = on` before it returns. Leasing
//! takes due rows with `FOR UPDATE SKIP LOCKED`, so two relays never lease the same message and
//! never wait for each other; a relay that dies leaves leases that run out, and its messages
//! are another's to deliver. Tables and upgrades: `docs/queue-format.md`.

mod import;
mod inspect;
mod notify;
mod outbox;
mod schema;
mod slots;
mod target;
#[cfg(test)]
pub(crate) mod testing;

use std::time::Duration;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::types::ToSql;

use super::store::{Op, OpResult};
use super::{DeadLetter, Leased, NewMessage, QueueError, Recovered, SENT_RETENTION, Stats};
use crate::clock::Timestamp;
use crate::secret::Secret;
pub(crate) use slots::{Seat, Slot, SlotLimits, SlotWait, Slots};
pub(crate) use target::{Target, Tls};

/// Connections one relay keeps to the database at most.
const POOL_SIZE: usize = 16;
/// How long a request waits for a connection, or for a new one to be made: past it, the
/// request fails (a session answers `451`), and the next one tries again.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest one request may take, connection included: a database that stops answering
/// mid-request (a network partition) fails it rather than holding a client's session. A commit
/// that did happen is then answered `451`, and the client's retry is a duplicate, never a loss.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A PostgreSQL queue store: a pool of connections.
pub(crate) struct PostgresStore {
    pool: Pool,
    target: Target,
    /// For connections of its own (listening for other relays' messages).
    config: tokio_postgres::Config,
    connector: Connector,
}

/// How connections are made: verified TLS, or plain on this machine.
#[derive(Clone)]
enum Connector {
    Tls(rustls_tokio_postgres::MakeRustlsConnect),
    Plain,
}

/// What a connection of its own receives besides replies (notifications, notices); polling it
/// drives the connection.
type Messages = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<tokio_postgres::AsyncMessage, tokio_postgres::Error>> + Send>,
>;

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("target", &self.target).finish()
    }
}

impl From<tokio_postgres::Error> for QueueError {
    fn from(e: tokio_postgres::Error) -> Self {
        QueueError::Store(crate::tls::error_chain(&e))
    }
}

impl PostgresStore {
    /// Connects to `target` (`password` when its URL has none), and creates or upgrades the
    /// tables.
    pub(crate) async fn connect(target: &Target, password: Option<&Secret>) -> Result<Self, QueueError> {
        let config = target.config(password);
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let connector = match target.tls() {
            Tls::Verified { root_cert } => {
                let tls = crate::tls::client_config(root_cert.as_deref())
                    .map_err(|e| QueueError::Store(format!("{target}: {e}")))?;
                Connector::Tls(rustls_tokio_postgres::MakeRustlsConnect::new((*tls).clone()))
            }
            Tls::Disabled => Connector::Plain,
        };
        let manager = match &connector {
            Connector::Tls(tls) => Manager::from_config(config.clone(), tls.clone(), manager_config),
            Connector::Plain => Manager::from_config(config.clone(), tokio_postgres::NoTls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| QueueError::Store(format!("{target}: {e}")))?;
        let store = Self {
            pool,
            target: target.clone(),
            config,
            connector,
        };
        let mut client = store.client().await?;
        schema::upgrade(&mut client).await.map_err(|e| match e {
            schema::UpgradeError::Newer(found) => QueueError::Store(format!(
                "{target}: queue format {found} is newer than this version of m365-mailer understands ({})",
                schema::VERSION
            )),
            schema::UpgradeError::Database(e) => {
                QueueError::Store(format!("{target}: {}", crate::tls::error_chain(&e)))
            }
        })?;
        Ok(store)
    }

    /// A connection outside the pool, and the stream that drives it.
    async fn connect_one(&self) -> Result<(tokio_postgres::Client, Messages), String> {
        let error = |e: tokio_postgres::Error| crate::tls::error_chain(&e);
        Ok(match &self.connector {
            Connector::Tls(tls) => {
                let (client, mut connection) = self.config.connect(tls.clone()).await.map_err(error)?;
                let messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                (client, Box::pin(messages))
            }
            Connector::Plain => {
                let (client, mut connection) = self.config.connect(tokio_postgres::NoTls).await.map_err(error)?;
                let messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                (client, Box::pin(messages))
            }
        })
    }

    /// Sends the account of every message any relay stores to `to`, until `to` closes.
    pub(crate) async fn forward_wake_ups(self: std::sync::Arc<Self>, to: tokio::sync::mpsc::UnboundedSender<String>) {
        notify::forward(self, to).await;
    }

    /// Whether the database answers now (`/readyz`).
    pub(crate) async fn check(&self) -> Result<(), QueueError> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// No connection to the database: why, naming it.
    fn unreachable(&self, e: deadpool_postgres::PoolError) -> QueueError {
        let detail = match e {
            deadpool_postgres::PoolError::Backend(e) => crate::tls::error_chain(&e),
            other => format!("the database cannot be reached: {other}"),
        };
        QueueError::Store(format!("{}: {detail}", self.target))
    }

    /// What the queue holds. Leases are left alone: other relays may be delivering them, and
    /// those of a relay that died run out by themselves.
    pub(crate) async fn recover(&self) -> Result<Recovered, QueueError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT (SELECT count(*) FROM queue), (SELECT count(*) FROM dead)", &[])
            .await?;
        let count = |i: usize| row.get::<_, i64>(i).unsigned_abs();
        Ok(Recovered {
            queued: count(0),
            released: 0,
            dead: count(1),
        })
    }

    /// How many messages wait, since when, and how many are dead.
    pub(crate) async fn stats(&self) -> Result<Stats, QueueError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM queue), (SELECT min(received_ms) FROM queue), (SELECT count(*) FROM dead)",
                &[],
            )
            .await?;
        Ok(Stats {
            queued: row.get(0),
            oldest: row.get::<_, Option<i64>>(1).map(Timestamp::from_unix_millis),
            dead: row.get(2),
        })
    }

    /// Applies `ops` in one transaction, within [`REQUEST_TIMEOUT`].
    pub(crate) async fn apply(&self, ops: &[Op]) -> Result<Vec<OpResult>, QueueError> {
        self.timed(self.apply_now(ops)).await
    }

    /// `request`, failed if it takes longer than [`REQUEST_TIMEOUT`].
    async fn timed<T>(&self, request: impl Future<Output = Result<T, QueueError>>) -> Result<T, QueueError> {
        tokio::time::timeout(REQUEST_TIMEOUT, request)
            .await
            .unwrap_or_else(|_| {
                Err(QueueError::Store(format!(
                    "{}: the database did not answer within {} s",
                    self.target,
                    REQUEST_TIMEOUT.as_secs()
                )))
            })
    }

    /// A pooled connection.
    async fn client(&self) -> Result<deadpool_postgres::Client, QueueError> {
        self.pool.get().await.map_err(|e| self.unreachable(e))
    }

    async fn apply_now(&self, ops: &[Op]) -> Result<Vec<OpResult>, QueueError> {
        let mut client = self.client().await?;
        if let [Op::Enqueue(m)] = ops {
            // A session's message: one statement, its own transaction, in one round trip.
            insert_message(&client, m).await?;
            return Ok(vec![OpResult::Done]);
        }
        let tx = client.transaction().await?;
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            results.push(apply_one(&tx, op).await?);
        }
        tx.commit().await?;
        Ok(results)
    }
}

type Transaction<'a> = deadpool_postgres::Transaction<'a>;

/// Runs one statement (prepared once per connection), in a transaction or on its own.
async fn execute(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, tokio_postgres::Error> {
    let statement = client.prepare_cached(sql).await?;
    client.execute(&statement, params).await
}

async fn apply_one(tx: &Transaction<'_>, op: &Op) -> Result<OpResult, tokio_postgres::Error> {
    match op {
        Op::Enqueue(m) => insert_message(tx, m).await?,
        Op::Lease {
            account,
            now,
            limit,
            until,
        } => return lease(tx, account, *now, *limit, *until).await.map(OpResult::Leased),
        Op::Renew { id, until } => {
            execute(
                tx,
                "UPDATE queue SET lease_until_ms = $2 WHERE id = $1",
                &[id, &until.unix_millis()],
            )
            .await?;
        }
        Op::NextDue { account, now } => return next_due(tx, account, *now).await.map(OpResult::NextDue),
        Op::Sent {
            account,
            recipients,
            at,
        } => {
            execute(
                tx,
                "INSERT INTO sent (account, at_ms, recipients) VALUES ($1, $2, $3)",
                &[account, &at.unix_millis(), &i64::from(*recipients)],
            )
            .await?;
            execute(
                tx,
                "DELETE FROM sent WHERE account = $1 AND at_ms < $2",
                &[account, &(*at - SENT_RETENTION).unix_millis()],
            )
            .await?;
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
            execute(
                tx,
                "UPDATE queue SET lease_until_ms = 0, recipients = $2, next_attempt_ms = $3, last_reply = $4,
                                  attempts = attempts + $5, crashes = crashes + $7,
                                  last_attempt_ms = CASE WHEN $5 = 1 THEN $6 ELSE last_attempt_ms END
                 WHERE id = $1",
                &[
                    id,
                    &super::recipients_json(recipients),
                    &next_attempt.unix_millis(),
                    reply,
                    &i64::from(*attempted),
                    &at.unix_millis(),
                    &i64::from(*crashed),
                ],
            )
            .await?;
        }
        Op::Pause {
            account,
            until,
            reason,
            at,
        } => {
            execute(
                tx,
                "INSERT INTO paused (account, until_ms, since_ms, reason) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (account) DO UPDATE SET until_ms = EXCLUDED.until_ms, reason = EXCLUDED.reason",
                &[account, &until.unix_millis(), &at.unix_millis(), reason],
            )
            .await?;
        }
        Op::Resume(account) => {
            execute(tx, "DELETE FROM paused WHERE account = $1", &[account]).await?;
        }
        Op::Dead(dead) => insert_dead(tx, dead).await?,
        Op::Remove(id) => {
            execute(tx, "DELETE FROM queue WHERE id = $1", &[id]).await?;
        }
        Op::SentSince { account, since } => {
            let statement = tx
                .prepare_cached("SELECT at_ms, recipients FROM sent WHERE account = $1 AND at_ms >= $2 ORDER BY at_ms")
                .await?;
            let rows = tx.query(&statement, &[account, &since.unix_millis()]).await?;
            let sent = rows
                .iter()
                .map(|row| {
                    let recipients = u32::try_from(row.get::<_, i64>(1)).unwrap_or(0);
                    (Timestamp::from_unix_millis(row.get(0)), recipients)
                })
                .collect();
            return Ok(OpResult::Sent(sent));
        }
        Op::Outbox(op) => return outbox::apply(tx, op).await.map(OpResult::Outbox),
    }
    Ok(OpResult::Done)
}

/// Stores `m` and notifies the relays listening, delivered when the transaction commits.
async fn insert_message(client: &impl GenericClient, m: &NewMessage) -> Result<(), tokio_postgres::Error> {
    let sql = "WITH stored AS (
                   INSERT INTO queue (id, account, sender, recipients, content, size, message_id, client,
                                      received_ms, subject, next_attempt_ms)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $9) RETURNING account)
               SELECT pg_notify($11, account) FROM stored";
    insert_with(client, sql, m, &[&notify::CHANNEL]).await
}

async fn insert_dead(tx: &Transaction<'_>, dead: &DeadLetter) -> Result<(), tokio_postgres::Error> {
    let sql = "INSERT INTO dead (id, account, sender, recipients, content, size, message_id, client, received_ms,
                                 subject, attempts, failed_ms, reply, diagnosis)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
    let extra: [&(dyn ToSql + Sync); 4] = [
        &i64::from(dead.attempts),
        &dead.failed.unix_millis(),
        &dead.reply,
        &dead.diagnosis,
    ];
    insert_with(tx, sql, &dead.message, &extra).await
}

/// Runs `sql` with a message's ten columns (id to received, then its subject, as both tables
/// name them) followed by `extra`, as SQLite's store does.
async fn insert_with(
    client: &impl GenericClient,
    sql: &str,
    m: &NewMessage,
    extra: &[&(dyn ToSql + Sync)],
) -> Result<(), tokio_postgres::Error> {
    let recipients = super::recipients_json(&m.recipients);
    let size = i64::try_from(m.content.len()).unwrap_or(i64::MAX);
    let received = m.received.unix_millis();
    let subject = crate::message::subject(&m.content);
    let mut values: Vec<&(dyn ToSql + Sync)> = vec![
        &m.id,
        &m.account,
        &m.sender,
        &recipients,
        &m.content,
        &size,
        &m.message_id,
        &m.client,
        &received,
        &subject,
    ];
    values.extend_from_slice(extra);
    execute(client, sql, &values).await.map(drop)
}

/// Up to `limit` of the account's due messages, leased until `until`, oldest first; rows
/// another relay is leasing at this moment are skipped, not waited for.
async fn lease(
    tx: &Transaction<'_>,
    account: &str,
    now: Timestamp,
    limit: usize,
    until: Timestamp,
) -> Result<Vec<Leased>, tokio_postgres::Error> {
    let statement = tx
        .prepare_cached(
            "WITH picked AS (SELECT id, lease_until_ms AS held FROM queue
                             WHERE account = $1 AND next_attempt_ms <= $2 AND lease_until_ms <= $2
                             ORDER BY next_attempt_ms, id LIMIT $3
                             FOR UPDATE SKIP LOCKED)
             UPDATE queue SET lease_until_ms = $4 FROM picked
             WHERE queue.id = picked.id
             RETURNING queue.id, account, sender, recipients, content, message_id, client, received_ms, attempts,
                       crashes, next_attempt_ms, picked.held <> 0",
        )
        .await?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = tx
        .query(
            &statement,
            &[&account, &now.unix_millis(), &limit, &until.unix_millis()],
        )
        .await?;
    let mut leased: Vec<(i64, Leased)> = rows
        .iter()
        .map(|row| {
            let count = |i: usize| u32::try_from(row.get::<_, i64>(i)).unwrap_or(u32::MAX);
            let message = NewMessage {
                id: row.get(0),
                account: row.get(1),
                sender: row.get(2),
                recipients: super::parse_recipients(row.get(3)),
                content: row.get(4),
                message_id: row.get(5),
                client: row.get(6),
                received: Timestamp::from_unix_millis(row.get(7)),
            };
            let due: i64 = row.get(10);
            (
                due,
                Leased {
                    message,
                    attempts: count(8),
                    crashes: count(9),
                    // A lease that was not given back ran out.
                    reclaimed: row.get(11),
                },
            )
        })
        .collect();
    // RETURNING does not keep the subquery's order.
    leased.sort_by(|(a, x), (b, y)| (a, &x.message.id).cmp(&(b, &y.message.id)));
    Ok(leased.into_iter().map(|(_, l)| l).collect())
}

/// When the account's next message is due. A message held by a lease is available when the
/// lease runs out.
async fn next_due(
    tx: &Transaction<'_>,
    account: &str,
    now: Timestamp,
) -> Result<Option<Timestamp>, tokio_postgres::Error> {
    let statement = tx
        .prepare_cached(
            "SELECT min(GREATEST(next_attempt_ms, CASE WHEN lease_until_ms > $2 THEN lease_until_ms ELSE 0 END))
             FROM queue WHERE account = $1",
        )
        .await?;
    let row = tx.query_one(&statement, &[&account, &now.unix_millis()]).await?;
    Ok(row.get::<_, Option<i64>>(0).map(Timestamp::from_unix_millis))
}
