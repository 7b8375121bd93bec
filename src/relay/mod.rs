//! The relay: a local SMTP server for devices and applications that cannot do OAuth. It accepts
//! their mail, stores it durably, and delivers it to Exchange Online with the account's token.
//!
//! - `session`: the inbound SMTP state machine (sans-IO); `listener`: sockets, TLS, limits.
//! - `policy`: who may relay (users, networks) and as whom.
//! - `limits`: Exchange's per-mailbox limits enforced locally (pure).
//! - `outcome`: what an attempt means for the queue (pure); `deliver`: the workers;
//!   `dsn`: reports of messages given up on.
//! - `metrics` and `admin`: Prometheus metrics, health and readiness over HTTP.

pub mod admin;
pub mod deliver;
pub mod dsn;
pub mod limits;
pub mod listener;
pub mod metrics;
pub mod outcome;
pub mod policy;
pub mod session;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{ListenerTls, RelayConfig, ServerCertificate};
use crate::queue::{Queue, QueueError};
use deliver::AccountDelivery;
use listener::Shared;

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The queue could not be opened.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The server certificate could not be loaded.
    #[error(transparent)]
    Tls(#[from] crate::tls::ServerTlsError),
    /// An account could not be prepared.
    #[error("account `{account}`: {source}")]
    Account {
        /// The account.
        account: String,
        /// The cause.
        source: crate::submit::SubmitError,
    },
    /// A listening socket could not be opened.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// A running relay.
#[derive(Debug)]
pub struct Relay {
    /// The addresses it listens on, in the configured order (with the actual ports when 0 was
    /// asked for).
    pub addresses: Vec<SocketAddr>,
    /// The admin endpoint's address, when it runs.
    pub admin: Option<SocketAddr>,
    /// The metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// The TLS certificate's SHA-256 fingerprint, when TLS is offered.
    pub fingerprint: Option<String>,
    /// Delivery per account.
    pub accounts: Vec<Arc<AccountDelivery>>,
    /// The queue.
    pub queue: Queue,
    shutdown: watch::Sender<bool>,
    /// Listeners and delivery workers: they end on shutdown.
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Token refreshers and the wake-up router: aborted on shutdown.
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Relay {
    /// Opens the queue (putting back what a previous run left), binds the listeners and starts
    /// delivery.
    pub async fn start(config: RelayConfig) -> Result<Self, StartError> {
        let needs_tls = config.listeners.iter().any(|l| l.tls != ListenerTls::None);
        let identity = if needs_tls {
            let files = match &config.certificate {
                ServerCertificate::Files {
                    certificate,
                    private_key,
                } => Some((certificate.as_path(), private_key.as_path())),
                ServerCertificate::SelfSigned => None,
            };
            let identity = crate::tls::server_identity(files, &config.session.hostname)?;
            tracing::info!(
                fingerprint = %identity.fingerprint,
                self_signed = identity.self_signed,
                "TLS certificate (SHA-256)"
            );
            Some(identity)
        } else {
            None
        };

        let (queue, recovered) = Queue::open(&config.queue_dir)?;
        tracing::info!(
            queue = %config.queue_dir.display(),
            queued = recovered.queued,
            put_back = recovered.released,
            dead = recovered.dead,
            "queue opened"
        );
        let (shutdown, shutdown_rx) = watch::channel(false);
        let metrics = Arc::new(metrics::Metrics::new());
        let mut tasks = Vec::new();
        let mut background = Vec::new();
        let mut accounts = Vec::new();
        for account in config.accounts {
            let name = account.name.clone();
            let delivery = AccountDelivery::new(
                account,
                queue.clone(),
                config.delivery.clone(),
                config.session.hostname.clone(),
                Arc::clone(&metrics),
                shutdown_rx.clone(),
            )
            .await
            .map_err(|source| StartError::Account { account: name, source })?;
            let (workers, refresher) = delivery.start();
            tasks.extend(workers);
            background.extend(refresher);
            accounts.push(delivery);
        }

        // Each stored message wakes its account's workers.
        let (stored_tx, mut stored_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let by_name: HashMap<String, Arc<AccountDelivery>> =
            accounts.iter().map(|a| (a.name().to_owned(), Arc::clone(a))).collect();
        background.push(tokio::spawn(async move {
            while let Some(account) = stored_rx.recv().await {
                if let Some(delivery) = by_name.get(&account) {
                    delivery.notify();
                }
            }
        }));

        let shared = Arc::new(Shared {
            settings: config.session.clone(),
            policy: std::sync::RwLock::new(Arc::new(config.policy.clone())),
            inbound: config.inbound.clone(),
            tls: identity.as_ref().map(|i| Arc::clone(&i.config)),
            queue: queue.clone(),
            stored: stored_tx,
            shutdown: shutdown_rx.clone(),
            metrics: Arc::clone(&metrics),
            connections: Default::default(),
            auth_failures: Default::default(),
        });
        let mut addresses = Vec::new();
        for l in &config.listeners {
            let listener = bind(l.address).map_err(|source| StartError::Listen {
                address: l.address,
                source,
            })?;
            let address = listener.local_addr().unwrap_or(l.address);
            tracing::info!(address = %address, tls = ?l.tls, "listening");
            addresses.push(address);
            tasks.push(tokio::spawn(listener::serve(listener, l.tls, Arc::clone(&shared))));
        }
        let admin = match config.admin {
            Some(address) => {
                let listener = bind(address).map_err(|source| StartError::Listen { address, source })?;
                let bound = listener.local_addr().unwrap_or(address);
                let state = Arc::new(admin::Admin {
                    metrics: Arc::clone(&metrics),
                    accounts: accounts.clone(),
                    queue_dir: config.queue_dir.clone(),
                });
                let mut stop = shutdown_rx.clone();
                tasks.push(tokio::spawn(async move {
                    let serve = axum::serve(listener, admin::router(state)).with_graceful_shutdown(async move {
                        let _ = stop.changed().await;
                    });
                    if let Err(e) = serve.await {
                        tracing::error!(error = %e, "admin endpoint failed");
                    }
                }));
                tracing::info!(address = %bound, "admin endpoint: /healthz /readyz /metrics");
                Some(bound)
            }
            None => None,
        };
        Ok(Self {
            admin,
            metrics,
            addresses,
            fingerprint: identity.map(|i| i.fingerprint),
            accounts,
            queue,
            shutdown,
            tasks,
            background,
        })
    }

    /// Stops accepting, lets deliveries in flight finish within `deadline`, and stops. What is
    /// still queued stays queued; a message interrupted upstream is delivered again next start.
    pub async fn stop(self, deadline: std::time::Duration) {
        let _ = self.shutdown.send(true);
        let end = crate::clock::instant() + deadline;
        for mut task in self.tasks {
            if tokio::time::timeout_at(end, &mut task).await.is_err() {
                task.abort();
            }
        }
        for task in self.background {
            task.abort();
        }
    }
}

/// A listening socket with address reuse, dual-stack off for IPv6 (bind `[::]` and `0.0.0.0`
/// separately when both are wanted).
fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(1024)
}
