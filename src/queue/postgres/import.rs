//! Copying a SQLite queue's rows in (`queue migrate`), in one transaction, skipping what is
//! already there.

use std::collections::BTreeSet;

use tokio_postgres::types::{ToSql, Type};

use super::{PostgresStore, Transaction, notify};
use crate::queue::QueueError;
use crate::queue::migrate::{DEAD_COLUMNS, Migrated, PAUSED_COLUMNS, QUEUE_COLUMNS, Rows, SENT_COLUMNS, Tables};

impl PostgresStore {
    /// Adds `tables` to the database; what it already holds is left as it is.
    pub(in crate::queue) async fn import(&self, tables: &Tables) -> Result<Migrated, QueueError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut migrated = Migrated::default();
        let queued = copy(&tx, "queue", QUEUE_COLUMNS, &tables.queue, Some("id = $1")).await?;
        let dead = copy(
            &tx,
            "dead",
            DEAD_COLUMNS,
            &tables.dead,
            Some("id = $1 AND failed_ms = $11"),
        )
        .await?;
        copy(
            &tx,
            "sent",
            SENT_COLUMNS,
            &tables.sent,
            Some("account = $1 AND at_ms = $2 AND recipients = $3"),
        )
        .await?;
        // A pause recorded here is the newest word on the account.
        tx.execute(
            "DELETE FROM paused WHERE account = ANY($1)",
            &[&tables.paused.iter().filter_map(|row| text(&row[0])).collect::<Vec<_>>()],
        )
        .await?;
        copy(&tx, "paused", PAUSED_COLUMNS, &tables.paused, None).await?;
        // Relays already running on the database deliver the newcomers at once.
        let accounts: BTreeSet<String> = tables.queue.iter().filter_map(|row| text(&row[1])).collect();
        for account in &accounts {
            tx.execute("SELECT pg_notify($1, $2)", &[&notify::CHANNEL, account])
                .await?;
        }
        tx.commit().await?;
        migrated.queued = queued.0;
        migrated.dead = dead.0;
        migrated.already_there = queued.1 + dead.1;
        Ok(migrated)
    }
}

/// Inserts `rows` into `table`, each unless a row matching `existing` (over the row's own
/// values) is there: how many were inserted, and how many were already there.
async fn copy(
    tx: &Transaction<'_>,
    table: &str,
    columns: &str,
    rows: &Rows,
    existing: Option<&str>,
) -> Result<(u64, u64), tokio_postgres::Error> {
    let count = columns.split(',').count();
    let placeholders: Vec<String> = (1..=count).map(|i| format!("${i}")).collect();
    let insert = tx
        .prepare(&format!(
            "INSERT INTO {table} ({columns}) VALUES ({})",
            placeholders.join(", ")
        ))
        .await?;
    let check = match existing {
        Some(condition) => Some(
            tx.prepare_typed(
                &format!("SELECT count(*) FROM {table} WHERE {condition}"),
                insert.params(),
            )
            .await?,
        ),
        None => None,
    };
    let (mut inserted, mut skipped) = (0, 0);
    for row in rows {
        let values: Vec<Box<dyn ToSql + Sync + Send>> = row
            .iter()
            .zip(insert.params())
            .map(|(value, ty)| param(value, ty))
            .collect();
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref() as &(dyn ToSql + Sync)).collect();
        if let Some(check) = &check {
            let there: i64 = tx.query_one(check, &refs).await?.get(0);
            if there > 0 {
                skipped += 1;
                continue;
            }
        }
        tx.execute(&insert, &refs).await?;
        inserted += 1;
    }
    Ok((inserted, skipped))
}

/// A SQLite value as the parameter PostgreSQL expects for its column.
fn param(value: &rusqlite::types::Value, ty: &Type) -> Box<dyn ToSql + Sync + Send> {
    use rusqlite::types::Value;
    match (value, ty) {
        (Value::Integer(n), _) => Box::new(*n),
        (Value::Text(s), _) => Box::new(s.clone()),
        (Value::Blob(b), _) => Box::new(b.clone()),
        (Value::Real(f), _) => Box::new(*f as i64),
        (Value::Null, &Type::INT8) => Box::new(None::<i64>),
        (Value::Null, &Type::BYTEA) => Box::new(None::<Vec<u8>>),
        (Value::Null, _) => Box::new(None::<String>),
    }
}

fn text(value: &rusqlite::types::Value) -> Option<String> {
    match value {
        rusqlite::types::Value::Text(s) => Some(s.clone()),
        _ => None,
    }
}
