//! The admin endpoint (loopback by default): `/healthz` (the process answers), `/readyz` (every
//! account has a token and reached Exchange on its last attempt) and `/metrics` (Prometheus).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::watch;

use super::deliver::AccountDelivery;
use super::metrics::Metrics;
use crate::queue::Queue;

/// What the endpoint reads.
#[derive(Debug)]
pub(crate) struct Admin {
    /// The metrics.
    pub(crate) metrics: Arc<Metrics>,
    /// Delivery per account.
    pub(crate) accounts: super::Accounts,
    /// The queue, read through its own connection.
    pub(crate) queue: Queue,
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
