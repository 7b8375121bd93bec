//! The admin endpoint (loopback by default): `/` (the status page), `/healthz` (the process
//! answers), `/readyz` (every account has a token and reached Exchange on its last attempt) and
//! `/metrics` (Prometheus).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
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
    /// Who may retry and delete from the status page.
    pub(crate) access: Arc<status::Access>,
}

/// Serves the endpoint on `listener` until `shutdown` becomes `true`; over TLS with `tls`.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    admin: Admin,
    tls: Option<Arc<rustls::ServerConfig>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let router = router(Arc::new(admin));
    let stop = async move {
        let _ = shutdown.changed().await;
    };
    let served = match tls {
        None => axum::serve(listener, router).with_graceful_shutdown(stop).await,
        Some(tls) => {
            axum::serve(TlsListener::new(listener, tls), router)
                .with_graceful_shutdown(stop)
                .await
        }
    };
    if let Err(e) = served {
        tracing::error!(error = %e, "admin endpoint failed");
    }
}

/// The endpoint's listener over TLS: handshakes run on tasks of their own (at most 10 s each),
/// so a slow client holds up nobody; finished ones wait in a channel for the server.
struct TlsListener {
    local: std::io::Result<std::net::SocketAddr>,
    ready: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        std::net::SocketAddr,
    )>,
}

impl TlsListener {
    fn new(listener: tokio::net::TcpListener, tls: Arc<rustls::ServerConfig>) -> Self {
        let local = listener.local_addr();
        let (done, ready) = tokio::sync::mpsc::channel(16);
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "admin endpoint: accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (acceptor, to_server) = (acceptor.clone(), done.clone());
                tokio::spawn(async move {
                    let handshake = tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp));
                    match handshake.await {
                        Ok(Ok(stream)) => {
                            let _ = to_server.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(client = %peer, error = %e, "admin endpoint: TLS handshake failed");
                        }
                        Err(_) => tracing::debug!(client = %peer, "admin endpoint: TLS handshake timed out"),
                    }
                });
                if done.is_closed() {
                    return;
                }
            }
        });
        Self { local, ready }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accepting task ended: nothing more comes.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        match &self.local {
            Ok(addr) => Ok(*addr),
            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
        }
    }
}

/// The routes.
fn router(admin: Arc<Admin>) -> axum::Router {
    axum::Router::new()
        .route("/", get(status_page))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/{area}/{action}", post(change))
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
    headers: axum::http::HeaderMap,
    axum::extract::Query(request): axum::extract::Query<status::Request>,
) -> impl IntoResponse {
    let now = crate::clock::Timestamp::now();
    let mut views: Vec<status::AccountView> = accounts(&admin).iter().map(|a| a.status()).collect();
    views.sort_by(|a, b| a.name.cmp(&b.name));
    let read = inspect(&admin, move |inspection| async move {
        let entries = inspection.list(now).await?;
        let mut dead = inspection.dead().await?;
        // The latest failures first.
        dead.reverse();
        Ok((entries, dead, inspection.paused().await?))
    });
    let (entries, dead, paused, queue_error) = match read.await {
        Ok((entries, dead, paused)) => (entries, dead, paused, None),
        Err(e) => (Vec::new(), Vec::new(), Vec::new(), Some(e)),
    };
    let q = request.q.trim().to_owned();
    let (minutes, hours, deliveries) = admin.metrics.activity.snapshot(now);
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
        csrf: admin.access.csrf(&headers),
        can_log_in: admin.access.enabled(),
        notice: request.done.as_deref().and_then(status::notice),
        minutes,
        hours,
        deliveries,
        inbound: admin.metrics.activity.inbound_view(),
    };
    (page_headers(), status::render(&snapshot))
}

/// The headers every page of the endpoint carries.
fn page_headers() -> [(header::HeaderName, &'static str); 5] {
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
    ]
}

