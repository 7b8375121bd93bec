//! The sender: takes due alerts from the outbox, posts each batch to its destination and
//! removes what was delivered (2xx); a failed post is tried again with a doubling wait. Runs in
//! every relay; on a shared queue the outbox's claims keep two relays from posting the same
//! alert.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::plan::{Batch, plan};
use super::render::{Notice, body, clip};
use super::{Alerts, Destination};
use crate::clock::Timestamp;
use crate::queue::{OutboxOp, OutboxResult, Queue};
use crate::relay::metrics::{DestinationLabel, Metrics};

/// The outbox is looked at least this often (alerts other relays stored, retries, windows).
const POLL: Duration = Duration::from_secs(2);
/// Due alerts read at once.
const READ_AT_MOST: usize = 5000;
/// A claim holds its alerts this long: past it, a relay that died while posting leaves them
/// to the others.
const CLAIM: Duration = Duration::from_secs(60);
/// A post that has not answered within this fails.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// The first wait after a failed post, doubling up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(300);

/// Posts alerts until `shutdown`.
pub(crate) async fn run(alerts: Alerts, queue: Queue, metrics: Arc<Metrics>, mut shutdown: watch::Receiver<bool>) {
    let client = match client() {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "alerts cannot be sent: no HTTP client");
            return;
        }
    };
    loop {
        if alerts.on() {
            send_due(&alerts, &queue, &client, &metrics).await;
        }
        tokio::select! {
            () = alerts.wait_stored() => {}
            () = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

fn client() -> Result<reqwest::Client, String> {
    let tls = crate::tls::client_config(None).map_err(|e| e.to_string())?;
    reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .timeout(POST_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("m365-mailer/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| crate::tls::error_chain(&e.without_url()))
}

/// One look at the outbox: drops what cannot be sent, posts what is due.
async fn send_due(alerts: &Alerts, queue: &Queue, client: &reqwest::Client, metrics: &Metrics) {
    let settings = alerts.settings();
    let now = Timestamp::now();
    let (pending, sent) = match queue
        .outbox(OutboxOp::Due {
            now,
            limit: READ_AT_MOST,
        })
        .await
    {
        Ok(OutboxResult::Due(pending, sent)) => (pending, sent),
        Ok(_) => return,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the alert outbox; trying again");
            return;
        }
    };
    if pending.is_empty() {
        return;
    }
    let names: Vec<&str> = settings.destinations.iter().map(|d| d.name.as_str()).collect();
    let plan = plan(pending, &sent, &names, now, settings.window);
    if !plan.dropped.is_empty() {
        for (seq, why) in &plan.dropped {
            tracing::error!(alert = seq, "alert dropped: {why}");
        }
        let seqs = plan.dropped.iter().map(|(seq, _)| *seq).collect();
        if let Err(e) = queue.outbox(OutboxOp::Sent(seqs)).await {
            tracing::warn!(error = %e, "cannot remove dropped alerts");
        }
    }
    for batch in plan.batches {
        let Some(destination) = settings.destinations.iter().find(|d| d.name == batch.destination) else {
            continue;
        };
        let label = DestinationLabel {
            destination: destination.name.clone(),
        };
        let family = match send(queue, client, destination, (&settings.instance, settings.window), batch).await {
            Some(true) => &metrics.alerts_sent,
            Some(false) => &metrics.alerts_failed,
            None => continue,
        };
        family.get_or_create(&label).inc();
    }
}

/// Claims `batch` and posts it: whether the post succeeded (`None`: nothing to post).
async fn send(
    queue: &Queue,
    client: &reqwest::Client,
    destination: &Destination,
    (instance, window): (&str, Duration),
    batch: Batch,
) -> Option<bool> {
    let now = Timestamp::now();
    let kind = batch.kind.name().to_owned();
    let claim = OutboxOp::Claim {
        destination: destination.name.clone(),
        kind: kind.clone(),
        seqs: batch.seqs.clone(),
        now,
        not_since: now - window,
        until: now + CLAIM,
    };
    let claimed = match queue.outbox(claim).await {
        Ok(OutboxResult::Claimed(seqs)) if !seqs.is_empty() => seqs,
        Ok(_) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "cannot claim alerts; trying again");
            return None;
        }
    };
    // Another relay may have taken some: post what this one holds.
    let events: Vec<_> = batch
        .seqs
        .iter()
        .zip(batch.events)
        .filter(|(seq, _)| claimed.contains(seq))
        .map(|(_, event)| event)
        .collect();
    let notice = Notice {
        kind: batch.kind,
        events: &events,
        instance,
    };
    let payload = body(
        destination.format,
        &notice,
        destination.topic.as_ref().map(|t| t.expose()),
    );
    let result = post(client, destination, payload).await;
    let posted = result.is_ok();
    let op = match result {
        Ok(()) => {
            tracing::info!(destination = %destination.name, kind = %kind, events = events.len(), "alert sent");
            OutboxOp::Sent(claimed)
        }
        Err(error) => {
            let wait = crate::backoff::doubling(RETRY_FIRST, batch.attempts + 1, RETRY_MAX);
            tracing::warn!(destination = %destination.name, kind = %kind, events = events.len(), retry_s = wait.as_secs(), error = %error, "alert not delivered; trying again");
            OutboxOp::Failed {
                destination: destination.name.clone(),
                kind,
                seqs: claimed,
                next_attempt: Timestamp::now() + wait,
                error,
            }
        }
    };
    if let Err(e) = queue.outbox(op).await {
        // The claim runs out and the alerts are due again: a duplicate rather than a loss.
        tracing::warn!(error = %e, "cannot record an alert's outcome");
    }
    Some(posted)
}

/// Posts `payload` to `destination`; the error never shows the URL.
async fn post(client: &reqwest::Client, destination: &Destination, payload: Vec<u8>) -> Result<(), String> {
    let response = client
        .post(destination.url.expose())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(payload)
        .send()
        .await
        .map_err(|e| crate::tls::error_chain(&e.without_url()))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text = response.text().await.unwrap_or_default();
    let text = clip(text.trim(), 200);
    Err(if text.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {}", text.escape_debug())
    })
}
