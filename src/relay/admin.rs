//! The admin endpoint (loopback by default): `/` (the status page), `/healthz` (the process
//! answers), `/readyz` (every account has a token and reached Exchange on its last attempt) and
//! `/metrics` (Prometheus).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::watch;

use super::deliver::AccountDelivery;
use super::metrics::Metrics;
use super::status;
use crate::queue::{Inspection, Queue};

/// What the endpoint reads.
#[derive(Debug)]
pub(crate) struct Admin {
    /// The metrics.
    pub(crate) metrics: Arc<Metrics>,
    /// Delivery per account.
    pub(crate) accounts: super::Accounts,
    /// The queue, read through its own connection.
    pub(crate) queue: Queue,
    /// The relay's host name, for the status page.
    pub(crate) hostname: String,
}

/// Serves the endpoint on `listener` until `shutdown` becomes `true`.
pub(crate) async fn serve(listener: tokio::net::TcpListener, admin: Admin, mut shutdown: watch::Receiver<bool>) {
    let serve = axum::serve(listener, router(Arc::new(admin))).with_graceful_shutdown(async move {
        let _ = shutdown.changed().await;
    });
    if let Err(e) = serve.await {
        tracing::error!(error = %e, "admin endpoint failed");
    }
}

/// The routes.
fn router(admin: Arc<Admin>) -> axum::Router {
    axum::Router::new()
        .route("/", get(status_page))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .with_state(admin)
}

/// The account deliveries running now.
fn accounts(admin: &Admin) -> Vec<Arc<AccountDelivery>> {
    admin
        .accounts
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .values()
        .cloned()
        .collect()
}

/// The status page: read only; it never changes the queue.
async fn status_page(
    State(admin): State<Arc<Admin>>,
    axum::extract::Query(request): axum::extract::Query<status::Request>,
) -> impl IntoResponse {
    let now = crate::clock::Timestamp::now();
    let mut views: Vec<status::AccountView> = accounts(&admin).iter().map(|a| a.status()).collect();
    views.sort_by(|a, b| a.name.cmp(&b.name));
    // The SQLite inspector's connection may not be shared between threads, so the whole read
    // runs on a blocking thread of its own.
    let location = admin.queue.location().clone();
    let runtime = tokio::runtime::Handle::current();
    let read = tokio::task::spawn_blocking(move || {
        runtime.block_on(async {
            let inspection = Inspection::open(&location).await?;
            let entries = inspection.list(now).await?;
            let mut dead = inspection.dead().await?;
            // The latest failures first.
            dead.reverse();
            Ok::<_, crate::queue::QueueError>((entries, dead, inspection.paused().await?))
        })
    });
    let (entries, dead, paused, queue_error) = match read.await {
        Ok(Ok((entries, dead, paused))) => (entries, dead, paused, None),
        Ok(Err(e)) => (Vec::new(), Vec::new(), Vec::new(), Some(e.to_string())),
        Err(e) => (Vec::new(), Vec::new(), Vec::new(), Some(e.to_string())),
    };
    let q = request.q.trim().to_owned();
    let snapshot = status::Snapshot {
        now,
        hostname: admin.hostname.clone(),
        accounts: views,
        paused,
        queued: entries.len(),
        oldest: entries.iter().map(|e| e.message.received).min(),
        per_account: status::count_per_account(&entries),
        queue: status::Paged::of(entries, |e| status::entry_matches(e, &q), request.page),
        dead: status::Paged::of(dead, |d| status::dead_matches(d, &q), request.dead),
        search: q,
        queue_error,
    };
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Nothing but the page's own inline style: no script, no frame, no outside asset.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        status::render(&snapshot),
    )
}

async fn ready(State(admin): State<Arc<Admin>>) -> impl IntoResponse {
    let accounts = accounts(&admin);
    let mut problems: Vec<serde_json::Value> = accounts
        .iter()
        .filter_map(|a| {
            a.readiness()
                .err()
                .map(|why| serde_json::json!({ "account": a.name(), "problem": why }))
        })
        .collect();
    if let Err(e) = admin.queue.check().await {
        problems.push(serde_json::json!({ "queue": admin.queue.location().to_string(), "problem": e.to_string() }));
    }
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({ "ready": problems.is_empty(), "accounts": accounts.len(), "problems": problems });
    (status, axum::Json(body))
}

async fn metrics(State(admin): State<Arc<Admin>>) -> impl IntoResponse {
    for account in accounts(&admin) {
        account.update_token_metrics();
    }
    if let Ok(stats) = admin.queue.stats().await {
        let m = &admin.metrics;
        m.queue_depth.set(stats.queued);
        m.dead_letters.set(stats.dead);
        let oldest = stats.oldest.map_or(0, |t| {
            i64::try_from(crate::clock::Timestamp::now().since(t).as_secs()).unwrap_or(i64::MAX)
        });
        m.queue_oldest_seconds.set(oldest);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        admin.metrics.render(),
    )
}