/// Runs `work` on the queue through `queue`'s inspection, on a blocking thread of its own:
/// the SQLite inspector's connection may not be shared between threads.
async fn inspect<T, F, Fut>(admin: &Admin, work: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce(Inspection) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, crate::queue::QueueError>>,
{
    let location = admin.queue.location().clone();
    let runtime = tokio::runtime::Handle::current();
    let done = tokio::task::spawn_blocking(move || {
        runtime.block_on(async {
            let inspection = Inspection::open(&location).await?;
            work(inspection).await
        })
    });
    match done.await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

async fn login_page(State(admin): State<Arc<Admin>>) -> impl IntoResponse {
    (
        page_headers(),
        status::login_page(&admin.hostname, admin.access.enabled(), false),
    )
}

/// The login form's field.
#[derive(Debug, serde::Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(State(admin): State<Arc<Admin>>, axum::Form(form): axum::Form<LoginForm>) -> axum::response::Response {
    match admin.access.login(form.token.trim()) {
        Some(id) => (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, "/".to_owned()),
                (header::SET_COOKIE, admin.access.cookie(&id)),
            ],
        )
            .into_response(),
        None => {
            tracing::warn!("status page: a login with a wrong admin token");
            // Guessing is slow.
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            (
                StatusCode::UNAUTHORIZED,
                page_headers(),
                status::login_page(&admin.hostname, admin.access.enabled(), true),
            )
                .into_response()
        }
    }
}

async fn logout(State(admin): State<Arc<Admin>>, headers: axum::http::HeaderMap) -> impl IntoResponse {
    admin.access.logout(&headers);
    (StatusCode::SEE_OTHER, [(header::LOCATION, "/")])
}

/// A change asked for by a form of the page: which message (`id`), which dead letter (`seq`),
/// and the session's CSRF token.
#[derive(Debug, serde::Deserialize)]
struct ChangeForm {
    #[serde(default)]
    id: String,
    seq: Option<i64>,
    csrf: Option<String>,
}

/// `POST /queue/retry`, `/queue/delete`, `/dead/retry`, `/dead/delete`: with the token (bearer)
/// or a session and its CSRF token; then back to the page with what happened.
async fn change(
    State(admin): State<Arc<Admin>>,
    axum::extract::Path((area, action)): axum::extract::Path<(String, String)>,
    headers: axum::http::HeaderMap,
    axum::Form(form): axum::Form<ChangeForm>,
) -> axum::response::Response {
    if !admin.access.allows(&headers, form.csrf.as_deref()) {
        let why = if admin.access.enabled() {
            "log in on the status page (or send the admin token as a bearer token) first\n"
        } else {
            "the status page is read only: set admin_token_file in [relay] to retry and delete here\n"
        };
        return (StatusCode::FORBIDDEN, why).into_response();
    }
    let now = crate::clock::Timestamp::now();
    let (id, seq) = (form.id.trim().to_owned(), form.seq);
    let kind = (area.clone(), action.clone());
    let outcome = inspect(&admin, move |mut inspection| async move {
        use crate::queue::Lookup;
        let looked_up = |r: Result<(), Lookup>| match r {
            Ok(()) => "done",
            Err(Lookup::Busy(_)) => "busy",
            Err(_) => "gone",
        };
        Ok(match (kind.0.as_str(), kind.1.as_str()) {
            ("queue", "retry") => looked_up(inspection.retry(&id, now).await?),
            ("queue", "delete") => looked_up(inspection.delete(&id, now).await?),
            ("dead", "retry") if !id.is_empty() => match inspection.dead_retry(Some(&id), now).await? {
                0 => "gone",
                _ => "done",
            },
            ("dead", "delete") => match seq {
                Some(seq) if inspection.dead_delete(seq).await? > 0 => "done",
                _ => "gone",
            },
            _ => "unknown",
        })
    })
    .await;
    let done = match outcome {
        Ok("unknown") => return (StatusCode::NOT_FOUND, "no such action\n").into_response(),
        Ok(done) => {
            tracing::info!(area = %area, action = %action, message = %form.id.trim(), outcome = done, "status page: changed the queue");
            format!("{area}-{action}-{done}")
        }
        Err(e) => {
            tracing::warn!(area = %area, action = %action, error = %e, "status page: the change failed");
            "failed".to_owned()
        }
    };
    (StatusCode::SEE_OTHER, [(header::LOCATION, format!("/?done={done}"))]).into_response()
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
