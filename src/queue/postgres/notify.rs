//! Wake-ups between relays: storing a message notifies `m365_mailer_queue` with its account
//! (PostgreSQL delivers it when the transaction commits), and every relay listens on one
//! connection of its own, so the relay that holds a free connection to Exchange delivers at
//! once, whichever relay accepted the message. A relay that misses notifications while its
//! listening connection is down still finds the messages at its next look at the queue.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;

use super::PostgresStore;

/// The channel every relay listens on; the payload is the account's name.
pub(super) const CHANNEL: &str = "m365_mailer_queue";

/// Forwards the accounts of messages stored by any relay to `to`, reconnecting after failures,
/// until `to` is closed.
pub(super) async fn forward(store: Arc<PostgresStore>, to: mpsc::UnboundedSender<String>) {
    let mut failures = 0;
    loop {
        match listen(&store, &to).await {
            Ok(()) => return,
            Err(e) => {
                failures += 1;
                let wait = crate::backoff::doubling(Duration::from_secs(1), failures, Duration::from_secs(60));
                tracing::warn!(queue = %store.target, error = %e, retry_in = ?wait, "not listening for other relays' messages; each relay still looks at the queue every few seconds");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// One listening connection, until it fails (`Err`) or `to` is closed (`Ok`).
async fn listen(store: &PostgresStore, to: &mpsc::UnboundedSender<String>) -> Result<(), String> {
    let (client, mut stream) = store.connect_one().await?;
    let (messages_tx, mut messages) = mpsc::unbounded_channel();
    // The connection is driven here: it carries the LISTEN below and then the notifications.
    // It ends at the first error: a failed connection would answer every poll with another
    // one, at once, and never yield.
    let driver = tokio::spawn(async move {
        while let Some(message) = stream.next().await {
            let failed = message.is_err();
            if messages_tx.send(message).is_err() || failed {
                return;
            }
        }
    });
    let result = async {
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(|e| crate::tls::error_chain(&e))?;
        while let Some(message) = messages.recv().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if to.send(n.payload().to_owned()).is_err() {
                        return Ok(());
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(crate::tls::error_chain(&e)),
            }
        }
        Err("the database closed the connection".to_owned())
    }
    .await;
    driver.abort();
    result
}
